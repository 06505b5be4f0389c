/*
 * chat_cli_options.c — the command line: every option checked here, before anything connects,
 * so a mistake ends the program with status 2 and one line naming the option.
 *
 * Room names are judged by the protocol's own rule (^[A-Za-z0-9_.:-]{1,64}$) rather than
 * passed on for the server to refuse: `--room 'bad room!'` is an error, never a join of
 * "bad" (commas separate several rooms; spaces are not separators).
 *
 * Exactly one token source: --token (or env CHAT_TOKEN) is used as given; --sub mints HS256
 * tokens with --jwt-secret (or env JWT_SECRET), again whenever a fresh one is needed;
 * --token-cmd runs a command for each fresh token (chat_cli_token.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "chat_cli.h"

static void usage(FILE *to)
{
    fputs("usage: chat-cli --url ws[s]://HOST:PORT/ws (--token JWT | --token-cmd CMD |\n"
          "                --sub ID [--name N] [--jwt-secret S]) [--room R]... [options]\n"
          "  --url URL             WebSocket endpoint (default ws://127.0.0.1:8080/ws)\n"
          "  --token JWT           token to present (env CHAT_TOKEN)\n"
          "  --token-cmd CMD       run CMD (/bin/sh -c) for a token: its stdout, trimmed; run\n"
          "                        again before the token expires and on every reconnect\n"
          "  --sub ID, --name N    mint HS256 tokens for ID with --jwt-secret or env JWT_SECRET\n"
          "  --ttl S               lifetime of a minted token (default 3600)\n"
          "  --room R              join R at start (repeatable, or a comma list); the first is\n"
          "                        where plain lines go\n"
          "  --non-interactive     script mode: stop at the first failed join; at stdin EOF wait\n"
          "                        for every reply (and --expect), then close and exit\n"
          "  --expect N            in script mode, also wait for N incoming messages\n"
          "  --timeout S           bound on connecting and on every reply (default 10)\n"
          "  --no-reconnect        exit when the connection ends instead of reconnecting\n"
          "  --rate R, --burst B   pace publishes (default 20/s, burst 40; 0 = no pacing)\n"
          "  --json                print every incoming frame verbatim, one per line\n"
          "  --verbose             also print acks, read markers and lws warnings\n"
          "  --insecure            wss: accept a self-signed certificate\n"
          "  --ca FILE             wss: trust this CA / certificate file\n"
          "  --origin O            send an Origin header\n"
          "exit: 0 ok, 1 an error reply or missing reply, 2 usage, 3 connect/handshake failed,\n"
          "      4 the server closed the connection for good\n",
          to);
}

/* True when name is a room name the protocol allows: ^[A-Za-z0-9_.:-]{1,64}$. */
bool cli_room_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > CLI_ROOM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int parse_number(const char *flag, const char *value, double *out, bool allow_zero)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || !end || *end || v < 0 || (!allow_zero && v == 0) || v > 1e9) {
        fprintf(stderr, "chat-cli: %s: '%s' is not a valid number\n", flag, value);
        return -1;
    }
    *out = v;
    return 0;
}

/* Splits a comma list into opt->rooms (pointers into list, which is modified); every piece
 * must be a valid room name. */
static int add_rooms(struct cli_options *opt, char *list)
{
    const char *given = strdupa(list);
    char *save = NULL;
    int added = 0;
    for (char *r = strtok_r(list, ",", &save); r; r = strtok_r(NULL, ",", &save), added++) {
        if (!cli_room_name_valid(r)) {
            fprintf(stderr,
                    "chat-cli: --room '%s': '%s' is not a room name (1-64 characters of "
                    "A-Z a-z 0-9 _ . : -; commas separate several rooms)\n",
                    given, r);
            return -1;
        }
        if (opt->room_count == CLI_MAX_ROOMS) {
            fprintf(stderr, "chat-cli: at most %d rooms\n", CLI_MAX_ROOMS);
            return -1;
        }
        opt->rooms[opt->room_count++] = r;
    }
    if (added == 0) {
        fprintf(stderr, "chat-cli: --room '%s' names no room\n", given);
        return -1;
    }
    return 0;
}

/* Picks the one token source; CHAT_TOKEN is the fallback when no option names one. */
static int choose_token_source(struct cli_options *opt)
{
    int given = (opt->token != NULL) + (opt->token_cmd != NULL) + (opt->sub != NULL);
    if (given > 1) {
        fprintf(stderr, "chat-cli: give only one of --token, --token-cmd and --sub\n");
        return -1;
    }
    if (opt->token_cmd) {
        opt->token_source = TOKEN_COMMAND;
    } else if (opt->sub) {
        if (!opt->secret || !opt->secret[0]) {
            fprintf(stderr, "chat-cli: --sub needs --jwt-secret or env JWT_SECRET\n");
            return -1;
        }
        opt->token_source = TOKEN_MINT;
    } else {
        if (!opt->token)
            opt->token = getenv("CHAT_TOKEN");
        if (!opt->token || !opt->token[0]) {
            fprintf(stderr, "chat-cli: give --token JWT (or env CHAT_TOKEN), --token-cmd CMD, "
                            "or --sub with a secret\n");
            return -1;
        }
        opt->token_source = TOKEN_STATIC;
    }
    return 0;
}

enum {
    O_URL = 256,
    O_TOKEN,
    O_TOKEN_CMD,
    O_SUB,
    O_NAME,
    O_SECRET,
    O_TTL,
    O_ROOM,
    O_NONINT,
    O_EXPECT,
    O_TIMEOUT,
    O_NO_RECONNECT,
    O_RATE,
    O_BURST,
    O_JSON,
    O_VERBOSE,
    O_INSECURE,
    O_CA,
    O_ORIGIN,
    O_HELP
};

static const struct option longopts[] = {
    {"url", required_argument, NULL, O_URL},
    {"token", required_argument, NULL, O_TOKEN},
    {"token-cmd", required_argument, NULL, O_TOKEN_CMD},
    {"sub", required_argument, NULL, O_SUB},
    {"name", required_argument, NULL, O_NAME},
    {"jwt-secret", required_argument, NULL, O_SECRET},
    {"ttl", required_argument, NULL, O_TTL},
    {"room", required_argument, NULL, O_ROOM},
    {"non-interactive", no_argument, NULL, O_NONINT},
    {"expect", required_argument, NULL, O_EXPECT},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"no-reconnect", no_argument, NULL, O_NO_RECONNECT},
    {"rate", required_argument, NULL, O_RATE},
    {"burst", required_argument, NULL, O_BURST},
    {"json", no_argument, NULL, O_JSON},
    {"verbose", no_argument, NULL, O_VERBOSE},
    {"insecure", no_argument, NULL, O_INSECURE},
    {"ca", required_argument, NULL, O_CA},
    {"origin", required_argument, NULL, O_ORIGIN},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one option; 0 on success. */
static int apply_option(struct cli_options *opt, int ch, char *arg, double *expect)
{
    switch (ch) {
    case O_URL:
        opt->url = arg;
        return 0;
    case O_TOKEN:
        opt->token = arg;
        return 0;
    case O_TOKEN_CMD:
        opt->token_cmd = arg;
        return 0;
    case O_SUB:
        opt->sub = arg;
        return 0;
    case O_NAME:
        opt->name = arg;
        return 0;
    case O_SECRET:
        opt->secret = arg;
        return 0;
    case O_TTL:
        return parse_number("--ttl", arg, &opt->ttl, false);
    case O_ROOM:
        return add_rooms(opt, arg);
    case O_NONINT:
        opt->non_interactive = true;
        return 0;
    case O_EXPECT:
        return parse_number("--expect", arg, expect, true);
    case O_TIMEOUT:
        return parse_number("--timeout", arg, &opt->timeout_s, false);
    case O_NO_RECONNECT:
        opt->reconnect = false;
        return 0;
    case O_RATE:
        return parse_number("--rate", arg, &opt->rate, true);
    case O_BURST:
        return parse_number("--burst", arg, &opt->burst, false);
    case O_JSON:
        opt->json = true;
        return 0;
    case O_VERBOSE:
        opt->verbose = true;
        return 0;
    case O_INSECURE:
        opt->insecure = true;
        return 0;
    case O_CA:
        opt->ca_file = arg;
        return 0;
    case O_ORIGIN:
        opt->origin = arg;
        return 0;
    case O_HELP:
    case 'h':
        usage(stdout);
        exit(0);
    default:
        usage(stderr);
        return -1;
    }
}

int cli_options_parse(struct cli_options *opt, int argc, char **argv)
{
    double expect = 0;
    opt->url = "ws://127.0.0.1:8080/ws";
    opt->timeout_s = 10;
    opt->rate = 20;
    opt->burst = 40;
    opt->ttl = 3600;
    opt->reconnect = true;
    opt->secret = getenv("JWT_SECRET");
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (apply_option(opt, ch, optarg, &expect) != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "chat-cli: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    opt->expect_messages = (long)expect;
    return choose_token_source(opt);
}
