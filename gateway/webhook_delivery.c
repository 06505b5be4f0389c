/*
 * webhook_delivery — the partitions (PROTOCOL.md §9: at least once, in order per user).
 *
 * Each partition stream is delivered by the one node holding its lease (a key with a TTL,
 * WEBHOOK_LEASE_MS, renewed by every read and ack and by the timer). The holder reads the
 * oldest WEBHOOK_BATCH entries, POSTs them one at a time, and deletes each from the stream
 * after a 2xx: the stream is exactly the undelivered backlog (its length is the gauge), and a
 * node taking a partition over simply starts again at its head, re-delivering what the last
 * holder had POSTed but not yet deleted — the event id lets the receiver drop that duplicate.
 * Why not a consumer group: with one reader per partition the group's bookkeeping (who was
 * handed what) is what the lease already decides, and a group must be re-created after Redis
 * loses it (NOGROUP); XRANGE from the head plus XDEL needs neither.
 *
 * A failed attempt (non-2xx, no answer within --webhook-timeout) is retried, the same event
 * again, after 0.5 s doubling to 30 s; nothing behind it in the partition goes first. An
 * event older than --webhook-retention (Redis's clock) is dropped instead of sent, counted in
 * chat_webhook_dropped_total. A node that finds its lease gone stops at once (its request in
 * flight is abandoned: the new holder re-sends it).
 *
 * New events are noticed by a notification on the partition's channel (published by every
 * append script; the holder subscribes while it holds the lease) and, should one be lost, by
 * a poll every WEBHOOK_POLL_MS. Non-holders retry the lease when its TTL says it may be free,
 * or at once when the presence reaper frees a dead holder's leases (webhook_events.c).
 * Partitions are not balanced across nodes: whichever node asks first delivers.
 */
#include "webhook_internal.h"

#include "log.h"
#include "webhook_scripts.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A holder reads every partition at least this often (lost notifications); under the lease's
 * renewal point, so an idle partition's reads are its renewals. */
#define WEBHOOK_POLL_MS 3000
#define WEBHOOK_TEXT(x) #x
#define WEBHOOK_STRING(x) WEBHOOK_TEXT(x)
#define WEBHOOK_LEASE_ARG WEBHOOK_STRING(WEBHOOK_LEASE_MS) /* as a script argument */

static void delivery_pump(struct webhook_partition *p);

static void delivery_backlog(struct webhooks *wh)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < WEBHOOK_PARTITIONS; i++)
        sum += wh->parts[i].owned ? wh->parts[i].backlog : 0;
    wh->gw->metrics.webhook_backlog = sum;
}

static void delivery_batch_clear(struct webhook_partition *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->batch[i].event);
    p->count = p->next = 0;
    p->attempts = 0;
}

static void delivery_subscribe(struct webhook_partition *p, bool want)
{
    webhook_submit(p->wh, bus_subscribe(p->tag, true, want), "webhook_subscribe");
}

/* The lease is gone (or never was): stop everything this node does for the partition. */
static void delivery_lose(struct webhook_partition *p)
{
    if (!p->owned)
        return;
    log_event(CONFIG_LOG_INFO, "webhook_partition_lost", "partition", p->tag, NULL);
    p->owned = false;
    if (p->post) {
        webhook_http_cancel(p->post);
        p->post = NULL;
    }
    lws_sul_cancel(&p->timer);
    p->waiting = false;
    delivery_batch_clear(p);
    delivery_subscribe(p, false);
    delivery_backlog(p->wh);
}

/* ---- lease ---- */

static void delivery_on_lease(void *arg, struct bus_reply *r)
{
    struct webhook_partition *p = arg;
    p->lease_busy = false;
    if (r->status != BUS_OK)
        return; /* the timer asks again; a lease not renewed in time stops delivery (pump) */
    int64_t now = webhook_mono_ms();
    if (r->integer > 0) {
        delivery_lose(p);
        p->lease_next_ms = now + (r->integer < WEBHOOK_LEASE_MS ? r->integer : WEBHOOK_LEASE_MS);
        return;
    }
    p->lease_until_ms = r->echo.t + WEBHOOK_LEASE_MS;
    if (!p->owned) {
        log_event(CONFIG_LOG_INFO, "webhook_partition_taken", "partition", p->tag, NULL);
        p->owned = true;
        p->dirty = true;
        delivery_subscribe(p, true);
    }
    delivery_pump(p);
}

static void delivery_lease(struct webhook_partition *p, int64_t now)
{
    struct webhooks *wh = p->wh;
    const char *argv[] = {p->lease, wh->gw->presence.node, WEBHOOK_LEASE_ARG};
    struct bus_cmd *cmd =
        bus_eval(WEBHOOK_SCRIPT_LEASE, p->tag, false, 1, 3, argv, delivery_on_lease, p);
    if (cmd) {
        bus_cmd_echo(cmd)->t = now;
        p->lease_busy = true;
    }
    webhook_submit(wh, cmd, "webhook_lease");
}

/* ---- read ---- */

/* One XRANGE entry [id, [field, value, ...]] into e; false when malformed. */
static bool delivery_entry(const struct webhook_partition *p, const struct bus_value *v,
                           struct webhook_entry *e)
{
    if (v->type != BUS_VALUE_ARRAY || v->elements != 2 || v->element[0]->type != BUS_VALUE_STRING ||
        v->element[1]->type != BUS_VALUE_ARRAY)
        return false;
    const struct bus_value *id = v->element[0], *fields = v->element[1];
    snprintf(e->stream_id, sizeof(e->stream_id), "%s", id->str);
    snprintf(e->id, sizeof(e->id), "%u-%s", p->index, id->str);
    e->id_ms = strtoll(id->str, NULL, 10);
    e->event = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == BUS_VALUE_STRING &&
            strcmp(fields->element[i]->str, "e") == 0 &&
            fields->element[i + 1]->type == BUS_VALUE_STRING)
            e->event = strdup(fields->element[i + 1]->str);
    return e->event != NULL;
}

static void delivery_on_read(void *arg, struct bus_reply *r)
{
    struct webhook_partition *p = arg;
    const struct bus_value *v = r->value;
    p->reading = false;
    if (r->status != BUS_OK || !v || v->type != BUS_VALUE_ARRAY || v->elements < 1) {
        p->dirty = true; /* the timer tries again */
        return;
    }
    if (v->element[0]->integer != 1 || v->elements != 4) {
        delivery_lose(p);
        return;
    }
    if (!p->owned)
        return; /* the lease was lost while reading */
    p->lease_until_ms = r->echo.t + WEBHOOK_LEASE_MS;
    p->backlog = (uint64_t)v->element[1]->integer;
    p->redis_ms_at_read = v->element[2]->integer;
    p->mono_ms_at_read = webhook_mono_ms();
    delivery_batch_clear(p);
    const struct bus_value *entries = v->element[3];
    for (size_t i = 0; i < entries->elements && p->count < WEBHOOK_BATCH; i++)
        if (delivery_entry(p, entries->element[i], &p->batch[p->count]))
            p->count++;
    p->dirty |= entries->elements == WEBHOOK_BATCH; /* more behind these */
    delivery_backlog(p->wh);
    delivery_pump(p);
}

static void delivery_read(struct webhook_partition *p, int64_t now)
{
    struct webhooks *wh = p->wh;
    char count[16];
    snprintf(count, sizeof(count), "%d", WEBHOOK_BATCH);
    const char *argv[] = {p->stream, p->lease, wh->gw->presence.node, WEBHOOK_LEASE_ARG, count};
    struct bus_cmd *cmd =
        bus_eval(WEBHOOK_SCRIPT_READ, p->tag, false, 2, 5, argv, delivery_on_read, p);
    p->dirty = false;
    p->read_next_ms = now + WEBHOOK_POLL_MS;
    if (cmd) {
        bus_cmd_parse(cmd, BUS_PARSE_VALUE);
        bus_cmd_echo(cmd)->t = now;
        p->reading = true;
    } else {
        p->dirty = true;
    }
    webhook_submit(wh, cmd, "webhook_read");
}

/* ---- ack: the entry is delivered (or dropped): delete it ---- */

static void delivery_on_ack(void *arg, struct bus_reply *r)
{
    struct webhook_partition *p = arg;
    if (r->status != BUS_OK || r->nstrings != 3)
        return; /* still in the stream: delivered again later (at least once) */
    if (r->echo.a && strcmp(r->strings[0], "1") == 0)
        p->wh->gw->metrics.webhook_dropped++;
    if (strcmp(r->strings[1], "1") != 0) {
        delivery_lose(p);
        return;
    }
    if (r->echo.t + WEBHOOK_LEASE_MS > p->lease_until_ms)
        p->lease_until_ms = r->echo.t + WEBHOOK_LEASE_MS;
    p->backlog = strtoull(r->strings[2], NULL, 10);
    delivery_backlog(p->wh);
}

/* Deletes batch[next] from the stream (dropped: counts it if it was still there) and moves
 * on. */
static void delivery_ack(struct webhook_partition *p, bool dropped)
{
    struct webhooks *wh = p->wh;
    const char *argv[] = {p->stream, p->lease, p->batch[p->next].stream_id, wh->gw->presence.node,
                          WEBHOOK_LEASE_ARG};
    struct bus_cmd *cmd =
        bus_eval(WEBHOOK_SCRIPT_ACK, p->tag, false, 2, 5, argv, delivery_on_ack, p);
    if (cmd) {
        bus_cmd_echo(cmd)->a = dropped;
        bus_cmd_echo(cmd)->t = webhook_mono_ms();
    }
    webhook_submit(wh, cmd, "webhook_ack");
    free(p->batch[p->next].event);
    p->batch[p->next].event = NULL;
    p->next++;
    p->attempts = 0;
}

/* ---- attempts ---- */

static void delivery_on_backoff(lws_sorted_usec_list_t *sul)
{
    struct webhook_partition *p = lws_container_of(sul, struct webhook_partition, timer);
    p->waiting = false;
    delivery_pump(p);
}

static void delivery_failed(struct webhook_partition *p, int status, const char *why)
{
    struct webhooks *wh = p->wh;
    wh->gw->metrics.webhook_failures++;
    unsigned shift = p->attempts < 6 ? p->attempts : 6;
    int64_t delay = (int64_t)WEBHOOK_BACKOFF_FIRST_MS << shift;
    if (delay > WEBHOOK_BACKOFF_MAX_MS)
        delay = WEBHOOK_BACKOFF_MAX_MS;
    p->attempts++;
    char st[16], n[16], ms[24];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(n, sizeof(n), "%u", p->attempts);
    snprintf(ms, sizeof(ms), "%" PRId64, delay);
    log_event(CONFIG_LOG_WARN, "webhook_attempt_failed", "event", p->batch[p->next].id, "status",
              st, "reason", why, "attempt", n, "retry_ms", ms, NULL);
    p->waiting = true;
    lws_sul_schedule(wh->gw->context, 0, &p->timer, delivery_on_backoff,
                     (lws_usec_t)delay * LWS_US_PER_MS);
}

static void delivery_on_posted(void *arg, int status, const char *why)
{
    struct webhook_partition *p = arg;
    p->post = NULL;
    if (status < 200 || status > 299) {
        delivery_failed(p, status, why);
        return;
    }
    p->wh->gw->metrics.webhook_delivered++;
    delivery_ack(p, false);
    delivery_pump(p);
}

/* The body of batch[next]: {"id":..} then the stored event's fields; NULL if unreadable. */
static char *delivery_body(const struct webhook_entry *e)
{
    cJSON *in = cJSON_Parse(e->event), *out = cJSON_CreateObject();
    char *body = NULL;
    if (in && out && cJSON_IsObject(in) && cJSON_AddStringToObject(out, "id", e->id)) {
        while (in->child) {
            cJSON *item = cJSON_DetachItemViaPointer(in, in->child);
            cJSON_AddItemToObject(out, item->string, item);
        }
        body = cJSON_PrintUnformatted(out);
    }
    cJSON_Delete(in);
    cJSON_Delete(out);
    return body;
}

/* Sends batch[next], or drops it when it is past the retention or unreadable. */
static void delivery_attempt(struct webhook_partition *p, int64_t now)
{
    struct webhooks *wh = p->wh;
    const struct webhook_entry *e = &p->batch[p->next];
    int64_t age = p->redis_ms_at_read + (now - p->mono_ms_at_read) - e->id_ms;
    if (age > (int64_t)wh->gw->cfg->webhook_retention_s * 1000) {
        /* Counted in chat_webhook_dropped_total; a line each would flood a long outage. */
        log_event(CONFIG_LOG_DEBUG, "webhook_event_expired", "event", e->id, NULL);
        delivery_ack(p, true);
        return;
    }
    char *body = delivery_body(e);
    if (!body) {
        log_event(CONFIG_LOG_ERROR, "webhook_event_unreadable", "event", e->id, NULL);
        delivery_ack(p, true);
        return;
    }
    p->post = webhook_http_post(wh, e->id, body, strlen(body), delivery_on_posted, p);
    cJSON_free(body);
    if (!p->post)
        delivery_failed(p, 0, "request not started");
}

/* Moves the partition on: the next attempt, or a read when the batch is done. */
static void delivery_pump(struct webhook_partition *p)
{
    while (p->owned && !p->reading && !p->post && !p->waiting) {
        int64_t now = webhook_mono_ms();
        if (now >= p->lease_until_ms)
            return; /* not renewed in time: the lease may be someone else's now */
        if (p->next < p->count) {
            delivery_attempt(p, now);
            continue;
        }
        if (p->dirty)
            delivery_read(p, now);
        return;
    }
}

/* ---- the partitions ---- */

void webhook_partitions_init(struct webhooks *wh)
{
    for (unsigned i = 0; i < WEBHOOK_PARTITIONS; i++) {
        struct webhook_partition *p = &wh->parts[i];
        p->wh = wh;
        p->index = i;
        snprintf(p->tag, sizeof(p->tag), "@wh:%u", i);
        webhook_key(wh, i, "events", p->stream);
        webhook_key(wh, i, "lease", p->lease);
        redis_user_channel(&wh->gw->store.names, p->tag, p->channel);
    }
}

void webhook_partitions_tick(struct webhooks *wh, int64_t now)
{
    for (unsigned i = 0; i < WEBHOOK_PARTITIONS; i++) {
        struct webhook_partition *p = &wh->parts[i];
        if (!store_ready(wh->gw, p->tag, false))
            continue;
        /* Take a free lease; renew ours once a third of it is used. */
        int64_t due = p->owned ? p->lease_until_ms - WEBHOOK_LEASE_MS * 2 / 3 : p->lease_next_ms;
        if (!p->lease_busy && now >= due)
            delivery_lease(p, now);
        if (p->owned && now >= p->read_next_ms)
            p->dirty = true;
        delivery_pump(p);
    }
}

void webhook_partition_wake(struct webhooks *wh, unsigned index)
{
    struct webhook_partition *p = &wh->parts[index];
    p->dirty = true;
    delivery_pump(p);
}

void webhook_partitions_retake(struct webhooks *wh)
{
    for (unsigned i = 0; i < WEBHOOK_PARTITIONS; i++)
        wh->parts[i].lease_next_ms = 0;
}

void webhook_partitions_stop(struct webhooks *wh)
{
    for (unsigned i = 0; i < WEBHOOK_PARTITIONS; i++) {
        struct webhook_partition *p = &wh->parts[i];
        if (p->post)
            webhook_http_cancel(p->post);
        p->post = NULL;
        lws_sul_cancel(&p->timer);
        delivery_batch_clear(p);
    }
}
