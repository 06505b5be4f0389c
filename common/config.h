/*
 * config — the gateway's configuration: command-line flags with environment equivalents.
 *
 * Pure: no I/O. config_parse() reads argv and an injected getenv-like function (so tests
 * control the environment), fills a struct gateway_config with defaults first, then env, then
 * flags (flags win). Every limit of PROTOCOL.md §3-4 is a named, bounded field here. Invalid
 * input (unknown flag, non-numeric or out-of-range number, bad Redis URL, unknown algorithm,
 * HS256 without a secret, RS256/ES256 without a key file) makes config_parse() fail with one
 * line naming the flag; main prints it and exits 2, so the gateway never starts half-configured.
 * Reading the key file is main's job (I/O); config only checks a path was given.
 *
 * Strings in the struct point into argv/env storage or into a small arena owned by the struct
 * (config_free releases it).
 */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_REDIS 16
#define CONFIG_MAX_ORIGINS 32

enum config_redis_mode {
    CONFIG_REDIS_PLAIN,    /* one or more independent instances (rooms placed by hash) */
    CONFIG_REDIS_CLUSTER,  /* redis+cluster://: redis[] are seed nodes */
    CONFIG_REDIS_SENTINEL, /* redis+sentinel://: redis[] are Sentinels */
};
enum config_alg { CONFIG_ALG_HS256, CONFIG_ALG_RS256, CONFIG_ALG_ES256 };
enum config_log_format { CONFIG_LOG_KV, CONFIG_LOG_JSON };
enum config_log_level { CONFIG_LOG_DEBUG, CONFIG_LOG_INFO, CONFIG_LOG_WARN, CONFIG_LOG_ERROR };
/* --webhook-events bits, in the order of the names that option takes. */
enum config_webhook_event {
    CONFIG_WEBHOOK_USER_ONLINE = 1 << 0,
    CONFIG_WEBHOOK_USER_OFFLINE = 1 << 1,
    CONFIG_WEBHOOK_DIRECT_UNDELIVERED = 1 << 2,
};

struct redis_endpoint {
    char host[256];
    int port;
    int db;
};

struct gateway_config {
    /* listener */
    int port;               /* --port / GATEWAY_PORT, default 9001, 1..65535 */
    char bind[64];          /* --bind / GATEWAY_BIND, default "" = all interfaces */
    char node_id[64];       /* --node-id / NODE_ID, default "<hostname>-<pid>" (filled by caller
                               when empty: config leaves it "" unless given) */
    /* redis */
    struct redis_endpoint redis[CONFIG_MAX_REDIS]; /* --redis / REDIS_URL, comma list of
                                                      redis://host:port[/db] */
    int redis_count;        /* default one: 127.0.0.1:6379/0 */
    enum config_redis_mode redis_mode;
    char sentinel_master[64]; /* redis+sentinel://.../<name>: the master's name */
    int sentinel_db;          /* .../<name>/<db> */
    int redis_wait;           /* --redis-wait / REDIS_WAIT, 0: replicas to WAIT for per publish */
    int redis_wait_timeout_ms;/* --redis-wait-timeout / REDIS_WAIT_TIMEOUT, 500 */
    char redis_prefix[32];  /* --redis-prefix / REDIS_PREFIX, default "chat" */
    /* auth */
    enum config_alg jwt_alg;      /* --jwt-alg / JWT_ALG: HS256 (default), RS256, ES256 */
    const char *jwt_secret;       /* --jwt-secret / JWT_SECRET (required for HS256) */
    const char *jwt_public_key;   /* --jwt-public-key / JWT_PUBLIC_KEY path (RS256/ES256) */
    const char *jwt_issuer;       /* --jwt-issuer / JWT_ISSUER, NULL = not checked */
    const char *jwt_audience;     /* --jwt-audience / JWT_AUDIENCE, NULL = not checked */
    bool jwt_require_exp;         /* --jwt-require-exp / JWT_REQUIRE_EXP, default true */
    int jwt_leeway_s;             /* --jwt-leeway / JWT_LEEWAY, default 0, 0..3600 */
    char *allowed_origins[CONFIG_MAX_ORIGINS]; /* --allowed-origins / ALLOWED_ORIGINS comma
                                                  list; empty = all allowed */
    int allowed_origin_count;
    const char *api_key;          /* --api-key / API_KEY, NULL = backend API off (404) */
    bool dev_tokens;              /* --dev-tokens / DEV_TOKENS: dev-only token endpoint */
    /* limits (PROTOCOL.md §3) */
    size_t frame_limit;           /* --frame-limit / FRAME_LIMIT, 65536, 256..16 MiB */
    size_t text_limit;            /* --text-limit / TEXT_LIMIT, 4096, 1..frame_limit */
    double rate_per_s;            /* --rate / RATE_LIMIT, 20, >0..100000 */
    int rate_burst;               /* --rate-burst / RATE_BURST, 40, 1..1000000 */
    double request_rate_per_s;    /* --request-rate / REQUEST_RATE, 10: typing, presence, history,
                                     read, unread per second per connection */
    int request_burst;            /* --request-burst / REQUEST_BURST, 20 */
    double join_rate_per_s;       /* --join-rate / JOIN_RATE, 20 joins+leaves per second */
    int join_burst;               /* --join-burst / JOIN_BURST, 200 */
    int abuse_limit;              /* --abuse-limit / ABUSE_LIMIT, 100 rate_limited answers ... */
    int abuse_window_s;           /* --abuse-window / ABUSE_WINDOW, ... within 10 s → close 1008 */
    int max_rooms;                /* --max-rooms / MAX_ROOMS, 100 per connection, 1..100000 */
    size_t outq_cap;              /* --outq-cap / OUTQ_CAP bytes, 1 MiB, 1024..1 GiB */
    int history_size;             /* --history-size / HISTORY_SIZE, 1000, 0..1000000 */
    int history_ttl_s;            /* --history-ttl / HISTORY_TTL seconds, 86400, 1..(10 years) */
    size_t history_page_bytes;    /* --history-page / HISTORY_PAGE, 256 KiB of messages per
                                     history reply ("more":true beyond) */
    int message_timeout_s;        /* --message-timeout / MESSAGE_TIMEOUT, 10: a message whose
                                     first fragment arrived must be complete within this */
    int typing_interval_ms;       /* --typing-interval / TYPING_INTERVAL ms, 2000, 0..600000 */
    int heartbeat_s;              /* --heartbeat / HEARTBEAT seconds, 25, 1..3600 */
    int drain_s;                  /* --drain-seconds / DRAIN_SECONDS, 10, 0..3600 */
    int handshake_timeout_s;      /* --handshake-timeout / HANDSHAKE_TIMEOUT, 10, 1..600 */
    int max_header_bytes;         /* --max-header-bytes / MAX_HEADER_BYTES, 8192, 1024..65536 */
    int max_connections;          /* --max-connections / MAX_CONNECTIONS, 100000, 1..10000000 */
    int sndbuf;                   /* --sndbuf / SNDBUF bytes, 65536, 0 = kernel default */
    /* webhooks (PROTOCOL.md §9) */
    const char *webhook_url;      /* --webhook-url / WEBHOOK_URL, http(s)://..., NULL = off */
    const char *webhook_secret;   /* --webhook-secret / WEBHOOK_SECRET, required with a URL */
    unsigned webhook_events;      /* --webhook-events / WEBHOOK_EVENTS, CONFIG_WEBHOOK_* bits */
    int webhook_timeout_s;        /* --webhook-timeout / WEBHOOK_TIMEOUT, 5, 1..300 per attempt */
    int webhook_retention_s;      /* --webhook-retention / WEBHOOK_RETENTION, 3600, 1..604800 */
    /* logging */
    enum config_log_format log_format; /* --log-format / LOG_FORMAT: kv (default) | json */
    enum config_log_level log_level;   /* --log-level / LOG_LEVEL: debug|info (default)|warn|error */

    char *arena; /* owned copies (split lists); freed by config_free */
};

/* Result of config_parse. */
enum config_status { CONFIG_OK = 0, CONFIG_HELP = 1, CONFIG_ERROR = -1 };

typedef const char *(*config_getenv_fn)(const char *name);

/* Fills *cfg with defaults, then the environment (via getenv_fn, may be NULL), then argv
 * (argv[0] is the program name; flags take "--flag value" or "--flag=value"; boolean flags
 * also accept no value). On CONFIG_ERROR, err holds one line naming the flag (and its env
 * name), e.g. "--port (GATEWAY_PORT): 70000 is out of range 1..65535", and *cfg owns nothing.
 * --help/-h gives CONFIG_HELP (with defaults in *cfg). *cfg is overwritten: config_free a
 * previously parsed struct before parsing into it again. */
enum config_status config_parse(struct gateway_config *cfg, int argc, char **argv,
                                config_getenv_fn getenv_fn, char *err, size_t errlen);

/* Releases what config_parse allocated; safe on a zeroed struct. */
void config_free(struct gateway_config *cfg);

/* Parses one "redis://host:port[/db]" URL (host may be a name, IPv4 or [IPv6]); 0 on success. */
int config_parse_redis_url(const char *url, struct redis_endpoint *out);

/* The --help text: every flag, its env name, its default, one line each. Static storage. */
const char *config_help_text(void);

const char *config_alg_name(enum config_alg alg); /* "HS256" ... */

#endif
