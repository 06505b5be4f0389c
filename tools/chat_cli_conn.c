/*
 * chat_cli_conn.c — the WebSocket connection: connecting, the lws callback, and what happens
 * when the connection ends.
 *
 * Life of a connection: CONNECTING (upgrade under way) → JOINING (welcome received, every
 * room of the table joined again, with `since` where known) → READY (typed lines flow) →
 * WAITING when it ends, until the next attempt. How it ended decides what follows:
 *   1001 (node draining)                 reconnect at once (the load balancer picks a node)
 *   1006, 1011-1014, 4000, 4001, other   reconnect after a capped exponential backoff with
 *                                        jitter (lws's retry table: 0.25 s doubling to 8 s,
 *                                        +30 % random, so at most about 10 s)
 *   1008 "token expired"                 a fresh token (--token-cmd, --sub), reconnect at once
 *   1000, 1002-1003, 1007-1010, other 1008  final: the program exits 4
 * A refused upgrade (no 101) hands over to chat_cli_probe.c for the server's reason, and then
 * to cli_conn_refused(): 4xx is final (exit 3), 5xx is retried with the same backoff.
 *
 * The backoff grows with every failed attempt and starts over once a connection has stayed
 * up for STABLE_MS, so a server that accepts and drops at once is not hammered.
 *
 * Bounds: a first attempt that reaches nothing exits 3 at once (a wrong URL, a server not
 * started); otherwise the first connection, and in script mode any time offline, is bounded by
 * --timeout (then exit 3 or 4); an interactive session keeps retrying until the user quits.
 * --no-reconnect makes every end final. Requests awaiting a reply when a connection ends are
 * reported as lost (their effect is unknown; a lost publish that was stored shows up in the
 * room's recovery).
 */
#include <stdlib.h>
#include <string.h>

#include "chat_cli.h"

static const uint32_t backoff_ms[] = {250, 500, 1000, 2000, 4000, 8000};

/* Backoff for reconnecting, and lws's idle check: a connection that receives nothing for
 * 20 s is pinged, and dropped (then retried) when still silent at 50 s. */
static const lws_retry_bo_t retry_policy = {
    .retry_ms_table = backoff_ms,
    .retry_ms_table_count = sizeof(backoff_ms) / sizeof(backoff_ms[0]),
    .conceal_count = LWS_RETRY_CONCEAL_ALWAYS,
    .secs_since_valid_ping = 20,
    .secs_since_valid_hangup = 50,
    .jitter_percent = 30,
};

#define RENEW_HINT " (--token-cmd CMD or --sub renew tokens automatically)"
#define STABLE_MS 10000 /* a connection up this long resets the backoff */

enum next_step { STEP_FINAL, STEP_NOW, STEP_BACKOFF };

static void on_reconnect_timer(lws_sorted_usec_list_t *sul);
static void connection_error(struct cli *c, struct lws *wsi, const char *in);

static void finish(struct cli *c, int exit_code)
{
    c->exit_code = exit_code;
    c->phase = PHASE_DONE;
}

/* The target of both the WebSocket and the GET /ws probe: same host, path, origin and TLS
 * settings, so the probe asks exactly the question the refused upgrade asked. */
void cli_conn_target(const struct cli *c, struct lws_client_connect_info *ci,
                     const char *protocol_name)
{
    memset(ci, 0, sizeof(*ci));
    ci->context = c->ctx;
    ci->address = c->host;
    ci->port = c->port;
    ci->path = c->path;
    ci->host = c->host;
    ci->origin = c->opt.origin;
    ci->local_protocol_name = protocol_name;
    if (c->tls) {
        ci->ssl_connection = LCCSCF_USE_SSL;
        if (c->opt.insecure)
            ci->ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
                                  LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED |
                                  LCCSCF_ALLOW_INSECURE;
    }
}

/* Starts a connection attempt; its outcome arrives in ws_callback. */
void cli_conn_start(struct cli *c)
{
    struct lws_client_connect_info ci;
    cli_conn_target(c, &ci, cli_protocols[0].name);
    ci.retry_and_idle_policy = &retry_policy;
    ci.pwsi = &c->wsi;
    c->phase = PHASE_CONNECTING;
    c->close_code = 0;
    c->close_reason[0] = '\0';
    c->connect_deadline = cli_mono_ms() + (int64_t)(c->opt.timeout_s * 1000);
    if (!c->offline_since)
        c->offline_since = cli_mono_ms(); /* the first connection is bounded like a reconnect */
    if (!lws_client_connect_via_info(&ci) && c->phase == PHASE_CONNECTING)
        connection_error(c, NULL, "cannot start a connection");
}

static void schedule_reconnect(struct cli *c, int64_t delay_ms, const char *why)
{
    c->phase = PHASE_WAITING;
    if (delay_ms > 0)
        cli_status("%s; reconnecting in %.1f s", why, (double)delay_ms / 1000.0);
    else
        cli_status("%s; reconnecting now", why);
    lws_sul_schedule(c->ctx, 0, &c->reconnect_timer, on_reconnect_timer, delay_ms * 1000);
}

static int64_t backoff_delay(struct cli *c)
{
    char conceal;
    return lws_retry_get_delay_ms(c->ctx, &retry_policy, &c->retry_count, &conceal);
}

static void on_reconnect_timer(lws_sorted_usec_list_t *sul)
{
    struct cli *c = lws_container_of(sul, struct cli, reconnect_timer);
    if (c->phase != PHASE_WAITING || cli_interrupted)
        return;
    if (cli_token_renewable(c) && cli_token_renew(c) != 0) {
        schedule_reconnect(c, backoff_delay(c), "could not get a fresh token");
        return;
    }
    cli_conn_start(c);
}

void cli_conn_refused(struct cli *c, unsigned status, const char *reason)
{
    char text[400];
    snprintf(text, sizeof(text), "handshake refused: HTTP %u: %s", status, reason);
    if (c->phase != PHASE_WAITING)
        return; /* quit meanwhile */
    if (status < 500 || !c->opt.reconnect) {
        bool expired = status == 401 && strstr(reason, "expired") && !cli_token_renewable(c);
        cli_error("%s%s", text, expired ? RENEW_HINT : "");
        finish(c, CLI_EXIT_CONNECT);
        return;
    }
    schedule_reconnect(c, backoff_delay(c), text);
}

/* What to do after a connection that was up has ended with code/reason. */
static enum next_step classify_close(const struct cli *c, int code, const char *reason)
{
    switch (code) {
    case 1001:
        return STEP_NOW;
    case 1008:
        if (strcmp(reason, "token expired") != 0)
            return STEP_FINAL;
        return cli_token_renewable(c) ? STEP_NOW : STEP_FINAL; /* renewed before connecting */
    case 1000:
    case 1002:
    case 1003:
    case 1007:
    case 1009:
    case 1010:
        return STEP_FINAL;
    default:
        return STEP_BACKOFF; /* 0 (no close frame: 1006), 1011-1014, 4000, 4001, ... */
    }
}

/* The connection is gone: what was in flight is lost, rooms must be joined again. */
static void went_offline(struct cli *c)
{
    c->phase = PHASE_WAITING;
    c->joins_pending = 0;
    if (!c->offline_since)
        c->offline_since = cli_mono_ms();
    cli_out_clear(c);
    cli_rooms_disconnected(c);
    cli_requests_fail_all(c, "no reply: the connection was lost");
    lws_sul_cancel(&c->refresh_timer);
}

static void connection_closed(struct cli *c)
{
    char why[200];
    if (c->close_code)
        snprintf(why, sizeof(why), "the server closed the connection: %d %s", c->close_code,
                 c->close_reason);
    else
        snprintf(why, sizeof(why), "connection lost");
    enum next_step step = classify_close(c, c->close_code, c->close_reason);
    if (c->phase == PHASE_READY && cli_mono_ms() - c->ready_ms >= STABLE_MS)
        c->retry_count = 0; /* a connection that dies at once keeps the backoff growing */
    went_offline(c);
    if (step == STEP_FINAL || !c->opt.reconnect || !c->ever_welcomed) {
        bool expired = c->close_code == 1008 && strcmp(c->close_reason, "token expired") == 0;
        cli_error("%s%s", why, expired ? RENEW_HINT : "");
        finish(c, CLI_EXIT_CLOSED);
    } else if (step == STEP_BACKOFF) {
        schedule_reconnect(c, backoff_delay(c), why);
    } else {
        schedule_reconnect(c, 0, why);
    }
}

/* The attempt failed before any HTTP answer (refused, reset, TLS) or was refused (no 101). */
static void connection_error(struct cli *c, struct lws *wsi, const char *in)
{
    unsigned status = wsi ? lws_http_client_http_response(wsi) : 0;
    c->wsi = NULL;
    if (c->phase != PHASE_CONNECTING)
        return;
    went_offline(c);
    if (status) {
        cli_probe_start(c, status);
        return;
    }
    char why[300];
    snprintf(why, sizeof(why), "cannot connect to %s: %s%s", c->opt.url, in ? in : "unknown error",
             in && strstr(in, "SSL") && !c->opt.insecure
                 ? " (a self-signed certificate? use --ca CERT or --insecure)"
                 : "");
    /* A first attempt that finds nothing listening is a mistake to report, not to retry; once
     * a server has answered (even 503) it is worth waiting for, within the bound. */
    if ((!c->ever_welcomed && c->retry_count == 0) || !c->opt.reconnect) {
        cli_error("%s", why);
        finish(c, CLI_EXIT_CONNECT);
    } else {
        schedule_reconnect(c, backoff_delay(c), why);
    }
}

void cli_conn_welcomed(struct cli *c, const cJSON *f)
{
    const char *user = cli_str_field(f, "user");
    snprintf(c->me, sizeof(c->me), "%s", user ? user : "");
    if (c->ever_welcomed)
        cli_status("reconnected to node %s as %s; rejoining %d room%s", cli_str_field(f, "node"),
                   user, c->room_count, c->room_count == 1 ? "" : "s");
    else
        cli_status("connected to node %s as %s (conn %s)", cli_str_field(f, "node"), user,
                   cli_str_field(f, "conn"));
    c->phase = PHASE_JOINING;
    c->joins_pending = cli_rooms_rejoin(c);
    c->ever_welcomed = true;
    c->refresh_unsupported = false; /* asked again on every connection: nodes may differ */
    cli_token_schedule_refresh(c);
    if (c->joins_pending == 0)
        cli_conn_joins_done(c);
}

void cli_conn_joins_done(struct cli *c)
{
    if (c->phase != PHASE_JOINING)
        return;
    c->phase = PHASE_READY;
    c->ready_ms = cli_mono_ms();
    c->offline_since = 0;
    c->told_offline = false;
    cli_input_start(c);
    cli_schedule_tick(c, 1); /* lines held while offline go now */
}

/* Drops the connection (it will be retried like a network loss). */
static void drop_connection(struct cli *c, const char *why)
{
    if (!c->wsi)
        return;
    cli_error("%s", why);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void cli_conn_check_deadlines(struct cli *c, int64_t now)
{
    bool bounded = c->opt.non_interactive || !c->ever_welcomed;
    if (c->phase == PHASE_CONNECTING && c->wsi && now > c->connect_deadline) {
        if (!c->ever_welcomed) {
            cli_error("no welcome from %s within %.0f s", c->opt.url, c->opt.timeout_s);
            finish(c, CLI_EXIT_CONNECT);
            return;
        }
        c->connect_deadline = INT64_MAX;
        drop_connection(c, "no welcome from the server in time");
    }
    if (bounded && c->offline_since && c->phase != PHASE_READY && c->phase < PHASE_CLOSING &&
        now - c->offline_since > (int64_t)(c->opt.timeout_s * 1000)) {
        cli_error("could not %s within %.0f s", c->ever_welcomed ? "reconnect" : "connect",
                  c->opt.timeout_s);
        finish(c, c->ever_welcomed ? CLI_EXIT_CLOSED : CLI_EXIT_CONNECT);
    }
}

/* Adds "Authorization: Bearer <token>" to a handshake or probe request; *rc -1 on failure. */
void cli_conn_append_auth(struct cli *c, struct lws *wsi, void *in, size_t len, int *rc)
{
    unsigned char **p = (unsigned char **)in, *end = *p + len;
    size_t tlen = strlen(c->token);
    char *value = malloc(tlen + 8);
    *rc = -1;
    if (!value)
        return;
    memcpy(value, "Bearer ", 7);
    memcpy(value + 7, c->token, tlen + 1);
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)value,
                                     (int)(tlen + 7), p, end) == 0)
        *rc = 0;
    free(value);
}

static int rx_append(struct cli *c, const void *in, size_t len)
{
    if (c->rx_len + len > CLI_RX_MAX) {
        cli_error("incoming frame over %u bytes", CLI_RX_MAX);
        return -1;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len)
            cap *= 2;
        unsigned char *p = realloc(c->rx, cap);
        if (!p)
            return -1;
        c->rx = p;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    return 0;
}

static int on_writeable(struct cli *c, struct lws *wsi)
{
    struct cli_out *o = cli_out_pop(c);
    if (o) {
        int n = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);
        free(o);
        if (n < 0)
            return -1;
        if (c->out_head || c->phase == PHASE_CLOSING)
            lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->phase == PHASE_CLOSING) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;
    }
    return 0;
}

static void on_peer_close(struct cli *c, const unsigned char *in, size_t len)
{
    if (len < 2)
        return;
    c->close_code = (in[0] << 8) | in[1];
    snprintf(c->close_reason, sizeof(c->close_reason), "%.*s", (int)(len - 2 < 120 ? len - 2 : 120),
             (const char *)in + 2);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    (void)user;
    struct cli *c = lws_context_user(lws_get_context(wsi));
    int rc = 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        cli_conn_append_auth(c, wsi, in, len, &rc);
        return rc;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        connection_error(c, wsi, in);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->rx_len = 0;
        if (c->out_head || c->phase == PHASE_CLOSING)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (rx_append(c, in, len) != 0)
            return -1;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            size_t frame_len = c->rx_len;
            c->rx_len = 0;
            cli_frame_handle(c, (const char *)c->rx, frame_len);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        on_peer_close(c, in, len);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->wsi = NULL;
        if (c->phase >= PHASE_CLOSING)
            c->phase = PHASE_DONE;
        else
            connection_closed(c);
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* A stdin line arrived or a signal came: act now rather than at the next tick. */
        if (c->phase != PHASE_DONE)
            cli_schedule_tick(c, 1);
        break;
    default:
        break;
    }
    return 0;
}

const struct lws_protocols cli_protocols[] = {
    {"chat-cli", ws_callback, 0, 0, 0, NULL, 0},
    {"chat-cli-probe", cli_probe_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
