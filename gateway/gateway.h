/*
 * gateway — the state of one node that the connection (lws) thread owns, and the functions
 * its modules offer each other. Nothing here is touched by the bus thread: it sees only queue
 * items (bus.h).
 *
 *   server.c     lws context, protocol callback, HTTP routes, the event-queue drain
 *   handshake.c  token/origin/readiness checks before the upgrade (PROTOCOL.md §1)
 *   session.c    one WebSocket connection: frames in, request handlers, outbound queue
 *   rooms.c      room membership, sync with Redis, fan-out of delivered messages
 *   metrics.c    counters and Prometheus text
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include "auth.h"
#include "bus.h"
#include "config.h"
#include "rate_limit.h"
#include "metrics.h"
#include "outq.h"
#include "room_registry.h"
#include "redis_names.h"
#include "room_sync.h"
#include "strmap.h"
#include "timer_wheel.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

struct gateway {
    const struct gateway_config *cfg;
    struct lws_context *context;
    struct bus *bus; /* NULL once stopped */
    struct room_registry rooms;
    struct room_sync sync; /* the rooms' ordering state machine (common/room_sync.h) */
    struct redis_names names; /* every Redis key and channel name */
    char presence_node[128];  /* this node in presence: node id + boot time */
    bool presence_live;       /* its liveness is registered: presence entries may be written */
    uint64_t reads_pending;   /* coalesced read events waiting (a hint for reads_tick) */
    uint64_t rng;          /* xorshift state for epoch candidates */
    struct strmap users; /* user id → struct local_user: this node's connections per user */
    struct auth_policy policy;
    uint64_t next_serial;
    char conn_prefix[96]; /* "<node>.<boot>." — conn ids are prefix + serial */
    size_t conn_prefix_len;
    uint64_t connections;
    struct session *sessions; /* every established session (heartbeat scan, drain) */
    bool draining;
    bool drain_now;       /* second signal: close everything at once */
    bool stop;            /* leave the service loop */
    uint64_t next_tag;    /* tags of recovery fetches */
    int64_t presence_swept_ms, presence_refreshed_ms; /* wall clock of the last passes */
    int64_t presence_ticked_ms; /* monotonic: last presence pass of tick.c */
    int64_t drain_start_ms;
    int64_t drain_deadline_ms;
    uint64_t drain_total; /* connections when the drain began */
    uint64_t drain_closed;
    lws_sorted_usec_list_t tick;
    struct timer_wheel timers; /* every session's next deadline (deadlines.c) */
    struct token_bucket auth_log_bucket; /* rate of auth-failure log lines */
    uint64_t auth_log_suppressed;
    struct metrics metrics;
};

/* A room a session is in, with what is per connection and room. */
struct session_room {
    struct room *room;
    int64_t typing_ms; /* monotonic time the last state:true typing was relayed */
    bool typing_on;    /* a relayed state:true not yet ended (by state:false or a message) */
};

/* One WebSocket connection. Allocated at the handshake, freed when the socket is closed and no
 * Redis request still refers to it (`inflight`). */
struct session {
    struct lws *wsi; /* NULL once closed */
    struct gateway *gw;
    struct session *prev, *next; /* gw->sessions, while established */
    int64_t last_rx_ms;          /* monotonic: last frame or pong from the peer */
    struct wheel_timer timer;    /* due at the earliest of the deadlines below (deadlines.c) */
    int64_t next_ping_ms;        /* monotonic: next heartbeat ping */
    int64_t expire_ms;           /* monotonic: token exp + leeway (0: the token has no exp) */
    int64_t rx_deadline_ms;      /* monotonic: a message in pieces must be complete (0: none) */
    bool ping_due;               /* write a heartbeat ping at the next writable */
    uint64_t serial;
    char conn_id[128];
    struct auth_claims *claims;
    struct outq outq;
    struct session_room *rooms; /* joined or joining */
    unsigned room_count, room_cap;
    unsigned inflight;
    uint16_t close_code; /* non-zero: close with this code at the next writable */
    bool close_sent;     /* our close frame is out; waiting for the peer's */
    char close_reason[48];
    struct token_bucket bucket;      /* publish and direct (--rate) */
    struct token_bucket req_bucket;  /* typing, presence, history, read, unread */
    struct token_bucket join_bucket; /* join and leave */
    struct abuse_window abuse;
    unsigned char *rx;   /* reassembly of a fragmented message */
    size_t rx_len, rx_cap;
    bool rx_overflow;
};

/* handshake.c: the verdict on an upgrade request (or a plain GET /ws): status 0 and the
 * token's claims (caller owns them), or an HTTP status with its error and message. */
struct handshake_verdict {
    unsigned status;
    const char *error, *message;
    struct auth_claims *claims;
};
void handshake_judge(struct gateway *gw, struct lws *wsi, struct handshake_verdict *v);
/* Judges the upgrade request; on success sets the wsi's opaque data to a new session and
 * returns 0; otherwise it has written the HTTP error and returns non-zero. */
int handshake_check(struct gateway *gw, struct lws *wsi);

/* session.c */
/* A session for a connection whose token passed (takes the claims); NULL on failure. */
struct session *session_new(struct gateway *gw, struct auth_claims *claims);
void session_established(struct session *s, struct lws *wsi);
int session_receive(struct session *s, const void *in, size_t len);
int session_writable(struct session *s);
void session_closed(struct session *s);
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
void session_close(struct session *s, uint16_t code, const char *reason);
/* The token was replaced (refresh): re-arms its expiry. */
void session_token_changed(struct session *s);

/* requests.c: runs a decoded request after the checks its kind needs (membership, budget,
 * Redis), or answers the error. */
void requests_dispatch(struct session *s, const struct proto_request *req);

/* deadlines.c: per-connection deadlines on gw->timers — heartbeat, token expiry, message
 * timeout. */
int deadlines_init(struct gateway *gw);
/* A session was established: schedules its first ping and its token expiry. */
void session_deadlines_start(struct session *s);
/* Arms s's timer at its earliest deadline (call after changing one). */
void session_timer_rearm(struct session *s);
/* Handles every deadline due by now (from tick.c). */
void deadlines_run(struct gateway *gw, int64_t now_ms);

/* The session's entry for room, or NULL when it has not joined it. */
struct session_room *session_room_find(const struct session *s, const struct room *room);
bool session_in_room(const struct session *s, const struct room *room);

/* rooms.c */
void rooms_join(struct gateway *gw, struct session *s, const struct proto_request *req);
void rooms_leave(struct gateway *gw, struct session *s, const char *room, const char *id_json);
/* history request (s is a member of room): the room's stored messages, answered when Redis
 * replies. */
void rooms_history(struct gateway *gw, struct session *s, const struct proto_request *req,
                   struct room *room);
/* s's token changed: leaves (with `left` frames) every room its rooms claim no longer allows. */
void rooms_apply_claims(struct gateway *gw, struct session *s);
/* Removes s from every room (connection closed). */
void rooms_leave_all(struct gateway *gw, struct session *s);
/* Sets up the rooms' state machine (gw->sync). */
void rooms_init(struct gateway *gw);
/* bus hook for room channels: messages, subscriptions made and lost. */
void rooms_on_push(void *arg, struct bus_push *p);
/* A Redis server is ready again: stalled rooms sync again. */
void rooms_on_ready(struct gateway *gw);

/* users.c: this node's connections per user, and the user channel each needs */
int users_add(struct gateway *gw, struct session *s);
void users_remove(struct gateway *gw, struct session *s);
/* bus hook for user channels: a direct frame is queued to that user's local connections. */
void users_on_push(void *arg, struct bus_push *p);

/* store.c: the node's Redis, through the bus (bus.h). */
/* Hands cmd to the bus (or completes it unavailable once the bus is stopped). */
void store_submit(struct gateway *gw, struct bus_cmd *cmd);
/* True when the Redis server holding room / user `key` is ready. */
bool store_ready(const struct gateway *gw, const char *key, bool user);
bool store_all_ready(const struct gateway *gw);
bool store_any_ready(const struct gateway *gw);
/* A fresh epoch candidate: 64 random bits as 16 hex digits. */
void store_epoch_candidate(struct gateway *gw, char out[17]);
/* The publish script for a message (head + offset + tail) to room; NULL on allocation
 * failure. */
struct bus_cmd *store_publish_cmd(struct gateway *gw, const char *room, const char *head,
                                  const char *tail, const char *sender, bus_done_fn done,
                                  void *arg);
/* An ephemeral frame (typing, a direct) on a room's or user's channel; done (may be NULL)
 * gets the number of receiving nodes in reply->integer. */
struct bus_cmd *store_send_cmd(struct gateway *gw, const char *key, bool user, const char *sender,
                               const char *json, bus_done_fn done, void *arg);
/* "1" when channels are sharded (Redis Cluster: SPUBLISH), else "0" — scripts' last ARGV. */
const char *store_sharded(const struct gateway *gw);

/* server.c */
int64_t gateway_now_ms(void);     /* wall clock, ms since the epoch */
int64_t gateway_mono_ns(void);    /* monotonic */

/* tick.c: periodic work on the connection thread — heartbeat deadlines, drain pacing. */
void tick_start(struct gateway *gw);
/* A SIGTERM/SIGINT arrived (count = signals so far): the first starts the drain, the second
 * ends it at once. */
void tick_signal(struct gateway *gw, int count);

#endif
