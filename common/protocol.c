/*
 * protocol — codec for wire protocol v1; see protocol.h for the contract.
 *
 * Design. Decoding is three passes over a frame, each with one job:
 *   1. proto_json_text_valid(): a byte-level state machine that accepts only UTF-8 without raw
 *      control characters inside strings, without non-JSON whitespace between tokens, and
 *      without a \u0000 escape. cJSON is lenient on exactly these points (it treats every byte
 *      <= 0x20 as whitespace, copies raw control bytes and invalid UTF-8 into strings, and cuts
 *      a string at an escaped NUL), so after this pass the tree cJSON builds is a faithful
 *      picture of the text: every decoded string is valid UTF-8 and its strlen() is its length.
 *   2. cJSON_ParseWithLengthOpts() builds the tree; bytes after the value must be whitespace
 *      (cJSON alone would accept `{} garbage`).
 *   3. Field validation, in the order id, type, then the type's own fields, so an error can
 *      echo the id whenever the id itself was usable. Lookups are case-sensitive and a field
 *      given twice is rejected as invalid: with duplicates, which copy counts would depend on
 *      the parser, and a proxy and the gateway must never disagree about what was asked.
 *      Unknown extra fields are ignored, so clients may add their own.
 *
 * Numbers. JSON numbers reach us as doubles. Integer fields accept whole values in
 * [min, 2^53] (1.0 and 1e2 are whole; JavaScript clients cannot tell 1.0 from 1 anyway).
 * On output, cJSON prints doubles with "%1.15g", which loses digits above 10^15 and switches
 * to exponent form (1e+15), so every integer we write goes in as raw text formatted with
 * PRIu64 / PRId64. Numeric request ids are normalised once at decode time: whole values up to
 * 2^53 in magnitude as plain integers, others in the shortest "%.17g"-style form that reads
 * back as the same double; non-finite ids (1e400) are refused.
 *
 * Encoding builds a cJSON tree and prints it unformatted, so all escaping is cJSON's. Pieces
 * that are already JSON text (the request id, stored message frames, backend "data") are
 * embedded verbatim as raw nodes; they come from our own decoder or from Redis and are trusted.
 * Field order follows PROTOCOL.md §1-2 so frames read the same in logs as in the docs.
 *
 * Required string arguments given as NULL are written as "" rather than failing, so that NULL
 * from an encoder always means an allocation failure, as the header promises.
 *
 * Thread safety: no state of our own. cJSON keeps one static "last parse error" pointer that
 * every parse writes; it is never read here, so concurrent decoding is harmless in practice.
 */
#include "protocol.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTO_INT_MAX 9007199254740992.0 /* 2^53: the largest integer every JSON reader keeps */

static const char *const type_names[PROTO_TYPE_COUNT] = {
    [PROTO_JOIN] = "join",       [PROTO_LEAVE] = "leave",   [PROTO_PUBLISH] = "publish",
    [PROTO_DIRECT] = "direct",   [PROTO_TYPING] = "typing", [PROTO_PRESENCE] = "presence",
    [PROTO_HISTORY] = "history", [PROTO_PING] = "ping",       [PROTO_REFRESH] = "refresh",
    [PROTO_READ] = "read",       [PROTO_UNREAD] = "unread",
};

static const char *const error_codes[PROTO_ERR_COUNT] = {
    [PROTO_OK] = "ok",
    [PROTO_ERR_BAD_REQUEST] = "bad_request",
    [PROTO_ERR_UNKNOWN_TYPE] = "unknown_type",
    [PROTO_ERR_INVALID_ROOM] = "invalid_room",
    [PROTO_ERR_FORBIDDEN] = "forbidden",
    [PROTO_ERR_NOT_JOINED] = "not_joined",
    [PROTO_ERR_TOO_LARGE] = "too_large",
    [PROTO_ERR_RATE_LIMITED] = "rate_limited",
    [PROTO_ERR_LIMIT_EXCEEDED] = "limit_exceeded",
    [PROTO_ERR_UNAVAILABLE] = "unavailable",
    [PROTO_ERR_INTERNAL] = "internal",
    [PROTO_ERR_INVALID_TOKEN] = "invalid_token",
};

/* ---------------------------------------------------------------------------------------- */
/* Names and lexical checks                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Returns the protocol's code string for e; "internal" for values outside the enum. */
const char *proto_error_code(enum proto_error e)
{
    if ((unsigned)e >= PROTO_ERR_COUNT)
        return error_codes[PROTO_ERR_INTERNAL];
    return error_codes[e];
}

/* Returns the wire name of t; "unknown" for values outside the enum. */
const char *proto_type_name(enum proto_type t)
{
    if ((unsigned)t >= PROTO_TYPE_COUNT)
        return "unknown";
    return type_names[t];
}

/* True exactly when room[0..len) matches ^[A-Za-z0-9_.:-]{1,64}$. */
bool proto_room_valid(const char *room, size_t len)
{
    if (!room || len == 0 || len > PROTO_ROOM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)room[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Returns the length (2..4) of the well-formed UTF-8 sequence at s, or 0 when it is malformed
 * (overlong forms, surrogates and code points above U+10FFFF are malformed). s[0] >= 0x80. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return n;
}

/* True when buf[0..len) is UTF-8 with no raw control byte inside a string, no control byte
 * other than tab, LF, CR between tokens, and no \u0000 escape. It does not check JSON syntax
 * (cJSON does); it closes the gaps where cJSON would accept text and build a different tree. */
bool proto_json_text_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    bool in_string = false;
    size_t i = 0;
    if (!buf && len)
        return false;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t n = utf8_sequence_length(s + i, len - i);
            if (n == 0)
                return false;
            i += n;
            continue;
        }
        if (c < 0x20) {
            if (in_string || (c != '\t' && c != '\n' && c != '\r'))
                return false;
        } else if (in_string && c == '\\') {
            /* Consume the escape as a pair so an escaped quote or backslash never toggles. */
            if (i + 1 >= len || s[i + 1] < 0x20 || s[i + 1] >= 0x80)
                return false;
            if (s[i + 1] == 'u' && len - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0)
                return false;
            i += 2;
            continue;
        } else if (c == '"') {
            in_string = !in_string;
        }
        i++;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoding                                                                                   */
/* ---------------------------------------------------------------------------------------- */

enum field_state { FIELD_ABSENT, FIELD_PRESENT, FIELD_DUPLICATE };

/* Finds obj's member named exactly `name`; reports FIELD_DUPLICATE when it occurs twice. */
static enum field_state get_field(const cJSON *obj, const char *name, const cJSON **out)
{
    const cJSON *found = NULL;
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (it->string && strcmp(it->string, name) == 0) {
            if (found)
                return FIELD_DUPLICATE;
            found = it;
        }
    }
    *out = found;
    return found ? FIELD_PRESENT : FIELD_ABSENT;
}

/* Stores a whole number in [min, 2^53] from item into *out; false for anything else. */
static bool json_integer(const cJSON *item, uint64_t min, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= (double)min && v <= PROTO_INT_MAX)) /* also false for NaN */
        return false;
    uint64_t u = (uint64_t)v;
    if ((double)u != v)
        return false;
    *out = u;
    return true;
}

/* Writes the JSON text of numeric id v into out (PROTO_ID_MAX + 1 bytes); false when v is not
 * finite. Whole values print as integers; others in the shortest form that reads back as v. */
static bool format_number_id(double v, char *out)
{
    if (!isfinite(v))
        return false;
    if (v >= -PROTO_INT_MAX && v <= PROTO_INT_MAX && (double)(int64_t)v == v) {
        snprintf(out, PROTO_ID_MAX + 1, "%" PRId64, (int64_t)v);
        return true;
    }
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(out, PROTO_ID_MAX + 1, "%.*g", precision, v);
        if (strtod(out, NULL) == v)
            break;
    }
    return true;
}

/* Sets req->id to the JSON text of the frame's "id" (or leaves it "" when absent); false when
 * the id is duplicated, neither string nor number, not finite, or longer than PROTO_ID_MAX. */
static bool decode_id(const cJSON *root, struct proto_request *req)
{
    const cJSON *id;
    enum field_state st = get_field(root, "id", &id);
    if (st == FIELD_ABSENT)
        return true;
    if (st == FIELD_DUPLICATE)
        return false;
    if (cJSON_IsNumber(id))
        return format_number_id(id->valuedouble, req->id);
    if (!cJSON_IsString(id) || !id->valuestring)
        return false;
    /* Escaping only grows a string; quotes add 2. Skip printing ids that cannot fit. */
    if (strlen(id->valuestring) + 2 > PROTO_ID_MAX)
        return false;
    char *text = cJSON_PrintUnformatted(id);
    if (!text)
        return false;
    size_t n = strlen(text);
    bool fits = n <= PROTO_ID_MAX;
    if (fits)
        memcpy(req->id, text, n + 1);
    free(text);
    return fits;
}

/* Fills req->room from "room": bad_request when missing or not a string, invalid_room when it
 * does not match the room syntax. */
static enum proto_error decode_room(const cJSON *root, struct proto_request *req,
                                    const char **message)
{
    const cJSON *room;
    if (get_field(root, "room", &room) != FIELD_PRESENT || !cJSON_IsString(room) ||
        !room->valuestring) {
        *message = "missing or invalid field: room";
        return PROTO_ERR_BAD_REQUEST;
    }
    size_t len = strlen(room->valuestring);
    if (!proto_room_valid(room->valuestring, len)) {
        *message = "invalid room name (^[A-Za-z0-9_.:-]{1,64}$)";
        return PROTO_ERR_INVALID_ROOM;
    }
    memcpy(req->room, room->valuestring, len + 1);
    return PROTO_OK;
}

/* Points req->text at "text": bad_request when missing or not a string, too_large when longer
 * than text_limit bytes. */
static enum proto_error decode_text(const cJSON *root, size_t text_limit, struct proto_request *req,
                                    const char **message)
{
    const cJSON *text;
    if (get_field(root, "text", &text) != FIELD_PRESENT || !cJSON_IsString(text) ||
        !text->valuestring) {
        *message = "missing or invalid field: text";
        return PROTO_ERR_BAD_REQUEST;
    }
    size_t len = strlen(text->valuestring);
    if (len > text_limit) {
        *message = "text too large";
        return PROTO_ERR_TOO_LARGE;
    }
    req->text = text->valuestring;
    req->text_len = len;
    return PROTO_OK;
}

/* Points req->to at "to": a string of 1..PROTO_USER_MAX bytes not starting with '@'. */
static enum proto_error decode_to(const cJSON *root, struct proto_request *req,
                                  const char **message)
{
    const cJSON *to;
    if (get_field(root, "to", &to) != FIELD_PRESENT || !cJSON_IsString(to) || !to->valuestring) {
        *message = "missing or invalid field: to";
        return PROTO_ERR_BAD_REQUEST;
    }
    size_t len = strlen(to->valuestring);
    if (len == 0 || len > PROTO_USER_MAX) {
        *message = "invalid field: to (1..128 bytes)";
        return PROTO_ERR_BAD_REQUEST;
    }
    if (to->valuestring[0] == '@') {
        *message = "invalid field: to (ids starting with @ are reserved)";
        return PROTO_ERR_BAD_REQUEST;
    }
    req->to = to->valuestring;
    return PROTO_OK;
}

/* Sets req->state from the required boolean "state". */
static enum proto_error decode_state(const cJSON *root, struct proto_request *req,
                                     const char **message)
{
    const cJSON *state;
    if (get_field(root, "state", &state) != FIELD_PRESENT || !cJSON_IsBool(state)) {
        *message = "missing or invalid field: state";
        return PROTO_ERR_BAD_REQUEST;
    }
    req->state = cJSON_IsTrue(state);
    return PROTO_OK;
}

/* Fills req->since_* from the optional {"offset": integer >= 0, "epoch": 1..64 bytes}. */
static enum proto_error decode_since(const cJSON *root, struct proto_request *req,
                                     const char **message)
{
    const cJSON *since, *offset, *epoch;
    enum field_state st = get_field(root, "since", &since);
    if (st == FIELD_ABSENT)
        return PROTO_OK;
    if (st == FIELD_DUPLICATE || !cJSON_IsObject(since)) {
        *message = "missing or invalid field: since";
        return PROTO_ERR_BAD_REQUEST;
    }
    if (get_field(since, "offset", &offset) != FIELD_PRESENT ||
        !json_integer(offset, 0, &req->since_offset)) {
        *message = "missing or invalid field: since.offset";
        return PROTO_ERR_BAD_REQUEST;
    }
    if (get_field(since, "epoch", &epoch) != FIELD_PRESENT || !cJSON_IsString(epoch) ||
        !epoch->valuestring) {
        *message = "missing or invalid field: since.epoch";
        return PROTO_ERR_BAD_REQUEST;
    }
    size_t len = strlen(epoch->valuestring);
    if (len == 0 || len > PROTO_EPOCH_MAX) {
        *message = "invalid field: since.epoch (1..64 bytes)";
        return PROTO_ERR_BAD_REQUEST;
    }
    memcpy(req->since_epoch, epoch->valuestring, len + 1);
    req->has_since = true;
    return PROTO_OK;
}

/* Fills req->limit and req->before from the optional history fields. */
static enum proto_error decode_history(const cJSON *root, struct proto_request *req,
                                       const char **message)
{
    const cJSON *item;
    uint64_t v;
    enum field_state st = get_field(root, "limit", &item);
    if (st != FIELD_ABSENT) {
        if (st == FIELD_DUPLICATE || !json_integer(item, 1, &v)) {
            *message = "missing or invalid field: limit";
            return PROTO_ERR_BAD_REQUEST;
        }
        req->limit = v > PROTO_HISTORY_MAX ? PROTO_HISTORY_MAX : (int)v;
    }
    st = get_field(root, "before", &item);
    if (st != FIELD_ABSENT) {
        if (st == FIELD_DUPLICATE || !json_integer(item, 1, &req->before)) {
            *message = "missing or invalid field: before";
            return PROTO_ERR_BAD_REQUEST;
        }
        req->has_before = true;
    }
    return PROTO_OK;
}

/* refresh: "token", a non-empty string of at most PROTO_TOKEN_MAX bytes. */
static enum proto_error decode_token(const cJSON *root, struct proto_request *req,
                                     const char **message)
{
    const cJSON *item;
    if (get_field(root, "token", &item) != FIELD_PRESENT || !cJSON_IsString(item) ||
        !item->valuestring || !item->valuestring[0] ||
        strlen(item->valuestring) > PROTO_TOKEN_MAX) {
        *message = "missing or invalid field: token";
        return PROTO_ERR_BAD_REQUEST;
    }
    req->token = item->valuestring;
    return PROTO_OK;
}

/* read: "offset", an integer >= 0. */
static enum proto_error decode_offset(const cJSON *root, struct proto_request *req,
                                      const char **message)
{
    const cJSON *item;
    if (get_field(root, "offset", &item) != FIELD_PRESENT || !json_integer(item, 0, &req->offset)) {
        *message = "missing or invalid field: offset";
        return PROTO_ERR_BAD_REQUEST;
    }
    return PROTO_OK;
}

/* True when buf[0..len) holds only JSON whitespace. */
static bool only_whitespace(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r')
            return false;
    }
    return true;
}

/* Parses buf as exactly one JSON value with nothing but whitespace after it, and requires an
 * object. On false, *message is not_json or not_object, and *root holds the parsed value (if
 * any) for the caller to free. */
static bool parse_object(const char *buf, size_t len, cJSON **root, const char **message,
                         const char *not_json, const char *not_object)
{
    *root = NULL;
    if (!buf || len == 0 || !proto_json_text_valid(buf, len)) {
        *message = not_json;
        return false;
    }
    const char *end = NULL;
    cJSON *parsed = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!parsed || !end || end < buf || end > buf + len ||
        !only_whitespace(end, (size_t)(buf + len - end))) {
        cJSON_Delete(parsed);
        *message = not_json;
        return false;
    }
    *root = parsed;
    if (!cJSON_IsObject(parsed)) {
        *message = not_object;
        return false;
    }
    return true;
}

/* Decodes and validates one frame per the rules in protocol.h; req is always left in a state
 * proto_request_free() accepts, with req->id set whenever the frame carried a usable id. */
enum proto_error proto_decode(const char *buf, size_t len, size_t text_limit,
                              struct proto_request *req, const char **message)
{
    const char *unused;
    if (!message)
        message = &unused;
    *message = NULL;
    memset(req, 0, sizeof(*req));
    req->limit = PROTO_HISTORY_DEFAULT;

    cJSON *root = NULL;
    if (!parse_object(buf, len, &root, message, "frame is not valid JSON",
                      "frame is not a JSON object")) {
        req->tree = root;
        return PROTO_ERR_BAD_REQUEST;
    }
    req->tree = root;
    if (!decode_id(root, req)) {
        req->id[0] = '\0';
        *message = "invalid field: id (a string or number, at most 128 bytes of JSON)";
        return PROTO_ERR_BAD_REQUEST;
    }

    const cJSON *type;
    if (get_field(root, "type", &type) != FIELD_PRESENT || !cJSON_IsString(type) ||
        !type->valuestring) {
        *message = "missing or invalid field: type";
        return PROTO_ERR_BAD_REQUEST;
    }
    int t = 0;
    while (t < PROTO_TYPE_COUNT && strcmp(type_names[t], type->valuestring) != 0)
        t++;
    if (t == PROTO_TYPE_COUNT) {
        *message = "unknown type";
        return PROTO_ERR_UNKNOWN_TYPE;
    }
    req->type = (enum proto_type)t;

    enum proto_error e = PROTO_OK;
    switch (req->type) {
    case PROTO_JOIN:
        e = decode_room(root, req, message);
        if (e == PROTO_OK)
            e = decode_since(root, req, message);
        break;
    case PROTO_LEAVE:
        e = decode_room(root, req, message);
        break;
    case PROTO_PRESENCE: {
        /* With "user" instead of "room": that user's online status (our extension). */
        const cJSON *user, *room;
        if (get_field(root, "user", &user) == FIELD_PRESENT &&
            get_field(root, "room", &room) == FIELD_ABSENT) {
            size_t ulen = cJSON_IsString(user) && user->valuestring ? strlen(user->valuestring) : 0;
            if (ulen == 0 || ulen > PROTO_USER_MAX) {
                *message = "invalid field: user (1..128 bytes)";
                e = PROTO_ERR_BAD_REQUEST;
            } else {
                req->to = user->valuestring;
            }
        } else {
            e = decode_room(root, req, message);
        }
        break;
    }
    case PROTO_PUBLISH:
        e = decode_room(root, req, message);
        if (e == PROTO_OK)
            e = decode_text(root, text_limit, req, message);
        break;
    case PROTO_DIRECT:
        e = decode_to(root, req, message);
        if (e == PROTO_OK)
            e = decode_text(root, text_limit, req, message);
        break;
    case PROTO_TYPING:
        e = decode_room(root, req, message);
        if (e == PROTO_OK)
            e = decode_state(root, req, message);
        break;
    case PROTO_HISTORY:
        e = decode_room(root, req, message);
        if (e == PROTO_OK)
            e = decode_history(root, req, message);
        break;
    case PROTO_REFRESH:
        e = decode_token(root, req, message);
        break;
    case PROTO_READ:
        e = decode_room(root, req, message);
        if (e == PROTO_OK)
            e = decode_offset(root, req, message);
        break;
    case PROTO_PING:
    case PROTO_UNREAD:
    case PROTO_TYPE_COUNT:
        break;
    }
    return e;
}

/* Decodes a backend API body with the same strictness as client frames (UTF-8, one object,
 * no duplicate fields we read); see protocol.h. */
enum proto_error proto_decode_api(const char *buf, size_t len, size_t text_limit, bool direct,
                                  struct proto_api_request *out, const char **message)
{
    const char *unused;
    if (!message)
        message = &unused;
    memset(out, 0, sizeof(*out));
    cJSON *root = NULL;
    if (!parse_object(buf, len, &root, message, "body is not valid JSON",
                      "body is not a JSON object")) {
        out->tree = root;
        return PROTO_ERR_BAD_REQUEST;
    }
    out->tree = root;
    struct proto_request tmp;
    memset(&tmp, 0, sizeof(tmp));
    enum proto_error e = direct ? decode_to(root, &tmp, message) : decode_room(root, &tmp, message);
    if (e != PROTO_OK)
        return e;
    out->to = tmp.to;
    memcpy(out->room, tmp.room, sizeof(out->room));
    const cJSON *text, *data;
    enum field_state ts = get_field(root, "text", &text), ds = get_field(root, "data", &data);
    if (ts == FIELD_DUPLICATE || ds == FIELD_DUPLICATE || (ts == FIELD_PRESENT) == (ds == FIELD_PRESENT)) {
        *message = "exactly one of text and data is required";
        return PROTO_ERR_BAD_REQUEST;
    }
    if (ts == FIELD_PRESENT) {
        e = decode_text(root, text_limit, &tmp, message);
        out->text = tmp.text;
        out->text_len = tmp.text_len;
        return e;
    }
    out->data_json = cJSON_PrintUnformatted(data);
    if (!out->data_json) {
        *message = "out of memory";
        return PROTO_ERR_INTERNAL;
    }
    return PROTO_OK;
}

void proto_api_request_free(struct proto_api_request *r)
{
    if (!r)
        return;
    cJSON_Delete(r->tree);
    cJSON_free(r->data_json);
    memset(r, 0, sizeof(*r));
}

/* Releases the parsed tree; req's text/to pointers become invalid. Safe to call twice. */
void proto_request_free(struct proto_request *req)
{
    if (!req)
        return;
    cJSON_Delete(req->tree);
    req->tree = NULL;
    req->text = NULL;
    req->text_len = 0;
    req->to = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Encoding                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Each add_* returns false on allocation failure and leaves the object consistent, so an
 * encoder can chain them with && and free the tree once at the end. */

static bool add_string(cJSON *obj, const char *name, const char *value)
{
    return cJSON_AddStringToObject(obj, name, value ? value : "") != NULL;
}

/* Adds text[0..len) as a string; text need not be NUL-terminated. */
static bool add_string_len(cJSON *obj, const char *name, const char *text, size_t len)
{
    if (!text)
        return add_string(obj, name, "");
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    bool ok = cJSON_AddStringToObject(obj, name, copy) != NULL;
    free(copy);
    return ok;
}

static bool add_u64(cJSON *obj, const char *name, uint64_t value)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%" PRIu64, value);
    return cJSON_AddRawToObject(obj, name, digits) != NULL;
}

static bool add_i64(cJSON *obj, const char *name, int64_t value)
{
    char digits[24];
    snprintf(digits, sizeof(digits), "%" PRId64, value);
    return cJSON_AddRawToObject(obj, name, digits) != NULL;
}

static bool add_bool(cJSON *obj, const char *name, bool value)
{
    return cJSON_AddBoolToObject(obj, name, value) != NULL;
}

/* Adds "id" verbatim from its JSON text; nothing when id_json is NULL or "". */
static bool add_id(cJSON *obj, const char *id_json)
{
    if (!id_json || !*id_json)
        return true;
    return cJSON_AddRawToObject(obj, "id", id_json) != NULL;
}

/* Adds "from":{"user":U[,"name":N]}. */
static bool add_from(cJSON *obj, const char *user, const char *name)
{
    cJSON *from = cJSON_AddObjectToObject(obj, "from");
    return from && add_string(from, "user", user) && (!name || add_string(from, "name", name));
}

/* Adds the message body: "data" as raw JSON when data_json is given, else "text". */
static bool add_body(cJSON *obj, const char *text, size_t text_len, const char *data_json)
{
    if (data_json)
        return cJSON_AddRawToObject(obj, "data", data_json) != NULL;
    return add_string_len(obj, "text", text, text_len);
}

/* A new object whose first member is "type"; NULL on allocation failure. */
static cJSON *new_frame(const char *type)
{
    cJSON *obj = cJSON_CreateObject();
    if (obj && !add_string(obj, "type", type)) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/* Prints obj compactly when every add succeeded (ok), frees it, returns the text or NULL. */
static char *finish(cJSON *obj, bool ok)
{
    char *out = ok && obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return out;
}

/* {"type":"welcome","conn":C,"user":U,"node":N,"ts":T,"heartbeat":H} */
char *proto_encode_welcome(const char *conn, const char *user, const char *node, int64_t ts_ms,
                           int heartbeat_s)
{
    cJSON *o = new_frame("welcome");
    return finish(o, o && add_string(o, "conn", conn) && add_string(o, "user", user) &&
                         add_string(o, "node", node) && add_i64(o, "ts", ts_ms) &&
                         add_i64(o, "heartbeat", heartbeat_s));
}

/* {"type":"joined","room":R,"id":..,"offset":N,"epoch":E[,"recovered":bool]} */
char *proto_encode_joined(const char *id_json, const char *room, uint64_t offset, const char *epoch,
                          int recovered)
{
    cJSON *o = new_frame("joined");
    return finish(o, o && add_string(o, "room", room) && add_id(o, id_json) &&
                         add_u64(o, "offset", offset) && add_string(o, "epoch", epoch) &&
                         (recovered < 0 || add_bool(o, "recovered", recovered != 0)));
}

char *proto_encode_joined_read(const char *id_json, const char *room, uint64_t offset,
                               const char *epoch, int recovered, uint64_t read)
{
    cJSON *o = new_frame("joined");
    return finish(o, o && add_string(o, "room", room) && add_id(o, id_json) &&
                         add_u64(o, "offset", offset) && add_string(o, "epoch", epoch) &&
                         (recovered < 0 || add_bool(o, "recovered", recovered != 0)) &&
                         add_u64(o, "read", read) &&
                         add_u64(o, "unread", offset > read ? offset - read : 0));
}

char *proto_encode_refreshed(const char *id_json, int64_t exp_s)
{
    cJSON *o = new_frame("refreshed");
    return finish(o, o && add_id(o, id_json) && (exp_s == 0 || add_i64(o, "exp", exp_s)));
}

char *proto_encode_reset(const char *room, const char *epoch, uint64_t offset)
{
    cJSON *o = new_frame("reset");
    return finish(o, o && add_string(o, "room", room) && add_string(o, "epoch", epoch) &&
                         add_u64(o, "offset", offset));
}

char *proto_encode_read_ok(const char *id_json, const char *room, uint64_t offset)
{
    cJSON *o = new_frame("read_ok");
    return finish(o, o && add_id(o, id_json) && add_string(o, "room", room) &&
                         add_u64(o, "offset", offset));
}

char *proto_encode_read_event(const char *room, const char *user, uint64_t offset, int64_t ts_ms)
{
    cJSON *o = new_frame("read");
    return finish(o, o && add_string(o, "room", room) && add_string(o, "user", user) &&
                         add_u64(o, "offset", offset) && add_i64(o, "ts", ts_ms));
}

char *proto_encode_unread(const char *id_json, const struct proto_unread_room *rooms, size_t n)
{
    cJSON *o = new_frame("unread");
    bool ok = o && add_id(o, id_json);
    cJSON *list = ok ? cJSON_AddArrayToObject(o, "rooms") : NULL;
    ok = ok && list;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        if (!r || !cJSON_AddItemToArray(list, r)) {
            cJSON_Delete(r);
            ok = false;
            break;
        }
        uint64_t off = rooms[i].offset, rd = rooms[i].read;
        ok = add_string(r, "room", rooms[i].room) && add_u64(r, "offset", off) &&
             add_u64(r, "read", rd) && add_u64(r, "unread", off > rd ? off - rd : 0);
    }
    return finish(o, ok);
}

/* {"type":"left","room":R,"id":..} */
char *proto_encode_left(const char *id_json, const char *room)
{
    cJSON *o = new_frame("left");
    return finish(o, o && add_string(o, "room", room) && add_id(o, id_json));
}

/* {"type":"ack","id":..,"room":R,"offset":N,"ts":T}, or {"type":"ack","id":..,"ts":T} when
 * room is NULL (a direct). */
char *proto_encode_ack(const char *id_json, const char *room, uint64_t offset, int64_t ts_ms)
{
    cJSON *o = new_frame("ack");
    bool ok = o && add_id(o, id_json);
    if (ok && room)
        ok = add_string(o, "room", room) && add_u64(o, "offset", offset);
    return finish(o, ok && add_i64(o, "ts", ts_ms));
}

/* {"type":"error","id":..,"code":C,"message":M}; message defaults to the code itself. */
char *proto_encode_error(const char *id_json, enum proto_error code, const char *message)
{
    const char *c = proto_error_code(code);
    cJSON *o = new_frame("error");
    return finish(o, o && add_id(o, id_json) && add_string(o, "code", c) &&
                         add_string(o, "message", message ? message : c));
}

/* {"type":"pong","id":..,"ts":T} */
char *proto_encode_pong(const char *id_json, int64_t ts_ms)
{
    cJSON *o = new_frame("pong");
    return finish(o, o && add_id(o, id_json) && add_i64(o, "ts", ts_ms));
}

/* {"type":"user_joined","room":R,"user":U[,"name":N],"ts":T} */
char *proto_encode_user_joined(const char *room, const char *user, const char *name, int64_t ts_ms)
{
    cJSON *o = new_frame("user_joined");
    return finish(o, o && add_string(o, "room", room) && add_string(o, "user", user) &&
                         (!name || add_string(o, "name", name)) && add_i64(o, "ts", ts_ms));
}

/* {"type":"user_left","room":R,"user":U,"ts":T} */
char *proto_encode_user_left(const char *room, const char *user, int64_t ts_ms)
{
    cJSON *o = new_frame("user_left");
    return finish(o, o && add_string(o, "room", room) && add_string(o, "user", user) &&
                         add_i64(o, "ts", ts_ms));
}

/* {"type":"typing","room":R,"user":U,"state":bool} */
char *proto_encode_typing(const char *room, const char *user, bool state)
{
    cJSON *o = new_frame("typing");
    return finish(o, o && add_string(o, "room", room) && add_string(o, "user", user) &&
                         add_bool(o, "state", state));
}

/* {"type":"direct","from":{"user":U[,"name":N]},"to":U2,"ts":T,"text":X} (or "data"). */
char *proto_encode_direct(const char *from_user, const char *from_name, const char *to,
                          int64_t ts_ms, const char *text, size_t text_len, const char *data_json)
{
    cJSON *o = new_frame("direct");
    return finish(o, o && add_from(o, from_user, from_name) && add_string(o, "to", to) &&
                         add_i64(o, "ts", ts_ms) && add_body(o, text, text_len, data_json));
}

/* {"type":"presence","room":R,"id":..,"users":[{"user":U[,"name":N]},..]}; names may be NULL
 * as a whole or per entry. */
char *proto_encode_presence(const char *id_json, const char *room, const char *const *users,
                            const char *const *names, size_t n)
{
    cJSON *o = new_frame("presence");
    bool ok = o && add_string(o, "room", room) && add_id(o, id_json);
    cJSON *list = ok ? cJSON_AddArrayToObject(o, "users") : NULL;
    ok = ok && list;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *entry = cJSON_CreateObject();
        if (!entry || !cJSON_AddItemToArray(list, entry)) {
            cJSON_Delete(entry);
            ok = false;
            break;
        }
        const char *name = names ? names[i] : NULL;
        ok = add_string(entry, "user", users[i]) && (!name || add_string(entry, "name", name));
    }
    return finish(o, ok);
}

/* {"type":"presence","id":..,"user":U,"online":B} */
char *proto_encode_user_status(const char *id_json, const char *user, bool online)
{
    cJSON *o = new_frame("presence");
    bool ok = o && add_id(o, id_json) && add_string(o, "user", user) &&
              add_bool(o, "online", online);
    return finish(o, ok);
}

/* {"type":"history","room":R,"id":..,"messages":[..][,"more":true]}; stored frames are
 * embedded verbatim, NULL entries skipped. */
static char *history_frame(const char *id_json, const char *room, const char *const *messages,
                           size_t n, bool more)
{
    cJSON *o = new_frame("history");
    bool ok = o && add_string(o, "room", room) && add_id(o, id_json);
    cJSON *list = ok ? cJSON_AddArrayToObject(o, "messages") : NULL;
    ok = ok && list;
    for (size_t i = 0; ok && i < n; i++) {
        if (!messages[i])
            continue;
        cJSON *raw = cJSON_CreateRaw(messages[i]);
        if (!raw || !cJSON_AddItemToArray(list, raw)) {
            cJSON_Delete(raw);
            ok = false;
        }
    }
    return finish(o, ok && (!more || add_bool(o, "more", true)));
}

char *proto_encode_history(const char *id_json, const char *room, const char *const *messages,
                           size_t n)
{
    return history_frame(id_json, room, messages, n, false);
}

char *proto_encode_history_page(const char *id_json, const char *room,
                                const char *const *messages, size_t n, bool more)
{
    return history_frame(id_json, room, messages, n, more);
}

/* {"error":E,"message":M} */
char *proto_encode_http_error(const char *error, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    return finish(o, o && add_string(o, "error", error) && add_string(o, "message", message));
}

/* Splits a message frame around its offset: head is the frame up to `"offset":`, tail the rest
 * from the comma after the offset. Both halves are printed by cJSON as separate objects and
 * trimmed at their braces, so the join is exact without searching the text. */
int proto_encode_message_parts(const char *room, int64_t ts_ms, const char *user, const char *name,
                               const char *text, size_t text_len, const char *data_json,
                               char **head, char **tail)
{
    static const char offset_key[] = ",\"offset\":";
    *head = NULL;
    *tail = NULL;

    cJSON *h = new_frame("message");
    char *head_obj = finish(h, h && add_string(h, "room", room)); /* {"type":..,"room":R} */
    cJSON *t = cJSON_CreateObject();
    char *tail_obj = finish(t, t && add_i64(t, "ts", ts_ms) && add_from(t, user, name) &&
                                   add_body(t, text, text_len, data_json));
    if (!head_obj || !tail_obj) {
        free(head_obj);
        free(tail_obj);
        return -1;
    }
    size_t n = strlen(head_obj) - 1; /* drop the closing brace */
    char *out = malloc(n + sizeof(offset_key));
    if (!out) {
        free(head_obj);
        free(tail_obj);
        return -1;
    }
    memcpy(out, head_obj, n);
    memcpy(out + n, offset_key, sizeof(offset_key));
    free(head_obj);
    tail_obj[0] = ','; /* {"ts":..} becomes ,"ts":..} */
    *head = out;
    *tail = tail_obj;
    return 0;
}

/* The full message frame: exactly head + decimal(offset) + tail of
 * proto_encode_message_parts(). */
char *proto_encode_message(const char *room, uint64_t offset, int64_t ts_ms, const char *user,
                           const char *name, const char *text, size_t text_len,
                           const char *data_json)
{
    char *head, *tail;
    if (proto_encode_message_parts(room, ts_ms, user, name, text, text_len, data_json, &head,
                                   &tail) != 0)
        return NULL;
    char digits[24];
    int dn = snprintf(digits, sizeof(digits), "%" PRIu64, offset);
    size_t hn = strlen(head), tn = strlen(tail);
    char *out = malloc(hn + (size_t)dn + tn + 1);
    if (out) {
        memcpy(out, head, hn);
        memcpy(out + hn, digits, (size_t)dn);
        memcpy(out + hn + (size_t)dn, tail, tn + 1);
    }
    free(head);
    free(tail);
    return out;
}
