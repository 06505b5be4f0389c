/*
 * strmap — chained hash map; see strmap.h. Invariant: count equals the entries linked.
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct strmap_entry {
    struct strmap_entry *next;
    void *value;
    char key[];
};

/* FNV-1a over the key bytes. */
static uint64_t strmap_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

int strmap_init(struct strmap *m)
{
    m->count = 0;
    m->buckets = calloc(16, sizeof(*m->buckets));
    m->bucket_count = m->buckets ? 16 : 0; /* strmap_free stays safe after a failed init */
    return m->buckets ? 0 : -1;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->bucket_count; i++) {
        struct strmap_entry *e = m->buckets[i];
        while (e) {
            struct strmap_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    memset(m, 0, sizeof(*m));
}

static struct strmap_entry **strmap_slot(const struct strmap *m, const char *key)
{
    struct strmap_entry **pp = &m->buckets[strmap_hash(key) & (m->bucket_count - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct strmap_entry *e = *strmap_slot(m, key);
    return e ? e->value : NULL;
}

/* Doubles the buckets when entries outnumber them; on failure the map stays denser. */
static void strmap_maybe_grow(struct strmap *m)
{
    if (m->count < m->bucket_count)
        return;
    size_t ncount = m->bucket_count * 2;
    struct strmap_entry **nb = calloc(ncount, sizeof(*nb));
    if (!nb)
        return;
    for (size_t i = 0; i < m->bucket_count; i++) {
        struct strmap_entry *e = m->buckets[i];
        while (e) {
            struct strmap_entry *n = e->next;
            size_t b = strmap_hash(e->key) & (ncount - 1);
            e->next = nb[b];
            nb[b] = e;
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->bucket_count = ncount;
}

int strmap_put(struct strmap *m, const char *key, void *value)
{
    struct strmap_entry **pp = strmap_slot(m, key);
    if (*pp) {
        (*pp)->value = value;
        return 0;
    }
    size_t len = strlen(key);
    struct strmap_entry *e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return -1;
    memcpy(e->key, key, len + 1);
    e->value = value;
    e->next = NULL;
    *pp = e;
    m->count++;
    strmap_maybe_grow(m);
    return 0;
}

void *strmap_remove(struct strmap *m, const char *key)
{
    struct strmap_entry **pp = strmap_slot(m, key);
    struct strmap_entry *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    m->count--;
    return v;
}

void strmap_each(const struct strmap *m, void (*fn)(const char *, void *, void *), void *arg)
{
    for (size_t i = 0; i < m->bucket_count; i++)
        for (struct strmap_entry *e = m->buckets[i]; e; e = e->next)
            fn(e->key, e->value, arg);
}
