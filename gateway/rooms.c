/*
 * rooms — room membership on this node, as the thin adapter between common/room_sync.h (the
 * delivery guarantee as a pure state machine) and the world: it feeds room_sync the requests
 * of sessions and what Redis says, and carries out the actions room_sync returns — Redis
 * commands through the bus (each with its completion back into room_sync), frames to sessions.
 *
 * The ordering rules live in room_sync, not here: this file only translates. What is here:
 *   - the room claim, the room limit and readiness checks of a join (PROTOCOL.md §2);
 *   - the hot path of fan-out (DELIVER): one shared frame queued by reference to every live
 *     member but its sender (recognised by serial, not by string compare);
 *   - the session side of membership (each session's list of rooms) and presence hooks;
 * A completion finds its room again by name and generation: a room dropped and re-created
 * meanwhile is another incarnation, and room_sync ignores answers whose tag it did not issue.
 */
#include "rooms.h"
#include "session.h"
#include "store.h"

#include "log.h"
#include "presence.h"
#include "reads.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Frames a room holds while it cannot deliver (room_sync rule 10). */
#define ROOMS_BACKLOG_MAX 10000

/* Adds room to the session's list; 0 or -1. */
static int session_list_add(struct session *s, struct room *room)
{
    if (s->room_count == s->room_cap) {
        unsigned ncap = s->room_cap ? s->room_cap * 2 : 4;
        struct session_room *n = realloc(s->rooms, sizeof(*n) * ncap);
        if (!n)
            return -1;
        s->rooms = n;
        s->room_cap = ncap;
    }
    s->rooms[s->room_count++] = (struct session_room){.room = room};
    return 0;
}

static void session_list_remove(struct session *s, const struct room *room)
{
    for (unsigned i = 0; i < s->room_count; i++) {
        if (s->rooms[i].room == room) {
            s->rooms[i] = s->rooms[--s->room_count];
            return;
        }
    }
}

void rooms_init(struct gateway *gw)
{
    room_sync_init(&gw->sync, (uint64_t)gw->cfg->history_size, ROOMS_BACKLOG_MAX);
}

/* ---- Redis commands for room_sync's actions ---- */

static void rooms_on_sync_answer(void *arg, struct bus_reply *r);
static void rooms_on_fetch_answer(void *arg, struct bus_reply *r);

/* A script on the room's keys seq log epoch reads (the layout SYNC and ROTATE share). */
static void rooms_submit_epoch_script(struct gateway *gw, struct room *room,
                                      enum bus_script script, uint64_t tag, const char *old)
{
    const struct redis_names *n = &gw->store.names;
    char seq[REDIS_NAME_MAX], logk[REDIS_NAME_MAX], epochk[REDIS_NAME_MAX], reads[REDIS_NAME_MAX];
    char cand[17];
    redis_room_key(n, room->name, "seq", seq);
    redis_room_key(n, room->name, "log", logk);
    redis_room_key(n, room->name, "epoch", epochk);
    redis_room_key(n, room->name, "reads", reads);
    store_epoch_candidate(gw, cand);
    const char *argv[] = {seq, logk, epochk, reads, old ? old : cand, cand};
    struct bus_cmd *cmd =
        bus_script(script, room->name, false, 4, old ? 6 : 5, argv, rooms_on_sync_answer, gw);
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "rooms_sync", NULL);
        return;
    }
    struct bus_echo *e = bus_cmd_echo(cmd);
    snprintf(e->name, sizeof(e->name), "%s", room->name);
    e->a = room->generation;
    e->b = tag;
    store_submit(gw, cmd);
}

/* FETCH [from, to] of the room's log, with its epoch and counter read in the same script. */
static void rooms_submit_fetch(struct gateway *gw, struct room *room,
                               const struct room_sync_action *a)
{
    const struct redis_names *n = &gw->store.names;
    char logk[REDIS_NAME_MAX], epochk[REDIS_NAME_MAX], seq[REDIS_NAME_MAX];
    char from[24], to[24], budget[24], count[24];
    redis_room_key(n, room->name, "log", logk);
    redis_room_key(n, room->name, "epoch", epochk);
    redis_room_key(n, room->name, "seq", seq);
    snprintf(from, sizeof(from), "%" PRIu64, a->from);
    snprintf(to, sizeof(to), "%" PRIu64, a->to);
    /* A recovery (a client's join with since) reads in pages of --history-page bytes, so one
     * request cannot make Redis return tens of megabytes; a gap fill of this node's own
     * subscription reads its whole range (at most --history-size offsets) at once. */
    if (a->session)
        snprintf(budget, sizeof(budget), "%zu", gw->cfg->history_page_bytes);
    else
        snprintf(budget, sizeof(budget), "%llu", 1ull << 40);
    snprintf(count, sizeof(count), "%" PRIu64, a->to - a->from + 1);
    const char *argv[] = {logk, epochk, seq, from, to, budget, count};
    struct bus_cmd *cmd =
        bus_script(BUS_SCRIPT_FETCH, room->name, false, 3, 7, argv, rooms_on_fetch_answer, gw);
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "rooms_fetch", NULL);
        return;
    }
    bus_cmd_parse(cmd, BUS_PARSE_FRAMES);
    struct bus_echo *e = bus_cmd_echo(cmd);
    snprintf(e->name, sizeof(e->name), "%s", room->name);
    e->a = room->generation;
    e->b = a->tag;
    e->ptr = a->session;
    if (a->session)
        ((struct session *)a->session)->inflight++; /* alive until the answer (recovery) */
    store_submit(gw, cmd);
}

/* ---- room_sync's actions ---- */

/* Queues frame to every live member of room except its sender's connection. */
static void rooms_fan_out(struct gateway *gw, struct room *room, struct frame *frame)
{
    uint64_t sender_serial = frame->sender_serial;
    for (unsigned i = 0; i < room->member_count; i++) {
        struct room_member *m = &room->members[i];
        struct session *s = m->session;
        if (m->pending || s->serial == sender_serial)
            continue;
        if (m->held)
            reads_hold_frame(m, frame); /* `joined` waits for its read marker */
        else
            session_enqueue(s, frame);
        gw->metrics.deliveries++;
    }
}

/* Answers each '\n'-separated request id of a JOINED / JOIN_FAILED action. */
static void rooms_answer_ids(struct gateway *gw, struct room *room,
                             const struct room_sync_action *a)
{
    struct session *s = a->session;
    if (!s->wsi)
        return;
    if (a->type == ROOM_SYNC_JOINED) {
        reads_answer_joined(gw, s, room, a->ids, a->offset, a->epoch, a->recovered);
        return;
    }
    for (char *id = a->ids;;) {
        char *nl = strchr(id, '\n');
        if (nl)
            *nl = '\0';
        session_send_error(s, id, a->error,
                           a->error == PROTO_ERR_NOT_JOINED ? "left before the join completed"
                                                            : "message store unavailable");
        if (!nl)
            break;
        id = nl + 1;
    }
}

/* A member room_sync removed (its join failed): the session side follows. */
static void rooms_member_gone(struct gateway *gw, struct room *room, struct session *s)
{
    session_list_remove(s, room);
    presence_member_removed(gw, room, s);
}

static void rooms_drop(struct gateway *gw, struct room *room)
{
    struct bus_cmd *cmd = bus_subscribe(room->name, false, false);
    if (cmd)
        store_submit(gw, cmd);
    presence_room_free(gw, room);
    reads_room_free(room);
    room_registry_remove(&gw->rooms, room);
}

/* Carries out every action of the last room_sync event; false when the room was dropped. */
static bool rooms_perform(struct gateway *gw, struct room *room)
{
    struct room_sync *rs = &gw->sync;
    bool alive = true;
    for (size_t i = 0; i < rs->action_count; i++) {
        struct room_sync_action *a = &rs->actions[i];
        switch (a->type) {
        case ROOM_SYNC_SUBSCRIBE: {
            struct bus_cmd *cmd = bus_subscribe(room->name, false, true);
            if (cmd)
                store_submit(gw, cmd);
            break;
        }
        case ROOM_SYNC_UNSUBSCRIBE:
            rooms_drop(gw, room);
            alive = false;
            break;
        case ROOM_SYNC_SYNC:
            rooms_submit_epoch_script(gw, room, BUS_SCRIPT_SYNC, a->tag, NULL);
            break;
        case ROOM_SYNC_ROTATE:
            log_event(CONFIG_LOG_WARN, "room_rotate", "room", room->name, "old", a->epoch, NULL);
            rooms_submit_epoch_script(gw, room, BUS_SCRIPT_ROTATE, a->tag, a->epoch);
            break;
        case ROOM_SYNC_FETCH:
            rooms_submit_fetch(gw, room, a);
            break;
        case ROOM_SYNC_DELIVER:
            rooms_fan_out(gw, room, a->frame);
            break;
        case ROOM_SYNC_SEND:
            session_enqueue(a->session, a->frame);
            break;
        case ROOM_SYNC_JOINED:
            rooms_answer_ids(gw, room, a);
            break;
        case ROOM_SYNC_JOIN_FAILED:
            rooms_answer_ids(gw, room, a);
            rooms_member_gone(gw, room, a->session);
            break;
        case ROOM_SYNC_RESET:
            gw->metrics.epoch_resets++;
            reads_forget(room); /* the markers went with the old epoch */
            session_send_json(a->session, proto_encode_reset(room->name, a->epoch, a->offset));
            break;
        }
        if (!alive)
            break;
    }
    room_sync_actions_clear(rs);
    /* Cumulative counters of room_sync, folded into the node's metrics. */
    gw->metrics.offsets_refilled += rs->stats.refilled;
    gw->metrics.gaps += rs->stats.lost;
    rs->stats.refilled = rs->stats.lost = 0;
    if (rs->stats.oom) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "room_sync", NULL);
        rs->stats.oom = 0;
    }
    return alive;
}

/* ---- answers from Redis ---- */

/* The room of a completion, or NULL when it was dropped (or re-created) meanwhile. */
static struct room *rooms_of_echo(struct gateway *gw, const struct bus_echo *e)
{
    struct room *room = room_registry_find(&gw->rooms, e->name);
    return room && room->generation == e->a ? room : NULL;
}

static void rooms_on_sync_answer(void *arg, struct bus_reply *r)
{
    struct gateway *gw = arg;
    struct room *room = rooms_of_echo(gw, &r->echo);
    if (!room)
        return;
    bool ok = r->status == BUS_OK && r->nstrings == 2 && r->strings[1][0] &&
              strlen(r->strings[1]) <= PROTO_EPOCH_MAX;
    room_sync_sync_result(&gw->sync, room, r->echo.b, ok, ok ? r->strings[1] : "",
                          ok ? strtoull(r->strings[0], NULL, 10) : 0);
    rooms_perform(gw, room);
}

static void rooms_on_fetch_answer(void *arg, struct bus_reply *r)
{
    struct gateway *gw = arg;
    struct session *s = r->echo.ptr;
    struct room *room = rooms_of_echo(gw, &r->echo);
    if (room && (!s || s->wsi)) {
        bool ok = r->status == BUS_OK && r->nstrings == 2;
        struct room_sync_fetched res = {
            .tag = r->echo.b,
            .ok = ok,
            .more = ok && r->integer != 0,
            .epoch = ok ? r->strings[0] : "",
            .head = ok ? strtoull(r->strings[1], NULL, 10) : 0,
            .frames = r->frames,
            .count = r->nframes,
        };
        room_sync_fetch_result(&gw->sync, room, &res);
        rooms_perform(gw, room);
    }
    if (s)
        session_release(s);
}

/* ---- requests ---- */

void rooms_join(struct gateway *gw, struct session *s, const struct proto_request *req)
{
    if (!auth_room_allowed(s->claims, req->room)) {
        session_send_error(s, req->id, PROTO_ERR_FORBIDDEN, "room not allowed by token");
        return;
    }
    struct room *room = room_registry_find(&gw->rooms, req->room);
    bool member = room && room_find_member(room, s) >= 0;
    if (!member && s->room_count >= (unsigned)gw->cfg->max_rooms) {
        session_send_error(s, req->id, PROTO_ERR_LIMIT_EXCEEDED,
                           "too many rooms on this connection");
        return;
    }
    if (!member && !store_ready(gw, req->room, false)) {
        session_send_error(s, req->id, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        return;
    }
    bool created = !room;
    if (created && !(room = room_registry_add(&gw->rooms, req->room))) {
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    struct room_sync_since since = {req->since_offset, req->since_epoch};
    if ((!member && session_list_add(s, room) != 0) ||
        room_sync_join(&gw->sync, room, s, req->id, req->has_since ? &since : NULL) != 0) {
        if (!member)
            session_list_remove(s, room);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        if (created)
            room_registry_remove(&gw->rooms, room);
        return;
    }
    if (!member)
        presence_member_added(gw, room, s);
    if (rooms_perform(gw, room))
        log_event(CONFIG_LOG_DEBUG, "join", "conn", s->conn_id, "user", s->claims->sub, "room",
                  room->name, NULL);
}

/* Removes s from room (answering a still-pending join with not_joined). */
static void rooms_remove_member(struct gateway *gw, struct session *s, struct room *room)
{
    int idx = room_find_member(room, s);
    if (idx >= 0)
        reads_release_hold(&room->members[idx]);
    session_list_remove(s, room);
    presence_member_removed(gw, room, s);
    if (room_sync_leave(&gw->sync, room, s))
        rooms_perform(gw, room);
}

void rooms_leave(struct gateway *gw, struct session *s, const char *name, const char *id_json)
{
    struct room *room = room_registry_find(&gw->rooms, name);
    if (!room || room_find_member(room, s) < 0) {
        session_send_error(s, id_json, PROTO_ERR_NOT_JOINED, "not a member of this room");
        return;
    }
    rooms_remove_member(gw, s, room);
    session_send_json(s, proto_encode_left(id_json, name));
}

void rooms_apply_claims(struct gateway *gw, struct session *s)
{
    for (unsigned i = s->room_count; i-- > 0;) {
        struct room *room = s->rooms[i].room;
        if (auth_room_allowed(s->claims, room->name))
            continue;
        char name[PROTO_ROOM_MAX + 1];
        snprintf(name, sizeof(name), "%s", room->name); /* the room may be dropped */
        rooms_remove_member(gw, s, room);
        session_send_json(s, proto_encode_left(NULL, name));
    }
}

void rooms_leave_all(struct gateway *gw, struct session *s)
{
    while (s->room_count)
        rooms_remove_member(gw, s, s->rooms[s->room_count - 1].room);
}

/* ---- pushes from the bus ---- */

void rooms_on_push(void *arg, struct bus_push *p)
{
    struct gateway *gw = arg;
    struct room *room = room_registry_find(&gw->rooms, p->name);
    if (!room)
        return; /* unsubscribed meanwhile */
    switch (p->kind) {
    case BUS_PUSH_MESSAGE:
        if (p->offset == 0) {
            /* Ephemeral (typing, presence, read markers): relayed to live members as it
             * comes. */
            reads_seen(room, p->frame);
            if (room->state == ROOM_LIVE)
                rooms_fan_out(gw, room, p->frame);
            return;
        }
        p->frame->arrival_us = (uint32_t)(p->arrival_ns / 1000);
        if (p->frame->arrival_us == 0)
            p->frame->arrival_us = 1;
        room_sync_message(&gw->sync, room, p->epoch, p->frame);
        break;
    case BUS_PUSH_SUBSCRIBED:
        if (room->state != ROOM_SUBSCRIBING && room->state != ROOM_STALLED)
            return;
        if (room->epoch[0])
            gw->metrics.subscriptions_repaired++;
        room_sync_subscribed(&gw->sync, room);
        break;
    case BUS_PUSH_LOST:
        reads_forget(room); /* read events may be missed until it is back */
        room_sync_subscription_lost(&gw->sync, room);
        break;
    }
    rooms_perform(gw, room);
}

struct room_ptrs {
    struct room **v;
    size_t n, cap;
};

static void rooms_collect(struct room *room, void *arg)
{
    struct room_ptrs *p = arg;
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        struct room **nv = realloc(p->v, ncap * sizeof(*nv));
        if (!nv)
            return;
        p->v = nv;
        p->cap = ncap;
    }
    p->v[p->n++] = room;
}

/* A Redis server is ready again: stalled rooms sync again (actions may drop rooms, so the
 * walk goes over a snapshot). */
void rooms_on_ready(struct gateway *gw)
{
    struct room_ptrs p = {0};
    room_registry_each(&gw->rooms, rooms_collect, &p);
    for (size_t i = 0; i < p.n; i++) {
        room_sync_redis_ready(&gw->sync, p.v[i]);
        rooms_perform(gw, p.v[i]);
    }
    free(p.v);
}
