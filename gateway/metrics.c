/*
 * metrics — Prometheus text rendering; see metrics.h. Bucket bounds cover 50 µs to 5 s, the
 * range between one loopback hop and a badly stalled node.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_bounds[METRICS_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0};

void metrics_observe(struct metrics_histogram *h, double seconds)
{
    int i = 0;
    while (i < METRICS_BUCKETS && seconds > bucket_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum_s += seconds;
}

struct text {
    char *buf;
    size_t len, cap;
    int failed;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends formatted text, growing the buffer; remembers an allocation failure. */
static void text_printf(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *nb = realloc(t->buf, ncap);
        if (!nb) {
            t->failed = 1;
            return;
        }
        t->buf = nb;
        t->cap = ncap;
    }
}

static void text_counter(struct text *t, const char *name, const char *help, uint64_t v)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name,
                v);
}

static void text_gauge(struct text *t, const char *name, const char *help, uint64_t v)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", name, help, name, name, v);
}

static void text_histogram(struct text *t, const char *name, const char *help,
                           const struct metrics_histogram *h)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->counts[i];
        text_printf(t, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bucket_bounds[i], cum);
    }
    cum += h->counts[METRICS_BUCKETS];
    text_printf(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9f\n%s_count %" PRIu64 "\n",
                name, cum, name, h->sum_s, name, h->count);
}

/* The bus's figures: reconnects, Cluster redirections and refreshes, failovers, per server. */
static void metrics_render_redis(struct text *t, const struct metrics_gauges *g)
{
    text_counter(t, "chat_redis_reconnects_total", "Redis reconnections after a loss.",
                 g->bus.reconnects);
    text_counter(t, "chat_redis_slot_map_refreshes_total", "Redis Cluster slot maps read.",
                 g->bus.slot_map_refreshes);
    text_counter(t, "chat_redis_moved_total", "MOVED redirections followed.", g->bus.moved);
    text_counter(t, "chat_redis_ask_total", "ASK redirections followed.", g->bus.ask);
    text_counter(t, "chat_redis_failovers_total",
                 "Masters replaced (Cluster slot owners, Sentinel switches) seen.",
                 g->bus.failovers);
    text_counter(t, "chat_redis_wait_timeouts_total",
                 "Publishes whose WAIT for --redis-wait replicas timed out.", g->bus.wait_timeouts);
    text_printf(t, "# HELP chat_redis_node_up 1 when this node's connections to the Redis "
                    "server are up.\n# TYPE chat_redis_node_up gauge\n");
    for (size_t i = 0; i < g->server_count; i++)
        text_printf(t, "chat_redis_node_up{node=\"%s\",role=\"%s\"} %d\n", g->servers[i].addr,
                    g->servers[i].role, g->servers[i].up ? 1 : 0);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t *len)
{
    struct text t = {0};
    text_gauge(&t, "chat_connections", "Open WebSocket connections.", g->connections);
    text_counter(&t, "chat_connections_total", "WebSocket connections accepted.",
                 m->connections_total);
    text_gauge(&t, "chat_rooms", "Rooms with local members.", g->rooms);
    text_gauge(&t, "chat_ready", "1 when Redis is reachable and the node is not draining.",
               (uint64_t)g->ready);
    text_gauge(&t, "chat_draining", "1 while the node drains.", (uint64_t)g->draining);
    text_counter(&t, "chat_frames_in_total", "WebSocket messages received.", m->frames_in);
    text_counter(&t, "chat_frames_out_total", "WebSocket messages written.", m->frames_out);
    text_counter(&t, "chat_bytes_in_total", "Payload bytes received.", m->bytes_in);
    text_counter(&t, "chat_bytes_out_total", "Payload bytes written.", m->bytes_out);
    text_counter(&t, "chat_publishes_total", "Room messages published by this node.",
                 m->publishes);
    text_counter(&t, "chat_publish_failures_total", "Publishes answered with unavailable.",
                 m->publish_failures);
    text_counter(&t, "chat_deliveries_total", "Room messages queued to local connections.",
                 m->deliveries);
    text_counter(&t, "chat_drops_total",
                 "Deliveries not made because the connection was closed as a slow consumer.",
                 m->drops);
    text_counter(&t, "chat_errors_sent_total", "Error frames sent.", m->errors_sent);
    text_counter(&t, "chat_slow_consumer_closes_total", "Connections closed with 4000.",
                 m->slow_consumer_closes);
    text_counter(&t, "chat_offset_gaps_total", "Offsets skipped on this node's subscription.",
                 m->gaps);
    text_counter(&t, "chat_rate_limited_total",
                 "Requests refused (or typing dropped) over their budget.", m->rate_limited);
    text_counter(&t, "chat_token_expired_closes_total",
                 "Connections closed with 1008 when their token expired.",
                 m->token_expired_closes);
    text_counter(&t, "chat_refresh_failures_total", "Token refreshes refused.",
                 m->refresh_failures);
    text_counter(&t, "chat_offsets_refilled_total",
                 "Offsets read back from a room's log to fill a gap in the subscription.",
                 m->offsets_refilled);
    text_counter(&t, "chat_epoch_resets_total",
                 "Rooms restarted on a new epoch because their stored history was lost.",
                 m->epoch_resets);
    text_counter(&t, "chat_subscriptions_repaired_total",
                 "Room subscriptions re-established after a loss and resynchronised.",
                 m->subscriptions_repaired);
    text_gauge(&t, "chat_webhook_backlog", "Webhook events not delivered yet.",
               m->webhook_backlog);
    text_counter(&t, "chat_webhook_delivered_total", "Webhook events delivered (2xx).",
                 m->webhook_delivered);
    text_counter(&t, "chat_webhook_failures_total",
                 "Webhook attempts that failed (non-2xx, timeout, no connection).",
                 m->webhook_failures);
    text_counter(&t, "chat_webhook_dropped_total",
                 "Webhook events dropped after the retention.", m->webhook_dropped);
    text_printf(&t, "# HELP chat_auth_failures_total Handshakes refused, by reason.\n"
                    "# TYPE chat_auth_failures_total counter\n");
    for (int r = 1; r < AUTH_RESULT_COUNT; r++)
        text_printf(&t, "chat_auth_failures_total{reason=\"%s\"} %" PRIu64 "\n",
                    auth_result_label((enum auth_result)r), m->auth_failures[r]);
    text_printf(&t, "chat_auth_failures_total{reason=\"origin\"} %" PRIu64 "\n",
                m->origin_rejections);
    text_printf(&t, "chat_auth_failures_total{reason=\"unavailable\"} %" PRIu64 "\n",
                m->unavailable_rejections);
    metrics_render_redis(&t, g);
    text_histogram(&t, "chat_fanout_latency_seconds",
                   "Room message arrival from Redis to its frame written to a connection.",
                   &m->fanout);
    text_histogram(&t, "chat_publish_rtt_seconds", "Publish script round trip to Redis.",
                   &m->publish_rtt);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}
