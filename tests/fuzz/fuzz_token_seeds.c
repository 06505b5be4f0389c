/*
 * fuzz_token_seeds — writes the committed seed corpora of the two token harnesses from one
 * table, so they can be regenerated and reviewed as text:
 *   corpus/token_claims/<name>   the structured input of fuzz_token_claims.c (mode byte,
 *                                header length, header, payload)
 *   corpus/token_raw/<name>      the same token signed, as fuzz_token_raw.c reads it
 * Usage (tests/fuzz/README.md): fuzz_token_seeds tests/fuzz/corpus
 *
 * The seeds name one path of auth_verify() each (accepted, expired within and beyond the
 * leeway, fractional exp, nbf, iss/aud, reserved sub, bad claim types, crit, the forgeries),
 * so the fuzzer starts from inputs that already reach every rule instead of finding the JSON
 * shape of a claim set by chance. Times are relative to FUZZ_NOW (1800000000).
 */
#include "fuzz_token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define RS "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define EXP "\"exp\":1800003600"

/* byte 0 of a fuzz_token_claims input */
#define MODE(signer, policy, leeway, no_exp)                                                       \
    ((unsigned char)((signer) | (policy) << 3 | (leeway) << 5 | (no_exp) << 7))

struct seed {
    const char *name;
    unsigned char mode;
    const char *header;
    const char *payload;
};

static const struct seed seeds[] = {
    {"hs-valid", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS, "{\"sub\":\"alice\"," EXP "}"},
    {"hs-all-claims", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"name\":\"Alice\"," EXP ",\"nbf\":1799999000,\"iat\":1799999000,"
     "\"rooms\":[\"general\",\"team-*\",\"**a*b\"]}"},
    {"hs-iss-aud-array", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256_ISS_AUD, 0, 0), HS,
     "{\"sub\":\"bob\",\"iss\":\"" FUZZ_ISSUER "\",\"aud\":[\"x\",\"" FUZZ_AUDIENCE "\"]," EXP "}"},
    {"hs-iss-aud-string", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256_ISS_AUD, 0, 0), HS,
     "{\"sub\":\"bob\",\"iss\":\"" FUZZ_ISSUER "\",\"aud\":\"" FUZZ_AUDIENCE "\"," EXP "}"},
    {"hs-expired", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"exp\":1799999990}"},
    {"hs-expired-in-leeway", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 1, 0), HS,
     "{\"sub\":\"alice\",\"exp\":1799999990}"},
    {"hs-exp-zero-huge-leeway", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 2, 0), HS,
     "{\"sub\":\"alice\",\"exp\":0}"},
    {"hs-exp-fraction", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"exp\":1800000000.5}"},
    {"hs-exp-huge", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 3, 0), HS,
     "{\"sub\":\"alice\",\"exp\":1e300,\"nbf\":-1e300}"},
    {"hs-exp-string", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"exp\":\"1800003600\"}"},
    {"hs-nbf-future", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\"," EXP ",\"nbf\":1800000100}"},
    {"hs-no-exp-allowed", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 1), HS,
     "{\"sub\":\"alice\"}"},
    {"hs-no-exp-required", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\"}"},
    {"hs-reserved-sub", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"@server\"," EXP "}"},
    {"hs-duplicate-sub", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"sub\":\"@server\"," EXP "}"},
    {"hs-unicode-sub", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"\\u00fc\\u2028\\ud83d\\ude00\",\"name\":\"\\u001b[31m\"," EXP "}"},
    {"hs-bad-rooms", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"rooms\":[\"a\",5]," EXP "}"},
    {"hs-empty-rooms", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"rooms\":[]," EXP "}"},
    {"hs-bad-name", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\",\"name\":{\"a\":1}," EXP "}"},
    {"hs-nested", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\"," EXP ",\"x\":[[[[[[[[{\"y\":[null,true,1.5e-7]}]]]]]]]]}"},
    {"hs-crit", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0),
     "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"alice\"," EXP "}"},
    {"hs-kid-header", MODE(FUZZ_SIGN_HS256, FUZZ_POLICY_HS256, 0, 0),
     "{\"typ\":\"JWT\",\"kid\":\"k1\",\"alg\":\"HS256\"}", "{\"sub\":\"alice\"," EXP "}"},
    {"hs-other-secret", MODE(FUZZ_SIGN_HS256_OTHER, FUZZ_POLICY_HS256, 0, 0), HS,
     "{\"sub\":\"alice\"," EXP "}"},
    {"none-alg", MODE(FUZZ_SIGN_NONE, FUZZ_POLICY_HS256, 0, 0), "{\"alg\":\"none\"}",
     "{\"sub\":\"alice\"," EXP "}"},
    {"rs-valid", MODE(FUZZ_SIGN_RS256, FUZZ_POLICY_RS256, 0, 0), RS,
     "{\"sub\":\"carol\",\"rooms\":[\"*\"]," EXP "}"},
    {"rs-as-hs-confusion", MODE(FUZZ_SIGN_HS256_RSA_PUBLIC, FUZZ_POLICY_RS256, 0, 0), HS,
     "{\"sub\":\"mallory\"," EXP "}"},
    {"es-valid", MODE(FUZZ_SIGN_ES256, FUZZ_POLICY_ES256, 0, 0), ES,
     "{\"sub\":\"dave\",\"name\":\"Dave\"," EXP "}"},
    {"es-as-hs-confusion", MODE(FUZZ_SIGN_HS256_EC_PUBLIC, FUZZ_POLICY_ES256, 0, 0), HS,
     "{\"sub\":\"mallory\"," EXP "}"},
    {"es-der-signature", MODE(FUZZ_SIGN_ES256_DER, FUZZ_POLICY_ES256, 0, 0), ES,
     "{\"sub\":\"dave\"," EXP "}"},
};

static int write_file(const char *dir, const char *sub, const char *name, const void *data,
                      size_t len, size_t len2, const void *data2)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || (len2 && fwrite(data2, 1, len2, f) != len2)) {
        fprintf(stderr, "fuzz_token_seeds: cannot write %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_token_seeds CORPUS_DIR (e.g. tests/fuzz/corpus)\n");
        return 2;
    }
    char path[4096];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", argv[1], i ? "token_raw" : "token_claims");
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return 1;
    }
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        const struct seed *s = &seeds[i];
        size_t hl = strlen(s->header), pl = strlen(s->payload);
        unsigned char head[2] = {s->mode, (unsigned char)hl};
        char *token =
            fuzz_token_sign((enum fuzz_signer)(s->mode & 7), s->header, hl, s->payload, pl);
        char *claims = malloc(hl + pl);
        if (!token || !claims)
            return 1;
        memcpy(claims, s->header, hl);
        memcpy(claims + hl, s->payload, pl);
        int rc = write_file(argv[1], "token_claims", s->name, head, 2, hl + pl, claims) |
                 write_file(argv[1], "token_raw", s->name, token, strlen(token), 0, NULL);
        free(claims);
        free(token);
        if (rc != 0)
            return 1;
    }
    printf("fuzz_token_seeds: wrote %zu seeds to %s/token_claims and %s/token_raw\n",
           sizeof(seeds) / sizeof(seeds[0]), argv[1], argv[1]);
    return 0;
}
