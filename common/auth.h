/*
 * auth — JWT policy for the handshake (PROTOCOL.md §1). Pure: takes the token and the key
 * bytes, returns claims or a precise rejection reason. No I/O, no globals.
 *
 * Exactly one algorithm is configured. libjwt 1.10 verifies the signature (jwt_decode with the
 * key; never a NULL key, which would accept anything) and we then insist jwt_get_alg() equals
 * the configured one, because libjwt accepts whichever HMAC/RSA/EC alg the token header names.
 * libjwt checks no claims: exp, nbf, iss, aud, sub are checked here. Only to name the reason
 * of a failure (wrong alg vs bad signature vs malformed) is the token decoded a second time
 * without verification; nothing from that unverified decode is ever used to accept.
 */
#ifndef CHAT_AUTH_H
#define CHAT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum auth_alg { AUTH_ALG_HS256, AUTH_ALG_RS256, AUTH_ALG_ES256 };

/* Bounds on what a token may carry; anything beyond them is refused, never truncated. A gateway
 * keeps one auth_claims per connection, so the claim limits also bound that memory. */
#define AUTH_TOKEN_MAX_BYTES 16384 /* longer token strings: AUTH_MALFORMED */
#define AUTH_CLAIM_MAX_BYTES 128   /* sub, name and each rooms pattern */
#define AUTH_ROOMS_MAX 256         /* entries in the rooms claim; more: AUTH_BAD_CLAIMS */

struct auth_policy {
    enum auth_alg alg;
    const unsigned char *key; /* HS256: the secret; RS256/ES256: public key PEM bytes */
    size_t key_len;
    const char *issuer;   /* NULL: not checked */
    const char *audience; /* NULL: not checked; else must equal aud, or be in the aud array */
    bool require_exp;     /* exp required (default true) */
    int64_t leeway_s;     /* clock skew allowed for exp and nbf */
};

enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING,        /* no token at all */
    AUTH_MALFORMED,      /* not a decodable JWT */
    AUTH_BAD_SIGNATURE,  /* decodable, right alg, signature does not verify */
    AUTH_WRONG_ALG,      /* header alg differs from the configured one (incl. "none") */
    AUTH_EXPIRED,        /* now >= exp + leeway */
    AUTH_NOT_YET_VALID,  /* now < nbf - leeway */
    AUTH_MISSING_EXP,    /* exp absent and required */
    AUTH_WRONG_ISSUER,
    AUTH_WRONG_AUDIENCE,
    AUTH_MISSING_SUB,    /* sub absent, empty, not a string, or over 128 bytes */
    AUTH_RESERVED_SUB,   /* sub starts with '@' */
    AUTH_BAD_CLAIMS,     /* a claim has the wrong type (e.g. rooms not an array of strings) */
    AUTH_INTERNAL,       /* out of memory: not the client's fault (answer 503, not 401) */
    AUTH_RESULT_COUNT
};

/* Claims kept for the life of a connection. One allocation block; free with auth_claims_free. */
struct auth_claims {
    char *sub;        /* never NULL */
    char *name;       /* display name; NULL when absent or "" */
    char **rooms;     /* NULL when the "rooms" claim is absent (all rooms allowed) */
    size_t room_count;/* may be 0 with rooms != NULL: an empty array allows no room */
    int64_t exp;      /* seconds since the epoch, a fractional exp rounded up; 0 when absent */
};

/* Verifies token against policy at time now_s. On AUTH_OK *out holds new claims; otherwise *out
 * is NULL. token NULL is AUTH_MISSING; "" is AUTH_MALFORMED (a token was present). A policy that
 * cannot verify anything (NULL or empty key, unknown alg) fails closed with AUTH_BAD_SIGNATURE:
 * libjwt would otherwise accept tokens unchecked. When several things are wrong the first of
 * this order wins: malformed, wrong alg, bad signature, issuer, audience, exp, nbf, sub, the
 * types of name and rooms. */
enum auth_result auth_verify(const struct auth_policy *policy, const char *token, int64_t now_s,
                             struct auth_claims **out);

/* In-band refresh (§7): the handshake's policy, and the new token must name current_sub (a
 * connection never changes user). On success returns NULL and *out holds the new claims; else
 * returns the reason for the `invalid_token` error frame ("token expired", "token is for
 * another user", ...) and *out is NULL. The caller keeps its old claims on failure. */
const char *auth_refresh(const struct auth_policy *policy, const char *token, int64_t now_s,
                         const char *current_sub, struct auth_claims **out);

/* Frees claims from auth_verify; NULL is a no-op. */
void auth_claims_free(struct auth_claims *claims);

/* Human message for the HTTP body, e.g. "token expired". Never NULL, even for unknown values. */
const char *auth_result_message(enum auth_result r);
/* Short stable label for logs and metrics, e.g. "expired", "bad_signature". Never NULL. */
const char *auth_result_label(enum auth_result r);

/* True when the claims allow joining room (no rooms claim, or some pattern matches). */
bool auth_room_allowed(const struct auth_claims *claims, const char *room);

/* Glob match where '*' matches any run of characters (including none); everything else is
 * literal and case-sensitive. "team-*" matches "team-a" and "team-"; "*" matches all. */
bool auth_pattern_match(const char *pattern, const char *name);

#endif
