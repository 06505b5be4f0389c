/*
 * reads — read markers and unread counts (PROTOCOL.md §8), on the connection thread.
 *
 * The marker of user U in room R lives in Redis next to R's history (P:{R}:reads, hash user →
 * offset), so it follows the room on Redis Cluster and is shared by all of U's connections on
 * every node. `read` runs one script that only moves it forward and never past the room's last
 * offset; an epoch reset deletes the hash with the history (redis_scripts.h).
 *
 * Other members learn of a move through a `read` frame on the room channel, coalesced per user
 * and room on the node that served the request: the first move of a second goes at once, later
 * ones within that second wait and only the newest is sent at its end, so no final value is
 * lost. (A user reading on two nodes at once may so produce up to one event per node a second.)
 *
 * `joined` carries the member's marker. Each room keeps a cache of its local users' markers,
 * fed by read replies and by the read events every subscribed node sees; when the marker is not
 * cached, the member's deliveries are held (room_member.held) while it is read, then `joined`
 * goes first and the held frames after it — the order §2 promises.
 */
#include "reads.h"
#include "session.h"
#include "store.h"
#include "clock.h"

#include "log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READS_COALESCE_MS 1000

struct read_entry {
    uint64_t marker;
    bool known;
    int64_t sent_ms;           /* monotonic: last event sent for this user from this node */
    uint64_t pending;          /* a newer marker to send when the second ends (0: none) */
    char sender[128];          /* the connection whose read it is (excluded from the fan-out) */
};

struct room_reads {
    struct strmap users; /* user → struct read_entry */
};

/* A member whose deliveries wait for its marker. */
struct read_hold {
    struct outq frames;
    char *ids;         /* the join ids to answer ('\n'-separated) */
    uint64_t offset;   /* the JOINED action's */
    char epoch[PROTO_EPOCH_MAX + 1];
    int recovered;
};

static struct room_reads *reads_of(struct room *room)
{
    struct room_reads *rr = room->reads;
    if (!rr) {
        rr = calloc(1, sizeof(*rr));
        if (!rr || strmap_init(&rr->users) != 0) {
            free(rr);
            return NULL;
        }
        room->reads = rr;
    }
    return rr;
}

static struct read_entry *reads_entry(struct room *room, const char *user, bool create)
{
    struct room_reads *rr = create ? reads_of(room) : room->reads;
    if (!rr)
        return NULL;
    struct read_entry *e = strmap_get(&rr->users, user);
    if (!e && create) {
        e = calloc(1, sizeof(*e));
        if (e && strmap_put(&rr->users, user, e) != 0) {
            free(e);
            e = NULL;
        }
    }
    return e;
}

static void reads_free_entry(const char *user, void *value, void *arg)
{
    (void)user;
    (void)arg;
    free(value);
}

void reads_room_free(struct room *room)
{
    struct room_reads *rr = room->reads;
    if (!rr)
        return;
    strmap_each(&rr->users, reads_free_entry, NULL);
    strmap_free(&rr->users);
    free(rr);
    room->reads = NULL;
}

void reads_forget(struct room *room)
{
    reads_room_free(room); /* markers unknown again: an epoch reset or a lost subscription */
}

/* ---- joined ---- */

static void reads_send_joined(struct session *s, struct room *room, const char *ids,
                              uint64_t offset, const char *epoch, int recovered, uint64_t marker)
{
    char *copy = strdup(ids);
    if (!copy) {
        session_send_error(s, "", PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    for (char *id = copy;;) {
        char *nl = strchr(id, '\n');
        if (nl)
            *nl = '\0';
        session_send_json(s, proto_encode_joined_read(id, room->name, offset, epoch, recovered,
                                                      marker));
        if (!nl)
            break;
        id = nl + 1;
    }
    free(copy);
}

static struct room_member *reads_member(struct room *room, struct session *s)
{
    int i = room_find_member(room, s);
    return i >= 0 ? &room->members[i] : NULL;
}

void reads_release_hold(struct room_member *m)
{
    struct read_hold *h = m->held;
    if (!h)
        return;
    outq_clear(&h->frames);
    free(h->ids);
    free(h);
    m->held = NULL;
}

void reads_hold_frame(struct room_member *m, struct frame *f)
{
    struct read_hold *h = m->held;
    if (outq_push(&h->frames, f, SIZE_MAX) != 0)
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "reads_hold", NULL);
}

static void reads_on_marker(void *arg, struct bus_reply *r)
{
    struct gateway *gw = arg;
    struct session *s = r->echo.ptr;
    struct room *room = room_registry_find(&gw->rooms, r->echo.name);
    struct room_member *m = room && room->generation == r->echo.a && s->wsi
                                ? reads_member(room, s)
                                : NULL;
    struct read_hold *h = m ? m->held : NULL;
    if (h) {
        uint64_t marker = r->status == BUS_OK && r->nstrings == 3
                              ? strtoull(r->strings[0], NULL, 10)
                              : 0;
        struct read_entry *e = r->status == BUS_OK ? reads_entry(room, s->claims->sub, true) : NULL;
        if (e && !e->known) {
            e->known = true;
            e->marker = marker;
        }
        reads_send_joined(s, room, h->ids, h->offset, h->epoch, h->recovered,
                          e ? e->marker : marker);
        while (!outq_empty(&h->frames)) {
            session_enqueue(s, outq_peek(&h->frames));
            outq_pop(&h->frames);
        }
        reads_release_hold(m);
    }
    session_release(s);
}

/* Reads the member's marker (joined waits for it, deliveries are held meanwhile). */
static int reads_fetch_marker(struct gateway *gw, struct session *s, struct room *room)
{
    char reads[REDIS_NAME_MAX], seq[REDIS_NAME_MAX], epoch[REDIS_NAME_MAX];
    redis_room_key(&gw->store.names, room->name, "reads", reads);
    redis_room_key(&gw->store.names, room->name, "seq", seq);
    redis_room_key(&gw->store.names, room->name, "epoch", epoch);
    const char *argv[] = {reads, seq, epoch, s->claims->sub};
    struct bus_cmd *cmd =
        bus_script(BUS_SCRIPT_READS, room->name, false, 3, 4, argv, reads_on_marker, gw);
    if (!cmd)
        return -1;
    struct bus_echo *e = bus_cmd_echo(cmd);
    snprintf(e->name, sizeof(e->name), "%s", room->name);
    e->a = room->generation;
    session_submit(s, cmd);
    return 0;
}

void reads_answer_joined(struct gateway *gw, struct session *s, struct room *room,
                         const char *ids, uint64_t offset, const char *epoch, int recovered)
{
    struct read_entry *e = reads_entry(room, s->claims->sub, false);
    struct room_member *m = reads_member(room, s);
    if ((e && e->known) || !m) {
        reads_send_joined(s, room, ids, offset, epoch, recovered, e ? e->marker : 0);
        return;
    }
    if (m->held) {
        /* Another id while the marker is being read: answered with the others. */
        struct read_hold *h = m->held;
        size_t n = strlen(h->ids) + strlen(ids) + 2;
        char *more = realloc(h->ids, n);
        if (more) {
            strcat(strcat(more, "\n"), ids);
            h->ids = more;
        }
        return;
    }
    struct read_hold *h = calloc(1, sizeof(*h));
    if (h && (h->ids = strdup(ids))) {
        h->offset = offset;
        h->recovered = recovered;
        snprintf(h->epoch, sizeof(h->epoch), "%s", epoch);
        m->held = h;
        if (reads_fetch_marker(gw, s, room) == 0)
            return;
        reads_release_hold(m);
    } else {
        free(h);
    }
    /* Out of memory: answer without knowing the marker rather than not at all. */
    reads_send_joined(s, room, ids, offset, epoch, recovered, 0);
}

/* ---- read requests and events ---- */

/* Publishes `read` for user's marker on the room channel (excluding the sender's connection). */
static void reads_publish(struct gateway *gw, const char *room, const char *user,
                          struct read_entry *e, uint64_t marker)
{
    char *json = proto_encode_read_event(room, user, marker, gateway_now_ms());
    struct bus_cmd *cmd = json ? store_send_cmd(gw, room, false, e->sender, json, NULL, NULL) : NULL;
    free(json);
    if (cmd)
        store_submit(gw, cmd);
    e->sent_ms = gateway_mono_ns() / 1000000;
    e->pending = 0;
}

static void reads_on_read(void *arg, struct bus_reply *r)
{
    struct gateway *gw = arg;
    struct session *s = r->echo.ptr;
    const char *id = r->echo.text ? r->echo.text : "";
    bool ok = r->status == BUS_OK && r->nstrings == 3;
    uint64_t marker = ok ? strtoull(r->strings[0], NULL, 10) : 0;
    if (s->wsi) {
        if (ok)
            session_send_json(s, proto_encode_read_ok(id, r->echo.name, marker));
        else
            session_send_error(s, id, PROTO_ERR_UNAVAILABLE, "message store unavailable");
    }
    struct room *room = ok ? room_registry_find(&gw->rooms, r->echo.name) : NULL;
    struct read_entry *e = room ? reads_entry(room, s->claims->sub, true) : NULL;
    if (e) {
        e->known = true;
        if (marker > e->marker)
            e->marker = marker;
        if (strcmp(r->strings[2], "1") == 0) {
            snprintf(e->sender, sizeof(e->sender), "%s", s->conn_id);
            int64_t now = gateway_mono_ns() / 1000000;
            if (now - e->sent_ms >= READS_COALESCE_MS)
                reads_publish(gw, room->name, s->claims->sub, e, marker);
            else {
                e->pending = marker; /* sent when its second ends (reads_tick) */
                gw->reads.pending++;
            }
        }
    }
    session_release(s);
}

void reads_mark(struct gateway *gw, struct session *s, const struct proto_request *req,
                struct room *room)
{
    char reads[REDIS_NAME_MAX], seq[REDIS_NAME_MAX], offset[24];
    redis_room_key(&gw->store.names, room->name, "reads", reads);
    redis_room_key(&gw->store.names, room->name, "seq", seq);
    snprintf(offset, sizeof(offset), "%" PRIu64, req->offset);
    const char *argv[] = {reads, seq, s->claims->sub, offset};
    struct bus_cmd *cmd = bus_script(BUS_SCRIPT_READ, room->name, false, 2, 4, argv, reads_on_read, gw);
    struct bus_echo *e = cmd ? bus_cmd_echo(cmd) : NULL;
    if (!cmd || !(e->text = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    snprintf(e->name, sizeof(e->name), "%s", room->name);
    session_submit(s, cmd);
}

struct reads_flush {
    struct gateway *gw;
    struct room *room;
    int64_t now;
    uint64_t left; /* entries still pending after the pass */
};

static void reads_flush_user(const char *user, void *value, void *arg)
{
    struct reads_flush *f = arg;
    struct read_entry *e = value;
    if (e->pending && f->now - e->sent_ms >= READS_COALESCE_MS)
        reads_publish(f->gw, f->room->name, user, e, e->pending);
    f->left += e->pending != 0;
}

static void reads_flush_room(struct room *room, void *arg)
{
    struct reads_flush *f = arg;
    struct room_reads *rr = room->reads;
    if (!rr)
        return;
    f->room = room;
    strmap_each(&rr->users, reads_flush_user, f);
}

void reads_tick(struct gateway *gw)
{
    /* reads_pending is a hint (never below the truth): most ticks have nothing to walk. */
    if (!gw->reads.pending)
        return;
    struct reads_flush f = {gw, NULL, gateway_mono_ns() / 1000000, 0};
    room_registry_each(&gw->rooms, reads_flush_room, &f);
    gw->reads.pending = f.left;
}

void reads_seen(struct room *room, struct frame *f)
{
    /* Cheap test first: ephemeral frames are mostly typing. */
    static const char prefix[] = "{\"type\":\"read\"";
    if (f->len < sizeof(prefix) - 1 || memcmp(frame_payload(f), prefix, sizeof(prefix) - 1) != 0)
        return;
    cJSON *o = cJSON_ParseWithLength((const char *)frame_payload(f), f->len);
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(o, "user");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(o, "offset");
    if (cJSON_IsString(user) && cJSON_IsNumber(off) && off->valuedouble >= 0) {
        struct read_entry *e = reads_entry(room, user->valuestring, true);
        if (e && (uint64_t)off->valuedouble > e->marker) {
            e->marker = (uint64_t)off->valuedouble;
            e->known = true;
        }
    }
    cJSON_Delete(o);
}

/* ---- unread ---- */

struct unread_req {
    struct session *s;
    char *id;
    struct proto_unread_room *rooms;
    char (*names)[PROTO_ROOM_MAX + 1];
    size_t n, left;
    bool failed;
};

static void reads_unread_done(struct unread_req *u)
{
    if (u->s->wsi) {
        if (u->failed)
            session_send_error(u->s, u->id, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        else
            session_send_json(u->s, proto_encode_unread(u->id, u->rooms, u->n));
    }
    session_release(u->s);
    free(u->id);
    free(u->rooms);
    free(u->names);
    free(u);
}

static void reads_on_unread_room(void *arg, struct bus_reply *r)
{
    struct unread_req *u = arg;
    size_t i = (size_t)r->echo.a;
    if (r->status == BUS_OK && r->nstrings == 3) {
        u->rooms[i].read = strtoull(r->strings[0], NULL, 10);
        u->rooms[i].offset = strtoull(r->strings[1], NULL, 10);
    } else {
        u->failed = true;
    }
    if (--u->left == 0)
        reads_unread_done(u);
}

void reads_unread(struct gateway *gw, struct session *s, const struct proto_request *req)
{
    struct unread_req *u = calloc(1, sizeof(*u));
    size_t n = s->room_count;
    if (!u || !(u->id = strdup(req->id)) || (n && !(u->rooms = calloc(n, sizeof(*u->rooms)))) ||
        (n && !(u->names = calloc(n, sizeof(*u->names))))) {
        if (u) {
            free(u->id);
            free(u->rooms);
            free(u);
        }
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    u->s = s;
    u->n = u->left = n;
    /* Every room's command first: a failure then answers once, before anything is sent. */
    struct bus_cmd **cmds = n ? calloc(n, sizeof(*cmds)) : NULL;
    bool ok = !n || cmds;
    for (size_t i = 0; ok && i < n; i++) {
        const char *room = s->rooms[i].room->name;
        snprintf(u->names[i], sizeof(u->names[i]), "%s", room);
        u->rooms[i].room = u->names[i];
        char reads[REDIS_NAME_MAX], seq[REDIS_NAME_MAX], epoch[REDIS_NAME_MAX];
        redis_room_key(&gw->store.names, room, "reads", reads);
        redis_room_key(&gw->store.names, room, "seq", seq);
        redis_room_key(&gw->store.names, room, "epoch", epoch);
        const char *argv[] = {reads, seq, epoch, s->claims->sub};
        cmds[i] = bus_script(BUS_SCRIPT_READS, room, false, 3, 4, argv, reads_on_unread_room, u);
        ok = cmds[i] != NULL;
        if (ok)
            bus_cmd_echo(cmds[i])->a = i;
    }
    s->inflight++; /* released once, when the last room answered */
    if (!ok || n == 0) {
        for (size_t i = 0; cmds && i < n; i++)
            bus_cmd_discard(cmds[i]);
        u->failed = !ok;
        free(cmds);
        reads_unread_done(u);
        return;
    }
    for (size_t i = 0; i < n; i++)
        store_submit(gw, cmds[i]);
    free(cmds);
}
