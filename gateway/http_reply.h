/*
 * http_reply — plain HTTP answers and request-head size; see http_reply.c.
 */
#ifndef GATEWAY_HTTP_REPLY_H
#define GATEWAY_HTTP_REPLY_H

#include <libwebsockets.h>
#include <stddef.h>

/* Writes a complete response: status, content type, no-store, Connection: close, body.
 * 0 or -1. */
int http_respond(struct lws *wsi, unsigned status, const char *content_type, const char *body,
                 size_t len);
/* Writes {"error":error,"message":message} with status. 0 or -1. */
int http_error(struct lws *wsi, unsigned status, const char *error, const char *message);

/* The size of the request head (request line and headers); declared_body is its
 * Content-Length (0 when none). */
size_t http_header_bytes(struct lws *wsi, unsigned long long declared_body);

#endif
