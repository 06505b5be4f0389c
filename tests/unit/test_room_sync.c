/*
 * test_room_sync — the room ordering state machine (common/room_sync.c), one test per rule of
 * room_sync.h, driven by hand through the interleavings that matter.
 *
 * Each event helper runs one room_sync call and returns its actions as a compact string
 * ("SUBSCRIBE SYNC", "JOINED(A:5@E1,rec)", "FETCH(B:8-10)", ...), so a test reads as the
 * conversation between the room and Redis. The helpers act like the gateway's adapter: they
 * remember the tags to answer with, and remove the room on UNSUBSCRIBE. Frames carry the
 * payload "<epoch>:<offset><tail>", so a rewritten history is a different tail.
 */
#include "room_sync.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define HISTORY 100
#define BACKLOG 64

static char sessions[3];
#define A ((void *)&sessions[0])
#define B ((void *)&sessions[1])
#define C ((void *)&sessions[2])

struct fx {
    struct room_registry reg;
    struct room_sync rs;
    struct room *room;
    char out[4096];
    uint64_t sync_tag;   /* the last SYNC/ROTATE emitted */
    uint64_t fill_tag;   /* the last gap FETCH emitted */
    uint64_t rec_tag[3]; /* the last recovery FETCH emitted, per session */
    char ids[3][64];     /* the ids of the last JOINED/JOIN_FAILED, per session */
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (!fx || room_registry_init(&fx->reg) != 0)
        return -1;
    room_sync_init(&fx->rs, HISTORY, BACKLOG);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    room_sync_free(&fx->rs);
    room_registry_free(&fx->reg);
    free(fx);
    return 0;
}

static void reconfigure(struct fx *fx, uint64_t history, unsigned backlog)
{
    room_sync_free(&fx->rs);
    room_sync_init(&fx->rs, history, backlog);
}

static int who(const void *session)
{
    return (int)((const char *)session - sessions);
}

static struct frame *mk(const char *epoch, uint64_t offset, const char *tail)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%s:%llu%s", epoch, (unsigned long long)offset, tail);
    struct frame *f = frame_new(16, buf, (size_t)n);
    assert_non_null(f);
    f->offset = offset;
    return f;
}

/* One action as text; records tags and ids like the adapter would. */
static void describe(struct fx *fx, const struct room_sync_action *a, char *buf, size_t size)
{
    char s = a->session ? (char)('A' + who(a->session)) : '-';
    const char *rec[] = {"", ",norec", ",rec"}; /* recovered -1, 0, 1 */
    switch (a->type) {
    case ROOM_SYNC_SUBSCRIBE:
        snprintf(buf, size, "SUBSCRIBE");
        break;
    case ROOM_SYNC_UNSUBSCRIBE:
        snprintf(buf, size, "UNSUBSCRIBE");
        break;
    case ROOM_SYNC_SYNC:
        fx->sync_tag = a->tag;
        snprintf(buf, size, "SYNC");
        break;
    case ROOM_SYNC_ROTATE:
        fx->sync_tag = a->tag;
        snprintf(buf, size, "ROTATE(%s)", a->epoch);
        break;
    case ROOM_SYNC_FETCH:
        if (a->session) {
            fx->rec_tag[who(a->session)] = a->tag;
            snprintf(buf, size, "FETCH(%c:%llu-%llu)", s, (unsigned long long)a->from,
                     (unsigned long long)a->to);
        } else {
            fx->fill_tag = a->tag;
            snprintf(buf, size, "FETCH(%llu-%llu)", (unsigned long long)a->from,
                     (unsigned long long)a->to);
        }
        break;
    case ROOM_SYNC_DELIVER:
        snprintf(buf, size, "DELIVER(%llu)", (unsigned long long)a->frame->offset);
        break;
    case ROOM_SYNC_SEND:
        snprintf(buf, size, "SEND(%c:%llu)", s, (unsigned long long)a->frame->offset);
        break;
    case ROOM_SYNC_JOINED:
        snprintf(fx->ids[who(a->session)], sizeof(fx->ids[0]), "%s", a->ids);
        snprintf(buf, size, "JOINED(%c:%llu@%s%s)", s, (unsigned long long)a->offset, a->epoch,
                 rec[a->recovered + 1]);
        break;
    case ROOM_SYNC_JOIN_FAILED:
        snprintf(fx->ids[who(a->session)], sizeof(fx->ids[0]), "%s", a->ids);
        snprintf(buf, size, "FAILED(%c:%s)", s,
                 a->error == PROTO_ERR_NOT_JOINED ? "not_joined" : "unavailable");
        break;
    case ROOM_SYNC_RESET:
        snprintf(buf, size, "RESET(%c:%llu@%s)", s, (unsigned long long)a->offset, a->epoch);
        break;
    }
}

/* The actions of the event just run, as text; then cleared (and the room dropped on
 * UNSUBSCRIBE, which must come last). */
static const char *drain(struct fx *fx)
{
    size_t len = 0;
    fx->out[0] = '\0';
    for (size_t i = 0; i < fx->rs.action_count; i++) {
        char buf[128];
        describe(fx, &fx->rs.actions[i], buf, sizeof(buf));
        len += (size_t)snprintf(fx->out + len, sizeof(fx->out) - len, "%s%s", i ? " " : "", buf);
        if (fx->rs.actions[i].type == ROOM_SYNC_UNSUBSCRIBE) {
            assert_int_equal(i + 1, fx->rs.action_count);
            assert_int_equal(fx->room->member_count, 0);
            room_registry_remove(&fx->reg, fx->room);
            fx->room = NULL;
        }
    }
    room_sync_actions_clear(&fx->rs);
    return fx->out;
}

static const char *join(struct fx *fx, void *s, const char *id, const char *since_epoch,
                        uint64_t since_offset)
{
    if (!fx->room)
        fx->room = room_registry_add(&fx->reg, "lobby");
    assert_non_null(fx->room);
    struct room_sync_since since = {.offset = since_offset, .epoch = since_epoch};
    assert_int_equal(room_sync_join(&fx->rs, fx->room, s, id, since_epoch ? &since : NULL), 0);
    return drain(fx);
}

static const char *leave(struct fx *fx, void *s)
{
    assert_true(room_sync_leave(&fx->rs, fx->room, s));
    return drain(fx);
}

static const char *subscribed(struct fx *fx)
{
    room_sync_subscribed(&fx->rs, fx->room);
    return drain(fx);
}

static const char *lost(struct fx *fx)
{
    room_sync_subscription_lost(&fx->rs, fx->room);
    return drain(fx);
}

static const char *ready(struct fx *fx)
{
    room_sync_redis_ready(&fx->rs, fx->room);
    return drain(fx);
}

static const char *synced_tag(struct fx *fx, uint64_t tag, bool ok, const char *epoch,
                              uint64_t offset)
{
    room_sync_sync_result(&fx->rs, fx->room, tag, ok, epoch, offset);
    return drain(fx);
}

static const char *synced(struct fx *fx, const char *epoch, uint64_t offset)
{
    return synced_tag(fx, fx->sync_tag, true, epoch, offset);
}

static const char *message_tail(struct fx *fx, const char *epoch, uint64_t offset, const char *tail)
{
    struct frame *f = mk(epoch, offset, tail);
    room_sync_message(&fx->rs, fx->room, epoch, f);
    frame_unref(f);
    return drain(fx);
}

static const char *message(struct fx *fx, const char *epoch, uint64_t offset)
{
    return message_tail(fx, epoch, offset, "");
}

/* Answers FETCH `tag` with the frames listed in `offsets` ("6 7 8x": offset 8 rewritten). */
static const char *fetched_ok(struct fx *fx, uint64_t tag, bool ok, const char *epoch,
                              uint64_t head, const char *offsets)
{
    struct frame *frames[64];
    size_t n = 0;
    for (const char *p = offsets; *p;) {
        char *end;
        unsigned long long off = strtoull(p, &end, 10);
        char tail[8] = "";
        size_t t = 0;
        while (*end && *end != ' ' && t < sizeof(tail) - 1)
            tail[t++] = *end++;
        tail[t] = '\0';
        frames[n++] = mk(epoch, off, tail);
        p = *end ? end + 1 : end;
    }
    struct room_sync_fetched res = {
        .tag = tag, .ok = ok, .epoch = epoch, .head = head, .frames = frames, .count = n};
    room_sync_fetch_result(&fx->rs, fx->room, &res);
    for (size_t i = 0; i < n; i++)
        frame_unref(frames[i]);
    return drain(fx);
}

static const char *fetched(struct fx *fx, uint64_t tag, const char *epoch, uint64_t head,
                           const char *offsets)
{
    return fetched_ok(fx, tag, true, epoch, head, offsets);
}

/* A joined; the room LIVE in `epoch` at `offset` (no frame known yet). */
static void live_at(struct fx *fx, const char *epoch, uint64_t offset)
{
    char want[64];
    assert_string_equal(join(fx, A, "a", NULL, 0), "SUBSCRIBE");
    assert_string_equal(subscribed(fx), "SYNC");
    snprintf(want, sizeof(want), "JOINED(A:%llu@%s)", (unsigned long long)offset, epoch);
    assert_string_equal(synced(fx, epoch, offset), want);
    assert_int_equal(fx->room->state, ROOM_LIVE);
}

/* As live_at, with the frame at `offset` delivered (so re-reads compare with it). */
static void live_with_frame(struct fx *fx, const char *epoch, uint64_t offset)
{
    char want[32];
    live_at(fx, epoch, offset - 1);
    snprintf(want, sizeof(want), "DELIVER(%llu)", (unsigned long long)offset);
    assert_string_equal(message(fx, epoch, offset), want);
}

/* ---------------------------------------------------------------------------------------- */
/* Joining: subscribe, sync, answer                                                          */
/* ---------------------------------------------------------------------------------------- */

static void test_first_join_subscribes_then_syncs_then_answers(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(join(fx, A, "1", NULL, 0), "SUBSCRIBE");
    assert_int_equal(fx->room->pending_count, 1);
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 5), "JOINED(A:5@E1)");
    assert_string_equal(fx->ids[0], "1");
    assert_int_equal(fx->room->pending_count, 0);
    assert_int_equal(fx->room->members[0].pending, 0);
}

static void test_join_on_live_room_answers_at_once(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(join(fx, B, "2", NULL, 0), "JOINED(B:5@E1)");
    assert_string_equal(message(fx, "E1", 6), "DELIVER(6)");
    assert_string_equal(join(fx, C, "3", NULL, 0), "JOINED(C:6@E1)");
}

static void test_joins_before_sync_wait_for_it(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(join(fx, A, "1", NULL, 0), "SUBSCRIBE");
    assert_string_equal(join(fx, B, "2", NULL, 0), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(join(fx, C, "3", NULL, 0), "");
    assert_string_equal(synced(fx, "E1", 0), "JOINED(A:0@E1) JOINED(B:0@E1) JOINED(C:0@E1)");
}

static void test_messages_before_sync_are_held_and_replayed_above_synced_offset(void **state)
{
    struct fx *fx = *state;
    join(fx, A, "1", NULL, 0);
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(message(fx, "E1", 4), "");
    assert_string_equal(message(fx, "E1", 5), "");
    assert_string_equal(message(fx, "E1", 6), "");
    assert_string_equal(message(fx, "E1", 7), "");
    assert_string_equal(synced(fx, "E1", 5), "JOINED(A:5@E1) DELIVER(6) DELIVER(7)");
    assert_int_equal(fx->rs.stats.duplicates, 2);
}

static void test_stale_subscribed_confirmation_is_ignored(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(subscribed(fx), "");
    assert_int_equal(fx->room->state, ROOM_LIVE);
}

/* ---------------------------------------------------------------------------------------- */
/* Ordering: duplicates, gaps, reorders                                                      */
/* ---------------------------------------------------------------------------------------- */

static void test_in_order_messages_are_delivered(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 6), "DELIVER(6)");
    assert_string_equal(message(fx, "E1", 7), "DELIVER(7)");
    assert_int_equal(fx->room->last_offset, 7);
    assert_int_equal(fx->room->last_frame->offset, 7);
}

static void test_duplicates_are_dropped(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 6);
    assert_string_equal(message(fx, "E1", 6), "");
    assert_string_equal(message(fx, "E1", 3), "");
    assert_int_equal(fx->rs.stats.duplicates, 2);
}

static void test_gap_is_filled_from_log_before_newer_messages(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 6);
    assert_string_equal(message(fx, "E1", 9), "FETCH(6-8)"); /* 6 re-read to compare */
    assert_true(fx->room->filling);
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 9, "6 7 8"),
                        "DELIVER(7) DELIVER(8) DELIVER(9)");
    assert_false(fx->room->filling);
    assert_int_equal(fx->rs.stats.refilled, 2);
    assert_int_equal(fx->rs.stats.lost, 0);
}

static void test_gap_without_known_frame_fetches_from_next_offset(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 8, "6 7"),
                        "DELIVER(6) DELIVER(7) DELIVER(8)");
}

static void test_messages_during_fill_are_held_in_order(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    assert_string_equal(message(fx, "E1", 9), "");
    assert_string_equal(message(fx, "E1", 10), "");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 10, "6 7"),
                        "DELIVER(6) DELIVER(7) DELIVER(8) DELIVER(9) DELIVER(10)");
}

static void test_reordered_messages_are_delivered_in_order_once(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 7), "FETCH(6-6)");
    assert_string_equal(message(fx, "E1", 6), "");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 7, "6"), "DELIVER(6) DELIVER(7)");
    assert_int_equal(fx->rs.stats.duplicates, 1);
}

static void test_second_gap_among_held_messages_starts_another_fill(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 7), "FETCH(6-6)");
    assert_string_equal(message(fx, "E1", 10), "");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 10, "6"),
                        "DELIVER(6) DELIVER(7) FETCH(7-9)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 10, "7 8 9"),
                        "DELIVER(8) DELIVER(9) DELIVER(10)");
}

static void test_offsets_missing_from_log_are_counted_lost(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 9), "FETCH(6-8)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 9, "8"), "DELIVER(8) DELIVER(9)");
    assert_int_equal(fx->rs.stats.lost, 2);
    assert_string_equal(message(fx, "E1", 12), "FETCH(9-11)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 12, ""), "DELIVER(12)");
    assert_int_equal(fx->rs.stats.lost, 4); /* 10 and 11; 9 was only re-read */
}

static void test_gap_longer_than_history_asks_only_for_kept_offsets(void **state)
{
    struct fx *fx = *state;
    reconfigure(fx, 10, BACKLOG);
    live_with_frame(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 30), "FETCH(20-29)");
    assert_int_equal(fx->rs.stats.lost, 14);
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 30, "20 21 22 23 24 25 26 27 28 29"),
                        "DELIVER(20) DELIVER(21) DELIVER(22) DELIVER(23) DELIVER(24) "
                        "DELIVER(25) DELIVER(26) DELIVER(27) DELIVER(28) DELIVER(29) "
                        "DELIVER(30)");
}

static void test_without_log_gaps_are_skipped_at_once(void **state)
{
    struct fx *fx = *state;
    reconfigure(fx, 0, BACKLOG);
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "DELIVER(8)");
    assert_int_equal(fx->rs.stats.lost, 2);
}

static void test_join_during_fill_answers_at_once_and_gets_filled_frames(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    assert_string_equal(join(fx, B, "2", NULL, 0), "JOINED(B:5@E1)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 8, "6 7"),
                        "DELIVER(6) DELIVER(7) DELIVER(8)");
    assert_int_equal(fx->room->members[1].pending, 0);
}

static void test_unknown_fetch_tag_is_ignored(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    assert_string_equal(fetched(fx, fx->fill_tag + 100, "E1", 8, "6 7"), "");
    assert_string_equal(fetched(fx, 0, "E1", 8, "6 7"), "");
    assert_true(fx->room->filling);
}

static void test_fill_failure_stalls_room_until_redis_is_ready(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    assert_string_equal(fetched_ok(fx, fx->fill_tag, false, "", 0, ""), "");
    assert_int_equal(fx->room->state, ROOM_STALLED);
    assert_string_equal(message(fx, "E1", 9), "");
    assert_string_equal(ready(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 9), "FETCH(6-9)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 9, "6 7 8 9"),
                        "DELIVER(6) DELIVER(7) DELIVER(8) DELIVER(9)");
    assert_int_equal(fx->rs.stats.lost, 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Recovery: join with since                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void test_recovery_replays_missed_messages_then_joins(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_int_equal(fx->room->members[1].pending, 1);
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "8 9 10"),
                        "SEND(B:8) SEND(B:9) SEND(B:10) JOINED(B:10@E1,rec)");
    assert_string_equal(fx->ids[1], "2");
    assert_int_equal(fx->room->members[1].pending, 0);
}

static void test_recovery_races_live_traffic(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(message(fx, "E1", 11), "DELIVER(11)"); /* B is held out of fan-out */
    assert_string_equal(message(fx, "E1", 12), "DELIVER(12)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 12, "8 9 10"),
                        "SEND(B:8) SEND(B:9) SEND(B:10) FETCH(B:11-12)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 12, "11 12"),
                        "SEND(B:11) SEND(B:12) JOINED(B:12@E1,rec)");
    assert_string_equal(message(fx, "E1", 13), "DELIVER(13)");
}

static void test_recovery_of_other_epoch_is_not_recovered(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E0", 3), "JOINED(B:10@E1,norec)");
}

static void test_recovery_from_the_future_is_not_recovered(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 11), "JOINED(B:10@E1,norec)");
}

static void test_recovery_at_last_offset_is_recovered_at_once(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 10), "JOINED(B:10@E1,rec)");
}

static void test_recovery_when_log_lacks_next_offset_sends_nothing(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "9 10"), "JOINED(B:10@E1,norec)");
}

static void test_recovery_with_hole_in_log_stops_there(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "8 10"),
                        "SEND(B:8) JOINED(B:10@E1,norec)");
}

/* A recovery read in pages (a byte budget stopped the answer): the next page is fetched from
 * the next offset; a short answer without `more` still means the log lacks the rest. */
static void test_recovery_in_pages_continues_after_a_short_page(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 4), "FETCH(B:5-10)");
    struct frame *page[] = {mk("E1", 5, ""), mk("E1", 6, "")};
    struct room_sync_fetched res = {.tag = fx->rec_tag[1], .ok = true, .epoch = "E1",
                                    .head = 10, .frames = page, .count = 2, .more = true};
    room_sync_fetch_result(&fx->rs, fx->room, &res);
    frame_unref(page[0]);
    frame_unref(page[1]);
    assert_string_equal(drain(fx), "SEND(B:5) SEND(B:6) FETCH(B:7-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "7 8 9 10"),
                        "SEND(B:7) SEND(B:8) SEND(B:9) SEND(B:10) JOINED(B:10@E1,rec)");
}

static void test_recovery_beyond_history_is_refused_without_fetch(void **state)
{
    struct fx *fx = *state;
    reconfigure(fx, 10, BACKLOG);
    live_at(fx, "E1", 50);
    assert_string_equal(join(fx, B, "2", "E1", 39), "JOINED(B:50@E1,norec)");
    assert_string_equal(join(fx, C, "3", "E1", 40), "FETCH(C:41-50)");
}

static void test_recovery_fetch_failure_is_not_recovered(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(fetched_ok(fx, fx->rec_tag[1], false, "", 0, ""), "JOINED(B:10@E1,norec)");
}

static void test_recovery_requested_before_room_is_live(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(join(fx, A, "1", "E1", 3), "SUBSCRIBE");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 5), "FETCH(A:4-5)");
    assert_string_equal(fetched(fx, fx->rec_tag[0], "E1", 5, "4 5"),
                        "SEND(A:4) SEND(A:5) JOINED(A:5@E1,rec)");
}

static void test_join_with_since_during_fill(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    assert_string_equal(join(fx, B, "2", "E1", 3), "FETCH(B:4-5)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 8, "6 7"),
                        "DELIVER(6) DELIVER(7) DELIVER(8)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 8, "4 5"),
                        "SEND(B:4) SEND(B:5) FETCH(B:6-8)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 8, "6 7 8"),
                        "SEND(B:6) SEND(B:7) SEND(B:8) JOINED(B:8@E1,rec)");
}

static void test_two_recoveries_run_independently(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 8), "FETCH(B:9-10)");
    assert_string_equal(join(fx, C, "3", "E1", 9), "FETCH(C:10-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[2], "E1", 10, "10"),
                        "SEND(C:10) JOINED(C:10@E1,rec)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "9 10"),
                        "SEND(B:9) SEND(B:10) JOINED(B:10@E1,rec)");
}

/* ---------------------------------------------------------------------------------------- */
/* Leaving and joining again                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void test_leave_before_joined_fails_the_pending_join(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(join(fx, A, "1", NULL, 0), "SUBSCRIBE");
    assert_string_equal(join(fx, B, "2", NULL, 0), "");
    assert_string_equal(leave(fx, B), "FAILED(B:not_joined)");
    assert_string_equal(fx->ids[1], "2");
    assert_string_equal(leave(fx, A), "FAILED(A:not_joined) UNSUBSCRIBE");
    assert_null(fx->room);
}

static void test_leave_during_recovery_ignores_its_late_fetch(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(leave(fx, B), "FAILED(B:not_joined)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "8 9 10"), "");
}

static void test_leave_of_non_member_is_refused(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_false(room_sync_leave(&fx->rs, fx->room, B));
    assert_int_equal(fx->rs.action_count, 0);
}

static void test_last_leave_unsubscribes(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(join(fx, B, "2", NULL, 0), "JOINED(B:5@E1)");
    assert_string_equal(leave(fx, A), "");
    assert_string_equal(leave(fx, B), "UNSUBSCRIBE");
    assert_null(fx->room);
    assert_string_equal(join(fx, A, "3", NULL, 0), "SUBSCRIBE"); /* a new incarnation */
}

static void test_rejoin_while_pending_answers_every_id_once(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(join(fx, A, "1", NULL, 0), "SUBSCRIBE");
    assert_string_equal(join(fx, A, "\"two\"", NULL, 0), "");
    assert_string_equal(join(fx, A, NULL, NULL, 0), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 0), "JOINED(A:0@E1)");
    assert_string_equal(fx->ids[0], "1\n\"two\"\n");
}

static void test_rejoin_while_live_answers_again_without_redelivery(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 6);
    assert_string_equal(join(fx, A, "again", NULL, 0), "JOINED(A:6@E1)");
    assert_string_equal(fx->ids[0], "again");
    assert_string_equal(join(fx, A, "since", "E1", 2), "JOINED(A:6@E1)");
    assert_int_equal(fx->room->member_count, 1);
}

static void test_rejoin_while_recovering_keeps_the_first_since(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "1", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(join(fx, B, "2", "E1", 9), "");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "8 9 10"),
                        "SEND(B:8) SEND(B:9) SEND(B:10) JOINED(B:10@E1,rec)");
    assert_string_equal(fx->ids[1], "1\n2");
}

/* ---------------------------------------------------------------------------------------- */
/* Subscription loss and Redis failures                                                      */
/* ---------------------------------------------------------------------------------------- */

static void test_subscription_loss_fails_pending_keeps_live_and_refills(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(lost(fx), "FAILED(B:unavailable)");
    assert_int_equal(fx->room->state, ROOM_SUBSCRIBING);
    assert_int_equal(fx->room->member_count, 1);
    assert_string_equal(message(fx, "E1", 13), ""); /* held */
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 12), "FETCH(10-12)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 13, "10 11 12"),
                        "DELIVER(11) DELIVER(12) DELIVER(13)");
}

static void test_messages_held_at_subscription_loss_are_not_delivered(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 7), "FETCH(6-6)");
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    /* a failover lost 6 and 7; 6 was reissued: the held 7 may be a lost write */
    assert_string_equal(synced(fx, "E1", 6), "FETCH(6-6)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 6, "6x"), "DELIVER(6)");
    assert_string_equal(message(fx, "E1", 7), "DELIVER(7)");
}

static void test_subscription_loss_with_only_pending_members_unsubscribes(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(join(fx, A, "1", NULL, 0), "SUBSCRIBE");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(lost(fx), "FAILED(A:unavailable) UNSUBSCRIBE");
    assert_null(fx->room);
}

static void test_subscription_loss_during_fill_ignores_its_late_answer(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    uint64_t late = fx->fill_tag;
    assert_string_equal(lost(fx), "");
    assert_false(fx->room->filling);
    assert_string_equal(fetched(fx, late, "E1", 8, "6 7"), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 8), "FETCH(6-8)");
    assert_string_equal(fetched(fx, late, "E1", 8, "6 7 8"), "");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 8, "6 7 8"),
                        "DELIVER(6) DELIVER(7) DELIVER(8)");
}

static void test_subscription_loss_during_recovery_ignores_its_late_answer(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    uint64_t late = fx->rec_tag[1];
    assert_string_equal(lost(fx), "FAILED(B:unavailable)");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 10), "");
    assert_string_equal(fetched(fx, late, "E1", 10, "8 9 10"), "");
}

static void test_late_sync_answer_after_loss_is_ignored(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    uint64_t first = fx->sync_tag;
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced_tag(fx, first, true, "E1", 1),
                        ""); /* would look like a regression */
    assert_string_equal(synced(fx, "E1", 5), "");
    assert_int_equal(fx->room->state, ROOM_LIVE);
    assert_int_equal(fx->rs.stats.rotations, 0);
}

static void test_sync_failure_fails_pending_and_retries_when_ready(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(join(fx, B, "2", NULL, 0), "");
    assert_string_equal(synced_tag(fx, fx->sync_tag, false, NULL, 0), "FAILED(B:unavailable)");
    assert_int_equal(fx->room->state, ROOM_STALLED);
    assert_string_equal(message(fx, "E1", 7), "");
    assert_string_equal(ready(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 7), "FETCH(6-7)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 7, "6 7"), "DELIVER(6) DELIVER(7)");
}

static void test_first_sync_failure_without_members_left_unsubscribes(void **state)
{
    struct fx *fx = *state;
    assert_string_equal(join(fx, A, "1", NULL, 0), "SUBSCRIBE");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced_tag(fx, fx->sync_tag, false, NULL, 0),
                        "FAILED(A:unavailable) UNSUBSCRIBE");
}

static void test_join_on_stalled_room_retries_the_sync(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced_tag(fx, fx->sync_tag, false, NULL, 0), "");
    assert_string_equal(join(fx, B, "2", NULL, 0), "SYNC");
    assert_string_equal(synced(fx, "E1", 5), "JOINED(B:5@E1)");
}

static void test_ready_on_a_healthy_room_does_nothing(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(ready(fx), "");
}

/* ---------------------------------------------------------------------------------------- */
/* Epoch changes                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void test_message_of_other_epoch_syncs_then_resets_members(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", NULL, 0), "JOINED(B:10@E1)");
    assert_string_equal(message(fx, "E2", 2), "SYNC");
    assert_string_equal(message(fx, "E2", 3), "");
    assert_string_equal(synced(fx, "E2", 3), "RESET(A:0@E2) RESET(B:0@E2) FETCH(1-3)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E2", 3, "1 2 3"),
                        "DELIVER(1) DELIVER(2) DELIVER(3)");
    assert_string_equal(message(fx, "E2", 4), "DELIVER(4)");
    assert_int_equal(fx->rs.stats.resets, 1);
}

static void test_epoch_change_answers_pending_joins_in_new_epoch(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(message(fx, "E2", 1), "SYNC");
    assert_string_equal(join(fx, B, "2", NULL, 0), "");
    assert_string_equal(join(fx, C, "3", "E1", 9), "");
    assert_string_equal(synced(fx, "E2", 1),
                        "RESET(A:0@E2) JOINED(B:0@E2) JOINED(C:0@E2,norec) FETCH(1-1)");
}

static void test_epoch_change_seen_by_resync_after_loss(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 10);
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2)");
    assert_string_equal(message(fx, "E2", 1), "DELIVER(1)");
}

static void test_epoch_change_beyond_history_resets_to_kept_base(void **state)
{
    struct fx *fx = *state;
    reconfigure(fx, 10, BACKLOG);
    live_at(fx, "E1", 10);
    assert_string_equal(message(fx, "E2", 50), "SYNC");
    assert_string_equal(synced(fx, "E2", 50), "RESET(A:40@E2) FETCH(41-50)");
    assert_int_equal(fx->rs.stats.lost, 40);
}

static void test_messages_of_retired_epoch_are_dropped(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(message(fx, "E2", 1), "SYNC");
    assert_string_equal(synced(fx, "E2", 1), "RESET(A:0@E2) FETCH(1-1)");
    assert_string_equal(message(fx, "E1", 11), "");
    assert_string_equal(fetched(fx, fx->fill_tag, "E2", 1, "1"), "DELIVER(1)");
    assert_string_equal(message(fx, "E1", 12), "");
    assert_int_equal(fx->rs.stats.stale, 2);
}

static void test_stale_epoch_message_is_verified_not_followed(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 10);
    assert_string_equal(message(fx, "E0", 30), "SYNC"); /* an old epoch, unknown to us */
    assert_string_equal(message(fx, "E1", 11), "");
    assert_string_equal(synced(fx, "E1", 11), "FETCH(10-11)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 11, "10 11"), "DELIVER(11) SYNC");
    assert_string_equal(synced(fx, "E1", 11), "FETCH(11-11)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 11, "11"), "");
    assert_int_equal(fx->rs.stats.resets, 0);
}

static void test_fetched_range_of_other_epoch_syncs(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    assert_string_equal(message(fx, "E1", 8), "FETCH(6-7)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E2", 3, "1 2 3"), "SYNC");
    assert_string_equal(synced(fx, "E2", 3), "RESET(A:0@E2) FETCH(1-3)");
}

static void test_recovery_across_epoch_change_is_not_recovered(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    uint64_t late = fx->rec_tag[1];
    assert_string_equal(message(fx, "E2", 1), "SYNC");
    assert_string_equal(fetched(fx, late, "E1", 10, "8 9 10"), "");
    assert_string_equal(synced(fx, "E2", 1), "RESET(A:0@E2) JOINED(B:0@E2,norec) FETCH(1-1)");
}

static void test_recovery_fetch_of_other_epoch_syncs_then_answers(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E2", 2, "1 2"), "SYNC");
    assert_string_equal(synced(fx, "E2", 2), "RESET(A:0@E2) JOINED(B:0@E2,norec) FETCH(1-2)");
}

/* ---------------------------------------------------------------------------------------- */
/* Regression: Redis lost acknowledged writes                                                 */
/* ---------------------------------------------------------------------------------------- */

static void test_sync_behind_delivered_offset_rotates_then_resets(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 7), "ROTATE(E1)");
    assert_int_equal(fx->room->state, ROOM_ROTATING);
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2)");
    assert_int_equal(fx->rs.stats.rotations, 1);
    assert_int_equal(fx->rs.stats.resets, 1);
}

static void test_old_epoch_is_never_delivered_after_regression(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 7), "ROTATE(E1)");
    assert_string_equal(message(fx, "E1", 8), "");
    assert_string_equal(message(fx, "E1", 11), "");
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2)");
    assert_string_equal(message(fx, "E1", 12), "");
    assert_string_equal(message(fx, "E2", 1), "DELIVER(1)");
}

static void test_new_epoch_messages_during_rotation_are_held(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 7), "ROTATE(E1)");
    assert_string_equal(message(fx, "E2", 1), "");
    assert_string_equal(message(fx, "E2", 2), "");
    assert_string_equal(synced(fx, "E2", 1), "RESET(A:0@E2) FETCH(1-1)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E2", 2, "1"), "DELIVER(1) DELIVER(2)");
}

static void test_pending_joins_during_rotation_answer_in_new_epoch(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 7), "ROTATE(E1)");
    assert_string_equal(join(fx, B, "2", NULL, 0), "");
    assert_string_equal(join(fx, A, "again", NULL, 0), "JOINED(A:10@E1)");
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2) JOINED(B:0@E2)");
}

static void test_rotation_failure_stalls_and_rotates_again(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 7), "ROTATE(E1)");
    assert_string_equal(synced_tag(fx, fx->sync_tag, false, NULL, 0), "");
    assert_int_equal(fx->room->state, ROOM_STALLED);
    assert_string_equal(ready(fx), "SYNC");
    assert_string_equal(synced(fx, "E1", 9), "ROTATE(E1)"); /* still the retired epoch */
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2)");
}

static void test_rotation_answered_with_retired_epoch_stalls(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 7), "ROTATE(E1)");
    assert_string_equal(synced(fx, "E1", 7), "");
    assert_int_equal(fx->room->state, ROOM_STALLED);
}

static void test_sync_reporting_retired_epoch_again_rotates_it(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(message(fx, "E2", 1), "SYNC");
    assert_string_equal(synced(fx, "E2", 1), "RESET(A:0@E2) FETCH(1-1)");
    assert_string_equal(lost(fx), "");
    assert_string_equal(subscribed(fx), "SYNC");
    /* a failover lost the rotation to E2: Redis is back on E1 */
    assert_string_equal(synced(fx, "E1", 12), "ROTATE(E1)");
    assert_string_equal(synced(fx, "E3", 0), "RESET(A:0@E3)");
}

static void test_epoch_left_several_changes_ago_is_never_reentered(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(message(fx, "E2", 1), "SYNC");
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2) DELIVER(1)");
    assert_string_equal(message(fx, "E3", 1), "SYNC");
    assert_string_equal(synced(fx, "E3", 0), "RESET(A:0@E3) DELIVER(1)");
    assert_string_equal(message(fx, "E1", 13), ""); /* still known as left */
    lost(fx);
    subscribed(fx);
    /* a failover took Redis back to E1, whose offsets past 10 this room may have delivered */
    assert_string_equal(synced(fx, "E1", 13), "ROTATE(E1)");
    assert_string_equal(synced(fx, "E4", 0), "RESET(A:0@E4)");
    assert_string_equal(message(fx, "E2", 2), "");
    assert_string_equal(message(fx, "E3", 2), "");
}

static void test_fill_behind_known_offset_rotates(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 6);
    assert_string_equal(message(fx, "E1", 10), "FETCH(6-9)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 7, "6 7"), "ROTATE(E1)");
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2)");
}

static void test_rewritten_frame_at_last_offset_in_fill_rotates(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 10);
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 12), "FETCH(10-12)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 12, "10x 11x 12x"), "ROTATE(E1)");
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2)");
}

static void test_rewritten_copy_of_last_offset_on_subscription_rotates(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 10);
    assert_string_equal(message_tail(fx, "E1", 10, ""), "");
    assert_string_equal(message_tail(fx, "E1", 10, "x"), "ROTATE(E1)");
}

static void test_resync_at_same_offset_still_compares_last_frame(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 10);
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 10), "FETCH(10-10)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 10, "10"), "");
    assert_int_equal(fx->room->state, ROOM_LIVE);
}

static void test_frame_replayed_at_last_offset_is_compared_after_resync(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10); /* no frame known at 10 */
    assert_string_equal(join(fx, B, "2", "E1", 9), "FETCH(B:10-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 10, "10"),
                        "SEND(B:10) JOINED(B:10@E1,rec)");
    lost(fx);
    subscribed(fx);
    assert_string_equal(synced(fx, "E1", 11), "FETCH(10-11)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 11, "10x 11x"), "ROTATE(E1)");
}

static void test_recovery_behind_its_range_rotates(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 7), "FETCH(B:8-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 8, "8"), "ROTATE(E1)");
    assert_string_equal(synced(fx, "E2", 0), "RESET(A:0@E2) JOINED(B:0@E2,norec)");
}

static void test_recovery_from_rewritten_log_rotates_before_sending(void **state)
{
    struct fx *fx = *state;
    live_with_frame(fx, "E1", 10);
    assert_string_equal(join(fx, B, "2", "E1", 8), "FETCH(B:9-10)");
    assert_string_equal(fetched(fx, fx->rec_tag[1], "E1", 11, "9x 10x"), "ROTATE(E1)");
}

/* ---------------------------------------------------------------------------------------- */
/* Holding limits                                                                             */
/* ---------------------------------------------------------------------------------------- */

static void test_full_hold_drops_and_rereads_once_live(void **state)
{
    struct fx *fx = *state;
    reconfigure(fx, HISTORY, 2);
    live_at(fx, "E1", 5);
    lost(fx);
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(message(fx, "E1", 6), "");
    assert_string_equal(message(fx, "E1", 7), "");
    assert_string_equal(message(fx, "E1", 8), ""); /* dropped */
    assert_string_equal(synced(fx, "E1", 5), "DELIVER(6) DELIVER(7) SYNC");
    assert_string_equal(synced(fx, "E1", 8), "FETCH(7-8)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 8, "7 8"), "DELIVER(8)");
}

static void test_held_messages_of_two_epochs_keep_the_newest(void **state)
{
    struct fx *fx = *state;
    live_at(fx, "E1", 5);
    lost(fx);
    assert_string_equal(subscribed(fx), "SYNC");
    assert_string_equal(message(fx, "E1", 6), "");
    assert_string_equal(message(fx, "E2", 1), ""); /* replaces the E1 ones */
    assert_string_equal(synced(fx, "E1", 6), "FETCH(6-6)");
    assert_string_equal(fetched(fx, fx->fill_tag, "E1", 6, "6"), "DELIVER(6) SYNC");
    assert_string_equal(synced(fx, "E2", 1), "RESET(A:0@E2) FETCH(1-1)");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
static const struct CMUnitTest joining_tests[] = {
    T(test_first_join_subscribes_then_syncs_then_answers),
    T(test_join_on_live_room_answers_at_once),
    T(test_joins_before_sync_wait_for_it),
    T(test_messages_before_sync_are_held_and_replayed_above_synced_offset),
    T(test_stale_subscribed_confirmation_is_ignored),
};
static const struct CMUnitTest ordering_tests[] = {
    T(test_in_order_messages_are_delivered),
    T(test_duplicates_are_dropped),
    T(test_gap_is_filled_from_log_before_newer_messages),
    T(test_gap_without_known_frame_fetches_from_next_offset),
    T(test_messages_during_fill_are_held_in_order),
    T(test_reordered_messages_are_delivered_in_order_once),
    T(test_second_gap_among_held_messages_starts_another_fill),
    T(test_offsets_missing_from_log_are_counted_lost),
    T(test_gap_longer_than_history_asks_only_for_kept_offsets),
    T(test_without_log_gaps_are_skipped_at_once),
    T(test_join_during_fill_answers_at_once_and_gets_filled_frames),
    T(test_unknown_fetch_tag_is_ignored),
    T(test_fill_failure_stalls_room_until_redis_is_ready),
};
static const struct CMUnitTest recovery_tests[] = {
    T(test_recovery_replays_missed_messages_then_joins),
    T(test_recovery_races_live_traffic),
    T(test_recovery_of_other_epoch_is_not_recovered),
    T(test_recovery_from_the_future_is_not_recovered),
    T(test_recovery_at_last_offset_is_recovered_at_once),
    T(test_recovery_when_log_lacks_next_offset_sends_nothing),
    T(test_recovery_with_hole_in_log_stops_there),
    T(test_recovery_in_pages_continues_after_a_short_page),
    T(test_recovery_beyond_history_is_refused_without_fetch),
    T(test_recovery_fetch_failure_is_not_recovered),
    T(test_recovery_requested_before_room_is_live),
    T(test_join_with_since_during_fill),
    T(test_two_recoveries_run_independently),
};
static const struct CMUnitTest membership_tests[] = {
    T(test_leave_before_joined_fails_the_pending_join),
    T(test_leave_during_recovery_ignores_its_late_fetch),
    T(test_leave_of_non_member_is_refused),
    T(test_last_leave_unsubscribes),
    T(test_rejoin_while_pending_answers_every_id_once),
    T(test_rejoin_while_live_answers_again_without_redelivery),
    T(test_rejoin_while_recovering_keeps_the_first_since),
};
static const struct CMUnitTest failures_tests[] = {
    T(test_subscription_loss_fails_pending_keeps_live_and_refills),
    T(test_messages_held_at_subscription_loss_are_not_delivered),
    T(test_subscription_loss_with_only_pending_members_unsubscribes),
    T(test_subscription_loss_during_fill_ignores_its_late_answer),
    T(test_subscription_loss_during_recovery_ignores_its_late_answer),
    T(test_late_sync_answer_after_loss_is_ignored),
    T(test_sync_failure_fails_pending_and_retries_when_ready),
    T(test_first_sync_failure_without_members_left_unsubscribes),
    T(test_join_on_stalled_room_retries_the_sync),
    T(test_ready_on_a_healthy_room_does_nothing),
};
static const struct CMUnitTest epochs_tests[] = {
    T(test_message_of_other_epoch_syncs_then_resets_members),
    T(test_epoch_change_answers_pending_joins_in_new_epoch),
    T(test_epoch_change_seen_by_resync_after_loss),
    T(test_epoch_change_beyond_history_resets_to_kept_base),
    T(test_messages_of_retired_epoch_are_dropped),
    T(test_stale_epoch_message_is_verified_not_followed),
    T(test_fetched_range_of_other_epoch_syncs),
    T(test_recovery_across_epoch_change_is_not_recovered),
    T(test_recovery_fetch_of_other_epoch_syncs_then_answers),
    T(test_epoch_left_several_changes_ago_is_never_reentered),
};
static const struct CMUnitTest regression_tests[] = {
    T(test_sync_behind_delivered_offset_rotates_then_resets),
    T(test_old_epoch_is_never_delivered_after_regression),
    T(test_new_epoch_messages_during_rotation_are_held),
    T(test_pending_joins_during_rotation_answer_in_new_epoch),
    T(test_rotation_failure_stalls_and_rotates_again),
    T(test_rotation_answered_with_retired_epoch_stalls),
    T(test_sync_reporting_retired_epoch_again_rotates_it),
    T(test_fill_behind_known_offset_rotates),
    T(test_rewritten_frame_at_last_offset_in_fill_rotates),
    T(test_rewritten_copy_of_last_offset_on_subscription_rotates),
    T(test_resync_at_same_offset_still_compares_last_frame),
    T(test_frame_replayed_at_last_offset_is_compared_after_resync),
    T(test_recovery_behind_its_range_rotates),
    T(test_recovery_from_rewritten_log_rotates_before_sending),
};
static const struct CMUnitTest holding_tests[] = {
    T(test_full_hold_drops_and_rereads_once_live),
    T(test_held_messages_of_two_epochs_keep_the_newest),
};
#undef T

int main(void)
{
    int failed = 0;
    failed += cmocka_run_group_tests_name("joining", joining_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("ordering", ordering_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("recovery", recovery_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("membership", membership_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("failures", failures_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("epochs", epochs_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("regression", regression_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("holding", holding_tests, NULL, NULL);
    return failed;
}
