/*
 * protocol — codec for wire protocol v1 (docs/protocol.md, a copy of ../shared/PROTOCOL.md
 * with our decisions). Pure: bytes in, structs out; structs in, JSON text out. Uses cJSON for
 * all parsing and escaping; no JSON is written by hand.
 *
 * Decoding validates everything a handler needs (types, room syntax, text size), so handlers
 * only apply state rules (membership, rate, rooms claim). Encoders return malloc'd,
 * NUL-terminated compact JSON (caller frees with free()); NULL only on allocation failure.
 *
 * Client request ids are kept as their JSON text (a string with its quotes, or a number) and
 * echoed verbatim, so "7" and 7 stay distinct for the client.
 */
#ifndef CHAT_PROTOCOL_H
#define CHAT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_ROOM_MAX 64      /* ^[A-Za-z0-9_.:-]{1,64}$ */
#define PROTO_USER_MAX 128     /* user ids (JWT sub), bytes */
#define PROTO_ID_MAX 128       /* request id, as JSON text, bytes */
#define PROTO_EPOCH_MAX 64
#define PROTO_HISTORY_DEFAULT 50
#define PROTO_HISTORY_MAX 1000
#define PROTO_TOKEN_MAX 16384    /* refresh token, bytes */

enum proto_type {
    PROTO_JOIN = 0,
    PROTO_LEAVE,
    PROTO_PUBLISH,
    PROTO_DIRECT,
    PROTO_TYPING,
    PROTO_PRESENCE,
    PROTO_HISTORY,
    PROTO_PING,
    PROTO_REFRESH, /* v1.1 §7 */
    PROTO_READ,    /* v1.1 §8 */
    PROTO_UNREAD,  /* v1.1 §8 */
    PROTO_TYPE_COUNT
};

enum proto_error {
    PROTO_OK = 0,
    PROTO_ERR_BAD_REQUEST,
    PROTO_ERR_UNKNOWN_TYPE,
    PROTO_ERR_INVALID_ROOM,
    PROTO_ERR_FORBIDDEN,
    PROTO_ERR_NOT_JOINED,
    PROTO_ERR_TOO_LARGE,
    PROTO_ERR_RATE_LIMITED,
    PROTO_ERR_LIMIT_EXCEEDED,
    PROTO_ERR_UNAVAILABLE,
    PROTO_ERR_INTERNAL,
    PROTO_ERR_INVALID_TOKEN, /* refresh with a token the policy refuses (§7) */
    PROTO_ERR_COUNT
};

/* A decoded client request. Pointers (text, to) point into the parsed tree owned by the
 * request; they stay valid until proto_request_free(). */
struct proto_request {
    enum proto_type type;
    char id[PROTO_ID_MAX + 1]; /* JSON text of "id"; "" when absent */
    char room[PROTO_ROOM_MAX + 1]; /* "" when the type takes no room */
    const char *text;          /* publish/direct: UTF-8 text */
    size_t text_len;           /* bytes */
    const char *to;            /* direct: target user id; presence: the user asked about (when
                                  "user" is given instead of "room") */
    bool state;                /* typing */
    bool has_since;            /* join: since given */
    uint64_t since_offset;
    char since_epoch[PROTO_EPOCH_MAX + 1];
    int limit;                 /* history: 1..1000, default 50 (larger values are cut to 1000) */
    bool has_before;
    uint64_t before;           /* history: offsets < before */
    uint64_t offset;           /* read: the offset read up to */
    const char *token;         /* refresh: the new JWT */
    void *tree;                /* cJSON root, owned */
};

/*
 * Decodes one text frame. Returns PROTO_OK and fills *req, or an error code with *message set
 * to a static human-readable reason. On error, req->id is still filled when the frame was an
 * object with a usable id, so the error can echo it; it is "" when the frame could not be
 * parsed. Rules:
 *  - not JSON / not an object / "type" missing or not a string / a field of the wrong type /
 *    a required field missing / id neither string nor number or too long → bad_request;
 *  - unknown "type" → unknown_type;
 *  - "room" present as a string but not matching the room syntax → invalid_room;
 *  - publish/direct "text" over text_limit bytes → too_large;
 *  - direct "to" empty, over PROTO_USER_MAX or starting with '@' → bad_request;
 *  - join "since" must be {"offset": integer >= 0, "epoch": string}; history "limit" an integer
 *    >= 1 (cut to 1000), "before" an integer >= 1; typing "state" a boolean;
 *  - refresh "token" a non-empty string of at most PROTO_TOKEN_MAX bytes; read "room" and
 *    "offset" (an integer >= 0); unread takes no field.
 * Always call proto_request_free(req) afterwards, whatever the result.
 */
enum proto_error proto_decode(const char *buf, size_t len, size_t text_limit,
                              struct proto_request *req, const char **message);
void proto_request_free(struct proto_request *req);

/* True when buf[0..len) is UTF-8 with no raw control character inside a string, no control
 * character other than tab/LF/CR between tokens and no \u0000 escape: the text-level rules
 * proto_decode() applies before parsing (cJSON itself is lenient there). Not a syntax check.
 * For other JSON inputs, e.g. HTTP API bodies. */
bool proto_json_text_valid(const char *buf, size_t len);

/* A backend API body (PROTOCOL.md §6): {"room":R,"text":T} / {"room":R,"data":V} for publish,
 * {"to":U,"text":T} / {"to":U,"data":V} for direct. Exactly one of text and data. */
struct proto_api_request {
    char room[PROTO_ROOM_MAX + 1]; /* publish */
    const char *to;                /* direct */
    const char *text;              /* NULL when data is given */
    size_t text_len;
    char *data_json;               /* compact JSON of "data" (malloc'd), or NULL */
    void *tree;
};

/* Decodes an API body; every failure is a 400 for the caller (invalid_room for a bad room,
 * too_large for a text over text_limit, bad_request otherwise). Always call
 * proto_api_request_free afterwards. */
enum proto_error proto_decode_api(const char *buf, size_t len, size_t text_limit, bool direct,
                                  struct proto_api_request *out, const char **message);
void proto_api_request_free(struct proto_api_request *r);

const char *proto_error_code(enum proto_error e); /* "bad_request", ... */
const char *proto_type_name(enum proto_type t);   /* "join", ... */
bool proto_room_valid(const char *room, size_t len);

/* id_json: the request's id JSON text, or "" / NULL for none (then no "id" field). */
char *proto_encode_welcome(const char *conn, const char *user, const char *node, int64_t ts_ms,
                           int heartbeat_s);
/* recovered: -1 omit, 0 false, 1 true */
char *proto_encode_joined(const char *id_json, const char *room, uint64_t offset,
                          const char *epoch, int recovered);
/* joined with the read marker (v1.1 §8): "read":M and "unread":max(offset - M, 0). */
char *proto_encode_joined_read(const char *id_json, const char *room, uint64_t offset,
                               const char *epoch, int recovered, uint64_t read);
char *proto_encode_left(const char *id_json, const char *room);
/* {"type":"refreshed","id":..,"exp":E} (exp omitted when 0: the token had none). */
char *proto_encode_refreshed(const char *id_json, int64_t exp_s);
/* {"type":"reset","room":R,"epoch":E,"offset":N} (§2). */
char *proto_encode_reset(const char *room, const char *epoch, uint64_t offset);
/* {"type":"read_ok","id":..,"room":R,"offset":M} */
char *proto_encode_read_ok(const char *id_json, const char *room, uint64_t offset);
/* {"type":"read","room":R,"user":U,"offset":M,"ts":T} — another member's marker moved. */
char *proto_encode_read_event(const char *room, const char *user, uint64_t offset, int64_t ts_ms);
struct proto_unread_room {
    const char *room;
    uint64_t offset, read;
};
/* {"type":"unread","id":..,"rooms":[{"room":R,"offset":N,"read":M,"unread":K},..]} */
char *proto_encode_unread(const char *id_json, const struct proto_unread_room *rooms, size_t n);
/* room NULL: a direct ack (no room, no offset) */
char *proto_encode_ack(const char *id_json, const char *room, uint64_t offset, int64_t ts_ms);
char *proto_encode_error(const char *id_json, enum proto_error code, const char *message);
char *proto_encode_pong(const char *id_json, int64_t ts_ms);
char *proto_encode_user_joined(const char *room, const char *user, const char *name,
                               int64_t ts_ms);
char *proto_encode_user_left(const char *room, const char *user, int64_t ts_ms);
char *proto_encode_typing(const char *room, const char *user, bool state);
/* A direct frame; data_json (raw JSON value) is used instead of text when non-NULL. */
char *proto_encode_direct(const char *from_user, const char *from_name, const char *to,
                          int64_t ts_ms, const char *text, size_t text_len,
                          const char *data_json);
/* users: n pairs (user, name-or-NULL). */
char *proto_encode_presence(const char *id_json, const char *room, const char *const *users,
                            const char *const *names, size_t n);
/* {"type":"presence","id":..,"user":U,"online":B} — a user's status in any room. */
char *proto_encode_user_status(const char *id_json, const char *user, bool online);
/* messages: n stored message frames (JSON text each), oldest first; embedded verbatim. */
char *proto_encode_history(const char *id_json, const char *room, const char *const *messages,
                           size_t n);
/* A history page (§2): as above, plus "more":true when it stopped early at the byte budget. */
char *proto_encode_history_page(const char *id_json, const char *room,
                                const char *const *messages, size_t n, bool more);
/* HTTP error body {"error":error,"message":message}. */
char *proto_encode_http_error(const char *error, const char *message);

/*
 * A room message split around its offset, because the offset is assigned later, inside Redis:
 * the full frame is head + decimal(offset) + tail, i.e.
 *   head = {"type":"message","room":R,"offset":
 *   tail = ,"ts":T,"from":{"user":U[,"name":N]},"text":X}      (or "data":<raw JSON> instead)
 * name may be NULL (omitted); data_json non-NULL replaces text. Returns 0, or -1 on allocation
 * failure. Caller frees *head and *tail.
 */
int proto_encode_message_parts(const char *room, int64_t ts_ms, const char *user,
                               const char *name, const char *text, size_t text_len,
                               const char *data_json, char **head, char **tail);

/* The whole message frame, equal to head + decimal(offset) + tail of the function above
 * (for tests, the bench and stored history built outside Redis). NULL on allocation failure. */
char *proto_encode_message(const char *room, uint64_t offset, int64_t ts_ms, const char *user,
                           const char *name, const char *text, size_t text_len,
                           const char *data_json);

#endif
