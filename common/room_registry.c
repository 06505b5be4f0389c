/*
 * room_registry — chained hash of rooms with flat member arrays; see the header for why.
 * Invariants: room_count equals the rooms linked in buckets; pending_count equals members with
 * pending set; member arrays hold each session at most once.
 */
#include "room_registry.h"

#include <stdlib.h>
#include <string.h>

#define REGISTRY_INITIAL_BUCKETS 64u

/* FNV-1a: stable, cheap, good enough spread for short names. */
static uint64_t room_name_hash(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

/* Frees a room and what it still holds: held frames, last_frame, and the plain heap blocks
 * (pending_ids, recovery) of members left in it, e.g. at shutdown. Sessions are not touched. */
static void room_release(struct room *room)
{
    for (unsigned i = 0; i < room->member_count; i++) {
        free(room->members[i].pending_ids);
        free(room->members[i].recovery);
    }
    outq_clear(&room->backlog);
    frame_unref(room->last_frame);
    free(room->members);
    free(room);
}

int room_registry_init(struct room_registry *reg)
{
    memset(reg, 0, sizeof(*reg));
    reg->buckets = calloc(REGISTRY_INITIAL_BUCKETS, sizeof(*reg->buckets));
    if (!reg->buckets)
        return -1;
    reg->bucket_count = REGISTRY_INITIAL_BUCKETS;
    reg->next_generation = 1;
    return 0;
}

void room_registry_free(struct room_registry *reg)
{
    for (size_t i = 0; i < reg->bucket_count; i++) {
        struct room *r = reg->buckets[i];
        while (r) {
            struct room *next = r->next_in_bucket;
            room_release(r);
            r = next;
        }
    }
    free(reg->buckets);
    memset(reg, 0, sizeof(*reg));
}

struct room *room_registry_find(const struct room_registry *reg, const char *name)
{
    struct room *r = reg->buckets[room_name_hash(name) & (reg->bucket_count - 1)];
    while (r && strcmp(r->name, name) != 0)
        r = r->next_in_bucket;
    return r;
}

/* Doubles the bucket array when rooms outnumber buckets; on allocation failure the table just
 * stays denser (still correct). */
static void room_registry_maybe_grow(struct room_registry *reg)
{
    if (reg->room_count < reg->bucket_count)
        return;
    size_t ncount = reg->bucket_count * 2;
    struct room **nb = calloc(ncount, sizeof(*nb));
    if (!nb)
        return;
    for (size_t i = 0; i < reg->bucket_count; i++) {
        struct room *r = reg->buckets[i];
        while (r) {
            struct room *next = r->next_in_bucket;
            size_t b = room_name_hash(r->name) & (ncount - 1);
            r->next_in_bucket = nb[b];
            nb[b] = r;
            r = next;
        }
    }
    free(reg->buckets);
    reg->buckets = nb;
    reg->bucket_count = ncount;
}

struct room *room_registry_add(struct room_registry *reg, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > PROTO_ROOM_MAX)
        return NULL;
    struct room *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    memcpy(r->name, name, len + 1);
    r->state = ROOM_SUBSCRIBING;
    r->generation = reg->next_generation++;
    room_registry_maybe_grow(reg);
    size_t b = room_name_hash(name) & (reg->bucket_count - 1);
    r->next_in_bucket = reg->buckets[b];
    reg->buckets[b] = r;
    reg->room_count++;
    return r;
}

void room_registry_remove(struct room_registry *reg, struct room *room)
{
    struct room **pp = &reg->buckets[room_name_hash(room->name) & (reg->bucket_count - 1)];
    while (*pp && *pp != room)
        pp = &(*pp)->next_in_bucket;
    if (*pp) {
        *pp = room->next_in_bucket;
        reg->room_count--;
    }
    room_release(room);
}

int room_find_member(const struct room *room, const void *session)
{
    for (unsigned i = 0; i < room->member_count; i++)
        if (room->members[i].session == session)
            return (int)i;
    return -1;
}

int room_add_member(struct room *room, void *session, bool pending)
{
    if (room->member_count == room->member_cap) {
        unsigned ncap = room->member_cap ? room->member_cap * 2 : 4;
        struct room_member *nm = realloc(room->members, sizeof(*nm) * ncap);
        if (!nm)
            return -1;
        room->members = nm;
        room->member_cap = ncap;
    }
    struct room_member *m = &room->members[room->member_count++];
    memset(m, 0, sizeof(*m));
    m->session = session;
    m->pending = pending;
    if (pending)
        room->pending_count++;
    return 0;
}

bool room_remove_member(struct room *room, const void *session)
{
    int i = room_find_member(room, session);
    if (i < 0)
        return false;
    if (room->members[i].pending)
        room->pending_count--;
    room->members[i] = room->members[--room->member_count];
    return true;
}

void room_registry_each(const struct room_registry *reg, void (*fn)(struct room *, void *),
                        void *arg)
{
    for (size_t i = 0; i < reg->bucket_count; i++)
        for (struct room *r = reg->buckets[i]; r; r = r->next_in_bucket)
            fn(r, arg);
}
