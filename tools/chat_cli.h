/*
 * chat_cli.h — the state chat-cli's modules share, and each module's entry points.
 *
 * chat-cli is one lws client process for wire protocol v1.1 (docs/protocol.md). Its files:
 *   chat_cli.c           process start and end, the lws context, the service loop, the tick
 *   chat_cli_options.c   command-line parsing and validation (room names, token sources)
 *   chat_cli_input.c     the stdin reader thread and its bounded line queue
 *   chat_cli_send.c      outgoing frames, and requests awaiting a reply (a completion each)
 *   chat_cli_commands.c  what a typed line does (one table row per command)
 *   chat_cli_frames.c    what an unsolicited incoming frame does, and how frames print
 *   chat_cli_rooms.c     joined rooms and each one's `since` position (no gap, no duplicate)
 *   chat_cli_conn.c      the WebSocket: connect, close, reconnect with backoff
 *   chat_cli_probe.c     the reason of a refused handshake (a plain GET of the same URL)
 *   chat_cli_token.c     where tokens come from (--token, --sub, --token-cmd) and refresh
 *
 * Threads: the main thread owns everything below; the stdin reader thread touches only
 * struct cli_line_queue (under its lock) and wakes the main thread with lws_cancel_service().
 *
 * Output: chat content (messages, directs, presence, history) on stdout; status lines ("* ")
 * and errors ("! ") on stderr; --json prints incoming frames verbatim on stdout instead.
 */
#ifndef CHAT_CLI_H
#define CHAT_CLI_H

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_LINE_QUEUE_CAP 256         /* stdin lines buffered ahead of sending */
#define CLI_MAX_INFLIGHT 64            /* requests sent and not yet answered */
#define CLI_MAX_ROOMS 100              /* the server's default rooms per connection */
#define CLI_ROOM_NAME_MAX 64           /* protocol: ^[A-Za-z0-9_.:-]{1,64}$ */
#define CLI_AHEAD_MAX 128              /* offsets seen past a gap, per room (see rooms.c) */
#define CLI_USER_MAX 128               /* protocol: sub is 1-128 bytes */
#define CLI_RX_MAX (16u * 1024 * 1024) /* largest incoming frame we reassemble */
#define CLI_TICK_US (50 * 1000)        /* deadline and pacing checks */
#define CLI_LINE_MAX 65536             /* longer stdin lines are cut, with a warning */
#define CLI_TOKEN_MAX (16 * 1024)      /* longest token accepted from --token-cmd */

enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_REPLY_ERROR = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_CONNECT = 3,
    CLI_EXIT_CLOSED = 4
};

enum cli_phase {
    PHASE_CONNECTING, /* a connection attempt is under way */
    PHASE_JOINING,    /* welcome received: (re)joining the rooms */
    PHASE_READY,      /* typed lines are sent */
    PHASE_WAITING,    /* disconnected: a refusal is being probed or a reconnect is scheduled */
    PHASE_CLOSING,    /* sending what is queued, then a 1000 close */
    PHASE_DONE
};

enum cli_token_source { TOKEN_STATIC, TOKEN_MINT, TOKEN_COMMAND };

struct cli_options {
    const char *url;
    const char *rooms[CLI_MAX_ROOMS]; /* validated names, pointers into argv */
    int room_count;
    bool non_interactive;
    bool json;
    bool verbose;
    bool insecure;
    bool reconnect;
    const char *ca_file;
    const char *origin;
    double timeout_s;
    double rate;
    double burst;
    long expect_messages;
    enum cli_token_source token_source;
    const char *token; /* TOKEN_STATIC: --token or env CHAT_TOKEN */
    const char *token_cmd;
    const char *sub, *name, *secret; /* TOKEN_MINT */
    double ttl;
};

/* A room the user is in. `last`/`ahead` say which offsets were already seen in `epoch`, so a
 * rejoin with since {last, epoch} neither misses nor repeats a message (rooms.c). */
struct cli_room {
    char name[CLI_ROOM_NAME_MAX + 1];
    bool joined;     /* a `joined` arrived on the current connection */
    bool have_since; /* last/epoch are known */
    int64_t last;    /* every offset <= last was seen (shown, or acked as our own) */
    char epoch[40];
    int64_t ahead[CLI_AHEAD_MAX]; /* offsets > last + 1 seen already (unordered) */
    int ahead_count;
    long replayed; /* messages recovered by the pending since-join */
};

struct cli;
struct cli_request;

/* A request's completion: reply is the answer (any type, error included), or NULL when none
 * will come; failure then says why ("no reply within 10 s", "connection lost"). */
typedef void cli_reply_fn(struct cli *c, struct cli_request *req, const cJSON *reply,
                          const char *failure);

struct cli_request {
    uint64_t id; /* 0: slot free */
    int64_t deadline;
    cli_reply_fn *on_reply;
    char what[96];                    /* for messages: "join #general", "publish #general" */
    char room[CLI_ROOM_NAME_MAX + 1]; /* the room it concerns, if any */
    char user[CLI_USER_MAX + 1];      /* the direct message's recipient */
    char *text;                       /* owned: the text published or sent, for the echo */
    int64_t ts;                       /* the direct's ack time, for its echo */
    bool initial;                     /* a join from --room: its failure ends a script */
    bool batch;                       /* one of the joins that (re)connecting sends */
    bool since_sent;                  /* a join with `since` */
};

/* One outgoing text frame, with LWS_PRE bytes of headroom before the payload. */
struct cli_out {
    struct cli_out *next;
    size_t len;
    unsigned char buf[];
};

struct cli_line_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    char *lines[CLI_LINE_QUEUE_CAP];
    size_t head, count;
    bool eof;
};

struct cli_probe {
    struct lws *wsi;
    bool active;
    uintptr_t generation;    /* callbacks of an abandoned probe carry an older one */
    unsigned upgrade_status; /* what the refused upgrade answered */
    unsigned status;         /* what the GET answered */
    char body[2048];
    size_t len;
    int64_t deadline;
};

struct cli {
    struct cli_options opt;
    struct lws_context *ctx;
    struct lws *wsi; /* the WebSocket; NULL while disconnected */
    char *url_copy;  /* lws_parse_uri storage for host/path */
    const char *host;
    int port;
    bool tls;
    char path[2048];

    enum cli_phase phase;
    int exit_code;
    bool ever_welcomed;
    uint16_t retry_count;  /* consecutive failed attempts (lws backoff table index) */
    int64_t ready_ms;      /* monotonic ms the connection became ready */
    int64_t offline_since; /* monotonic ms the connection was lost; 0 while connected */
    int64_t connect_deadline;
    int64_t eof_deadline;
    int close_code;
    char close_reason[128];
    lws_sorted_usec_list_t tick, reconnect_timer, refresh_timer;
    struct cli_probe probe;

    char *token;       /* owned */
    int64_t token_exp; /* seconds since the epoch; 0 unknown */
    int64_t token_got; /* when it was obtained, seconds since the epoch */
    bool refresh_unsupported;
    char me[CLI_USER_MAX + 1]; /* our user id, from welcome */

    struct cli_out *out_head, *out_tail;
    struct cli_request requests[CLI_MAX_INFLIGHT];
    int inflight_count;
    uint64_t next_id;
    int joins_pending;
    double bucket;
    int64_t bucket_ms;
    int64_t ping_sent_ms;

    struct cli_room rooms[CLI_MAX_ROOMS];
    int room_count;
    char current[CLI_ROOM_NAME_MAX + 1]; /* where plain lines go; "" none */

    unsigned char *rx;
    size_t rx_len, rx_cap;
    long messages_seen;
    int errors;

    struct cli_line_queue q;
    bool reader_started;
    char *held_line; /* taken from the queue, waiting for pacing or a connection */
    bool told_offline;
};

extern volatile sig_atomic_t cli_interrupted;

/* chat_cli.c */
int64_t cli_mono_ms(void);
void cli_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_schedule_tick(struct cli *c, int64_t us);

/* chat_cli_options.c */
int cli_options_parse(struct cli_options *opt, int argc, char **argv);
bool cli_room_name_valid(const char *name);

/* chat_cli_input.c */
void cli_input_init(struct cli *c);
void cli_input_start(struct cli *c);
char *cli_input_pop(struct cli *c, bool *eof);

/* chat_cli_send.c */
cJSON *cli_frame_new(const char *type);
struct cli_request *cli_request_send(struct cli *c, cJSON *obj, cli_reply_fn *fn, const char *what);
void cli_send_untracked(struct cli *c, cJSON *obj);
struct cli_request *cli_request_take(struct cli *c, const cJSON *id);
void cli_request_release(struct cli *c, struct cli_request *req);
void cli_requests_expire(struct cli *c, int64_t now);
void cli_requests_fail_all(struct cli *c, const char *why);
void cli_out_clear(struct cli *c);
struct cli_out *cli_out_pop(struct cli *c);
bool cli_bucket_take(struct cli *c);
bool cli_reply_is_error(struct cli *c, struct cli_request *req, const cJSON *reply,
                        const char *failure);

/* chat_cli_commands.c */
bool cli_command_line(struct cli *c, const char *line);

/* chat_cli_frames.c */
void cli_frame_handle(struct cli *c, const char *text, size_t len);
const char *cli_str_field(const cJSON *o, const char *name);
double cli_num_field(const cJSON *o, const char *name, double dflt);
void cli_format_time(const cJSON *frame, char *out, size_t len);
void cli_print_message(const cJSON *frame);

/* chat_cli_rooms.c */
struct cli_room *cli_room_find(struct cli *c, const char *name);
struct cli_room *cli_room_add(struct cli *c, const char *name);
void cli_room_remove(struct cli *c, struct cli_room *r);
bool cli_room_note(struct cli_room *r, int64_t offset);
int cli_room_send_join(struct cli *c, struct cli_room *r, bool initial);
int cli_rooms_rejoin(struct cli *c);
void cli_rooms_disconnected(struct cli *c);
void cli_room_reset(struct cli *c, const cJSON *frame);
void cli_room_set_current(struct cli *c, const char *name);

/* chat_cli_conn.c */
void cli_conn_start(struct cli *c);
void cli_conn_target(const struct cli *c, struct lws_client_connect_info *ci,
                     const char *protocol_name);
void cli_conn_welcomed(struct cli *c, const cJSON *welcome);
void cli_conn_joins_done(struct cli *c);
void cli_conn_refused(struct cli *c, unsigned status, const char *reason);
void cli_conn_check_deadlines(struct cli *c, int64_t now);
void cli_conn_append_auth(struct cli *c, struct lws *wsi, void *in, size_t len, int *rc);
extern const struct lws_protocols cli_protocols[];

/* chat_cli_probe.c */
void cli_probe_start(struct cli *c, unsigned upgrade_status);
void cli_probe_check_deadline(struct cli *c, int64_t now);
int cli_probe_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len);

/* chat_cli_token.c */
int cli_token_init(struct cli *c);
int cli_token_renew(struct cli *c);
bool cli_token_renewable(const struct cli *c);
void cli_token_schedule_refresh(struct cli *c);
void cli_token_free(struct cli *c);

#endif
