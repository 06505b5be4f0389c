/*
 * chat-bench — load generator for wire protocol v1: end-to-end publish→deliver latency,
 * fan-out and throughput across a cluster, and memory/CPU of many idle connections.
 *
 * This file is the main thread: it plans the connections, mints tokens, starts the workers
 * (bench_worker.c), moves the run through its phases (bench.h explains them), samples the
 * servers from /proc at the edges of the measurement window, and hands the merged figures to
 * bench_report.c. It never touches a connection itself.
 */
#include "bench.h"
#include "token_mint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_POLL_NS 20000000LL /* main thread's polling period */

static volatile sig_atomic_t bench_interrupted;

static void bench_on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

static void bench_sleep_until(int64_t t_ns)
{
    for (;;) {
        int64_t now = bench_now_ns();
        if (now >= t_ns || bench_interrupted)
            return;
        int64_t d = t_ns - now;
        if (d > BENCH_POLL_NS)
            d = BENCH_POLL_NS;
        struct timespec ts = {d / 1000000000, d % 1000000000};
        nanosleep(&ts, NULL);
    }
}

static uint64_t bench_sum(struct bench *b, size_t field_offset)
{
    uint64_t total = 0;
    for (int t = 0; t < b->threads; t++) {
        _Atomic uint64_t *a = (_Atomic uint64_t *)((char *)&b->workers[t] + field_offset);
        total += atomic_load_explicit(a, memory_order_relaxed);
    }
    return total;
}
#define BENCH_SUM(b, field) bench_sum((b), offsetof(struct bench_worker, field))

static uint64_t bench_splitmix(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void bench_lws_log(int level, const char *line)
{
    (void)level;
    fprintf(stderr, "chat-bench: lws: %s", line);
}

/* Plans rooms, roles, URLs, sources and threads for every connection; mints tokens. */
static int bench_plan(struct bench *b)
{
    const struct bench_options *o = &b->opt;
    bool idle = o->connections_only > 0;
    b->members_per_room = idle ? 0 : (uint32_t)(o->subs_per_room + o->publishers);
    b->publisher_count = idle ? 0 : (uint32_t)(o->rooms * o->publishers);
    b->conn_count = idle ? (size_t)o->connections_only : (size_t)o->rooms * b->members_per_room;
    if (!idle && b->members_per_room < 2) {
        fprintf(stderr, "chat-bench: a room needs at least 2 members (subscribers + publishers)\n");
        return -1;
    }
    b->gap_ns = idle ? 0 : 1e9 / o->rate;
    b->interval_ns = b->gap_ns * b->publisher_count;

    b->conns = calloc(b->conn_count, sizeof(*b->conns));
    int rooms = idle ? 0 : o->rooms;
    b->room_names = calloc((size_t)rooms + 1, sizeof(*b->room_names));
    b->room_name_len = calloc((size_t)rooms + 1, sizeof(*b->room_name_len));
    if (!b->conns || !b->room_names || !b->room_name_len)
        return -1;
    for (int r = 0; r < rooms; r++) {
        int n = snprintf(b->room_names[r], sizeof(b->room_names[r]), "%s%s-%d", o->room_prefix,
                         b->tag, r);
        b->room_name_len[r] = (size_t)n;
    }
    for (int u = 0; u < o->url_count; u++)
        snprintf(b->host_headers[u], sizeof(b->host_headers[u]), "%s:%d", o->urls[u].host,
                 o->urls[u].port);

    int nurl = o->url_count, nsrc = o->source_count;
    for (size_t i = 0; i < b->conn_count; i++) {
        struct bench_conn *c = &b->conns[i];
        c->index = (uint32_t)i;
        c->source = nsrc ? (uint16_t)(i % (size_t)nsrc) : UINT16_MAX;
        if (idle) {
            c->room = -1;
            c->publisher = -1;
            c->url = (uint16_t)(i % (size_t)nurl);
        } else {
            /* member j of room r: publishers first; (r + j) spreads each room over the nodes
             * and puts successive rooms' publishers on successive nodes */
            uint32_t r = (uint32_t)(i / b->members_per_room),
                     j = (uint32_t)(i % b->members_per_room);
            c->room = (int32_t)r;
            c->publisher =
                j < (uint32_t)o->publishers ? (int32_t)(r * (uint32_t)o->publishers + j) : -1;
            c->url = (uint16_t)((r + j) % (uint32_t)nurl);
        }
    }

    /* tokens: one per connection (its own user), or the shared one */
    char **shared_path = b->shared_paths;
    int64_t now_s = (int64_t)time(NULL);
    for (size_t i = 0; i < b->conn_count; i++) {
        struct bench_conn *c = &b->conns[i];
        const struct bench_url *u = &o->urls[c->url];
        const char *sep = strchr(u->path, '?') ? "&" : "?";
        if (o->token) {
            if (!shared_path[c->url]) {
                size_t n = strlen(u->path) + strlen(o->token) + 16;
                shared_path[c->url] = malloc(n);
                if (!shared_path[c->url])
                    return -1;
                snprintf(shared_path[c->url], n, "%s%stoken=%s", u->path, sep, o->token);
            }
            c->path = shared_path[c->url];
            c->path_shared = true;
            continue;
        }
        char sub[96];
        snprintf(sub, sizeof(sub), "bench-%s-%zu", b->tag, i);
        char *tok =
            token_mint(AUTH_ALG_HS256, (const unsigned char *)o->jwt_secret, strlen(o->jwt_secret),
                       sub, NULL, NULL, 0, now_s, 24 * 3600, NULL, NULL);
        if (!tok) {
            fprintf(stderr, "chat-bench: could not mint a token (is the secret empty?)\n");
            return -1;
        }
        size_t n = strlen(u->path) + strlen(tok) + 16;
        c->path = malloc(n);
        if (!c->path) {
            free(tok);
            return -1;
        }
        snprintf(c->path, n, "%s%stoken=%s", u->path, sep, tok);
        free(tok);
    }

    /* threads: connections dealt round-robin */
    if (o->threads > 0) {
        b->threads = o->threads;
    } else {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        b->threads = b->conn_count <= 32 ? 1 : (int)(cpus < 1 ? 1 : cpus > 4 ? 4 : cpus);
    }
    if ((size_t)b->threads > b->conn_count)
        b->threads = (int)b->conn_count;
    b->workers = calloc((size_t)b->threads, sizeof(*b->workers));
    if (!b->workers)
        return -1;
    for (int t = 0; t < b->threads; t++) {
        struct bench_worker *w = &b->workers[t];
        w->b = b;
        w->id = t;
        w->seen_phase = BENCH_PHASE_CONNECT;
        size_t share = b->conn_count / (size_t)b->threads + 1;
        w->conns = calloc(share, sizeof(*w->conns));
        w->pubs = calloc(share, sizeof(*w->pubs));
        if (!w->conns || !w->pubs)
            return -1;
        bench_worker_stats_init(&w->st);
    }
    for (size_t i = 0; i < b->conn_count; i++) {
        struct bench_worker *w = &b->workers[i % (size_t)b->threads];
        struct bench_conn *c = &b->conns[i];
        c->worker = w;
        w->conns[w->conn_count++] = c;
        if (c->publisher >= 0)
            w->pubs[w->pub_count++] = c;
    }
    return 0;
}

static void bench_free(struct bench *b)
{
    for (size_t i = 0; b->conns && i < b->conn_count; i++) {
        if (!b->conns[i].path_shared)
            free(b->conns[i].path);
        free(b->conns[i].rx);
    }
    for (int u = 0; u < BENCH_MAX_URLS; u++)
        free(b->shared_paths[u]);
    if (b->workers) {
        for (int t = 0; t < b->threads; t++) {
            free(b->workers[t].conns);
            free(b->workers[t].pubs);
        }
    }
    free(b->workers);
    free(b->conns);
    free(b->room_names);
    free(b->room_name_len);
    free(b);
}

static void bench_progress(struct bench *b, const char *what)
{
    if (b->opt.quiet)
        return;
    fprintf(stderr,
            "chat-bench: %s: ready %llu/%zu failed %llu | sent %llu answered %llu | "
            "delivered %llu/%llu\n",
            what, (unsigned long long)BENCH_SUM(b, ready), b->conn_count,
            (unsigned long long)BENCH_SUM(b, failed), (unsigned long long)BENCH_SUM(b, sent),
            (unsigned long long)BENCH_SUM(b, answered), (unsigned long long)BENCH_SUM(b, delivered),
            (unsigned long long)BENCH_SUM(b, expected));
}

static void bench_sample(struct bench *b, struct bench_proc_sample *s)
{
    int pids[2 * BENCH_MAX_PIDS];
    int n = 0;
    for (int i = 0; i < b->opt.server_pid_count; i++)
        pids[n++] = b->opt.server_pids[i];
    for (int i = 0; i < b->opt.other_pid_count; i++)
        pids[n++] = b->opt.other_pids[i];
    bench_proc_sample(s, pids, n, b->workers, b->threads);
}

static void bench_track_rss_peak(struct bench_result *r, const struct bench_proc_sample *s)
{
    for (int i = 0; i < 2 * BENCH_MAX_PIDS; i++)
        if (s->rss_kib[i] > r->rss_peak_kib[i])
            r->rss_peak_kib[i] = s->rss_kib[i];
}

/* Waits until every connection is ready or failed (bounded); true when all are ready. */
static bool bench_wait_connected(struct bench *b)
{
    int64_t deadline = bench_now_ns() + (int64_t)(b->opt.connect_timeout_s * 1e9);
    int64_t next_progress = bench_now_ns() + 1000000000LL;
    for (;;) {
        uint64_t ready = BENCH_SUM(b, ready), failed = BENCH_SUM(b, failed);
        if (ready + failed >= b->conn_count)
            return failed == 0;
        int64_t now = bench_now_ns();
        if (now > deadline || bench_interrupted)
            return false;
        if (now > next_progress) {
            bench_progress(b, "connecting");
            next_progress = now + 1000000000LL;
        }
        bench_sleep_until(now + BENCH_POLL_NS);
    }
}

static void bench_set_phase(struct bench *b, enum bench_phase phase)
{
    atomic_store(&b->phase, (int)phase);
    for (int t = 0; t < b->threads; t++)
        bench_worker_wake(&b->workers[t]);
}

/* The publishing run: schedule, measure, drain. */
static void bench_run_workload(struct bench *b, struct bench_result *r)
{
    const struct bench_options *o = &b->opt;
    int64_t t0 = bench_now_ns() + 100000000LL; /* everyone's timers armed before t0 */
    int64_t measure = t0 + (int64_t)(o->warmup_s * 1e9);
    int64_t end = measure + (int64_t)(o->duration_s * 1e9);
    atomic_store(&b->t0_ns, t0);
    atomic_store(&b->measure_ns, measure);
    atomic_store(&b->end_ns, end);
    bench_set_phase(b, BENCH_PHASE_RUN);

    bench_sleep_until(measure);
    bench_sample(b, &r->window_start);
    int64_t next_progress = measure + 1000000000LL;
    while (!bench_interrupted && bench_now_ns() < end) {
        bench_sleep_until(next_progress < end ? next_progress : end);
        struct bench_proc_sample s;
        bench_sample(b, &s);
        bench_track_rss_peak(r, &s);
        if (bench_now_ns() >= next_progress) {
            bench_progress(b, "running");
            next_progress += 1000000000LL;
        }
    }

    /* drain: everything expected delivered and every publish answered, or the timeout */
    int64_t drain_start = bench_now_ns();
    int64_t deadline = drain_start + (int64_t)(o->drain_timeout_s * 1e9);
    for (;;) {
        uint64_t delivered = BENCH_SUM(b, delivered), expected = BENCH_SUM(b, expected);
        uint64_t sent = BENCH_SUM(b, sent), answered = BENCH_SUM(b, answered);
        if (delivered >= expected && answered >= sent) {
            r->drained = true;
            break;
        }
        if (bench_now_ns() > deadline || bench_interrupted)
            break;
        bench_sleep_until(bench_now_ns() + 5000000LL);
    }
    bench_sample(b, &r->window_end);
    bench_track_rss_peak(r, &r->window_end);
    r->drain_s = (double)(r->window_end.at_ns - drain_start) / 1e9;
    r->measured_s = o->duration_s;
    r->wall_s = (double)(r->window_end.at_ns - r->window_start.at_ns) / 1e9;
}

/* --connections-only: hold the idle connections and measure. */
static void bench_run_idle(struct bench *b, struct bench_result *r)
{
    /* let the server finish its per-connection work (and the RSS settle) first */
    bench_sleep_until(bench_now_ns() + 1000000000LL);
    bench_sample(b, &r->after_connect);
    r->window_start = r->after_connect;
    int64_t end = r->window_start.at_ns + (int64_t)(b->opt.duration_s * 1e9);
    while (!bench_interrupted && bench_now_ns() < end) {
        int64_t step = bench_now_ns() + 1000000000LL;
        bench_sleep_until(step < end ? step : end);
        struct bench_proc_sample s;
        bench_sample(b, &s);
        bench_track_rss_peak(r, &s);
        bench_progress(b, "holding");
    }
    bench_sample(b, &r->window_end);
    bench_track_rss_peak(r, &r->window_end);
    r->measured_s = (double)(r->window_end.at_ns - r->window_start.at_ns) / 1e9;
    r->wall_s = r->measured_s;
    r->drained = true;
}

static void bench_judge_generator(const struct bench *b, struct bench_result *r)
{
    double wall = (double)(r->window_end.at_ns - r->window_start.at_ns) / 1e9;
    double worst = 0;
    for (int t = 0; t < b->threads && t < BENCH_MAX_THREADS; t++) {
        double a = r->window_start.thread_cpu_s[t], z = r->window_end.thread_cpu_s[t];
        if (a >= 0 && z >= a && wall > 0 && (z - a) / wall > worst)
            worst = (z - a) / wall;
    }
    uint64_t lag_p99 = histogram_percentile(&r->st.send_lag, 99);
    if (worst >= 0.9) {
        r->generator_limited = true;
        snprintf(r->generator_reason, sizeof(r->generator_reason),
                 "a generator thread was busy %.0f%% of the window (add --threads or cores)",
                 worst * 100);
    } else if (lag_p99 > 5000) {
        r->generator_limited = true;
        snprintf(r->generator_reason, sizeof(r->generator_reason),
                 "sends ran %.1f ms (p99) behind schedule: the generator, or the machine it "
                 "shares, could not keep up",
                 (double)lag_p99 / 1000);
    }
}

int main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof(*b));
    if (!b)
        return 1;
    int rc = bench_options_parse(&b->opt, argc, argv);
    if (rc != 0) {
        free(b);
        return rc > 0 ? 0 : 2;
    }
    const struct bench_options *o = &b->opt;

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bench_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    lws_set_log_level(LLL_ERR, bench_lws_log);

    uint64_t seed = o->seed_given ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    uint64_t x = seed;
    snprintf(b->tag, sizeof(b->tag), "%08llx",
             (unsigned long long)(bench_splitmix(&x) & 0xffffffffu));

    struct bench_result *r = calloc(1, sizeof(*r));
    if (!r || bench_plan(b) != 0) {
        fprintf(stderr, "chat-bench: setup failed (out of memory or bad plan)\n");
        free(r);
        bench_free(b);
        return 1;
    }
    bench_worker_stats_init(&r->st);
    r->b = b;
    for (int i = 0; i < 2 * BENCH_MAX_PIDS; i++)
        r->rss_peak_kib[i] = -1;

    long want_fds = (long)b->conn_count + 256;
    long nofile = bench_raise_nofile(want_fds);
    if (nofile < want_fds)
        fprintf(stderr, "chat-bench: warning: open-files limit %ld < %ld needed\n", nofile,
                want_fds);
    if (b->publisher_count) {
        double per_pub = o->rate / b->publisher_count;
        if (per_pub > 20 && !o->quiet)
            fprintf(stderr,
                    "chat-bench: note: each publisher sends %.1f/s; the gateway's default "
                    "per-connection limit is 20/s (burst 40): raise --rate/--rate-burst on the "
                    "nodes or add --publishers\n",
                    per_pub);
    }

    int exit_code = 0;
    for (int t = 0; t < b->threads; t++) {
        if (bench_worker_init(&b->workers[t]) != 0) {
            fprintf(stderr, "chat-bench: lws_create_context failed\n");
            exit_code = 1;
            goto out;
        }
    }
    if (!o->quiet)
        fprintf(stderr, "chat-bench: run %s: %zu connections on %d thread(s), %d URL(s)\n", b->tag,
                b->conn_count, b->threads, o->url_count);

    bench_sample(b, &r->before_connect);
    for (int t = 0; t < b->threads; t++) {
        if (pthread_create(&b->workers[t].thread, NULL, bench_worker_main, &b->workers[t]) != 0) {
            fprintf(stderr, "chat-bench: pthread_create failed\n");
            bench_set_phase(b, BENCH_PHASE_STOP);
            exit_code = 1;
            goto join;
        }
        b->workers[t].started = true;
    }

    bool all_ready = bench_wait_connected(b);
    r->connect_s = (double)(bench_now_ns() - r->before_connect.at_ns) / 1e9;
    bench_sample(b, &r->after_connect);
    if (!all_ready) {
        bench_progress(b, "connect failed");
        exit_code = 1;
    }
    if (o->connections_only > 0) {
        if (!bench_interrupted)
            bench_run_idle(b, r);
    } else if (all_ready && !bench_interrupted) {
        bench_run_workload(b, r);
    }
    bench_set_phase(b, BENCH_PHASE_STOP);

join:
    for (int t = 0; t < b->threads; t++) {
        if (b->workers[t].started)
            pthread_join(b->workers[t].thread, NULL);
    }
    for (int t = 0; t < b->threads; t++) {
        struct bench_worker *w = &b->workers[t];
        bench_worker_stats_merge(&r->st, &w->st);
        r->sent += w->st.measured_sent;
        r->acked += w->st.measured_acked;
        r->expected += atomic_load(&w->expected);
        r->delivered += atomic_load(&w->delivered);
        r->ready += atomic_load(&w->ready);
        r->failed += atomic_load(&w->failed);
        r->closed += atomic_load(&w->closed);
        if (w->ctx) {
            lws_context_destroy(w->ctx);
            w->ctx = NULL;
        }
    }
    r->lost = r->expected > r->delivered ? r->expected - r->delivered : 0;

    if (exit_code == 0 || o->connections_only > 0) {
        if (r->window_end.at_ns == 0) /* interrupted before the window closed */
            bench_sample(b, &r->window_end);
        if (r->window_start.at_ns == 0)
            r->window_start = r->after_connect;
        bench_judge_generator(b, r);
        bench_report_print(r);
        if (o->json_path && bench_report_json(r, o->json_path) != 0)
            exit_code = exit_code ? exit_code : 1;
        if (o->plot_path && o->connections_only == 0 && bench_report_plot(r, o->plot_path) != 0)
            fprintf(stderr, "chat-bench: warning: could not draw %s\n", o->plot_path);
        if (exit_code == 0 && o->fail_on_loss &&
            (r->lost || r->st.duplicated || r->st.out_of_order || r->st.unexpected))
            exit_code = 3;
    } else if (r->st.first_failure[0]) {
        fprintf(stderr, "chat-bench: first failure: %s\n", r->st.first_failure);
        for (int i = 0; i < BENCH_ERROR_KINDS && r->st.error_kinds[i].count; i++)
            fprintf(stderr, "chat-bench: %s x%llu\n", r->st.error_kinds[i].name,
                    (unsigned long long)r->st.error_kinds[i].count);
    }

out:
    for (int t = 0; t < b->threads; t++)
        if (b->workers[t].ctx)
            lws_context_destroy(b->workers[t].ctx);
    free(r);
    bench_free(b);
    return exit_code;
}
