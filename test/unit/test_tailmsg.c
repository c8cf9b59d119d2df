/*
 * test_tailmsg.c: live-tail names and message framing (notify/tailmsg.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "notify/tailmsg.h"
#include "unit.h"

static void test_names(void **state)
{
    (void)state;
    char ch[LDG_TAILMSG_NAME_MAX];
    ldg_tailmsg_channel(ch, sizeof ch, 42);
    assert_string_equal(ch, "tail:{p42}");
    assert_int_equal(ldg_tailmsg_channel_project(ch, strlen(ch)), 42);
    ldg_tailmsg_viewers_key(ch, sizeof ch, 7);
    assert_string_equal(ch, "tail:viewers:{p7}");
    const char *bad[] = {"tail:{p}", "tail:{p4x}", "tail:{p42", "notifications:events:42", "tail:viewers:{p7}",
                         "tail:{p99999999999999999999}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ldg_tailmsg_channel_project(bad[i], strlen(bad[i])), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_tailmsg_begin(&b, 3);
    ldg_tailmsg_add(&b, "{\"id\":1}", 8);
    ldg_tailmsg_add(&b, "{\"id\":2}", 8);
    assert_string_equal(text(&b), "3\n{\"id\":1}\n{\"id\":2}");
    uint64_t dropped = 0;
    struct ldg_str logs, one;
    assert_true(ldg_tailmsg_open(ldg_buf_head(&b), ldg_buf_size(&b), &dropped, &logs));
    assert_int_equal(dropped, 3);
    assert_true(ldg_tailmsg_next(&logs, &one));
    assert_true(ldg_str_eq(one, "{\"id\":1}"));
    assert_true(ldg_tailmsg_next(&logs, &one));
    assert_true(ldg_str_eq(one, "{\"id\":2}"));
    assert_false(ldg_tailmsg_next(&logs, &one));

    /* header only: dropped logs and nothing else */
    ldg_buf_reset(&b);
    ldg_tailmsg_begin(&b, 5);
    assert_true(ldg_tailmsg_open(ldg_buf_head(&b), ldg_buf_size(&b), &dropped, &logs));
    assert_int_equal(dropped, 5);
    assert_false(ldg_tailmsg_next(&logs, &one));
    ldg_buf_free(&b);

    const char *bad[] = {"", "{\"id\":1}", "\n{}", "x\n{}", "123456789012345678901\n{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ldg_tailmsg_open(bad[i], strlen(bad[i]), &dropped, &logs));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
