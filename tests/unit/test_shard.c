/* shard_index: stable, in range, spread, and fixed across releases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "shard.h"

static void test_single_instance_is_zero(void **state)
{
    (void)state;
    assert_int_equal(shard_index("anything", 1), 0);
    assert_int_equal(shard_index("anything", 0), 0);
}

static void test_in_range_and_stable(void **state)
{
    (void)state;
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "room-%d", i);
        size_t a = shard_index(name, 3);
        assert_true(a < 3);
        assert_int_equal(a, shard_index(name, 3));
    }
}

static void test_spreads_names(void **state)
{
    (void)state;
    size_t counts[4] = {0};
    char name[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        counts[shard_index(name, 4)]++;
    }
    for (int i = 0; i < 4; i++)
        assert_true(counts[i] > 800 && counts[i] < 1200);
}

/* Placement must never change between releases: nodes of different versions share rooms. */
static void test_known_values(void **state)
{
    (void)state;
    /* FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c. */
    assert_int_equal(shard_index("a", 7), (size_t)(0xaf63dc4c8601ec8cull % 7));
    assert_int_equal(shard_index("a", 2), (size_t)(0xaf63dc4c8601ec8cull % 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_instance_is_zero),
        cmocka_unit_test(test_in_range_and_stable),
        cmocka_unit_test(test_spreads_names),
        cmocka_unit_test(test_known_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
