/*
 * requests — what each client request needs before it runs, in one table, checked in one
 * place (as Redis's command table does with its flags), and the small handlers that belong to
 * no other module (publish, direct, typing, ping, refresh).
 *
 * Order of the checks, which the protocol fixes (PROTOCOL.md §2-3): membership of the room
 * (not_joined) → the request's budget (rate_limited; a request refused for another reason
 * before this point uses no token) → the Redis instance of the room or user (unavailable) →
 * the handler. Budgets: publish and direct draw from the publish bucket (--rate), typing,
 * presence, history, read and unread from the request bucket (--request-rate), join and leave
 * from the join bucket (--join-rate). Every rate_limited answer counts toward the abuse limit
 * (1008); typing over budget is dropped without an answer but still counted.
 */
#include "requests.h"

#include "history.h"
#include "session.h"
#include "rooms.h"
#include "store.h"
#include "clock.h"

#include "log.h"
#include "presence.h"
#include "reads.h"
#include "webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum request_budget { BUDGET_NONE, BUDGET_PUBLISH, BUDGET_REQUEST, BUDGET_JOIN };

enum request_flag {
    REQ_MEMBER = 1 << 0,         /* the connection must have joined req->room */
    REQ_MEMBER_IF_ROOM = 1 << 1, /* ... when the request names a room (presence) */
    REQ_REDIS = 1 << 2,          /* the Redis instance of the room (or of req->to) must be up */
    REQ_SILENT = 1 << 3,         /* refusals after membership are not answered (typing) */
};

typedef void (*request_handler)(struct session *s, const struct proto_request *req,
                                struct room *room);

struct request_kind {
    request_handler handler;
    unsigned flags;
    enum request_budget budget;
};

static void requests_publish(struct session *s, const struct proto_request *req,
                             struct room *room);
static void requests_direct(struct session *s, const struct proto_request *req,
                            struct room *room);
static void requests_typing(struct session *s, const struct proto_request *req,
                            struct room *room);
static void requests_ping(struct session *s, const struct proto_request *req, struct room *room);
static void requests_refresh(struct session *s, const struct proto_request *req,
                             struct room *room);
static void requests_join(struct session *s, const struct proto_request *req, struct room *room);
static void requests_leave(struct session *s, const struct proto_request *req,
                           struct room *room);
static void requests_history(struct session *s, const struct proto_request *req,
                             struct room *room);
static void requests_presence(struct session *s, const struct proto_request *req,
                              struct room *room);

static void requests_read(struct session *s, const struct proto_request *req, struct room *room);
static void requests_unread(struct session *s, const struct proto_request *req,
                            struct room *room);

static const struct request_kind request_table[PROTO_TYPE_COUNT] = {
    /* join checks the room claim, idempotence and the room limit before Redis: its own. */
    [PROTO_JOIN] = {requests_join, 0, BUDGET_JOIN},
    [PROTO_LEAVE] = {requests_leave, 0, BUDGET_JOIN},
    [PROTO_PUBLISH] = {requests_publish, REQ_MEMBER | REQ_REDIS, BUDGET_PUBLISH},
    [PROTO_DIRECT] = {requests_direct, REQ_REDIS, BUDGET_PUBLISH},
    [PROTO_TYPING] = {requests_typing, REQ_MEMBER | REQ_REDIS | REQ_SILENT, BUDGET_REQUEST},
    [PROTO_PRESENCE] = {requests_presence, REQ_MEMBER_IF_ROOM | REQ_REDIS, BUDGET_REQUEST},
    [PROTO_HISTORY] = {requests_history, REQ_MEMBER | REQ_REDIS, BUDGET_REQUEST},
    [PROTO_PING] = {requests_ping, 0, BUDGET_NONE},
    [PROTO_REFRESH] = {requests_refresh, 0, BUDGET_NONE},
    [PROTO_READ] = {requests_read, REQ_MEMBER | REQ_REDIS, BUDGET_REQUEST},
    [PROTO_UNREAD] = {requests_unread, 0, BUDGET_REQUEST},
};

/* Takes one token from the request's bucket; false (after answering rate_limited unless
 * silent, and closing 1008 on persistent abuse) when there is none. */
static bool requests_take_budget(struct session *s, const struct proto_request *req,
                                 enum request_budget budget, bool silent)
{
    const struct gateway_config *cfg = s->gw->cfg;
    int64_t now_ms = gateway_mono_ns() / 1000000;
    bool ok = true;
    switch (budget) {
    case BUDGET_NONE:
        return true;
    case BUDGET_PUBLISH:
        ok = token_bucket_take(&s->bucket, cfg->rate_per_s, cfg->rate_burst, now_ms);
        break;
    case BUDGET_REQUEST:
        ok = token_bucket_take(&s->req_bucket, cfg->request_rate_per_s, cfg->request_burst,
                               now_ms);
        break;
    case BUDGET_JOIN:
        ok = token_bucket_take(&s->join_bucket, cfg->join_rate_per_s, cfg->join_burst, now_ms);
        break;
    }
    if (ok)
        return true;
    s->gw->metrics.rate_limited++;
    if (!silent)
        session_send_error(s, req->id, PROTO_ERR_RATE_LIMITED, "rate limit exceeded");
    if (abuse_window_hit(&s->abuse, cfg->abuse_limit, (int64_t)cfg->abuse_window_s * 1000,
                         now_ms)) {
        log_event(CONFIG_LOG_WARN, "abuse_close", "conn", s->conn_id, "user", s->claims->sub,
                  NULL);
        session_close(s, 1008, "rate limit abuse");
    }
    return false;
}

void requests_dispatch(struct session *s, const struct proto_request *req)
{
    struct gateway *gw = s->gw;
    const struct request_kind *k = &request_table[req->type];
    if (!k->handler) {
        session_send_error(s, req->id, PROTO_ERR_UNKNOWN_TYPE, "not served by this node");
        return;
    }
    bool silent = k->flags & REQ_SILENT;
    struct room *room = NULL;
    if ((k->flags & REQ_MEMBER) || ((k->flags & REQ_MEMBER_IF_ROOM) && req->room[0])) {
        room = room_registry_find(&gw->rooms, req->room);
        if (!room || !session_in_room(s, room)) {
            session_send_error(s, req->id, PROTO_ERR_NOT_JOINED, "join the room first");
            return;
        }
    }
    if (!requests_take_budget(s, req, k->budget, silent))
        return;
    if ((k->flags & REQ_REDIS) &&
        !store_ready(gw, req->room[0] ? req->room : req->to, !req->room[0])) {
        if (req->type == PROTO_PUBLISH)
            gw->metrics.publish_failures++;
        if (!silent)
            session_send_error(s, req->id, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        return;
    }
    k->handler(s, req, room);
}

/* The publish script answered {offset, epoch}: ack (or unavailable: nothing was sent). */
static void requests_on_published(void *arg, struct bus_reply *r)
{
    struct session *s = r->echo.ptr;
    struct gateway *gw = arg;
    const char *id = r->echo.text ? r->echo.text : "";
    metrics_observe(&gw->metrics.publish_rtt, (double)(gateway_mono_ns() - r->echo.t) / 1e9);
    if (s->wsi) {
        if (r->status == BUS_OK && r->nstrings == 2) {
            session_send_json(s, proto_encode_ack(id, r->echo.name,
                                                  strtoull(r->strings[0], NULL, 10),
                                                  (int64_t)r->echo.a));
        } else {
            gw->metrics.publish_failures++;
            session_send_error(s, id, PROTO_ERR_UNAVAILABLE, "message store unavailable; not sent");
        }
    }
    session_release(s);
}

/* Fills the echo every acked request carries (id, ts, submit time) and submits for s. */
static void requests_submit_acked(struct session *s, const struct proto_request *req,
                                  struct bus_cmd *cmd, const char *name, int64_t ts)
{
    struct bus_echo *e = cmd ? bus_cmd_echo(cmd) : NULL;
    if (!cmd || !(e->text = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->a = (uint64_t)ts;
    e->t = gateway_mono_ns();
    session_submit(s, cmd);
}

static void requests_publish(struct session *s, const struct proto_request *req,
                             struct room *room)
{
    struct gateway *gw = s->gw;
    char *head = NULL, *tail = NULL;
    int64_t ts = gateway_now_ms();
    struct bus_cmd *cmd = NULL;
    if (proto_encode_message_parts(req->room, ts, s->claims->sub, s->claims->name, req->text,
                                   req->text_len, NULL, &head, &tail) == 0)
        cmd = store_publish_cmd(gw, req->room, head, tail, s->conn_id, requests_on_published, gw);
    free(head);
    free(tail);
    /* A message ends its sender's typing in the room: the next keystroke is relayed at once,
     * and a later state:false has nothing left to end. */
    struct session_room *sr = session_room_find(s, room);
    if (sr) {
        sr->typing_ms = 0;
        sr->typing_on = false;
    }
    gw->metrics.publishes++;
    requests_submit_acked(s, req, cmd, req->room, ts);
}

/* The direct reached Redis: ack (its reply counts the nodes that hold the target). */
static void requests_on_direct_sent(void *arg, struct bus_reply *r)
{
    (void)arg;
    struct session *s = r->echo.ptr;
    const char *id = r->echo.text ? r->echo.text : "";
    if (s->wsi) {
        if (r->status == BUS_OK)
            session_send_json(s, proto_encode_ack(id, NULL, 0, (int64_t)r->echo.a));
        else
            session_send_error(s, id, PROTO_ERR_UNAVAILABLE, "message store unavailable; not sent");
    }
    session_release(s);
}

/* direct: one frame, encoded once, to every connection of the target on every node (acked),
 * and a copy on the sender's own channel for its other connections (its own command: the two
 * users' channels may live on different servers). */
static void requests_direct(struct session *s, const struct proto_request *req,
                            struct room *room)
{
    (void)room;
    struct gateway *gw = s->gw;
    int64_t ts = gateway_now_ms();
    char *json = proto_encode_direct(s->claims->sub, s->claims->name, req->to, ts, req->text,
                                     req->text_len, NULL);
    struct bus_cmd *cmd =
        json ? webhooks_send_direct(gw, s->claims->sub, req->to, ts, req->text, req->text_len,
                                    NULL, s->conn_id, json, requests_on_direct_sent, gw)
             : NULL;
    if (json && cmd && strcmp(req->to, s->claims->sub) != 0) {
        struct bus_cmd *copy = store_send_cmd(gw, s->claims->sub, true, s->conn_id, json, NULL, NULL);
        if (copy)
            store_submit(gw, copy); /* best effort: the direct itself still goes */
    }
    free(json);
    requests_submit_acked(s, req, cmd, req->to, ts);
}

/* typing: relayed to the room's other connections (sender's other connections included);
 * state:true at most once per --typing-interval per connection and room, extra ones dropped;
 * state:false only when it ends a relayed state:true (§2). Nothing answered, nothing stored. */
static void requests_typing(struct session *s, const struct proto_request *req,
                            struct room *room)
{
    struct gateway *gw = s->gw;
    struct session_room *sr = session_room_find(s, room);
    int64_t now = gateway_mono_ns() / 1000000;
    if (req->state) {
        if (sr->typing_ms && now - sr->typing_ms < gw->cfg->typing_interval_ms)
            return;
        sr->typing_ms = now;
        sr->typing_on = true;
    } else {
        if (!sr->typing_on)
            return;
        sr->typing_on = false;
    }
    char *json = proto_encode_typing(req->room, s->claims->sub, req->state);
    struct bus_cmd *cmd = json ? store_send_cmd(gw, req->room, false, s->conn_id, json, NULL, NULL)
                               : NULL;
    free(json);
    if (cmd)
        store_submit(gw, cmd); /* typing is best effort: never stored, never answered */
}

static void requests_ping(struct session *s, const struct proto_request *req, struct room *room)
{
    (void)room;
    session_send_json(s, proto_encode_pong(req->id, gateway_now_ms()));
}

/* refresh (§7): the same policy as the handshake, the same sub; the new rooms claim applies at
 * once (rooms it no longer allows are left, each with a `left` frame). A refused token changes
 * nothing: the connection still ends at the old exp. */
static void requests_refresh(struct session *s, const struct proto_request *req,
                             struct room *room)
{
    (void)room;
    struct gateway *gw = s->gw;
    struct auth_claims *claims = NULL;
    const char *why = auth_refresh(&gw->policy, req->token, gateway_now_ms() / 1000,
                                   s->claims->sub, &claims);
    if (why) {
        gw->metrics.refresh_failures++;
        session_send_error(s, req->id, PROTO_ERR_INVALID_TOKEN, why);
        return;
    }
    auth_claims_free(s->claims);
    s->claims = claims;
    session_token_changed(s);
    rooms_apply_claims(gw, s);
    session_send_json(s, proto_encode_refreshed(req->id, claims->exp));
}

static void requests_join(struct session *s, const struct proto_request *req, struct room *room)
{
    (void)room;
    rooms_join(s->gw, s, req);
}

static void requests_leave(struct session *s, const struct proto_request *req,
                           struct room *room)
{
    (void)room;
    rooms_leave(s->gw, s, req->room, req->id);
}

static void requests_history(struct session *s, const struct proto_request *req,
                             struct room *room)
{
    history_request(s->gw, s, req, room);
}

static void requests_presence(struct session *s, const struct proto_request *req,
                              struct room *room)
{
    presence_request(s->gw, s, req, room);
}


static void requests_read(struct session *s, const struct proto_request *req, struct room *room)
{
    reads_mark(s->gw, s, req, room);
}

static void requests_unread(struct session *s, const struct proto_request *req,
                            struct room *room)
{
    (void)room;
    reads_unread(s->gw, s, req);
}
