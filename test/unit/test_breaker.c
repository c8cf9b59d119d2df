#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/breaker.h"

#define OPEN_MS 1000

/* Admit `n` requests at `now`; return how many went through (PASS or PROBE). */
static int admitted(struct ldg_breaker *b, uint64_t now, int n, int *probes)
{
    int through = 0;
    for (int i = 0; i < n; i++) {
        enum ldg_breaker_admit a = ldg_breaker_admit(b, now);
        if (a != LDG_BREAKER_REJECT)
            through++;
        if (a == LDG_BREAKER_PROBE && probes)
            (*probes)++;
    }
    return through;
}

static void open_it(struct ldg_breaker *b, uint64_t now)
{
    ldg_breaker_init(b, 3, OPEN_MS);
    assert_int_equal(ldg_breaker_done(b, false, false, now), LDG_BREAKER_SAME);
    assert_int_equal(ldg_breaker_done(b, false, false, now), LDG_BREAKER_SAME);
    assert_false(ldg_breaker_is_open(b));
    assert_int_equal(ldg_breaker_done(b, false, false, now), LDG_BREAKER_OPENED);
    assert_true(ldg_breaker_is_open(b));
}

static void test_closed_passes_and_opens_at_threshold(void **state)
{
    (void)state;
    struct ldg_breaker b;
    ldg_breaker_init(&b, 3, OPEN_MS);
    assert_int_equal(admitted(&b, 10, 100, NULL), 100);
    /* A success in between resets the count: failures must be consecutive. */
    ldg_breaker_done(&b, false, false, 10);
    ldg_breaker_done(&b, false, false, 10);
    ldg_breaker_done(&b, false, true, 10);
    ldg_breaker_done(&b, false, false, 10);
    ldg_breaker_done(&b, false, false, 10);
    assert_false(ldg_breaker_is_open(&b));
    assert_int_equal(ldg_breaker_done(&b, false, false, 10), LDG_BREAKER_OPENED);
    assert_int_equal(admitted(&b, 10, 50, NULL), 0);
    assert_int_equal(admitted(&b, 10 + OPEN_MS - 1, 50, NULL), 0);
}

/* The point of the half-open state: however many requests arrive once the open period is over,
 * exactly one goes to the database until that one has answered. */
static void test_half_open_lets_exactly_one_probe_through(void **state)
{
    (void)state;
    struct ldg_breaker b;
    open_it(&b, 100);
    int probes = 0;
    assert_int_equal(admitted(&b, 100 + OPEN_MS, 1000, &probes), 1);
    assert_int_equal(probes, 1);
    /* Later requests, still before the probe's answer: none. */
    assert_int_equal(admitted(&b, 100 + 5 * OPEN_MS, 1000, &probes), 0);
    assert_true(ldg_breaker_is_open(&b));
}

/* Answers of lookups sent before the breaker opened do not free the probe slot. */
static void test_late_answers_do_not_release_the_probe(void **state)
{
    (void)state;
    struct ldg_breaker b;
    open_it(&b, 100);
    uint64_t t = 100 + OPEN_MS;
    assert_int_equal(ldg_breaker_admit(&b, t), LDG_BREAKER_PROBE);
    /* An old non-probe lookup fails now: the breaker stays open, the probe is still out. */
    ldg_breaker_done(&b, false, false, t);
    int probes = 0;
    assert_int_equal(admitted(&b, t + 10 * OPEN_MS, 100, &probes), 0);
    assert_int_equal(probes, 0);
}

static void test_probe_failure_reopens_then_one_more_probe(void **state)
{
    (void)state;
    struct ldg_breaker b;
    open_it(&b, 100);
    uint64_t t = 100 + OPEN_MS;
    assert_int_equal(ldg_breaker_admit(&b, t), LDG_BREAKER_PROBE);
    assert_int_equal(ldg_breaker_done(&b, true, false, t + 5), LDG_BREAKER_SAME);
    assert_true(ldg_breaker_is_open(&b));
    /* Open again for a full period from the probe's failure. */
    assert_int_equal(admitted(&b, t + 5 + OPEN_MS - 1, 100, NULL), 0);
    int probes = 0;
    assert_int_equal(admitted(&b, t + 5 + OPEN_MS, 100, &probes), 1);
    assert_int_equal(probes, 1);
}

static void test_probe_success_closes(void **state)
{
    (void)state;
    struct ldg_breaker b;
    open_it(&b, 100);
    uint64_t t = 100 + OPEN_MS;
    assert_int_equal(ldg_breaker_admit(&b, t), LDG_BREAKER_PROBE);
    assert_int_equal(ldg_breaker_done(&b, true, true, t + 5), LDG_BREAKER_CLOSED);
    assert_false(ldg_breaker_is_open(&b));
    int probes = 0;
    assert_int_equal(admitted(&b, t + 6, 100, &probes), 100);
    assert_int_equal(probes, 0);
    /* Closed again: it takes the full threshold of new failures to reopen. */
    ldg_breaker_done(&b, false, false, t + 7);
    ldg_breaker_done(&b, false, false, t + 7);
    assert_false(ldg_breaker_is_open(&b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_passes_and_opens_at_threshold),
        cmocka_unit_test(test_half_open_lets_exactly_one_probe_through),
        cmocka_unit_test(test_late_answers_do_not_release_the_probe),
        cmocka_unit_test(test_probe_failure_reopens_then_one_more_probe),
        cmocka_unit_test(test_probe_success_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
