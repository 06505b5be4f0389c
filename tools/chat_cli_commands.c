/*
 * chat_cli_commands.c — what a typed line does.
 *
 * A plain line is published to the current room ("//x" publishes "/x"); a line starting with
 * '/' is a command. Commands are rows of one table, as Redis's command table: the flags hold
 * the preconditions (needs the connection, a current room, an argument, a publish token), and
 * they are checked in one place, cli_command_line(), before the row's handler runs. A line
 * that cannot go yet — offline, paced, too many requests in flight — is held and offered
 * again; a line that is wrong is answered at once, locally, in one line.
 *
 * Each request's completion is next to the command that sends it. Our own publishes are
 * echoed when acknowledged, with their offset; a direct message is echoed after its ack, and
 * then the recipient's online status is asked (presence with `user`), so sending to someone
 * offline says that nobody received it.
 */
#include <stdlib.h>
#include <string.h>

#include "chat_cli.h"

enum {
    CMD_ONLINE = 1 << 0, /* needs the connection: held while offline */
    CMD_ROOM = 1 << 1,   /* needs a current room */
    CMD_ARG = 1 << 2,    /* needs an argument */
    CMD_PACED = 1 << 3,  /* takes a publish token (the server counts direct with publish) */
};

struct cli_command {
    const char *name;
    const char *args;
    const char *help;
    unsigned flags;
    void (*run)(struct cli *c, const char *arg);
};

static const struct cli_command commands[];

static const char *me(const struct cli *c)
{
    return c->me[0] ? c->me : "me";
}

/* ---------- publishing ---------- */

static void publish_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                          const char *failure)
{
    if (cli_reply_is_error(c, req, reply, failure))
        return;
    double offset = cli_num_field(reply, "offset", -1);
    struct cli_room *r = cli_room_find(c, req->room);
    if (r && offset >= 0)
        cli_room_note(r, (int64_t)offset);
    if (c->opt.json)
        return;
    char when[16];
    cli_format_time(reply, when, sizeof(when));
    printf("[%s] #%s %s: %s  (sent, offset %.0f)\n", when, req->room, me(c),
           req->text ? req->text : "", offset);
}

static bool publish_line(struct cli *c, const char *text)
{
    if (!c->current[0]) {
        cli_error("no room to publish to: start with --room R or type /join R");
        c->errors++;
        return true;
    }
    if (!cli_bucket_take(c))
        return false;
    cJSON *o = cli_frame_new("publish");
    if (o && (!cJSON_AddStringToObject(o, "room", c->current) ||
              !cJSON_AddStringToObject(o, "text", text))) {
        cJSON_Delete(o);
        o = NULL;
    }
    char what[96];
    snprintf(what, sizeof(what), "publish #%s", c->current);
    struct cli_request *req = cli_request_send(c, o, publish_reply, what);
    if (req) {
        snprintf(req->room, sizeof(req->room), "%s", c->current);
        req->text = strdup(text); /* NULL (out of memory) echoes "" */
    }
    return true;
}

/* ---------- rooms ---------- */

/* A room argument as typed: "#general" means "general", as rooms are shown with a '#'. */
static const char *room_arg(const char *arg)
{
    return arg[0] == '#' ? arg + 1 : arg;
}

static bool valid_room_arg(const char *arg)
{
    if (cli_room_name_valid(arg))
        return true;
    cli_error("'%s' is not a room name (1-64 characters of A-Z a-z 0-9 _ . : -)", arg);
    return false;
}

static void cmd_join(struct cli *c, const char *typed)
{
    const char *arg = room_arg(typed);
    if (!valid_room_arg(arg))
        return;
    if (!cli_room_find(c, arg)) {
        struct cli_room *r = cli_room_add(c, arg);
        if (!r || cli_room_send_join(c, r, false) != 0)
            return;
    } else {
        cli_status("already in #%s; now talking there", arg);
    }
    cli_room_set_current(c, arg);
}

static void leave_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                        const char *failure)
{
    if (!cli_reply_is_error(c, req, reply, failure))
        cli_status("left #%s", req->room);
}

static void cmd_leave(struct cli *c, const char *arg)
{
    const char *name = arg[0] ? room_arg(arg) : c->current;
    struct cli_room *r = name[0] ? cli_room_find(c, name) : NULL;
    if (!name[0]) {
        cli_error("no room to leave");
        return;
    }
    if (!r) {
        cli_error("you are not in #%s", name);
        return;
    }
    cJSON *o = cli_frame_new("leave");
    if (o && !cJSON_AddStringToObject(o, "room", name)) {
        cJSON_Delete(o);
        o = NULL;
    }
    char what[96];
    snprintf(what, sizeof(what), "leave #%s", name);
    struct cli_request *req = cli_request_send(c, o, leave_reply, what);
    if (req)
        snprintf(req->room, sizeof(req->room), "%s", name);
    cli_room_remove(c, r); /* not rejoined after a reconnect, whatever the reply */
}

static void list_rooms(struct cli *c)
{
    char list[1024] = "";
    size_t used = 0;
    for (int i = 0; i < c->room_count && used < sizeof(list); i++) {
        bool current = strcmp(c->rooms[i].name, c->current) == 0;
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s#%s%s", i ? ", " : "",
                                 c->rooms[i].name, current ? " (current)" : "");
    }
    cli_status("rooms: %s", c->room_count ? list : "none (/join R)");
}

static void cmd_room(struct cli *c, const char *typed)
{
    const char *arg = room_arg(typed);
    if (!typed[0]) {
        list_rooms(c);
    } else if (valid_room_arg(arg)) {
        if (!cli_room_find(c, arg)) {
            cli_error("you have not joined #%s (/join %s joins it)", arg, arg);
            return;
        }
        cli_room_set_current(c, arg);
        cli_status("now talking in #%s", arg);
    }
}

static void cmd_rooms(struct cli *c, const char *arg)
{
    (void)arg;
    list_rooms(c);
}

/* ---------- direct messages ---------- */

static void echo_direct(struct cli *c, const struct cli_request *req)
{
    char when[16];
    cJSON *ts = cJSON_CreateObject();
    if (ts)
        cJSON_AddNumberToObject(ts, "ts", (double)req->ts);
    cli_format_time(ts, when, sizeof(when));
    cJSON_Delete(ts);
    if (!c->opt.json)
        printf("[%s] %s -> %s: %s\n", when, me(c), req->user, req->text ? req->text : "");
}

static void dm_presence_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                              const char *failure)
{
    (void)failure;
    echo_direct(c, req);
    const cJSON *online = reply ? cJSON_GetObjectItemCaseSensitive(reply, "online") : NULL;
    if (cJSON_IsFalse(online))
        cli_status("%s is offline; the message was not delivered to anyone", req->user);
}

/* The direct was accepted; whether anyone got it is the recipient's online status. */
static void dm_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                     const char *failure)
{
    if (cli_reply_is_error(c, req, reply, failure))
        return;
    req->ts = (int64_t)cli_num_field(reply, "ts", 0);
    cJSON *o = cli_frame_new("presence");
    if (o && !cJSON_AddStringToObject(o, "user", req->user)) {
        cJSON_Delete(o);
        o = NULL;
    }
    struct cli_request *ask = cli_request_send(c, o, dm_presence_reply, "presence");
    if (!ask) {
        echo_direct(c, req);
        return;
    }
    memcpy(ask->user, req->user, sizeof(ask->user));
    ask->ts = req->ts;
    ask->text = req->text; /* handed over */
    req->text = NULL;
}

static void cmd_dm(struct cli *c, const char *arg)
{
    size_t user_len = strcspn(arg, " \t");
    const char *text = arg + user_len + strspn(arg + user_len, " \t");
    if (user_len > CLI_USER_MAX) {
        cli_error("user ids are at most %d bytes", CLI_USER_MAX);
        return;
    }
    char user[CLI_USER_MAX + 1];
    memcpy(user, arg, user_len);
    user[user_len] = '\0';
    cJSON *o = cli_frame_new("direct");
    if (o &&
        (!cJSON_AddStringToObject(o, "to", user) || !cJSON_AddStringToObject(o, "text", text))) {
        cJSON_Delete(o);
        o = NULL;
    }
    char what[96 + CLI_USER_MAX];
    snprintf(what, sizeof(what), "direct to %s", user);
    struct cli_request *req = cli_request_send(c, o, dm_reply, what);
    if (req) {
        memcpy(req->user, user, user_len + 1);
        req->text = strdup(text);
    }
}

/* ---------- room queries ---------- */

static void presence_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                           const char *failure)
{
    if (cli_reply_is_error(c, req, reply, failure) || c->opt.json)
        return;
    printf("#%s online:", req->room);
    const cJSON *u;
    cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(reply, "users"))
    {
        const char *user = cli_str_field(u, "user"), *name = cli_str_field(u, "name");
        if (name && name[0] && user && strcmp(name, user) != 0)
            printf(" %s (%s)", name, user);
        else
            printf(" %s", user ? user : "?");
    }
    putchar('\n');
}

static void history_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                          const char *failure)
{
    if (cli_reply_is_error(c, req, reply, failure) || c->opt.json)
        return;
    const cJSON *m;
    int shown = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(reply, "messages"))
    {
        cli_print_message(m);
        shown++;
    }
    if (!shown)
        cli_status("#%s: no history", req->room);
}

/* Sends {type, room: current, extra number} with a completion. */
static void room_request(struct cli *c, const char *type, const char *room, const char *num_name,
                         double num, cli_reply_fn *fn)
{
    cJSON *o = cli_frame_new(type);
    if (o && (!cJSON_AddStringToObject(o, "room", room) ||
              (num_name && !cJSON_AddNumberToObject(o, num_name, num)))) {
        cJSON_Delete(o);
        o = NULL;
    }
    char what[96];
    snprintf(what, sizeof(what), "%s #%s", type, room);
    struct cli_request *req = cli_request_send(c, o, fn, what);
    if (req)
        snprintf(req->room, sizeof(req->room), "%s", room);
}

static void cmd_who(struct cli *c, const char *arg)
{
    (void)arg;
    room_request(c, "presence", c->current, NULL, 0, presence_reply);
}

static void cmd_history(struct cli *c, const char *arg)
{
    char *end = NULL;
    long limit = arg[0] ? strtol(arg, &end, 10) : 20;
    if (arg[0] && (*end || limit < 1 || limit > 1000)) {
        cli_error("usage: /history [N], N from 1 to 1000");
        return;
    }
    room_request(c, "history", c->current, "limit", (double)limit, history_reply);
}

static void cmd_typing(struct cli *c, const char *arg)
{
    (void)arg;
    cJSON *o = cli_frame_new("typing");
    if (o &&
        (!cJSON_AddStringToObject(o, "room", c->current) || !cJSON_AddTrueToObject(o, "state"))) {
        cJSON_Delete(o);
        o = NULL;
    }
    cli_send_untracked(c, o);
}

/* ---------- read markers (§8) ---------- */

static bool unsupported(struct cli *c, const cJSON *reply, const char *what)
{
    const char *code = reply ? cli_str_field(reply, "code") : NULL;
    if (!code || (strcmp(code, "unknown_type") != 0 && strcmp(code, "bad_request") != 0))
        return false;
    cli_error("this server does not support %s", what);
    c->errors++;
    return true;
}

static void read_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                       const char *failure)
{
    if (unsupported(c, reply, "read markers") || cli_reply_is_error(c, req, reply, failure))
        return;
    cli_status("#%s: marked read up to %.0f", req->room, cli_num_field(reply, "offset", 0));
}

static void cmd_read(struct cli *c, const char *arg)
{
    const char *name = arg[0] ? room_arg(arg) : c->current;
    struct cli_room *r = name[0] ? cli_room_find(c, name) : NULL;
    if (!r) {
        if (name[0])
            cli_error("you are not in #%s", name);
        else
            cli_error("no room to mark read");
        return;
    }
    room_request(c, "read", r->name, "offset", (double)r->last, read_reply);
}

static void unread_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                         const char *failure)
{
    if (unsupported(c, reply, "unread counts") || cli_reply_is_error(c, req, reply, failure))
        return;
    const cJSON *room;
    int listed = 0;
    cJSON_ArrayForEach(room, cJSON_GetObjectItemCaseSensitive(reply, "rooms"))
    {
        double unread = cli_num_field(room, "unread", 0);
        if (unread > 0) {
            cli_status("#%s: %.0f unread", cli_str_field(room, "room"), unread);
            listed++;
        }
    }
    if (!listed)
        cli_status("no unread messages");
}

static void cmd_unread(struct cli *c, const char *arg)
{
    (void)arg;
    cli_request_send(c, cli_frame_new("unread"), unread_reply, "unread");
}

/* ---------- the rest ---------- */

static void pong_reply(struct cli *c, struct cli_request *req, const cJSON *reply,
                       const char *failure)
{
    if (!cli_reply_is_error(c, req, reply, failure))
        cli_status("pong in %lld ms", (long long)(cli_mono_ms() - c->ping_sent_ms));
}

static void cmd_ping(struct cli *c, const char *arg)
{
    (void)arg;
    c->ping_sent_ms = cli_mono_ms();
    cli_request_send(c, cli_frame_new("ping"), pong_reply, "ping");
}

static void cmd_quit(struct cli *c, const char *arg)
{
    (void)c;
    (void)arg;
    cli_interrupted = 1;
}

static void cmd_help(struct cli *c, const char *arg)
{
    (void)c;
    (void)arg;
    fputs("commands:\n  <text>              publish to the current room (\"//x\" publishes "
          "\"/x\")\n",
          stderr);
    for (const struct cli_command *cmd = commands; cmd->name; cmd++) {
        char usage[48];
        snprintf(usage, sizeof(usage), "/%s%s%s", cmd->name, cmd->args[0] ? " " : "", cmd->args);
        fprintf(stderr, "  %-19s %s\n", usage, cmd->help);
    }
}

static const struct cli_command commands[] = {
    {"join", "R", "join room R and talk there", CMD_ONLINE | CMD_ARG, cmd_join},
    {"leave", "[R]", "leave R (default: the current room)", CMD_ONLINE, cmd_leave},
    {"room", "[R]", "talk in R (a room you joined); alone: list your rooms", 0, cmd_room},
    {"rooms", "", "list your rooms", 0, cmd_rooms},
    {"dm", "USER TEXT", "direct message", CMD_ONLINE | CMD_ARG | CMD_PACED, cmd_dm},
    {"who", "", "who is in the current room", CMD_ONLINE | CMD_ROOM, cmd_who},
    {"history", "[N]", "the last N messages of the current room (default 20)",
     CMD_ONLINE | CMD_ROOM, cmd_history},
    {"typing", "", "tell the room you are typing", CMD_ONLINE | CMD_ROOM, cmd_typing},
    {"read", "[R]", "mark R (default: current) read up to the last message", CMD_ONLINE, cmd_read},
    {"unread", "", "unread counts of your rooms", CMD_ONLINE, cmd_unread},
    {"ping", "", "round trip time", CMD_ONLINE, cmd_ping},
    {"help", "", "this list", 0, cmd_help},
    {"quit", "", "leave (also /exit, Ctrl-D, Ctrl-C)", 0, cmd_quit},
    {"exit", "", "leave", 0, cmd_quit},
    {NULL, NULL, NULL, 0, NULL},
};

static const struct cli_command *find_command(const char *name, size_t len)
{
    for (const struct cli_command *cmd = commands; cmd->name; cmd++) {
        if (strlen(cmd->name) == len && strncmp(cmd->name, name, len) == 0)
            return cmd;
    }
    return NULL;
}

/* Says once per outage that typed lines wait; returns false (the line is held). */
static bool hold_while_offline(struct cli *c)
{
    if (!c->told_offline && c->phase == PHASE_WAITING) {
        cli_status("not connected: what you type is sent once reconnected");
        c->told_offline = true;
    }
    return false;
}

/* Acts on one stdin line; false when it must wait (offline, pacing, in-flight cap). */
bool cli_command_line(struct cli *c, const char *line)
{
    if (line[0] != '/' || line[1] == '/') {
        if (!line[0] && !c->opt.non_interactive)
            return true; /* Enter on an empty line sends nothing */
        if (c->phase != PHASE_READY)
            return hold_while_offline(c);
        if (c->inflight_count >= CLI_MAX_INFLIGHT)
            return false;
        return publish_line(c, line[0] == '/' ? line + 1 : line);
    }
    const char *name = line + 1;
    size_t len = strcspn(name, " \t");
    static char arg[CLI_LINE_MAX + 1]; /* main thread only; too big for the stack */
    snprintf(arg, sizeof(arg), "%s", name + len + strspn(name + len, " \t"));
    for (size_t n = strlen(arg); n > 0 && (arg[n - 1] == ' ' || arg[n - 1] == '\t');)
        arg[--n] = '\0';
    const struct cli_command *cmd = find_command(name, len);
    if (!cmd) {
        cli_error("unknown command /%.*s (try /help)", (int)(len > 32 ? 32 : len), name);
        return true;
    }
    if ((cmd->flags & CMD_ONLINE) && c->phase != PHASE_READY)
        return hold_while_offline(c);
    if ((cmd->flags & CMD_ONLINE) && c->inflight_count >= CLI_MAX_INFLIGHT - 1)
        return false; /* -1: a direct's ack sends a presence request */
    if ((cmd->flags & CMD_ARG) && !arg[0]) {
        cli_error("usage: /%s %s", cmd->name, cmd->args);
        return true;
    }
    if ((cmd->flags & CMD_ROOM) && !c->current[0]) {
        cli_error("no current room: /join R first");
        return true;
    }
    if ((cmd->flags & CMD_PACED) && !cli_bucket_take(c))
        return false;
    cmd->run(c, arg);
    return true;
}
