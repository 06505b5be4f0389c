/*
 * webhooks — the module's door (webhooks.h): start and stop, one timer for everything that
 * is periodic (user reconciliation, leases, polls), and the hooks other modules call.
 *
 * One timer rather than one per concern: all of it is cheap and coarse (250 ms), and a single
 * lws_sul keeps the stop path to one cancel. What must be precise has its own timer: a
 * partition's backoff (webhook_delivery.c) and a request's deadline (webhook_http.c).
 * The state lives in gw->webhooks, NULL when no --webhook-url is set: every hook starts with
 * that test, so a node without webhooks pays one branch per call.
 */
#include "webhook_internal.h"

#include "log.h"
#include "shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void webhooks_tick(lws_sorted_usec_list_t *sul)
{
    struct webhooks *wh = lws_container_of(sul, struct webhooks, tick);
    webhook_pending_drain(wh);
    webhook_dead_retry(wh);
    webhook_partitions_tick(wh, webhook_mono_ms());
    lws_sul_schedule(wh->gw->context, 0, &wh->tick, webhooks_tick, WEBHOOK_TICK_MS * LWS_US_PER_MS);
}

int webhooks_start(struct gateway *gw)
{
    if (!gw->cfg->webhook_url)
        return 0;
    struct webhooks *wh = calloc(1, sizeof(*wh));
    if (!wh || strmap_init(&wh->pending_set) != 0) {
        free(wh);
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "webhooks_start", NULL);
        return -1;
    }
    wh->gw = gw;
    snprintf(wh->retention_ms, sizeof(wh->retention_ms), "%lld",
             (long long)gw->cfg->webhook_retention_s * 1000);
    if (webhook_http_start(wh) != 0) {
        strmap_free(&wh->pending_set);
        free(wh);
        return -1;
    }
    webhook_partitions_init(wh);
    gw->webhooks = wh;
    lws_sul_schedule(gw->context, 0, &wh->tick, webhooks_tick, WEBHOOK_TICK_MS * LWS_US_PER_MS);
    log_event(CONFIG_LOG_INFO, "webhooks_on", "host", wh->address, NULL);
    return 0;
}

void webhooks_stop(struct gateway *gw)
{
    struct webhooks *wh = gw->webhooks;
    if (!wh)
        return;
    lws_sul_cancel(&wh->tick);
    webhook_partitions_stop(wh);
    webhook_pending_free(wh);
    webhook_dead_free(wh);
    gw->webhooks = NULL;
    free(wh);
}

static void webhooks_readd_user(const char *user, void *value, void *arg)
{
    (void)value;
    webhook_pending_add(arg, user);
}

void webhooks_on_ready(struct gateway *gw)
{
    struct webhooks *wh = gw->webhooks;
    if (!wh)
        return;
    if (gw->cfg->webhook_events & (CONFIG_WEBHOOK_USER_ONLINE | CONFIG_WEBHOOK_USER_OFFLINE))
        strmap_each(&gw->users, webhooks_readd_user, wh);
    for (unsigned p = 0; p < WEBHOOK_PARTITIONS; p++)
        webhook_partition_wake(wh, p);
    webhook_partitions_retake(wh);
}

void webhooks_on_push(struct gateway *gw, const struct bus_push *p)
{
    struct webhooks *wh = gw->webhooks;
    if (!wh || strncmp(p->name, "@wh:", 4) != 0)
        return;
    unsigned index = (unsigned)strtoul(p->name + 4, NULL, 10);
    if (index < WEBHOOK_PARTITIONS)
        webhook_partition_wake(wh, index);
}
