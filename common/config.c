/*
 * config — command-line flags and environment variables → struct gateway_config.
 *
 * Design: one const table, config_options[], describes every option exactly once: its flag, its
 * environment name, its kind, where it is stored (offsetof into the struct, or a setter for the
 * options with structure: the Redis list, the origin list, the node id), its default as text,
 * its range and its help line. Everything else is driven by that table:
 *   - defaults are applied by parsing each default text with the same code that parses user
 *     input, so a default can never be out of range or disagree with what --help prints;
 *   - the environment and argv go through the same per-kind parsers, so "GATEWAY_PORT=12x" and
 *     "--port 12x" fail the same way, with a message naming both the flag and the variable;
 *   - config_help_text() prints the table, so every flag, env name, default and range is in
 *     --help by construction.
 * Why a table: the gateway has ~35 knobs and three sources for each; hand-written if-chains
 * drift (a flag without its env twin, a default in the help text that differs from the code).
 *
 * Precedence is defaults < environment < argv, applied in that order; the last write wins, also
 * among repeated flags. An empty environment variable counts as unset, because shells and
 * container runtimes commonly export empty values. Cross-field rules (HS256 needs a secret, the
 * text limit must fit in the frame limit, ...) run once after the merge, so their outcome does
 * not depend on which source set which field.
 *
 * Values: integers are plain decimal (no sign except '-', no spaces, no trailing characters);
 * byte counts also take a k/K/KiB, m/M/MiB or g/G/GiB suffix (1024-based); booleans take
 * true/false, 1/0, yes/no, on/off in any case, and a boolean flag alone means true. A non-boolean
 * flag followed by an argument starting with "--" is missing its value (use --flag=--value for
 * the rare value that starts with dashes).
 *
 * Purity: no I/O, no process state. The one mutable static is the --help buffer, built once
 * under call_once. Plain strings point into argv/env storage, which outlives the config; the only
 * owned storage is the split --allowed-origins list in cfg->arena. A failed parse releases the
 * arena before returning, so it owns nothing, and config_free stays safe to call.
 *
 * Errors are one line, "--flag (ENV): reason". User input is echoed only after sanitising
 * (control characters replaced, long values cut); string options, which may hold secrets, never
 * produce a message that contains their value, nor does an unknown "--flag=value".
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#define KIB 1024.0
#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)
#define TEN_YEARS_S (10.0 * 365 * 86400)

#define REDIS_DEFAULT_PORT 6379
#define REDIS_MAX_DB 15

/* Enum fields are stored through an int pointer; that is only sound while they are int-sized. */
_Static_assert(sizeof(enum config_alg) == sizeof(int), "enum config_alg must be int-sized");
_Static_assert(sizeof(enum config_log_format) == sizeof(int), "enum log_format must be int-sized");
_Static_assert(sizeof(enum config_log_level) == sizeof(int), "enum log_level must be int-sized");

enum option_kind {
    OPT_INT,    /* int, decimal */
    OPT_BYTES,  /* int, decimal bytes with an optional k/m/g suffix */
    OPT_SIZE,   /* size_t, decimal bytes with an optional k/m/g suffix */
    OPT_DOUBLE, /* double, decimal */
    OPT_BOOL,   /* bool */
    OPT_STRING, /* const char *, pointing at the input; "" stores NULL */
    OPT_TEXT,   /* char[capacity] copy; min..max is its length range */
    OPT_ENUM,   /* int-sized enum; choices[] in enum order, matched without case */
    OPT_LIST,   /* comma-separated list, stored by the option's setter */
};

struct config_option;

/* Parses value and stores it in cfg; on failure returns -1 and writes the reason (the part of
 * the message after "--flag (ENV): ") into why. */
typedef int (*option_setter)(struct gateway_config *cfg, const struct config_option *opt,
                             const char *value, char *why, size_t whylen);

struct config_option {
    const char *flag;           /* without the leading "--" */
    const char *env;            /* environment variable */
    enum option_kind kind;      /* how the value is parsed (and shown in --help) */
    size_t offset;              /* offsetof(struct gateway_config, field), generic kinds */
    size_t capacity;            /* OPT_TEXT: sizeof the field */
    option_setter setter;       /* custom parse-and-store; NULL = generic by kind */
    const char *const *choices; /* OPT_ENUM: names in enum order, NULL-terminated */
    const char *arg;            /* value placeholder in --help */
    const char *default_text;   /* parsed like user input; NULL = no default (field stays 0) */
    const char *default_note;   /* shown by --help instead of default_text when set */
    double min, max;            /* inclusive range; OPT_TEXT: length range */
    bool min_open;              /* the range excludes min (">0") */
    bool show_range;            /* --help prints min..max */
    const char *help;           /* one short phrase */
};

static int set_node_id(struct gateway_config *cfg, const struct config_option *opt,
                       const char *value, char *why, size_t whylen);
static int set_redis_list(struct gateway_config *cfg, const struct config_option *opt,
                          const char *value, char *why, size_t whylen);
static int set_origin_list(struct gateway_config *cfg, const struct config_option *opt,
                           const char *value, char *why, size_t whylen);
static int set_webhook_events(struct gateway_config *cfg, const struct config_option *opt,
                              const char *value, char *why, size_t whylen);

static const char *const alg_names[] = {"HS256", "RS256", "ES256", NULL};
static const char *const log_format_names[] = {"kv", "json", NULL};
static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};

/* Table-entry builders, one per kind, so each row reads as "flag, env, field, default, range". */
#define FIELD(name) .offset = offsetof(struct gateway_config, name)
#define NUMBER(kind_, flag_, env_, field_, arg_, default_, min_, max_, help_)                      \
    {                                                                                              \
        .flag = flag_, .env = env_, .kind = kind_, FIELD(field_), .arg = arg_,                     \
        .default_text = default_, .min = min_, .max = max_, .show_range = true, .help = help_      \
    }
/* A double whose range excludes its lower bound, e.g. (0, 100000]. */
#define NUMBER_ABOVE(flag_, env_, field_, arg_, default_, above_, max_, help_)                     \
    {                                                                                              \
        .flag = flag_, .env = env_, .kind = OPT_DOUBLE, FIELD(field_), .arg = arg_,                \
        .default_text = default_, .min = above_, .min_open = true, .max = max_,                    \
        .show_range = true, .help = help_                                                          \
    }
#define BOOLEAN(flag_, env_, field_, default_, help_)                                              \
    {                                                                                              \
        .flag = flag_, .env = env_, .kind = OPT_BOOL, FIELD(field_), .arg = "[=BOOL]",             \
        .default_text = default_, .help = help_                                                    \
    }
#define STRING(flag_, env_, field_, arg_, note_, help_)                                            \
    {                                                                                              \
        .flag = flag_, .env = env_, .kind = OPT_STRING, FIELD(field_), .arg = arg_,                \
        .default_note = note_, .help = help_                                                       \
    }
#define TEXT(flag_, env_, field_, setter_, arg_, default_, note_, min_len_, max_len_, help_)       \
    {                                                                                              \
        .flag = flag_, .env = env_, .kind = OPT_TEXT, FIELD(field_),                               \
        .capacity = sizeof(((struct gateway_config *)0)->field_), .setter = setter_, .arg = arg_,  \
        .default_text = default_, .default_note = note_, .min = min_len_, .max = max_len_,         \
        .help = help_                                                                              \
    }
#define ENUM(flag_, env_, field_, choices_, arg_, default_, help_)                                 \
    {                                                                                              \
        .flag = flag_, .env = env_, .kind = OPT_ENUM, FIELD(field_), .choices = choices_,          \
        .arg = arg_, .default_text = default_, .help = help_                                       \
    }
#define LIST(flag_, env_, setter_, arg_, default_, note_, max_entries_, help_)                     \
    {                                                                                              \
        .flag = flag_, .env = env_, .kind = OPT_LIST, .setter = setter_, .arg = arg_,              \
        .default_text = default_, .default_note = note_, .max = max_entries_, .help = help_        \
    }

/* The single source of truth for every option; the order is the order of --help. */
static const struct config_option config_options[] = {
    /* listener */
    NUMBER(OPT_INT, "port", "GATEWAY_PORT", port, "N", "9001", 1, 65535, "listen port"),
    TEXT("bind", "GATEWAY_BIND", bind, NULL, "ADDR", "", "all", 0, 63, "listen address"),
    TEXT("node-id", "NODE_ID", node_id, set_node_id, "ID", NULL, "hostname-pid", 1, 63,
         "in conn ids; [A-Za-z0-9_.:-]{1,63}"),
    /* redis */
    LIST("redis", "REDIS_URL", set_redis_list, "URLS", "redis://127.0.0.1:6379/0", NULL,
         CONFIG_MAX_REDIS,
         "redis://host[:port][/db],... | redis+cluster://host:port,... | "
         "redis+sentinel://host:port,.../master[/db]"),
    NUMBER(OPT_INT, "redis-wait", "REDIS_WAIT", redis_wait, "N", "0", 0, 16,
           "replicas to WAIT for before an ack"),
    NUMBER(OPT_INT, "redis-wait-timeout", "REDIS_WAIT_TIMEOUT", redis_wait_timeout_ms, "MS",
           "500", 1, 60000, "longest WAIT for --redis-wait"),
    TEXT("redis-prefix", "REDIS_PREFIX", redis_prefix, NULL, "PREFIX", "chat", NULL, 1, 31,
         "prefix of Redis keys and channels"),
    /* auth */
    ENUM("jwt-alg", "JWT_ALG", jwt_alg, alg_names, "ALG", "HS256", "HS256 | RS256 | ES256"),
    STRING("jwt-secret", "JWT_SECRET", jwt_secret, "SECRET", "none",
           "shared secret, required for HS256"),
    STRING("jwt-public-key", "JWT_PUBLIC_KEY", jwt_public_key, "PATH", "none",
           "PEM key file, required for RS256/ES256"),
    STRING("jwt-issuer", "JWT_ISSUER", jwt_issuer, "ISS", "unchecked", "required iss claim"),
    STRING("jwt-audience", "JWT_AUDIENCE", jwt_audience, "AUD", "unchecked", "required aud claim"),
    BOOLEAN("jwt-require-exp", "JWT_REQUIRE_EXP", jwt_require_exp, "true",
            "reject tokens without exp"),
    NUMBER(OPT_INT, "jwt-leeway", "JWT_LEEWAY", jwt_leeway_s, "SEC", "0", 0, 3600,
           "clock skew allowed on exp/nbf"),
    LIST("allowed-origins", "ALLOWED_ORIGINS", set_origin_list, "LIST", "", "all",
         CONFIG_MAX_ORIGINS, "allowed Origin values, comma list, max 32"),
    STRING("api-key", "API_KEY", api_key, "KEY", "off", "bearer key of POST /api/*"),
    BOOLEAN("dev-tokens", "DEV_TOKENS", dev_tokens, "false", "dev token endpoint (HS256 only)"),
    /* limits (PROTOCOL.md section 3) */
    NUMBER(OPT_SIZE, "frame-limit", "FRAME_LIMIT", frame_limit, "SIZE", "64KiB", 256, 16 * MIB,
           "max message, else 1009"),
    NUMBER(OPT_SIZE, "text-limit", "TEXT_LIMIT", text_limit, "SIZE", "4096", 1, 16 * MIB,
           "max text, else too_large"),
    NUMBER_ABOVE("rate", "RATE_LIMIT", rate_per_s, "RATE", "20", 0, 100000,
                 "publishes/s per connection"),
    NUMBER(OPT_INT, "rate-burst", "RATE_BURST", rate_burst, "N", "40", 1, 1000000,
           "token bucket size"),
    NUMBER_ABOVE("request-rate", "REQUEST_RATE", request_rate_per_s, "RATE", "10", 0, 100000,
                 "typing/presence/history/read/unread per s"),
    NUMBER(OPT_INT, "request-burst", "REQUEST_BURST", request_burst, "N", "20", 1, 1000000,
           "bucket of --request-rate"),
    NUMBER_ABOVE("join-rate", "JOIN_RATE", join_rate_per_s, "RATE", "20", 0, 100000,
                 "joins and leaves per s"),
    NUMBER(OPT_INT, "join-burst", "JOIN_BURST", join_burst, "N", "200", 1, 1000000,
           "bucket of --join-rate"),
    NUMBER(OPT_INT, "abuse-limit", "ABUSE_LIMIT", abuse_limit, "N", "100", 0, 1000000,
           "rate_limited to close 1008, 0 off"),
    NUMBER(OPT_INT, "abuse-window", "ABUSE_WINDOW", abuse_window_s, "SEC", "10", 1, 3600,
           "window of --abuse-limit"),
    NUMBER(OPT_INT, "max-rooms", "MAX_ROOMS", max_rooms, "N", "100", 1, 100000,
           "rooms per connection"),
    NUMBER(OPT_SIZE, "outq-cap", "OUTQ_CAP", outq_cap, "SIZE", "1MiB", 1024, GIB,
           "send queue, else 4000"),
    NUMBER(OPT_INT, "history-size", "HISTORY_SIZE", history_size, "N", "1000", 0, 1000000,
           "messages kept per room"),
    NUMBER(OPT_INT, "history-ttl", "HISTORY_TTL", history_ttl_s, "SEC", "86400", 1, TEN_YEARS_S,
           "history kept for"),
    NUMBER(OPT_SIZE, "history-page", "HISTORY_PAGE", history_page_bytes, "SIZE", "256KiB", 1024,
           64 * MIB, "bytes of messages per history reply"),
    NUMBER(OPT_INT, "message-timeout", "MESSAGE_TIMEOUT", message_timeout_s, "SEC", "10", 1,
           3600, "time to finish a started message"),
    NUMBER(OPT_INT, "typing-interval", "TYPING_INTERVAL", typing_interval_ms, "MS", "2000", 0,
           600000, "typing relay throttle"),
    NUMBER(OPT_INT, "heartbeat", "HEARTBEAT", heartbeat_s, "SEC", "25", 1, 3600,
           "ping period; 2 missed close 4001"),
    NUMBER(OPT_INT, "drain-seconds", "DRAIN_SECONDS", drain_s, "SEC", "10", 0, 3600,
           "drain window on SIGTERM"),
    NUMBER(OPT_INT, "handshake-timeout", "HANDSHAKE_TIMEOUT", handshake_timeout_s, "SEC", "10", 1,
           600, "HTTP upgrade timeout"),
    NUMBER(OPT_BYTES, "max-header-bytes", "MAX_HEADER_BYTES", max_header_bytes, "SIZE", "8KiB",
           1024, 64 * KIB, "HTTP header space"),
    NUMBER(OPT_INT, "max-connections", "MAX_CONNECTIONS", max_connections, "N", "100000", 1,
           10000000, "connections per node"),
    NUMBER(OPT_BYTES, "sndbuf", "SNDBUF", sndbuf, "SIZE", "64KiB", 0, 64 * MIB,
           "SO_SNDBUF, 0 = kernel's"),
    /* webhooks (PROTOCOL.md section 9) */
    STRING("webhook-url", "WEBHOOK_URL", webhook_url, "URL", "off", "http(s):// URL events go to"),
    STRING("webhook-secret", "WEBHOOK_SECRET", webhook_secret, "SECRET", "none",
           "HMAC key of X-Chat-Signature"),
    LIST("webhook-events", "WEBHOOK_EVENTS", set_webhook_events, "LIST",
         "user.online,user.offline,direct.undelivered", "all", 3, "events sent, comma list"),
    NUMBER(OPT_INT, "webhook-timeout", "WEBHOOK_TIMEOUT", webhook_timeout_s, "SEC", "5", 1, 300,
           "per delivery attempt"),
    NUMBER(OPT_INT, "webhook-retention", "WEBHOOK_RETENTION", webhook_retention_s, "SEC", "3600",
           1, 604800, "undelivered events kept for"),
    /* logging */
    ENUM("log-format", "LOG_FORMAT", log_format, log_format_names, "FMT", "kv", "kv | json"),
    ENUM("log-level", "LOG_LEVEL", log_level, log_level_names, "LEVEL", "info",
         "debug | info | warn | error"),
};

#undef FIELD
#undef NUMBER
#undef NUMBER_ABOVE
#undef BOOLEAN
#undef STRING
#undef TEXT
#undef ENUM
#undef LIST

#define CONFIG_OPTION_COUNT (sizeof(config_options) / sizeof(config_options[0]))

/* ------------------------------------------------------------------------------------------ */
/* Small text helpers                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* True iff the first len bytes of a equal the NUL-terminated b, ASCII case-insensitively;
 * locale-independent on purpose (a Turkish locale must not change what "info" matches). */
static bool ascii_equal_nocase(const char *a, size_t len, const char *b)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (y == '\0')
            return false;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return b[len] == '\0';
}

/* Copies up to len bytes of s into buf as printable single-line text: control bytes become
 * '?', and an over-long value is cut and marked with "...". Returns buf. */
static const char *shown_n(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t keep = buflen - 1, i = 0;
    bool cut = len > keep;
    if (cut)
        keep = buflen > 4 ? buflen - 4 : 0;
    for (; i < len && i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut)
        for (size_t j = 0; j < 3 && i + 1 < buflen; j++)
            buf[i++] = '.';
    buf[i] = '\0';
    return buf;
}

/* shown_n() of a NUL-terminated string. */
static const char *shown(const char *s, char *buf, size_t buflen)
{
    return shown_n(s, strlen(s), buf, buflen);
}

/* Writes a byte count the way a user would type it: "16MiB", "64KiB", or plain bytes. */
static void format_bytes(double v, char *buf, size_t len)
{
    unsigned long long n = (unsigned long long)v;
    if (n >= (1ULL << 30) && n % (1ULL << 30) == 0)
        snprintf(buf, len, "%lluGiB", n >> 30);
    else if (n >= (1ULL << 20) && n % (1ULL << 20) == 0)
        snprintf(buf, len, "%lluMiB", n >> 20);
    else if (n >= (1ULL << 10) && n % (1ULL << 10) == 0)
        snprintf(buf, len, "%lluKiB", n >> 10);
    else
        snprintf(buf, len, "%llu", n);
}

/* Writes the option's numeric range as "min..max" (">min..max" when min is excluded). */
static void format_range(const struct config_option *opt, char *buf, size_t len)
{
    char lo[24], hi[24];
    if (opt->kind == OPT_BYTES || opt->kind == OPT_SIZE) {
        format_bytes(opt->min, lo, sizeof(lo));
        format_bytes(opt->max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%.15g", opt->min);
        snprintf(hi, sizeof(hi), "%.15g", opt->max);
    }
    snprintf(buf, len, "%s%s..%s", opt->min_open ? ">" : "", lo, hi);
}

/* Writes "--flag (ENV): <formatted reason>" into err, always NUL-terminated when errlen > 0. */
static void option_error(char *err, size_t errlen, const struct config_option *opt, const char *fmt,
                         ...)
{
    if (!err || errlen == 0)
        return;
    int n = snprintf(err, errlen, "--%s (%s): ", opt->flag, opt->env);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Writes a message that concerns no single option (unknown flag, stray argument). */
static void plain_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Returns the option whose flag is exactly name[0..len), or NULL. */
static const struct config_option *option_find(const char *name, size_t len)
{
    for (size_t i = 0; i < CONFIG_OPTION_COUNT; i++)
        if (strlen(config_options[i].flag) == len && memcmp(config_options[i].flag, name, len) == 0)
            return &config_options[i];
    return NULL;
}

/* option_find() by a NUL-terminated flag name that the code itself knows to exist. */
static const struct config_option *option_named(const char *name)
{
    return option_find(name, strlen(name));
}

/* ------------------------------------------------------------------------------------------ */
/* Value parsers                                                                               */
/* ------------------------------------------------------------------------------------------ */

enum number_result { NUMBER_OK, NUMBER_SYNTAX, NUMBER_RANGE };

/* Returns the multiplier of a byte-count suffix, or 0 when suffix is not one we accept. */
static unsigned long long size_suffix_multiplier(const char *suffix)
{
    static const struct {
        const char *text;
        unsigned long long multiplier;
    } suffixes[] = {
        {"k", 1ULL << 10}, {"K", 1ULL << 10}, {"KiB", 1ULL << 10},
        {"m", 1ULL << 20}, {"M", 1ULL << 20}, {"MiB", 1ULL << 20},
        {"g", 1ULL << 30}, {"G", 1ULL << 30}, {"GiB", 1ULL << 30},
    };
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (strcmp(suffix, suffixes[i].text) == 0)
            return suffixes[i].multiplier;
    return 0;
}

/* Parses the whole of text as a decimal integer (optionally negative; with bytes, optionally
 * followed by a size suffix). NUMBER_SYNTAX for anything else, including spaces, '+' and
 * trailing characters; NUMBER_RANGE when it does not fit a long long. */
static enum number_result parse_integer(const char *text, bool bytes, long long *out)
{
    const char *p = text;
    bool negative = false, overflow = false;
    if (*p == '-') {
        negative = true;
        p++;
    }
    if (*p < '0' || *p > '9')
        return NUMBER_SYNTAX;
    unsigned long long value = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (value > (ULLONG_MAX - digit) / 10)
            overflow = true;
        else
            value = value * 10 + digit;
    }
    unsigned long long multiplier = 1;
    if (*p != '\0') {
        multiplier = bytes ? size_suffix_multiplier(p) : 0;
        if (multiplier == 0)
            return NUMBER_SYNTAX;
    }
    if (overflow || value > (unsigned long long)LLONG_MAX / multiplier)
        return NUMBER_RANGE;
    value *= multiplier;
    *out = negative ? -(long long)value : (long long)value;
    return NUMBER_OK;
}

/* Parses the whole of text as a finite decimal number: digits, '.', an exponent, a leading
 * '-'; hex, "inf", "nan", spaces and trailing characters are NUMBER_SYNTAX. */
static enum number_result parse_double(const char *text, double *out)
{
    if (*text == '\0' || strspn(text, "0123456789.eE+-") != strlen(text))
        return NUMBER_SYNTAX;
    if (!((text[0] >= '0' && text[0] <= '9') || text[0] == '.' || text[0] == '-'))
        return NUMBER_SYNTAX;
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || *end != '\0')
        return NUMBER_SYNTAX;
    if (!isfinite(value))
        return NUMBER_RANGE;
    *out = value;
    return NUMBER_OK;
}

/* Parses the words a person or a YAML file might use for a boolean; -1 when it is none. */
static int parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    size_t len = strlen(text);
    for (size_t i = 0; i < 4; i++) {
        if (ascii_equal_nocase(text, len, yes[i])) {
            *out = true;
            return 0;
        }
        if (ascii_equal_nocase(text, len, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Joins an enum's choices as "a|b|c" for messages. */
static void format_choices(const char *const *choices, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; choices[i] && n < len; i++) {
        int w = snprintf(buf + n, len - n, "%s%s", i ? "|" : "", choices[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* Stores value into the field described by opt (generic kinds), or delegates to its setter;
 * the field is left untouched when the value is rejected. */
static int option_apply(struct gateway_config *cfg, const struct config_option *opt,
                        const char *value, char *why, size_t whylen)
{
    char seen[48], range[64];
    char *field = (char *)cfg + opt->offset;
    if (opt->setter)
        return opt->setter(cfg, opt, value, why, whylen);
    switch (opt->kind) {
    case OPT_INT:
    case OPT_BYTES:
    case OPT_SIZE: {
        long long v = 0;
        enum number_result r = parse_integer(value, opt->kind != OPT_INT, &v);
        if (r == NUMBER_SYNTAX) {
            snprintf(why, whylen, "'%s' is not %s", shown(value, seen, sizeof(seen)),
                     opt->kind == OPT_INT ? "an integer"
                                          : "a byte count (N, Nk/NKiB, Nm/NMiB, Ng/NGiB)");
            return -1;
        }
        if (r == NUMBER_RANGE || (double)v < opt->min || (double)v > opt->max) {
            format_range(opt, range, sizeof(range));
            snprintf(why, whylen, "%s is out of range %s", shown(value, seen, sizeof(seen)), range);
            return -1;
        }
        if (opt->kind == OPT_SIZE)
            *(size_t *)(void *)field = (size_t)v;
        else
            *(int *)(void *)field = (int)v;
        return 0;
    }
    case OPT_DOUBLE: {
        double v = 0;
        enum number_result r = parse_double(value, &v);
        if (r == NUMBER_SYNTAX) {
            snprintf(why, whylen, "'%s' is not a number", shown(value, seen, sizeof(seen)));
            return -1;
        }
        if (r == NUMBER_RANGE || v < opt->min || (opt->min_open && v == opt->min) || v > opt->max) {
            format_range(opt, range, sizeof(range));
            snprintf(why, whylen, "%s is out of range %s", shown(value, seen, sizeof(seen)), range);
            return -1;
        }
        *(double *)(void *)field = v;
        return 0;
    }
    case OPT_BOOL: {
        bool v = false;
        if (parse_bool(value, &v) != 0) {
            snprintf(why, whylen, "'%s' is not a boolean (true/false, 1/0, yes/no, on/off)",
                     shown(value, seen, sizeof(seen)));
            return -1;
        }
        *(bool *)(void *)field = v;
        return 0;
    }
    case OPT_STRING:
        *(const char **)(void *)field = value[0] ? value : NULL;
        return 0;
    case OPT_TEXT: {
        size_t len = strlen(value);
        if ((double)len < opt->min || (double)len > opt->max || len >= opt->capacity) {
            snprintf(why, whylen, "'%s' must be %.0f..%.0f characters",
                     shown(value, seen, sizeof(seen)), opt->min, opt->max);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)value[i];
            if (c <= 0x20 || c >= 0x7f) {
                snprintf(why, whylen, "'%s' must be printable ASCII without spaces",
                         shown(value, seen, sizeof(seen)));
                return -1;
            }
        }
        memcpy(field, value, len + 1);
        return 0;
    }
    case OPT_ENUM: {
        size_t len = strlen(value);
        for (int i = 0; opt->choices[i]; i++) {
            if (ascii_equal_nocase(value, len, opt->choices[i])) {
                *(int *)(void *)field = i;
                return 0;
            }
        }
        format_choices(opt->choices, range, sizeof(range));
        snprintf(why, whylen, "'%s' is not one of %s", shown(value, seen, sizeof(seen)), range);
        return -1;
    }
    case OPT_LIST:
        break;
    }
    snprintf(why, whylen, "internal error: option has no parser");
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Setters for options with structure                                                          */
/* ------------------------------------------------------------------------------------------ */

/* Accepts exactly ^[A-Za-z0-9_.:-]{1,63}$: the node id is embedded in connection ids and in
 * Redis values, so separators and spaces must not be able to sneak in. */
static int set_node_id(struct gateway_config *cfg, const struct config_option *opt,
                       const char *value, char *why, size_t whylen)
{
    char seen[48];
    size_t len = strlen(value);
    bool ok = len >= 1 && len <= 63 && len < sizeof(cfg->node_id);
    for (size_t i = 0; ok && i < len; i++) {
        char c = value[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == ':' || c == '-';
    }
    (void)opt;
    if (!ok) {
        snprintf(why, whylen, "'%s' must match [A-Za-z0-9_.:-]{1,63}",
                 shown(value, seen, sizeof(seen)));
        return -1;
    }
    memcpy(cfg->node_id, value, len + 1);
    return 0;
}

/* Parses digits in s[0..len) as an unsigned value; -1 when empty, not all digits, or > max. */
static long parse_bounded_digits(const char *s, size_t len, long max)
{
    long v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max)
            return -1;
    }
    return v;
}

/* Parses url[0..len) as redis://host[:port][/db] into *out, or returns -1 with the reason in
 * why; *out is written only on success. */
static int redis_url_parse(const char *url, size_t len, struct redis_endpoint *out, char *why,
                           size_t whylen)
{
    static const char scheme[] = "redis://";
    const size_t scheme_len = sizeof(scheme) - 1;
    const char *end = url + len;
    const char *sep = NULL;
    for (const char *p = url; p + 3 <= end; p++) {
        if (memcmp(p, "://", 3) == 0) {
            sep = p;
            break;
        }
    }
    if (!sep) {
        snprintf(why, whylen, "missing redis:// scheme");
        return -1;
    }
    if ((size_t)(sep - url) != scheme_len - 3 || !ascii_equal_nocase(url, scheme_len, scheme)) {
        snprintf(why, whylen,
                 "only the redis:// scheme is supported (or a redis+cluster:// or "
                 "redis+sentinel:// URL alone)");
        return -1;
    }
    const char *p = url + scheme_len;
    if (memchr(p, '@', (size_t)(end - p))) {
        snprintf(why, whylen, "credentials in the URL are not supported");
        return -1;
    }
    const char *host, *host_end;
    if (p < end && *p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end) {
            snprintf(why, whylen, "unterminated [IPv6] host");
            return -1;
        }
        bool has_colon = false;
        for (const char *h = host; h < host_end; h++) {
            bool hex =
                (*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f') || (*h >= 'A' && *h <= 'F');
            if (!hex && *h != ':' && *h != '.') {
                snprintf(why, whylen, "invalid IPv6 address in brackets");
                return -1;
            }
            has_colon |= *h == ':';
        }
        if (host_end > host && !has_colon) {
            snprintf(why, whylen, "invalid IPv6 address in brackets");
            return -1;
        }
        p = host_end + 1;
    } else {
        host = p;
        while (p < end && *p != ':' && *p != '/')
            p++;
        host_end = p;
        for (const char *h = host; h < host_end; h++) {
            bool ok = (*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
                      (*h >= '0' && *h <= '9') || *h == '.' || *h == '-' || *h == '_';
            if (!ok) {
                snprintf(why, whylen, "invalid character in host");
                return -1;
            }
        }
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0) {
        snprintf(why, whylen, "empty host");
        return -1;
    }
    if (host_len >= sizeof(out->host)) {
        snprintf(why, whylen, "host longer than %zu characters", sizeof(out->host) - 1);
        return -1;
    }
    long port = REDIS_DEFAULT_PORT, db = 0;
    if (p < end && *p == ':') {
        const char *port_start = ++p;
        while (p < end && *p != '/')
            p++;
        port = parse_bounded_digits(port_start, (size_t)(p - port_start), 65535);
        if (port < 1) {
            snprintf(why, whylen, "port must be 1..65535");
            return -1;
        }
    }
    if (p < end && *p == '/') {
        const char *db_start = ++p;
        p = end;
        /* "redis://host:6379/" is db 0, as in the IANA redis URI scheme. */
        db = db_start == end
                 ? 0
                 : parse_bounded_digits(db_start, (size_t)(end - db_start), REDIS_MAX_DB);
        if (db < 0) {
            snprintf(why, whylen, "db must be 0..%d", REDIS_MAX_DB);
            return -1;
        }
    }
    if (p != end) {
        snprintf(why, whylen, "unexpected characters after the host");
        return -1;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (int)port;
    out->db = (int)db;
    return 0;
}

/* Guarantees: 0 and a filled *out for a valid redis://host[:port][/db]; -1 and *out untouched
 * otherwise. */
int config_parse_redis_url(const char *url, struct redis_endpoint *out)
{
    char why[96];
    if (!url || !out)
        return -1;
    return redis_url_parse(url, strlen(url), out, why, sizeof(why));
}

/* Narrows s[0..*len) to its content without surrounding spaces or tabs; returns the start. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        (*len)--;
    }
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    return s;
}

/* Replaces the whole Redis list, or nothing: every entry is parsed before cfg is written. Empty
 * entries (",,", a trailing comma) are ignored; an all-empty list is an error because the
 * gateway cannot run without Redis. */
/* Splits a comma list of URLs (each parsed by redis_url_parse after `scheme` is put in front
 * of entries that lack one) into parsed[]; returns the count or -1 with why set. */
static int redis_split_list(const char *value, const char *scheme, size_t max,
                            struct redis_endpoint *parsed, char *why, size_t whylen)
{
    int count = 0;
    char seen[64], reason[96], buf[600];
    for (const char *p = value;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *entry = trim(p, &len);
        if (len > 0) {
            if (count == (int)max) {
                snprintf(why, whylen, "more than %d URLs", CONFIG_MAX_REDIS);
                return -1;
            }
            if (scheme && len + strlen(scheme) < sizeof(buf)) {
                snprintf(buf, sizeof(buf), "%s%.*s", scheme, (int)len, entry);
                entry = buf;
                len = strlen(buf);
            }
            if (redis_url_parse(entry, len, &parsed[count], reason, sizeof(reason)) != 0) {
                /* Never echo a URL that may carry a password. */
                bool secret = memchr(entry, '@', len) != NULL;
                snprintf(why, whylen, "'%s': %s",
                         secret ? "<redacted>" : shown_n(entry, len, seen, sizeof(seen)), reason);
                return -1;
            }
            count++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return count;
}

/* redis+sentinel://host:port[,host:port...]/<master>[/db]: the Sentinels, then the master's
 * name and database. */
static int set_sentinel(struct gateway_config *cfg, const char *rest, char *why, size_t whylen)
{
    const char *slash = strchr(rest, '/');
    if (!slash || !slash[1]) {
        snprintf(why, whylen, "redis+sentinel:// needs /<master name> after the Sentinels");
        return -1;
    }
    char hosts[CONFIG_MAX_REDIS * 300];
    if ((size_t)(slash - rest) >= sizeof(hosts)) {
        snprintf(why, whylen, "Sentinel list too long");
        return -1;
    }
    memcpy(hosts, rest, (size_t)(slash - rest));
    hosts[slash - rest] = '\0';
    const char *name = slash + 1;
    const char *dbsep = strchr(name, '/');
    size_t nlen = dbsep ? (size_t)(dbsep - name) : strlen(name);
    long db = 0;
    if (dbsep) {
        char *end;
        db = strtol(dbsep + 1, &end, 10);
        if (end == dbsep + 1 || *end || db < 0 || db > 15) {
            snprintf(why, whylen, "database after the master name must be 0..15");
            return -1;
        }
    }
    if (nlen == 0 || nlen >= sizeof(cfg->sentinel_master)) {
        snprintf(why, whylen, "master name must be 1..%zu characters",
                 sizeof(cfg->sentinel_master) - 1);
        return -1;
    }
    struct redis_endpoint parsed[CONFIG_MAX_REDIS];
    int count = redis_split_list(hosts, "redis://", CONFIG_MAX_REDIS, parsed, why, whylen);
    if (count <= 0) {
        if (count == 0)
            snprintf(why, whylen, "at least one Sentinel host:port is required");
        return -1;
    }
    memset(cfg->redis, 0, sizeof(cfg->redis));
    memcpy(cfg->redis, parsed, (size_t)count * sizeof(parsed[0]));
    cfg->redis_count = count;
    memcpy(cfg->sentinel_master, name, nlen);
    cfg->sentinel_master[nlen] = '\0';
    cfg->sentinel_db = (int)db;
    cfg->redis_mode = CONFIG_REDIS_SENTINEL;
    return 0;
}

static int set_redis_list(struct gateway_config *cfg, const struct config_option *opt,
                          const char *value, char *why, size_t whylen)
{
    static const char cluster[] = "redis+cluster://", sentinel[] = "redis+sentinel://";
    size_t vlen = strlen(value);
    const char *v = trim(value, &vlen);
    if (vlen >= sizeof(sentinel) - 1 && ascii_equal_nocase(v, sizeof(sentinel) - 1, sentinel))
        return set_sentinel(cfg, v + sizeof(sentinel) - 1, why, whylen);
    bool is_cluster =
        vlen >= sizeof(cluster) - 1 && ascii_equal_nocase(v, sizeof(cluster) - 1, cluster);
    struct redis_endpoint parsed[CONFIG_MAX_REDIS];
    int count = redis_split_list(is_cluster ? v + sizeof(cluster) - 1 : value,
                                 is_cluster ? "redis://" : NULL, opt->max, parsed, why, whylen);
    if (count < 0)
        return -1;
    if (count == 0) {
        snprintf(why, whylen, "at least one redis://host[:port][/db] URL is required");
        return -1;
    }
    for (int i = 0; is_cluster && i < count; i++) {
        if (parsed[i].db != 0) {
            snprintf(why, whylen, "Redis Cluster has only database 0");
            return -1;
        }
    }
    memset(cfg->redis, 0, sizeof(cfg->redis));
    memcpy(cfg->redis, parsed, (size_t)count * sizeof(parsed[0]));
    cfg->redis_count = count;
    cfg->redis_mode = is_cluster ? CONFIG_REDIS_CLUSTER : CONFIG_REDIS_PLAIN;
    cfg->sentinel_master[0] = '\0';
    return 0;
}

/* Forgets the origin list and frees the arena that holds it. */
static void origins_release(struct gateway_config *cfg)
{
    free(cfg->arena);
    cfg->arena = NULL;
    for (int i = 0; i < CONFIG_MAX_ORIGINS; i++)
        cfg->allowed_origins[i] = NULL;
    cfg->allowed_origin_count = 0;
}

/* Replaces the whole origin list, or nothing: entries are trimmed, trailing '/' dropped (an
 * Origin header never has a path, so "https://a.example/" would otherwise never match), empty
 * entries ignored; the entries live in one arena-owned copy of value. */
static int set_origin_list(struct gateway_config *cfg, const struct config_option *opt,
                           const char *value, char *why, size_t whylen)
{
    char *origins[CONFIG_MAX_ORIGINS];
    int count = 0;
    size_t total = strlen(value);
    char *copy = malloc(total + 1);
    if (!copy) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    memcpy(copy, value, total + 1);
    for (char *p = copy;;) {
        char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *entry = (char *)trim(p, &len);
        while (len > 0 && entry[len - 1] == '/')
            len--;
        if (len > 0) {
            if (count == (int)opt->max) {
                free(copy);
                snprintf(why, whylen, "more than %d origins", CONFIG_MAX_ORIGINS);
                return -1;
            }
            entry[len] = '\0'; /* at or before the comma, which is already consumed */
            origins[count++] = entry;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    origins_release(cfg);
    if (count == 0) {
        free(copy);
        return 0;
    }
    cfg->arena = copy;
    memcpy(cfg->allowed_origins, origins, (size_t)count * sizeof(origins[0]));
    cfg->allowed_origin_count = count;
    return 0;
}

/* Replaces the event set: a comma list of known event names (at least one). */
static int set_webhook_events(struct gateway_config *cfg, const struct config_option *opt,
                              const char *value, char *why, size_t whylen)
{
    static const char *const names[] = {"user.online", "user.offline", "direct.undelivered"};
    unsigned events = 0;
    char seen[48];
    (void)opt;
    for (const char *p = value;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *entry = trim(p, &len);
        unsigned bit = 0;
        for (unsigned i = 0; len && !bit && i < sizeof(names) / sizeof(names[0]); i++)
            if (strlen(names[i]) == len && memcmp(entry, names[i], len) == 0)
                bit = 1u << i;
        if (len && !bit) {
            snprintf(why, whylen, "'%s' is not one of user.online, user.offline, "
                     "direct.undelivered", shown_n(entry, len, seen, sizeof(seen)));
            return -1;
        }
        events |= bit;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!events) {
        snprintf(why, whylen, "names no event");
        return -1;
    }
    cfg->webhook_events = events;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Applies value to opt, turning a rejection into the one-line "--flag (ENV): why" message. */
static int option_set(struct gateway_config *cfg, const struct config_option *opt,
                      const char *value, char *err, size_t errlen)
{
    char why[192];
    why[0] = '\0';
    if (option_apply(cfg, opt, value, why, sizeof(why)) == 0)
        return 0;
    option_error(err, errlen, opt, "%s", why);
    return -1;
}

/* Applies every option's default text; fails only if the table itself is wrong. */
static int apply_defaults(struct gateway_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < CONFIG_OPTION_COUNT; i++) {
        const struct config_option *opt = &config_options[i];
        if (opt->default_text && option_set(cfg, opt, opt->default_text, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Applies every environment variable that is set and non-empty. */
static int apply_environment(struct gateway_config *cfg, config_getenv_fn getenv_fn, char *err,
                             size_t errlen)
{
    if (!getenv_fn)
        return 0;
    for (size_t i = 0; i < CONFIG_OPTION_COUNT; i++) {
        const struct config_option *opt = &config_options[i];
        const char *value = getenv_fn(opt->env);
        if (value && value[0] && option_set(cfg, opt, value, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* Applies argv[1..argc) left to right; every argument must be a known "--flag" with its value. */
static int apply_arguments(struct gateway_config *cfg, int argc, char **argv, char *err,
                           size_t errlen)
{
    char seen[48];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!arg)
            continue;
        if (strncmp(arg, "--", 2) != 0) {
            plain_error(err, errlen, "unexpected argument '%s' (options start with --; see --help)",
                        shown(arg, seen, sizeof(seen)));
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct config_option *opt = option_find(name, name_len);
        if (!opt) {
            /* Only the name: the value of a mistyped --jwt-secret=... must not be printed. */
            plain_error(err, errlen, "unknown flag --%s (see --help)",
                        shown_n(name, name_len, seen, sizeof(seen)));
            return -1;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (opt->kind == OPT_BOOL)
            value = "true";
        else if (i + 1 < argc && argv[i + 1] && strncmp(argv[i + 1], "--", 2) != 0)
            value = argv[++i];
        else {
            option_error(err, errlen, opt, "missing value");
            return -1;
        }
        if (option_set(cfg, opt, value, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* An http:// or https:// URL with a host (the rest is checked when the client connects). */
static bool webhook_url_valid(const char *url)
{
    size_t skip = ascii_equal_nocase(url, 7, "http://")    ? 7
                  : ascii_equal_nocase(url, 8, "https://") ? 8
                                                           : 0;
    return skip && url[skip] && url[skip] != '/' && url[skip] != ':' && !strpbrk(url, " \t\r\n");
}

/* Checks the rules that involve more than one field, after every source has been merged. */
static int validate(const struct gateway_config *cfg, char *err, size_t errlen)
{
    char text[32], frame[32];
    if (cfg->jwt_alg == CONFIG_ALG_HS256 && !(cfg->jwt_secret && cfg->jwt_secret[0])) {
        option_error(err, errlen, option_named("jwt-secret"), "required for HS256");
        return -1;
    }
    if (cfg->jwt_alg != CONFIG_ALG_HS256 && !(cfg->jwt_public_key && cfg->jwt_public_key[0])) {
        option_error(err, errlen, option_named("jwt-public-key"), "required for %s",
                     config_alg_name(cfg->jwt_alg));
        return -1;
    }
    if (cfg->dev_tokens && cfg->jwt_alg != CONFIG_ALG_HS256) {
        option_error(err, errlen, option_named("dev-tokens"),
                     "needs --jwt-alg HS256 (dev tokens are signed with the shared secret)");
        return -1;
    }
    if (cfg->webhook_url && !webhook_url_valid(cfg->webhook_url)) {
        option_error(err, errlen, option_named("webhook-url"),
                     "must be http://host[:port][/path] or https://...");
        return -1;
    }
    if (cfg->webhook_url && !(cfg->webhook_secret && cfg->webhook_secret[0])) {
        option_error(err, errlen, option_named("webhook-secret"), "required with --webhook-url");
        return -1;
    }
    if (cfg->text_limit > cfg->frame_limit) {
        format_bytes((double)cfg->text_limit, text, sizeof(text));
        format_bytes((double)cfg->frame_limit, frame, sizeof(frame));
        option_error(err, errlen, option_named("text-limit"),
                     "%s exceeds --frame-limit (FRAME_LIMIT) %s", text, frame);
        return -1;
    }
    return 0;
}

/* Guarantees: on CONFIG_OK every field is in range and the cross-field rules hold; on
 * CONFIG_HELP *cfg holds the defaults; on CONFIG_ERROR err holds one line and *cfg owns no
 * memory. *cfg is overwritten, so config_free a previously parsed struct before reusing it. */
enum config_status config_parse(struct gateway_config *cfg, int argc, char **argv,
                                config_getenv_fn getenv_fn, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    memset(cfg, 0, sizeof(*cfg));
    if (apply_defaults(cfg, err, errlen) != 0)
        goto fail;
    /* --help wins over everything, even a broken environment, so help is always reachable. */
    for (int i = 1; i < argc; i++)
        if (argv[i] && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0))
            return CONFIG_HELP;
    if (apply_environment(cfg, getenv_fn, err, errlen) != 0 ||
        apply_arguments(cfg, argc, argv, err, errlen) != 0 || validate(cfg, err, errlen) != 0)
        goto fail;
    return CONFIG_OK;
fail:
    origins_release(cfg);
    return CONFIG_ERROR;
}

/* Guarantees: everything config_parse allocated is released and the owning pointers are reset;
 * safe on a zeroed struct, after an error, and when called twice. */
void config_free(struct gateway_config *cfg)
{
    if (cfg)
        origins_release(cfg);
}

/* Guarantees: the canonical upper-case name of alg, or "unknown" for a value outside the enum. */
const char *config_alg_name(enum config_alg alg)
{
    if ((unsigned)alg < sizeof(alg_names) / sizeof(alg_names[0]) - 1)
        return alg_names[alg];
    return "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* --help                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static char help_text[8192];
static once_flag help_once = ONCE_FLAG_INIT;

/* Appends formatted text to help_text; output past the end is dropped (tests check it fits). */
static void help_append(size_t *used, const char *fmt, ...)
{
    if (*used >= sizeof(help_text) - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(help_text + *used, sizeof(help_text) - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used += (size_t)n < sizeof(help_text) - *used ? (size_t)n : sizeof(help_text) - 1 - *used;
}

/* Builds the help text from config_options[], one line per option. */
static void help_build(void)
{
    size_t used = 0;
    help_append(&used,
                "Usage: chat-gateway [options]\n"
                "\n"
                "Every option can also be set by the environment variable beside it; flags win.\n"
                "Forms: --flag VALUE or --flag=VALUE; a boolean flag alone means true.\n"
                "BOOL: true/false, 1/0, yes/no, on/off. SIZE: bytes, or with a k/K/KiB, m/M/MiB\n"
                "or g/G/GiB suffix (1024-based), e.g. 64KiB, 1M.\n"
                "\n"
                "Options:\n");
    help_append(&used, "  %-25s %-17s %-12s %s\n", "FLAG", "ENVIRONMENT", "DEFAULT", "MEANING");
    for (size_t i = 0; i < CONFIG_OPTION_COUNT; i++) {
        const struct config_option *opt = &config_options[i];
        char flag[48], range[64] = "";
        snprintf(flag, sizeof(flag), "--%s%s%s", opt->flag, opt->kind == OPT_BOOL ? "" : " ",
                 opt->arg);
        if (opt->show_range) {
            char span[56];
            format_range(opt, span, sizeof(span));
            snprintf(range, sizeof(range), " (%s)", span);
        }
        const char *def = opt->default_note ? opt->default_note : opt->default_text;
        help_append(&used, "  %-25s %-17s %-12s %s%s\n", flag, opt->env, def ? def : "none",
                    opt->help, range);
    }
    help_append(&used, "  %-25s %-17s %-12s %s\n", "-h, --help", "", "", "show this help and exit");
}

/* Guarantees: the full help text, built on first use (thread-safe) and never freed. */
const char *config_help_text(void)
{
    call_once(&help_once, help_build);
    return help_text;
}
