/*
 * http — plain HTTP on a node (PROTOCOL.md §5, §6): /healthz, /readyz, /metrics, /dev/token,
 * the /ws probe and the backend API, with the request rules every endpoint shares.
 *
 * One request per connection: every answer carries `Connection: close` and the connection ends
 * once the answer is out (§5 allows this instead of pipelining). libwebsockets 4.1's keep-alive
 * path re-runs body callbacks on pipelined bytes and can spin forever; ending the connection
 * after its first request removes that path entirely, and an API request can run at most once.
 */
#ifndef GATEWAY_HTTP_H
#define GATEWAY_HTTP_H

#include "gateway.h"
#include "http_reply.h"

struct api_request;

/* Per-connection state of an HTTP connection (lws per-session data: small on purpose, every
 * WebSocket connection carries one too). */
struct http_conn {
    struct api_request *api; /* a backend API request in progress */
    uint32_t body_seen;      /* body bytes received so far */
    uint8_t answered;        /* a final answer was written: ignore everything that follows */
    uint8_t discarding;      /* answered before the body: read and drop it, then close */
};

/* LWS_CALLBACK_HTTP. Returns what the callback returns. */
int http_request(struct gateway *gw, struct lws *wsi, struct http_conn *c);
/* LWS_CALLBACK_HTTP_BODY / _BODY_COMPLETION / _WRITEABLE / CLOSED_HTTP */
int http_body(struct gateway *gw, struct lws *wsi, struct http_conn *c, const void *in,
              size_t len);
int http_body_done(struct gateway *gw, struct lws *wsi, struct http_conn *c);
int http_writable(struct lws *wsi, struct http_conn *c);
void http_closed(struct http_conn *c);

#endif
