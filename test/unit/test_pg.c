/*
 * test_pg.c: the pure parts behind db/pg and db/pgpool: the [pg_auth]/[pg_logs] (and [redis]) key
 * tables, and the jittered reconnect backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/config.h"
#include "db/backoff.h"
#include "db/pg.h"
#include "db/redis.h"

static void test_pg_tables_defaults(void **state)
{
    struct ldg_pg_cfg a, l;
    memset(&a, 0, sizeof a);
    memset(&l, 0, sizeof l);
    struct ldg_cfg_section secs[] = {{"pg_auth", ldg_pg_auth_cfg_keys, &a, NULL},
                                     {"pg_logs", ldg_pg_logs_cfg_keys, &l, NULL}};
    struct ldg_cfg_err err;
    assert_int_equal(ldg_cfg_defaults(secs, 2, &err), 0);
    assert_string_equal(a.dbname, "ledger_auth");
    assert_string_equal(l.dbname, "ledger_logs");
    assert_string_equal(a.host, "127.0.0.1");
    assert_string_equal(a.user, "postgres");
    assert_string_equal(a.password_file, "");
    assert_int_equal(a.port, 5432);
    assert_true(a.pool_size >= 1);
    assert_true(a.statement_timeout_ms > 0 && a.connect_timeout_ms > 0 && a.acquire_timeout_ms > 0);
    assert_true(a.max_waiters >= 1);
    assert_true(a.reconnect_min_ms <= a.reconnect_max_ms);
    ldg_cfg_free(secs, 2);
}

static void test_tables_describe_every_key(void **state)
{
    const struct ldg_cfg_key *tables[] = {ldg_pg_auth_cfg_keys, ldg_pg_logs_cfg_keys, ldg_redis_cfg_keys};
    for (size_t t = 0; t < LDG_ARRAY_SIZE(tables); t++) {
        size_t n = 0;
        for (const struct ldg_cfg_key *k = tables[t]; k->name; k++, n++) {
            assert_non_null(k->desc);
            assert_true(strlen(k->desc) > 10);
            for (const struct ldg_cfg_key *o = tables[t]; o != k; o++) {
                assert_true(strcmp(o->name, k->name) != 0);
                assert_true(o->offset != k->offset);
            }
        }
        assert_true(n >= 9);
    }
}

static void test_pg_overrides_and_bounds(void **state)
{
    struct ldg_pg_cfg c;
    memset(&c, 0, sizeof c);
    struct ldg_cfg_section sec = {"pg_logs", ldg_pg_logs_cfg_keys, &c, NULL};
    struct ldg_cfg_err err;
    assert_int_equal(ldg_cfg_defaults(&sec, 1, &err), 0);
    assert_int_equal(
        ldg_cfg_load_string(&sec, 1, "t", "[pg_logs]\nhost = /run/postgresql\npool_size = 16\n", &err), 0);
    assert_string_equal(c.host, "/run/postgresql");
    assert_int_equal(c.pool_size, 16);
    assert_true(ldg_cfg_load_string(&sec, 1, "t", "[pg_logs]\nstatement_timeout_ms = 0\n", &err) < 0);
    assert_true(ldg_cfg_load_string(&sec, 1, "t", "[pg_logs]\nmax_waiters = 0\n", &err) < 0);
    ldg_cfg_free(&sec, 1);
}

static void test_redis_defaults(void **state)
{
    struct ldg_redis_cfg c;
    memset(&c, 0, sizeof c);
    struct ldg_cfg_section sec = {"redis", ldg_redis_cfg_keys, &c, NULL};
    struct ldg_cfg_err err;
    assert_int_equal(ldg_cfg_defaults(&sec, 1, &err), 0);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 6379);
    assert_int_equal(c.db, 0);
    assert_int_equal(c.command_timeout_ms, 2000);
    assert_int_equal(c.max_pending, 10000);
    ldg_cfg_free(&sec, 1);
}

static void test_backoff_doubles_with_jitter_and_caps(void **state)
{
    struct ldg_backoff b;
    ldg_backoff_init(&b, 100, 1000, 42);
    uint64_t expect[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(expect); i++) {
        uint64_t d = ldg_backoff_next(&b);
        assert_true(d >= expect[i] / 2 && d <= expect[i]);
    }
    assert_int_equal(b.failures, LDG_ARRAY_SIZE(expect));
    ldg_backoff_reset(&b);
    uint64_t d = ldg_backoff_next(&b);
    assert_true(d >= 50 && d <= 100);

    /* Jitter: two differently seeded sequences do not move in lockstep. */
    struct ldg_backoff x, y;
    ldg_backoff_init(&x, 1000, 60000, 1);
    ldg_backoff_init(&y, 1000, 60000, 2);
    int same = 0;
    for (int i = 0; i < 20; i++)
        same += ldg_backoff_next(&x) == ldg_backoff_next(&y);
    assert_true(same < 5);

    /* Degenerate bounds stay sane. */
    ldg_backoff_init(&b, 0, 0, 0);
    for (int i = 0; i < 100; i++)
        assert_true(ldg_backoff_next(&b) <= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_tables_defaults),
        cmocka_unit_test(test_tables_describe_every_key),
        cmocka_unit_test(test_pg_overrides_and_bounds),
        cmocka_unit_test(test_redis_defaults),
        cmocka_unit_test(test_backoff_doubles_with_jitter_and_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
