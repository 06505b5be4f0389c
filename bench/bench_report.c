/*
 * bench_report — turns a finished run (struct bench_result) into the three outputs: a table
 * on stdout for people, a JSON summary for scripts (bench/run.sh, the smoke test), and a
 * latency plot drawn by gnuplot.
 *
 * Every derived figure is computed in one place (bench_derive) so the table and the JSON can
 * never disagree. Latencies are kept in µs and shown in ms.
 */
#include "bench.h"

#include <cjson/cJSON.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct bench_derived {
    double window_s;       /* between the window samples */
    double server_cpu_s;   /* all pids, over the window */
    double server_cpu_pct; /* of one core */
    double cpu_us_per_delivery;
    double self_cpu_pct;
    double busiest_thread_pct;
    double machine_busy_pct;
    double machine_irq_pct; /* irq + softirq, of all cores */
    int cpus;
    double other_cpu_pct; /* --other-pid processes, of one core */
    double rest_cpu_pct;  /* machine busy minus servers, others and generator, of one core */
    double deliveries_per_s;
    double publishes_per_s;
    /* idle mode */
    double rss_delta_kib; /* after connect - before, all pids */
    double rss_per_conn_kib;
    double cpu_ms_per_connect;
    double connects_per_s;
};

static double bench_pid_cpu_delta(const struct bench_proc_sample *a,
                                  const struct bench_proc_sample *z, int i)
{
    return a->cpu_s[i] >= 0 && z->cpu_s[i] >= a->cpu_s[i] ? z->cpu_s[i] - a->cpu_s[i] : -1;
}

static void bench_derive(const struct bench_result *r, struct bench_derived *d)
{
    const struct bench *b = r->b;
    const struct bench_options *o = &b->opt;
    memset(d, 0, sizeof(*d));
    d->window_s = (double)(r->window_end.at_ns - r->window_start.at_ns) / 1e9;
    for (int i = 0; i < o->server_pid_count; i++) {
        double c = bench_pid_cpu_delta(&r->window_start, &r->window_end, i);
        if (c > 0)
            d->server_cpu_s += c;
    }
    if (d->window_s > 0) {
        d->server_cpu_pct = 100 * d->server_cpu_s / d->window_s;
        d->self_cpu_pct =
            100 * (r->window_end.self_cpu_s - r->window_start.self_cpu_s) / d->window_s;
        for (int t = 0; t < b->threads && t < BENCH_MAX_THREADS; t++) {
            double a = r->window_start.thread_cpu_s[t], z = r->window_end.thread_cpu_s[t];
            if (a >= 0 && z >= a && 100 * (z - a) / d->window_s > d->busiest_thread_pct)
                d->busiest_thread_pct = 100 * (z - a) / d->window_s;
        }
    }
    uint64_t busy = r->window_end.machine_busy - r->window_start.machine_busy;
    uint64_t total = r->window_end.machine_total - r->window_start.machine_total;
    d->machine_busy_pct = total ? 100.0 * (double)busy / (double)total : 0;
    d->machine_irq_pct =
        total ? 100.0 * (double)(r->window_end.machine_irq - r->window_start.machine_irq) /
                    (double)total
              : 0;
    d->cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    for (int k = 0; k < o->other_pid_count && d->window_s > 0; k++) {
        double c = bench_pid_cpu_delta(&r->window_start, &r->window_end, o->server_pid_count + k);
        if (c > 0)
            d->other_cpu_pct += 100 * c / d->window_s;
    }
    d->rest_cpu_pct =
        d->machine_busy_pct * d->cpus - d->server_cpu_pct - d->other_cpu_pct - d->self_cpu_pct;
    if (d->rest_cpu_pct < 0)
        d->rest_cpu_pct = 0;
    if (r->delivered)
        d->cpu_us_per_delivery = 1e6 * d->server_cpu_s / (double)r->delivered;
    if (r->measured_s > 0) {
        d->deliveries_per_s = (double)r->delivered / r->measured_s;
        d->publishes_per_s = (double)r->sent / r->measured_s;
    }
    /* idle mode figures (meaningful with --connections-only) */
    double cpu_connect = 0;
    for (int i = 0; i < o->server_pid_count; i++) {
        if (r->before_connect.rss_kib[i] >= 0 && r->after_connect.rss_kib[i] >= 0)
            d->rss_delta_kib +=
                (double)(r->after_connect.rss_kib[i] - r->before_connect.rss_kib[i]);
        double c = bench_pid_cpu_delta(&r->before_connect, &r->after_connect, i);
        if (c > 0)
            cpu_connect += c;
    }
    if (r->ready) {
        d->rss_per_conn_kib = d->rss_delta_kib / (double)r->ready;
        d->cpu_ms_per_connect = 1e3 * cpu_connect / (double)r->ready;
    }
    if (r->connect_s > 0)
        d->connects_per_s = (double)r->ready / r->connect_s;
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static void bench_print_latency(const char *title, const struct histogram *h)
{
    if (h->count == 0) {
        printf("%-13s (none)\n", title);
        return;
    }
    printf("%-13s p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n", title,
           ms(histogram_percentile(h, 50)), ms(histogram_percentile(h, 90)),
           ms(histogram_percentile(h, 99)), ms(histogram_percentile(h, 99.9)), ms(histogram_max(h)),
           histogram_mean(h) / 1000.0);
}

void bench_report_print(const struct bench_result *r)
{
    const struct bench *b = r->b;
    const struct bench_options *o = &b->opt;
    const struct bench_worker_stats *st = &r->st;
    struct bench_derived d;
    bench_derive(r, &d);
    bool idle = o->connections_only > 0;

    printf("\nchat-bench run %s%s%s: %d URL(s), %d generator thread(s)\n", b->tag,
           o->label[0] ? " — " : "", o->label, o->url_count, b->threads);
    if (idle)
        printf("%-13s %ld idle connections, held %.1f s\n", "workload", o->connections_only,
               r->measured_s);
    else
        printf("%-13s %d room(s) x (%d subscribers + %d publisher(s)), %.1f publishes/s, "
               "%.1f s (+%.1f s warm-up), payload %d B\n",
               "workload", o->rooms, o->subs_per_room, o->publishers, o->rate, o->duration_s,
               o->warmup_s, o->payload);
    printf("%-13s %llu ready, %llu failed, %llu dropped during the run; opened in %.2f s "
           "(%.0f/s); connect→ready p50 %.1f ms p99 %.1f ms\n",
           "connections", (unsigned long long)r->ready, (unsigned long long)r->failed,
           (unsigned long long)st->disconnects, r->connect_s, d.connects_per_s,
           ms(histogram_percentile(&st->connect_time, 50)),
           ms(histogram_percentile(&st->connect_time, 99)));
    if (st->first_failure[0])
        printf("%-13s %s\n", "first failure", st->first_failure);

    if (!idle) {
        printf("%-13s %llu sent, %llu acked, %llu errors (warm-up: %llu sent, not counted)\n",
               "publishes", (unsigned long long)r->sent, (unsigned long long)r->acked,
               (unsigned long long)st->errors, (unsigned long long)st->warmup_sent);
        printf("%-13s expected %llu = delivered %llu + lost %llu; duplicated %llu, out of "
               "order %llu, unexpected %llu\n",
               "deliveries", (unsigned long long)r->expected, (unsigned long long)r->delivered,
               (unsigned long long)r->lost, (unsigned long long)st->duplicated,
               (unsigned long long)st->out_of_order, (unsigned long long)st->unexpected);
        printf("%-13s %.0f deliveries/s (%.1f publishes/s); %s in %.2f s\n", "throughput",
               d.deliveries_per_s, d.publishes_per_s,
               r->drained ? "drained" : "NOT drained (drain timeout)", r->drain_s);
        bench_print_latency("latency ms", &st->latency);
        bench_print_latency("  from send", &st->latency_from_send);
        bench_print_latency("ack ms", &st->ack_latency);
        printf("%-13s p50 %.2f  p99 %.2f  max %.2f (actual send - scheduled send)\n", "send lag ms",
               ms(histogram_percentile(&st->send_lag, 50)),
               ms(histogram_percentile(&st->send_lag, 99)), ms(histogram_max(&st->send_lag)));
    }

    for (int i = 0; i < o->server_pid_count; i++) {
        double c = bench_pid_cpu_delta(&r->window_start, &r->window_end, i);
        printf("%-13s pid %d: CPU %s%.1f%% of a core, RSS %.1f MiB (peak %.1f MiB)",
               i ? "" : "server", o->server_pids[i], c < 0 ? "?" : "",
               c < 0 || d.window_s <= 0 ? 0 : 100 * c / d.window_s,
               (double)r->window_end.rss_kib[i] / 1024, (double)r->rss_peak_kib[i] / 1024);
        if (idle)
            printf(", RSS before connect %.1f MiB, after %.1f MiB",
                   (double)r->before_connect.rss_kib[i] / 1024,
                   (double)r->after_connect.rss_kib[i] / 1024);
        printf("\n");
    }
    if (o->server_pid_count) {
        if (idle)
            printf("%-13s %.2f KiB RSS per connection; %.3f ms CPU per connect (handshake + "
                   "JWT); idle CPU %.2f%% of a core over %.1f s\n",
                   "server total", d.rss_per_conn_kib, d.cpu_ms_per_connect, d.server_cpu_pct,
                   d.window_s);
        else
            printf("%-13s CPU %.1f%% of a core = %.2f µs per delivery\n", "server total",
                   d.server_cpu_pct, d.cpu_us_per_delivery);
    }
    for (int k = 0; k < o->other_pid_count; k++) {
        int i = o->server_pid_count + k;
        double c = bench_pid_cpu_delta(&r->window_start, &r->window_end, i);
        printf("%-13s pid %d: CPU %.1f%% of a core, RSS %.1f MiB\n", k ? "" : "other",
               o->other_pids[k], c < 0 || d.window_s <= 0 ? 0 : 100 * c / d.window_s,
               (double)r->window_end.rss_kib[i] / 1024);
    }
    printf("%-13s CPU %.1f%% of a core (busiest thread %.1f%%)\n", "generator", d.self_cpu_pct,
           d.busiest_thread_pct);
    printf("%-13s %.0f%% busy of %d cores = %.0f%% of a core: servers %.0f%%, other pids %.0f%%, "
           "generator %.0f%%, anything else %.0f%% (irq+softirq on the machine: %.0f%% of a "
           "core)\n",
           "machine", d.machine_busy_pct, d.cpus, d.machine_busy_pct * d.cpus, d.server_cpu_pct,
           d.other_cpu_pct, d.self_cpu_pct, d.rest_cpu_pct, d.machine_irq_pct * d.cpus);

    bool errors = false;
    for (int i = 0; i < BENCH_ERROR_KINDS && st->error_kinds[i].count; i++) {
        printf("%s%s x%llu", errors ? ", " : "errors        ", st->error_kinds[i].name,
               (unsigned long long)st->error_kinds[i].count);
        errors = true;
    }
    if (errors)
        printf("\n");

    const char *verdict;
    if (r->failed)
        verdict = "INCOMPLETE: not every connection was ready";
    else if (idle && st->disconnects)
        verdict = "NOT CLEAN: connections were closed while idle (see errors for close codes)";
    else if (!idle && (r->lost || st->duplicated || st->out_of_order || st->unexpected))
        verdict = "NOT CLEAN: lost, duplicated, out-of-order or unexpected deliveries";
    else
        verdict = idle ? "OK: every connection opened and stayed open" : "OK: nothing lost";
    printf("%-13s %s\n", "verdict", verdict);
    if (r->generator_limited)
        printf("%-13s generator was the bottleneck: %s\n", "WARNING", r->generator_reason);
    if (d.machine_busy_pct >= 95)
        printf("%-13s the machine was saturated (%.0f%% busy): generator, Redis and nodes "
               "share %d cores\n",
               "note", d.machine_busy_pct, d.cpus);
    fflush(stdout);
}

/* ---------- JSON ---------- */

static cJSON *bench_json_latency(const struct histogram *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)h->count);
    cJSON_AddNumberToObject(o, "p50_ms", ms(histogram_percentile(h, 50)));
    cJSON_AddNumberToObject(o, "p90_ms", ms(histogram_percentile(h, 90)));
    cJSON_AddNumberToObject(o, "p99_ms", ms(histogram_percentile(h, 99)));
    cJSON_AddNumberToObject(o, "p999_ms", ms(histogram_percentile(h, 99.9)));
    cJSON_AddNumberToObject(o, "max_ms", ms(histogram_max(h)));
    cJSON_AddNumberToObject(o, "min_ms", ms(histogram_min(h)));
    cJSON_AddNumberToObject(o, "mean_ms", histogram_mean(h) / 1000.0);
    return o;
}

int bench_report_json(const struct bench_result *r, const char *path)
{
    const struct bench *b = r->b;
    const struct bench_options *o = &b->opt;
    const struct bench_worker_stats *st = &r->st;
    struct bench_derived d;
    bench_derive(r, &d);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tag", b->tag);
    cJSON_AddStringToObject(root, "label", o->label);
    cJSON_AddStringToObject(root, "mode", o->connections_only ? "connections-only" : "workload");

    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON *urls = cJSON_AddArrayToObject(cfg, "urls");
    for (int i = 0; i < o->url_count; i++)
        cJSON_AddItemToArray(urls, cJSON_CreateString(o->urls[i].text));
    cJSON_AddNumberToObject(cfg, "rooms", o->rooms);
    cJSON_AddNumberToObject(cfg, "subs_per_room", o->subs_per_room);
    cJSON_AddNumberToObject(cfg, "publishers_per_room", o->publishers);
    cJSON_AddNumberToObject(cfg, "members_per_room", b->members_per_room);
    cJSON_AddNumberToObject(cfg, "rate", o->rate);
    cJSON_AddNumberToObject(cfg, "duration_s", o->duration_s);
    cJSON_AddNumberToObject(cfg, "warmup_s", o->warmup_s);
    cJSON_AddNumberToObject(cfg, "payload", o->payload);
    cJSON_AddNumberToObject(cfg, "connections_only", (double)o->connections_only);
    cJSON_AddNumberToObject(cfg, "threads", b->threads);
    cJSON_AddNumberToObject(cfg, "source_addrs", o->source_count);

    cJSON *conn = cJSON_AddObjectToObject(root, "connections");
    cJSON_AddNumberToObject(conn, "planned", (double)b->conn_count);
    cJSON_AddNumberToObject(conn, "ready", (double)r->ready);
    cJSON_AddNumberToObject(conn, "failed", (double)r->failed);
    cJSON_AddNumberToObject(conn, "dropped", (double)st->disconnects);
    cJSON_AddNumberToObject(conn, "open_s", r->connect_s);
    cJSON_AddNumberToObject(conn, "per_s", d.connects_per_s);
    cJSON_AddItemToObject(conn, "connect_latency", bench_json_latency(&st->connect_time));
    if (st->first_failure[0])
        cJSON_AddStringToObject(conn, "first_failure", st->first_failure);

    cJSON *pub = cJSON_AddObjectToObject(root, "publishes");
    cJSON_AddNumberToObject(pub, "sent", (double)r->sent);
    cJSON_AddNumberToObject(pub, "acked", (double)r->acked);
    cJSON_AddNumberToObject(pub, "errors", (double)st->errors);
    cJSON_AddNumberToObject(pub, "warmup_sent", (double)st->warmup_sent);
    cJSON_AddNumberToObject(pub, "per_s", d.publishes_per_s);

    cJSON *del = cJSON_AddObjectToObject(root, "deliveries");
    cJSON_AddNumberToObject(del, "expected", (double)r->expected);
    cJSON_AddNumberToObject(del, "delivered", (double)r->delivered);
    cJSON_AddNumberToObject(del, "lost", (double)r->lost);
    cJSON_AddNumberToObject(del, "duplicated", (double)st->duplicated);
    cJSON_AddNumberToObject(del, "out_of_order", (double)st->out_of_order);
    cJSON_AddNumberToObject(del, "unexpected", (double)st->unexpected);
    cJSON_AddNumberToObject(del, "foreign", (double)st->foreign);
    cJSON_AddNumberToObject(del, "warmup_delivered", (double)st->warmup_delivered);
    cJSON_AddNumberToObject(del, "per_s", d.deliveries_per_s);
    /* the WebSocket message size of a delivery: bench-floor measures sends of this size */
    cJSON_AddNumberToObject(del, "message_bytes",
                            st->messages_in ? (double)st->message_bytes_in / (double)st->messages_in
                                            : 0);
    cJSON_AddBoolToObject(del, "drained", r->drained);
    cJSON_AddNumberToObject(del, "drain_s", r->drain_s);

    cJSON_AddItemToObject(root, "latency", bench_json_latency(&st->latency));
    cJSON_AddItemToObject(root, "latency_from_send", bench_json_latency(&st->latency_from_send));
    cJSON_AddItemToObject(root, "ack_latency", bench_json_latency(&st->ack_latency));
    cJSON_AddItemToObject(root, "send_lag", bench_json_latency(&st->send_lag));

    cJSON *srv = cJSON_AddObjectToObject(root, "server");
    cJSON *pids = cJSON_AddArrayToObject(srv, "pids");
    for (int i = 0; i < o->server_pid_count; i++) {
        cJSON *p = cJSON_CreateObject();
        double c = bench_pid_cpu_delta(&r->window_start, &r->window_end, i);
        cJSON_AddNumberToObject(p, "pid", o->server_pids[i]);
        cJSON_AddNumberToObject(p, "cpu_pct", c < 0 || d.window_s <= 0 ? -1 : 100 * c / d.window_s);
        cJSON_AddNumberToObject(p, "rss_kib", (double)r->window_end.rss_kib[i]);
        cJSON_AddNumberToObject(p, "rss_peak_kib", (double)r->rss_peak_kib[i]);
        cJSON_AddNumberToObject(p, "rss_before_connect_kib", (double)r->before_connect.rss_kib[i]);
        cJSON_AddNumberToObject(p, "rss_after_connect_kib", (double)r->after_connect.rss_kib[i]);
        cJSON_AddItemToArray(pids, p);
    }
    cJSON *others = cJSON_AddArrayToObject(root, "other_pids");
    for (int k = 0; k < o->other_pid_count; k++) {
        int i = o->server_pid_count + k;
        cJSON *p = cJSON_CreateObject();
        double c = bench_pid_cpu_delta(&r->window_start, &r->window_end, i);
        cJSON_AddNumberToObject(p, "pid", o->other_pids[k]);
        cJSON_AddNumberToObject(p, "cpu_pct", c < 0 || d.window_s <= 0 ? -1 : 100 * c / d.window_s);
        cJSON_AddNumberToObject(p, "rss_kib", (double)r->window_end.rss_kib[i]);
        cJSON_AddItemToArray(others, p);
    }
    cJSON_AddNumberToObject(srv, "cpu_pct", d.server_cpu_pct);
    cJSON_AddNumberToObject(srv, "cpu_s", d.server_cpu_s);
    cJSON_AddNumberToObject(srv, "cpu_us_per_delivery", d.cpu_us_per_delivery);
    cJSON_AddNumberToObject(srv, "rss_per_conn_kib", d.rss_per_conn_kib);
    cJSON_AddNumberToObject(srv, "cpu_ms_per_connect", d.cpu_ms_per_connect);
    cJSON_AddNumberToObject(srv, "window_s", d.window_s);

    cJSON *gen = cJSON_AddObjectToObject(root, "generator");
    cJSON_AddNumberToObject(gen, "cpu_pct", d.self_cpu_pct);
    cJSON_AddNumberToObject(gen, "busiest_thread_pct", d.busiest_thread_pct);
    cJSON_AddNumberToObject(gen, "machine_busy_pct", d.machine_busy_pct);
    cJSON_AddNumberToObject(gen, "other_pids_cpu_pct", d.other_cpu_pct);
    cJSON_AddNumberToObject(gen, "rest_cpu_pct", d.rest_cpu_pct);
    cJSON_AddNumberToObject(gen, "machine_irq_pct_of_core", d.machine_irq_pct * d.cpus);
    cJSON_AddNumberToObject(gen, "cpus", d.cpus);
    cJSON_AddBoolToObject(gen, "limited", r->generator_limited);
    cJSON_AddStringToObject(gen, "reason", r->generator_reason);
    cJSON_AddNumberToObject(gen, "frames_in", (double)st->frames_in);
    cJSON_AddNumberToObject(gen, "frames_out", (double)st->frames_out);

    cJSON *errs = cJSON_AddObjectToObject(root, "errors");
    for (int i = 0; i < BENCH_ERROR_KINDS && st->error_kinds[i].count; i++)
        cJSON_AddNumberToObject(errs, st->error_kinds[i].name, (double)st->error_kinds[i].count);

    bool clean = r->failed == 0 && r->lost == 0 && st->duplicated == 0 && st->out_of_order == 0 &&
                 st->unexpected == 0 && st->disconnects == 0;
    cJSON_AddBoolToObject(root, "clean", clean);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -1;
    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f) {
        rc = fputs(text, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
        if (fclose(f) != 0)
            rc = -1;
    }
    if (rc != 0)
        fprintf(stderr, "chat-bench: could not write %s\n", path);
    free(text);
    return rc;
}

/* ---------- plot ---------- */

static int bench_run_gnuplot(const char *script)
{
    pid_t pid;
    char *argv[] = {"gnuplot", (char *)script, NULL};
    if (posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) != 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int bench_report_plot(const struct bench_result *r, const char *path)
{
    const struct histogram *h = &r->st.latency;
    const struct bench_options *o = &r->b->opt;
    if (h->count == 0)
        return -1;
    size_t plen = strlen(path);
    bool svg = plen > 4 && strcmp(path + plen - 4, ".svg") == 0;
    char data[4096], script[4096];
    if (snprintf(data, sizeof(data), "%s.dat", path) >= (int)sizeof(data) ||
        snprintf(script, sizeof(script), "%s.gp", path) >= (int)sizeof(script))
        return -1;

    /* one row per non-empty bucket: upper edge (ms), fraction <= it, 1/(1-fraction) */
    FILE *f = fopen(data, "w");
    if (!f)
        return -1;
    fprintf(f, "# latency_ms cumulative_fraction inverse_tail\n");
    uint64_t seen = 0;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        if (!h->counts[i])
            continue;
        seen += h->counts[i];
        uint64_t edge = histogram_bucket_highest(i);
        if (edge > h->max)
            edge = h->max;
        double frac = (double)seen / (double)h->count;
        double inv = seen < h->count ? 1.0 / (1.0 - frac) : (double)h->count;
        fprintf(f, "%.4f %.8f %.3f\n", ms(edge), frac, inv);
    }
    if (fclose(f) != 0)
        return -1;

    f = fopen(script, "w");
    if (!f)
        return -1;
    fprintf(f,
            "set terminal %s size 1200,520%s\n"
            "set output '%s'\n"
            "set multiplot layout 1,2 title \"chat-bench %s%s%s — %llu deliveries, p50 %.2f ms, "
            "p99 %.2f ms, max %.2f ms, lost %llu\"\n"
            "set grid\n"
            "set key off\n"
            "set title 'Latency CDF (publish scheduled -> delivered)'\n"
            "set logscale x\n"
            "set xlabel 'latency (ms, log scale)'\n"
            "set ylabel 'fraction of deliveries'\n"
            "set yrange [0:1]\n"
            "plot '%s' using 1:2 with steps lw 2 lc rgb '#1f77b4'\n"
            "set title 'Percentile spectrum'\n"
            "set logscale x\n"
            "unset logscale y\n"
            "set xlabel 'percentile'\n"
            "set ylabel 'latency (ms)'\n"
            "set autoscale y\n"
            "set yrange [0:*]\n"
            "set xrange [1:*]\n"
            "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000, "
            "'99.999%%%%' 100000)\n"
            "plot '%s' using 3:1 with steps lw 2 lc rgb '#d62728'\n"
            "unset multiplot\n",
            svg ? "svg" : "pngcairo", svg ? " dynamic" : "", path, r->b->tag,
            o->label[0] ? " " : "", o->label, (unsigned long long)h->count,
            ms(histogram_percentile(h, 50)), ms(histogram_percentile(h, 99)), ms(histogram_max(h)),
            (unsigned long long)r->lost, data, data);
    if (fclose(f) != 0)
        return -1;
    return bench_run_gnuplot(script);
}
