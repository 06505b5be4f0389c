/*
 * room_sync — the per-room delivery guarantee (PROTOCOL.md §2) as a pure state machine:
 * events in, actions out. No I/O, no clocks, no globals; the caller (gateway/rooms.c) turns
 * actions into Redis commands and frames, and feeds Redis's answers back as events.
 *
 * The guarantee: Redis assigns a room's offsets 1, 2, 3... per epoch. Every local member is
 * sent each offset of its join window exactly once, in order, across gaps on the subscription,
 * subscription loss, recovery with `since`, epoch changes, and failovers that lose writes.
 *
 * Room position. `room->epoch` and `room->last_offset` say what this node has delivered: every
 * live member has been sent every offset after its join point up to last_offset, nothing
 * beyond, and holds room->epoch. `room->last_frame` is the frame sent (delivered or replayed)
 * at last_offset when known (NULL after a skip or a sync), kept to detect a rewritten history.
 *
 * States (room->state):
 *   SUBSCRIBING  SUBSCRIBE sent (first join, or the subscription was lost); waits for subscribed.
 *   SYNCING      subscribed; a SYNC (read the room's epoch and last offset S) is in flight.
 *   LIVE         deliveries flow. room->filling: a gap is being read back from the room's log;
 *                messages are held in room->backlog meanwhile.
 *   ROTATING     the offsets went backwards (acknowledged writes lost): ROTATE is in flight.
 *   STALLED      a Redis read failed; waits for redis_ready (or a join) to SYNC again.
 * Every state but LIVE holds messages in the backlog. Only LIVE answers joins at once.
 *
 * Rules (each one is a test in tests/unit/test_room_sync.c):
 *  1. Subscribe first, then sync: every message published after S reaches the subscription,
 *     so "offset > S" is exactly what a member joining at S must see.
 *  2. A message at last+1 is delivered; <= last is a duplicate and dropped (except a copy of
 *     last_offset with other bytes: the history was rewritten, rule 8); > last+1 is a gap:
 *     deliveries are held and the log is read for [last+1, offset-1] (at most history_size
 *     offsets; older ones are not kept, so they are counted lost; rule 9 adds last itself).
 *     Fetched frames are
 *     delivered in order; offsets the log no longer has are counted lost and skipped.
 *  3. A join on a LIVE room answers at once with last_offset, even during a fill (the member
 *     then gets the filled frames); otherwise it is pending until the room goes LIVE.
 *  4. Recovery (join with since, same epoch, since <= last_offset): the member is held out of
 *     live fan-out and sent [since+1, last] by repeated fetches (each up to the last_offset of
 *     that moment) until it has caught up: JOINED recovered:true. recovered:false (nothing
 *     more sent) when the epoch differs, since is in the future, the log no longer holds the
 *     next offset (known up front when more than history_size are missing), a fetch fails, or
 *     the log has a hole. A pending join with since that meets an epoch change is answered in
 *     the new epoch at its base: recovered:false, unless since is exactly that point.
 *  5. Subscription lost: pending joins fail (unavailable); live members stay; the room
 *     re-subscribes (the caller's bus does it and reports subscribed), syncs, and reads back
 *     [last, S]. A failed SYNC, ROTATE or gap fetch stalls the room the same way (pending joins
 *     fail) until redis_ready.
 *  6. Another epoch (in a SYNC answer) while members hold the old one: RESET(new epoch, base)
 *     to each live member before any message of the new epoch, pending joins answered in the
 *     new epoch at base, then [base+1, S] read from the log; base = max(0, S - history_size).
 *  7. Only a SYNC answer changes the epoch. A message or fetched range of another epoch is
 *     evidence, not truth (epochs are random, an old one cannot be told from a new one): the
 *     room holds deliveries and SYNCs. An epoch the room has left is never entered again: the
 *     last ROOM_RETIRED_MAX are remembered (room->retired, as digests); their messages are
 *     dropped at once, and a SYNC answer naming one means a failover took Redis back to it,
 *     so its offsets will be reissued: ROTATE it (rule 8).
 *  8. Regression: a SYNC answer with the same epoch and S < last_offset, a fetched range whose
 *     head (the room's counter when read) is below an offset known to be assigned, or a
 *     re-read frame at a delivered offset with other bytes, means Redis lost acknowledged
 *     writes and will reissue those offsets. The epoch is retired at once (nothing of it is
 *     delivered again), deliveries are held, and ROTATE(old epoch) asks Redis for a new one;
 *     its answer is a SYNC answer (rule 6). A ROTATE answered with a retired epoch stalls.
 *  9. A fill (gap or re-sync) with a known last_frame reads [last, to], not [last+1, to]: if
 *     the log's frame at last differs, the history was rewritten (rule 8). Recovery compares
 *     the log's frame at the end of each fetch with the room's, by digest, for the same reason.
 * 10. Held messages are bounded (backlog_max, then dropped) and of one epoch (held_epoch; a
 *     message of another epoch replaces them). Dropped ones are read back later: once the room
 *     is LIVE and idle it SYNCs again.
 * 11. Late answers are recognised by tag (SYNC/ROTATE: room->sync_tag, fills: room->fill_tag,
 *     recovery: per member) and ignored; tags are unique per room incarnation.
 *
 * Limits: without WAIT, a node that never delivered a lost write cannot notice that its
 * offset was reissued (redis-ha.md); the rules above catch it whenever this room (this
 * incarnation on this node) delivered an offset that was later rewritten, or an epoch it left
 * comes back. A room dropped and re-created remembers nothing.
 *
 * The contract with the caller:
 *  - Rooms come from room_registry_add (ROOM_SUBSCRIBING); one struct room_sync per thread.
 *  - After every room_sync_* event call, the caller performs rs->actions[0..action_count) in
 *    order, then calls room_sync_actions_clear(). DELIVER goes to the members live when it is
 *    performed: no event makes a member live after a DELIVER, so that set is exact.
 *  - UNSUBSCRIBE is the last action of its event; the caller then removes the room.
 *  - Fan-out (DELIVER) goes to every member with `pending == 0`, except the connection whose
 *    serial is frame->sender_serial. Membership is changed only by room_sync (join/leave,
 *    JOIN_FAILED removes the member).
 *  - Allocation failures: a failed join returns -1 (nothing changed); any other one loses the
 *    action or held frame concerned and is counted in stats.oom (log it).
 */
#ifndef CHAT_ROOM_SYNC_H
#define CHAT_ROOM_SYNC_H

#include "frame.h"
#include "protocol.h"
#include "room_registry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum room_sync_action_type {
    ROOM_SYNC_SUBSCRIBE,   /* subscribe to the room's channel, then report subscribed */
    ROOM_SYNC_UNSUBSCRIBE, /* no member left: unsubscribe and remove the room */
    ROOM_SYNC_SYNC,        /* tag: read epoch and last offset (creating the epoch if missing) */
    ROOM_SYNC_ROTATE,      /* tag, epoch: replace the epoch if it still equals `epoch` or is
                              missing (offsets restart at 0, log emptied); answer like SYNC */
    ROOM_SYNC_FETCH,       /* tag, from, to, session (NULL: gap fill, else its recovery): read the
                              log's frames in [from, to] with the epoch and counter, atomically */
    ROOM_SYNC_DELIVER,     /* frame: to every live member but its sender */
    ROOM_SYNC_SEND,        /* session, frame: recovery replay to one pending member */
    ROOM_SYNC_JOINED,      /* session, offset, epoch, recovered, ids: answer `joined` to each id */
    ROOM_SYNC_JOIN_FAILED, /* session, error, ids: answer each id; the member was removed */
    ROOM_SYNC_RESET,       /* session, epoch, offset: send `reset` to this live member */
};

struct room_sync_action {
    enum room_sync_action_type type;
    int recovered;          /* JOINED: -1 (omit the field), 0 or 1 */
    enum proto_error error; /* JOIN_FAILED: PROTO_ERR_NOT_JOINED or PROTO_ERR_UNAVAILABLE */
    void *session;          /* FETCH (recovery), SEND, JOINED, JOIN_FAILED, RESET */
    struct frame *frame;    /* DELIVER, SEND: one reference, owned by the action */
    uint64_t tag;           /* SYNC, ROTATE, FETCH: echo it in the answer */
    uint64_t from, to;      /* FETCH: inclusive */
    uint64_t offset;        /* JOINED, RESET */
    char *ids;              /* JOINED, JOIN_FAILED: the request ids (JSON texts, "" for none),
                               '\n'-separated; owned by the action */
    char epoch[PROTO_EPOCH_MAX + 1]; /* JOINED, RESET, ROTATE */
};

/* Cumulative counters for /metrics; the caller reads and may zero them. */
struct room_sync_stats {
    uint64_t refilled;   /* offsets delivered from the log by gap fills */
    uint64_t lost;       /* offsets skipped: the log no longer had them (or there is no log) */
    uint64_t duplicates; /* messages at or below last_offset, dropped */
    uint64_t stale;      /* messages dropped: retired epoch, or displaced from the hold */
    uint64_t resets;     /* epoch changes applied while the room had an epoch */
    uint64_t rotations;  /* regressions detected (ROTATE emitted) */
    uint64_t oom;        /* allocation failures (an action or a held frame lost) */
};

struct room_sync {
    uint64_t history_size; /* offsets the log keeps per room (--history-size); 0: no log */
    unsigned backlog_max;  /* frames held per room while not delivering */
    struct room_sync_stats stats;
    struct room_sync_action *actions; /* output of the last event call */
    size_t action_count, action_cap;
};

/* A join's `since`: the client has everything up to offset in epoch. */
struct room_sync_since {
    uint64_t offset;
    const char *epoch;
};

/* The answer to a FETCH. epoch and head are the room's epoch ("" if none) and counter, read
 * atomically with frames (a script: GET epoch, GET seq, XRANGE). frames are in offset order;
 * room_sync takes its own references. ok false: Redis failed (the rest is ignored). */
struct room_sync_fetched {
    uint64_t tag;
    bool ok;
    const char *epoch;
    uint64_t head;
    struct frame *const *frames;
    size_t count;
    bool more;   /* recovery: the answer stopped early at a byte budget; more pages follow */
};

void room_sync_init(struct room_sync *rs, uint64_t history_size, unsigned backlog_max);
/* Drops the actions (their frame references and ids); the array is kept for reuse. */
void room_sync_actions_clear(struct room_sync *rs);
void room_sync_free(struct room_sync *rs);

/* Events. Each lists the actions it can emit, in order. */

/* session asks to join (id_json: its request id, NULL for none; since: NULL for none).
 * Already a member: pending → nothing (the id is answered with the others); live →
 *   JOINED(recovered -1). New member: SUBSCRIBE if it is the room's first; then
 *   LIVE: JOINED at once, or (since) FETCH or JOINED(recovered 0/1);
 *   STALLED: SYNC; other states: nothing (pending).
 * Returns 0, or -1 on allocation failure (nothing changed, nothing emitted). */
int room_sync_join(struct room_sync *rs, struct room *room, void *session, const char *id_json,
                   const struct room_sync_since *since);

/* session leaves. Returns false if it was not a member (nothing emitted). Otherwise:
 * JOIN_FAILED(not_joined) if its join was pending, then UNSUBSCRIBE if it was the last. */
bool room_sync_leave(struct room_sync *rs, struct room *room, void *session);

/* The room's subscription is confirmed. SUBSCRIBING or STALLED: SYNC; otherwise nothing. */
void room_sync_subscribed(struct room_sync *rs, struct room *room);

/* The answer to SYNC or ROTATE `tag` (ignored unless it is the one in flight).
 * Failed: JOIN_FAILED(unavailable) per pending member, UNSUBSCRIBE if none is left (STALLED).
 * Same epoch, S < last: ROTATE. Retired epoch: ROTATE (after SYNC) or stall (after ROTATE).
 * Otherwise: RESET per live member (epoch changed), JOINED / FETCH per pending member,
 * FETCH (re-read [last, S] or fill), DELIVERs of held messages and a FETCH for their gaps,
 * then possibly SYNC (rule 10) or ROTATE (a held copy of last_offset with other bytes). */
void room_sync_sync_result(struct room_sync *rs, struct room *room, uint64_t tag, bool ok,
                           const char *epoch, uint64_t offset);

/* A message from the subscription (frame->offset > 0; its epoch as published). LIVE:
 * DELIVER, or nothing (duplicate, stale), or FETCH (gap), or SYNC (other epoch), or ROTATE
 * (rewritten last offset). Other states: nothing (held or dropped). */
void room_sync_message(struct room_sync *rs, struct room *room, const char *epoch,
                       struct frame *frame);

/* The answer to a FETCH (ignored unless its tag is in flight).
 * Gap fill: DELIVERs, then as for held messages (DELIVER, FETCH, SYNC); or SYNC (other
 * epoch), ROTATE (regression) or the failed-SYNC actions (stall).
 * Recovery: SENDs, then FETCH or JOINED; or JOINED(recovered 0); or SYNC, or ROTATE. A recovery
 * answer with `more` that ends before the asked range continues with the next page (FETCH)
 * instead of ending the replay. */
void room_sync_fetch_result(struct room_sync *rs, struct room *room,
                            const struct room_sync_fetched *res);

/* The subscription is gone (the caller's bus re-subscribes and reports subscribed).
 * JOIN_FAILED(unavailable) per pending member, then UNSUBSCRIBE if none is left. */
void room_sync_subscription_lost(struct room_sync *rs, struct room *room);

/* Redis is reachable again. STALLED: SYNC; otherwise nothing. */
void room_sync_redis_ready(struct room_sync *rs, struct room *room);

#endif
