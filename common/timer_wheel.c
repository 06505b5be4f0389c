/*
 * timer_wheel — see timer_wheel.h. Slot lists are circular with a sentinel head, so unlinking
 * needs no head pointer and no branch.
 */
#include "timer_wheel.h"

#include <stdlib.h>

static size_t wheel_slot(const struct timer_wheel *w, int64_t t)
{
    int64_t tick = t / w->slot_ms;
    return (size_t)(tick % (int64_t)w->nslots);
}

int timer_wheel_init(struct timer_wheel *w, int64_t slot_ms, size_t nslots, int64_t now_ms)
{
    w->slots = calloc(nslots, sizeof(*w->slots));
    if (!w->slots || slot_ms <= 0 || nslots == 0) {
        free(w->slots);
        w->slots = NULL;
        return -1;
    }
    for (size_t i = 0; i < nslots; i++)
        w->slots[i].prev = w->slots[i].next = &w->slots[i];
    w->nslots = nslots;
    w->slot_ms = slot_ms;
    w->done_ms = now_ms - now_ms % slot_ms;
    w->armed = 0;
    return 0;
}

void timer_wheel_free(struct timer_wheel *w)
{
    free(w->slots);
    w->slots = NULL;
}

void timer_wheel_cancel(struct timer_wheel *w, struct wheel_timer *t)
{
    if (!t->prev)
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->prev = t->next = NULL;
    w->armed--;
}

void timer_wheel_arm(struct timer_wheel *w, struct wheel_timer *t, int64_t due_ms)
{
    timer_wheel_cancel(w, t);
    t->due_ms = due_ms;
    /* Already overdue: the slot the next advance visits first. */
    struct wheel_timer *head = &w->slots[wheel_slot(w, due_ms < w->done_ms ? w->done_ms : due_ms)];
    t->next = head;
    t->prev = head->prev;
    head->prev->next = t;
    head->prev = t;
    w->armed++;
}

struct wheel_timer *timer_wheel_advance(struct timer_wheel *w, int64_t now_ms)
{
    struct wheel_timer *fired = NULL;
    /* Visit each slot whose start is <= now; after a long pause, one full turn covers all. */
    int64_t end = now_ms - now_ms % w->slot_ms;
    int64_t first = w->done_ms;
    if (end - first >= w->slot_ms * (int64_t)w->nslots)
        first = end - w->slot_ms * (int64_t)(w->nslots - 1);
    for (int64_t t = first; t <= end && w->armed; t += w->slot_ms) {
        struct wheel_timer *head = &w->slots[wheel_slot(w, t)];
        for (struct wheel_timer *x = head->next, *n; x != head; x = n) {
            n = x->next;
            if (x->due_ms > now_ms)
                continue; /* a later turn of the wheel */
            timer_wheel_cancel(w, x);
            x->next = fired;
            fired = x;
        }
    }
    w->done_ms = end;
    return fired;
}
