/*
 * auth — JWT verification for the handshake (PROTOCOL.md §1). See auth.h for the contract.
 *
 * Trust boundary. Only libjwt decodes and verifies: jwt_decode() with the configured key checks
 * the signature, and nothing is read from a token before that call has succeeded. libjwt 1.10.2
 * verifies with whatever algorithm the token's header names, so a verified token is accepted
 * only when jwt_get_alg() equals the one configured algorithm; this also defeats the classic
 * confusion where an RS256 public key is used as an HS256 secret. jwt_decode() with a NULL key,
 * or with key_len 0, accepts any token unchecked (measured on 1.10.2; for a signed token it even
 * reports alg "none"), so auth_verify() refuses a policy without key bytes before calling it.
 *
 * Naming the failure. When the verified decode fails we decode once more with a NULL key, only
 * to read the header's "alg" string (jwt_get_header(), since jwt_get_alg() says "none" after an
 * unverified decode): unparseable → malformed, another alg (including "none") → wrong alg,
 * else → bad signature. That second decode only chooses which rejection to report; it can never
 * turn a rejection into an acceptance, and none of its claims are read. libjwt refuses to parse
 * a header whose alg it does not know (e.g. "FOO") or that has no alg, so those are malformed.
 *
 * Claims. libjwt checks no claims. We take the verified claim set once as JSON text
 * (jwt_get_grants_json(jwt, NULL)) and parse it with cJSON, which gives exact types:
 * jwt_get_grant_int() returns 0 with errno unset for a real number such as 1.5e9, which would
 * turn a legal fractional "exp" into "expired in 1970". NumericDates are rounded up to whole
 * seconds (for integer now, now >= 1.5 exactly when now >= 2) and clamped to ±2^53 so that adding
 * the leeway can never overflow. Embedded NULs cannot reach us: libjwt's JSON parser (jansson)
 * rejects "\u0000" in the payload, so such a token is malformed. A "crit" header is refused
 * (RFC 7515 §4.1.11): it names extensions the reader must understand, and we understand none.
 *
 * Memory. A gateway keeps one auth_claims per connection (100k of them is normal), so the claims
 * live in a single malloc block: the struct, then the rooms pointer array, then the strings.
 * auth_claims_free() is one free(). Sizes are bounded by AUTH_CLAIM_MAX_BYTES and AUTH_ROOMS_MAX.
 *
 * Pure: no I/O, no globals but const tables, no threads; all state lives in the caller's
 * arguments and in the libjwt/cJSON objects made and freed within one call.
 */
#include "auth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <jwt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ±2^53: every integer up to here is exact in a double, and twice it still fits an int64. */
#define AUTH_TIME_LIMIT 9007199254740992LL

static const char *const auth_labels[] = {
    [AUTH_OK] = "ok",
    [AUTH_MISSING] = "missing",
    [AUTH_MALFORMED] = "malformed",
    [AUTH_BAD_SIGNATURE] = "bad_signature",
    [AUTH_WRONG_ALG] = "wrong_alg",
    [AUTH_EXPIRED] = "expired",
    [AUTH_NOT_YET_VALID] = "not_yet_valid",
    [AUTH_MISSING_EXP] = "missing_exp",
    [AUTH_WRONG_ISSUER] = "wrong_issuer",
    [AUTH_WRONG_AUDIENCE] = "wrong_audience",
    [AUTH_MISSING_SUB] = "missing_sub",
    [AUTH_RESERVED_SUB] = "reserved_sub",
    [AUTH_BAD_CLAIMS] = "bad_claims",
    [AUTH_INTERNAL] = "internal",
};

static const char *const auth_messages[] = {
    [AUTH_OK] = "ok",
    [AUTH_MISSING] = "missing token",
    [AUTH_MALFORMED] = "malformed token",
    [AUTH_BAD_SIGNATURE] = "bad signature",
    [AUTH_WRONG_ALG] = "algorithm not allowed",
    [AUTH_EXPIRED] = "token expired",
    [AUTH_NOT_YET_VALID] = "token not yet valid",
    [AUTH_MISSING_EXP] = "missing exp claim",
    [AUTH_WRONG_ISSUER] = "wrong issuer",
    [AUTH_WRONG_AUDIENCE] = "wrong audience",
    [AUTH_MISSING_SUB] = "missing sub claim",
    [AUTH_RESERVED_SUB] = "reserved user id",
    [AUTH_BAD_CLAIMS] = "invalid claims",
    [AUTH_INTERNAL] = "internal error",
};

_Static_assert(sizeof(auth_labels) / sizeof(auth_labels[0]) == AUTH_RESULT_COUNT,
               "one label per auth_result");
_Static_assert(sizeof(struct auth_claims) % _Alignof(char *) == 0,
               "the rooms pointer array may directly follow the struct in one block");
_Static_assert(sizeof(auth_messages) / sizeof(auth_messages[0]) == AUTH_RESULT_COUNT,
               "one message per auth_result");

/* Returns the libjwt algorithm for a configured one, or JWT_ALG_INVAL for a value outside the
 * enum, so that a corrupt policy can only ever fail. */
static jwt_alg_t auth_jwt_alg(enum auth_alg alg)
{
    switch (alg) {
    case AUTH_ALG_HS256:
        return JWT_ALG_HS256;
    case AUTH_ALG_RS256:
        return JWT_ALG_RS256;
    case AUTH_ALG_ES256:
        return JWT_ALG_ES256;
    }
    return JWT_ALG_INVAL;
}

/* Names the reason a verified decode failed; never accepts. decode_rc is jwt_decode's result. */
static enum auth_result auth_classify_failure(const char *token, jwt_alg_t want, int decode_rc)
{
    if (decode_rc == ENOMEM)
        return AUTH_INTERNAL;
    /* Unverified decode: only the header's alg string is read, to pick the message. */
    jwt_t *unverified = NULL;
    int rc = jwt_decode(&unverified, token, NULL, 0);
    if (rc != 0)
        return rc == ENOMEM ? AUTH_INTERNAL : AUTH_MALFORMED;
    const char *header_alg = jwt_get_header(unverified, "alg");
    enum auth_result r = AUTH_BAD_SIGNATURE;
    if (!header_alg || strcmp(header_alg, jwt_alg_str(want)) != 0)
        r = AUTH_WRONG_ALG;
    jwt_free(unverified);
    return r;
}

/* Reads a NumericDate claim. Returns false when present but not a finite number; *present tells
 * whether it was there; *out is rounded up and clamped to ±AUTH_TIME_LIMIT. */
static bool auth_numeric_date(const cJSON *claims, const char *name, bool *present, int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(claims, name);
    *present = item != NULL;
    *out = 0;
    if (!item)
        return true;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
        return false;
    double v = item->valuedouble;
    if (v >= (double)AUTH_TIME_LIMIT) {
        *out = AUTH_TIME_LIMIT;
    } else if (v <= -(double)AUTH_TIME_LIMIT) {
        *out = -AUTH_TIME_LIMIT;
    } else {
        /* Rounding up by hand keeps libm out of a pure module; exact below 2^53. */
        int64_t whole = (int64_t)v;
        *out = (double)whole < v ? whole + 1 : whole;
    }
    return true;
}

/* Checks exp and nbf at now_s with the policy's leeway; on AUTH_OK *exp_out is exp or 0. */
static enum auth_result auth_check_times(const struct auth_policy *policy, const cJSON *claims,
                                         int64_t now_s, int64_t *exp_out)
{
    int64_t leeway = policy->leeway_s;
    if (leeway < 0)
        leeway = 0;
    if (leeway > AUTH_TIME_LIMIT)
        leeway = AUTH_TIME_LIMIT;

    bool present;
    int64_t exp, nbf;
    if (!auth_numeric_date(claims, "exp", &present, &exp))
        return AUTH_BAD_CLAIMS;
    if (!present && policy->require_exp)
        return AUTH_MISSING_EXP;
    if (present && now_s >= exp + leeway)
        return AUTH_EXPIRED;
    *exp_out = exp;

    if (!auth_numeric_date(claims, "nbf", &present, &nbf))
        return AUTH_BAD_CLAIMS;
    if (present && now_s < nbf - leeway)
        return AUTH_NOT_YET_VALID;
    return AUTH_OK;
}

/* True when iss is a string equal to the configured issuer (or none is configured). */
static bool auth_issuer_ok(const struct auth_policy *policy, const cJSON *claims)
{
    if (!policy->issuer)
        return true;
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    return cJSON_IsString(iss) && strcmp(iss->valuestring, policy->issuer) == 0;
}

/* True when aud names the configured audience, as a string or as one string of an array
 * (RFC 7519 §4.1.3), or when no audience is configured. */
static bool auth_audience_ok(const struct auth_policy *policy, const cJSON *claims)
{
    if (!policy->audience)
        return true;
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, policy->audience) == 0;
    if (!cJSON_IsArray(aud))
        return false;
    const cJSON *each;
    cJSON_ArrayForEach(each, aud)
    {
        if (cJSON_IsString(each) && strcmp(each->valuestring, policy->audience) == 0)
            return true;
    }
    return false;
}

/* Returns the length of a string no longer than AUTH_CLAIM_MAX_BYTES, or SIZE_MAX for longer. */
static size_t auth_bounded_len(const char *s)
{
    size_t len = strnlen(s, AUTH_CLAIM_MAX_BYTES + 1);
    return len > AUTH_CLAIM_MAX_BYTES ? SIZE_MAX : len;
}

/* Copies len bytes plus a NUL to *cursor and advances it; returns the copy. */
static char *auth_pack_string(char **cursor, const char *s, size_t len)
{
    char *copy = *cursor;
    memcpy(copy, s, len);
    copy[len] = '\0';
    *cursor += len + 1;
    return copy;
}

/* Validates sub, name and rooms and packs them into one block; *out is NULL unless AUTH_OK. */
static enum auth_result auth_build_claims(const cJSON *claims, int64_t exp,
                                          struct auth_claims **out)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    if (!cJSON_IsString(sub))
        return AUTH_MISSING_SUB;
    size_t sub_len = auth_bounded_len(sub->valuestring);
    if (sub_len == 0 || sub_len == SIZE_MAX)
        return AUTH_MISSING_SUB;
    /* '@' ids (e.g. "@server") are how the backend API speaks; no user may claim one. */
    if (sub->valuestring[0] == '@')
        return AUTH_RESERVED_SUB;

    const cJSON *name = cJSON_GetObjectItemCaseSensitive(claims, "name");
    size_t name_len = 0;
    if (name) {
        if (!cJSON_IsString(name))
            return AUTH_BAD_CLAIMS;
        name_len = auth_bounded_len(name->valuestring);
        if (name_len == SIZE_MAX)
            return AUTH_BAD_CLAIMS;
    }

    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(claims, "rooms");
    size_t room_count = 0, room_bytes = 0;
    if (rooms) {
        if (!cJSON_IsArray(rooms))
            return AUTH_BAD_CLAIMS;
        const cJSON *each;
        cJSON_ArrayForEach(each, rooms)
        {
            if (!cJSON_IsString(each) || ++room_count > AUTH_ROOMS_MAX)
                return AUTH_BAD_CLAIMS;
            size_t len = auth_bounded_len(each->valuestring);
            if (len == 0 || len == SIZE_MAX)
                return AUTH_BAD_CLAIMS;
            room_bytes += len + 1;
        }
    }

    /* Bounded above by ~33 KiB (AUTH_ROOMS_MAX * (AUTH_CLAIM_MAX_BYTES + 1 + pointer)). */
    size_t total = sizeof(struct auth_claims) + room_count * sizeof(char *) + sub_len + 1 +
                   (name_len ? name_len + 1 : 0) + room_bytes;
    struct auth_claims *c = malloc(total);
    if (!c)
        return AUTH_INTERNAL;
    char **room_array = (char **)(c + 1);
    char *cursor = (char *)(room_array + room_count);
    c->sub = auth_pack_string(&cursor, sub->valuestring, sub_len);
    c->name = name_len ? auth_pack_string(&cursor, name->valuestring, name_len) : NULL;
    /* An empty rooms array keeps a non-NULL pointer: "no room allowed" differs from "all". */
    c->rooms = rooms ? room_array : NULL;
    c->room_count = room_count;
    c->exp = exp;
    if (rooms) {
        size_t i = 0;
        const cJSON *each;
        cJSON_ArrayForEach(each, rooms)
        {
            room_array[i++] =
                auth_pack_string(&cursor, each->valuestring, strlen(each->valuestring));
        }
    }
    *out = c;
    return AUTH_OK;
}

/* Applies every claim rule to a verified token; on AUTH_OK *out holds new claims. */
static enum auth_result auth_check_claims(const struct auth_policy *policy, jwt_t *jwt,
                                          int64_t now_s, struct auth_claims **out)
{
    /* "crit" lists header extensions the reader must understand (RFC 7515 §4.1.11); we
     * understand none, so such a token must not be accepted. */
    char *crit = jwt_get_headers_json(jwt, "crit");
    if (crit) {
        free(crit);
        return AUTH_MALFORMED;
    }

    char *text = jwt_get_grants_json(jwt, NULL);
    if (!text)
        return AUTH_INTERNAL;
    /* cJSON fails only on its nesting limit (jansson allows deeper) or on allocation. */
    cJSON *claims = cJSON_Parse(text);
    free(text);
    if (!claims)
        return AUTH_MALFORMED;

    enum auth_result r;
    int64_t exp = 0;
    if (!cJSON_IsObject(claims))
        r = AUTH_MALFORMED;
    else if (!auth_issuer_ok(policy, claims))
        r = AUTH_WRONG_ISSUER;
    else if (!auth_audience_ok(policy, claims))
        r = AUTH_WRONG_AUDIENCE;
    else if ((r = auth_check_times(policy, claims, now_s, &exp)) == AUTH_OK)
        r = auth_build_claims(claims, exp, out);
    cJSON_Delete(claims);
    return r;
}

/* Accepts only a token whose signature verifies with the configured key and algorithm and whose
 * claims satisfy the policy at now_s; everything else gets the most precise reason. */
enum auth_result auth_verify(const struct auth_policy *policy, const char *token, int64_t now_s,
                             struct auth_claims **out)
{
    if (out)
        *out = NULL;
    if (!token)
        return AUTH_MISSING;
    if (!out)
        return AUTH_INTERNAL;
    size_t token_len = strnlen(token, AUTH_TOKEN_MAX_BYTES + 1);
    if (token_len == 0 || token_len > AUTH_TOKEN_MAX_BYTES)
        return AUTH_MALFORMED;

    /* A NULL or empty key makes jwt_decode skip verification entirely: fail closed instead. */
    jwt_alg_t want = policy ? auth_jwt_alg(policy->alg) : JWT_ALG_INVAL;
    if (want == JWT_ALG_INVAL || !policy->key || policy->key_len == 0 || policy->key_len > INT_MAX)
        return AUTH_BAD_SIGNATURE;

    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, token, policy->key, (int)policy->key_len);
    if (rc != 0)
        return auth_classify_failure(token, want, rc);

    enum auth_result r;
    if (jwt_get_alg(jwt) != want)
        r = AUTH_WRONG_ALG; /* verified, but with an algorithm we do not allow */
    else
        r = auth_check_claims(policy, jwt, now_s, out);
    jwt_free(jwt);
    return r;
}

/* Releases the single block auth_verify allocated. */
void auth_claims_free(struct auth_claims *claims)
{
    free(claims);
}

/* Always returns a printable string; out-of-range values get a generic one. */
const char *auth_refresh(const struct auth_policy *policy, const char *token, int64_t now_s,
                         const char *current_sub, struct auth_claims **out)
{
    *out = NULL;
    struct auth_claims *claims = NULL;
    enum auth_result r = auth_verify(policy, token, now_s, &claims);
    if (r != AUTH_OK)
        return auth_result_message(r);
    if (!current_sub || strcmp(claims->sub, current_sub) != 0) {
        auth_claims_free(claims);
        return "token is for another user";
    }
    *out = claims;
    return NULL;
}

const char *auth_result_message(enum auth_result r)
{
    if ((unsigned)r >= AUTH_RESULT_COUNT)
        return "invalid token";
    return auth_messages[r];
}

/* Always returns a stable metric label; out-of-range values get "unknown". */
const char *auth_result_label(enum auth_result r)
{
    if ((unsigned)r >= AUTH_RESULT_COUNT)
        return "unknown";
    return auth_labels[r];
}

/* Fails closed: no claims or no room allows nothing; an absent rooms claim allows everything. */
bool auth_room_allowed(const struct auth_claims *claims, const char *room)
{
    if (!claims || !room)
        return false;
    if (!claims->rooms)
        return true;
    for (size_t i = 0; i < claims->room_count; i++) {
        if (auth_pattern_match(claims->rooms[i], room))
            return true;
    }
    return false;
}

/* Matches in O(len(pattern) * len(name)) time and O(1) space. Greedy with one backtrack point:
 * on a mismatch only the most recent '*' needs to absorb one more character, because any match
 * an earlier '*' could find is also found by the later one. No recursion, so "****a" against a
 * long name cannot blow the stack or go exponential. */
bool auth_pattern_match(const char *pattern, const char *name)
{
    if (!pattern || !name)
        return false;
    const char *p = pattern, *s = name;
    const char *star_next = NULL; /* pattern position just after the last '*' seen */
    const char *star_from = NULL; /* name position that '*' currently absorbs up to */
    while (*s) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            if (!*p)
                return true; /* a trailing '*' absorbs the rest */
            star_next = p;
            star_from = s;
        } else if (*p && *p == *s) {
            p++;
            s++;
        } else if (star_next) {
            p = star_next;
            s = ++star_from;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}
