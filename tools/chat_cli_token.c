/*
 * chat_cli_token.c — where tokens come from, and keeping a connection alive past its token.
 *
 * Sources (chosen in chat_cli_options.c): a static --token, which can never be renewed (when
 * it expires the connection ends, for good); --sub, minted here with the HS256 secret; and
 * --token-cmd, a command run with /bin/sh -c whose trimmed stdout is the token. The last two
 * are "renewable": a fresh token is fetched at every reconnect, and a little before the
 * current one's `exp` it is sent in band (`refresh`, PROTOCOL.md §7) so the connection does
 * not end. The refresh goes out at exp minus a fifth of the token's lifetime (at least 1 s,
 * at most 60 s before it). `exp` is read from the token itself: its payload is base64url
 * (lws's decoder) JSON (cJSON); nothing here verifies it — that is the server's job.
 *
 * The command runs synchronously on the main thread (a token command is expected to take
 * milliseconds) but is bounded by --timeout: stdout is read with poll(), and a command still
 * running at the deadline is killed. Its stderr is the user's terminal, so its own error
 * messages show.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chat_cli.h"
#include "token_mint.h"

extern char **environ;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The `exp` claim of a JWT (seconds since the epoch), or 0 when it has none or is not a JWT. */
static int64_t token_exp(const char *jwt)
{
    const char *payload = strchr(jwt, '.');
    const char *end = payload ? strchr(payload + 1, '.') : NULL;
    if (!end)
        return 0;
    payload++;
    int len = (int)(end - payload);
    char *json = malloc((size_t)len + 4);
    if (!json)
        return 0;
    int n = lws_b64_decode_string_len(payload, len, json, len + 4);
    cJSON *claims = n > 0 ? cJSON_ParseWithLength(json, (size_t)n) : NULL;
    double exp = cli_num_field(claims, "exp", 0);
    cJSON_Delete(claims);
    free(json);
    return exp > 0 && exp < 1e15 ? (int64_t)exp + (exp > (double)(int64_t)exp) : 0;
}

/* Reads the child's stdout until EOF, the deadline, or CLI_TOKEN_MAX bytes. */
static size_t read_output(int fd, char *buf, int64_t deadline, bool *timed_out)
{
    size_t len = 0;
    *timed_out = false;
    for (;;) {
        int64_t left = deadline - cli_mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0) {
            *timed_out = true;
            break;
        }
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue; /* the deadline is checked above */
        ssize_t n = read(fd, buf + len, CLI_TOKEN_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == CLI_TOKEN_MAX)
            break;
    }
    buf[len] = '\0';
    return len;
}

/* Waits for pid until the deadline, then kills it; returns its wait status. */
static int reap(pid_t pid, int64_t deadline)
{
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (cli_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return status;
}

/* Trims whitespace; returns a malloc'd token or NULL with why set. */
static char *trimmed_token(char *out, size_t len, const char **why)
{
    char *start = out;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    while (len > (size_t)(start - out) && strchr(" \t\r\n", out[len - 1]))
        out[--len] = '\0';
    if (!*start) {
        *why = "it printed no token";
        return NULL;
    }
    if (strpbrk(start, " \t\r\n")) {
        *why = "it printed more than one word";
        return NULL;
    }
    char *token = strdup(start);
    if (!token)
        *why = "out of memory";
    return token;
}

/* Runs cmd with /bin/sh -c; returns its stdout, trimmed (malloc'd), or NULL after saying why. */
static char *run_token_command(const char *cmd, double timeout_s)
{
    static char out[CLI_TOKEN_MAX + 1];
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        cli_error("--token-cmd: cannot create a pipe: %s", strerror(errno));
        return NULL;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, "/bin/sh", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (err) {
        close(fds[0]);
        cli_error("--token-cmd: cannot run /bin/sh: %s", strerror(err));
        return NULL;
    }
    int64_t deadline = cli_mono_ms() + (int64_t)(timeout_s * 1000);
    bool timed_out;
    size_t len = read_output(fds[0], out, deadline, &timed_out);
    close(fds[0]);
    int status = reap(pid, deadline);
    const char *why = NULL;
    char *token = NULL;
    if (timed_out || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        why = "it did not finish in time";
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        why = "it failed";
    else
        token = trimmed_token(out, len, &why);
    if (!token)
        cli_error("--token-cmd: no fresh token: %s (status %d)", why,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return token;
}

static char *mint(const struct cli_options *opt)
{
    char *token = token_mint(AUTH_ALG_HS256, (const unsigned char *)opt->secret,
                             strlen(opt->secret), opt->sub, opt->name, NULL, 0, (int64_t)time(NULL),
                             (int64_t)opt->ttl, NULL, NULL);
    if (!token)
        fprintf(stderr, "chat-cli: cannot mint a token for sub '%s'\n", opt->sub);
    return token;
}

static void adopt(struct cli *c, char *token)
{
    free(c->token);
    c->token = token;
    c->token_exp = token_exp(token);
    c->token_got = wall_ms() / 1000;
}

bool cli_token_renewable(const struct cli *c)
{
    return c->opt.token_source != TOKEN_STATIC;
}

/* Gets a fresh token from a renewable source; 0 on success. */
int cli_token_renew(struct cli *c)
{
    char *token = c->opt.token_source == TOKEN_MINT
                      ? mint(&c->opt)
                      : run_token_command(c->opt.token_cmd, c->opt.timeout_s);
    if (!token)
        return -1;
    adopt(c, token);
    return 0;
}

/* The first token; returns an exit code, or -1 to go on. */
int cli_token_init(struct cli *c)
{
    if (c->opt.token_source == TOKEN_STATIC) {
        char *token = strdup(c->opt.token);
        if (!token)
            return CLI_EXIT_USAGE;
        adopt(c, token);
        return -1;
    }
    if (cli_token_renew(c) != 0)
        return c->opt.token_source == TOKEN_MINT ? CLI_EXIT_USAGE : CLI_EXIT_CONNECT;
    return -1;
}

void cli_token_free(struct cli *c)
{
    free(c->token);
    c->token = NULL;
}

static void refresh_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                          const char *failure)
{
    (void)req;
    const char *type = reply ? cli_str_field(reply, "type") : NULL;
    const char *code = reply ? cli_str_field(reply, "code") : NULL;
    if (!reply) {
        if (c->phase != PHASE_WAITING)
            cli_error("token refresh: %s", failure);
    } else if (type && strcmp(type, "refreshed") == 0) {
        double exp = cli_num_field(reply, "exp", 0);
        if (exp > 0)
            c->token_exp = (int64_t)exp;
        time_t until = (time_t)c->token_exp;
        char when[16];
        strftime(when, sizeof(when), "%H:%M:%S", localtime(&until));
        cli_status("token refreshed (valid until %s)", when);
        cli_token_schedule_refresh(c);
    } else if (code && (strcmp(code, "unknown_type") == 0 || strcmp(code, "bad_request") == 0)) {
        c->refresh_unsupported = true;
        cli_status("this server cannot refresh tokens in band; chat-cli reconnects with a "
                   "fresh token when this one expires");
    } else {
        const char *message = cli_str_field(reply, "message");
        cli_error("token refresh refused: %s%s%s; the connection ends when the current token "
                  "expires, and chat-cli then reconnects with a fresh one",
                  code ? code : "?", message ? ": " : "", message ? message : "");
    }
}

static void on_refresh_timer(lws_sorted_usec_list_t *sul)
{
    struct cli *c = lws_container_of(sul, struct cli, refresh_timer);
    if (c->phase != PHASE_JOINING && c->phase != PHASE_READY)
        return; /* offline: the reconnect fetches a fresh token anyway */
    if (cli_token_renew(c) != 0) {
        if (wall_ms() / 1000 < c->token_exp) /* try again while the current one lasts */
            lws_sul_schedule(c->ctx, 0, &c->refresh_timer, on_refresh_timer, 2 * LWS_US_PER_SEC);
        return;
    }
    cJSON *o = cli_frame_new("refresh");
    if (o && !cJSON_AddStringToObject(o, "token", c->token)) {
        cJSON_Delete(o);
        o = NULL;
    }
    cli_request_send(c, o, refresh_reply, "token refresh");
}

/* Schedules the in-band refresh of the current token, when it can be renewed and expires. */
void cli_token_schedule_refresh(struct cli *c)
{
    lws_sul_cancel(&c->refresh_timer);
    if (!cli_token_renewable(c) || !c->token_exp || c->refresh_unsupported)
        return;
    int64_t margin = (c->token_exp - c->token_got) / 5;
    margin = margin < 1 ? 1 : margin > 60 ? 60 : margin;
    int64_t delay_ms = (c->token_exp - margin) * 1000 - wall_ms();
    if (delay_ms < 0)
        delay_ms = 0;
    lws_sul_schedule(c->ctx, 0, &c->refresh_timer, on_refresh_timer, delay_ms * 1000);
}
