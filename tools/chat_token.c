/*
 * chat-token — prints a signed JWT for the gateway, for development and scripts.
 *
 *   chat-token --sub alice [--name Alice] [--rooms 'team-*,general'] [--ttl 3600]
 *              [--secret S | env JWT_SECRET]            (HS256, the default)
 *   chat-token --alg RS256|ES256 --key private.pem --sub alice
 *              [--issuer I] [--audience A]
 *
 * The token goes to stdout followed by a newline, nothing else, so `$(chat-token ...)` works.
 * All claim building and signing is token_mint() (common/token_mint.c, libjwt); this file only
 * reads options and the key file. Exit status: 0 printed, 2 usage or a token that cannot be
 * minted (the reason on stderr).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "token_mint.h"

#define TOKEN_KEY_FILE_MAX (64 * 1024) /* a PEM private key is a few KiB */
#define TOKEN_ROOMS_MAX AUTH_ROOMS_MAX

static void usage(FILE *to)
{
    fputs("usage: chat-token --sub ID [--name NAME] [--rooms 'team-*,general'] [--ttl SECONDS]\n"
          "                  [--secret S | env JWT_SECRET] [--alg HS256|RS256|ES256 --key PEM]\n"
          "                  [--issuer I] [--audience A]\n"
          "  --ttl 0 mints a token without exp (accepted only where exp is not required)\n"
          "  --rooms ''  mints an empty rooms claim (no room allowed)\n",
          to);
}

/* Reads a whole (small) file; returns malloc'd bytes and *len, or NULL with a message. */
static unsigned char *read_key_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "chat-token: cannot open key file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = malloc(TOKEN_KEY_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, TOKEN_KEY_FILE_MAX + 1, f) : 0;
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed || n == 0 || n > TOKEN_KEY_FILE_MAX) {
        fprintf(stderr, "chat-token: key file %s is unreadable, empty or over %d bytes\n", path,
                TOKEN_KEY_FILE_MAX);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    enum { O_SUB = 256, O_NAME, O_ROOMS, O_TTL, O_SECRET, O_ALG, O_KEY, O_ISS, O_AUD, O_HELP };
    static const struct option longopts[] = {
        {"sub", required_argument, NULL, O_SUB},
        {"name", required_argument, NULL, O_NAME},
        {"rooms", required_argument, NULL, O_ROOMS},
        {"ttl", required_argument, NULL, O_TTL},
        {"secret", required_argument, NULL, O_SECRET},
        {"jwt-secret", required_argument, NULL, O_SECRET},
        {"alg", required_argument, NULL, O_ALG},
        {"key", required_argument, NULL, O_KEY},
        {"issuer", required_argument, NULL, O_ISS},
        {"audience", required_argument, NULL, O_AUD},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *sub = NULL, *name = NULL, *secret = getenv("JWT_SECRET"), *key_path = NULL;
    const char *issuer = NULL, *audience = NULL;
    char *rooms_arg = NULL;
    long long ttl = 3600;
    enum auth_alg alg = AUTH_ALG_HS256;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_SUB:
            sub = optarg;
            break;
        case O_NAME:
            name = optarg;
            break;
        case O_ROOMS:
            rooms_arg = optarg;
            break;
        case O_SECRET:
            secret = optarg;
            break;
        case O_KEY:
            key_path = optarg;
            break;
        case O_ISS:
            issuer = optarg;
            break;
        case O_AUD:
            audience = optarg;
            break;
        case O_TTL: {
            char *end = NULL;
            errno = 0;
            ttl = strtoll(optarg, &end, 10);
            if (errno || !end || *end || ttl < 0 || ttl > 10LL * 366 * 86400) {
                fprintf(stderr, "chat-token: --ttl: '%s' is not 0..%lld seconds\n", optarg,
                        10LL * 366 * 86400);
                return 2;
            }
            break;
        }
        case O_ALG:
            if (strcasecmp(optarg, "HS256") == 0) {
                alg = AUTH_ALG_HS256;
            } else if (strcasecmp(optarg, "RS256") == 0) {
                alg = AUTH_ALG_RS256;
            } else if (strcasecmp(optarg, "ES256") == 0) {
                alg = AUTH_ALG_ES256;
            } else {
                fprintf(stderr, "chat-token: --alg: '%s' is not HS256, RS256 or ES256\n", optarg);
                return 2;
            }
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !sub) {
        usage(stderr);
        return 2;
    }

    unsigned char *key_file = NULL;
    const unsigned char *key;
    size_t key_len;
    if (alg == AUTH_ALG_HS256) {
        if (!secret || !secret[0]) {
            fprintf(stderr, "chat-token: HS256 needs --secret or env JWT_SECRET\n");
            return 2;
        }
        key = (const unsigned char *)secret;
        key_len = strlen(secret);
    } else {
        if (!key_path) {
            fprintf(stderr, "chat-token: %s needs --key PRIVATE_KEY.pem\n",
                    alg == AUTH_ALG_RS256 ? "RS256" : "ES256");
            return 2;
        }
        key_file = read_key_file(key_path, &key_len);
        if (!key_file)
            return 2;
        key = key_file;
    }

    /* --rooms 'a, b,c' → {"a","b","c"}; --rooms '' → an empty array (no room allowed). */
    const char *rooms[TOKEN_ROOMS_MAX];
    size_t room_count = 0;
    if (rooms_arg) {
        char *save = NULL;
        for (char *r = strtok_r(rooms_arg, ", ", &save); r; r = strtok_r(NULL, ", ", &save)) {
            if (room_count == TOKEN_ROOMS_MAX) {
                fprintf(stderr, "chat-token: at most %d room patterns\n", TOKEN_ROOMS_MAX);
                free(key_file);
                return 2;
            }
            rooms[room_count++] = r;
        }
    }

    char *token = token_mint(alg, key, key_len, sub, name, rooms_arg ? rooms : NULL, room_count,
                             (int64_t)time(NULL), (int64_t)ttl, issuer, audience);
    free(key_file);
    if (!token) {
        fprintf(stderr,
                "chat-token: cannot mint: check that --sub is 1..%d bytes and does not start with"
                " '@', that names and room patterns are at most %d bytes, and that the key suits"
                " the algorithm\n",
                AUTH_CLAIM_MAX_BYTES, AUTH_CLAIM_MAX_BYTES);
        return 2;
    }
    puts(token);
    free(token);
    return 0;
}
