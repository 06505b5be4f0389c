/*
 * test_auth — common/auth.c: JWT verification and claim policy (PROTOCOL.md §1).
 *
 * Tokens are built here with libjwt itself (jwt_new / jwt_add_grants_json / jwt_set_alg /
 * jwt_encode_str), so each test states its claims as JSON and the expected verdict. A few tokens
 * no libjwt call can produce (a standard JOSE ES256 signature from another implementation, a DER
 * signature, a NUL inside a claim) were made once with node's crypto module and are pasted as
 * constants. The key pairs (tests/test_keys.h, shared with the token fuzz harness) and the
 * extra public key below are test-only keys; never use them anywhere else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four above, which it needs */

#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "../test_keys.h"

#define NOW 1700000000LL
#define FAR_FUTURE 4102444800LL /* 2100-01-01 */

static const char SECRET[] = "test-secret-0123456789abcdef0123";
static const char OTHER_SECRET[] = "another-secret-0123456789abcdef0";

/* A test-only RSA public key of another pair, for the wrong-key cases (the pairs: test_keys.h). */
static const char RSA_OTHER_PUBLIC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsffgVXe8WA/jWz3DDAqJ\n"
    "6ZbluoVc48RYtruQpeJ4NvpJJunSj/8mS5VjQKn3/OoDlbRJyiocz3uZuNQuu6wR\n"
    "2hqT3JZxZf/0OdjUkWk3b0WJlQ2J+6gQQs8ooeT1NUmPdltWzds+9BLp77tl3sDB\n"
    "Q2PRlqDvTl6w5KokQuzv+HP/d+ph1JSveZGHqjxpNhELAQNbcsDsuan9oHMTv9BE\n"
    "rZOIkmvXkhc0i7LMRdiHOk69kCMIT7grZw4V7yfxt6ugzfrsGKDLCXsmYu1ePZ/p\n"
    "/zOPCpn0CnhTHkd5ZPHxKqF1h03GdvDQZ31a2XB+Dl9QFf6Ki7i/EoPW9ie0s6TH\n"
    "gQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char EC_OTHER_PUBLIC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEp/y0WTY1015IvrTnfC9DzOLmSKSS\n"
    "3iRSHdETb2CjPVqZYKjEgJivTyZSWzQg9JYEC5gGEZvaLe0OY8+aZWbiKw==\n"
    "-----END PUBLIC KEY-----\n";

/* Made with node: crypto.sign("sha256", header.payload, {key: EC_PRIVATE_PEM, dsaEncoding:
 * "ieee-p1363"}) — the raw 64-byte R||S signature every JOSE library emits (RFC 7518 §3.4).
 * Claims: {"sub":"alice","name":"Alice","exp":4102444800,"rooms":["general","team-*"]}. */
static const char NODE_ES256_TOKEN[] =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhbGljZSIsIm5hbWUiOiJBbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwicm9vbXMiOlsiZ2VuZXJhbCIsInR"
    "lYW0tKiJdfQ."
    "Xsy8mUbrvylm8E7mI-xWb3ZfgXSPVjYuvBveKlnNt8Di0s2pBdxQI4QTF3geNgn_RpXc49HOPmqaQFGnSlNNWQ";

/* Same key, but dsaEncoding "der": an ASN.1 signature, which RFC 7518 does not allow. */
static const char NODE_ES256_DER_TOKEN[] = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9."
                                           "eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0."
                                           "MEUCIQCkyd6mSF4TtyrPqNg5bLWVQ-FJnNZ3gEmWwDo_"
                                           "u4UxrAIgeID_Zvaew4crBdC7cZ4H59XhLXhtxh-1BrrtSB7BzIk";

/* HS256 with secret "k", payload {"sub":"bob\u0000x","exp":4102444800}: a NUL inside sub. */
static const char NODE_NUL_SUB_TOKEN[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                                         "eyJzdWIiOiJib2JcdTAwMDB4IiwiZXhwIjo0MTAyNDQ0ODAwfQ."
                                         "9X6Gpk4siM4fB2ultcyc4j28OAHGbLpn8xgBkXBU1Oc";

/* ---- helpers ---------------------------------------------------------------------------- */

/* Signs claims_json with alg and key (NUL-terminated; NULL for alg none) using libjwt. */
static char *make_token(jwt_alg_t alg, const char *key, const char *claims_json)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims_json), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0),
                     0);
    char *token = jwt_encode_str(jwt);
    assert_non_null(token);
    jwt_free(jwt);
    return token;
}

/* make_token with printf-style claims. */
static char *make_tokenf(jwt_alg_t alg, const char *key, const char *fmt, ...)
{
    char claims[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(claims, sizeof(claims), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(claims));
    return make_token(alg, key, claims);
}

static struct auth_policy hs256_policy(void)
{
    return (struct auth_policy){
        .alg = AUTH_ALG_HS256,
        .key = (const unsigned char *)SECRET,
        .key_len = strlen(SECRET),
        .require_exp = true,
    };
}

static struct auth_policy pem_policy(enum auth_alg alg, const char *pem)
{
    return (struct auth_policy){
        .alg = alg,
        .key = (const unsigned char *)pem,
        .key_len = strlen(pem),
        .require_exp = true,
    };
}

/* Runs auth_verify and checks its output contract (*out set exactly on AUTH_OK). */
static enum auth_result verify(const struct auth_policy *policy, const char *token, int64_t now)
{
    struct auth_claims *claims = (struct auth_claims *)&claims; /* poison: must be overwritten */
    enum auth_result r = auth_verify(policy, token, now, &claims);
    if (r == AUTH_OK) {
        assert_non_null(claims);
        assert_non_null(claims->sub);
        auth_claims_free(claims);
    } else {
        assert_null(claims);
    }
    return r;
}

/* Signs claims_json with SECRET (HS256) and verifies it under policy at now. */
static enum auth_result verify_hs256(const struct auth_policy *policy, const char *claims_json,
                                     int64_t now)
{
    char *token = make_token(JWT_ALG_HS256, SECRET, claims_json);
    enum auth_result r = verify(policy, token, now);
    free(token);
    return r;
}

/* printf-style verify_hs256 under the default HS256 policy. */
static enum auth_result verify_default_f(int64_t now, const char *fmt, ...)
{
    char claims[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(claims, sizeof(claims), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(claims));
    struct auth_policy policy = hs256_policy();
    return verify_hs256(&policy, claims, now);
}

/* Verifies and returns the claims, asserting acceptance. */
static struct auth_claims *accept_claims(const struct auth_policy *policy, const char *token,
                                         int64_t now)
{
    struct auth_claims *claims = NULL;
    assert_int_equal(auth_verify(policy, token, now, &claims), AUTH_OK);
    assert_non_null(claims);
    return claims;
}

/* ---- accepted tokens -------------------------------------------------------------------- */

static void test_hs256_valid_token_is_accepted(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_HS256, SECRET,
                              "{\"sub\":\"alice\",\"name\":\"Alice\","
                              "\"exp\":%lld}",
                              NOW + 60);
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_string_equal(claims->sub, "alice");
    assert_string_equal(claims->name, "Alice");
    assert_null(claims->rooms);
    assert_int_equal(claims->room_count, 0);
    assert_int_equal(claims->exp, NOW + 60);
    auth_claims_free(claims);
    free(token);
}

static void test_name_absent_or_empty_is_null(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    const char *bodies[] = {"{\"sub\":\"bob\",\"exp\":%lld}",
                            "{\"sub\":\"bob\",\"name\":\"\",\"exp\":%lld}"};
    for (size_t i = 0; i < 2; i++) {
        char *token = make_tokenf(JWT_ALG_HS256, SECRET, bodies[i], FAR_FUTURE);
        struct auth_claims *claims = accept_claims(&policy, token, NOW);
        assert_string_equal(claims->sub, "bob");
        assert_null(claims->name);
        auth_claims_free(claims);
        free(token);
    }
}

static void test_unknown_claims_are_ignored(void **state)
{
    (void)state;
    assert_int_equal(verify_default_f(NOW,
                                      "{\"sub\":\"a\",\"exp\":%lld,\"role\":[1,{\"x\":2}],"
                                      "\"jti\":\"j\",\"iat\":%lld}",
                                      FAR_FUTURE, NOW),
                     AUTH_OK);
}

/* ---- missing and malformed -------------------------------------------------------------- */

static void test_null_token_is_missing(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    assert_int_equal(verify(&policy, NULL, NOW), AUTH_MISSING);
}

static void test_empty_token_is_malformed(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    assert_int_equal(verify(&policy, "", NOW), AUTH_MALFORMED);
}

static void test_garbage_tokens_are_malformed(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    const char *garbage[] = {
        "abc",
        "a.b",
        "a.b.c",
        "..",
        "!!!.###.$$$",
        "eyJhbGciOiJIUzI1NiJ9.@@@@.c2ln",          /* payload not base64url */
        "bm90IGpzb24.eyJzdWIiOiJhIn0.c2ln",        /* header "not json" */
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",   /* payload "not json" */
        "eyJhbGciOiJGT08ifQ.eyJzdWIiOiJhIn0.c2ln", /* alg "FOO": libjwt cannot parse it */
        "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhIn0.c2ln", /* no alg at all */
        "Bearer",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        print_message("token: %s\n", garbage[i]);
        assert_int_equal(verify(&policy, garbage[i], NOW), AUTH_MALFORMED);
    }
}

static void test_overlong_token_is_malformed(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token = malloc(AUTH_TOKEN_MAX_BYTES + 2);
    assert_non_null(token);
    memset(token, 'a', AUTH_TOKEN_MAX_BYTES + 1);
    token[AUTH_TOKEN_MAX_BYTES + 1] = '\0';
    assert_int_equal(verify(&policy, token, NOW), AUTH_MALFORMED);
    free(token);
}

static void test_nul_inside_claim_is_malformed(void **state)
{
    (void)state;
    /* libjwt's JSON parser refuses "\u0000", so "bob\u0000x" can never pass as "bob". */
    struct auth_policy policy = {.alg = AUTH_ALG_HS256,
                                 .key = (const unsigned char *)"k",
                                 .key_len = 1,
                                 .require_exp = true};
    assert_int_equal(verify(&policy, NODE_NUL_SUB_TOKEN, NOW), AUTH_MALFORMED);
}

static void test_crit_header_is_malformed(void **state)
{
    (void)state;
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, "{\"sub\":\"a\",\"exp\":4102444800}"), 0);
    assert_int_equal(jwt_add_headers_json(jwt, "{\"crit\":[\"x-ext\"],\"x-ext\":1}"), 0);
    assert_int_equal(
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    char *token = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(token);
    struct auth_policy policy = hs256_policy();
    assert_int_equal(verify(&policy, token, NOW), AUTH_MALFORMED);
    free(token);
}

static void test_payload_deeper_than_cjson_allows_is_malformed(void **state)
{
    (void)state;
    /* jansson (inside libjwt) nests to 2048, cJSON to 1000: the gap must not crash or pass. */
    enum { DEPTH = 1500 };
    char claims[64 + 2 * DEPTH];
    int n = snprintf(claims, sizeof(claims), "{\"sub\":\"a\",\"exp\":%lld,\"x\":", FAR_FUTURE);
    memset(claims + n, '[', DEPTH);
    memset(claims + n + DEPTH, ']', DEPTH);
    strcpy(claims + n + 2 * DEPTH, "}");
    struct auth_policy policy = hs256_policy();
    assert_int_equal(verify_hs256(&policy, claims, NOW), AUTH_MALFORMED);
}

/* ---- signature and algorithm ------------------------------------------------------------ */

static void test_other_secret_is_bad_signature(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token =
        make_tokenf(JWT_ALG_HS256, OTHER_SECRET, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_BAD_SIGNATURE);
    free(token);
}

static void test_tampered_payload_is_bad_signature(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *good = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"alice\",\"exp\":%lld}", FAR_FUTURE);
    char *evil =
        make_tokenf(JWT_ALG_HS256, OTHER_SECRET, "{\"sub\":\"admin\",\"exp\":%lld}", FAR_FUTURE);
    /* Graft evil's header.payload onto good's signature. */
    const char *good_sig = strrchr(good, '.');
    size_t evil_head = (size_t)(strrchr(evil, '.') - evil);
    char spliced[1024];
    snprintf(spliced, sizeof(spliced), "%.*s%s", (int)evil_head, evil, good_sig);
    assert_int_equal(verify(&policy, spliced, NOW), AUTH_BAD_SIGNATURE);
    free(good);
    free(evil);
}

static void test_empty_signature_is_bad_signature(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    *(strrchr(token, '.') + 1) = '\0';
    assert_int_equal(verify(&policy, token, NOW), AUTH_BAD_SIGNATURE);
    free(token);
}

static void test_hs384_with_same_secret_is_wrong_alg(void **state)
{
    (void)state;
    /* libjwt verifies this one happily (same secret, alg from the header); we must not. */
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_HS384, SECRET, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_ALG);
    free(token);
}

static void test_hs512_with_other_secret_is_wrong_alg(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token =
        make_tokenf(JWT_ALG_HS512, OTHER_SECRET, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_ALG);
    free(token);
}

static void test_alg_none_is_wrong_alg(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_NONE, NULL, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_ALG);
    /* With a signature appended it is still "none", still refused. */
    char with_sig[1024];
    snprintf(with_sig, sizeof(with_sig), "%sc2lnbmF0dXJl", token);
    assert_int_equal(verify(&policy, with_sig, NOW), AUTH_WRONG_ALG);
    free(token);
}

static void test_alg_none_is_wrong_alg_for_pem_policies(void **state)
{
    (void)state;
    struct auth_policy rs = pem_policy(AUTH_ALG_RS256, RSA_PUBLIC_PEM);
    struct auth_policy es = pem_policy(AUTH_ALG_ES256, EC_PUBLIC_PEM);
    char *token = make_tokenf(JWT_ALG_NONE, NULL, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&rs, token, NOW), AUTH_WRONG_ALG);
    assert_int_equal(verify(&es, token, NOW), AUTH_WRONG_ALG);
    free(token);
}

static void test_public_key_as_hmac_secret_is_wrong_alg(void **state)
{
    (void)state;
    /* Key confusion: an HS256 token "signed" with the RSA public key PEM verifies in libjwt
     * when that PEM is the configured key. Only the alg comparison stops it. */
    struct auth_policy policy = pem_policy(AUTH_ALG_RS256, RSA_PUBLIC_PEM);
    char *token =
        make_tokenf(JWT_ALG_HS256, RSA_PUBLIC_PEM, "{\"sub\":\"admin\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_ALG);
    free(token);
}

static void test_rs256_token_under_hs256_policy_is_wrong_alg(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token =
        make_tokenf(JWT_ALG_RS256, RSA_PRIVATE_PEM, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_ALG);
    free(token);
}

static void test_rs256_token_under_es256_policy_is_wrong_alg(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_ES256, EC_PUBLIC_PEM);
    char *token =
        make_tokenf(JWT_ALG_RS256, RSA_PRIVATE_PEM, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_ALG);
    free(token);
}

static void test_rs256_valid_token_is_accepted(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_RS256, RSA_PUBLIC_PEM);
    char *token = make_tokenf(JWT_ALG_RS256, RSA_PRIVATE_PEM, "{\"sub\":\"rsa-user\",\"exp\":%lld}",
                              FAR_FUTURE);
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_string_equal(claims->sub, "rsa-user");
    auth_claims_free(claims);
    free(token);
}

static void test_rs256_other_key_is_bad_signature(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_RS256, RSA_OTHER_PUBLIC_PEM);
    char *token =
        make_tokenf(JWT_ALG_RS256, RSA_PRIVATE_PEM, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_BAD_SIGNATURE);
    free(token);
}

static void test_es256_valid_token_is_accepted(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_ES256, EC_PUBLIC_PEM);
    char *token = make_tokenf(JWT_ALG_ES256, EC_PRIVATE_PEM, "{\"sub\":\"ec-user\",\"exp\":%lld}",
                              FAR_FUTURE);
    /* libjwt 1.10.2 already emits the JOSE form: 64 raw bytes = 86 base64url characters. */
    assert_int_equal(strlen(strrchr(token, '.') + 1), 86);
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_string_equal(claims->sub, "ec-user");
    auth_claims_free(claims);
    free(token);
}

static void test_es256_other_key_is_bad_signature(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_ES256, EC_OTHER_PUBLIC_PEM);
    char *token =
        make_tokenf(JWT_ALG_ES256, EC_PRIVATE_PEM, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_BAD_SIGNATURE);
    free(token);
}

static void test_es256_standard_jose_token_is_accepted(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_ES256, EC_PUBLIC_PEM);
    struct auth_claims *claims = accept_claims(&policy, NODE_ES256_TOKEN, NOW);
    assert_string_equal(claims->sub, "alice");
    assert_string_equal(claims->name, "Alice");
    assert_int_equal(claims->exp, FAR_FUTURE);
    assert_int_equal(claims->room_count, 2);
    assert_string_equal(claims->rooms[0], "general");
    assert_string_equal(claims->rooms[1], "team-*");
    auth_claims_free(claims);
    struct auth_policy other = pem_policy(AUTH_ALG_ES256, EC_OTHER_PUBLIC_PEM);
    assert_int_equal(verify(&other, NODE_ES256_TOKEN, NOW), AUTH_BAD_SIGNATURE);
}

static void test_es256_der_signature_is_bad_signature(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_ES256, EC_PUBLIC_PEM);
    assert_int_equal(verify(&policy, NODE_ES256_DER_TOKEN, NOW), AUTH_BAD_SIGNATURE);
}

static void test_policy_without_key_fails_closed(void **state)
{
    (void)state;
    /* libjwt's jwt_decode with a NULL key or key_len 0 accepts anything: never get there. */
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    struct auth_policy no_key = hs256_policy();
    no_key.key = NULL;
    assert_int_equal(verify(&no_key, token, NOW), AUTH_BAD_SIGNATURE);
    struct auth_policy zero_len = hs256_policy();
    zero_len.key_len = 0;
    assert_int_equal(verify(&zero_len, token, NOW), AUTH_BAD_SIGNATURE);
    struct auth_policy bad_alg = hs256_policy();
    bad_alg.alg = (enum auth_alg)99;
    assert_int_equal(verify(&bad_alg, token, NOW), AUTH_BAD_SIGNATURE);
    assert_int_equal(verify(NULL, token, NOW), AUTH_BAD_SIGNATURE);
    free(token);
}

static void test_unparseable_public_key_fails_closed(void **state)
{
    (void)state;
    struct auth_policy policy = pem_policy(AUTH_ALG_RS256, "-----BEGIN PUBLIC KEY-----\nxx\n");
    char *token =
        make_tokenf(JWT_ALG_RS256, RSA_PRIVATE_PEM, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    assert_int_equal(verify(&policy, token, NOW), AUTH_BAD_SIGNATURE);
    free(token);
}

/* ---- exp and nbf ------------------------------------------------------------------------ */

static void test_exp_boundary(void **state)
{
    (void)state;
    const char *fmt = "{\"sub\":\"a\",\"exp\":%lld}";
    assert_int_equal(verify_default_f(NOW - 1, fmt, NOW), AUTH_OK);
    assert_int_equal(verify_default_f(NOW, fmt, NOW), AUTH_EXPIRED);
    assert_int_equal(verify_default_f(NOW + 1, fmt, NOW), AUTH_EXPIRED);
}

static void test_exp_boundary_with_leeway(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    policy.leeway_s = 30;
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld}", NOW);
    assert_int_equal(verify(&policy, token, NOW + 29), AUTH_OK);
    assert_int_equal(verify(&policy, token, NOW + 30), AUTH_EXPIRED);
    free(token);
}

static void test_negative_leeway_counts_as_zero(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    policy.leeway_s = -100;
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld}", NOW);
    assert_int_equal(verify(&policy, token, NOW - 1), AUTH_OK);
    assert_int_equal(verify(&policy, token, NOW), AUTH_EXPIRED);
    free(token);
}

static void test_fractional_exp_is_rounded_up(void **state)
{
    (void)state;
    /* jwt_get_grant_int would read 1700000000.5 as 0; we must not call this token expired. */
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld.5}", NOW);
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_int_equal(claims->exp, NOW + 1);
    auth_claims_free(claims);
    assert_int_equal(verify(&policy, token, NOW + 1), AUTH_EXPIRED);
    free(token);
}

static void test_huge_exp_is_clamped(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    policy.leeway_s = INT64_MAX; /* must not overflow exp + leeway either */
    char *token = make_token(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":1e300}");
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_int_equal(claims->exp, 9007199254740992LL);
    auth_claims_free(claims);
    free(token);
}

static void test_missing_exp_when_required(void **state)
{
    (void)state;
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"a\"}"), AUTH_MISSING_EXP);
}

static void test_missing_exp_allowed_when_not_required(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    policy.require_exp = false;
    char *token = make_token(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\"}");
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_int_equal(claims->exp, 0);
    auth_claims_free(claims);
    free(token);
}

static void test_exp_checked_even_when_not_required(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    policy.require_exp = false;
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld}", NOW - 1);
    assert_int_equal(verify(&policy, token, NOW), AUTH_EXPIRED);
    free(token);
}

static void test_exp_not_a_number_is_bad_claims(void **state)
{
    (void)state;
    const char *bodies[] = {"{\"sub\":\"a\",\"exp\":\"4102444800\"}",
                            "{\"sub\":\"a\",\"exp\":null}", "{\"sub\":\"a\",\"exp\":true}",
                            "{\"sub\":\"a\",\"exp\":[4102444800]}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_int_equal(verify_default_f(NOW, "%s", bodies[i]), AUTH_BAD_CLAIMS);
}

static void test_nbf_boundary(void **state)
{
    (void)state;
    const char *fmt = "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}";
    assert_int_equal(verify_default_f(NOW - 1, fmt, FAR_FUTURE, NOW), AUTH_NOT_YET_VALID);
    assert_int_equal(verify_default_f(NOW, fmt, FAR_FUTURE, NOW), AUTH_OK);
}

static void test_nbf_boundary_with_leeway(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    policy.leeway_s = 30;
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":%lld}",
                              FAR_FUTURE, NOW);
    assert_int_equal(verify(&policy, token, NOW - 30), AUTH_OK);
    assert_int_equal(verify(&policy, token, NOW - 31), AUTH_NOT_YET_VALID);
    free(token);
}

static void test_nbf_not_a_number_is_bad_claims(void **state)
{
    (void)state;
    assert_int_equal(
        verify_default_f(NOW, "{\"sub\":\"a\",\"exp\":%lld,\"nbf\":\"soon\"}", FAR_FUTURE),
        AUTH_BAD_CLAIMS);
}

/* ---- iss and aud ------------------------------------------------------------------------ */

static enum auth_result verify_with_issuer(const char *issuer, const char *iss_json)
{
    struct auth_policy policy = hs256_policy();
    policy.issuer = issuer;
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"a\",\"exp\":%lld%s%s}", FAR_FUTURE,
             iss_json ? ",\"iss\":" : "", iss_json ? iss_json : "");
    return verify_hs256(&policy, claims, NOW);
}

static void test_issuer_matching_is_accepted(void **state)
{
    (void)state;
    assert_int_equal(verify_with_issuer("https://auth.example", "\"https://auth.example\""),
                     AUTH_OK);
}

static void test_issuer_mismatch_is_wrong_issuer(void **state)
{
    (void)state;
    assert_int_equal(verify_with_issuer("https://auth.example", "\"https://evil.example\""),
                     AUTH_WRONG_ISSUER);
    assert_int_equal(verify_with_issuer("https://auth.example", "\"HTTPS://AUTH.EXAMPLE\""),
                     AUTH_WRONG_ISSUER);
    assert_int_equal(verify_with_issuer("https://auth.example", "[\"https://auth.example\"]"),
                     AUTH_WRONG_ISSUER);
}

static void test_issuer_missing_is_wrong_issuer(void **state)
{
    (void)state;
    assert_int_equal(verify_with_issuer("https://auth.example", NULL), AUTH_WRONG_ISSUER);
}

static void test_issuer_unchecked_when_not_configured(void **state)
{
    (void)state;
    assert_int_equal(verify_with_issuer(NULL, "\"anyone\""), AUTH_OK);
    assert_int_equal(verify_with_issuer(NULL, "42"), AUTH_OK);
}

static enum auth_result verify_with_audience(const char *audience, const char *aud_json)
{
    struct auth_policy policy = hs256_policy();
    policy.audience = audience;
    char claims[256];
    snprintf(claims, sizeof(claims), "{\"sub\":\"a\",\"exp\":%lld%s%s}", FAR_FUTURE,
             aud_json ? ",\"aud\":" : "", aud_json ? aud_json : "");
    return verify_hs256(&policy, claims, NOW);
}

static void test_audience_string_match_is_accepted(void **state)
{
    (void)state;
    assert_int_equal(verify_with_audience("chat", "\"chat\""), AUTH_OK);
}

static void test_audience_array_containing_it_is_accepted(void **state)
{
    (void)state;
    assert_int_equal(verify_with_audience("chat", "[\"billing\",\"chat\"]"), AUTH_OK);
    assert_int_equal(verify_with_audience("chat", "[1,null,\"chat\"]"), AUTH_OK);
}

static void test_audience_mismatch_is_wrong_audience(void **state)
{
    (void)state;
    assert_int_equal(verify_with_audience("chat", "\"billing\""), AUTH_WRONG_AUDIENCE);
    assert_int_equal(verify_with_audience("chat", "\"chat2\""), AUTH_WRONG_AUDIENCE);
    assert_int_equal(verify_with_audience("chat", "[\"billing\",\"chatty\"]"), AUTH_WRONG_AUDIENCE);
    assert_int_equal(verify_with_audience("chat", "[]"), AUTH_WRONG_AUDIENCE);
}

static void test_audience_missing_or_mistyped_is_wrong_audience(void **state)
{
    (void)state;
    assert_int_equal(verify_with_audience("chat", NULL), AUTH_WRONG_AUDIENCE);
    assert_int_equal(verify_with_audience("chat", "42"), AUTH_WRONG_AUDIENCE);
    assert_int_equal(verify_with_audience("chat", "{\"chat\":true}"), AUTH_WRONG_AUDIENCE);
}

static void test_audience_unchecked_when_not_configured(void **state)
{
    (void)state;
    assert_int_equal(verify_with_audience(NULL, "\"billing\""), AUTH_OK);
    assert_int_equal(verify_with_audience(NULL, "[1,2]"), AUTH_OK);
}

static void test_first_failure_in_documented_order_wins(void **state)
{
    (void)state;
    /* Expired, no sub, wrong issuer and wrong audience at once: issuer is reported. */
    struct auth_policy policy = hs256_policy();
    policy.issuer = "me";
    policy.audience = "chat";
    char *token =
        make_tokenf(JWT_ALG_HS256, SECRET, "{\"iss\":\"x\",\"aud\":\"y\",\"exp\":%lld}", NOW - 10);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_ISSUER);
    free(token);
    policy.issuer = NULL;
    token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"aud\":\"y\",\"exp\":%lld}", NOW - 10);
    assert_int_equal(verify(&policy, token, NOW), AUTH_WRONG_AUDIENCE);
    free(token);
    policy.audience = NULL;
    token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"exp\":%lld}", NOW - 10);
    assert_int_equal(verify(&policy, token, NOW), AUTH_EXPIRED);
    free(token);
}

/* ---- sub -------------------------------------------------------------------------------- */

static void test_sub_missing_is_missing_sub(void **state)
{
    (void)state;
    assert_int_equal(verify_default_f(NOW, "{\"exp\":%lld}", FAR_FUTURE), AUTH_MISSING_SUB);
}

static void test_sub_empty_or_not_string_is_missing_sub(void **state)
{
    (void)state;
    const char *subs[] = {"\"\"", "42", "null", "[\"a\"]", "{\"id\":\"a\"}", "true"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        assert_int_equal(verify_default_f(NOW, "{\"sub\":%s,\"exp\":%lld}", subs[i], FAR_FUTURE),
                         AUTH_MISSING_SUB);
    }
}

static void test_sub_length_limit(void **state)
{
    (void)state;
    char sub[AUTH_CLAIM_MAX_BYTES + 2];
    memset(sub, 'u', AUTH_CLAIM_MAX_BYTES);
    sub[AUTH_CLAIM_MAX_BYTES] = '\0';
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"%s\",\"exp\":%lld}", sub, FAR_FUTURE),
                     AUTH_OK);
    sub[AUTH_CLAIM_MAX_BYTES] = 'u';
    sub[AUTH_CLAIM_MAX_BYTES + 1] = '\0';
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"%s\",\"exp\":%lld}", sub, FAR_FUTURE),
                     AUTH_MISSING_SUB);
}

static void test_sub_length_counts_utf8_bytes(void **state)
{
    (void)state;
    /* 43 x "é" (2 bytes each) = 86 bytes is fine; 65 x = 130 bytes is over. */
    char sub[2 * 65 + 1] = "";
    for (int i = 0; i < 43; i++)
        strcat(sub, "\xc3\xa9");
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"%s\",\"exp\":%lld}", sub, FAR_FUTURE),
                     AUTH_OK);
    for (int i = 43; i < 65; i++)
        strcat(sub, "\xc3\xa9");
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"%s\",\"exp\":%lld}", sub, FAR_FUTURE),
                     AUTH_MISSING_SUB);
}

static void test_sub_with_at_prefix_is_reserved(void **state)
{
    (void)state;
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"@server\",\"exp\":%lld}", FAR_FUTURE),
                     AUTH_RESERVED_SUB);
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"@\",\"exp\":%lld}", FAR_FUTURE),
                     AUTH_RESERVED_SUB);
    /* Only a leading '@' is reserved. */
    assert_int_equal(verify_default_f(NOW, "{\"sub\":\"a@b\",\"exp\":%lld}", FAR_FUTURE), AUTH_OK);
}

/* ---- name and rooms --------------------------------------------------------------------- */

static void test_name_not_string_is_bad_claims(void **state)
{
    (void)state;
    const char *names[] = {"42", "null", "[\"Alice\"]", "false"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(
            verify_default_f(NOW, "{\"sub\":\"a\",\"name\":%s,\"exp\":%lld}", names[i], FAR_FUTURE),
            AUTH_BAD_CLAIMS);
    }
}

static void test_name_too_long_is_bad_claims(void **state)
{
    (void)state;
    char name[AUTH_CLAIM_MAX_BYTES + 2];
    memset(name, 'n', AUTH_CLAIM_MAX_BYTES + 1);
    name[AUTH_CLAIM_MAX_BYTES + 1] = '\0';
    assert_int_equal(
        verify_default_f(NOW, "{\"sub\":\"a\",\"name\":\"%s\",\"exp\":%lld}", name, FAR_FUTURE),
        AUTH_BAD_CLAIMS);
    name[AUTH_CLAIM_MAX_BYTES] = '\0';
    assert_int_equal(
        verify_default_f(NOW, "{\"sub\":\"a\",\"name\":\"%s\",\"exp\":%lld}", name, FAR_FUTURE),
        AUTH_OK);
}

static void test_rooms_claim_is_parsed(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_HS256, SECRET,
                              "{\"sub\":\"a\",\"exp\":%lld,\"rooms\":[\"general\",\"team-*\","
                              "\"general\"]}",
                              FAR_FUTURE);
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_non_null(claims->rooms);
    assert_int_equal(claims->room_count, 3);
    assert_string_equal(claims->rooms[0], "general");
    assert_string_equal(claims->rooms[1], "team-*");
    assert_string_equal(claims->rooms[2], "general");
    assert_true(auth_room_allowed(claims, "general"));
    assert_true(auth_room_allowed(claims, "team-red"));
    assert_true(auth_room_allowed(claims, "team-"));
    assert_false(auth_room_allowed(claims, "team"));
    assert_false(auth_room_allowed(claims, "General"));
    assert_false(auth_room_allowed(claims, "random"));
    assert_false(auth_room_allowed(claims, ""));
    assert_false(auth_room_allowed(claims, NULL));
    auth_claims_free(claims);
    free(token);
}

static void test_rooms_empty_array_allows_no_room(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token =
        make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld,\"rooms\":[]}", FAR_FUTURE);
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_non_null(claims->rooms);
    assert_int_equal(claims->room_count, 0);
    assert_false(auth_room_allowed(claims, "general"));
    auth_claims_free(claims);
    free(token);
}

static void test_rooms_absent_allows_every_room(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"a\",\"exp\":%lld}", FAR_FUTURE);
    struct auth_claims *claims = accept_claims(&policy, token, NOW);
    assert_null(claims->rooms);
    assert_true(auth_room_allowed(claims, "general"));
    assert_true(auth_room_allowed(claims, "anything:at.all"));
    assert_false(auth_room_allowed(NULL, "general"));
    auth_claims_free(claims);
    free(token);
}

static void test_rooms_of_wrong_shape_are_bad_claims(void **state)
{
    (void)state;
    char too_long[AUTH_CLAIM_MAX_BYTES + 4];
    too_long[0] = '"';
    memset(too_long + 1, 'r', AUTH_CLAIM_MAX_BYTES + 1);
    strcpy(too_long + AUTH_CLAIM_MAX_BYTES + 2, "\"");
    char one_too_long[sizeof(too_long) + 2];
    snprintf(one_too_long, sizeof(one_too_long), "[%s]", too_long);
    const char *rooms[] = {
        "\"general\"",     "null",   "{\"general\":1}", "[\"general\",1]", "[\"general\",null]",
        "[[\"general\"]]", "[\"\"]", one_too_long};
    for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
        print_message("rooms: %s\n", rooms[i]);
        assert_int_equal(verify_default_f(NOW, "{\"sub\":\"a\",\"exp\":%lld,\"rooms\":%s}",
                                          FAR_FUTURE, rooms[i]),
                         AUTH_BAD_CLAIMS);
    }
}

static void test_rooms_count_limit(void **state)
{
    (void)state;
    char list[AUTH_ROOMS_MAX * 8 + 16];
    size_t used = 0;
    list[used++] = '[';
    for (int i = 0; i < AUTH_ROOMS_MAX; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\"r%d\"", i ? "," : "", i);
    strcpy(list + used, "]");
    assert_int_equal(
        verify_default_f(NOW, "{\"sub\":\"a\",\"exp\":%lld,\"rooms\":%s}", FAR_FUTURE, list),
        AUTH_OK);
    strcpy(list + used, ",\"one-more\"]");
    assert_int_equal(
        verify_default_f(NOW, "{\"sub\":\"a\",\"exp\":%lld,\"rooms\":%s}", FAR_FUTURE, list),
        AUTH_BAD_CLAIMS);
}

/* ---- pattern matching ------------------------------------------------------------------- */

static void test_pattern_literal_is_exact_and_case_sensitive(void **state)
{
    (void)state;
    assert_true(auth_pattern_match("general", "general"));
    assert_false(auth_pattern_match("general", "General"));
    assert_false(auth_pattern_match("general", "general2"));
    assert_false(auth_pattern_match("general", "genera"));
    assert_true(auth_pattern_match("", ""));
    assert_false(auth_pattern_match("", "a"));
    assert_false(auth_pattern_match("a", ""));
    /* Only '*' is special: '?', '[' and '.' are literal. */
    assert_false(auth_pattern_match("a?c", "abc"));
    assert_true(auth_pattern_match("a?c", "a?c"));
    assert_false(auth_pattern_match("[ab]", "a"));
    assert_false(auth_pattern_match("a.c", "abc"));
}

static void test_pattern_star_matches_any_run(void **state)
{
    (void)state;
    assert_true(auth_pattern_match("*", ""));
    assert_true(auth_pattern_match("*", "anything"));
    assert_true(auth_pattern_match("**", "x"));
    assert_true(auth_pattern_match("team-*", "team-"));
    assert_true(auth_pattern_match("team-*", "team-a"));
    assert_true(auth_pattern_match("team-*", "team-a-b"));
    assert_false(auth_pattern_match("team-*", "team"));
    assert_false(auth_pattern_match("team-*", "xteam-a"));
    assert_true(auth_pattern_match("*-ops", "eu-ops"));
    assert_false(auth_pattern_match("*-ops", "eu-ops2"));
    assert_true(auth_pattern_match("a*b*c", "abc"));
    assert_true(auth_pattern_match("a*b*c", "axxbyyc"));
    assert_true(auth_pattern_match("a*b*c", "abcbc"));
    assert_false(auth_pattern_match("a*b*c", "acb"));
    assert_true(auth_pattern_match("*a", "aaaa"));
    assert_true(auth_pattern_match("a*a", "aa"));
    assert_false(auth_pattern_match("a*a", "a"));
    assert_true(auth_pattern_match("****a", "bbba"));
    assert_false(auth_pattern_match("****a", "bbbb"));
    assert_true(auth_pattern_match("*ab*", "aab"));
    assert_true(auth_pattern_match("*aab", "aaab"));
    assert_false(auth_pattern_match(NULL, "a"));
    assert_false(auth_pattern_match("a", NULL));
}

static void test_pattern_pathological_input_is_fast(void **state)
{
    (void)state;
    /* A recursive matcher takes exponential time here; ours is bounded by len(p) * len(s). */
    enum { LEN = 20000 };
    char *name = malloc(LEN + 1);
    assert_non_null(name);
    memset(name, 'a', LEN);
    name[LEN] = '\0';
    clock_t start = clock();
    assert_false(auth_pattern_match("*a*a*a*a*a*a*a*a*a*a*b", name));
    assert_false(auth_pattern_match("****************************b", name));
    assert_true(auth_pattern_match("****a", name));
    double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    assert_true(seconds < 2.0);
    free(name);
}

/* ---- messages and labels ---------------------------------------------------------------- */

static void test_messages_match_protocol_text(void **state)
{
    (void)state;
    assert_string_equal(auth_result_message(AUTH_EXPIRED), "token expired");
    assert_string_equal(auth_result_message(AUTH_NOT_YET_VALID), "token not yet valid");
    assert_string_equal(auth_result_message(AUTH_MISSING), "missing token");
    assert_string_equal(auth_result_message(AUTH_MALFORMED), "malformed token");
    assert_string_equal(auth_result_message(AUTH_BAD_SIGNATURE), "bad signature");
    assert_string_equal(auth_result_message(AUTH_WRONG_ALG), "algorithm not allowed");
    assert_string_equal(auth_result_message(AUTH_MISSING_SUB), "missing sub claim");
    assert_string_equal(auth_result_message(AUTH_RESERVED_SUB), "reserved user id");
    assert_string_equal(auth_result_message(AUTH_WRONG_ISSUER), "wrong issuer");
    assert_string_equal(auth_result_message(AUTH_WRONG_AUDIENCE), "wrong audience");
    assert_string_equal(auth_result_message(AUTH_MISSING_EXP), "missing exp claim");
    assert_string_equal(auth_result_message(AUTH_BAD_CLAIMS), "invalid claims");
    assert_non_null(auth_result_message((enum auth_result) - 1));
    assert_non_null(auth_result_message(AUTH_RESULT_COUNT));
}

static void test_labels_are_stable_and_distinct(void **state)
{
    (void)state;
    static const char *const expected[AUTH_RESULT_COUNT] = {
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
    for (int i = 0; i < AUTH_RESULT_COUNT; i++) {
        assert_non_null(expected[i]);
        assert_string_equal(auth_result_label((enum auth_result)i), expected[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(auth_result_label((enum auth_result)i),
                                    auth_result_label((enum auth_result)j));
    }
    assert_string_equal(auth_result_label(AUTH_RESULT_COUNT), "unknown");
}

static void test_claims_free_accepts_null(void **state)
{
    (void)state;
    auth_claims_free(NULL);
}

/* Refresh (§7): same policy as the handshake, same sub only; a refusal hands back no claims. */
static void test_refresh_same_sub_gets_new_claims(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    char *token = make_tokenf(JWT_ALG_HS256, SECRET,
                              "{\"sub\":\"alice\",\"rooms\":[\"team-*\"],\"exp\":%lld}",
                              NOW + 600);
    struct auth_claims *claims = NULL;
    assert_null(auth_refresh(&policy, token, NOW, "alice", &claims));
    assert_non_null(claims);
    assert_int_equal(claims->exp, NOW + 600);
    assert_int_equal(claims->room_count, 1);
    assert_true(auth_room_allowed(claims, "team-a"));
    assert_false(auth_room_allowed(claims, "lobby"));
    auth_claims_free(claims);
    free(token);
}

static void test_refresh_refuses_other_sub_and_bad_tokens(void **state)
{
    (void)state;
    struct auth_policy policy = hs256_policy();
    static struct auth_claims sentinel;
    struct auth_claims *claims = &sentinel; /* must be reset to NULL */
    char *bob = make_tokenf(JWT_ALG_HS256, SECRET, "{\"sub\":\"bob\",\"exp\":%lld}", NOW + 60);
    assert_string_equal(auth_refresh(&policy, bob, NOW, "alice", &claims),
                        "token is for another user");
    assert_null(claims);
    /* a prefix of the current sub is another user too */
    assert_string_equal(auth_refresh(&policy, bob, NOW, "bo", &claims),
                        "token is for another user");
    assert_null(claims);
    assert_string_equal(auth_refresh(&policy, bob, NOW + 60, "bob", &claims),
                        auth_result_message(AUTH_EXPIRED));
    assert_null(claims);
    char *forged = make_tokenf(JWT_ALG_HS256, OTHER_SECRET,
                               "{\"sub\":\"bob\",\"exp\":%lld}", NOW + 60);
    assert_string_equal(auth_refresh(&policy, forged, NOW, "bob", &claims),
                        auth_result_message(AUTH_BAD_SIGNATURE));
    assert_null(claims);
    assert_non_null(auth_refresh(&policy, "", NOW, "bob", &claims));
    assert_null(claims);
    assert_non_null(auth_refresh(&policy, bob, NOW, NULL, &claims));
    assert_null(claims);
    free(forged);
    free(bob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_valid_token_is_accepted),
        cmocka_unit_test(test_refresh_same_sub_gets_new_claims),
        cmocka_unit_test(test_refresh_refuses_other_sub_and_bad_tokens),
        cmocka_unit_test(test_name_absent_or_empty_is_null),
        cmocka_unit_test(test_unknown_claims_are_ignored),
        cmocka_unit_test(test_null_token_is_missing),
        cmocka_unit_test(test_empty_token_is_malformed),
        cmocka_unit_test(test_garbage_tokens_are_malformed),
        cmocka_unit_test(test_overlong_token_is_malformed),
        cmocka_unit_test(test_nul_inside_claim_is_malformed),
        cmocka_unit_test(test_crit_header_is_malformed),
        cmocka_unit_test(test_payload_deeper_than_cjson_allows_is_malformed),
        cmocka_unit_test(test_other_secret_is_bad_signature),
        cmocka_unit_test(test_tampered_payload_is_bad_signature),
        cmocka_unit_test(test_empty_signature_is_bad_signature),
        cmocka_unit_test(test_hs384_with_same_secret_is_wrong_alg),
        cmocka_unit_test(test_hs512_with_other_secret_is_wrong_alg),
        cmocka_unit_test(test_alg_none_is_wrong_alg),
        cmocka_unit_test(test_alg_none_is_wrong_alg_for_pem_policies),
        cmocka_unit_test(test_public_key_as_hmac_secret_is_wrong_alg),
        cmocka_unit_test(test_rs256_token_under_hs256_policy_is_wrong_alg),
        cmocka_unit_test(test_rs256_token_under_es256_policy_is_wrong_alg),
        cmocka_unit_test(test_rs256_valid_token_is_accepted),
        cmocka_unit_test(test_rs256_other_key_is_bad_signature),
        cmocka_unit_test(test_es256_valid_token_is_accepted),
        cmocka_unit_test(test_es256_other_key_is_bad_signature),
        cmocka_unit_test(test_es256_standard_jose_token_is_accepted),
        cmocka_unit_test(test_es256_der_signature_is_bad_signature),
        cmocka_unit_test(test_policy_without_key_fails_closed),
        cmocka_unit_test(test_unparseable_public_key_fails_closed),
        cmocka_unit_test(test_exp_boundary),
        cmocka_unit_test(test_exp_boundary_with_leeway),
        cmocka_unit_test(test_negative_leeway_counts_as_zero),
        cmocka_unit_test(test_fractional_exp_is_rounded_up),
        cmocka_unit_test(test_huge_exp_is_clamped),
        cmocka_unit_test(test_missing_exp_when_required),
        cmocka_unit_test(test_missing_exp_allowed_when_not_required),
        cmocka_unit_test(test_exp_checked_even_when_not_required),
        cmocka_unit_test(test_exp_not_a_number_is_bad_claims),
        cmocka_unit_test(test_nbf_boundary),
        cmocka_unit_test(test_nbf_boundary_with_leeway),
        cmocka_unit_test(test_nbf_not_a_number_is_bad_claims),
        cmocka_unit_test(test_issuer_matching_is_accepted),
        cmocka_unit_test(test_issuer_mismatch_is_wrong_issuer),
        cmocka_unit_test(test_issuer_missing_is_wrong_issuer),
        cmocka_unit_test(test_issuer_unchecked_when_not_configured),
        cmocka_unit_test(test_audience_string_match_is_accepted),
        cmocka_unit_test(test_audience_array_containing_it_is_accepted),
        cmocka_unit_test(test_audience_mismatch_is_wrong_audience),
        cmocka_unit_test(test_audience_missing_or_mistyped_is_wrong_audience),
        cmocka_unit_test(test_audience_unchecked_when_not_configured),
        cmocka_unit_test(test_first_failure_in_documented_order_wins),
        cmocka_unit_test(test_sub_missing_is_missing_sub),
        cmocka_unit_test(test_sub_empty_or_not_string_is_missing_sub),
        cmocka_unit_test(test_sub_length_limit),
        cmocka_unit_test(test_sub_length_counts_utf8_bytes),
        cmocka_unit_test(test_sub_with_at_prefix_is_reserved),
        cmocka_unit_test(test_name_not_string_is_bad_claims),
        cmocka_unit_test(test_name_too_long_is_bad_claims),
        cmocka_unit_test(test_rooms_claim_is_parsed),
        cmocka_unit_test(test_rooms_empty_array_allows_no_room),
        cmocka_unit_test(test_rooms_absent_allows_every_room),
        cmocka_unit_test(test_rooms_of_wrong_shape_are_bad_claims),
        cmocka_unit_test(test_rooms_count_limit),
        cmocka_unit_test(test_pattern_literal_is_exact_and_case_sensitive),
        cmocka_unit_test(test_pattern_star_matches_any_run),
        cmocka_unit_test(test_pattern_pathological_input_is_fast),
        cmocka_unit_test(test_messages_match_protocol_text),
        cmocka_unit_test(test_labels_are_stable_and_distinct),
        cmocka_unit_test(test_claims_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
