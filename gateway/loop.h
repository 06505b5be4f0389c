/*
 * loop — the connection thread's event loop (libev on epoll, lws attached to it) and the
 * process's signals; see loop.c.
 */
#ifndef GATEWAY_LOOP_H
#define GATEWAY_LOOP_H

struct lws_context;

/* Creates the loop; -1 when libev cannot (reported on stderr). */
int loop_init(void);
/* What lws_context_creation_info.foreign_loops takes: the loop, for one service thread. */
void **loop_foreign(void);
/* fn(arg) runs before every wait of the loop, after the events of the turn were handled. */
void loop_before_wait(void (*fn)(void *arg), void *arg);
/* Runs until loop_stop(). */
void loop_run(void);
/* Ends loop_run() once the current turn is over (from the connection thread). */
void loop_stop(void);
/* Frees the loop; after lws_context_destroy, which still stops lws's watchers on it. */
void loop_free(void);

/* SIGTERM/SIGINT count themselves and wake the loop through lws_cancel_service(context);
 * SIGPIPE is ignored. context may be NULL again once the context is going away. */
void loop_signals_install(void);
void loop_signals_target(struct lws_context *context);
/* Signals received so far, when more arrived since the last call; 0 otherwise. */
int loop_signals_new(void);

#endif
