/*
 * chat_cli_probe.c — why a handshake was refused.
 *
 * The server refuses an upgrade with a plain 401/403/503 whose JSON body says why ("token
 * expired", "malformed token"), but lws's WebSocket client fails a non-101 answer before
 * reading any body: it reports only the status. So the reason is asked for again with a plain
 * HTTP GET of the same URL, same token and Origin (lws's own HTTP client): the server answers
 * it with the same checks as the upgrade — 401/403/503 with the JSON body, or 426 when the
 * upgrade would now be accepted (PROTOCOL.md §1, docs/protocol.md).
 *
 * The GET's reason is used only when it answers the same status as the upgrade did (a server
 * that does not check plain GETs answers 426 to everything); otherwise a generic text for the
 * status is printed. One probe at a time, bounded by --timeout; a probe abandoned at its
 * deadline is recognised by its generation number and its callbacks ignored.
 */
#include <string.h>

#include "chat_cli.h"

static const char *generic_reason(unsigned status)
{
    switch (status) {
    case 401:
        return "the token was refused (the server gave no reason)";
    case 403:
        return "forbidden (is the Origin allowed?)";
    case 503:
        return "the node is draining or not ready";
    default:
        return status >= 500 ? "server error" : "unexpected answer";
    }
}

/* Copies the body's JSON "message" (else "error") into out, control characters replaced, so
 * a server cannot write terminal escapes to the user's screen; false when there is none. */
static bool body_reason(const struct cli_probe *p, char *out, size_t len)
{
    cJSON *body = cJSON_ParseWithLength(p->body, p->len);
    const char *text = cli_str_field(body, "message");
    if (!text || !text[0])
        text = cli_str_field(body, "error");
    bool found = text && text[0];
    if (found) {
        snprintf(out, len, "%s", text);
        for (char *s = out; *s; s++) {
            if ((unsigned char)*s < 0x20 || *s == 0x7f)
                *s = '?';
        }
    }
    cJSON_Delete(body);
    return found;
}

static void probe_finish(struct cli *c)
{
    struct cli_probe *p = &c->probe;
    char reason[256];
    p->active = false;
    p->wsi = NULL;
    if (p->status != p->upgrade_status || !body_reason(p, reason, sizeof(reason)))
        snprintf(reason, sizeof(reason), "%s", generic_reason(p->upgrade_status));
    cli_conn_refused(c, p->upgrade_status, reason);
}

void cli_probe_start(struct cli *c, unsigned upgrade_status)
{
    struct cli_probe *p = &c->probe;
    p->generation++;
    p->active = true;
    p->upgrade_status = upgrade_status;
    p->status = 0;
    p->len = 0;
    p->deadline = cli_mono_ms() + (int64_t)(c->opt.timeout_s * 1000);

    struct lws_client_connect_info ci;
    cli_conn_target(c, &ci, cli_protocols[1].name);
    ci.method = "GET";
    ci.opaque_user_data = (void *)p->generation;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    if (p->active) { /* not already finished by a synchronous connection error */
        p->wsi = wsi;
        if (!wsi)
            probe_finish(c);
    }
}

void cli_probe_check_deadline(struct cli *c, int64_t now)
{
    struct cli_probe *p = &c->probe;
    if (!p->active || now <= p->deadline)
        return;
    if (p->wsi)
        lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    probe_finish(c);
}

int cli_probe_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    (void)user;
    struct cli *c = lws_context_user(lws_get_context(wsi));
    struct cli_probe *p = &c->probe;
    bool mine = p->active && (uintptr_t)lws_get_opaque_user_data(wsi) == p->generation;
    int rc = 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (!mine)
            return -1;
        cli_conn_append_auth(c, wsi, in, len, &rc);
        return rc;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (mine)
            p->status = lws_http_client_http_response(wsi);
        break;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 1024], *px = buf + LWS_PRE;
        int n = (int)sizeof(buf) - LWS_PRE;
        return mine && lws_http_client_read(wsi, &px, &n) >= 0 ? 0 : -1;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        if (mine && len <= sizeof(p->body) - p->len) {
            memcpy(p->body + p->len, in, len);
            p->len += len;
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (mine)
            probe_finish(c);
        break;
    default:
        break;
    }
    return 0;
}
