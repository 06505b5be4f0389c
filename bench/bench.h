/*
 * bench — shared declarations of chat-bench, the load generator for wire protocol v1.
 *
 * Shape of a run (chat-bench.c drives it):
 *   plan      every connection gets a room (or none in --connections-only mode), a role
 *             (subscriber or publisher), a node URL, a source address and a worker thread;
 *   connect   each worker thread owns one lws context and opens its connections, a bounded
 *             number at a time; a connection is "ready" once it got `welcome` and `joined`;
 *   run       the main thread fixes t0 and wakes the workers; publishers send on an open-loop
 *             schedule (send i of publisher k is due at t0 + k/rate + i*publishers/rate,
 *             whatever happened to earlier sends), each message text carrying its scheduled
 *             and actual send times (CLOCK_MONOTONIC, same process), so a subscriber's latency
 *             is now - scheduled time: a stalled generator shows up as latency, it is not
 *             hidden (no coordinated omission);
 *   drain     after the last scheduled send, wait (bounded) until every expected delivery and
 *             every ack arrived; what never arrived is lost;
 *   report    the main thread merges the workers' histograms and counters (after joining the
 *             threads, so without locks) and prints/writes them.
 *
 * Ownership: a worker's connections, histograms and plain counters are touched only by its
 * own service thread until the thread has been joined. The few figures the main thread polls
 * while the run is going (ready, failed, sent, expected, delivered, acked) are C11 atomics.
 * The only lws call the main thread makes on a worker's context is lws_cancel_service().
 */
#ifndef CHAT_BENCH_H
#define CHAT_BENCH_H

#include "histogram.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_URLS 64
#define BENCH_MAX_PIDS 16 /* per list; samples hold servers then others */
#define BENCH_MAX_SOURCES 64
#define BENCH_MAX_THREADS 64
#define BENCH_WINDOW_WORDS 4 /* offsets remembered per connection for dup/order checks: 256 */
#define BENCH_ERROR_KINDS 8  /* distinct error codes / close codes remembered */

/* ---------- options (bench_options.c) ---------- */

struct bench_url {
    char host[256];
    int port;
    char path[512]; /* starts with '/' */
    bool tls;
    char text[800]; /* as given, for reports */
};

struct bench_options {
    struct bench_url urls[BENCH_MAX_URLS];
    int url_count;
    int rooms;
    int subs_per_room;
    int publishers;         /* per room */
    double rate;            /* total publishes per second, all publishers together */
    double duration_s;      /* measured publishing time (or hold time with --connections-only) */
    double warmup_s;        /* publishing before the measurement window (not counted) */
    int payload;            /* bytes of message text (at least what the bench header needs) */
    long connections_only;  /* > 0: open that many idle connections and hold them */
    const char *token;      /* one token for every connection, or NULL */
    const char *jwt_secret; /* HS256 secret to mint one token per connection, or NULL */
    uint64_t seed;
    bool seed_given;
    int server_pids[BENCH_MAX_PIDS];
    int server_pid_count;
    int other_pids[BENCH_MAX_PIDS]; /* sampled and reported apart, e.g. redis-server */
    int other_pid_count;
    const char *json_path;
    const char *plot_path;
    int threads;                         /* 0: automatic */
    char sources[BENCH_MAX_SOURCES][64]; /* local addresses to bind, round-robin; none = any */
    int source_count;
    double drain_timeout_s;
    double connect_timeout_s;
    int connect_concurrency; /* handshakes in flight per thread */
    const char *room_prefix; /* rooms are <prefix><run tag>-<n> */
    const char *label;       /* free text for the report header (e.g. the scenario name) */
    bool insecure;           /* wss: accept self-signed certificates */
    bool fail_on_loss;       /* exit 3 when anything was lost, duplicated or out of order */
    bool quiet;              /* no progress lines on stderr */
};

/* Fills *o from argv. Returns 0 to run, 1 when --help was printed, -1 on an error (printed to
 * stderr, naming the flag). */
int bench_options_parse(struct bench_options *o, int argc, char **argv);

/* Parses ws[s]://host[:port][/path]; 0 on success. */
int bench_url_parse(const char *text, struct bench_url *out);

/* ---------- server frames (bench_frame.c) ---------- */

/* The fields of a server frame the bench looks at; spans point into the frame buffer. */
struct bench_span {
    const char *p;
    size_t len;
};

struct bench_frame {
    struct bench_span type, room, text, code, id;
    uint64_t offset;
    bool has_offset;
};

/* Scans one JSON object (top level only; nested values are skipped, string values are not
 * unescaped). Returns 0, or -1 when buf is not a JSON object this scanner can walk. */
int bench_frame_scan(const char *buf, size_t len, struct bench_frame *f);

bool bench_span_eq(struct bench_span s, const char *lit);

/* What the bench writes into a message text: "<tag>|<publisher>|<seq>|<sched_ns>|<send_ns>|<m|w>|"
 * then 'x' padding. */
struct bench_stamp {
    uint32_t publisher;
    uint64_t seq;
    int64_t sched_ns;
    int64_t send_ns;
    bool measured; /* false: a warm-up message */
};

/* Writes the text (payload bytes, or the header alone if longer) into out (cap bytes);
 * returns its length, or 0 if it does not fit. */
size_t bench_stamp_write(char *out, size_t cap, const char *tag, const struct bench_stamp *s,
                         int payload);

/* Reads a stamp from a text; 0 on success, -1 when the text is not from this run (tag). */
int bench_stamp_read(const char *text, size_t len, const char *tag, struct bench_stamp *s);

/* ---------- a run ---------- */

enum bench_phase {
    BENCH_PHASE_CONNECT = 0, /* workers open and join */
    BENCH_PHASE_RUN,         /* publishers follow the schedule */
    BENCH_PHASE_STOP,        /* workers close everything and return */
};

enum bench_conn_state {
    CONN_WAITING = 0, /* not yet started */
    CONN_CONNECTING,  /* TCP + upgrade in flight */
    CONN_WELCOMING,   /* upgraded, waiting for welcome */
    CONN_JOINING,     /* join sent, waiting for joined */
    CONN_READY,       /* joined (or welcomed, for idle connections) */
    CONN_CLOSED,
    CONN_FAILED,
};

struct bench_worker;

struct bench_conn {
    struct bench_worker *worker;
    struct lws *wsi;
    char *path;       /* request path with ?token=...; owned unless path_shared */
    bool path_shared; /* --token: one path for every connection */
    uint32_t index;
    int32_t room;      /* -1: idle connection */
    int32_t publisher; /* global publisher number, -1: subscriber */
    uint16_t url;
    uint16_t source;   /* index into sources, or UINT16_MAX for none */
    uint8_t state;     /* enum bench_conn_state */
    bool join_pending; /* a join frame is waiting for WRITEABLE */
    bool close_pending;
    int64_t connect_start_ns;

    /* receive accounting: offsets <= joined_offset are never expected; `high` is the highest
     * offset delivered; bit i of window says whether offset high - i was delivered */
    uint64_t joined_offset;
    uint64_t high;
    uint64_t window[BENCH_WINDOW_WORDS];

    /* publisher: sends [0, seq_total) are scheduled, [0, seq_due) are due by now, [0, seq_sent)
     * went out; send i is scheduled at first_sched_ns + i * interval */
    uint64_t seq_sent;
    uint64_t seq_due;
    uint64_t seq_total;
    int64_t first_sched_ns;

    /* reassembly of a message that arrives in pieces */
    char *rx;
    size_t rx_len, rx_cap;
};

struct bench_error_kind {
    char name[32];
    uint64_t count;
};

struct bench_worker_stats {
    struct histogram latency;               /* deliver - scheduled send, µs */
    struct histogram latency_from_send;     /* deliver - actual send, µs */
    struct histogram send_lag;              /* actual send - scheduled send, µs */
    struct histogram ack_latency;           /* ack - scheduled send, µs */
    struct histogram connect_time;          /* connect start -> ready, µs */
    uint64_t measured_sent, measured_acked; /* publishes scheduled in the window */
    uint64_t warmup_sent, warmup_delivered;
    uint64_t duplicated, out_of_order, unexpected, foreign, disconnects;
    uint64_t errors; /* error frames answering publishes/joins */
    uint64_t bytes_in, frames_in, frames_out;
    uint64_t message_bytes_in, messages_in; /* `message` frames only: the fan-out frame size */
    struct bench_error_kind error_kinds[BENCH_ERROR_KINDS]; /* error codes, close codes */
    char first_failure[160];                                /* first connect error text */
};

struct bench;

struct bench_worker {
    struct bench *b;
    int id;
    pthread_t thread;
    bool started;
    struct lws_context *ctx;
    struct bench_conn **conns; /* this worker's connections, in connect order */
    size_t conn_count;
    size_t next_connect;
    int in_flight;
    size_t open_count;
    struct bench_conn **pubs; /* this worker's publishers */
    size_t pub_count;
    lws_sorted_usec_list_t pace_sul;
    lws_sorted_usec_list_t stop_sul;
    int seen_phase;
    bool pacing;
    int64_t stop_deadline_ns;

    struct bench_worker_stats st;

    /* polled by the main thread while the run goes on */
    _Atomic uint64_t ready, failed, closed;
    _Atomic uint64_t sent;      /* publishes written, warm-up included */
    _Atomic uint64_t answered;  /* acks + errors for them, warm-up included */
    _Atomic uint64_t expected;  /* measured publishes x (members - 1) */
    _Atomic uint64_t delivered; /* distinct measured deliveries */
};

struct bench {
    struct bench_options opt;
    char tag[16]; /* run tag in room names and message texts */
    int threads;
    size_t conn_count;
    struct bench_conn *conns;
    struct bench_worker *workers;
    char (*room_names)[96];
    size_t *room_name_len;
    char host_headers[BENCH_MAX_URLS][300]; /* "host:port" per URL */
    char *shared_paths[BENCH_MAX_URLS];     /* --token: the one request path per URL */
    uint32_t members_per_room;              /* subscribers + publishers */
    uint32_t publisher_count;               /* all rooms */
    double interval_ns;                     /* between two sends of one publisher */
    double gap_ns; /* between two consecutive sends of the whole generator */

    _Atomic int phase;          /* enum bench_phase */
    _Atomic int64_t t0_ns;      /* first scheduled send */
    _Atomic int64_t measure_ns; /* sends scheduled from here on are measured */
    _Atomic int64_t end_ns;     /* no send is scheduled at or after this */
};

int64_t bench_now_ns(void);

/* ---------- workers (bench_worker.c) ---------- */

/* Creates the worker's lws context (main thread, before the thread starts); 0 or -1. */
int bench_worker_init(struct bench_worker *w);
/* The service thread: connects, serves phases until STOP, closes, destroys the context. */
void *bench_worker_main(void *arg);
/* Wakes the worker's service loop from another thread (only lws_cancel_service inside). */
void bench_worker_wake(struct bench_worker *w);
void bench_worker_stats_init(struct bench_worker_stats *st);
void bench_worker_stats_merge(struct bench_worker_stats *dst, const struct bench_worker_stats *src);
void bench_error_count(struct bench_worker_stats *st, const char *name, size_t len);

/* ---------- /proc figures (bench_proc.c) ---------- */

struct bench_proc_sample {
    int64_t at_ns;
    /* index i < server_pid_count: server i; then the other pids */
    double cpu_s[2 * BENCH_MAX_PIDS]; /* user+sys seconds; < 0 if unreadable */
    long rss_kib[2 * BENCH_MAX_PIDS]; /* < 0 if unreadable */
    double self_cpu_s;                /* this process */
    double thread_cpu_s[BENCH_MAX_THREADS];
    uint64_t machine_busy, machine_total; /* /proc/stat jiffies */
    uint64_t machine_irq;                 /* of busy: irq + softirq jiffies */
};

void bench_proc_sample(struct bench_proc_sample *s, const int *pids, int pid_count,
                       const struct bench_worker *workers, int threads);
/* Raises RLIMIT_NOFILE to at least want (soft and, if permitted, hard); returns the new soft
 * limit. */
long bench_raise_nofile(long want);

/* ---------- report (bench_report.c) ---------- */

struct bench_result {
    const struct bench *b;
    struct bench_worker_stats st; /* merged */
    uint64_t sent, expected, delivered, acked, lost, ready, failed, closed;
    double measured_s; /* length of the measurement window */
    double wall_s;     /* window + drain */
    bool drained;      /* everything arrived before the drain timeout */
    double drain_s;
    double connect_s; /* time to open every connection */
    struct bench_proc_sample before_connect, after_connect, window_start, window_end;
    long rss_peak_kib[2 * BENCH_MAX_PIDS];
    bool generator_limited;
    char generator_reason[200];
};

void bench_report_print(const struct bench_result *r);
int bench_report_json(const struct bench_result *r, const char *path);
int bench_report_plot(const struct bench_result *r, const char *path);

#endif
