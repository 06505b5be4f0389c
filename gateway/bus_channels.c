/*
 * bus_channels — the channels this node wants, and where each is subscribed (bus thread).
 *
 * Table: channel name → {want, state, server}. (S)SUBSCRIBE is sent only from IDLE, to the
 * server the topology routes the channel's key to; (S)UNSUBSCRIBE only from SUBSCRIBED. A
 * reply moves the state, then the entry reconciles with `want`. Replies are matched by channel,
 * never by order: Redis Cluster pushes an unsolicited `sunsubscribe` when a slot moves or its
 * master fails over (redis #12558), and that push can race our own SUNSUBSCRIBE (valkey #1066).
 * An unsolicited one, or the subscriber connection's loss, makes the channel IDLE, reports
 * BUS_PUSH_LOST and asks the topology to refresh; the channel is re-subscribed where its key
 * now lives, which reports BUS_PUSH_SUBSCRIBED again, so the room reads back what it missed.
 * Errors come without a channel name, so each server keeps the FIFO of channels with a
 * command outstanding; an error answers the oldest (e.g. MOVED for an SSUBSCRIBE sent to the
 * old owner of a slot).
 *
 * Messages: "<epoch> <offset> <sender conn> <json>" become BUS_PUSH_MESSAGE with one frame
 * copied here (with LWS_PRE headroom), so the connection thread queues it without a copy.
 */
#include "bus_internal.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_pending {
    struct bus_pending *next;
    char channel[];
};

static void pending_push(struct bus *bus, int server, const char *channel)
{
    size_t n = strlen(channel) + 1;
    struct bus_pending *p = malloc(sizeof(*p) + n);
    if (!p)
        return;
    p->next = NULL;
    memcpy(p->channel, channel, n);
    if (bus->pending_tail[server])
        bus->pending_tail[server]->next = p;
    else
        bus->pending_head[server] = p;
    bus->pending_tail[server] = p;
}

/* Removes the first outstanding entry for channel (or the oldest when channel is NULL) and
 * returns it (caller frees), or NULL. */
static struct bus_pending *pending_take(struct bus *bus, int server, const char *channel)
{
    struct bus_pending *prev = NULL;
    for (struct bus_pending *p = bus->pending_head[server]; p; prev = p, p = p->next) {
        if (channel && strcmp(p->channel, channel) != 0)
            continue;
        if (prev)
            prev->next = p->next;
        else
            bus->pending_head[server] = p->next;
        if (bus->pending_tail[server] == p)
            bus->pending_tail[server] = prev;
        return p;
    }
    return NULL;
}

static void pending_clear(struct bus *bus, int server)
{
    for (struct bus_pending *p; (p = pending_take(bus, server, NULL));)
        free(p);
}

static void channel_name(const struct bus *bus, const char *name, bool user, char *out)
{
    if (user)
        redis_user_channel(&bus->names, name, out);
    else
        redis_room_channel(&bus->names, name, out);
}

static void channel_push(struct bus *bus, const struct bus_channel *ch, enum bus_push_kind kind)
{
    struct bus_push p = {.kind = kind, .user = ch->user};
    snprintf(p.name, sizeof(p.name), "%s", ch->name);
    bus_push(bus, &p);
}

static int channel_send(struct bus *bus, struct bus_server *s, const char *verb,
                        const char *channel)
{
    char cmd[16];
    snprintf(cmd, sizeof(cmd), "%s%s", bus_topology_sharded(bus) ? "S" : "", verb);
    const char *argv[] = {cmd, channel};
    size_t lens[] = {strlen(cmd), strlen(channel)};
    if (bus_sconn_command(s->sub, 2, argv, lens) != 0)
        return -1;
    pending_push(bus, s->index, channel);
    return 0;
}

/* Moves the channel towards `want`; frees settled idle entries (ch is then gone). */
static void channel_reconcile(struct bus *bus, const char *key, struct bus_channel *ch)
{
    if (ch->want && ch->state == CHANNEL_IDLE) {
        struct bus_server *s = bus_route(bus, ch->name, ch->user);
        if (s && s->sub_up && channel_send(bus, s, "SUBSCRIBE", key) == 0) {
            ch->state = CHANNEL_SUBSCRIBING;
            ch->server = s->index;
        } else {
            bus->channels_retry = true; /* the next watchdog pass tries again */
        }
    } else if (!ch->want && ch->state == CHANNEL_SUBSCRIBED) {
        struct bus_server *s = bus->servers[ch->server];
        if (s->sub_up && channel_send(bus, s, "UNSUBSCRIBE", key) == 0)
            ch->state = CHANNEL_UNSUBSCRIBING;
    }
    if (!ch->want && ch->state == CHANNEL_IDLE) {
        strmap_remove(&bus->channels, key);
        free(ch);
    }
}

void bus_channels_want(struct bus *bus, const char *name, bool user, bool want)
{
    char key[BUS_CHANNEL_MAX];
    channel_name(bus, name, user, key);
    struct bus_channel *ch = strmap_get(&bus->channels, key);
    if (!ch) {
        if (!want)
            return;
        ch = calloc(1, sizeof(*ch));
        if (!ch || strmap_put(&bus->channels, key, ch) != 0) {
            free(ch);
            log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "bus_channels_want", NULL);
            return;
        }
        ch->user = user;
        ch->server = -1;
        snprintf(ch->name, sizeof(ch->name), "%s", name);
    }
    ch->want = want;
    /* Already subscribed (a re-join before the UNSUBSCRIBE went out): confirm at once. */
    if (want && ch->state == CHANNEL_SUBSCRIBED)
        channel_push(bus, ch, BUS_PUSH_SUBSCRIBED);
    channel_reconcile(bus, key, ch);
}

/* "<epoch> <offset> <sender> <json>" on a room or user channel → MESSAGE push. */
static void channels_message(struct bus *bus, const struct bus_channel *ch, const char *p,
                             size_t len)
{
    const char *end = p + len;
    const char *sp1 = memchr(p, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    const char *sp3 = sp2 ? memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1)) : NULL;
    if (!sp3 || sp1 - p > PROTO_EPOCH_MAX) {
        log_event(CONFIG_LOG_WARN, "redis_bad_message", "channel", ch->name, NULL);
        return;
    }
    struct bus_push push = {.kind = BUS_PUSH_MESSAGE, .user = ch->user};
    snprintf(push.name, sizeof(push.name), "%s", ch->name);
    push.arrival_ns = bus_now_ns();
    memcpy(push.epoch, p, (size_t)(sp1 - p));
    push.offset = strtoull(sp1 + 1, NULL, 10);
    const char *json = sp3 + 1;
    push.frame = bus_message_frame(bus, push.offset, sp2 + 1, (size_t)(sp3 - sp2 - 1), json,
                                   (size_t)(end - json));
    if (!push.frame) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "bus_channels_message", NULL);
        return;
    }
    bus_push(bus, &push);
}

/* An error answered the oldest outstanding command of server s. */
static void channels_error(struct bus_server *s, const char *err)
{
    struct bus *bus = s->bus;
    struct bus_pending *p = pending_take(bus, s->index, NULL);
    if (!p)
        return;
    struct bus_channel *ch = strmap_get(&bus->channels, p->channel);
    unsigned slot;
    char host[SLOT_MAP_HOST_MAX + 1];
    int port;
    bool moved = slot_map_parse_redirect(err, &slot, host, sizeof(host), &port) == 1;
    if (moved) {
        atomic_fetch_add(&bus->moved, 1);
        bus_topology_moved(bus, slot, host, port);
    } else {
        log_event(CONFIG_LOG_WARN, "redis_subscribe_failed", "channel", p->channel, "error", err,
                  NULL);
        bus_topology_refresh(bus, "subscribe error");
    }
    if (ch && ch->server == s->index &&
        (ch->state == CHANNEL_SUBSCRIBING || ch->state == CHANNEL_UNSUBSCRIBING)) {
        /* Retried where the key lives now: at once after MOVED (the map changed); after any
         * other error by the next reconcile pass (map refresh, watchdog), never in a loop. */
        ch->state = CHANNEL_IDLE;
        ch->server = -1;
        if (moved)
            channel_reconcile(bus, p->channel, ch);
        else
            bus->channels_retry = true;
    }
    free(p);
}

void bus_channels_on_reply(struct bus_server *s, redisReply *r)
{
    struct bus *bus = s->bus;
    if (r->type == REDIS_REPLY_ERROR) {
        channels_error(s, r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (strcmp(kind, "ssubscribe") == 0 || strcmp(kind, "sunsubscribe") == 0 ||
        strcmp(kind, "smessage") == 0)
        kind++; /* sharded pub/sub: the same meaning */
    const char *key = r->element[1]->str;
    struct bus_channel *ch = strmap_get(&bus->channels, key);
    if (!ch)
        return;
    if (strcmp(kind, "message") == 0) {
        if (r->element[2]->type == REDIS_REPLY_STRING && ch->server == s->index)
            channels_message(bus, ch, r->element[2]->str, r->element[2]->len);
        return;
    }
    bool ours = false;
    struct bus_pending *p = pending_take(bus, s->index, key);
    if (p) {
        ours = true;
        free(p);
    }
    if (ch->server != s->index)
        return; /* a reply from a server the channel has since left */
    if (strcmp(kind, "subscribe") == 0 && ch->state == CHANNEL_SUBSCRIBING) {
        ch->state = CHANNEL_SUBSCRIBED;
        if (ch->want)
            channel_push(bus, ch, BUS_PUSH_SUBSCRIBED);
    } else if (strcmp(kind, "unsubscribe") == 0) {
        bool unsolicited = !ours || ch->state != CHANNEL_UNSUBSCRIBING;
        enum channel_state was = ch->state;
        ch->state = CHANNEL_IDLE;
        ch->server = -1;
        if (unsolicited && was == CHANNEL_SUBSCRIBED) {
            /* The slot moved or its master failed over: subscribe where it lives now. */
            if (ch->want)
                channel_push(bus, ch, BUS_PUSH_LOST);
            bus_topology_refresh(bus, "sunsubscribe");
        }
    }
    channel_reconcile(bus, key, ch);
}

struct channel_walk {
    struct bus *bus;
    int server; /* -1: every channel */
    bool lost;
    const char **keys;
    size_t n, cap;
};

static void channels_collect(const char *key, void *value, void *arg)
{
    struct channel_walk *w = arg;
    struct bus_channel *ch = value;
    if (w->server >= 0 && ch->server != w->server)
        return;
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        const char **nk = realloc(w->keys, ncap * sizeof(*nk));
        if (!nk)
            return;
        w->keys = nk;
        w->cap = ncap;
    }
    w->keys[w->n++] = key;
}

/* Runs the reconcile (after marking lost, for a server's loss) over a snapshot of the keys:
 * reconciling may remove entries, which a strmap walk must not see. */
static void channels_walk(struct bus *bus, int server, bool lost)
{
    struct channel_walk w = {.bus = bus, .server = server, .lost = lost};
    strmap_each(&bus->channels, channels_collect, &w);
    for (size_t i = 0; i < w.n; i++) {
        struct bus_channel *ch = strmap_get(&bus->channels, w.keys[i]);
        if (!ch)
            continue;
        if (lost) {
            bool was = ch->state == CHANNEL_SUBSCRIBED || ch->state == CHANNEL_SUBSCRIBING;
            ch->state = CHANNEL_IDLE;
            ch->server = -1;
            if (was && ch->want)
                channel_push(bus, ch, BUS_PUSH_LOST);
        }
        /* Keys may be freed by a reconcile: copy before. */
        char key[BUS_CHANNEL_MAX];
        snprintf(key, sizeof(key), "%s", w.keys[i]);
        channel_reconcile(bus, key, ch);
    }
    free(w.keys);
}

void bus_channels_server_up(struct bus_server *s)
{
    pending_clear(s->bus, s->index);
    channels_walk(s->bus, -1, false);
}

void bus_channels_server_lost(struct bus_server *s)
{
    pending_clear(s->bus, s->index);
    channels_walk(s->bus, s->index, true);
}

void bus_channels_retry(struct bus *bus)
{
    /* Only when a wanted channel could not be subscribed: a walk over every channel (one per
     * room and per local user) each second would cost a node with 20k users for nothing. */
    if (!bus->channels_retry)
        return;
    bus->channels_retry = false;
    channels_walk(bus, -1, false);
}

void bus_channels_reconcile_all(struct bus *bus)
{
    channels_walk(bus, -1, false);
}

static void channels_free_one(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    free(value);
}

void bus_channels_free(struct bus *bus)
{
    if (!bus->channels.buckets)
        return;
    strmap_each(&bus->channels, channels_free_one, NULL);
    strmap_free(&bus->channels);
    for (int i = 0; i < BUS_SERVERS_MAX; i++)
        pending_clear(bus, i);
}
