/*
 * tick — the connection thread's periodic work and the drain; see tick.c.
 */
#ifndef GATEWAY_TICK_H
#define GATEWAY_TICK_H

#include "gateway.h"

void tick_start(struct gateway *gw);
/* A SIGTERM/SIGINT arrived (count = signals so far): the first starts the drain, the second
 * ends it at once. */
void tick_signal(struct gateway *gw, int count);

#endif
