/*
 * chat_cli_frames.c — incoming frames: replies go to their request's completion; every other
 * frame (welcome, message, direct, presence changes, typing, reset, read, errors without an
 * id) goes to one row of the table below. Also the printing helpers the completions share.
 *
 * A `message` is first checked against its room's `since` position (chat_cli_rooms.c): one
 * already seen — replayed by a since-join after we had it, or our own publish coming back in
 * a replay after its ack — is dropped before anything prints it, in --json mode too.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_cli.h"

const char *cli_str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double cli_num_field(const cJSON *o, const char *name, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* "HH:MM:SS" local time of a server ts (ms), or of now when absent. */
void cli_format_time(const cJSON *frame, char *out, size_t len)
{
    double ms = cli_num_field(frame, "ts", -1);
    time_t t = ms >= 0 ? (time_t)(ms / 1000) : time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, len, "%H:%M:%S", &tm);
}

/* "Alice (alice)" when a display name differs from the id, else the id. */
static void format_user(const cJSON *who, char *out, size_t len)
{
    const char *user = cli_str_field(who, "user");
    const char *name = cli_str_field(who, "name");
    if (!user)
        user = "?";
    if (name && name[0] && strcmp(name, user) != 0)
        snprintf(out, len, "%s (%s)", name, user);
    else
        snprintf(out, len, "%s", user);
}

static const char *or_unknown(const char *s)
{
    return s ? s : "?";
}

void cli_print_message(const cJSON *f)
{
    char when[16], from[300];
    cli_format_time(f, when, sizeof(when));
    const cJSON *sender = cJSON_GetObjectItemCaseSensitive(f, "from");
    format_user(sender ? sender : f, from, sizeof(from));
    const char *text = cli_str_field(f, "text");
    char *data = NULL;
    if (!text) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(f, "data");
        data = d ? cJSON_PrintUnformatted(d) : NULL;
    }
    printf("[%s] #%s %s: %s\n", when, or_unknown(cli_str_field(f, "room")), from,
           text   ? text
           : data ? data
                  : "");
    cJSON_free(data);
}

/* ---------- unsolicited frames, one handler each ---------- */

static void on_welcome(struct cli *c, const cJSON *f)
{
    cli_conn_welcomed(c, f);
}

static void on_message(struct cli *c, const cJSON *f)
{
    struct cli_room *r = cli_room_find(c, or_unknown(cli_str_field(f, "room")));
    if (r && !r->joined)
        r->replayed++; /* sent before the `joined` of a since-join: a recovered message */
    c->messages_seen++;
    if (!c->opt.json)
        cli_print_message(f);
}

static void on_direct(struct cli *c, const cJSON *f)
{
    char when[16], who[300];
    if (c->opt.json)
        return;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(f, "from");
    cli_format_time(f, when, sizeof(when));
    format_user(from ? from : f, who, sizeof(who));
    printf("[%s] %s -> %s: %s\n", when, who, or_unknown(cli_str_field(f, "to")),
           cli_str_field(f, "text") ? cli_str_field(f, "text") : "");
}

static void on_presence_change(struct cli *c, const cJSON *f)
{
    char when[16], who[300];
    if (c->opt.json)
        return;
    cli_format_time(f, when, sizeof(when));
    format_user(f, who, sizeof(who));
    bool joined = strcmp(cli_str_field(f, "type"), "user_joined") == 0;
    printf("[%s] #%s %s %s\n", when, or_unknown(cli_str_field(f, "room")), who,
           joined ? "joined" : "left");
}

static void on_typing(struct cli *c, const cJSON *f)
{
    if (c->opt.json)
        return;
    bool on = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "state"));
    printf("#%s %s %s\n", or_unknown(cli_str_field(f, "room")),
           or_unknown(cli_str_field(f, "user")), on ? "is typing..." : "stopped typing");
}

static void on_reset(struct cli *c, const cJSON *f)
{
    cli_room_reset(c, f);
}

/* Another member's read marker moved (§8): only worth a line with --verbose. */
static void on_read(struct cli *c, const cJSON *f)
{
    if (c->opt.verbose && !c->opt.json)
        cli_status("#%s: %s has read up to %.0f", or_unknown(cli_str_field(f, "room")),
                   or_unknown(cli_str_field(f, "user")), cli_num_field(f, "offset", 0));
}

static void on_error(struct cli *c, const cJSON *f)
{
    const char *message = cli_str_field(f, "message");
    cli_error("server: %s%s%s", or_unknown(cli_str_field(f, "code")), message ? ": " : "",
              message ? message : "");
    c->errors++;
}

static const struct {
    const char *type;
    void (*handle)(struct cli *c, const cJSON *frame);
} frame_table[] = {
    {"welcome", on_welcome},
    {"message", on_message},
    {"direct", on_direct},
    {"user_joined", on_presence_change},
    {"user_left", on_presence_change},
    {"typing", on_typing},
    {"reset", on_reset},
    {"read", on_read},
    {"error", on_error},
};

/* True when f is a message its room has already shown (see the file comment). */
static bool already_seen(struct cli *c, const cJSON *f, const char *type)
{
    if (strcmp(type, "message") != 0)
        return false;
    struct cli_room *r = cli_room_find(c, or_unknown(cli_str_field(f, "room")));
    double offset = cli_num_field(f, "offset", -1);
    return r && offset >= 0 && !cli_room_note(r, (int64_t)offset);
}

static void dispatch(struct cli *c, const cJSON *f, const char *type, const char *text, size_t len)
{
    if (already_seen(c, f, type))
        return;
    if (c->opt.json) {
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
    }
    for (size_t i = 0; i < sizeof(frame_table) / sizeof(frame_table[0]); i++) {
        if (strcmp(frame_table[i].type, type) == 0) {
            frame_table[i].handle(c, f);
            return;
        }
    }
    if (!c->opt.json)
        printf("%.*s\n", (int)len, text);
}

void cli_frame_handle(struct cli *c, const char *text, size_t len)
{
    cJSON *f = cJSON_ParseWithLength(text, len);
    const char *type = f ? cli_str_field(f, "type") : NULL;
    if (!type) {
        if (c->opt.json)
            printf("%.*s\n", (int)len, text);
        else
            printf("? %.*s\n", (int)len, text);
        cJSON_Delete(f);
        return;
    }
    struct cli_request *req = cli_request_take(c, cJSON_GetObjectItemCaseSensitive(f, "id"));
    if (req) {
        if (c->opt.json) {
            fwrite(text, 1, len, stdout);
            fputc('\n', stdout);
        }
        req->on_reply(c, req, f, NULL);
        cli_request_release(c, req);
    } else {
        dispatch(c, f, type, text, len);
    }
    cJSON_Delete(f);
}
