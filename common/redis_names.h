/*
 * redis_names — every Redis key and channel name the gateway uses, built in one place.
 *
 * Pure. With prefix P (--redis-prefix, "chat"):
 *   room R   P:{R}:seq  last offset          P:{R}:log    stream of messages, IDs <offset>-0
 *            P:{R}:epoch                      P:{R}:ch     pub/sub channel (room fan-out)
 *            P:{R}:users zset user → joined   P:{R}:names  hash user → display name
 *            P:{R}:pu:<user> set of nodes holding <user> in R
 *            P:{R}:reads hash user → read marker (PROTOCOL.md §8)
 *   user U   P:u:{U}:ch  pub/sub channel (direct messages)
 *            P:{R}:nu:<node> set of the users <node> holds in R
 *   nodes    P:{@nodes}:live  zset node → liveness deadline (ms, Redis's clock)
 *            P:{@nodes}:claim:<node>  who cleans up a dead node
 *            P:{@node:N}:rooms  set of rooms where node N holds presence entries
 * {R}, {U}, {@nodes} and {@node:N} are Redis Cluster hash tags (and the routing keys the bus
 * is given: room names and user ids never start with '@'): all of a room's keys and its channel share one
 * slot, so one script can touch them all and sharded pub/sub keeps a room inside its shard.
 * Room names cannot contain braces (PROTOCOL.md §2), so the forms never collide.
 */
#ifndef CHAT_REDIS_NAMES_H
#define CHAT_REDIS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define REDIS_NAME_MAX 400 /* enough for prefix + 128-byte user + room + suffix */

struct redis_names {
    char prefix[40]; /* "<P>:" */
    size_t prefix_len;
};

void redis_names_init(struct redis_names *n, const char *prefix);

/* Each writes a NUL-terminated name into out (REDIS_NAME_MAX bytes) and returns its length. */
size_t redis_room_key(const struct redis_names *n, const char *room, const char *suffix,
                      char *out);
size_t redis_room_channel(const struct redis_names *n, const char *room, char *out);
size_t redis_user_channel(const struct redis_names *n, const char *user, char *out);
/* P:{R}:pu: — the prefix of a room's per-user node sets (a script appends the user). */
size_t redis_room_user_prefix(const struct redis_names *n, const char *room, char *out);
#define REDIS_NODES_TAG "@nodes"
size_t redis_nodes_key(const struct redis_names *n, const char *suffix, char *out);
/* The routing tag of node N's keys ("@node:N") into tag (REDIS_NAME_MAX bytes). */
size_t redis_node_tag(const char *node, char *tag);
size_t redis_node_rooms_key(const struct redis_names *n, const char *node, char *out);

/* Splits a channel of ours into its kind and name (name: at least 129 bytes); false for any
 * other text. */
bool redis_channel_parse(const struct redis_names *n, const char *ch, size_t len, bool *user,
                         char *name);

#endif
