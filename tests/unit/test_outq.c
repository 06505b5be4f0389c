/*
 * test_outq — a connection's outbound frame queue (common/outq.c) against outq.h.
 *
 * One test per behaviour. Frames carry a sequence number in `offset` so order is checked by
 * identity, and the tests hold their own reference to every frame so the queue's references
 * are visible in `refs` (1 = only the test holds it).
 */
#include "outq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define NO_CAP SIZE_MAX

/* A frame of len payload bytes tagged with seq. */
static struct frame *make_frame(uint64_t seq, size_t len)
{
    struct frame *f = frame_alloc(0, len);
    assert_non_null(f);
    memset(frame_payload(f), 'x', len);
    f->offset = seq;
    return f;
}

static void make_frames(struct frame **frames, unsigned n, size_t len)
{
    for (unsigned i = 0; i < n; i++)
        frames[i] = make_frame(i, len);
}

static void unref_frames(struct frame **frames, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        frame_unref(frames[i]);
}

/* Pops one frame, asserting it is expected. */
static void pop_expect(struct outq *q, const struct frame *expected)
{
    assert_ptr_equal(outq_peek(q), expected);
    outq_pop(q);
}

static void test_zeroed_queue_is_empty_without_ring(void **state)
{
    (void)state;
    struct outq q = {0};
    assert_true(outq_empty(&q));
    assert_null(outq_peek(&q));
    assert_null(q.ring);
    outq_pop(&q); /* no-op */
    assert_true(outq_empty(&q));
    assert_int_equal(q.bytes, 0);
    outq_clear(&q);
}

static void test_push_takes_a_reference(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *f = make_frame(1, 10);
    assert_int_equal(outq_push(&q, f, NO_CAP), 0);
    assert_int_equal(f->refs, 2);
    assert_false(outq_empty(&q));
    assert_ptr_equal(outq_peek(&q), f);
    outq_clear(&q);
    frame_unref(f);
}

static void test_peek_does_not_remove(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *f = make_frame(1, 10);
    assert_int_equal(outq_push(&q, f, NO_CAP), 0);
    assert_ptr_equal(outq_peek(&q), f);
    assert_ptr_equal(outq_peek(&q), f);
    assert_int_equal(q.count, 1);
    assert_int_equal(f->refs, 2);
    outq_clear(&q);
    frame_unref(f);
}

static void test_fifo_order_across_ring_growth(void **state)
{
    (void)state;
    enum { N = 300 };
    struct frame *frames[N];
    make_frames(frames, N, 1);
    struct outq q = {0};
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(outq_push(&q, frames[i], NO_CAP), 0);
    assert_true(q.cap >= N);
    for (unsigned i = 0; i < N; i++)
        pop_expect(&q, frames[i]);
    assert_true(outq_empty(&q));
    outq_clear(&q);
    unref_frames(frames, N);
}

static void test_fifo_order_across_wrap_around(void **state)
{
    (void)state;
    enum { N = 64 };
    struct frame *frames[N];
    make_frames(frames, N, 1);
    struct outq q = {0};
    /* Keep a handful queued while the write position laps the (smallest) ring several times. */
    unsigned next_push = 0, next_pop = 0;
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(outq_push(&q, frames[next_push++], NO_CAP), 0);
    unsigned ring_cap = q.cap;
    while (next_push < N) {
        assert_int_equal(outq_push(&q, frames[next_push++], NO_CAP), 0);
        pop_expect(&q, frames[next_pop++]);
    }
    assert_int_equal(q.cap, ring_cap); /* lapped, never grew */
    while (next_pop < N)
        pop_expect(&q, frames[next_pop++]);
    assert_true(outq_empty(&q));
    outq_clear(&q);
    unref_frames(frames, N);
}

static void test_fifo_order_when_growing_a_wrapped_ring(void **state)
{
    (void)state;
    enum { N = 40 };
    struct frame *frames[N];
    make_frames(frames, N, 1);
    struct outq q = {0};
    unsigned next_push = 0, next_pop = 0;
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(outq_push(&q, frames[next_push++], NO_CAP), 0);
    for (unsigned i = 0; i < 5; i++)
        pop_expect(&q, frames[next_pop++]);
    unsigned ring_cap = q.cap;
    assert_true(q.head != 0);
    /* Fill the ring so it wraps, then keep pushing so it grows while head is not at 0. */
    while (next_push < N)
        assert_int_equal(outq_push(&q, frames[next_push++], NO_CAP), 0);
    assert_true(q.cap > ring_cap);
    while (next_pop < N)
        pop_expect(&q, frames[next_pop++]);
    assert_true(outq_empty(&q));
    outq_clear(&q);
    unref_frames(frames, N);
}

static void test_bytes_track_pushes_and_pops(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *a = make_frame(1, 10), *b = make_frame(2, 25), *c = make_frame(3, 0);
    assert_int_equal(outq_push(&q, a, NO_CAP), 0);
    assert_int_equal(q.bytes, 10);
    assert_int_equal(outq_push(&q, b, NO_CAP), 0);
    assert_int_equal(q.bytes, 35);
    assert_int_equal(outq_push(&q, c, NO_CAP), 0);
    assert_int_equal(q.bytes, 35);
    outq_pop(&q);
    assert_int_equal(q.bytes, 25);
    outq_pop(&q);
    assert_int_equal(q.bytes, 0);
    outq_pop(&q);
    assert_int_equal(q.bytes, 0);
    assert_true(outq_empty(&q));
    outq_clear(&q);
    frame_unref(a);
    frame_unref(b);
    frame_unref(c);
}

static void test_push_up_to_cap_exactly_is_accepted(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *a = make_frame(1, 60), *b = make_frame(2, 40);
    assert_int_equal(outq_push(&q, a, 100), 0);
    assert_int_equal(outq_push(&q, b, 100), 0);
    assert_int_equal(q.bytes, 100);
    assert_int_equal(q.count, 2);
    outq_clear(&q);
    frame_unref(a);
    frame_unref(b);
}

static void test_push_over_cap_is_refused_and_leaves_queue_unchanged(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *a = make_frame(1, 60), *b = make_frame(2, 30), *over = make_frame(3, 11);
    assert_int_equal(outq_push(&q, a, 100), 0);
    assert_int_equal(outq_push(&q, b, 100), 0);
    struct outq before = q;

    assert_int_equal(outq_push(&q, over, 100), -1);
    assert_ptr_equal(q.ring, before.ring);
    assert_int_equal(q.cap, before.cap);
    assert_int_equal(q.head, before.head);
    assert_int_equal(q.count, before.count);
    assert_int_equal(q.bytes, before.bytes);
    assert_int_equal(over->refs, 1); /* f untouched */
    assert_int_equal(a->refs, 2);
    assert_int_equal(b->refs, 2);

    /* The queue still works in order afterwards. */
    pop_expect(&q, a);
    pop_expect(&q, b);
    assert_true(outq_empty(&q));
    outq_clear(&q);
    frame_unref(a);
    frame_unref(b);
    frame_unref(over);
}

static void test_frame_larger_than_cap_accepted_into_empty_queue(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *big = make_frame(1, 500), *small = make_frame(2, 1);
    assert_int_equal(outq_push(&q, big, 100), 0);
    assert_int_equal(q.bytes, 500);
    assert_int_equal(big->refs, 2);
    /* Anything further is refused until it drains. */
    assert_int_equal(outq_push(&q, small, 100), -1);
    assert_int_equal(small->refs, 1);
    outq_pop(&q);
    assert_int_equal(outq_push(&q, small, 100), 0);
    outq_clear(&q);
    frame_unref(big);
    frame_unref(small);
}

static void test_pop_releases_queue_reference(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *a = make_frame(1, 5), *b = make_frame(2, 5);
    assert_int_equal(outq_push(&q, a, NO_CAP), 0);
    assert_int_equal(outq_push(&q, b, NO_CAP), 0);
    outq_pop(&q);
    assert_int_equal(a->refs, 1);
    assert_int_equal(b->refs, 2);
    outq_pop(&q);
    assert_int_equal(b->refs, 1);
    outq_clear(&q);
    frame_unref(a);
    frame_unref(b);
}

static void test_pop_frees_frame_when_queue_held_last_reference(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *f = make_frame(1, 5);
    assert_int_equal(outq_push(&q, f, NO_CAP), 0);
    frame_unref(f); /* the queue now owns the only reference */
    assert_int_equal(outq_peek(&q)->refs, 1);
    outq_pop(&q); /* LeakSanitizer flags it if this does not free */
    assert_true(outq_empty(&q));
    outq_clear(&q);
}

static void test_shared_frame_counts_one_reference_per_queue(void **state)
{
    (void)state;
    enum { QUEUES = 5 };
    struct outq qs[QUEUES];
    memset(qs, 0, sizeof(qs));
    struct frame *f = make_frame(1, 10);
    for (unsigned i = 0; i < QUEUES; i++)
        assert_int_equal(outq_push(&qs[i], f, NO_CAP), 0);
    assert_int_equal(f->refs, 1 + QUEUES);
    for (unsigned i = 0; i < QUEUES; i++) {
        outq_pop(&qs[i]);
        assert_int_equal(f->refs, QUEUES - i);
    }
    for (unsigned i = 0; i < QUEUES; i++)
        outq_clear(&qs[i]);
    frame_unref(f);
}

static void test_clear_releases_every_reference_and_ring(void **state)
{
    (void)state;
    enum { N = 20 };
    struct frame *frames[N];
    make_frames(frames, N, 3);
    struct outq q = {0};
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(outq_push(&q, frames[i], NO_CAP), 0);
    outq_clear(&q);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(frames[i]->refs, 1);
    assert_true(outq_empty(&q));
    assert_null(q.ring);
    assert_int_equal(q.cap, 0);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.head, 0);
    unref_frames(frames, N);
}

static void test_clear_leaves_queue_reusable(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *a = make_frame(1, 5), *b = make_frame(2, 7);
    assert_int_equal(outq_push(&q, a, NO_CAP), 0);
    outq_clear(&q);
    assert_int_equal(outq_push(&q, b, NO_CAP), 0);
    assert_int_equal(q.bytes, 7);
    pop_expect(&q, b);
    outq_clear(&q);
    outq_clear(&q); /* twice is harmless */
    frame_unref(a);
    frame_unref(b);
}

static void test_ring_released_after_draining_large_burst(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct frame *f = make_frame(1, 1);
    struct outq q = {0};
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(outq_push(&q, f, NO_CAP), 0);
    assert_int_equal(f->refs, 1 + N);
    assert_true(q.cap >= N);
    while (!outq_empty(&q))
        outq_pop(&q);
    assert_null(q.ring);
    assert_int_equal(q.cap, 0);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(f->refs, 1);
    /* And it grows again from nothing. */
    assert_int_equal(outq_push(&q, f, NO_CAP), 0);
    pop_expect(&q, f);
    outq_clear(&q);
    frame_unref(f);
}

static void test_small_ring_kept_after_draining(void **state)
{
    (void)state;
    /* A steady one-at-a-time flow must not pay a malloc per message (outq.c). */
    struct frame *f = make_frame(1, 1);
    struct outq q = {0};
    assert_int_equal(outq_push(&q, f, NO_CAP), 0);
    struct frame **ring = q.ring;
    assert_non_null(ring);
    for (unsigned i = 0; i < 100; i++) {
        outq_pop(&q);
        assert_ptr_equal(q.ring, ring);
        assert_int_equal(outq_push(&q, f, NO_CAP), 0);
    }
    outq_clear(&q);
    frame_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_queue_is_empty_without_ring),
        cmocka_unit_test(test_push_takes_a_reference),
        cmocka_unit_test(test_peek_does_not_remove),
        cmocka_unit_test(test_fifo_order_across_ring_growth),
        cmocka_unit_test(test_fifo_order_across_wrap_around),
        cmocka_unit_test(test_fifo_order_when_growing_a_wrapped_ring),
        cmocka_unit_test(test_bytes_track_pushes_and_pops),
        cmocka_unit_test(test_push_up_to_cap_exactly_is_accepted),
        cmocka_unit_test(test_push_over_cap_is_refused_and_leaves_queue_unchanged),
        cmocka_unit_test(test_frame_larger_than_cap_accepted_into_empty_queue),
        cmocka_unit_test(test_pop_releases_queue_reference),
        cmocka_unit_test(test_pop_frees_frame_when_queue_held_last_reference),
        cmocka_unit_test(test_shared_frame_counts_one_reference_per_queue),
        cmocka_unit_test(test_clear_releases_every_reference_and_ring),
        cmocka_unit_test(test_clear_leaves_queue_reusable),
        cmocka_unit_test(test_ring_released_after_draining_large_burst),
        cmocka_unit_test(test_small_ring_kept_after_draining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
