/*
 * reads — read markers and unread counts (PROTOCOL.md §8); see reads.c.
 */
#ifndef GATEWAY_READS_H
#define GATEWAY_READS_H

#include "gateway.h"

/* Answers a join that took effect at offset/epoch with `joined` (and, with markers, the
 * user's read marker and unread count). */
void reads_answer_joined(struct gateway *gw, struct session *s, struct room *room,
                         const char *id_json, uint64_t offset, const char *epoch, int recovered);

#endif
