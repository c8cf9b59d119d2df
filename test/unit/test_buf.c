#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/str.h"

static void test_append_limit(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    assert_int_equal(ldg_buf_append(&b, "hello", 5, 8), 0);
    assert_int_equal(ldg_buf_append(&b, "abcd", 4, 8), -E2BIG);
    assert_int_equal(ldg_buf_size(&b), 5);
    assert_int_equal(ldg_buf_append(&b, "abc", 3, 8), 0);
    assert_memory_equal(ldg_buf_head(&b), "helloabc", 8);
    ldg_buf_free(&b);
}

static void test_consume_compacts(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        ldg_buf_put(&b, "0123456789", 10);
    ldg_buf_consume(&b, 9990);
    assert_int_equal(ldg_buf_size(&b), 10);
    size_t cap = b.cap;
    ldg_buf_put(&b, "x", 1);
    assert_int_equal(b.cap, cap);
    assert_memory_equal(ldg_buf_head(&b), "0123456789x", 11);
    ldg_buf_consume(&b, 11);
    assert_int_equal(ldg_buf_size(&b), 0);
    ldg_buf_free(&b);
}

static void test_printf_and_escape(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ldg_buf_printf(&b, "%s|%d", big, 42);
    assert_int_equal(ldg_buf_size(&b), 999 + 3);
    ldg_buf_reset(&b);
    ldg_buf_json_escape(&b, "a\"b\\c\n\x01", 7);
    assert_int_equal(ldg_buf_size(&b), strlen("a\\\"b\\\\c\\n\\u0001"));
    assert_memory_equal(ldg_buf_head(&b), "a\\\"b\\\\c\\n\\u0001", ldg_buf_size(&b));
    ldg_buf_free(&b);
}

/* Decimal integers without printf: every width and both ends of int64, against snprintf. */
static void test_put_i64(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    int64_t vals[] = {0, 1, -1, 9, 10, -10, 99, 100, 123456789, -987654321012, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(vals); i++) {
        char want[32], got[24];
        int n = snprintf(want, sizeof want, "%" PRId64, vals[i]);
        ldg_buf_reset(&b);
        ldg_buf_put(&b, "x", 1);
        ldg_buf_put_i64(&b, vals[i]);
        assert_int_equal(ldg_buf_size(&b), (size_t)n + 1);
        assert_memory_equal(ldg_buf_head(&b) + 1, want, (size_t)n);
        assert_int_equal(ldg_str_i64(got, vals[i]), (size_t)n);
        assert_string_equal(got, want);
    }
    ldg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_limit),
        cmocka_unit_test(test_consume_compacts),
        cmocka_unit_test(test_printf_and_escape),
        cmocka_unit_test(test_put_i64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
