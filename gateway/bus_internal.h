/*
 * bus_internal — the bus thread's own state, shared by its files and by nothing else. Calls go
 * down this list only; what must flow back up (a server's state, a new slot map) goes through
 * the function pointers bus.c registers (struct bus_server_hooks, map_changed):
 *   bus.c          the thread and the command queue, start/stop, readiness for other threads
 *   bus_exec.c     running commands: EVALSHA/NOSCRIPT, MOVED/ASK/TRYAGAIN, WAIT
 *   bus_channels.c the channel table: wanted vs. subscribed, loss and repair, message pushes
 *   bus_topology.c which server holds a key: plain hashing, Cluster slot map, Sentinel
 *   bus_server.c   one Redis server: its command connection (hiredis async), its subscriber
 *                  connection, reconnect with backoff, watchdog, loading the scripts
 *   bus_sconn.c    a subscriber connection read with hiredis's reader, not its async API
 *   bus_scripts.c  the scripts' texts, by number
 *   bus_events.c   completions and pushes to the connection thread, and running them there
 * Everything below the queue lock in struct bus belongs to the bus thread alone, except the
 * atomics (readiness, counters) and the server-state snapshot (under `lock`).
 */
#ifndef GATEWAY_BUS_INTERNAL_H
#define GATEWAY_BUS_INTERNAL_H

#include "bus.h"
#include "redis_names.h"
#include "slot_map.h"
#include "strmap.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>

#define BUS_SERVERS_MAX SLOT_MAP_NODES_MAX
#define BUS_CHANNEL_MAX REDIS_NAME_MAX

enum bus_cmd_kind { BUS_CMD_SCRIPT, BUS_CMD_SUBSCRIBE, BUS_CMD_RAW };

struct bus_cmd {
    struct bus_cmd *next;
    enum bus_cmd_kind kind;
    char key[BUS_NAME_MAX + 1]; /* routing: a room, a user, or an "@..." internal tag */
    bool user;
    bool want;                  /* SUBSCRIBE: wanted or not */
    enum bus_script script;
    const char *eval_text;      /* bus_eval: the script's text (EVAL, no SHA) */
    enum bus_parse parse;
    bool publish;               /* the publish script (WAIT, then publish the payload) */
    char **argv;                /* keys then args, each malloc'd */
    int argc, nkeys;
    bus_done_fn done;
    void *arg;
    struct bus_echo echo;
    /* bus thread */
    int attempts;               /* redirections and retries so far */
    int ask_server;             /* >= 0: send ASKING then the command to this server, once */
    bool with_text;             /* NOSCRIPT seen: send EVAL with the script's text */
    char *payload;              /* publish mode: the message to publish after WAIT */
    size_t payload_len;
    uint64_t wait_offset;       /* publish mode: the script's answer, completed after WAIT */
    char wait_epoch[PROTO_EPOCH_MAX + 1];
    int64_t parked_ns;          /* first parked for a retry (TRYAGAIN ...); 0: never */
    int server;                 /* where the command went */
};

enum bus_role { BUS_ROLE_DATA, BUS_ROLE_SENTINEL };

struct bus_sconn;

/* One Redis server. */
struct bus_server {
    struct bus *bus;
    int index;
    char host[SLOT_MAP_HOST_MAX + 1];
    int port;
    int db;
    enum bus_role role;
    bool wanted;            /* keep connected (a seed, a master that owns slots, ...) */
    bool is_replica;        /* Cluster: owns no slot in the last slot map */
    redisAsyncContext *cmd;
    bool cmd_up;
    struct bus_sconn *sub;
    bool sub_up;
    char sha[BUS_SCRIPT_COUNT][41];
    int shas_loaded;
    bool ever_ready;
    atomic_bool ready;      /* cmd up, scripts loaded, sub up */
    struct event *reconnect_ev;
    int backoff_ms;
    int64_t ping_sent_ns;
    bool role_checked;      /* Sentinel: ROLE said master */
};

/* One wanted (or winding-down) channel. */
enum channel_state { CHANNEL_IDLE, CHANNEL_SUBSCRIBING, CHANNEL_SUBSCRIBED, CHANNEL_UNSUBSCRIBING };

struct bus_channel {
    bool want;
    bool user;
    enum channel_state state;
    int server; /* where it is (being) subscribed; -1 when idle */
    char name[BUS_NAME_MAX + 1];
};

struct bus_event;
struct bus_pending;

/* What a server's state changes mean to the layers above it (channels, topology), called
 * through pointers bus.c registers, so bus_server.c calls no file above it. */
struct bus_server_hooks {
    void (*sub_reply)(struct bus_server *s, redisReply *reply); /* a subscriber reply */
    void (*sub_up)(struct bus_server *s);                       /* subscriber connected */
    void (*sub_lost)(struct bus_server *s);                     /* subscriber gone */
    void (*ready)(struct bus_server *s);                        /* became ready */
    void (*lost)(struct bus_server *s);                         /* a connection lost/failed */
    void (*changed)(struct bus *bus);                           /* readiness changed */
};

struct bus {
    /* shared, under lock */
    pthread_mutex_t lock;
    struct bus_cmd *cmd_head, *cmd_tail;
    struct bus_event *ev_head, *ev_tail;
    bool stopping;
    bool joined; /* the thread has ended (bus_stop) */
    struct bus_server_state snapshot[BUS_SERVERS_MAX];
    size_t snapshot_count;
    /* read from any thread */
    _Atomic(uint8_t) *slot_ready;  /* cluster: per slot, 1 when its master is ready */
    atomic_bool all_ready, any_ready;
    atomic_uint_fast64_t reconnects, refreshes, moved, ask, failovers, wait_timeouts;
    /* constant after start */
    const struct gateway_config *cfg;
    enum config_redis_mode mode;
    struct redis_names names;
    size_t headroom;
    char local_prefix[96];
    size_t local_prefix_len;
    struct bus_hooks hooks;
    struct bus_server_hooks server_hooks;
    void (*map_changed)(struct bus *bus); /* bus_topology.c's slot map changed */
    void (*wake)(void *);
    void *wake_arg;
    pthread_t thread;
    /* bus thread only */
    struct event_base *base;
    struct event *wake_ev, *watchdog_ev, *refresh_ev;
    bool closing;
    struct bus_server *servers[BUS_SERVERS_MAX];
    int server_count;
    int data_count;              /* plain mode: servers [0, data_count) are the instances */
    struct slot_map *map;        /* cluster */
    bool refresh_inflight;
    int64_t refreshed_ns;
    int sentinel_next;           /* sentinel: the next Sentinel to ask */
    int sentinel_data;           /* sentinel: index of the data server, -1 until resolved */
    bool resolving;
    int64_t resolved_ns;         /* sentinel: when a Sentinel was last asked */
    struct strmap channels;      /* channel name → struct bus_channel */
    bool channels_retry;         /* a wanted channel waits for a server: retry each second */
    /* per server, channels with a (S)(UN)SUBSCRIBE outstanding, oldest first (errors carry no
     * channel name) */
    struct bus_pending *pending_head[BUS_SERVERS_MAX], *pending_tail[BUS_SERVERS_MAX];
    struct bus_cmd *parked;      /* commands waiting to be sent again (bus_exec.c; bounded) */
    struct event *retry_ev;      /* sends the parked commands again */
    uint64_t rng;
};

/* bus.c */
int64_t bus_now_ns(void);
struct frame *bus_message_frame(struct bus *bus, uint64_t offset, const char *sender,
                                size_t sender_len, const char *json, size_t len);
void bus_complete(struct bus *bus, struct bus_cmd *cmd, enum bus_status st, redisReply *reply);
/* Completes with BUS_OK and the two strings {a, b} (what the publish script returns). */
void bus_complete_pair(struct bus *bus, struct bus_cmd *cmd, const char *a, const char *b);
void bus_push(struct bus *bus, struct bus_push *p);
void bus_emit_ready(struct bus *bus);
void bus_cmd_free(struct bus_cmd *cmd);
void bus_publish_snapshot(struct bus *bus);

/* bus_server.c */
struct bus_server *bus_server_add(struct bus *bus, const char *host, int port, int db,
                                  enum bus_role role);
void bus_server_connect(struct bus_server *s);
void bus_server_connect_later(struct bus_server *s); /* after its backoff */
void bus_server_drop(struct bus_server *s, const char *why);
bool bus_server_ready(const struct bus_server *s);
void bus_servers_watchdog(struct bus *bus);
void bus_server_update_ready(struct bus_server *s);
void bus_server_load_scripts(struct bus_server *s);

/* bus_sconn.c: a subscriber connection; on_reply gets every reply (NULL: the connection is
 * gone, after which the sconn is freed by the caller). */
typedef void (*bus_sconn_reply_fn)(struct bus_server *s, redisReply *reply);
struct bus_sconn *bus_sconn_open(struct bus_server *s, bus_sconn_reply_fn on_reply,
                                 void (*on_up)(struct bus_server *s));
int bus_sconn_command(struct bus_sconn *c, int argc, const char **argv, const size_t *lens);
void bus_sconn_close(struct bus_sconn *c);

/* bus_channels.c */
void bus_channels_want(struct bus *bus, const char *name, bool user, bool want);
void bus_channels_on_reply(struct bus_server *s, redisReply *reply);
void bus_channels_server_up(struct bus_server *s);
void bus_channels_server_lost(struct bus_server *s);
void bus_channels_reconcile_all(struct bus *bus);
/* Reconciles again only if a wanted channel is still waiting for its server. */
void bus_channels_retry(struct bus *bus);
void bus_channels_free(struct bus *bus);

/* bus_topology.c */
int bus_topology_start(struct bus *bus);
/* The server for key, or NULL when none is ready for it now. */
struct bus_server *bus_route(struct bus *bus, const char *key, bool user);
void bus_topology_refresh(struct bus *bus, const char *why);
void bus_topology_moved(struct bus *bus, unsigned slot, const char *host, int port);
struct bus_server *bus_topology_server_at(struct bus *bus, const char *host, int port);
void bus_topology_server_lost(struct bus_server *s);
void bus_topology_server_ready(struct bus_server *s);
void bus_topology_update_ready(struct bus *bus);
bool bus_topology_sharded(const struct bus *bus); /* SSUBSCRIBE/SPUBLISH */
void bus_topology_tick(struct bus *bus);          /* the watchdog's second */

/* bus_scripts.c */
const char *bus_script_text(enum bus_script script);

/* bus_exec.c */
void bus_exec(struct bus *bus, struct bus_cmd *cmd);

#endif
