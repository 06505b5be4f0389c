/*
 * test_frame — refcounted shared payloads (common/frame.c) against frame.h.
 *
 * One test per behaviour. Every byte of headroom, payload and the trailing NUL is written or
 * read at least once, so AddressSanitizer proves the single allocation covers the layout the
 * header promises; LeakSanitizer proves the last unref frees it.
 */
#include "frame.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_new_starts_with_one_reference(void **state)
{
    (void)state;
    struct frame *f = frame_new(16, "hello", 5);
    assert_non_null(f);
    assert_int_equal(f->refs, 1);
    assert_int_equal(f->len, 5);
    assert_int_equal(f->headroom, 16);
    frame_unref(f);
}

static void test_new_zeroes_message_metadata(void **state)
{
    (void)state;
    struct frame *f = frame_new(8, "x", 1);
    assert_non_null(f);
    assert_int_equal(f->offset, 0);
    assert_int_equal(f->sender_serial, 0);
    assert_int_equal(f->arrival_us, 0);
    frame_unref(f);
}

static void test_new_places_payload_after_headroom(void **state)
{
    (void)state;
    const char text[] = "{\"type\":\"message\"}";
    struct frame *f = frame_new(16, text, sizeof(text) - 1);
    assert_non_null(f);
    assert_ptr_equal(frame_payload(f), f->buf + 16);
    assert_memory_equal(frame_payload(f), text, sizeof(text) - 1);
    /* The headroom is writable in place, as the WebSocket layer will write its header there. */
    memset(f->buf, 0xAB, f->headroom);
    assert_memory_equal(frame_payload(f), text, sizeof(text) - 1);
    frame_unref(f);
}

static void test_new_puts_nul_after_payload(void **state)
{
    (void)state;
    struct frame *f = frame_new(4, "abc", 3);
    assert_non_null(f);
    assert_int_equal(f->buf[4 + 3], '\0');
    assert_string_equal((const char *)frame_payload(f), "abc");
    frame_unref(f);
}

static void test_new_without_headroom(void **state)
{
    (void)state;
    struct frame *f = frame_new(0, "abc", 3);
    assert_non_null(f);
    assert_ptr_equal(frame_payload(f), f->buf);
    assert_string_equal((const char *)f->buf, "abc");
    frame_unref(f);
}

static void test_new_empty_payload(void **state)
{
    (void)state;
    struct frame *f = frame_new(8, NULL, 0);
    assert_non_null(f);
    assert_int_equal(f->len, 0);
    assert_int_equal(frame_payload(f)[0], '\0');
    frame_unref(f);
}

static void test_alloc_reserves_payload_and_nul(void **state)
{
    (void)state;
    struct frame *f = frame_alloc(10, 100);
    assert_non_null(f);
    assert_int_equal(f->refs, 1);
    assert_int_equal(f->len, 100);
    assert_int_equal(f->headroom, 10);
    assert_int_equal(f->buf[10 + 100], '\0');
    memset(f->buf, 'h', 10);
    memset(frame_payload(f), 'p', 100);
    assert_int_equal(f->buf[10 + 100], '\0');
    assert_int_equal(strlen((const char *)frame_payload(f)), 100);
    frame_unref(f);
}

static void test_alloc_rejects_length_beyond_32_bits(void **state)
{
    (void)state;
    if (SIZE_MAX <= UINT32_MAX)
        skip();
    assert_null(frame_alloc(0, (size_t)UINT32_MAX + 1));
    assert_null(frame_new(0, "", (size_t)UINT32_MAX + 1));
}

static void test_ref_returns_same_frame_and_counts(void **state)
{
    (void)state;
    struct frame *f = frame_new(0, "a", 1);
    assert_non_null(f);
    assert_ptr_equal(frame_ref(f), f);
    assert_ptr_equal(frame_ref(f), f);
    assert_int_equal(f->refs, 3);
    frame_unref(f);
    assert_int_equal(f->refs, 2);
    frame_unref(f);
    assert_int_equal(f->refs, 1);
    /* Still usable while one reference is held. */
    assert_string_equal((const char *)frame_payload(f), "a");
    frame_unref(f); /* last: freed (LeakSanitizer would flag otherwise) */
}

static void test_unref_null_is_ignored(void **state)
{
    (void)state;
    frame_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_starts_with_one_reference),
        cmocka_unit_test(test_new_zeroes_message_metadata),
        cmocka_unit_test(test_new_places_payload_after_headroom),
        cmocka_unit_test(test_new_puts_nul_after_payload),
        cmocka_unit_test(test_new_without_headroom),
        cmocka_unit_test(test_new_empty_payload),
        cmocka_unit_test(test_alloc_reserves_payload_and_nul),
        cmocka_unit_test(test_alloc_rejects_length_beyond_32_bits),
        cmocka_unit_test(test_ref_returns_same_frame_and_counts),
        cmocka_unit_test(test_unref_null_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
