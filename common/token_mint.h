/*
 * token_mint — creates signed JWTs for development: the chat-token tool, the chat-cli's
 * --jwt-secret mode and the gateway's dev-only /dev/token endpoint all call token_mint().
 *
 * Pure: no I/O, no globals, no clock (the caller passes now_s). libjwt builds and signs the
 * token; no JWT, base64 or JSON is written by hand here. The output is always accepted by
 * auth_verify() under a policy with the same algorithm, key, issuer and audience, as long as
 * now_s lies within [iat, exp).
 */
#ifndef CHAT_TOKEN_MINT_H
#define CHAT_TOKEN_MINT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

/* Mints a token whose claims are: sub; name (only when non-NULL and non-empty); rooms (a JSON
 * array of the room_count patterns, only when rooms is non-NULL — rooms non-NULL with
 * room_count 0 yields an empty array, which allows no room); iat = now_s; exp = now_s + ttl_s
 * (omitted when ttl_s <= 0); iss and aud (only when non-NULL and non-empty).
 * key: HS256 the shared secret bytes; RS256/ES256 the PRIVATE key in PEM.
 * Returns a malloc'd NUL-terminated token (free with free()), or NULL when an argument is
 * invalid (NULL/empty key or sub, a sub starting with '@', sub/name/a room pattern over
 * AUTH_CLAIM_MAX_BYTES, room_count over AUTH_ROOMS_MAX, unknown alg), the key does not suit
 * the algorithm, or memory runs out. */
char *token_mint(enum auth_alg alg, const unsigned char *key, size_t key_len, const char *sub,
                 const char *name, const char *const *rooms, size_t room_count, int64_t now_s,
                 int64_t ttl_s, const char *issuer, const char *audience);

#endif
