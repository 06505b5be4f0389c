/*
 * tick — the connection thread's periodic work, on one lws timer (lws_sul): every 250 ms it
 * hands due per-connection deadlines to deadlines.c (heartbeat pings and timeouts, token
 * expiry, message timeouts — a timer wheel, so the cost follows what is due, not how many
 * connections there are), once a second the presence pass, and while draining the drain pace.
 *
 * We send heartbeat pings ourselves (with a payload) rather than rely on lws's idle pings:
 * lws 4.1 never reports a pong with an empty payload to the protocol callback, so the answers
 * to its own pings are invisible here. (lws's own validity timer is off: see server_create.)
 *
 * Drain (§5): the first SIGTERM/SIGINT marks the node draining (new handshakes and /readyz get
 * 503) and closes the connections with 1001 spread evenly over --drain-seconds, so clients
 * reconnect elsewhere without a thundering herd; the loop ends when none is left. A second
 * signal closes the rest at once. Either way the process exits 0.
 */
#include "tick.h"
#include "session.h"
#include "deadlines.h"
#include "clock.h"
#include "loop.h"

#include "log.h"
#include "presence.h"
#include "reads.h"

#include <stdio.h>

/* Per-connection deadlines are kept on a wheel of 250 ms slots (deadlines.c). */
#define TICK_IDLE_US (250 * LWS_US_PER_MS)
#define TICK_PRESENCE_MS 1000
#define TICK_DRAIN_US (100 * LWS_US_PER_MS)
/* After the last close frame is queued, how long we wait for sockets to finish closing. */
#define DRAIN_GRACE_MS 3000

static int64_t tick_now_ms(void)
{
    return gateway_mono_ns() / 1000000;
}

/* Closes the share of connections due by now (all of them when drain_now). */
static void tick_drain(struct gateway *gw, int64_t now)
{
    uint64_t due = gw->drain.total;
    int64_t span = gw->drain.deadline_ms - gw->drain.start_ms;
    if (!gw->drain.now && span > 0 && now < gw->drain.deadline_ms)
        due = (gw->drain.total * (uint64_t)(now - gw->drain.start_ms) + (uint64_t)span - 1) /
              (uint64_t)span;
    for (struct session *s = gw->registry.head; s && gw->drain.closed < due; s = s->next) {
        if (s->close_code)
            continue;
        session_close(s, 1001, "node draining");
        gw->drain.closed++;
    }
    if (gw->drain.closed >= due && due >= gw->drain.total) {
        /* Connections that arrived before the drain began but after drain_total was taken, or
         * whose close is pending, are covered here. */
        for (struct session *s = gw->registry.head; s; s = s->next)
            if (!s->close_code)
                session_close(s, 1001, "node draining");
    }
    if (gw->registry.count == 0 || now > gw->drain.deadline_ms + DRAIN_GRACE_MS)
        gw->stop = true;
}

static void tick_fire(lws_sorted_usec_list_t *sul)
{
    struct gateway *gw = lws_container_of(sul, struct gateway, tick);
    int64_t now = tick_now_ms();
    deadlines_run(gw, now);
    reads_tick(gw);
    if (now - gw->presence.ticked_ms >= TICK_PRESENCE_MS) {
        gw->presence.ticked_ms = now;
        presence_tick(gw);
    }
    if (gw->drain.active)
        tick_drain(gw, now);
    if (gw->stop) {
        loop_stop();
        return;
    }
    lws_sul_schedule(gw->context, 0, &gw->tick, tick_fire,
                     gw->drain.active ? TICK_DRAIN_US : TICK_IDLE_US);
}

void tick_start(struct gateway *gw)
{
    lws_sul_schedule(gw->context, 0, &gw->tick, tick_fire, TICK_IDLE_US);
}

void tick_signal(struct gateway *gw, int count)
{
    int64_t now = tick_now_ms();
    if (!gw->drain.active) {
        char secs[16], conns[24];
        snprintf(secs, sizeof(secs), "%d", gw->cfg->drain_s);
        snprintf(conns, sizeof(conns), "%llu", (unsigned long long)gw->registry.count);
        log_event(CONFIG_LOG_INFO, "drain_start", "seconds", secs, "connections", conns, NULL);
        gw->drain.active = true;
        gw->drain.start_ms = now;
        gw->drain.deadline_ms = now + (int64_t)gw->cfg->drain_s * 1000;
        gw->drain.total = gw->registry.count;
        gw->drain.closed = 0;
    }
    if (count >= 2 && !gw->drain.now) {
        log_event(CONFIG_LOG_INFO, "drain_now", NULL);
        gw->drain.now = true;
        gw->drain.deadline_ms = now;
    }
    tick_drain(gw, now);
    if (gw->stop)
        loop_stop();
    else
        lws_sul_schedule(gw->context, 0, &gw->tick, tick_fire, TICK_DRAIN_US);
}
