/*
 * handshake — the checks PROTOCOL.md §1 makes before a WebSocket upgrade, run from
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE so a refusal is a plain HTTP response and never a 101.
 *
 * Order: readiness (503: draining or Redis unreachable) → Origin allow-list (403) → token
 * (401). The token is taken from the first source present — `Authorization: Bearer`, then the
 * `token` query parameter, then the `token` cookie — and only that one is judged: an invalid
 * header does not fall back to a valid query (a non-Bearer Authorization counts as absent).
 * Tokens are never logged; failures are logged with their reason and the peer address.
 *
 * On success the session is created here and hung on the wsi as opaque user data; lws keeps
 * that pointer across the upgrade, and ESTABLISHED picks it up without verifying twice.
 */
#include "handshake.h"
#include "session.h"
#include "store.h"
#include "clock.h"
#include "http_reply.h"

#include "cookie.h"
#include "http.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Longest token accepted from any source; the header cap bounds it anyway. */
#define HANDSHAKE_TOKEN_MAX 8192
#define AUTH_LOG_RATE 20.0
#define AUTH_LOG_BURST 100

static void handshake_peer(struct lws *wsi, char *out, size_t len)
{
    out[0] = '\0';
    lws_get_peer_simple(wsi, out, len);
}

/* True when Origin is absent or allowed (an empty allow-list allows all). */
static bool handshake_origin_allowed(const struct gateway_config *cfg, struct lws *wsi)
{
    if (cfg->allowed_origin_count == 0)
        return true;
    char origin[512];
    int n = lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN);
    if (n <= 0)
        return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) == 0; /* absent: not a browser */
    for (int i = 0; i < cfg->allowed_origin_count; i++)
        if (strcmp(cfg->allowed_origins[i], origin) == 0)
            return true;
    return false;
}

/* Finds the token per §1 precedence. Returns 1 with the token in buf, 0 when no source is
 * present, -1 when the chosen source is present but unusable (too long). */
static int handshake_find_token(struct lws *wsi, char *buf, size_t len)
{
    int hlen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (hlen > 0) {
        if ((size_t)hlen >= len)
            return -1;
        char *auth = buf;
        if (lws_hdr_copy(wsi, auth, (int)len, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
            return -1;
        if (strncasecmp(auth, "Bearer ", 7) == 0) {
            const char *t = auth + 7;
            while (*t == ' ')
                t++;
            memmove(buf, t, strlen(t) + 1);
            return 1;
        }
        /* Another scheme (Basic, ...) counts as absent. */
    }
    char arg[HANDSHAKE_TOKEN_MAX + 8];
    const char *v = lws_get_urlarg_by_name(wsi, "token=", arg, sizeof(arg));
    if (v) {
        if (strlen(v) >= len)
            return -1;
        memmove(buf, v, strlen(v) + 1);
        return 1;
    }
    int clen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE);
    if (clen > 0) {
        /* Our own RFC 6265 parse: lws_http_cookie_get matches names by suffix, so it would
         * take `mytoken=` for `token=` and miss `token=` after `csrftoken=`. */
        char *cookies = malloc((size_t)clen + 1);
        int found = 0;
        if (cookies && lws_hdr_copy(wsi, cookies, clen + 1, WSI_TOKEN_HTTP_COOKIE) >= 0)
            found = cookie_find(cookies, "token", buf, len);
        free(cookies);
        return found;
    }
    return 0;
}

/* Logs a refused handshake with its reason and peer address, at most AUTH_LOG_RATE lines a
 * second (burst AUTH_LOG_BURST) so a flood of bad tokens cannot fill the disk; the number of
 * lines left out is reported on the next line that is written. */
static void handshake_log_failure(struct gateway *gw, struct lws *wsi, const char *reason)
{
    if (!token_bucket_take(&gw->auth_log.bucket, AUTH_LOG_RATE, AUTH_LOG_BURST,
                           gateway_mono_ns() / 1000000)) {
        gw->auth_log.suppressed++;
        return;
    }
    char peer[64], suppressed[24];
    handshake_peer(wsi, peer, sizeof(peer));
    snprintf(suppressed, sizeof(suppressed), "%llu", (unsigned long long)gw->auth_log.suppressed);
    log_event(CONFIG_LOG_INFO, "auth_failed", "reason", reason, "remote", peer, "suppressed",
              gw->auth_log.suppressed ? suppressed : NULL, NULL);
    gw->auth_log.suppressed = 0;
}

static void handshake_refuse(struct handshake_verdict *v, unsigned status, const char *error,
                             const char *message)
{
    v->status = status;
    v->error = error;
    v->message = message;
}

void handshake_judge(struct gateway *gw, struct lws *wsi, struct handshake_verdict *v)
{
    memset(v, 0, sizeof(*v));
    if (gw->drain.active) {
        gw->metrics.unavailable_rejections++;
        handshake_refuse(v, 503, "unavailable", "node is draining");
        return;
    }
    if (!store_any_ready(gw)) {
        gw->metrics.unavailable_rejections++;
        handshake_refuse(v, 503, "unavailable", "node not ready: Redis unreachable");
        return;
    }
    if (gw->registry.count >= (uint64_t)gw->cfg->max_connections) {
        gw->metrics.unavailable_rejections++;
        handshake_refuse(v, 503, "unavailable", "node at connection capacity");
        return;
    }
    if (!handshake_origin_allowed(gw->cfg, wsi)) {
        gw->metrics.origin_rejections++;
        handshake_log_failure(gw, wsi, "origin");
        handshake_refuse(v, 403, "forbidden_origin", "origin not allowed");
        return;
    }
    char token[HANDSHAKE_TOKEN_MAX];
    int found = handshake_find_token(wsi, token, sizeof(token));
    enum auth_result r;
    if (found == 0)
        r = AUTH_MISSING;
    else if (found < 0)
        r = AUTH_MALFORMED;
    else
        r = auth_verify(&gw->policy, token, (int64_t)time(NULL), &v->claims);
    if (r == AUTH_INTERNAL) {
        log_event(CONFIG_LOG_ERROR, "auth_internal_error", NULL);
        handshake_refuse(v, 503, "unavailable", "cannot verify tokens right now");
        return;
    }
    if (r != AUTH_OK) {
        gw->metrics.auth_failures[r]++;
        handshake_log_failure(gw, wsi, auth_result_label(r));
        handshake_refuse(v, 401, "invalid_token", auth_result_message(r));
        return;
    }
}

int handshake_check(struct gateway *gw, struct lws *wsi)
{
    struct handshake_verdict v;
    if (http_header_bytes(wsi, 0) > (size_t)gw->cfg->max_header_bytes) {
        http_error(wsi, 431, "headers_too_large", "request headers over the header limit");
        return 1;
    }
    handshake_judge(gw, wsi, &v);
    if (v.status != 0) {
        http_error(wsi, v.status, v.error, v.message);
        return 1;
    }
    struct session *s = session_new(gw, v.claims);
    if (!s) {
        auth_claims_free(v.claims);
        http_error(wsi, 503, "unavailable", "out of memory");
        return 1;
    }
    lws_set_opaque_user_data(wsi, s);
    return 0;
}
