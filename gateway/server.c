/*
 * server — the libwebsockets side of a node: one context, one vhost, one protocol whose
 * callback serves both plain HTTP (/healthz, /readyz, /metrics) and the WebSocket endpoint
 * /ws. A client that names no subprotocol is bound to the first protocol, so one protocol is
 * both the default and the only one.
 *
 * This thread owns sessions, rooms and metrics. The bus thread reaches it only through
 * lws_cancel_service(), which surfaces here as LWS_CALLBACK_EVENT_WAIT_CANCELLED; several
 * cancels may merge into one callback, so each one drains the whole event list. Signals wake
 * it the same way (loop.c), and a new one is handed to the drain here.
 *
 * The context runs on loop.c's libev (epoll) loop, not lws's poll() loop; what sessions queue
 * during a turn of that loop is written before it waits again (session_write.c).
 */
#include "server.h"
#include "loop.h"
#include "session.h"
#include "handshake.h"
#include "rooms.h"
#include "clock.h"
#include "http_reply.h"

#include "api.h"
#include "http.h"
#include "presence.h"
#include "webhooks.h"
#include "log.h"
#include "tick.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void server_on_redis_ready(void *arg)
{
    struct gateway *gw = arg;
    rooms_on_ready(gw);
    webhooks_on_ready(gw);
    presence_on_ready(gw);
}

/* Path of the request (without query), into buf. */
static void server_path(struct lws *wsi, char *buf, int len)
{
    buf[0] = '\0';
    if (lws_hdr_copy(wsi, buf, len, WSI_TOKEN_GET_URI) < 0)
        buf[0] = '\0';
    char *q = strchr(buf, '?');
    if (q)
        *q = '\0';
}

/* The bus thread or a signal woke the loop: every completion and push, in order, then a new
 * signal for the drain. */
static void server_woken(struct gateway *gw)
{
    bus_run_events(gw->store.bus);
    int signals = loop_signals_new();
    if (signals)
        tick_signal(gw, signals);
}

static int server_established(struct gateway *gw, struct lws *wsi)
{
    struct session *s = lws_get_opaque_user_data(wsi);
    if (!s)
        return -1;
    if (gw->cfg->sndbuf > 0) {
        /* A modest kernel buffer, so a stalled reader shows up in our queue cap (§5). */
        int fd = lws_get_socket_fd(wsi);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &gw->cfg->sndbuf, sizeof(gw->cfg->sndbuf));
    }
    session_established(s, wsi);
    return 0;
}

static int server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    struct gateway *gw = lws_context_user(ctx);
    struct session *s;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        server_woken(gw);
        return 0;

    case LWS_CALLBACK_HTTP:
        return user ? http_request(gw, wsi, user) : -1;

    case LWS_CALLBACK_HTTP_BODY:
        return user ? http_body(gw, wsi, user, in, len) : -1;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return user ? http_body_done(gw, wsi, user) : -1;

    case LWS_CALLBACK_HTTP_WRITEABLE:
        return user ? http_writable(wsi, user) : 0;

    case LWS_CALLBACK_CLOSED_HTTP:
        if (user)
            http_closed(user);
        break;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        char path[256];
        server_path(wsi, path, sizeof(path));
        if (strcmp(path, "/ws") != 0) {
            http_error(wsi, 404, "not_found", "no such path");
            return 1;
        }
        return handshake_check(gw, wsi);
    }

    case LWS_CALLBACK_ESTABLISHED:
        return server_established(gw, wsi);

    case LWS_CALLBACK_RECEIVE:
        s = lws_get_opaque_user_data(wsi);
        return s && s->wsi ? session_receive(s, in, len) : -1;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* After our own close frame the peer's close is the acknowledgement: end here, or lws
         * would echo a second close and browsers report a protocol error. */
        s = lws_get_opaque_user_data(wsi);
        return s ? session_peer_closed(s) : 0;

    case LWS_CALLBACK_RECEIVE_PONG:
        s = lws_get_opaque_user_data(wsi);
        if (s)
            s->last_rx_ms = gateway_mono_ns() / 1000000;
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        s = lws_get_opaque_user_data(wsi);
        return s && s->wsi ? session_writable(s) : 0;

    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        /* CLOSED for upgraded connections; WSI_DESTROY also covers a handshake that passed
         * our checks but never became a WebSocket. Whichever comes first tears down. */
        s = lws_get_opaque_user_data(wsi);
        if (s) {
            lws_set_opaque_user_data(wsi, NULL);
            session_closed(s);
        }
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* Per-connection rx buffer (lws allocates it at the upgrade, for the connection's life): 128
 * bytes still hold any control frame (payload <= 125) whole; a longer message arrives in
 * pieces and is reassembled (session.c). 512 cost 384 more bytes per idle connection. */
#define SERVER_RX_BUFFER 128
/* Largest single send: lws sends the rest of a larger frame on later writable turns. Without
 * it lws would use rx_buffer_size. 512 is what the node always sent: larger sends fill a
 * stalled reader's kernel buffers before its queue reaches the cap, and then the 4000 close
 * frame no longer fits and the connection is cut instead (PROTOCOL.md §5 allows both; clients
 * and tests/integration/slow_consumer expect the frame). */
#define SERVER_TX_PACKET 512

static const struct lws_protocols server_protocols[] = {
    {
        .name = "chat",
        .callback = server_callback,
        /* HTTP connections keep their request state here (http.h); small, as every
         * WebSocket connection carries one too. */
        .per_session_data_size = sizeof(struct http_conn),
        /* Small on purpose: lws allocates it for every WebSocket connection, and idle
         * connections are the headline memory figure; larger messages still arrive, in
         * pieces, and are reassembled in session.c. */
        .rx_buffer_size = SERVER_RX_BUFFER,
        .tx_packet_size = SERVER_TX_PACKET,
    },
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void server_lws_log(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_event(level == LLL_ERR ? CONFIG_LOG_ERROR : CONFIG_LOG_WARN, "lws", "message", msg, NULL);
}

int server_create(struct gateway *gw)
{
    const struct gateway_config *cfg = gw->cfg;
    lws_set_log_level(LLL_ERR, server_lws_log);

    /* Heartbeat is ours (tick.c: pings, 4001). lws's own validity timer is switched off with
     * zeros: lws 4.1 keeps those timers in one sorted list and re-inserts a connection's on
     * every frame it receives, O(connections) each time (measured: 98% of a core idle at 20k
     * connections with it, 15% without). Peers that cannot take a close frame are cut by the
     * close timeouts set in session_close/session_writable. */
    static lws_retry_bo_t retry;
    retry.secs_since_valid_ping = 0;
    retry.secs_since_valid_hangup = 0;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = cfg->port;
    info.iface = cfg->bind[0] ? cfg->bind : NULL;
    info.protocols = server_protocols;
    info.user = gw;
    /* lws on our libev loop (loop.c): epoll instead of poll() over every descriptor. */
    if (loop_init() != 0)
        return -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loop_foreign();
    /* With IPv6 on, lws 4.1 binds "::" and puts an IPv4 --bind address in the flowinfo field,
     * listening on every interface: an IPv4 bind address needs IPv6 off to mean what it says. */
    if (cfg->bind[0] && strchr(cfg->bind, '.') && !strchr(cfg->bind, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* lws's header buffer is larger than our limit, so a request over the limit still reaches
     * us and gets its 431 (http.c); beyond this buffer lws can only cut the connection. Its
     * pages are touched only as far as a request fills them. lws counts it in an unsigned
     * short, hence 65535. */
    info.max_http_header_data = 65535;
    /* Slowloris: timeout_secs bounds network round trips; timeout_secs_ah_idle bounds how
     * long a connection may hold a header table without completing its request. */
    info.timeout_secs = (unsigned)cfg->handshake_timeout_s;
    info.timeout_secs_ah_idle = (unsigned)cfg->handshake_timeout_s;
    info.retry_and_idle_policy = &retry;
    info.vhost_name = "chat";
    gw->context = lws_create_context(&info);
    if (!gw->context) {
        log_event(CONFIG_LOG_ERROR, "listen_failed", "bind", cfg->bind[0] ? cfg->bind : "*", NULL);
        loop_free();
        return -1;
    }
    loop_before_wait(session_flush_all, gw);
    return 0;
}

void server_wake(void *arg)
{
    lws_cancel_service(arg);
}
