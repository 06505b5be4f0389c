/*
 * users — this node's connections per user (connection thread only).
 *
 * Direct messages travel on one Redis channel per user ("<prefix>u:{U}:ch"), subscribed while
 * the user has at least one connection on this node: the first connection subscribes, the last
 * one to close unsubscribes (the bus reconciles, so quick reconnects cannot race). A direct
 * frame arriving on that channel is queued to every local connection of the user except the
 * one that sent it (the sender's other connections get a copy, PROTOCOL.md §2).
 */
#include "users.h"
#include "session.h"
#include "store.h"

#include "log.h"
#include "webhooks.h"

#include <stdlib.h>
#include <string.h>

struct local_user {
    struct session **sessions;
    unsigned count, cap;
};

static void users_subscribe(struct gateway *gw, const char *user, bool want)
{
    struct bus_cmd *cmd = bus_subscribe(user, true, want);
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "users_subscribe", NULL);
        return;
    }
    store_submit(gw, cmd);
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
    if (first) {
        users_subscribe(gw, user, true);
        webhooks_user_changed(gw, user);
    }
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
        webhooks_user_changed(gw, user);
    }
}

void users_on_push(void *arg, struct bus_push *p)
{
    struct gateway *gw = arg;
    if (p->name[0] == '@') {
        webhooks_on_push(gw, p); /* '@' ids are the server's own channels */
        return;
    }
    struct local_user *u = strmap_get(&gw->users, p->name);
    if (!u || p->kind != BUS_PUSH_MESSAGE)
        return; /* directs are not stored: a lost subscription has nothing to read back */
    for (unsigned i = 0; i < u->count; i++) {
        struct session *s = u->sessions[i];
        if (s->serial != p->frame->sender_serial)
            session_enqueue(s, p->frame);
    }
}
