/*
 * server — creates the lws context for a gateway and wakes it from other threads.
 */
#ifndef GATEWAY_SERVER_H
#define GATEWAY_SERVER_H

#include "gateway.h"

/* Creates gw->context listening on cfg port/bind; -1 with a log line on failure. */
int server_create(struct gateway *gw);
/* bus hook: a Redis server is ready (again): rooms and presence catch up. */
void server_on_redis_ready(void *gw);
/* bus wake function: wakes the connection thread (the only lws call safe from another thread). */
void server_wake(void *context);

#endif
