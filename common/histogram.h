/*
 * histogram — a log-linear (HDR-style) histogram of non-negative integer values, meant for
 * latencies in microseconds. Pure: no I/O, no allocation, no globals; a struct histogram is a
 * plain value that can live on the stack, in a struct or on the heap.
 *
 * Layout and why: values below 2 * HISTOGRAM_SUB_BUCKETS are counted exactly (one bucket per
 * value). Above that, every power-of-two range [2^m, 2^(m+1)) is split into
 * HISTOGRAM_SUB_BUCKETS equal linear buckets of width 2^(m - HISTOGRAM_SUB_BUCKET_BITS). So a
 * bucket is never wider than 1/128 of the values it holds, and reporting a bucket's midpoint is
 * within 0.4% of any value in it — inside the 1% budget, at a fixed ~35 KiB and O(1) record.
 * Counts are plain integers, so merging is adding arrays (threads keep one histogram each and
 * merge at the end, with no locks on the hot path).
 *
 * Values above HISTOGRAM_MAX_VALUE (about 12.7 days in µs) are clamped to it and counted in
 * `clamped`; min, max and the sum keep the true values.
 */
#ifndef CHAT_HISTOGRAM_H
#define CHAT_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_SUB_BUCKET_BITS 7
#define HISTOGRAM_SUB_BUCKETS (1u << HISTOGRAM_SUB_BUCKET_BITS) /* 128 */
#define HISTOGRAM_MAX_EXPONENT 40                               /* values < 2^40 are tracked */
#define HISTOGRAM_MAX_VALUE ((UINT64_C(1) << HISTOGRAM_MAX_EXPONENT) - 1)
/* Exponents 0..SUB_BUCKET_BITS share the exact region; each higher one adds SUB_BUCKETS. */
#define HISTOGRAM_BUCKETS                                                                          \
    ((HISTOGRAM_MAX_EXPONENT - HISTOGRAM_SUB_BUCKET_BITS + 1) * HISTOGRAM_SUB_BUCKETS)

struct histogram {
    uint64_t count;   /* values recorded */
    uint64_t min;     /* UINT64_MAX while empty */
    uint64_t max;     /* 0 while empty */
    uint64_t sum;     /* of the true values, saturating at UINT64_MAX */
    uint64_t clamped; /* values above HISTOGRAM_MAX_VALUE (counted in the last bucket) */
    uint64_t counts[HISTOGRAM_BUCKETS];
};

/* Makes h empty. A zero-filled struct is not empty (min must be UINT64_MAX): call this. */
void histogram_init(struct histogram *h);

/* Records one value. Never fails. */
void histogram_record(struct histogram *h, uint64_t value);

/* Records n copies of value (n may be 0). */
void histogram_record_n(struct histogram *h, uint64_t value, uint64_t n);

/* Adds every value of src to dst; afterwards dst answers as if it had recorded both streams. */
void histogram_merge(struct histogram *dst, const struct histogram *src);

/*
 * The value at percentile pct (0..100; out-of-range values are clamped): the smallest recorded
 * value v such that at least pct% of the values are <= v, reported as the midpoint of v's bucket
 * and kept inside [min, max], so the answer is within 0.4% of an exact percentile. pct 0 gives
 * min, pct 100 gives max; an empty histogram gives 0.
 */
uint64_t histogram_percentile(const struct histogram *h, double pct);

/* min and max are exact; 0 when empty. mean is exact (sum / count); 0 when empty. */
uint64_t histogram_min(const struct histogram *h);
uint64_t histogram_max(const struct histogram *h);
double histogram_mean(const struct histogram *h);

/* Bucket arithmetic, for iterating counts[] (e.g. to draw a CDF). Index of the bucket a value
 * goes to (values above HISTOGRAM_MAX_VALUE go to the last bucket); lowest and highest value a
 * bucket holds (inclusive). */
size_t histogram_bucket_index(uint64_t value);
uint64_t histogram_bucket_lowest(size_t index);
uint64_t histogram_bucket_highest(size_t index);

#endif
