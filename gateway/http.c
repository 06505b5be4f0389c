/*
 * http — plain HTTP requests on a node; see http.h for why each connection carries one request.
 *
 * Rules every endpoint shares (PROTOCOL.md §5), checked before routing:
 *   - headers over --max-header-bytes → 431 (libwebsockets' own header buffer is set larger,
 *     so the request reaches us and can be answered; beyond that buffer lws cuts it);
 *   - a body sent with Transfer-Encoding (chunked) → 411 at once: lws 4.1 cannot decode a
 *     chunked request body, so reading one would mean parsing HTTP framing by hand;
 *   - a body over the frame limit → 413, declared (Content-Length) or counted;
 *   - every answer has a JSON body (except /metrics) and `Connection: close`.
 * An answer written before the whole body arrived leaves the connection reading and dropping
 * the rest (bounded by a timeout), so the client is not reset while still sending.
 */
#include "http.h"
#include "handshake.h"
#include "store.h"
#include "clock.h"
#include "http_reply.h"

#include "api.h"
#include "log.h"
#include "token_mint.h"

#include <cjson/cJSON.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds an answered connection may take to finish sending the body we will drop. */
#define HTTP_DISCARD_TIMEOUT_S 5

/* Marks the connection answered: close now, or once the body still on its way was dropped —
 * only a body that is not over the frame limit: reading a huge one just to drop it is not
 * worth it (the client may then see a reset after our answer). */
static int http_finish(struct gateway *gw, struct lws *wsi, struct http_conn *c,
                       unsigned long long declared)
{
    c->answered = 1;
    if (declared > c->body_seen && declared <= gw->cfg->frame_limit) {
        c->discarding = 1;
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HTTP_DISCARD_TIMEOUT_S);
        return 0;
    }
    return -1;
}

static unsigned long long http_content_length(struct lws *wsi, bool *present)
{
    char clen[32];
    *present = lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
    return *present ? strtoull(clen, NULL, 10) : 0;
}

/* GET /dev/token?sub=alice[&name=Alice][&rooms=a,team-*][&ttl=3600] — mints an HS256 token
 * with the node's own secret, so the demo page can log people in by name. Exists only with
 * --dev-tokens (never in production: anyone reaching it can become anyone). */
static int http_dev_token(struct gateway *gw, struct lws *wsi)
{
    const struct gateway_config *cfg = gw->cfg;
    if (!cfg->dev_tokens || cfg->jwt_alg != CONFIG_ALG_HS256)
        return http_error(wsi, 404, "not_found", "no such path");
    char sub_buf[160], name_buf[160], rooms_buf[1024], ttl_buf[32];
    const char *sub = lws_get_urlarg_by_name(wsi, "sub=", sub_buf, sizeof(sub_buf));
    const char *name = lws_get_urlarg_by_name(wsi, "name=", name_buf, sizeof(name_buf));
    const char *rooms = lws_get_urlarg_by_name(wsi, "rooms=", rooms_buf, sizeof(rooms_buf));
    const char *ttl_s = lws_get_urlarg_by_name(wsi, "ttl=", ttl_buf, sizeof(ttl_buf));
    long ttl = ttl_s ? strtol(ttl_s, NULL, 10) : 3600;
    if (ttl <= 0 || ttl > 86400)
        ttl = 3600;
    const char *patterns[AUTH_ROOMS_MAX];
    size_t n = 0;
    char *rooms_copy = rooms ? strdup(rooms) : NULL;
    if (rooms_copy) {
        char *save = NULL;
        for (char *r = strtok_r(rooms_copy, ",", &save); r && n < AUTH_ROOMS_MAX;
             r = strtok_r(NULL, ",", &save))
            patterns[n++] = r;
    }
    char *token = sub ? token_mint(AUTH_ALG_HS256, gw->policy.key, gw->policy.key_len, sub, name,
                                   rooms_copy ? patterns : NULL, n, gateway_now_ms() / 1000, ttl,
                                   cfg->jwt_issuer, cfg->jwt_audience)
                      : NULL;
    free(rooms_copy);
    if (!token)
        return http_error(wsi, 400, "bad_request",
                          "sub required (1-128 bytes, not starting with @)");
    cJSON *o = cJSON_CreateObject();
    char *body = NULL;
    if (o && cJSON_AddStringToObject(o, "token", token) &&
        cJSON_AddNumberToObject(o, "ttl", (double)ttl))
        body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(token);
    int rc = body ? http_respond(wsi, 200, "application/json", body, strlen(body))
                  : http_error(wsi, 500, "internal", "out of memory");
    cJSON_free(body);
    return rc;
}

static int http_readyz(struct gateway *gw, struct lws *wsi)
{
    bool redis = store_all_ready(gw);
    bool ready = redis && !gw->drain.active;
    char body[96];
    snprintf(body, sizeof(body), "{\"ready\":%s,\"redis\":%s,\"draining\":%s}",
             ready ? "true" : "false", redis ? "true" : "false",
             gw->drain.active ? "true" : "false");
    return http_respond(wsi, ready ? 200 : 503, "application/json", body, strlen(body));
}

static int http_metrics(struct gateway *gw, struct lws *wsi)
{
    struct metrics_gauges g = {
        .connections = gw->registry.count,
        .rooms = gw->rooms.room_count,
        .ready = store_all_ready(gw) && !gw->drain.active,
        .draining = gw->drain.active,
    };
    bus_stats_get(gw->store.bus, &g.bus);
    g.server_count = bus_servers(gw->store.bus, g.servers, sizeof(g.servers) / sizeof(g.servers[0]));
    size_t len = 0;
    char *text = metrics_render(&gw->metrics, &g, &len);
    if (!text)
        return http_error(wsi, 500, "internal", "out of memory");
    int rc = http_respond(wsi, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return rc;
}

/* GET /ws without an upgrade: the handshake's checks, answered as a status, so a browser
 * (which cannot read the body of a refused upgrade) can learn why it was refused. */
static int http_ws_probe(struct gateway *gw, struct lws *wsi)
{
    struct handshake_verdict v;
    handshake_judge(gw, wsi, &v);
    if (v.status != 0)
        return http_error(wsi, v.status, v.error, v.message);
    auth_claims_free(v.claims);
    return http_error(wsi, 426, "upgrade_required",
                      "the token is accepted here; use a WebSocket upgrade on /ws");
}

/* Routes a request whose shared rules passed. Returns the callback's result. */
static int http_route(struct gateway *gw, struct lws *wsi, struct http_conn *c, const char *path,
                      unsigned long long declared)
{
    if (strncmp(path, "/api/", 5) == 0) {
        int rc = api_start(gw, wsi, path, declared, &c->api);
        if (rc != 0 || c->api)
            return rc < 0 ? -1 : 0; /* the body follows (or the answer is on its way) */
        return http_finish(gw, wsi, c, declared);
    }
    int rc;
    if (strcmp(path, "/healthz") == 0)
        rc = http_respond(wsi, 200, "application/json", "{\"status\":\"ok\"}", 15);
    else if (strcmp(path, "/readyz") == 0)
        rc = http_readyz(gw, wsi);
    else if (strcmp(path, "/metrics") == 0)
        rc = http_metrics(gw, wsi);
    else if (strcmp(path, "/dev/token") == 0)
        rc = http_dev_token(gw, wsi);
    else if (strcmp(path, "/ws") == 0)
        rc = http_ws_probe(gw, wsi);
    else
        rc = http_error(wsi, 404, "not_found", "no such path");
    return rc != 0 ? -1 : http_finish(gw, wsi, c, declared);
}

int http_request(struct gateway *gw, struct lws *wsi, struct http_conn *c)
{
    if (c->answered)
        return -1; /* a pipelined request after the first: we already said Connection: close */
    bool has_length;
    unsigned long long declared = http_content_length(wsi, &has_length);
    if (http_header_bytes(wsi, declared) > (size_t)gw->cfg->max_header_bytes) {
        http_error(wsi, 431, "headers_too_large", "request headers over the header limit");
        return http_finish(gw, wsi, c, declared);
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        http_error(wsi, 411, "length_required",
                   "chunked request bodies are not accepted; send Content-Length");
        c->answered = 1;
        return -1; /* its framing is unknown to lws: nothing more can be read safely */
    }
    if (declared > gw->cfg->frame_limit) {
        http_error(wsi, 413, "too_large", "body over the frame limit");
        return http_finish(gw, wsi, c, declared);
    }
    char path[256] = "";
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 &&
        lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_POST_URI) <= 0)
        lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_HEAD_URI);
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    return http_route(gw, wsi, c, path, declared);
}

int http_body(struct gateway *gw, struct lws *wsi, struct http_conn *c, const void *in,
              size_t len)
{
    c->body_seen += (uint32_t)len;
    if (c->answered || !c->api)
        return 0; /* answered early: the rest is dropped */
    if (api_body(c->api, in, len) != 0) {
        /* Over the frame limit while reading: answer now, drop the rest. */
        api_abandon(&c->api);
        http_error(wsi, 413, "too_large", "body over the frame limit");
        c->answered = 1;
        return -1;
    }
    (void)gw;
    return 0;
}

int http_body_done(struct gateway *gw, struct lws *wsi, struct http_conn *c)
{
    (void)gw;
    if (c->discarding || c->answered || !c->api)
        return -1;
    api_submit(c->api); /* runs once, however often lws completes the body */
    if (api_answer_ready(c->api))
        return http_writable(wsi, c);
    /* Waiting for Redis. Nothing after this body is read meanwhile: lws 4.1 would feed
     * pipelined bytes back to us as a completed body again and again. The answer lifts this
     * (api.c) and the connection ends with it. */
    lws_rx_flow_control(wsi, 0);
    return 0;
}

int http_writable(struct lws *wsi, struct http_conn *c)
{
    if (!c->api || !api_answer_ready(c->api))
        return 0;
    api_write_answer(&c->api, wsi);
    c->answered = 1;
    return -1; /* one request per connection: done (lws flushes the answer first) */
}

void http_closed(struct http_conn *c)
{
    api_abandon(&c->api);
}
