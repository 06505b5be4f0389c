/*
 * requests — the request table and the handlers of no other module; see requests.c.
 */
#ifndef GATEWAY_REQUESTS_H
#define GATEWAY_REQUESTS_H

#include "session.h"

/* runs a decoded request after the checks its kind needs (membership, budget,
 * Redis), or answers the error. */
void requests_dispatch(struct session *s, const struct proto_request *req);

#endif
