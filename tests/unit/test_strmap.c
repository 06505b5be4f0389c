/*
 * test_strmap — the string → pointer hash map (common/strmap.c) against strmap.h.
 *
 * One test per behaviour. Values are addresses of local objects, never dereferenced by the
 * map; LeakSanitizer checks that strmap_free and strmap_remove release the map's own memory.
 */
#include "strmap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MANY_KEYS 10000

static int setup_map(void **state)
{
    struct strmap *m = malloc(sizeof(*m));
    if (!m || strmap_init(m) != 0) {
        free(m);
        return -1;
    }
    *state = m;
    return 0;
}

static int teardown_map(void **state)
{
    struct strmap *m = *state;
    strmap_free(m);
    free(m);
    return 0;
}

static void key_name(char *buf, size_t size, unsigned i)
{
    snprintf(buf, size, "chat:room.%u", i);
}

static void test_init_is_empty(void **state)
{
    struct strmap *m = *state;
    assert_int_equal(m->count, 0);
    assert_null(strmap_get(m, "a"));
    assert_null(strmap_get(m, ""));
}

static void test_put_then_get(void **state)
{
    struct strmap *m = *state;
    int a, b;
    assert_int_equal(strmap_put(m, "a", &a), 0);
    assert_int_equal(strmap_put(m, "b", &b), 0);
    assert_int_equal(m->count, 2);
    assert_ptr_equal(strmap_get(m, "a"), &a);
    assert_ptr_equal(strmap_get(m, "b"), &b);
    assert_null(strmap_get(m, "c"));
    assert_null(strmap_get(m, "ab"));
}

static void test_put_copies_key(void **state)
{
    struct strmap *m = *state;
    int v;
    char key[] = "mutable";
    assert_int_equal(strmap_put(m, key, &v), 0);
    key[0] = 'X';
    assert_ptr_equal(strmap_get(m, "mutable"), &v);
    assert_null(strmap_get(m, key));
}

static void test_put_replaces_existing_value(void **state)
{
    struct strmap *m = *state;
    int a, b;
    assert_int_equal(strmap_put(m, "k", &a), 0);
    assert_int_equal(strmap_put(m, "k", &b), 0);
    assert_int_equal(m->count, 1);
    assert_ptr_equal(strmap_get(m, "k"), &b);
}

static void test_empty_key_is_a_key(void **state)
{
    struct strmap *m = *state;
    int v;
    assert_int_equal(strmap_put(m, "", &v), 0);
    assert_ptr_equal(strmap_get(m, ""), &v);
    assert_ptr_equal(strmap_remove(m, ""), &v);
    assert_int_equal(m->count, 0);
}

static void test_remove_returns_value(void **state)
{
    struct strmap *m = *state;
    int a, b;
    assert_int_equal(strmap_put(m, "a", &a), 0);
    assert_int_equal(strmap_put(m, "b", &b), 0);
    assert_ptr_equal(strmap_remove(m, "a"), &a);
    assert_int_equal(m->count, 1);
    assert_null(strmap_get(m, "a"));
    assert_ptr_equal(strmap_get(m, "b"), &b);
}

static void test_remove_missing_returns_null(void **state)
{
    struct strmap *m = *state;
    int a;
    assert_null(strmap_remove(m, "nothing"));
    assert_int_equal(strmap_put(m, "a", &a), 0);
    assert_null(strmap_remove(m, "b"));
    assert_ptr_equal(strmap_remove(m, "a"), &a);
    assert_null(strmap_remove(m, "a"));
    assert_int_equal(m->count, 0);
}

static void test_put_after_remove(void **state)
{
    struct strmap *m = *state;
    int a, b;
    assert_int_equal(strmap_put(m, "k", &a), 0);
    assert_ptr_equal(strmap_remove(m, "k"), &a);
    assert_int_equal(strmap_put(m, "k", &b), 0);
    assert_ptr_equal(strmap_get(m, "k"), &b);
    assert_int_equal(m->count, 1);
}

struct each_record {
    unsigned visits;
    unsigned seen[16];
    int *values;
};

static void record_entry(const char *key, void *value, void *arg)
{
    struct each_record *rec = arg;
    rec->visits++;
    unsigned i = (unsigned)(key[0] - 'a');
    assert_true(i < 16);
    assert_ptr_equal(value, &rec->values[i]);
    rec->seen[i]++;
}

static void test_each_visits_every_entry_once(void **state)
{
    struct strmap *m = *state;
    int values[10];
    char key[2] = {0};
    for (unsigned i = 0; i < 10; i++) {
        key[0] = (char)('a' + i);
        assert_int_equal(strmap_put(m, key, &values[i]), 0);
    }
    struct each_record rec = {.values = values};
    strmap_each(m, record_entry, &rec);
    assert_int_equal(rec.visits, 10);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(rec.seen[i], 1);
}

static void count_entry(const char *key, void *value, void *arg)
{
    (void)key;
    (void)value;
    (*(size_t *)arg)++;
}

static void test_each_on_empty_map(void **state)
{
    struct strmap *m = *state;
    size_t visits = 0;
    strmap_each(m, count_entry, &visits);
    assert_int_equal(visits, 0);
}

static void test_many_keys_grow_buckets(void **state)
{
    struct strmap *m = *state;
    static int values[MANY_KEYS];
    size_t initial_buckets = m->bucket_count;
    char key[32];
    for (unsigned i = 0; i < MANY_KEYS; i++) {
        key_name(key, sizeof(key), i);
        assert_int_equal(strmap_put(m, key, &values[i]), 0);
    }
    assert_int_equal(m->count, MANY_KEYS);
    assert_true(m->bucket_count > initial_buckets);
    assert_true(m->bucket_count >= MANY_KEYS / 2);
    assert_int_equal(m->bucket_count & (m->bucket_count - 1), 0);
    for (unsigned i = 0; i < MANY_KEYS; i++) {
        key_name(key, sizeof(key), i);
        assert_ptr_equal(strmap_get(m, key), &values[i]);
    }
    size_t visits = 0;
    strmap_each(m, count_entry, &visits);
    assert_int_equal(visits, MANY_KEYS);
}

static void test_many_keys_remove_all(void **state)
{
    struct strmap *m = *state;
    static int values[MANY_KEYS];
    char key[32];
    for (unsigned i = 0; i < MANY_KEYS; i++) {
        key_name(key, sizeof(key), i);
        assert_int_equal(strmap_put(m, key, &values[i]), 0);
    }
    /* Odd keys first (entries in the middle of chains), then even. */
    for (unsigned pass = 1; pass <= 2; pass++) {
        for (unsigned i = pass % 2; i < MANY_KEYS; i += 2) {
            key_name(key, sizeof(key), i);
            assert_ptr_equal(strmap_remove(m, key), &values[i]);
        }
        for (unsigned i = 0; i < MANY_KEYS; i += 2) {
            key_name(key, sizeof(key), i);
            if (pass == 1)
                assert_ptr_equal(strmap_get(m, key), &values[i]);
            else
                assert_null(strmap_get(m, key));
        }
    }
    assert_int_equal(m->count, 0);
}

static void test_free_leaves_map_zeroed(void **state)
{
    (void)state;
    struct strmap m;
    int v;
    assert_int_equal(strmap_init(&m), 0);
    assert_int_equal(strmap_put(&m, "a", &v), 0);
    assert_int_equal(strmap_put(&m, "b", &v), 0);
    strmap_free(&m); /* LeakSanitizer checks the entries */
    assert_null(m.buckets);
    assert_int_equal(m.count, 0);
    strmap_free(&m); /* a freed map can be freed again */
}

#define MAP_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_map, teardown_map)

int main(void)
{
    const struct CMUnitTest tests[] = {
        MAP_TEST(test_init_is_empty),
        MAP_TEST(test_put_then_get),
        MAP_TEST(test_put_copies_key),
        MAP_TEST(test_put_replaces_existing_value),
        MAP_TEST(test_empty_key_is_a_key),
        MAP_TEST(test_remove_returns_value),
        MAP_TEST(test_remove_missing_returns_null),
        MAP_TEST(test_put_after_remove),
        MAP_TEST(test_each_visits_every_entry_once),
        MAP_TEST(test_each_on_empty_map),
        MAP_TEST(test_many_keys_grow_buckets),
        MAP_TEST(test_many_keys_remove_all),
        cmocka_unit_test(test_free_leaves_map_zeroed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
