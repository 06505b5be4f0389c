/*
 * users — this node's connections per user (connection thread only).
 *
 * Direct messages travel on one Redis channel per user ("<prefix>u:{U}:ch"), subscribed while
 * the user has at least one connection on this node: the first connection subscribes, the last
 * one to close unsubscribes (the bus reconciles, so quick reconnects cannot race). A direct
 * frame arriving on that channel is queued to every local connection of the user except the
 * one that sent it (the sender's other connections get a copy, PROTOCOL.md §2).
 */
#include "gateway.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

struct local_user {
    struct session **sessions;
    unsigned count, cap;
};

static void users_subscribe(struct gateway *gw, const char *user, bool want)
{
    struct bus_cmd *cmd = bus_cmd_new(want ? BUS_CMD_SUBSCRIBE : BUS_CMD_UNSUBSCRIBE, user);
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "users_subscribe", NULL);
        return;
    }
    cmd->user_channel = true;
    shard_submit(gw, cmd);
}

int users_add(struct gateway *gw, struct session *s)
{
    const char *user = s->claims->sub;
    struct local_user *u = strmap_get(&gw->users, user);
    bool first = u == NULL;
    if (first) {
        u = calloc(1, sizeof(*u));
        if (!u || strmap_put(&gw->users, user, u) != 0) {
            free(u);
            return -1;
        }
    }
    if (u->count == u->cap) {
        unsigned ncap = u->cap ? u->cap * 2 : 2;
        struct session **n = realloc(u->sessions, sizeof(*n) * ncap);
        if (!n) {
            if (first) {
                strmap_remove(&gw->users, user);
                free(u);
            }
            return -1;
        }
        u->sessions = n;
        u->cap = ncap;
    }
    u->sessions[u->count++] = s;
    if (first)
        users_subscribe(gw, user, true);
    return 0;
}

void users_remove(struct gateway *gw, struct session *s)
{
    const char *user = s->claims->sub;
    struct local_user *u = strmap_get(&gw->users, user);
    if (!u)
        return;
    for (unsigned i = 0; i < u->count; i++) {
        if (u->sessions[i] == s) {
            u->sessions[i] = u->sessions[--u->count];
            break;
        }
    }
    if (u->count == 0) {
        strmap_remove(&gw->users, user);
        free(u->sessions);
        free(u);
        users_subscribe(gw, user, false);
    }
}

void users_on_direct(struct gateway *gw, struct bus_event *ev)
{
    struct local_user *u = strmap_get(&gw->users, ev->room);
    if (!u || !ev->frame)
        return;
    for (unsigned i = 0; i < u->count; i++) {
        struct session *s = u->sessions[i];
        if (s->serial != ev->frame->sender_serial)
            session_enqueue(s, ev->frame);
    }
}
