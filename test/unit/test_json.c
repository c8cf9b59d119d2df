#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "unit.h"

#include <errno.h>
#include <inttypes.h>

#include "core/json.h"

static void test_writer_nesting(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer w;
    ldg_json_writer_init(&w, &b);
    ldg_json_obj_begin(&w);
    ldg_json_key(&w, "id");
    ldg_json_int(&w, INT64_MIN);
    ldg_json_key(&w, "name");
    ldg_json_str(&w, "x");
    ldg_json_key(&w, "tags");
    ldg_json_arr_begin(&w);
    ldg_json_str(&w, "a");
    ldg_json_arr_begin(&w);
    ldg_json_arr_end(&w);
    ldg_json_obj_begin(&w);
    ldg_json_obj_end(&w);
    ldg_json_null(&w);
    ldg_json_bool(&w, true);
    ldg_json_bool(&w, false);
    ldg_json_arr_end(&w);
    ldg_json_key(&w, "nested");
    ldg_json_obj_begin(&w);
    ldg_json_key(&w, "k");
    ldg_json_str(&w, NULL);
    ldg_json_key(&w, "raw");
    ldg_json_raw(&w, "[1,2]", 5);
    ldg_json_key(&w, "d");
    ldg_json_double(&w, 0.1);
    ldg_json_key(&w, "inf");
    ldg_json_double(&w, 1.0 / 0.0);
    ldg_json_obj_end(&w);
    ldg_json_key(&w, "n");
    ldg_json_strn(&w, "abcdef", 3);
    ldg_json_obj_end(&w);
    assert_int_equal(w.depth, 0);
    assert_string_equal(text(&b),
                        "{\"id\":-9223372036854775808,\"name\":\"x\",\"tags\":[\"a\",[],{},null,true,false],"
                        "\"nested\":{\"k\":null,\"raw\":[1,2],\"d\":0.1,\"inf\":null},\"n\":\"abc\"}");
    cJSON *back = ldg_json_parse(ldg_buf_head(&b), ldg_buf_size(&b));
    assert_non_null(back);
    cJSON_Delete(back);

    /* Deep nesting up to the limit. */
    ldg_buf_reset(&b);
    ldg_json_writer_init(&w, &b);
    for (int i = 0; i < LDG_JSON_MAX_DEPTH; i++)
        ldg_json_arr_begin(&w);
    ldg_json_int(&w, 1);
    ldg_json_int(&w, 2);
    for (int i = 0; i < LDG_JSON_MAX_DEPTH; i++)
        ldg_json_arr_end(&w);
    back = ldg_json_parse(ldg_buf_head(&b), ldg_buf_size(&b));
    assert_non_null(back);
    cJSON_Delete(back);
    ldg_buf_free(&b);
}

static void test_writer_escaping(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer w;
    ldg_json_writer_init(&w, &b);
    static const char in[] = "q\"b\\s/n\nr\rt\tb\bf\f\x01\x1f\x7f é😀";
    ldg_json_arr_begin(&w);
    ldg_json_strn(&w, in, sizeof in - 1);
    ldg_json_strn(&w, "a\0b", 3);
    /* Invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF. */
    ldg_json_str(&w, "x\x80y\xe2\x82z\xc0\xafw\xed\xa0\x80v\xf4\x90\x80\x80u");
    ldg_json_arr_end(&w);
    assert_string_equal(text(&b), "[\"q\\\"b\\\\s/n\\nr\\rt\\tb\\u0008f\\u000c\\u0001\\u001f\x7f é😀\","
                                  "\"a\\u0000b\","
                                  "\"x\\ufffdy\\ufffd\\ufffdz\\ufffd\\ufffdw\\ufffd\\ufffd\\ufffdv"
                                  "\\ufffd\\ufffd\\ufffd\\ufffdu\"]");
    /* cJSON reads back exactly what went in (apart from the NUL, which C strings cannot carry). */
    cJSON *back = cJSON_ParseWithLength(ldg_buf_head(&b), ldg_buf_size(&b));
    assert_non_null(back);
    assert_string_equal(cJSON_GetArrayItem(back, 0)->valuestring, in);
    cJSON_Delete(back);

    /* Keys are escaped too. */
    ldg_buf_reset(&b);
    ldg_json_writer_init(&w, &b);
    ldg_json_obj_begin(&w);
    ldg_json_key(&w, "we\"ird\n");
    ldg_json_int(&w, 0);
    ldg_json_obj_end(&w);
    assert_string_equal(text(&b), "{\"we\\\"ird\\n\":0}");
    ldg_buf_free(&b);
}

/* Word-at-a-time scanning: a character that needs escaping (or a multibyte one) at every position
 * of strings up to 40 bytes, checked against a byte-by-byte rendering. */
static void test_escape_every_position(void **state)
{
    static const char *const specials[] = {"\"", "\\", "\n", "\x01", "\x1f", "\xc3\xa9", "\xff"};
    static const char *const escaped[] = {"\\\"", "\\\\", "\\n", "\\u0001", "\\u001f", "\xc3\xa9", "\\ufffd"};
    struct ldg_buf b, want;
    ldg_buf_init(&b);
    ldg_buf_init(&want);
    for (size_t k = 0; k < LDG_ARRAY_SIZE(specials); k++) {
        size_t sl = strlen(specials[k]);
        for (size_t len = 0; len <= 40; len++) {
            for (size_t at = 0; at <= len; at++) {
                char in[48];
                memset(in, 'a', len);
                memcpy(in + at, specials[k], sl);
                memset(in + at + sl, 'b', len - at);
                size_t n = len + sl;
                ldg_buf_reset(&b);
                ldg_json_escape(&b, in, n);
                ldg_buf_reset(&want);
                ldg_buf_put(&want, in, at);
                ldg_buf_puts(&want, escaped[k]);
                ldg_buf_put(&want, in + at + sl, len - at);
                assert_int_equal(ldg_buf_size(&b), ldg_buf_size(&want));
                assert_memory_equal(ldg_buf_head(&b), ldg_buf_head(&want), ldg_buf_size(&want));
                size_t chars = 0;
                int rc = ldg_utf8_count(in, n, &chars);
                if (k == LDG_ARRAY_SIZE(specials) - 1) {
                    assert_int_equal(rc, -EINVAL); /* 0xff is never valid UTF-8 */
                } else {
                    assert_int_equal(rc, 0);
                    assert_int_equal(chars, len + 1);
                }
            }
        }
    }
    ldg_buf_free(&b);
    ldg_buf_free(&want);
}

static void test_utf8_count(void **state)
{
    size_t n;
    assert_int_equal(ldg_utf8_count("", 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ldg_utf8_count("abc", 3, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ldg_utf8_count("é", strlen("é"), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ldg_utf8_count("😀a€", strlen("😀a€"), &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ldg_utf8_count("\xf4\x8f\xbf\xbf", 4, &n), 0); /* U+10FFFF */
    assert_int_equal(n, 1);
    static const char *bad[] = {"\x80",         "\xc0\x80",         "\xc1\xbf",         "\xe0\x80\x80",
                                "\xed\xa0\x80", "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                "\xff",         "\xe2\x82",         "\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ldg_utf8_count(bad[i], strlen(bad[i]), &n), -EINVAL);
    /* A valid sequence cut by the length argument is invalid. */
    assert_int_equal(ldg_utf8_count("😀", 3, &n), -EINVAL);
}

static cJSON *parse(const char *s)
{
    /* Exact-size heap copy without a NUL, so reads past the end show up under ASan. */
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    cJSON *j = ldg_json_parse(copy, n);
    free(copy);
    return j;
}

static void test_parse(void **state)
{
    cJSON *j = parse(" {\"a\": [1, 2, {\"b\": null}]} \r\n\t");
    assert_non_null(j);
    cJSON_Delete(j);
    j = parse("\"just a string\"");
    assert_non_null(j);
    cJSON_Delete(j);
    j = parse("12");
    assert_non_null(j);
    cJSON_Delete(j);

    static const char *bad[] = {
        "",
        "   ",
        "{",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "{'a':1}",
        "{\"a\":\"\\u0000\"}",
        "{\"a\":\"x\\uD800\"}",
        "{\"a\":\"x\\uDE00y\"}",
        "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"\xed\xa0\x80\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = parse(bad[i]);
        if (j)
            fail_msg("accepted %zu: %s", i, bad[i]);
    }
    /* Raw NUL byte inside the text. */
    assert_null(ldg_json_parse("{\"a\":\"x\0y\"}", 11));
    /* An escaped backslash followed by the text u0000 is fine. */
    j = parse("{\"a\":\"\\\\u0000\"}");
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "a")->valuestring, "\\u0000");
    cJSON_Delete(j);
}

static void test_get_string(void **state)
{
    char err[128];
    const char *s;
    cJSON *j = parse("{\"name\":\"Zoë\",\"emoji\":\"😀😀\",\"pair\":\"\\uD83D\\uDE00x\",\"num\":5,\"nul\":null,"
                     "\"empty\":\"\",\"dup\":\"first\",\"dup\":\"last\"}");
    assert_non_null(j);

    assert_int_equal(ldg_json_get_string(j, "name", true, 1, 3, &s, err, sizeof err), 1);
    assert_string_equal(s, "Zoë");
    assert_int_equal(ldg_json_get_string(j, "name", true, 1, 2, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'name' must be at most 2 characters");
    assert_null(s);
    assert_int_equal(ldg_json_get_string(j, "name", true, 4, 0, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'name' must be at least 4 characters");

    /* Code points, not bytes: two emoji (8 bytes) are 2 characters. */
    assert_int_equal(ldg_json_get_string(j, "emoji", true, 2, 2, &s, err, sizeof err), 1);
    assert_int_equal(strlen(s), 8);
    /* A surrogate-pair escape decodes to one 4-byte character. */
    assert_int_equal(ldg_json_get_string(j, "pair", true, 0, 2, &s, err, sizeof err), 1);
    assert_string_equal(s, "😀x");
    assert_int_equal(ldg_json_get_string(j, "pair", true, 0, 1, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'pair' must be at most 1 character");

    assert_int_equal(ldg_json_get_string(j, "num", true, 0, 0, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'num' must be a string");
    assert_int_equal(ldg_json_get_string(j, "missing", true, 0, 0, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'missing' is required");
    assert_int_equal(ldg_json_get_string(j, "missing", false, 0, 0, &s, err, sizeof err), 0);
    assert_null(s);
    assert_int_equal(ldg_json_get_string(j, "nul", false, 0, 0, &s, err, sizeof err), 0);
    assert_null(s);
    assert_int_equal(ldg_json_get_string(j, "nul", true, 0, 0, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'nul' must be a string");
    assert_int_equal(ldg_json_get_string(j, "empty", true, 0, 0, &s, err, sizeof err), 1);
    assert_string_equal(s, "");
    assert_int_equal(ldg_json_get_string(j, "empty", true, 1, 0, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'empty' must be at least 1 character");
    /* Duplicate names: the last one wins. */
    assert_int_equal(ldg_json_get_string(j, "dup", true, 0, 0, &s, err, sizeof err), 1);
    assert_string_equal(s, "last");
    /* Truncated message buffer and no buffer at all. */
    char small[8];
    assert_int_equal(ldg_json_get_string(j, "missing", true, 0, 0, &s, small, sizeof small), -EINVAL);
    assert_string_equal(small, "Field '");
    assert_int_equal(ldg_json_get_string(j, "missing", true, 0, 0, &s, NULL, 0), -EINVAL);
    cJSON_Delete(j);

    j = parse("[1]");
    assert_int_equal(ldg_json_get_string(j, "a", false, 0, 0, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Request body must be a JSON object");
    cJSON_Delete(j);

    /* A tree built by hand can hold invalid UTF-8; the getter catches it. */
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "bad", "\xff");
    assert_int_equal(ldg_json_get_string(j, "bad", true, 0, 0, &s, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'bad' must be valid UTF-8");
    cJSON_Delete(j);
}

static void test_get_int_bool(void **state)
{
    char err[128];
    int64_t v = -1;
    bool b = false;
    cJSON *j = parse("{\"i\":42,\"neg\":-7,\"f\":1.5,\"whole\":3.0,\"s\":\"5\",\"t\":true,\"big\":1e300,"
                     "\"n\":null,\"max\":9007199254740992}");
    assert_non_null(j);
    assert_int_equal(ldg_json_get_int(j, "i", true, 0, 100, &v, err, sizeof err), 1);
    assert_int_equal(v, 42);
    assert_int_equal(ldg_json_get_int(j, "whole", true, 0, 100, &v, err, sizeof err), 1);
    assert_int_equal(v, 3);
    assert_int_equal(ldg_json_get_int(j, "max", true, 0, INT64_MAX, &v, err, sizeof err), 1);
    assert_int_equal(v, 9007199254740992LL);
    assert_int_equal(ldg_json_get_int(j, "i", true, 0, 10, &v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'i' must be at most 10");
    assert_int_equal(ldg_json_get_int(j, "neg", true, 0, 10, &v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'neg' must be at least 0");
    assert_int_equal(ldg_json_get_int(j, "f", true, 0, 10, &v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'f' must be an integer");
    assert_int_equal(ldg_json_get_int(j, "s", true, 0, 10, &v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 's' must be an integer");
    assert_int_equal(ldg_json_get_int(j, "t", true, 0, 10, &v, err, sizeof err), -EINVAL);
    assert_int_equal(ldg_json_get_int(j, "big", true, INT64_MIN, INT64_MAX, &v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'big' must be at most 9223372036854775807");
    assert_int_equal(ldg_json_get_int(j, "gone", true, 0, 10, &v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'gone' is required");
    v = 99;
    assert_int_equal(ldg_json_get_int(j, "gone", false, 0, 10, &v, err, sizeof err), 0);
    assert_int_equal(ldg_json_get_int(j, "n", false, 0, 10, &v, err, sizeof err), 0);
    assert_int_equal(v, 99);
    assert_int_equal(ldg_json_get_int(j, "n", true, 0, 10, &v, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'n' must be an integer");

    assert_int_equal(ldg_json_get_bool(j, "t", true, &b, err, sizeof err), 1);
    assert_true(b);
    assert_int_equal(ldg_json_get_bool(j, "i", true, &b, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'i' must be a boolean");
    assert_int_equal(ldg_json_get_bool(j, "gone", false, &b, err, sizeof err), 0);
    assert_int_equal(ldg_json_get_bool(j, "gone", true, &b, err, sizeof err), -EINVAL);
    assert_string_equal(err, "Field 'gone' is required");
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_nesting),
        cmocka_unit_test(test_writer_escaping),
        cmocka_unit_test(test_escape_every_position),
        cmocka_unit_test(test_utf8_count),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_get_string),
        cmocka_unit_test(test_get_int_bool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
