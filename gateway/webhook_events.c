/*
 * webhook_events — where events come from (PROTOCOL.md §9), each appended to its user's
 * partition stream by one atomic script (webhook_scripts.h).
 *
 * user.online / user.offline: Redis keeps per user the set of nodes holding it. A node does
 * not send "the user arrived / left" but "the user is / is not here now", computed from
 * gw->users when the command is built: the script is idempotent, so a command that failed
 * (Redis away) is simply sent again later with whatever is true then, and retries, reconnects
 * and quick reconnect-disconnect sequences all converge on the last local truth. Failed users
 * wait in a FIFO with a set for uniqueness (memory only while Redis is in trouble); the timer
 * drains a bounded number per tick. Nothing is written before this node's presence liveness
 * is registered (gw->presence.live), for the same reason as in presence.c: an entry must
 * never outlive a node the reaper cannot see.
 *
 * Dead nodes: the presence reaper's winner calls webhooks_node_dead; one script per partition
 * (repeated while users remain, WEBHOOK_DEAD_CHUNK at a time) removes the node from its users'
 * sets, appends user.offline for each it was the last node of, and frees the node's leases.
 * A script that finds Redis away is sent again by the timer once it is back (the presence
 * cleanup has its own retry and may well be done by then).
 *
 * direct.undelivered: the direct's own send script answers how many nodes hold the target;
 * webhooks_send_direct wraps its completion and appends the event when that is 0. The event
 * is appended after the send returns, so a node dying in between loses it (the direct itself
 * is at-most-once too); making it atomic would need the user channel and the stream on one
 * server, which Redis Cluster cannot promise.
 */
#include "webhook_internal.h"

#include "log.h"
#include "webhook_scripts.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEBHOOK_DEAD_CHUNK "500"
#define WEBHOOK_PENDING_PER_TICK 256

struct webhook_pending {
    struct webhook_pending *next;
    char user[];
};

static void events_count_dropped(struct webhooks *wh, const char *text)
{
    wh->gw->metrics.webhook_dropped += strtoull(text, NULL, 10);
}

/* {"type":type,"ts":now,"user":user}; NULL on allocation failure. */
static char *events_user_json(const char *type, const char *user)
{
    cJSON *o = cJSON_CreateObject();
    char *json = NULL;
    if (o && cJSON_AddStringToObject(o, "type", type) &&
        cJSON_AddNumberToObject(o, "ts", (double)gateway_now_ms()) &&
        cJSON_AddStringToObject(o, "user", user))
        json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

void webhook_pending_add(struct webhooks *wh, const char *user)
{
    if (strmap_get(&wh->pending_set, user))
        return;
    size_t len = strlen(user) + 1;
    struct webhook_pending *e = malloc(sizeof(*e) + len);
    if (!e || strmap_put(&wh->pending_set, user, e) != 0) {
        free(e);
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "webhook_pending_add", NULL);
        return;
    }
    memcpy(e->user, user, len);
    e->next = NULL;
    if (wh->pending_tail)
        wh->pending_tail->next = e;
    else
        wh->pending_head = e;
    wh->pending_tail = e;
}

static void events_on_user(void *arg, struct bus_reply *r)
{
    struct webhooks *wh = arg;
    if (r->status == BUS_UNAVAILABLE) {
        webhook_pending_add(wh, r->echo.name); /* sent again with the truth of that moment */
        return;
    }
    if (r->status != BUS_OK || r->nstrings != 2) {
        log_event(CONFIG_LOG_ERROR, "webhook_user_failed", "user", r->echo.name, "error",
                  r->error ? r->error : "reply not understood", NULL);
        return;
    }
    events_count_dropped(wh, r->strings[1]);
}

/* The user script for user's current state on this node. */
static struct bus_cmd *events_user_cmd(struct webhooks *wh, const char *user)
{
    struct gateway *gw = wh->gw;
    bool here = strmap_get(&gw->users, user) != NULL;
    unsigned p = webhook_partition_of(user);
    unsigned bit = here ? CONFIG_WEBHOOK_USER_ONLINE : CONFIG_WEBHOOK_USER_OFFLINE;
    char *json = gw->cfg->webhook_events & bit
                     ? events_user_json(here ? "user.online" : "user.offline", user)
                     : strdup("");
    char users[REDIS_NAME_MAX], nodes[REDIS_NAME_MAX], suffix[REDIS_NAME_MAX];
    snprintf(suffix, sizeof(suffix), "u:%s", user);
    webhook_key(wh, p, suffix, users);
    snprintf(suffix, sizeof(suffix), "node:%s", gw->presence.node);
    webhook_key(wh, p, suffix, nodes);
    const struct webhook_partition *part = &wh->parts[p];
    const char *argv[] = {users,
                          nodes,
                          part->stream,
                          part->channel,
                          here ? "add" : "rem",
                          gw->presence.node,
                          user,
                          json ? json : "",
                          wh->retention_ms,
                          store_sharded(gw)};
    struct bus_cmd *cmd =
        json ? bus_eval(WEBHOOK_SCRIPT_USER, part->tag, false, 4, 10, argv, events_on_user, wh)
             : NULL;
    free(json);
    if (cmd)
        snprintf(bus_cmd_echo(cmd)->name, sizeof(bus_cmd_echo(cmd)->name), "%s", user);
    return cmd;
}

/* Sends user's state now when Redis can take it, else queues it. */
static void events_user_sync(struct webhooks *wh, const char *user)
{
    unsigned p = webhook_partition_of(user);
    if (!wh->gw->presence.live || !store_ready(wh->gw, wh->parts[p].tag, false)) {
        webhook_pending_add(wh, user);
        return;
    }
    struct bus_cmd *cmd = events_user_cmd(wh, user);
    if (!cmd) {
        webhook_pending_add(wh, user);
        return;
    }
    store_submit(wh->gw, cmd);
}

void webhooks_user_changed(struct gateway *gw, const char *user)
{
    struct webhooks *wh = gw->webhooks;
    if (wh &&
        (gw->cfg->webhook_events & (CONFIG_WEBHOOK_USER_ONLINE | CONFIG_WEBHOOK_USER_OFFLINE)))
        events_user_sync(wh, user);
}

void webhook_pending_drain(struct webhooks *wh)
{
    if (!wh->gw->presence.live)
        return;
    for (unsigned n = 0; n < WEBHOOK_PENDING_PER_TICK && wh->pending_head; n++) {
        struct webhook_pending *e = wh->pending_head;
        if (!store_ready(wh->gw, wh->parts[webhook_partition_of(e->user)].tag, false))
            return; /* Redis still away: keep the order, try at the next tick */
        wh->pending_head = e->next;
        if (!wh->pending_head)
            wh->pending_tail = NULL;
        strmap_remove(&wh->pending_set, e->user);
        events_user_sync(wh, e->user);
        free(e);
    }
}

void webhook_pending_free(struct webhooks *wh)
{
    for (struct webhook_pending *e = wh->pending_head, *n; e; e = n) {
        n = e->next;
        free(e);
    }
    wh->pending_head = wh->pending_tail = NULL;
    strmap_free(&wh->pending_set);
}

/* ---- dead nodes ---- */

struct webhook_dead {
    struct webhook_dead *next; /* in wh->dead_retry while Redis is away */
    struct webhooks *wh;
    unsigned partition;
    char node[128];
};

static void events_dead_submit(struct webhook_dead *d);

static void events_on_dead(void *arg, struct bus_reply *r)
{
    struct webhook_dead *d = arg;
    struct webhooks *wh = d->wh;
    if (r->status == BUS_UNAVAILABLE) {
        d->next = wh->dead_retry; /* Redis away: the timer sends it again once it is back */
        wh->dead_retry = d;
        return;
    }
    if (r->status != BUS_OK || r->nstrings != 2) {
        log_event(CONFIG_LOG_ERROR, "webhook_dead_node_failed", "node", d->node, "error",
                  r->error ? r->error : "reply not understood", NULL);
        free(d);
        return;
    }
    events_count_dropped(wh, r->strings[1]);
    if (strtoull(r->strings[0], NULL, 10) > 0) {
        events_dead_submit(d); /* more users left: the next chunk */
        return;
    }
    webhook_partitions_retake(wh); /* its lease, if it held one, is free now */
    free(d);
}

static void events_dead_submit(struct webhook_dead *d)
{
    struct webhooks *wh = d->wh;
    const struct webhook_partition *part = &wh->parts[d->partition];
    char users[REDIS_NAME_MAX], prefix[REDIS_NAME_MAX], suffix[REDIS_NAME_MAX], ts[24];
    snprintf(suffix, sizeof(suffix), "node:%s", d->node);
    webhook_key(wh, d->partition, suffix, users);
    webhook_key(wh, d->partition, "u:", prefix);
    snprintf(ts, sizeof(ts), "%" PRId64, gateway_now_ms());
    const char *emit = wh->gw->cfg->webhook_events & CONFIG_WEBHOOK_USER_OFFLINE ? "1" : "0";
    const char *argv[] = {
        users, part->stream,       part->channel,    part->lease,          d->node, prefix, ts,
        emit,  WEBHOOK_DEAD_CHUNK, wh->retention_ms, store_sharded(wh->gw)};
    struct bus_cmd *cmd =
        bus_eval(WEBHOOK_SCRIPT_NODE_DEAD, part->tag, false, 4, 11, argv, events_on_dead, d);
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "webhooks_node_dead", NULL);
        free(d);
        return;
    }
    store_submit(wh->gw, cmd);
}

void webhook_dead_retry(struct webhooks *wh)
{
    struct webhook_dead **link = &wh->dead_retry;
    while (*link) {
        struct webhook_dead *d = *link;
        if (!store_ready(wh->gw, wh->parts[d->partition].tag, false)) {
            link = &d->next;
            continue;
        }
        *link = d->next;
        events_dead_submit(d);
    }
}

void webhook_dead_free(struct webhooks *wh)
{
    for (struct webhook_dead *d = wh->dead_retry, *n; d; d = n) {
        n = d->next;
        free(d);
    }
    wh->dead_retry = NULL;
}

void webhooks_node_dead(struct gateway *gw, const char *node)
{
    struct webhooks *wh = gw->webhooks;
    if (!wh)
        return;
    for (unsigned p = 0; p < WEBHOOK_PARTITIONS; p++) {
        struct webhook_dead *d = calloc(1, sizeof(*d));
        if (!d) {
            log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "webhooks_node_dead", NULL);
            return;
        }
        d->wh = wh;
        d->partition = p;
        snprintf(d->node, sizeof(d->node), "%s", node);
        events_dead_submit(d);
    }
}

/* ---- undelivered directs ---- */

struct events_direct {
    struct webhooks *wh;
    bus_done_fn done;
    void *arg;
    char *event; /* the direct.undelivered JSON, appended if nobody got the direct */
    unsigned partition;
};

static void events_on_appended(void *arg, struct bus_reply *r)
{
    struct webhooks *wh = arg;
    if (r->status != BUS_OK)
        log_event(CONFIG_LOG_WARN, "webhook_event_lost", "type", "direct.undelivered", "error",
                  r->error ? r->error : "unavailable", NULL);
    else
        wh->gw->metrics.webhook_dropped += (uint64_t)(r->integer > 0 ? r->integer : 0);
}

static void events_on_direct_sent(void *arg, struct bus_reply *r)
{
    struct events_direct *d = arg;
    struct webhooks *wh = d->wh;
    if (r->status == BUS_OK && r->integer == 0) {
        const struct webhook_partition *part = &wh->parts[d->partition];
        const char *argv[] = {part->stream, part->channel, d->event, wh->retention_ms,
                              store_sharded(wh->gw)};
        webhook_submit(
            wh,
            bus_eval(WEBHOOK_SCRIPT_APPEND, part->tag, false, 2, 5, argv, events_on_appended, wh),
            "webhook_direct");
    }
    d->done(d->arg, r);
    free(d->event);
    free(d);
}

/* {"type":"direct.undelivered","ts":..,"from":..,"to":..,"text"|"data":..}; NULL on failure
 * (data_json was validated by the API decoder, so only allocation can fail). */
static char *events_direct_json(const char *from, const char *to, int64_t ts, const char *text,
                                size_t text_len, const char *data_json)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *v = data_json ? cJSON_Parse(data_json) : NULL;
    char *copy = text && !data_json ? strndup(text, text_len) : NULL;
    bool ok = o && (data_json ? v != NULL : copy != NULL) &&
              cJSON_AddStringToObject(o, "type", "direct.undelivered") &&
              cJSON_AddNumberToObject(o, "ts", (double)ts) &&
              cJSON_AddStringToObject(o, "from", from) && cJSON_AddStringToObject(o, "to", to);
    if (ok && v) {
        ok = cJSON_AddItemToObject(o, "data", v);
        v = ok ? NULL : v;
    } else if (ok) {
        ok = cJSON_AddStringToObject(o, "text", copy) != NULL;
    }
    char *json = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(v);
    cJSON_Delete(o);
    free(copy);
    return json;
}

struct bus_cmd *webhooks_send_direct(struct gateway *gw, const char *from, const char *to,
                                     int64_t ts, const char *text, size_t text_len,
                                     const char *data_json, const char *sender, const char *json,
                                     bus_done_fn done, void *arg)
{
    struct webhooks *wh = gw->webhooks;
    if (!wh || !(gw->cfg->webhook_events & CONFIG_WEBHOOK_DIRECT_UNDELIVERED))
        return store_send_cmd(gw, to, true, sender, json, done, arg);
    struct events_direct *d = calloc(1, sizeof(*d));
    if (!d || !(d->event = events_direct_json(from, to, ts, text, text_len, data_json))) {
        free(d);
        return NULL;
    }
    d->wh = wh;
    d->done = done;
    d->arg = arg;
    d->partition = webhook_partition_of(to);
    struct bus_cmd *cmd = store_send_cmd(gw, to, true, sender, json, events_on_direct_sent, d);
    if (!cmd) {
        free(d->event);
        free(d);
    }
    return cmd;
}
