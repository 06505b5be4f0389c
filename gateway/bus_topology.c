/*
 * bus_topology — which Redis server holds a key, for the three kinds of --redis (bus thread).
 *
 * plain     The configured instances, in order; a key lives on shard_index(key, n) (a stable
 *           hash every node agrees on without coordination). One instance down affects only
 *           its keys.
 * cluster   The seeds are connected first; CLUSTER SLOTS from any connected one gives the slot
 *           map, and every master in it gets a server (connections made on demand). The map is
 *           read again on every MOVED, every unsolicited sunsubscribe, every server loss, every
 *           30 s, and every 250 ms while some slot has no ready master. A slot whose master is
 *           not ready is answered unavailable at once. A slot whose owner changed while the old
 *           owner was down counts as a failover seen.
 * sentinel  The Sentinels are asked in turn for the master's address
 *           (SENTINEL get-master-addr-by-name), the answer is confirmed with ROLE
 *           (bus_server.c), and asked again on every loss of the master (at most every 200 ms:
 *           right after a failover some Sentinels still name the dead master). A master that
 *           is up is kept whatever a Sentinel answers; `+switch-master` on a Sentinel's pub/sub
 *           moves to the address it names at once. A named master that is down is retried
 *           with the server's backoff, never in a loop.
 * Readiness is published for other threads: per slot (cluster) or as all/any flags.
 */
#include "bus_internal.h"

#include "log.h"
#include "shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPOLOGY_REFRESH_IDLE_S 30
#define TOPOLOGY_REFRESH_FAST_MS 250
#define SENTINEL_RETRY_MS 200

bool bus_topology_sharded(const struct bus *bus)
{
    return bus->mode == CONFIG_REDIS_CLUSTER;
}

struct bus_server *bus_topology_server_at(struct bus *bus, const char *host, int port)
{
    for (int i = 0; i < bus->server_count; i++) {
        struct bus_server *s = bus->servers[i];
        if (s->role == BUS_ROLE_DATA && s->port == port && strcmp(s->host, host) == 0)
            return s;
    }
    struct bus_server *s = bus_server_add(bus, host, port, 0, BUS_ROLE_DATA);
    if (s)
        bus_server_connect(s);
    return s;
}

/* The server a cluster slot's map node maps to (created on first sight). */
static struct bus_server *topology_slot_server(struct bus *bus, unsigned slot)
{
    uint16_t node = bus->map->owner[slot];
    if (node == SLOT_MAP_NONE)
        return NULL;
    const struct slot_map_node *n = &bus->map->nodes[node];
    return bus_topology_server_at(bus, n->host, n->port);
}

struct bus_server *bus_route(struct bus *bus, const char *key, bool user)
{
    (void)user;
    struct bus_server *s = NULL;
    if (bus->mode == CONFIG_REDIS_CLUSTER)
        s = topology_slot_server(bus, keyslot_of_tag(key));
    else if (bus->mode == CONFIG_REDIS_SENTINEL)
        s = bus->sentinel_data >= 0 ? bus->servers[bus->sentinel_data] : NULL;
    else
        s = bus->servers[shard_index(key, (size_t)bus->data_count)];
    return bus_server_ready(s) ? s : NULL;
}

void bus_topology_update_ready(struct bus *bus)
{
    bool all = true, any = false;
    if (bus->mode == CONFIG_REDIS_CLUSTER) {
        bool ready_node[SLOT_MAP_NODES_MAX];
        for (size_t i = 0; i < bus->map->node_count; i++) {
            struct bus_server *s = NULL;
            for (int j = 0; j < bus->server_count && !s; j++)
                if (bus->servers[j]->port == bus->map->nodes[i].port &&
                    strcmp(bus->servers[j]->host, bus->map->nodes[i].host) == 0)
                    s = bus->servers[j];
            ready_node[i] = bus_server_ready(s);
        }
        bool gained = false;
        for (unsigned slot = 0; slot < KEYSLOT_COUNT; slot++) {
            uint16_t o = bus->map->owner[slot];
            bool r = o != SLOT_MAP_NONE && ready_node[o];
            uint8_t was = atomic_exchange_explicit(&bus->slot_ready[slot], r, memory_order_relaxed);
            gained |= r && !was;
            all &= r;
            any |= r;
        }
        /* In a cluster, keys become usable when their slot gets a ready master (a server
         * ready before the map owns nothing yet): that is the `ready` the rooms wait for. */
        if (gained)
            bus_emit_ready(bus);
    } else {
        int first = bus->mode == CONFIG_REDIS_SENTINEL ? bus->sentinel_data : 0;
        int count = bus->mode == CONFIG_REDIS_SENTINEL ? 1 : bus->data_count;
        for (int i = 0; i < count; i++) {
            bool r = first >= 0 && bus_server_ready(bus->servers[first + i]);
            all &= r;
            any |= r;
        }
    }
    atomic_store(&bus->all_ready, all);
    atomic_store(&bus->any_ready, any);
    /* Not all covered: read the map again soon. */
    if (bus->mode == CONFIG_REDIS_CLUSTER && !all && !bus->closing)
        bus_topology_refresh(bus, NULL);
}

/* ---- cluster: the slot map ---- */

static void topology_arm_refresh(struct bus *bus, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!evtimer_pending(bus->refresh_ev, NULL))
        evtimer_add(bus->refresh_ev, &tv);
}

/* One range of CLUSTER SLOTS: [start, end, [host, port, id], replicas...]. */
static bool topology_range(struct slot_map *m, const redisReply *r, unsigned *first,
                           unsigned *last, int *node)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER)
        return false;
    const redisReply *master = r->element[2];
    if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
        master->element[0]->type != REDIS_REPLY_STRING ||
        master->element[1]->type != REDIS_REPLY_INTEGER)
        return false;
    *first = (unsigned)r->element[0]->integer;
    *last = (unsigned)r->element[1]->integer;
    const char *host = master->element[0]->str[0] ? master->element[0]->str : "127.0.0.1";
    *node = slot_map_node(m, host, (int)master->element[1]->integer);
    return *node >= 0;
}

/* Counts a failover for every slot whose owner changed while the old owner was not ready. */
static void topology_count_failovers(struct bus *bus, const struct slot_map *next)
{
    bool seen[SLOT_MAP_NODES_MAX] = {false};
    for (unsigned slot = 0; slot < KEYSLOT_COUNT; slot++) {
        uint16_t o = bus->map->owner[slot], n = next->owner[slot];
        if (o == SLOT_MAP_NONE || n == SLOT_MAP_NONE || seen[o])
            continue;
        const struct slot_map_node *a = &bus->map->nodes[o], *b = &next->nodes[n];
        if (a->port == b->port && strcmp(a->host, b->host) == 0)
            continue;
        struct bus_server *old = NULL;
        for (int j = 0; j < bus->server_count && !old; j++)
            if (bus->servers[j]->port == a->port && strcmp(bus->servers[j]->host, a->host) == 0)
                old = bus->servers[j];
        if (old && !bus_server_ready(old)) {
            seen[o] = true;
            atomic_fetch_add(&bus->failovers, 1);
            log_event(CONFIG_LOG_WARN, "redis_failover_seen", "old", a->host, NULL);
        }
    }
}

/* Servers that own no slot any more are let go (a dead master replaced by its replica); a
 * seed is kept. A server is shown as a master (/metrics) exactly while it owns slots: a seed
 * list may name replicas, and a failed master comes back as one. */
static void topology_release_idle(struct bus *bus)
{
    for (int i = 0; i < bus->server_count; i++) {
        struct bus_server *s = bus->servers[i];
        bool owns = false;
        for (size_t n = 0; n < bus->map->node_count && !owns; n++)
            owns = s->port == bus->map->nodes[n].port &&
                   strcmp(s->host, bus->map->nodes[n].host) == 0;
        s->is_replica = !owns;
        bool seed = i < bus->cfg->redis_count;
        if (!owns && !seed && s->wanted) {
            s->wanted = false;
            bus_server_drop(s, NULL);
        } else if (owns && !s->wanted) {
            s->wanted = true;
            bus_server_connect(s);
        }
    }
}

static void topology_on_slots(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct bus_server *from = ac->data;
    struct bus *bus = from->bus;
    redisReply *reply = r;
    bus->refresh_inflight = false;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || bus->closing) {
        topology_arm_refresh(bus, TOPOLOGY_REFRESH_FAST_MS);
        return;
    }
    struct slot_map *next = malloc(sizeof(*next));
    if (!next)
        return;
    slot_map_init(next);
    for (size_t i = 0; i < reply->elements; i++) {
        unsigned first, last;
        int node;
        if (topology_range(next, reply->element[i], &first, &last, &node))
            slot_map_assign(next, first, last, (unsigned)node);
    }
    topology_count_failovers(bus, next);
    free(bus->map);
    bus->map = next;
    atomic_fetch_add(&bus->refreshes, 1);
    for (size_t n = 0; n < next->node_count; n++)
        bus_topology_server_at(bus, next->nodes[n].host, next->nodes[n].port);
    topology_release_idle(bus);
    bus_topology_update_ready(bus);
    bus->map_changed(bus); /* channels go where their keys live now */
    bus_publish_snapshot(bus);
    topology_arm_refresh(bus, atomic_load(&bus->all_ready) ? TOPOLOGY_REFRESH_IDLE_S * 1000
                                                           : TOPOLOGY_REFRESH_FAST_MS);
}

/* Sends CLUSTER SLOTS to a connected server: a ready master first, else any seed. */
static void topology_fetch_slots(struct bus *bus)
{
    if (bus->refresh_inflight || bus->closing)
        return;
    struct bus_server *pick = NULL;
    for (int pass = 0; pass < 2 && !pick; pass++)
        for (int i = 0; i < bus->server_count && !pick; i++) {
            struct bus_server *s = bus->servers[i];
            if (s->cmd && s->cmd_up && (pass == 1 || bus_server_ready(s)))
                pick = s;
        }
    if (!pick) {
        topology_arm_refresh(bus, TOPOLOGY_REFRESH_FAST_MS);
        return;
    }
    if (redisAsyncCommand(pick->cmd, topology_on_slots, NULL, "CLUSTER SLOTS") == REDIS_OK) {
        bus->refresh_inflight = true;
        bus->refreshed_ns = bus_now_ns();
    }
}

void bus_topology_refresh(struct bus *bus, const char *why)
{
    if (bus->mode != CONFIG_REDIS_CLUSTER || bus->closing)
        return;
    (void)why;
    /* At most one in flight, and not more often than the fast period. */
    if (bus_now_ns() - bus->refreshed_ns < TOPOLOGY_REFRESH_FAST_MS * 1000000ll) {
        topology_arm_refresh(bus, TOPOLOGY_REFRESH_FAST_MS);
        return;
    }
    if (evtimer_pending(bus->refresh_ev, NULL))
        evtimer_del(bus->refresh_ev);
    topology_fetch_slots(bus);
}

void bus_topology_moved(struct bus *bus, unsigned slot, const char *host, int port)
{
    if (bus->mode != CONFIG_REDIS_CLUSTER || slot >= KEYSLOT_COUNT)
        return;
    int node = slot_map_node(bus->map, host, port);
    if (node >= 0) {
        slot_map_assign(bus->map, slot, slot, (unsigned)node);
        bus_topology_server_at(bus, host, port);
        bus_topology_update_ready(bus);
    }
    bus_topology_refresh(bus, "moved");
}

/* ---- sentinel ---- */

static void topology_resolve(struct bus *bus);

static void topology_retry_resolve(struct bus *bus)
{
    bus->resolving = false;
    topology_arm_refresh(bus, SENTINEL_RETRY_MS);
}

/* Asks again, at once unless the last question is less than SENTINEL_RETRY_MS old: while the
 * Sentinels disagree (one still names the dead master) the answers must not spin. */
static void topology_resolve_soon(struct bus *bus)
{
    bus->resolving = false;
    if (bus_now_ns() - bus->resolved_ns < SENTINEL_RETRY_MS * 1000000ll)
        topology_arm_refresh(bus, SENTINEL_RETRY_MS);
    else
        topology_resolve(bus);
}

/* The master is host:port (a Sentinel's answer or +switch-master): keep it, or move to it. */
static void topology_use_master(struct bus *bus, const char *host, int port)
{
    struct bus_server *cur = bus->sentinel_data >= 0 ? bus->servers[bus->sentinel_data] : NULL;
    if (cur && cur->port == port && strcmp(cur->host, host) == 0) {
        cur->wanted = true;
        bus_server_connect_later(cur); /* it was just lost: with backoff, never in a loop */
        return;
    }
    struct bus_server *s = NULL;
    for (int i = 0; i < bus->server_count && !s; i++)
        if (bus->servers[i]->role == BUS_ROLE_DATA && bus->servers[i]->port == port &&
            strcmp(bus->servers[i]->host, host) == 0)
            s = bus->servers[i];
    if (!s && !(s = bus_server_add(bus, host, port, bus->cfg->sentinel_db, BUS_ROLE_DATA)))
        return;
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%d", port);
    log_event(CONFIG_LOG_INFO, "redis_master_resolved", "host", host, "port", port_text, NULL);
    /* The new one first: the old one's loss below must not read as the master's loss. */
    bus->sentinel_data = s->index;
    if (cur) {
        cur->wanted = false;
        bus_server_drop(cur, "master moved");
        atomic_fetch_add(&bus->failovers, 1);
    }
    s->wanted = true;
    bus_server_connect(s);
    bus_topology_update_ready(bus);
    bus_publish_snapshot(bus);
}

static void topology_on_master_addr(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct bus_server *sentinel = ac->data;
    struct bus *bus = sentinel->bus;
    redisReply *reply = r;
    if (bus->closing)
        return;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        topology_retry_resolve(bus); /* this Sentinel does not know: the next one */
        return;
    }
    bus->resolving = false;
    /* A master that is up and confirmed by ROLE is kept: only its loss (or +switch-master)
     * moves us, so a Sentinel that has not heard of a failover yet cannot send us back. */
    if (bus->sentinel_data >= 0 && bus_server_ready(bus->servers[bus->sentinel_data]))
        return;
    topology_use_master(bus, reply->element[0]->str, atoi(reply->element[1]->str));
}

/* Asks the next connected Sentinel where the master is. */
static void topology_resolve(struct bus *bus)
{
    if (bus->resolving || bus->closing)
        return;
    int n = bus->cfg->redis_count;
    for (int k = 0; k < n; k++) {
        struct bus_server *sen = bus->servers[(bus->sentinel_next + k) % n];
        if (!sen->cmd || !sen->cmd_up)
            continue;
        bus->sentinel_next = (sen->index + 1) % n;
        if (redisAsyncCommand(sen->cmd, topology_on_master_addr, NULL,
                              "SENTINEL get-master-addr-by-name %s",
                              bus->cfg->sentinel_master) == REDIS_OK) {
            bus->resolving = true;
            bus->resolved_ns = bus_now_ns();
            return;
        }
    }
    topology_retry_resolve(bus);
}

/* +switch-master <name> <old ip> <old port> <new ip> <new port>: the Sentinel that says so
 * knows the new master; move to it at once (ROLE still confirms it). */
static void topology_on_sentinel_push(struct bus_server *s, redisReply *r)
{
    struct bus *bus = s->bus;
    if (!r) {
        bus_sconn_close(s->sub);
        s->sub = NULL;
        s->sub_up = false;
        return; /* watched again from a Sentinel that is up (bus_topology_tick) */
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0)
        return;
    char name[64], old_host[SLOT_MAP_HOST_MAX + 1], host[SLOT_MAP_HOST_MAX + 1];
    int old_port, port;
    if (sscanf(r->element[2]->str, "%63s %255s %d %255s %d", name, old_host, &old_port, host,
               &port) != 5 ||
        strcmp(name, bus->cfg->sentinel_master) != 0)
        return;
    log_event(CONFIG_LOG_INFO, "redis_switch_master", "event", r->element[2]->str, NULL);
    topology_use_master(bus, host, port);
}

static void topology_sentinel_sub_up(struct bus_server *s)
{
    s->sub_up = true;
    const char *argv[] = {"SUBSCRIBE", "+switch-master"};
    size_t lens[] = {9, 14};
    bus_sconn_command(s->sub, 2, argv, lens);
}

/* Keeps one Sentinel's +switch-master subscription open. */
static void topology_watch_sentinels(struct bus *bus)
{
    for (int i = 0; i < bus->cfg->redis_count; i++)
        if (bus->servers[i]->sub)
            return;
    for (int i = 0; i < bus->cfg->redis_count; i++) {
        struct bus_server *s = bus->servers[i];
        if (s->cmd_up) {
            s->sub = bus_sconn_open(s, topology_on_sentinel_push, topology_sentinel_sub_up);
            return;
        }
    }
}

/* Once a second (the watchdog): a Sentinel whose +switch-master subscription was lost is
 * replaced by another one that is up. */
void bus_topology_tick(struct bus *bus)
{
    if (bus->mode == CONFIG_REDIS_SENTINEL && !bus->closing)
        topology_watch_sentinels(bus);
}

/* ---- events from servers ---- */

void bus_topology_server_ready(struct bus_server *s)
{
    struct bus *bus = s->bus;
    if (bus->mode == CONFIG_REDIS_SENTINEL && s->role == BUS_ROLE_SENTINEL) {
        topology_watch_sentinels(bus);
        if (bus->sentinel_data < 0 || !bus_server_ready(bus->servers[bus->sentinel_data]))
            topology_resolve(bus);
        return;
    }
    if (bus->mode == CONFIG_REDIS_CLUSTER && bus->map->node_count == 0)
        bus_topology_refresh(bus, "first");
    bus_topology_update_ready(bus);
}

void bus_topology_server_lost(struct bus_server *s)
{
    struct bus *bus = s->bus;
    bus_topology_update_ready(bus);
    if (bus->closing)
        return;
    if (bus->mode == CONFIG_REDIS_CLUSTER) {
        bus_topology_refresh(bus, "server lost");
    } else if (bus->mode == CONFIG_REDIS_SENTINEL && s->role == BUS_ROLE_DATA &&
               s->index == bus->sentinel_data) {
        /* Never reuse a master address across a loss: ask the Sentinels again. */
        s->wanted = false;
        topology_resolve_soon(bus);
    }
}

static void topology_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus *bus = arg;
    if (bus->mode == CONFIG_REDIS_CLUSTER)
        topology_fetch_slots(bus);
    else if (bus->mode == CONFIG_REDIS_SENTINEL && !bus_server_ready(bus->sentinel_data >= 0
                                                                        ? bus->servers[bus->sentinel_data]
                                                                        : NULL))
        topology_resolve(bus);
}

int bus_topology_start(struct bus *bus)
{
    const struct gateway_config *cfg = bus->cfg;
    bus->refresh_ev = evtimer_new(bus->base, topology_on_timer, bus);
    if (!bus->refresh_ev)
        return -1;
    enum bus_role role = bus->mode == CONFIG_REDIS_SENTINEL ? BUS_ROLE_SENTINEL : BUS_ROLE_DATA;
    for (int i = 0; i < cfg->redis_count; i++)
        if (!bus_server_add(bus, cfg->redis[i].host, cfg->redis[i].port, cfg->redis[i].db, role))
            return -1;
    bus->data_count = bus->mode == CONFIG_REDIS_PLAIN ? cfg->redis_count : 0;
    for (int i = 0; i < cfg->redis_count; i++)
        bus_server_connect(bus->servers[i]);
    bus_publish_snapshot(bus);
    return 0;
}
