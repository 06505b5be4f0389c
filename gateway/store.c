/*
 * store — the connection thread's door to Redis: the bus (bus.h) when it runs, a completion
 * with "unavailable" when it does not (the node is stopping), and the few facts every module
 * needs to build a command (epoch candidates, sharded or classic pub/sub).
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_submit(struct gateway *gw, struct bus_cmd *cmd)
{
    bus_submit(gw->store.bus, cmd);
}

bool store_ready(const struct gateway *gw, const char *key, bool user)
{
    return bus_ready_for(gw->store.bus, key, user);
}

bool store_all_ready(const struct gateway *gw)
{
    return bus_all_ready(gw->store.bus);
}

bool store_any_ready(const struct gateway *gw)
{
    return bus_any_ready(gw->store.bus);
}

void store_epoch_candidate(struct gateway *gw, char out[17])
{
    uint64_t x = gw->store.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    gw->store.rng = x;
    snprintf(out, 17, "%016" PRIx64, x);
}

const char *store_sharded(const struct gateway *gw)
{
    return gw->cfg->redis_mode == CONFIG_REDIS_CLUSTER ? "1" : "0";
}

struct bus_cmd *store_publish_cmd(struct gateway *gw, const char *room, const char *head,
                                  const char *tail, const char *sender, bus_done_fn done,
                                  void *arg)
{
    const struct redis_names *n = &gw->store.names;
    char seq[REDIS_NAME_MAX], logk[REDIS_NAME_MAX], epochk[REDIS_NAME_MAX], reads[REDIS_NAME_MAX],
        ch[REDIS_NAME_MAX];
    char cand[17], maxlen[16], ttl[16], known[24] = "0", known_epoch[PROTO_EPOCH_MAX + 1] = "";
    redis_room_key(n, room, "seq", seq);
    redis_room_key(n, room, "log", logk);
    redis_room_key(n, room, "epoch", epochk);
    redis_room_key(n, room, "reads", reads);
    redis_room_channel(n, room, ch);
    store_epoch_candidate(gw, cand);
    snprintf(maxlen, sizeof(maxlen), "%d", gw->cfg->history_size);
    snprintf(ttl, sizeof(ttl), "%d", gw->cfg->history_ttl_s);
    /* What this node delivered: a counter behind it means a failover lost writes. In every
     * state, not only LIVE: while a room re-syncs after a failover, a publish must not be
     * handed an offset this node already delivered under that epoch. */
    const struct room *r = room_registry_find(&gw->rooms, room);
    if (r && r->epoch[0]) {
        snprintf(known, sizeof(known), "%" PRIu64, r->last_offset);
        snprintf(known_epoch, sizeof(known_epoch), "%s", r->epoch);
    }
    const char *defer = gw->cfg->redis_wait > 0 ? "1" : "0";
    const char *argv[] = {seq,    logk, epochk, reads, ch,    head,  tail,  sender,
                          cand,   maxlen, ttl,  known, known_epoch, defer, store_sharded(gw)};
    struct bus_cmd *cmd = bus_script(BUS_SCRIPT_PUBLISH, room, false, 5, 15, argv, done, arg);
    if (cmd)
        bus_cmd_publish_mode(cmd);
    return cmd;
}

struct bus_cmd *store_send_cmd(struct gateway *gw, const char *key, bool user, const char *sender,
                               const char *json, bus_done_fn done, void *arg)
{
    char ch[REDIS_NAME_MAX];
    if (user)
        redis_user_channel(&gw->store.names, key, ch);
    else
        redis_room_channel(&gw->store.names, key, ch);
    /* Ephemeral frames travel as "- 0 <sender> <json>": no epoch, no offset, nothing stored. */
    size_t len = strlen(sender) + strlen(json) + 6;
    char *payload = malloc(len);
    if (!payload)
        return NULL;
    snprintf(payload, len, "- 0 %s %s", sender, json);
    const char *argv[] = {ch, payload, store_sharded(gw)};
    struct bus_cmd *cmd = bus_script(BUS_SCRIPT_SEND, key, user, 1, 3, argv, done, arg);
    free(payload);
    return cmd;
}
