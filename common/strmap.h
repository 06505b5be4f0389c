/*
 * strmap — string → pointer hash map (chained, power-of-two buckets, grows by doubling).
 * Pure and single-owner: whoever owns the map owns its thread. Keys are copied; values are the
 * caller's. Used where a module needs a small name-keyed table of its own (e.g. the bus's
 * per-channel subscription states), so no module grows a private hash table.
 */
#ifndef CHAT_STRMAP_H
#define CHAT_STRMAP_H

#include <stddef.h>

struct strmap_entry;

struct strmap {
    struct strmap_entry **buckets;
    size_t bucket_count;
    size_t count;
};

int strmap_init(struct strmap *m);
/* Frees the map's own memory; values are not touched. */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces; 0, or -1 on allocation failure. */
int strmap_put(struct strmap *m, const char *key, void *value);
/* Removes key; returns its value or NULL. */
void *strmap_remove(struct strmap *m, const char *key);
/* Calls fn(key, value, arg) for every entry; fn must not modify the map. */
void strmap_each(const struct strmap *m, void (*fn)(const char *, void *, void *), void *arg);

#endif
