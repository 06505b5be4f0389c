/* timer_wheel: deadlines fire once, not early, not lost across turns, pauses and re-arms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "timer_wheel.h"

static size_t count(struct wheel_timer *l)
{
    size_t n = 0;
    for (; l; l = l->next)
        n++;
    return n;
}

static void fires_when_due_not_before(void **state)
{
    (void)state;
    struct timer_wheel w;
    assert_int_equal(timer_wheel_init(&w, 100, 8, 1000), 0);
    struct wheel_timer a = {0}, b = {0};
    timer_wheel_arm(&w, &a, 1250);
    timer_wheel_arm(&w, &b, 5000); /* several turns away */
    assert_null(timer_wheel_advance(&w, 1249));
    struct wheel_timer *f = timer_wheel_advance(&w, 1250);
    assert_ptr_equal(f, &a);
    assert_null(f->next);
    assert_false(timer_wheel_armed(&a));
    for (int64_t t = 1300; t < 5000; t += 100)
        assert_null(timer_wheel_advance(&w, t));
    assert_ptr_equal(timer_wheel_advance(&w, 5000), &b);
    assert_int_equal(w.armed, 0);
    timer_wheel_free(&w);
}

static void cancel_rearm_and_overdue(void **state)
{
    (void)state;
    struct timer_wheel w;
    assert_int_equal(timer_wheel_init(&w, 50, 4, 0), 0);
    struct wheel_timer a = {0}, b = {0};
    timer_wheel_arm(&w, &a, 120);
    timer_wheel_arm(&w, &a, 400); /* re-arm moves it */
    timer_wheel_arm(&w, &b, 130);
    timer_wheel_cancel(&w, &b);
    timer_wheel_cancel(&w, &b); /* twice is harmless */
    assert_null(timer_wheel_advance(&w, 399));
    timer_wheel_arm(&w, &b, 10); /* in the past: next advance */
    assert_int_equal(count(timer_wheel_advance(&w, 400)), 2);
    timer_wheel_free(&w);
}

static void long_pause_loses_nothing(void **state)
{
    (void)state;
    struct timer_wheel w;
    assert_int_equal(timer_wheel_init(&w, 10, 16, 0), 0);
    struct wheel_timer t[100] = {{0}};
    for (int i = 0; i < 100; i++)
        timer_wheel_arm(&w, &t[i], 5 + i * 37);
    assert_int_equal(count(timer_wheel_advance(&w, 100000)), 100);
    timer_wheel_free(&w);
}

/* Random deadlines and advances against a brute-force model. */
static void random_against_model(void **state)
{
    (void)state;
    struct timer_wheel w;
    assert_int_equal(timer_wheel_init(&w, 25, 32, 0), 0);
    enum { N = 500 };
    struct wheel_timer t[N] = {{0}};
    bool live[N] = {false};
    int64_t now = 0;
    srand(7);
    for (int step = 0; step < 20000; step++) {
        int i = rand() % N;
        if (rand() % 3 == 0) {
            timer_wheel_cancel(&w, &t[i]);
            live[i] = false;
        } else {
            timer_wheel_arm(&w, &t[i], now + rand() % 3000);
            live[i] = true;
        }
        if (step % 7 == 0) {
            now += rand() % 120;
            for (struct wheel_timer *f = timer_wheel_advance(&w, now), *n; f; f = n) {
                n = f->next;
                size_t k = (size_t)(f - t);
                assert_true(live[k]);
                assert_true(f->due_ms <= now);
                live[k] = false;
            }
            for (int k = 0; k < N; k++)
                if (live[k])
                    assert_true(t[k].due_ms > now);
        }
    }
    timer_wheel_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fires_when_due_not_before),
        cmocka_unit_test(cancel_rearm_and_overdue),
        cmocka_unit_test(long_pause_loses_nothing),
        cmocka_unit_test(random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
