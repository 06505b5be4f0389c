/* keyslot and slot_map: the cluster spec's CRC16 vector, hash tags, redirections, ownership. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "slot_map.h"

static void crc16_and_tags(void **state)
{
    (void)state;
    assert_int_equal(keyslot_crc16("123456789", 9), 0x31C3); /* the specification's vector */
    assert_int_equal(keyslot_of_key("foo", 3), 12182);
    assert_int_equal(keyslot_of_key("{user1000}.following", 20), keyslot_of_key("user1000", 8));
    assert_int_equal(keyslot_of_key("chat:{general}:seq", 18), keyslot_of_tag("general"));
    assert_int_equal(keyslot_of_key("chat:{general}:ch", 17), keyslot_of_tag("general"));
    /* An empty tag hashes the whole key. */
    assert_int_equal(keyslot_of_key("{}x", 3), keyslot_crc16("{}x", 3) & 16383);
    assert_int_equal(keyslot_of_key("a{b", 3), keyslot_crc16("a{b", 3) & 16383);
}

static void redirects(void **state)
{
    (void)state;
    unsigned slot;
    char host[64];
    int port;
    assert_int_equal(slot_map_parse_redirect("MOVED 3999 127.0.0.1:6381", &slot, host, 64, &port), 1);
    assert_int_equal(slot, 3999);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6381);
    assert_int_equal(slot_map_parse_redirect("ASK 12 ::1:7000", &slot, host, 64, &port), 2);
    assert_string_equal(host, "::1");
    assert_int_equal(slot_map_parse_redirect("ASK 12 [::1]:7000", &slot, host, 64, &port), 2);
    assert_string_equal(host, "::1");
    assert_int_equal(slot_map_parse_redirect("MOVED 16384 h:1", &slot, host, 64, &port), 0);
    assert_int_equal(slot_map_parse_redirect("MOVED x h:1", &slot, host, 64, &port), 0);
    assert_int_equal(slot_map_parse_redirect("MOVED 1 h", &slot, host, 64, &port), 0);
    assert_int_equal(slot_map_parse_redirect("MOVED 1 h:0", &slot, host, 64, &port), 0);
    assert_int_equal(slot_map_parse_redirect("ERR foo", &slot, host, 64, &port), 0);
    assert_int_equal(slot_map_parse_redirect("MOVED 1 :5", &slot, host, 64, &port), 0);
}

static void ownership(void **state)
{
    (void)state;
    struct slot_map *m = malloc(sizeof(*m));
    slot_map_init(m);
    assert_int_equal(slot_map_uncovered(m), KEYSLOT_COUNT);
    int a = slot_map_node(m, "127.0.0.1", 7000), b = slot_map_node(m, "127.0.0.1", 7001);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(slot_map_node(m, "127.0.0.1", 7000), 0);
    slot_map_assign(m, 0, 8191, (unsigned)a);
    slot_map_assign(m, 8192, 16383, (unsigned)b);
    assert_int_equal(slot_map_uncovered(m), 0);
    slot_map_assign(m, 100, 100, SLOT_MAP_NONE);
    assert_int_equal(slot_map_uncovered(m), 1);
    assert_int_equal(m->owner[8192], b);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc16_and_tags),
        cmocka_unit_test(redirects),
        cmocka_unit_test(ownership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
