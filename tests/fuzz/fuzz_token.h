/*
 * fuzz_token — what the two token harnesses (fuzz_token_raw.c, fuzz_token_claims.c) and the
 * seed writer (fuzz_token_seeds.c) share: test-only keys, the policies tokens are checked
 * against, a JWS signer that signs any header and payload bytes (so the fuzzer's JSON gets past
 * the signature check and reaches the claim rules), and the invariants every accepted token's
 * claims must meet.
 *
 * The signer is written here with OpenSSL rather than libjwt on purpose: libjwt only signs
 * claim sets it built itself, while the fuzzer needs malformed JSON, duplicate keys, odd
 * headers and the classic forgeries (HS256 keyed with the RSA/EC public key, "none", a DER
 * ECDSA signature) signed exactly as an attacker would.
 */
#ifndef CHAT_FUZZ_TOKEN_H
#define CHAT_FUZZ_TOKEN_H

#include "auth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fixed "now" of every token harness (2027-01-15), so a crash replays the same way. */
#define FUZZ_NOW 1800000000LL

/* How a token's signature is made. Only the first four can ever be accepted, and each only
 * by the policy of its own algorithm and key. */
enum fuzz_signer {
    FUZZ_SIGN_HS256 = 0,        /* HMAC-SHA256 with the policy secret */
    FUZZ_SIGN_RS256,            /* RSASSA-PKCS1-v1_5 SHA-256 with the RSA private key */
    FUZZ_SIGN_ES256,            /* ECDSA P-256 SHA-256, JOSE R||S form */
    FUZZ_SIGN_HS256_OTHER,      /* HMAC with another secret: a forged signature */
    FUZZ_SIGN_HS256_RSA_PUBLIC, /* HMAC keyed with the RSA public key PEM (alg confusion) */
    FUZZ_SIGN_HS256_EC_PUBLIC,  /* HMAC keyed with the EC public key PEM (alg confusion) */
    FUZZ_SIGN_NONE,             /* empty signature, as for alg "none" */
    FUZZ_SIGN_ES256_DER,        /* ECDSA with the right key but a DER signature (RFC 7518
                                   allows only R||S) */
    FUZZ_SIGNER_COUNT
};

enum fuzz_policy {
    FUZZ_POLICY_HS256 = 0,
    FUZZ_POLICY_RS256,
    FUZZ_POLICY_ES256,
    FUZZ_POLICY_HS256_ISS_AUD, /* HS256 that also requires iss and aud */
    FUZZ_POLICY_COUNT
};

#define FUZZ_ISSUER "https://issuer.example"
#define FUZZ_AUDIENCE "chat"

/* Fills *p with the policy's algorithm, key, issuer and audience; require_exp true, leeway 0. */
void fuzz_policy_init(struct auth_policy *p, enum fuzz_policy which);

/* True when a token made by signer may be accepted under policy: same algorithm, same key. */
bool fuzz_signer_matches(enum fuzz_signer signer, enum fuzz_policy policy);

/* base64url(header) "." base64url(payload) "." signature, malloc'd and NUL-terminated; NULL
 * only when OpenSSL fails (which aborts the harness, as it is not the input's fault). */
char *fuzz_token_sign(enum fuzz_signer signer, const char *header, size_t header_len,
                      const char *payload, size_t payload_len);

/* Aborts unless the claims of an accepted token meet auth.h's promises under policy at now:
 * sub 1..128 bytes not starting with '@', name absent or 1..128 bytes, at most 256 room
 * patterns of 1..128 bytes each matched as the documented glob, and exp honoured. */
void fuzz_check_claims(const struct auth_claims *c, const struct auth_policy *policy,
                       int64_t now_s);

/* Aborts when an auth_verify() result breaks the contract on *out (claims iff AUTH_OK) or has
 * no label/message; frees the claims. Returns r. */
enum auth_result fuzz_check_result(enum auth_result r, struct auth_claims *out,
                                   const struct auth_policy *policy, int64_t now_s);

#endif
