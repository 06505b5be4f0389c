/*
 * bus_sconn — a subscriber connection to one Redis server, driven by a libevent bufferevent
 * and parsed with hiredis's reply reader.
 *
 * Why not hiredis's async API here: hiredis 0.14 knows subscribe/message pushes only. The
 * replies of SSUBSCRIBE, `smessage` pushes and Redis Cluster's unsolicited `sunsubscribe`
 * would be matched to the wrong callbacks, or trip an assertion (../shared/notes/redis-ha.md).
 * Reading the socket ourselves and dispatching every reply by its content (bus_channels.c)
 * handles classic and sharded pub/sub alike, and matches replies by channel, not by order.
 * Commands are encoded with hiredis's redisFormatCommandArgv (no RESP written by hand).
 */
#include "bus_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>

struct bus_sconn {
    struct bus_server *s;
    struct bufferevent *bev;
    redisReader *reader;
    bus_sconn_reply_fn on_reply;
    void (*on_up)(struct bus_server *s);
    int depth;   /* > 0 while calling out: a close then only marks `closed` */
    bool closed;
    bool lost;   /* on_reply(NULL) was called */
};

static void sconn_free(struct bus_sconn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c);
}

/* Tells the owner once that the connection is gone. */
static void sconn_lost(struct bus_sconn *c)
{
    if (c->lost || c->closed)
        return;
    c->lost = true;
    c->depth++;
    c->on_reply(c->s, NULL);
    c->depth--;
}

static void sconn_read(struct bufferevent *bev, void *arg)
{
    struct bus_sconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->depth++;
    while (!c->closed && !c->lost && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in);
        unsigned char *data = evbuffer_pullup(in, (ev_ssize_t)(len > 65536 ? 65536 : len));
        size_t take = len > 65536 ? 65536 : len;
        if (redisReaderFeed(c->reader, (const char *)data, take) != REDIS_OK) {
            sconn_lost(c);
            break;
        }
        evbuffer_drain(in, take);
        void *reply = NULL;
        while (!c->closed && !c->lost) {
            if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
                sconn_lost(c);
                break;
            }
            if (!reply)
                break;
            c->on_reply(c->s, reply);
            freeReplyObject(reply);
        }
    }
    c->depth--;
    if (c->closed && c->depth == 0)
        sconn_free(c);
}

static void sconn_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct bus_sconn *c = arg;
    c->depth++;
    if (what & BEV_EVENT_CONNECTED) {
        c->on_up(c->s);
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        sconn_lost(c);
    }
    c->depth--;
    if (c->closed && c->depth == 0)
        sconn_free(c);
}

struct bus_sconn *bus_sconn_open(struct bus_server *s, bus_sconn_reply_fn on_reply,
                                 void (*on_up)(struct bus_server *s))
{
    struct bus_sconn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->s = s;
    c->on_reply = on_reply;
    c->on_up = on_up;
    c->reader = redisReaderCreate();
    c->bev = bufferevent_socket_new(s->bus->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->reader || !c->bev) {
        sconn_free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, sconn_read, NULL, sconn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* A NULL DNS base resolves the name synchronously: hosts are addresses in practice. A
     * failure reported from inside this call closes the connection before it is returned. */
    c->depth++;
    int rc = bufferevent_socket_connect_hostname(c->bev, NULL, AF_UNSPEC, s->host, s->port);
    c->depth--;
    if (rc != 0 || c->closed || c->lost) {
        sconn_free(c);
        return NULL;
    }
    return c;
}

int bus_sconn_command(struct bus_sconn *c, int argc, const char **argv, const size_t *lens)
{
    if (!c || c->closed || c->lost)
        return -1;
    char *out = NULL;
    int n = redisFormatCommandArgv(&out, argc, argv, lens);
    if (n < 0)
        return -1;
    int rc = bufferevent_write(c->bev, out, (size_t)n);
    free(out);
    return rc;
}

void bus_sconn_close(struct bus_sconn *c)
{
    if (!c)
        return;
    c->closed = true;
    if (c->depth == 0)
        sconn_free(c);
}
