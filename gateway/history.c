/*
 * history — `history` requests (PROTOCOL.md §2): a page of the room's stored messages, newest
 * first in Redis, oldest first in the answer, cut at --history-page bytes (`"more":true`), so a
 * request for 1000 large messages can neither make Redis return tens of megabytes nor close
 * its own connection as a slow consumer. One script reads the page (redis_scripts.h).
 */
#include "history.h"

#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rooms_on_history(void *arg, struct bus_reply *r)
{
    (void)arg;
    struct session *s = r->echo.ptr;
    if (s->wsi) {
        const char *id = r->echo.text ? r->echo.text : "";
        if (r->status != BUS_OK) {
            session_send_error(s, id, PROTO_ERR_UNAVAILABLE, "message store unavailable");
        } else {
            const char **msgs = r->nframes ? calloc(r->nframes, sizeof(*msgs)) : NULL;
            if (r->nframes && !msgs) {
                session_send_error(s, id, PROTO_ERR_INTERNAL, "out of memory");
            } else {
                for (size_t i = 0; i < r->nframes; i++)
                    msgs[i] = (const char *)frame_payload(r->frames[i]);
                session_send_json(s, proto_encode_history_page(id, r->echo.name, msgs,
                                                               r->nframes, r->integer != 0));
                free(msgs);
            }
        }
    }
    session_release(s);
}

void history_request(struct gateway *gw, struct session *s, const struct proto_request *req,
                   struct room *room)
{
    if (req->has_before && req->before <= 1) {
        session_send_json(s, proto_encode_history(req->id, room->name, NULL, 0));
        return;
    }
    char logk[REDIS_NAME_MAX], epochk[REDIS_NAME_MAX], seq[REDIS_NAME_MAX];
    char hi[32], limit[16], budget[24];
    redis_room_key(&gw->store.names, room->name, "log", logk);
    redis_room_key(&gw->store.names, room->name, "epoch", epochk);
    redis_room_key(&gw->store.names, room->name, "seq", seq);
    if (req->has_before)
        snprintf(hi, sizeof(hi), "%" PRIu64 "-0", req->before - 1);
    else
        snprintf(hi, sizeof(hi), "+");
    snprintf(limit, sizeof(limit), "%d", req->limit);
    snprintf(budget, sizeof(budget), "%zu", gw->cfg->history_page_bytes);
    const char *argv[] = {logk, epochk, seq, hi, limit, budget};
    struct bus_cmd *cmd =
        bus_script(BUS_SCRIPT_HISTORY, room->name, false, 3, 6, argv, rooms_on_history, gw);
    struct bus_echo *e = cmd ? bus_cmd_echo(cmd) : NULL;
    if (!cmd || !(e->text = strdup(req->id))) {
        bus_cmd_discard(cmd);
        session_send_error(s, req->id, PROTO_ERR_INTERNAL, "out of memory");
        return;
    }
    bus_cmd_parse(cmd, BUS_PARSE_FRAMES);
    snprintf(e->name, sizeof(e->name), "%s", room->name);
    e->ptr = s;
    session_submit(s, cmd);
}
