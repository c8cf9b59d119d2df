/*
 * test_pgshard.c: logs shards and replicas without a server: the jump hash, the project -> shard
 * map of [pg_shards], LSN parsing, the lag estimate from LSN samples, and the numbered sections
 * [pg_logs.N] / [pg_logs_replica.N] of the settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/pgshard.h"
#include "db/shardmap.h"
#include "settings.h"

static void test_jump_hash(void **state)
{
    /* values of the reference algorithm (Lamping & Veach) */
    static const int two[] = {0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0};
    static const int three[] = {0, 0, 2, 1, 1, 2, 0, 0, 2, 2, 2, 1, 0, 0, 0, 2, 1, 2, 2, 0};
    for (int k = 1; k <= 20; k++) {
        assert_int_equal(ldg_shardmap_jump((uint64_t)k, 1), 0);
        assert_int_equal(ldg_shardmap_jump((uint64_t)k, 2), two[k - 1]);
        assert_int_equal(ldg_shardmap_jump((uint64_t)k, 3), three[k - 1]);
    }
    assert_int_equal(ldg_shardmap_jump(42, 8), 2);
    assert_int_equal(ldg_shardmap_jump(1, 1000), 549);
    /* growing n -> n+1 moves a key only to the new shard, and about 1/(n+1) of them */
    int moved = 0;
    for (uint64_t k = 1; k <= 10000; k++) {
        int a = ldg_shardmap_jump(k, 4), b = ldg_shardmap_jump(k, 5);
        assert_true(a == b || b == 4);
        moved += a != b;
    }
    assert_true(moved > 1600 && moved < 2400);
}

static void test_map(void **state)
{
    struct ldg_pgshard_map m;
    char why[200];
    assert_int_equal(ldg_pgshard_map_parse(&m, "", 1, why, sizeof why), 0);
    assert_int_equal(ldg_pgshard_of(&m, 4), 0);
    ldg_pgshard_map_free(&m);

    assert_int_equal(ldg_pgshard_map_parse(&m, " 4:0, 1:1 ,77:1", 2, why, sizeof why), 0);
    assert_int_equal(m.npins, 3);
    assert_int_equal(ldg_pgshard_of(&m, 4), 0); /* pinned (jump says 1) */
    assert_int_equal(ldg_pgshard_of(&m, 1), 1); /* pinned (jump says 0) */
    assert_int_equal(ldg_pgshard_of(&m, 77), 1);
    assert_int_equal(ldg_pgshard_of(&m, 5), 1); /* jump */
    assert_int_equal(ldg_pgshard_of(&m, 2), 0); /* jump */
    ldg_pgshard_map_free(&m);

    assert_int_equal(ldg_pgshard_map_parse(&m, "4:2", 2, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "shard 2 does not exist"));
    assert_int_equal(ldg_pgshard_map_parse(&m, "4:1,4:0", 2, why, sizeof why), -EINVAL);
    assert_non_null(strstr(why, "pinned twice"));
    static const char *const bad[] = {"4", "4:", ":1", "x:1", "4:1x", "0:1", "-3:1", "4;1"};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(bad); i++) {
        assert_int_equal(ldg_pgshard_map_parse(&m, bad[i], 2, why, sizeof why), -EINVAL);
        assert_non_null(strstr(why, "is not project:shard"));
        assert_null(m.pins);
    }
}

static void test_lsn(void **state)
{
    uint64_t v;
    assert_int_equal(ldg_pgshard_lsn_parse("0/0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ldg_pgshard_lsn_parse("16/B374D848", &v), 0);
    assert_true(v == ((uint64_t)0x16 << 32 | 0xB374D848u));
    assert_int_equal(ldg_pgshard_lsn_parse("FFFFFFFF/FFFFFFFF", &v), 0);
    assert_true(v == UINT64_MAX);
    static const char *const bad[] = {"", "/", "1/", "/1", "1/2/3", "g/1", "123456789/1", "1"};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(bad); i++)
        assert_int_equal(ldg_pgshard_lsn_parse(bad[i], &v), -EINVAL);
    assert_int_equal(ldg_pgshard_lsn_parse(NULL, &v), -EINVAL);
}

static void test_lag(void **state)
{
    struct ldg_pglag l;
    memset(&l, 0, sizeof l);
    assert_int_equal(ldg_pglag_estimate(&l, 1000, 5), -1); /* nothing known yet */
    ldg_pglag_note_primary(&l, 1000, 100);
    assert_int_equal(ldg_pglag_estimate(&l, 1000, 100), 0);
    /* idle primary: the same LSN for a minute; a caught-up replica is not late */
    for (uint64_t t = 2000; t <= 61000; t += 1000)
        ldg_pglag_note_primary(&l, t, 100);
    assert_int_equal(ldg_pglag_estimate(&l, 61000, 100), 0);
    /* a replica that has not replayed LSN 100 is late since it was first seen (t=1000) */
    assert_int_equal(ldg_pglag_estimate(&l, 61000, 99), 60000);
    /* the primary moves on */
    ldg_pglag_note_primary(&l, 62000, 200);
    ldg_pglag_note_primary(&l, 63000, 300);
    assert_int_equal(ldg_pglag_estimate(&l, 63500, 300), 0);
    assert_int_equal(ldg_pglag_estimate(&l, 63500, 250), 500);  /* 300 seen at 63000 */
    assert_int_equal(ldg_pglag_estimate(&l, 63500, 200), 500);  /* 200 replayed: 300 is due */
    assert_int_equal(ldg_pglag_estimate(&l, 63500, 150), 1500); /* 200 is due since 62000 */
    /* more samples than the ring holds: the oldest held bounds the lag from below */
    for (uint64_t k = 1; k <= 2 * LDG_PGLAG_SAMPLES; k++)
        ldg_pglag_note_primary(&l, 63000 + k * 100, 300 + k);
    int64_t lag = ldg_pglag_estimate(&l, 63000 + 2 * LDG_PGLAG_SAMPLES * 100, 0);
    assert_int_equal(lag, (LDG_PGLAG_SAMPLES - 1) * 100);
}

static void test_settings_sections(void **state)
{
    struct ldg_config c;
    struct ldg_cfg_err err = {{0}};
    assert_int_equal(ldg_settings_load_string(&c, "[server]\nport = 8020\n", &err), 0);
    assert_int_equal(c.npg_shards, 1);
    assert_int_equal(c.npg_replicas, 0);
    ldg_settings_free(&c);

    static const char two[] = "[pg_logs]\ndbname = a\n"
                              "[pg_logs.1]\ndbname = b\nport = 5433\n"
                              "[pg_shards]\nprojects = 9:0\nprojects = 10:1\n"
                              "[pg_logs_replica.3]\nport = 5434\nshard = 1\nmax_lag_ms = 500\n"
                              "[pg_logs_replica.1]\nport = 5435\n";
    assert_int_equal(ldg_settings_load_string(&c, two, &err), 0);
    assert_int_equal(c.npg_shards, 2);
    assert_string_equal(ldg_settings_pg_shard(&c, 0)->dbname, "a");
    assert_string_equal(ldg_settings_pg_shard(&c, 1)->dbname, "b");
    assert_int_equal(ldg_settings_pg_shard(&c, 1)->port, 5433);
    assert_int_equal(c.npg_replicas, 2);
    assert_int_equal(c.pg_replica_number[0], 1); /* in the order of their numbers */
    assert_int_equal(c.pg_replica[0].pg.port, 5435);
    assert_int_equal(c.pg_replica[0].shard, 0);
    assert_int_equal(c.pg_replica[0].max_lag_ms, 10000);
    assert_int_equal(c.pg_replica_number[1], 3);
    assert_int_equal(c.pg_replica[1].shard, 1);
    assert_int_equal(c.pg_replica[1].max_lag_ms, 500);
    assert_string_equal(c.pg_replica[1].pg.dbname, "ledger_logs");
    assert_int_equal(ldg_pgshard_of(&c.pg_shard_map, 9), 0);
    assert_int_equal(ldg_pgshard_of(&c.pg_shard_map, 10), 1);
    ldg_settings_free(&c);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"[pg_logs.2]\ndbname = b\n", "[pg_logs.2] needs [pg_logs.1]"},
        {"[pg_logs.8]\ndbname = b\n", "unknown section [pg_logs.8]"},
        {"[pg_logs_replica.9]\nport = 1\n", "unknown section [pg_logs_replica.9]"},
        {"[pg_logs_replica.1]\nshard = 1\n", "shard = 1: no such logs shard"},
        {"[pg_shards]\nprojects = 5:1\n", "[pg_shards] projects: project 5: shard 1 does not exist"},
        {"[pg_logs.1]\nshard = 1\n", "unknown key \"shard\" in [pg_logs.1]"},
    };
    for (size_t i = 0; i < LDG_ARRAY_SIZE(bad); i++) {
        memset(&err, 0, sizeof err);
        assert_int_not_equal(ldg_settings_load_string(&c, bad[i].text, &err), 0);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].text, err.msg, bad[i].msg);
        ldg_settings_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jump_hash),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_lsn),
        cmocka_unit_test(test_lag),
        cmocka_unit_test(test_settings_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
