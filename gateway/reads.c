/*
 * reads — read markers (PROTOCOL.md §8).
 */
#include "reads.h"

void reads_answer_joined(struct gateway *gw, struct session *s, struct room *room,
                         const char *id_json, uint64_t offset, const char *epoch, int recovered)
{
    (void)gw;
    session_send_json(s, proto_encode_joined(id_json, room->name, offset, epoch, recovered));
}
