/*
 * fuzz_api_body — libFuzzer harness for the backend API body decoder, proto_decode_api()
 * (common/protocol.h, PROTOCOL.md §6). The input is an HTTP request body; each input is decoded
 * as a publish body and as a direct body, with the default text limit and a tiny one.
 *
 * Invariants besides the sanitizers: a body the byte-level pass refuses is a bad_request; an
 * accepted body has exactly one of text and data; its room (publish) or target (direct) obeys
 * the same rules as a client frame; a text is valid UTF-8 of text_len bytes within the limit;
 * data is the compact JSON of one value, which reads back and prints to the same text, so the
 * gateway can embed it verbatim in a message frame; and that frame is valid JSON.
 */
#include "fuzz_check.h"
#include "protocol.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* data_json is pasted into frames verbatim: it must be one value and already compact. */
static void check_data(const char *data_json)
{
    size_t len = strlen(data_json);
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(data_json, len, &end, 0);
    FUZZ_CHECK(v != NULL);
    FUZZ_CHECK(end == data_json + len);
    char *again = cJSON_PrintUnformatted(v);
    FUZZ_CHECK(again != NULL && strcmp(again, data_json) == 0);
    free(again);
    cJSON_Delete(v);
}

/* The frame members would receive for an accepted publish body parses as a JSON object. */
static void check_frame(const struct proto_api_request *r)
{
    char *out =
        proto_encode_message(r->room, 7, 0, "@server", NULL, r->text, r->text_len, r->data_json);
    FUZZ_CHECK(out != NULL);
    cJSON *o = cJSON_Parse(out);
    FUZZ_CHECK(cJSON_IsObject(o));
    cJSON_Delete(o);
    free(out);
}

static void check_accepted(const struct proto_api_request *r, bool direct, size_t text_limit)
{
    FUZZ_CHECK((r->text != NULL) != (r->data_json != NULL));
    if (direct) {
        FUZZ_CHECK(r->to != NULL);
        size_t n = strlen(r->to);
        FUZZ_CHECK(n >= 1 && n <= PROTO_USER_MAX && r->to[0] != '@');
        FUZZ_CHECK(fuzz_utf8_valid(r->to, n));
    } else {
        FUZZ_CHECK(proto_room_valid(r->room, strlen(r->room)));
    }
    if (r->text) {
        FUZZ_CHECK(strlen(r->text) == r->text_len && r->text_len <= text_limit);
        FUZZ_CHECK(fuzz_utf8_valid(r->text, r->text_len));
    } else {
        check_data(r->data_json);
    }
    if (!direct)
        check_frame(r);
}

static void decode_once(const char *buf, size_t len, bool direct, size_t text_limit,
                        bool text_valid)
{
    struct proto_api_request r;
    const char *message = NULL;
    enum proto_error e = proto_decode_api(buf, len, text_limit, direct, &r, &message);
    FUZZ_CHECK((unsigned)e < PROTO_ERR_COUNT);
    FUZZ_CHECK(text_valid || e == PROTO_ERR_BAD_REQUEST);
    if (e == PROTO_OK)
        check_accepted(&r, direct, text_limit);
    else
        FUZZ_CHECK(message != NULL && message[0] != '\0');
    proto_api_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    bool text_valid = proto_json_text_valid(buf, size);
    for (int direct = 0; direct <= 1; direct++) {
        decode_once(buf, size, direct, 4096, text_valid);
        decode_once(buf, size, direct, 8, text_valid);
    }
    return 0;
}
