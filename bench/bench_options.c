/*
 * bench_options — chat-bench's command line. Every flag takes "--flag value" or "--flag=value";
 * list flags (--url, --server-pid, --source-addrs) are repeatable and accept comma lists.
 * Invalid input is reported once, naming the flag, and the bench does not start.
 */
#include "bench.h"

#include "protocol.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char bench_usage[] =
    "usage: chat-bench [flags]\n"
    "Load generator for the chat gateway's wire protocol v1 (latency, fan-out, throughput, "
    "scale).\n"
    "\n"
    "target\n"
    "  --url URL[,URL..]        node or load-balancer URLs, repeatable (ws://127.0.0.1:9001/ws);\n"
    "                           room members are spread round-robin over them\n"
    "  --token JWT              one token for every connection\n"
    "  --jwt-secret S           mint an HS256 token per connection (sub bench-<tag>-<n>);\n"
    "                           default: $JWT_SECRET when neither flag is given\n"
    "  --server-pid P[,P..]     server processes to sample from /proc (CPU, RSS), repeatable\n"
    "  --other-pid P[,P..]      more processes to sample, reported apart (e.g. redis-server)\n"
    "workload\n"
    "  --rooms N                rooms (10)\n"
    "  --subs-per-room N        subscribers per room (20)\n"
    "  --publishers N           publishers per room, also members (1)\n"
    "  --rate R                 publishes/s in total, open-loop schedule (100)\n"
    "  --duration S             measured seconds (10); hold time with --connections-only\n"
    "  --warmup S               publishing before the measurement, not counted (2)\n"
    "  --payload B              message text bytes (100; at least the 60-byte stamp)\n"
    "  --connections-only N     open N idle connections, hold them --duration, report memory/CPU\n"
    "  --seed N                 run tag / room names (default: from the clock)\n"
    "generator\n"
    "  --threads N              worker threads, one lws context each (auto)\n"
    "  --source-addrs A[,A..]|N local addresses to bind round-robin; N means 127.0.0.1..N\n"
    "  --connect-concurrency N  handshakes in flight per thread (200)\n"
    "  --connect-timeout S      give up opening connections after S (60)\n"
    "  --drain-timeout S        wait at most S for late deliveries after the last send (5)\n"
    "  --room-prefix P          room name prefix (bench-)\n"
    "  --insecure               wss: accept self-signed certificates\n"
    "output\n"
    "  --json FILE              JSON summary\n"
    "  --plot FILE              latency CDF plot, .png or .svg (needs gnuplot)\n"
    "  --label TEXT             scenario name shown in the report\n"
    "  --fail-on-loss           exit 3 when anything was lost, duplicated or out of order\n"
    "  --quiet                  no progress lines on stderr\n"
    "exit status: 0 run completed, 1 could not set up (connect/join), 2 bad flags, 3 loss with\n"
    "--fail-on-loss\n";

int bench_url_parse(const char *text, struct bench_url *out)
{
    memset(out, 0, sizeof(*out));
    if (strlen(text) >= sizeof(out->text))
        return -1;
    snprintf(out->text, sizeof(out->text), "%s", text);
    const char *p;
    if (strncmp(text, "ws://", 5) == 0) {
        p = text + 5;
        out->port = 80;
    } else if (strncmp(text, "wss://", 6) == 0) {
        p = text + 6;
        out->port = 443;
        out->tls = true;
    } else {
        return -1;
    }
    const char *host_end;
    const char *after;
    if (*p == '[') { /* [IPv6] */
        host_end = strchr(p, ']');
        if (!host_end)
            return -1;
        p++;
        after = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        after = host_end;
    }
    size_t host_len = (size_t)(host_end - p);
    if (host_len == 0 || host_len >= sizeof(out->host))
        return -1;
    memcpy(out->host, p, host_len);
    out->host[host_len] = '\0';
    if (*after == ':') {
        char *end;
        errno = 0;
        long port = strtol(after + 1, &end, 10);
        if (errno || end == after + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return -1;
        out->port = (int)port;
        after = end;
    }
    if (*after == '\0')
        snprintf(out->path, sizeof(out->path), "/ws");
    else if (*after == '/' && strlen(after) < sizeof(out->path))
        snprintf(out->path, sizeof(out->path), "%s", after);
    else
        return -1;
    return 0;
}

static int bench_parse_long(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "chat-bench: %s: '%s' is not an integer in %ld..%ld\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int bench_parse_double(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo) || !(x <= hi)) {
        fprintf(stderr, "chat-bench: %s: '%s' is not a number in %g..%g\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* Calls add(item) for every comma-separated, non-empty item of v. */
static int bench_each_item(const char *flag, const char *v, struct bench_options *o,
                           int (*add)(const char *flag, const char *item, struct bench_options *o))
{
    char buf[4096];
    if (strlen(v) >= sizeof(buf)) {
        fprintf(stderr, "chat-bench: %s: list too long\n", flag);
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", v);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (add(flag, item, o) != 0)
            return -1;
    }
    return 0;
}

static int bench_add_url(const char *flag, const char *item, struct bench_options *o)
{
    if (o->url_count >= BENCH_MAX_URLS) {
        fprintf(stderr, "chat-bench: %s: at most %d URLs\n", flag, BENCH_MAX_URLS);
        return -1;
    }
    if (bench_url_parse(item, &o->urls[o->url_count]) != 0) {
        fprintf(stderr, "chat-bench: %s: '%s' is not ws[s]://host[:port][/path]\n", flag, item);
        return -1;
    }
    o->url_count++;
    return 0;
}

static int bench_add_pid(const char *flag, const char *item, struct bench_options *o)
{
    long pid;
    if (o->server_pid_count >= BENCH_MAX_PIDS) {
        fprintf(stderr, "chat-bench: %s: at most %d pids\n", flag, BENCH_MAX_PIDS);
        return -1;
    }
    if (bench_parse_long(flag, item, 1, 1 << 30, &pid) != 0)
        return -1;
    o->server_pids[o->server_pid_count++] = (int)pid;
    return 0;
}

static int bench_add_other_pid(const char *flag, const char *item, struct bench_options *o)
{
    long pid;
    if (o->other_pid_count >= BENCH_MAX_PIDS) {
        fprintf(stderr, "chat-bench: %s: at most %d pids\n", flag, BENCH_MAX_PIDS);
        return -1;
    }
    if (bench_parse_long(flag, item, 1, 1 << 30, &pid) != 0)
        return -1;
    o->other_pids[o->other_pid_count++] = (int)pid;
    return 0;
}

static int bench_add_source(const char *flag, const char *item, struct bench_options *o)
{
    if (o->source_count >= BENCH_MAX_SOURCES || strlen(item) >= sizeof(o->sources[0])) {
        fprintf(stderr, "chat-bench: %s: at most %d addresses\n", flag, BENCH_MAX_SOURCES);
        return -1;
    }
    snprintf(o->sources[o->source_count++], sizeof(o->sources[0]), "%s", item);
    return 0;
}

static const char *const bench_valued_flags[] = {
    "--url",
    "--rooms",
    "--subs-per-room",
    "--publishers",
    "--rate",
    "--duration",
    "--warmup",
    "--payload",
    "--connections-only",
    "--token",
    "--jwt-secret",
    "--seed",
    "--server-pid",
    "--other-pid",
    "--json",
    "--plot",
    "--threads",
    "--source-addrs",
    "--drain-timeout",
    "--connect-timeout",
    "--connect-concurrency",
    "--room-prefix",
    "--label",
    NULL,
};

static bool bench_flag_known(const char *name)
{
    for (int i = 0; bench_valued_flags[i]; i++)
        if (strcmp(name, bench_valued_flags[i]) == 0)
            return true;
    return false;
}

static void bench_options_defaults(struct bench_options *o)
{
    memset(o, 0, sizeof(*o));
    o->rooms = 10;
    o->subs_per_room = 20;
    o->publishers = 1;
    o->rate = 100;
    o->duration_s = 10;
    o->warmup_s = 2;
    o->payload = 100;
    o->drain_timeout_s = 5;
    o->connect_timeout_s = 60;
    o->connect_concurrency = 200;
    o->room_prefix = "bench-";
    o->label = "";
}

int bench_options_parse(struct bench_options *o, int argc, char **argv)
{
    bench_options_defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(bench_usage, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "chat-bench: unexpected argument '%s' (see --help)\n", arg);
            return -1;
        }
        char name[64];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (name_len >= sizeof(name)) {
            fprintf(stderr, "chat-bench: unknown flag '%s' (see --help)\n", arg);
            return -1;
        }
        memcpy(name, arg, name_len);
        name[name_len] = '\0';

        /* flags without a value */
        if (strcmp(name, "--insecure") == 0 || strcmp(name, "--fail-on-loss") == 0 ||
            strcmp(name, "--quiet") == 0) {
            if (eq) {
                fprintf(stderr, "chat-bench: %s takes no value\n", name);
                return -1;
            }
            if (strcmp(name, "--insecure") == 0)
                o->insecure = true;
            else if (strcmp(name, "--fail-on-loss") == 0)
                o->fail_on_loss = true;
            else
                o->quiet = true;
            continue;
        }

        if (!bench_flag_known(name)) {
            fprintf(stderr, "chat-bench: unknown flag '%s' (see --help)\n", name);
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "chat-bench: %s needs a value (see --help)\n", name);
                return -1;
            }
            v = argv[++i];
        }
        long n;
        int rc = 0;
        if (strcmp(name, "--url") == 0) {
            rc = bench_each_item(name, v, o, bench_add_url);
        } else if (strcmp(name, "--rooms") == 0) {
            rc = bench_parse_long(name, v, 1, 1000000, &n);
            o->rooms = (int)n;
        } else if (strcmp(name, "--subs-per-room") == 0) {
            rc = bench_parse_long(name, v, 0, 1000000, &n);
            o->subs_per_room = (int)n;
        } else if (strcmp(name, "--publishers") == 0) {
            rc = bench_parse_long(name, v, 1, 100000, &n);
            o->publishers = (int)n;
        } else if (strcmp(name, "--rate") == 0) {
            rc = bench_parse_double(name, v, 0.001, 10e6, &o->rate);
        } else if (strcmp(name, "--duration") == 0) {
            rc = bench_parse_double(name, v, 0.1, 86400, &o->duration_s);
        } else if (strcmp(name, "--warmup") == 0) {
            rc = bench_parse_double(name, v, 0, 3600, &o->warmup_s);
        } else if (strcmp(name, "--payload") == 0) {
            rc = bench_parse_long(name, v, 0, 60000, &n);
            o->payload = (int)n;
        } else if (strcmp(name, "--connections-only") == 0) {
            rc = bench_parse_long(name, v, 1, 5000000, &n);
            o->connections_only = n;
        } else if (strcmp(name, "--token") == 0) {
            o->token = v;
        } else if (strcmp(name, "--jwt-secret") == 0) {
            o->jwt_secret = v;
        } else if (strcmp(name, "--seed") == 0) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 0);
            if (errno || end == v || *end) {
                fprintf(stderr, "chat-bench: --seed: '%s' is not an unsigned integer\n", v);
                return -1;
            }
            o->seed_given = true;
        } else if (strcmp(name, "--server-pid") == 0) {
            rc = bench_each_item(name, v, o, bench_add_pid);
        } else if (strcmp(name, "--other-pid") == 0) {
            rc = bench_each_item(name, v, o, bench_add_other_pid);
        } else if (strcmp(name, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(name, "--plot") == 0) {
            o->plot_path = v;
        } else if (strcmp(name, "--threads") == 0) {
            rc = bench_parse_long(name, v, 1, BENCH_MAX_THREADS, &n);
            o->threads = (int)n;
        } else if (strcmp(name, "--source-addrs") == 0) {
            char *end;
            long count = strtol(v, &end, 10);
            if (*v && !*end) { /* a count: 127.0.0.1 .. 127.0.0.N */
                if (count < 1 || count > BENCH_MAX_SOURCES) {
                    fprintf(stderr, "chat-bench: %s: count must be 1..%d\n", name,
                            BENCH_MAX_SOURCES);
                    return -1;
                }
                for (long k = 1; k <= count; k++)
                    snprintf(o->sources[o->source_count++], sizeof(o->sources[0]), "127.0.0.%ld",
                             k);
            } else {
                rc = bench_each_item(name, v, o, bench_add_source);
            }
        } else if (strcmp(name, "--drain-timeout") == 0) {
            rc = bench_parse_double(name, v, 0, 3600, &o->drain_timeout_s);
        } else if (strcmp(name, "--connect-timeout") == 0) {
            rc = bench_parse_double(name, v, 1, 3600, &o->connect_timeout_s);
        } else if (strcmp(name, "--connect-concurrency") == 0) {
            rc = bench_parse_long(name, v, 1, 100000, &n);
            o->connect_concurrency = (int)n;
        } else if (strcmp(name, "--room-prefix") == 0) {
            o->room_prefix = v;
        } else if (strcmp(name, "--label") == 0) {
            o->label = v;
        } else {
            fprintf(stderr, "chat-bench: unknown flag '%s' (see --help)\n", name);
            return -1;
        }
        if (rc != 0)
            return -1;
    }

    if (o->url_count == 0)
        bench_add_url("--url", "ws://127.0.0.1:9001/ws", o);
    if (o->token && o->jwt_secret) {
        fprintf(stderr, "chat-bench: --token and --jwt-secret exclude each other\n");
        return -1;
    }
    if (!o->token && !o->jwt_secret) {
        const char *env = getenv("JWT_SECRET");
        if (env && *env)
            o->jwt_secret = env;
    }
    if (!o->token && !o->jwt_secret) {
        fprintf(stderr, "chat-bench: give --token or --jwt-secret (or set JWT_SECRET)\n");
        return -1;
    }
    size_t prefix_len = strlen(o->room_prefix);
    if (prefix_len > 40 || (prefix_len > 0 && !proto_room_valid(o->room_prefix, prefix_len))) {
        fprintf(stderr, "chat-bench: --room-prefix: use at most 40 of [A-Za-z0-9_.:-]\n");
        return -1;
    }
    return 0;
}
