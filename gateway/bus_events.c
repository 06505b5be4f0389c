/*
 * bus_events — what the bus thread hands to the connection thread: completions (a command's
 * reply, copied out of hiredis: strings, frames or the whole value), pushes (messages,
 * subscriptions made or lost) and "a server is ready"; and the connection thread's side that
 * runs them, in order. The lowest layer of the bus: every other bus file calls it, it calls
 * none of them. Also the server-state snapshot /metrics reads (under the queue lock).
 */
#include "bus_internal.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void bus_publish_snapshot(struct bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    bus->snapshot_count = 0;
    for (int i = 0; i < bus->server_count; i++) {
        struct bus_server *s = bus->servers[i];
        if (!s->wanted && !atomic_load(&s->ready))
            continue;
        struct bus_server_state *st = &bus->snapshot[bus->snapshot_count++];
        snprintf(st->addr, sizeof(st->addr), "%s:%d", s->host, s->port);
        st->role = s->role == BUS_ROLE_SENTINEL ? "sentinel" : s->is_replica ? "replica" : "master";
        st->up = s->role == BUS_ROLE_SENTINEL ? s->cmd_up : atomic_load(&s->ready);
    }
    pthread_mutex_unlock(&bus->lock);
}

