#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "query/bucket.h"

#define S_US 1000000LL
#define T0 (1796638800LL * S_US) /* 2026-12-07T10:20:00Z */
#define T1 (1796601600LL * S_US) /* 2026-12-07T00:00:00Z */

static void span(int64_t from, int64_t to, int64_t w, int64_t first, int64_t count)
{
    int64_t f, c;
    ldg_bucket_span(from, to, w, &f, &c);
    assert_int_equal(f, first);
    assert_int_equal(c, count);
}

static void test_span(void **state)
{
    /* One hour on minute boundaries: 60 buckets, the end is exclusive. */
    span(T0, T0 + 3600 * S_US, 60, T0 / S_US / 60, 60);
    /* Unaligned edges add the partial buckets at both ends. */
    span(T0 + 30 * S_US, T0 + 3630 * S_US, 60, T0 / S_US / 60, 61);
    /* Empty range: the bucket holding `from`. */
    span(T0 + 5 * S_US, T0 + 5 * S_US, 60, T0 / S_US / 60, 1);
    /* One microsecond past a boundary belongs to the next bucket. */
    span(T0, T0 + 60 * S_US + 1, 60, T0 / S_US / 60, 2);
    /* Before the epoch: floor, not truncation. */
    span(-1, 0, 60, -1, 1);
    span(-61 * S_US, 0, 60, -2, 2);
}

static void test_pick(void **state)
{
    assert_int_equal(ldg_bucket_pick(T0, T0 + 3600 * S_US, 60), 60);
    assert_int_equal(ldg_bucket_pick(T0, T0 + 3600 * S_US, 500), 10);
    assert_int_equal(ldg_bucket_pick(T0, T0 + 60 * S_US, 60), 1);
    assert_int_equal(ldg_bucket_pick(T0, T0 + 24 * 3600 * S_US, 60), 1800);
    /* 24 h from 10:20 touches 25 hours: 3 h; from midnight, exactly 24 one-hour buckets. */
    assert_int_equal(ldg_bucket_pick(T0, T0 + 24 * 3600 * S_US, 24), 10800);
    assert_int_equal(ldg_bucket_pick(T1, T1 + 24 * 3600 * S_US, 24), 3600);
    assert_int_equal(ldg_bucket_pick(T0, T0 + 7 * 86400 * S_US, 60), 10800);
    assert_int_equal(ldg_bucket_pick(T0, T0 + 30 * 86400 * S_US, 60), 86400); /* 12 h: 61 */
    assert_int_equal(ldg_bucket_pick(T1, T1 + 30 * 86400 * S_US, 60), 43200);
    assert_int_equal(ldg_bucket_pick(T0, T0 + 30 * 86400 * S_US, 10), 604800);
    assert_int_equal(ldg_bucket_pick(T0, T0, 1), 1);
    /* Past 7 d: whole weeks, never more buckets than asked. */
    int64_t w = ldg_bucket_pick(T0, T0 + 3650 * 86400 * S_US, 60);
    assert_int_equal(w % 604800, 0);
    int64_t f, c;
    ldg_bucket_span(T0, T0 + 3650 * 86400 * S_US, w, &f, &c);
    assert_true(c <= 60);
    ldg_bucket_span(T0, T0 + 3650 * 86400 * S_US, w - 604800, &f, &c);
    assert_true(c > 60);
    w = ldg_bucket_pick(T0, T0 + 30 * 86400 * S_US, 1);
    ldg_bucket_span(T0, T0 + 30 * 86400 * S_US, w, &f, &c);
    assert_int_equal(c, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span),
        cmocka_unit_test(test_pick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
