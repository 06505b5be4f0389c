/*
 * webhook_base — the small pieces every webhook file shares (clock, partition of a user, key
 * names, submitting a command with its failure logged), below webhook_events.c,
 * webhook_delivery.c and webhooks.c so that calls go one way.
 */
#include "webhook_internal.h"

#include "log.h"
#include "shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t webhook_mono_ms(void)
{
    return gateway_mono_ns() / 1000000;
}

unsigned webhook_partition_of(const char *user)
{
    return (unsigned)shard_index(user, WEBHOOK_PARTITIONS);
}

void webhook_key(const struct webhooks *wh, unsigned p, const char *suffix, char *out)
{
    /* The room key form with the partition's tag: room names never start with '@'. */
    redis_room_key(&wh->gw->store.names, wh->parts[p].tag, suffix, out);
}

void webhook_submit(struct webhooks *wh, struct bus_cmd *cmd, const char *what)
{
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", what, NULL);
        return;
    }
    store_submit(wh->gw, cmd);
}
