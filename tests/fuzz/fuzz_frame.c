/*
 * fuzz_frame — libFuzzer harness for the client frame decoder: proto_json_text_valid(),
 * proto_decode() and proto_request_free() (common/protocol.h). The input is one WebSocket text
 * message, exactly as a client could send it.
 *
 * Beyond "no crash, no leak, no undefined behaviour" (ASan/UBSan/LSan), every answer is held
 * to the contract in protocol.h:
 *  - text the byte-level pass refuses is a bad_request without an id;
 *  - an accepted frame yields fields a handler can use blindly: a valid room, a text of
 *    text_len bytes (no hidden NUL) within the limit and valid UTF-8, a direct target of
 *    1..128 bytes not starting with '@', history bounds in range;
 *  - the id, when set, is one JSON string or number that fits PROTO_ID_MAX;
 *  - the answer built from it (an error echoing the id, or the message frame carrying the
 *    text) is JSON that reads back to the same id and the same text.
 * Each input is decoded with the gateway's default text limit and with a tiny one, so the
 * too_large path is reached by ordinary inputs.
 */
#include "fuzz_check.h"
#include "protocol.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The id is JSON text the gateway pastes into answers verbatim: it must be one value. */
static void check_id(const char *id)
{
    size_t len = strlen(id);
    FUZZ_CHECK(len <= PROTO_ID_MAX);
    if (len == 0)
        return;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(id, len, &end, 0);
    FUZZ_CHECK(v != NULL);
    FUZZ_CHECK(end == id + len);
    FUZZ_CHECK(cJSON_IsString(v) || cJSON_IsNumber(v));
    cJSON_Delete(v);
}

/* An error answer echoing the id is an object whose "id" reads back as the same value (the
 * same string, or the same number: cJSON would print a number differently, so compare values). */
static void check_error_answer(const struct proto_request *req, enum proto_error e,
                               const char *message)
{
    char *out = proto_encode_error(req->id, e, message);
    FUZZ_CHECK(out != NULL);
    cJSON *o = cJSON_Parse(out);
    FUZZ_CHECK(cJSON_IsObject(o));
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    FUZZ_CHECK((id != NULL) == (req->id[0] != '\0'));
    if (id) {
        cJSON *want = cJSON_Parse(req->id);
        FUZZ_CHECK(want != NULL && (want->type & 0xFF) == (id->type & 0xFF));
        if (cJSON_IsString(id))
            FUZZ_CHECK(strcmp(id->valuestring, want->valuestring) == 0);
        else
            FUZZ_CHECK(id->valuedouble == want->valuedouble);
        cJSON_Delete(want);
    }
    cJSON_Delete(o);
    free(out);
}

/* The message frame built from an accepted publish carries the text byte for byte. */
static void check_message_round_trip(const struct proto_request *req)
{
    char *out =
        proto_encode_message(req->room, 1, 0, "fuzz-user", NULL, req->text, req->text_len, NULL);
    FUZZ_CHECK(out != NULL);
    cJSON *o = cJSON_Parse(out);
    FUZZ_CHECK(cJSON_IsObject(o));
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    FUZZ_CHECK(cJSON_IsString(text));
    FUZZ_CHECK(strlen(text->valuestring) == req->text_len);
    FUZZ_CHECK(memcmp(text->valuestring, req->text, req->text_len) == 0);
    cJSON_Delete(o);
    free(out);
}

static void check_text(const struct proto_request *req, size_t text_limit)
{
    FUZZ_CHECK(req->text != NULL);
    FUZZ_CHECK(strlen(req->text) == req->text_len);
    FUZZ_CHECK(req->text_len <= text_limit);
    FUZZ_CHECK(fuzz_utf8_valid(req->text, req->text_len));
}

static void check_user(const char *user)
{
    size_t len = strlen(user);
    FUZZ_CHECK(len >= 1 && len <= PROTO_USER_MAX);
    FUZZ_CHECK(fuzz_utf8_valid(user, len));
}

/* What a handler relies on once proto_decode() said PROTO_OK. */
static void check_accepted(const struct proto_request *req, size_t text_limit)
{
    FUZZ_CHECK((unsigned)req->type < PROTO_TYPE_COUNT);
    bool has_room = req->type != PROTO_PING && req->type != PROTO_DIRECT &&
                    req->type != PROTO_REFRESH && req->type != PROTO_UNREAD &&
                    !(req->type == PROTO_PRESENCE && req->to);
    if (req->type == PROTO_REFRESH)
        FUZZ_CHECK(req->token && req->token[0] && strlen(req->token) <= PROTO_TOKEN_MAX);
    FUZZ_CHECK(proto_room_valid(req->room, strlen(req->room)) == has_room);
    if (req->type == PROTO_PUBLISH || req->type == PROTO_DIRECT)
        check_text(req, text_limit);
    if (req->type == PROTO_DIRECT) {
        check_user(req->to);
        FUZZ_CHECK(req->to[0] != '@');
    }
    if (req->type == PROTO_PRESENCE && req->to)
        check_user(req->to);
    FUZZ_CHECK(req->limit >= 1 && req->limit <= PROTO_HISTORY_MAX);
    FUZZ_CHECK(!req->has_before || req->before >= 1);
    if (req->has_since) {
        size_t n = strlen(req->since_epoch);
        FUZZ_CHECK(n >= 1 && n <= PROTO_EPOCH_MAX);
    }
    if (req->type == PROTO_PUBLISH)
        check_message_round_trip(req);
}

static void decode_once(const char *buf, size_t len, size_t text_limit, bool text_valid)
{
    struct proto_request req;
    const char *message = NULL;
    enum proto_error e = proto_decode(buf, len, text_limit, &req, &message);
    FUZZ_CHECK((unsigned)e < PROTO_ERR_COUNT);
    check_id(req.id);
    if (!text_valid) {
        FUZZ_CHECK(e == PROTO_ERR_BAD_REQUEST);
        FUZZ_CHECK(req.id[0] == '\0');
    }
    if (e == PROTO_OK) {
        check_accepted(&req, text_limit);
    } else {
        FUZZ_CHECK(message != NULL && message[0] != '\0');
        check_error_answer(&req, e, message);
    }
    proto_request_free(&req);
    proto_request_free(&req); /* documented as safe twice */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    bool text_valid = proto_json_text_valid(buf, size);
    decode_once(buf, size, 4096, text_valid);
    decode_once(buf, size, 8, text_valid);
    return 0;
}
