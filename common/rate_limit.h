/*
 * rate_limit — per-connection rate limiting (PROTOCOL.md §3). Pure: time is passed in.
 *
 * token_bucket: `rate` tokens per second up to `burst`, full at connect; each publish or direct
 * takes one. abuse_window: counts rate_limited answers in a sliding window so a client that
 * keeps flooding past the warnings is closed (1008) right after the Nth answer in the window.
 */
#ifndef CHAT_RATE_LIMIT_H
#define CHAT_RATE_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket {
    double tokens;
    int64_t last_ms;
};

void token_bucket_init(struct token_bucket *b, int burst, int64_t now_ms);
/* Refills for the time since the last call, then takes one token if there is one. */
bool token_bucket_take(struct token_bucket *b, double rate_per_s, int burst, int64_t now_ms);

/* Timestamps (ms) of the last `limit` rate_limited answers, as a ring; allocated lazily by the
 * caller only for connections that get rate-limited at all. */
struct abuse_window {
    int64_t *stamps;
    int count; /* stamps held (<= limit) */
    int next;  /* ring write position */
};

/* Records one rate_limited answer at now_ms (pass the same limit for the life of w); true when this is the limit-th answer within
 * window_ms (the caller then closes with 1008). Returns false on allocation failure. */
bool abuse_window_hit(struct abuse_window *w, int limit, int64_t window_ms, int64_t now_ms);
void abuse_window_free(struct abuse_window *w);

#endif
