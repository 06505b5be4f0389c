/*
 * shard — where a room or user lives when several Redis instances are configured.
 *
 * A stable hash (FNV-1a, 64 bit) of the name modulo the number of instances: every node with the
 * same --redis list places every name on the same instance without talking to the others, and a
 * name's place changes only when the list changes (adding an instance moves about 1/N of the
 * names; see README "Several Redis instances"). Pure; no I/O.
 */
#ifndef CHAT_SHARD_H
#define CHAT_SHARD_H

#include <stddef.h>

/* Index in [0, count) for name; 0 when count <= 1. */
size_t shard_index(const char *name, size_t count);

#endif
