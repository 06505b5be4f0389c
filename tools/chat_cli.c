/*
 * chat-cli — a terminal client for wire protocol v1 (docs/protocol.md).
 *
 *   chat-cli --url ws://127.0.0.1:8080/ws --token JWT --room general
 *   chat-cli --url wss://127.0.0.1:8443/ws --insecure --jwt-secret S --sub alice --room general
 *
 * Each stdin line is published to the current room; lines starting with '/' are commands
 * (/join, /leave, /room, /dm, /who, /history, /typing, /ping, /quit, /help; "//x" sends "/x").
 * Incoming frames are printed one line each: chat content (messages, joins, typing, direct
 * messages, presence, history) on stdout, status and errors on stderr; --json prints every
 * frame verbatim on stdout instead, one per line.
 *
 * Script use (--non-interactive): a failed initial join exits at once; at stdin EOF the client
 * waits for the replies to everything it sent (and, with --expect N, for N incoming messages),
 * then closes with 1000. Every wait is bounded by --timeout. Exit status: 0 all answered
 * without error, 1 an error reply or a reply that never came, 2 usage, 3 could not connect or
 * the handshake was refused (the HTTP status is printed), 4 the server closed the connection.
 *
 * Threads. The main thread owns the lws context and every piece of session state. A reader
 * thread only reads stdin lines into a bounded, locked queue and wakes the main thread with
 * lws_cancel_service() (LWS_CALLBACK_EVENT_WAIT_CANCELLED); when the queue is full it blocks,
 * so a large input file is read no faster than the pacing lets it be sent. Publishes are paced
 * by a client-side token bucket matching the server's defaults (--rate, --burst), and at most
 * CLI_MAX_INFLIGHT requests await a reply at once.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "token_mint.h"

#define CLI_LINE_QUEUE_CAP 256         /* stdin lines buffered ahead of sending */
#define CLI_MAX_INFLIGHT 64            /* requests sent and not yet answered */
#define CLI_MAX_ROOMS 32               /* --room given on the command line */
#define CLI_RX_MAX (16u * 1024 * 1024) /* largest incoming frame we reassemble */
#define CLI_TICK_US (50 * 1000)        /* deadline and pacing checks */
#define CLI_LINE_MAX 65536             /* longer stdin lines are cut, with a warning */

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_REPLY_ERROR = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_CONNECT = 3,
    CLI_EXIT_CLOSED = 4
};

enum cli_phase { PHASE_CONNECTING, PHASE_JOINING, PHASE_READY, PHASE_CLOSING, PHASE_DONE };

struct cli_options {
    const char *url;
    char *token; /* owned */
    const char *rooms[CLI_MAX_ROOMS];
    int room_count;
    bool non_interactive;
    bool json;
    bool verbose;
    bool insecure;
    const char *ca_file;
    const char *origin;
    double timeout_s;
    double rate;
    double burst;
    long expect_messages;
};

/* One outgoing text frame, with LWS_PRE bytes of headroom before the payload. */
struct cli_out {
    struct cli_out *next;
    size_t len;
    unsigned char buf[];
};

struct cli_inflight {
    uint64_t id;      /* 0: slot free */
    int64_t deadline; /* monotonic ms */
    char what[80];    /* for messages: "join general", "publish general" */
    bool is_join;     /* an initial join: its failure ends a non-interactive run */
};

struct cli_line_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    char *lines[CLI_LINE_QUEUE_CAP];
    size_t head, count;
    bool eof;
};

struct cli {
    struct cli_options opt;
    struct lws_context *ctx;
    struct lws *wsi;
    lws_sorted_usec_list_t tick;
    enum cli_phase phase;
    int exit_code;
    int64_t connect_deadline;
    int64_t eof_deadline; /* set when stdin ended: bound on waiting for replies/messages */

    char *host_port_path; /* lws_parse_uri storage */
    char path[2048];

    struct cli_out *out_head, *out_tail;
    struct cli_inflight inflight[CLI_MAX_INFLIGHT];
    int inflight_count;
    uint64_t next_id;
    int joins_pending;

    char room[72]; /* current room for plain lines */
    double bucket;
    int64_t bucket_ms;

    unsigned char *rx;
    size_t rx_len, rx_cap;

    long messages_seen;
    int errors;
    int close_code;
    char close_reason[128];
    int64_t ping_sent_ms;

    struct cli_line_queue q;
    bool reader_started;
    char *held_line; /* taken from the queue, waiting for pacing */
};

static volatile sig_atomic_t cli_interrupted;
static struct lws_context *cli_signal_ctx;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints a status line to stderr, prefixed so it stands apart from chat content. */
static void status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("* ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
    if (cli_signal_ctx)
        lws_cancel_service(cli_signal_ctx); /* writes to a pipe: async-signal safe */
}

/* ---------- stdin reader thread ---------- */

/* Blocks while the queue is full; takes ownership of line. */
static void line_queue_push(struct cli *c, char *line)
{
    struct cli_line_queue *q = &c->q;
    pthread_mutex_lock(&q->lock);
    while (q->count == CLI_LINE_QUEUE_CAP)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->lines[(q->head + q->count) % CLI_LINE_QUEUE_CAP] = line;
    q->count++;
    pthread_mutex_unlock(&q->lock);
    lws_cancel_service(c->ctx);
}

/* Returns the oldest queued line (caller frees) or NULL; *eof tells whether stdin ended and
 * every line has been taken. */
static char *line_queue_pop(struct cli *c, bool *eof)
{
    struct cli_line_queue *q = &c->q;
    char *line = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->count) {
        line = q->lines[q->head];
        q->head = (q->head + 1) % CLI_LINE_QUEUE_CAP;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    *eof = q->eof && q->count == 0 && !line;
    pthread_mutex_unlock(&q->lock);
    return line;
}

static void *stdin_reader(void *arg)
{
    struct cli *c = arg;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, stdin)) >= 0) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            buf[--n] = '\0';
        if (n > CLI_LINE_MAX) {
            fprintf(stderr, "! line of %zd bytes cut to %d\n", n, CLI_LINE_MAX);
            buf[CLI_LINE_MAX] = '\0';
        }
        char *line = strdup(buf);
        if (!line)
            break;
        line_queue_push(c, line);
    }
    free(buf);
    pthread_mutex_lock(&c->q.lock);
    c->q.eof = true;
    pthread_mutex_unlock(&c->q.lock);
    lws_cancel_service(c->ctx);
    return NULL;
}

/* ---------- sending ---------- */

static int send_text(struct cli *c, const char *text)
{
    size_t len = strlen(text);
    struct cli_out *o = malloc(sizeof(*o) + LWS_PRE + len);
    if (!o) {
        fprintf(stderr, "! out of memory\n");
        return -1;
    }
    o->next = NULL;
    o->len = len;
    memcpy(o->buf + LWS_PRE, text, len);
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* Sends obj (consumed) with a fresh id when track is set; 0 on success. */
static int send_request(struct cli *c, cJSON *obj, const char *what, bool is_join)
{
    int rc = -1;
    struct cli_inflight *slot = NULL;
    for (int i = 0; i < CLI_MAX_INFLIGHT; i++) {
        if (c->inflight[i].id == 0) {
            slot = &c->inflight[i];
            break;
        }
    }
    if (slot) {
        uint64_t id = ++c->next_id;
        char idtext[32];
        snprintf(idtext, sizeof(idtext), "c%llu", (unsigned long long)id);
        if (cJSON_AddStringToObject(obj, "id", idtext)) {
            char *text = cJSON_PrintUnformatted(obj);
            if (text && send_text(c, text) == 0) {
                slot->id = id;
                slot->deadline = mono_ms() + (int64_t)(c->opt.timeout_s * 1000);
                snprintf(slot->what, sizeof(slot->what), "%s", what);
                slot->is_join = is_join;
                c->inflight_count++;
                rc = 0;
            }
            cJSON_free(text);
        }
    } else {
        fprintf(stderr, "! too many requests in flight\n");
    }
    cJSON_Delete(obj);
    return rc;
}

/* Sends a frame that gets no reply (typing). */
static void send_untracked(struct cli *c, cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    if (text)
        send_text(c, text);
    cJSON_free(text);
    cJSON_Delete(obj);
}

static cJSON *frame_new(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "type", type)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

static int send_room_request(struct cli *c, const char *type, const char *room, bool is_join)
{
    cJSON *o = frame_new(type);
    if (!o || !cJSON_AddStringToObject(o, "room", room)) {
        cJSON_Delete(o);
        return -1;
    }
    char what[80];
    snprintf(what, sizeof(what), "%s %s", type, room);
    return send_request(c, o, what, is_join);
}

static int send_publish(struct cli *c, const char *text)
{
    if (!c->room[0]) {
        fprintf(stderr, "! no room to publish to: start with --room R or type /join R\n");
        c->errors++;
        return -1;
    }
    cJSON *o = frame_new("publish");
    if (!o || !cJSON_AddStringToObject(o, "room", c->room) ||
        !cJSON_AddStringToObject(o, "text", text)) {
        cJSON_Delete(o);
        return -1;
    }
    char what[80];
    snprintf(what, sizeof(what), "publish %s", c->room);
    return send_request(c, o, what, false);
}

/* Client-side pacing: true when a publish may go now (and takes a token). */
static bool bucket_take(struct cli *c)
{
    if (c->opt.rate <= 0)
        return true;
    int64_t now = mono_ms();
    c->bucket += (double)(now - c->bucket_ms) * c->opt.rate / 1000.0;
    if (c->bucket > c->opt.burst)
        c->bucket = c->opt.burst;
    c->bucket_ms = now;
    if (c->bucket < 1.0)
        return false;
    c->bucket -= 1.0;
    return true;
}

static void print_help(void)
{
    fputs("commands:\n"
          "  <text>            publish to the current room (\"//x\" publishes \"/x\")\n"
          "  /join R           join room R and make it current\n"
          "  /leave [R]        leave R (default: the current room)\n"
          "  /room R           make R the current room\n"
          "  /dm USER TEXT     direct message\n"
          "  /who              who is online in the current room\n"
          "  /history [N]      the last N messages of the current room (default 20)\n"
          "  /typing           tell the room you are typing\n"
          "  /ping             round trip time\n"
          "  /quit             leave (also Ctrl-D, Ctrl-C)\n",
          stderr);
}

/* Makes room the target of plain lines; the server judges the name, we only bound it. */
static bool set_room(struct cli *c, const char *room)
{
    size_t len = strlen(room);
    if (len >= sizeof(c->room)) {
        fprintf(stderr, "! room names are at most 64 characters\n");
        return false;
    }
    memcpy(c->room, room, len + 1);
    return true;
}

/* Acts on one stdin line. Returns false when the line must wait (pacing or in-flight cap). */
static bool handle_line(struct cli *c, const char *line)
{
    if (c->inflight_count >= CLI_MAX_INFLIGHT)
        return false;
    if (line[0] == '/' && line[1] != '/') {
        char cmd[16] = "", arg[1024] = "";
        int n = sscanf(line + 1, "%15s %1023[^\n]", cmd, arg);
        if (n < 1) {
            print_help();
            return true;
        }
        if (strcmp(cmd, "join") == 0 && arg[0]) {
            if (set_room(c, arg))
                send_room_request(c, "join", arg, false);
        } else if (strcmp(cmd, "leave") == 0) {
            const char *room = arg[0] ? arg : c->room;
            if (room[0])
                send_room_request(c, "leave", room, false);
            if (strcmp(room, c->room) == 0)
                c->room[0] = '\0';
        } else if (strcmp(cmd, "room") == 0 && arg[0]) {
            set_room(c, arg);
        } else if (strcmp(cmd, "dm") == 0 && arg[0]) {
            if (!bucket_take(c))
                return false;
            char user[256] = "";
            int off = 0;
            sscanf(arg, "%255s %n", user, &off);
            cJSON *o = frame_new("direct");
            if (o && cJSON_AddStringToObject(o, "to", user) &&
                cJSON_AddStringToObject(o, "text", arg + off))
                send_request(c, o, "direct", false);
            else
                cJSON_Delete(o);
        } else if (strcmp(cmd, "who") == 0 && c->room[0]) {
            send_room_request(c, "presence", c->room, false);
        } else if (strcmp(cmd, "history") == 0 && c->room[0]) {
            cJSON *o = frame_new("history");
            long limit = arg[0] ? strtol(arg, NULL, 10) : 20;
            if (o && cJSON_AddStringToObject(o, "room", c->room) &&
                cJSON_AddNumberToObject(o, "limit", (double)(limit > 0 ? limit : 20)))
                send_request(c, o, "history", false);
            else
                cJSON_Delete(o);
        } else if (strcmp(cmd, "typing") == 0 && c->room[0]) {
            cJSON *o = frame_new("typing");
            if (o && cJSON_AddStringToObject(o, "room", c->room) &&
                cJSON_AddTrueToObject(o, "state"))
                send_untracked(c, o);
            else
                cJSON_Delete(o);
        } else if (strcmp(cmd, "ping") == 0) {
            c->ping_sent_ms = mono_ms();
            cJSON *o = frame_new("ping");
            if (o)
                send_request(c, o, "ping", false);
        } else if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) {
            cli_interrupted = 1;
        } else {
            print_help();
        }
        return true;
    }
    if (!bucket_take(c))
        return false;
    send_publish(c, line[0] == '/' ? line + 1 : line);
    return true;
}

/* ---------- printing incoming frames ---------- */

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_field(const cJSON *o, const char *name, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* "HH:MM:SS" local time of a server ts (ms), or of now when absent. */
static void format_time(const cJSON *frame, char *out, size_t len)
{
    double ms = num_field(frame, "ts", -1);
    time_t t = ms >= 0 ? (time_t)(ms / 1000) : time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, len, "%H:%M:%S", &tm);
}

/* "Alice (alice)" when a display name differs from the id, else the id. */
static void format_user(const cJSON *who, char *out, size_t len)
{
    const char *user = str_field(who, "user");
    const char *name = str_field(who, "name");
    if (!user)
        user = "?";
    if (name && name[0] && strcmp(name, user) != 0)
        snprintf(out, len, "%s (%s)", name, user);
    else
        snprintf(out, len, "%s", user);
}

static void print_message(const cJSON *f)
{
    char when[16], from[300];
    format_time(f, when, sizeof(when));
    const cJSON *sender = cJSON_GetObjectItemCaseSensitive(f, "from");
    format_user(sender ? sender : f, from, sizeof(from));
    const char *text = str_field(f, "text");
    char *data = NULL;
    if (!text) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(f, "data");
        data = d ? cJSON_PrintUnformatted(d) : NULL;
    }
    printf("[%s] #%s %s: %s\n", when, str_field(f, "room") ? str_field(f, "room") : "?", from,
           text   ? text
           : data ? data
                  : "");
    cJSON_free(data);
}

/* Finds and frees the in-flight slot for a reply id ("c<n>"); returns it or NULL. */
static struct cli_inflight *take_inflight(struct cli *c, const cJSON *id)
{
    if (!cJSON_IsString(id) || id->valuestring[0] != 'c')
        return NULL;
    uint64_t n = strtoull(id->valuestring + 1, NULL, 10);
    for (int i = 0; i < CLI_MAX_INFLIGHT; i++) {
        if (n && c->inflight[i].id == n) {
            c->inflight[i].id = 0;
            c->inflight_count--;
            return &c->inflight[i];
        }
    }
    return NULL;
}

static void start_reader(struct cli *c)
{
    if (c->reader_started)
        return;
    pthread_t t;
    if (pthread_create(&t, NULL, stdin_reader, c) != 0) {
        fprintf(stderr, "! cannot start the stdin reader\n");
        cli_interrupted = 1;
        return;
    }
    pthread_detach(t); /* may stay blocked in read() on a terminal; exit() ends it */
    c->reader_started = true;
}

static void handle_frame(struct cli *c, const char *text, size_t len)
{
    cJSON *f = cJSON_ParseWithLength(text, len);
    const char *type = f ? str_field(f, "type") : NULL;
    if (c->opt.json) {
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (!type) {
        if (!c->opt.json)
            printf("? %.*s\n", (int)len, text);
        cJSON_Delete(f);
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");
    struct cli_inflight *req = take_inflight(c, id);
    const char *room = str_field(f, "room");
    bool human = !c->opt.json;
    char when[16], who[300];

    if (strcmp(type, "welcome") == 0) {
        status("connected to node %s as %s (conn %s)", str_field(f, "node"), str_field(f, "user"),
               str_field(f, "conn"));
        c->phase = PHASE_JOINING;
        for (int i = 0; i < c->opt.room_count; i++) {
            if (send_room_request(c, "join", c->opt.rooms[i], true) == 0)
                c->joins_pending++;
        }
        if (c->opt.room_count)
            set_room(c, c->opt.rooms[0]);
        if (c->joins_pending == 0) {
            c->phase = PHASE_READY;
            start_reader(c);
        }
    } else if (strcmp(type, "joined") == 0) {
        status("joined #%s (offset %.0f%s)", room ? room : "?", num_field(f, "offset", 0),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "recovered")) ? ", recovered" : "");
    } else if (strcmp(type, "left") == 0) {
        status("left #%s", room ? room : "?");
    } else if (strcmp(type, "ack") == 0) {
        if (c->opt.verbose)
            status("ack %s offset %.0f", cJSON_IsString(id) ? id->valuestring : "?",
                   num_field(f, "offset", 0));
    } else if (strcmp(type, "pong") == 0) {
        status("pong in %lld ms", (long long)(mono_ms() - c->ping_sent_ms));
    } else if (strcmp(type, "error") == 0) {
        const char *code = str_field(f, "code");
        fprintf(stderr, "! %s%s%s: %s\n", req ? req->what : "error", req ? " failed, " : " ",
                code ? code : "?", str_field(f, "message") ? str_field(f, "message") : "");
        c->errors++;
    } else if (!human) {
        /* --json: already printed */
    } else if (strcmp(type, "message") == 0) {
        print_message(f);
    } else if (strcmp(type, "direct") == 0) {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(f, "from");
        format_time(f, when, sizeof(when));
        format_user(from ? from : f, who, sizeof(who));
        printf("[%s] %s -> %s: %s\n", when, who, str_field(f, "to") ? str_field(f, "to") : "?",
               str_field(f, "text") ? str_field(f, "text") : "");
    } else if (strcmp(type, "user_joined") == 0 || strcmp(type, "user_left") == 0) {
        format_time(f, when, sizeof(when));
        format_user(f, who, sizeof(who));
        printf("[%s] #%s %s %s\n", when, room ? room : "?", who,
               type[5] == 'j' ? "joined" : "left");
    } else if (strcmp(type, "typing") == 0) {
        bool on = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "state"));
        printf("#%s %s %s\n", room ? room : "?", str_field(f, "user") ? str_field(f, "user") : "?",
               on ? "is typing..." : "stopped typing");
    } else if (strcmp(type, "presence") == 0) {
        printf("#%s online:", room ? room : "?");
        const cJSON *u;
        cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(f, "users"))
        {
            format_user(u, who, sizeof(who));
            printf(" %s", who);
        }
        putchar('\n');
    } else if (strcmp(type, "history") == 0) {
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(f, "messages"))
        {
            print_message(m);
        }
    } else {
        printf("%.*s\n", (int)len, text);
    }

    if (strcmp(type, "message") == 0)
        c->messages_seen++;
    if (req && req->is_join) {
        if (strcmp(type, "error") == 0 && c->opt.non_interactive)
            cli_interrupted = 1; /* a script cannot go on without its room */
        if (--c->joins_pending == 0 && c->phase == PHASE_JOINING) {
            c->phase = PHASE_READY;
            start_reader(c);
        }
    }
    cJSON_Delete(f);
}

/* ---------- lws glue ---------- */

static void begin_close(struct cli *c)
{
    if (c->phase >= PHASE_CLOSING)
        return;
    c->phase = PHASE_CLOSING;
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
    else
        c->phase = PHASE_DONE;
}

/* Runs every CLI_TICK_US: takes stdin lines, enforces deadlines, decides when to finish. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct cli *c = lws_container_of(sul, struct cli, tick);
    int64_t now = mono_ms();

    if (c->phase == PHASE_CONNECTING && now > c->connect_deadline) {
        fprintf(stderr, "! no welcome from %s within %.0f s\n", c->opt.url, c->opt.timeout_s);
        c->exit_code = CLI_EXIT_CONNECT;
        c->phase = PHASE_DONE;
        return;
    }
    for (int i = 0; i < CLI_MAX_INFLIGHT; i++) {
        struct cli_inflight *r = &c->inflight[i];
        if (r->id && now > r->deadline) {
            fprintf(stderr, "! %s: no reply within %.0f s\n", r->what, c->opt.timeout_s);
            r->id = 0;
            c->inflight_count--;
            c->errors++;
            if (r->is_join && --c->joins_pending == 0 && c->phase == PHASE_JOINING) {
                if (c->opt.non_interactive)
                    cli_interrupted = 1;
                c->phase = PHASE_READY;
                start_reader(c);
            }
        }
    }
    if (cli_interrupted) {
        begin_close(c);
    } else if (c->phase == PHASE_READY) {
        bool eof = false;
        for (;;) {
            char *line = c->held_line ? c->held_line : line_queue_pop(c, &eof);
            c->held_line = NULL;
            if (!line)
                break;
            if (!handle_line(c, line)) {
                c->held_line = line;
                break;
            }
            free(line);
        }
        if (eof && !c->held_line) {
            if (!c->eof_deadline)
                c->eof_deadline = now + (int64_t)(c->opt.timeout_s * 1000);
            bool waited_enough =
                c->inflight_count == 0 && c->messages_seen >= c->opt.expect_messages;
            if (waited_enough) {
                begin_close(c);
            } else if (now > c->eof_deadline) {
                if (c->messages_seen < c->opt.expect_messages) {
                    fprintf(stderr, "! received %ld of %ld expected messages within %.0f s\n",
                            c->messages_seen, c->opt.expect_messages, c->opt.timeout_s);
                    c->errors++;
                }
                begin_close(c);
            }
        }
    }
    if (c->phase == PHASE_CLOSING && !c->wsi)
        c->phase = PHASE_DONE;
    if (c->phase != PHASE_DONE)
        lws_sul_schedule(c->ctx, 0, &c->tick, on_tick, CLI_TICK_US);
}

static int rx_append(struct cli *c, const void *in, size_t len)
{
    if (c->rx_len + len > CLI_RX_MAX) {
        fprintf(stderr, "! incoming frame over %u bytes\n", CLI_RX_MAX);
        return -1;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len)
            cap *= 2;
        unsigned char *p = realloc(c->rx, cap);
        if (!p)
            return -1;
        c->rx = p;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    struct cli *c = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = (unsigned char **)in, *end = *p + len;
        size_t tlen = strlen(c->opt.token);
        char *value = malloc(tlen + 8);
        if (!value)
            return -1;
        memcpy(value, "Bearer ", 7);
        memcpy(value + 7, c->opt.token, tlen + 1);
        int rc = lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                              (unsigned char *)value, (int)(tlen + 7), p, end);
        free(value);
        return rc ? -1 : 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        unsigned status_code = wsi ? lws_http_client_http_response(wsi) : 0;
        if (status_code)
            fprintf(stderr, "! handshake refused: HTTP %u (%s)\n", status_code,
                    status_code == 401   ? "bad or missing token"
                    : status_code == 403 ? "origin not allowed"
                    : status_code == 503 ? "node draining or not ready"
                                         : "unexpected answer");
        else
            fprintf(stderr, "! cannot connect to %s: %s%s\n", c->opt.url,
                    in ? (const char *)in : "unknown error",
                    in && strstr((const char *)in, "SSL") && !c->opt.insecure
                        ? " (a self-signed certificate? use --ca CERT or --insecure)"
                        : "");
        c->wsi = NULL;
        c->exit_code = CLI_EXIT_CONNECT;
        c->phase = PHASE_DONE;
        break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (c->out_head)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (rx_append(c, in, len) != 0)
            return -1;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            handle_frame(c, (const char *)c->rx, c->rx_len);
            c->rx_len = 0;
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        struct cli_out *o = c->out_head;
        if (o) {
            c->out_head = o->next;
            if (!c->out_head)
                c->out_tail = NULL;
            int n = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);
            free(o);
            if (n < 0)
                return -1;
            if (c->out_head || c->phase == PHASE_CLOSING)
                lws_callback_on_writable(wsi);
            break;
        }
        if (c->phase == PHASE_CLOSING) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
            return -1;
        }
        break;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *b = in;
            c->close_code = (b[0] << 8) | b[1];
            snprintf(c->close_reason, sizeof(c->close_reason), "%.*s",
                     (int)(len - 2 < 120 ? len - 2 : 120), (const char *)in + 2);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->wsi = NULL;
        if (c->phase != PHASE_CLOSING) {
            if (c->close_code)
                fprintf(stderr, "! server closed the connection: %d %s\n", c->close_code,
                        c->close_reason);
            else
                fprintf(stderr, "! connection lost\n");
            c->exit_code = CLI_EXIT_CLOSED;
        }
        c->phase = PHASE_DONE;
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* A stdin line arrived or a signal came: act now rather than at the next tick. */
        if (c->phase != PHASE_DONE)
            lws_sul_schedule(c->ctx, 0, &c->tick, on_tick, 1);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"chat-cli", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---------- options ---------- */

static void usage(FILE *to)
{
    fputs("usage: chat-cli --url ws[s]://HOST:PORT/ws (--token JWT | --sub ID [--name N]\n"
          "                [--jwt-secret S]) [--room R]... [options]\n"
          "  --url URL             WebSocket endpoint (default ws://127.0.0.1:8080/ws)\n"
          "  --token JWT           token to present (env CHAT_TOKEN)\n"
          "  --sub ID, --name N    mint an HS256 token for ID with --jwt-secret or env JWT_SECRET\n"
          "  --ttl S               lifetime of a minted token (default 3600)\n"
          "  --room R              join R at start (repeatable, or a comma list); the first is\n"
          "                        where plain lines go\n"
          "  --non-interactive     script mode: stop at the first failed join; at stdin EOF wait\n"
          "                        for every reply (and --expect), then close and exit\n"
          "  --expect N            in script mode, also wait for N incoming messages\n"
          "  --timeout S           bound on connecting and on every reply (default 10)\n"
          "  --rate R, --burst B   pace publishes (default 20/s, burst 40; 0 = no pacing)\n"
          "  --json                print every incoming frame verbatim, one per line\n"
          "  --verbose             also print acks\n"
          "  --insecure            wss: accept a self-signed certificate\n"
          "  --ca FILE             wss: trust this CA / certificate file\n"
          "  --origin O            send an Origin header\n"
          "exit: 0 ok, 1 an error reply or missing reply, 2 usage, 3 connect/handshake failed,\n"
          "      4 the server closed the connection\n",
          to);
}

static int parse_positive(const char *flag, const char *value, double *out, bool allow_zero)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || !end || *end || v < 0 || (!allow_zero && v == 0) || v > 1e9) {
        fprintf(stderr, "chat-cli: %s: '%s' is not a valid number\n", flag, value);
        return -1;
    }
    *out = v;
    return 0;
}

/* Splits a comma list into opt->rooms (pointers into list, which is modified). */
static int add_rooms(struct cli_options *opt, char *list)
{
    for (char *save = NULL, *r = strtok_r(list, ", ", &save); r; r = strtok_r(NULL, ", ", &save)) {
        if (opt->room_count == CLI_MAX_ROOMS) {
            fprintf(stderr, "chat-cli: at most %d rooms\n", CLI_MAX_ROOMS);
            return -1;
        }
        opt->rooms[opt->room_count++] = r;
    }
    return 0;
}

static int parse_options(struct cli_options *opt, int argc, char **argv)
{
    enum {
        O_URL = 256,
        O_TOKEN,
        O_SUB,
        O_NAME,
        O_SECRET,
        O_TTL,
        O_ROOM,
        O_NONINT,
        O_EXPECT,
        O_TIMEOUT,
        O_RATE,
        O_BURST,
        O_JSON,
        O_VERBOSE,
        O_INSECURE,
        O_CA,
        O_ORIGIN,
        O_HELP
    };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, O_URL},
        {"token", required_argument, NULL, O_TOKEN},
        {"sub", required_argument, NULL, O_SUB},
        {"name", required_argument, NULL, O_NAME},
        {"jwt-secret", required_argument, NULL, O_SECRET},
        {"ttl", required_argument, NULL, O_TTL},
        {"room", required_argument, NULL, O_ROOM},
        {"non-interactive", no_argument, NULL, O_NONINT},
        {"expect", required_argument, NULL, O_EXPECT},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"rate", required_argument, NULL, O_RATE},
        {"burst", required_argument, NULL, O_BURST},
        {"json", no_argument, NULL, O_JSON},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"insecure", no_argument, NULL, O_INSECURE},
        {"ca", required_argument, NULL, O_CA},
        {"origin", required_argument, NULL, O_ORIGIN},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *token = NULL, *sub = NULL, *name = NULL;
    const char *secret = getenv("JWT_SECRET");
    double ttl = 3600, expect = 0;
    opt->url = "ws://127.0.0.1:8080/ws";
    opt->timeout_s = 10;
    opt->rate = 20;
    opt->burst = 40;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int rc = 0;
        switch (ch) {
        case O_URL:
            opt->url = optarg;
            break;
        case O_TOKEN:
            token = optarg;
            break;
        case O_SUB:
            sub = optarg;
            break;
        case O_NAME:
            name = optarg;
            break;
        case O_SECRET:
            secret = optarg;
            break;
        case O_TTL:
            rc = parse_positive("--ttl", optarg, &ttl, false);
            break;
        case O_ROOM:
            rc = add_rooms(opt, optarg);
            break;
        case O_NONINT:
            opt->non_interactive = true;
            break;
        case O_EXPECT:
            rc = parse_positive("--expect", optarg, &expect, true);
            break;
        case O_TIMEOUT:
            rc = parse_positive("--timeout", optarg, &opt->timeout_s, false);
            break;
        case O_RATE:
            rc = parse_positive("--rate", optarg, &opt->rate, true);
            break;
        case O_BURST:
            rc = parse_positive("--burst", optarg, &opt->burst, false);
            break;
        case O_JSON:
            opt->json = true;
            break;
        case O_VERBOSE:
            opt->verbose = true;
            break;
        case O_INSECURE:
            opt->insecure = true;
            break;
        case O_CA:
            opt->ca_file = optarg;
            break;
        case O_ORIGIN:
            opt->origin = optarg;
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (rc)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "chat-cli: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    opt->expect_messages = (long)expect;
    /* An explicit --token wins, then minting for --sub, then env CHAT_TOKEN. */
    if (!token && !sub)
        token = getenv("CHAT_TOKEN");
    if (!token && sub) {
        if (!secret || !secret[0]) {
            fprintf(stderr, "chat-cli: --sub needs --jwt-secret or env JWT_SECRET\n");
            return -1;
        }
        opt->token = token_mint(AUTH_ALG_HS256, (const unsigned char *)secret, strlen(secret), sub,
                                name, NULL, 0, (int64_t)time(NULL), (int64_t)ttl, NULL, NULL);
        if (!opt->token) {
            fprintf(stderr, "chat-cli: cannot mint a token for sub '%s'\n", sub);
            return -1;
        }
    } else if (token && token[0]) {
        opt->token = strdup(token);
    }
    if (!opt->token) {
        fprintf(stderr, "chat-cli: give --token JWT (or env CHAT_TOKEN), or --sub with a secret\n");
        return -1;
    }
    return 0;
}

/* ---------- main ---------- */

int main(int argc, char **argv)
{
    static struct cli cli; /* zeroed; large (in-flight table, queue) */
    struct cli *c = &cli;
    if (parse_options(&c->opt, argc, argv) != 0)
        return CLI_EXIT_USAGE;
    setvbuf(stdout, NULL, _IOLBF, 0);
    lws_set_log_level(c->opt.verbose ? LLL_ERR | LLL_WARN : 0, NULL);

    char *url = strdup(c->opt.url);
    const char *scheme = NULL, *host = NULL, *path = NULL;
    int port = 0;
    if (!url || lws_parse_uri(url, &scheme, &host, &port, &path) ||
        (strcmp(scheme, "ws") && strcmp(scheme, "wss"))) {
        fprintf(stderr, "chat-cli: --url must look like ws://host:port/ws or wss://...\n");
        free(url);
        return CLI_EXIT_USAGE;
    }
    snprintf(c->path, sizeof(c->path), "/%s", path);
    bool tls = strcmp(scheme, "wss") == 0;

    pthread_mutex_init(&c->q.lock, NULL);
    pthread_cond_init(&c->q.not_full, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = c;
    info.gid = -1;
    info.uid = -1;
    info.pt_serv_buf_size = 32 * 1024; /* room for a 16 KiB token in the handshake */
    info.options = tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    info.client_ssl_ca_filepath = c->opt.ca_file;
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        fprintf(stderr, "chat-cli: cannot create the lws context\n");
        free(url);
        return CLI_EXIT_CONNECT;
    }
    cli_signal_ctx = c->ctx;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = c->ctx;
    ci.address = host;
    ci.port = port;
    ci.path = c->path;
    ci.host = host;
    ci.origin = c->opt.origin;
    ci.protocol = NULL; /* no subprotocol */
    ci.local_protocol_name = protocols[0].name;
    if (tls) {
        ci.ssl_connection = LCCSCF_USE_SSL;
        if (c->opt.insecure)
            ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                 LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    ci.pwsi = &c->wsi;
    c->connect_deadline = mono_ms() + (int64_t)(c->opt.timeout_s * 1000);
    c->bucket = c->opt.burst;
    c->bucket_ms = mono_ms();
    c->exit_code = CLI_EXIT_OK;

    if (!lws_client_connect_via_info(&ci) && c->phase != PHASE_DONE) {
        fprintf(stderr, "! cannot connect to %s\n", c->opt.url);
        c->exit_code = CLI_EXIT_CONNECT;
        c->phase = PHASE_DONE;
    }
    if (c->phase != PHASE_DONE)
        lws_sul_schedule(c->ctx, 0, &c->tick, on_tick, CLI_TICK_US);
    while (c->phase != PHASE_DONE) {
        if (lws_service(c->ctx, 0) < 0)
            break;
    }
    cli_signal_ctx = NULL;
    lws_context_destroy(c->ctx);

    int code = c->exit_code;
    if (code == CLI_EXIT_OK && c->errors)
        code = CLI_EXIT_REPLY_ERROR;
    while (c->out_head) {
        struct cli_out *o = c->out_head;
        c->out_head = o->next;
        free(o);
    }
    free(c->rx);
    free(c->opt.token);
    free(url);
    fflush(stdout);
    /* The reader thread may still block on a terminal; exit() ends it without a join. */
    exit(code);
}
