/*
 * chat-cli — a terminal client for wire protocol v1.1 (docs/protocol.md).
 *
 *   chat-cli --url ws://127.0.0.1:8080/ws --token JWT --room general
 *   chat-cli --url ws://127.0.0.1:8080/ws --token-cmd 'curl -s .../dev/token | jq -r .token'
 *   chat-cli --url wss://127.0.0.1:8443/ws --insecure --jwt-secret S --sub alice --room general
 *
 * Each stdin line is published to the current room; lines starting with '/' are commands
 * (/help lists them; "//x" sends "/x"). Incoming frames print one line each.
 *
 * The connection survives the server: a node draining (1001) is left for another at once, a
 * lost connection (1006, 1011, 4000, 4001) is retried with capped exponential backoff and
 * jitter, and every room is rejoined with `since`, so no message is missed or shown twice. A
 * refused handshake prints the server's reason; 401/403 end the program, 503 is retried.
 *
 * Script use (--non-interactive): a failed initial join exits at once; at stdin EOF the client
 * waits for the replies to everything it sent (and, with --expect N, for N incoming messages),
 * then closes with 1000. Every wait is bounded by --timeout, time spent reconnecting too. Exit
 * status: 0 all answered without error, 1 an error reply or a reply that never came, 2 usage,
 * 3 could not connect or the handshake was refused (the reason is printed), 4 the server
 * closed the connection for good.
 *
 * This file holds the process: start-up, the lws service loop and the periodic tick, which
 * moves stdin lines to the connection and enforces every deadline. Publishes are paced by a
 * client-side token bucket matching the server's defaults (--rate, --burst), and at most
 * CLI_MAX_INFLIGHT requests await a reply at once.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat_cli.h"

volatile sig_atomic_t cli_interrupted;
static struct lws_context *cli_signal_ctx;

int64_t cli_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A status line on stderr, prefixed so it stands apart from chat content. */
void cli_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("* ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* An error line on stderr. */
void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("! ", stderr);
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

/* At stdin EOF: a script waits (bounded) for its replies and expected messages, then closes;
 * an interactive user who typed Ctrl-D while disconnected just leaves. */
static void on_input_ended(struct cli *c, int64_t now)
{
    if (c->phase != PHASE_READY) {
        if (!c->opt.non_interactive)
            begin_close(c);
        return;
    }
    if (!c->eof_deadline)
        c->eof_deadline = now + (int64_t)(c->opt.timeout_s * 1000);
    if (c->inflight_count == 0 && c->messages_seen >= c->opt.expect_messages) {
        begin_close(c);
    } else if (now > c->eof_deadline) {
        if (c->messages_seen < c->opt.expect_messages) {
            cli_error("received %ld of %ld expected messages within %.0f s", c->messages_seen,
                      c->opt.expect_messages, c->opt.timeout_s);
            c->errors++;
        }
        begin_close(c);
    }
}

/* Hands queued stdin lines to the command handler until one has to wait. */
static void take_lines(struct cli *c, int64_t now)
{
    bool eof = false;
    if (!c->reader_started)
        return;
    for (;;) {
        char *line = c->held_line ? c->held_line : cli_input_pop(c, &eof);
        c->held_line = NULL;
        if (!line)
            break;
        if (!cli_command_line(c, line)) {
            c->held_line = line;
            break;
        }
        free(line);
        if (c->phase >= PHASE_CLOSING)
            return;
    }
    if (eof && !c->held_line)
        on_input_ended(c, now);
}

/* Runs every CLI_TICK_US (and at once when woken): deadlines, stdin lines, the end. */
static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct cli *c = lws_container_of(sul, struct cli, tick);
    int64_t now = cli_mono_ms();

    cli_conn_check_deadlines(c, now);
    cli_probe_check_deadline(c, now);
    cli_requests_expire(c, now);
    if (cli_interrupted)
        begin_close(c);
    else if (c->phase < PHASE_CLOSING)
        take_lines(c, now);
    if (c->phase == PHASE_CLOSING && !c->wsi)
        c->phase = PHASE_DONE;
    if (c->phase != PHASE_DONE)
        cli_schedule_tick(c, CLI_TICK_US);
}

void cli_schedule_tick(struct cli *c, int64_t us)
{
    lws_sul_schedule(c->ctx, 0, &c->tick, on_tick, us);
}

static int parse_url(struct cli *c)
{
    const char *scheme = NULL, *path = NULL;
    c->url_copy = strdup(c->opt.url);
    if (!c->url_copy || lws_parse_uri(c->url_copy, &scheme, &c->host, &c->port, &path) ||
        (strcmp(scheme, "ws") && strcmp(scheme, "wss"))) {
        fprintf(stderr, "chat-cli: --url must look like ws://host:port/ws or wss://...\n");
        return -1;
    }
    snprintf(c->path, sizeof(c->path), "/%s", path);
    c->tls = strcmp(scheme, "wss") == 0;
    return 0;
}

static struct lws_context *create_context(struct cli *c)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = cli_protocols;
    info.user = c;
    info.gid = -1;
    info.uid = -1;
    info.pt_serv_buf_size = 32 * 1024; /* room for a 16 KiB token in the handshake */
    info.options = c->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    info.client_ssl_ca_filepath = c->opt.ca_file;
    return lws_create_context(&info);
}

/* Sets up everything before the first connection; returns an exit code, or -1 to go on. */
static int start(struct cli *c, int argc, char **argv)
{
    if (cli_options_parse(&c->opt, argc, argv) != 0)
        return CLI_EXIT_USAGE;
    setvbuf(stdout, NULL, _IOLBF, 0);
    lws_set_log_level(c->opt.verbose ? LLL_ERR | LLL_WARN : 0, NULL);
    if (parse_url(c) != 0)
        return CLI_EXIT_USAGE;
    int rc = cli_token_init(c);
    if (rc >= 0)
        return rc;
    cli_input_init(c);
    c->ctx = create_context(c);
    if (!c->ctx) {
        fprintf(stderr, "chat-cli: cannot create the lws context\n");
        return CLI_EXIT_CONNECT;
    }
    cli_signal_ctx = c->ctx;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < c->opt.room_count; i++)
        cli_room_add(c, c->opt.rooms[i]);
    if (c->opt.room_count)
        cli_room_set_current(c, c->opt.rooms[0]);
    c->bucket = c->opt.burst;
    c->bucket_ms = cli_mono_ms();
    c->exit_code = CLI_EXIT_OK;
    return -1;
}

int main(int argc, char **argv)
{
    static struct cli cli; /* zeroed; large (rooms, in-flight table, queue) */
    struct cli *c = &cli;
    int code = start(c, argc, argv);
    if (code < 0) {
        cli_conn_start(c);
        if (c->phase != PHASE_DONE)
            cli_schedule_tick(c, CLI_TICK_US);
        while (c->phase != PHASE_DONE) {
            if (lws_service(c->ctx, 0) < 0)
                break;
        }
        code = c->exit_code;
        if (code == CLI_EXIT_OK && c->errors)
            code = CLI_EXIT_REPLY_ERROR;
    }
    cli_signal_ctx = NULL;
    if (c->ctx)
        lws_context_destroy(c->ctx);
    cli_requests_fail_all(c, NULL);
    cli_out_clear(c);
    free(c->rx);
    free(c->held_line);
    cli_token_free(c);
    free(c->url_copy);
    fflush(stdout);
    /* The reader thread may still block on a terminal; exit() ends it without a join. */
    exit(code);
}
