/*
 * metrics — this node's counters and histograms, rendered as Prometheus text at /metrics.
 * Owned by the connection thread (all updates happen there); the bus thread's own figures
 * (reconnects) are read through bus_reconnects(). Histograms use fixed cumulative buckets in
 * seconds, as Prometheus expects.
 */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include "auth.h"
#include "bus.h"

#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 16

struct metrics_histogram {
    uint64_t counts[METRICS_BUCKETS + 1]; /* last: +Inf */
    uint64_t count;
    double sum_s;
};

struct metrics {
    uint64_t connections_total;
    uint64_t frames_in, frames_out, bytes_in, bytes_out;
    uint64_t publishes, publish_failures, deliveries, drops;
    uint64_t errors_sent;
    uint64_t slow_consumer_closes;
    uint64_t auth_failures[AUTH_RESULT_COUNT];
    uint64_t origin_rejections, unavailable_rejections;
    uint64_t gaps; /* offsets skipped on this node's subscription (missed messages) */
    uint64_t rate_limited;          /* rate_limited answers (and silently dropped typing) */
    uint64_t token_expired_closes;  /* connections closed 1008 at their token's exp */
    uint64_t refresh_failures;      /* refresh requests refused */
    uint64_t offsets_refilled;      /* offsets read back from a room's log after a gap */
    uint64_t epoch_resets;          /* reset frames sent (a room's history was lost) */
    uint64_t subscriptions_repaired;/* room subscriptions re-established after a loss */
    /* webhooks (PROTOCOL.md §9; webhooks.c) */
    uint64_t webhook_backlog;       /* events waiting for delivery (gauge, sampled) */
    uint64_t webhook_delivered, webhook_failures, webhook_dropped;
    struct metrics_histogram fanout;      /* Redis message arrival → frame written */
    struct metrics_histogram publish_rtt; /* publish submitted → Redis reply */
};

void metrics_observe(struct metrics_histogram *h, double seconds);

/* Gauges and outside figures sampled at render time. */
struct metrics_gauges {
    uint64_t connections;
    uint64_t rooms;
    int ready;
    int draining;
    struct bus_stats bus;
    struct bus_server_state servers[64];
    size_t server_count;
};

/* Renders Prometheus text; returns a malloc'd string (caller frees) and its length. */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t *len);

#endif
