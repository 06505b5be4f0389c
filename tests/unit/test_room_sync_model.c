/*
 * test_room_sync_model — room_sync (common/room_sync.c) driven through random interleavings
 * against a model of Redis, checking the delivery guarantee for every member.
 *
 * The model: one room on one node. Model Redis has an epoch, a counter and a log trimmed to
 * `history` entries; every write is snapshotted so a failover can lose the tail of
 * acknowledged writes (the counter goes back, later publishes reissue offsets), and a flush
 * loses everything. Other nodes publish and may rotate the epoch. The node's subscription is
 * a queue that may drop, duplicate and reorder messages within `reorder`, and is lost on
 * faults (then re-subscribed, like gateway/bus.c does); the command connection answers
 * SYNC/ROTATE/FETCH in any order of processing, events in FIFO order, and fails everything
 * in flight when it drops (READY follows its return). Clients join (with and without since,
 * again while joined), and leave.
 *
 * Checked for every member, at every action: each (epoch, offset) it is sent is authentic and
 * strictly follows the previous one by 1 within its epoch from its join point (joined.offset,
 * or since while replaying), skipping only offsets the log had already trimmed; after a RESET
 * only the new epoch; within one room incarnation an (epoch, offset) always carries the same
 * message (a reissued offset is never delivered as the old one's successor); no write lost
 * in a failover is sent once the node has seen that failover's subscription loss; every join
 * id is answered exactly once. At the end (faults off; one more publish only when nothing
 * else could reveal what happened: the subscription dropped messages, or another node rotated
 * the epoch and nobody published since) every join has been answered and every member is at
 * the model's epoch and last offset, or behind it only by offsets the log no longer has.
 *
 * 10,000 runs with seeds 1..10000 by default (ROOM_SYNC_RUNS to change the count);
 * ROOM_SYNC_SEED=n runs only seed n and prints its trace.
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

#define CLIENTS 4
#define MAX_EPOCHS 128
#define MAX_OFFSET 512
#define MAX_MSGS 1024
#define LOG_CAP 32
#define SNAPSHOTS 4
#define QUEUE_CAP 512
#define MAX_IDS 8
#define POOL 8

struct log_entry {
    uint64_t offset;
    unsigned id;
};

struct redis_state {
    int epoch; /* index into "e<n>" names; 0: no epoch (keys missing) */
    uint64_t seq;
    uint64_t write_no; /* writes applied so far */
    struct log_entry log[LOG_CAP];
    unsigned len;
};

struct msg {
    int epoch;
    uint64_t offset;
    uint64_t write_no; /* the write that created it */
    int lost_in;       /* the failover that lost it (0: none) */
    struct frame *frame;
};

enum item_kind { ITEM_SUBSCRIBED, ITEM_MESSAGE, ITEM_LOST };
struct item {
    enum item_kind kind;
    unsigned id;  /* MESSAGE */
    int failover; /* LOST */
};

enum req_kind { REQ_SYNC, REQ_ROTATE, REQ_FETCH };
struct request {
    enum req_kind kind;
    uint64_t tag;
    int epoch; /* ROTATE */
    uint64_t from, to;
    uint64_t generation; /* the room incarnation that asked */
};

enum resp_kind { RESP_SYNC, RESP_FETCH, RESP_READY };
struct response {
    enum resp_kind kind;
    uint64_t tag;
    bool ok;
    int epoch;
    uint64_t head;
    unsigned ids[LOG_CAP];
    unsigned n;
};

enum client_state { CLIENT_OUT, CLIENT_PENDING, CLIENT_LIVE };
struct client {
    enum client_state state;
    unsigned ids[MAX_IDS]; /* join ids not answered yet */
    unsigned nids;
    bool leaving;
    bool has_since;
    int since_epoch; /* -1: an epoch the model never made */
    uint64_t since, replayed;
    int epoch;
    uint64_t pos; /* last offset received, or the join point */
};

struct model {
    uint64_t seed, rng;
    bool verbose;
    char failure[512];
    unsigned history, backlog, drop_pct, dup_pct, reorder;
    struct redis_state redis, snaps[SNAPSHOTS];
    unsigned nsnaps;
    int epochs, failovers, known_failover;
    uint64_t trim_floor[MAX_EPOCHS];
    struct msg msgs[MAX_MSGS];
    unsigned nmsgs;
    bool quiet_rotation; /* another node (or a dropped room) rotated; nothing published since */
    bool dropped;        /* the subscription dropped a message */
    bool sub_up, cmd_up, routing, want;
    struct item chan[QUEUE_CAP];
    unsigned nchan;
    struct request reqs[QUEUE_CAP];
    unsigned nreqs;
    struct response resps[QUEUE_CAP];
    unsigned resp_head, nresps;
    struct room_registry reg;
    struct room_sync rs;
    struct room *room;
    unsigned incarnation;
    struct client clients[CLIENTS];
    struct client pool[POOL]; /* positions of clients that left, for later `since` */
    unsigned npool;
    unsigned next_id;
    struct {
        unsigned incarnation, id;
    } seen[MAX_EPOCHS][MAX_OFFSET];
};

static unsigned incarnations; /* unique across runs, so `seen` never needs clearing */

/* What the runs exercised, printed once so a weakened model shows. */
static struct {
    struct room_sync_stats sync;
    unsigned long recovered[2], failovers, delivered;
} totals;

/* ---------------------------------------------------------------------------------------- */
/* Randomness, tracing, failures                                                              */
/* ---------------------------------------------------------------------------------------- */

static uint64_t rnd(struct model *m)
{
    m->rng ^= m->rng >> 12;
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return m->rng * 2685821657736338717ull;
}

static unsigned below(struct model *m, unsigned n)
{
    return n ? (unsigned)(rnd(m) % n) : 0;
}

static bool chance(struct model *m, unsigned percent)
{
    return below(m, 100) < percent;
}

static void trace(struct model *m, const char *fmt, ...)
{
    if (!m->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void violation(struct model *m, const char *fmt, ...)
{
    if (m->failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->failure, sizeof(m->failure), fmt, ap);
    va_end(ap);
    trace(m, "VIOLATION: %s", m->failure);
}

static const char *epoch_name(int epoch, char *buf)
{
    if (epoch < 0)
        return "zz";
    if (epoch == 0)
        return "";
    sprintf(buf, "e%d", epoch);
    return buf;
}

static int epoch_index(const char *name)
{
    return name[0] == 'e' ? atoi(name + 1) : name[0] ? -1 : 0;
}

/* Sessions are the model's client structs. */
static struct client *client_of(void *session)
{
    return session;
}

/* ---------------------------------------------------------------------------------------- */
/* Model Redis                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* Every write is undoable by a failover: keep the state before it. */
static void redis_write(struct model *m)
{
    if (m->nsnaps == SNAPSHOTS) {
        memmove(m->snaps, m->snaps + 1, sizeof(m->snaps[0]) * (SNAPSHOTS - 1));
        m->nsnaps--;
    }
    m->snaps[m->nsnaps++] = m->redis;
    m->redis.write_no++;
}

/* A fresh epoch, counter 0, empty log: the publish/sync scripts on missing keys, or ROTATE. */
static void redis_new_epoch(struct model *m)
{
    m->redis.epoch = ++m->epochs;
    m->redis.seq = 0;
    m->redis.len = 0;
}

static void chan_push(struct model *m, struct item it)
{
    if (m->nchan < QUEUE_CAP)
        m->chan[m->nchan++] = it;
    else
        violation(m, "subscription queue overflow");
}

static void resp_push(struct model *m, struct response r)
{
    if (m->nresps == QUEUE_CAP) {
        violation(m, "response queue overflow");
        return;
    }
    m->resps[(m->resp_head + m->nresps++) % QUEUE_CAP] = r;
}

/* Another node publishes: INCR, XADD (trimmed), PUBLISH. */
static void redis_publish(struct model *m, bool reliable)
{
    if (m->nmsgs == MAX_MSGS || m->redis.seq >= MAX_OFFSET - 2 || m->nchan > QUEUE_CAP - 8)
        return;
    redis_write(m);
    if (!m->redis.epoch)
        redis_new_epoch(m);
    unsigned id = m->nmsgs++;
    struct msg *g = &m->msgs[id];
    char name[16], payload[64];
    g->epoch = m->redis.epoch;
    g->offset = ++m->redis.seq;
    g->write_no = m->redis.write_no;
    g->lost_in = 0;
    m->quiet_rotation = false;
    int n = snprintf(payload, sizeof(payload), "%s:%llu:%u", epoch_name(g->epoch, name),
                     (unsigned long long)g->offset, id);
    g->frame = frame_new(16, payload, (size_t)n);
    assert_non_null(g->frame);
    g->frame->offset = g->offset;
    if (m->history) {
        if (m->redis.len == m->history) {
            uint64_t *floor = &m->trim_floor[g->epoch];
            if (m->redis.log[0].offset > *floor)
                *floor = m->redis.log[0].offset;
            memmove(m->redis.log, m->redis.log + 1, sizeof(m->redis.log[0]) * (m->history - 1));
            m->redis.len--;
        }
        m->redis.log[m->redis.len++] = (struct log_entry){g->offset, id};
    }
    trace(m, "publish %s:%llu id %u", name, (unsigned long long)g->offset, id);
    if (!m->routing)
        return;
    if (!reliable && chance(m, m->drop_pct)) {
        m->dropped = true;
        return;
    }
    chan_push(m, (struct item){ITEM_MESSAGE, id, 0});
    if (!reliable && chance(m, m->dup_pct))
        chan_push(m, (struct item){ITEM_MESSAGE, id, 0});
}

/* The subscriber connection drops: unread messages may be lost, then the loss is reported. */
static void sub_drop(struct model *m, int failover)
{
    unsigned unread = below(m, 3);
    while (unread-- && m->nchan && m->chan[m->nchan - 1].kind == ITEM_MESSAGE)
        m->nchan--;
    m->sub_up = false;
    m->routing = false;
    chan_push(m, (struct item){ITEM_LOST, 0, failover});
}

/* The command connection drops: everything in flight fails, and new requests fail at once. */
static void cmd_drop(struct model *m)
{
    for (unsigned i = 0; i < m->nreqs; i++)
        resp_push(m,
                  (struct response){.kind = m->reqs[i].kind == REQ_FETCH ? RESP_FETCH : RESP_SYNC,
                                    .tag = m->reqs[i].tag});
    m->nreqs = 0;
    m->cmd_up = false;
}

static void redis_failover(struct model *m)
{
    if (!m->nsnaps)
        return;
    unsigned back = 1 + below(m, m->nsnaps < 3 ? m->nsnaps : 3);
    m->redis = m->snaps[m->nsnaps - back];
    m->nsnaps -= back;
    int failover = ++m->failovers;
    for (unsigned i = 0; i < m->nmsgs; i++)
        if (m->msgs[i].write_no > m->redis.write_no && !m->msgs[i].lost_in)
            m->msgs[i].lost_in = failover;
    trace(m, "FAILOVER %d: lost %u writes, seq back to %llu", failover, back,
          (unsigned long long)m->redis.seq);
    sub_drop(m, failover);
    cmd_drop(m);
}

static void redis_flush(struct model *m)
{
    int failover = ++m->failovers;
    for (unsigned i = 0; i < m->nmsgs; i++)
        if (!m->msgs[i].lost_in)
            m->msgs[i].lost_in = failover;
    uint64_t write_no = m->redis.write_no;
    memset(&m->redis, 0, sizeof(m->redis));
    m->redis.write_no = write_no;
    m->nsnaps = 0;
    trace(m, "FLUSH %d", failover);
    sub_drop(m, failover);
    cmd_drop(m);
}

/* Redis runs one request and the answer joins the event queue. */
static void redis_process(struct model *m, unsigned i)
{
    struct request q = m->reqs[i];
    m->reqs[i] = m->reqs[--m->nreqs];
    struct response r = {.tag = q.tag, .ok = true};
    if (q.kind == REQ_ROTATE && (m->redis.epoch == q.epoch || !m->redis.epoch)) {
        redis_write(m);
        redis_new_epoch(m);
        /* asked by a room since dropped: to the room now, as if another node rotated */
        if (!m->room || m->room->generation != q.generation)
            m->quiet_rotation = true;
    } else if (q.kind == REQ_SYNC && !m->redis.epoch) {
        redis_write(m);
        redis_new_epoch(m);
    }
    r.kind = q.kind == REQ_FETCH ? RESP_FETCH : RESP_SYNC;
    r.epoch = m->redis.epoch;
    r.head = m->redis.seq;
    for (unsigned k = 0; q.kind == REQ_FETCH && k < m->redis.len; k++)
        if (m->redis.log[k].offset >= q.from && m->redis.log[k].offset <= q.to)
            r.ids[r.n++] = m->redis.log[k].id;
    trace(m, "redis: %s tag %llx -> e%d head %llu (%u frames)",
          q.kind == REQ_FETCH  ? "FETCH"
          : q.kind == REQ_SYNC ? "SYNC"
                               : "ROTATE",
          (unsigned long long)q.tag, r.epoch, (unsigned long long)r.head, r.n);
    resp_push(m, r);
}

/* ---------------------------------------------------------------------------------------- */
/* The node's clients: what they are sent, checked                                            */
/* ---------------------------------------------------------------------------------------- */

/* Offsets a member may miss: those the log had already trimmed (or there is no log). */
static void check_skip(struct model *m, int epoch, uint64_t from, uint64_t to)
{
    if (m->history == 0 || epoch <= 0)
        return;
    if (to > from && to - 1 > m->trim_floor[epoch])
        violation(m, "skipped e%d:%llu..%llu, still in the log (trimmed up to %llu)", epoch,
                  (unsigned long long)from, (unsigned long long)to - 1,
                  (unsigned long long)m->trim_floor[epoch]);
}

static void client_receive(struct model *m, struct client *c, const struct frame *f, bool replay)
{
    int epoch;
    unsigned long long off;
    unsigned id;
    if (sscanf((const char *)f->buf + f->headroom, "e%d:%llu:%u", &epoch, &off, &id) != 3 ||
        id >= m->nmsgs || m->msgs[id].epoch != epoch || m->msgs[id].offset != off) {
        violation(m, "forged frame %s", (const char *)f->buf + f->headroom);
        return;
    }
    int who = (int)(c - m->clients);
    trace(m, "  client %d <- e%d:%llu%s", who, epoch, off, replay ? " (replay)" : "");
    if (m->msgs[id].lost_in && m->msgs[id].lost_in <= m->known_failover)
        violation(m, "client %d sent e%d:%llu id %u, lost in failover %d", who, epoch, off, id,
                  m->msgs[id].lost_in);
    if (m->seen[epoch][off].incarnation == m->incarnation && m->seen[epoch][off].id != id)
        violation(m, "e%d:%llu is id %u here but was id %u", epoch, off, id,
                  m->seen[epoch][off].id);
    m->seen[epoch][off].incarnation = m->incarnation;
    m->seen[epoch][off].id = id;
    if (replay) {
        if (c->state != CLIENT_PENDING || !c->has_since || epoch != c->since_epoch ||
            off != c->replayed + 1)
            violation(m, "client %d replay of e%d:%llu after %llu", who, epoch, off,
                      (unsigned long long)c->replayed);
        c->replayed = off;
        return;
    }
    if (c->state != CLIENT_LIVE || epoch != c->epoch || off <= c->pos)
        violation(m, "client %d (state %d, at e%d:%llu) delivered e%d:%llu", who, c->state,
                  c->epoch, (unsigned long long)c->pos, epoch, off);
    check_skip(m, epoch, c->pos + 1, off);
    c->pos = off;
    totals.delivered++;
}

/* The ids of a JOINED / JOIN_FAILED must be exactly the client's unanswered ones. */
static void check_ids(struct model *m, struct client *c, const char *ids)
{
    char want[MAX_IDS * 12] = "";
    size_t len = 0;
    for (unsigned i = 0; i < c->nids; i++)
        len += (size_t)snprintf(want + len, sizeof(want) - len, "%s%u", i ? "\n" : "", c->ids[i]);
    if (!ids || strcmp(ids, want) != 0)
        violation(m, "client %d answered ids [%s], expected [%s]", (int)(c - m->clients),
                  ids ? ids : "(null)", want);
    c->nids = 0;
}

static void client_joined(struct model *m, struct client *c, const struct room_sync_action *a)
{
    int epoch = epoch_index(a->epoch), who = (int)(c - m->clients);
    trace(m, "  client %d joined e%d:%llu recovered %d", who, epoch, (unsigned long long)a->offset,
          a->recovered);
    check_ids(m, c, a->ids);
    if (c->state == CLIENT_LIVE) { /* idempotent re-join: the same position, maybe past a skip */
        if (a->recovered != -1 || epoch != c->epoch || a->offset < c->pos)
            violation(m, "client %d re-joined at e%d:%llu, was at e%d:%llu", who, epoch,
                      (unsigned long long)a->offset, c->epoch, (unsigned long long)c->pos);
        check_skip(m, epoch, c->pos + 1, a->offset + 1);
    } else if (c->state != CLIENT_PENDING) {
        violation(m, "client %d joined while not joining", who);
    } else if (!c->has_since ? a->recovered != -1 : a->recovered == -1) {
        violation(m, "client %d: recovered %d with since %d", who, a->recovered, c->has_since);
    } else if (a->recovered == 1 && (epoch != c->since_epoch || a->offset != c->replayed)) {
        violation(m, "client %d recovered at e%d:%llu, replayed to e%d:%llu", who, epoch,
                  (unsigned long long)a->offset, c->since_epoch, (unsigned long long)c->replayed);
    } else if (c->replayed > c->since && epoch == c->since_epoch && a->offset < c->replayed) {
        violation(m, "client %d joined at %llu below its replay %llu", who,
                  (unsigned long long)a->offset, (unsigned long long)c->replayed);
    }
    if (a->recovered >= 0)
        totals.recovered[a->recovered]++;
    c->state = CLIENT_LIVE;
    c->epoch = epoch;
    c->pos = a->offset;
}

static void client_failed(struct model *m, struct client *c, const struct room_sync_action *a)
{
    trace(m, "  client %d join failed (%d)", (int)(c - m->clients), a->error);
    if (c->state != CLIENT_PENDING ||
        a->error != (c->leaving ? PROTO_ERR_NOT_JOINED : PROTO_ERR_UNAVAILABLE))
        violation(m, "client %d: unexpected join failure %d", (int)(c - m->clients), a->error);
    check_ids(m, c, a->ids);
    c->state = CLIENT_OUT;
}

static void client_reset(struct model *m, struct client *c, const struct room_sync_action *a)
{
    int epoch = epoch_index(a->epoch);
    trace(m, "  client %d reset to e%d:%llu", (int)(c - m->clients), epoch,
          (unsigned long long)a->offset);
    if (c->state != CLIENT_LIVE || epoch == c->epoch || epoch <= 0)
        violation(m, "client %d (state %d, e%d) reset to e%d", (int)(c - m->clients), c->state,
                  c->epoch, epoch);
    c->epoch = epoch;
    c->pos = a->offset;
}

/* ---------------------------------------------------------------------------------------- */
/* The node: the adapter that performs room_sync's actions                                    */
/* ---------------------------------------------------------------------------------------- */

static void node_request(struct model *m, struct request q)
{
    q.generation = m->room->generation;
    if (!m->cmd_up)
        resp_push(m, (struct response){.kind = q.kind == REQ_FETCH ? RESP_FETCH : RESP_SYNC,
                                       .tag = q.tag});
    else if (m->nreqs < QUEUE_CAP)
        m->reqs[m->nreqs++] = q;
    else
        violation(m, "request queue overflow");
}

static void node_deliver(struct model *m, struct frame *f)
{
    for (unsigned i = 0; i < m->room->member_count; i++)
        if (!m->room->members[i].pending)
            client_receive(m, client_of(m->room->members[i].session), f, false);
}

static void node_unsubscribe(struct model *m, bool last)
{
    if (!last || m->room->member_count != 0)
        violation(m, "UNSUBSCRIBE not last, or with members");
    trace(m, "  room dropped");
    m->want = false;
    m->routing = false;
    room_registry_remove(&m->reg, m->room);
    m->room = NULL;
}

static void node_perform(struct model *m, const struct room_sync_action *a, bool last)
{
    switch (a->type) {
    case ROOM_SYNC_SUBSCRIBE:
        m->want = true;
        if (m->sub_up) {
            m->routing = true;
            chan_push(m, (struct item){ITEM_SUBSCRIBED, 0, 0});
        }
        break;
    case ROOM_SYNC_UNSUBSCRIBE:
        node_unsubscribe(m, last);
        break;
    case ROOM_SYNC_SYNC:
        node_request(m, (struct request){.kind = REQ_SYNC, .tag = a->tag});
        break;
    case ROOM_SYNC_ROTATE:
        node_request(
            m, (struct request){.kind = REQ_ROTATE, .tag = a->tag, .epoch = epoch_index(a->epoch)});
        break;
    case ROOM_SYNC_FETCH:
        node_request(
            m, (struct request){.kind = REQ_FETCH, .tag = a->tag, .from = a->from, .to = a->to});
        break;
    case ROOM_SYNC_DELIVER:
        node_deliver(m, a->frame);
        break;
    case ROOM_SYNC_SEND:
        client_receive(m, client_of(a->session), a->frame, true);
        break;
    case ROOM_SYNC_JOINED:
        client_joined(m, client_of(a->session), a);
        break;
    case ROOM_SYNC_JOIN_FAILED:
        client_failed(m, client_of(a->session), a);
        break;
    case ROOM_SYNC_RESET:
        client_reset(m, client_of(a->session), a);
        break;
    }
}

static void node_apply(struct model *m)
{
    for (size_t i = 0; i < m->rs.action_count; i++)
        node_perform(m, &m->rs.actions[i], i + 1 == m->rs.action_count);
    room_sync_actions_clear(&m->rs);
    if (m->rs.stats.oom)
        violation(m, "allocation failure in room_sync");
}

static void node_take_item(struct model *m)
{
    unsigned pick = 0, window = 0;
    while (window < m->reorder && window < m->nchan && m->chan[window].kind == ITEM_MESSAGE)
        window++;
    if (window > 1)
        pick = below(m, window);
    struct item it = m->chan[pick];
    memmove(m->chan + pick, m->chan + pick + 1, sizeof(it) * (m->nchan - pick - 1));
    m->nchan--;
    char name[16];
    if (it.kind == ITEM_LOST && it.failover > m->known_failover)
        m->known_failover = it.failover;
    trace(m, "sub: %s",
          it.kind == ITEM_SUBSCRIBED ? "subscribed"
          : it.kind == ITEM_LOST     ? "lost"
                                     : "msg");
    if (!m->room)
        return;
    if (it.kind == ITEM_SUBSCRIBED)
        room_sync_subscribed(&m->rs, m->room);
    else if (it.kind == ITEM_LOST)
        room_sync_subscription_lost(&m->rs, m->room);
    else
        room_sync_message(&m->rs, m->room, epoch_name(m->msgs[it.id].epoch, name),
                          m->msgs[it.id].frame);
    node_apply(m);
}

static void node_take_response(struct model *m)
{
    struct response *r = &m->resps[m->resp_head];
    m->resp_head = (m->resp_head + 1) % QUEUE_CAP;
    m->nresps--;
    char name[16];
    trace(m, "event: %s tag %llx ok %d", r->kind == RESP_READY ? "ready" : "answer",
          (unsigned long long)r->tag, r->ok);
    if (!m->room)
        return;
    if (r->kind == RESP_READY) {
        room_sync_redis_ready(&m->rs, m->room);
    } else if (r->kind == RESP_SYNC) {
        room_sync_sync_result(&m->rs, m->room, r->tag, r->ok, epoch_name(r->epoch, name), r->head);
    } else {
        struct frame *frames[LOG_CAP];
        for (unsigned i = 0; i < r->n; i++)
            frames[i] = m->msgs[r->ids[i]].frame;
        struct room_sync_fetched res = {r->tag,  r->ok,  epoch_name(r->epoch, name),
                                        r->head, frames, r->n, false};
        room_sync_fetch_result(&m->rs, m->room, &res);
    }
    node_apply(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Clients joining and leaving                                                                */
/* ---------------------------------------------------------------------------------------- */

/* A `since` a real client could send: where someone left, somewhere in the current epoch,
 * in the future, or in an epoch that never existed. */
static void pick_since(struct model *m, struct client *c)
{
    unsigned kind = below(m, 4);
    c->has_since = true;
    if (kind == 0 && m->npool) {
        struct client *p = &m->pool[below(m, m->npool)];
        c->since_epoch = p->epoch;
        c->since = p->pos;
    } else if (kind <= 1) {
        c->since_epoch = m->redis.epoch;
        c->since = below(m, (unsigned)m->redis.seq + 1);
    } else if (kind == 2) {
        c->since_epoch = m->redis.epoch;
        c->since = m->redis.seq + 1 + below(m, 3);
    } else {
        c->since_epoch = -1;
        c->since = 3;
    }
    c->replayed = c->since;
}

static void step_join(struct model *m)
{
    struct client *c = &m->clients[below(m, CLIENTS)];
    if (c->nids == MAX_IDS)
        return;
    if (!m->room) {
        m->room = room_registry_add(&m->reg, "r");
        assert_non_null(m->room);
        m->incarnation = ++incarnations;
    }
    bool fresh = c->state == CLIENT_OUT;
    if (fresh) {
        c->state = CLIENT_PENDING;
        c->has_since = false;
        if (chance(m, 50))
            pick_since(m, c);
    }
    unsigned id = ++m->next_id;
    c->ids[c->nids++] = id;
    char idtext[16], name[16];
    snprintf(idtext, sizeof(idtext), "%u", id);
    struct room_sync_since since = {c->since, epoch_name(c->since_epoch, name)};
    trace(m, "client %d joins (id %u%s, since e%d:%llu)", (int)(c - m->clients), id,
          fresh ? "" : ", again", c->has_since ? c->since_epoch : 0, (unsigned long long)c->since);
    bool was_live = c->state == CLIENT_LIVE;
    assert_int_equal(room_sync_join(&m->rs, m->room, c, idtext, c->has_since ? &since : NULL), 0);
    node_apply(m);
    if (was_live && c->nids)
        violation(m, "re-join of a joined client not answered at once");
}

static void step_leave(struct model *m)
{
    struct client *c = &m->clients[below(m, CLIENTS)];
    if (c->state == CLIENT_OUT) {
        if (m->room && room_sync_leave(&m->rs, m->room, c))
            violation(m, "leave of a non-member accepted");
        return;
    }
    trace(m, "client %d leaves", (int)(c - m->clients));
    bool was_live = c->state == CLIENT_LIVE;
    c->leaving = true;
    if (!room_sync_leave(&m->rs, m->room, c))
        violation(m, "leave of a member refused");
    node_apply(m);
    c->leaving = false;
    if (c->state == CLIENT_PENDING || c->nids)
        violation(m, "pending join not answered on leave");
    if (was_live && m->npool < POOL)
        m->pool[m->npool++] = *c;
    else if (was_live)
        m->pool[below(m, POOL)] = *c;
    c->state = CLIENT_OUT;
    c->nids = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Runs                                                                                       */
/* ---------------------------------------------------------------------------------------- */

static void reconnect(struct model *m)
{
    if (!m->sub_up) {
        trace(m, "subscriber reconnects");
        m->sub_up = true;
        m->routing = m->want;
        if (m->want)
            chan_push(m, (struct item){ITEM_SUBSCRIBED, 0, 0});
    }
    if (!m->cmd_up) {
        trace(m, "command connection reconnects");
        m->cmd_up = true;
        resp_push(m, (struct response){.kind = RESP_READY});
    }
}

static void step_fault(struct model *m, unsigned roll)
{
    bool epochs_left = m->epochs < MAX_EPOCHS - 16;
    if (roll == 0 && m->sub_up) {
        trace(m, "SUBSCRIBER LOST");
        sub_drop(m, 0);
    } else if (roll == 1 && m->cmd_up) {
        trace(m, "COMMAND CONNECTION LOST");
        cmd_drop(m);
    } else if (roll == 2) {
        redis_failover(m);
    } else if (roll == 3 && m->redis.epoch && epochs_left) {
        trace(m, "another node rotates the epoch");
        redis_write(m);
        redis_new_epoch(m);
        m->quiet_rotation = true;
    } else if (roll == 4 && epochs_left) {
        redis_flush(m);
    }
}

static void step(struct model *m)
{
    unsigned roll = below(m, 100);
    if (roll < 22)
        redis_publish(m, false);
    else if (roll < 46 && m->nchan)
        node_take_item(m);
    else if (roll < 60 && m->nreqs)
        redis_process(m, below(m, m->nreqs));
    else if (roll < 74 && m->nresps)
        node_take_response(m);
    else if (roll < 81)
        step_join(m);
    else if (roll < 86)
        step_leave(m);
    else if (roll < 92)
        reconnect(m);
    else if (roll < 97)
        step_fault(m, below(m, 5));
}

/* Runs every queue dry (faults off); a room that keeps asking forever is a livelock. */
static void drain(struct model *m)
{
    for (unsigned n = 0; !m->failure[0] && (m->nchan || m->nreqs || m->nresps); n++) {
        if (n > 100000) {
            violation(m, "no quiescence: the room keeps working");
            return;
        }
        unsigned q = below(m, 3);
        if (q == 0 && m->nchan)
            node_take_item(m);
        else if (q == 1 && m->nreqs)
            redis_process(m, below(m, m->nreqs));
        else if (q == 2 && m->nresps)
            node_take_response(m);
    }
}

static void check_end(struct model *m)
{
    char name[16];
    for (unsigned i = 0; i < CLIENTS && !m->failure[0]; i++) {
        struct client *c = &m->clients[i];
        if (c->state == CLIENT_PENDING)
            violation(m, "client %u: join never answered", i);
        else if (c->state == CLIENT_LIVE && (c->epoch != m->redis.epoch || c->pos > m->redis.seq))
            violation(m, "client %u ends at e%d:%llu, Redis at e%d:%llu", i, c->epoch,
                      (unsigned long long)c->pos, m->redis.epoch, (unsigned long long)m->redis.seq);
        else if (c->state == CLIENT_LIVE) /* behind only by what the log no longer has */
            check_skip(m, c->epoch, c->pos + 1, m->redis.seq + 1);
    }
    if (!m->failure[0] && m->room &&
        (m->room->state != ROOM_LIVE || m->room->filling || !outq_empty(&m->room->backlog) ||
         strcmp(m->room->epoch, epoch_name(m->redis.epoch, name)) != 0))
        violation(m, "room ends in state %d (filling %d, epoch %s)", m->room->state,
                  m->room->filling, m->room->epoch);
}

static void run_setup(struct model *m, uint64_t seed)
{
    static const unsigned histories[] = {0, 2, 3, 5, 8, 16, LOG_CAP};
    static const unsigned backlogs[] = {1, 2, 4, 64};
    static const unsigned faults[] = {0, 0, 2, 10};
    static const unsigned reorders[] = {1, 1, 2, 4};
    bool verbose = m->verbose;
    memset(m, 0, offsetof(struct model, seen));
    m->verbose = verbose;
    m->seed = seed;
    m->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    m->history = histories[below(m, 7)];
    m->backlog = backlogs[below(m, 4)];
    m->drop_pct = faults[below(m, 4)];
    m->dup_pct = faults[below(m, 4)];
    m->reorder = reorders[below(m, 4)];
    m->sub_up = m->cmd_up = true;
    assert_int_equal(room_registry_init(&m->reg), 0);
    room_sync_init(&m->rs, m->history, m->backlog);
    trace(m, "seed %llu: history %u backlog %u drop %u%% dup %u%% reorder %u",
          (unsigned long long)seed, m->history, m->backlog, m->drop_pct, m->dup_pct, m->reorder);
}

/* One interleaving; returns false (with m->failure set) on a violation. */
static bool run(struct model *m, uint64_t seed)
{
    run_setup(m, seed);
    unsigned steps = 100 + below(m, 200);
    for (unsigned i = 0; i < steps && !m->failure[0]; i++)
        step(m);
    if (!m->failure[0]) {
        trace(m, "-- quiesce --");
        m->drop_pct = m->dup_pct = 0;
        reconnect(m);
        drain(m);
        /* A dropped last message, or another node's rotation with nothing published since,
         * is invisible to this node until a later message. */
        if (m->dropped || m->quiet_rotation) {
            redis_publish(m, true);
            drain(m);
        }
        check_end(m);
    }
    totals.sync.refilled += m->rs.stats.refilled;
    totals.sync.lost += m->rs.stats.lost;
    totals.sync.resets += m->rs.stats.resets;
    totals.sync.rotations += m->rs.stats.rotations;
    totals.failovers += (unsigned long)m->failovers;
    room_sync_free(&m->rs);
    room_registry_free(&m->reg);
    for (unsigned i = 0; i < m->nmsgs; i++)
        frame_unref(m->msgs[i].frame);
    return !m->failure[0];
}

static void test_model_holds_the_delivery_guarantee(void **state)
{
    (void)state;
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    const char *one = getenv("ROOM_SYNC_SEED");
    const char *count = getenv("ROOM_SYNC_RUNS");
    uint64_t first = one ? strtoull(one, NULL, 10) : 1;
    uint64_t runs = one ? 1 : count ? strtoull(count, NULL, 10) : 10000;
    m->verbose = one != NULL;
    unsigned failures = 0;
    for (uint64_t seed = first; seed < first + runs; seed++) {
        if (!run(m, seed)) {
            if (failures++ < 5)
                print_message("seed %llu: %s (rerun with ROOM_SYNC_SEED=%llu)\n",
                              (unsigned long long)seed, m->failure, (unsigned long long)seed);
        }
    }
    free(m);
    print_message("%llu runs: %lu deliveries, %llu refilled, %llu lost to trimming, %lu "
                  "failovers/flushes, %llu rotations, %llu resets, recoveries %lu true / %lu "
                  "false\n",
                  (unsigned long long)runs, totals.delivered,
                  (unsigned long long)totals.sync.refilled, (unsigned long long)totals.sync.lost,
                  totals.failovers, (unsigned long long)totals.sync.rotations,
                  (unsigned long long)totals.sync.resets, totals.recovered[1], totals.recovered[0]);
    if (failures)
        fail_msg("%u of %llu runs broke the guarantee", failures, (unsigned long long)runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_holds_the_delivery_guarantee),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
