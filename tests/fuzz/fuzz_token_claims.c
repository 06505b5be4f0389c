/*
 * fuzz_token_claims — libFuzzer harness for auth_verify()'s claim policy (common/auth.h): the
 * input is a JOSE header and a claim set as raw bytes, which the harness signs (fuzz_token.c)
 * so that mutated JSON passes the signature check and reaches the exp/nbf/iss/aud/sub/name/
 * rooms rules, with the forgeries an attacker would try mixed in.
 *
 * Input layout (tests/fuzz/README.md; fuzz_token_seeds.c writes the seeds):
 *   byte 0   bits 0-2 signer (enum fuzz_signer), bits 3-4 policy (enum fuzz_policy),
 *            bits 5-6 leeway (0, 30 s, 2^62 s, -5 s), bit 7 set: exp not required
 *   byte 1   header length h
 *   then     h bytes of header, and the rest is the payload
 * Invariants: fuzz_check_result() on every answer, and a token is accepted only when the
 * signer used the policy's own algorithm and key — HS256 keyed with a public key, "none",
 * another secret or a DER ECDSA signature must never pass.
 */
#include "fuzz_check.h"
#include "fuzz_token.h"

#include <stdint.h>
#include <stdlib.h>

static const int64_t leeways[4] = {0, 30, (int64_t)1 << 62, -5};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum fuzz_signer signer = (enum fuzz_signer)(data[0] & 7);
    enum fuzz_policy which = (enum fuzz_policy)((data[0] >> 3) & 3);
    size_t header_len = data[1];
    if (header_len > size - 2)
        header_len = size - 2;
    const char *header = (const char *)data + 2;
    const char *payload = header + header_len;
    size_t payload_len = size - 2 - header_len;
    if (payload_len > AUTH_TOKEN_MAX_BYTES) /* the token would be refused by length alone */
        return 0;

    struct auth_policy policy;
    fuzz_policy_init(&policy, which);
    policy.leeway_s = leeways[(data[0] >> 5) & 3];
    policy.require_exp = !(data[0] & 0x80);

    char *token = fuzz_token_sign(signer, header, header_len, payload, payload_len);
    struct auth_claims *claims = NULL;
    enum auth_result r = auth_verify(&policy, token, FUZZ_NOW, &claims);
    r = fuzz_check_result(r, claims, &policy, FUZZ_NOW);
    FUZZ_CHECK(r != AUTH_OK || fuzz_signer_matches(signer, which));
    free(token);
    return 0;
}
