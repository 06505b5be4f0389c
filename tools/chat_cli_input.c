/*
 * chat_cli_input.c — the stdin reader thread and the bounded queue it fills.
 *
 * The thread only reads lines into the locked queue and wakes the main thread with
 * lws_cancel_service() (LWS_CALLBACK_EVENT_WAIT_CANCELLED); when the queue is full it blocks,
 * so a large input file is read no faster than pacing lets it be sent, and lines typed while
 * the connection is down wait here (bounded) until it is back. It starts once the first
 * connection is ready and is never joined: exit() ends it even when blocked on a terminal.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_cli.h"

void cli_input_init(struct cli *c)
{
    pthread_mutex_init(&c->q.lock, NULL);
    pthread_cond_init(&c->q.not_full, NULL);
}

/* Blocks while the queue is full; takes ownership of line. */
static void queue_push(struct cli *c, char *line)
{
    struct cli_line_queue *q = &c->q;
    pthread_mutex_lock(&q->lock);
    while (q->count == CLI_LINE_QUEUE_CAP)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->lines[(q->head + q->count) % CLI_LINE_QUEUE_CAP] = line;
    q->count++;
    pthread_mutex_unlock(&q->lock);
    lws_cancel_service(c->ctx);
}

/* Returns the oldest queued line (the caller frees it) or NULL; *eof tells whether stdin
 * ended and every line has been taken. */
char *cli_input_pop(struct cli *c, bool *eof)
{
    struct cli_line_queue *q = &c->q;
    char *line = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->count) {
        line = q->lines[q->head];
        q->head = (q->head + 1) % CLI_LINE_QUEUE_CAP;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    *eof = q->eof && q->count == 0 && !line;
    pthread_mutex_unlock(&q->lock);
    return line;
}

static void *stdin_reader(void *arg)
{
    struct cli *c = arg;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, stdin)) >= 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = '\0';
        if (n > CLI_LINE_MAX) {
            fprintf(stderr, "! line of %zd bytes cut to %d\n", n, CLI_LINE_MAX);
            buf[CLI_LINE_MAX] = '\0';
        }
        char *line = strdup(buf);
        if (!line)
            break;
        queue_push(c, line);
    }
    free(buf);
    pthread_mutex_lock(&c->q.lock);
    c->q.eof = true;
    pthread_mutex_unlock(&c->q.lock);
    lws_cancel_service(c->ctx);
    return NULL;
}

void cli_input_start(struct cli *c)
{
    if (c->reader_started)
        return;
    pthread_t t;
    if (pthread_create(&t, NULL, stdin_reader, c) != 0) {
        cli_error("cannot start the stdin reader");
        cli_interrupted = 1;
        return;
    }
    pthread_detach(t);
    c->reader_started = true;
}
