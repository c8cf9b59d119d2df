#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <crypt.h>

#include "auth/password.h"

static void test_hash_verify_round_trip(void **state)
{
    char h[LDG_PASSWORD_HASH_MAX], h2[LDG_PASSWORD_HASH_MAX];
    assert_int_equal(ldg_password_hash_sync("correct horse", h, sizeof h), 0);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "$argon2id$v=19$m=%u,t=%u,p=%u$", LDG_PASSWORD_ARGON2_M_KIB,
             LDG_PASSWORD_ARGON2_T, LDG_PASSWORD_ARGON2_P);
    assert_memory_equal(h, prefix, strlen(prefix));
    assert_true(LDG_PASSWORD_ARGON2_M_KIB >= 19456 && LDG_PASSWORD_ARGON2_T >= 2);
    assert_int_equal(ldg_password_verify_sync("correct horse", h), 1);
    assert_int_equal(ldg_password_verify_sync("correct horsE", h), 0);
    assert_int_equal(ldg_password_verify_sync("", h), 0);
    /* Fresh salt each time. */
    assert_int_equal(ldg_password_hash_sync("correct horse", h2, sizeof h2), 0);
    assert_string_not_equal(h, h2);
    /* Empty and UTF-8 passwords hash too. */
    assert_int_equal(ldg_password_hash_sync("", h, sizeof h), 0);
    assert_int_equal(ldg_password_verify_sync("", h), 1);
    assert_int_equal(ldg_password_hash_sync("pässwörd😀", h, sizeof h), 0);
    assert_int_equal(ldg_password_verify_sync("pässwörd😀", h), 1);
    assert_int_equal(ldg_password_verify_sync("passwörd😀", h), 0);
    /* Output buffer too small. */
    assert_int_equal(ldg_password_hash_sync("x", h, 64), -ENOSPC);
}

static void test_bcrypt_generated(void **state)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, setting, sizeof setting));
    struct crypt_data *cd = calloc(1, sizeof *cd);
    const char *hash = crypt_rn("password", setting, cd, sizeof *cd);
    assert_non_null(hash);
    assert_int_equal(strlen(hash), 60);
    assert_memory_equal(hash, "$2b$04$", 7);
    assert_int_equal(ldg_password_verify_sync("password", hash), 1);
    assert_int_equal(ldg_password_verify_sync("Password", hash), 0);
    assert_int_equal(ldg_password_verify_sync("password ", hash), 0);
    free(cd);
}

static void test_bcrypt_known_vectors(void **state)
{
    /* Published crypt_blowfish test vectors (openwall). $2b$ and $2y$ give the same result as $2a$
     * for these ASCII passwords. */
    static const struct {
        const char *hash, *pw;
    } v[] = {
        {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
        {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*"},
        {"$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", "U*U*U"},
        {"$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
         "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are "
         "ignored"},
        {"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
        {"$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(ldg_password_verify_sync(v[i].pw, v[i].hash), 1);
        assert_int_equal(ldg_password_verify_sync("U*U*U*", v[i].hash), 0);
    }
}

static void test_malformed(void **state)
{
    static const char *bad[] = {
        "",
        "plaintext",
        "$2b$10$short",
        "$2b$1x$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", /* cost over the limit */
        "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", /* not accepted */
        "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe!",
        "$argon2id$v=19$m=19456,t=2,p=1$bad",
        "$argon2id$v=19$m=19456,t=2,p=1$+eJ6bWp0GGAdkO1zfeLUdQ",
        "$argon2id$v=19$m=4194304,t=2,p=1$+eJ6bWp0GGAdkO1zfeLUdQ$t6NpY2pbplVe8PMcUQW3ywb2Op7RhR+rkDds49jCxog",
        "$argon2id$v=19$m=19456,t=1000,p=1$+eJ6bWp0GGAdkO1zfeLUdQ$t6NpY2pbplVe8PMcUQW3ywb2Op7RhR+"
        "rkDds49jCxog",
        "$argon2id$v=19$m=19456,t=2,p=64$+eJ6bWp0GGAdkO1zfeLUdQ$t6NpY2pbplVe8PMcUQW3ywb2Op7RhR+rkDds49jCxog",
        "$argon2id$v=19$m=19456,t=0,p=1$+eJ6bWp0GGAdkO1zfeLUdQ$t6NpY2pbplVe8PMcUQW3ywb2Op7RhR+rkDds49jCxog",
        "$argon2i$v=19$m=19456,t=2,p=1$+eJ6bWp0GGAdkO1zfeLUdQ$t6NpY2pbplVe8PMcUQW3ywb2Op7RhR+rkDds49jCxog",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = ldg_password_verify_sync("password", bad[i]);
        if (r >= 0)
            fail_msg("accepted malformed hash %zu: %s (%d)", i, bad[i], r);
    }
    assert_int_equal(ldg_password_verify_sync(NULL, "x"), -EINVAL);
    assert_int_equal(ldg_password_verify_sync("x", NULL), -EINVAL);

    char *long_pw = malloc(LDG_PASSWORD_MAX_BYTES + 2);
    memset(long_pw, 'a', LDG_PASSWORD_MAX_BYTES + 1);
    long_pw[LDG_PASSWORD_MAX_BYTES + 1] = '\0';
    char h[LDG_PASSWORD_HASH_MAX];
    assert_int_equal(ldg_password_hash_sync(long_pw, h, sizeof h), -EINVAL);
    free(long_pw);
}

static void test_dummy_hash(void **state)
{
    const char *d = ldg_password_dummy_hash();
    char prefix[64];
    snprintf(prefix, sizeof prefix, "$argon2id$v=19$m=%u,t=%u,p=%u$", LDG_PASSWORD_ARGON2_M_KIB,
             LDG_PASSWORD_ARGON2_T, LDG_PASSWORD_ARGON2_P);
    /* Same parameters as new hashes, so a dummy verify costs what a real one does. */
    assert_memory_equal(d, prefix, strlen(prefix));
    char h[LDG_PASSWORD_HASH_MAX];
    assert_int_equal(ldg_password_hash_sync("x", h, sizeof h), 0);
    assert_int_equal(strlen(d), strlen(h));
    assert_int_equal(ldg_password_verify_sync("password", d), 0);
}

/* ---- async pool ---- */

struct result {
    int calls;
    int result;
    char hash[LDG_PASSWORD_HASH_MAX];
};

static void on_done(int result, const char *hash, void *ud)
{
    struct result *r = ud;
    r->calls++;
    r->result = result;
    if (hash)
        snprintf(r->hash, sizeof r->hash, "%s", hash);
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static void test_pool_limits(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct ldg_password_pool *p = ldg_password_pool_new(&loop, 2, 3);
    struct result res[6];
    memset(res, 0, sizeof res);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ldg_password_hash(p, "pw", on_done, &res[i]), 0);
    assert_int_equal(ldg_password_hash(p, "pw", on_done, &res[5]), -EAGAIN);
    assert_int_equal(ldg_password_verify(p, "pw", "x", on_done, &res[5]), -EAGAIN);
    struct ldg_password_pool_stats st;
    ldg_password_pool_stats(p, &st);
    assert_int_equal(st.inflight, 2);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.rejected, 2);
    /* No callback runs from inside a submission. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(res[i].calls, 0);

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].result, 0);
        assert_int_equal(ldg_password_verify_sync("pw", res[i].hash), 1);
    }
    assert_int_equal(res[5].calls, 0);
    ldg_password_pool_stats(p, &st);
    assert_int_equal(st.inflight + st.queued, 0);

    /* Verify and dummy verify through the pool. */
    struct result v_ok = {0}, v_bad = {0}, v_dummy = {0}, v_malformed = {0};
    assert_int_equal(ldg_password_verify(p, "pw", res[0].hash, on_done, &v_ok), 0);
    assert_int_equal(ldg_password_verify(p, "nope", res[0].hash, on_done, &v_bad), 0);
    assert_int_equal(ldg_password_dummy_verify(p, "pw", on_done, &v_dummy), 0);
    assert_int_equal(ldg_password_verify(p, "pw", "$2b$99$junk", on_done, &v_malformed), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(v_ok.calls, 1);
    assert_int_equal(v_ok.result, 1);
    assert_string_equal(v_ok.hash, "");
    assert_int_equal(v_bad.result, 0);
    assert_int_equal(v_dummy.calls, 1);
    assert_int_equal(v_dummy.result, 0);
    assert_int_equal(v_malformed.calls, 1);
    assert_true(v_malformed.result < 0);

    /* Nothing in flight: on_closed runs from inside close. */
    int closed = 0;
    ldg_password_pool_close(p, on_closed, &closed);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_pool_close_with_work(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct ldg_password_pool *p = ldg_password_pool_new(&loop, 2, 3);
    struct result res[5];
    memset(res, 0, sizeof res);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ldg_password_hash(p, "pw", on_done, &res[i]), 0);
    int closed = 0;
    ldg_password_pool_close(p, on_closed, &closed);
    /* Queued jobs fail at once; in-flight ones are still pending. */
    for (int i = 2; i < 5; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].result, -ECANCELED);
    }
    assert_int_equal(res[0].calls + res[1].calls, 0);
    assert_int_equal(closed, 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(res[i].calls, 1);
        /* Either it ran (a real hash) or libuv had not started it yet (cancelled). */
        assert_true(res[i].result == 0 || res[i].result == -ECANCELED);
        if (res[i].result == 0)
            assert_int_equal(ldg_password_verify_sync("pw", res[i].hash), 1);
    }
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Callbacks that re-enter the pool: the first submits follow-ups, the second closes the pool. */
struct reenter {
    struct ldg_password_pool *p;
    int stage;
    int closed;
    int cancelled; /* follow-ups that got -ECANCELED */
    int finished;  /* follow-ups that ran */
};

static void on_follow_up(int result, const char *hash, void *ud)
{
    struct reenter *r = ud;
    if (result == -ECANCELED) {
        r->cancelled++;
    } else {
        assert_int_equal(result, 0);
        r->finished++;
    }
}

static void on_stage(int result, const char *hash, void *ud)
{
    struct reenter *r = ud;
    r->stage++;
    if (r->stage == 1) {
        assert_int_equal(result, 0);
        assert_int_equal(ldg_password_verify(r->p, "pw", hash, on_stage, r), 0);
        /* max_inflight 1: both wait. The first starts when the verify completes (before its
         * callback runs); the second is still queued when that callback closes the pool. */
        assert_int_equal(ldg_password_hash(r->p, "pw", on_follow_up, r), 0);
        assert_int_equal(ldg_password_hash(r->p, "pw", on_follow_up, r), 0);
    } else {
        assert_int_equal(result, 1);
        ldg_password_pool_close(r->p, on_closed, &r->closed);
        assert_int_equal(r->cancelled, 1);
        /* Closed from inside a pool callback with work in flight: nothing is freed yet. */
        assert_int_equal(r->closed, 0);
        assert_int_equal(ldg_password_hash(r->p, "pw", on_follow_up, r), -ECANCELED);
    }
}

static void test_pool_reentrant(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct reenter r = {0};
    r.p = ldg_password_pool_new(&loop, 1, 4);
    assert_int_equal(ldg_password_hash(r.p, "pw", on_stage, &r), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.stage, 2);
    assert_int_equal(r.cancelled + r.finished, 2);
    assert_true(r.cancelled >= 1);
    assert_int_equal(r.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Close from the last callback: on_closed follows as soon as that callback returns. */
static void on_last(int result, const char *hash, void *ud)
{
    struct reenter *r = ud;
    ldg_password_pool_close(r->p, on_closed, &r->closed);
    assert_int_equal(r->closed, 0);
    r->stage++;
}

static void test_pool_close_in_last_callback(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct reenter r = {0};
    r.p = ldg_password_pool_new(&loop, 1, 0);
    assert_int_equal(ldg_password_verify(r.p, "pw", ldg_password_dummy_hash(), on_last, &r), 0);
    assert_int_equal(ldg_password_verify(r.p, "pw", ldg_password_dummy_hash(), on_last, &r), -EAGAIN);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(r.stage, 1);
    assert_int_equal(r.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_verify_round_trip),
        cmocka_unit_test(test_bcrypt_generated),
        cmocka_unit_test(test_bcrypt_known_vectors),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_dummy_hash),
        cmocka_unit_test(test_pool_limits),
        cmocka_unit_test(test_pool_close_with_work),
        cmocka_unit_test(test_pool_reentrant),
        cmocka_unit_test(test_pool_close_in_last_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
