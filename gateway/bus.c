/*
 * bus — Redis on its own thread; see bus.h for the threading contract.
 *
 * Ownership: everything in struct bus below the queue lock belongs to the bus thread alone
 * (contexts, channel table, timers, script SHAs). The two queues are the only shared state and
 * are touched under `lock`. `ready` and `reconnects` are atomics read by the other thread.
 *
 * Connections: hiredis 0.14 has no reconnect; a failed connect calls the connect callback with
 * an error and frees the context, a lost one calls the disconnect callback. Either way we drop
 * the pointer and arm one reconnect timer with capped exponential backoff (100 ms → 2 s).
 *
 * Channel table: room → {want, state}. SUBSCRIBE is sent only from state IDLE, UNSUBSCRIBE only
 * from SUBSCRIBED; a reply moves the state and then the table reconciles with `want`. This is
 * what keeps hiredis's channel-callback dict consistent when a room is left and re-joined while
 * replies are in flight.
 */
#include "bus.h"

#include "log.h"
#include "redis_scripts.h"
#include "strmap.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define BUS_BACKOFF_MIN_MS 100
#define BUS_BACKOFF_MAX_MS 2000
/* hiredis 0.14 has no command timeout: a PING every second, and a Redis that has not answered
 * one for this long is treated as down (both connections are dropped and re-made). */
#define BUS_WATCHDOG_INTERVAL_MS 1000
#define BUS_WATCHDOG_LIMIT_MS 3000

enum channel_state { CHANNEL_IDLE, CHANNEL_SUBSCRIBING, CHANNEL_SUBSCRIBED, CHANNEL_UNSUBSCRIBING };

struct channel {
    bool want;
    enum channel_state state;
};

struct bus {
    /* shared, under lock */
    pthread_mutex_t lock;
    struct bus_cmd *cmd_head, *cmd_tail;
    struct bus_event *ev_head, *ev_tail;
    bool stopping;
    /* read from any thread */
    atomic_bool ready;
    atomic_uint_fast64_t reconnects;
    /* constant after start */
    const struct gateway_config *cfg;
    size_t headroom;
    int shard; /* index of this bus's instance in cfg->redis */
    char local_prefix[96];
    size_t local_prefix_len;
    bus_wake_fn wake;
    void *wake_arg;
    pthread_t thread;
    /* bus thread only */
    struct event_base *base;
    struct event *wake_ev;
    struct event *reconnect_ev;
    struct event *watchdog_ev;
    int64_t ping_sent_ns; /* 0: no PING outstanding */
    int backoff_ms;
    redisAsyncContext *cmd_ctx, *sub_ctx;
    bool cmd_up, sub_up, ever_ready;
    bool closing; /* bus-thread copy of `stopping`, set when the stop request is seen */
    char publish_sha[41], sync_sha[41];
    struct strmap channels;
    uint64_t rng;
    char key_prefix[40];
};

static int64_t bus_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- queues (any thread) ---- */

struct bus_cmd *bus_cmd_new(enum bus_cmd_type type, const char *room)
{
    struct bus_cmd *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->type = type;
    if (room)
        snprintf(c->room, sizeof(c->room), "%s", room);
    return c;
}

struct bus_cmd *bus_script_new(const char *script, int nkeys, int n, const char *const *argv)
{
    struct bus_cmd *c = bus_cmd_new(BUS_CMD_SCRIPT, NULL);
    if (!c)
        return NULL;
    c->script = script;
    c->nkeys = nkeys;
    c->argv = calloc((size_t)n, sizeof(*c->argv));
    if (!c->argv) {
        free(c);
        return NULL;
    }
    for (; c->argc < n; c->argc++) {
        if (!(c->argv[c->argc] = strdup(argv[c->argc]))) {
            for (int i = 0; i < c->argc; i++)
                free(c->argv[i]);
            free(c->argv);
            free(c);
            return NULL;
        }
    }
    return c;
}

static void bus_cmd_free(struct bus_cmd *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->id_json);
    free(c->head);
    free(c->tail);
    free(c);
}

void bus_cmd_discard(struct bus_cmd *cmd)
{
    bus_cmd_free(cmd);
}

void bus_event_free(struct bus_event *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->nstrings; i++)
        free(ev->strings[i]);
    free(ev->strings);
    for (size_t i = 0; i < ev->count; i++)
        frame_unref(ev->frames[i]);
    free(ev->frames);
    frame_unref(ev->frame);
    free(ev->id_json);
    free(ev);
}

void bus_submit(struct bus *bus, struct bus_cmd *cmd)
{
    cmd->next = NULL;
    pthread_mutex_lock(&bus->lock);
    bool was_empty = bus->cmd_head == NULL;
    if (bus->cmd_tail)
        bus->cmd_tail->next = cmd;
    else
        bus->cmd_head = cmd;
    bus->cmd_tail = cmd;
    pthread_mutex_unlock(&bus->lock);
    /* Wake only on empty → non-empty: the bus drains the whole queue per wake-up. */
    if (was_empty)
        event_active(bus->wake_ev, EV_READ, 0);
}

struct bus_event *bus_take_events(struct bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    struct bus_event *list = bus->ev_head;
    bus->ev_head = bus->ev_tail = NULL;
    pthread_mutex_unlock(&bus->lock);
    return list;
}

/* Queues an event for the connection thread (bus thread only). */
static void bus_emit(struct bus *bus, struct bus_event *ev)
{
    ev->next = NULL;
    ev->shard = bus->shard;
    pthread_mutex_lock(&bus->lock);
    bool was_empty = bus->ev_head == NULL;
    if (bus->ev_tail)
        bus->ev_tail->next = ev;
    else
        bus->ev_head = ev;
    bus->ev_tail = ev;
    pthread_mutex_unlock(&bus->lock);
    if (was_empty)
        bus->wake(bus->wake_arg);
}

static struct bus_event *bus_event_new(enum bus_event_type type, const char *room)
{
    struct bus_event *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return NULL;
    ev->type = type;
    if (room)
        snprintf(ev->room, sizeof(ev->room), "%s", room);
    return ev;
}

bool bus_ready(const struct bus *bus)
{
    return bus && atomic_load(&bus->ready);
}

uint64_t bus_reconnects(const struct bus *bus)
{
    return bus ? atomic_load(&bus->reconnects) : 0;
}

/* ---- helpers (bus thread) ---- */

/* A fresh epoch candidate: 64 random bits as 16 hex digits (xorshift seeded from getrandom). */
static void bus_candidate_epoch(struct bus *bus, char out[17])
{
    uint64_t x = bus->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bus->rng = x;
    snprintf(out, 17, "%016" PRIx64, x);
}

static void bus_room_key(const struct bus *bus, char *out, size_t len, const char *room,
                         const char *suffix)
{
    snprintf(out, len, "%s{%s}:%s", bus->key_prefix, room, suffix);
}

/* Channel names. Room R: "<prefix>{R}:ch"; user U: "<prefix>u:{U}:ch". Room names cannot
 * contain braces, so the two forms never collide. */
static void bus_channel_name(const struct bus *bus, char *out, size_t len, bool user,
                             const char *name)
{
    if (user)
        snprintf(out, len, "%su:{%s}:ch", bus->key_prefix, name);
    else
        snprintf(out, len, "%s{%s}:ch", bus->key_prefix, name);
}

/* Splits a channel of ours into its kind and name; false for anything else. */
static bool bus_channel_parse(const struct bus *bus, const char *ch, size_t len, bool *user,
                              char *name)
{
    size_t plen = strlen(bus->key_prefix);
    if (len < plen + 5 || memcmp(ch, bus->key_prefix, plen) != 0 ||
        memcmp(ch + len - 4, "}:ch", 4) != 0)
        return false;
    size_t skip = 0;
    if (ch[plen] == '{')
        skip = 1, *user = false;
    else if (len > plen + 7 && memcmp(ch + plen, "u:{", 3) == 0)
        skip = 3, *user = true;
    else
        return false;
    size_t nlen = len - plen - skip - 4;
    if (nlen == 0 || nlen > BUS_NAME_MAX)
        return false;
    memcpy(name, ch + plen + skip, nlen);
    name[nlen] = '\0';
    return true;
}

static void bus_update_ready(struct bus *bus)
{
    bool now = bus->cmd_up && bus->sub_up && bus->publish_sha[0] && bus->sync_sha[0];
    bool before = atomic_exchange(&bus->ready, now);
    if (now && !before) {
        bus->backoff_ms = BUS_BACKOFF_MIN_MS;
        log_event(CONFIG_LOG_INFO, "redis_ready", NULL);
        bus->ever_ready = true;
        struct bus_event *ev = bus_event_new(BUS_EV_READY, NULL);
        if (ev)
            bus_emit(bus, ev);
    }
}

static void bus_schedule_reconnect(struct bus *bus)
{
    if (bus->closing || evtimer_pending(bus->reconnect_ev, NULL))
        return;
    struct timeval tv = {bus->backoff_ms / 1000, (bus->backoff_ms % 1000) * 1000};
    evtimer_add(bus->reconnect_ev, &tv);
    bus->backoff_ms = bus->backoff_ms * 2 > BUS_BACKOFF_MAX_MS ? BUS_BACKOFF_MAX_MS
                                                               : bus->backoff_ms * 2;
}

/* ---- subscriptions ---- */

static void bus_on_sub_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Sends SUBSCRIBE/UNSUBSCRIBE so the channel moves towards `want`; drops settled idle entries. */
static void bus_reconcile_channel(struct bus *bus, const char *key, struct channel *ch)
{
    if (bus->sub_ctx && bus->sub_up) {
        if (ch->want && ch->state == CHANNEL_IDLE) {
            if (redisAsyncCommand(bus->sub_ctx, bus_on_sub_reply, NULL, "SUBSCRIBE %s", key) ==
                REDIS_OK)
                ch->state = CHANNEL_SUBSCRIBING;
        } else if (!ch->want && ch->state == CHANNEL_SUBSCRIBED) {
            if (redisAsyncCommand(bus->sub_ctx, bus_on_sub_reply, NULL, "UNSUBSCRIBE %s",
                                  key) == REDIS_OK)
                ch->state = CHANNEL_UNSUBSCRIBING;
        }
    }
    if (!ch->want && ch->state == CHANNEL_IDLE) {
        strmap_remove(&bus->channels, key);
        free(ch);
    }
}

static void bus_emit_subscribed(struct bus *bus, const char *room)
{
    struct bus_event *ev = bus_event_new(BUS_EV_SUBSCRIBED, room);
    if (ev)
        bus_emit(bus, ev);
}

/* A message frame for room delivery: payload copy with headroom, offset and the sender's
 * serial when the sender is one of this node's connections (0 otherwise). */
static struct frame *bus_message_frame(struct bus *bus, uint64_t offset, const char *sender,
                                       size_t sender_len, const char *json, size_t len)
{
    struct frame *f = frame_new(bus->headroom, json, len);
    if (!f)
        return NULL;
    f->offset = offset;
    if (sender_len > bus->local_prefix_len &&
        memcmp(sender, bus->local_prefix, bus->local_prefix_len) == 0)
        f->sender_serial = strtoull(sender + bus->local_prefix_len, NULL, 10);
    return f;
}

/* Parses "<epoch> <offset> <sender> <json>" and hands a MESSAGE (room channel) or DIRECT
 * (user channel) event over. Offset 0 marks an ephemeral frame (typing, direct). */
static void bus_on_message(struct bus *bus, bool user, const char *room, const char *p,
                           size_t len)
{
    const char *end = p + len;
    const char *sp1 = memchr(p, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    const char *sp3 = sp2 ? memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1)) : NULL;
    if (!sp3 || sp1 - p > PROTO_EPOCH_MAX || sp3 - sp2 - 1 >= (long)sizeof(((struct bus_event *)0)->sender)) {
        log_event(CONFIG_LOG_WARN, "redis_bad_message", "room", room, NULL);
        return;
    }
    struct bus_event *ev = bus_event_new(user ? BUS_EV_DIRECT : BUS_EV_MESSAGE, room);
    if (!ev)
        return;
    ev->t_submit_ns = bus_now_ns();
    memcpy(ev->epoch, p, (size_t)(sp1 - p));
    ev->offset = strtoull(sp1 + 1, NULL, 10);
    memcpy(ev->sender, sp2 + 1, (size_t)(sp3 - sp2 - 1));
    const char *json = sp3 + 1;
    ev->frame = bus_message_frame(bus, ev->offset, sp2 + 1, (size_t)(sp3 - sp2 - 1), json,
                                  (size_t)(end - json));
    if (!ev->frame) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "bus_on_message", NULL);
        free(ev);
        return;
    }
    bus_emit(bus, ev);
}

static void bus_on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct bus *bus = ac->data;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    const char *channel = reply->element[1]->str;
    char name[BUS_NAME_MAX + 1];
    bool user = false;
    if (!bus_channel_parse(bus, channel, reply->element[1]->len, &user, name))
        return;
    if (strcmp(kind, "message") == 0) {
        if (reply->element[2]->type == REDIS_REPLY_STRING)
            bus_on_message(bus, user, name, reply->element[2]->str, reply->element[2]->len);
        return;
    }
    struct channel *ch = strmap_get(&bus->channels, channel);
    if (!ch)
        return;
    if (strcmp(kind, "subscribe") == 0 && ch->state == CHANNEL_SUBSCRIBING) {
        ch->state = CHANNEL_SUBSCRIBED;
        if (ch->want && !user)
            bus_emit_subscribed(bus, name);
    } else if (strcmp(kind, "unsubscribe") == 0 && ch->state == CHANNEL_UNSUBSCRIBING) {
        ch->state = CHANNEL_IDLE;
    }
    bus_reconcile_channel(bus, channel, ch);
}

static void bus_cmd_subscribe(struct bus *bus, bool user, const char *name, bool want)
{
    char key[BUS_CHANNEL_MAX];
    bus_channel_name(bus, key, sizeof(key), user, name);
    struct channel *ch = strmap_get(&bus->channels, key);
    if (!ch) {
        if (!want)
            return;
        ch = calloc(1, sizeof(*ch));
        if (!ch || strmap_put(&bus->channels, key, ch) != 0) {
            free(ch);
            log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "bus_subscribe", "channel", key,
                      NULL);
            return;
        }
    }
    ch->want = want;
    /* Already subscribed (a re-join before the UNSUBSCRIBE went out): confirm at once. */
    if (want && !user && ch->state == CHANNEL_SUBSCRIBED)
        bus_emit_subscribed(bus, name);
    bus_reconcile_channel(bus, key, ch);
}

/* After a (re)connect of the subscriber: every wanted channel goes out again. */
static void bus_resubscribe_one(const char *room, void *value, void *arg)
{
    struct channel *ch = value;
    (void)room;
    (void)arg;
    ch->state = CHANNEL_IDLE;
}

struct room_list {
    char (*names)[BUS_CHANNEL_MAX];
    size_t n, cap;
};

static void bus_collect_room(const char *room, void *value, void *arg)
{
    (void)value;
    struct room_list *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        void *nn = realloc(l->names, ncap * sizeof(*l->names));
        if (!nn)
            return;
        l->names = nn;
        l->cap = ncap;
    }
    snprintf(l->names[l->n++], BUS_CHANNEL_MAX, "%s", room);
}

/* Re-sends SUBSCRIBE for every wanted channel; unwanted entries are dropped. */
static void bus_resubscribe_all(struct bus *bus)
{
    strmap_each(&bus->channels, bus_resubscribe_one, NULL);
    struct room_list l = {0};
    strmap_each(&bus->channels, bus_collect_room, &l);
    for (size_t i = 0; i < l.n; i++) {
        struct channel *ch = strmap_get(&bus->channels, l.names[i]);
        if (ch)
            bus_reconcile_channel(bus, l.names[i], ch);
    }
    free(l.names);
}

/* ---- scripts and commands ---- */

static void bus_on_script_loaded(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus *bus = ac->data;
    redisReply *reply = r;
    char *dst = privdata;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(dst, reply->str, 40);
        dst[40] = '\0';
        bus_update_ready(bus);
    } else {
        log_event(CONFIG_LOG_WARN, "redis_script_load_failed",
                  "error", reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply",
                  NULL);
        /* E.g. LOADING right after a restart: drop the connection and let the reconnect
         * backoff try again, rather than stay connected and never ready. */
        if (reply && bus->cmd_ctx == ac && !bus->closing)
            redisAsyncDisconnect(ac);
    }
}

static void bus_load_scripts(struct bus *bus)
{
    bus->publish_sha[0] = bus->sync_sha[0] = '\0';
    redisAsyncCommand(bus->cmd_ctx, bus_on_script_loaded, bus->publish_sha, "SCRIPT LOAD %s",
                      REDIS_SCRIPT_PUBLISH);
    redisAsyncCommand(bus->cmd_ctx, bus_on_script_loaded, bus->sync_sha, "SCRIPT LOAD %s",
                      REDIS_SCRIPT_SYNC);
}

static void bus_fail_cmd(struct bus *bus, struct bus_cmd *cmd);
static void bus_script_done(struct bus *bus, struct bus_cmd *cmd, redisReply *reply);

/* Reads {offset, epoch} from a script reply; false on any other shape. */
static bool bus_parse_offset_epoch(redisReply *reply, uint64_t *offset, char *epoch)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_STRING || reply->element[1]->len == 0 ||
        reply->element[1]->len > PROTO_EPOCH_MAX || reply->element[0]->integer < 0)
        return false;
    *offset = (uint64_t)reply->element[0]->integer;
    memcpy(epoch, reply->element[1]->str, reply->element[1]->len);
    epoch[reply->element[1]->len] = '\0';
    return true;
}

/* A script failed with NOSCRIPT (Redis restarted or SCRIPT FLUSH): reload for the next ones. */
static void bus_check_noscript(struct bus *bus, redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        bus->cmd_ctx && bus->cmd_up) {
        atomic_store(&bus->ready, false);
        bus_load_scripts(bus);
    }
}

static void bus_on_publish_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus *bus = ac->data;
    struct bus_cmd *cmd = privdata;
    redisReply *reply = r;
    struct bus_event *ev = bus_event_new(BUS_EV_PUBLISHED, cmd->room);
    if (ev) {
        ev->direct = cmd->type == BUS_CMD_DIRECT;
        ev->api = cmd->api;
        if (ev->direct)
            ev->status = reply && reply->type == REDIS_REPLY_INTEGER ? 0 : -1;
        else
            ev->status = bus_parse_offset_epoch(reply, &ev->offset, ev->epoch) ? 0 : -1;
        ev->owner = cmd->owner;
        ev->id_json = cmd->id_json;
        cmd->id_json = NULL;
        ev->ts_ms = cmd->ts_ms;
        ev->t_submit_ns = cmd->t_submit_ns;
        if (ev->status != 0)
            log_event(CONFIG_LOG_WARN, "redis_publish_failed", "room", cmd->room, "error",
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply",
                      NULL);
        bus_emit(bus, ev);
    }
    bus_check_noscript(bus, reply);
    bus_cmd_free(cmd);
}

static void bus_on_sync_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus *bus = ac->data;
    struct bus_cmd *cmd = privdata;
    redisReply *reply = r;
    struct bus_event *ev = bus_event_new(BUS_EV_SYNCED, cmd->room);
    if (ev) {
        ev->status = bus_parse_offset_epoch(reply, &ev->offset, ev->epoch) ? 0 : -1;
        ev->generation = cmd->generation;
        bus_emit(bus, ev);
    }
    bus_check_noscript(bus, reply);
    bus_cmd_free(cmd);
}

/* Looks up a field's value in a stream entry's [field, value, ...] array. */
static const redisReply *bus_entry_field(const redisReply *fields, const char *name)
{
    if (fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    return NULL;
}

/* XRANGE reply → FETCHED event with one frame per stored message, in offset order. */
static void bus_on_fetch_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus *bus = ac->data;
    struct bus_cmd *cmd = privdata;
    redisReply *reply = r;
    struct bus_event *ev = bus_event_new(BUS_EV_FETCHED, cmd->room);
    if (!ev) {
        bus_cmd_free(cmd);
        return;
    }
    ev->generation = cmd->generation;
    ev->owner = cmd->owner;
    ev->id_json = cmd->id_json;
    cmd->id_json = NULL;
    ev->from = cmd->from;
    ev->to = cmd->to;
    ev->purpose = cmd->purpose;
    ev->tag = cmd->tag;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        ev->status = -1;
    } else if (reply->elements) {
        ev->frames = calloc(reply->elements, sizeof(*ev->frames));
        if (!ev->frames)
            ev->status = -1;
        for (size_t i = 0; ev->frames && i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            const redisReply *m = bus_entry_field(e->element[1], "m");
            const redisReply *snd = bus_entry_field(e->element[1], "s");
            if (!m)
                continue;
            struct frame *f = bus_message_frame(bus, strtoull(e->element[0]->str, NULL, 10),
                                                snd ? snd->str : "", snd ? snd->len : 0, m->str,
                                                m->len);
            if (!f) {
                ev->status = -1;
                break;
            }
            ev->frames[ev->count++] = f;
        }
        if (cmd->newest) {
            for (size_t i = 0; i < ev->count / 2; i++) {
                struct frame *t = ev->frames[i];
                ev->frames[i] = ev->frames[ev->count - 1 - i];
                ev->frames[ev->count - 1 - i] = t;
            }
        }
    }
    bus_emit(bus, ev);
    bus_cmd_free(cmd);
}

static void bus_run_fetch(struct bus *bus, struct bus_cmd *cmd)
{
    char logk[BUS_CHANNEL_MAX], from[32], to[32], count[16];
    bus_room_key(bus, logk, sizeof(logk), cmd->room, "log");
    snprintf(from, sizeof(from), "%" PRIu64 "-0", cmd->from);
    if (cmd->to == UINT64_MAX)
        snprintf(to, sizeof(to), "+");
    else
        snprintf(to, sizeof(to), "%" PRIu64 "-0", cmd->to);
    int rc;
    if (cmd->newest) {
        /* The newest N of the range: XREVRANGE, put back in offset order by the reply. */
        snprintf(count, sizeof(count), "%u", cmd->newest);
        rc = redisAsyncCommand(bus->cmd_ctx, bus_on_fetch_reply, cmd, "XREVRANGE %s %s %s COUNT %s",
                               logk, to, from, count);
    } else {
        rc = redisAsyncCommand(bus->cmd_ctx, bus_on_fetch_reply, cmd, "XRANGE %s %s %s", logk,
                               from, to);
    }
    if (rc != REDIS_OK)
        bus_fail_cmd(bus, cmd);
}

/* Answers a command that cannot reach Redis with a failed event (never silence). */
static void bus_fail_cmd(struct bus *bus, struct bus_cmd *cmd)
{
    if (cmd->type == BUS_CMD_SCRIPT && !cmd->purpose) {
        bus_cmd_free(cmd);
        return;
    }
    if (cmd->type == BUS_CMD_SCRIPT) {
        bus_script_done(bus, cmd, NULL);
        return;
    }
    enum bus_event_type type =
        cmd->type == BUS_CMD_PUBLISH || cmd->type == BUS_CMD_DIRECT ? BUS_EV_PUBLISHED
        : cmd->type == BUS_CMD_FETCH                                ? BUS_EV_FETCHED
                                                                    : BUS_EV_SYNCED;
    struct bus_event *ev = bus_event_new(type, cmd->room);
    if (ev) {
        ev->status = -1;
        ev->direct = cmd->type == BUS_CMD_DIRECT;
        ev->api = cmd->api;
        ev->from = cmd->from;
        ev->to = cmd->to;
        ev->purpose = cmd->purpose;
        ev->tag = cmd->tag;
        ev->generation = cmd->generation;
        ev->owner = cmd->owner;
        ev->id_json = cmd->id_json;
        cmd->id_json = NULL;
        ev->ts_ms = cmd->ts_ms;
        bus_emit(bus, ev);
    }
    bus_cmd_free(cmd);
}

static void bus_run_publish(struct bus *bus, struct bus_cmd *cmd)
{
    char seq[BUS_CHANNEL_MAX], logk[BUS_CHANNEL_MAX], epochk[BUS_CHANNEL_MAX], chk[BUS_CHANNEL_MAX];
    char cand[17], maxlen[16], ttl[16];
    bus_room_key(bus, seq, sizeof(seq), cmd->room, "seq");
    bus_room_key(bus, logk, sizeof(logk), cmd->room, "log");
    bus_room_key(bus, epochk, sizeof(epochk), cmd->room, "epoch");
    bus_room_key(bus, chk, sizeof(chk), cmd->room, "ch");
    bus_candidate_epoch(bus, cand);
    snprintf(maxlen, sizeof(maxlen), "%d", bus->cfg->history_size);
    snprintf(ttl, sizeof(ttl), "%d", bus->cfg->history_ttl_s);
    const char *argv[] = {"EVALSHA", bus->publish_sha, "4", seq, logk, epochk, chk,
                          cmd->head, cmd->tail, cmd->sender, cand, maxlen, ttl};
    size_t lens[13];
    for (int i = 0; i < 13; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(bus->cmd_ctx, bus_on_publish_reply, cmd, 13, argv, lens) !=
        REDIS_OK)
        bus_fail_cmd(bus, cmd);
}

static void bus_run_sync(struct bus *bus, struct bus_cmd *cmd)
{
    char seq[BUS_CHANNEL_MAX], logk[BUS_CHANNEL_MAX], epochk[BUS_CHANNEL_MAX], cand[17];
    bus_room_key(bus, seq, sizeof(seq), cmd->room, "seq");
    bus_room_key(bus, logk, sizeof(logk), cmd->room, "log");
    bus_room_key(bus, epochk, sizeof(epochk), cmd->room, "epoch");
    bus_candidate_epoch(bus, cand);
    if (redisAsyncCommand(bus->cmd_ctx, bus_on_sync_reply, cmd, "EVALSHA %s 3 %s %s %s %s",
                          bus->sync_sha, seq, logk, epochk, cand) != REDIS_OK)
        bus_fail_cmd(bus, cmd);
}

/* A script's reply: an array of strings/integers becomes strings[]; anything else but an
 * error is an empty success. */
static void bus_script_done(struct bus *bus, struct bus_cmd *cmd, redisReply *reply)
{
    if (cmd->purpose) {
        struct bus_event *ev = bus_event_new(BUS_EV_SCRIPT, cmd->room);
        if (ev) {
            ev->purpose = cmd->purpose;
            ev->owner = cmd->owner;
            ev->id_json = cmd->id_json;
            cmd->id_json = NULL;
            ev->status = !reply || reply->type == REDIS_REPLY_ERROR ? -1 : 0;
            if (ev->status == 0 && reply->type == REDIS_REPLY_ARRAY && reply->elements) {
                ev->strings = calloc(reply->elements, sizeof(*ev->strings));
                for (size_t i = 0; ev->strings && i < reply->elements; i++) {
                    const redisReply *e = reply->element[i];
                    char num[24];
                    if (e->type == REDIS_REPLY_INTEGER)
                        snprintf(num, sizeof(num), "%lld", e->integer);
                    const char *v = e->type == REDIS_REPLY_STRING   ? e->str
                                    : e->type == REDIS_REPLY_INTEGER ? num
                                                                     : "";
                    if (!(ev->strings[ev->nstrings] = strdup(v)))
                        break;
                    ev->nstrings++;
                }
                if (!ev->strings || ev->nstrings != reply->elements)
                    ev->status = -1;
            }
            bus_emit(bus, ev);
        }
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_event(CONFIG_LOG_WARN, "redis_script_failed", "error", reply->str, NULL);
    bus_cmd_free(cmd);
}

static void bus_on_script_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    bus_script_done(ac->data, privdata, r);
}

static void bus_run_script(struct bus *bus, struct bus_cmd *cmd)
{
    int n = cmd->argc + 3;
    const char **argv = calloc((size_t)n, sizeof(*argv));
    size_t *lens = calloc((size_t)n, sizeof(*lens));
    char nkeys[16];
    snprintf(nkeys, sizeof(nkeys), "%d", cmd->nkeys);
    if (argv && lens) {
        argv[0] = "EVAL";
        argv[1] = cmd->script;
        argv[2] = nkeys;
        for (int i = 0; i < cmd->argc; i++)
            argv[i + 3] = cmd->argv[i];
        for (int i = 0; i < n; i++)
            lens[i] = strlen(argv[i]);
    }
    if (!argv || !lens ||
        redisAsyncCommandArgv(bus->cmd_ctx, bus_on_script_reply, cmd, n, argv, lens) != REDIS_OK)
        bus_fail_cmd(bus, cmd);
    free(argv);
    free(lens);
}

/* Ephemeral frames travel as "- 0 <sender> <json>": no offset, nothing stored. */
static int bus_ephemeral_payload(const struct bus_cmd *cmd, char **out, size_t *len)
{
    size_t n = strlen(cmd->sender) + strlen(cmd->head) + 5;
    *out = malloc(n + 1);
    if (!*out)
        return -1;
    *len = (size_t)snprintf(*out, n + 1, "- 0 %s %s", cmd->sender, cmd->head);
    return 0;
}

/* Typing (and a direct's copy to its sender's other connections): one PUBLISH on the room's
 * (or, with user_channel, the user's) channel, fire and forget: nothing is answered. */
static void bus_run_typing(struct bus *bus, struct bus_cmd *cmd)
{
    char ch[BUS_CHANNEL_MAX], *payload;
    size_t len;
    bus_channel_name(bus, ch, sizeof(ch), cmd->user_channel, cmd->room);
    if (bus_ephemeral_payload(cmd, &payload, &len) != 0)
        return;
    redisAsyncCommand(bus->cmd_ctx, NULL, NULL, "PUBLISH %s %b", ch, payload, len);
    free(payload);
}

/* Direct: PUBLISH to the target's user channel and, when it is another user, to the sender's
 * own (its other connections), in one script so both go or neither; answered as PUBLISHED. */
static void bus_run_direct(struct bus *bus, struct bus_cmd *cmd)
{
    char to[BUS_CHANNEL_MAX], self[BUS_CHANNEL_MAX], *payload;
    size_t len;
    bus_channel_name(bus, to, sizeof(to), true, cmd->room);
    bus_channel_name(bus, self, sizeof(self), true, cmd->tail);
    if (bus_ephemeral_payload(cmd, &payload, &len) != 0) {
        bus_fail_cmd(bus, cmd);
        return;
    }
    int same = strcmp(to, self) == 0;
    const char *argv[] = {"EVAL", REDIS_SCRIPT_DIRECT, same ? "1" : "2", to, self, payload};
    size_t lens[] = {4, strlen(REDIS_SCRIPT_DIRECT), 1, strlen(to), strlen(self), len};
    if (same) {
        argv[4] = payload;
        lens[4] = len;
    }
    if (redisAsyncCommandArgv(bus->cmd_ctx, bus_on_publish_reply, cmd, same ? 5 : 6, argv, lens) !=
        REDIS_OK)
        bus_fail_cmd(bus, cmd);
    free(payload);
}

static void bus_dispatch(struct bus *bus, struct bus_cmd *cmd)
{
    switch (cmd->type) {
    case BUS_CMD_SUBSCRIBE:
    case BUS_CMD_UNSUBSCRIBE:
        bus_cmd_subscribe(bus, cmd->user_channel, cmd->room, cmd->type == BUS_CMD_SUBSCRIBE);
        bus_cmd_free(cmd);
        return;
    case BUS_CMD_TYPING:
        if (atomic_load(&bus->ready) && bus->cmd_ctx)
            bus_run_typing(bus, cmd);
        bus_cmd_free(cmd);
        return;
    case BUS_CMD_DIRECT:
        if (!atomic_load(&bus->ready) || !bus->cmd_ctx)
            bus_fail_cmd(bus, cmd);
        else
            bus_run_direct(bus, cmd);
        return;
    case BUS_CMD_SCRIPT:
        if (!atomic_load(&bus->ready) || !bus->cmd_ctx)
            bus_fail_cmd(bus, cmd);
        else
            bus_run_script(bus, cmd);
        return;
    case BUS_CMD_SYNC:
    case BUS_CMD_PUBLISH:
    case BUS_CMD_FETCH:
        if (!atomic_load(&bus->ready) || !bus->cmd_ctx) {
            bus_fail_cmd(bus, cmd);
            return;
        }
        if (cmd->type == BUS_CMD_PUBLISH)
            bus_run_publish(bus, cmd);
        else if (cmd->type == BUS_CMD_SYNC)
            bus_run_sync(bus, cmd);
        else
            bus_run_fetch(bus, cmd);
        return;
    }
    bus_cmd_free(cmd);
}

/* ---- connections ---- */

static void bus_connect(struct bus *bus);

static void bus_on_cmd_connect(const redisAsyncContext *ac, int status)
{
    struct bus *bus = ac->data;
    if (status != REDIS_OK) {
        log_event(CONFIG_LOG_WARN, "redis_connect_failed", "conn", "cmd", "error", ac->errstr,
                  NULL);
        bus->cmd_ctx = NULL; /* hiredis frees it */
        bus_schedule_reconnect(bus);
        return;
    }
    bus->cmd_up = true;
    bus_load_scripts(bus);
}

static void bus_on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
    struct bus *bus = ac->data;
    if (status != REDIS_OK && !bus->closing)
        log_event(CONFIG_LOG_WARN, "redis_disconnected", "conn", "cmd", "error", ac->errstr,
                  NULL);
    bus->cmd_ctx = NULL;
    bus->cmd_up = false;
    bus->ping_sent_ns = 0;
    bus->publish_sha[0] = bus->sync_sha[0] = '\0';
    atomic_store(&bus->ready, false);
    bus_schedule_reconnect(bus);
}

static void bus_on_sub_connect(const redisAsyncContext *ac, int status)
{
    struct bus *bus = ac->data;
    if (status != REDIS_OK) {
        log_event(CONFIG_LOG_WARN, "redis_connect_failed", "conn", "sub", "error", ac->errstr,
                  NULL);
        bus->sub_ctx = NULL;
        bus_schedule_reconnect(bus);
        return;
    }
    bus->sub_up = true;
    bus_resubscribe_all(bus);
    bus_update_ready(bus);
}

static void bus_on_sub_disconnect(const redisAsyncContext *ac, int status)
{
    struct bus *bus = ac->data;
    if (status != REDIS_OK && !bus->closing)
        log_event(CONFIG_LOG_WARN, "redis_disconnected", "conn", "sub", "error", ac->errstr,
                  NULL);
    bus->sub_ctx = NULL;
    bus->sub_up = false;
    atomic_store(&bus->ready, false);
    strmap_each(&bus->channels, bus_resubscribe_one, NULL);
    if (!bus->closing) {
        struct bus_event *ev = bus_event_new(BUS_EV_SUB_LOST, NULL);
        if (ev)
            bus_emit(bus, ev);
    }
    bus_schedule_reconnect(bus);
}

static redisAsyncContext *bus_open(struct bus *bus, redisConnectCallback *on_connect,
                                   redisDisconnectCallback *on_disconnect)
{
    const struct redis_endpoint *ep = &bus->cfg->redis[bus->shard];
    redisAsyncContext *ac = redisAsyncConnect(ep->host, ep->port);
    if (!ac)
        return NULL;
    if (ac->err) {
        log_event(CONFIG_LOG_WARN, "redis_connect_failed", "error", ac->errstr, NULL);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = bus;
    redisLibeventAttach(ac, bus->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (ep->db != 0)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", ep->db);
    return ac;
}

/* Opens whichever connection is missing; a failure arms the reconnect timer. */
static void bus_connect(struct bus *bus)
{
    if (bus->closing)
        return;
    bool failed = false;
    if (!bus->cmd_ctx) {
        bus->cmd_ctx = bus_open(bus, bus_on_cmd_connect, bus_on_cmd_disconnect);
        failed |= bus->cmd_ctx == NULL;
    }
    if (!bus->sub_ctx) {
        bus->sub_ctx = bus_open(bus, bus_on_sub_connect, bus_on_sub_disconnect);
        failed |= bus->sub_ctx == NULL;
    }
    if (failed)
        bus_schedule_reconnect(bus);
}

static void bus_on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus *bus = arg;
    if (bus->ever_ready)
        atomic_fetch_add(&bus->reconnects, 1);
    bus_connect(bus);
}

static void bus_on_pong(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)r;
    (void)privdata;
    struct bus *bus = ac->data;
    bus->ping_sent_ns = 0;
}

/* Drops both connections of a Redis that stopped answering; their callbacks (failed publishes,
 * SUB_LOST, reconnect) run as for any other loss. */
static void bus_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus *bus = arg;
    int64_t now = bus_now_ns();
    if (bus->cmd_ctx && bus->cmd_up) {
        if (bus->ping_sent_ns && now - bus->ping_sent_ns > BUS_WATCHDOG_LIMIT_MS * 1000000ll) {
            log_event(CONFIG_LOG_WARN, "redis_unresponsive", NULL);
            bus->ping_sent_ns = 0;
            redisAsyncContext *cmd = bus->cmd_ctx, *sub = bus->sub_ctx;
            redisAsyncFree(cmd);
            if (sub && bus->sub_ctx == sub)
                redisAsyncFree(sub);
        } else if (!bus->ping_sent_ns &&
                   redisAsyncCommand(bus->cmd_ctx, bus_on_pong, NULL, "PING") == REDIS_OK) {
            bus->ping_sent_ns = now;
        }
    } else {
        bus->ping_sent_ns = 0;
    }
    struct timeval tv = {0, BUS_WATCHDOG_INTERVAL_MS * 1000};
    evtimer_add(bus->watchdog_ev, &tv);
}

/* Drains the command queue; on stop, closes Redis and leaves the loop. */
static void bus_on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus *bus = arg;
    pthread_mutex_lock(&bus->lock);
    struct bus_cmd *list = bus->cmd_head;
    bus->cmd_head = bus->cmd_tail = NULL;
    bool stopping = bus->stopping;
    pthread_mutex_unlock(&bus->lock);
    while (list) {
        struct bus_cmd *next = list->next;
        if (!stopping)
            bus_dispatch(bus, list);
        else if (list->type == BUS_CMD_PUBLISH || list->type == BUS_CMD_SYNC ||
                 list->type == BUS_CMD_FETCH || list->type == BUS_CMD_DIRECT ||
                 list->type == BUS_CMD_SCRIPT)
            bus_fail_cmd(bus, list); /* answered, so its session is released */
        else
            bus_cmd_free(list);
        list = next;
    }
    if (stopping) {
        bus->closing = true;
        if (bus->cmd_ctx)
            redisAsyncFree(bus->cmd_ctx);
        if (bus->sub_ctx)
            redisAsyncFree(bus->sub_ctx);
        bus->cmd_ctx = bus->sub_ctx = NULL;
        event_base_loopbreak(bus->base);
    }
}

static void *bus_thread_main(void *arg)
{
    struct bus *bus = arg;
    /* Signals go to the connection thread, whose poll must be the one interrupted. */
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    bus_connect(bus);
    struct timeval tv = {0, BUS_WATCHDOG_INTERVAL_MS * 1000};
    evtimer_add(bus->watchdog_ev, &tv);
    event_base_dispatch(bus->base);
    return NULL;
}

/* libevent must know about pthreads before the first event_base, for event_active() from the
 * connection thread to be safe. */
static void bus_enable_libevent_threads(void)
{
    evthread_use_pthreads();
}

struct bus *bus_start(const struct gateway_config *cfg, int shard, size_t frame_headroom,
                      const char *local_conn_prefix, bus_wake_fn wake, void *wake_arg)
{
    static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
    pthread_once(&evthread_once, bus_enable_libevent_threads);
    struct bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    pthread_mutex_init(&bus->lock, NULL);
    bus->cfg = cfg;
    bus->headroom = frame_headroom;
    bus->shard = shard;
    snprintf(bus->local_prefix, sizeof(bus->local_prefix), "%s", local_conn_prefix);
    bus->local_prefix_len = strlen(bus->local_prefix);
    bus->wake = wake;
    bus->wake_arg = wake_arg;
    bus->backoff_ms = BUS_BACKOFF_MIN_MS;
    snprintf(bus->key_prefix, sizeof(bus->key_prefix), "%s:", cfg->redis_prefix);
    if (getrandom(&bus->rng, sizeof(bus->rng), 0) != sizeof(bus->rng) || bus->rng == 0)
        bus->rng = (uint64_t)bus_now_ns() | 1;
    if (strmap_init(&bus->channels) != 0)
        goto fail;
    bus->base = event_base_new();
    if (!bus->base)
        goto fail;
    bus->wake_ev = event_new(bus->base, -1, 0, bus_on_wake, bus);
    bus->reconnect_ev = evtimer_new(bus->base, bus_on_reconnect_timer, bus);
    bus->watchdog_ev = evtimer_new(bus->base, bus_on_watchdog, bus);
    if (!bus->wake_ev || !bus->reconnect_ev || !bus->watchdog_ev)
        goto fail;
    if (pthread_create(&bus->thread, NULL, bus_thread_main, bus) != 0)
        goto fail;
    return bus;
fail:
    if (bus->watchdog_ev)
        event_free(bus->watchdog_ev);
    if (bus->wake_ev)
        event_free(bus->wake_ev);
    if (bus->reconnect_ev)
        event_free(bus->reconnect_ev);
    if (bus->base)
        event_base_free(bus->base);
    if (bus->channels.buckets)
        strmap_free(&bus->channels);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
    return NULL;
}

static void bus_free_channel(const char *room, void *value, void *arg)
{
    (void)room;
    (void)arg;
    free(value);
}

struct bus_event *bus_stop(struct bus *bus)
{
    if (!bus)
        return NULL;
    pthread_mutex_lock(&bus->lock);
    bus->stopping = true;
    pthread_mutex_unlock(&bus->lock);
    event_active(bus->wake_ev, EV_READ, 0);
    pthread_join(bus->thread, NULL);
    /* The thread is gone: what is left is ours alone. Commands still queued are answered as
     * failed, and every event goes back to the caller, so no session stays referenced. */
    struct bus_cmd *c = bus->cmd_head;
    bus->cmd_head = bus->cmd_tail = NULL;
    while (c) {
        struct bus_cmd *n = c->next;
        if (c->type == BUS_CMD_PUBLISH || c->type == BUS_CMD_SYNC || c->type == BUS_CMD_FETCH ||
            c->type == BUS_CMD_DIRECT || c->type == BUS_CMD_SCRIPT)
            bus_fail_cmd(bus, c);
        else
            bus_cmd_free(c);
        c = n;
    }
    struct bus_event *left = bus->ev_head;
    strmap_each(&bus->channels, bus_free_channel, NULL);
    strmap_free(&bus->channels);
    event_free(bus->wake_ev);
    event_free(bus->reconnect_ev);
    event_free(bus->watchdog_ev);
    event_base_free(bus->base);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
    return left;
}
