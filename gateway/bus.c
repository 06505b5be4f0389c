/*
 * bus — the thread and its two queues; see bus.h for the contract and bus_internal.h for how
 * the bus thread's work is split.
 *
 * Ownership: struct bus's queues are touched under `lock` only; readiness and counters are
 * atomics; everything else is the bus thread's. An event carries its own copies (strings,
 * frames, error text), so nothing of hiredis's crosses the threads.
 */
#include "bus_internal.h"

#include "log.h"
#include "shard.h"

#include <event2/thread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static struct bus_cmd *bus_cmd_alloc(enum bus_cmd_kind kind, const char *key, bool user)
{
    struct bus_cmd *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->kind = kind;
    c->user = user;
    c->ask_server = -1;
    c->server = -1;
    snprintf(c->key, sizeof(c->key), "%s", key ? key : "");
    return c;
}

struct bus_cmd *bus_script(enum bus_script script, const char *key, bool user, int nkeys,
                           int argc, const char *const *argv, bus_done_fn done, void *arg)
{
    struct bus_cmd *c = bus_cmd_alloc(BUS_CMD_SCRIPT, key, user);
    if (!c)
        return NULL;
    c->script = script;
    c->nkeys = nkeys;
    c->done = done;
    c->arg = arg;
    c->argv = calloc((size_t)(argc ? argc : 1), sizeof(*c->argv));
    if (!c->argv) {
        free(c);
        return NULL;
    }
    for (; c->argc < argc; c->argc++) {
        if (!(c->argv[c->argc] = strdup(argv[c->argc]))) {
            bus_cmd_free(c);
            return NULL;
        }
    }
    return c;
}

struct bus_cmd *bus_command(const char *key, bool user, int argc, const char *const *argv,
                            bus_done_fn done, void *arg)
{
    struct bus_cmd *c = bus_script(BUS_SCRIPT_COUNT, key, user, 0, argc, argv, done, arg);
    if (c)
        c->kind = BUS_CMD_RAW;
    return c;
}

struct bus_cmd *bus_eval(const char *text, const char *key, bool user, int nkeys, int argc,
                         const char *const *argv, bus_done_fn done, void *arg)
{
    struct bus_cmd *c = bus_script(BUS_SCRIPT_COUNT, key, user, nkeys, argc, argv, done, arg);
    if (c)
        c->eval_text = text;
    return c;
}

struct bus_cmd *bus_subscribe(const char *name, bool user, bool want)
{
    struct bus_cmd *c = bus_cmd_alloc(BUS_CMD_SUBSCRIBE, name, user);
    if (c)
        c->want = want;
    return c;
}

void bus_cmd_parse(struct bus_cmd *cmd, enum bus_parse parse)
{
    cmd->parse = parse;
}

void bus_cmd_publish_mode(struct bus_cmd *cmd)
{
    cmd->publish = true;
}

struct bus_echo *bus_cmd_echo(struct bus_cmd *cmd)
{
    return &cmd->echo;
}

void bus_cmd_discard(struct bus_cmd *cmd)
{
    bus_cmd_free(cmd);
}

void bus_submit(struct bus *bus, struct bus_cmd *cmd)
{
    if (!bus) {
        /* The bus is gone (shutdown): answer here, on the caller's thread. */
        struct bus_reply r = {.status = BUS_UNAVAILABLE, .echo = cmd->echo};
        if (cmd->done)
            cmd->done(cmd->arg, &r);
        bus_cmd_free(cmd);
        return;
    }
    cmd->next = NULL;
    pthread_mutex_lock(&bus->lock);
    bool was_empty = bus->cmd_head == NULL;
    if (bus->cmd_tail)
        bus->cmd_tail->next = cmd;
    else
        bus->cmd_head = cmd;
    bus->cmd_tail = cmd;
    bool joined = bus->joined;
    pthread_mutex_unlock(&bus->lock);
    /* Wake only on empty → non-empty: the bus drains the whole queue per wake-up. After the
     * thread ended, bus_stop() completes what arrives. */
    if (was_empty && !joined)
        event_active(bus->wake_ev, EV_READ, 0);
}

/* ---- readiness and figures (any thread) ---- */

bool bus_ready_for(const struct bus *bus, const char *key, bool user)
{
    (void)user;
    if (!bus)
        return false;
    if (bus->mode == CONFIG_REDIS_CLUSTER)
        return atomic_load_explicit(&bus->slot_ready[keyslot_of_tag(key)], memory_order_relaxed);
    if (bus->mode == CONFIG_REDIS_SENTINEL || bus->data_count <= 1)
        return atomic_load(&bus->any_ready);
    return bus_server_ready(bus->servers[shard_index(key, (size_t)bus->data_count)]);
}

bool bus_all_ready(const struct bus *bus)
{
    return bus && atomic_load(&bus->all_ready);
}

bool bus_any_ready(const struct bus *bus)
{
    return bus && atomic_load(&bus->any_ready);
}

void bus_stats_get(const struct bus *bus, struct bus_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!bus)
        return;
    out->reconnects = atomic_load(&bus->reconnects);
    out->slot_map_refreshes = atomic_load(&bus->refreshes);
    out->moved = atomic_load(&bus->moved);
    out->ask = atomic_load(&bus->ask);
    out->failovers = atomic_load(&bus->failovers);
    out->wait_timeouts = atomic_load(&bus->wait_timeouts);
}

size_t bus_servers(const struct bus *bus, struct bus_server_state *out, size_t max)
{
    if (!bus)
        return 0;
    struct bus *b = (struct bus *)bus;
    pthread_mutex_lock(&b->lock);
    size_t n = b->snapshot_count < max ? b->snapshot_count : max;
    memcpy(out, b->snapshot, n * sizeof(*out));
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* ---- the thread ---- */

/* A subscription goes to the channel table, everything else is run. */
static void bus_dispatch(struct bus *bus, struct bus_cmd *cmd)
{
    if (cmd->kind == BUS_CMD_SUBSCRIBE) {
        bus_channels_want(bus, cmd->key, cmd->user, cmd->want);
        bus_cmd_free(cmd);
        return;
    }
    bus_exec(bus, cmd);
}

/* Drains the command queue; on stop, completes what is left and leaves the loop. */
static void bus_on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus *bus = arg;
    pthread_mutex_lock(&bus->lock);
    struct bus_cmd *list = bus->cmd_head;
    bus->cmd_head = bus->cmd_tail = NULL;
    bool stopping = bus->stopping;
    pthread_mutex_unlock(&bus->lock);
    if (stopping)
        bus->closing = true;
    while (list) {
        struct bus_cmd *next = list->next;
        if (stopping)
            bus_complete(bus, list, BUS_UNAVAILABLE, NULL);
        else
            bus_dispatch(bus, list);
        list = next;
    }
    if (stopping) {
        for (int i = 0; i < bus->server_count; i++)
            bus_server_drop(bus->servers[i], NULL);
        event_base_loopbreak(bus->base);
    }
}

static void bus_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus *bus = arg;
    bus_servers_watchdog(bus);
    bus_channels_retry(bus); /* channels whose server was not ready before */
    bus_topology_tick(bus);
    struct timeval tv = {1, 0};
    evtimer_add(bus->watchdog_ev, &tv);
}

static void *bus_thread_main(void *arg)
{
    struct bus *bus = arg;
    /* Signals go to the connection thread, whose poll must be the one interrupted. */
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    bus_topology_start(bus);
    struct timeval tv = {1, 0};
    evtimer_add(bus->watchdog_ev, &tv);
    event_base_dispatch(bus->base);
    return NULL;
}

/* libevent must know about pthreads before the first event_base, for event_active() from the
 * connection thread to be safe. */
static void bus_enable_libevent_threads(void)
{
    evthread_use_pthreads();
}

static void bus_free(struct bus *bus)
{
    for (int i = 0; i < bus->server_count; i++) {
        if (bus->servers[i]->reconnect_ev)
            event_free(bus->servers[i]->reconnect_ev);
        free(bus->servers[i]);
    }
    bus_channels_free(bus);
    if (bus->watchdog_ev)
        event_free(bus->watchdog_ev);
    if (bus->refresh_ev)
        event_free(bus->refresh_ev);
    if (bus->retry_ev)
        event_free(bus->retry_ev);
    if (bus->wake_ev)
        event_free(bus->wake_ev);
    if (bus->base)
        event_base_free(bus->base);
    free(bus->map);
    free(bus->slot_ready);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

struct bus *bus_start(const struct gateway_config *cfg, size_t frame_headroom,
                      const char *local_conn_prefix, const struct bus_hooks *hooks,
                      void (*wake)(void *), void *wake_arg)
{
    static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
    pthread_once(&evthread_once, bus_enable_libevent_threads);
    struct bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    pthread_mutex_init(&bus->lock, NULL);
    bus->cfg = cfg;
    bus->mode = cfg->redis_mode;
    redis_names_init(&bus->names, cfg->redis_prefix);
    bus->headroom = frame_headroom;
    snprintf(bus->local_prefix, sizeof(bus->local_prefix), "%s", local_conn_prefix);
    bus->local_prefix_len = strlen(bus->local_prefix);
    bus->hooks = *hooks;
    bus->server_hooks = (struct bus_server_hooks){
        .sub_reply = bus_channels_on_reply,
        .sub_up = bus_channels_server_up,
        .sub_lost = bus_channels_server_lost,
        .ready = bus_topology_server_ready,
        .lost = bus_topology_server_lost,
        .changed = bus_topology_update_ready,
    };
    bus->map_changed = bus_channels_reconcile_all;
    bus->wake = wake;
    bus->wake_arg = wake_arg;
    bus->sentinel_data = -1;
    if (getrandom(&bus->rng, sizeof(bus->rng), 0) != sizeof(bus->rng) || bus->rng == 0)
        bus->rng = (uint64_t)bus_now_ns() | 1;
    bool ok = strmap_init(&bus->channels) == 0;
    if (ok && bus->mode == CONFIG_REDIS_CLUSTER) {
        bus->map = malloc(sizeof(*bus->map));
        bus->slot_ready = calloc(KEYSLOT_COUNT, sizeof(*bus->slot_ready));
        ok = bus->map && bus->slot_ready;
        if (ok)
            slot_map_init(bus->map);
    }
    ok = ok && (bus->base = event_base_new()) != NULL;
    ok = ok && (bus->wake_ev = event_new(bus->base, -1, 0, bus_on_wake, bus)) != NULL;
    ok = ok && (bus->watchdog_ev = evtimer_new(bus->base, bus_on_watchdog, bus)) != NULL;
    if (!ok || pthread_create(&bus->thread, NULL, bus_thread_main, bus) != 0) {
        bus_free(bus);
        return NULL;
    }
    return bus;
}

void bus_stop(struct bus *bus)
{
    if (!bus)
        return;
    pthread_mutex_lock(&bus->lock);
    bus->stopping = true;
    pthread_mutex_unlock(&bus->lock);
    event_active(bus->wake_ev, EV_READ, 0);
    pthread_join(bus->thread, NULL);
    pthread_mutex_lock(&bus->lock);
    bus->joined = true;
    pthread_mutex_unlock(&bus->lock);
    /* The thread is gone: what is left is ours alone. Commands still queued (or submitted by
     * the completions run here) are completed as unavailable, until nothing is left, so no
     * session stays referenced. */
    for (;;) {
        pthread_mutex_lock(&bus->lock);
        struct bus_cmd *c = bus->cmd_head;
        bus->cmd_head = bus->cmd_tail = NULL;
        pthread_mutex_unlock(&bus->lock);
        if (!c && !bus->parked && !bus->ev_head)
            break;
        for (struct bus_cmd *n; c; c = n) {
            n = c->next;
            bus_complete(bus, c, BUS_UNAVAILABLE, NULL);
        }
        for (struct bus_cmd *p = bus->parked, *n; p; p = n) {
            n = p->next;
            bus_complete(bus, p, BUS_UNAVAILABLE, NULL);
        }
        bus->parked = NULL;
        bus_run_events(bus);
    }
    bus_free(bus);
}
