/*
 * test_event.c: SSE framing, event ids and published payloads (notify/event.h), and the shared
 * chunk framing they are written in (http/chunk.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/chunk.h"
#include "notify/event.h"
#include "unit.h"

static void test_format_event(void **state)
{
    (void)state;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_event_format(&b, "17-3", 4, "error_notification", "{\"a\": 1}", 8);
    assert_string_equal(text(&b), "id: 17-3\r\nevent: error_notification\r\ndata: {\"a\": 1}\r\n\r\n");
    ldg_buf_reset(&b);
    ldg_event_format(&b, NULL, 0, "connected", "{}", 2);
    assert_string_equal(text(&b), "event: connected\r\ndata: {}\r\n\r\n");
    /* Newlines in data become several data lines (CRLF and LF alike); a trailing one ends with an
     * empty line, as the SSE spec reassembles it. */
    ldg_buf_reset(&b);
    ldg_event_format(&b, NULL, 0, "x", "a\nb\r\nc", 6);
    assert_string_equal(text(&b), "event: x\r\ndata: a\r\ndata: b\r\ndata: c\r\n\r\n");
    ldg_buf_reset(&b);
    ldg_event_format(&b, NULL, 0, "x", "a\n", 2);
    assert_string_equal(text(&b), "event: x\r\ndata: a\r\n\r\n");
    ldg_buf_reset(&b);
    ldg_event_format(&b, NULL, 0, "x", "", 0);
    assert_string_equal(text(&b), "event: x\r\ndata: \r\n\r\n");
    ldg_buf_reset(&b);
    ldg_event_comment(&b, "ping - 2025-11-30 12:00:00.123456");
    assert_string_equal(text(&b), ": ping - 2025-11-30 12:00:00.123456\r\n\r\n");
    ldg_buf_free(&b);
}

static void test_ids(void **state)
{
    (void)state;
    struct ldg_event_id a, b;
    assert_true(ldg_event_id_parse("1732345678901-42", 16, &a));
    assert_true(a.ms == 1732345678901ull && a.seq == 42);
    assert_true(ldg_event_id_parse("5", 1, &b));
    assert_true(b.ms == 5 && b.seq == 0);
    assert_true(ldg_event_id_parse("18446744073709551615-18446744073709551615", 41, &b));
    assert_true(b.ms == UINT64_MAX && b.seq == UINT64_MAX);
    const char *bad[] = {"",    "-",    "1-",   "-1",    "a-1",
                         "1-b", "1 -2", "+1-2", "1-2-3", "18446744073709551616-0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ldg_event_id_parse(bad[i], strlen(bad[i]), &b));
    assert_false(ldg_event_id_parse(NULL, 0, &b));

    struct ldg_event_id x = {10, 5}, y = {10, 6}, z = {11, 0};
    assert_true(ldg_event_id_cmp(&x, &y) < 0 && ldg_event_id_cmp(&y, &z) < 0 && ldg_event_id_cmp(&z, &x) > 0);
    assert_int_equal(ldg_event_id_cmp(&x, &x), 0);
    char out[LDG_EVENT_ID_MAX + 1];
    assert_int_equal(ldg_event_id_format(&a, out), 16);
    assert_string_equal(out, "1732345678901-42");
}

static void test_split_published(void **state)
{
    (void)state;
    struct ldg_str id, json;
    struct ldg_event_id p;
    const char *m = "1-2\n{\"level\": \"error\"}";
    assert_true(ldg_event_split(m, strlen(m), &id, &p, &json));
    assert_true(ldg_str_eq(id, "1-2"));
    assert_true(ldg_str_eq(json, "{\"level\": \"error\"}"));
    assert_true(p.ms == 1 && p.seq == 2);
    const char *bad[] = {"{\"a\": 1}", "1-2\n", "x-2\n{}", "12\n{}", "\n{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ldg_event_split(bad[i], strlen(bad[i]), &id, &p, &json));
}

static void test_time(void **state)
{
    (void)state;
    char out[40];
    ldg_event_time(1764504000123456LL, true, out);
    assert_string_equal(out, "2025-11-30T12:00:00.123456Z");
    ldg_event_time(1764504000123456LL, false, out);
    assert_string_equal(out, "2025-11-30 12:00:00.123456");
    ldg_event_time(1764504000000000LL, true, out); /* Python leaves a zero fraction out */
    assert_string_equal(out, "2025-11-30T12:00:00Z");
    ldg_event_time(1764504000000001LL, false, out);
    assert_string_equal(out, "2025-11-30 12:00:00.000001");
}

static bool note(const char *text, const char *want_name, const char *want_data)
{
    struct ldg_str name, data;
    if (!ldg_event_note(text, strlen(text), &name, &data))
        return false;
    assert_int_equal(name.n, strlen(want_name));
    assert_memory_equal(name.p, want_name, name.n);
    assert_int_equal(data.n, strlen(want_data));
    assert_memory_equal(data.p, want_data, data.n);
    return true;
}

/* Published notes: bare JSON is an error notification, "<name>\n<json>" a typed event. */
static void test_note(void **state)
{
    (void)state;
    assert_true(note("{\"level\":\"error\"}", "error_notification", "{\"level\":\"error\"}"));
    assert_true(note("error_regression\n{\"group_id\":7}", "error_regression", "{\"group_id\":7}"));
    assert_true(note("x\n{}", "x", "{}"));
    assert_false(note("", "", ""));
    assert_false(note("error_regression", "", ""));         /* no data */
    assert_false(note("error_regression\n", "", ""));       /* empty data */
    assert_false(note("\n{}", "", ""));                     /* empty name */
    assert_false(note("Error\n{}", "", ""));                /* not [a-z_] */
    assert_false(note("a b\n{}", "", ""));
    assert_false(note("abcdefghijklmnopqrstuvwxyzabcdefg\n{}", "", "")); /* 33 characters */
    assert_true(note("abcdefghijklmnopqrstuvwxyzabcdef\n{}", "abcdefghijklmnopqrstuvwxyzabcdef", "{}"));
}

static void test_chunk(void **state)
{
    (void)state;
    struct ldg_chunk *c = ldg_chunk_new("event: x\r\n\r\n", 12);
    size_t n;
    const char *p = ldg_chunk_bytes(c, true, &n);
    assert_int_equal(n, 17);
    assert_memory_equal(p, "c\r\nevent: x\r\n\r\n\r\n", 17);
    p = ldg_chunk_bytes(c, false, &n);
    assert_int_equal(n, 12);
    assert_memory_equal(p, "event: x\r\n\r\n", 12);
    assert_ptr_equal(ldg_chunk_ref(c), c);
    assert_int_equal(c->refs, 2);
    ldg_chunk_unref(c);
    ldg_chunk_unref(c);

    char big[300];
    memset(big, 'a', sizeof big);
    c = ldg_chunk_new(big, sizeof big);
    p = ldg_chunk_bytes(c, true, &n);
    assert_int_equal(n, 3 + 2 + 300 + 2);
    assert_memory_equal(p, "12c\r\n", 5);
    ldg_chunk_unref(c);

    c = ldg_chunk_raw("0\r\n\r\n", 5);
    ldg_chunk_bytes(c, true, &n);
    assert_int_equal(n, 5);
    p = ldg_chunk_bytes(c, false, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "0\r\n\r\n", 5);
    ldg_chunk_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_event),    cmocka_unit_test(test_ids),
        cmocka_unit_test(test_split_published), cmocka_unit_test(test_time),
        cmocka_unit_test(test_chunk),           cmocka_unit_test(test_note),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
