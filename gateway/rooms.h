/*
 * rooms — room membership as an adapter over common/room_sync.h; see rooms.c.
 */
#ifndef GATEWAY_ROOMS_H
#define GATEWAY_ROOMS_H

#include "session.h"

void rooms_join(struct gateway *gw, struct session *s, const struct proto_request *req);
void rooms_leave(struct gateway *gw, struct session *s, const char *room, const char *id_json);
/* s's token changed: leaves (with `left` frames) every room its rooms claim no longer allows. */
void rooms_apply_claims(struct gateway *gw, struct session *s);
/* Removes s from every room (connection closed). */
void rooms_leave_all(struct gateway *gw, struct session *s);
/* Sets up the rooms' state machine (gw->sync). */
void rooms_init(struct gateway *gw);
/* bus hook for room channels: messages, subscriptions made and lost. */
void rooms_on_push(void *arg, struct bus_push *p);
/* A Redis server is ready again: stalled rooms sync again. */
void rooms_on_ready(struct gateway *gw);

#endif
