/*
 * chat_cli_send.c — outgoing frames and the requests that await a reply.
 *
 * Every request carries a fresh id ("c<n>") and a completion (as hiredis's
 * redisAsyncCommand does): the code that sends a request says what happens with its answer,
 * so there is no central switch on reply types. A completion runs exactly once — with the
 * reply, or with NULL and a reason when the deadline (--timeout) passes or the connection is
 * lost — and its slot is then freed. Frames are queued with LWS_PRE headroom and written from
 * LWS_CALLBACK_CLIENT_WRITEABLE (chat_cli_conn.c); frames still queued when a connection ends
 * are dropped with it (their requests have failed; rejoining re-creates what matters).
 */
#include <stdlib.h>
#include <string.h>

#include "chat_cli.h"

static int queue_text(struct cli *c, const char *text)
{
    size_t len = strlen(text);
    struct cli_out *o = malloc(sizeof(*o) + LWS_PRE + len);
    if (!o) {
        cli_error("out of memory");
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

struct cli_out *cli_out_pop(struct cli *c)
{
    struct cli_out *o = c->out_head;
    if (o) {
        c->out_head = o->next;
        if (!c->out_head)
            c->out_tail = NULL;
    }
    return o;
}

void cli_out_clear(struct cli *c)
{
    struct cli_out *o;
    while ((o = cli_out_pop(c)))
        free(o);
}

cJSON *cli_frame_new(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "type", type)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

/* Sends obj (consumed, may be NULL after a failed build) with a fresh id; returns the request
 * slot, for the caller to fill in what the completion needs, or NULL when nothing was sent. */
struct cli_request *cli_request_send(struct cli *c, cJSON *obj, cli_reply_fn *fn, const char *what)
{
    struct cli_request *slot = NULL;
    for (int i = 0; i < CLI_MAX_INFLIGHT && obj; i++) {
        if (c->requests[i].id == 0) {
            slot = &c->requests[i];
            break;
        }
    }
    if (obj && !slot)
        cli_error("%s: too many requests awaiting a reply", what);
    char idtext[32];
    uint64_t id = c->next_id + 1;
    snprintf(idtext, sizeof(idtext), "c%llu", (unsigned long long)id);
    char *text =
        slot && cJSON_AddStringToObject(obj, "id", idtext) ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text || queue_text(c, text) != 0) {
        cJSON_free(text);
        return NULL;
    }
    cJSON_free(text);
    c->next_id = id;
    memset(slot, 0, sizeof(*slot));
    slot->id = id;
    slot->deadline = cli_mono_ms() + (int64_t)(c->opt.timeout_s * 1000);
    slot->on_reply = fn;
    snprintf(slot->what, sizeof(slot->what), "%s", what);
    c->inflight_count++;
    return slot;
}

/* Sends a frame that gets no reply (typing). */
void cli_send_untracked(struct cli *c, cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    if (text)
        queue_text(c, text);
    cJSON_free(text);
    cJSON_Delete(obj);
}

/* Finds the in-flight request a reply id ("c<n>") answers, or NULL. */
struct cli_request *cli_request_take(struct cli *c, const cJSON *id)
{
    if (!cJSON_IsString(id) || id->valuestring[0] != 'c')
        return NULL;
    uint64_t n = strtoull(id->valuestring + 1, NULL, 10);
    for (int i = 0; i < CLI_MAX_INFLIGHT && n; i++) {
        if (c->requests[i].id == n)
            return &c->requests[i];
    }
    return NULL;
}

void cli_request_release(struct cli *c, struct cli_request *req)
{
    if (!req->id)
        return;
    free(req->text);
    memset(req, 0, sizeof(*req));
    c->inflight_count--;
}

/* Runs the completion of every request past its deadline. */
void cli_requests_expire(struct cli *c, int64_t now)
{
    char why[64];
    snprintf(why, sizeof(why), "no reply within %.0f s", c->opt.timeout_s);
    for (int i = 0; i < CLI_MAX_INFLIGHT; i++) {
        struct cli_request *r = &c->requests[i];
        if (r->id && now > r->deadline) {
            r->on_reply(c, r, NULL, why);
            cli_request_release(c, r);
        }
    }
}

/* Ends every request: with why, their completions run; with NULL (exit), they are dropped. */
void cli_requests_fail_all(struct cli *c, const char *why)
{
    for (int i = 0; i < CLI_MAX_INFLIGHT; i++) {
        struct cli_request *r = &c->requests[i];
        if (!r->id)
            continue;
        if (why)
            r->on_reply(c, r, NULL, why);
        cli_request_release(c, r);
    }
}

/* Client-side pacing: true when a publish may go now (and takes a token). */
bool cli_bucket_take(struct cli *c)
{
    if (c->opt.rate <= 0)
        return true;
    int64_t now = cli_mono_ms();
    c->bucket += (double)(now - c->bucket_ms) * c->opt.rate / 1000.0;
    if (c->bucket > c->opt.burst)
        c->bucket = c->opt.burst;
    c->bucket_ms = now;
    if (c->bucket < 1.0)
        return false;
    c->bucket -= 1.0;
    return true;
}

/* The common part of every completion: when the request failed or was answered with an
 * error, says so once (and counts it for the exit status) and returns true. */
bool cli_reply_is_error(struct cli *c, struct cli_request *req, const cJSON *reply,
                        const char *failure)
{
    if (!reply) {
        cli_error("%s: %s", req->what, failure);
        c->errors++;
        return true;
    }
    const char *type = cli_str_field(reply, "type");
    if (type && strcmp(type, "error") == 0) {
        const char *code = cli_str_field(reply, "code");
        const char *message = cli_str_field(reply, "message");
        cli_error("%s failed: %s%s%s", req->what, code ? code : "error", message ? ": " : "",
                  message ? message : "");
        c->errors++;
        return true;
    }
    return false;
}
