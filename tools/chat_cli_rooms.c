/*
 * chat_cli_rooms.c — the rooms the user is in, and for each the position to rejoin from.
 *
 * The room table is the user's intent: --room and /join add a room, /leave and a refused join
 * remove it, and every (re)connection joins every room in it. A room's position is the pair
 * (last, epoch) sent as `since` when rejoining: `last` is the highest offset such that every
 * offset up to it has been seen. "Seen" means printed as a message, or acknowledged as our own
 * publish (the server never sends our own messages back). The two streams interleave: the ack
 * of our publish N may arrive after another member's message N+1, so offsets seen past a gap
 * are kept in `ahead` until the gap closes. Rejoining from `last` then replays exactly what
 * was not seen — a replayed offset found in `ahead` is dropped, so nothing shows twice — and
 * a gap that never closes (our publish whose ack was lost with the connection) is filled by
 * the replay itself, which then shows that message. Duplicates are possible only in such a
 * replay; on a joined room a repeated offset means the room started over (cli_room_note), and
 * a `reset` frame (§2) replaces the position with the new epoch's.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_cli.h"

struct cli_room *cli_room_find(struct cli *c, const char *name)
{
    for (int i = 0; i < c->room_count; i++) {
        if (strcmp(c->rooms[i].name, name) == 0)
            return &c->rooms[i];
    }
    return NULL;
}

/* Adds name (already validated) to the table, or returns the existing entry; NULL when the
 * table is full. */
struct cli_room *cli_room_add(struct cli *c, const char *name)
{
    struct cli_room *r = cli_room_find(c, name);
    if (r)
        return r;
    if (c->room_count == CLI_MAX_ROOMS) {
        cli_error("at most %d rooms", CLI_MAX_ROOMS);
        return NULL;
    }
    r = &c->rooms[c->room_count++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    return r;
}

/* Removes r; when it was the current room, the first remaining one (if any) becomes current. */
void cli_room_remove(struct cli *c, struct cli_room *r)
{
    bool was_current = strcmp(r->name, c->current) == 0;
    *r = c->rooms[--c->room_count];
    if (was_current) {
        cli_room_set_current(c, c->room_count ? c->rooms[0].name : "");
        if (c->current[0])
            cli_status("now talking in #%s", c->current);
    }
}

void cli_room_set_current(struct cli *c, const char *name)
{
    snprintf(c->current, sizeof(c->current), "%s", name);
}

/* Moves `last` over every offset in `ahead` that now follows it, and forgets the rest that
 * it passed. */
static void absorb_ahead(struct cli_room *r)
{
    bool moved = true;
    while (moved) {
        moved = false;
        for (int i = 0; i < r->ahead_count; i++) {
            if (r->ahead[i] <= r->last + 1) {
                if (r->ahead[i] == r->last + 1) {
                    r->last++;
                    moved = true;
                }
                r->ahead[i--] = r->ahead[--r->ahead_count];
            }
        }
    }
}

static bool in_ahead(const struct cli_room *r, int64_t offset)
{
    for (int i = 0; i < r->ahead_count; i++) {
        if (r->ahead[i] == offset)
            return true;
    }
    return false;
}

/* Records that offset was seen in r; false when it is a duplicate. Only a since-join's replay
 * (r not joined yet) can repeat what we saw. On a joined room the server never repeats an
 * offset, so one at or below the position means the room started over (its history was lost
 * and a server without `reset` frames reused offsets): the position follows it and the
 * message shows. */
bool cli_room_note(struct cli_room *r, int64_t offset)
{
    if (!r->have_since)
        return true;
    if (offset <= r->last || in_ahead(r, offset)) {
        if (!r->joined)
            return false;
        r->last = offset;
        r->ahead_count = 0;
        return true;
    }
    if (offset == r->last + 1) {
        r->last = offset;
    } else if (r->ahead_count < CLI_AHEAD_MAX) {
        r->ahead[r->ahead_count++] = offset;
    } else {
        /* A gap this old will not close: jump past it rather than grow without bound. */
        r->last = offset;
    }
    absorb_ahead(r);
    return true;
}

/* Takes the position from a `joined` (or a `reset`): offset becomes `last`. */
static void take_position(struct cli_room *r, const cJSON *frame)
{
    const char *epoch = cli_str_field(frame, "epoch");
    r->last = (int64_t)cli_num_field(frame, "offset", 0);
    r->have_since = epoch != NULL;
    snprintf(r->epoch, sizeof(r->epoch), "%s", epoch ? epoch : "");
    absorb_ahead(r);
}

static void print_joined(struct cli_room *r, const cJSON *reply, bool since)
{
    bool recovered = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "recovered"));
    double unread = cli_num_field(reply, "unread", -1);
    if (!since) {
        cli_status("joined #%s (offset %.0f)", r->name, cli_num_field(reply, "offset", 0));
        if (unread > 0)
            cli_status("#%s: %.0f unread (/history %.0f shows them)", r->name, unread, unread);
    } else if (recovered && r->replayed == 0) {
        cli_status("rejoined #%s (nothing missed)", r->name);
    } else if (recovered) {
        cli_status("rejoined #%s: %ld missed message%s recovered", r->name, r->replayed,
                   r->replayed == 1 ? "" : "s");
    } else {
        cli_status("rejoined #%s, but what was said meanwhile could not be recovered (no longer "
                   "kept, or the room's history was reset); /history shows what is kept",
                   r->name);
    }
}

static void join_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                       const char *failure)
{
    struct cli_room *r = cli_room_find(c, req->room);
    if (!reply && c->phase == PHASE_WAITING)
        return; /* the connection is gone; the next one joins again */
    if (r && cli_reply_is_error(c, req, reply, failure)) {
        cli_room_remove(c, r);
        if (req->initial && c->opt.non_interactive)
            cli_interrupted = 1; /* a script cannot go on without its room */
    } else if (r) {
        bool recovered = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "recovered"));
        print_joined(r, reply, req->since_sent);
        if (!(req->since_sent && recovered))
            r->ahead_count = 0; /* a new position: nothing before it is owed */
        take_position(r, reply);
        r->joined = true;
        r->replayed = 0;
    }
    if (req->batch && c->joins_pending > 0 && --c->joins_pending == 0)
        cli_conn_joins_done(c);
}

/* Sends a join for r, with `since` when its position is known; 0 when sent. */
int cli_room_send_join(struct cli *c, struct cli_room *r, bool batch)
{
    cJSON *o = cli_frame_new("join");
    cJSON *since = NULL;
    if (o && !cJSON_AddStringToObject(o, "room", r->name))
        goto fail;
    if (o && r->have_since) {
        since = cJSON_AddObjectToObject(o, "since");
        if (!since || !cJSON_AddNumberToObject(since, "offset", (double)r->last) ||
            !cJSON_AddStringToObject(since, "epoch", r->epoch))
            goto fail;
    }
    char what[96];
    snprintf(what, sizeof(what), "join #%s", r->name);
    r->joined = false;
    r->replayed = 0;
    struct cli_request *req = cli_request_send(c, o, join_reply, what);
    if (!req)
        return -1;
    snprintf(req->room, sizeof(req->room), "%s", r->name);
    req->batch = batch;
    req->initial = batch && !c->ever_welcomed;
    req->since_sent = since != NULL;
    return 0;
fail:
    cJSON_Delete(o);
    return -1;
}

/* Joins every room of the table on a new connection; returns how many joins were sent. */
int cli_rooms_rejoin(struct cli *c)
{
    int sent = 0;
    for (int i = 0; i < c->room_count; i++) {
        if (cli_room_send_join(c, &c->rooms[i], true) == 0)
            sent++;
    }
    return sent;
}

void cli_rooms_disconnected(struct cli *c)
{
    for (int i = 0; i < c->room_count; i++)
        c->rooms[i].joined = false;
}

/* A `reset` (§2): the room's stored history was lost; the old position means nothing now. */
void cli_room_reset(struct cli *c, const cJSON *frame)
{
    const char *name = cli_str_field(frame, "room");
    struct cli_room *r = name ? cli_room_find(c, name) : NULL;
    if (!r)
        return;
    cli_status("#%s: the server lost this room's stored history and started it over (new "
               "epoch); earlier messages may be gone",
               r->name);
    r->ahead_count = 0;
    take_position(r, frame);
}
