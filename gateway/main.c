/*
 * main — a gateway node: configuration, key loading, the bus thread, the lws service loop,
 * signals. Invalid configuration exits 2 with one line naming the flag, before anything
 * starts (never half-configured).
 *
 * Signals: SIGTERM/SIGINT only count and wake lws (loop.c; lws_cancel_service is
 * async-signal safe: a write to its pipe); server.c hands them to tick.c, which drains and then
 * ends the loop. The bus thread blocks all signals so this thread's wait is the one interrupted.
 */
#include "config.h"
#include "deadlines.h"
#include "rooms.h"
#include "users.h"
#include "webhooks.h"
#include "tick.h"
#include "gateway.h"
#include "log.h"
#include "loop.h"
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

/* Reads a whole (small) key file; NULL with errno on failure. */
static unsigned char *main_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || n == 0 || n == 65536) {
        free(buf);
        errno = err ? EIO : EINVAL;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static enum auth_alg main_alg(enum config_alg a)
{
    return a == CONFIG_ALG_RS256 ? AUTH_ALG_RS256
           : a == CONFIG_ALG_ES256 ? AUTH_ALG_ES256
                                   : AUTH_ALG_HS256;
}

/* Base-36 digits of v into out (for compact boot ids). */
static void main_base36(uint64_t v, char *out, size_t len)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
        v /= 36;
    } while (v && n < 15);
    size_t i = 0;
    while (n && i + 1 < len)
        out[i++] = tmp[--n];
    out[i] = '\0';
}

/* Parses the configuration and names the node; returns -1 when main should exit with *code. */
static int main_configure(struct gateway_config *cfg, int argc, char **argv, int *code)
{
    char err[256];
    enum config_status st =
        config_parse(cfg, argc, argv, (config_getenv_fn)getenv, err, sizeof(err));
    if (st != CONFIG_OK) {
        if (st == CONFIG_HELP)
            fputs(config_help_text(), stdout);
        else
            fprintf(stderr, "chat-gateway: %s\n", err);
        config_free(cfg);
        *code = st == CONFIG_HELP ? 0 : 2;
        return -1;
    }
    if (cfg->node_id[0] == '\0') {
        char host[48] = "node";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        for (char *p = host; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                *p = '-';
        snprintf(cfg->node_id, sizeof(cfg->node_id), "%s-%d", host, (int)getpid());
    }
    log_init(cfg->log_format, cfg->log_level, cfg->node_id);
    return 0;
}

/* The token policy with its key (the secret, or the public key file's bytes); -1 when the key
 * file cannot be read (reported). */
static int main_policy(struct gateway *gw, const struct gateway_config *cfg)
{
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (cfg->jwt_alg == CONFIG_ALG_HS256) {
        key = (unsigned char *)strdup(cfg->jwt_secret);
        key_len = strlen(cfg->jwt_secret);
    } else if (!(key = main_read_file(cfg->jwt_public_key, &key_len))) {
        fprintf(stderr, "chat-gateway: --jwt-public-key (JWT_PUBLIC_KEY): cannot read %s: %s\n",
                cfg->jwt_public_key, strerror(errno));
        return -1;
    }
    gw->policy = (struct auth_policy){
        .alg = main_alg(cfg->jwt_alg),
        .key = key,
        .key_len = key_len,
        .issuer = cfg->jwt_issuer,
        .audience = cfg->jwt_audience,
        .require_exp = cfg->jwt_require_exp,
        .leeway_s = cfg->jwt_leeway_s,
    };
    return 0;
}

/* Names this boot of the node (conn ids, presence identity), seeds the epoch generator and
 * sets up every module's state; -1 on allocation failure. */
static int main_state(struct gateway *gw, const struct gateway_config *cfg)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char boot[16];
    main_base36((uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000, boot,
                sizeof(boot));
    snprintf(gw->registry.prefix, sizeof(gw->registry.prefix), "%s.%s.", cfg->node_id, boot);
    gw->registry.prefix_len = strlen(gw->registry.prefix);
    snprintf(gw->presence.node, sizeof(gw->presence.node), "%s.%s", cfg->node_id, boot);
    redis_names_init(&gw->store.names, cfg->redis_prefix);
    if (getrandom(&gw->store.rng, sizeof(gw->store.rng), 0) != sizeof(gw->store.rng) ||
        gw->store.rng == 0)
        gw->store.rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^ 1;
    token_bucket_init(&gw->auth_log.bucket, 100, 0);
    rooms_init(gw);
    if (room_registry_init(&gw->rooms) != 0 || strmap_init(&gw->users) != 0 ||
        deadlines_init(gw) != 0) {
        fprintf(stderr, "chat-gateway: out of memory\n");
        return -1;
    }
    return 0;
}

/* The bus, with the hooks through which Redis's unasked events reach the modules. */
static int main_start_bus(struct gateway *gw, const struct gateway_config *cfg)
{
    const struct bus_hooks hooks = {
        .room = rooms_on_push,
        .user = users_on_push,
        .ready = server_on_redis_ready,
        .arg = gw,
    };
    gw->store.bus = bus_start(cfg, LWS_PRE, gw->registry.prefix, &hooks, server_wake, gw->context);
    if (!gw->store.bus) {
        fprintf(stderr, "chat-gateway: cannot start the Redis thread\n");
        return -1;
    }
    return 0;
}

/* Serves until the drain (tick.c) ends the loop. */
static void main_run(struct gateway *gw)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", gw->cfg->port);
    log_event(CONFIG_LOG_INFO, "listening", "port", port, "bind",
              gw->cfg->bind[0] ? gw->cfg->bind : "*", "alg", config_alg_name(gw->cfg->jwt_alg),
              NULL);
    tick_start(gw);
    /* One wake-up at the start: a signal that came before the loop ran is seen, and lws arms
     * its timer (the tick) once it has handled an event. */
    lws_cancel_service(gw->context);
    loop_run();
    log_event(CONFIG_LOG_INFO, "stopping", NULL);
}

int main(int argc, char **argv)
{
    static struct gateway_config cfg;
    static struct gateway gw;
    int code = 0;
    if (main_configure(&cfg, argc, argv, &code) != 0)
        return code;
    gw.cfg = &cfg;
    if (main_policy(&gw, &cfg) != 0) {
        config_free(&cfg);
        return 2;
    }
    if (main_state(&gw, &cfg) != 0)
        return 1;
    loop_signals_install();
    if (server_create(&gw) != 0) {
        fprintf(stderr, "chat-gateway: cannot listen on port %d\n", cfg.port);
        free((void *)gw.policy.key);
        room_registry_free(&gw.rooms);
        config_free(&cfg);
        return 1;
    }
    loop_signals_target(gw.context);
    if (main_start_bus(&gw, &cfg) != 0 || webhooks_start(&gw) != 0)
        return 1;
    main_run(&gw);
    /* The bus goes first: after bus_stop nothing else calls lws_cancel_service. Its last
     * completions (failed publishes) run inside bus_stop and release the sessions that still
     * wait for them; from here on a command is completed at once (store.c). */
    struct bus *bus = gw.store.bus;
    gw.store.bus = NULL;
    bus_stop(bus);
    webhooks_stop(&gw); /* after the last completion, before its connections go */
    loop_signals_target(NULL);
    lws_context_destroy(gw.context);
    loop_free();
    room_registry_free(&gw.rooms);
    room_sync_free(&gw.sync);
    timer_wheel_free(&gw.timers);
    strmap_free(&gw.users); /* empty: every session left it when its socket closed */
    free((void *)gw.policy.key);
    config_free(&cfg);
    log_event(CONFIG_LOG_INFO, "stopped", NULL);
    return 0;
}
