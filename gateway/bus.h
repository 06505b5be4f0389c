/*
 * bus — the Redis side of a gateway node, on its own thread (libevent + hiredis).
 *
 * Threads (see ../shared/notes/debian-libs.md: Debian's lws cannot share a libevent loop):
 *   - the bus thread owns the event_base, every Redis connection, the topology (which server
 *     holds which room) and the channel table;
 *   - the connection (lws) thread owns sessions and rooms.
 * They exchange only queue items: bus_submit() appends a command and wakes the bus with
 * event_active() when its queue was empty; the bus appends events and calls the wake function
 * (lws_cancel_service) when the event queue was empty; bus_run_events() (connection thread)
 * takes the whole list at once, so several merged wake-ups lose nothing.
 *
 * Each command carries its completion, as hiredis's redisCallback does: a function, its
 * argument and a small `echo` the caller fills in; bus_run_events() calls it on the connection
 * thread with the reply. What arrives unasked (room and user messages, a subscription made or
 * lost, a Redis server ready) goes to the hooks the caller registered at bus_start(). There is
 * no router and no purpose code: the bus never knows what a reply is for.
 *
 * Where a command goes: every command names a routing key — a room or a user, the hash tag of
 * all its keys and of its channel — and the topology picks the server:
 *   plain      redis://… (one or a list): the instance picked by a stable hash of the key;
 *   cluster    redis+cluster://seeds: the master owning the key's slot, from CLUSTER SLOTS,
 *              following MOVED (map updated, command retried) and ASK (ASKING, once);
 *   sentinel   redis+sentinel://…/name: the master the Sentinels name, confirmed with ROLE.
 * A key whose server is not ready is answered BUS_UNAVAILABLE at once, never queued.
 *
 * Subscriptions are declared, not sent blindly: the bus keeps per channel the wanted state and
 * where it is subscribed, re-subscribes after a connection loss, a slot move or a failover
 * (SSUBSCRIBE on Redis Cluster, whose unsolicited `sunsubscribe` means "moved"), and reports
 * each loss and each (re)subscription, so rooms can read back what they missed.
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

enum bus_status {
    BUS_OK = 0,
    BUS_UNAVAILABLE, /* not sent (no ready server for the key) or the connection was lost */
    BUS_ERROR,       /* Redis answered with an error */
};

/* What the caller hands through a command to its completion, untouched. */
struct bus_echo {
    void *ptr;
    uint64_t a, b;
    int64_t t;
    char *text; /* malloc'd, owned by the command then by the reply (freed after the call) */
    char name[BUS_NAME_MAX + 1];
};

/* A command's result, as its completion sees it (valid during the call only). */
struct bus_reply {
    enum bus_status status;
    const char *error;     /* BUS_ERROR: Redis's message */
    long long integer;     /* an integer reply; for frame replies, the script's first element */
    char **strings;        /* an array reply, each element as text ("" for nil) */
    size_t nstrings;
    struct frame **frames; /* BUS_PARSE_FRAMES: stored messages, one reference each */
    size_t nframes;
    const struct bus_value *value; /* BUS_PARSE_VALUE: the reply as it came */
    struct bus_echo echo;
};

typedef void (*bus_done_fn)(void *arg, struct bus_reply *reply);

/* The scripts the gateway runs (redis_scripts.h); the bus keeps their SHAs per server. */
enum bus_script {
    BUS_SCRIPT_PUBLISH,
    BUS_SCRIPT_SYNC,
    BUS_SCRIPT_ROTATE,
    BUS_SCRIPT_FETCH,
    BUS_SCRIPT_HISTORY,
    BUS_SCRIPT_PRESENCE_JOIN,
    BUS_SCRIPT_PRESENCE_LEAVE,
    BUS_SCRIPT_PRESENCE_LIST,
    BUS_SCRIPT_NODE_REFRESH,
    BUS_SCRIPT_NODE_DEAD,
    BUS_SCRIPT_ROOM_FORGET_NODE,
    BUS_SCRIPT_SEND,
    BUS_SCRIPT_ONLINE,
    BUS_SCRIPT_READ,
    BUS_SCRIPT_READS,
    BUS_SCRIPT_COUNT
};

enum bus_parse { BUS_PARSE_STRINGS, BUS_PARSE_FRAMES, BUS_PARSE_VALUE };

/* A whole reply, deep-copied (BUS_PARSE_VALUE), for commands with nested answers. */
enum bus_value_type { BUS_VALUE_NIL, BUS_VALUE_STRING, BUS_VALUE_INTEGER, BUS_VALUE_ARRAY };
struct bus_value {
    enum bus_value_type type;
    char *str; /* STRING (also status), NUL-terminated, len bytes */
    size_t len;
    long long integer;
    struct bus_value **element; /* ARRAY */
    size_t elements;
};

struct bus_cmd;

/* A script run on the server of `key` (a room or, with user, a user). argv: nkeys keys then
 * the arguments, copied. done may be NULL (fire and forget). NULL on allocation failure. */
struct bus_cmd *bus_script(enum bus_script script, const char *key, bool user, int nkeys,
                           int argc, const char *const *argv, bus_done_fn done, void *arg);
/* A plain command (argv copied), e.g. XREADGROUP, on the server of key; for modules whose
 * commands are not scripts. */
struct bus_cmd *bus_command(const char *key, bool user, int argc, const char *const *argv,
                            bus_done_fn done, void *arg);
/* A script given by its text (sent as EVAL every time: for rare commands of modules that keep
 * their own scripts). text must outlive the command (a string literal). */
struct bus_cmd *bus_eval(const char *text, const char *key, bool user, int nkeys, int argc,
                         const char *const *argv, bus_done_fn done, void *arg);
/* Reply shape (default BUS_PARSE_STRINGS). Frames come from [first, id, msg, id, msg, ...]. */
void bus_cmd_parse(struct bus_cmd *cmd, enum bus_parse parse);
/* The publish script: with --redis-wait N the bus also WAITs for N replicas and only then
 * publishes the message on the room channel, so a message members see survives a failover. */
void bus_cmd_publish_mode(struct bus_cmd *cmd);
/* The caller's echo of a command (fill before submitting). */
struct bus_echo *bus_cmd_echo(struct bus_cmd *cmd);
/* Frees a command that was not submitted; NULL is ignored. */
void bus_cmd_discard(struct bus_cmd *cmd);

/* Wants the channel of room / user `name` subscribed (want) or not; pushes follow. */
struct bus_cmd *bus_subscribe(const char *name, bool user, bool want);

/* Queues cmd (ownership passes to the bus) and wakes the bus thread if needed. A command
 * submitted after bus_stop began is completed with BUS_UNAVAILABLE (never dropped); with a
 * NULL bus (stopped) it is completed so at once, on the calling thread. */
void bus_submit(struct bus *bus, struct bus_cmd *cmd);

/* Unasked events. */
enum bus_push_kind {
    BUS_PUSH_MESSAGE,    /* a message on a room or user channel */
    BUS_PUSH_SUBSCRIBED, /* the channel's subscription is (again) in place */
    BUS_PUSH_LOST,       /* the channel's subscription is gone (it will be re-made) */
};

struct bus_push {
    enum bus_push_kind kind;
    bool user;
    char name[BUS_NAME_MAX + 1];
    /* MESSAGE: "<epoch> <offset> <sender conn> <json>" parsed; offset 0 = ephemeral */
    char epoch[PROTO_EPOCH_MAX + 1];
    uint64_t offset;
    struct frame *frame; /* one reference, released after the hook returns */
    int64_t arrival_ns;
};

struct bus_hooks {
    void (*room)(void *arg, struct bus_push *p); /* room channels */
    void (*user)(void *arg, struct bus_push *p); /* user channels */
    void (*ready)(void *arg);                    /* a Redis server became ready */
    void *arg;
};

/* Starts the bus thread and begins connecting. frame_headroom is the headroom of message
 * frames (LWS_PRE); local_conn_prefix lets the bus tag each frame with its sender's serial
 * when the sender is one of this node's connections. NULL on failure. */
struct bus *bus_start(const struct gateway_config *cfg, size_t frame_headroom,
                      const char *local_conn_prefix, const struct bus_hooks *hooks,
                      void (*wake)(void *), void *wake_arg);
/* Connection thread: runs every pending completion and hook, in order. */
void bus_run_events(struct bus *bus);
/* Stops the thread and closes Redis; commands not answered are completed with
 * BUS_UNAVAILABLE (run here), so nothing waits for ever. Frees the bus. */
void bus_stop(struct bus *bus);

/* Readiness, from any thread. */
bool bus_ready_for(const struct bus *bus, const char *key, bool user);
bool bus_all_ready(const struct bus *bus); /* /readyz: every slot / instance has a server */
bool bus_any_ready(const struct bus *bus);

/* Counters for /metrics (any thread). */
struct bus_stats {
    uint64_t reconnects, slot_map_refreshes, moved, ask, failovers, wait_timeouts;
};
void bus_stats_get(const struct bus *bus, struct bus_stats *out);
/* Per server: "host:port", role ("master", "replica", "sentinel") and whether it is up;
 * returns how many were written (at most max). */
struct bus_server_state {
    char addr[280];
    const char *role;
    bool up;
};
size_t bus_servers(const struct bus *bus, struct bus_server_state *out, size_t max);

#endif
