/*
 * deadlines — per-connection deadlines on one timer wheel; see deadlines.c.
 */
#ifndef GATEWAY_DEADLINES_H
#define GATEWAY_DEADLINES_H

#include "session.h"

int deadlines_init(struct gateway *gw);
/* A session was established: schedules its first ping and its token expiry. */
void session_deadlines_start(struct session *s);
/* Arms s's timer at its earliest deadline (call after changing one). */
void session_timer_rearm(struct session *s);
/* Handles every deadline due by now (from tick.c). */
void deadlines_run(struct gateway *gw, int64_t now_ms);

#endif
