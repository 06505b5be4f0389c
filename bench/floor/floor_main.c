/*
 * bench-floor — measures the kernel's CPU cost of one send() of a WebSocket frame per socket on
 * N loopback TCP sockets, one frame per send and k frames coalesced per send (floor.h says
 * why and how). bench/run.sh runs it after each workload scenario with that scenario's socket
 * count and message size, and prints the gateway's CPU per delivery as a multiple of it.
 *
 * This file: flags, the timed send loop of each case, the table and the JSON. The count of
 * bytes the drainer read must equal the bytes sent, or the run is reported as failed: a probe
 * that lost data would be measuring something else.
 */
#include "floor.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

struct floor_options {
    int sockets;
    int message_bytes; /* WebSocket payload; the frame adds its header */
    int coalesce[FLOOR_MAX_CASES];
    int case_count;
    double duration_s; /* per case, unless sends is set */
    uint64_t sends;    /* per case; 0: run for duration_s */
    double round_rate; /* rounds (one send per socket) per second; 0: as fast as possible */
    int sndbuf;
    const char *json_path;
    const char *label;
};

struct floor_case {
    int frames_per_send;
    uint64_t sends;
    double user_s, sys_s, wall_s;
};

static const char floor_usage[] =
    "usage: bench-floor [flags]\n"
    "CPU (user+sys) of one send() per socket on N loopback TCP sockets, round-robin, with a\n"
    "drainer process reading the other ends: the kernel's floor under a gateway's delivery.\n"
    "  --sockets N          connections (1000)\n"
    "  --message-bytes B    WebSocket message size; the frame adds its 2-10 byte header (120)\n"
    "  --coalesce K[,K..]   frames per send() for each case (1,8)\n"
    "  --duration S         seconds per case (2)\n"
    "  --sends N            sends per case instead of --duration\n"
    "  --round-rate R       pace the rounds (one send per socket) at R per second, as a\n"
    "                       scenario's publishes pace the gateway's; 0 = unpaced (0)\n"
    "  --sndbuf B           SO_SNDBUF of the sending sockets, as the gateway's --sndbuf (65536)\n"
    "  --json FILE          write the figures as JSON\n"
    "  --label TEXT         scenario name for the report\n"
    "exit status: 0 measured, 1 setup failed or the drainer did not read every byte, 2 bad "
    "flags\n";

static double floor_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until CLOCK_MONOTONIC reaches t (seconds); returns at once when it already has. */
static void floor_sleep_until(double t)
{
    struct timespec ts = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static double floor_timeval_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Parses "1,8" into o->coalesce; false on anything else. */
static bool floor_parse_cases(struct floor_options *o, const char *text)
{
    o->case_count = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long k = strtol(p, &end, 10);
        if (end == p || k < 1 || k > 1024 || o->case_count == FLOOR_MAX_CASES)
            return false;
        if (*end && *end != ',')
            return false;
        o->coalesce[o->case_count++] = (int)k;
        p = *end == ',' ? end + 1 : end;
    }
    return o->case_count > 0;
}

/* Returns 0 to run, 1 after --help, -1 on a bad flag (reported). */
static int floor_parse(struct floor_options *o, int argc, char **argv)
{
    *o = (struct floor_options){
        .sockets = 1000, .message_bytes = 120, .duration_s = 2, .sndbuf = 65536, .label = ""};
    floor_parse_cases(o, "1,8");
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            fputs(floor_usage, stdout);
            return 1;
        }
        if (!v) {
            fprintf(stderr, "bench-floor: %s needs a value (see --help)\n", flag);
            return -1;
        }
        char *end = NULL;
        bool ok = true;
        i++;
        if (strcmp(flag, "--sockets") == 0)
            ok = (o->sockets = (int)strtol(v, &end, 10)) >= 1 && !*end;
        else if (strcmp(flag, "--message-bytes") == 0)
            ok = (o->message_bytes = (int)strtol(v, &end, 10)) >= 1 && !*end &&
                 o->message_bytes <= (1 << 20);
        else if (strcmp(flag, "--coalesce") == 0)
            ok = floor_parse_cases(o, v);
        else if (strcmp(flag, "--duration") == 0)
            ok = (o->duration_s = strtod(v, &end)) > 0 && !*end;
        else if (strcmp(flag, "--sends") == 0)
            ok = (o->sends = strtoull(v, &end, 10)) >= 1 && !*end;
        else if (strcmp(flag, "--round-rate") == 0)
            ok = (o->round_rate = strtod(v, &end)) >= 0 && !*end;
        else if (strcmp(flag, "--sndbuf") == 0)
            ok = (o->sndbuf = (int)strtol(v, &end, 10)) >= 0 && !*end;
        else if (strcmp(flag, "--json") == 0)
            o->json_path = v;
        else if (strcmp(flag, "--label") == 0)
            o->label = v;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "bench-floor: bad flag or value: %s %s (see --help)\n", flag, v);
            return -1;
        }
    }
    return 0;
}

/* Bytes of a server-to-client WebSocket frame (unmasked) carrying message_bytes. */
static size_t floor_frame_bytes(int message_bytes)
{
    return (size_t)message_bytes + (message_bytes <= 125 ? 2 : message_bytes <= 65535 ? 4 : 10);
}

/* k text frames of message_bytes each, back to back, as the gateway would write them. */
static char *floor_frames(int message_bytes, int k, size_t *len)
{
    size_t frame = floor_frame_bytes(message_bytes);
    char *buf = malloc(frame * (size_t)k);
    if (!buf)
        return NULL;
    for (int f = 0; f < k; f++) {
        unsigned char *p = (unsigned char *)buf + frame * (size_t)f;
        size_t head = frame - (size_t)message_bytes;
        p[0] = 0x81; /* FIN + text */
        if (head == 2) {
            p[1] = (unsigned char)message_bytes;
        } else if (head == 4) {
            p[1] = 126;
            p[2] = (unsigned char)(message_bytes >> 8);
            p[3] = (unsigned char)message_bytes;
        } else {
            p[1] = 127;
            for (int b = 0; b < 8; b++)
                p[2 + b] = (unsigned char)((uint64_t)message_bytes >> (56 - 8 * b));
        }
        memset(p + head, 'x', (size_t)message_bytes);
    }
    *len = frame * (size_t)k;
    return buf;
}

static int floor_send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "bench-floor: send: %s\n", strerror(errno));
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One case: a warm-up round over every socket, then the timed round-robin sends. */
static int floor_measure(const struct floor_sockets *s, const struct floor_options *o, int k,
                         struct floor_case *c, uint64_t *bytes_sent)
{
    size_t len;
    char *buf = floor_frames(o->message_bytes, k, &len);
    if (!buf)
        return -1;
    memset(c, 0, sizeof(*c));
    c->frames_per_send = k;
    int rc = 0;
    for (int i = 0; i < s->count && rc == 0; i++)
        rc = floor_send_all(s->fds[i], buf, len);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = floor_now_s(), end = t0 + o->duration_s;
    int next = 0;
    uint64_t n = 0, rounds = 0;
    while (rc == 0) {
        if (o->sends ? n >= o->sends : (n % 256 == 0 && floor_now_s() >= end))
            break;
        rc = floor_send_all(s->fds[next], buf, len);
        n++;
        if (++next == s->count) {
            next = 0;
            if (o->round_rate > 0)
                floor_sleep_until(t0 + (double)++rounds / o->round_rate);
        }
    }
    getrusage(RUSAGE_SELF, &r1);
    c->wall_s = floor_now_s() - t0;
    c->sends = n;
    c->user_s = floor_timeval_s(r1.ru_utime) - floor_timeval_s(r0.ru_utime);
    c->sys_s = floor_timeval_s(r1.ru_stime) - floor_timeval_s(r0.ru_stime);
    *bytes_sent += (n + (uint64_t)s->count) * len;
    free(buf);
    return rc;
}

static double floor_us_per_send(const struct floor_case *c)
{
    return c->sends ? 1e6 * (c->user_s + c->sys_s) / (double)c->sends : 0;
}

static void floor_print(const struct floor_options *o, const struct floor_case *cases,
                        uint64_t sent, uint64_t drained, bool ok)
{
    printf("\nbench-floor%s%s: %d loopback TCP sockets, %zu-byte frames (%d B message + "
           "WebSocket header), SO_SNDBUF %d, drainer in a separate process, ",
           o->label[0] ? " — " : "", o->label, o->sockets, floor_frame_bytes(o->message_bytes),
           o->message_bytes, o->sndbuf);
    if (o->round_rate > 0)
        printf("rounds paced at %.1f/s\n", o->round_rate);
    else
        printf("unpaced\n");
    printf("%-12s %10s %14s %10s %11s %10s\n", "frames/send", "sends", "sender CPU s", "µs/send",
           "µs/frame", "sends/s");
    for (int i = 0; i < o->case_count; i++) {
        const struct floor_case *c = &cases[i];
        double us = floor_us_per_send(c);
        printf("%-12d %10llu %14.3f %10.2f %11.2f %10.0f\n", c->frames_per_send,
               (unsigned long long)c->sends, c->user_s + c->sys_s, us, us / c->frames_per_send,
               c->wall_s > 0 ? (double)c->sends / c->wall_s : 0);
    }
    printf("%-12s bytes sent %llu, read by the drainer %llu: %s\n", "check",
           (unsigned long long)sent, (unsigned long long)drained,
           ok ? "OK" : "FAILED (the figures above are not a floor)");
    fflush(stdout);
}

static int floor_write_json(const struct floor_options *o, const struct floor_case *cases,
                            uint64_t sent, uint64_t drained, bool ok)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "label", o->label);
    cJSON_AddNumberToObject(root, "sockets", o->sockets);
    cJSON_AddNumberToObject(root, "message_bytes", o->message_bytes);
    cJSON_AddNumberToObject(root, "frame_bytes", (double)floor_frame_bytes(o->message_bytes));
    cJSON_AddNumberToObject(root, "sndbuf", o->sndbuf);
    cJSON_AddNumberToObject(root, "round_rate", o->round_rate);
    cJSON *arr = cJSON_AddArrayToObject(root, "cases");
    for (int i = 0; i < o->case_count; i++) {
        const struct floor_case *c = &cases[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "frames_per_send", c->frames_per_send);
        cJSON_AddNumberToObject(j, "sends", (double)c->sends);
        cJSON_AddNumberToObject(j, "user_s", c->user_s);
        cJSON_AddNumberToObject(j, "sys_s", c->sys_s);
        cJSON_AddNumberToObject(j, "wall_s", c->wall_s);
        cJSON_AddNumberToObject(j, "cpu_us_per_send", floor_us_per_send(c));
        cJSON_AddNumberToObject(j, "cpu_us_per_frame", floor_us_per_send(c) / c->frames_per_send);
        cJSON_AddItemToArray(arr, j);
    }
    cJSON_AddNumberToObject(root, "bytes_sent", (double)sent);
    cJSON_AddNumberToObject(root, "bytes_drained", (double)drained);
    cJSON_AddBoolToObject(root, "ok", ok);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *f = text ? fopen(o->json_path, "w") : NULL;
    int rc = f && fprintf(f, "%s\n", text) > 0 ? 0 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "bench-floor: could not write %s\n", o->json_path);
    free(text);
    return rc;
}

/* Both ends of every connection live on this machine: the probe and its drainer. */
static void floor_raise_nofile(int sockets)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)sockets + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
    struct floor_options o;
    int rc = floor_parse(&o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    floor_raise_nofile(o.sockets);
    struct floor_sockets s;
    if (floor_sockets_open(&s, o.sockets, o.sndbuf) != 0)
        return 1;
    struct floor_case cases[FLOOR_MAX_CASES];
    memset(cases, 0, sizeof(cases)); /* a failed case leaves zeros, never garbage */
    uint64_t sent = 0, drained = 0;
    for (int i = 0; i < o.case_count && rc == 0; i++)
        rc = floor_measure(&s, &o, o.coalesce[i], &cases[i], &sent);
    bool ok = floor_sockets_close(&s, &drained) == 0 && rc == 0 && drained == sent;
    floor_print(&o, cases, sent, drained, ok);
    if (o.json_path && floor_write_json(&o, cases, sent, drained, ok) != 0)
        ok = false;
    return ok ? 0 : 1;
}
