/*
 * webhook_internal — what the webhook files share (connection thread only):
 *   webhooks.c          start/stop, the timer, hooks from other modules, key names
 *   webhook_events.c    producing events: user transitions, dead nodes, undelivered directs
 *   webhook_delivery.c  the partitions: lease, read, POST one at a time, ack, backoff
 *   webhook_http.c      one signed POST on the lws client (http and https)
 */
#ifndef GATEWAY_WEBHOOK_INTERNAL_H
#define GATEWAY_WEBHOOK_INTERNAL_H

#include "webhooks.h"

#include "clock.h"
#include "store.h"

#include <libwebsockets.h>

#define WEBHOOK_TICK_MS 250
/* A lease outlives its holder by at most this; the presence reaper frees it sooner. */
#define WEBHOOK_LEASE_MS 10000
/* Entries read per partition at once (delivered one by one). */
#define WEBHOOK_BATCH 32
#define WEBHOOK_BACKOFF_FIRST_MS 500
#define WEBHOOK_BACKOFF_MAX_MS 30000

struct webhook_entry {
    char id[64]; /* "<partition>-<stream id>": unique, stable across re-deliveries */
    char stream_id[48];
    int64_t id_ms; /* Redis time the event was appended */
    char *event;   /* the stored JSON (without id) */
};

struct webhook_post;

struct webhook_partition {
    struct webhooks *wh;
    unsigned index;
    char tag[16]; /* "@wh:<index>": routing key, hash tag, channel name */
    char stream[REDIS_NAME_MAX], lease[REDIS_NAME_MAX], channel[REDIS_NAME_MAX];
    bool owned;             /* this node holds the lease */
    bool lease_busy;        /* a lease command is in flight */
    bool reading;           /* a read is in flight */
    bool dirty;             /* read again when idle (new events may be there) */
    bool waiting;           /* backing off before the next attempt */
    int64_t lease_until_ms; /* monotonic: the lease is surely ours until then */
    int64_t lease_next_ms;  /* monotonic: next take attempt while not owned */
    int64_t read_next_ms;   /* monotonic: next poll while owned (lost notifications) */
    struct webhook_entry batch[WEBHOOK_BATCH];
    size_t count, next; /* entries read, next to deliver */
    int64_t redis_ms_at_read, mono_ms_at_read;
    uint64_t backlog; /* stream length last seen */
    struct webhook_post *post;
    unsigned attempts;            /* failed attempts of batch[next] */
    lws_sorted_usec_list_t timer; /* backoff */
};

struct webhook_pending; /* a user whose Redis state must be reconciled */
struct webhook_dead;    /* a dead node's cleanup in one partition */

struct webhooks {
    struct gateway *gw;
    char retention_ms[24];
    /* the receiver (webhook_http.c) */
    struct lws_vhost *vhost;
    char url[1024];      /* parsed in place by lws_parse_uri */
    const char *address; /* into url */
    char path[1024], host[300];
    int port;
    bool tls;
    /* users to reconcile, oldest first, each once */
    struct webhook_pending *pending_head, *pending_tail;
    struct strmap pending_set;
    struct webhook_dead *dead_retry; /* cleanups to send again once Redis is back */
    struct webhook_partition parts[WEBHOOK_PARTITIONS];
    lws_sorted_usec_list_t tick;
};

/* webhooks.c */
int64_t webhook_mono_ms(void);
unsigned webhook_partition_of(const char *user);
/* P:{@wh:<p>}:<suffix> */
void webhook_key(const struct webhooks *wh, unsigned p, const char *suffix, char *out);
/* Submits cmd, logging an allocation failure (NULL). */
void webhook_submit(struct webhooks *wh, struct bus_cmd *cmd, const char *what);

/* webhook_events.c */
void webhook_pending_add(struct webhooks *wh, const char *user);
/* Tick: reconciles a bounded number of pending users. */
void webhook_pending_drain(struct webhooks *wh);
void webhook_pending_free(struct webhooks *wh);
/* Tick: dead-node cleanups that found Redis away, sent again where it is back. */
void webhook_dead_retry(struct webhooks *wh);
void webhook_dead_free(struct webhooks *wh);

/* webhook_delivery.c */
void webhook_partitions_init(struct webhooks *wh);
void webhook_partitions_tick(struct webhooks *wh, int64_t now_ms);
/* New events may be in partition p (a notification, Redis back, a dead node's leases freed). */
void webhook_partition_wake(struct webhooks *wh, unsigned p);
/* Leases may have been freed: try to take the free ones at the next tick. */
void webhook_partitions_retake(struct webhooks *wh);
void webhook_partitions_stop(struct webhooks *wh);

/* webhook_http.c */
int webhook_http_start(struct webhooks *wh);
/* POSTs body (copied) with its signature and id headers; done(arg, status, why) runs exactly
 * once, later, with the HTTP status or 0 (no answer: connection failed, timed out, cut) and a
 * short reason. NULL when the request could not even start (done is then not called). */
struct webhook_post *webhook_http_post(struct webhooks *wh, const char *id, const char *body,
                                       size_t len,
                                       void (*done)(void *arg, int status, const char *why),
                                       void *arg);
/* Abandons a post: done is never called; its connection is closed. */
void webhook_http_cancel(struct webhook_post *post);

#endif
