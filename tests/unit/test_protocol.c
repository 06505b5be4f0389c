/*
 * test_protocol — the wire codec (common/protocol.c) against PROTOCOL.md §1-3.
 *
 * One test per behaviour. Every frame is decoded from an exact-size heap copy with no NUL
 * after it, so AddressSanitizer catches any read past the frame. Encoder output is always
 * parsed back with cJSON and checked field by field; a few frames are also compared as exact
 * strings, since independent clients are written against their shape.
 */
#include "protocol.h"

#include <cjson/cJSON.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define TEXT_LIMIT 4096

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Decodes frame[0..len) from an exact-size copy; the caller frees req. */
static enum proto_error decode_len(const char *frame, size_t len, size_t limit,
                                   struct proto_request *req, const char **message)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, frame, len);
    enum proto_error e = proto_decode(copy, len, limit, req, message);
    free(copy);
    return e;
}

static enum proto_error decode_limit(const char *frame, size_t limit, struct proto_request *req)
{
    const char *message = NULL;
    enum proto_error e = decode_len(frame, strlen(frame), limit, req, &message);
    if (e == PROTO_OK)
        assert_null(message);
    else
        assert_non_null(message);
    return e;
}

static enum proto_error decode(const char *frame, struct proto_request *req)
{
    return decode_limit(frame, TEXT_LIMIT, req);
}

/* Asserts frame decodes successfully; the caller frees req. */
static void expect_ok(const char *frame, struct proto_request *req)
{
    enum proto_error e = decode(frame, req);
    if (e != PROTO_OK)
        fail_msg("%s: expected ok, got %s", frame, proto_error_code(e));
}

/* Asserts frame fails with code and echoes id_json ("" for none). */
static void expect_error_id(const char *frame, enum proto_error code, const char *id_json)
{
    struct proto_request req;
    enum proto_error e = decode(frame, &req);
    if (e != code)
        fail_msg("%s: expected %s, got %s", frame, proto_error_code(code), proto_error_code(e));
    assert_string_equal(req.id, id_json);
    proto_request_free(&req);
}

static void expect_error(const char *frame, enum proto_error code)
{
    expect_error_id(frame, code, "");
}

/* Parses an encoder's output (and frees it); fails the test unless it is a JSON object. */
static cJSON *parse_out(char *text)
{
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    if (!cJSON_IsObject(root))
        fail_msg("encoder output is not a JSON object: %s", text);
    free(text);
    return root;
}

static const char *get_str(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(item))
        fail_msg("field %s missing or not a string", name);
    return item->valuestring;
}

static double get_num(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(item))
        fail_msg("field %s missing or not a number", name);
    return item->valuedouble;
}

static void assert_absent(const cJSON *obj, const char *name)
{
    assert_null(cJSON_GetObjectItemCaseSensitive(obj, name));
}

static int count_fields(const cJSON *obj)
{
    return cJSON_GetArraySize(obj);
}

/* Asserts the encoder output equals want exactly (and frees it). */
static void assert_frame_equal(char *text, const char *want)
{
    assert_non_null(text);
    assert_string_equal(text, want);
    free(text);
}

/* ---------------------------------------------------------------------------------------- */
/* Names and room syntax                                                                      */
/* ---------------------------------------------------------------------------------------- */

static void test_error_codes_match_protocol(void **state)
{
    (void)state;
    assert_string_equal(proto_error_code(PROTO_ERR_BAD_REQUEST), "bad_request");
    assert_string_equal(proto_error_code(PROTO_ERR_UNKNOWN_TYPE), "unknown_type");
    assert_string_equal(proto_error_code(PROTO_ERR_INVALID_ROOM), "invalid_room");
    assert_string_equal(proto_error_code(PROTO_ERR_FORBIDDEN), "forbidden");
    assert_string_equal(proto_error_code(PROTO_ERR_NOT_JOINED), "not_joined");
    assert_string_equal(proto_error_code(PROTO_ERR_TOO_LARGE), "too_large");
    assert_string_equal(proto_error_code(PROTO_ERR_RATE_LIMITED), "rate_limited");
    assert_string_equal(proto_error_code(PROTO_ERR_LIMIT_EXCEEDED), "limit_exceeded");
    assert_string_equal(proto_error_code(PROTO_ERR_UNAVAILABLE), "unavailable");
    assert_string_equal(proto_error_code(PROTO_ERR_INTERNAL), "internal");
    assert_string_equal(proto_error_code(PROTO_ERR_COUNT), "internal");
}

static void test_type_names_match_protocol(void **state)
{
    (void)state;
    const char *want[] = {"join",   "leave",    "publish", "direct",  "typing", "presence",
                          "history", "ping",    "refresh", "read",    "unread"};
    for (int t = 0; t < PROTO_TYPE_COUNT; t++)
        assert_string_equal(proto_type_name((enum proto_type)t), want[t]);
    assert_string_equal(proto_type_name(PROTO_TYPE_COUNT), "unknown");
}

static void test_room_valid_accepts_every_allowed_character(void **state)
{
    (void)state;
    const char *room = "AZaz09_.:-";
    assert_true(proto_room_valid(room, strlen(room)));
    assert_true(proto_room_valid("a", 1));
}

static void test_room_valid_length_bounds(void **state)
{
    (void)state;
    char room[PROTO_ROOM_MAX + 2];
    memset(room, 'r', sizeof(room));
    assert_true(proto_room_valid(room, PROTO_ROOM_MAX));
    assert_false(proto_room_valid(room, PROTO_ROOM_MAX + 1));
    assert_false(proto_room_valid(room, 0));
    assert_false(proto_room_valid(NULL, 3));
}

static void test_room_valid_rejects_other_characters(void **state)
{
    (void)state;
    const char *bad[] = {"a b", "a/b", "a#b", "caf\xc3\xa9", "a*", "a\tb", "a\"b", "a@b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(proto_room_valid(bad[i], strlen(bad[i])));
    assert_false(proto_room_valid("a\0b", 3));
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: every request type                                                               */
/* ---------------------------------------------------------------------------------------- */

static void test_decode_join(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"join\",\"room\":\"general\",\"id\":\"j1\"}", &req);
    assert_int_equal(req.type, PROTO_JOIN);
    assert_string_equal(req.room, "general");
    assert_string_equal(req.id, "\"j1\"");
    assert_false(req.has_since);
    proto_request_free(&req);
}

static void test_decode_join_with_since(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":42,\"epoch\":\"e-1\"}}",
              &req);
    assert_true(req.has_since);
    assert_int_equal(req.since_offset, 42);
    assert_string_equal(req.since_epoch, "e-1");
    proto_request_free(&req);
}

static void test_decode_join_since_offset_zero(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":0,\"epoch\":\"e\"}}", &req);
    assert_true(req.has_since);
    assert_int_equal(req.since_offset, 0);
    proto_request_free(&req);
}

static void test_decode_join_since_offset_2pow53(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":9007199254740992,"
              "\"epoch\":\"e\"}}",
              &req);
    assert_true(req.since_offset == 9007199254740992ULL);
    proto_request_free(&req);
}

static void test_decode_join_since_epoch_64_bytes(void **state)
{
    (void)state;
    char frame[256];
    char epoch[PROTO_EPOCH_MAX + 1];
    memset(epoch, 'e', PROTO_EPOCH_MAX);
    epoch[PROTO_EPOCH_MAX] = '\0';
    snprintf(frame, sizeof(frame),
             "{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":1,\"epoch\":\"%s\"}}", epoch);
    struct proto_request req;
    expect_ok(frame, &req);
    assert_string_equal(req.since_epoch, epoch);
    proto_request_free(&req);
}

static void test_decode_leave(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"leave\",\"room\":\"team-1\",\"id\":2}", &req);
    assert_int_equal(req.type, PROTO_LEAVE);
    assert_string_equal(req.room, "team-1");
    assert_string_equal(req.id, "2");
    proto_request_free(&req);
}

static void test_decode_publish(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"hello\",\"id\":\"p\"}", &req);
    assert_int_equal(req.type, PROTO_PUBLISH);
    assert_string_equal(req.room, "r");
    assert_string_equal(req.text, "hello");
    assert_int_equal(req.text_len, 5);
    proto_request_free(&req);
}

static void test_decode_publish_empty_text(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\"}", &req);
    assert_string_equal(req.text, "");
    assert_int_equal(req.text_len, 0);
    proto_request_free(&req);
}

static void test_decode_direct(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"direct\",\"to\":\"bob\",\"text\":\"hi\",\"id\":9}", &req);
    assert_int_equal(req.type, PROTO_DIRECT);
    assert_string_equal(req.to, "bob");
    assert_string_equal(req.text, "hi");
    assert_int_equal(req.text_len, 2);
    assert_string_equal(req.room, "");
    proto_request_free(&req);
}

static void test_decode_direct_to_128_bytes(void **state)
{
    (void)state;
    char frame[512];
    char to[PROTO_USER_MAX + 1];
    memset(to, 'u', PROTO_USER_MAX);
    to[PROTO_USER_MAX] = '\0';
    snprintf(frame, sizeof(frame), "{\"type\":\"direct\",\"to\":\"%s\",\"text\":\"x\"}", to);
    struct proto_request req;
    expect_ok(frame, &req);
    assert_string_equal(req.to, to);
    proto_request_free(&req);
}

static void test_decode_typing_true(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"typing\",\"room\":\"r\",\"state\":true}", &req);
    assert_int_equal(req.type, PROTO_TYPING);
    assert_true(req.state);
    proto_request_free(&req);
}

static void test_decode_typing_false(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"typing\",\"room\":\"r\",\"state\":false}", &req);
    assert_false(req.state);
    proto_request_free(&req);
}

static void test_decode_presence(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"presence\",\"room\":\"r\",\"id\":\"q\"}", &req);
    assert_int_equal(req.type, PROTO_PRESENCE);
    assert_string_equal(req.room, "r");
    proto_request_free(&req);
}

static void test_decode_history_defaults(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\"}", &req);
    assert_int_equal(req.type, PROTO_HISTORY);
    assert_int_equal(req.limit, PROTO_HISTORY_DEFAULT);
    assert_false(req.has_before);
    proto_request_free(&req);
}

static void test_decode_history_limit_and_before(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"limit\":20,\"before\":100}", &req);
    assert_int_equal(req.limit, 20);
    assert_true(req.has_before);
    assert_int_equal(req.before, 100);
    proto_request_free(&req);
}

static void test_decode_history_limit_one(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"limit\":1}", &req);
    assert_int_equal(req.limit, 1);
    proto_request_free(&req);
}

static void test_decode_history_limit_1000_kept(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"limit\":1000}", &req);
    assert_int_equal(req.limit, 1000);
    proto_request_free(&req);
}

static void test_decode_history_limit_1001_cut_to_1000(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"limit\":1001}", &req);
    assert_int_equal(req.limit, PROTO_HISTORY_MAX);
    proto_request_free(&req);
}

static void test_decode_history_huge_limit_cut_to_1000(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"limit\":9007199254740992}", &req);
    assert_int_equal(req.limit, PROTO_HISTORY_MAX);
    proto_request_free(&req);
}

static void test_decode_history_whole_float_limit_accepted(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"limit\":10.0,\"before\":1e2}", &req);
    assert_int_equal(req.limit, 10);
    assert_int_equal(req.before, 100);
    proto_request_free(&req);
}

static void test_decode_history_before_one(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"before\":1}", &req);
    assert_true(req.has_before);
    assert_int_equal(req.before, 1);
    proto_request_free(&req);
}

static void test_decode_ping_without_id(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\"}", &req);
    assert_int_equal(req.type, PROTO_PING);
    assert_string_equal(req.id, "");
    assert_string_equal(req.room, "");
    proto_request_free(&req);
}

static void test_decode_ping_ignores_room(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"room\":\"not a room\"}", &req);
    assert_string_equal(req.room, "");
    proto_request_free(&req);
}

static void test_decode_ignores_unknown_fields(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"leave\",\"room\":\"r\",\"extra\":{\"a\":[1,2]},\"v\":null}", &req);
    assert_int_equal(req.type, PROTO_LEAVE);
    proto_request_free(&req);
}

static void test_decode_allows_surrounding_whitespace(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok(" \r\n\t{ \"type\" : \"ping\" }\n ", &req);
    proto_request_free(&req);
}

static void test_decode_fields_in_any_order(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"text\":\"t\",\"id\":1,\"room\":\"r\",\"type\":\"publish\"}", &req);
    assert_int_equal(req.type, PROTO_PUBLISH);
    assert_string_equal(req.text, "t");
    proto_request_free(&req);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: ids                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void test_id_string_kept_as_json_text(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"id\":\"7\"}", &req);
    assert_string_equal(req.id, "\"7\"");
    proto_request_free(&req);
}

static void test_id_number_kept_as_json_text(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"id\":7}", &req);
    assert_string_equal(req.id, "7");
    proto_request_free(&req);
}

static void test_id_string_with_escapes_reescaped(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"id\":\"a\\\"b\\\\c\\u0041\"}", &req);
    cJSON *id = cJSON_Parse(req.id);
    assert_true(cJSON_IsString(id));
    assert_string_equal(id->valuestring, "a\"b\\cA");
    cJSON_Delete(id);
    proto_request_free(&req);
}

static void test_id_negative_and_fraction(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"id\":-3}", &req);
    assert_string_equal(req.id, "-3");
    proto_request_free(&req);
    expect_ok("{\"type\":\"ping\",\"id\":1.5}", &req);
    assert_string_equal(req.id, "1.5");
    proto_request_free(&req);
    expect_ok("{\"type\":\"ping\",\"id\":0.1}", &req);
    assert_string_equal(req.id, "0.1");
    proto_request_free(&req);
}

static void test_id_large_integer_not_in_exponent_form(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"id\":1000000000000000}", &req);
    assert_string_equal(req.id, "1000000000000000");
    proto_request_free(&req);
    expect_ok("{\"type\":\"ping\",\"id\":9007199254740992}", &req);
    assert_string_equal(req.id, "9007199254740992");
    proto_request_free(&req);
}

static void test_id_empty_string_allowed(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"id\":\"\"}", &req);
    assert_string_equal(req.id, "\"\"");
    proto_request_free(&req);
}

static void test_id_object_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\",\"id\":{}}", PROTO_ERR_BAD_REQUEST);
}

static void test_id_array_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\",\"id\":[1]}", PROTO_ERR_BAD_REQUEST);
}

static void test_id_bool_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\",\"id\":true}", PROTO_ERR_BAD_REQUEST);
}

static void test_id_null_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\",\"id\":null}", PROTO_ERR_BAD_REQUEST);
}

static void test_id_infinite_number_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\",\"id\":1e400}", PROTO_ERR_BAD_REQUEST);
}

static void test_id_duplicate_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\",\"id\":1,\"id\":2}", PROTO_ERR_BAD_REQUEST);
}

/* An id whose JSON text is exactly PROTO_ID_MAX bytes is kept; one byte more is refused. */
static void test_id_length_limit(void **state)
{
    (void)state;
    char frame[512], id[PROTO_ID_MAX + 1];
    memset(id, 'i', sizeof(id));
    id[PROTO_ID_MAX - 2] = '\0'; /* + 2 quotes = PROTO_ID_MAX */
    snprintf(frame, sizeof(frame), "{\"type\":\"ping\",\"id\":\"%s\"}", id);
    struct proto_request req;
    expect_ok(frame, &req);
    assert_int_equal(strlen(req.id), PROTO_ID_MAX);
    proto_request_free(&req);

    memset(id, 'i', sizeof(id));
    id[PROTO_ID_MAX - 1] = '\0';
    snprintf(frame, sizeof(frame), "{\"type\":\"ping\",\"id\":\"%s\"}", id);
    expect_error(frame, PROTO_ERR_BAD_REQUEST);
}

/* The limit is on the re-escaped JSON text, not the decoded string. */
static void test_id_length_counts_escapes(void **state)
{
    (void)state;
    char frame[512] = "{\"type\":\"ping\",\"id\":\"";
    for (int i = 0; i < 70; i++)
        strcat(frame, "\\\""); /* 70 quotes: 70 bytes decoded, 142 + 2 as JSON */
    strcat(frame, "\"}");
    expect_error(frame, PROTO_ERR_BAD_REQUEST);
}

static void test_error_after_valid_id_echoes_id(void **state)
{
    (void)state;
    expect_error_id("{\"type\":\"join\",\"id\":\"abc\"}", PROTO_ERR_BAD_REQUEST, "\"abc\"");
    expect_error_id("{\"type\":\"join\",\"room\":\"a b\",\"id\":5}", PROTO_ERR_INVALID_ROOM, "5");
    expect_error_id("{\"id\":5}", PROTO_ERR_BAD_REQUEST, "5");
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: malformed frames                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void test_not_json_is_bad_request(void **state)
{
    (void)state;
    expect_error("hello", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"ping\"", PROTO_ERR_BAD_REQUEST);
    expect_error("{'type':'ping'}", PROTO_ERR_BAD_REQUEST);
}

static void test_empty_frame_is_bad_request(void **state)
{
    (void)state;
    struct proto_request req;
    const char *message = NULL;
    assert_int_equal(decode_len("", 0, TEXT_LIMIT, &req, &message), PROTO_ERR_BAD_REQUEST);
    assert_non_null(message);
    proto_request_free(&req);
    assert_int_equal(proto_decode(NULL, 0, TEXT_LIMIT, &req, &message), PROTO_ERR_BAD_REQUEST);
    proto_request_free(&req);
    expect_error("   ", PROTO_ERR_BAD_REQUEST);
}

static void test_trailing_garbage_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\"} x", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"ping\"}{}", PROTO_ERR_BAD_REQUEST);
}

static void test_array_is_bad_request(void **state)
{
    (void)state;
    expect_error("[{\"type\":\"ping\"}]", PROTO_ERR_BAD_REQUEST);
}

static void test_string_is_bad_request(void **state)
{
    (void)state;
    expect_error("\"ping\"", PROTO_ERR_BAD_REQUEST);
}

static void test_number_is_bad_request(void **state)
{
    (void)state;
    expect_error("42", PROTO_ERR_BAD_REQUEST);
}

static void test_null_is_bad_request(void **state)
{
    (void)state;
    expect_error("null", PROTO_ERR_BAD_REQUEST);
    expect_error("true", PROTO_ERR_BAD_REQUEST);
}

static void test_missing_type_is_bad_request(void **state)
{
    (void)state;
    expect_error("{}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"room\":\"r\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_non_string_type_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":1}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":null}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":[\"ping\"]}", PROTO_ERR_BAD_REQUEST);
}

static void test_field_names_are_case_sensitive(void **state)
{
    (void)state;
    expect_error("{\"Type\":\"ping\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"leave\",\"Room\":\"r\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_duplicate_field_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"ping\",\"type\":\"ping\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"leave\",\"room\":\"a\",\"room\":\"b\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_unknown_type_echoes_id(void **state)
{
    (void)state;
    expect_error_id("{\"type\":\"shout\",\"id\":\"x1\"}", PROTO_ERR_UNKNOWN_TYPE, "\"x1\"");
    expect_error_id("{\"type\":\"shout\",\"id\":12}", PROTO_ERR_UNKNOWN_TYPE, "12");
}

static void test_unknown_type_is_case_sensitive(void **state)
{
    (void)state;
    expect_error("{\"type\":\"Join\",\"room\":\"r\"}", PROTO_ERR_UNKNOWN_TYPE);
    expect_error("{\"type\":\"\"}", PROTO_ERR_UNKNOWN_TYPE);
}

static void test_server_frame_types_are_unknown(void **state)
{
    (void)state;
    expect_error("{\"type\":\"message\",\"room\":\"r\"}", PROTO_ERR_UNKNOWN_TYPE);
    expect_error("{\"type\":\"pong\"}", PROTO_ERR_UNKNOWN_TYPE);
}

static void test_error_message_names_field(void **state)
{
    (void)state;
    struct proto_request req;
    const char *message = NULL;
    const char *frame = "{\"type\":\"publish\",\"room\":\"r\"}";
    assert_int_equal(decode_len(frame, strlen(frame), TEXT_LIMIT, &req, &message),
                     PROTO_ERR_BAD_REQUEST);
    assert_string_equal(message, "missing or invalid field: text");
    proto_request_free(&req);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: text-level checks (UTF-8, control characters, NUL)                               */
/* ---------------------------------------------------------------------------------------- */

static void test_invalid_utf8_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\xff\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\x80\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_overlong_utf8_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\xc0\xaf\"}",
                 PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\xe0\x80\xaf\"}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_utf8_surrogate_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\xed\xa0\x80\"}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_utf8_above_max_code_point_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\xf4\x90\x80\x80\"}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_truncated_utf8_at_frame_end_is_bad_request(void **state)
{
    (void)state;
    struct proto_request req;
    const char frame[] = "{\"type\":\"ping\"}\xe2\x82";
    assert_int_equal(decode_len(frame, sizeof(frame) - 1, TEXT_LIMIT, &req, NULL),
                     PROTO_ERR_BAD_REQUEST);
    proto_request_free(&req);
}

static void test_lone_surrogate_escape_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\\ud800\"}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_raw_control_character_in_string_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"a\x01\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"a\nb\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_non_json_whitespace_is_bad_request(void **state)
{
    (void)state;
    expect_error("\f{\"type\":\"ping\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\x01\"ping\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_nul_byte_is_bad_request(void **state)
{
    (void)state;
    struct proto_request req;
    const char frame[] = "{\"type\":\"ping\"}\0";
    assert_int_equal(decode_len(frame, sizeof(frame) - 1, TEXT_LIMIT, &req, NULL),
                     PROTO_ERR_BAD_REQUEST);
    proto_request_free(&req);
}

/* cJSON would cut the string at an escaped NUL, silently changing the text. */
static void test_escaped_nul_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"a\\u0000b\"}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_escaped_backslash_before_u0000_is_text(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\\\\u0000\"}", &req);
    assert_string_equal(req.text, "\\u0000");
    proto_request_free(&req);
}

static void test_json_text_valid_directly(void **state)
{
    (void)state;
    assert_true(proto_json_text_valid("{\"a\":\"\xc3\xa9\xf0\x9f\x98\x80\"}", 13));
    assert_true(proto_json_text_valid("", 0));
    assert_false(proto_json_text_valid("\"\\", 2));
    assert_false(proto_json_text_valid(NULL, 1));
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: room                                                                             */
/* ---------------------------------------------------------------------------------------- */

static void test_room_missing_is_bad_request(void **state)
{
    (void)state;
    const char *types[] = {"join", "leave", "publish", "typing", "presence", "history"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char frame[128];
        snprintf(frame, sizeof(frame), "{\"type\":\"%s\",\"text\":\"t\",\"state\":true}", types[i]);
        expect_error(frame, PROTO_ERR_BAD_REQUEST);
    }
}

static void test_room_not_string_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":5}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":null}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":[\"r\"]}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":{}}", PROTO_ERR_BAD_REQUEST);
}

static void test_room_message_names_field(void **state)
{
    (void)state;
    struct proto_request req;
    const char *message = NULL;
    const char *frame = "{\"type\":\"join\",\"room\":1}";
    assert_int_equal(decode_len(frame, strlen(frame), TEXT_LIMIT, &req, &message),
                     PROTO_ERR_BAD_REQUEST);
    assert_string_equal(message, "missing or invalid field: room");
    proto_request_free(&req);
}

static void test_room_invalid_characters(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"a b\"}", PROTO_ERR_INVALID_ROOM);
    expect_error("{\"type\":\"join\",\"room\":\"a/b\"}", PROTO_ERR_INVALID_ROOM);
    expect_error("{\"type\":\"join\",\"room\":\"caf\xc3\xa9\"}", PROTO_ERR_INVALID_ROOM);
    expect_error("{\"type\":\"join\",\"room\":\"a\\nb\"}", PROTO_ERR_INVALID_ROOM);
    expect_error("{\"type\":\"join\",\"room\":\"team-*\"}", PROTO_ERR_INVALID_ROOM);
}

static void test_room_empty_is_invalid_room(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"\"}", PROTO_ERR_INVALID_ROOM);
}

static void test_room_length_limit(void **state)
{
    (void)state;
    char frame[256], room[PROTO_ROOM_MAX + 2];
    memset(room, 'r', sizeof(room));
    room[PROTO_ROOM_MAX] = '\0';
    snprintf(frame, sizeof(frame), "{\"type\":\"join\",\"room\":\"%s\"}", room);
    struct proto_request req;
    expect_ok(frame, &req);
    assert_string_equal(req.room, room);
    proto_request_free(&req);

    room[PROTO_ROOM_MAX] = 'r';
    room[PROTO_ROOM_MAX + 1] = '\0';
    snprintf(frame, sizeof(frame), "{\"type\":\"join\",\"room\":\"%s\"}", room);
    expect_error(frame, PROTO_ERR_INVALID_ROOM);
}

static void test_room_escaped_characters_decoded_first(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"join\",\"room\":\"\\u0061bc\"}", &req);
    assert_string_equal(req.room, "abc");
    proto_request_free(&req);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: text and direct                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void test_publish_text_missing_or_mistyped(void **state)
{
    (void)state;
    expect_error("{\"type\":\"publish\",\"room\":\"r\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":5}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":null}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"publish\",\"room\":\"r\",\"text\":{}}", PROTO_ERR_BAD_REQUEST);
}

static void test_text_exactly_at_limit_is_ok(void **state)
{
    (void)state;
    char *frame = malloc(TEXT_LIMIT + 64);
    assert_non_null(frame);
    int n = sprintf(frame, "{\"type\":\"publish\",\"room\":\"r\",\"text\":\"");
    memset(frame + n, 'x', TEXT_LIMIT);
    strcpy(frame + n + TEXT_LIMIT, "\"}");
    struct proto_request req;
    expect_ok(frame, &req);
    assert_int_equal(req.text_len, TEXT_LIMIT);
    proto_request_free(&req);
    free(frame);
}

static void test_text_one_over_limit_is_too_large(void **state)
{
    (void)state;
    char *frame = malloc(TEXT_LIMIT + 64);
    assert_non_null(frame);
    int n = sprintf(frame, "{\"type\":\"publish\",\"room\":\"r\",\"id\":1,\"text\":\"");
    memset(frame + n, 'x', TEXT_LIMIT + 1);
    strcpy(frame + n + TEXT_LIMIT + 1, "\"}");
    expect_error_id(frame, PROTO_ERR_TOO_LARGE, "1");
    free(frame);
}

/* "é" is two bytes: a limit of 4 takes two of them, not a third, nor "ééa". */
static void test_text_limit_counts_utf8_bytes(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(
        decode_limit("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\xc3\xa9\xc3\xa9\"}", 4,
                     &req),
        PROTO_OK);
    assert_int_equal(req.text_len, 4);
    proto_request_free(&req);
    assert_int_equal(decode_limit("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\xc3\xa9\xc3\xa9"
                                  "a\"}",
                                  4, &req),
                     PROTO_ERR_TOO_LARGE);
    proto_request_free(&req);
}

/* Escapes count as the bytes they decode to, not as written: \u00e9 is 2 bytes, an emoji 4. */
static void test_text_limit_counts_decoded_escapes(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(decode_limit("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\\u00e9\\ud83d"
                                  "\\ude00\"}",
                                  6, &req),
                     PROTO_OK);
    assert_int_equal(req.text_len, 6);
    assert_string_equal(req.text, "\xc3\xa9\xf0\x9f\x98\x80");
    proto_request_free(&req);
    assert_int_equal(decode_limit("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"\\u00e9\\ud83d"
                                  "\\ude00\"}",
                                  5, &req),
                     PROTO_ERR_TOO_LARGE);
    proto_request_free(&req);
}

static void test_direct_text_over_limit_is_too_large(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(
        decode_limit("{\"type\":\"direct\",\"to\":\"bob\",\"text\":\"abcd\"}", 3, &req),
        PROTO_ERR_TOO_LARGE);
    proto_request_free(&req);
}

static void test_direct_to_server_is_bad_request(void **state)
{
    (void)state;
    expect_error_id("{\"type\":\"direct\",\"to\":\"@server\",\"text\":\"x\",\"id\":3}",
                    PROTO_ERR_BAD_REQUEST, "3");
    expect_error("{\"type\":\"direct\",\"to\":\"@\",\"text\":\"x\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_direct_to_missing_or_mistyped(void **state)
{
    (void)state;
    expect_error("{\"type\":\"direct\",\"text\":\"x\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"direct\",\"to\":7,\"text\":\"x\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"direct\",\"to\":[\"a\"],\"text\":\"x\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_direct_to_empty_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"direct\",\"to\":\"\",\"text\":\"x\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_direct_to_too_long_is_bad_request(void **state)
{
    (void)state;
    char frame[512], to[PROTO_USER_MAX + 2];
    memset(to, 'u', PROTO_USER_MAX + 1);
    to[PROTO_USER_MAX + 1] = '\0';
    snprintf(frame, sizeof(frame), "{\"type\":\"direct\",\"to\":\"%s\",\"text\":\"x\"}", to);
    expect_error(frame, PROTO_ERR_BAD_REQUEST);
}

static void test_direct_text_missing_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"direct\",\"to\":\"bob\"}", PROTO_ERR_BAD_REQUEST);
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding: typing, since, history fields                                                    */
/* ---------------------------------------------------------------------------------------- */

static void test_typing_state_missing_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"typing\",\"room\":\"r\"}", PROTO_ERR_BAD_REQUEST);
}

static void test_typing_state_not_bool_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"typing\",\"room\":\"r\",\"state\":1}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"typing\",\"room\":\"r\",\"state\":\"true\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"typing\",\"room\":\"r\",\"state\":null}", PROTO_ERR_BAD_REQUEST);
}

static void test_since_not_object_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":5}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":\"5\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":null}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":[5,\"e\"]}", PROTO_ERR_BAD_REQUEST);
}

static void test_since_offset_missing_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"epoch\":\"e\"}}",
                 PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{}}", PROTO_ERR_BAD_REQUEST);
}

static void test_since_offset_negative_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":-1,\"epoch\":\"e\"}}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_since_offset_fraction_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":1.5,\"epoch\":\"e\"}}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_since_offset_string_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":\"3\",\"epoch\":\"e\"}}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_since_offset_above_2pow53_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":18014398509481984,"
                 "\"epoch\":\"e\"}}",
                 PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":1e400,\"epoch\":\"e\"}}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_since_epoch_missing_or_mistyped(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":1}}",
                 PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":1,\"epoch\":7}}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_since_epoch_empty_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":1,\"epoch\":\"\"}}",
                 PROTO_ERR_BAD_REQUEST);
}

static void test_since_epoch_too_long_is_bad_request(void **state)
{
    (void)state;
    char frame[256], epoch[PROTO_EPOCH_MAX + 2];
    memset(epoch, 'e', PROTO_EPOCH_MAX + 1);
    epoch[PROTO_EPOCH_MAX + 1] = '\0';
    snprintf(frame, sizeof(frame),
             "{\"type\":\"join\",\"room\":\"r\",\"since\":{\"offset\":1,\"epoch\":\"%s\"}}", epoch);
    expect_error(frame, PROTO_ERR_BAD_REQUEST);
}

static void test_history_limit_zero_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"limit\":0}", PROTO_ERR_BAD_REQUEST);
}

static void test_history_limit_negative_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"limit\":-5}", PROTO_ERR_BAD_REQUEST);
}

static void test_history_limit_fraction_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"limit\":1.5}", PROTO_ERR_BAD_REQUEST);
}

static void test_history_limit_mistyped_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"limit\":\"10\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"limit\":null}", PROTO_ERR_BAD_REQUEST);
}

static void test_history_limit_above_2pow53_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"limit\":1e16}", PROTO_ERR_BAD_REQUEST);
}

static void test_history_before_zero_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"before\":0}", PROTO_ERR_BAD_REQUEST);
}

static void test_history_before_invalid_is_bad_request(void **state)
{
    (void)state;
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"before\":-1}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"before\":2.5}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"before\":\"9\"}", PROTO_ERR_BAD_REQUEST);
    expect_error("{\"type\":\"history\",\"room\":\"r\",\"before\":1e16}", PROTO_ERR_BAD_REQUEST);
}

static void test_history_before_2pow53_is_ok(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"history\",\"room\":\"r\",\"before\":9007199254740992}", &req);
    assert_true(req.before == 9007199254740992ULL);
    proto_request_free(&req);
}

/* ---------------------------------------------------------------------------------------- */
/* Request lifetime                                                                           */
/* ---------------------------------------------------------------------------------------- */

static void test_request_free_twice_is_safe(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"publish\",\"room\":\"r\",\"text\":\"t\"}", &req);
    proto_request_free(&req);
    assert_null(req.tree);
    assert_null(req.text);
    proto_request_free(&req);
    proto_request_free(NULL);
}

static void test_request_reused_after_error(void **state)
{
    (void)state;
    struct proto_request req;
    assert_int_equal(decode("{\"type\":\"join\",\"room\":\"a b\",\"id\":1}", &req),
                     PROTO_ERR_INVALID_ROOM);
    proto_request_free(&req);
    expect_ok("{\"type\":\"history\",\"room\":\"r\"}", &req);
    assert_string_equal(req.id, "");
    assert_int_equal(req.limit, PROTO_HISTORY_DEFAULT);
    proto_request_free(&req);
}

/* ---------------------------------------------------------------------------------------- */
/* Encoders                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void test_encode_welcome(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_welcome("n1-7", "alice", "n1", 1700000000123, 25));
    assert_string_equal(get_str(o, "type"), "welcome");
    assert_string_equal(get_str(o, "conn"), "n1-7");
    assert_string_equal(get_str(o, "user"), "alice");
    assert_string_equal(get_str(o, "node"), "n1");
    assert_true(get_num(o, "ts") == 1700000000123.0);
    assert_true(get_num(o, "heartbeat") == 25.0);
    assert_int_equal(count_fields(o), 6);
    cJSON_Delete(o);
}

static void test_encode_welcome_exact(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_welcome("c", "u", "n", 5, 25),
                       "{\"type\":\"welcome\",\"conn\":\"c\",\"user\":\"u\",\"node\":\"n\","
                       "\"ts\":5,\"heartbeat\":25}");
}

static void test_encode_joined(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_joined("\"j1\"", "general", 12, "ep", -1));
    assert_string_equal(get_str(o, "type"), "joined");
    assert_string_equal(get_str(o, "room"), "general");
    assert_string_equal(get_str(o, "id"), "j1");
    assert_true(get_num(o, "offset") == 12.0);
    assert_string_equal(get_str(o, "epoch"), "ep");
    assert_absent(o, "recovered");
    cJSON_Delete(o);
}

static void test_encode_joined_recovered_flags(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_joined(NULL, "r", 0, "e", 1));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "recovered")));
    assert_absent(o, "id");
    assert_true(get_num(o, "offset") == 0.0);
    cJSON_Delete(o);
    o = parse_out(proto_encode_joined("", "r", 0, "e", 0));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "recovered")));
    assert_absent(o, "id");
    cJSON_Delete(o);
}

static void test_encode_joined_exact(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_joined("7", "r", 3, "e", 1),
                       "{\"type\":\"joined\",\"room\":\"r\",\"id\":7,\"offset\":3,\"epoch\":\"e\","
                       "\"recovered\":true}");
}

static void test_encode_left(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_left("\"x\"", "r"),
                       "{\"type\":\"left\",\"room\":\"r\",\"id\":\"x\"}");
    cJSON *o = parse_out(proto_encode_left(NULL, "room.1"));
    assert_string_equal(get_str(o, "room"), "room.1");
    assert_absent(o, "id");
    cJSON_Delete(o);
}

static void test_encode_ack_publish(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_ack("1", "r", 10, 1700000000000),
                       "{\"type\":\"ack\",\"id\":1,\"room\":\"r\",\"offset\":10,"
                       "\"ts\":1700000000000}");
}

static void test_encode_ack_direct_has_no_room(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_ack("\"d\"", NULL, 99, 5));
    assert_string_equal(get_str(o, "type"), "ack");
    assert_string_equal(get_str(o, "id"), "d");
    assert_true(get_num(o, "ts") == 5.0);
    assert_absent(o, "room");
    assert_absent(o, "offset");
    cJSON_Delete(o);
}

static void test_encode_ack_without_id(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_ack(NULL, "r", 1, 1));
    assert_absent(o, "id");
    cJSON_Delete(o);
}

static void test_encode_error_with_id(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_error("\"a\"", PROTO_ERR_NOT_JOINED, "join the room first"),
                       "{\"type\":\"error\",\"id\":\"a\",\"code\":\"not_joined\","
                       "\"message\":\"join the room first\"}");
}

static void test_encode_error_without_id(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_error(NULL, PROTO_ERR_BAD_REQUEST, "frame is not JSON"));
    assert_string_equal(get_str(o, "code"), "bad_request");
    assert_string_equal(get_str(o, "message"), "frame is not JSON");
    assert_absent(o, "id");
    cJSON_Delete(o);
    o = parse_out(proto_encode_error("", PROTO_ERR_INTERNAL, "x"));
    assert_absent(o, "id");
    cJSON_Delete(o);
}

static void test_encode_error_null_message_uses_code(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_error("2", PROTO_ERR_RATE_LIMITED, NULL));
    assert_string_equal(get_str(o, "message"), "rate_limited");
    assert_true(get_num(o, "id") == 2.0);
    cJSON_Delete(o);
}

/* A decode error's message and id round-trip through the error encoder. */
static void test_encode_error_from_decode(void **state)
{
    (void)state;
    struct proto_request req;
    const char *message = NULL;
    const char *frame = "{\"type\":\"nope\",\"id\":\"q\\\"1\"}";
    enum proto_error e = decode_len(frame, strlen(frame), TEXT_LIMIT, &req, &message);
    cJSON *o = parse_out(proto_encode_error(req.id, e, message));
    assert_string_equal(get_str(o, "id"), "q\"1");
    assert_string_equal(get_str(o, "code"), "unknown_type");
    assert_string_equal(get_str(o, "message"), message);
    cJSON_Delete(o);
    proto_request_free(&req);
}

static void test_encode_pong(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_pong("3", 42), "{\"type\":\"pong\",\"id\":3,\"ts\":42}");
    assert_frame_equal(proto_encode_pong(NULL, 42), "{\"type\":\"pong\",\"ts\":42}");
}

static void test_encode_user_joined(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_user_joined("r", "alice", "Alice A.", 7));
    assert_string_equal(get_str(o, "type"), "user_joined");
    assert_string_equal(get_str(o, "room"), "r");
    assert_string_equal(get_str(o, "user"), "alice");
    assert_string_equal(get_str(o, "name"), "Alice A.");
    assert_true(get_num(o, "ts") == 7.0);
    cJSON_Delete(o);
}

static void test_encode_user_joined_without_name(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_user_joined("r", "u", NULL, 1),
                       "{\"type\":\"user_joined\",\"room\":\"r\",\"user\":\"u\",\"ts\":1}");
}

static void test_encode_user_left(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_user_left("r", "u", 9),
                       "{\"type\":\"user_left\",\"room\":\"r\",\"user\":\"u\",\"ts\":9}");
}

static void test_encode_typing(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_typing("r", "u", true),
                       "{\"type\":\"typing\",\"room\":\"r\",\"user\":\"u\",\"state\":true}");
    cJSON *o = parse_out(proto_encode_typing("r", "u", false));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "state")));
    cJSON_Delete(o);
}

static void test_encode_direct_text(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_direct("alice", "Alice", "bob", 5, "hi", 2, NULL),
                       "{\"type\":\"direct\",\"from\":{\"user\":\"alice\",\"name\":\"Alice\"},"
                       "\"to\":\"bob\",\"ts\":5,\"text\":\"hi\"}");
}

static void test_encode_direct_without_name(void **state)
{
    (void)state;
    cJSON *o = parse_out(proto_encode_direct("@server", NULL, "bob", 5, "hi", 2, NULL));
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(o, "from");
    assert_true(cJSON_IsObject(from));
    assert_string_equal(get_str(from, "user"), "@server");
    assert_absent(from, "name");
    cJSON_Delete(o);
}

static void test_encode_direct_data(void **state)
{
    (void)state;
    cJSON *o = parse_out(
        proto_encode_direct("@server", NULL, "bob", 5, NULL, 0, "{\"task\":\"t-1\",\"n\":[1,2]}"));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    assert_true(cJSON_IsObject(data));
    assert_string_equal(get_str(data, "task"), "t-1");
    assert_absent(o, "text");
    cJSON_Delete(o);
}

static void test_encode_direct_uses_text_len(void **state)
{
    (void)state;
    const char buf[] = {'h', 'e', 'l', 'l', 'o'}; /* not NUL-terminated */
    cJSON *o = parse_out(proto_encode_direct("a", NULL, "b", 1, buf, 3, NULL));
    assert_string_equal(get_str(o, "text"), "hel");
    cJSON_Delete(o);
}

static void test_encode_presence(void **state)
{
    (void)state;
    const char *users[] = {"alice", "bob"};
    const char *names[] = {"Alice", NULL};
    assert_frame_equal(proto_encode_presence("4", "r", users, names, 2),
                       "{\"type\":\"presence\",\"room\":\"r\",\"id\":4,\"users\":["
                       "{\"user\":\"alice\",\"name\":\"Alice\"},{\"user\":\"bob\"}]}");
}

static void test_encode_presence_without_names(void **state)
{
    (void)state;
    const char *users[] = {"a", "b", "c"};
    cJSON *o = parse_out(proto_encode_presence(NULL, "r", users, NULL, 3));
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "users");
    assert_true(cJSON_IsArray(list));
    assert_int_equal(cJSON_GetArraySize(list), 3);
    assert_string_equal(get_str(cJSON_GetArrayItem(list, 2), "user"), "c");
    assert_absent(cJSON_GetArrayItem(list, 0), "name");
    assert_absent(o, "id");
    cJSON_Delete(o);
}

static void test_encode_presence_empty(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_presence("1", "r", NULL, NULL, 0),
                       "{\"type\":\"presence\",\"room\":\"r\",\"id\":1,\"users\":[]}");
}

static void test_encode_history(void **state)
{
    (void)state;
    char *m1 = proto_encode_message("r", 1, 10, "a", NULL, "one", 3, NULL);
    char *m2 = proto_encode_message("r", 2, 11, "b", "B", "two", 3, NULL);
    assert_non_null(m1);
    assert_non_null(m2);
    const char *messages[] = {m1, m2};
    char *out = proto_encode_history("\"h\"", "r", messages, 2);
    assert_non_null(out);
    /* Stored frames are embedded byte for byte. */
    assert_non_null(strstr(out, m1));
    assert_non_null(strstr(out, m2));
    cJSON *o = parse_out(out);
    assert_string_equal(get_str(o, "type"), "history");
    assert_string_equal(get_str(o, "room"), "r");
    assert_string_equal(get_str(o, "id"), "h");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "messages");
    assert_int_equal(cJSON_GetArraySize(list), 2);
    assert_true(get_num(cJSON_GetArrayItem(list, 0), "offset") == 1.0);
    assert_string_equal(get_str(cJSON_GetArrayItem(list, 1), "text"), "two");
    cJSON_Delete(o);
    free(m1);
    free(m2);
}

static void test_encode_history_empty(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_history(NULL, "r", NULL, 0),
                       "{\"type\":\"history\",\"room\":\"r\",\"messages\":[]}");
}

static void test_encode_http_error(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_http_error("invalid_token", "token expired"),
                       "{\"error\":\"invalid_token\",\"message\":\"token expired\"}");
}

static void test_encode_null_required_string_is_empty(void **state)
{
    (void)state;
    assert_frame_equal(proto_encode_left(NULL, NULL), "{\"type\":\"left\",\"room\":\"\"}");
}

/* ---------------------------------------------------------------------------------------- */
/* Message frames split around the offset                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Joins head + offset + tail as the Redis script would. */
static char *join_parts(const char *head, const char *offset, const char *tail)
{
    size_t n = strlen(head) + strlen(offset) + strlen(tail) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%s%s%s", head, offset, tail);
    return out;
}

static void test_message_parts_form_message_frame(void **state)
{
    (void)state;
    char *head, *tail;
    assert_int_equal(proto_encode_message_parts("r", 1700000000000, "alice", "Alice", "hi", 2, NULL,
                                                &head, &tail),
                     0);
    cJSON *o = parse_out(join_parts(head, "17", tail));
    assert_string_equal(get_str(o, "type"), "message");
    assert_string_equal(get_str(o, "room"), "r");
    assert_true(get_num(o, "offset") == 17.0);
    assert_true(get_num(o, "ts") == 1700000000000.0);
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(o, "from");
    assert_string_equal(get_str(from, "user"), "alice");
    assert_string_equal(get_str(from, "name"), "Alice");
    assert_string_equal(get_str(o, "text"), "hi");
    assert_int_equal(count_fields(o), 6);
    cJSON_Delete(o);
    free(head);
    free(tail);
}

static void test_message_parts_exact_shape(void **state)
{
    (void)state;
    char *head, *tail;
    assert_int_equal(proto_encode_message_parts("r", 5, "u", NULL, "t", 1, NULL, &head, &tail), 0);
    assert_string_equal(head, "{\"type\":\"message\",\"room\":\"r\",\"offset\":");
    assert_string_equal(tail, ",\"ts\":5,\"from\":{\"user\":\"u\"},\"text\":\"t\"}");
    free(head);
    free(tail);
}

static void test_message_parts_with_data(void **state)
{
    (void)state;
    char *head, *tail;
    assert_int_equal(proto_encode_message_parts("tasks", 3, "@server", NULL, NULL, 0,
                                                "{\"event\":\"task.created\"}", &head, &tail),
                     0);
    cJSON *o = parse_out(join_parts(head, "1", tail));
    assert_string_equal(get_str(cJSON_GetObjectItemCaseSensitive(o, "data"), "event"),
                        "task.created");
    assert_absent(o, "text");
    assert_string_equal(get_str(cJSON_GetObjectItemCaseSensitive(o, "from"), "user"), "@server");
    cJSON_Delete(o);
    free(head);
    free(tail);
}

static void test_message_parts_data_scalar(void **state)
{
    (void)state;
    char *head, *tail;
    assert_int_equal(
        proto_encode_message_parts("r", 3, "@server", NULL, NULL, 0, "42", &head, &tail), 0);
    cJSON *o = parse_out(join_parts(head, "1", tail));
    assert_true(get_num(o, "data") == 42.0);
    cJSON_Delete(o);
    free(head);
    free(tail);
}

static void test_encode_message_equals_parts(void **state)
{
    (void)state;
    char *head, *tail;
    assert_int_equal(proto_encode_message_parts("r", 9, "u", "N", "x\"y", 3, NULL, &head, &tail),
                     0);
    char *joined = join_parts(head, "123", tail);
    char *whole = proto_encode_message("r", 123, 9, "u", "N", "x\"y", 3, NULL);
    assert_non_null(whole);
    assert_string_equal(joined, whole);
    free(joined);
    free(whole);
    free(head);
    free(tail);
}

/* Offsets and timestamps print as plain integers even where cJSON would use exponent form. */
static void test_large_integers_print_without_exponent(void **state)
{
    (void)state;
    char *m =
        proto_encode_message("r", 9007199254740993ULL, 1000000000000000LL, "u", NULL, "t", 1, NULL);
    assert_non_null(m);
    assert_non_null(strstr(m, "\"offset\":9007199254740993,"));
    assert_non_null(strstr(m, "\"ts\":1000000000000000,"));
    free(m);
    char *a = proto_encode_ack(NULL, "r", 1000000000000000ULL, -1);
    assert_non_null(a);
    assert_non_null(strstr(a, "\"offset\":1000000000000000,"));
    assert_non_null(strstr(a, "\"ts\":-1}"));
    free(a);
    char *j = proto_encode_joined(NULL, "r", UINT64_MAX, "e", -1);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"offset\":18446744073709551615,"));
    free(j);
}

/* ---------------------------------------------------------------------------------------- */
/* Escaping round trips                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Decodes a publish carrying escaped_json_text, re-encodes it as a message, parses that back
 * and checks the text survived byte for byte and equals want. */
static void roundtrip_text(const char *escaped_json_text, const char *want)
{
    char frame[512];
    snprintf(frame, sizeof(frame), "{\"type\":\"publish\",\"room\":\"r\",\"text\":\"%s\"}",
             escaped_json_text);
    struct proto_request req;
    expect_ok(frame, &req);
    assert_string_equal(req.text, want);
    assert_int_equal(req.text_len, strlen(want));
    char *m = proto_encode_message(req.room, 1, 1, "u", NULL, req.text, req.text_len, NULL);
    assert_true(proto_json_text_valid(m, strlen(m)));
    cJSON *o = parse_out(m);
    assert_string_equal(get_str(o, "text"), want);
    cJSON_Delete(o);
    proto_request_free(&req);
}

static void test_roundtrip_quotes_and_backslashes(void **state)
{
    (void)state;
    roundtrip_text("say \\\"hi\\\" \\\\ back\\/slash", "say \"hi\" \\ back/slash");
}

static void test_roundtrip_control_characters(void **state)
{
    (void)state;
    roundtrip_text("a\\nb\\tc\\rd\\be\\ff\\u0001g\\u001fh\\u007f",
                   "a\nb\tc\rd\be\ff\x01g\x1fh\x7f");
}

static void test_roundtrip_unicode(void **state)
{
    (void)state;
    roundtrip_text("caf\xc3\xa9 \\u00e9 \xe2\x82\xac \xf0\x9f\x98\x80 \\ud83d\\ude00 \\u2028",
                   "caf\xc3\xa9 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf0\x9f\x98\x80 "
                   "\xe2\x80\xa8");
}

static void test_roundtrip_json_looking_text(void **state)
{
    (void)state;
    roundtrip_text("{\\\"type\\\":\\\"x\\\"}, ]", "{\"type\":\"x\"}, ]");
}

/* Every byte from 0x01 to 0x7f through every encoder that takes user text. */
static void test_encoders_escape_every_ascii_byte(void **state)
{
    (void)state;
    char text[128];
    for (int i = 1; i < 128; i++)
        text[i - 1] = (char)i;
    text[127] = '\0';

    cJSON *o = parse_out(proto_encode_direct(text, text, text, 1, text, 127, NULL));
    assert_string_equal(get_str(o, "text"), text);
    assert_string_equal(get_str(o, "to"), text);
    assert_string_equal(get_str(cJSON_GetObjectItemCaseSensitive(o, "from"), "name"), text);
    cJSON_Delete(o);

    o = parse_out(proto_encode_error(NULL, PROTO_ERR_INTERNAL, text));
    assert_string_equal(get_str(o, "message"), text);
    cJSON_Delete(o);

    o = parse_out(proto_encode_user_joined("r", text, text, 1));
    assert_string_equal(get_str(o, "user"), text);
    assert_string_equal(get_str(o, "name"), text);
    cJSON_Delete(o);

    o = parse_out(proto_encode_message("r", 1, 1, text, text, text, 127, NULL));
    assert_string_equal(get_str(o, "text"), text);
    cJSON_Delete(o);

    o = parse_out(proto_encode_welcome(text, text, text, 1, 1));
    assert_string_equal(get_str(o, "conn"), text);
    cJSON_Delete(o);

    o = parse_out(proto_encode_http_error(text, text));
    assert_string_equal(get_str(o, "error"), text);
    cJSON_Delete(o);
}

/* An id with special characters goes out exactly as it came in. */
static void test_roundtrip_id_through_reply(void **state)
{
    (void)state;
    struct proto_request req;
    expect_ok("{\"type\":\"ping\",\"id\":\"\\u00e9\\\"\\n\\\\\"}", &req);
    cJSON *o = parse_out(proto_encode_pong(req.id, 1));
    assert_string_equal(get_str(o, "id"), "\xc3\xa9\"\n\\");
    cJSON_Delete(o);
    proto_request_free(&req);
}

/* ---- backend API bodies (PROTOCOL.md §6) ---- */

static enum proto_error api(const char *body, bool direct, struct proto_api_request *r)
{
    return proto_decode_api(body, strlen(body), 4096, direct, r, NULL);
}

static void test_api_publish_text_and_data(void **state)
{
    (void)state;
    struct proto_api_request r;
    assert_int_equal(api("{\"room\":\"news\",\"text\":\"hi\"}", false, &r), PROTO_OK);
    assert_string_equal(r.room, "news");
    assert_string_equal(r.text, "hi");
    assert_null(r.data_json);
    proto_api_request_free(&r);
    assert_int_equal(api("{\"room\":\"news\",\"data\":{\"a\":[1,2]}}", false, &r), PROTO_OK);
    assert_null(r.text);
    assert_string_equal(r.data_json, "{\"a\":[1,2]}");
    proto_api_request_free(&r);
}

static void test_api_direct_target_rules(void **state)
{
    (void)state;
    struct proto_api_request r;
    assert_int_equal(api("{\"to\":\"bob\",\"data\":null}", true, &r), PROTO_OK);
    assert_string_equal(r.to, "bob");
    assert_string_equal(r.data_json, "null");
    proto_api_request_free(&r);
    assert_int_equal(api("{\"to\":\"@server\",\"text\":\"x\"}", true, &r), PROTO_ERR_BAD_REQUEST);
    proto_api_request_free(&r);
    assert_int_equal(api("{\"room\":\"r\",\"text\":\"x\"}", true, &r), PROTO_ERR_BAD_REQUEST);
    proto_api_request_free(&r);
}

static void test_api_rejects_bad_bodies(void **state)
{
    (void)state;
    struct proto_api_request r;
    const char *bad[] = {"", "nope", "[]", "{\"room\":\"r\"}",
                         "{\"room\":\"r\",\"text\":\"a\",\"data\":1}",
                         "{\"room\":\"r\",\"text\":1}",
                         "{\"room\":\"r\",\"text\":\"a\",\"text\":\"b\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(api(bad[i], false, &r), PROTO_ERR_BAD_REQUEST);
        proto_api_request_free(&r);
    }
    assert_int_equal(api("{\"room\":\"no spaces\",\"text\":\"a\"}", false, &r),
                     PROTO_ERR_INVALID_ROOM);
    proto_api_request_free(&r);
}

static void test_api_text_limit(void **state)
{
    (void)state;
    struct proto_api_request r;
    char body[5000];
    char text[4098];
    memset(text, 'x', 4097);
    text[4097] = '\0';
    snprintf(body, sizeof(body), "{\"room\":\"r\",\"text\":\"%s\"}", text);
    assert_int_equal(api(body, false, &r), PROTO_ERR_TOO_LARGE);
    proto_api_request_free(&r);
    text[4096] = '\0';
    snprintf(body, sizeof(body), "{\"room\":\"r\",\"text\":\"%s\"}", text);
    assert_int_equal(api(body, false, &r), PROTO_OK);
    proto_api_request_free(&r);
}

static void test_presence_user_status(void **state)
{
    (void)state;
    struct proto_request req;
    const char *f = "{\"type\":\"presence\",\"user\":\"bob\",\"id\":3}";
    assert_int_equal(proto_decode(f, strlen(f), 4096, &req, NULL), PROTO_OK);
    assert_string_equal(req.to, "bob");
    assert_string_equal(req.room, "");
    proto_request_free(&req);
    const char *bad = "{\"type\":\"presence\",\"user\":\"\"}";
    assert_int_equal(proto_decode(bad, strlen(bad), 4096, &req, NULL), PROTO_ERR_BAD_REQUEST);
    proto_request_free(&req);
    char *out = proto_encode_user_status("3", "bob", true);
    assert_string_equal(out, "{\"type\":\"presence\",\"id\":3,\"user\":\"bob\",\"online\":true}");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_codes_match_protocol),
        cmocka_unit_test(test_type_names_match_protocol),
        cmocka_unit_test(test_room_valid_accepts_every_allowed_character),
        cmocka_unit_test(test_room_valid_length_bounds),
        cmocka_unit_test(test_room_valid_rejects_other_characters),

        cmocka_unit_test(test_decode_join),
        cmocka_unit_test(test_decode_join_with_since),
        cmocka_unit_test(test_decode_join_since_offset_zero),
        cmocka_unit_test(test_decode_join_since_offset_2pow53),
        cmocka_unit_test(test_decode_join_since_epoch_64_bytes),
        cmocka_unit_test(test_decode_leave),
        cmocka_unit_test(test_decode_publish),
        cmocka_unit_test(test_decode_publish_empty_text),
        cmocka_unit_test(test_decode_direct),
        cmocka_unit_test(test_decode_direct_to_128_bytes),
        cmocka_unit_test(test_decode_typing_true),
        cmocka_unit_test(test_decode_typing_false),
        cmocka_unit_test(test_decode_presence),
        cmocka_unit_test(test_decode_history_defaults),
        cmocka_unit_test(test_decode_history_limit_and_before),
        cmocka_unit_test(test_decode_history_limit_one),
        cmocka_unit_test(test_decode_history_limit_1000_kept),
        cmocka_unit_test(test_decode_history_limit_1001_cut_to_1000),
        cmocka_unit_test(test_decode_history_huge_limit_cut_to_1000),
        cmocka_unit_test(test_decode_history_whole_float_limit_accepted),
        cmocka_unit_test(test_decode_history_before_one),
        cmocka_unit_test(test_decode_ping_without_id),
        cmocka_unit_test(test_decode_ping_ignores_room),
        cmocka_unit_test(test_decode_ignores_unknown_fields),
        cmocka_unit_test(test_decode_allows_surrounding_whitespace),
        cmocka_unit_test(test_decode_fields_in_any_order),

        cmocka_unit_test(test_id_string_kept_as_json_text),
        cmocka_unit_test(test_id_number_kept_as_json_text),
        cmocka_unit_test(test_id_string_with_escapes_reescaped),
        cmocka_unit_test(test_id_negative_and_fraction),
        cmocka_unit_test(test_id_large_integer_not_in_exponent_form),
        cmocka_unit_test(test_id_empty_string_allowed),
        cmocka_unit_test(test_id_object_is_bad_request),
        cmocka_unit_test(test_id_array_is_bad_request),
        cmocka_unit_test(test_id_bool_is_bad_request),
        cmocka_unit_test(test_id_null_is_bad_request),
        cmocka_unit_test(test_id_infinite_number_is_bad_request),
        cmocka_unit_test(test_id_duplicate_is_bad_request),
        cmocka_unit_test(test_id_length_limit),
        cmocka_unit_test(test_id_length_counts_escapes),
        cmocka_unit_test(test_error_after_valid_id_echoes_id),

        cmocka_unit_test(test_not_json_is_bad_request),
        cmocka_unit_test(test_empty_frame_is_bad_request),
        cmocka_unit_test(test_trailing_garbage_is_bad_request),
        cmocka_unit_test(test_array_is_bad_request),
        cmocka_unit_test(test_string_is_bad_request),
        cmocka_unit_test(test_number_is_bad_request),
        cmocka_unit_test(test_null_is_bad_request),
        cmocka_unit_test(test_missing_type_is_bad_request),
        cmocka_unit_test(test_non_string_type_is_bad_request),
        cmocka_unit_test(test_field_names_are_case_sensitive),
        cmocka_unit_test(test_duplicate_field_is_bad_request),
        cmocka_unit_test(test_unknown_type_echoes_id),
        cmocka_unit_test(test_unknown_type_is_case_sensitive),
        cmocka_unit_test(test_server_frame_types_are_unknown),
        cmocka_unit_test(test_error_message_names_field),

        cmocka_unit_test(test_invalid_utf8_is_bad_request),
        cmocka_unit_test(test_overlong_utf8_is_bad_request),
        cmocka_unit_test(test_utf8_surrogate_is_bad_request),
        cmocka_unit_test(test_utf8_above_max_code_point_is_bad_request),
        cmocka_unit_test(test_truncated_utf8_at_frame_end_is_bad_request),
        cmocka_unit_test(test_lone_surrogate_escape_is_bad_request),
        cmocka_unit_test(test_raw_control_character_in_string_is_bad_request),
        cmocka_unit_test(test_non_json_whitespace_is_bad_request),
        cmocka_unit_test(test_nul_byte_is_bad_request),
        cmocka_unit_test(test_escaped_nul_is_bad_request),
        cmocka_unit_test(test_escaped_backslash_before_u0000_is_text),
        cmocka_unit_test(test_json_text_valid_directly),

        cmocka_unit_test(test_room_missing_is_bad_request),
        cmocka_unit_test(test_room_not_string_is_bad_request),
        cmocka_unit_test(test_room_message_names_field),
        cmocka_unit_test(test_room_invalid_characters),
        cmocka_unit_test(test_room_empty_is_invalid_room),
        cmocka_unit_test(test_room_length_limit),
        cmocka_unit_test(test_room_escaped_characters_decoded_first),

        cmocka_unit_test(test_publish_text_missing_or_mistyped),
        cmocka_unit_test(test_text_exactly_at_limit_is_ok),
        cmocka_unit_test(test_text_one_over_limit_is_too_large),
        cmocka_unit_test(test_text_limit_counts_utf8_bytes),
        cmocka_unit_test(test_text_limit_counts_decoded_escapes),
        cmocka_unit_test(test_direct_text_over_limit_is_too_large),
        cmocka_unit_test(test_direct_to_server_is_bad_request),
        cmocka_unit_test(test_direct_to_missing_or_mistyped),
        cmocka_unit_test(test_direct_to_empty_is_bad_request),
        cmocka_unit_test(test_direct_to_too_long_is_bad_request),
        cmocka_unit_test(test_direct_text_missing_is_bad_request),

        cmocka_unit_test(test_typing_state_missing_is_bad_request),
        cmocka_unit_test(test_typing_state_not_bool_is_bad_request),
        cmocka_unit_test(test_since_not_object_is_bad_request),
        cmocka_unit_test(test_since_offset_missing_is_bad_request),
        cmocka_unit_test(test_since_offset_negative_is_bad_request),
        cmocka_unit_test(test_since_offset_fraction_is_bad_request),
        cmocka_unit_test(test_since_offset_string_is_bad_request),
        cmocka_unit_test(test_since_offset_above_2pow53_is_bad_request),
        cmocka_unit_test(test_since_epoch_missing_or_mistyped),
        cmocka_unit_test(test_since_epoch_empty_is_bad_request),
        cmocka_unit_test(test_since_epoch_too_long_is_bad_request),
        cmocka_unit_test(test_history_limit_zero_is_bad_request),
        cmocka_unit_test(test_history_limit_negative_is_bad_request),
        cmocka_unit_test(test_history_limit_fraction_is_bad_request),
        cmocka_unit_test(test_history_limit_mistyped_is_bad_request),
        cmocka_unit_test(test_history_limit_above_2pow53_is_bad_request),
        cmocka_unit_test(test_history_before_zero_is_bad_request),
        cmocka_unit_test(test_history_before_invalid_is_bad_request),
        cmocka_unit_test(test_history_before_2pow53_is_ok),

        cmocka_unit_test(test_request_free_twice_is_safe),
        cmocka_unit_test(test_request_reused_after_error),

        cmocka_unit_test(test_encode_welcome),
        cmocka_unit_test(test_encode_welcome_exact),
        cmocka_unit_test(test_encode_joined),
        cmocka_unit_test(test_encode_joined_recovered_flags),
        cmocka_unit_test(test_encode_joined_exact),
        cmocka_unit_test(test_encode_left),
        cmocka_unit_test(test_encode_ack_publish),
        cmocka_unit_test(test_encode_ack_direct_has_no_room),
        cmocka_unit_test(test_encode_ack_without_id),
        cmocka_unit_test(test_encode_error_with_id),
        cmocka_unit_test(test_encode_error_without_id),
        cmocka_unit_test(test_encode_error_null_message_uses_code),
        cmocka_unit_test(test_encode_error_from_decode),
        cmocka_unit_test(test_encode_pong),
        cmocka_unit_test(test_encode_user_joined),
        cmocka_unit_test(test_encode_user_joined_without_name),
        cmocka_unit_test(test_encode_user_left),
        cmocka_unit_test(test_encode_typing),
        cmocka_unit_test(test_encode_direct_text),
        cmocka_unit_test(test_encode_direct_without_name),
        cmocka_unit_test(test_encode_direct_data),
        cmocka_unit_test(test_encode_direct_uses_text_len),
        cmocka_unit_test(test_encode_presence),
        cmocka_unit_test(test_encode_presence_without_names),
        cmocka_unit_test(test_encode_presence_empty),
        cmocka_unit_test(test_encode_history),
        cmocka_unit_test(test_encode_history_empty),
        cmocka_unit_test(test_encode_http_error),
        cmocka_unit_test(test_encode_null_required_string_is_empty),

        cmocka_unit_test(test_message_parts_form_message_frame),
        cmocka_unit_test(test_message_parts_exact_shape),
        cmocka_unit_test(test_message_parts_with_data),
        cmocka_unit_test(test_message_parts_data_scalar),
        cmocka_unit_test(test_encode_message_equals_parts),
        cmocka_unit_test(test_large_integers_print_without_exponent),

        cmocka_unit_test(test_roundtrip_quotes_and_backslashes),
        cmocka_unit_test(test_roundtrip_control_characters),
        cmocka_unit_test(test_roundtrip_unicode),
        cmocka_unit_test(test_roundtrip_json_looking_text),
        cmocka_unit_test(test_encoders_escape_every_ascii_byte),
        cmocka_unit_test(test_roundtrip_id_through_reply),
        cmocka_unit_test(test_api_publish_text_and_data),
        cmocka_unit_test(test_api_direct_target_rules),
        cmocka_unit_test(test_api_rejects_bad_bodies),
        cmocka_unit_test(test_api_text_limit),
        cmocka_unit_test(test_presence_user_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
