/*
 * presence — who is in a room, cluster-wide (PROTOCOL.md §2, §5), on the connection thread.
 *
 * Locally each room keeps user → number of this node's connections in the room. A user's first
 * local connection runs the join script, the last one the leave script (redis_scripts.h): Redis
 * keeps, per room and user, the set of nodes holding that user, and announces user_joined /
 * user_left when the first node arrives / the last one goes. Entries expire two heartbeats
 * after their node last refreshed them (every half heartbeat), and every node with members in a
 * room sweeps it every second, so a node killed with SIGKILL leaves no ghost: its users get
 * user_left within two heartbeats plus about a second.
 */
#include "presence.h"

#include "log.h"
#include "redis_scripts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRESENCE_SWEEP_MS 1000

struct user_count {
    unsigned n;
};

static void presence_keys(const struct gateway *gw, const char *room, const char *user,
                          char pu[], char users[], char names[], char ch[], size_t len)
{
    const char *p = gw->cfg->redis_prefix;
    if (pu)
        snprintf(pu, len, "%s:{%s}:pu:%s", p, room, user ? user : "");
    if (users)
        snprintf(users, len, "%s:{%s}:users", p, room);
    if (names)
        snprintf(names, len, "%s:{%s}:names", p, room);
    if (ch)
        snprintf(ch, len, "%s:{%s}:ch", p, room);
}

static int64_t presence_expiry_ms(const struct gateway *gw, int64_t now)
{
    return now + (int64_t)gw->cfg->heartbeat_s * 2000;
}

/* Routes a presence script to the instance of its room. */
static void presence_submit(struct gateway *gw, const char *room, struct bus_cmd *cmd)
{
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "presence", NULL);
        return;
    }
    snprintf(cmd->room, sizeof(cmd->room), "%s", room);
    shard_submit(gw, cmd);
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
    }
    struct user_count *c = strmap_get(m, s->claims->sub);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c || strmap_put(m, s->claims->sub, c) != 0) {
            free(c);
            return;
        }
    }
    if (c->n++ || !shard_bus(gw, room->name))
        return;
    char pu[BUS_CHANNEL_MAX + 140], users[BUS_CHANNEL_MAX], names[BUS_CHANNEL_MAX],
        ch[BUS_CHANNEL_MAX], exp[24], now_s[24];
    presence_keys(gw, room->name, NULL, NULL, users, names, ch, sizeof(users));
    snprintf(pu, sizeof(pu), "%s:{%s}:pu:%s", gw->cfg->redis_prefix, room->name, s->claims->sub);
    int64_t now = gateway_now_ms();
    snprintf(exp, sizeof(exp), "%" PRId64, presence_expiry_ms(gw, now));
    snprintf(now_s, sizeof(now_s), "%" PRId64, now);
    const char *argv[] = {pu, users, names, ch, gw->cfg->node_id, s->claims->sub,
                          s->claims->name ? s->claims->name : "", exp, now_s, room->name,
                          s->conn_id};
    presence_submit(gw, room->name, bus_script_new(REDIS_SCRIPT_PRESENCE_JOIN, 4, 11, argv));
}

void presence_member_removed(struct gateway *gw, struct room *room, struct session *s)
{
    struct strmap *m = room->presence;
    struct user_count *c = m ? strmap_get(m, s->claims->sub) : NULL;
    if (!c || --c->n)
        return;
    free(strmap_remove(m, s->claims->sub));
    if (!shard_bus(gw, room->name))
        return;
    char pu[BUS_CHANNEL_MAX + 140], users[BUS_CHANNEL_MAX], names[BUS_CHANNEL_MAX],
        ch[BUS_CHANNEL_MAX], now_s[24];
    presence_keys(gw, room->name, NULL, NULL, users, names, ch, sizeof(users));
    snprintf(pu, sizeof(pu), "%s:{%s}:pu:%s", gw->cfg->redis_prefix, room->name, s->claims->sub);
    snprintf(now_s, sizeof(now_s), "%" PRId64, gateway_now_ms());
    const char *argv[] = {pu, users, names, ch, gw->cfg->node_id, s->claims->sub, now_s,
                          room->name};
    presence_submit(gw, room->name, bus_script_new(REDIS_SCRIPT_PRESENCE_LEAVE, 4, 8, argv));
}

void presence_room_free(struct room *room)
{
    struct strmap *m = room->presence;
    if (!m)
        return;
    /* Empty by now: every member left through presence_member_removed. */
    strmap_free(m);
    free(m);
    room->presence = NULL;
}

struct name_list {
    const char **v;
    size_t n, cap;
};

static void presence_collect_user(const char *user, void *value, void *arg)
{
    (void)value;
    struct name_list *l = arg;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        const char **nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv)
            return;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = user;
}

/* Refresh this node's entries of one room (one script for all its local users). */
static void presence_refresh_room(struct gateway *gw, struct room *room, int64_t now)
{
    struct strmap *m = room->presence;
    if (!m || m->count == 0)
        return;
    struct name_list l = {0};
    strmap_each(m, presence_collect_user, &l);
    char users[BUS_CHANNEL_MAX], prefix[BUS_CHANNEL_MAX], exp[24];
    presence_keys(gw, room->name, NULL, NULL, users, NULL, NULL, sizeof(users));
    snprintf(prefix, sizeof(prefix), "%s:{%s}:pu:", gw->cfg->redis_prefix, room->name);
    snprintf(exp, sizeof(exp), "%" PRId64, presence_expiry_ms(gw, now));
    const char **argv = calloc(l.n + 4, sizeof(*argv));
    if (argv) {
        argv[0] = users;
        argv[1] = prefix;
        argv[2] = gw->cfg->node_id;
        argv[3] = exp;
        for (size_t i = 0; i < l.n; i++)
            argv[4 + i] = l.v[i];
        presence_submit(gw, room->name,
                        bus_script_new(REDIS_SCRIPT_PRESENCE_REFRESH, 1, (int)(l.n + 4), argv));
    }
    free(argv);
    free(l.v);
}

static void presence_sweep_room(struct gateway *gw, struct room *room, int64_t now)
{
    char users[BUS_CHANNEL_MAX], names[BUS_CHANNEL_MAX], ch[BUS_CHANNEL_MAX],
        prefix[BUS_CHANNEL_MAX], now_s[24];
    presence_keys(gw, room->name, NULL, NULL, users, names, ch, sizeof(users));
    snprintf(prefix, sizeof(prefix), "%s:{%s}:pu:", gw->cfg->redis_prefix, room->name);
    snprintf(now_s, sizeof(now_s), "%" PRId64, now);
    const char *argv[] = {users, names, ch, prefix, now_s, room->name};
    presence_submit(gw, room->name, bus_script_new(REDIS_SCRIPT_PRESENCE_SWEEP, 3, 6, argv));
}

struct presence_pass {
    struct gateway *gw;
    int64_t now;
    bool refresh;
};

static void presence_tick_room(struct room *room, void *arg)
{
    struct presence_pass *p = arg;
    if (!shard_ready(p->gw, room->name))
        return;
    if (p->refresh)
        presence_refresh_room(p->gw, room, p->now);
    presence_sweep_room(p->gw, room, p->now);
}

void presence_tick(struct gateway *gw)
{
    if (!shards_any_ready(gw))
        return;
    int64_t now = gateway_now_ms();
    if (now - gw->presence_swept_ms < PRESENCE_SWEEP_MS)
        return;
    gw->presence_swept_ms = now;
    struct presence_pass p = {gw, now, false};
    if (now - gw->presence_refreshed_ms >= (int64_t)gw->cfg->heartbeat_s * 500) {
        p.refresh = true;
        gw->presence_refreshed_ms = now;
    }
    room_registry_each(&gw->rooms, presence_tick_room, &p);
}

/* Re-announce after Redis came back (it may have lost everything): every local user again. */
static void presence_rejoin_room(struct room *room, void *arg)
{
    struct presence_pass *p = arg;
    presence_refresh_room(p->gw, room, p->now);
}

void presence_on_ready(struct gateway *gw)
{
    struct presence_pass p = {gw, gateway_now_ms(), true};
    room_registry_each(&gw->rooms, presence_rejoin_room, &p);
}

/* presence with "user": online anywhere in the cluster, from the subscriber count of the
 * user's direct-message channel (no extra state to keep or expire). */
static void presence_user_request(struct gateway *gw, struct session *s,
                                  const struct proto_request *req)
{
    char ch[BUS_CHANNEL_MAX];
    snprintf(ch, sizeof(ch), "%s:u:{%s}:ch", gw->cfg->redis_prefix, req->to);
    const char *argv[] = {ch};
    struct bus_cmd *cmd = bus_script_new(REDIS_SCRIPT_USER_ONLINE, 1, 1, argv);
    if (!cmd || !(cmd->id_json = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    snprintf(cmd->room, sizeof(cmd->room), "%s", req->to);
    cmd->purpose = PRESENCE_USER_PURPOSE;
    session_submit(s, cmd);
}

void presence_request(struct gateway *gw, struct session *s, const struct proto_request *req,
                      struct room *room)
{
    if (!room) {
        presence_user_request(gw, s, req);
        return;
    }
    char users[BUS_CHANNEL_MAX], names[BUS_CHANNEL_MAX], now_s[24];
    presence_keys(gw, room->name, NULL, NULL, users, names, NULL, sizeof(users));
    snprintf(now_s, sizeof(now_s), "%" PRId64, gateway_now_ms());
    const char *argv[] = {users, names, now_s};
    struct bus_cmd *cmd = bus_script_new(REDIS_SCRIPT_PRESENCE_LIST, 2, 3, argv);
    if (!cmd || !(cmd->id_json = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    snprintf(cmd->room, sizeof(cmd->room), "%s", room->name);
    cmd->purpose = PRESENCE_LIST_PURPOSE;
    session_submit(s, cmd);
}

void presence_on_script(struct gateway *gw, struct bus_event *ev)
{
    (void)gw;
    struct session *s = ev->owner;
    if (ev->purpose == PRESENCE_USER_PURPOSE) {
        if (s->wsi) {
            if (ev->status != 0 || ev->nstrings != 2)
                session_send_error(s, ev->id_json, PROTO_ERR_UNAVAILABLE,
                                   "presence store unavailable");
            else
                session_send_json(s, proto_encode_user_status(ev->id_json, ev->room,
                                                              strtoll(ev->strings[1], NULL, 10) > 0));
        }
        session_release(s);
        return;
    }
    if (ev->purpose != PRESENCE_LIST_PURPOSE)
        return;
    if (s->wsi) {
        if (ev->status != 0) {
            session_send_error(s, ev->id_json, PROTO_ERR_UNAVAILABLE, "presence store unavailable");
        } else {
            size_t n = ev->nstrings / 2;
            const char **users = calloc(n + 1, sizeof(*users));
            const char **names = calloc(n + 1, sizeof(*names));
            if (!users || !names) {
                session_send_error(s, ev->id_json, PROTO_ERR_INTERNAL, "out of memory");
            } else {
                for (size_t i = 0; i < n; i++) {
                    users[i] = ev->strings[2 * i];
                    names[i] = ev->strings[2 * i + 1][0] ? ev->strings[2 * i + 1] : NULL;
                }
                session_send_json(s, proto_encode_presence(ev->id_json, ev->room,
                                                           (const char *const *)users,
                                                           (const char *const *)names, n));
            }
            free(users);
            free(names);
        }
    }
    session_release(s);
}
