/*
 * deadlines — every connection's timed duties on one timer wheel (common/timer_wheel.h), so
 * their cost follows what is due, not how many connections there are.
 *
 * A session has one wheel timer, due at the earliest of its deadlines:
 *   - heartbeat (PROTOCOL.md §4): a WebSocket ping every period; a peer silent (no frame, no
 *     pong) for two periods is closed with 4001. The first ping of each connection is placed
 *     at a spread-out point of its first period, so connections opened together do not ping
 *     together for ever after;
 *   - token lifetime (§1): at exp + leeway, close 1008 "token expired" (a refresh moves it);
 *   - message timeout: a message whose first fragment arrived must be complete within
 *     --message-timeout, else close 1008 (a peer trickling a large message would otherwise
 *     hold its buffer indefinitely).
 * The silence check does not re-arm on every received frame (that is the hot path): the timer
 * fires at the old bound, looks at the real last_rx_ms, and re-arms.
 */
#include "deadlines.h"
#include "session.h"
#include "clock.h"

#include "log.h"

/* Width of one wheel slot; deadlines are met within one slot plus one tick of tick.c. */
#define DEADLINES_SLOT_MS 250
#define DEADLINES_SLOTS 1024 /* one turn: 256 s */

int deadlines_init(struct gateway *gw)
{
    return timer_wheel_init(&gw->timers, DEADLINES_SLOT_MS, DEADLINES_SLOTS,
                            gateway_mono_ns() / 1000000);
}

static int64_t deadlines_period_ms(const struct session *s)
{
    return (int64_t)s->gw->cfg->heartbeat_s * 1000;
}

static int64_t deadlines_min(int64_t a, int64_t b)
{
    return b && (!a || b < a) ? b : a;
}

void session_timer_rearm(struct session *s)
{
    if (!s->wsi || s->close_code)
        return;
    int64_t due = s->next_ping_ms;
    due = deadlines_min(due, s->last_rx_ms + 2 * deadlines_period_ms(s) + 1);
    due = deadlines_min(due, s->expire_ms);
    due = deadlines_min(due, s->rx_deadline_ms);
    timer_wheel_arm(&s->gw->timers, &s->timer, due);
}

void session_token_changed(struct session *s)
{
    s->expire_ms = 0;
    if (s->claims->exp) {
        /* exp is wall-clock; the deadline is kept on the monotonic clock. */
        int64_t left_ms =
            (s->claims->exp + s->gw->policy.leeway_s) * 1000 - gateway_now_ms();
        s->expire_ms = gateway_mono_ns() / 1000000 + (left_ms > 0 ? left_ms : 0);
    }
    session_timer_rearm(s);
}

/* Spreads first pings over the period: serials are consecutive, the golden ratio scatters
 * them evenly. */
static int64_t deadlines_first_ping(const struct session *s, int64_t now)
{
    int64_t period = deadlines_period_ms(s);
    uint64_t frac = (s->serial * 0x9E3779B97F4A7C15ull) >> 40; /* 24 bits */
    return now + period / 2 + (int64_t)((uint64_t)(period / 2) * frac >> 24);
}

void session_deadlines_start(struct session *s)
{
    s->next_ping_ms = deadlines_first_ping(s, gateway_mono_ns() / 1000000);
    session_token_changed(s);
}

/* One session's due deadlines; re-arms for the next unless it is closing. */
static void deadlines_fire(struct session *s, int64_t now)
{
    struct gateway *gw = s->gw;
    if (!s->wsi || s->close_code)
        return;
    if (s->expire_ms && now >= s->expire_ms) {
        gw->metrics.token_expired_closes++;
        log_event(CONFIG_LOG_INFO, "token_expired", "conn", s->conn_id, "user", s->claims->sub,
                  NULL);
        session_close(s, 1008, "token expired");
        return;
    }
    if (s->rx_deadline_ms && now >= s->rx_deadline_ms) {
        log_event(CONFIG_LOG_INFO, "message_timeout", "conn", s->conn_id, "user",
                  s->claims->sub, NULL);
        session_close(s, 1008, "message not completed in time");
        return;
    }
    int64_t period = deadlines_period_ms(s);
    if (now - s->last_rx_ms > 2 * period) {
        log_event(CONFIG_LOG_INFO, "heartbeat_timeout", "conn", s->conn_id, "user",
                  s->claims->sub, NULL);
        session_close(s, 4001, "heartbeat timeout");
        return;
    }
    if (now >= s->next_ping_ms) {
        s->ping_due = true;
        session_want_write(s);
        s->next_ping_ms = now + period;
    }
    session_timer_rearm(s);
}

void deadlines_run(struct gateway *gw, int64_t now_ms)
{
    for (struct wheel_timer *t = timer_wheel_advance(&gw->timers, now_ms), *next; t; t = next) {
        next = t->next;
        deadlines_fire(lws_container_of(t, struct session, timer), now_ms);
    }
}
