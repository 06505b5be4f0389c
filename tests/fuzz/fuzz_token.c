/*
 * fuzz_token — keys, policies, JWS signer and claim invariants for the token harnesses; see
 * fuzz_token.h.
 *
 * The OpenSSL keys are parsed once and kept for the life of the process (a harness runs
 * millions of inputs; parsing a PEM per input would dominate). The key pairs are the test-only
 * pairs of tests/unit/test_auth.c; never use them anywhere else.
 */
#include "fuzz_token.h"
#include "../test_keys.h" /* the key pairs test_auth uses */
#include "fuzz_check.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

static const char SECRET[] = "fuzz-secret-0123456789abcdef0123";
static const char OTHER_SECRET[] = "fuzz-other-secret-0123456789abcd";

#define FUZZ_TIME_LIMIT 9007199254740992LL /* 2^53: auth.c's clamp for times and leeway */

void fuzz_policy_init(struct auth_policy *p, enum fuzz_policy which)
{
    memset(p, 0, sizeof(*p));
    p->require_exp = true;
    switch (which) {
    case FUZZ_POLICY_RS256:
        p->alg = AUTH_ALG_RS256;
        p->key = (const unsigned char *)RSA_PUBLIC_PEM;
        p->key_len = strlen(RSA_PUBLIC_PEM);
        return;
    case FUZZ_POLICY_ES256:
        p->alg = AUTH_ALG_ES256;
        p->key = (const unsigned char *)EC_PUBLIC_PEM;
        p->key_len = strlen(EC_PUBLIC_PEM);
        return;
    case FUZZ_POLICY_HS256_ISS_AUD:
        p->issuer = FUZZ_ISSUER;
        p->audience = FUZZ_AUDIENCE;
        break;
    case FUZZ_POLICY_HS256:
    case FUZZ_POLICY_COUNT:
        break;
    }
    p->alg = AUTH_ALG_HS256;
    p->key = (const unsigned char *)SECRET;
    p->key_len = strlen(SECRET);
}

bool fuzz_signer_matches(enum fuzz_signer signer, enum fuzz_policy policy)
{
    switch (policy) {
    case FUZZ_POLICY_HS256:
    case FUZZ_POLICY_HS256_ISS_AUD:
        return signer == FUZZ_SIGN_HS256;
    case FUZZ_POLICY_RS256:
        return signer == FUZZ_SIGN_RS256;
    case FUZZ_POLICY_ES256:
        return signer == FUZZ_SIGN_ES256;
    case FUZZ_POLICY_COUNT:
        break;
    }
    return false;
}

/* ---------- signing ---------- */

/* Appends base64url (no padding) of in[0..n) at out; returns the characters written. */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    return o;
}

static EVP_PKEY *load_private_key(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    FUZZ_CHECK(bio != NULL);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    FUZZ_CHECK(key != NULL);
    return key;
}

/* SHA-256 signature of msg with key; DER for ECDSA. Returns its length (sig holds 512). */
static size_t digest_sign(EVP_PKEY *key, const char *msg, size_t n, unsigned char *sig)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 512;
    FUZZ_CHECK(ctx != NULL);
    FUZZ_CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1);
    FUZZ_CHECK(EVP_DigestSign(ctx, sig, &len, (const unsigned char *)msg, n) == 1);
    EVP_MD_CTX_free(ctx);
    return len;
}

/* Rewrites a DER ECDSA signature as the 64-byte JOSE R||S form (RFC 7518 §3.4). */
static size_t der_to_jose(unsigned char *sig, size_t len)
{
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    FUZZ_CHECK(es != NULL);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    FUZZ_CHECK(BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32);
    ECDSA_SIG_free(es);
    return 64;
}

static size_t hmac(const char *key, const char *msg, size_t n, unsigned char *sig)
{
    unsigned int len = 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, n, sig,
                    &len) != NULL);
    return len;
}

/* The signature of msg ("header.payload") as signer makes it; returns its length. */
static size_t make_signature(enum fuzz_signer signer, const char *msg, size_t n, unsigned char *sig)
{
    static EVP_PKEY *rsa, *ec; /* parsed once, kept for the process */
    switch (signer) {
    case FUZZ_SIGN_HS256:
        return hmac(SECRET, msg, n, sig);
    case FUZZ_SIGN_HS256_OTHER:
        return hmac(OTHER_SECRET, msg, n, sig);
    case FUZZ_SIGN_HS256_RSA_PUBLIC:
        return hmac(RSA_PUBLIC_PEM, msg, n, sig);
    case FUZZ_SIGN_HS256_EC_PUBLIC:
        return hmac(EC_PUBLIC_PEM, msg, n, sig);
    case FUZZ_SIGN_RS256:
        if (!rsa)
            rsa = load_private_key(RSA_PRIVATE_PEM);
        return digest_sign(rsa, msg, n, sig);
    case FUZZ_SIGN_ES256:
    case FUZZ_SIGN_ES256_DER:
        if (!ec)
            ec = load_private_key(EC_PRIVATE_PEM);
        n = digest_sign(ec, msg, n, sig);
        return signer == FUZZ_SIGN_ES256 ? der_to_jose(sig, n) : n;
    case FUZZ_SIGN_NONE:
    case FUZZ_SIGNER_COUNT:
        break;
    }
    return 0;
}

char *fuzz_token_sign(enum fuzz_signer signer, const char *header, size_t header_len,
                      const char *payload, size_t payload_len)
{
    /* base64url is 4/3 of the input; 512 signature bytes at most; dots and NUL */
    size_t cap = (header_len + payload_len) / 3 * 4 + 16 + 700;
    char *token = malloc(cap);
    FUZZ_CHECK(token != NULL);
    size_t n = b64url((const unsigned char *)header, header_len, token);
    token[n++] = '.';
    n += b64url((const unsigned char *)payload, payload_len, token + n);
    unsigned char sig[512];
    size_t sig_len = make_signature(signer, token, n, sig);
    token[n++] = '.';
    n += b64url(sig, sig_len, token + n);
    token[n] = '\0';
    return token;
}

/* ---------- invariants ---------- */

/* The documented glob ('*' = any run, all else literal), as a plain dynamic programme over
 * prefixes: an independent reference for auth_pattern_match()'s backtracking. row[j] says
 * whether the pattern read so far matches name[0..j). */
static bool glob_reference(const char *pattern, const char *name)
{
    bool row[AUTH_CLAIM_MAX_BYTES + 2];
    size_t n = strlen(name);
    FUZZ_CHECK(n <= AUTH_CLAIM_MAX_BYTES);
    row[0] = true;
    for (size_t j = 1; j <= n; j++)
        row[j] = false;
    for (const char *p = pattern; *p; p++) {
        if (*p == '*') {
            for (size_t j = 1; j <= n; j++)
                row[j] = row[j] || row[j - 1];
        } else {
            for (size_t j = n; j >= 1; j--)
                row[j] = row[j - 1] && name[j - 1] == *p;
            row[0] = false;
        }
    }
    return row[n];
}

static void check_room_patterns(const struct auth_claims *c)
{
    const char *names[] = {"general", "team-a", "x", c->sub, NULL};
    for (size_t i = 0; i < c->room_count; i++) {
        const char *pattern = c->rooms[i];
        size_t len = strlen(pattern);
        FUZZ_CHECK(len >= 1 && len <= AUTH_CLAIM_MAX_BYTES);
        names[4] = pattern;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            FUZZ_CHECK(auth_pattern_match(pattern, names[k]) == glob_reference(pattern, names[k]));
    }
    for (size_t k = 0; k < 4; k++) {
        bool any = c->rooms == NULL;
        for (size_t i = 0; i < c->room_count && !any; i++)
            any = glob_reference(c->rooms[i], names[k]);
        FUZZ_CHECK(auth_room_allowed(c, names[k]) == any);
    }
}

void fuzz_check_claims(const struct auth_claims *c, const struct auth_policy *policy, int64_t now_s)
{
    FUZZ_CHECK(c->sub != NULL);
    size_t n = strlen(c->sub);
    FUZZ_CHECK(n >= 1 && n <= AUTH_CLAIM_MAX_BYTES && c->sub[0] != '@');
    if (c->name) {
        n = strlen(c->name);
        FUZZ_CHECK(n >= 1 && n <= AUTH_CLAIM_MAX_BYTES);
    }
    FUZZ_CHECK(c->room_count <= AUTH_ROOMS_MAX);
    FUZZ_CHECK(c->rooms != NULL || c->room_count == 0);
    check_room_patterns(c);

    int64_t leeway = policy->leeway_s < 0 ? 0 : policy->leeway_s;
    if (leeway > FUZZ_TIME_LIMIT)
        leeway = FUZZ_TIME_LIMIT;
    FUZZ_CHECK(c->exp >= -FUZZ_TIME_LIMIT && c->exp <= FUZZ_TIME_LIMIT);
    if (c->exp != 0)
        FUZZ_CHECK(now_s < c->exp + leeway);
    else if (policy->require_exp) /* present but 0 (or rounded up to 0) */
        FUZZ_CHECK(now_s < leeway);
}

enum auth_result fuzz_check_result(enum auth_result r, struct auth_claims *out,
                                   const struct auth_policy *policy, int64_t now_s)
{
    FUZZ_CHECK((unsigned)r < AUTH_RESULT_COUNT);
    FUZZ_CHECK((r == AUTH_OK) == (out != NULL));
    FUZZ_CHECK(auth_result_label(r) != NULL && auth_result_message(r) != NULL);
    if (out)
        fuzz_check_claims(out, policy, now_s);
    auth_claims_free(out);
    return r;
}
