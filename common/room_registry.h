/*
 * room_registry — this node's rooms: name → room, each with its local members.
 *
 * Pure data structure, no I/O, no threads: the connection thread owns it alone (STYLE.md: one
 * owner per piece of state). Members are opaque pointers (the gateway's sessions).
 *
 * Why this shape: fan-out walks a room's members for every delivered message, so members are a
 * flat array (cache-friendly, no per-member allocation); join/leave are rarer and pay a linear
 * scan. Rooms sit in a chained hash table keyed by name, grown by doubling.
 *
 * A room also carries its node-level sync state (see gateway/rooms.c): whether this node's
 * Redis subscription is confirmed and the room's offset/epoch are known. Members that joined
 * while the room was not yet live are `pending` and receive their `joined` when it becomes live.
 * `generation` distinguishes incarnations of a room with the same name, so a late Redis reply
 * for a room that was dropped and re-created is recognised and ignored.
 *
 * The fields after `backlog` belong to room_sync (common/room_sync.h), the pure state machine
 * that is replacing the ordering logic of gateway/rooms.c; they stay zero for rooms that
 * rooms.c drives. A member's pending_ids and recovery are plain heap blocks in both, so
 * removing a room frees any still attached, and drops the room's last_frame reference.
 */
#ifndef CHAT_ROOM_REGISTRY_H
#define CHAT_ROOM_REGISTRY_H

#include "outq.h"
#include "protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROOM_RETIRED_MAX 8 /* epochs a room remembers having left (room_sync) */

enum room_state {
    ROOM_SUBSCRIBING, /* SUBSCRIBE sent, not confirmed */
    ROOM_SYNCING,     /* subscribed; offset/epoch being read */
    ROOM_LIVE,        /* subscribed and in sync: deliveries flow, joins answer at once */
    ROOM_ROTATING,    /* room_sync: the offsets went backwards; a new epoch is being taken */
    ROOM_STALLED,     /* room_sync: Redis failed a read; waiting until it is ready again */
};

struct room_member {
    void *session;
    char *pending_ids; /* pending joins: the request ids to answer, '\n'-separated, owned by
                          the caller (NULL when none) */
    void *recovery;    /* the caller's state of a join with `since` (NULL when none) */
    uint8_t pending;   /* joined before the room was live; its `joined` is not sent yet */
    void *held;        /* the caller's: deliveries held for a live member (gateway/reads.c
                          holds them until `joined` can carry the member's read marker) */
};

struct room {
    struct room *next_in_bucket;
    char name[PROTO_ROOM_MAX + 1];
    enum room_state state;
    uint64_t generation;
    uint64_t last_offset;             /* last offset delivered on this node (live rooms) */
    char epoch[PROTO_EPOCH_MAX + 1];  /* "" until known */
    struct room_member *members;
    unsigned member_count;
    unsigned member_cap;
    unsigned pending_count;
    bool filling;        /* live, but reading a gap back from the room's log: hold deliveries */
    void *presence;      /* the caller's per-room presence state (NULL when none) */
    void *reads;         /* the caller's per-room read markers (NULL when none) */
    struct outq backlog; /* messages that arrived while syncing or filling, replayed after */

    /* room_sync only (see room_sync.h for their rules) */
    uint64_t next_tag;      /* last tag handed out for a SYNC, ROTATE or FETCH */
    uint64_t sync_tag;      /* the SYNC/ROTATE in flight (0: none) */
    uint64_t fill_tag;      /* the gap fill in flight (0: none) */
    uint64_t fill_to;       /* the gap fill's last offset */
    bool held_lost;         /* held messages were dropped: re-read the offset once live */
    struct frame *last_frame; /* one reference to the frame sent at last_offset, or NULL */
    char held_epoch[PROTO_EPOCH_MAX + 1]; /* the epoch of every frame in backlog */
    uint64_t retired[ROOM_RETIRED_MAX];   /* digests of epochs left behind: never again */
    unsigned retired_next;                /* ring index of the oldest */
};

struct room_registry {
    struct room **buckets;
    size_t bucket_count; /* power of two */
    size_t room_count;
    uint64_t next_generation;
};

int room_registry_init(struct room_registry *reg);
/* Frees every room (members are not touched: they are the caller's). */
void room_registry_free(struct room_registry *reg);

struct room *room_registry_find(const struct room_registry *reg, const char *name);
/* Creates an empty room in ROOM_SUBSCRIBING with a fresh generation; NULL on allocation
 * failure. The name must not exist yet. */
struct room *room_registry_add(struct room_registry *reg, const char *name);
/* Unlinks and frees the room. */
void room_registry_remove(struct room_registry *reg, struct room *room);

/* Index of session among room's members, or -1. */
int room_find_member(const struct room *room, const void *session);
/* Appends session (must not be a member yet); 0 or -1 on allocation failure. */
int room_add_member(struct room *room, void *session, bool pending);
/* Removes session if it is a member (order of the others may change); returns whether it was. */
bool room_remove_member(struct room *room, const void *session);

/* Calls fn for every room; fn must not add or remove rooms. */
void room_registry_each(const struct room_registry *reg, void (*fn)(struct room *, void *),
                        void *arg);

#endif
