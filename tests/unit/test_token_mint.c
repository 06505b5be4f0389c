/*
 * test_token_mint — common/token_mint.c: minted tokens are accepted by auth_verify() under the
 * matching policy and carry exactly the requested claims; arguments the gateway would refuse
 * produce no token at all.
 *
 * The key pairs below are test-only keys generated for this file (openssl genpkey RSA 2048,
 * openssl ecparam prime256v1); never use them anywhere else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four above, which it needs */

#include <jwt.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "token_mint.h"

#define NOW 1700000000LL

static const char SECRET[] = "mint-test-secret-0123456789abcdef";

static const char RSA_PRIVATE_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0Zboor7ox3sD2\n"
    "PmGE/r85KXBSGmGd/2mTAI/bz/j2SNy0QW6yEIMfRQhwImCq9Y8UsYSkHjAvwCda\n"
    "6rBPl9gsWCv9ssa5ovgRQjeXhDalzlpLzvhjbccHVxFih6rVwOlO51OwHPhR2Dq3\n"
    "GELPtkWVkwDAuDCorPJadnetQmx0VF5A7w9rYs6CB0ldKpiQV75sSFkHAQ47JXZa\n"
    "x1GJLwWEOxZQC2TbJzuN4hiLkEBkGi5RIxys+Bl3H7jlffvTbxIt7DC+eRLTRuSQ\n"
    "mWquwOtHmFDKmcg6K7m3jjPUF3gj1dhd0FSUlso/eJ9RLzb8siHn8rsUVdNfLz9r\n"
    "YudVH+QbAgMBAAECggEAA7K4K8BaeU4/N20U87SDOAlE77HxwVrsj6Jp0JBFYssg\n"
    "lyNmQQk8nuX748yYnbiV+88d0H178Gaoh+Eaxy7uNA6ErFk/YKvaGQR5/kWsFx8R\n"
    "U8+E4QjtlRVwWkw8sNAZGFB+szQM1SSxI3LAX+C1MXlHgSvld3fAKiGWl3sunP3a\n"
    "88tDKwgbKNn643bF6tRzp6PslJl/L97Leyhi/lUjATVMrXAmMw6iJ9xrxqU4ACBT\n"
    "BeJWBFzjDBiw9CSFslyLpUaAmKDt8Nw8YXO5YfKa27e0vEC5SSqZjap99BdQrtcb\n"
    "eZ0d/WsBBLr/pAJX46Haw+6r4b4wzZW4be58+2NhWQKBgQDjBGq59e4H2Ik/kLZK\n"
    "tqcgd3UvAYiKFIcC3a5Vnf2/XEHWbR+GbRQ8E0sA+X4SP4fqcw+3LM8Ks213s0ob\n"
    "dxREA51P5e2cDKYVAs7Ai2Mtm3IztPYhjmia8m6yTn6Mo5BdIfGWFQ/wGUAp25b+\n"
    "lWbjH6XaAoo9qppgu06ePt5oowKBgQDLbaMdSWM1kY1U4obnso6z2gm2vGGYkJEL\n"
    "vqvFki6jLDP1t+QHvUdDOCuAjKQ079K8onYeY4BYaf+bc6j/iZBAn3dk3ruQWWk4\n"
    "agtKpC2qLNnnW6xQR12cq8WLgn9Vmy2yvHjIHTSkp/rXZinRUnpUczurisdiTOtg\n"
    "IrWBOgJ2KQKBgQCaJkSmM0VHFJTVkdkGUJKZbCQpH/xr7lZi7s5TGq3Tw7x88qom\n"
    "aGkGBf+3ELK3h2YuH6U7N3T7Ci05y4d1sN0U9fNa7oDypnAb8kUb30ogDN52F9nN\n"
    "nVqQZDAgaUZrDyGW69aUl4az/SFhitcz1ZUAglvm9jSSfQbIykcvEveIywKBgHJF\n"
    "fhEffllDD88VCI7yoHKrEjXSEEixPKkKTFdJTGVgmTd4OuGWE4fQ767gUgViilBo\n"
    "Ok3LuvbvZCQgjlgtIBkM+vZwn4/wicik2P7uxrAHTchGmL7nt9AgNXGutnSSHNOA\n"
    "R6CxtzafHasNuoPY/tqdeHFeHa48YyO3m5mhymwxAoGAPtwP54Hsl/I4J5bBvbu5\n"
    "d6wGy7Y/7h90AW+6iqfAPaQ6BQbyAvLIvfbcsemLyADzbzYIeUYPcxHd1C0xYvio\n"
    "doWvyaMDl2bAM5rXg+fgrUDy8wSA75wXU85ijDOTQ5lCAJafouCHTGz0Vpf9fRVH\n"
    "UXmZvXFolRFuLx2z5mvOgpY=\n"
    "-----END PRIVATE KEY-----\n";

static const char RSA_PUBLIC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtGW6KK+6Md7A9j5hhP6/\n"
    "OSlwUhphnf9pkwCP28/49kjctEFushCDH0UIcCJgqvWPFLGEpB4wL8AnWuqwT5fY\n"
    "LFgr/bLGuaL4EUI3l4Q2pc5aS874Y23HB1cRYoeq1cDpTudTsBz4Udg6txhCz7ZF\n"
    "lZMAwLgwqKzyWnZ3rUJsdFReQO8Pa2LOggdJXSqYkFe+bEhZBwEOOyV2WsdRiS8F\n"
    "hDsWUAtk2yc7jeIYi5BAZBouUSMcrPgZdx+45X37028SLewwvnkS00bkkJlqrsDr\n"
    "R5hQypnIOiu5t44z1Bd4I9XYXdBUlJbKP3ifUS82/LIh5/K7FFXTXy8/a2LnVR/k\n"
    "GwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char EC_PRIVATE_PEM[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIHOEAz7SB47mY+JbK5T8OFH0nj2Jrfg7+snbwhCwBeNToAoGCCqGSM49\n"
    "AwEHoUQDQgAETzF7KY8ytCGzKW7Eh+FO6OpQW69GFHsB/8YuOPn5mIdEatNKcB5W\n"
    "IYiaOEZtePgcWdMFM4z87NQBsIM9RT4dfw==\n"
    "-----END EC PRIVATE KEY-----\n";

static const char EC_PUBLIC_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETzF7KY8ytCGzKW7Eh+FO6OpQW69G\n"
    "FHsB/8YuOPn5mIdEatNKcB5WIYiaOEZtePgcWdMFM4z87NQBsIM9RT4dfw==\n"
    "-----END PUBLIC KEY-----\n";

static struct auth_policy policy_for(enum auth_alg alg, const char *key)
{
    struct auth_policy p = {
        .alg = alg,
        .key = (const unsigned char *)key,
        .key_len = strlen(key),
        .require_exp = true,
    };
    return p;
}

static char *mint_hs256(const char *sub, const char *name, const char *const *rooms,
                        size_t room_count, int64_t ttl_s)
{
    return token_mint(AUTH_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET), sub, name,
                      rooms, room_count, NOW, ttl_s, NULL, NULL);
}

/* Verifies token with policy at now_s and returns the claims, failing the test otherwise. */
static struct auth_claims *accept(const struct auth_policy *policy, const char *token,
                                  int64_t now_s)
{
    assert_non_null(token);
    struct auth_claims *claims = NULL;
    enum auth_result r = auth_verify(policy, token, now_s, &claims);
    if (r != AUTH_OK)
        fail_msg("token refused: %s", auth_result_label(r));
    assert_non_null(claims);
    return claims;
}

static void test_hs256_token_carries_requested_claims(void **state)
{
    (void)state;
    const char *rooms[] = {"team-*", "general"};
    char *token = mint_hs256("alice", "Alice", rooms, 2, 3600);
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    struct auth_claims *c = accept(&p, token, NOW);
    assert_string_equal(c->sub, "alice");
    assert_string_equal(c->name, "Alice");
    assert_non_null(c->rooms);
    assert_int_equal(c->room_count, 2);
    assert_string_equal(c->rooms[0], "team-*");
    assert_string_equal(c->rooms[1], "general");
    assert_int_equal(c->exp, NOW + 3600);
    assert_true(auth_room_allowed(c, "team-blue"));
    assert_false(auth_room_allowed(c, "random"));
    auth_claims_free(c);
    free(token);
}

static void test_header_names_hs256_and_iat_is_now(void **state)
{
    (void)state;
    char *token = mint_hs256("alice", NULL, NULL, 0, 60);
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, token, (const unsigned char *)SECRET, (int)strlen(SECRET)),
                     0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    assert_int_equal(jwt_get_grant_int(jwt, "iat"), NOW);
    assert_null(jwt_get_grant(jwt, "name"));
    assert_null(jwt_get_grant(jwt, "iss"));
    assert_null(jwt_get_grant(jwt, "aud"));
    jwt_free(jwt);
    free(token);
}

static void test_absent_name_and_rooms_mean_no_claim(void **state)
{
    (void)state;
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    char *token = mint_hs256("bob", "", NULL, 5, 3600); /* room_count ignored when rooms NULL */
    struct auth_claims *c = accept(&p, token, NOW);
    assert_null(c->name);
    assert_null(c->rooms);
    assert_true(auth_room_allowed(c, "anything"));
    auth_claims_free(c);
    free(token);
}

static void test_empty_rooms_array_allows_no_room(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    char *token = mint_hs256("bob", NULL, none, 0, 3600);
    struct auth_claims *c = accept(&p, token, NOW);
    assert_non_null(c->rooms);
    assert_int_equal(c->room_count, 0);
    assert_false(auth_room_allowed(c, "general"));
    auth_claims_free(c);
    free(token);
}

static void test_token_expires_after_ttl(void **state)
{
    (void)state;
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    char *token = mint_hs256("alice", NULL, NULL, 0, 10);
    struct auth_claims *c = accept(&p, token, NOW + 9);
    auth_claims_free(c);
    c = NULL;
    assert_int_equal(auth_verify(&p, token, NOW + 10, &c), AUTH_EXPIRED);
    assert_null(c);
    free(token);
}

static void test_zero_ttl_omits_exp(void **state)
{
    (void)state;
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    char *token = mint_hs256("alice", NULL, NULL, 0, 0);
    struct auth_claims *c = NULL;
    assert_int_equal(auth_verify(&p, token, NOW, &c), AUTH_MISSING_EXP);
    p.require_exp = false;
    c = accept(&p, token, NOW + 1000000);
    assert_int_equal(c->exp, 0);
    auth_claims_free(c);
    free(token);
}

static void test_issuer_and_audience_are_set_when_given(void **state)
{
    (void)state;
    char *token = token_mint(AUTH_ALG_HS256, (const unsigned char *)SECRET, strlen(SECRET), "alice",
                             NULL, NULL, 0, NOW, 3600, "chat-dev", "chat");
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    p.issuer = "chat-dev";
    p.audience = "chat";
    auth_claims_free(accept(&p, token, NOW));
    struct auth_claims *c = NULL;
    p.issuer = "someone-else";
    assert_int_equal(auth_verify(&p, token, NOW, &c), AUTH_WRONG_ISSUER);
    p.issuer = "chat-dev";
    p.audience = "other";
    assert_int_equal(auth_verify(&p, token, NOW, &c), AUTH_WRONG_AUDIENCE);
    free(token);
}

static void test_other_secret_does_not_verify(void **state)
{
    (void)state;
    char *token = mint_hs256("alice", NULL, NULL, 0, 3600);
    struct auth_policy p = policy_for(AUTH_ALG_HS256, "a-different-secret-0123456789abcd");
    struct auth_claims *c = NULL;
    assert_int_equal(auth_verify(&p, token, NOW, &c), AUTH_BAD_SIGNATURE);
    assert_null(c);
    free(token);
}

static void test_rs256_private_key_verifies_with_public_key(void **state)
{
    (void)state;
    char *token =
        token_mint(AUTH_ALG_RS256, (const unsigned char *)RSA_PRIVATE_PEM, strlen(RSA_PRIVATE_PEM),
                   "carol", "Carol", NULL, 0, NOW, 600, NULL, NULL);
    struct auth_policy p = policy_for(AUTH_ALG_RS256, RSA_PUBLIC_PEM);
    struct auth_claims *c = accept(&p, token, NOW);
    assert_string_equal(c->sub, "carol");
    assert_string_equal(c->name, "Carol");
    auth_claims_free(c);
    /* The same token is refused where HS256 is configured: one algorithm only. */
    struct auth_policy hs = policy_for(AUTH_ALG_HS256, SECRET);
    c = NULL;
    assert_int_equal(auth_verify(&hs, token, NOW, &c), AUTH_WRONG_ALG);
    free(token);
}

static void test_es256_private_key_verifies_with_public_key(void **state)
{
    (void)state;
    const char *rooms[] = {"ops"};
    char *token = token_mint(AUTH_ALG_ES256, (const unsigned char *)EC_PRIVATE_PEM,
                             strlen(EC_PRIVATE_PEM), "dave", NULL, rooms, 1, NOW, 600, NULL, NULL);
    struct auth_policy p = policy_for(AUTH_ALG_ES256, EC_PUBLIC_PEM);
    struct auth_claims *c = accept(&p, token, NOW);
    assert_string_equal(c->sub, "dave");
    assert_int_equal(c->room_count, 1);
    assert_string_equal(c->rooms[0], "ops");
    auth_claims_free(c);
    free(token);
}

static void test_key_unsuited_to_algorithm_gives_null(void **state)
{
    (void)state;
    assert_null(token_mint(AUTH_ALG_RS256, (const unsigned char *)SECRET, strlen(SECRET), "a", NULL,
                           NULL, 0, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_ES256, (const unsigned char *)RSA_PRIVATE_PEM,
                           strlen(RSA_PRIVATE_PEM), "a", NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_RS256, (const unsigned char *)RSA_PUBLIC_PEM,
                           strlen(RSA_PUBLIC_PEM), "a", NULL, NULL, 0, NOW, 60, NULL, NULL));
}

static void test_invalid_arguments_give_null(void **state)
{
    (void)state;
    const unsigned char *key = (const unsigned char *)SECRET;
    size_t len = strlen(SECRET);
    char long_text[AUTH_CLAIM_MAX_BYTES + 2];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    const char *bad_rooms[] = {"ok", ""};
    const char *long_rooms[] = {long_text};

    assert_null(token_mint(AUTH_ALG_HS256, NULL, len, "a", NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_HS256, key, 0, "a", NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_HS256, key, len, NULL, NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_HS256, key, len, "", NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(
        token_mint(AUTH_ALG_HS256, key, len, "@server", NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(
        token_mint(AUTH_ALG_HS256, key, len, long_text, NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_HS256, key, len, "a", long_text, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_HS256, key, len, "a", NULL, bad_rooms, 2, NOW, 60, NULL, NULL));
    assert_null(
        token_mint(AUTH_ALG_HS256, key, len, "a", NULL, long_rooms, 1, NOW, 60, NULL, NULL));
    assert_null(token_mint(AUTH_ALG_HS256, key, len, "a", NULL, bad_rooms, AUTH_ROOMS_MAX + 1, NOW,
                           60, NULL, NULL));
    assert_null(token_mint((enum auth_alg)42, key, len, "a", NULL, NULL, 0, NOW, 60, NULL, NULL));
    assert_null(
        token_mint(AUTH_ALG_HS256, key, len, "a", NULL, NULL, 0, INT64_MAX, 60, NULL, NULL));
}

static void test_longest_allowed_values_are_accepted(void **state)
{
    (void)state;
    char longest[AUTH_CLAIM_MAX_BYTES + 1];
    memset(longest, 'y', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    const char *rooms[] = {longest};
    char *token = mint_hs256(longest, longest, rooms, 1, 3600);
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    struct auth_claims *c = accept(&p, token, NOW);
    assert_string_equal(c->sub, longest);
    assert_string_equal(c->name, longest);
    auth_claims_free(c);
    free(token);
}

static void test_name_with_json_specials_round_trips(void **state)
{
    (void)state;
    const char *name = "Zoë \"Z\" \\ <b>&</b> \u00e9\u4e16";
    char *token = mint_hs256("zoe", name, NULL, 0, 3600);
    struct auth_policy p = policy_for(AUTH_ALG_HS256, SECRET);
    struct auth_claims *c = accept(&p, token, NOW);
    assert_string_equal(c->name, name);
    auth_claims_free(c);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_token_carries_requested_claims),
        cmocka_unit_test(test_header_names_hs256_and_iat_is_now),
        cmocka_unit_test(test_absent_name_and_rooms_mean_no_claim),
        cmocka_unit_test(test_empty_rooms_array_allows_no_room),
        cmocka_unit_test(test_token_expires_after_ttl),
        cmocka_unit_test(test_zero_ttl_omits_exp),
        cmocka_unit_test(test_issuer_and_audience_are_set_when_given),
        cmocka_unit_test(test_other_secret_does_not_verify),
        cmocka_unit_test(test_rs256_private_key_verifies_with_public_key),
        cmocka_unit_test(test_es256_private_key_verifies_with_public_key),
        cmocka_unit_test(test_key_unsuited_to_algorithm_gives_null),
        cmocka_unit_test(test_invalid_arguments_give_null),
        cmocka_unit_test(test_longest_allowed_values_are_accepted),
        cmocka_unit_test(test_name_with_json_specials_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
