/*
 * bus_exec — running one command on the server its key lives on (bus thread).
 *
 * Scripts go as EVALSHA with the SHA this server gave at SCRIPT LOAD; NOSCRIPT (Redis
 * restarted, or a replica just promoted) resends once as EVAL with the text. Redirections:
 * MOVED updates the slot map and retries; ASK sends ASKING then the command to the named
 * server, once; TRYAGAIN retries after 50 ms. At most BUS_EXEC_ATTEMPTS in all. CLUSTERDOWN,
 * MASTERDOWN, READONLY (a demoted master), LOADING: unavailable, and the map is read again.
 * A command whose connection is lost completes unavailable (hiredis calls back with NULL).
 *
 * The publish script with --redis-wait N: the script stores the message and returns it
 * unpublished; WAIT N follows on the same connection, then the message is published on the
 * room channel. Members therefore only see a message that N replicas hold (or that WAIT timed
 * out on: counted in wait_timeouts, still acked — it is stored on the master).
 */
#include "bus_internal.h"

#include "log.h"
#include "redis_scripts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUS_EXEC_ATTEMPTS 5
#define BUS_TRYAGAIN_MS 50

static const char *const script_text[BUS_SCRIPT_COUNT] = {
    [BUS_SCRIPT_PUBLISH] = REDIS_SCRIPT_PUBLISH,
    [BUS_SCRIPT_SYNC] = REDIS_SCRIPT_SYNC,
    [BUS_SCRIPT_ROTATE] = REDIS_SCRIPT_ROTATE,
    [BUS_SCRIPT_FETCH] = REDIS_SCRIPT_FETCH,
    [BUS_SCRIPT_HISTORY] = REDIS_SCRIPT_HISTORY,
    [BUS_SCRIPT_PRESENCE_JOIN] = REDIS_SCRIPT_PRESENCE_JOIN,
    [BUS_SCRIPT_PRESENCE_LEAVE] = REDIS_SCRIPT_PRESENCE_LEAVE,
    [BUS_SCRIPT_PRESENCE_LIST] = REDIS_SCRIPT_PRESENCE_LIST,
    [BUS_SCRIPT_NODE_REFRESH] = REDIS_SCRIPT_NODE_REFRESH,
    [BUS_SCRIPT_NODE_DEAD] = REDIS_SCRIPT_NODE_DEAD,
    [BUS_SCRIPT_ROOM_FORGET_NODE] = REDIS_SCRIPT_ROOM_FORGET_NODE,
    [BUS_SCRIPT_SEND] = REDIS_SCRIPT_SEND,
    [BUS_SCRIPT_ONLINE] = REDIS_SCRIPT_ONLINE,
    [BUS_SCRIPT_READ] = REDIS_SCRIPT_READ,
    [BUS_SCRIPT_READS] = REDIS_SCRIPT_READS,
};

const char *bus_script_text(enum bus_script script)
{
    return script_text[script];
}

/* ---- loading scripts on a fresh connection ---- */

static void exec_on_loaded(redisAsyncContext *ac, void *r, void *privdata)
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

void bus_exec_load_scripts(struct bus_server *s)
{
    s->shas_loaded = 0;
    for (int i = 0; i < BUS_SCRIPT_COUNT; i++) {
        s->sha[i][0] = '\0';
        redisAsyncCommand(s->cmd, exec_on_loaded, s->sha[i], "SCRIPT LOAD %s", script_text[i]);
    }
}

/* ---- running ---- */

static void exec_send(struct bus *bus, struct bus_cmd *cmd);

static void exec_retry_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus_cmd *cmd = arg;
    exec_send(cmd->bus, cmd);
}

/* Decides what an error reply means; true when the command was sent again. */
static bool exec_redirect(struct bus *bus, struct bus_cmd *cmd, const char *err)
{
    if (++cmd->attempts > BUS_EXEC_ATTEMPTS)
        return false;
    unsigned slot;
    char host[SLOT_MAP_HOST_MAX + 1];
    int port;
    int kind = slot_map_parse_redirect(err, &slot, host, sizeof(host), &port);
    if (kind == 1) {
        atomic_fetch_add(&bus->moved, 1);
        bus_topology_moved(bus, slot, host, port);
        exec_send(bus, cmd);
        return true;
    }
    if (kind == 2) {
        atomic_fetch_add(&bus->ask, 1);
        struct bus_server *to = bus_topology_server_at(bus, host, port);
        if (!bus_server_ready(to))
            return false;
        cmd->ask_server = to->index;
        exec_send(bus, cmd);
        return true;
    }
    if (strncmp(err, "NOSCRIPT", 8) == 0 && !cmd->with_text) {
        cmd->with_text = true;
        exec_send(bus, cmd);
        return true;
    }
    if (strncmp(err, "TRYAGAIN", 8) == 0) {
        struct timeval tv = {0, BUS_TRYAGAIN_MS * 1000};
        cmd->bus = bus;
        if (event_base_once(bus->base, -1, EV_TIMEOUT, exec_retry_later, cmd, &tv) == 0)
            return true;
        return false;
    }
    if (strncmp(err, "CLUSTERDOWN", 11) == 0 || strncmp(err, "READONLY", 8) == 0 ||
        strncmp(err, "MASTERDOWN", 10) == 0 || strncmp(err, "LOADING", 7) == 0)
        bus_topology_refresh(bus, "error");
    return false;
}

static void exec_on_wait(redisAsyncContext *ac, void *r, void *privdata);

static void exec_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus_server *s = ac->data;
    struct bus *bus = s->bus;
    struct bus_cmd *cmd = privdata;
    redisReply *reply = r;
    if (!reply) {
        bus_complete(bus, cmd, BUS_UNAVAILABLE, NULL);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!bus->closing && exec_redirect(bus, cmd, reply->str))
            return;
        bool unavailable = strncmp(reply->str, "CLUSTERDOWN", 11) == 0 ||
                           strncmp(reply->str, "READONLY", 8) == 0 ||
                           strncmp(reply->str, "MASTERDOWN", 10) == 0 ||
                           strncmp(reply->str, "LOADING", 7) == 0 ||
                           strncmp(reply->str, "MOVED", 5) == 0 ||
                           strncmp(reply->str, "ASK", 3) == 0 ||
                           strncmp(reply->str, "TRYAGAIN", 8) == 0;
        log_event(CONFIG_LOG_WARN, "redis_command_failed", "key", cmd->key, "error", reply->str,
                  NULL);
        bus_complete(bus, cmd, unavailable ? BUS_UNAVAILABLE : BUS_ERROR, reply);
        return;
    }
    if (cmd->publish && bus->cfg->redis_wait > 0 && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 3 && reply->element[2]->type == REDIS_REPLY_STRING) {
        /* Stored, not yet published: WAIT for the replicas first (see the file comment). */
        const redisReply *epoch = reply->element[1];
        cmd->payload = malloc(reply->element[2]->len);
        if (cmd->payload && reply->element[0]->type == REDIS_REPLY_INTEGER &&
            epoch->type == REDIS_REPLY_STRING && epoch->len <= PROTO_EPOCH_MAX) {
            memcpy(cmd->payload, reply->element[2]->str, reply->element[2]->len);
            cmd->payload_len = reply->element[2]->len;
            cmd->wait_offset = (uint64_t)reply->element[0]->integer;
            memcpy(cmd->wait_epoch, epoch->str, epoch->len);
            cmd->wait_epoch[epoch->len] = '\0';
            if (redisAsyncCommand(ac, exec_on_wait, cmd, "WAIT %d %d", bus->cfg->redis_wait,
                                  bus->cfg->redis_wait_timeout_ms) == REDIS_OK)
                return;
        }
        bus_complete(bus, cmd, BUS_ERROR, NULL);
        return;
    }
    bus_complete(bus, cmd, BUS_OK, reply);
}

/* WAIT answered: publish the stored message, then complete as the script would have
 * ({offset, epoch}). */
static void exec_on_wait(redisAsyncContext *ac, void *r, void *privdata)
{
    struct bus_server *s = ac->data;
    struct bus *bus = s->bus;
    struct bus_cmd *cmd = privdata;
    redisReply *reply = r;
    if (!reply) {
        bus_complete(bus, cmd, BUS_UNAVAILABLE, NULL);
        return;
    }
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer < bus->cfg->redis_wait) {
        atomic_fetch_add(&bus->wait_timeouts, 1);
        log_event(CONFIG_LOG_WARN, "redis_wait_short", "key", cmd->key, NULL);
    }
    char ch[BUS_CHANNEL_MAX];
    redis_room_channel(&bus->names, cmd->key, ch);
    const char *verb = bus_topology_sharded(bus) ? "SPUBLISH" : "PUBLISH";
    const char *argv[] = {verb, ch, cmd->payload};
    size_t lens[] = {strlen(verb), strlen(ch), cmd->payload_len};
    redisAsyncCommandArgv(ac, NULL, NULL, 3, argv, lens);
    char offset[24];
    snprintf(offset, sizeof(offset), "%llu", (unsigned long long)cmd->wait_offset);
    bus_complete_pair(bus, cmd, offset, cmd->wait_epoch);
}

static void exec_send(struct bus *bus, struct bus_cmd *cmd)
{
    struct bus_server *s = cmd->ask_server >= 0 ? bus->servers[cmd->ask_server]
                                                : bus_route(bus, cmd->key, cmd->user);
    if (!s || !s->cmd || !bus_server_ready(s)) {
        bus_complete(bus, cmd, BUS_UNAVAILABLE, NULL);
        return;
    }
    /* A raw command goes as it is; a script as EVALSHA (EVAL with its text when the SHA is
     * unknown, after NOSCRIPT, or for bus_eval's own scripts). */
    int pre = cmd->kind == BUS_CMD_RAW ? 0 : 3;
    int n = cmd->argc + pre;
    const char **argv = calloc((size_t)n, sizeof(*argv));
    size_t *lens = calloc((size_t)n, sizeof(*lens));
    char nkeys[16];
    snprintf(nkeys, sizeof(nkeys), "%d", cmd->nkeys);
    bool text = pre && (cmd->eval_text || cmd->with_text || !s->sha[cmd->script][0]);
    int rc = REDIS_ERR;
    if (argv && lens && n > 0) {
        if (pre) {
            argv[0] = text ? "EVAL" : "EVALSHA";
            argv[1] = cmd->eval_text ? cmd->eval_text
                      : text         ? script_text[cmd->script]
                                     : s->sha[cmd->script];
            argv[2] = nkeys;
        }
        for (int i = 0; i < cmd->argc; i++)
            argv[i + pre] = cmd->argv[i];
        for (int i = 0; i < n; i++)
            lens[i] = strlen(argv[i]);
        if (cmd->ask_server >= 0) {
            redisAsyncCommand(s->cmd, NULL, NULL, "ASKING");
            cmd->ask_server = -1; /* once */
        }
        cmd->server = s->index;
        rc = redisAsyncCommandArgv(s->cmd, exec_on_reply, cmd, n, argv, lens);
    }
    free(argv);
    free(lens);
    if (rc != REDIS_OK)
        bus_complete(bus, cmd, BUS_UNAVAILABLE, NULL);
}

void bus_exec(struct bus *bus, struct bus_cmd *cmd)
{
    if (cmd->kind == BUS_CMD_SUBSCRIBE) {
        bus_channels_want(bus, cmd->key, cmd->user, cmd->want);
        bus_cmd_free(cmd);
        return;
    }
    exec_send(bus, cmd);
}
