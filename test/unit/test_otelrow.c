#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "unit.h"

#include <inttypes.h>
#include <string.h>

#include "ingest/logcodec.h"
#include "ingest/otelrow.h"
#include "roles/storage/batch.h"

#define TS_2025 INT64_C(1736937045123000) /* 2025-01-15T10:30:45.123Z */

static void test_roundtrip(void **state)
{
    (void)state;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_otelrow_encode(LDG_OTELROW_SPAN, 7, TS_2025, "7\tabc\tline", 11, &b);
    ldg_otelrow_encode(LDG_OTELROW_METRIC, INT64_C(1) << 40, -5, "", 0, &b);
    const char *p = ldg_buf_head(&b);
    size_t n = ldg_buf_size(&b), used;
    struct ldg_otelrow r;
    assert_true(ldg_otelrow_is(p, n));
    assert_int_equal(ldg_otelrow_decode(p, n, &r, &used), 0);
    assert_int_equal(used, 25 + 11);
    assert_int_equal(r.table, LDG_OTELROW_SPAN);
    assert_int_equal(r.project_id, 7);
    assert_int_equal(r.ts_us, TS_2025);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.line, "7\tabc\tline", 11);
    assert_int_equal(ldg_otelrow_decode(p + used, n - used, &r, &used), 0);
    assert_int_equal(r.table, LDG_OTELROW_METRIC);
    assert_int_equal(r.project_id, INT64_C(1) << 40);
    assert_int_equal(r.ts_us, -5);
    assert_int_equal(r.len, 0);
    /* cut anywhere: refused */
    for (size_t k = 0; k < 25 + 11; k++)
        assert_int_equal(ldg_otelrow_decode(p, k, &r, &used), -1);
    ldg_buf_free(&b);
    /* a raw newline would start another COPY row */
    ldg_buf_init(&b);
    ldg_otelrow_encode(LDG_OTELROW_SPAN, 7, TS_2025, "a\nb", 3, &b);
    assert_int_equal(ldg_otelrow_decode(ldg_buf_head(&b), ldg_buf_size(&b), &r, &used), -1);
    ldg_buf_free(&b);
    /* a log item is not a row item */
    struct ldg_log l;
    memset(&l, 0, sizeof l);
    l.project_id = 7;
    l.ts_us = TS_2025;
    l.level = "info";
    l.log_type = "logger";
    l.importance = "standard";
    l.message = S("m");
    ldg_buf_init(&b);
    assert_int_equal(ldg_logcodec_encode(&l, &b), 0);
    assert_false(ldg_otelrow_is(ldg_buf_head(&b), ldg_buf_size(&b)));
    ldg_buf_free(&b);
}

/* One queue entry with a log, a span and a metric point: three rows, each copied with its queue id
 * into its own table's lines. */
static void test_batch_rows(void **state)
{
    (void)state;
    struct ldg_log l;
    memset(&l, 0, sizeof l);
    l.project_id = 7;
    l.ts_us = TS_2025;
    l.level = "info";
    l.log_type = "logger";
    l.importance = "standard";
    l.message = S("m");
    struct ldg_buf m;
    ldg_buf_init(&m);
    assert_int_equal(ldg_logcodec_encode(&l, &m), 0);
    ldg_otelrow_encode(LDG_OTELROW_SPAN, 7, TS_2025 + 1, "span-line", 9, &m);
    ldg_otelrow_encode(LDG_OTELROW_METRIC, 7, TS_2025 + 2, "point-line", 10, &m);
    ldg_otelrow_encode(LDG_OTELROW_SPAN, 8, TS_2025, "other-project", 13, &m);
    struct ldg_batch b;
    ldg_batch_init(&b);
    const char *id = "1700000000000-0";
    assert_int_equal(
        ldg_batch_add(&b, id, strlen(id), "7", 1, "4", 1, ldg_buf_head(&m), ldg_buf_size(&m), false), 4);
    assert_int_equal(b.e[0].table, 0);
    assert_int_equal(b.e[1].table, LDG_OTELROW_SPAN);
    assert_int_equal(b.e[1].ts_us, TS_2025 + 1);
    assert_int_equal(b.e[2].table, LDG_OTELROW_METRIC);
    assert_int_equal(b.e[3].state, LDG_BATCH_DEAD); /* its project is not the entry's */
    assert_int_equal(b.e[0].depth_n, 4);
    struct ldg_buf out;
    ldg_buf_init(&out);
    assert_int_equal(ldg_batch_copy_table(&b, 0, b.n, LDG_OTELROW_SPAN, &out), 1);
    ldg_buf_put(&out, "", 1);
    assert_string_equal(ldg_buf_head(&out), "span-line\t1700000000000-0/1\n");
    ldg_buf_reset(&out);
    assert_int_equal(ldg_batch_copy_table(&b, 0, b.n, LDG_OTELROW_METRIC, &out), 1);
    ldg_buf_put(&out, "", 1);
    assert_string_equal(ldg_buf_head(&out), "point-line\t1700000000000-0/2\n");
    ldg_buf_reset(&out);
    assert_int_equal(ldg_batch_copy(&b, 0, b.n, &out), 1); /* the log alone */
    ldg_buf_reset(&out);
    /* the duplicate check covers every row, whatever its table */
    ldg_batch_recheck(&b, 0, b.n);
    struct ldg_buf pids, ts, ids;
    ldg_buf_init(&pids);
    ldg_buf_init(&ts);
    ldg_buf_init(&ids);
    assert_int_equal(ldg_batch_dup_params(&b, 0, b.n, &pids, &ts, &ids), 3);
    assert_true(ldg_batch_mark_duplicate(&b, 0, b.n, "1700000000000-0/1", 17));
    assert_int_equal(ldg_batch_copy_table(&b, 0, b.n, LDG_OTELROW_SPAN, &out), 0);
    ldg_buf_free(&pids);
    ldg_buf_free(&ts);
    ldg_buf_free(&ids);
    ldg_buf_free(&out);
    ldg_buf_free(&m);
    ldg_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_batch_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
