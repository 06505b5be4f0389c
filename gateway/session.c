/*
 * session — one WebSocket connection, from the socket in: established, frames received,
 * closed. It sits at the top of the connection thread's modules: a message is reassembled,
 * decoded (common/protocol.c) and handed to requests.c; a closed socket leaves its rooms and
 * its user. What goes out to the peer is session_out.c's.
 *
 * In: lws hands us a message in pieces (the rx buffer is small on purpose, to keep idle
 * connections cheap); a message that arrives whole is decoded in place, a fragmented one is
 * reassembled up to the frame limit (over it: close 1009) and must be complete within
 * --message-timeout.
 */
#include "session.h"

#include "clock.h"
#include "deadlines.h"
#include "log.h"
#include "requests.h"
#include "rooms.h"
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void session_established(struct session *s, struct lws *wsi)
{
    struct gateway *gw = s->gw;
    s->wsi = wsi;
    s->last_rx_ms = gateway_mono_ns() / 1000000;
    s->next = gw->registry.head;
    if (gw->registry.head)
        gw->registry.head->prev = s;
    gw->registry.head = s;
    gw->registry.count++;
    if (users_add(gw, s) != 0) {
        session_close(s, 1011, "internal error");
        return;
    }
    gw->metrics.connections_total++;
    int64_t now_ms = gateway_mono_ns() / 1000000;
    token_bucket_init(&s->bucket, gw->cfg->rate_burst, now_ms);
    token_bucket_init(&s->req_bucket, gw->cfg->request_burst, now_ms);
    token_bucket_init(&s->join_bucket, gw->cfg->join_burst, now_ms);
    session_deadlines_start(s);
    log_event(CONFIG_LOG_DEBUG, "conn_open", "conn", s->conn_id, "user", s->claims->sub, NULL);
    session_send_json(s, proto_encode_welcome(s->conn_id, s->claims->sub, gw->cfg->node_id,
                                              gateway_now_ms(), gw->cfg->heartbeat_s));
}

/* Frees everything; only when the socket is gone and no request refers to the session. */
void session_closed(struct session *s)
{
    struct gateway *gw = s->gw;
    if (s->wsi) {
        users_remove(gw, s);
        gw->registry.count--;
        if (s->prev)
            s->prev->next = s->next;
        else
            gw->registry.head = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->prev = s->next = NULL;
    }
    timer_wheel_cancel(&gw->timers, &s->timer);
    rooms_leave_all(gw, s);
    log_event(CONFIG_LOG_DEBUG, "conn_close", "conn", s->conn_id, "user", s->claims->sub, NULL);
    session_discard(s);
}

/* Decodes and handles one complete message. */
static void session_handle_message(struct session *s, const char *buf, size_t len)
{
    struct gateway *gw = s->gw;
    gw->metrics.frames_in++;
    gw->metrics.bytes_in += len;
    struct proto_request req;
    const char *why = NULL;
    enum proto_error err = proto_decode(buf, len, gw->cfg->text_limit, &req, &why);
    if (err != PROTO_OK)
        session_send_error(s, req.id, err, why ? why : proto_error_code(err));
    else
        requests_dispatch(s, &req);
    proto_request_free(&req);
}

/* Drops a partly received message (and the time limit on finishing it). */
static void session_rx_reset(struct session *s)
{
    free(s->rx);
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
    s->rx_deadline_ms = 0;
}

/* Appends a fragment to the reassembly buffer, which grows with the data received, never with
 * the length a peer merely declares (a peer declaring 64 KiB and trickling bytes must not pin
 * 64 KiB). 0, or -1 when out of memory. */
static int session_rx_append(struct session *s, const void *in, size_t len)
{
    if (s->rx_len + len > s->rx_cap) {
        size_t ncap = s->rx_cap ? s->rx_cap : 512;
        while (ncap < s->rx_len + len)
            ncap *= 2;
        if (ncap > s->gw->cfg->frame_limit)
            ncap = s->gw->cfg->frame_limit;
        unsigned char *nb = realloc(s->rx, ncap);
        if (!nb)
            return -1;
        s->rx = nb;
        s->rx_cap = ncap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    return 0;
}

int session_receive(struct session *s, const void *in, size_t len)
{
    struct lws *wsi = s->wsi;
    s->last_rx_ms = gateway_mono_ns() / 1000000;
    if (s->close_code)
        return 0; /* closing: what the peer still sends is read and dropped */
    bool first = lws_is_first_fragment(wsi), last = lws_is_final_fragment(wsi);
    size_t remaining = lws_remaining_packet_payload(wsi);
    size_t limit = s->gw->cfg->frame_limit;
    bool whole = first && last && remaining == 0 && s->rx_len == 0;
    if (s->rx_len + len + remaining > limit) {
        /* Text or binary alike: a message over the frame limit closes 1009 (§3). */
        session_rx_reset(s);
        session_close(s, 1009, "message too large");
        return 0;
    }
    if (!whole && s->rx_len == 0 && !s->rx_deadline_ms) {
        /* A message in pieces must be complete within --message-timeout (trickling peers). */
        s->rx_deadline_ms = s->last_rx_ms + (int64_t)s->gw->cfg->message_timeout_s * 1000;
        session_timer_rearm(s);
    }
    if (lws_frame_is_binary(wsi)) {
        /* Counted for the limit above, never kept. */
        if (last && !remaining) {
            session_rx_reset(s);
            session_send_error(s, NULL, PROTO_ERR_BAD_REQUEST, "binary frames are not accepted");
        } else {
            s->rx_len += len;
        }
        return 0;
    }
    if (whole) {
        /* The common case: a whole message in one callback, decoded in place. */
        session_handle_message(s, in, len);
        return 0;
    }
    if (session_rx_append(s, in, len) != 0) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                         (unsigned char *)"internal", 8);
        return -1;
    }
    if (last && remaining == 0) {
        session_handle_message(s, (const char *)s->rx, s->rx_len);
        session_rx_reset(s); /* large buffers are not kept around on idle connections */
    }
    return 0;
}
