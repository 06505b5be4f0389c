/*
 * redis_names — see redis_names.h.
 */
#include "redis_names.h"

#include <stdio.h>
#include <string.h>

#define REDIS_NAME_PART_MAX 128

void redis_names_init(struct redis_names *n, const char *prefix)
{
    snprintf(n->prefix, sizeof(n->prefix), "%.38s:", prefix);
    n->prefix_len = strlen(n->prefix);
}

/* The length snprintf reported, clamped to what fits in REDIS_NAME_MAX. */
static size_t names_len(int len)
{
    return len < 0 ? 0 : (size_t)len >= REDIS_NAME_MAX ? REDIS_NAME_MAX - 1 : (size_t)len;
}

size_t redis_room_key(const struct redis_names *n, const char *room, const char *suffix,
                      char *out)
{
    return names_len(snprintf(out, REDIS_NAME_MAX, "%s{%s}:%s", n->prefix, room, suffix));
}

size_t redis_room_channel(const struct redis_names *n, const char *room, char *out)
{
    return redis_room_key(n, room, "ch", out);
}

size_t redis_user_channel(const struct redis_names *n, const char *user, char *out)
{
    return names_len(snprintf(out, REDIS_NAME_MAX, "%su:{%s}:ch", n->prefix, user));
}

size_t redis_room_user_prefix(const struct redis_names *n, const char *room, char *out)
{
    return redis_room_key(n, room, "pu:", out);
}

size_t redis_nodes_key(const struct redis_names *n, const char *suffix, char *out)
{
    return names_len(snprintf(out, REDIS_NAME_MAX, "%s{" REDIS_NODES_TAG "}:%s", n->prefix, suffix));
}

size_t redis_node_tag(const char *node, char *tag)
{
    return names_len(snprintf(tag, REDIS_NAME_MAX, "@node:%s", node));
}

size_t redis_node_rooms_key(const struct redis_names *n, const char *node, char *out)
{
    return names_len(snprintf(out, REDIS_NAME_MAX, "%s{@node:%s}:rooms", n->prefix, node));
}

bool redis_channel_parse(const struct redis_names *n, const char *ch, size_t len, bool *user,
                         char *name)
{
    size_t plen = n->prefix_len;
    if (len < plen + 5 || memcmp(ch, n->prefix, plen) != 0 || memcmp(ch + len - 4, "}:ch", 4) != 0)
        return false;
    size_t skip;
    if (ch[plen] == '{') {
        skip = 1;
        *user = false;
    } else if (len > plen + 7 && memcmp(ch + plen, "u:{", 3) == 0) {
        skip = 3;
        *user = true;
    } else {
        return false;
    }
    size_t nlen = len - plen - skip - 4;
    if (nlen == 0 || nlen > REDIS_NAME_PART_MAX || memchr(ch + plen + skip, '{', nlen) ||
        memchr(ch + plen + skip, '}', nlen))
        return false;
    memcpy(name, ch + plen + skip, nlen);
    name[nlen] = '\0';
    return true;
}
