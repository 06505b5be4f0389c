/*
 * history — `history` requests; see history.c.
 */
#ifndef GATEWAY_HISTORY_H
#define GATEWAY_HISTORY_H

#include "session.h"

/* A history request of s, a member of room: answered when Redis replies. */
void history_request(struct gateway *gw, struct session *s, const struct proto_request *req,
                     struct room *room);

#endif
