/*
 * room_sync — the room ordering state machine; room_sync.h states the rules (numbered) and
 * the contract. Every event is made of a few moves, defined first:
 *   emit          append an action (the list grows by doubling and is reused between events)
 *   deliver       the hot path: last_offset + 1, one DELIVER, two references, no allocation
 *   hold          keep a message while not delivering (one epoch at a time, bounded)
 *   start_fill    ask the log for a gap (rule 2), re-reading last_offset when known (rule 9)
 *   resync        hold and SYNC: any doubt about the room's position ends in a SYNC (rule 7)
 *   regress       retire the epoch and ROTATE (rule 8)
 *   unsync        Redis or the subscription failed: pending joins fail (rule 5)
 *   go_live       answer pending joins, then fill, then replay held messages
 * Invariants: LIVE and not filling implies an empty backlog (settle drains it or starts a
 * fill); last_frame is NULL or the frame at last_offset; a member with `pending == 0` has no
 * pending_ids and no recovery; every tag in flight is in sync_tag, fill_tag or a recovery.
 */
#include "room_sync.h"

#include <stdlib.h>
#include <string.h>

/* A pending join with `since` (room_member.recovery): the member is sent (sent_to, last]. */
struct room_recovery {
    uint64_t since;    /* the client had everything up to here */
    uint64_t sent_to;  /* replayed up to here */
    uint64_t tag;      /* the fetch in flight (0: none) */
    uint64_t asked_to; /* that fetch's last offset: the room's last_offset when asked */
    uint64_t check;    /* digest of the frame the room delivered at asked_to (0: unknown) */
    char epoch[PROTO_EPOCH_MAX + 1];
};

static void settle(struct room_sync *rs, struct room *room);
static void recover_step(struct room_sync *rs, struct room *room, struct room_member *m);

static bool same(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static void epoch_copy(char *dst, const char *src)
{
    size_t n = strnlen(src, PROTO_EPOCH_MAX);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool frame_same(const struct frame *a, const struct frame *b)
{
    return a->len == b->len && memcmp(a->buf + a->headroom, b->buf + b->headroom, a->len) == 0;
}

/* FNV-1a; never 0, which means "none". */
static uint64_t digest(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

/* Recovery compares frames by digest (rule 9): it may outlive the room's last_frame, and a
 * digest needs no reference. */
static uint64_t frame_digest(const struct frame *f)
{
    return digest(f->buf + f->headroom, f->len);
}

/* Retired epochs are kept as digests (rule 7): 8 bytes each, and a collision costs at worst
 * one needless rotation. */
static uint64_t epoch_digest(const char *epoch)
{
    return digest((const unsigned char *)epoch, strnlen(epoch, PROTO_EPOCH_MAX));
}

static bool retired(const struct room *room, const char *epoch)
{
    uint64_t d = epoch_digest(epoch);
    for (unsigned i = 0; i < ROOM_RETIRED_MAX; i++)
        if (room->retired[i] == d)
            return true;
    return false;
}

static void retire(struct room *room, const char *epoch)
{
    if (!epoch[0] || retired(room, epoch))
        return;
    room->retired[room->retired_next] = epoch_digest(epoch);
    room->retired_next = (room->retired_next + 1) % ROOM_RETIRED_MAX;
}

/* Appends an action (taking a reference to frame, if any); NULL (counted in stats.oom) when
 * memory is short, and the caller fills in the rest only when it got one. */
static struct room_sync_action *emit(struct room_sync *rs, enum room_sync_action_type type,
                                     void *session, struct frame *frame, uint64_t tag)
{
    if (rs->action_count == rs->action_cap) {
        size_t ncap = rs->action_cap ? rs->action_cap * 2 : 16;
        struct room_sync_action *n = realloc(rs->actions, ncap * sizeof(*n));
        if (!n) {
            rs->stats.oom++;
            return NULL;
        }
        rs->actions = n;
        rs->action_cap = ncap;
    }
    struct room_sync_action *a = &rs->actions[rs->action_count++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    a->recovered = -1;
    a->session = session;
    a->frame = frame ? frame_ref(frame) : NULL;
    a->tag = tag;
    return a;
}

static uint64_t new_tag(struct room *room)
{
    return ++room->next_tag;
}

static void emit_fetch(struct room_sync *rs, uint64_t tag, void *session, uint64_t from,
                       uint64_t to)
{
    struct room_sync_action *a = emit(rs, ROOM_SYNC_FETCH, session, NULL, tag);
    if (a) {
        a->from = from;
        a->to = to;
    }
}

/* Sets last_offset without a frame to compare with (a skip, a sync, a reset). */
static void forget_last(struct room *room, uint64_t offset)
{
    room->last_offset = offset;
    frame_unref(room->last_frame);
    room->last_frame = NULL;
}

static void deliver(struct room_sync *rs, struct room *room, struct frame *f)
{
    room->last_offset = f->offset;
    frame_unref(room->last_frame);
    room->last_frame = frame_ref(f);
    emit(rs, ROOM_SYNC_DELIVER, NULL, f, 0);
}

/* Answers every pending join id of m (JOINED or JOIN_FAILED): the ids move to the action. */
static struct room_sync_action *answer(struct room_sync *rs, struct room_member *m,
                                       enum room_sync_action_type type)
{
    struct room_sync_action *a = emit(rs, type, m->session, NULL, 0);
    if (a)
        a->ids = m->pending_ids;
    else
        free(m->pending_ids);
    m->pending_ids = NULL;
    free(m->recovery);
    m->recovery = NULL;
    return a;
}

static void joined_at(struct room_sync_action *a, const struct room *room, int recovered)
{
    if (!a)
        return;
    a->offset = room->last_offset;
    a->recovered = recovered;
    epoch_copy(a->epoch, room->epoch);
}

/* Answers m's pending joins with `joined` at the room's position; m becomes live. */
static void member_answer(struct room_sync *rs, struct room *room, struct room_member *m,
                          int recovered)
{
    joined_at(answer(rs, m, ROOM_SYNC_JOINED), room, recovered);
    if (m->pending) {
        m->pending = 0;
        room->pending_count--;
    }
}

/* Answers the pending join ids of members[idx] with err and removes the member. */
static void member_fail(struct room_sync *rs, struct room *room, unsigned idx, enum proto_error err)
{
    struct room_member *m = &room->members[idx];
    struct room_sync_action *a = answer(rs, m, ROOM_SYNC_JOIN_FAILED);
    if (a)
        a->error = err;
    room_remove_member(room, m->session);
}

static void drop_held(struct room_sync *rs, struct room *room)
{
    rs->stats.stale += room->backlog.count;
    outq_clear(&room->backlog);
}

/* Keeps f for later (rule 10): a message of another epoch than the held ones replaces them,
 * and a full hold drops f; either way the room re-reads its position once live. */
static void hold(struct room_sync *rs, struct room *room, const char *epoch, struct frame *f)
{
    if (!outq_empty(&room->backlog) && !same(epoch, room->held_epoch)) {
        drop_held(rs, room);
        room->held_lost = true;
    }
    if (outq_empty(&room->backlog))
        epoch_copy(room->held_epoch, epoch);
    if (room->backlog.count >= rs->backlog_max) {
        rs->stats.stale++;
        room->held_lost = true;
    } else if (outq_push(&room->backlog, f, SIZE_MAX) != 0) {
        rs->stats.oom++;
        room->held_lost = true;
    }
}

/* Forgets the gap fill in flight (its late answer is then ignored, rule 11). Recovery
 * fetches need no such step: their answers are ignored unless the room is LIVE, and going
 * LIVE re-steps every recovery with a new tag. */
static void cancel_fetches(struct room *room)
{
    room->filling = false;
    room->fill_tag = 0;
}

/* Holds deliveries and reads the room's epoch and offset again (rules 5, 7, 10). */
static void resync(struct room_sync *rs, struct room *room)
{
    cancel_fetches(room);
    room->state = ROOM_SYNCING;
    room->held_lost = false;
    room->sync_tag = new_tag(room);
    emit(rs, ROOM_SYNC_SYNC, NULL, NULL, room->sync_tag);
}

/* Redis lost writes of `epoch` (rule 8): nothing of it is delivered again; ask for a new one. */
static void regress(struct room_sync *rs, struct room *room, const char *epoch)
{
    cancel_fetches(room);
    retire(room, epoch);
    if (same(room->held_epoch, epoch))
        drop_held(rs, room);
    room->state = ROOM_ROTATING;
    rs->stats.rotations++;
    room->sync_tag = new_tag(room);
    struct room_sync_action *a = emit(rs, ROOM_SYNC_ROTATE, NULL, NULL, room->sync_tag);
    if (a)
        epoch_copy(a->epoch, epoch);
}

/* The subscription or a Redis read failed (rule 5): pending joins fail, live members stay. */
static void unsync(struct room_sync *rs, struct room *room, enum room_state state)
{
    for (unsigned i = room->member_count; i-- > 0;)
        if (room->members[i].pending)
            member_fail(rs, room, i, PROTO_ERR_UNAVAILABLE);
    outq_clear(&room->backlog); /* all of it is read back by the next sync and fill */
    cancel_fetches(room);
    room->sync_tag = 0;
    room->held_lost = false;
    room->state = state;
    if (room->member_count == 0)
        emit(rs, ROOM_SYNC_UNSUBSCRIBE, NULL, NULL, 0);
}

/* Reads (last, to] from the log, and last itself when its frame is known (rule 9). Offsets
 * older than history_size before `to` are not kept: counted lost, not asked for. */
static void start_fill(struct room_sync *rs, struct room *room, uint64_t to)
{
    if (to - room->last_offset > rs->history_size) {
        rs->stats.lost += to - rs->history_size - room->last_offset;
        forget_last(room, to - rs->history_size);
    }
    bool check = room->last_frame != NULL && rs->history_size > 0;
    if (to == room->last_offset && !check)
        return;
    room->filling = true;
    room->fill_to = to;
    room->fill_tag = new_tag(room);
    emit_fetch(rs, room->fill_tag, NULL, check ? room->last_offset : room->last_offset + 1, to);
}

/* f is of the room's epoch with offset <= last + 1: deliver it, or drop a duplicate, or
 * notice that the frame at last_offset was rewritten. */
static void take_in_order(struct room_sync *rs, struct room *room, struct frame *f)
{
    if (f->offset == room->last_offset + 1)
        deliver(rs, room, f);
    else if (f->offset == room->last_offset && room->last_frame && !frame_same(f, room->last_frame))
        regress(rs, room, room->epoch);
    else
        rs->stats.duplicates++;
}

/* Replays held messages in order while LIVE and not filling; a gap starts a fill and the
 * message stays first in line. Once idle, a room that dropped held messages re-syncs. */
static void settle(struct room_sync *rs, struct room *room)
{
    while (room->state == ROOM_LIVE && !room->filling && !outq_empty(&room->backlog)) {
        struct frame *f = outq_peek(&room->backlog);
        if (f->offset > room->last_offset + 1) {
            start_fill(rs, room, f->offset - 1);
            continue;
        }
        frame_ref(f);
        outq_pop(&room->backlog);
        take_in_order(rs, room, f);
        frame_unref(f);
    }
    if (room->state == ROOM_LIVE && !room->filling && room->held_lost)
        resync(rs, room);
}

/* The room's position is settled by a SYNC answer with last offset S: pending joins are
 * answered (before any DELIVER, see the contract), then (last, S] is read back. */
static void go_live(struct room_sync *rs, struct room *room, uint64_t synced)
{
    room->state = ROOM_LIVE;
    if (!outq_empty(&room->backlog) && !same(room->held_epoch, room->epoch)) {
        if (!retired(room, room->held_epoch))
            room->held_lost = true; /* evidence of a newer epoch than the answer */
        drop_held(rs, room);
    }
    for (unsigned i = 0; i < room->member_count; i++) {
        struct room_member *m = &room->members[i];
        if (!m->pending)
            continue;
        if (m->recovery)
            recover_step(rs, room, m);
        else
            member_answer(rs, room, m, -1);
    }
    start_fill(rs, room, synced);
    settle(rs, room);
}

/* Rule 6: the room follows another epoch; live members are told before anything of it. */
static void switch_epoch(struct room_sync *rs, struct room *room, const char *epoch,
                         uint64_t synced)
{
    uint64_t base = synced > rs->history_size ? synced - rs->history_size : 0;
    retire(room, room->epoch);
    epoch_copy(room->epoch, epoch);
    forget_last(room, base);
    rs->stats.lost += base;
    rs->stats.resets++;
    for (unsigned i = 0; i < room->member_count; i++) {
        if (room->members[i].pending)
            continue;
        struct room_sync_action *a = emit(rs, ROOM_SYNC_RESET, room->members[i].session, NULL, 0);
        if (a) {
            a->offset = base;
            epoch_copy(a->epoch, epoch);
        }
    }
}

/* Rule 4: one more step of m's replay: done (recovered or not), or fetch what it misses up
 * to the room's last offset now. */
static void recover_step(struct room_sync *rs, struct room *room, struct room_member *m)
{
    struct room_recovery *r = m->recovery;
    if (!same(r->epoch, room->epoch) || r->since > room->last_offset ||
        room->last_offset - r->sent_to > rs->history_size) {
        member_answer(rs, room, m, 0);
    } else if (r->sent_to == room->last_offset) {
        member_answer(rs, room, m, 1);
    } else {
        r->tag = new_tag(room);
        r->asked_to = room->last_offset;
        r->check = room->last_frame ? frame_digest(room->last_frame) : 0;
        emit_fetch(rs, r->tag, m->session, r->sent_to + 1, r->asked_to);
    }
}

static int ids_append(char **ids, const char *id)
{
    size_t old = *ids ? strlen(*ids) + 1 : 0;
    char *n = realloc(*ids, old + strlen(id) + 1);
    if (!n)
        return -1;
    if (old)
        n[old - 1] = '\n';
    strcpy(n + old, id);
    *ids = n;
    return 0;
}

void room_sync_init(struct room_sync *rs, uint64_t history_size, unsigned backlog_max)
{
    memset(rs, 0, sizeof(*rs));
    rs->history_size = history_size;
    rs->backlog_max = backlog_max ? backlog_max : 1;
}

void room_sync_actions_clear(struct room_sync *rs)
{
    for (size_t i = 0; i < rs->action_count; i++) {
        frame_unref(rs->actions[i].frame);
        free(rs->actions[i].ids);
    }
    rs->action_count = 0;
}

void room_sync_free(struct room_sync *rs)
{
    room_sync_actions_clear(rs);
    free(rs->actions);
    memset(rs, 0, sizeof(*rs));
}

/* An already-member's join: idempotent (rule 3's "fresh joined, nothing else changes"). */
static int rejoin(struct room_sync *rs, struct room *room, struct room_member *m, const char *id)
{
    if (m->pending)
        return ids_append(&m->pending_ids, id);
    char *ids = strdup(id);
    struct room_sync_action *a = ids ? emit(rs, ROOM_SYNC_JOINED, m->session, NULL, 0) : NULL;
    if (!a) {
        free(ids);
        return -1;
    }
    a->ids = ids;
    joined_at(a, room, -1);
    return 0;
}

int room_sync_join(struct room_sync *rs, struct room *room, void *session, const char *id_json,
                   const struct room_sync_since *since)
{
    const char *id = id_json ? id_json : "";
    int idx = room_find_member(room, session);
    if (idx >= 0)
        return rejoin(rs, room, &room->members[idx], id);
    struct room_recovery *r = since ? calloc(1, sizeof(*r)) : NULL;
    char *ids = strdup(id);
    bool first = room->member_count == 0;
    if ((since && !r) || !ids || room_add_member(room, session, true) != 0) {
        free(r);
        free(ids);
        return -1;
    }
    struct room_member *m = &room->members[room->member_count - 1];
    m->pending_ids = ids;
    if (r) {
        r->since = r->sent_to = since->offset;
        epoch_copy(r->epoch, since->epoch ? since->epoch : "");
        m->recovery = r;
    }
    if (first) {
        room->next_tag = room->generation << 32; /* tags differ between incarnations too */
        emit(rs, ROOM_SYNC_SUBSCRIBE, NULL, NULL, 0);
    }
    if (room->state == ROOM_LIVE && r)
        recover_step(rs, room, m);
    else if (room->state == ROOM_LIVE)
        member_answer(rs, room, m, -1);
    else if (room->state == ROOM_STALLED)
        resync(rs, room);
    return 0;
}

bool room_sync_leave(struct room_sync *rs, struct room *room, void *session)
{
    int idx = room_find_member(room, session);
    if (idx < 0)
        return false;
    if (room->members[idx].pending)
        member_fail(rs, room, (unsigned)idx, PROTO_ERR_NOT_JOINED);
    else
        room_remove_member(room, session);
    if (room->member_count == 0)
        emit(rs, ROOM_SYNC_UNSUBSCRIBE, NULL, NULL, 0);
    return true;
}

void room_sync_subscribed(struct room_sync *rs, struct room *room)
{
    if (room->state == ROOM_SUBSCRIBING || room->state == ROOM_STALLED)
        resync(rs, room);
}

void room_sync_redis_ready(struct room_sync *rs, struct room *room)
{
    if (room->state == ROOM_STALLED)
        resync(rs, room);
}

void room_sync_subscription_lost(struct room_sync *rs, struct room *room)
{
    unsync(rs, room, ROOM_SUBSCRIBING);
}

void room_sync_sync_result(struct room_sync *rs, struct room *room, uint64_t tag, bool ok,
                           const char *epoch, uint64_t offset)
{
    if (tag == 0 || tag != room->sync_tag)
        return; /* late: the room moved on (rule 11) */
    bool rotating = room->state == ROOM_ROTATING;
    room->sync_tag = 0;
    if (!ok || !epoch || !epoch[0]) {
        unsync(rs, room, ROOM_STALLED);
    } else if (retired(room, epoch)) {
        if (rotating)
            unsync(rs, room, ROOM_STALLED); /* the rotation did not happen: try again later */
        else
            regress(rs, room, epoch);
    } else if (!room->epoch[0]) {
        epoch_copy(room->epoch, epoch); /* first sync: nobody holds an epoch yet */
        forget_last(room, offset);
        go_live(rs, room, offset);
    } else if (!same(epoch, room->epoch)) {
        switch_epoch(rs, room, epoch, offset);
        go_live(rs, room, offset);
    } else if (offset < room->last_offset) {
        regress(rs, room, epoch);
    } else {
        go_live(rs, room, offset);
    }
}

void room_sync_message(struct room_sync *rs, struct room *room, const char *epoch,
                       struct frame *frame)
{
    if (frame->offset == 0)
        return;
    if (room->state == ROOM_LIVE && same(epoch, room->epoch)) { /* the hot path */
        if (!room->filling && frame->offset > room->last_offset + 1)
            start_fill(rs, room, frame->offset - 1);
        if (!room->filling) {
            take_in_order(rs, room, frame);
            return;
        }
    } else if (retired(room, epoch)) {
        rs->stats.stale++;
        return;
    } else if (room->state == ROOM_LIVE) {
        resync(rs, room); /* rule 7: another epoch is evidence, the SYNC answer decides */
    }
    hold(rs, room, epoch, frame);
}

/* A gap's frames: delivered in order, what the log lacks counted lost; or rule 7/8/5. */
static void on_fill(struct room_sync *rs, struct room *room, const struct room_sync_fetched *res,
                    const char *epoch)
{
    room->filling = false;
    room->fill_tag = 0;
    if (!res->ok) {
        unsync(rs, room, ROOM_STALLED);
        return;
    }
    if (!same(epoch, room->epoch)) {
        resync(rs, room);
        return;
    }
    if (res->head < room->fill_to) {
        regress(rs, room, epoch); /* offsets known assigned are gone from the counter */
        return;
    }
    for (size_t i = 0; i < res->count; i++) {
        struct frame *f = res->frames[i];
        if (f->offset == room->last_offset && room->last_frame &&
            !frame_same(f, room->last_frame)) {
            regress(rs, room, epoch);
            return;
        }
        if (f->offset <= room->last_offset || f->offset > room->fill_to)
            continue;
        rs->stats.lost += f->offset - room->last_offset - 1;
        rs->stats.refilled++;
        deliver(rs, room, f);
    }
    if (room->last_offset < room->fill_to) {
        rs->stats.lost += room->fill_to - room->last_offset;
        forget_last(room, room->fill_to);
    }
    settle(rs, room);
}

/* A recovery fetch for m: its frames are sent while they continue m's replay (rule 4). */
static void on_recovery(struct room_sync *rs, struct room *room, struct room_member *m,
                        const struct room_sync_fetched *res, const char *epoch)
{
    struct room_recovery *r = m->recovery;
    r->tag = 0;
    if (!res->ok) {
        member_answer(rs, room, m, 0);
        return;
    }
    bool rewritten = false;
    for (size_t i = 0; i < res->count && r->check; i++)
        if (res->frames[i]->offset == r->asked_to)
            rewritten = frame_digest(res->frames[i]) != r->check;
    if (!same(epoch, room->epoch)) {
        resync(rs, room);
        return;
    }
    if (res->head < r->asked_to || rewritten) {
        regress(rs, room, epoch);
        return;
    }
    uint64_t before = r->sent_to;
    for (size_t i = 0; i < res->count; i++) {
        struct frame *f = res->frames[i];
        if (f->offset <= r->sent_to)
            continue;
        if (f->offset != r->sent_to + 1 || f->offset > r->asked_to)
            break;
        emit(rs, ROOM_SYNC_SEND, m->session, f, 0);
        r->sent_to = f->offset;
        if (f->offset == room->last_offset && !room->last_frame)
            room->last_frame = frame_ref(f); /* sent to someone now: later re-reads must match */
    }
    if (r->sent_to < r->asked_to && !(res->more && r->sent_to > before))
        member_answer(rs, room, m, 0); /* the log no longer has the next offset */
    else
        recover_step(rs, room, m); /* done, or the next page of a paged answer */
}

void room_sync_fetch_result(struct room_sync *rs, struct room *room,
                            const struct room_sync_fetched *res)
{
    const char *epoch = res->epoch ? res->epoch : "";
    if (res->tag == 0)
        return;
    if (room->filling && res->tag == room->fill_tag) {
        on_fill(rs, room, res, epoch);
        return;
    }
    if (room->state != ROOM_LIVE)
        return;
    for (unsigned i = 0; i < room->member_count; i++) {
        struct room_member *m = &room->members[i];
        struct room_recovery *r = m->recovery;
        if (m->pending && r && r->tag == res->tag) {
            on_recovery(rs, room, m, res, epoch);
            return;
        }
    }
}
