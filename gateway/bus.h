/*
 * bus — the Redis side of a gateway node, on its own thread (libevent + hiredis async).
 *
 * Threads (see ../shared/notes/debian-libs.md: Debian's lws cannot share a libevent loop):
 *   - the bus thread owns the event_base and both Redis connections: `cmd` (EVALSHA scripts)
 *     and `sub` (SUBSCRIBE/UNSUBSCRIBE and incoming pub/sub messages);
 *   - the connection (lws) thread owns sessions and rooms.
 * They exchange only queue items: bus_submit() appends a command and wakes the bus with
 * event_active() when its queue was empty; the bus appends events and calls the wake function
 * (lws_cancel_service) when the event queue was empty. bus_take_events() hands the whole event
 * list over at once, so several merged wake-ups lose nothing.
 *
 * Subscriptions are declared, not sent blindly: the bus keeps per channel the wanted state and
 * what is in flight, so an UNSUBSCRIBE reply never cancels a newer SUBSCRIBE of the same room,
 * and after a reconnect it re-subscribes exactly the wanted rooms.
 *
 * Publish: one Lua script per message (assign offset with INCR, create the room epoch if
 * missing, XADD to the capped log with ID <offset>-0, PUBLISH "<epoch> <offset> <sender conn>
 * <frame json>" on the room channel) — one round trip, whatever the audience.
 */
#ifndef GATEWAY_BUS_H
#define GATEWAY_BUS_H

#include "config.h"
#include "frame.h"
#include "protocol.h"

#include <stdbool.h>
#include <stdint.h>

struct bus;

#define BUS_NAME_MAX PROTO_USER_MAX /* a room name or a user id */
#define BUS_CHANNEL_MAX 200

enum bus_cmd_type {
    BUS_CMD_SUBSCRIBE,   /* want room's channel subscribed → BUS_EV_SUBSCRIBED */
    BUS_CMD_UNSUBSCRIBE, /* no local member left */
    BUS_CMD_SYNC,        /* read room offset/epoch (creating the epoch) → BUS_EV_SYNCED */
    BUS_CMD_PUBLISH,     /* run the publish script → BUS_EV_PUBLISHED */
    BUS_CMD_FETCH,       /* read stored messages [from, to] of a room's log → BUS_EV_FETCHED */
    BUS_CMD_TYPING,      /* ephemeral frame `head` on the room channel (the user channel with
                            user_channel); nothing answered */
    BUS_CMD_DIRECT,      /* frame `head` to user `room` and the sender's user `tail` →
                            BUS_EV_PUBLISHED (direct) */
    BUS_CMD_SCRIPT,      /* EVAL `script` with argv[0..nkeys) as keys, the rest as args →
                            BUS_EV_SCRIPT when `purpose` is non-zero */
};

struct bus_cmd {
    struct bus_cmd *next;
    enum bus_cmd_type type;
    char room[BUS_NAME_MAX + 1]; /* a room, or a user for user channels and DIRECT */
    bool user_channel;   /* SUBSCRIBE/UNSUBSCRIBE: the user channel of `room` */
    uint64_t generation; /* SYNC: room incarnation, echoed back */
    void *owner;         /* PUBLISH: the session (or API request), echoed back untouched */
    bool api;            /* PUBLISH/DIRECT: owner is an API request */
    char *id_json;       /* PUBLISH: request id, echoed back (ownership moves with the item) */
    char *head, *tail;   /* PUBLISH: message parts (see proto_encode_message_parts) */
    char sender[128];     /* PUBLISH: sender conn id ("-" for the backend API) */
    int64_t ts_ms;       /* PUBLISH: message ts, echoed back for the ack */
    int64_t t_submit_ns; /* monotonic submit time, for the publish round-trip metric */
    uint64_t from, to;   /* FETCH: offsets, inclusive (to == UINT64_MAX: the newest) */
    unsigned newest;     /* FETCH: when > 0, only the newest `newest` messages in the range */
    uint64_t tag;        /* FETCH: echoed back untouched */
    const char *script;  /* SCRIPT: static Lua text */
    char **argv;         /* SCRIPT: keys then args, each malloc'd, owned by the command */
    int argc, nkeys;
    int purpose;         /* FETCH: echoed back (the caller's tag: gap fill, history, ...) */
};

enum bus_event_type {
    BUS_EV_MESSAGE,    /* a room message from pub/sub: room, epoch, offset, sender, frame */
    BUS_EV_SUBSCRIBED, /* room's channel subscription confirmed */
    BUS_EV_SYNCED,     /* room offset/epoch read (status 0) or failed */
    BUS_EV_PUBLISHED,  /* publish done: offset/epoch (status 0) or failed */
    BUS_EV_SUB_LOST,   /* the subscriber connection dropped: every subscription is gone */
    BUS_EV_READY,      /* both connections up again (after start or an outage) */
    BUS_EV_FETCHED,    /* stored messages read: frames[0..count) in offset order, or failed */
    BUS_EV_DIRECT,     /* a frame on user `room`'s channel (frame->sender_serial set) */
    BUS_EV_SCRIPT,     /* a script's reply: strings[0..nstrings) from an array of strings */
};

struct bus_event {
    struct bus_event *next;
    enum bus_event_type type;
    int status; /* 0 ok; otherwise failed (Redis down or error) */
    int shard;   /* index of the Redis instance (bus) that emitted it */
    bool direct; /* PUBLISHED: the answer to a DIRECT */
    bool api;    /* PUBLISHED: owner is an API request */
    char room[BUS_NAME_MAX + 1];
    uint64_t generation;
    uint64_t offset;
    char epoch[PROTO_EPOCH_MAX + 1];
    char sender[128];
    struct frame *frame; /* MESSAGE: payload with LWS_PRE headroom; one reference, handed over;
                            frame->offset and frame->sender_serial are set */
    struct frame **frames; /* FETCHED: one reference each, handed over */
    size_t count;
    uint64_t from, to;     /* FETCHED: the range asked for */
    int purpose;
    uint64_t tag;
    void *owner;
    char *id_json;
    int64_t ts_ms;
    int64_t t_submit_ns; /* PUBLISHED: from the command; MESSAGE: arrival time on this node */
    char **strings; /* SCRIPT: owned by the event */
    size_t nstrings;
};

typedef void (*bus_wake_fn)(void *arg);

/* Starts the bus thread of Redis instance cfg->redis[shard] and begins connecting. frame_headroom is the headroom given to
 * message frames (LWS_PRE); local_conn_prefix is this node's conn-id prefix, so the bus can tag
 * each frame with its sender's serial when the sender is local. NULL on failure. */
struct bus *bus_start(const struct gateway_config *cfg, int shard, size_t frame_headroom,
                      const char *local_conn_prefix, bus_wake_fn wake, void *wake_arg);
/* Stops the thread and closes Redis. Publishes and syncs not yet answered are answered as
 * failed; returns every undelivered event (caller handles and frees them). Call from the
 * connection thread; the wake function may be called during the stop. */
struct bus_event *bus_stop(struct bus *bus);

/* Allocates a zeroed command (NULL on allocation failure). */
struct bus_cmd *bus_cmd_new(enum bus_cmd_type type, const char *room);
/* A SCRIPT command with copies of the n strings in argv (the first nkeys are keys); NULL on
 * allocation failure. */
struct bus_cmd *bus_script_new(const char *script, int nkeys, int n, const char *const *argv);
/* Frees a command that was not submitted (and everything it holds); NULL is ignored. */
void bus_cmd_discard(struct bus_cmd *cmd);
/* Queues cmd (ownership passes to the bus) and wakes the bus thread if needed. */
void bus_submit(struct bus *bus, struct bus_cmd *cmd);

/* Takes every pending event, oldest first; the caller frees each with bus_event_free. */
struct bus_event *bus_take_events(struct bus *bus);
void bus_event_free(struct bus_event *ev);

/* True while both Redis connections are up (read from any thread). */
bool bus_ready(const struct bus *bus);
/* Redis reconnects since start (metrics). */
uint64_t bus_reconnects(const struct bus *bus);

#endif
