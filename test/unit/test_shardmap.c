/*
 * test_shardmap.c: project -> shard (db/shardmap.h): the jump hash, its balance and minimal
 * movement, overrides and their parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "db/shardmap.h"
#include "unit.h"

static void test_jump_vectors(void **state)
{
    (void)state;
    /* Same values as the Python version in test/integration/ldg_fleet.py (placement checks). */
    static const int32_t three[] = {0, 0, 2, 1, 1, 2, 0, 0, 2, 2, 2, 1};
    for (uint64_t k = 1; k <= 12; k++)
        assert_int_equal(ldg_shardmap_jump(k, 3), three[k - 1]);
    assert_int_equal(ldg_shardmap_jump(1, 16), 6);
    assert_int_equal(ldg_shardmap_jump(42, 16), 2);
    assert_int_equal(ldg_shardmap_jump(1000, 16), 13);
    assert_int_equal(ldg_shardmap_jump(123456789, 16), 7);
    for (uint64_t k = 0; k < 100; k++)
        assert_int_equal(ldg_shardmap_jump(k, 1), 0);
}

static void test_balance_and_movement(void **state)
{
    (void)state;
    enum { KEYS = 30000 };
    for (int32_t n = 1; n < LDG_SHARDS_MAX; n++) {
        unsigned count[LDG_SHARDS_MAX + 1] = {0};
        unsigned moved = 0;
        for (uint64_t k = 1; k <= KEYS; k++) {
            int32_t a = ldg_shardmap_jump(k, n), b = ldg_shardmap_jump(k, n + 1);
            assert_true(a >= 0 && a < n);
            assert_true(b >= 0 && b < n + 1);
            if (a != b) {
                assert_int_equal(b, n); /* growing moves keys only to the new shard */
                moved++;
            }
            count[b]++;
        }
        /* about 1/(n+1) move; each of the n+1 shards holds about KEYS/(n+1) (within 10%) */
        double expect = (double)KEYS / (n + 1);
        assert_true(moved > 0.9 * expect && moved < 1.1 * expect);
        for (int32_t s = 0; s <= n; s++)
            assert_true(count[s] > 0.9 * expect && count[s] < 1.1 * expect);
    }
}

static void test_overrides(void **state)
{
    (void)state;
    char err[256];
    struct ldg_shardmap m;
    assert_int_equal(ldg_shardmap_init(&m, 3, " 42:1, 7 : 2,100:0 ", err, sizeof err), 0);
    assert_int_equal(m.noverrides, 3);
    assert_int_equal(ldg_shardmap_of(&m, 42), 1);
    assert_int_equal(ldg_shardmap_of(&m, 7), 2);
    assert_int_equal(ldg_shardmap_of(&m, 100), 0);
    for (int64_t p = 1; p < 200; p++)
        if (p != 42 && p != 7 && p != 100)
            assert_int_equal(ldg_shardmap_of(&m, p), (unsigned)ldg_shardmap_jump((uint64_t)p, 3));
    ldg_shardmap_free(&m);

    /* one shard: everything on 0, whatever the hash */
    assert_int_equal(ldg_shardmap_init(&m, 1, NULL, err, sizeof err), 0);
    for (int64_t p = 1; p < 100; p++)
        assert_int_equal(ldg_shardmap_of(&m, p), 0);
    ldg_shardmap_free(&m);
    assert_int_equal(ldg_shardmap_init(&m, 2, "", err, sizeof err), 0);
    assert_int_equal(m.noverrides, 0);
    ldg_shardmap_free(&m);
}

static void test_bad_specs(void **state)
{
    (void)state;
    char err[256];
    struct ldg_shardmap m;
    const char *bad[] = {"42", "42:", ":1", "a:1", "42:1 x", "42:1,,7:0", "0:1", "-3:1", "42:-1", "42:1;7:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(ldg_shardmap_init(&m, 3, bad[i], err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "project_shards"));
    }
    assert_int_equal(ldg_shardmap_init(&m, 3, "42:3", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "there are 3 shards"));
    assert_int_equal(ldg_shardmap_init(&m, 3, "42:1, 42:2", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(ldg_shardmap_init(&m, 0, NULL, err, sizeof err), -EINVAL);
    assert_int_equal(ldg_shardmap_init(&m, LDG_SHARDS_MAX + 1, NULL, err, sizeof err), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jump_vectors),
        cmocka_unit_test(test_balance_and_movement),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_bad_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
