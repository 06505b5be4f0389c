/*
 * timer_wheel — many per-connection deadlines (heartbeat, token expiry, handshake and trickle
 * timeouts) on one clock, at a cost that does not grow with the number of connections.
 *
 * Pure: time is passed in, nothing is allocated per timer. A hashed wheel of `nslots` slots,
 * each `slot_ms` wide: a timer due at t sits in slot (t / slot_ms) % nslots, in an intrusive
 * doubly linked list, so arming, re-arming and cancelling are O(1). Advancing to `now` visits
 * only the slots whose time has come; a timer further away than one turn of the wheel stays in
 * its slot and is passed over (one comparison) once per turn. Why a wheel rather than lws's own
 * sorted timers: those are kept in one sorted list, O(connections) per insertion (see
 * gateway/server.c on lws's validity timer).
 *
 * Expired timers are handed back as a list (timer->next) rather than through a callback, so
 * the owner decides what to do with each and may re-arm it while handling it.
 */
#ifndef CHAT_TIMER_WHEEL_H
#define CHAT_TIMER_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wheel_timer {
    struct wheel_timer *prev, *next; /* prev == NULL: not armed */
    int64_t due_ms;
};

struct timer_wheel {
    struct wheel_timer *slots; /* list heads (sentinels) */
    size_t nslots;
    int64_t slot_ms;
    int64_t done_ms; /* every timer due before this was handed out */
    size_t armed;
};

/* 0, or -1 on allocation failure. Time starts at now_ms. */
int timer_wheel_init(struct timer_wheel *w, int64_t slot_ms, size_t nslots, int64_t now_ms);
void timer_wheel_free(struct timer_wheel *w);

/* Arms t for due_ms (re-arms it if armed). A due time in the past fires at the next advance. */
void timer_wheel_arm(struct timer_wheel *w, struct wheel_timer *t, int64_t due_ms);
/* Disarms t (no effect when not armed). */
void timer_wheel_cancel(struct timer_wheel *w, struct wheel_timer *t);
static inline bool timer_wheel_armed(const struct wheel_timer *t)
{
    return t->prev != NULL;
}

/* Takes every timer due at or before now_ms out of the wheel and returns them as a list linked
 * by `next` (disarmed, in no particular order; NULL when none). */
struct wheel_timer *timer_wheel_advance(struct timer_wheel *w, int64_t now_ms);

#endif
