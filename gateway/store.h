/*
 * store — the connection thread's door to Redis (the bus); see store.c.
 */
#ifndef GATEWAY_STORE_H
#define GATEWAY_STORE_H

#include "gateway.h"

/* Hands cmd to the bus (or completes it unavailable once the bus is stopped). */
void store_submit(struct gateway *gw, struct bus_cmd *cmd);
/* True when the Redis server holding room / user `key` is ready. */
bool store_ready(const struct gateway *gw, const char *key, bool user);
bool store_all_ready(const struct gateway *gw);
bool store_any_ready(const struct gateway *gw);
/* A fresh epoch candidate: 64 random bits as 16 hex digits. */
void store_epoch_candidate(struct gateway *gw, char out[17]);
/* The publish script for a message (head + offset + tail) to room; NULL on allocation
 * failure. */
struct bus_cmd *store_publish_cmd(struct gateway *gw, const char *room, const char *head,
                                  const char *tail, const char *sender, bus_done_fn done,
                                  void *arg);
/* An ephemeral frame (typing, a direct) on a room's or user's channel; done (may be NULL)
 * gets the number of receiving nodes in reply->integer. */
struct bus_cmd *store_send_cmd(struct gateway *gw, const char *key, bool user, const char *sender,
                               const char *json, bus_done_fn done, void *arg);
/* "1" when channels are sharded (Redis Cluster: SPUBLISH), else "0" — scripts' last ARGV. */
const char *store_sharded(const struct gateway *gw);

#endif
