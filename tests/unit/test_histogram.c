/*
 * test_histogram — the log-linear latency histogram (common/histogram.c) against histogram.h.
 *
 * One test per behaviour. Percentiles are checked against exact percentiles of the same data
 * (sorted copy, nearest-rank definition), with the 1% relative error the histogram promises.
 * Random data comes from a fixed-seed generator so a failure reproduces.
 */
#include "histogram.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* xorshift64*: deterministic, good enough to spread values over the whole range. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* A latency-like value: log-uniform between 1 and 2^maxbits. */
static uint64_t rng_value(uint64_t *s, unsigned maxbits)
{
    unsigned bits = (unsigned)(rng_next(s) % maxbits) + 1;
    uint64_t mask = bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    return (rng_next(s) & mask) | 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted[0..n). */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double pct)
{
    if (pct <= 0)
        return sorted[0];
    size_t rank = (size_t)((double)n * pct / 100.0 - 1e-9);
    if ((double)rank < (double)n * pct / 100.0 - 1e-9)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

static void assert_within_1pct(uint64_t got, uint64_t want)
{
    uint64_t diff = got > want ? got - want : want - got;
    if ((double)diff > (double)want * 0.01) {
        print_error("got %llu, want %llu (error %.3f%%)\n", (unsigned long long)got,
                    (unsigned long long)want, want ? 100.0 * (double)diff / (double)want : 100.0);
        fail();
    }
}

static struct histogram *new_histogram(void)
{
    struct histogram *h = malloc(sizeof(*h));
    assert_non_null(h);
    histogram_init(h);
    return h;
}

static void test_empty_histogram_answers_zero(void **state)
{
    (void)state;
    struct histogram *h = new_histogram();
    assert_int_equal(h->count, 0);
    assert_int_equal(histogram_min(h), 0);
    assert_int_equal(histogram_max(h), 0);
    assert_true(histogram_mean(h) == 0.0);
    assert_int_equal(histogram_percentile(h, 0), 0);
    assert_int_equal(histogram_percentile(h, 50), 0);
    assert_int_equal(histogram_percentile(h, 100), 0);
    free(h);
}

static void test_small_values_are_exact(void **state)
{
    (void)state;
    struct histogram *h = new_histogram();
    for (uint64_t v = 1; v <= 100; v++)
        histogram_record(h, v);
    assert_int_equal(h->count, 100);
    assert_int_equal(histogram_percentile(h, 50), 50);
    assert_int_equal(histogram_percentile(h, 90), 90);
    assert_int_equal(histogram_percentile(h, 99), 99);
    assert_int_equal(histogram_percentile(h, 1), 1);
    assert_int_equal(histogram_percentile(h, 0.5), 1);
    assert_int_equal(histogram_percentile(h, 100), 100);
    free(h);
}

static void test_min_max_mean_count_are_exact(void **state)
{
    (void)state;
    struct histogram *h = new_histogram();
    const uint64_t values[] = {1234567, 3, 999, 42, 77777};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        histogram_record(h, values[i]);
        sum += values[i];
    }
    assert_int_equal(h->count, 5);
    assert_int_equal(histogram_min(h), 3);
    assert_int_equal(histogram_max(h), 1234567);
    assert_true(histogram_mean(h) == (double)sum / 5.0);
    assert_int_equal(histogram_percentile(h, 0), 3);
    assert_int_equal(histogram_percentile(h, 100), 1234567);
    free(h);
}

static void test_zero_is_a_value(void **state)
{
    (void)state;
    struct histogram *h = new_histogram();
    histogram_record(h, 0);
    histogram_record(h, 0);
    histogram_record(h, 10);
    assert_int_equal(histogram_min(h), 0);
    assert_int_equal(histogram_percentile(h, 50), 0);
    assert_int_equal(histogram_percentile(h, 100), 10);
    free(h);
}

static void test_buckets_tile_the_range_in_order(void **state)
{
    (void)state;
    assert_int_equal(histogram_bucket_lowest(0), 0);
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        uint64_t lo = histogram_bucket_lowest(i), hi = histogram_bucket_highest(i);
        assert_true(lo <= hi);
        assert_int_equal(histogram_bucket_index(lo), i);
        assert_int_equal(histogram_bucket_index(hi), i);
        if (i + 1 < HISTOGRAM_BUCKETS)
            assert_int_equal(histogram_bucket_lowest(i + 1), hi + 1);
    }
    assert_int_equal(histogram_bucket_highest(HISTOGRAM_BUCKETS - 1), HISTOGRAM_MAX_VALUE);
}

static void test_bucket_width_is_under_one_percent_of_its_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        uint64_t lo = histogram_bucket_lowest(i), hi = histogram_bucket_highest(i);
        uint64_t mid = lo + (hi - lo) / 2;
        /* the reported midpoint against the extremes of the bucket */
        assert_within_1pct(mid, lo == 0 ? 0 : lo);
        assert_within_1pct(mid, hi);
    }
}

static void test_percentiles_of_random_data_within_one_percent(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint64_t *values = malloc(N * sizeof(*values));
    assert_non_null(values);
    struct histogram *h = new_histogram();
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < N; i++) {
        values[i] = rng_value(&seed, 30);
        histogram_record(h, values[i]);
    }
    qsort(values, N, sizeof(*values), cmp_u64);
    const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999, 100};
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
        assert_within_1pct(histogram_percentile(h, pcts[i]), exact_percentile(values, N, pcts[i]));
    free(values);
    free(h);
}

static void test_percentile_rank_is_not_rounded_up_by_floating_point(void **state)
{
    (void)state;
    struct histogram *h = new_histogram();
    for (uint64_t v = 1; v <= 1000; v++)
        histogram_record(h, v * 100000); /* wide buckets: neighbours are far apart */
    /* 99.9% of 1000 values is the 999th, not the 1000th */
    assert_within_1pct(histogram_percentile(h, 99.9), 999 * 100000);
    assert_true(histogram_percentile(h, 99.9) < 1000 * 100000);
    assert_within_1pct(histogram_percentile(h, 50), 500 * 100000);
    free(h);
}

static void test_percentile_out_of_range_is_clamped(void **state)
{
    (void)state;
    struct histogram *h = new_histogram();
    histogram_record(h, 5);
    histogram_record(h, 500000);
    assert_int_equal(histogram_percentile(h, -3), 5);
    assert_int_equal(histogram_percentile(h, 250), 500000);
    free(h);
}

static void test_merge_equals_recording_both_streams(void **state)
{
    (void)state;
    struct histogram *a = new_histogram(), *b = new_histogram(), *all = new_histogram();
    uint64_t seed = 12345;
    for (int i = 0; i < 50000; i++) {
        uint64_t v = rng_value(&seed, 36);
        histogram_record(i % 3 ? a : b, v);
        histogram_record(all, v);
    }
    histogram_merge(a, b);
    assert_int_equal(a->count, all->count);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    assert_int_equal(a->sum, all->sum);
    assert_memory_equal(a->counts, all->counts, sizeof(all->counts));
    assert_int_equal(histogram_percentile(a, 99), histogram_percentile(all, 99));
    free(a);
    free(b);
    free(all);
}

static void test_merge_with_empty_keeps_values(void **state)
{
    (void)state;
    struct histogram *a = new_histogram(), *empty = new_histogram();
    histogram_record(a, 70);
    histogram_merge(a, empty);
    assert_int_equal(a->count, 1);
    assert_int_equal(histogram_min(a), 70);
    histogram_merge(empty, a);
    assert_int_equal(empty->count, 1);
    assert_int_equal(histogram_min(empty), 70);
    assert_int_equal(histogram_max(empty), 70);
    free(a);
    free(empty);
}

static void test_record_n_equals_n_records(void **state)
{
    (void)state;
    struct histogram *a = new_histogram(), *b = new_histogram();
    histogram_record_n(a, 12345, 7);
    histogram_record_n(a, 9, 0); /* no-op */
    for (int i = 0; i < 7; i++)
        histogram_record(b, 12345);
    assert_int_equal(a->count, 7);
    assert_int_equal(a->min, b->min);
    assert_int_equal(a->sum, b->sum);
    assert_memory_equal(a->counts, b->counts, sizeof(a->counts));
    free(a);
    free(b);
}

static void test_values_above_the_range_are_clamped_and_counted(void **state)
{
    (void)state;
    struct histogram *h = new_histogram();
    histogram_record(h, 10);
    histogram_record(h, UINT64_MAX);
    assert_int_equal(h->count, 2);
    assert_int_equal(h->clamped, 1);
    assert_int_equal(histogram_max(h), UINT64_MAX);
    assert_int_equal(h->counts[HISTOGRAM_BUCKETS - 1], 1);
    assert_int_equal(histogram_percentile(h, 100), UINT64_MAX);
    assert_int_equal(h->sum, UINT64_MAX); /* saturated, not wrapped */
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_histogram_answers_zero),
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_min_max_mean_count_are_exact),
        cmocka_unit_test(test_zero_is_a_value),
        cmocka_unit_test(test_buckets_tile_the_range_in_order),
        cmocka_unit_test(test_bucket_width_is_under_one_percent_of_its_values),
        cmocka_unit_test(test_percentiles_of_random_data_within_one_percent),
        cmocka_unit_test(test_percentile_rank_is_not_rounded_up_by_floating_point),
        cmocka_unit_test(test_percentile_out_of_range_is_clamped),
        cmocka_unit_test(test_merge_equals_recording_both_streams),
        cmocka_unit_test(test_merge_with_empty_keeps_values),
        cmocka_unit_test(test_record_n_equals_n_records),
        cmocka_unit_test(test_values_above_the_range_are_clamped_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
