/* log_escape: no control character reaches a log line raw (issue 11). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "log_escape.h"

static void escapes_every_control(void **state)
{
    (void)state;
    char out[256];
    log_escape("a\x1b[31mb\x07\x7f\n\r\t", out, sizeof(out), true);
    assert_string_equal(out, "a\\x1B[31mb\\x07\\x7F\\n\\r\\t");
    log_escape("c1:\xc2\x9b x \xc2\x85", out, sizeof(out), true);
    assert_string_equal(out, "c1:\\u009B x \\u0085");
    log_escape("ls\xe2\x80\xa8ps\xe2\x80\xa9", out, sizeof(out), true);
    assert_string_equal(out, "ls\\u2028ps\\u2029");
    log_escape("bad\xff\xc3(", out, sizeof(out), true);
    assert_string_equal(out, "bad\\xFF\\xC3(");
}

static void keeps_text_and_escapes_quotes(void **state)
{
    (void)state;
    char out[64];
    log_escape("Zo\xc3\xab \xe2\x82\xac \"q\" \\", out, sizeof(out), true);
    assert_string_equal(out, "Zo\xc3\xab \xe2\x82\xac \\\"q\\\" \\\\");
    log_escape("\"q\"", out, sizeof(out), false);
    assert_string_equal(out, "\"q\"");
}

static void cuts_at_whole_escapes(void **state)
{
    (void)state;
    char out[6];
    assert_int_equal(log_escape("ab\x1b", out, sizeof(out), true), 2);
    assert_string_equal(out, "ab");
}

static void plain_detection(void **state)
{
    (void)state;
    assert_true(log_plain("alice.2"));
    assert_false(log_plain(""));
    assert_false(log_plain("a b"));
    assert_false(log_plain("a=b"));
    assert_false(log_plain("a\x1b"));
    assert_false(log_plain("x\xe2\x80\xa8"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_every_control),
        cmocka_unit_test(keeps_text_and_escapes_quotes),
        cmocka_unit_test(cuts_at_whole_escapes),
        cmocka_unit_test(plain_detection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
