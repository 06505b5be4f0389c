/*
 * session — one WebSocket connection: its state (struct session), frames in (session.c)
 * and everything that goes out or waits for Redis on its behalf (session_out.c).
 */
#ifndef GATEWAY_SESSION_H
#define GATEWAY_SESSION_H

#include "gateway.h"

/* A room a session is in, with what is per connection and room. */
struct session_room {
    struct room *room;
    int64_t typing_ms; /* monotonic time the last state:true typing was relayed */
    bool typing_on;    /* a relayed state:true not yet ended (by state:false or a message) */
};

/* One WebSocket connection. Allocated at the handshake, freed when the socket is closed and no
 * Redis request still refers to it (`inflight`). Every idle connection carries one, so the
 * layout is kept small: strings that are constant are pointers, the connection id is allocated
 * with the struct at its exact length. */
struct session {
    struct lws *wsi; /* NULL once closed */
    struct gateway *gw;
    struct session *prev, *next;             /* gw->registry, while established */
    struct session *flush_prev, *flush_next; /* session_write.c: has something to write */
    struct wheel_timer timer; /* due at the earliest of the deadlines below (deadlines.c) */
    int64_t last_rx_ms;       /* monotonic: last frame or pong from the peer */
    int64_t next_ping_ms;     /* monotonic: next heartbeat ping */
    int64_t expire_ms;        /* monotonic: token exp + leeway (0: the token has no exp) */
    int64_t rx_deadline_ms;   /* monotonic: a message in pieces must be complete (0: none) */
    uint64_t serial;
    struct auth_claims *claims;
    struct outq outq;
    struct session_room *rooms; /* joined or joining */
    unsigned room_count, room_cap;
    unsigned inflight;
    uint16_t close_code;             /* non-zero: close with this code once the queue is written */
    bool close_sent;                 /* our close frame is out, or the peer's close was answered */
    bool ping_due;                   /* write a heartbeat ping at the next flush */
    bool flush_listed;               /* on the flush list (session_write.c) */
    const char *close_reason;        /* a literal (session_close) */
    struct token_bucket bucket;      /* publish and direct (--rate) */
    struct token_bucket req_bucket;  /* typing, presence, history, read, unread */
    struct token_bucket join_bucket; /* join and leave */
    struct abuse_window abuse;
    unsigned char *rx; /* reassembly of a fragmented message */
    size_t rx_len, rx_cap;
    char conn_id[]; /* "<node>.<boot>.<serial>", allocated with the session */
};

/* A session for a connection whose token passed (takes the claims); NULL on failure. */
struct session *session_new(struct gateway *gw, struct auth_claims *claims);
void session_established(struct session *s, struct lws *wsi);
int session_receive(struct session *s, const void *in, size_t len);
/* session_write.c: the peer sent a close frame (LWS_CALLBACK_WS_PEER_INITIATED_CLOSE): -1
 * when it acknowledges ours (lws then closes), else 0 and nothing more is written (lws
 * answers it). */
int session_peer_closed(struct session *s);
/* session_write.c: LWS_CALLBACK_SERVER_WRITEABLE; -1 closes the connection. */
int session_writable(struct session *s);
/* session_write.c: s has something to write (a frame, a ping, a close): written before the
 * loop next waits. */
void session_want_write(struct session *s);
/* session_write.c: writes what every session listed by session_want_write has (the loop's
 * before-wait hook; arg is the gateway). */
void session_flush_all(void *gw);
/* session_write.c: writes f at once when nothing waits ahead of it (no queued frame, nothing
 * lws kept, no close pending); true when f was taken care of (written, or the connection
 * failed and is being closed), false when it must be queued. */
bool session_write_now(struct session *s, struct frame *f);
/* session_write.c: s leaves the flush list (it is being freed). */
void session_flush_forget(struct session *s);
void session_closed(struct session *s);
/* session_out.c: the socket is gone — drops the queue, frees s unless a request holds it. */
void session_discard(struct session *s);
/* Submits a command whose completion gets s (echo.ptr): the session is kept alive (inflight)
 * until the completion calls session_release(). */
void session_submit(struct session *s, struct bus_cmd *cmd);
/* Drops one Redis reference; frees a closed session when it was the last. */
void session_release(struct session *s);
/* Queues a shared frame; over the byte cap the session is closed with 4000 instead. */
void session_enqueue(struct session *s, struct frame *f);
/* Encodes nothing: takes a malloc'd JSON string, queues it, frees it. NULL → close 1011. */
void session_send_json(struct session *s, char *json);
void session_send_error(struct session *s, const char *id_json, enum proto_error code,
                        const char *message);
/* Closes with code and reason (a string literal: it is kept, not copied) once what is queued
 * has been written. */
void session_close(struct session *s, uint16_t code, const char *reason);
/* The token was replaced (refresh): re-arms its expiry. */
void session_token_changed(struct session *s);

/* The session's entry for room, or NULL when it has not joined it. */
struct session_room *session_room_find(const struct session *s, const struct room *room);
bool session_in_room(const struct session *s, const struct room *room);

#endif
