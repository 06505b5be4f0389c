/*
 * slot_map — see slot_map.h.
 */
#include "slot_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void slot_map_init(struct slot_map *m)
{
    for (size_t i = 0; i < KEYSLOT_COUNT; i++)
        m->owner[i] = SLOT_MAP_NONE;
    m->node_count = 0;
}

int slot_map_node(struct slot_map *m, const char *host, int port)
{
    for (size_t i = 0; i < m->node_count; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
            return (int)i;
    if (m->node_count == SLOT_MAP_NODES_MAX || strlen(host) > SLOT_MAP_HOST_MAX)
        return -1;
    struct slot_map_node *n = &m->nodes[m->node_count];
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    return (int)m->node_count++;
}

void slot_map_assign(struct slot_map *m, unsigned first, unsigned last, unsigned node)
{
    for (unsigned s = first; s <= last && s < KEYSLOT_COUNT; s++)
        m->owner[s] = (uint16_t)node;
}

size_t slot_map_uncovered(const struct slot_map *m)
{
    size_t n = 0;
    for (size_t i = 0; i < KEYSLOT_COUNT; i++)
        n += m->owner[i] == SLOT_MAP_NONE;
    return n;
}

int slot_map_parse_redirect(const char *err, unsigned *slot, char *host, size_t hostlen,
                            int *port)
{
    int kind = strncmp(err, "MOVED ", 6) == 0 ? 1 : strncmp(err, "ASK ", 4) == 0 ? 2 : 0;
    if (!kind)
        return 0;
    const char *p = err + (kind == 1 ? 6 : 4);
    char *end;
    unsigned long s = strtoul(p, &end, 10);
    if (end == p || *end != ' ' || s >= KEYSLOT_COUNT)
        return 0;
    const char *addr = end + 1;
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= hostlen)
        return 0;
    long pt = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end && *end != ' ') || pt <= 0 || pt > 65535)
        return 0;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && colon[-1] == ']') { /* [::1]:7000 */
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    *slot = (unsigned)s;
    *port = (int)pt;
    return kind;
}
