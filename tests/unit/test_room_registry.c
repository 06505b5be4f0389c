/*
 * test_room_registry — this node's rooms and their local members (common/room_registry.c)
 * against room_registry.h.
 *
 * One test per behaviour. Sessions are opaque to the registry, so the tests use addresses of
 * a local array as sessions. Backlog frames carry a test-held reference so the registry's
 * release of them is visible in `refs`.
 */
#include "room_registry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MANY_ROOMS 10000

static int setup_registry(void **state)
{
    struct room_registry *reg = malloc(sizeof(*reg));
    if (!reg || room_registry_init(reg) != 0) {
        free(reg);
        return -1;
    }
    *state = reg;
    return 0;
}

static int teardown_registry(void **state)
{
    struct room_registry *reg = *state;
    room_registry_free(reg);
    free(reg);
    return 0;
}

static void room_name(char *buf, size_t size, unsigned i)
{
    snprintf(buf, size, "room.%u", i);
}

/* ---------------------------------------------------------------------------------------- */
/* Rooms                                                                                      */
/* ---------------------------------------------------------------------------------------- */

static void test_init_is_empty(void **state)
{
    struct room_registry *reg = *state;
    assert_int_equal(reg->room_count, 0);
    assert_non_null(reg->buckets);
    assert_true(reg->bucket_count > 0);
    assert_int_equal(reg->bucket_count & (reg->bucket_count - 1), 0);
    assert_null(room_registry_find(reg, "lobby"));
}

static void test_add_creates_empty_subscribing_room(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    assert_string_equal(r->name, "lobby");
    assert_int_equal(r->state, ROOM_SUBSCRIBING);
    assert_string_equal(r->epoch, "");
    assert_int_equal(r->last_offset, 0);
    assert_int_equal(r->member_count, 0);
    assert_int_equal(r->pending_count, 0);
    assert_true(outq_empty(&r->backlog));
    assert_int_equal(reg->room_count, 1);
}

static void test_find_returns_added_room(void **state)
{
    struct room_registry *reg = *state;
    struct room *a = room_registry_add(reg, "alpha");
    struct room *b = room_registry_add(reg, "beta");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_equal(room_registry_find(reg, "alpha"), a);
    assert_ptr_equal(room_registry_find(reg, "beta"), b);
    assert_null(room_registry_find(reg, "gamma"));
    assert_null(room_registry_find(reg, "alph"));
    assert_null(room_registry_find(reg, "alphaa"));
}

static void test_add_copies_name(void **state)
{
    struct room_registry *reg = *state;
    char name[] = "copied";
    struct room *r = room_registry_add(reg, name);
    assert_non_null(r);
    name[0] = 'X';
    assert_ptr_equal(room_registry_find(reg, "copied"), r);
    assert_null(room_registry_find(reg, name));
}

static void test_add_accepts_longest_name(void **state)
{
    struct room_registry *reg = *state;
    char name[PROTO_ROOM_MAX + 1];
    memset(name, 'n', PROTO_ROOM_MAX);
    name[PROTO_ROOM_MAX] = '\0';
    struct room *r = room_registry_add(reg, name);
    assert_non_null(r);
    assert_string_equal(r->name, name);
    assert_ptr_equal(room_registry_find(reg, name), r);
}

static void test_add_refuses_name_too_long_or_empty(void **state)
{
    struct room_registry *reg = *state;
    char name[PROTO_ROOM_MAX + 2];
    memset(name, 'n', PROTO_ROOM_MAX + 1);
    name[PROTO_ROOM_MAX + 1] = '\0';
    assert_null(room_registry_add(reg, name));
    assert_null(room_registry_add(reg, ""));
    assert_int_equal(reg->room_count, 0);
}

static void test_remove_unlinks_room(void **state)
{
    struct room_registry *reg = *state;
    struct room *a = room_registry_add(reg, "alpha");
    struct room *b = room_registry_add(reg, "beta");
    assert_non_null(a);
    assert_non_null(b);
    room_registry_remove(reg, a);
    assert_null(room_registry_find(reg, "alpha"));
    assert_ptr_equal(room_registry_find(reg, "beta"), b);
    assert_int_equal(reg->room_count, 1);
    room_registry_remove(reg, b);
    assert_null(room_registry_find(reg, "beta"));
    assert_int_equal(reg->room_count, 0);
}

static void test_many_rooms_grow_buckets(void **state)
{
    struct room_registry *reg = *state;
    size_t initial_buckets = reg->bucket_count;
    char name[32];
    for (unsigned i = 0; i < MANY_ROOMS; i++) {
        room_name(name, sizeof(name), i);
        struct room *r = room_registry_add(reg, name);
        assert_non_null(r);
    }
    assert_int_equal(reg->room_count, MANY_ROOMS);
    assert_true(reg->bucket_count > initial_buckets);
    assert_true(reg->bucket_count >= MANY_ROOMS / 2);
    assert_int_equal(reg->bucket_count & (reg->bucket_count - 1), 0);
    for (unsigned i = 0; i < MANY_ROOMS; i++) {
        room_name(name, sizeof(name), i);
        struct room *r = room_registry_find(reg, name);
        assert_non_null(r);
        assert_string_equal(r->name, name);
    }
}

static void test_many_rooms_remove_half(void **state)
{
    struct room_registry *reg = *state;
    char name[32];
    for (unsigned i = 0; i < MANY_ROOMS; i++) {
        room_name(name, sizeof(name), i);
        assert_non_null(room_registry_add(reg, name));
    }
    for (unsigned i = 0; i < MANY_ROOMS; i += 2) {
        room_name(name, sizeof(name), i);
        struct room *r = room_registry_find(reg, name);
        assert_non_null(r);
        room_registry_remove(reg, r);
    }
    assert_int_equal(reg->room_count, MANY_ROOMS / 2);
    for (unsigned i = 0; i < MANY_ROOMS; i++) {
        room_name(name, sizeof(name), i);
        struct room *r = room_registry_find(reg, name);
        if (i % 2 == 0)
            assert_null(r);
        else
            assert_non_null(r);
    }
}

static void test_generations_increase(void **state)
{
    struct room_registry *reg = *state;
    char name[32];
    uint64_t last = 0;
    for (unsigned i = 0; i < 100; i++) {
        room_name(name, sizeof(name), i);
        struct room *r = room_registry_add(reg, name);
        assert_non_null(r);
        assert_true(r->generation > last);
        last = r->generation;
    }
}

static void test_recreated_room_gets_new_generation(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    uint64_t first = r->generation;
    assert_true(first > 0);
    room_registry_remove(reg, r);
    r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    assert_true(r->generation > first);
}

static void count_room(struct room *room, void *arg)
{
    (void)room;
    (*(size_t *)arg)++;
}

static void test_each_visits_every_room_once(void **state)
{
    struct room_registry *reg = *state;
    char name[32];
    enum { N = 500 };
    for (unsigned i = 0; i < N; i++) {
        room_name(name, sizeof(name), i);
        struct room *r = room_registry_add(reg, name);
        assert_non_null(r);
        r->last_offset = 0;
    }
    size_t visits = 0;
    room_registry_each(reg, count_room, &visits);
    assert_int_equal(visits, N);
}

static void mark_room(struct room *room, void *arg)
{
    (void)arg;
    room->last_offset++;
}

static void test_each_passes_each_room_once(void **state)
{
    struct room_registry *reg = *state;
    char name[32];
    enum { N = 200 };
    struct room *rooms[N];
    for (unsigned i = 0; i < N; i++) {
        room_name(name, sizeof(name), i);
        rooms[i] = room_registry_add(reg, name);
        assert_non_null(rooms[i]);
    }
    room_registry_each(reg, mark_room, NULL);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(rooms[i]->last_offset, 1);
}

static void test_each_on_empty_registry(void **state)
{
    struct room_registry *reg = *state;
    size_t visits = 0;
    room_registry_each(reg, count_room, &visits);
    assert_int_equal(visits, 0);
}

static void test_remove_releases_backlog_frames(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    struct frame *f = frame_new(0, "m", 1);
    assert_non_null(f);
    assert_int_equal(outq_push(&r->backlog, f, SIZE_MAX), 0);
    assert_int_equal(outq_push(&r->backlog, f, SIZE_MAX), 0);
    assert_int_equal(f->refs, 3);
    room_registry_remove(reg, r);
    assert_int_equal(f->refs, 1);
    frame_unref(f);
}

static void test_free_releases_rooms_members_and_backlogs(void **state)
{
    (void)state;
    struct room_registry reg;
    assert_int_equal(room_registry_init(&reg), 0);
    struct frame *f = frame_new(0, "m", 1);
    assert_non_null(f);
    int sessions[10];
    char name[32];
    for (unsigned i = 0; i < 100; i++) {
        room_name(name, sizeof(name), i);
        struct room *r = room_registry_add(&reg, name);
        assert_non_null(r);
        for (unsigned s = 0; s < 10; s++)
            assert_int_equal(room_add_member(r, &sessions[s], s % 2), 0);
        assert_int_equal(outq_push(&r->backlog, f, SIZE_MAX), 0);
    }
    assert_int_equal(f->refs, 101);
    room_registry_free(&reg); /* LeakSanitizer checks rooms and member arrays */
    assert_int_equal(f->refs, 1);
    assert_null(reg.buckets);
    assert_int_equal(reg.room_count, 0);
    frame_unref(f);
}

/* ---------------------------------------------------------------------------------------- */
/* Members                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void test_add_member_then_find(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int a, b, c;
    assert_int_equal(room_add_member(r, &a, false), 0);
    assert_int_equal(room_add_member(r, &b, false), 0);
    assert_int_equal(r->member_count, 2);
    assert_int_equal(room_find_member(r, &a), 0);
    assert_int_equal(room_find_member(r, &b), 1);
    assert_int_equal(room_find_member(r, &c), -1);
    assert_ptr_equal(r->members[0].session, &a);
    assert_null(r->members[0].pending_ids);
    assert_int_equal(r->members[0].pending, 0);
    assert_int_equal(r->pending_count, 0);
}

static void test_find_member_in_empty_room(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int a;
    assert_int_equal(room_find_member(r, &a), -1);
}

static void test_pending_members_are_counted(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int a, b, c;
    assert_int_equal(room_add_member(r, &a, true), 0);
    assert_int_equal(room_add_member(r, &b, false), 0);
    assert_int_equal(room_add_member(r, &c, true), 0);
    assert_int_equal(r->member_count, 3);
    assert_int_equal(r->pending_count, 2);
    assert_int_equal(r->members[room_find_member(r, &a)].pending, 1);
    assert_int_equal(r->members[room_find_member(r, &b)].pending, 0);
    assert_int_equal(r->members[room_find_member(r, &c)].pending, 1);
}

static void test_remove_pending_member_decrements_pending_count(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int a, b;
    assert_int_equal(room_add_member(r, &a, true), 0);
    assert_int_equal(room_add_member(r, &b, false), 0);
    assert_true(room_remove_member(r, &a));
    assert_int_equal(r->pending_count, 0);
    assert_int_equal(r->member_count, 1);
    assert_true(room_remove_member(r, &b));
    assert_int_equal(r->pending_count, 0);
    assert_int_equal(r->member_count, 0);
}

static void test_remove_member_keeps_the_others(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int s[5];
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(room_add_member(r, &s[i], i == 4), 0);
    assert_true(room_remove_member(r, &s[1]));
    assert_int_equal(r->member_count, 4);
    assert_int_equal(room_find_member(r, &s[1]), -1);
    for (unsigned i = 0; i < 5; i++)
        if (i != 1)
            assert_true(room_find_member(r, &s[i]) >= 0);
    /* The moved member kept its pending flag. */
    assert_int_equal(r->members[room_find_member(r, &s[4])].pending, 1);
    assert_int_equal(r->pending_count, 1);
}

static void test_remove_non_member_returns_false(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int a, b, stranger;
    assert_false(room_remove_member(r, &stranger)); /* empty room */
    assert_int_equal(room_add_member(r, &a, true), 0);
    assert_int_equal(room_add_member(r, &b, false), 0);
    assert_false(room_remove_member(r, &stranger));
    assert_int_equal(r->member_count, 2);
    assert_int_equal(r->pending_count, 1);
    assert_int_equal(room_find_member(r, &a), 0);
    assert_int_equal(room_find_member(r, &b), 1);
}

static void test_remove_member_twice(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int a;
    assert_int_equal(room_add_member(r, &a, true), 0);
    assert_true(room_remove_member(r, &a));
    assert_false(room_remove_member(r, &a));
    assert_int_equal(r->member_count, 0);
    assert_int_equal(r->pending_count, 0);
}

static void test_many_members_grow_array(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    enum { N = 1000 };
    static char sessions[N];
    unsigned pending = 0;
    for (unsigned i = 0; i < N; i++) {
        bool p = i % 3 == 0;
        pending += p;
        assert_int_equal(room_add_member(r, &sessions[i], p), 0);
    }
    assert_int_equal(r->member_count, N);
    assert_true(r->member_cap >= N);
    assert_int_equal(r->pending_count, pending);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(room_find_member(r, &sessions[i]), (int)i);
    /* Remove every other one; the rest stay findable and the pending count stays exact. */
    for (unsigned i = 0; i < N; i += 2) {
        assert_true(room_remove_member(r, &sessions[i]));
        if (i % 3 == 0)
            pending--;
    }
    assert_int_equal(r->member_count, N / 2);
    assert_int_equal(r->pending_count, pending);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(room_find_member(r, &sessions[i]) >= 0, i % 2 == 1);
}

static void test_member_can_rejoin_after_leaving(void **state)
{
    struct room_registry *reg = *state;
    struct room *r = room_registry_add(reg, "lobby");
    assert_non_null(r);
    int a;
    assert_int_equal(room_add_member(r, &a, true), 0);
    assert_true(room_remove_member(r, &a));
    assert_int_equal(room_add_member(r, &a, false), 0);
    assert_int_equal(room_find_member(r, &a), 0);
    assert_int_equal(r->members[0].pending, 0);
    assert_int_equal(r->pending_count, 0);
}

static void test_members_are_per_room(void **state)
{
    struct room_registry *reg = *state;
    struct room *x = room_registry_add(reg, "x");
    struct room *y = room_registry_add(reg, "y");
    assert_non_null(x);
    assert_non_null(y);
    int a;
    assert_int_equal(room_add_member(x, &a, false), 0);
    assert_int_equal(room_find_member(y, &a), -1);
    assert_false(room_remove_member(y, &a));
    assert_int_equal(room_find_member(x, &a), 0);
}

#define REG_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_registry, teardown_registry)

int main(void)
{
    const struct CMUnitTest tests[] = {
        REG_TEST(test_init_is_empty),
        REG_TEST(test_add_creates_empty_subscribing_room),
        REG_TEST(test_find_returns_added_room),
        REG_TEST(test_add_copies_name),
        REG_TEST(test_add_accepts_longest_name),
        REG_TEST(test_add_refuses_name_too_long_or_empty),
        REG_TEST(test_remove_unlinks_room),
        REG_TEST(test_many_rooms_grow_buckets),
        REG_TEST(test_many_rooms_remove_half),
        REG_TEST(test_generations_increase),
        REG_TEST(test_recreated_room_gets_new_generation),
        REG_TEST(test_each_visits_every_room_once),
        REG_TEST(test_each_passes_each_room_once),
        REG_TEST(test_each_on_empty_registry),
        REG_TEST(test_remove_releases_backlog_frames),
        cmocka_unit_test(test_free_releases_rooms_members_and_backlogs),
        REG_TEST(test_add_member_then_find),
        REG_TEST(test_find_member_in_empty_room),
        REG_TEST(test_pending_members_are_counted),
        REG_TEST(test_remove_pending_member_decrements_pending_count),
        REG_TEST(test_remove_member_keeps_the_others),
        REG_TEST(test_remove_non_member_returns_false),
        REG_TEST(test_remove_member_twice),
        REG_TEST(test_many_members_grow_array),
        REG_TEST(test_member_can_rejoin_after_leaving),
        REG_TEST(test_members_are_per_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
