/*
 * outq — a connection's outbound queue: a FIFO ring of shared frames with a byte cap.
 *
 * Why a ring of pointers: a fan-out appends one pointer per recipient (no per-recipient
 * allocation; the ring grows by doubling, amortised, and an idle connection holds no ring at
 * all). The byte count is what PROTOCOL.md §5 caps: bytes the gateway holds for the peer beyond
 * what the kernel accepted. outq_push refuses a frame that would take the queue over the cap,
 * and the caller closes the connection (4000) — frames are never skipped for a connection that
 * stays open.
 */
#ifndef CHAT_OUTQ_H
#define CHAT_OUTQ_H

#include "frame.h"

#include <stdbool.h>
#include <stddef.h>

struct outq {
    struct frame **ring; /* NULL until the first push */
    unsigned cap;        /* ring slots, power of two */
    unsigned head;       /* index of the oldest frame */
    unsigned count;
    size_t bytes;        /* payload bytes queued */
};

/* Appends f (taking a new reference) unless bytes + f->len would exceed byte_cap or memory is
 * short; returns 0, or -1 (f untouched, queue unchanged). A single frame larger than the cap
 * is accepted into an empty queue, so a cap below the frame limit cannot wedge a connection. */
int outq_push(struct outq *q, struct frame *f, size_t byte_cap);

/* The oldest frame, or NULL. */
struct frame *outq_peek(const struct outq *q);

/* Removes the oldest frame and drops the queue's reference to it. */
void outq_pop(struct outq *q);

static inline bool outq_empty(const struct outq *q)
{
    return q->count == 0;
}

/* Drops every frame and the ring; the queue is empty and reusable. */
void outq_clear(struct outq *q);

#endif
