/*
 * outq — FIFO ring of frame pointers with a byte cap; see outq.h for why.
 * Connections that never receive hold no ring; a ring grown past OUTQ_KEEP_SLOTS by a burst
 * is released when it drains.
 */
#include "outq.h"

#include <stdlib.h>
#include <string.h>

#define OUTQ_MIN_SLOTS 8u
#define OUTQ_KEEP_SLOTS 64u

/* Doubles the ring, keeping order; 0 or -1 when out of memory. */
static int outq_grow(struct outq *q)
{
    unsigned ncap = q->cap ? q->cap * 2 : OUTQ_MIN_SLOTS;
    if (ncap < q->cap)
        return -1;
    struct frame **nring = malloc(sizeof(*nring) * ncap);
    if (!nring)
        return -1;
    for (unsigned i = 0; i < q->count; i++)
        nring[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = nring;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

int outq_push(struct outq *q, struct frame *f, size_t byte_cap)
{
    if (q->count && q->bytes + f->len > byte_cap)
        return -1;
    if (q->count == q->cap && outq_grow(q) != 0)
        return -1;
    q->ring[(q->head + q->count) & (q->cap - 1)] = frame_ref(f);
    q->count++;
    q->bytes += f->len;
    return 0;
}

struct frame *outq_peek(const struct outq *q)
{
    return q->count ? q->ring[q->head] : NULL;
}

void outq_pop(struct outq *q)
{
    if (!q->count)
        return;
    struct frame *f = q->ring[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->bytes -= f->len;
    frame_unref(f);
    if (q->count == 0 && q->cap > OUTQ_KEEP_SLOTS) {
        /* A burst grew the ring; give the memory back once it drains. Small rings stay, so a
         * steady one-frame-at-a-time flow costs no malloc per message. */
        free(q->ring);
        q->ring = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

void outq_clear(struct outq *q)
{
    while (q->count)
        outq_pop(q);
    free(q->ring);
    memset(q, 0, sizeof(*q));
}
