/*
 * frame — one encoded outbound WebSocket payload, shared by reference count among every
 * recipient on this node (fan-out encodes once, never per recipient).
 *
 * The payload sits after `headroom` spare bytes so the WebSocket layer can write its frame
 * header in place (libwebsockets needs LWS_PRE bytes before the data). The reference count is
 * not atomic on purpose: a frame is created on one thread and handed over whole; from then on
 * only the connection thread touches it.
 */
#ifndef CHAT_FRAME_H
#define CHAT_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct frame {
    uint32_t refs;
    uint32_t len;      /* payload bytes */
    uint32_t headroom; /* bytes before the payload */
    uint32_t arrival_us; /* room messages: monotonic µs (mod 2^32) of arrival on this node */
    uint64_t offset;   /* room offset of a message frame; 0 for other frames */
    uint64_t sender_serial; /* room messages: the local sender connection's serial, or 0 */
    unsigned char buf[]; /* headroom + len + 1 (a NUL after the payload, for logging) */
};

/* A new frame with refs = 1 holding a copy of bytes[0..len); NULL on allocation failure or
 * when len does not fit 32 bits. */
struct frame *frame_new(size_t headroom, const void *bytes, size_t len);

/* A new frame with refs = 1 and room for len payload bytes, uninitialised; fill via
 * frame_payload(). */
struct frame *frame_alloc(size_t headroom, size_t len);

static inline unsigned char *frame_payload(struct frame *f)
{
    return f->buf + f->headroom;
}

static inline struct frame *frame_ref(struct frame *f)
{
    f->refs++;
    return f;
}

/* Drops one reference; frees the frame when it was the last. NULL is ignored. */
void frame_unref(struct frame *f);

#endif
