/*
 * session_out — everything that leaves a session or waits on its behalf: the outbound queue,
 * the close, the Redis requests the session waits for, and its lifetime. Every module below
 * session.c answers clients through these functions; nothing here calls up.
 *
 * Out: every frame is a shared, reference-counted buffer with LWS_PRE headroom. session_enqueue
 * appends it to the connection's queue (over the byte cap → close 4000, queue freed), and
 * SERVER_WRITEABLE writes as many queued frames as the socket takes, so a burst costs one
 * wake-up rather than one per frame.
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

/* lws 4.1 keeps LWS_WRITE_CLOSE (4) private ("handled by lws_close_reason"), but lws_write
 * maps it to the close opcode; we need it to send the close frame without tearing the socket
 * down in the same breath (see session_writable). */
#define SESSION_WRITE_CLOSE ((enum lws_write_protocol)4)

/* Frames written per writable callback before yielding to other connections. */
#define SESSION_WRITE_BATCH 64

struct session *session_new(struct gateway *gw, struct auth_claims *claims)
{
    struct session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->gw = gw;
    s->claims = claims;
    s->serial = ++gw->registry.next_serial;
    snprintf(s->conn_id, sizeof(s->conn_id), "%s%llu", gw->registry.prefix,
             (unsigned long long)s->serial);
    return s;
}

/* Frees everything; only when the socket is gone and no request refers to the session. */
static void session_free(struct session *s)
{
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
    snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
    lws_callback_on_writable(s->wsi);
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
        lws_callback_on_writable(s->wsi);
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
    session_enqueue(s, f);
    frame_unref(f);
}

void session_send_error(struct session *s, const char *id_json, enum proto_error code,
                        const char *message)
{
    s->gw->metrics.errors_sent++;
    session_send_json(s, proto_encode_error(id_json, code, message));
}

int session_writable(struct session *s)
{
    struct gateway *gw = s->gw;
    if (s->ping_due && !s->close_code) {
        /* A payload, so the peer's pong (which echoes it) reaches LWS_CALLBACK_RECEIVE_PONG. */
        unsigned char ping[LWS_PRE + 2] = {[LWS_PRE] = 'h', [LWS_PRE + 1] = 'b'};
        s->ping_due = false;
        if (lws_write(s->wsi, ping + LWS_PRE, 2, LWS_WRITE_PING) < 2)
            return -1;
    }
    int64_t now_ns = 0;
    for (int n = 0; n < SESSION_WRITE_BATCH && !outq_empty(&s->outq); n++) {
        struct frame *f = outq_peek(&s->outq);
        int w = lws_write(s->wsi, frame_payload(f), f->len, LWS_WRITE_TEXT);
        if (w < (int)f->len) {
            log_event(CONFIG_LOG_DEBUG, "write_failed", "conn", s->conn_id, NULL);
            return -1;
        }
        gw->metrics.frames_out++;
        gw->metrics.bytes_out += f->len;
        if (f->offset && f->arrival_us) {
            /* A delivered room message: time since it arrived from Redis. */
            if (!now_ns)
                now_ns = gateway_mono_ns();
            uint32_t now_us = (uint32_t)(now_ns / 1000);
            metrics_observe(&gw->metrics.fanout, (double)(uint32_t)(now_us - f->arrival_us) / 1e6);
        }
        outq_pop(&s->outq);
        if (lws_send_pipe_choked(s->wsi))
            break;
    }
    if (!outq_empty(&s->outq)) {
        lws_callback_on_writable(s->wsi);
        return 0;
    }
    if (s->close_code && !s->close_sent) {
        /* What was queued before the close (e.g. the answer that triggered it) went first; a
         * slow consumer's queue was dropped, so it gets the close frame at once.
         * The close frame is written here, and the socket left open until the peer answers
         * with its own close (lws then finishes): closing at once while the peer is still
         * sending would make the kernel reset the connection, and the peer would see 1006
         * instead of our code. Input is discarded meanwhile (session_receive). */
        unsigned char buf[LWS_PRE + 2 + sizeof(s->close_reason)];
        size_t rlen = strlen(s->close_reason);
        buf[LWS_PRE] = (unsigned char)(s->close_code >> 8);
        buf[LWS_PRE + 1] = (unsigned char)(s->close_code & 0xff);
        memcpy(buf + LWS_PRE + 2, s->close_reason, rlen);
        s->close_sent = true;
        if (lws_write(s->wsi, buf + LWS_PRE, 2 + rlen, SESSION_WRITE_CLOSE) < (int)(2 + rlen))
            return -1;
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_ACK, 3);
    }
    return 0;
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
    outq_clear(&s->outq);
    if (s->inflight == 0)
        session_free(s);
}
