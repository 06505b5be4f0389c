/*
 * fuzz_token_raw — libFuzzer harness for auth_verify() (common/auth.h) on whole tokens: the
 * input is the token string exactly as it would arrive in the ?token= parameter, Authorization
 * header or cookie, and it is checked under every fuzz policy (HS256, RS256, ES256, HS256 with
 * iss/aud) at the fixed time FUZZ_NOW.
 *
 * Mutating whole tokens mostly exercises the parsing and signature paths (base64url, JSON of
 * the header, alg checks, malformed signatures of every length); fuzz_token_claims.c signs
 * mutated JSON so that the claim rules are reached too. Invariants: the result contract of
 * fuzz_check_result(), and that no token is accepted under two algorithms, since acceptance
 * requires the header's alg to equal the configured one.
 */
#include "fuzz_check.h"
#include "fuzz_token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AUTH_TOKEN_MAX_BYTES + 1) /* longer is refused by length alone */
        return 0;
    char *token = malloc(size + 1);
    FUZZ_CHECK(token != NULL);
    memcpy(token, data, size);
    token[size] = '\0';

    int accepted_algs = 0;
    for (int which = 0; which < FUZZ_POLICY_COUNT; which++) {
        struct auth_policy policy;
        fuzz_policy_init(&policy, (enum fuzz_policy)which);
        struct auth_claims *claims = NULL;
        enum auth_result r = auth_verify(&policy, token, FUZZ_NOW, &claims);
        r = fuzz_check_result(r, claims, &policy, FUZZ_NOW);
        if (r == AUTH_OK && which != FUZZ_POLICY_HS256_ISS_AUD)
            accepted_algs++;
    }
    FUZZ_CHECK(accepted_algs <= 1);
    free(token);
    return 0;
}
