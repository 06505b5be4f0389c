/*
 * session_out — everything that leaves a session or waits on its behalf: the outbound queue,
 * the close, the Redis requests the session waits for, and its lifetime. Every module below
 * session.c answers clients through these functions; nothing here calls up.
 *
 * Out: every frame is a shared, reference-counted buffer with LWS_PRE headroom. session_enqueue
 * appends it to the connection's queue (over the byte cap → close 4000, queue freed) and lists
 * the session for the write pass at the end of the loop's turn (session_write.c), so a burst
 * costs one pass rather than one wake-up per frame.
 *
 * Lifetime: a session outlives its socket while a Redis request holds it (`inflight`), so a
 * publish reply arriving after the close finds valid memory and is dropped.
 */
#include "session.h"

#include "clock.h"
#include "log.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct session *session_new(struct gateway *gw, struct auth_claims *claims)
{
    uint64_t serial = gw->registry.next_serial + 1;
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)serial);
    struct session *s = calloc(1, sizeof(*s) + gw->registry.prefix_len + (size_t)n + 1);
    if (!s)
        return NULL;
    gw->registry.next_serial = serial;
    s->gw = gw;
    s->claims = claims;
    s->serial = serial;
    memcpy(s->conn_id, gw->registry.prefix, gw->registry.prefix_len);
    memcpy(s->conn_id + gw->registry.prefix_len, digits, (size_t)n + 1);
    return s;
}

/* Frees everything; only when the socket is gone and no request refers to the session. */
static void session_free(struct session *s)
{
    session_flush_forget(s);
    outq_clear(&s->outq);
    auth_claims_free(s->claims);
    abuse_window_free(&s->abuse);
    free(s->rooms);
    free(s->rx);
    free(s);
}

void session_submit(struct session *s, struct bus_cmd *cmd)
{
    bus_cmd_echo(cmd)->ptr = s;
    s->inflight++;
    store_submit(s->gw, cmd);
}

void session_release(struct session *s)
{
    if (s->inflight)
        s->inflight--;
    if (!s->wsi && s->inflight == 0)
        session_free(s);
}

void session_close(struct session *s, uint16_t code, const char *reason)
{
    if (!s->wsi || s->close_code)
        return;
    s->close_code = code;
    s->close_reason = reason;
    session_want_write(s);
    /* A peer that never reads would never let the close frame out: cut it after a grace. */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, 3);
}

void session_enqueue(struct session *s, struct frame *f)
{
    if (!s->wsi || s->close_code)
        return;
    bool was_empty = outq_empty(&s->outq);
    if (outq_push(&s->outq, f, s->gw->cfg->outq_cap) != 0) {
        struct gateway *gw = s->gw;
        gw->metrics.slow_consumer_closes++;
        gw->metrics.drops += 1;
        log_event(CONFIG_LOG_WARN, "slow_consumer", "conn", s->conn_id, "user", s->claims->sub,
                  NULL);
        /* Free what it holds now: a stalled reader must not pin memory until the timeout. */
        outq_clear(&s->outq);
        session_close(s, 4000, "slow consumer");
        return;
    }
    if (was_empty)
        session_want_write(s);
}

void session_send_json(struct session *s, char *json)
{
    if (!json) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "conn", s->conn_id, NULL);
        session_close(s, 1011, "internal error");
        return;
    }
    struct frame *f = frame_new(LWS_PRE, json, strlen(json));
    free(json);
    if (!f) {
        session_close(s, 1011, "internal error");
        return;
    }
    if (!session_write_now(s, f))
        session_enqueue(s, f);
    frame_unref(f);
}

void session_send_error(struct session *s, const char *id_json, enum proto_error code,
                        const char *message)
{
    s->gw->metrics.errors_sent++;
    session_send_json(s, proto_encode_error(id_json, code, message));
}

struct session_room *session_room_find(const struct session *s, const struct room *room)
{
    for (unsigned i = 0; i < s->room_count; i++)
        if (s->rooms[i].room == room)
            return &s->rooms[i];
    return NULL;
}

bool session_in_room(const struct session *s, const struct room *room)
{
    return session_room_find(s, room) != NULL;
}

void session_discard(struct session *s)
{
    s->wsi = NULL;
    session_flush_forget(s);
    outq_clear(&s->outq);
    if (s->inflight == 0)
        session_free(s);
}
