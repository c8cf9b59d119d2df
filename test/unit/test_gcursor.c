#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "auth/apikey.h"
#include "query/gcursor.h"

static void round_trip(enum ldg_gsort sort, int64_t key, int64_t id)
{
    struct ldg_gcursor in = {sort, key, id}, out;
    char text[LDG_GCURSOR_MAX + 1];
    size_t n = ldg_gcursor_encode(&in, text);
    assert_int_equal(n, strlen(text));
    assert_true(n <= LDG_GCURSOR_MAX);
    for (size_t i = 0; i < n; i++) /* URL-safe as it is */
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", text[i]));
    assert_true(ldg_gcursor_decode(text, n, &out));
    assert_int_equal(out.sort, sort);
    assert_int_equal(out.key, key);
    assert_int_equal(out.id, id);
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip(LDG_GSORT_LAST_SEEN, 1765100000123456, 1);
    round_trip(LDG_GSORT_FIRST_SEEN, -5, 42);
    round_trip(LDG_GSORT_COUNT, 0, 999999999999999999);
    round_trip(LDG_GSORT_COUNT, 999999999999999999, 7);
}

static bool decode_raw(const char *raw)
{
    char text[LDG_GCURSOR_MAX * 2];
    ldg_base64url_encode(raw, strlen(raw), text);
    struct ldg_gcursor c;
    return ldg_gcursor_decode(text, strlen(text), &c);
}

static void test_rejects(void **state)
{
    (void)state;
    struct ldg_gcursor c;
    assert_false(ldg_gcursor_decode("", 0, &c));
    assert_false(ldg_gcursor_decode("!!!!", 4, &c));
    assert_false(ldg_gcursor_decode("Zz=", 3, &c));
    assert_true(decode_raw("g1:l:10:5"));
    assert_false(decode_raw("g1:x:10:5"));  /* unknown sort */
    assert_false(decode_raw("g2:l:10:5"));  /* unknown version */
    assert_false(decode_raw("v1:10:5"));    /* the logs cursor */
    assert_false(decode_raw("g1:l:10:0"));  /* ids start at 1 */
    assert_false(decode_raw("g1:l:10:-3"));
    assert_false(decode_raw("g1:l::5"));
    assert_false(decode_raw("g1:l:10:"));
    assert_false(decode_raw("g1:l:10"));
    assert_false(decode_raw("g1:l:1x:5"));
    assert_false(decode_raw("g1:l:10:5:6"));
    assert_false(decode_raw("g1:l:1234567890123456789:5")); /* 19 digits: could overflow */
    assert_false(decode_raw("g1:c:- :5"));
}

static void test_sort_names(void **state)
{
    (void)state;
    enum ldg_gsort s;
    assert_true(ldg_gsort_parse("last_seen", &s));
    assert_int_equal(s, LDG_GSORT_LAST_SEEN);
    assert_true(ldg_gsort_parse("first_seen", &s));
    assert_int_equal(s, LDG_GSORT_FIRST_SEEN);
    assert_true(ldg_gsort_parse("count", &s));
    assert_int_equal(s, LDG_GSORT_COUNT);
    assert_false(ldg_gsort_parse("occurrence_count", &s));
    assert_false(ldg_gsort_parse("", &s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_sort_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
