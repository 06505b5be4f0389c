/* cookie_find: RFC 6265 cookie-string parsing, exact names (issue 11: suffix matches). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cookie.h"

static void finds_exact_name_only(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(cookie_find("csrftoken=abc; token=good", "token", v, sizeof(v)), 1);
    assert_string_equal(v, "good");
    assert_int_equal(cookie_find("mytoken=bad", "token", v, sizeof(v)), 0);
    assert_int_equal(cookie_find("tokens=bad; token2=bad", "token", v, sizeof(v)), 0);
    assert_int_equal(cookie_find("token=first; token=second", "token", v, sizeof(v)), 1);
    assert_string_equal(v, "first");
}

static void whitespace_quotes_and_junk(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(cookie_find("  a=1 ;  token = \"q v\" ; b=2", "token", v, sizeof(v)), 1);
    assert_string_equal(v, "q v");
    assert_int_equal(cookie_find("flag; ;;token=x", "token", v, sizeof(v)), 1);
    assert_string_equal(v, "x");
    assert_int_equal(cookie_find("token=", "token", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(cookie_find("", "token", v, sizeof(v)), 0);
    assert_int_equal(cookie_find("=token", "token", v, sizeof(v)), 0);
    assert_int_equal(cookie_find("Token=x", "token", v, sizeof(v)), 0);
}

static void too_long_value(void **state)
{
    (void)state;
    char v[4];
    assert_int_equal(cookie_find("token=abcd", "token", v, sizeof(v)), -1);
    assert_int_equal(cookie_find("token=abc", "token", v, sizeof(v)), 1);
    assert_string_equal(v, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_exact_name_only),
        cmocka_unit_test(whitespace_quotes_and_junk),
        cmocka_unit_test(too_long_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
