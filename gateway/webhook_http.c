/*
 * webhook_http — one signed POST to the receiver, on libwebsockets' own HTTP client, in the
 * node's lws context and thread (no second event loop, no new dependency).
 *
 * A vhost of its own ("webhooks", no listener) carries the client protocol, so the server
 * vhost's callback never sees client connections, and client TLS is set up only there (it
 * trusts the system CAs, or the file named by OpenSSL's SSL_CERT_FILE). HTTP/1.1 is forced
 * (ALPN) and each request has its own connection, closed once the answer is in: at webhook
 * rates a TCP (or TLS) handshake per event is cheap, and a connection never outlives what it
 * was opened for. Redirects are not followed (a 3xx is a failed attempt).
 *
 * The signature is OpenSSL's one-shot HMAC-SHA256 of the exact bytes sent (Debian's lws 4.1 is
 * built without its own HMAC); libcrypto is already loaded for lws's and libjwt's TLS.
 *
 * Each request has its own deadline (--webhook-timeout, a lws_sul): lws re-arms its own
 * per-connection timeouts as a connection moves through its states, so the deadline is ours;
 * when it fires the request is finished (no answer) and its connection killed with
 * lws_set_timeout(LWS_TO_KILL_ASYNC). `done` runs exactly once per request; after it the
 * connection is detached (opaque data NULL), so late callbacks only close it.
 */
#include "webhook_internal.h"

#include "log.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct webhook_post {
    struct webhooks *wh;
    struct lws *wsi;
    void (*done)(void *arg, int status, const char *why);
    void *arg;
    int status;
    bool sent;
    bool connecting, failed_early; /* inside lws_client_connect_via_info / failed there */
    char id[64];
    char signature[8 + 2 * EVP_MAX_MD_SIZE]; /* "sha256=<hex>" */
    lws_sorted_usec_list_t deadline;
    size_t len;
    unsigned char body[]; /* LWS_PRE headroom, then the body */
};

/* Runs done once and frees the request; the connection (if any) is left to close. */
static void http_finish(struct webhook_post *post, int status, const char *why)
{
    if (post->connecting) {
        post->failed_early = true; /* webhook_http_post reports it; nothing to run here */
        return;
    }
    lws_sul_cancel(&post->deadline);
    if (post->wsi)
        lws_set_opaque_user_data(post->wsi, NULL);
    post->done(post->arg, status, why);
    free(post);
}

static void http_on_deadline(lws_sorted_usec_list_t *sul)
{
    struct webhook_post *post = lws_container_of(sul, struct webhook_post, deadline);
    struct lws *wsi = post->wsi;
    http_finish(post, 0, "timeout");
    if (wsi)
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static int http_headers(struct webhook_post *post, struct lws *wsi, unsigned char **p,
                        unsigned char *end)
{
    char length[24];
    int n = snprintf(length, sizeof(length), "%zu", post->len);
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)"application/json", 16, p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                     (const unsigned char *)length, n, p, end) ||
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"x-chat-signature:", (const unsigned char *)post->signature,
            (int)strlen(post->signature), p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"x-chat-event-id:",
                                    (const unsigned char *)post->id, (int)strlen(post->id), p, end))
        return -1;
    /* The body follows the headers, from the writable callback. */
    lws_client_http_body_pending(wsi, 1);
    lws_callback_on_writable(wsi);
    return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    /* Only client connections carry a request (other reasons may come with a stand-in wsi). */
    struct webhook_post *post = NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        post = lws_get_opaque_user_data(wsi);
        break;
    default:
        break;
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (post)
            http_finish(post, 0, in ? (const char *)in : "connection failed");
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        return post ? http_headers(post, wsi, (unsigned char **)in, *(unsigned char **)in + len)
                    : -1;
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        if (!post)
            return -1;
        if (post->sent)
            return 0;
        post->sent = true;
        lws_client_http_body_pending(wsi, 0);
        return lws_write(wsi, post->body + LWS_PRE, post->len, LWS_WRITE_HTTP_FINAL) ==
                       (int)post->len
                   ? 0
                   : -1;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (post)
            post->status = (int)lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        /* The answer's body is not used, but must be read for the response to complete. */
        char buf[LWS_PRE + 1024], *p = buf + LWS_PRE;
        int n = (int)sizeof(buf) - LWS_PRE;
        return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (post)
            http_finish(post, post->status, "answered");
        return -1; /* one request per connection */
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        /* Closed before the answer was complete: a status line that arrived still counts
         * (the receiver did take the event), none is "no answer". */
        if (post)
            http_finish(post, post->status, "connection closed");
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols http_protocols[] = {
    {.name = "webhook-client", .callback = http_callback},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Host header: the address, with the port when it is not the scheme's default. */
static void http_host(struct webhooks *wh, char *out, size_t len)
{
    bool v6 = strchr(wh->address, ':') != NULL;
    if (wh->port == (wh->tls ? 443 : 80))
        snprintf(out, len, v6 ? "[%s]" : "%s", wh->address);
    else
        snprintf(out, len, v6 ? "[%s]:%d" : "%s:%d", wh->address, wh->port);
}

int webhook_http_start(struct webhooks *wh)
{
    const char *prot, *path;
    snprintf(wh->url, sizeof(wh->url), "%s", wh->gw->cfg->webhook_url);
    for (char *c = wh->url; *c && *c != ':'; c++) /* lws compares the scheme case-sensitively */
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    wh->port = 0;
    if (lws_parse_uri(wh->url, &prot, &wh->address, &wh->port, &path) || !wh->address[0] ||
        wh->port < 1 || wh->port > 65535) {
        log_event(CONFIG_LOG_ERROR, "webhook_bad_url", NULL);
        return -1;
    }
    wh->tls = strcmp(prot, "https") == 0;
    snprintf(wh->path, sizeof(wh->path), "%s%s", path[0] == '/' ? "" : "/", path);
    http_host(wh, wh->host, sizeof(wh->host));

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = http_protocols;
    info.vhost_name = "webhooks";
    if (wh->tls) {
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; /* builds the client TLS context */
        const char *ca = getenv(X509_get_default_cert_file_env());
        ca = ca && ca[0] ? ca : X509_get_default_cert_file();
        info.client_ssl_ca_filepath = access(ca, R_OK) == 0 ? ca : NULL;
    }
    wh->vhost = lws_create_vhost(wh->gw->context, &info);
    if (!wh->vhost) {
        log_event(CONFIG_LOG_ERROR, "webhook_client_failed", "reason", "cannot create vhost", NULL);
        return -1;
    }
    return 0;
}

/* "sha256=" + hex HMAC-SHA256 of the body with the secret; -1 on failure. */
static int http_sign(const char *secret, const unsigned char *body, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, md, &md_len))
        return -1;
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < md_len; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    return 0;
}

struct webhook_post *webhook_http_post(struct webhooks *wh, const char *id, const char *body,
                                       size_t len, void (*done)(void *, int, const char *),
                                       void *arg)
{
    struct webhook_post *post = calloc(1, sizeof(*post) + LWS_PRE + len);
    if (!post)
        return NULL;
    post->wh = wh;
    post->done = done;
    post->arg = arg;
    post->len = len;
    memcpy(post->body + LWS_PRE, body, len);
    snprintf(post->id, sizeof(post->id), "%s", id);
    if (http_sign(wh->gw->cfg->webhook_secret, post->body + LWS_PRE, len, post->signature) != 0) {
        free(post);
        return NULL;
    }
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof(i));
    i.context = wh->gw->context;
    i.vhost = wh->vhost;
    i.address = wh->address;
    i.port = wh->port;
    i.path = wh->path;
    i.host = wh->host;
    i.method = "POST";
    i.alpn = "http/1.1";
    i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (wh->tls ? LCCSCF_USE_SSL : 0);
    i.opaque_user_data = post;
    /* Not i.pwsi: lws would write through it when the connection is destroyed, after the
     * request may be freed. A connection failing inside this call (CONNECTION_ERROR before it
     * returns) is seen through `connecting`: the request did not start, done is not run. */
    post->connecting = true;
    post->wsi = lws_client_connect_via_info(&i);
    post->connecting = false;
    if (!post->wsi || post->failed_early) {
        if (post->wsi)
            lws_set_opaque_user_data(post->wsi, NULL);
        free(post);
        return NULL;
    }
    lws_sul_schedule(wh->gw->context, 0, &post->deadline, http_on_deadline,
                     (lws_usec_t)wh->gw->cfg->webhook_timeout_s * LWS_US_PER_SEC);
    return post;
}

void webhook_http_cancel(struct webhook_post *post)
{
    struct lws *wsi = post->wsi;
    lws_sul_cancel(&post->deadline);
    if (wsi) {
        lws_set_opaque_user_data(wsi, NULL);
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    free(post);
}
