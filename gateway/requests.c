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
#include "gateway.h"

#include "log.h"
#include "presence.h"

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
    /* read markers (§8) are not served yet: answered unknown_type */
    [PROTO_READ] = {NULL, REQ_MEMBER | REQ_REDIS, BUDGET_REQUEST},
    [PROTO_UNREAD] = {NULL, 0, BUDGET_REQUEST},
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
    if ((k->flags & REQ_REDIS) && !shard_ready(gw, req->room[0] ? req->room : req->to)) {
        if (req->type == PROTO_PUBLISH)
            gw->metrics.publish_failures++;
        if (!silent)
            session_send_error(s, req->id, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        return;
    }
    k->handler(s, req, room);
}

static void requests_publish(struct session *s, const struct proto_request *req,
                             struct room *room)
{
    struct gateway *gw = s->gw;
    struct bus_cmd *cmd = bus_cmd_new(BUS_CMD_PUBLISH, req->room);
    int64_t ts = gateway_now_ms();
    if (!cmd || proto_encode_message_parts(req->room, ts, s->claims->sub, s->claims->name,
                                           req->text, req->text_len, NULL, &cmd->head,
                                           &cmd->tail) != 0 ||
        !(cmd->id_json = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    /* A message ends its sender's typing in the room: the next keystroke is relayed at once,
     * and a later state:false has nothing left to end. */
    struct session_room *sr = session_room_find(s, room);
    if (sr) {
        sr->typing_ms = 0;
        sr->typing_on = false;
    }
    snprintf(cmd->sender, sizeof(cmd->sender), "%s", s->conn_id);
    cmd->ts_ms = ts;
    cmd->t_submit_ns = gateway_mono_ns();
    gw->metrics.publishes++;
    session_submit(s, cmd);
}

void session_on_published(struct gateway *gw, struct bus_event *ev)
{
    struct session *s = ev->owner;
    if (ev->t_submit_ns)
        metrics_observe(&gw->metrics.publish_rtt,
                        (double)(gateway_mono_ns() - ev->t_submit_ns) / 1e9);
    if (s->wsi) {
        if (ev->status == 0 && ev->direct) {
            session_send_json(s, proto_encode_ack(ev->id_json, NULL, 0, ev->ts_ms));
        } else if (ev->status == 0) {
            session_send_json(s, proto_encode_ack(ev->id_json, ev->room, ev->offset, ev->ts_ms));
        } else {
            gw->metrics.publish_failures++;
            session_send_error(s, ev->id_json, PROTO_ERR_UNAVAILABLE,
                               "message store unavailable; not sent");
        }
    }
    session_release(s);
}

/* The sender's other connections get a copy of a direct through the sender's user channel. When
 * that channel lives on another Redis instance than the target's, the direct script (run on the
 * target's) cannot reach it: the copy then goes as its own publish on the sender's instance. */
static void requests_copy_direct_to_self(struct session *s, struct bus_cmd *direct)
{
    struct gateway *gw = s->gw;
    if (shard_bus(gw, direct->room) == shard_bus(gw, s->claims->sub))
        return;
    char *target = strdup(direct->room);
    struct bus_cmd *copy = bus_cmd_new(BUS_CMD_TYPING, s->claims->sub);
    if (!target || !copy || !(copy->head = strdup(direct->head))) {
        free(target);
        if (copy)
            bus_cmd_discard(copy);
        return; /* the direct itself still goes; only the copy to the sender is lost */
    }
    free(direct->tail);
    direct->tail = target;
    copy->user_channel = true;
    snprintf(copy->sender, sizeof(copy->sender), "%s", s->conn_id);
    shard_submit(gw, copy);
}

/* direct: one frame, encoded once, to every connection of the target and the sender's other
 * connections on every node; acked when Redis took it. */
static void requests_direct(struct session *s, const struct proto_request *req,
                            struct room *room)
{
    (void)room;
    struct bus_cmd *cmd = bus_cmd_new(BUS_CMD_DIRECT, req->to);
    int64_t ts = gateway_now_ms();
    if (!cmd ||
        !(cmd->head = proto_encode_direct(s->claims->sub, s->claims->name, req->to, ts,
                                          req->text, req->text_len, NULL)) ||
        !(cmd->tail = strdup(s->claims->sub)) || !(cmd->id_json = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    snprintf(cmd->sender, sizeof(cmd->sender), "%s", s->conn_id);
    cmd->ts_ms = ts;
    requests_copy_direct_to_self(s, cmd);
    session_submit(s, cmd);
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
    struct bus_cmd *cmd = bus_cmd_new(BUS_CMD_TYPING, req->room);
    if (!cmd || !(cmd->head = proto_encode_typing(req->room, s->claims->sub, req->state))) {
        bus_cmd_discard(cmd);
        return; /* typing is best effort: never stored, never answered */
    }
    snprintf(cmd->sender, sizeof(cmd->sender), "%s", s->conn_id);
    shard_submit(gw, cmd);
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
    enum auth_result r = auth_verify(&gw->policy, req->token, gateway_now_ms() / 1000, &claims);
    const char *why = r == AUTH_OK ? NULL : auth_result_message(r);
    if (r == AUTH_OK && strcmp(claims->sub, s->claims->sub) != 0)
        why = "token is for another user";
    if (why) {
        auth_claims_free(claims);
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
    rooms_history(s->gw, s, req, room);
}

static void requests_presence(struct session *s, const struct proto_request *req,
                              struct room *room)
{
    presence_request(s->gw, s, req, room);
}

