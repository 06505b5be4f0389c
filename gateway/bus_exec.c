/*
 * bus_exec — running one command on the server its key lives on (bus thread).
 *
 * Scripts go as EVALSHA with the SHA this server gave at SCRIPT LOAD; NOSCRIPT (Redis
 * restarted, or a replica just promoted) resends once as EVAL with the text. Redirections:
 * MOVED updates the slot map and retries; ASK sends ASKING then the command to the named
 * server, once; at most BUS_EXEC_ATTEMPTS of these in a row. TRYAGAIN (a slot migration in
 * progress: our scripts always name keys that do not exist, such as the channel, so Redis
 * answers it to every script on a migrating slot, at the source and at the target), and a
 * redirection to a server still connecting, park the command (bus->parked) and send it again
 * every 50 ms, for up to 3 s, then unavailable. CLUSTERDOWN, MASTERDOWN, READONLY (a demoted
 * master), LOADING: unavailable, and the map is read again.
 * A command whose connection is lost completes unavailable (hiredis calls back with NULL).
 *
 * The publish script with --redis-wait N: the script stores the message and returns it
 * unpublished; WAIT N follows on the same connection, then the message is published on the
 * room channel. Members therefore only see a message that N replicas hold (or that WAIT timed
 * out on: counted in wait_timeouts, still acked — it is stored on the master).
 */
#include "bus_internal.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUS_EXEC_ATTEMPTS 5 /* immediate redirections (MOVED, ASK, NOSCRIPT) per try */
#define BUS_RETRY_MS 50
#define BUS_RETRY_FOR_MS 3000

/* ---- running ---- */

static void exec_send(struct bus *bus, struct bus_cmd *cmd);

/* Sends the parked commands again, in the order they were parked. */
static void exec_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus *bus = arg;
    struct bus_cmd *list = bus->parked;
    bus->parked = NULL;
    while (list) {
        struct bus_cmd *next = list->next;
        list->next = NULL;
        exec_send(bus, list);
        list = next;
    }
}

/* Parks cmd to be sent again in BUS_RETRY_MS (a slot being migrated, a server connecting);
 * false when it has been retried for BUS_RETRY_FOR_MS already. Each retry starts with a fresh
 * budget of immediate redirections. */
static bool exec_park(struct bus *bus, struct bus_cmd *cmd)
{
    int64_t now = bus_now_ns();
    if (!cmd->parked_ns)
        cmd->parked_ns = now;
    if (now - cmd->parked_ns > BUS_RETRY_FOR_MS * 1000000ll || bus->closing)
        return false;
    if (!bus->retry_ev && !(bus->retry_ev = evtimer_new(bus->base, exec_on_retry, bus)))
        return false;
    cmd->attempts = 0;
    cmd->ask_server = -1;
    cmd->next = NULL;
    struct bus_cmd **tail = &bus->parked;
    while (*tail)
        tail = &(*tail)->next;
    *tail = cmd;
    struct timeval tv = {0, BUS_RETRY_MS * 1000};
    if (!evtimer_pending(bus->retry_ev, NULL))
        evtimer_add(bus->retry_ev, &tv);
    return true;
}

/* Errors that mean the server's role or the cluster's state changed under us (failover,
 * a replica promoted, a node still loading): the topology is read again. */
static bool exec_error_is_topology(const char *err)
{
    return strncmp(err, "CLUSTERDOWN", 11) == 0 || strncmp(err, "READONLY", 8) == 0 ||
           strncmp(err, "MASTERDOWN", 10) == 0 || strncmp(err, "LOADING", 7) == 0;
}

/* Decides what an error reply means; true when the command was sent again or parked. */
static bool exec_redirect(struct bus *bus, struct bus_cmd *cmd, const char *err)
{
    /* During a slot migration a multi-key script gets TRYAGAIN (keys on both sides) until
     * the slot is settled: wait for it rather than fail the command. */
    if (strncmp(err, "TRYAGAIN", 8) == 0)
        return exec_park(bus, cmd);
    if (++cmd->attempts > BUS_EXEC_ATTEMPTS)
        return false;
    unsigned slot;
    char host[SLOT_MAP_HOST_MAX + 1];
    int port;
    int kind = slot_map_parse_redirect(err, &slot, host, sizeof(host), &port);
    if (kind == 1) {
        atomic_fetch_add(&bus->moved, 1);
        bus_topology_moved(bus, slot, host, port);
        if (!bus_route(bus, cmd->key, cmd->user))
            return exec_park(bus, cmd); /* the new owner is being connected */
        exec_send(bus, cmd);
        return true;
    }
    if (kind == 2) {
        atomic_fetch_add(&bus->ask, 1);
        struct bus_server *to = bus_topology_server_at(bus, host, port);
        if (!bus_server_ready(to))
            return exec_park(bus, cmd);
        cmd->ask_server = to->index;
        exec_send(bus, cmd);
        return true;
    }
    if (strncmp(err, "NOSCRIPT", 8) == 0 && !cmd->with_text) {
        cmd->with_text = true;
        exec_send(bus, cmd);
        return true;
    }
    if (exec_error_is_topology(err))
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
        /* a redirection still unresolved after its retries is unavailability too */
        bool unavailable = exec_error_is_topology(reply->str) ||
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
                      : text         ? bus_script_text(cmd->script)
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
    exec_send(bus, cmd);
}
