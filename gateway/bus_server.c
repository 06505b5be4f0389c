/*
 * bus_server — one Redis server and its two connections, on the bus thread.
 *
 * The command connection is hiredis async (request/response, pipelined). The subscriber
 * connection is bus_sconn.c. A data server is ready when both are up and every script is
 * loaded (and, behind Sentinel, when ROLE confirmed it is a master). hiredis 0.14 has no
 * reconnect: a failed connect calls the connect callback with an error and frees the context,
 * a lost one calls the disconnect callback; either way we drop the pointer and arm one
 * reconnect timer with capped exponential backoff (100 ms → 2 s). No command timeout either:
 * the watchdog PINGs every second, and a server that has not answered for 3 s is dropped.
 */
#include "bus_internal.h"

#include "log.h"

#include <hiredis/adapters/libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUS_BACKOFF_MIN_MS 100
#define BUS_BACKOFF_MAX_MS 2000
#define BUS_WATCHDOG_LIMIT_MS 3000

static void server_addr(const struct bus_server *s, char *out, size_t len)
{
    snprintf(out, len, "%s:%d", s->host, s->port);
}

bool bus_server_ready(const struct bus_server *s)
{
    return s && atomic_load(&s->ready);
}

void bus_server_connect_later(struct bus_server *s)
{
    if (s->bus->closing || !s->wanted || evtimer_pending(s->reconnect_ev, NULL))
        return;
    struct timeval tv = {s->backoff_ms / 1000, (s->backoff_ms % 1000) * 1000};
    evtimer_add(s->reconnect_ev, &tv);
    s->backoff_ms = s->backoff_ms * 2 > BUS_BACKOFF_MAX_MS ? BUS_BACKOFF_MAX_MS : s->backoff_ms * 2;
}

void bus_server_update_ready(struct bus_server *s)
{
    bool now;
    if (s->role == BUS_ROLE_SENTINEL)
        now = s->cmd_up;
    else
        now = s->cmd_up && s->sub_up && s->shas_loaded == BUS_SCRIPT_COUNT &&
              (s->bus->mode != CONFIG_REDIS_SENTINEL || s->role_checked);
    bool before = atomic_exchange(&s->ready, now);
    if (now == before)
        return;
    char addr[300];
    server_addr(s, addr, sizeof(addr));
    if (now) {
        s->backoff_ms = BUS_BACKOFF_MIN_MS;
        s->ever_ready = true;
        log_event(CONFIG_LOG_INFO, "redis_ready", "server", addr,
                  s->role == BUS_ROLE_SENTINEL ? "role" : NULL, "sentinel", NULL);
        s->bus->server_hooks.ready(s);
        if (s->role == BUS_ROLE_DATA && s->bus->mode != CONFIG_REDIS_CLUSTER)
            bus_emit_ready(s->bus); /* cluster: per slot (bus_topology_update_ready) */
    } else {
        s->bus->server_hooks.changed(s->bus);
    }
    bus_publish_snapshot(s->bus);
}

/* ---- subscriber connection ---- */

static void server_on_sub_up(struct bus_server *s)
{
    s->sub_up = true;
    s->bus->server_hooks.sub_up(s);
    bus_server_update_ready(s);
}

static void server_on_sub_reply(struct bus_server *s, redisReply *reply)
{
    if (reply) {
        s->bus->server_hooks.sub_reply(s, reply);
        return;
    }
    char addr[300];
    server_addr(s, addr, sizeof(addr));
    if (!s->bus->closing)
        log_event(CONFIG_LOG_WARN, "redis_disconnected", "server", addr, "conn", "sub", NULL);
    bus_sconn_close(s->sub);
    s->sub = NULL;
    s->sub_up = false;
    s->bus->server_hooks.sub_lost(s);
    bus_server_update_ready(s);
    s->bus->server_hooks.lost(s);
    bus_server_connect_later(s);
}

/* ---- scripts, loaded on every new command connection ---- */

static void server_on_script_loaded(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus_server *s = ac->data;
    redisReply *reply = r;
    char *dst = privdata;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(dst, reply->str, 40);
        dst[40] = '\0';
        if (++s->shas_loaded == BUS_SCRIPT_COUNT)
            bus_server_update_ready(s);
        return;
    }
    if (!reply)
        return;
    log_event(CONFIG_LOG_WARN, "redis_script_load_failed", "server", s->host, "error",
              reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply", NULL);
    /* E.g. LOADING right after a restart: drop and let the backoff try again, rather than
     * stay connected and never ready. */
    if (s->cmd == ac && !s->bus->closing && s->shas_loaded >= 0) {
        s->shas_loaded = -BUS_SCRIPT_COUNT; /* one drop for the whole batch */
        bus_server_drop(s, "script load failed");
    }
}

void bus_server_load_scripts(struct bus_server *s)
{
    s->shas_loaded = 0;
    for (int i = 0; i < BUS_SCRIPT_COUNT; i++) {
        s->sha[i][0] = '\0';
        redisAsyncCommand(s->cmd, server_on_script_loaded, s->sha[i], "SCRIPT LOAD %s", bus_script_text((enum bus_script)i));
    }
}

/* ---- command connection ---- */

static void server_on_role(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct bus_server *s = ac->data;
    redisReply *reply = r;
    bool master = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                  reply->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(reply->element[0]->str, "master") == 0;
    if (!reply)
        return;
    if (!master) {
        /* A Sentinel named a node that is not (or no longer) a master: ask again. */
        char addr[300];
        server_addr(s, addr, sizeof(addr));
        log_event(CONFIG_LOG_WARN, "redis_not_master", "server", addr, NULL);
        bus_server_drop(s, "not a master");
        return;
    }
    s->role_checked = true;
    bus_server_load_scripts(s);
}

static void server_on_cmd_connect(const redisAsyncContext *ac, int status)
{
    struct bus_server *s = ac->data;
    char addr[300];
    server_addr(s, addr, sizeof(addr));
    if (status != REDIS_OK) {
        log_event(CONFIG_LOG_WARN, "redis_connect_failed", "server", addr, "conn", "cmd", "error",
                  ac->errstr, NULL);
        s->cmd = NULL; /* hiredis frees it */
        s->bus->server_hooks.lost(s);
        bus_server_connect_later(s);
        return;
    }
    s->cmd_up = true;
    if (s->role == BUS_ROLE_SENTINEL) {
        bus_server_update_ready(s);
        return;
    }
    if (s->db)
        redisAsyncCommand(s->cmd, NULL, NULL, "SELECT %d", s->db);
    if (s->bus->mode == CONFIG_REDIS_SENTINEL)
        redisAsyncCommand(s->cmd, server_on_role, NULL, "ROLE");
    else
        bus_server_load_scripts(s);
}

/* The command connection is gone (hiredis freed it or is freeing it). */
static void server_cmd_gone(struct bus_server *s)
{
    s->cmd = NULL;
    s->cmd_up = false;
    s->ping_sent_ns = 0;
    s->shas_loaded = 0;
    s->role_checked = false;
    bus_server_update_ready(s);
    s->bus->server_hooks.lost(s);
    bus_server_connect_later(s);
}

static void server_on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
    struct bus_server *s = ac->data;
    char addr[300];
    server_addr(s, addr, sizeof(addr));
    if (status != REDIS_OK && !s->bus->closing)
        log_event(CONFIG_LOG_WARN, "redis_disconnected", "server", addr, "conn", "cmd", "error",
                  ac->errstr, NULL);
    server_cmd_gone(s);
}

void bus_server_connect(struct bus_server *s)
{
    struct bus *bus = s->bus;
    if (bus->closing || !s->wanted)
        return;
    if (!s->cmd) {
        redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
        if (ac && !ac->err) {
            ac->data = s;
            redisLibeventAttach(ac, bus->base);
            redisAsyncSetConnectCallback(ac, server_on_cmd_connect);
            redisAsyncSetDisconnectCallback(ac, server_on_cmd_disconnect);
            s->cmd = ac;
        } else if (ac) {
            redisAsyncFree(ac);
        }
    }
    if (!s->sub && s->role == BUS_ROLE_DATA)
        s->sub = bus_sconn_open(s, server_on_sub_reply, server_on_sub_up);
    if (!s->cmd || (!s->sub && s->role == BUS_ROLE_DATA))
        bus_server_connect_later(s);
}

static void server_on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus_server *s = arg;
    if (s->ever_ready)
        atomic_fetch_add(&s->bus->reconnects, 1);
    bus_server_connect(s);
}

struct bus_server *bus_server_add(struct bus *bus, const char *host, int port, int db,
                                  enum bus_role role)
{
    if (bus->server_count == BUS_SERVERS_MAX)
        return NULL;
    struct bus_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->bus = bus;
    s->index = bus->server_count;
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = port;
    s->db = db;
    s->role = role;
    s->wanted = true;
    s->backoff_ms = BUS_BACKOFF_MIN_MS;
    s->reconnect_ev = evtimer_new(bus->base, server_on_reconnect_timer, s);
    if (!s->reconnect_ev) {
        free(s);
        return NULL;
    }
    bus->servers[bus->server_count++] = s;
    return s;
}

/* Closes both connections; their loss is handled as any other (commands in flight complete
 * unavailable, channels are lost); a wanted server reconnects after its backoff. */
void bus_server_drop(struct bus_server *s, const char *why)
{
    if (why) {
        char addr[300];
        server_addr(s, addr, sizeof(addr));
        log_event(CONFIG_LOG_WARN, "redis_dropped", "server", addr, "reason", why, NULL);
    }
    if (s->cmd) {
        redisAsyncContext *ac = s->cmd;
        redisAsyncFree(ac); /* completes its pending commands; calls the disconnect callback
                               only when it was connected */
        if (s->cmd == ac)
            server_cmd_gone(s);
    }
    if (s->sub)
        server_on_sub_reply(s, NULL);
    if (s->bus->closing || !s->wanted)
        evtimer_del(s->reconnect_ev);
}

static void server_on_pong(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)r;
    (void)privdata;
    struct bus_server *s = ac->data;
    s->ping_sent_ns = 0;
}

void bus_servers_watchdog(struct bus *bus)
{
    int64_t now = bus_now_ns();
    for (int i = 0; i < bus->server_count; i++) {
        struct bus_server *s = bus->servers[i];
        if (!s->cmd || !s->cmd_up) {
            s->ping_sent_ns = 0;
            continue;
        }
        if (s->ping_sent_ns && now - s->ping_sent_ns > BUS_WATCHDOG_LIMIT_MS * 1000000ll) {
            s->ping_sent_ns = 0;
            bus_server_drop(s, "unresponsive");
        } else if (!s->ping_sent_ns &&
                   redisAsyncCommand(s->cmd, server_on_pong, NULL, "PING") == REDIS_OK) {
            s->ping_sent_ns = now;
        }
    }
}
