/*
 * webhooks — user.online / user.offline / direct.undelivered POSTed to --webhook-url
 * (PROTOCOL.md §9), at least once, in order per user, surviving the death of any node.
 *
 * The shape, in one paragraph (details in each webhook_*.c file): every event is appended to
 * one of WEBHOOK_PARTITIONS Redis streams, chosen by a stable hash of its user, by the same
 * Lua script that changes the state it reports (so an event exists iff its transition
 * happened); each partition is delivered by the one node holding its lease, one event at a
 * time, deleted from the stream after a 2xx, retried with capped backoff otherwise, dropped
 * (and counted) once older than --webhook-retention. A node that dies holding a lease loses
 * it when the presence reaper declares it dead (or when the lease expires), and another node
 * re-delivers what it had not acknowledged.
 *
 * Everything here runs on the connection (lws) thread. With no --webhook-url every call is a
 * no-op (webhooks_send_direct is plain store_send_cmd).
 */
#ifndef GATEWAY_WEBHOOKS_H
#define GATEWAY_WEBHOOKS_H

#include "gateway.h"

#define WEBHOOK_PARTITIONS 8

/* After the lws context and the bus exist: parses the URL, creates the client vhost, starts
 * the timer. 0 (also when webhooks are off), -1 with a logged reason. */
int webhooks_start(struct gateway *gw);
/* After bus_stop (every completion has run) and before lws_context_destroy: cancels timers,
 * detaches in-flight requests, frees everything. */
void webhooks_stop(struct gateway *gw);

/* users.c: the user's first connection on this node opened, or its last one closed (call
 * after gw->users changed). */
void webhooks_user_changed(struct gateway *gw, const char *user);
/* presence.c: this node won the claim on a dead node: its users leave (user.offline for
 * those it was the last node of) and its partition leases are released. */
void webhooks_node_dead(struct gateway *gw, const char *node);
/* A Redis server is ready again: this node's users are re-announced (idempotent; Redis may
 * have lost them) and owned partitions are read again. */
void webhooks_on_ready(struct gateway *gw);
/* users.c: a push on a user channel whose name starts with '@' (reserved for the server) is a
 * partition's "new events" notification. */
void webhooks_on_push(struct gateway *gw, const struct bus_push *p);

/* The direct's send command (store_send_cmd), which also appends direct.undelivered when the
 * reply says no node holds `to`; done(arg, reply) then runs as it would have. data_json (API
 * directs) replaces text when non-NULL. NULL on allocation failure. */
struct bus_cmd *webhooks_send_direct(struct gateway *gw, const char *from, const char *to,
                                     int64_t ts, const char *text, size_t text_len,
                                     const char *data_json, const char *sender, const char *json,
                                     bus_done_fn done, void *arg);

#endif
