/*
 * presence — cluster-wide room presence (user_joined / user_left / presence); see presence.c.
 */
#ifndef GATEWAY_PRESENCE_H
#define GATEWAY_PRESENCE_H

#include "gateway.h"

/* A connection became a member of room (joined or joining). */
void presence_member_added(struct gateway *gw, struct room *room, struct session *s);
/* A connection stopped being a member of room. */
void presence_member_removed(struct gateway *gw, struct room *room, struct session *s);
/* Before a room is dropped: frees its presence state. */
void presence_room_free(struct gateway *gw, struct room *room);
/* Once a second (tick.c): refresh this node's liveness; clean up dead nodes it reports. */
void presence_tick(struct gateway *gw);
/* Redis is back: re-announce every local user. */
void presence_on_ready(struct gateway *gw);
/* A `presence` request: of room (s is a member), or of user req->to when room is NULL. */
void presence_request(struct gateway *gw, struct session *s, const struct proto_request *req,
                      struct room *room);

#endif
