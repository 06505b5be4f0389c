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

enum bus_event_kind { BUS_EV_REPLY, BUS_EV_PUSH, BUS_EV_READY };

struct bus_event {
    struct bus_event *next;
    enum bus_event_kind kind;
    bus_done_fn done;
    void *arg;
    struct bus_reply reply;
    char *error;
    struct bus_push push;
};

int64_t bus_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- commands (any thread) ---- */

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

void bus_cmd_free(struct bus_cmd *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->echo.text);
    free(c->payload);
    free(c);
}

void bus_cmd_discard(struct bus_cmd *cmd)
{
    bus_cmd_free(cmd);
}

static void bus_value_free(struct bus_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->elements; i++)
        bus_value_free(v->element[i]);
    free(v->element);
    free(v->str);
    free(v);
}

static void bus_event_free(struct bus_event *ev)
{
    for (size_t i = 0; i < ev->reply.nstrings; i++)
        free(ev->reply.strings[i]);
    free(ev->reply.strings);
    for (size_t i = 0; i < ev->reply.nframes; i++)
        frame_unref(ev->reply.frames[i]);
    free(ev->reply.frames);
    free(ev->reply.echo.text);
    bus_value_free((struct bus_value *)ev->reply.value);
    free(ev->error);
    frame_unref(ev->push.frame);
    free(ev);
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

/* ---- events (bus thread → connection thread) ---- */

static void bus_emit(struct bus *bus, struct bus_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&bus->lock);
    bool was_empty = bus->ev_head == NULL;
    if (bus->ev_tail)
        bus->ev_tail->next = ev;
    else
        bus->ev_head = ev;
    bus->ev_tail = ev;
    pthread_mutex_unlock(&bus->lock);
    if (was_empty)
        bus->wake(bus->wake_arg);
}

/* A frame of a stored or published message: payload copy with headroom, its offset, and the
 * sender's serial when the sender is one of this node's connections (0 otherwise). */
struct frame *bus_message_frame(struct bus *bus, uint64_t offset, const char *sender,
                                size_t sender_len, const char *json, size_t len)
{
    struct frame *f = frame_new(bus->headroom, json, len);
    if (!f)
        return NULL;
    f->offset = offset;
    if (sender_len > bus->local_prefix_len &&
        memcmp(sender, bus->local_prefix, bus->local_prefix_len) == 0)
        f->sender_serial = strtoull(sender + bus->local_prefix_len, NULL, 10);
    return f;
}

static char *bus_reply_text(const redisReply *r)
{
    char num[24];
    if (r->type == REDIS_REPLY_INTEGER) {
        snprintf(num, sizeof(num), "%lld", r->integer);
        return strdup(num);
    }
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        return strndup(r->str, r->len);
    return strdup("");
}

/* Array of strings/integers → reply.strings; 0 or -1 (allocation). */
static int bus_parse_strings(struct bus_reply *out, const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        out->integer = r->integer;
    if (r->type != REDIS_REPLY_ARRAY) {
        if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
            return 0;
        out->strings = calloc(1, sizeof(*out->strings));
        if (!out->strings || !(out->strings[0] = bus_reply_text(r)))
            return -1;
        out->nstrings = 1;
        return 0;
    }
    if (!r->elements)
        return 0;
    out->strings = calloc(r->elements, sizeof(*out->strings));
    if (!out->strings)
        return -1;
    for (; out->nstrings < r->elements; out->nstrings++)
        if (!(out->strings[out->nstrings] = bus_reply_text(r->element[out->nstrings])))
            return -1;
    return 0;
}

/* [more, epoch, last, id, msg, sender, id, msg, sender, ...] → integer = more,
 * strings = {epoch, last}, frames. */
static int bus_parse_frames(struct bus *bus, struct bus_reply *out, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return -1;
    out->integer = r->element[0]->integer;
    out->strings = calloc(2, sizeof(*out->strings));
    if (!out->strings || !(out->strings[0] = bus_reply_text(r->element[1])) ||
        !(out->strings[1] = bus_reply_text(r->element[2])))
        return -1;
    out->nstrings = 2;
    size_t n = (r->elements - 3) / 3;
    if (!n)
        return 0;
    out->frames = calloc(n, sizeof(*out->frames));
    if (!out->frames)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = r->element[3 + 3 * i], *m = r->element[4 + 3 * i],
                         *snd = r->element[5 + 3 * i];
        if (id->type != REDIS_REPLY_STRING || m->type != REDIS_REPLY_STRING)
            continue;
        bool has_snd = snd->type == REDIS_REPLY_STRING;
        struct frame *f = bus_message_frame(bus, strtoull(id->str, NULL, 10),
                                            has_snd ? snd->str : "", has_snd ? snd->len : 0,
                                            m->str, m->len);
        if (!f)
            return -1;
        out->frames[out->nframes++] = f;
    }
    return 0;
}

/* A deep copy of a hiredis reply; NULL on allocation failure. */
static struct bus_value *bus_value_copy(const redisReply *r)
{
    struct bus_value *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        v->type = BUS_VALUE_STRING;
        v->len = r->len;
        if (!(v->str = malloc(r->len + 1)))
            goto fail;
        memcpy(v->str, r->str, r->len);
        v->str[r->len] = '\0';
        return v;
    case REDIS_REPLY_INTEGER:
        v->type = BUS_VALUE_INTEGER;
        v->integer = r->integer;
        return v;
    case REDIS_REPLY_ARRAY:
        v->type = BUS_VALUE_ARRAY;
        if (r->elements && !(v->element = calloc(r->elements, sizeof(*v->element))))
            goto fail;
        for (; v->elements < r->elements; v->elements++)
            if (!(v->element[v->elements] = bus_value_copy(r->element[v->elements])))
                goto fail;
        return v;
    default:
        return v; /* nil */
    }
fail:
    bus_value_free(v);
    return NULL;
}

void bus_complete(struct bus *bus, struct bus_cmd *cmd, enum bus_status st, redisReply *reply)
{
    if (!cmd->done) {
        bus_cmd_free(cmd);
        return;
    }
    struct bus_event *ev = calloc(1, sizeof(*ev));
    if (!ev) {
        log_event(CONFIG_LOG_ERROR, "out_of_memory", "where", "bus_complete", NULL);
        bus_cmd_free(cmd); /* the caller's request is lost: nothing else can be done */
        return;
    }
    ev->kind = BUS_EV_REPLY;
    ev->done = cmd->done;
    ev->arg = cmd->arg;
    ev->reply.echo = cmd->echo;
    cmd->echo.text = NULL;
    if (st == BUS_OK && reply && reply->type == REDIS_REPLY_ERROR)
        st = BUS_ERROR;
    if (st == BUS_ERROR) {
        ev->error = strdup(reply && reply->str ? reply->str : "error");
        ev->reply.error = ev->error ? ev->error : "error";
    }
    if (st == BUS_OK && reply) {
        int rc;
        if (cmd->parse == BUS_PARSE_VALUE)
            rc = (ev->reply.value = bus_value_copy(reply)) ? 0 : -1;
        else if (cmd->parse == BUS_PARSE_FRAMES)
            rc = bus_parse_frames(bus, &ev->reply, reply);
        else
            rc = bus_parse_strings(&ev->reply, reply);
        if (rc != 0) {
            st = BUS_ERROR;
            ev->reply.error = "reply not understood";
        }
    }
    ev->reply.status = st;
    bus_cmd_free(cmd);
    bus_emit(bus, ev);
}

void bus_complete_pair(struct bus *bus, struct bus_cmd *cmd, const char *a, const char *b)
{
    redisReply e0 = {.type = REDIS_REPLY_STRING, .str = (char *)a, .len = strlen(a)};
    redisReply e1 = {.type = REDIS_REPLY_STRING, .str = (char *)b, .len = strlen(b)};
    redisReply *elements[] = {&e0, &e1};
    redisReply pair = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = elements};
    bus_complete(bus, cmd, BUS_OK, &pair);
}

void bus_push(struct bus *bus, struct bus_push *p)
{
    struct bus_event *ev = calloc(1, sizeof(*ev));
    if (!ev) {
        frame_unref(p->frame);
        return;
    }
    ev->kind = BUS_EV_PUSH;
    ev->push = *p;
    bus_emit(bus, ev);
}

void bus_emit_ready(struct bus *bus)
{
    struct bus_event *ev = calloc(1, sizeof(*ev));
    if (ev) {
        ev->kind = BUS_EV_READY;
        bus_emit(bus, ev);
    }
}

static void bus_run_list(struct bus *bus, struct bus_event *ev)
{
    while (ev) {
        struct bus_event *next = ev->next;
        if (ev->kind == BUS_EV_REPLY)
            ev->done(ev->arg, &ev->reply);
        else if (ev->kind == BUS_EV_READY)
            bus->hooks.ready(bus->hooks.arg);
        else if (ev->push.user)
            bus->hooks.user(bus->hooks.arg, &ev->push);
        else
            bus->hooks.room(bus->hooks.arg, &ev->push);
        bus_event_free(ev);
        ev = next;
    }
}

void bus_run_events(struct bus *bus)
{
    if (!bus)
        return;
    pthread_mutex_lock(&bus->lock);
    struct bus_event *list = bus->ev_head;
    bus->ev_head = bus->ev_tail = NULL;
    pthread_mutex_unlock(&bus->lock);
    bus_run_list(bus, list);
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

void bus_publish_snapshot(struct bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    bus->snapshot_count = 0;
    for (int i = 0; i < bus->server_count; i++) {
        struct bus_server *s = bus->servers[i];
        if (!s->wanted && !bus_server_ready(s))
            continue;
        struct bus_server_state *st = &bus->snapshot[bus->snapshot_count++];
        snprintf(st->addr, sizeof(st->addr), "%s:%d", s->host, s->port);
        st->role = s->role == BUS_ROLE_SENTINEL ? "sentinel" : s->is_replica ? "replica" : "master";
        st->up = s->role == BUS_ROLE_SENTINEL ? s->cmd_up : bus_server_ready(s);
    }
    pthread_mutex_unlock(&bus->lock);
}

/* ---- the thread ---- */

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
            bus_exec(bus, list);
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
