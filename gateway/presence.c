/*
 * presence — who is in a room, cluster-wide (PROTOCOL.md §2, §5), on the connection thread.
 *
 * Locally each room keeps user → number of this node's connections in it. A user's first
 * local connection runs the join script, the last one the leave script (redis_scripts.h):
 * Redis keeps per room and user the set of nodes holding that user and announces user_joined /
 * user_left exactly when the first node arrives / the last one goes.
 *
 * Dead nodes, with Redis work proportional to changes, not to rooms × time: each node
 * refreshes one liveness deadline (two heartbeats ahead, on Redis's clock) once a second — one
 * call per tick, whatever the number of rooms — and that call returns the nodes past their
 * deadline. A node seen dead is claimed by one live node (a 30 s claim, so a cleaner that dies
 * is replaced), which reads the dead node's room set and, per room, removes the dead node from
 * its users (user_left for those it was the last node of), then forgets it. A node writes its
 * liveness before any presence entry (announcements wait for the first refresh's answer), so
 * no entry can outlive a node without a deadline that expires. A SIGKILLed node's
 * users so get user_left within two heartbeats plus about a second. The presence identity of
 * a node is its conn-id prefix (node id + boot time), so a node restarted under the same id
 * is a new node and the old one's entries are cleaned up, not adopted.
 */
#include "presence.h"
#include "session.h"
#include "store.h"
#include "clock.h"

#include "log.h"
#include "webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct user_count {
    unsigned n;
    char *name; /* the display name its first connection had (announced again after a loss) */
};

/* One dead node being cleaned up by this node. */
struct presence_cleanup {
    struct gateway *gw;
    char node[128];
    unsigned pending; /* room scripts not answered yet */
    bool failed;
};

static void presence_submit(struct gateway *gw, struct bus_cmd *cmd)
{
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "presence", NULL);
        return;
    }
    store_submit(gw, cmd);
}

/* The keys every per-room presence script takes: pu users names ch nu. */
struct presence_keys {
    char pu[REDIS_NAME_MAX], users[REDIS_NAME_MAX], names[REDIS_NAME_MAX], ch[REDIS_NAME_MAX],
        nu[REDIS_NAME_MAX];
};

static void presence_keys(const struct gateway *gw, const char *room, const char *user,
                          const char *node, struct presence_keys *k)
{
    char suffix[REDIS_NAME_MAX];
    snprintf(suffix, sizeof(suffix), "pu:%s", user ? user : "");
    redis_room_key(&gw->store.names, room, suffix, k->pu);
    redis_room_key(&gw->store.names, room, "users", k->users);
    redis_room_key(&gw->store.names, room, "names", k->names);
    redis_room_channel(&gw->store.names, room, k->ch);
    snprintf(suffix, sizeof(suffix), "nu:%s", node);
    redis_room_key(&gw->store.names, room, suffix, k->nu);
}

/* The node's room set: op "add" / "rem" room, "list", "del". */
static struct bus_cmd *presence_node_rooms(struct gateway *gw, const char *node, const char *op,
                                           const char *room, bus_done_fn done, void *arg)
{
    char key[REDIS_NAME_MAX], tag[REDIS_NAME_MAX];
    redis_node_rooms_key(&gw->store.names, node, key);
    redis_node_tag(node, tag);
    const char *argv[] = {key, op, room ? room : "", store_sharded(gw)};
    return bus_script(BUS_SCRIPT_ONLINE, tag, false, 1, 4, argv, done, arg);
}

/* Announces user (one of s's) in room to Redis: the join script. */
static void presence_announce(struct gateway *gw, struct room *room, const char *user,
                              const char *name, const char *sender)
{
    if (!gw->presence.live)
        return; /* announced once this node's liveness is registered (presence_on_refresh) */
    struct presence_keys k;
    char now[24];
    presence_keys(gw, room->name, user, gw->presence.node, &k);
    snprintf(now, sizeof(now), "%" PRId64, gateway_now_ms());
    const char *argv[] = {k.pu,   k.users, k.names, k.ch, k.nu,     gw->presence.node, user,
                          name ? name : "", now, room->name, sender, store_sharded(gw)};
    presence_submit(gw, bus_script(BUS_SCRIPT_PRESENCE_JOIN, room->name, false, 5, 12, argv,
                                   NULL, NULL));
}

void presence_member_added(struct gateway *gw, struct room *room, struct session *s)
{
    struct strmap *m = room->presence;
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m || strmap_init(m) != 0) {
            free(m);
            return;
        }
        room->presence = m;
        if (gw->presence.live)
            presence_submit(gw, presence_node_rooms(gw, gw->presence.node, "add", room->name,
                                                    NULL, NULL));
    }
    struct user_count *c = strmap_get(m, s->claims->sub);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (c && s->claims->name)
            c->name = strdup(s->claims->name);
        if (!c || strmap_put(m, s->claims->sub, c) != 0) {
            if (c)
                free(c->name);
            free(c);
            return;
        }
    }
    if (c->n++ == 0)
        presence_announce(gw, room, s->claims->sub, s->claims->name, s->conn_id);
}

void presence_member_removed(struct gateway *gw, struct room *room, struct session *s)
{
    struct strmap *m = room->presence;
    struct user_count *c = m ? strmap_get(m, s->claims->sub) : NULL;
    if (!c || --c->n)
        return;
    strmap_remove(m, s->claims->sub);
    free(c->name);
    free(c);
    struct presence_keys k;
    char now[24];
    presence_keys(gw, room->name, s->claims->sub, gw->presence.node, &k);
    snprintf(now, sizeof(now), "%" PRId64, gateway_now_ms());
    const char *argv[] = {k.pu, k.users, k.names, k.ch, k.nu, gw->presence.node, s->claims->sub,
                          now, room->name, store_sharded(gw)};
    presence_submit(gw, bus_script(BUS_SCRIPT_PRESENCE_LEAVE, room->name, false, 5, 10, argv,
                                   NULL, NULL));
}

void presence_room_free(struct gateway *gw, struct room *room)
{
    struct strmap *m = room->presence;
    if (!m)
        return;
    /* Empty by now: every member left through presence_member_removed. */
    strmap_free(m);
    free(m);
    room->presence = NULL;
    presence_submit(gw, presence_node_rooms(gw, gw->presence.node, "rem", room->name, NULL, NULL));
}

/* ---- dead nodes ---- */

static void presence_cleanup_step(struct presence_cleanup *c)
{
    struct gateway *gw = c->gw;
    if (c->pending)
        return;
    if (!c->failed) {
        /* Every room of the dead node is clean: forget the node (claim and liveness). */
        char live[REDIS_NAME_MAX], claim[REDIS_NAME_MAX], suffix[REDIS_NAME_MAX];
        redis_nodes_key(&gw->store.names, "live", live);
        snprintf(suffix, sizeof(suffix), "claim:%s", c->node);
        redis_nodes_key(&gw->store.names, suffix, claim);
        const char *argv[] = {live, claim, c->node, gw->presence.node, "done"};
        presence_submit(gw, bus_script(BUS_SCRIPT_NODE_DEAD, REDIS_NODES_TAG, false, 2, 5, argv,
                                       NULL, NULL));
        presence_submit(gw, presence_node_rooms(gw, c->node, "del", NULL, NULL, NULL));
        log_event(CONFIG_LOG_INFO, "presence_node_cleaned", "node", c->node, NULL);
    }
    free(c);
}

static void presence_on_forgotten(void *arg, struct bus_reply *r)
{
    struct presence_cleanup *c = arg;
    c->failed |= r->status != BUS_OK;
    c->pending--;
    presence_cleanup_step(c);
}

/* The dead node's rooms: one forget script per room (each on its room's server). */
static void presence_on_dead_rooms(void *arg, struct bus_reply *r)
{
    struct presence_cleanup *c = arg;
    struct gateway *gw = c->gw;
    c->failed |= r->status != BUS_OK;
    char now[24], prefix[REDIS_NAME_MAX];
    snprintf(now, sizeof(now), "%" PRId64, gateway_now_ms());
    for (size_t i = 0; r->status == BUS_OK && i < r->nstrings; i++) {
        const char *room = r->strings[i];
        if (!proto_room_valid(room, strlen(room)))
            continue;
        struct presence_keys k;
        presence_keys(gw, room, NULL, c->node, &k);
        redis_room_user_prefix(&gw->store.names, room, prefix);
        const char *argv[] = {k.nu, k.users, k.names, k.ch, c->node, prefix, now, room,
                              store_sharded(gw)};
        struct bus_cmd *cmd = bus_script(BUS_SCRIPT_ROOM_FORGET_NODE, room, false, 4, 9, argv,
                                         presence_on_forgotten, c);
        if (!cmd) {
            c->failed = true;
            continue;
        }
        c->pending++;
        store_submit(gw, cmd);
    }
    presence_cleanup_step(c);
}

static void presence_on_claim(void *arg, struct bus_reply *r)
{
    struct presence_cleanup *c = arg;
    if (r->status != BUS_OK || r->integer != 1) {
        free(c); /* another node cleans it up, or Redis is away: the next tick tries again */
        return;
    }
    log_event(CONFIG_LOG_INFO, "presence_node_dead", "node", c->node, NULL);
    webhooks_node_dead(c->gw, c->node);
    struct bus_cmd *cmd =
        presence_node_rooms(c->gw, c->node, "list", NULL, presence_on_dead_rooms, c);
    if (!cmd) {
        free(c);
        return;
    }
    store_submit(c->gw, cmd);
}

static void presence_rejoin_room(struct room *room, void *arg);

static void presence_on_refresh(void *arg, struct bus_reply *r)
{
    struct gateway *gw = arg;
    if (r->status != BUS_OK)
        return;
    if (!gw->presence.live) {
        /* Liveness first, entries after: a node must never leave presence entries behind that
         * no liveness deadline will ever expire. */
        gw->presence.live = true;
        room_registry_each(&gw->rooms, presence_rejoin_room, gw);
    }
    char live[REDIS_NAME_MAX], claim[REDIS_NAME_MAX], suffix[REDIS_NAME_MAX];
    redis_nodes_key(&gw->store.names, "live", live);
    for (size_t i = 0; i < r->nstrings; i++) {
        const char *dead = r->strings[i];
        if (strcmp(dead, gw->presence.node) == 0 || strlen(dead) >= sizeof(((struct presence_cleanup *)0)->node))
            continue;
        struct presence_cleanup *c = calloc(1, sizeof(*c));
        if (!c)
            return;
        c->gw = gw;
        snprintf(c->node, sizeof(c->node), "%s", dead);
        snprintf(suffix, sizeof(suffix), "claim:%s", dead);
        redis_nodes_key(&gw->store.names, suffix, claim);
        const char *argv[] = {live, claim, dead, gw->presence.node, "claim"};
        struct bus_cmd *cmd = bus_script(BUS_SCRIPT_NODE_DEAD, REDIS_NODES_TAG, false, 2, 5,
                                         argv, presence_on_claim, c);
        if (!cmd) {
            free(c);
            return;
        }
        store_submit(gw, cmd);
    }
}

void presence_tick(struct gateway *gw)
{
    if (!store_ready(gw, REDIS_NODES_TAG, false))
        return;
    char live[REDIS_NAME_MAX], lifetime[24];
    redis_nodes_key(&gw->store.names, "live", live);
    snprintf(lifetime, sizeof(lifetime), "%d", gw->cfg->heartbeat_s * 2000);
    const char *argv[] = {live, gw->presence.node, lifetime};
    presence_submit(gw, bus_script(BUS_SCRIPT_NODE_REFRESH, REDIS_NODES_TAG, false, 1, 3, argv,
                                   presence_on_refresh, gw));
}

/* Re-announce after Redis came back (it may have lost everything): every local user again.
 * The scripts are idempotent; user_joined goes out again only where Redis had lost the user. */
struct presence_pass {
    struct gateway *gw;
    struct room *room;
};

static void presence_rejoin_user(const char *user, void *value, void *arg)
{
    struct user_count *c = value;
    struct presence_pass *p = arg;
    presence_announce(p->gw, p->room, user, c->name, "-");
}

static void presence_rejoin_room(struct room *room, void *arg)
{
    struct presence_pass p = {arg, room};
    if (!room->presence)
        return;
    presence_submit(p.gw, presence_node_rooms(p.gw, p.gw->presence.node, "add", room->name, NULL,
                                              NULL));
    strmap_each(room->presence, presence_rejoin_user, &p);
}

void presence_on_ready(struct gateway *gw)
{
    if (gw->presence.live)
        room_registry_each(&gw->rooms, presence_rejoin_room, gw);
    else
        presence_tick(gw); /* registers this node; its answer announces what is here */
}

/* ---- requests ---- */

static void presence_on_online(void *arg, struct bus_reply *r)
{
    (void)arg;
    struct session *s = r->echo.ptr;
    const char *id = r->echo.text ? r->echo.text : "";
    if (s->wsi) {
        if (r->status != BUS_OK)
            session_send_error(s, id, PROTO_ERR_UNAVAILABLE, "presence store unavailable");
        else
            session_send_json(s, proto_encode_user_status(id, r->echo.name, r->integer > 0));
    }
    session_release(s);
}

static void presence_on_list(void *arg, struct bus_reply *r)
{
    (void)arg;
    struct session *s = r->echo.ptr;
    const char *id = r->echo.text ? r->echo.text : "";
    if (s->wsi && r->status != BUS_OK) {
        session_send_error(s, id, PROTO_ERR_UNAVAILABLE, "presence store unavailable");
    } else if (s->wsi) {
        size_t n = r->nstrings / 2;
        const char **users = calloc(n + 1, sizeof(*users));
        const char **names = calloc(n + 1, sizeof(*names));
        if (!users || !names) {
            session_send_error(s, id, PROTO_ERR_INTERNAL, "out of memory");
        } else {
            for (size_t i = 0; i < n; i++) {
                users[i] = r->strings[2 * i];
                names[i] = r->strings[2 * i + 1][0] ? r->strings[2 * i + 1] : NULL;
            }
            session_send_json(s, proto_encode_presence(id, r->echo.name,
                                                       (const char *const *)users,
                                                       (const char *const *)names, n));
        }
        free(users);
        free(names);
    }
    session_release(s);
}

void presence_request(struct gateway *gw, struct session *s, const struct proto_request *req,
                      struct room *room)
{
    struct bus_cmd *cmd;
    const char *key = room ? room->name : req->to;
    if (room) {
        struct presence_keys k;
        presence_keys(gw, room->name, NULL, gw->presence.node, &k);
        const char *argv[] = {k.users, k.names};
        cmd = bus_script(BUS_SCRIPT_PRESENCE_LIST, room->name, false, 2, 2, argv,
                         presence_on_list, gw);
    } else {
        /* Online anywhere: nodes subscribe a user's channel while they hold the user. */
        char ch[REDIS_NAME_MAX];
        redis_user_channel(&gw->store.names, req->to, ch);
        const char *argv[] = {ch, "online", store_sharded(gw)};
        cmd = bus_script(BUS_SCRIPT_ONLINE, req->to, true, 1, 3, argv, presence_on_online, gw);
    }
    struct bus_echo *e = cmd ? bus_cmd_echo(cmd) : NULL;
    if (!cmd || !(e->text = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    snprintf(e->name, sizeof(e->name), "%s", key);
    e->ptr = s;
    session_submit(s, cmd);
}
