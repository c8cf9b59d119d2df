/*
 * test_prefs.c: notification preferences parsing and the per-notification filter
 * (notify/prefs.h, reference §3.8 N3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "notify/prefs.h"
#include "unit.h"

static bool allow(const struct ldg_prefs *p, int64_t pid, const char *level, const char *type)
{
    return ldg_prefs_allow(p, pid, level, strlen(level), type, strlen(type));
}

static void parse(struct ldg_prefs *p, const char *json)
{
    (void)ldg_prefs_parse(p, json, strlen(json));
}

static void test_defaults(void **state)
{
    (void)state;
    struct ldg_prefs p;
    ldg_prefs_init(&p);
    assert_true(allow(&p, 1, "error", "console"));
    assert_int_equal(ldg_prefs_parse(&p, "[1]", 3), -EINVAL);
    assert_true(p.enabled && p.nprojects == 0);
    assert_int_equal(ldg_prefs_parse(&p, NULL, 0), -EINVAL);
    parse(&p, "{\"enabled\": \"no\", \"projects\": []}"); /* wrong types: defaults */
    assert_true(allow(&p, 1, "error", "console"));
    ldg_prefs_free(&p);
}

static void test_filter(void **state)
{
    (void)state;
    struct ldg_prefs p;
    ldg_prefs_init(&p);
    parse(&p, "{\"enabled\": false, \"projects\": {}}");
    assert_false(allow(&p, 1, "error", "console"));

    parse(&p, "{\"enabled\": true, \"projects\": {"
              "\"1\": {\"enabled\": false},"
              "\"2\": {\"levels\": [\"Critical\", 7], \"types\": []},"
              "\"3\": {\"types\": [\"exception\"]},"
              "\"4\": {\"levels\": [\"error\"], \"types\": [\"exception\"]},"
              "\"05\": {\"enabled\": false}, \"x\": {\"enabled\": false}, \"6\": 3}}");
    assert_int_equal(p.nprojects, 4);
    assert_false(allow(&p, 1, "critical", "exception"));
    assert_true(allow(&p, 2, "CRITICAL", "console")); /* levels: case-insensitive */
    assert_false(allow(&p, 2, "error", "console"));
    assert_true(allow(&p, 3, "warning", "exception"));
    assert_false(allow(&p, 3, "error", "Exception")); /* types: exact */
    assert_true(allow(&p, 4, "error", "exception"));
    assert_false(allow(&p, 4, "critical", "exception"));
    assert_false(allow(&p, 4, "error", "console"));
    assert_true(allow(&p, 5, "error", "console")); /* "05" never matches */
    assert_true(allow(&p, 6, "error", "console")); /* not an object: no entry */
    assert_true(allow(&p, 99, "error", "console"));
    ldg_prefs_free(&p);
    assert_true(allow(&p, 1, "error", "console"));
}

/* Events not about one log (level NULL): only enabled and the project's switch apply. */
static void test_not_a_log(void **state)
{
    (void)state;
    struct ldg_prefs p;
    ldg_prefs_init(&p);
    parse(&p, "{\"enabled\": true, \"projects\": {\"1\": {\"enabled\": false},"
              "\"4\": {\"levels\": [\"critical\"], \"types\": [\"console\"]}}}");
    assert_false(ldg_prefs_allow(&p, 1, NULL, 0, NULL, 0));
    assert_true(ldg_prefs_allow(&p, 4, NULL, 0, NULL, 0));
    assert_true(ldg_prefs_allow(&p, 9, NULL, 0, NULL, 0));
    parse(&p, "{\"enabled\": false}");
    assert_false(ldg_prefs_allow(&p, 9, NULL, 0, NULL, 0));
    ldg_prefs_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_not_a_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
