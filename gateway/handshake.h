/*
 * handshake — the checks PROTOCOL.md §1 makes before a WebSocket upgrade; see handshake.c.
 */
#ifndef GATEWAY_HANDSHAKE_H
#define GATEWAY_HANDSHAKE_H

#include "gateway.h"

/* handshake.c: the verdict on an upgrade request (or a plain GET /ws): status 0 and the
 * token's claims (caller owns them), or an HTTP status with its error and message. */
struct handshake_verdict {
    unsigned status;
    const char *error, *message;
    struct auth_claims *claims;
};
void handshake_judge(struct gateway *gw, struct lws *wsi, struct handshake_verdict *v);
/* Judges the upgrade request; on success sets the wsi's opaque data to a new session and
 * returns 0; otherwise it has written the HTTP error and returns non-zero. */
int handshake_check(struct gateway *gw, struct lws *wsi);

#endif
