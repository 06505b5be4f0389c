/*
 * slot_map — which Redis Cluster master owns each of the 16384 slots, as the gateway last
 * learned it (CLUSTER SLOTS, MOVED redirections). Pure data: no I/O, no threads (the bus
 * thread owns one).
 *
 * Nodes are kept by "host:port" and given a stable small index the first time they are seen,
 * so the per-slot table is 2 bytes a slot and a node's index can key per-node state (its
 * connections) elsewhere. A slot with no known owner is SLOT_MAP_NONE: commands for it are
 * answered `unavailable` (never queued without end).
 */
#ifndef CHAT_SLOT_MAP_H
#define CHAT_SLOT_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyslot.h"

#define SLOT_MAP_NODES_MAX 256
#define SLOT_MAP_NONE 0xFFFF
#define SLOT_MAP_HOST_MAX 255

struct slot_map_node {
    char host[SLOT_MAP_HOST_MAX + 1];
    int port;
};

struct slot_map {
    uint16_t owner[KEYSLOT_COUNT];
    struct slot_map_node nodes[SLOT_MAP_NODES_MAX];
    size_t node_count;
};

void slot_map_init(struct slot_map *m);
/* Index of host:port, adding it when new; -1 when the node table is full. */
int slot_map_node(struct slot_map *m, const char *host, int port);
/* Assigns slots [first, last] to node (an index from slot_map_node, or SLOT_MAP_NONE). */
void slot_map_assign(struct slot_map *m, unsigned first, unsigned last, unsigned node);
/* Slots owned by nobody. */
size_t slot_map_uncovered(const struct slot_map *m);

/* Parses a redirection error: "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>"
 * (host may be an IPv6 address; the port follows the last ':'). Returns 1 for MOVED, 2 for
 * ASK, 0 when err is neither or malformed. */
int slot_map_parse_redirect(const char *err, unsigned *slot, char *host, size_t hostlen,
                            int *port);

#endif
