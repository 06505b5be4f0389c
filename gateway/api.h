/*
 * api — POST /api/publish and /api/direct (PROTOCOL.md §6), driven by server.c's HTTP
 * callbacks; see api.c.
 */
#ifndef GATEWAY_API_H
#define GATEWAY_API_H

#include "gateway.h"

struct api_request;

/* LWS_CALLBACK_HTTP on /api/...: refuses (404/405/401/413) or starts a request in *slot. */
int api_start(struct gateway *gw, struct lws *wsi, const char *path, struct api_request **slot);
/* LWS_CALLBACK_HTTP_BODY */
int api_body(struct api_request *r, const void *in, size_t len);
/* LWS_CALLBACK_HTTP_BODY_COMPLETION: validates and submits to Redis (or answers an error). */
void api_body_done(struct api_request *r);
/* LWS_CALLBACK_HTTP_WRITEABLE: writes a ready answer. */
int api_writable(struct api_request **slot);
/* LWS_CALLBACK_CLOSED_HTTP */
void api_closed(struct api_request **slot);
/* BUS_EV_PUBLISHED for an API request. */
void api_on_published(struct gateway *gw, struct bus_event *ev);

#endif
