/*
 * loop — the connection thread's event loop: libuv on epoll, with lws attached to it through
 * lws's libuv event-lib plugin as a "foreign" loop (one we create, run and end).
 *
 * Why not lws's default loop: it calls poll() over every descriptor at every wake-up, so a
 * node's idle cost grew with connections × wake-ups (heartbeats alone wake it hundreds of
 * times a second at 20k connections). epoll_wait costs what is ready, not what is open.
 * Why libuv rather than libev (the other plugin Debian ships with libwebsockets-dev): both were
 * measured side by side at 19,900 idle connections (idle CPU 1.42 % vs 1.45 % of a core, RSS
 * 2.50 vs 2.41 KiB per connection, the same connect cost), but libev also exports libevent's
 * API (event_add, event_new, ...), which the bus thread uses through hiredis's libevent
 * adapter: which of the two a call binds to would depend on the link order, and the wrong one
 * crashes at start. libuv shares no symbol with libevent.
 * Why a foreign loop: on a loop it creates, lws_service() never returns and lws takes SIGINT
 * for itself; on ours we end the loop from the drain (loop_stop) and keep the signals ours.
 * The bus thread keeps its own libevent loop; it reaches this one only through
 * lws_cancel_service(), as before.
 *
 * Before every wait, a prepare watcher runs the hook the server registers: that is where the
 * frames queued during the turn are written, one pass over the connections that have any
 * (session_write.c).
 *
 * Signals: the handler only counts and calls lws_cancel_service() (a write to lws's pipe,
 * async-signal safe); the wake-up reaches the protocol callback as EVENT_WAIT_CANCELLED, where
 * server.c asks loop_signals_new() and hands a new count to the drain (tick.c).
 */
#include "loop.h"

#include <uv.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static uv_loop_t loop_uv;
static void *loop_foreign_loops[1];
static uv_prepare_t loop_prepare;
static void (*loop_prepare_fn)(void *);
static void *loop_prepare_arg;

static volatile sig_atomic_t loop_signal_count;
static struct lws_context *volatile loop_signal_context;
static int loop_signals_seen;

int loop_init(void)
{
    if (uv_loop_init(&loop_uv) != 0)
        return -1;
    loop_foreign_loops[0] = &loop_uv;
    return 0;
}

void **loop_foreign(void)
{
    return loop_foreign_loops;
}

static void loop_on_prepare(uv_prepare_t *w)
{
    (void)w;
    if (loop_prepare_fn)
        loop_prepare_fn(loop_prepare_arg);
}

void loop_before_wait(void (*fn)(void *arg), void *arg)
{
    loop_prepare_fn = fn;
    loop_prepare_arg = arg;
    uv_prepare_init(&loop_uv, &loop_prepare);
    uv_prepare_start(&loop_prepare, loop_on_prepare);
}

void loop_run(void)
{
    uv_run(&loop_uv, UV_RUN_DEFAULT);
}

void loop_stop(void)
{
    uv_stop(&loop_uv);
}

void loop_free(void)
{
    uv_prepare_stop(&loop_prepare);
    uv_close((uv_handle_t *)&loop_prepare, NULL);
    for (int i = 0; i < 100 && uv_run(&loop_uv, UV_RUN_NOWAIT); i++)
        ;
    uv_loop_close(&loop_uv);
}

static void loop_on_signal(int sig)
{
    (void)sig;
    loop_signal_count++;
    struct lws_context *context = loop_signal_context;
    if (context)
        lws_cancel_service(context);
}

void loop_signals_install(void)
{
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = loop_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

void loop_signals_target(struct lws_context *context)
{
    loop_signal_context = context;
}

int loop_signals_new(void)
{
    int count = loop_signal_count;
    if (count == loop_signals_seen)
        return 0;
    loop_signals_seen = count;
    return count;
}
