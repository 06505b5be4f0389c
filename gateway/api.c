/*
 * api — the backend publish API (PROTOCOL.md §6): POST /api/publish and POST /api/direct,
 * for application servers that push events without holding a WebSocket.
 *
 * Same paths as clients: a publish runs the same Lua script (same offsets, same history, same
 * fan-out), a direct the same user-channel script; the sender is "@server". The request is
 * answered when Redis has answered, so 200 means stored and published, 503 means nothing was
 * sent. Off (404) when no --api-key is set; the key is compared in constant time. Bodies obey
 * the frame limit (413 beyond it) and are validated by protocol.c.
 *
 * Lifetime: an api_request lives in the HTTP connection's per-session data until its answer is
 * written; if the client goes away first, the request stays until Redis answers (inflight).
 */
#include "api.h"
#include "store.h"
#include "clock.h"
#include "http_reply.h"

#include "http.h"

#include "log.h"
#include "webhooks.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct api_request {
    struct lws *wsi; /* NULL once the HTTP connection is gone */
    struct gateway *gw;
    bool direct;
    bool inflight;
    bool submitted; /* handed to Redis once; never again, whatever lws calls back */
    unsigned char *body;
    size_t len;
    unsigned status; /* answer ready to write when non-zero */
    char *answer;
};

static void api_request_free(struct api_request *r)
{
    free(r->body);
    free(r->answer);
    free(r);
}

/* Queues the answer and asks for a writable callback (written in api_writable). */
static void api_answer(struct api_request *r, unsigned status, char *json)
{
    r->status = status;
    free(r->answer);
    r->answer = json;
    if (r->wsi) {
        /* http.c stopped reading while Redis worked; lws 4.1 also skips writable callbacks
         * of a flow-controlled HTTP connection, so reading resumes with the answer. */
        lws_rx_flow_control(r->wsi, 1);
        lws_callback_on_writable(r->wsi);
    }
}

static void api_error(struct api_request *r, unsigned status, const char *error, const char *msg)
{
    api_answer(r, status, proto_encode_http_error(error, msg));
}

/* Compares without an early exit, so timing does not reveal how much of the key matched. */
static bool api_key_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
    return diff == 0;
}

int api_start(struct gateway *gw, struct lws *wsi, const char *path,
              unsigned long long declared, struct api_request **out)
{
    const struct gateway_config *cfg = gw->cfg;
    *out = NULL;
    if (!cfg->api_key)
        return http_error(wsi, 404, "not_found",
                          "the backend API is disabled on this node (no --api-key / API_KEY set)");
    bool direct = strcmp(path, "/api/direct") == 0;
    if (!direct && strcmp(path, "/api/publish") != 0)
        return http_error(wsi, 404, "not_found", "no such path");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) <= 0)
        return http_error(wsi, 405, "method_not_allowed", "use POST");
    char auth[512];
    int n = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n < 8 || strncasecmp(auth, "Bearer ", 7) != 0 ||
        !api_key_equal(auth + 7, strlen(auth + 7), cfg->api_key, strlen(cfg->api_key)))
        return http_error(wsi, 401, "unauthorized", "wrong or missing API key");
    if (declared == 0)
        return http_error(wsi, 400, "bad_request",
                          "empty body: send a JSON object with a Content-Length");
    struct api_request *r = calloc(1, sizeof(*r));
    if (!r)
        return http_error(wsi, 503, "unavailable", "out of memory");
    r->wsi = wsi;
    r->gw = gw;
    r->direct = direct;
    *out = r;
    return 0; /* the body follows */
}

int api_body(struct api_request *r, const void *in, size_t len)
{
    if (r->len + len > r->gw->cfg->frame_limit)
        return -1;
    unsigned char *nb = realloc(r->body, r->len + len + 1);
    if (!nb) {
        api_error(r, 503, "unavailable", "out of memory");
        return 0;
    }
    memcpy(nb + r->len, in, len);
    r->body = nb;
    r->len += len;
    return 0;
}

static void api_on_done(void *arg, struct bus_reply *rep);

void api_submit(struct api_request *r)
{
    struct gateway *gw = r->gw;
    if (r->status || r->submitted)
        return; /* refused while reading, or already running: a request runs at most once */
    r->submitted = true;
    struct proto_api_request req;
    const char *why = NULL;
    enum proto_error e = proto_decode_api((const char *)r->body, r->len, gw->cfg->text_limit,
                                          r->direct, &req, &why);
    if (e != PROTO_OK) {
        api_error(r, e == PROTO_ERR_INTERNAL ? 503 : 400,
                  e == PROTO_ERR_INTERNAL ? "unavailable" : proto_error_code(e), why);
        proto_api_request_free(&req);
        return;
    }
    const char *key = r->direct ? req.to : req.room;
    if (!store_ready(gw, key, r->direct)) {
        proto_api_request_free(&req);
        api_error(r, 503, "unavailable", "message store unavailable; nothing was sent");
        return;
    }
    int64_t ts = gateway_now_ms();
    struct bus_cmd *cmd = NULL;
    if (r->direct) {
        char *json = proto_encode_direct("@server", NULL, req.to, ts, req.text, req.text_len,
                                         req.data_json);
        cmd = json ? webhooks_send_direct(gw, "@server", req.to, ts, req.text, req.text_len,
                                          req.data_json, "-", json, api_on_done, r)
                   : NULL;
        free(json);
    } else {
        char *head = NULL, *tail = NULL;
        if (proto_encode_message_parts(req.room, ts, "@server", NULL, req.text, req.text_len,
                                       req.data_json, &head, &tail) == 0)
            cmd = store_publish_cmd(gw, req.room, head, tail, "-", api_on_done, r);
        free(head);
        free(tail);
    }
    proto_api_request_free(&req);
    if (!cmd) {
        api_error(r, 503, "unavailable", "out of memory");
        return;
    }
    struct bus_echo *echo = bus_cmd_echo(cmd);
    echo->a = (uint64_t)ts;
    echo->t = gateway_mono_ns();
    r->inflight = true;
    if (!r->direct)
        gw->metrics.publishes++;
    store_submit(gw, cmd);
}

/* Redis answered: 200 with {offset, ts} (publish) or {ts} (direct), 503 when nothing was sent.
 * A request whose connection went away meanwhile is freed here. */
static void api_on_done(void *arg, struct bus_reply *rep)
{
    struct api_request *r = arg;
    struct gateway *gw = r->gw;
    r->inflight = false;
    if (!r->wsi) {
        api_request_free(r);
        return;
    }
    bool ok = rep->status == BUS_OK && (r->direct || rep->nstrings == 2);
    if (!ok) {
        gw->metrics.publish_failures++;
        api_error(r, 503, "unavailable", "message store unavailable; nothing was sent");
        return;
    }
    if (!r->direct)
        metrics_observe(&gw->metrics.publish_rtt, (double)(gateway_mono_ns() - rep->echo.t) / 1e9);
    cJSON *o = cJSON_CreateObject();
    char *body = NULL;
    if (o &&
        (r->direct || cJSON_AddNumberToObject(o, "offset", strtod(rep->strings[0], NULL))) &&
        cJSON_AddNumberToObject(o, "ts", (double)(int64_t)rep->echo.a))
        body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!body) {
        api_error(r, 503, "unavailable", "out of memory");
        return;
    }
    api_answer(r, 200, strdup(body));
    cJSON_free(body);
}

bool api_answer_ready(const struct api_request *r)
{
    return r->status != 0;
}

int api_write_answer(struct api_request **slot, struct lws *wsi)
{
    struct api_request *r = *slot;
    const char *json = r->answer ? r->answer : "{}";
    int rc = http_respond(wsi, r->status, "application/json", json, strlen(json));
    *slot = NULL;
    api_request_free(r);
    return rc;
}

void api_abandon(struct api_request **slot)
{
    struct api_request *r = *slot;
    *slot = NULL;
    if (!r)
        return;
    if (r->inflight)
        r->wsi = NULL; /* freed when Redis answers */
    else
        api_request_free(r);
}
