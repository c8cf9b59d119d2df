#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/civil.h"

static void check(int64_t s, int64_t y, uint32_t mo, uint32_t d, uint32_t h, uint32_t mi, uint32_t sec)
{
    struct ldg_civil c;
    ldg_civil_from_unix(s, &c);
    assert_int_equal(c.year, y);
    assert_int_equal(c.mon, mo);
    assert_int_equal(c.day, d);
    assert_int_equal(c.hour, h);
    assert_int_equal(c.min, mi);
    assert_int_equal(c.sec, sec);
    assert_int_equal(ldg_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec, s);
}

static void test_known_dates(void **state)
{
    (void)state;
    check(0, 1970, 1, 1, 0, 0, 0);
    check(-1, 1969, 12, 31, 23, 59, 59);
    check(951782400, 2000, 2, 29, 0, 0, 0); /* leap day of a 400-year leap year */
    check(4107542400, 2100, 3, 1, 0, 0, 0); /* 2100 is not a leap year */
    check(1736937045, 2025, 1, 15, 10, 30, 45);
    check(253402300799, 9999, 12, 31, 23, 59, 59);
    check(-62135596800, 1, 1, 1, 0, 0, 0);
}

/* Every day for 800 years round-trips and the next day follows. */
static void test_round_trip(void **state)
{
    (void)state;
    struct ldg_civil prev;
    ldg_civil_from_unix(ldg_days_from_civil(1700, 1, 1) * 86400 - 86400, &prev);
    for (int64_t day = ldg_days_from_civil(1700, 1, 1); day < ldg_days_from_civil(2500, 1, 1); day++) {
        struct ldg_civil c;
        ldg_civil_from_unix(day * 86400 + 43200, &c);
        assert_int_equal(ldg_days_from_civil(c.year, c.mon, c.day), day);
        assert_true(c.day == prev.day + 1 ||
                    (c.day == 1 && (c.mon == prev.mon + 1 || (c.mon == 1 && prev.mon == 12))));
        prev = c;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_dates),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
