/* redis_names: one builder for every key and channel, hash tags in place, channels parse back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "keyslot.h"
#include "redis_names.h"

static void builds_names(void **state)
{
    (void)state;
    struct redis_names n;
    redis_names_init(&n, "chat");
    char out[REDIS_NAME_MAX];
    redis_room_key(&n, "general", "seq", out);
    assert_string_equal(out, "chat:{general}:seq");
    redis_room_channel(&n, "general", out);
    assert_string_equal(out, "chat:{general}:ch");
    redis_user_channel(&n, "alice", out);
    assert_string_equal(out, "chat:u:{alice}:ch");
    redis_room_user_prefix(&n, "general", out);
    assert_string_equal(out, "chat:{general}:pu:");
    redis_nodes_key(&n, "live", out);
    assert_string_equal(out, "chat:{@nodes}:live");
    redis_node_rooms_key(&n, "n1", out);
    assert_string_equal(out, "chat:{@node:n1}:rooms");
    char tag[REDIS_NAME_MAX];
    redis_node_tag("n1", tag);
    assert_int_equal(keyslot_of_key(out, strlen(out)), keyslot_of_tag(tag));
    redis_nodes_key(&n, "claim:n2", out);
    assert_int_equal(keyslot_of_key(out, strlen(out)), keyslot_of_tag(REDIS_NODES_TAG));
}

static void same_slot_for_a_room(void **state)
{
    (void)state;
    struct redis_names n;
    redis_names_init(&n, "p");
    char a[REDIS_NAME_MAX], b[REDIS_NAME_MAX];
    size_t la = redis_room_key(&n, "team-7", "log", a), lb = redis_room_channel(&n, "team-7", b);
    assert_int_equal(keyslot_of_key(a, la), keyslot_of_key(b, lb));
    assert_int_equal(keyslot_of_key(a, la), keyslot_of_tag("team-7"));
    la = redis_user_channel(&n, "bob", a);
    assert_int_equal(keyslot_of_key(a, la), keyslot_of_tag("bob"));
}

static void parses_channels(void **state)
{
    (void)state;
    struct redis_names n;
    redis_names_init(&n, "chat");
    char name[200];
    bool user;
    assert_true(redis_channel_parse(&n, "chat:{r1}:ch", 12, &user, name));
    assert_false(user);
    assert_string_equal(name, "r1");
    assert_true(redis_channel_parse(&n, "chat:u:{bob}:ch", 15, &user, name));
    assert_true(user);
    assert_string_equal(name, "bob");
    assert_false(redis_channel_parse(&n, "other:{r1}:ch", 13, &user, name));
    assert_false(redis_channel_parse(&n, "chat:{}:ch", 10, &user, name));
    assert_false(redis_channel_parse(&n, "chat:{r1}:log", 13, &user, name));
    assert_false(redis_channel_parse(&n, "chat:{a}b}:ch", 13, &user, name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builds_names),
        cmocka_unit_test(same_slot_for_a_room),
        cmocka_unit_test(parses_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
