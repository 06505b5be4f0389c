/*
 * test_config — flags, environment and defaults (common/config.c) against config.h and
 * PROTOCOL.md §3-5.
 *
 * One test per behaviour. The environment is injected through fake_getenv(), which reads the
 * NULL-terminated {name, value, ...} list of the current test, so no test depends on (or
 * changes) the real process environment. Run under ASan, the error and free tests also prove
 * that a failed parse leaks nothing.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static const char *const *fake_env; /* {name, value, name, value, ..., NULL} */

static const char *fake_getenv(const char *name)
{
    for (const char *const *e = fake_env; e && e[0]; e += 2)
        if (strcmp(e[0], name) == 0)
            return e[1];
    return NULL;
}

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ARGS ((const char *const[]){NULL})
#define SECRET_ENV ENV("JWT_SECRET", "s")

static char *argv_store[64];

/* Parses with argv = {"chat-gateway", args...} and the given fake environment. */
static enum config_status parse(struct gateway_config *cfg, char *err, size_t errlen,
                                const char *const *env, const char *const *args)
{
    int argc = 0;
    argv_store[argc++] = "chat-gateway";
    for (; args[argc - 1]; argc++)
        argv_store[argc] = (char *)args[argc - 1];
    argv_store[argc] = NULL;
    fake_env = env;
    return config_parse(cfg, argc, argv_store, fake_getenv, err, errlen);
}

/* Parses, expects CONFIG_OK, and fails the test with the error text otherwise. */
static void parse_ok(struct gateway_config *cfg, const char *const *env, const char *const *args)
{
    char err[256] = "";
    enum config_status st = parse(cfg, err, sizeof(err), env, args);
    if (st != CONFIG_OK)
        fail_msg("unexpected error: %s", err);
}

/* Parses, expects CONFIG_ERROR, and returns the error text (static storage). */
static const char *parse_error(const char *const *env, const char *const *args)
{
    static char err[256];
    struct gateway_config cfg;
    err[0] = '\0';
    enum config_status st = parse(&cfg, err, sizeof(err), env, args);
    config_free(&cfg);
    if (st != CONFIG_ERROR)
        fail_msg("expected an error, got status %d", (int)st);
    assert_null(strchr(err, '\n'));
    assert_true(err[0] != '\0');
    return err;
}

/* Asserts that s begins with prefix, printing both otherwise. */
static void assert_prefix(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("'%s' does not start with '%s'", s, prefix);
}

/* ---------------------------------------------------------------------------------------- */
/* Defaults and precedence                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void test_defaults_match_header(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, NO_ARGS);
    assert_int_equal(cfg.port, 9001);
    assert_string_equal(cfg.bind, "");
    assert_string_equal(cfg.node_id, "");
    assert_int_equal(cfg.redis_count, 1);
    assert_string_equal(cfg.redis[0].host, "127.0.0.1");
    assert_int_equal(cfg.redis[0].port, 6379);
    assert_int_equal(cfg.redis[0].db, 0);
    assert_string_equal(cfg.redis_prefix, "chat");
    assert_int_equal(cfg.jwt_alg, CONFIG_ALG_HS256);
    assert_null(cfg.jwt_public_key);
    assert_null(cfg.jwt_issuer);
    assert_null(cfg.jwt_audience);
    assert_true(cfg.jwt_require_exp);
    assert_int_equal(cfg.jwt_leeway_s, 0);
    assert_int_equal(cfg.allowed_origin_count, 0);
    assert_null(cfg.api_key);
    assert_false(cfg.dev_tokens);
    assert_int_equal(cfg.frame_limit, 65536);
    assert_int_equal(cfg.text_limit, 4096);
    assert_true(cfg.rate_per_s == 20.0);
    assert_int_equal(cfg.rate_burst, 40);
    assert_int_equal(cfg.abuse_limit, 100);
    assert_int_equal(cfg.abuse_window_s, 10);
    assert_int_equal(cfg.max_rooms, 100);
    assert_int_equal(cfg.outq_cap, 1024 * 1024);
    assert_int_equal(cfg.history_size, 1000);
    assert_int_equal(cfg.history_ttl_s, 86400);
    assert_int_equal(cfg.typing_interval_ms, 2000);
    assert_int_equal(cfg.heartbeat_s, 25);
    assert_int_equal(cfg.drain_s, 10);
    assert_int_equal(cfg.handshake_timeout_s, 10);
    assert_int_equal(cfg.max_header_bytes, 8192);
    assert_int_equal(cfg.max_connections, 100000);
    assert_int_equal(cfg.sndbuf, 65536);
    assert_int_equal(cfg.log_format, CONFIG_LOG_KV);
    assert_int_equal(cfg.log_level, CONFIG_LOG_INFO);
    assert_null(cfg.arena);
    config_free(&cfg);
}

static void test_env_applies(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg,
             ENV("JWT_SECRET", "s", "GATEWAY_PORT", "7000", "REDIS_PREFIX", "app", "RATE_LIMIT",
                 "2.5", "LOG_LEVEL", "debug", "FRAME_LIMIT", "1M", "JWT_REQUIRE_EXP", "no",
                 "DEV_TOKENS", "on", "NODE_ID", "n1", "JWT_ISSUER", "iss", "API_KEY", "k"),
             NO_ARGS);
    assert_int_equal(cfg.port, 7000);
    assert_string_equal(cfg.redis_prefix, "app");
    assert_true(cfg.rate_per_s == 2.5);
    assert_int_equal(cfg.log_level, CONFIG_LOG_DEBUG);
    assert_int_equal(cfg.frame_limit, 1024 * 1024);
    assert_false(cfg.jwt_require_exp);
    assert_true(cfg.dev_tokens);
    assert_string_equal(cfg.node_id, "n1");
    assert_string_equal(cfg.jwt_issuer, "iss");
    assert_string_equal(cfg.api_key, "k");
    assert_string_equal(cfg.jwt_secret, "s");
    config_free(&cfg);
}

static void test_empty_env_value_counts_as_unset(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "GATEWAY_PORT", "", "REDIS_URL", "", "NODE_ID", ""),
             NO_ARGS);
    assert_int_equal(cfg.port, 9001);
    assert_int_equal(cfg.redis_count, 1);
    assert_string_equal(cfg.node_id, "");
    config_free(&cfg);
}

static void test_null_getenv_uses_defaults(void **state)
{
    (void)state;
    struct gateway_config cfg;
    char *argv[] = {"chat-gateway", "--jwt-secret", "s", NULL};
    char err[128];
    assert_int_equal(config_parse(&cfg, 3, argv, NULL, err, sizeof(err)), CONFIG_OK);
    assert_int_equal(cfg.port, 9001);
    assert_string_equal(cfg.jwt_secret, "s");
    config_free(&cfg);
}

static void test_flag_overrides_env(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "env-secret", "GATEWAY_PORT", "7000", "LOG_FORMAT", "json"),
             ARGS("--port", "8000", "--jwt-secret", "flag-secret"));
    assert_int_equal(cfg.port, 8000);
    assert_string_equal(cfg.jwt_secret, "flag-secret");
    assert_int_equal(cfg.log_format, CONFIG_LOG_JSON); /* env still applies where no flag */
    config_free(&cfg);
}

static void test_flag_with_separate_value(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--port", "8001", "--bind", "127.0.0.1"));
    assert_int_equal(cfg.port, 8001);
    assert_string_equal(cfg.bind, "127.0.0.1");
    config_free(&cfg);
}

static void test_flag_with_equals_value(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--port=8002", "--bind=::1"));
    assert_int_equal(cfg.port, 8002);
    assert_string_equal(cfg.bind, "::1");
    config_free(&cfg);
}

static void test_equals_value_keeps_later_equals_signs(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, NULL, ARGS("--jwt-secret=a=b=="));
    assert_string_equal(cfg.jwt_secret, "a=b==");
    config_free(&cfg);
}

static void test_repeated_flag_last_wins(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--port", "1000", "--port=2000"));
    assert_int_equal(cfg.port, 2000);
    config_free(&cfg);
}

static void test_string_points_into_argv(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, NULL, ARGS("--jwt-secret", "abc", "--api-key=key"));
    assert_ptr_equal(cfg.jwt_secret, argv_store[2]);
    assert_ptr_equal(cfg.api_key, argv_store[3] + strlen("--api-key="));
    config_free(&cfg);
}

static void test_empty_string_value_is_null(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "JWT_ISSUER", "iss", "API_KEY", "k"),
             ARGS("--jwt-issuer=", "--api-key="));
    assert_null(cfg.jwt_issuer);
    assert_null(cfg.api_key); /* an empty key must not switch the backend API on */
    config_free(&cfg);
}

static void test_numeric_range_edges_accepted(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV,
             ARGS("--port=65535", "--history-size=0", "--typing-interval=0", "--drain-seconds=0",
                  "--sndbuf=0", "--rate=100000", "--abuse-limit=0", "--jwt-leeway=3600",
                  "--history-ttl=315360000", "--max-connections=10000000"));
    assert_int_equal(cfg.port, 65535);
    assert_int_equal(cfg.history_size, 0);
    assert_int_equal(cfg.typing_interval_ms, 0);
    assert_int_equal(cfg.drain_s, 0);
    assert_int_equal(cfg.sndbuf, 0);
    assert_true(cfg.rate_per_s == 100000.0);
    assert_int_equal(cfg.abuse_limit, 0);
    assert_int_equal(cfg.jwt_leeway_s, 3600);
    assert_int_equal(cfg.history_ttl_s, 315360000);
    assert_int_equal(cfg.max_connections, 10000000);
    config_free(&cfg);
    parse_ok(&cfg, SECRET_ENV,
             ARGS("--port=1", "--rate=0.001", "--frame-limit=256", "--text-limit=1"));
    assert_int_equal(cfg.port, 1);
    assert_true(cfg.rate_per_s == 0.001);
    assert_int_equal(cfg.frame_limit, 256);
    config_free(&cfg);
}

/* ---------------------------------------------------------------------------------------- */
/* Error classes: each names the flag and its environment variable                            */
/* ---------------------------------------------------------------------------------------- */

static void test_error_unknown_flag_names_it_without_value(void **state)
{
    (void)state;
    const char *err = parse_error(SECRET_ENV, ARGS("--jwt-secrt=hunter2"));
    assert_non_null(strstr(err, "--jwt-secrt"));
    assert_null(strstr(err, "hunter2"));
    err = parse_error(SECRET_ENV, ARGS("-p", "1"));
    assert_non_null(strstr(err, "-p"));
}

static void test_error_missing_value(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--port")),
                        "--port (GATEWAY_PORT): missing value");
    /* The next flag is not taken as the value. */
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--jwt-issuer", "--port", "1")),
                        "--jwt-issuer (JWT_ISSUER): missing value");
}

static void test_error_non_numeric(void **state)
{
    (void)state;
    const char *err = parse_error(SECRET_ENV, ARGS("--port", "abc"));
    assert_prefix(err, "--port (GATEWAY_PORT): ");
    assert_non_null(strstr(err, "'abc'"));
    assert_prefix(parse_error(SECRET_ENV, ARGS("--port=")), "--port (GATEWAY_PORT): '' is not");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--heartbeat", "1.5")), "--heartbeat (HEARTBEAT): ");
}

static void test_error_trailing_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {"12x", "12 ", " 12", "+12", "1e3", "0x10", "12k"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = parse_error(SECRET_ENV, ARGS("--max-rooms", bad[i]));
        assert_prefix(err, "--max-rooms (MAX_ROOMS): '");
        assert_non_null(strstr(err, "is not an integer"));
    }
}

static void test_error_out_of_range(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--port", "70000")),
                        "--port (GATEWAY_PORT): 70000 is out of range 1..65535");
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--port=0")),
                        "--port (GATEWAY_PORT): 0 is out of range 1..65535");
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--port=-1")),
                        "--port (GATEWAY_PORT): -1 is out of range 1..65535");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--port=99999999999999999999999")),
                  "--port (GATEWAY_PORT): 99999999999999999999999 is out of range");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--heartbeat=3601")),
                  "--heartbeat (HEARTBEAT): 3601 is out of range 1..3600");
}

static void test_error_from_env_names_flag_and_env(void **state)
{
    (void)state;
    assert_string_equal(parse_error(ENV("JWT_SECRET", "s", "GATEWAY_PORT", "70000"), NO_ARGS),
                        "--port (GATEWAY_PORT): 70000 is out of range 1..65535");
    assert_prefix(parse_error(ENV("JWT_SECRET", "s", "MAX_ROOMS", "12x"), NO_ARGS),
                  "--max-rooms (MAX_ROOMS): '12x'");
}

static void test_error_positional_argument(void **state)
{
    (void)state;
    const char *err = parse_error(SECRET_ENV, ARGS("--port", "1", "extra"));
    assert_non_null(strstr(err, "'extra'"));
}

static void test_error_double_values(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--rate=0")),
                        "--rate (RATE_LIMIT): 0 is out of range >0..100000");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--rate=100001")), "--rate (RATE_LIMIT): 100001 is");
    static const char *const bad[] = {"abc", "nan", "inf", "0x10", "1.5x", "", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = parse_error(SECRET_ENV, ARGS("--rate", bad[i]));
        assert_prefix(err, "--rate (RATE_LIMIT): '");
    }
    assert_prefix(parse_error(SECRET_ENV, ARGS("--rate=1e999")),
                  "--rate (RATE_LIMIT): 1e999 is out");
}

static void test_error_message_is_one_line(void **state)
{
    (void)state;
    const char *err = parse_error(SECRET_ENV, ARGS("--port=1\n2"));
    assert_null(strchr(err, '\n'));
    assert_prefix(err, "--port (GATEWAY_PORT): '1?2'");
}

static void test_error_long_value_is_cut(void **state)
{
    (void)state;
    char value[300];
    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    const char *err = parse_error(SECRET_ENV, ARGS("--port", value));
    assert_non_null(strstr(err, "..."));
    assert_true(strlen(err) < 120);
}

static void test_error_fits_small_buffer(void **state)
{
    (void)state;
    struct gateway_config cfg;
    char err[8];
    assert_int_equal(parse(&cfg, err, sizeof(err), SECRET_ENV, ARGS("--port=70000")), CONFIG_ERROR);
    assert_string_equal(err, "--port ");
    config_free(&cfg);
    assert_int_equal(parse(&cfg, NULL, 0, SECRET_ENV, ARGS("--port=70000")), CONFIG_ERROR);
    config_free(&cfg);
}

/* ---------------------------------------------------------------------------------------- */
/* Cross-field validation and enums                                                           */
/* ---------------------------------------------------------------------------------------- */

static void test_hs256_requires_secret(void **state)
{
    (void)state;
    assert_string_equal(parse_error(NULL, NO_ARGS),
                        "--jwt-secret (JWT_SECRET): required for HS256");
    assert_string_equal(parse_error(NULL, ARGS("--jwt-secret=")),
                        "--jwt-secret (JWT_SECRET): required for HS256");
}

static void test_rs256_and_es256_require_public_key(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--jwt-alg", "RS256")),
                        "--jwt-public-key (JWT_PUBLIC_KEY): required for RS256");
    assert_string_equal(parse_error(ENV("JWT_ALG", "ES256"), NO_ARGS),
                        "--jwt-public-key (JWT_PUBLIC_KEY): required for ES256");
}

static void test_rs256_needs_no_secret(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, NULL, ARGS("--jwt-alg=RS256", "--jwt-public-key", "/etc/key.pem"));
    assert_int_equal(cfg.jwt_alg, CONFIG_ALG_RS256);
    assert_string_equal(cfg.jwt_public_key, "/etc/key.pem");
    assert_null(cfg.jwt_secret);
    config_free(&cfg);
}

static void test_jwt_alg_is_case_insensitive(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_ALG", "es256", "JWT_PUBLIC_KEY", "k.pem"), NO_ARGS);
    assert_int_equal(cfg.jwt_alg, CONFIG_ALG_ES256);
    config_free(&cfg);
    parse_ok(&cfg, SECRET_ENV, ARGS("--jwt-alg=Hs256"));
    assert_int_equal(cfg.jwt_alg, CONFIG_ALG_HS256);
    config_free(&cfg);
}

static void test_error_unknown_jwt_alg(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--jwt-alg", "HS512")),
                        "--jwt-alg (JWT_ALG): 'HS512' is not one of HS256|RS256|ES256");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--jwt-alg=none")), "--jwt-alg (JWT_ALG): 'none'");
}

static void test_text_limit_must_fit_frame_limit(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--frame-limit=1k", "--text-limit=2k")),
                        "--text-limit (TEXT_LIMIT): 2KiB exceeds --frame-limit (FRAME_LIMIT) 1KiB");
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--frame-limit=1k", "--text-limit=1024"));
    assert_int_equal(cfg.text_limit, cfg.frame_limit);
    config_free(&cfg);
}

static void test_log_format_and_level(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "LOG_FORMAT", "JSON", "LOG_LEVEL", "warn"), NO_ARGS);
    assert_int_equal(cfg.log_format, CONFIG_LOG_JSON);
    assert_int_equal(cfg.log_level, CONFIG_LOG_WARN);
    config_free(&cfg);
    parse_ok(&cfg, SECRET_ENV, ARGS("--log-format=kv", "--log-level", "ERROR"));
    assert_int_equal(cfg.log_format, CONFIG_LOG_KV);
    assert_int_equal(cfg.log_level, CONFIG_LOG_ERROR);
    config_free(&cfg);
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--log-format=xml")),
                        "--log-format (LOG_FORMAT): 'xml' is not one of kv|json");
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--log-level=verbose")),
                        "--log-level (LOG_LEVEL): 'verbose' is not one of debug|info|warn|error");
}

static void test_dev_tokens_need_hs256(void **state)
{
    (void)state;
    assert_prefix(parse_error(NULL, ARGS("--jwt-alg=RS256", "--jwt-public-key=k", "--dev-tokens")),
                  "--dev-tokens (DEV_TOKENS): needs --jwt-alg HS256");
}

static void test_webhook_options(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, NO_ARGS);
    assert_null(cfg.webhook_url);
    assert_int_equal(cfg.webhook_events, CONFIG_WEBHOOK_USER_ONLINE | CONFIG_WEBHOOK_USER_OFFLINE |
                                             CONFIG_WEBHOOK_DIRECT_UNDELIVERED);
    assert_int_equal(cfg.webhook_timeout_s, 5);
    assert_int_equal(cfg.webhook_retention_s, 3600);
    config_free(&cfg);
    parse_ok(&cfg, SECRET_ENV,
             ARGS("--webhook-url=HTTPS://h:8443/x", "--webhook-secret=k",
                  "--webhook-events= direct.undelivered ,user.offline"));
    assert_int_equal(cfg.webhook_events,
                     CONFIG_WEBHOOK_USER_OFFLINE | CONFIG_WEBHOOK_DIRECT_UNDELIVERED);
    config_free(&cfg);
    assert_prefix(parse_error(SECRET_ENV, ARGS("--webhook-url=http://h")),
                  "--webhook-secret (WEBHOOK_SECRET): required with --webhook-url");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--webhook-url=ftp://h", "--webhook-secret=k")),
                  "--webhook-url (WEBHOOK_URL): must be");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--webhook-url=http:///x", "--webhook-secret=k")),
                  "--webhook-url (WEBHOOK_URL): must be");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--webhook-events=user.online,nope")),
                  "--webhook-events (WEBHOOK_EVENTS): 'nope' is not one of");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--webhook-events=,")),
                  "--webhook-events (WEBHOOK_EVENTS): names no event");
}

static void test_config_alg_name(void **state)
{
    (void)state;
    assert_string_equal(config_alg_name(CONFIG_ALG_HS256), "HS256");
    assert_string_equal(config_alg_name(CONFIG_ALG_RS256), "RS256");
    assert_string_equal(config_alg_name(CONFIG_ALG_ES256), "ES256");
    assert_string_equal(config_alg_name((enum config_alg)42), "unknown");
}

/* ---------------------------------------------------------------------------------------- */
/* Text fields: node id, bind, prefix                                                         */
/* ---------------------------------------------------------------------------------------- */

static void test_node_id_valid(void **state)
{
    (void)state;
    char longest[64];
    memset(longest, 'n', 63);
    longest[63] = '\0';
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--node-id", "gw-1.eu_west:a"));
    assert_string_equal(cfg.node_id, "gw-1.eu_west:a");
    config_free(&cfg);
    parse_ok(&cfg, SECRET_ENV, ARGS("--node-id", longest));
    assert_string_equal(cfg.node_id, longest);
    config_free(&cfg);
}

static void test_node_id_invalid(void **state)
{
    (void)state;
    char too_long[65];
    memset(too_long, 'n', 64);
    too_long[64] = '\0';
    static const char *const bad[] = {"gw 1", "gw/1", "gw,1", "gw\"1", "n\xc3\xa9", "gw*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_prefix(parse_error(SECRET_ENV, ARGS("--node-id", bad[i])), "--node-id (NODE_ID): '");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--node-id", too_long)), "--node-id (NODE_ID): '");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--node-id=")), "--node-id (NODE_ID): ''");
}

static void test_bind_and_prefix_bounds(void **state)
{
    (void)state;
    assert_prefix(parse_error(SECRET_ENV, ARGS("--bind", "a b")), "--bind (GATEWAY_BIND): ");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--redis-prefix=")),
                  "--redis-prefix (REDIS_PREFIX): ");
    assert_prefix(
        parse_error(SECRET_ENV, ARGS("--redis-prefix", "0123456789012345678901234567890X")),
        "--redis-prefix (REDIS_PREFIX): ");
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--redis-prefix", "{chat}", "--bind", "0.0.0.0"));
    assert_string_equal(cfg.redis_prefix, "{chat}");
    assert_string_equal(cfg.bind, "0.0.0.0");
    config_free(&cfg);
}

/* ---------------------------------------------------------------------------------------- */
/* Redis URLs                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void test_redis_url_host_port_db(void **state)
{
    (void)state;
    struct redis_endpoint ep;
    assert_int_equal(config_parse_redis_url("redis://10.0.0.1:6380/2", &ep), 0);
    assert_string_equal(ep.host, "10.0.0.1");
    assert_int_equal(ep.port, 6380);
    assert_int_equal(ep.db, 2);
}

static void test_redis_url_defaults_port_and_db(void **state)
{
    (void)state;
    struct redis_endpoint ep;
    assert_int_equal(config_parse_redis_url("redis://cache.internal", &ep), 0);
    assert_string_equal(ep.host, "cache.internal");
    assert_int_equal(ep.port, 6379);
    assert_int_equal(ep.db, 0);
    assert_int_equal(config_parse_redis_url("redis://h:7000", &ep), 0);
    assert_int_equal(ep.port, 7000);
    assert_int_equal(ep.db, 0);
    assert_int_equal(config_parse_redis_url("redis://h/15", &ep), 0);
    assert_int_equal(ep.port, 6379);
    assert_int_equal(ep.db, 15);
}

static void test_redis_url_trailing_slash_is_db_zero(void **state)
{
    (void)state;
    struct redis_endpoint ep = {.db = 9};
    assert_int_equal(config_parse_redis_url("redis://h:1/", &ep), 0);
    assert_int_equal(ep.db, 0);
}

static void test_redis_url_ipv6_in_brackets(void **state)
{
    (void)state;
    struct redis_endpoint ep;
    assert_int_equal(config_parse_redis_url("redis://[::1]:6390/1", &ep), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(ep.port, 6390);
    assert_int_equal(ep.db, 1);
    assert_int_equal(config_parse_redis_url("redis://[fe80::1:2]", &ep), 0);
    assert_string_equal(ep.host, "fe80::1:2");
    assert_int_equal(ep.port, 6379);
}

static void test_redis_url_scheme_is_case_insensitive(void **state)
{
    (void)state;
    struct redis_endpoint ep;
    assert_int_equal(config_parse_redis_url("REDIS://H:1", &ep), 0);
    assert_string_equal(ep.host, "H");
}

/* issue 13: Redis Cluster seeds and Sentinels as one URL each. */
static void test_redis_cluster_and_sentinel_urls(void **state)
{
    (void)state;
    struct gateway_config cfg;
    const char *noenv[] = {NULL};
    parse_ok(&cfg, noenv,
             (const char *[]){"--jwt-secret", "s", "--redis",
                              "redis+cluster://127.0.0.1:7000,127.0.0.1:7001", NULL});
    assert_int_equal(cfg.redis_mode, CONFIG_REDIS_CLUSTER);
    assert_int_equal(cfg.redis_count, 2);
    assert_int_equal(cfg.redis[1].port, 7001);
    config_free(&cfg);
    parse_ok(&cfg, noenv,
             (const char *[]){"--jwt-secret", "s", "--redis",
                              "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster/2", NULL});
    assert_int_equal(cfg.redis_mode, CONFIG_REDIS_SENTINEL);
    assert_int_equal(cfg.redis_count, 2);
    assert_string_equal(cfg.redis[0].host, "10.0.0.1");
    assert_int_equal(cfg.redis[1].port, 26380);
    assert_string_equal(cfg.sentinel_master, "mymaster");
    assert_int_equal(cfg.sentinel_db, 2);
    config_free(&cfg);
    parse_ok(&cfg, noenv, (const char *[]){"--jwt-secret", "s", NULL});
    assert_int_equal(cfg.redis_mode, CONFIG_REDIS_PLAIN);
    config_free(&cfg);
    assert_prefix(parse_error(noenv, (const char *[]){"--jwt-secret", "s", "--redis",
                                                      "redis+sentinel://h:1", NULL}),
                  "--redis (REDIS_URL): redis+sentinel:// needs /<master name>");
    assert_prefix(parse_error(noenv, (const char *[]){"--jwt-secret", "s", "--redis",
                                                      "redis+sentinel://h:1/m/99", NULL}),
                  "--redis (REDIS_URL): database after");
    assert_prefix(parse_error(noenv, (const char *[]){"--jwt-secret", "s", "--redis",
                                                      "redis+cluster://h:1/3", NULL}),
                  "--redis (REDIS_URL): Redis Cluster has only database 0");
    assert_prefix(parse_error(noenv, (const char *[]){"--jwt-secret", "s", "--redis",
                                                      "redis+cluster://", NULL}),
                  "--redis (REDIS_URL): at least one");
}

static void test_redis_url_rejects_bad(void **state)
{
    (void)state;
    char long_host[300] = "redis://";
    memset(long_host + 8, 'h', 256);
    long_host[8 + 256] = '\0';
    static const char *const bad[] = {
        "",
        "http://h:1",
        "rediss://h",
        "h:6379",
        "redis:/h",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:",
        "redis://h:abc",
        "redis://h:-1",
        "redis://h/16",
        "redis://h/-1",
        "redis://h/x",
        "redis://h:1/2/3",
        "redis://u:pw@h",
        "redis://[::1",
        "redis://[]:1",
        "redis://[::1]x",
        "redis://[hostname]",
        "redis://h h",
        "redis://::1:6379",
        "redis://h?db=1",
        "redis://h:1 ",
        " redis://h",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct redis_endpoint ep = {.host = "untouched", .port = -7, .db = -7};
        if (config_parse_redis_url(bad[i], &ep) == 0)
            fail_msg("accepted bad URL '%s'", bad[i]);
        assert_string_equal(ep.host, "untouched");
        assert_int_equal(ep.port, -7);
    }
    struct redis_endpoint ep;
    assert_int_not_equal(config_parse_redis_url(long_host, &ep), 0);
    assert_int_not_equal(config_parse_redis_url(NULL, &ep), 0);
}

static void test_redis_list_flag(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--redis", " redis://a:1, redis://b:2/3 ,,redis://[::1],"));
    assert_int_equal(cfg.redis_count, 3);
    assert_string_equal(cfg.redis[0].host, "a");
    assert_int_equal(cfg.redis[0].port, 1);
    assert_string_equal(cfg.redis[1].host, "b");
    assert_int_equal(cfg.redis[1].db, 3);
    assert_string_equal(cfg.redis[2].host, "::1");
    assert_int_equal(cfg.redis[2].port, 6379);
    config_free(&cfg);
}

static void test_redis_list_from_env_replaced_by_flag(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "REDIS_URL", "redis://e1,redis://e2,redis://e3"),
             ARGS("--redis=redis://f1:7000"));
    assert_int_equal(cfg.redis_count, 1);
    assert_string_equal(cfg.redis[0].host, "f1");
    assert_string_equal(cfg.redis[1].host, ""); /* no stale env entry left behind */
    config_free(&cfg);
}

static void test_redis_list_maximum(void **state)
{
    (void)state;
    char list[1024] = "";
    for (int i = 0; i < CONFIG_MAX_REDIS; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%sredis://h%d", i ? "," : "",
                 i);
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--redis", list));
    assert_int_equal(cfg.redis_count, CONFIG_MAX_REDIS);
    assert_string_equal(cfg.redis[CONFIG_MAX_REDIS - 1].host, "h15");
    config_free(&cfg);
    strcat(list, ",redis://one-too-many");
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--redis", list)),
                        "--redis (REDIS_URL): more than 16 URLs");
}

static void test_redis_list_error_names_flag_and_entry(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--redis", "redis://a,redis://h:0")),
                        "--redis (REDIS_URL): 'redis://h:0': port must be 1..65535");
    assert_string_equal(parse_error(ENV("JWT_SECRET", "s", "REDIS_URL", "redis://h/16"), NO_ARGS),
                        "--redis (REDIS_URL): 'redis://h/16': db must be 0..15");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--redis=http://h")),
                  "--redis (REDIS_URL): 'http://h': only the redis:// scheme");
}

static void test_redis_list_error_hides_credentials(void **state)
{
    (void)state;
    const char *err = parse_error(SECRET_ENV, ARGS("--redis", "redis://:hunter2@h:6379"));
    assert_prefix(err, "--redis (REDIS_URL): ");
    assert_null(strstr(err, "hunter2"));
}

static void test_redis_list_empty_is_error(void **state)
{
    (void)state;
    assert_prefix(parse_error(SECRET_ENV, ARGS("--redis= , ,")),
                  "--redis (REDIS_URL): at least one");
}

/* ---------------------------------------------------------------------------------------- */
/* Allowed origins                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void test_origins_trimmed_and_empty_entries_ignored(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV,
             ARGS("--allowed-origins", " https://a.example , ,\thttps://b.example:8443/ ,"));
    assert_int_equal(cfg.allowed_origin_count, 2);
    assert_string_equal(cfg.allowed_origins[0], "https://a.example");
    assert_string_equal(cfg.allowed_origins[1], "https://b.example:8443");
    assert_null(cfg.allowed_origins[2]);
    /* The entries are owned copies in the arena, not pointers into argv. */
    assert_non_null(cfg.arena);
    assert_true(cfg.allowed_origins[0] >= cfg.arena);
    config_free(&cfg);
    assert_null(cfg.arena);
    assert_int_equal(cfg.allowed_origin_count, 0);
}

static void test_origins_default_allows_all(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, NO_ARGS);
    assert_int_equal(cfg.allowed_origin_count, 0);
    config_free(&cfg);
}

static void test_origins_flag_replaces_env_list(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "ALLOWED_ORIGINS", "https://x,https://y,https://z"),
             ARGS("--allowed-origins=https://only"));
    assert_int_equal(cfg.allowed_origin_count, 1);
    assert_string_equal(cfg.allowed_origins[0], "https://only");
    assert_null(cfg.allowed_origins[1]);
    config_free(&cfg);
}

static void test_origins_empty_flag_clears_env_list(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "ALLOWED_ORIGINS", "https://x"),
             ARGS("--allowed-origins="));
    assert_int_equal(cfg.allowed_origin_count, 0);
    assert_null(cfg.arena);
    config_free(&cfg);
}

static void test_origins_too_many(void **state)
{
    (void)state;
    char list[2048] = "";
    for (int i = 0; i <= CONFIG_MAX_ORIGINS; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%shttps://o%d", i ? "," : "",
                 i);
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--allowed-origins", list)),
                        "--allowed-origins (ALLOWED_ORIGINS): more than 32 origins");
}

/* ---------------------------------------------------------------------------------------- */
/* Sizes                                                                                      */
/* ---------------------------------------------------------------------------------------- */

static void test_size_plain_bytes(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--frame-limit", "300", "--text-limit=300"));
    assert_int_equal(cfg.frame_limit, 300);
    assert_int_equal(cfg.text_limit, 300);
    config_free(&cfg);
}

static void test_size_suffixes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t bytes;
    } cases[] = {
        {"64k", 65536},    {"64K", 65536},   {"64KiB", 65536}, {"2m", 2097152},    {"2M", 2097152},
        {"2MiB", 2097152}, {"1g", 1u << 30}, {"1G", 1u << 30}, {"1GiB", 1u << 30}, {"1024", 1024},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gateway_config cfg;
        parse_ok(&cfg, SECRET_ENV, ARGS("--outq-cap", cases[i].text));
        assert_int_equal(cfg.outq_cap, cases[i].bytes);
        config_free(&cfg);
    }
}

static void test_size_suffix_on_int_byte_fields(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "SNDBUF", "128k"), ARGS("--max-header-bytes=16KiB"));
    assert_int_equal(cfg.sndbuf, 131072);
    assert_int_equal(cfg.max_header_bytes, 16384);
    config_free(&cfg);
}

static void test_size_bad_suffix(void **state)
{
    (void)state;
    static const char *const bad[] = {"64kb", "64KB", "64 k", "1.5M", "k", "64Ki", "64kiB", "-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = parse_error(SECRET_ENV, ARGS("--outq-cap", bad[i]));
        assert_prefix(err, "--outq-cap (OUTQ_CAP): '");
        assert_non_null(strstr(err, "is not a byte count"));
    }
}

static void test_size_out_of_range(void **state)
{
    (void)state;
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--frame-limit", "128")),
                        "--frame-limit (FRAME_LIMIT): 128 is out of range 256..16MiB");
    assert_string_equal(parse_error(SECRET_ENV, ARGS("--outq-cap=2G")),
                        "--outq-cap (OUTQ_CAP): 2G is out of range 1KiB..1GiB");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--outq-cap=99999999999999G")),
                  "--outq-cap (OUTQ_CAP): 99999999999999G is out of range");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--outq-cap=-1k")),
                  "--outq-cap (OUTQ_CAP): -1k is out of range");
}

/* ---------------------------------------------------------------------------------------- */
/* Booleans                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void test_bool_flag_alone_is_true(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "DEV_TOKENS", "false"), ARGS("--dev-tokens"));
    assert_true(cfg.dev_tokens);
    config_free(&cfg);
}

static void test_bool_flag_values(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "1", "yes", "on", "TRUE", "Yes", "ON"};
    static const char *const no[] = {"false", "0", "no", "off", "FALSE", "No", "Off"};
    char arg[64];
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        struct gateway_config cfg;
        snprintf(arg, sizeof(arg), "--dev-tokens=%s", yes[i]);
        parse_ok(&cfg, SECRET_ENV, ARGS(arg));
        assert_true(cfg.dev_tokens);
        config_free(&cfg);
        snprintf(arg, sizeof(arg), "--jwt-require-exp=%s", no[i]);
        parse_ok(&cfg, SECRET_ENV, ARGS(arg));
        assert_false(cfg.jwt_require_exp);
        config_free(&cfg);
    }
}

static void test_bool_env_values(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "JWT_REQUIRE_EXP", "off", "DEV_TOKENS", "1"), NO_ARGS);
    assert_false(cfg.jwt_require_exp);
    assert_true(cfg.dev_tokens);
    config_free(&cfg);
    parse_ok(&cfg, ENV("JWT_SECRET", "s", "JWT_REQUIRE_EXP", "YES", "DEV_TOKENS", "no"), NO_ARGS);
    assert_true(cfg.jwt_require_exp);
    assert_false(cfg.dev_tokens);
    config_free(&cfg);
}

static void test_bool_bad_value(void **state)
{
    (void)state;
    assert_prefix(parse_error(SECRET_ENV, ARGS("--dev-tokens=maybe")),
                  "--dev-tokens (DEV_TOKENS): 'maybe' is not a boolean");
    assert_prefix(parse_error(ENV("JWT_SECRET", "s", "JWT_REQUIRE_EXP", "2"), NO_ARGS),
                  "--jwt-require-exp (JWT_REQUIRE_EXP): '2' is not a boolean");
    assert_prefix(parse_error(SECRET_ENV, ARGS("--dev-tokens=")),
                  "--dev-tokens (DEV_TOKENS): '' is not a boolean");
}

static void test_bool_flag_does_not_take_next_argument(void **state)
{
    (void)state;
    /* "--flag false" would be ambiguous with positional arguments; only "=false" sets false. */
    assert_non_null(strstr(parse_error(SECRET_ENV, ARGS("--dev-tokens", "false")), "'false'"));
}

/* ---------------------------------------------------------------------------------------- */
/* Help                                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Every option of config.h: flag, env and the default as --help shows it. */
static const struct {
    const char *flag, *env, *def;
} expected_options[] = {
    {"--port", "GATEWAY_PORT", "9001"},
    {"--bind", "GATEWAY_BIND", "all"},
    {"--node-id", "NODE_ID", "hostname-pid"},
    {"--redis", "REDIS_URL", "redis://127.0.0.1:6379/0"},
    {"--redis-wait", "REDIS_WAIT", "0"},
    {"--redis-wait-timeout", "REDIS_WAIT_TIMEOUT", "500"},
    {"--redis-prefix", "REDIS_PREFIX", "chat"},
    {"--jwt-alg", "JWT_ALG", "HS256"},
    {"--jwt-secret", "JWT_SECRET", "none"},
    {"--jwt-public-key", "JWT_PUBLIC_KEY", "none"},
    {"--jwt-issuer", "JWT_ISSUER", "unchecked"},
    {"--jwt-audience", "JWT_AUDIENCE", "unchecked"},
    {"--jwt-require-exp", "JWT_REQUIRE_EXP", "true"},
    {"--jwt-leeway", "JWT_LEEWAY", "0"},
    {"--allowed-origins", "ALLOWED_ORIGINS", "all"},
    {"--api-key", "API_KEY", "off"},
    {"--dev-tokens", "DEV_TOKENS", "false"},
    {"--frame-limit", "FRAME_LIMIT", "64KiB"},
    {"--text-limit", "TEXT_LIMIT", "4096"},
    {"--rate", "RATE_LIMIT", "20"},
    {"--rate-burst", "RATE_BURST", "40"},
    {"--request-rate", "REQUEST_RATE", "10"},
    {"--request-burst", "REQUEST_BURST", "20"},
    {"--join-rate", "JOIN_RATE", "20"},
    {"--join-burst", "JOIN_BURST", "200"},
    {"--abuse-limit", "ABUSE_LIMIT", "100"},
    {"--abuse-window", "ABUSE_WINDOW", "10"},
    {"--max-rooms", "MAX_ROOMS", "100"},
    {"--outq-cap", "OUTQ_CAP", "1MiB"},
    {"--history-size", "HISTORY_SIZE", "1000"},
    {"--history-ttl", "HISTORY_TTL", "86400"},
    {"--history-page", "HISTORY_PAGE", "256KiB"},
    {"--message-timeout", "MESSAGE_TIMEOUT", "10"},
    {"--typing-interval", "TYPING_INTERVAL", "2000"},
    {"--heartbeat", "HEARTBEAT", "25"},
    {"--drain-seconds", "DRAIN_SECONDS", "10"},
    {"--handshake-timeout", "HANDSHAKE_TIMEOUT", "10"},
    {"--max-header-bytes", "MAX_HEADER_BYTES", "8KiB"},
    {"--max-connections", "MAX_CONNECTIONS", "100000"},
    {"--sndbuf", "SNDBUF", "64KiB"},
    {"--webhook-url", "WEBHOOK_URL", "off"},
    {"--webhook-secret", "WEBHOOK_SECRET", "none"},
    {"--webhook-events", "WEBHOOK_EVENTS", "all"},
    {"--webhook-timeout", "WEBHOOK_TIMEOUT", "5"},
    {"--webhook-retention", "WEBHOOK_RETENTION", "3600"},
    {"--log-format", "LOG_FORMAT", "kv"},
    {"--log-level", "LOG_LEVEL", "info"},
};
#define EXPECTED_COUNT (sizeof(expected_options) / sizeof(expected_options[0]))

/* Copies the help line that documents flag (begins "  --flag" + space or '[') into line. */
static bool help_line_for(const char *flag, char *line, size_t len)
{
    const char *help = config_help_text();
    for (const char *p = help; *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        size_t fl = strlen(flag);
        if (n > fl + 2 && strncmp(p, "  ", 2) == 0 && strncmp(p + 2, flag, fl) == 0 &&
            (p[2 + fl] == ' ' || p[2 + fl] == '[')) {
            snprintf(line, len, "%.*s", (int)n, p);
            return true;
        }
        p = eol ? eol + 1 : p + n;
    }
    return false;
}

static void test_help_flag_returns_help(void **state)
{
    (void)state;
    struct gateway_config cfg;
    char err[128];
    /* No secret and a broken environment: --help must still work. */
    assert_int_equal(parse(&cfg, err, sizeof(err), ENV("GATEWAY_PORT", "x"), ARGS("--help")),
                     CONFIG_HELP);
    config_free(&cfg);
    assert_int_equal(parse(&cfg, err, sizeof(err), NULL, ARGS("--port=1", "-h")), CONFIG_HELP);
    config_free(&cfg);
}

static void test_help_text_starts_with_usage(void **state)
{
    (void)state;
    assert_prefix(config_help_text(), "Usage: chat-gateway [options]\n");
    assert_ptr_equal(config_help_text(), config_help_text());
}

static void test_help_text_lists_every_flag_with_env_and_default(void **state)
{
    (void)state;
    char line[256];
    for (size_t i = 0; i < EXPECTED_COUNT; i++) {
        if (!help_line_for(expected_options[i].flag, line, sizeof(line)))
            fail_msg("--help has no line for %s", expected_options[i].flag);
        if (!strstr(line, expected_options[i].env) || !strstr(line, expected_options[i].def))
            fail_msg("help line for %s lacks %s or default %s: %s", expected_options[i].flag,
                     expected_options[i].env, expected_options[i].def, line);
    }
    assert_true(help_line_for("-h, --help", line, sizeof(line)));
}

static void test_help_text_has_no_unexpected_flag(void **state)
{
    (void)state;
    /* The other direction: every option line of --help is one the header documents. */
    size_t lines = 0;
    const char *help = config_help_text();
    for (const char *p = strstr(help, "\n  --"); p; p = strstr(p + 1, "\n  --")) {
        size_t n = strcspn(p + 3, " [\n");
        bool known = false;
        for (size_t i = 0; i < EXPECTED_COUNT && !known; i++)
            known = strlen(expected_options[i].flag) == n &&
                    strncmp(expected_options[i].flag, p + 3, n) == 0;
        if (!known)
            fail_msg("unexpected flag in --help: %.*s", (int)n, p + 3);
        lines++;
    }
    assert_int_equal(lines, EXPECTED_COUNT);
}

static void test_help_text_documents_value_syntax(void **state)
{
    (void)state;
    const char *help = config_help_text();
    assert_non_null(strstr(help, "KiB"));
    assert_non_null(strstr(help, "MiB"));
    assert_non_null(strstr(help, "1024-based"));
    assert_non_null(strstr(help, "--flag=VALUE"));
    assert_non_null(strstr(help, "yes/no"));
    assert_non_null(strstr(help, "(1..65535)")); /* ranges come from the same table */
}

/* ---------------------------------------------------------------------------------------- */
/* config_free                                                                                */
/* ---------------------------------------------------------------------------------------- */

static void test_free_zeroed_struct(void **state)
{
    (void)state;
    struct gateway_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    config_free(&cfg);
    config_free(NULL);
    assert_null(cfg.arena);
}

static void test_free_after_error_releases_everything(void **state)
{
    (void)state;
    struct gateway_config cfg;
    char err[128];
    /* The origin list is allocated before the bad port is seen. */
    assert_int_equal(parse(&cfg, err, sizeof(err), SECRET_ENV,
                           ARGS("--allowed-origins=https://a,https://b", "--port=x")),
                     CONFIG_ERROR);
    assert_null(cfg.arena);
    assert_int_equal(cfg.allowed_origin_count, 0);
    config_free(&cfg);
    /* Same when the error comes from validation after the merge. */
    assert_int_equal(parse(&cfg, err, sizeof(err), NULL, ARGS("--allowed-origins=https://a")),
                     CONFIG_ERROR);
    assert_null(cfg.arena);
    config_free(&cfg);
}

static void test_free_twice_is_safe(void **state)
{
    (void)state;
    struct gateway_config cfg;
    parse_ok(&cfg, SECRET_ENV, ARGS("--allowed-origins=https://a"));
    config_free(&cfg);
    config_free(&cfg);
    assert_null(cfg.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_header),
        cmocka_unit_test(test_env_applies),
        cmocka_unit_test(test_empty_env_value_counts_as_unset),
        cmocka_unit_test(test_null_getenv_uses_defaults),
        cmocka_unit_test(test_flag_overrides_env),
        cmocka_unit_test(test_flag_with_separate_value),
        cmocka_unit_test(test_flag_with_equals_value),
        cmocka_unit_test(test_equals_value_keeps_later_equals_signs),
        cmocka_unit_test(test_repeated_flag_last_wins),
        cmocka_unit_test(test_string_points_into_argv),
        cmocka_unit_test(test_empty_string_value_is_null),
        cmocka_unit_test(test_numeric_range_edges_accepted),
        cmocka_unit_test(test_error_unknown_flag_names_it_without_value),
        cmocka_unit_test(test_error_missing_value),
        cmocka_unit_test(test_error_non_numeric),
        cmocka_unit_test(test_error_trailing_garbage),
        cmocka_unit_test(test_error_out_of_range),
        cmocka_unit_test(test_error_from_env_names_flag_and_env),
        cmocka_unit_test(test_error_positional_argument),
        cmocka_unit_test(test_error_double_values),
        cmocka_unit_test(test_error_message_is_one_line),
        cmocka_unit_test(test_error_long_value_is_cut),
        cmocka_unit_test(test_error_fits_small_buffer),
        cmocka_unit_test(test_hs256_requires_secret),
        cmocka_unit_test(test_rs256_and_es256_require_public_key),
        cmocka_unit_test(test_rs256_needs_no_secret),
        cmocka_unit_test(test_jwt_alg_is_case_insensitive),
        cmocka_unit_test(test_error_unknown_jwt_alg),
        cmocka_unit_test(test_text_limit_must_fit_frame_limit),
        cmocka_unit_test(test_log_format_and_level),
        cmocka_unit_test(test_dev_tokens_need_hs256),
        cmocka_unit_test(test_webhook_options),
        cmocka_unit_test(test_config_alg_name),
        cmocka_unit_test(test_node_id_valid),
        cmocka_unit_test(test_node_id_invalid),
        cmocka_unit_test(test_bind_and_prefix_bounds),
        cmocka_unit_test(test_redis_url_host_port_db),
        cmocka_unit_test(test_redis_url_defaults_port_and_db),
        cmocka_unit_test(test_redis_url_trailing_slash_is_db_zero),
        cmocka_unit_test(test_redis_url_ipv6_in_brackets),
        cmocka_unit_test(test_redis_url_scheme_is_case_insensitive),
        cmocka_unit_test(test_redis_cluster_and_sentinel_urls),
        cmocka_unit_test(test_redis_url_rejects_bad),
        cmocka_unit_test(test_redis_list_flag),
        cmocka_unit_test(test_redis_list_from_env_replaced_by_flag),
        cmocka_unit_test(test_redis_list_maximum),
        cmocka_unit_test(test_redis_list_error_names_flag_and_entry),
        cmocka_unit_test(test_redis_list_error_hides_credentials),
        cmocka_unit_test(test_redis_list_empty_is_error),
        cmocka_unit_test(test_origins_trimmed_and_empty_entries_ignored),
        cmocka_unit_test(test_origins_default_allows_all),
        cmocka_unit_test(test_origins_flag_replaces_env_list),
        cmocka_unit_test(test_origins_empty_flag_clears_env_list),
        cmocka_unit_test(test_origins_too_many),
        cmocka_unit_test(test_size_plain_bytes),
        cmocka_unit_test(test_size_suffixes),
        cmocka_unit_test(test_size_suffix_on_int_byte_fields),
        cmocka_unit_test(test_size_bad_suffix),
        cmocka_unit_test(test_size_out_of_range),
        cmocka_unit_test(test_bool_flag_alone_is_true),
        cmocka_unit_test(test_bool_flag_values),
        cmocka_unit_test(test_bool_env_values),
        cmocka_unit_test(test_bool_bad_value),
        cmocka_unit_test(test_bool_flag_does_not_take_next_argument),
        cmocka_unit_test(test_help_flag_returns_help),
        cmocka_unit_test(test_help_text_starts_with_usage),
        cmocka_unit_test(test_help_text_lists_every_flag_with_env_and_default),
        cmocka_unit_test(test_help_text_has_no_unexpected_flag),
        cmocka_unit_test(test_help_text_documents_value_syntax),
        cmocka_unit_test(test_free_zeroed_struct),
        cmocka_unit_test(test_free_after_error_releases_everything),
        cmocka_unit_test(test_free_twice_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
