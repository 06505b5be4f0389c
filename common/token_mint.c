/*
 * token_mint — signed development tokens (see token_mint.h for the contract).
 *
 * libjwt builds the header, the claim set and the signature; cJSON builds the one claim libjwt
 * cannot add with a typed call (the "rooms" array), which is then handed to
 * jwt_add_grants_json(). Nothing here formats JSON or base64 by hand.
 *
 * The checks mirror auth.c's limits (AUTH_CLAIM_MAX_BYTES, AUTH_ROOMS_MAX, no '@' sub): a token
 * the gateway would refuse is not minted at all, so a caller learns about a bad argument here
 * rather than as a 401 later. jwt_set_alg() copies the key, and libjwt parses PEM keys only when
 * signing, so a key that does not suit the algorithm surfaces as jwt_encode_str() failing.
 *
 * Pure: no I/O, no clock, no globals; every object made in a call is freed in it.
 */
#include "token_mint.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* True when s is a non-empty string of at most AUTH_CLAIM_MAX_BYTES bytes. */
static bool token_mint_claim_ok(const char *s)
{
    if (!s)
        return false;
    size_t len = strnlen(s, AUTH_CLAIM_MAX_BYTES + 1);
    return len > 0 && len <= AUTH_CLAIM_MAX_BYTES;
}

static bool token_mint_present(const char *s)
{
    return s && s[0] != '\0';
}

/* Adds {"rooms":[...]} to jwt; 0 on success. */
static int token_mint_add_rooms(jwt_t *jwt, const char *const *rooms, size_t room_count)
{
    cJSON *grants = cJSON_CreateObject();
    cJSON *array = grants ? cJSON_AddArrayToObject(grants, "rooms") : NULL;
    int rc = array ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < room_count; i++) {
        cJSON *item = cJSON_CreateString(rooms[i]);
        if (!item || !cJSON_AddItemToArray(array, item)) {
            cJSON_Delete(item);
            rc = -1;
        }
    }
    char *text = rc == 0 ? cJSON_PrintUnformatted(grants) : NULL;
    if (!text || jwt_add_grants_json(jwt, text) != 0)
        rc = -1;
    cJSON_free(text);
    cJSON_Delete(grants);
    return rc;
}

static jwt_alg_t token_mint_jwt_alg(enum auth_alg alg)
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

/* Returns a malloc'd token that auth_verify accepts under the matching policy, or NULL. */
char *token_mint(enum auth_alg alg, const unsigned char *key, size_t key_len, const char *sub,
                 const char *name, const char *const *rooms, size_t room_count, int64_t now_s,
                 int64_t ttl_s, const char *issuer, const char *audience)
{
    jwt_alg_t jalg = token_mint_jwt_alg(alg);
    if (jalg == JWT_ALG_INVAL || !key || key_len == 0 || key_len > INT_MAX)
        return NULL;
    if (!token_mint_claim_ok(sub) || sub[0] == '@')
        return NULL;
    if (token_mint_present(name) && !token_mint_claim_ok(name))
        return NULL;
    if (rooms) {
        if (room_count > AUTH_ROOMS_MAX)
            return NULL;
        for (size_t i = 0; i < room_count; i++) {
            if (!token_mint_claim_ok(rooms[i]))
                return NULL;
        }
    }
    if (ttl_s > 0 && now_s > INT64_MAX - ttl_s)
        return NULL;

    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0)
        return NULL;
    int rc = jwt_add_grant(jwt, "sub", sub);
    if (rc == 0 && token_mint_present(name))
        rc = jwt_add_grant(jwt, "name", name);
    if (rc == 0 && rooms)
        rc = token_mint_add_rooms(jwt, rooms, room_count);
    if (rc == 0)
        rc = jwt_add_grant_int(jwt, "iat", (long)now_s);
    if (rc == 0 && ttl_s > 0)
        rc = jwt_add_grant_int(jwt, "exp", (long)(now_s + ttl_s));
    if (rc == 0 && token_mint_present(issuer))
        rc = jwt_add_grant(jwt, "iss", issuer);
    if (rc == 0 && token_mint_present(audience))
        rc = jwt_add_grant(jwt, "aud", audience);
    if (rc == 0)
        rc = jwt_set_alg(jwt, jalg, key, (int)key_len);

    /* libjwt 1.10 has no custom allocator: the string is malloc'd, the caller free()s it. */
    char *token = rc == 0 ? jwt_encode_str(jwt) : NULL;
    jwt_free(jwt);
    return token;
}
