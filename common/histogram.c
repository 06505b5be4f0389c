/*
 * histogram — log-linear bucket arithmetic (see histogram.h for the layout and its error bound).
 *
 * Index of a value v: with b = HISTOGRAM_SUB_BUCKET_BITS and S = 2^b, values below 2S map to
 * themselves; otherwise shift = floor(log2 v) - b, so v >> shift lies in [S, 2S), and the index
 * is shift * S + (v >> shift). Consecutive exponents therefore occupy consecutive runs of S
 * indexes, and the mapping is monotonic, which is what percentile walks rely on.
 */
#include "histogram.h"

static inline unsigned histogram_shift_of(uint64_t value)
{
    if (value < 2 * (uint64_t)HISTOGRAM_SUB_BUCKETS)
        return 0;
    unsigned log2 = 63u - (unsigned)__builtin_clzll(value);
    return log2 - HISTOGRAM_SUB_BUCKET_BITS;
}

size_t histogram_bucket_index(uint64_t value)
{
    if (value > HISTOGRAM_MAX_VALUE)
        value = HISTOGRAM_MAX_VALUE;
    unsigned shift = histogram_shift_of(value);
    return (size_t)shift * HISTOGRAM_SUB_BUCKETS + (size_t)(value >> shift);
}

uint64_t histogram_bucket_lowest(size_t index)
{
    if (index < 2 * (size_t)HISTOGRAM_SUB_BUCKETS)
        return index;
    size_t shift = index / HISTOGRAM_SUB_BUCKETS - 1;
    uint64_t sub = index - shift * HISTOGRAM_SUB_BUCKETS; /* in [S, 2S) */
    return sub << shift;
}

uint64_t histogram_bucket_highest(size_t index)
{
    if (index < 2 * (size_t)HISTOGRAM_SUB_BUCKETS)
        return index;
    size_t shift = index / HISTOGRAM_SUB_BUCKETS - 1;
    return histogram_bucket_lowest(index) + ((UINT64_C(1) << shift) - 1);
}

void histogram_init(struct histogram *h)
{
    h->count = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->sum = 0;
    h->clamped = 0;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++)
        h->counts[i] = 0;
}

static inline uint64_t histogram_add_saturating(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void histogram_record_n(struct histogram *h, uint64_t value, uint64_t n)
{
    if (n == 0)
        return;
    h->counts[histogram_bucket_index(value)] += n;
    h->count += n;
    if (value > HISTOGRAM_MAX_VALUE)
        h->clamped += n;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    uint64_t product = value != 0 && n > UINT64_MAX / value ? UINT64_MAX : value * n;
    h->sum = histogram_add_saturating(h->sum, product);
}

void histogram_record(struct histogram *h, uint64_t value)
{
    histogram_record_n(h, value, 1);
}

void histogram_merge(struct histogram *dst, const struct histogram *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum = histogram_add_saturating(dst->sum, src->sum);
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t histogram_min(const struct histogram *h)
{
    return h->count ? h->min : 0;
}

uint64_t histogram_max(const struct histogram *h)
{
    return h->count ? h->max : 0;
}

double histogram_mean(const struct histogram *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

uint64_t histogram_percentile(const struct histogram *h, double pct)
{
    if (h->count == 0)
        return 0;
    if (!(pct > 0.0)) /* also catches NaN */
        return h->min;
    if (pct >= 100.0)
        return h->max;

    /* rank = ceil(count * pct / 100), nudged down by a relative epsilon so that 99.9% of 1000
     * is rank 999, not 1000 because of rounding in the product. */
    double exact = (double)h->count * pct / 100.0;
    exact -= exact * 1e-12;
    uint64_t rank = (uint64_t)exact; /* ceil without libm: chatcommon does not link it */
    if ((double)rank < exact)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;

    uint64_t seen = 0;
    for (size_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo = histogram_bucket_lowest(i);
            uint64_t mid = lo + (histogram_bucket_highest(i) - lo) / 2;
            if (mid < h->min)
                mid = h->min;
            if (mid > h->max)
                mid = h->max;
            return mid;
        }
    }
    return h->max; /* unreachable while counts agree with count */
}
