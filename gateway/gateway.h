/*
 * gateway — the state of one node that the connection (lws) thread owns, one part per module.
 * Nothing here is touched by the bus thread: it sees only queue items (bus.h).
 *
 * Module map, in the order calls go (a file calls only files below it; the only ways back up
 * are bus completions and the hooks main.c registers with the bus — function pointers):
 *
 *   main.c         configuration, start and stop, signals
 *   loop.c         the connection thread's epoll loop (libuv), lws attached as a foreign loop
 *   server.c       the lws context and protocol callback: routes to http.c and session.c,
 *                  runs bus events (completions, pushes) when the bus wakes it
 *   tick.c         periodic work: deadlines, presence and read-marker passes, the drain
 *   http.c         plain HTTP routes and their shared rules        → api.c, handshake.c
 *   api.c          POST /api/publish and /api/direct (PROTOCOL.md §6)
 *   handshake.c    the checks before a WebSocket upgrade (§1)
 *   http_reply.c   writing an HTTP answer, measuring a request head
 *   session.c      one connection, from the socket in: frames, reassembly, close
 *   requests.c     the request table (membership, budget, Redis) and small handlers
 *   rooms.c        membership, fan-out; the adapter over common/room_sync.h
 *   presence.c     cluster-wide presence, node liveness and dead-node cleanup
 *   reads.c        read markers and unread counts (§8)
 *   users.c        this node's connections per user; direct-message channels
 *   webhooks.c     events to --webhook-url (§9); webhook_*.c beside it
 *   deadlines.c    per-connection deadlines on one timer wheel
 *   session_out.c  what leaves a session: queue, close, requests it waits for
 *   session_write.c  writing queued frames in batches (corked) before the loop waits
 *   store.c        the door to Redis: bus submission, command builders
 *   bus*.c         the Redis thread (bus.h, bus_internal.h)
 *   metrics.c, log.c, clock.c   leaves, called by all
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

struct session;

/* The node's state, one part per module: each part is read and written by its module (and
 * read by the few named in its comment), on the connection thread only. */

/* store.c: the way to Redis, and what every command is built from. */
struct store {
    struct bus *bus;          /* NULL once stopped */
    struct redis_names names; /* every Redis key and channel name */
    uint64_t rng;             /* xorshift state for epoch candidates */
};

/* session.c: the established sessions and how they are named. */
struct session_registry {
    struct session *head;     /* every established session (drain walks it) */
    uint64_t count;           /* also read by handshake.c (capacity), http.c (metrics) */
    uint64_t next_serial;
    char prefix[96];          /* "<node>.<boot>." — conn ids are prefix + serial */
    size_t prefix_len;
};

/* tick.c: the drain (PROTOCOL.md §5); `active` is also read by handshake.c and http.c. */
struct drain {
    bool active;
    bool now;                 /* second signal: close everything at once */
    int64_t start_ms, deadline_ms;
    uint64_t total;           /* connections when the drain began */
    uint64_t closed;
};

/* presence.c */
struct presence_state {
    char node[128];           /* this node in presence: node id + boot time */
    bool live;                /* its liveness is registered: entries may be written */
    int64_t ticked_ms;        /* monotonic: last pass (tick.c paces it) */
};

/* handshake.c: refused handshakes are logged at a bounded rate. */
struct handshake_log {
    struct token_bucket bucket;
    uint64_t suppressed;
};

/* reads.c */
struct reads_state {
    uint64_t pending;         /* coalesced read events waiting (a hint for reads_tick) */
};

struct gateway {
    const struct gateway_config *cfg;
    struct lws_context *context;
    struct auth_policy policy;
    struct store store;
    struct session_registry registry;
    struct room_registry rooms;   /* rooms.c (room_sync's state lives in each room) */
    struct room_sync sync;        /* rooms.c */
    struct strmap users;          /* users.c: user id → this node's connections of the user
                                     (read by webhooks.c) */
    struct presence_state presence;
    struct reads_state reads;
    struct drain drain;
    struct handshake_log auth_log;
    struct timer_wheel timers;    /* deadlines.c: every session's next deadline */
    lws_sorted_usec_list_t tick;  /* tick.c */
    bool stop;                    /* the drain is over: tick.c sets it and ends the loop */
    struct metrics metrics;       /* every module counts; http.c renders */
    struct webhooks *webhooks;    /* webhooks.c; NULL without --webhook-url */
};

#endif
