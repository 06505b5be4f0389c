/*
 * reads — read markers and unread counts (PROTOCOL.md §8); see reads.c.
 */
#ifndef GATEWAY_READS_H
#define GATEWAY_READS_H

#include "gateway.h"

/* Answers a join of s (a member of room) that took effect at offset/epoch: `joined` with the
 * user's read marker and unread count, for each of the '\n'-separated request ids. When the
 * marker is not known here, the member's deliveries are held until it is read. */
void reads_answer_joined(struct gateway *gw, struct session *s, struct room *room,
                         const char *ids, uint64_t offset, const char *epoch, int recovered);
/* A `read` request (s is a member of room) and an `unread` request. */
void reads_mark(struct gateway *gw, struct session *s, const struct proto_request *req,
                struct room *room);
void reads_unread(struct gateway *gw, struct session *s, const struct proto_request *req);
/* An ephemeral frame seen on room's channel: a `read` event updates the marker cache. */
void reads_seen(struct room *room, struct frame *f);
/* A member held for its marker (room_member.held): hold one more delivery / drop the hold. */
void reads_hold_frame(struct room_member *m, struct frame *f);
void reads_release_hold(struct room_member *m);
/* The room's markers are unknown again (an epoch reset, a lost subscription) / the room goes. */
void reads_forget(struct room *room);
void reads_room_free(struct room *room);
/* From tick.c: sends coalesced read events whose second has ended. */
void reads_tick(struct gateway *gw);

#endif
