/*
 * frame — reference-counted shared payloads; see frame.h for the ownership rule.
 * One malloc per frame (header and bytes together), whatever the number of recipients.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

struct frame *frame_alloc(size_t headroom, size_t len)
{
    if (len > UINT32_MAX - 1 || headroom > 4096)
        return NULL;
    struct frame *f = malloc(sizeof(*f) + headroom + len + 1);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    f->headroom = (uint32_t)headroom;
    f->arrival_us = 0;
    f->offset = 0;
    f->sender_serial = 0;
    f->buf[headroom + len] = '\0';
    return f;
}

struct frame *frame_new(size_t headroom, const void *bytes, size_t len)
{
    struct frame *f = frame_alloc(headroom, len);
    if (f && len)
        memcpy(frame_payload(f), bytes, len);
    return f;
}

void frame_unref(struct frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}
