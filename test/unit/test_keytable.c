/* keytable: the gateway's per-loop API-key table (LRU bound, overwrite, delete, chains). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>

#include "auth/apikey.h"
#include "roles/gateway/keytable.h"

static void digest_of(int i, char out[LDG_SHA256_HEX_LEN + 1])
{
    char s[32];
    snprintf(s, sizeof s, "key-%d", i);
    ldg_apikey_digest(s, strlen(s), out);
}

static struct ldg_keyentry entry(int i)
{
    struct ldg_keyentry e;
    memset(&e, 0, sizeof e);
    digest_of(i, e.digest);
    e.key_id = i;
    e.project_id = 1000 + i;
    return e;
}

static void test_put_get_overwrite_del(void **state)
{
    struct ldg_keytable t;
    ldg_keytable_init(&t, 8);
    struct ldg_keyentry e = entry(1);
    assert_null(ldg_keytable_get(&t, e.digest));
    struct ldg_keyentry *s = ldg_keytable_put(&t, &e);
    assert_int_equal(s->project_id, 1001);
    assert_ptr_equal(ldg_keytable_get(&t, e.digest), s);
    e.project_id = 7;
    e.negative = true;
    assert_ptr_equal(ldg_keytable_put(&t, &e), s); /* overwrite in place */
    assert_int_equal(s->project_id, 7);
    assert_true(s->negative);
    assert_int_equal(t.count, 1);
    assert_true(ldg_keytable_del(&t, e.digest));
    assert_false(ldg_keytable_del(&t, e.digest));
    assert_null(ldg_keytable_get(&t, e.digest));
    assert_int_equal(t.count, 0);
    ldg_keytable_free(&t);
}

static void test_lru_bound(void **state)
{
    struct ldg_keytable t;
    ldg_keytable_init(&t, 3);
    for (int i = 0; i < 3; i++) {
        struct ldg_keyentry e = entry(i);
        ldg_keytable_put(&t, &e);
    }
    char d0[65];
    digest_of(0, d0);
    assert_non_null(ldg_keytable_get(&t, d0)); /* 0 becomes most recent: 1 is now the oldest */
    struct ldg_keyentry e3 = entry(3);
    ldg_keytable_put(&t, &e3);
    assert_int_equal(t.count, 3);
    char d1[65], d2[65];
    digest_of(1, d1);
    digest_of(2, d2);
    assert_null(ldg_keytable_get(&t, d1));
    assert_non_null(ldg_keytable_get(&t, d0));
    assert_non_null(ldg_keytable_get(&t, d2));
    assert_non_null(ldg_keytable_get(&t, e3.digest));
    ldg_keytable_free(&t);
}

static void test_many_entries_and_collisions(void **state)
{
    struct ldg_keytable t;
    ldg_keytable_init(&t, 1000);
    for (int i = 0; i < 5000; i++) {
        struct ldg_keyentry e = entry(i);
        ldg_keytable_put(&t, &e);
        assert_true(t.count <= 1000);
    }
    for (int i = 4000; i < 5000; i++) { /* the newest 1000 survive */
        char d[65];
        digest_of(i, d);
        struct ldg_keyentry *e = ldg_keytable_get(&t, d);
        assert_non_null(e);
        assert_int_equal(e->key_id, i);
    }
    for (int i = 0; i < 4000; i += 97) {
        char d[65];
        digest_of(i, d);
        assert_null(ldg_keytable_get(&t, d));
    }
    for (int i = 4000; i < 5000; i += 2) {
        char d[65];
        digest_of(i, d);
        assert_true(ldg_keytable_del(&t, d));
    }
    assert_int_equal(t.count, 500);
    ldg_keytable_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_overwrite_del),
        cmocka_unit_test(test_lru_bound),
        cmocka_unit_test(test_many_entries_and_collisions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
