/*
 * rooms — room membership on this node, kept in step with Redis, and the fan-out hot path.
 *
 * A room exists on a node while it has local members (joined or joining). Its life:
 *   SUBSCRIBING  first local join → SUBSCRIBE sent (bus keeps one subscription per room)
 *   SYNCING      subscription confirmed → sync script reads the room's last offset S and epoch
 *   LIVE         S known: pending joiners get `joined` with offset S, then messages that arrived
 *                during the sync with offset > S are replayed from the backlog.
 * Why subscribe first and read second: every PUBLISH after the SUBSCRIBE reaches this node, and
 * every message with offset <= S was published before the read, so "offset > S" is exactly the
 * set the new member must see — no gap, no duplicate. While LIVE, this node receives a room's
 * messages in offset order on one connection, so a later join simply answers with the last
 * offset the node delivered, at once, with no Redis round trip.
 *
 * Fan-out: the bus thread already copied the payload into one shared frame; here it is queued
 * by reference to every live member except the sender's connection (recognised by serial, not
 * by string compare).
 *
 * After the subscriber connection is lost, rooms fall back to SUBSCRIBING (members stay) and
 * re-sync when the bus re-subscribes; a jump in offsets is counted as a gap.
 */
#include "gateway.h"

#include "api.h"
#include "log.h"
#include "presence.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a BUS_CMD_FETCH was for (echoed in BUS_EV_FETCHED). */
enum { ROOMS_FETCH_GAP = 1, ROOMS_FETCH_HISTORY, ROOMS_FETCH_RECOVER };

/* A join with `since` in progress (room_member.recovery): the member is held out of live
 * fan-out until it has been sent every offset from `since` up to the room's last offset. */
struct recovery {
    uint64_t since;      /* the client had everything up to here */
    uint64_t sent_to;    /* replayed up to here */
    uint64_t tag;        /* matches the fetch in flight */
    char epoch[PROTO_EPOCH_MAX + 1];
};

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
    s->rooms[s->room_count++] = (struct session_room){.room = room, .typing_ms = 0};
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

static void rooms_submit(struct gateway *gw, enum bus_cmd_type type, struct room *room)
{
    struct bus_cmd *cmd = bus_cmd_new(type, room->name);
    if (!cmd) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "rooms_submit", "room", room->name,
                  NULL);
        return;
    }
    cmd->generation = room->generation;
    shard_submit(gw, cmd);
}

/* Drops the room when its last member is gone (and with it this node's subscription). */
static void rooms_maybe_drop(struct gateway *gw, struct room *room)
{
    if (room->member_count)
        return;
    rooms_submit(gw, BUS_CMD_UNSUBSCRIBE, room);
    presence_room_free(room);
    room_registry_remove(&gw->rooms, room);
}

/* Appends id to a member's pending-id list ('\n'-separated JSON texts; see room_member).
 * An id-less join is the empty string, so NULL alone means "nothing pending". */
static int pending_ids_append(struct room_member *m, const char *id)
{
    size_t old = m->pending_ids ? strlen(m->pending_ids) + 1 : 0;
    char *n = realloc(m->pending_ids, old + strlen(id) + 1);
    if (!n)
        return -1;
    if (old)
        n[old - 1] = '\n';
    strcpy(n + old, id);
    m->pending_ids = n;
    return 0;
}

/* Answers each pending join id of m with `joined` (err == PROTO_OK) or an error, then clears
 * the list. */
static void pending_ids_answer(struct session *s, struct room *room, struct room_member *m,
                               enum proto_error err, const char *why, int recovered)
{
    if (!m->pending_ids)
        return;
    for (char *id = m->pending_ids;;) {
        char *nl = strchr(id, '\n');
        if (nl)
            *nl = '\0';
        if (err == PROTO_OK)
            session_send_json(s, proto_encode_joined(id, room->name, room->last_offset,
                                                     room->epoch, recovered));
        else
            session_send_error(s, id, err, why);
        if (!nl)
            break;
        id = nl + 1;
    }
    free(m->pending_ids);
    m->pending_ids = NULL;
}

/* Makes a pending member live: answers its join ids with `joined` (recovered as given). */
static void rooms_member_go_live(struct room *room, struct room_member *m, int recovered)
{
    pending_ids_answer(m->session, room, m, PROTO_OK, NULL, recovered);
    free(m->recovery);
    m->recovery = NULL;
    if (m->pending) {
        m->pending = 0;
        room->pending_count--;
    }
}

/* Advances a recovering member of a live room: done (recovered or not), or one more fetch of
 * the offsets it still misses. Live messages keep flowing to the others meanwhile; each fetch
 * reaches up to the node's last offset at that moment, so the member catches up and then
 * joins the live stream with no gap and no duplicate. */
static void rooms_recover_step(struct gateway *gw, struct room *room, struct room_member *m)
{
    struct recovery *r = m->recovery;
    if (strcmp(r->epoch, room->epoch) != 0 || r->since > room->last_offset) {
        rooms_member_go_live(room, m, 0); /* other history, or a future offset: not ours */
        return;
    }
    if (r->sent_to >= room->last_offset) {
        rooms_member_go_live(room, m, 1);
        return;
    }
    struct session *s = m->session;
    struct bus_cmd *cmd =
        shard_ready(gw, room->name) ? bus_cmd_new(BUS_CMD_FETCH, room->name) : NULL;
    if (!cmd) {
        rooms_member_go_live(room, m, 0);
        return;
    }
    cmd->generation = room->generation;
    cmd->from = r->sent_to + 1;
    cmd->to = room->last_offset;
    cmd->purpose = ROOMS_FETCH_RECOVER;
    cmd->tag = r->tag = ++gw->next_tag;
    session_submit(s, cmd);
}

/* Recovery fetch answered: replay the contiguous run from sent_to + 1, then step again. A run
 * that does not start there means the log no longer has those offsets: recovered:false. */
static void rooms_on_recover_fetched(struct gateway *gw, struct bus_event *ev)
{
    struct session *s = ev->owner;
    struct room *room = room_registry_find(&gw->rooms, ev->room);
    int idx = room && room->generation == ev->generation && s->wsi ? room_find_member(room, s)
                                                                  : -1;
    struct room_member *m = idx >= 0 ? &room->members[idx] : NULL;
    struct recovery *r = m ? m->recovery : NULL;
    if (r && r->tag == ev->tag) {
        if (ev->status != 0 || ev->count == 0 || ev->frames[0]->offset != r->sent_to + 1) {
            rooms_member_go_live(room, m, 0);
        } else {
            size_t i = 0;
            for (; i < ev->count && ev->frames[i]->offset == r->sent_to + 1; i++) {
                session_enqueue(s, ev->frames[i]);
                r->sent_to = ev->frames[i]->offset;
            }
            if (r->sent_to < ev->to && i < ev->count)
                rooms_member_go_live(room, m, 0); /* a hole inside the log */
            else
                rooms_recover_step(gw, room, m);
        }
    }
    session_release(s);
}

void rooms_history(struct gateway *gw, struct session *s, const struct proto_request *req,
                   struct room *room)
{
    (void)gw;
    if (req->has_before && req->before <= 1) {
        session_send_json(s, proto_encode_history(req->id, room->name, NULL, 0));
        return;
    }
    struct bus_cmd *cmd = bus_cmd_new(BUS_CMD_FETCH, room->name);
    if (!cmd || !(cmd->id_json = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    cmd->from = 1;
    cmd->to = req->has_before ? req->before - 1 : UINT64_MAX;
    cmd->newest = (unsigned)req->limit;
    cmd->purpose = ROOMS_FETCH_HISTORY;
    session_submit(s, cmd);
}

static void rooms_on_history_fetched(struct bus_event *ev)
{
    struct session *s = ev->owner;
    if (s->wsi) {
        if (ev->status != 0) {
            session_send_error(s, ev->id_json, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        } else {
            const char **msgs = ev->count ? calloc(ev->count, sizeof(*msgs)) : NULL;
            if (ev->count && !msgs) {
                session_send_error(s, ev->id_json, PROTO_ERR_INTERNAL, "out of memory");
            } else {
                for (size_t i = 0; i < ev->count; i++)
                    msgs[i] = (const char *)frame_payload(ev->frames[i]);
                session_send_json(s, proto_encode_history(ev->id_json, ev->room, msgs, ev->count));
                free(msgs);
            }
        }
    }
    session_release(s);
}

void rooms_join(struct gateway *gw, struct session *s, const struct proto_request *req)
{
    if (!auth_room_allowed(s->claims, req->room)) {
        session_send_error(s, req->id, PROTO_ERR_FORBIDDEN, "room not allowed by token");
        return;
    }
    struct room *room = room_registry_find(&gw->rooms, req->room);
    int idx = room ? room_find_member(room, s) : -1;
    if (idx >= 0) {
        /* Already a member: idempotent, a fresh `joined` and nothing else changes. */
        struct room_member *m = &room->members[idx];
        if (m->pending) {
            if (pending_ids_append(m, req->id) != 0)
                session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        } else {
            session_send_json(s, proto_encode_joined(req->id, room->name, room->last_offset,
                                                     room->epoch, -1));
        }
        return;
    }
    if (s->room_count >= (unsigned)gw->cfg->max_rooms) {
        session_send_error(s, req->id, PROTO_ERR_LIMIT_EXCEEDED, "too many rooms on this connection");
        return;
    }
    if (!shard_ready(gw, req->room)) {
        session_send_error(s, req->id, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        return;
    }
    bool created = false;
    if (!room) {
        room = room_registry_add(&gw->rooms, req->room);
        if (!room) {
            session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
            return;
        }
        created = true;
    }
    bool live = room->state == ROOM_LIVE;
    if (room_add_member(room, s, !live) != 0 || session_list_add(s, room) != 0) {
        room_remove_member(room, s);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        rooms_maybe_drop(gw, room);
        return;
    }
    struct room_member *m = &room->members[room->member_count - 1];
    presence_member_added(gw, room, s);
    if (req->has_since) {
        struct recovery *r = calloc(1, sizeof(*r));
        if (r) {
            r->since = r->sent_to = req->since_offset;
            snprintf(r->epoch, sizeof(r->epoch), "%s", req->since_epoch);
        }
        m->recovery = r;
        if (live) { /* hold it out of live fan-out until replayed */
            m->pending = 1;
            room->pending_count++;
        }
    }
    if (live && !m->recovery) {
        session_send_json(s, proto_encode_joined(req->id, room->name, room->last_offset,
                                                 room->epoch, req->has_since ? 0 : -1));
    } else if (pending_ids_append(m, req->id) != 0) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "rooms_join", NULL);
    } else if (live) {
        rooms_recover_step(gw, room, m);
    }
    if (created)
        rooms_submit(gw, BUS_CMD_SUBSCRIBE, room);
    log_event(CONFIG_LOG_DEBUG, "join", "conn", s->conn_id, "user", s->claims->sub, "room",
              room->name, NULL);
}

/* Removes s from room, answering a still-pending join so no request goes unanswered. */
static void rooms_remove_member(struct gateway *gw, struct session *s, struct room *room)
{
    int idx = room_find_member(room, s);
    if (idx >= 0) {
        struct room_member *m = &room->members[idx];
        if (m->pending_ids) {
            if (s->wsi)
                pending_ids_answer(s, room, m, PROTO_ERR_NOT_JOINED,
                                   "left before the join completed", -1);
            free(m->pending_ids);
            m->pending_ids = NULL;
        }
        free(m->recovery);
        m->recovery = NULL;
        room_remove_member(room, s);
        presence_member_removed(gw, room, s);
    }
    session_list_remove(s, room);
    rooms_maybe_drop(gw, room);
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

/* Queues `frame` to every live member of room except its sender's connection. */
static void rooms_fan_out(struct gateway *gw, struct room *room, struct frame *frame)
{
    uint64_t sender_serial = frame->sender_serial;
    for (unsigned i = 0; i < room->member_count; i++) {
        struct room_member *m = &room->members[i];
        struct session *s = m->session;
        if (m->pending || s->serial == sender_serial)
            continue;
        session_enqueue(s, frame);
        gw->metrics.deliveries++;
    }
}

/* Asks the room's log for offsets [from, to] that this node missed; deliveries are held in
 * the backlog until the answer comes (rooms_on_fetched). At most history_size offsets are
 * asked for: older ones are not kept anyway. */
static void rooms_start_fill(struct gateway *gw, struct room *room, uint64_t from, uint64_t to)
{
    uint64_t keep = (uint64_t)gw->cfg->history_size;
    if (keep == 0 || !shard_bus(gw, room->name)) {
        gw->metrics.gaps += to - from + 1;
        room->last_offset = to;
        return;
    }
    if (to - from + 1 > keep)
        from = to - keep + 1;
    struct bus_cmd *cmd = bus_cmd_new(BUS_CMD_FETCH, room->name);
    if (!cmd) {
        gw->metrics.gaps += to - from + 1;
        room->last_offset = to;
        return;
    }
    cmd->generation = room->generation;
    cmd->from = from;
    cmd->to = to;
    cmd->purpose = ROOMS_FETCH_GAP;
    room->filling = true;
    shard_submit(gw, cmd);
}

/* Applies one message to a live room in offset order: epoch change, duplicate, gap (read back
 * from the log), then fan-out. While a gap is being filled, messages wait in the backlog. */
static void rooms_deliver(struct gateway *gw, struct room *room, const char *epoch,
                          struct frame *frame)
{
    uint64_t offset = frame->offset;
    if (epoch && strcmp(epoch, room->epoch) != 0) {
        /* The room's history was lost in Redis and restarted: follow the new epoch. */
        log_event(CONFIG_LOG_WARN, "room_epoch_changed", "room", room->name, "old", room->epoch,
                  "new", epoch, NULL);
        snprintf(room->epoch, sizeof(room->epoch), "%s", epoch);
        room->last_offset = 0;
        outq_clear(&room->backlog);
        room->filling = false;
    }
    if (room->filling) {
        if (outq_push(&room->backlog, frame, SIZE_MAX) != 0)
            log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "room_backlog", NULL);
        return;
    }
    if (offset <= room->last_offset)
        return; /* already delivered (seen during a re-sync or a fill) */
    if (offset != room->last_offset + 1) {
        char from[24], to[24];
        snprintf(from, sizeof(from), "%" PRIu64, room->last_offset + 1);
        snprintf(to, sizeof(to), "%" PRIu64, offset - 1);
        log_event(CONFIG_LOG_WARN, "room_offset_gap", "room", room->name, "from", from, "to", to,
                  NULL);
        rooms_start_fill(gw, room, room->last_offset + 1, offset - 1);
        if (room->filling) {
            if (outq_push(&room->backlog, frame, SIZE_MAX) != 0)
                log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "room_backlog", NULL);
            return;
        }
    }
    room->last_offset = offset;
    rooms_fan_out(gw, room, frame);
}

/* Replays the backlog in order (each may start a new fill, which stops the replay). */
static void rooms_replay_backlog(struct gateway *gw, struct room *room)
{
    while (!room->filling && !outq_empty(&room->backlog)) {
        struct frame *f = frame_ref(outq_peek(&room->backlog));
        outq_pop(&room->backlog);
        rooms_deliver(gw, room, NULL, f);
        frame_unref(f);
    }
}

/* A gap's messages arrived from the log: deliver them, count what the log no longer had, then
 * release the held messages. */
static void rooms_on_fetched(struct gateway *gw, struct bus_event *ev)
{
    struct room *room = room_registry_find(&gw->rooms, ev->room);
    if (!room || room->generation != ev->generation || !room->filling)
        return;
    room->filling = false;
    for (size_t i = 0; i < ev->count; i++) {
        struct frame *f = ev->frames[i];
        if (f->offset <= room->last_offset || f->offset > ev->to)
            continue;
        if (f->offset != room->last_offset + 1)
            gw->metrics.gaps += f->offset - room->last_offset - 1;
        room->last_offset = f->offset;
        rooms_fan_out(gw, room, f);
    }
    if (room->last_offset < ev->to) {
        /* Trimmed from the log, or Redis failed: these offsets are lost for good. */
        char n[24];
        snprintf(n, sizeof(n), "%" PRIu64, ev->to - room->last_offset);
        log_event(CONFIG_LOG_WARN, "room_gap_unfilled", "room", room->name, "missed", n, NULL);
        gw->metrics.gaps += ev->to - room->last_offset;
        room->last_offset = ev->to;
    }
    rooms_replay_backlog(gw, room);
}

static void rooms_on_message(struct gateway *gw, struct bus_event *ev)
{
    struct room *room = room_registry_find(&gw->rooms, ev->room);
    if (!room)
        return; /* unsubscribed meanwhile */
    struct frame *frame = ev->frame;
    if (frame->offset == 0) {
        /* Ephemeral (typing): relayed to live members as it comes, never ordered or stored. */
        if (room->state == ROOM_LIVE)
            rooms_fan_out(gw, room, frame);
        return;
    }
    frame->arrival_us = (uint32_t)(ev->t_submit_ns / 1000);
    if (frame->arrival_us == 0)
        frame->arrival_us = 1;
    if (room->state != ROOM_LIVE) {
        /* Kept until the sync tells which of these the members have not seen. */
        if (outq_push(&room->backlog, frame, SIZE_MAX) != 0)
            log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "room_backlog", "room",
                      room->name, NULL);
        return;
    }
    rooms_deliver(gw, room, ev->epoch, frame);
}

static void rooms_on_subscribed(struct gateway *gw, struct bus_event *ev)
{
    struct room *room = room_registry_find(&gw->rooms, ev->room);
    if (!room || room->state != ROOM_SUBSCRIBING)
        return;
    room->state = ROOM_SYNCING;
    rooms_submit(gw, BUS_CMD_SYNC, room);
}

/* Answers every pending joiner of room with err and removes them. */
static void rooms_fail_pending(struct gateway *gw, struct room *room, enum proto_error err,
                               const char *why)
{
    for (unsigned i = room->member_count; i-- > 0;) {
        struct room_member *m = &room->members[i];
        if (!m->pending)
            continue;
        struct session *s = m->session;
        pending_ids_answer(s, room, m, err, why, -1);
        free(m->recovery);
        m->recovery = NULL;
        room_remove_member(room, s);
        presence_member_removed(gw, room, s);
        session_list_remove(s, room);
    }
}

static void rooms_on_synced(struct gateway *gw, struct bus_event *ev)
{
    struct room *room = room_registry_find(&gw->rooms, ev->room);
    if (!room || room->generation != ev->generation || room->state != ROOM_SYNCING)
        return;
    if (ev->status != 0) {
        rooms_fail_pending(gw, room, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        outq_clear(&room->backlog);
        room->state = ROOM_SUBSCRIBING; /* retried when Redis is ready again */
        rooms_maybe_drop(gw, room);
        return;
    }
    /* A re-sync after the subscription was lost: members already saw up to last_offset; what
     * was published meanwhile is read back from the log before anything newer is delivered. */
    bool resync = room->epoch[0] != '\0' && strcmp(room->epoch, ev->epoch) == 0 &&
                  ev->offset > room->last_offset;
    uint64_t seen = room->last_offset;
    snprintf(room->epoch, sizeof(room->epoch), "%s", ev->epoch);
    room->last_offset = ev->offset;
    room->state = ROOM_LIVE;
    room->filling = false;
    for (unsigned i = 0; i < room->member_count; i++) {
        struct room_member *m = &room->members[i];
        if (!m->pending)
            continue;
        if (m->recovery)
            rooms_recover_step(gw, room, m);
        else
            rooms_member_go_live(room, m, -1);
    }
    if (resync) {
        room->last_offset = seen;
        rooms_start_fill(gw, room, seen + 1, ev->offset);
    }
    /* Replay what arrived during the sync; rooms_deliver skips offsets <= S. */
    rooms_replay_backlog(gw, room);
}

static void rooms_resubscribe_one(struct room *room, void *arg)
{
    struct gateway *gw = arg;
    if (room->state != ROOM_LIVE) {
        room->state = ROOM_SUBSCRIBING;
        rooms_submit(gw, BUS_CMD_SUBSCRIBE, room);
    }
}

static void rooms_unsync_one(struct room *room, void *arg)
{
    (void)arg;
    room->state = ROOM_SUBSCRIBING;
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

/* A subscriber connection dropped: joins in progress on that instance fail now (it is down);
 * members of its live rooms stay and re-sync when the bus re-subscribes. Rooms on other
 * instances are not affected. */
static void rooms_on_sub_lost(struct gateway *gw, int shard)
{
    struct room_ptrs p = {0};
    room_registry_each(&gw->rooms, rooms_collect, &p);
    for (size_t i = 0; i < p.n; i++) {
        struct room *room = p.v[i];
        if (shard_bus(gw, room->name) != gw->buses[shard])
            continue;
        rooms_fail_pending(gw, room, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        outq_clear(&room->backlog);
        room->filling = false;
        rooms_unsync_one(room, NULL);
        rooms_maybe_drop(gw, room);
    }
    free(p.v);
}

void rooms_on_event(struct gateway *gw, struct bus_event *ev)
{
    switch (ev->type) {
    case BUS_EV_MESSAGE:
        rooms_on_message(gw, ev);
        return;
    case BUS_EV_SUBSCRIBED:
        rooms_on_subscribed(gw, ev);
        return;
    case BUS_EV_SYNCED:
        rooms_on_synced(gw, ev);
        return;
    case BUS_EV_SUB_LOST:
        rooms_on_sub_lost(gw, ev->shard);
        return;
    case BUS_EV_READY:
        /* Rooms whose sync failed while only the command connection was down. */
        room_registry_each(&gw->rooms, rooms_resubscribe_one, gw);
        presence_on_ready(gw);
        return;
    case BUS_EV_SCRIPT:
        presence_on_script(gw, ev);
        return;
    case BUS_EV_PUBLISHED:
        if (ev->api)
            api_on_published(gw, ev);
        else
            session_on_published(gw, ev);
        return;
    case BUS_EV_DIRECT:
        users_on_direct(gw, ev);
        return;
    case BUS_EV_FETCHED:
        if (ev->purpose == ROOMS_FETCH_GAP)
            rooms_on_fetched(gw, ev);
        else if (ev->purpose == ROOMS_FETCH_HISTORY)
            rooms_on_history_fetched(ev);
        else if (ev->purpose == ROOMS_FETCH_RECOVER)
            rooms_on_recover_fetched(gw, ev);
        return;
    }
}
