/*
 * api — POST /api/publish and /api/direct (PROTOCOL.md §6), driven by server.c's HTTP
 * callbacks; see api.c.
 */
#ifndef GATEWAY_API_H
#define GATEWAY_API_H

#include "gateway.h"

struct api_request;

/* LWS_CALLBACK_HTTP on /api/...: answers at once (404/405/401/400/503: *out stays NULL) or
 * starts a request in *out whose body follows. -1 when the answer could not be written. */
int api_start(struct gateway *gw, struct lws *wsi, const char *path,
              unsigned long long declared, struct api_request **out);
/* A piece of the body; -1 when the body grows over the frame limit (caller answers 413). */
int api_body(struct api_request *r, const void *in, size_t len);
/* The body is complete: validates and submits to Redis, or prepares an error answer. Runs the
 * request at most once, however often it is called. */
void api_submit(struct api_request *r);
/* True when the answer can be written (api_write_answer). */
bool api_answer_ready(const struct api_request *r);
/* Writes the answer and frees the request (*slot = NULL). 0 or -1. */
int api_write_answer(struct api_request **slot, struct lws *wsi);
/* The connection is gone or the request was refused: frees it now, or when Redis answers. */
void api_abandon(struct api_request **slot);

#endif
