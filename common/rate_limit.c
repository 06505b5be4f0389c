/*
 * rate_limit — token bucket and abuse window; see rate_limit.h. No clocks read here: callers pass
 * monotonic milliseconds, which keeps the logic deterministic under test.
 */
#include "rate_limit.h"

#include <stdlib.h>

void token_bucket_init(struct token_bucket *b, int burst, int64_t now_ms)
{
    b->tokens = burst;
    b->last_ms = now_ms;
}

bool token_bucket_take(struct token_bucket *b, double rate_per_s, int burst, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate_per_s / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    return false;
}

bool abuse_window_hit(struct abuse_window *w, int limit, int64_t window_ms, int64_t now_ms)
{
    if (limit <= 0)
        return false;
    if (!w->stamps) {
        w->stamps = calloc((size_t)limit, sizeof(*w->stamps));
        if (!w->stamps)
            return false;
    }
    w->stamps[w->next] = now_ms;
    w->next = (w->next + 1) % limit;
    if (w->count < limit)
        w->count++;
    if (w->count < limit)
        return false;
    /* Full ring: the oldest stamp is at `next`; all `limit` hits fell within the window? */
    return now_ms - w->stamps[w->next] < window_ms;
}

void abuse_window_free(struct abuse_window *w)
{
    free(w->stamps);
    w->stamps = NULL;
    w->count = w->next = 0;
}
