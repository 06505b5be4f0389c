/*
 * users — this node's connections per user, and the user channel each needs; see users.c.
 */
#ifndef GATEWAY_USERS_H
#define GATEWAY_USERS_H

#include "session.h"

int users_add(struct gateway *gw, struct session *s);
void users_remove(struct gateway *gw, struct session *s);
/* bus hook for user channels: a direct frame is queued to that user's local connections. */
void users_on_push(void *arg, struct bus_push *p);

#endif
