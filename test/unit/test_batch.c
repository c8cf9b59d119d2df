#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "unit.h"

#include <inttypes.h>
#include <string.h>

#include "ingest/logcodec.h"
#include "roles/storage/batch.h"
#include "roles/storage/stored.h"
#include "ingest/qzip.h"

#define TS_2025 INT64_C(1736937045123000) /* 2025-01-15T10:30:45.123Z */
#define FP_A "8e9fcb6190cbde0d71f285c946789ff0f4d6c2cb10aaa9550671a871481fcf0c"
#define FP_B "654690a9bfc8124a0562ad5460c653105351dc710561ad367c9b693d40558533"

static struct ldg_log mk(int64_t pid, int64_t ts, const char *msg, const char *fp)
{
    struct ldg_log l;
    memset(&l, 0, sizeof l);
    l.project_id = pid;
    l.ts_us = ts;
    l.ingested_us = ts + 1000;
    l.level = fp ? "error" : "info";
    l.log_type = fp ? "exception" : "logger";
    l.importance = "standard";
    l.message = S(msg);
    if (fp) {
        l.error_type = S("ValueError");
        l.error_message = S(msg);
        l.stack_trace = S("trace \"x\"\n");
        memcpy(l.fingerprint, fp, strlen(fp) + 1);
    }
    return l;
}

/* Encode l and add it to b under id, with p = its project. */
static void add(struct ldg_batch *b, const char *id, const struct ldg_log *l, bool maybe)
{
    struct ldg_buf mp;
    ldg_buf_init(&mp);
    assert_int_equal(ldg_logcodec_encode(l, &mp), 0);
    char pid[24];
    snprintf(pid, sizeof pid, "%" PRId64, l->project_id);
    assert_int_equal(ldg_batch_add(b, id, strlen(id), pid, strlen(pid), NULL, 0, ldg_buf_head(&mp),
                                   ldg_buf_size(&mp), maybe),
                     1);
    ldg_buf_free(&mp);
}

static void test_add_and_copy(void **state)
{
    (void)state;
    struct ldg_batch b;
    ldg_batch_init(&b);
    struct ldg_log l = mk(7, TS_2025, "tab\there", NULL);
    add(&b, "1700000000000-0", &l, false);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.e[0].state, LDG_BATCH_PENDING);
    assert_int_equal(b.e[0].month, 2025 * 12 + 0);
    struct ldg_buf out;
    ldg_buf_init(&out);
    assert_int_equal(ldg_batch_copy(&b, 0, 1, &out), 1);
    const char *row = text(&out);
    assert_non_null(strstr(row, "\ttab\\there\t"));
    size_t n = strlen(row);
    const char *tail = "\t1700000000000-0\n";
    assert_string_equal(row + n - strlen(tail), tail);
    /* stored entries are not copied again */
    ldg_batch_set(&b, 0, 1, LDG_BATCH_STORED, NULL);
    ldg_buf_reset(&out);
    assert_int_equal(ldg_batch_copy(&b, 0, 1, &out), 0);
    ldg_buf_free(&out);
    ldg_batch_free(&b);
}

static void test_bad_entries(void **state)
{
    (void)state;
    struct ldg_batch b;
    ldg_batch_init(&b);
    const char *bad_ids[] = {"",      "1",   "1-",   "-1",
                             "1-2-3", "a-1", "1-2 ", "123456789012345678901234567890-12345678901234"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++)
        assert_int_equal(ldg_batch_add(&b, bad_ids[i], strlen(bad_ids[i]), "7", 1, NULL, 0, "x", 1, false),
                         -EINVAL);
    assert_int_equal(b.n, 0);
    /* garbage payload, no payload, project mismatch: DEAD with a reason */
    assert_int_equal(ldg_batch_add(&b, "1-1", 3, "7", 1, NULL, 0, "\xc1", 1, false), 1);
    assert_int_equal(ldg_batch_add(&b, "1-2", 3, NULL, 0, NULL, 0, NULL, 0, false), 1);
    struct ldg_log l = mk(8, TS_2025, "m", NULL);
    struct ldg_buf mp;
    ldg_buf_init(&mp);
    assert_int_equal(ldg_logcodec_encode(&l, &mp), 0);
    assert_int_equal(
        ldg_batch_add(&b, "1-3", 3, "7", 1, NULL, 0, ldg_buf_head(&mp), ldg_buf_size(&mp), false), 1);
    ldg_buf_free(&mp);
    assert_int_equal(b.n, 3);
    assert_int_equal(ldg_batch_count(&b, 0, 3, LDG_BATCH_DEAD), 3);
    assert_string_equal(b.e[0].reason, "undecodable queue entry");
    assert_int_equal(b.e[0].depth_pid, 7);
    assert_string_equal(b.e[1].reason, "queue entry without payload");
    assert_int_equal(b.e[1].depth_pid, 0);
    assert_non_null(strstr(b.e[2].reason, "project"));
    ldg_batch_free(&b);
}

/* An entry carrying several logs (n field): one row each, queue ids "<id>/<k>", the entry's depth
 * count on its first row, each row's own bytes kept; a broken structure ends the entry in one dead
 * row holding the rest. */
static void test_multi_log_entry(void **state)
{
    (void)state;
    struct ldg_batch b;
    ldg_batch_init(&b);
    struct ldg_buf mp;
    ldg_buf_init(&mp);
    size_t off[4] = {0};
    for (int k = 0; k < 3; k++) {
        char msg[8];
        snprintf(msg, sizeof msg, "m%d", k);
        struct ldg_log l = mk(7, TS_2025 + k, msg, k == 1 ? FP_A : NULL);
        assert_int_equal(ldg_logcodec_encode(&l, &mp), 0);
        off[k + 1] = ldg_buf_size(&mp);
    }
    const char *m = ldg_buf_head(&mp);
    assert_int_equal(ldg_batch_add(&b, "9-1", 3, "7", 1, "3", 1, m, off[3], true), 3);
    assert_int_equal(b.entries, 1);
    assert_string_equal(b.e[0].id, "9-1/0");
    assert_string_equal(b.e[2].id, "9-1/2");
    assert_true(b.e[0].first && !b.e[1].first && !b.e[2].first);
    assert_int_equal(b.e[0].sid_len, 3);
    assert_int_equal(b.e[0].depth_n, 3);
    assert_int_equal(b.e[0].depth_bytes, off[3]); /* what queue_bytes counted for the entry */
    assert_int_equal(ldg_batch_count(&b, 0, 3, LDG_BATCH_PENDING), 3);
    assert_true(b.e[2].maybe_stored);
    /* recheck: PENDING rows of the range become maybe_stored again (after a queue-id conflict) */
    b.e[0].maybe_stored = b.e[1].maybe_stored = false;
    ldg_batch_set(&b, 1, 2, LDG_BATCH_DUPLICATE, NULL);
    ldg_batch_recheck(&b, 0, 3);
    assert_true(b.e[0].maybe_stored && !b.e[1].maybe_stored);
    b.e[1].state = LDG_BATCH_PENDING; /* as before */
    b.e[1].maybe_stored = true;
    assert_non_null(b.e[1].fingerprint);
    assert_int_equal(b.e[1].raw_len, off[2] - off[1]);
    assert_memory_equal(ldg_buf_head(&b.raw) + b.e[1].raw_off, m + off[1], off[2] - off[1]);
    struct ldg_buf out;
    ldg_buf_init(&out);
    assert_int_equal(ldg_batch_copy(&b, 0, 3, &out), 3);
    assert_non_null(strstr(text(&out), "\t9-1/1\n"));
    ldg_buf_free(&out);

    /* A second entry: two logs then garbage; its n field (5) is what it counts in the depth. */
    ldg_buf_put(&mp, "\xc1\xc1", 2);
    m = ldg_buf_head(&mp);
    assert_int_equal(ldg_batch_add(&b, "9-2", 3, "7", 1, "5", 1, m + off[1], off[3] + 2 - off[1], false), 3);
    assert_int_equal(b.entries, 2);
    assert_int_equal(ldg_batch_entry_end(&b, 0), 3);
    assert_int_equal(ldg_batch_entry_end(&b, 3), 6);
    assert_int_equal(b.e[3].depth_n, 5);
    assert_string_equal(b.e[3].id, "9-2/0");
    assert_int_equal(b.e[5].state, LDG_BATCH_DEAD);
    assert_string_equal(b.e[5].reason, "undecodable queue entry");
    assert_int_equal(b.e[5].raw_len, 2);
    /* an n that is not a number: the rows are counted */
    assert_int_equal(ldg_batch_add(&b, "9-3", 3, "7", 1, "x", 1, m, off[2], false), 2);
    assert_int_equal(b.e[6].depth_n, 2);
    /* losing an entry marks all its rows, whatever their state */
    assert_int_equal(ldg_batch_lose(&b, "9-2", 3), 3);
    assert_int_equal(ldg_batch_count(&b, 0, b.n, LDG_BATCH_LOST), 3);
    assert_int_equal(b.e[2].state, LDG_BATCH_PENDING);
    /* duplicates are found by queue id */
    assert_true(ldg_batch_mark_duplicate(&b, 0, b.n, "9-1/2", 5));
    assert_int_equal(b.e[2].state, LDG_BATCH_DUPLICATE);
    /* an n field with no payload: one dead row */
    assert_int_equal(ldg_batch_add(&b, "9-4", 3, "7", 1, "2", 1, NULL, 0, false), 1);
    assert_string_equal(b.e[b.n - 1].reason, "queue entry without payload");
    ldg_batch_reset(&b);
    assert_int_equal(b.entries, 0);
    ldg_buf_free(&mp);
    ldg_batch_free(&b);
}

static void test_months(void **state)
{
    (void)state;
    struct ldg_batch b;
    ldg_batch_init(&b);
    /* 2024-12-31T23:59:59.999999Z, 2025-01-15, 1969-12-31T23:00:00Z, 2025-01-15 again */
    int64_t ts[] = {INT64_C(1735689599999999), TS_2025, INT64_C(-3600000000), TS_2025 + 1};
    for (size_t i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "5-%zu", i);
        struct ldg_log l = mk(1, ts[i], "m", NULL);
        add(&b, id, &l, false);
    }
    int32_t m[4];
    assert_int_equal(ldg_batch_months(&b, 0, 4, m, 4), 3);
    assert_int_equal(m[0], 1969 * 12 + 11);
    assert_int_equal(m[1], 2024 * 12 + 11);
    assert_int_equal(m[2], 2025 * 12 + 0);
    char t[40];
    ldg_batch_month_text(m[0], t, sizeof t);
    assert_string_equal(t, "1969-12-15 00:00:00+00");
    ldg_batch_month_text(m[1], t, sizeof t);
    assert_string_equal(t, "2024-12-15 00:00:00+00");
    assert_true(ldg_batch_months(&b, 0, 4, m, 1) > 1); /* more than fit */
    ldg_batch_kill_month(&b, 0, 4, 2025 * 12, "22008: out of range");
    assert_int_equal(ldg_batch_count(&b, 0, 4, LDG_BATCH_DEAD), 2);
    assert_string_equal(b.e[1].reason, "22008: out of range");
    assert_int_equal(ldg_batch_months(&b, 0, 4, m, 4), 2);
    ldg_batch_free(&b);
}

static void test_duplicates(void **state)
{
    (void)state;
    struct ldg_batch b;
    ldg_batch_init(&b);
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "9-%d", i);
        struct ldg_log l = mk(3 + i, TS_2025 + i, "m", NULL);
        add(&b, id, &l, i != 1);
    }
    assert_int_equal(ldg_batch_count_unchecked(&b, 0, 4), 3);
    struct ldg_buf p, t, q;
    ldg_buf_init(&p);
    ldg_buf_init(&t);
    ldg_buf_init(&q);
    assert_int_equal(ldg_batch_dup_params(&b, 0, 4, &p, &t, &q), 3);
    assert_string_equal(ldg_buf_head(&p), "{3,5,6}");
    assert_string_equal(ldg_buf_head(&t), "{1736937045123000,1736937045123002,1736937045123003}");
    assert_string_equal(ldg_buf_head(&q), "{9-0,9-2,9-3}");
    assert_true(ldg_batch_mark_duplicate(&b, 0, 4, "9-2", 3));
    assert_false(ldg_batch_mark_duplicate(&b, 0, 4, "9-2", 3)); /* no longer PENDING */
    assert_false(ldg_batch_mark_duplicate(&b, 0, 4, "9-", 2));
    assert_int_equal(b.e[2].state, LDG_BATCH_DUPLICATE);
    ldg_buf_free(&p);
    ldg_buf_free(&t);
    ldg_buf_free(&q);
    ldg_batch_free(&b);
}

static void test_groups(void **state)
{
    (void)state;
    struct ldg_batch b;
    ldg_batch_init(&b);
    struct ldg_log l1 = mk(2, TS_2025 + 5, "late", FP_A);
    struct ldg_log l2 = mk(2, TS_2025 + 1, "early", FP_A);
    struct ldg_log l3 = mk(1, TS_2025, "other project", FP_A);
    struct ldg_log l4 = mk(2, TS_2025, "no fp", NULL);
    struct ldg_log l5 = mk(2, TS_2025 + 9, "b", FP_B);
    add(&b, "1-0", &l1, false);
    add(&b, "1-1", &l2, false);
    add(&b, "1-2", &l3, false);
    add(&b, "1-3", &l4, false);
    add(&b, "1-4", &l5, false);
    struct ldg_buf out;
    ldg_buf_init(&out);
    assert_int_equal(ldg_batch_groups_json(&b, 0, 5, &out), 3);
    const char *want =
        "[{\"p\":1,\"f\":\"" FP_A "\",\"t\":\"ValueError\",\"m\":\"other project\",\"s\":\"trace "
        "\\\"x\\\"\\n\",\"first\":1736937045123000,\"last\":1736937045123000,\"n\":1},"
        "{\"p\":2,\"f\":\"" FP_B "\",\"t\":\"ValueError\",\"m\":\"b\",\"s\":\"trace \\\"x\\\"\\n\","
        "\"first\":1736937045123009,\"last\":1736937045123009,\"n\":1},"
        "{\"p\":2,\"f\":\"" FP_A "\",\"t\":\"ValueError\",\"m\":\"early\",\"s\":\"trace \\\"x\\\"\\n\","
        "\"first\":1736937045123001,\"last\":1736937045123005,\"n\":2}]";
    assert_string_equal(text(&out), want);
    /* the same groups' keys for the regression statement */
    struct ldg_buf keys;
    ldg_buf_init(&keys);
    ldg_buf_reset(&out);
    assert_int_equal(ldg_batch_groups_json_keys(&b, 0, 5, &out, &keys), 3);
    assert_string_equal(text(&out), want);
    assert_string_equal(text(&keys), "[{\"p\":1,\"f\":\"" FP_A "\",\"first\":1736937045123000},"
                                     "{\"p\":2,\"f\":\"" FP_B "\",\"first\":1736937045123009},"
                                     "{\"p\":2,\"f\":\"" FP_A "\",\"first\":1736937045123001}]");
    ldg_buf_free(&keys);
    /* only PENDING entries of the range count */
    ldg_buf_reset(&out);
    ldg_batch_set(&b, 0, 1, LDG_BATCH_DUPLICATE, NULL);
    assert_int_equal(ldg_batch_groups_json(&b, 0, 2, &out), 1);
    assert_non_null(strstr(text(&out), "\"n\":1"));
    ldg_buf_reset(&out);
    assert_int_equal(ldg_batch_groups_json(&b, 3, 4, &out), 0);
    assert_string_equal(text(&out), "[]");
    ldg_buf_free(&out);
    /* reset keeps nothing */
    ldg_batch_reset(&b);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.payload_bytes, 0);
    ldg_batch_free(&b);
}

/* SQLSTATE classification: what goes to the dead letters, what is looked up, what is retried. */
static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(ldg_batch_classify("23505", "logs_2026_12_01_00_queue_id_timestamp_idx"),
                     LDG_BATCH_FAIL_DUPLICATE);
    assert_int_equal(ldg_batch_classify("23505", "logs_queue_id_key"), LDG_BATCH_FAIL_DUPLICATE);
    assert_int_equal(ldg_batch_classify("23505", "some_other_key"), LDG_BATCH_FAIL_DATA);
    assert_int_equal(ldg_batch_classify("23514", ""), LDG_BATCH_FAIL_NO_PARTITION);
    assert_int_equal(ldg_batch_classify("23514", NULL), LDG_BATCH_FAIL_NO_PARTITION);
    assert_int_equal(ldg_batch_classify("23514", "check_log_level"), LDG_BATCH_FAIL_DATA);
    assert_int_equal(ldg_batch_classify("22021", ""), LDG_BATCH_FAIL_DATA);
    assert_int_equal(ldg_batch_classify("22P02", ""), LDG_BATCH_FAIL_DATA);
    assert_int_equal(ldg_batch_classify("23502", "x"), LDG_BATCH_FAIL_DATA);
    static const char *const transient[] = {"08006", "40P01", "40001", "53100", "55P03", "57P01", "57014",
                                            "58030"};
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        assert_int_equal(ldg_batch_classify(transient[i], ""), LDG_BATCH_FAIL_TRANSIENT);
    assert_int_equal(ldg_batch_classify("", ""), LDG_BATCH_FAIL_TRANSIENT);
    assert_int_equal(ldg_batch_classify(NULL, NULL), LDG_BATCH_FAIL_TRANSIENT);
    assert_int_equal(ldg_batch_classify("42703", ""), LDG_BATCH_FAIL_PERSISTENT);
    assert_int_equal(ldg_batch_classify("54000", ""), LDG_BATCH_FAIL_PERSISTENT);
    assert_int_equal(ldg_batch_classify("XX000", ""), LDG_BATCH_FAIL_PERSISTENT);
    /* schema 0009's exclusion constraint */
    assert_int_equal(ldg_batch_classify("23P01", "stored_entries_queue_id_excl"), LDG_BATCH_FAIL_DUPLICATE);
    assert_int_equal(ldg_batch_classify("23P01", "other_excl"), LDG_BATCH_FAIL_DATA);
}

/* Format 3: a request's logs as one compressed block (ingest/qzip.h), followed by a plain log (the
 * script concatenates requests): every log a row, with its own MessagePack bytes; a corrupt block
 * is one dead row holding the rest. Small runs are not compressed. */
static void test_compressed_entry(void **state)
{
    (void)state;
    struct ldg_buf mp, scratch, plain;
    ldg_buf_init(&mp);
    ldg_buf_init(&scratch);
    ldg_buf_init(&plain);
    size_t off[202] = {0};
    for (int k = 0; k < 200; k++) {
        char msg[32];
        snprintf(msg, sizeof msg, "request %d done", k);
        struct ldg_log l = mk(7, TS_2025 + k, msg, k % 50 == 0 ? FP_A : NULL);
        assert_int_equal(ldg_logcodec_encode(&l, &mp), 0);
        off[k + 1] = ldg_buf_size(&mp);
    }
    ldg_buf_put(&plain, ldg_buf_head(&mp), ldg_buf_size(&mp));
    assert_true(ldg_qzip_pack(&mp, &scratch));
    assert_true(ldg_buf_size(&mp) < ldg_buf_size(&plain) / 2);
    assert_int_equal((unsigned char)ldg_buf_head(&mp)[0], LDG_QZIP_MARK);
    size_t block = ldg_buf_size(&mp);
    struct ldg_log last = mk(7, TS_2025, "after the block", NULL);
    assert_int_equal(ldg_logcodec_encode(&last, &mp), 0);

    struct ldg_batch b;
    ldg_batch_init(&b);
    assert_int_equal(
        ldg_batch_add(&b, "9-1", 3, "7", 1, "201", 3, ldg_buf_head(&mp), ldg_buf_size(&mp), false), 201);
    assert_int_equal(ldg_batch_count(&b, 0, b.n, LDG_BATCH_PENDING), 201);
    assert_string_equal(b.e[200].id, "9-1/200");
    assert_int_equal(b.e[0].depth_bytes, ldg_buf_size(&mp)); /* what queue_bytes counted */
    assert_int_equal(b.e[0].depth_n, 201);
    assert_int_equal(b.e[7].raw_len, off[8] - off[7]);
    assert_memory_equal(ldg_buf_head(&b.raw) + b.e[7].raw_off, ldg_buf_head(&plain) + off[7],
                        off[8] - off[7]);
    assert_non_null(b.e[50].fingerprint);
    struct ldg_buf out;
    ldg_buf_init(&out);
    assert_int_equal(ldg_batch_copy(&b, 0, b.n, &out), 201);
    assert_non_null(strstr(text(&out), "\trequest 199 done\t"));
    ldg_buf_free(&out);

    /* a block that does not unpack (an unknown method; a compressed size past the end): the block
     * and what follows are one dead row */
    (void)block;
    char *h = (char *)ldg_buf_head(&mp);
    h[1] = 9;
    ldg_batch_reset(&b);
    assert_int_equal(
        ldg_batch_add(&b, "9-2", 3, "7", 1, "201", 3, ldg_buf_head(&mp), ldg_buf_size(&mp), false), 1);
    assert_int_equal(b.e[0].state, LDG_BATCH_DEAD);
    h[1] = LDG_QZIP_DEFAULT;
    h[6] = 0x7f;
    ldg_batch_reset(&b);
    assert_int_equal(
        ldg_batch_add(&b, "9-4", 3, "7", 1, "201", 3, ldg_buf_head(&mp), ldg_buf_size(&mp), false), 1);
    assert_int_equal(b.e[0].state, LDG_BATCH_DEAD);
    /* a truncated block too */
    ldg_batch_reset(&b);
    assert_int_equal(ldg_batch_add(&b, "9-3", 3, "7", 1, "201", 3, ldg_buf_head(&mp), 20, false), 1);
    assert_int_equal(b.e[0].state, LDG_BATCH_DEAD);
    ldg_batch_free(&b);

    /* both methods are read; the LZ codec round-trips runs, long literals and long matches */
    for (int method = LDG_QZIP_DEFLATE; method <= LDG_QZIP_LZ; method++) {
        struct ldg_buf x, back;
        ldg_buf_init(&x);
        ldg_buf_init(&back);
        for (int k = 0; k < 3000; k++)
            ldg_buf_printf(&x, "%s%d", k % 3 ? "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" : "line ",
                           (k * 7919) % 1000);
        for (int k = 0; k < 600; k++) /* incompressible bytes: long literal runs */
            ldg_buf_put(&x, (char[]){(char)((k * 2654435761u) >> 13)}, 1);
        struct ldg_buf copy;
        ldg_buf_init(&copy);
        ldg_buf_put(&copy, ldg_buf_head(&x), ldg_buf_size(&x));
        assert_true(ldg_qzip_pack_with(&x, &scratch, (enum ldg_qzip_method)method));
        assert_int_equal((unsigned char)ldg_buf_head(&x)[1], method);
        size_t used;
        assert_int_equal(ldg_qzip_unpack(ldg_buf_head(&x), ldg_buf_size(&x), &back, &used), 0);
        assert_int_equal(used, ldg_buf_size(&x));
        assert_int_equal(ldg_buf_size(&back), ldg_buf_size(&copy));
        assert_memory_equal(ldg_buf_head(&back), ldg_buf_head(&copy), ldg_buf_size(&copy));
        /* every truncation and a flipped byte anywhere: an error or the wrong size, never an overrun */
        for (size_t cut = 1; cut < ldg_buf_size(&x); cut += 97) {
            ldg_buf_reset(&back);
            assert_int_equal(ldg_qzip_unpack(ldg_buf_head(&x), cut, &back, &used), -EINVAL);
        }
        for (size_t at = LDG_QZIP_HEAD; at < ldg_buf_size(&x); at += 53) {
            ((char *)ldg_buf_head(&x))[at] ^= 0x5a;
            ldg_buf_reset(&back);
            if (ldg_qzip_unpack(ldg_buf_head(&x), ldg_buf_size(&x), &back, &used) == 0)
                assert_int_equal(ldg_buf_size(&back), ldg_buf_size(&copy));
            ((char *)ldg_buf_head(&x))[at] ^= 0x5a;
        }
        ldg_buf_free(&x);
        ldg_buf_free(&back);
        ldg_buf_free(&copy);
    }

    /* one small log is never packed */
    ldg_buf_reset(&mp);
    assert_int_equal(ldg_logcodec_encode(&last, &mp), 0);
    size_t n1 = ldg_buf_size(&mp);
    assert_false(ldg_qzip_pack(&mp, &scratch));
    assert_int_equal(ldg_buf_size(&mp), n1);
    size_t used;
    assert_int_equal(ldg_qzip_unpack(ldg_buf_head(&mp), n1, &scratch, &used), -EINVAL);
    ldg_buf_free(&mp);
    ldg_buf_free(&scratch);
    ldg_buf_free(&plain);
}

/* stored_entries runs: one per stream entry and contiguous PENDING rows; rows not PENDING split a
 * run; an entry without `n` is the run [0,1). */
static void test_stored_runs(void **state)
{
    (void)state;
    struct ldg_batch b;
    ldg_batch_init(&b);
    struct ldg_buf mp;
    ldg_buf_init(&mp);
    for (int k = 0; k < 5; k++) {
        struct ldg_log l = mk(7, TS_2025 + k, "m", NULL);
        assert_int_equal(ldg_logcodec_encode(&l, &mp), 0);
    }
    assert_int_equal(
        ldg_batch_add(&b, "1700000000000-3", 15, "7", 1, "5", 1, ldg_buf_head(&mp), ldg_buf_size(&mp), false),
        5);
    ldg_buf_free(&mp);
    struct ldg_log one = mk(9, TS_2025, "one", NULL);
    add(&b, "1700000000001-0", &one, false);
    assert_int_equal(b.n, 6);
    assert_int_equal(ldg_stored_index(&b.e[3]), 3);
    assert_int_equal(ldg_stored_index(&b.e[5]), 0);

    struct ldg_buf p, s, r;
    ldg_buf_init(&p);
    ldg_buf_init(&s);
    ldg_buf_init(&r);
    assert_int_equal(ldg_stored_params(&b, 0, b.n, &p, &s, &r), 2);
    assert_string_equal(ldg_buf_head(&p), "{7,9}");
    assert_string_equal(ldg_buf_head(&s), "{1700000000000-3,1700000000001-0}");
    assert_string_equal(ldg_buf_head(&r), "{\"[0,5)\",\"[0,1)\"}");

    /* row 2 stored meanwhile (a duplicate): the entry is two runs */
    b.e[2].state = LDG_BATCH_DUPLICATE;
    ldg_buf_reset(&p);
    ldg_buf_reset(&s);
    ldg_buf_reset(&r);
    assert_int_equal(ldg_stored_params(&b, 1, 5, &p, &s, &r), 2);
    assert_string_equal(ldg_buf_head(&s), "{1700000000000-3,1700000000000-3}");
    assert_string_equal(ldg_buf_head(&r), "{\"[1,2)\",\"[3,5)\"}");

    /* nothing PENDING: empty arrays */
    ldg_batch_set(&b, 0, b.n, LDG_BATCH_STORED, NULL);
    ldg_buf_reset(&p);
    ldg_buf_reset(&s);
    ldg_buf_reset(&r);
    assert_int_equal(ldg_stored_params(&b, 0, b.n, &p, &s, &r), 0);
    assert_string_equal(ldg_buf_head(&r), "{}");
    ldg_buf_free(&p);
    ldg_buf_free(&s);
    ldg_buf_free(&r);
    ldg_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_copy),     cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_multi_log_entry),  cmocka_unit_test(test_months),
        cmocka_unit_test(test_duplicates),       cmocka_unit_test(test_groups),
        cmocka_unit_test(test_classify),         cmocka_unit_test(test_stored_runs),
        cmocka_unit_test(test_compressed_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
