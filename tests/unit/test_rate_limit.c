/*
 * test_rate_limit — token bucket and abuse window (common/rate_limit.c) against rate_limit.h
 * and PROTOCOL.md §3.
 *
 * One test per behaviour. Time is passed in, so every test drives its own clock in ms.
 */
#include "rate_limit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define T0 1000000 /* an arbitrary monotonic start, not 0 */

/* Takes from b at now_ms until refused; returns how many were taken. */
static int drain(struct token_bucket *b, double rate, int burst, int64_t now_ms)
{
    int n = 0;
    while (token_bucket_take(b, rate, burst, now_ms))
        n++;
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Token bucket                                                                               */
/* ---------------------------------------------------------------------------------------- */

static void test_bucket_full_at_start(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 5, T0);
    for (int i = 0; i < 5; i++)
        assert_true(token_bucket_take(&b, 1.0, 5, T0));
    assert_false(token_bucket_take(&b, 1.0, 5, T0));
}

static void test_bucket_refills_at_rate(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 5, T0);
    assert_int_equal(drain(&b, 10.0, 5, T0), 5);
    /* 10/s: one token per 100 ms. */
    assert_false(token_bucket_take(&b, 10.0, 5, T0 + 99));
    assert_true(token_bucket_take(&b, 10.0, 5, T0 + 100));
    assert_false(token_bucket_take(&b, 10.0, 5, T0 + 100));
    assert_int_equal(drain(&b, 10.0, 5, T0 + 400), 3);
}

static void test_bucket_accumulates_fractions_across_calls(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 1, T0);
    assert_true(token_bucket_take(&b, 1.0, 1, T0));
    /* Refused takes do not throw away the partial refill. */
    assert_false(token_bucket_take(&b, 1.0, 1, T0 + 250));
    assert_false(token_bucket_take(&b, 1.0, 1, T0 + 500));
    assert_false(token_bucket_take(&b, 1.0, 1, T0 + 750));
    assert_true(token_bucket_take(&b, 1.0, 1, T0 + 1000));
}

static void test_bucket_refill_capped_at_burst(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 5, T0);
    assert_int_equal(drain(&b, 10.0, 5, T0), 5);
    /* An hour idle is worth 36,000 tokens at 10/s, but the bucket holds 5. */
    assert_int_equal(drain(&b, 10.0, 5, T0 + 3600 * 1000), 5);
}

static void test_bucket_never_exceeds_burst_while_full(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 3, T0);
    assert_int_equal(drain(&b, 100.0, 3, T0 + 60 * 1000), 3);
}

static void test_bucket_no_refill_backwards_in_time(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 5, T0);
    assert_int_equal(drain(&b, 10.0, 5, T0), 5);
    assert_false(token_bucket_take(&b, 10.0, 5, T0 - 10 * 1000));
    /* The step back did not move the refill origin: T0 + 100 is worth one token, not 101. */
    assert_int_equal(drain(&b, 10.0, 5, T0 + 100), 1);
}

static void test_bucket_step_back_in_time_takes_no_tokens_away(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 5, T0);
    /* A clock earlier than the last call neither refills nor drains: the burst is still there. */
    assert_int_equal(drain(&b, 10.0, 5, T0 - 10 * 1000), 5);
}

static void test_bucket_same_instant_gives_nothing(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 2, T0);
    assert_int_equal(drain(&b, 1000.0, 2, T0), 2);
    assert_false(token_bucket_take(&b, 1000.0, 2, T0));
    assert_true(token_bucket_take(&b, 1000.0, 2, T0 + 1));
}

static void test_bucket_steady_rate_is_sustained(void **state)
{
    (void)state;
    struct token_bucket b;
    token_bucket_init(&b, 1, T0);
    /* 20/s, one take every 50 ms for a minute: never refused. */
    for (int64_t t = T0; t < T0 + 60 * 1000; t += 50)
        assert_true(token_bucket_take(&b, 20.0, 1, t));
}

/* ---------------------------------------------------------------------------------------- */
/* Abuse window                                                                               */
/* ---------------------------------------------------------------------------------------- */

static void test_window_allocates_lazily(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    assert_null(w.stamps);
    assert_false(abuse_window_hit(&w, 3, 1000, T0));
    assert_non_null(w.stamps);
    assert_int_equal(w.count, 1);
    abuse_window_free(&w);
}

static void test_window_limit_th_hit_within_window_is_true(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    assert_false(abuse_window_hit(&w, 3, 1000, T0));
    assert_false(abuse_window_hit(&w, 3, 1000, T0 + 10));
    assert_true(abuse_window_hit(&w, 3, 1000, T0 + 20));
    abuse_window_free(&w);
}

static void test_window_fewer_than_limit_hits_are_false(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    for (int i = 0; i < 9; i++)
        assert_false(abuse_window_hit(&w, 10, 1000, T0));
    abuse_window_free(&w);
}

static void test_window_hits_spread_beyond_window_are_false(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    /* One hit every 600 ms: any three span 1200 ms, more than the 1000 ms window. */
    for (int i = 0; i < 50; i++)
        assert_false(abuse_window_hit(&w, 3, 1000, T0 + i * 600));
    abuse_window_free(&w);
}

static void test_window_slides(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    assert_false(abuse_window_hit(&w, 3, 1000, T0));
    assert_false(abuse_window_hit(&w, 3, 1000, T0 + 600));
    assert_false(abuse_window_hit(&w, 3, 1000, T0 + 1200)); /* T0 has slid out */
    assert_true(abuse_window_hit(&w, 3, 1000, T0 + 1300));  /* 600, 1200, 1300 */
    abuse_window_free(&w);
}

static void test_window_span_boundary(void **state)
{
    (void)state;
    /* limit hits spanning window_ms - 1 are within it; spanning exactly window_ms are not. */
    struct abuse_window inside = {0}, outside = {0};
    assert_false(abuse_window_hit(&inside, 2, 1000, T0));
    assert_true(abuse_window_hit(&inside, 2, 1000, T0 + 999));
    assert_false(abuse_window_hit(&outside, 2, 1000, T0));
    assert_false(abuse_window_hit(&outside, 2, 1000, T0 + 1000));
    abuse_window_free(&inside);
    abuse_window_free(&outside);
}

static void test_window_limit_one_closes_on_first_hit(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    assert_true(abuse_window_hit(&w, 1, 1000, T0));
    abuse_window_free(&w);
}

static void test_window_non_positive_limit_is_false_and_allocates_nothing(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    assert_false(abuse_window_hit(&w, 0, 1000, T0));
    assert_false(abuse_window_hit(&w, -1, 1000, T0));
    assert_null(w.stamps);
    abuse_window_free(&w);
}

static void test_window_free_resets_for_reuse(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    assert_false(abuse_window_hit(&w, 2, 1000, T0));
    abuse_window_free(&w);
    assert_null(w.stamps);
    assert_int_equal(w.count, 0);
    assert_int_equal(w.next, 0);
    /* The earlier hit is forgotten: a new first hit is not the second. */
    assert_false(abuse_window_hit(&w, 2, 1000, T0 + 10));
    assert_true(abuse_window_hit(&w, 2, 1000, T0 + 20));
    abuse_window_free(&w);
}

static void test_window_free_of_unused_window(void **state)
{
    (void)state;
    struct abuse_window w = {0};
    abuse_window_free(&w);
    abuse_window_free(&w);
    assert_null(w.stamps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_full_at_start),
        cmocka_unit_test(test_bucket_refills_at_rate),
        cmocka_unit_test(test_bucket_accumulates_fractions_across_calls),
        cmocka_unit_test(test_bucket_refill_capped_at_burst),
        cmocka_unit_test(test_bucket_never_exceeds_burst_while_full),
        cmocka_unit_test(test_bucket_no_refill_backwards_in_time),
        cmocka_unit_test(test_bucket_step_back_in_time_takes_no_tokens_away),
        cmocka_unit_test(test_bucket_same_instant_gives_nothing),
        cmocka_unit_test(test_bucket_steady_rate_is_sustained),
        cmocka_unit_test(test_window_allocates_lazily),
        cmocka_unit_test(test_window_limit_th_hit_within_window_is_true),
        cmocka_unit_test(test_window_fewer_than_limit_hits_are_false),
        cmocka_unit_test(test_window_hits_spread_beyond_window_are_false),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_window_span_boundary),
        cmocka_unit_test(test_window_limit_one_closes_on_first_hit),
        cmocka_unit_test(test_window_non_positive_limit_is_false_and_allocates_nothing),
        cmocka_unit_test(test_window_free_resets_for_reuse),
        cmocka_unit_test(test_window_free_of_unused_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
