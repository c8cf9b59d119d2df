/*
 * writer.c: the PostgreSQL side of a storage consumer: one transaction per range of the batch.
 *
 * For the range on top of the stack:
 *   1. partitions: `SELECT logs_ensure_partition(...)` for each month not known to exist (outside the
 *      transaction, so the parent's lock is released at once);
 *   2. BEGIN [+ the duplicate check for entries delivered before] (one pipeline);
 *   3. COPY logs (...) FROM STDIN with the range's PENDING lines (one buffer), then the same into
 *      spans and metric_points for the range's OTel rows, if any (ingest/otelrow.h);
 *   4. [lease renewal when the batch is old,] then the stored_entries rows of the logs written (stored.h:
 *      the statement that fails with 23P01 when another transaction committed some of them), the
 *      error_groups upsert and COMMIT (one pipeline).
 *
 * Failures: a data error (SQLSTATE class 22 or 23) rolls back and halves the range; a single entry
 * that still fails is DEAD with the server's reason. "No partition for the row" forgets the month
 * cache and retries (three times, then it counts as a data error). Anything else (connection, timeout,
 * server shutting down) gives the connection back (discarded when inside a transaction) and reports a
 * failure: the consumer retries the whole batch after backoff, every entry then checked for a row.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/dispatch.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pgpool.h"
#include "ingest/otelrow.h"
#include "notify/event.h"
#include "roles/notify/notify.h"
#include "roles/storage/consumer.h"
#include "roles/storage/shardsplit.h"
#include "roles/storage/storage.h"
#include "roles/storage/stored.h"
#include "roles/storage/tailpub.h"

#define MAX_ATTEMPTS 3
/* Queue-id conflicts (another transaction committed rows of the range) handled in one write before
 * the batch backs off like any transient failure. */
#define MAX_CONFLICTS 8

/* Queue ids are unique across the stream, so a row found in any of the three tables is that row. */
static const char dup_sql[] =
    "SELECT l.queue_id FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS c(p, t, q) "
    "JOIN logs l ON l.project_id = c.p "
    "AND l.\"timestamp\" = timestamptz 'epoch' + c.t * interval '1 microsecond' "
    "AND l.queue_id = c.q "
    "UNION ALL SELECT s.queue_id FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS c(p, t, q) "
    "JOIN spans s ON s.queue_id = c.q AND s.start_time = timestamptz 'epoch' + c.t * interval '1 microsecond' "
    "AND s.project_id = c.p "
    "UNION ALL SELECT m.queue_id FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS c(p, t, q) "
    "JOIN metric_points m ON m.queue_id = c.q "
    "AND m.\"time\" = timestamptz 'epoch' + c.t * interval '1 microsecond' AND m.project_id = c.p";

static const char groups_sql[] =
    "INSERT INTO error_groups AS g (project_id, fingerprint, error_type, error_message, first_seen, "
    "last_seen, "
    "occurrence_count, sample_stack_trace) "
    "SELECT x.p, x.f, coalesce(x.t, 'UnknownError'), x.m, "
    "timestamptz 'epoch' + x.first * interval '1 microsecond', "
    "timestamptz 'epoch' + x.last * interval '1 microsecond', x.n, x.s "
    "FROM json_to_recordset($1::json) AS x(p bigint, f text, t text, m text, s text, first bigint, last "
    "bigint, "
    "n bigint) "
    "ON CONFLICT (project_id, fingerprint) DO UPDATE SET "
    "first_seen = least(g.first_seen, EXCLUDED.first_seen), "
    "last_seen = greatest(g.last_seen, EXCLUDED.last_seen), "
    "occurrence_count = g.occurrence_count + EXCLUDED.occurrence_count, updated_at = now()";

/* Regression detection (docs/ingest.md "Error groups and regressions"): before the upsert, in the
 * same pipeline, the batch's groups that are `resolved` are flipped back to `unresolved` and
 * returned. Rows are locked in (project, fingerprint) order like the upsert's; the status test is
 * re-checked on the newest row version when another transaction changed it meanwhile (READ
 * COMMITTED), so a group regresses exactly once however many consumers store its occurrences.
 * With nothing resolved the statement writes nothing and returns no row. */
static const char regress_sql[] =
    "UPDATE error_groups g SET status = 'unresolved', is_regression = true, regressed_at = now(), "
    "updated_at = now() "
    "FROM (SELECT r.id, x.first FROM json_to_recordset($1::json) AS x(p bigint, f text, first bigint) "
    "JOIN error_groups r ON r.project_id = x.p AND r.fingerprint = x.f::bpchar WHERE r.status = 'resolved' "
    "ORDER BY r.project_id, r.fingerprint FOR UPDATE OF r) AS o "
    "WHERE g.id = o.id AND g.status = 'resolved' "
    "RETURNING g.id, g.project_id, g.fingerprint, g.error_type, g.error_message, o.first";

static const struct ldg_storage_cfg *cfg(void)
{
    return ldg__storage.cfg;
}

static void next_range(struct ldg__storage_consumer *c);
static void begin_tx(struct ldg__storage_consumer *c);
static void on_lease_before_write(struct ldg__storage_consumer *c, bool ok);

/* Callbacks of operations given up on (deadline, stop) are ignored. */
static bool stale(const struct ldg__storage_consumer *c)
{
    return c->abandoning || !c->conn;
}

static void release_conn(struct ldg__storage_consumer *c)
{
    if (!c->conn)
        return;
    struct ldg_pg *conn = c->conn;
    c->abandoning = true;
    ldg_pgpool_release(ldg__storage_shard_pool(c), conn);
    c->abandoning = false;
    c->conn = NULL;
    c->in_tx = false;
}

static void finish(struct ldg__storage_consumer *c, bool ok)
{
    release_conn(c);
    ldg__storage_shard_end(c);
    uv_timer_stop(&c->deadline);
    ldg__storage_stored(c, ok);
}

static void transient(struct ldg__storage_consumer *c, const char *what)
{
    const struct ldg_pg_error *f = ldg_pg_failure();
    if (f->code == -EIO)
        ldg__storage_fail(c, "%s: sqlstate=%s %s", what, f->sqlstate, f->message ? f->message : "");
    else if (f->code == 0)
        ldg__storage_fail(c, "%s", what);
    else
        ldg__storage_fail(c, "%s: %s (%s)", what, f->message ? f->message : "failed", strerror(-f->code));
    finish(c, false);
}

/* ---- ranges ------------------------------------------------------------------------------------------ */

static void push_range(struct ldg__storage_consumer *c, size_t lo, size_t hi, unsigned attempts)
{
    LDG_ASSERT(c->nranges < LDG_STORAGE_MAX_RANGES);
    c->ranges[c->nranges++] = (struct ldg__storage_range){lo, hi, attempts};
}

static bool month_known(const struct ldg__storage_consumer *c, int32_t m)
{
    for (size_t i = 0; i < c->nmonths; i++)
        if (c->months[i] == m)
            return true;
    return false;
}

static void month_add(struct ldg__storage_consumer *c, int32_t m)
{
    if (month_known(c, m))
        return;
    if (c->nmonths == LDG_STORAGE_MONTH_CACHE)
        c->nmonths = 0; /* rare: a batch over many old months; start again */
    c->months[c->nmonths++] = m;
}

/* Data error on the current range: isolate the rejected row(s). Called with the connection IDLE
 * (the failed transaction is rolled back first). */
static void split_current(struct ldg__storage_consumer *c, const char *reason)
{
    struct ldg__storage_range r = c->cur;
    size_t pending = ldg_batch_count(&c->batch, r.lo, r.hi, LDG_BATCH_PENDING);
    if (pending <= 1) {
        ldg_batch_set(&c->batch, r.lo, r.hi, LDG_BATCH_DEAD, reason);
        ldg_log_warn(c->ctx, "entry rejected by PostgreSQL, dead-lettered: %s", reason);
    } else {
        /* halve by PENDING entries; the lower half goes first */
        size_t half = pending / 2, mid = r.lo;
        for (size_t k = 0; mid < r.hi && k < half; mid++)
            k += c->batch.e[mid].state == LDG_BATCH_PENDING;
        push_range(c, mid, r.hi, 0);
        push_range(c, r.lo, mid, 0);
    }
    next_range(c);
}

static void on_rolled_back(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (stale(c))
        return;
    c->in_tx = false;
    if (!res) {
        transient(c, "ROLLBACK");
        return;
    }
    if (c->requeue || (c->cur.attempts > 0 && c->cur.attempts <= MAX_ATTEMPTS)) {
        c->requeue = false;
        push_range(c, c->cur.lo, c->cur.hi, c->cur.attempts);
        next_range(c);
        return;
    }
    split_current(c, c->data_reason);
}

/* Keep the failure of the statement callback being run (valid only inside it). */
static void capture(struct ldg__storage_consumer *c)
{
    const struct ldg_pg_error *f = ldg_pg_failure();
    c->fail.code = f->code;
    snprintf(c->fail.sqlstate, sizeof c->fail.sqlstate, "%s", f->sqlstate);
    snprintf(c->fail.constraint, sizeof c->fail.constraint, "%s", f->constraint ? f->constraint : "");
    snprintf(c->fail.message, sizeof c->fail.message, "%s", f->message ? f->message : "");
}

/* A statement of the transaction failed (c->fail captured); called from the operation's last
 * callback, so the connection can take a ROLLBACK if it is still usable. What happens next depends
 * on the SQLSTATE (ldg_batch_classify), never on the message text:
 *   DUPLICATE     another transaction committed rows of this range: roll back, look every row of the
 *                 range up (the constraint makes the lookup's answer final), write the rest
 *   NO_PARTITION  a month we believed in is gone (retention): ensure it again, three times
 *   DATA          roll back and halve until the rejected log is alone: it is dead-lettered
 *   PERSISTENT    the whole batch is retried after backoff, max_failed_attempts times; then DATA
 *   TRANSIENT     the whole batch is retried after backoff, for as long as it takes */
static void tx_failed(struct ldg__storage_consumer *c, const char *what)
{
    enum ldg_batch_failure kind = c->fail.code == -EIO ? ldg_batch_classify(c->fail.sqlstate, c->fail.constraint)
                                                       : LDG_BATCH_FAIL_TRANSIENT;
    bool usable = ldg_pg_state(c->conn) == LDG_PG_IDLE;
    if (kind == LDG_BATCH_FAIL_PERSISTENT && c->failed_attempts + 1 >= (unsigned)cfg()->max_failed_attempts)
        kind = LDG_BATCH_FAIL_DATA; /* bounded: the batch has failed like this often enough */
    if (kind == LDG_BATCH_FAIL_DUPLICATE && c->conflicts >= MAX_CONFLICTS)
        kind = LDG_BATCH_FAIL_TRANSIENT; /* writers racing for the same entries: back off */
    if (kind == LDG_BATCH_FAIL_TRANSIENT || kind == LDG_BATCH_FAIL_PERSISTENT || !usable) {
        if (kind == LDG_BATCH_FAIL_PERSISTENT)
            c->failed_attempts++;
        ldg__storage_fail(c, "%s: %s%s%s", what,
                          c->fail.sqlstate[0] ? c->fail.sqlstate : strerror(-c->fail.code),
                          c->fail.message[0] ? " " : "", c->fail.message);
        finish(c, false);
        return;
    }
    switch (kind) {
    case LDG_BATCH_FAIL_DUPLICATE:
        c->conflicts++;
        c->stats.conflicts++;
        ldg_stat_add(&c->w->stats.store_conflicts, 1);
        ldg_log_info(c->ctx, "rows of the batch were committed by another transaction; looking them up");
        ldg_batch_recheck(&c->batch, c->cur.lo, c->cur.hi);
        c->requeue = true;
        break;
    case LDG_BATCH_FAIL_NO_PARTITION:
        if (c->cur.attempts < MAX_ATTEMPTS) {
            c->nmonths = 0; /* a partition we believed in is gone (retention): ensure again */
            c->cur.attempts++;
            break;
        }
        /* fall through */
    default:
        c->cur.attempts = 0;
        snprintf(c->data_reason, sizeof c->data_reason, "%s: %s", c->fail.sqlstate, c->fail.message);
        break;
    }
    if (ldg_pg_query(c->conn, "ROLLBACK", 0, NULL, on_rolled_back, c) < 0)
        transient(c, "ROLLBACK not sent");
}

/* The common start of a transaction statement's callback: false when it is not to go on (an
 * abandoned attempt, or the statement failed: handled by tx_failed). */
static bool tx_step_ok(struct ldg__storage_consumer *c, const PGresult *res, const char *what)
{
    if (stale(c))
        return false;
    if (!res) {
        capture(c);
        tx_failed(c, what);
        return false;
    }
    return true;
}

/* ---- partitions -------------------------------------------------------------------------------------- */

static void ensure_next(struct ldg__storage_consumer *c);

static void on_ensured(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (stale(c))
        return;
    int32_t m = c->month_todo[c->month_i++];
    if (res) {
        month_add(c, m);
    } else {
        const struct ldg_pg_error *f = ldg_pg_failure();
        if (f->code != -EIO || strncmp(f->sqlstate, "22", 2) != 0) {
            transient(c, "creating a partition");
            return;
        }
        /* a month PostgreSQL cannot represent: its entries are dead */
        char reason[300];
        snprintf(reason, sizeof reason, "%s: %s", f->sqlstate, f->message ? f->message : "");
        ldg_batch_kill_month(&c->batch, c->cur.lo, c->cur.hi, m, reason);
    }
    ensure_next(c);
}

static void ensure_next(struct ldg__storage_consumer *c)
{
    while (c->month_i < c->nmonth_todo && month_known(c, c->month_todo[c->month_i]))
        c->month_i++;
    if (c->month_i == c->nmonth_todo) {
        int32_t all[LDG_STORAGE_MONTH_CACHE];
        size_t total = ldg_batch_months(&c->batch, c->cur.lo, c->cur.hi, all, LDG_STORAGE_MONTH_CACHE);
        size_t unknown = 0;
        for (size_t i = 0; i < LDG_MIN(total, (size_t)LDG_STORAGE_MONTH_CACHE); i++)
            unknown += !month_known(c, all[i]);
        if (total > LDG_STORAGE_MONTH_CACHE && unknown == 0) {
            /* more months than the cache holds: let PostgreSQL tell (no partition -> retry) */
            begin_tx(c);
            return;
        }
        if (unknown == 0) {
            begin_tx(c);
            return;
        }
        c->nmonth_todo = 0;
        for (size_t i = 0; i < LDG_MIN(total, (size_t)LDG_STORAGE_MONTH_CACHE); i++)
            if (!month_known(c, all[i]))
                c->month_todo[c->nmonth_todo++] = all[i];
        c->month_i = 0;
    }
    char ts[40];
    ldg_batch_month_text(c->month_todo[c->month_i], ts, sizeof ts);
    const char *params[] = {ts};
    if (ldg_pg_query_prepared(c->conn, "ldg_storage_part",
                              "SELECT logs_ensure_partition($1::timestamptz), "
                              "otel_ensure_partition('spans', $1::timestamptz), "
                              "otel_ensure_partition('metric_points', $1::timestamptz)",
                              1, params, on_ensured, c) < 0)
        transient(c, "partition statement not sent");
}

/* ---- the transaction ------------------------------------------------------------------------------- */

void ldg__storage_regressed_clear(struct ldg__storage_consumer *c)
{
    if (c->regressed) {
        PQclear(c->regressed);
        c->regressed = NULL;
    }
}

/* One error_regression notification per group the committed transaction flipped. */
static void publish_regressions(struct ldg__storage_consumer *c)
{
    PGresult *r = c->regressed;
    struct ldg_buf b;
    ldg_buf_init(&b);
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t gid = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        int64_t pid = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        char ts[40];
        ldg_event_time(strtoll(PQgetvalue(r, i, 5), NULL, 10), true, ts);
        ldg_buf_reset(&b);
        struct ldg_json_writer jw;
        ldg_json_writer_init(&jw, &b);
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "project_id");
        ldg_json_int(&jw, pid);
        ldg_json_key(&jw, "group_id");
        ldg_json_int(&jw, gid);
        static const char *const text[] = {"error_type", "error_message", "fingerprint"};
        static const int col[] = {3, 4, 2};
        for (int k = 0; k < 3; k++) {
            ldg_json_key(&jw, text[k]);
            if (PQgetisnull(r, i, col[k]))
                ldg_json_null(&jw);
            else
                ldg_json_strn(&jw, PQgetvalue(r, i, col[k]), (size_t)PQgetlength(r, i, col[k]));
        }
        ldg_json_key(&jw, "timestamp");
        ldg_json_str(&jw, ts);
        ldg_json_obj_end(&jw);
        ldg_log_info(c->ctx, "error group regressed project=%" PRId64 " group=%" PRId64, pid, gid);
        ldg_notify_publish_event(c->w, pid, "error_regression", ldg_buf_head(&b), ldg_buf_size(&b));
        ldg_buf_put(&b, "", 1);
        char title[320];
        snprintf(title, sizeof title, "Error regressed: %.255s",
                 PQgetisnull(r, i, 3) ? "unknown error" : PQgetvalue(r, i, 3));
        ldg_dispatch_inbox_owner(c->w, pid, "error_regression", title, ldg_buf_head(&b));
    }
    ldg_buf_free(&b);
}

static void on_committed(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (stale(c))
        return;
    if (!res) {
        if (!c->groups_failed)
            capture(c);
        c->groups_failed = false;
        ldg__storage_regressed_clear(c);
        tx_failed(c, "error_groups upsert or COMMIT");
        return;
    }
    c->in_tx = false;
    if (c->regressed) {
        publish_regressions(c);
        ldg__storage_regressed_clear(c);
    }
    ldg_batch_set(&c->batch, c->cur.lo, c->cur.hi, LDG_BATCH_STORED, NULL);
    ldg__storage_tail_committed(c, c->cur.lo, c->cur.hi);
    next_range(c);
}

static void on_groups(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (stale(c) || res || c->groups_failed)
        return; /* after a failed regression statement this one is only cancelled: keep the cause */
    capture(c); /* COMMIT's callback (-ECANCELED, the pipeline's last) handles it */
    c->groups_failed = true;
}

static void on_regressed(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (stale(c))
        return;
    if (!res) {
        if (!c->groups_failed)
            capture(c); /* COMMIT's callback handles it; after a failed stored_entries insert this
                           one is only cancelled: keep the cause */
        c->groups_failed = true;
        return;
    }
    ldg__storage_regressed_clear(c);
    if (PQntuples(res) > 0) {
        ldg_pg_keep(res);
        c->regressed = res;
    }
}

/* The stored_entries insert (first in the commit pipeline): its failure is what COMMIT's callback
 * reports (23P01: another transaction committed some of these logs). */
static void on_stored(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (stale(c) || res)
        return;
    capture(c);
    c->groups_failed = true;
}

static void commit(struct ldg__storage_consumer *c)
{
    ldg_buf_reset(&c->groups);
    ldg_buf_reset(&c->group_keys);
    size_t ng = ldg_batch_groups_json_keys(&c->batch, c->cur.lo, c->cur.hi, &c->groups, &c->group_keys);
    ldg_buf_put(&c->groups, "", 1);
    ldg_buf_put(&c->group_keys, "", 1);
    const char *gparams[] = {ldg_buf_head(&c->groups)};
    const char *kparams[] = {ldg_buf_head(&c->group_keys)};
    /* the duplicate check's buffers are free again: its answer came before the COPY */
    ldg_buf_reset(&c->p_pids);
    ldg_buf_reset(&c->p_ids);
    ldg_buf_reset(&c->p_ts);
    size_t nruns = ldg_stored_params(&c->batch, c->cur.lo, c->cur.hi, &c->p_pids, &c->p_ids, &c->p_ts);
    const char *sparams[] = {ldg_buf_head(&c->p_pids), ldg_buf_head(&c->p_ids), ldg_buf_head(&c->p_ts)};
    struct ldg_pg_stmt st[4];
    size_t n = 0;
    ldg__storage_regressed_clear(c);
    if (nruns > 0)
        st[n++] = (struct ldg_pg_stmt){.sql = LDG_STORED_SQL,
                                       .name = "ldg_storage_stored",
                                       .nparams = 3,
                                       .params = sparams,
                                       .cb = on_stored,
                                       .ud = c};
    if (ng > 0)
        st[n++] = (struct ldg_pg_stmt){.sql = regress_sql,
                                       .name = "ldg_storage_regress",
                                       .nparams = 1,
                                       .params = kparams,
                                       .cb = on_regressed,
                                       .ud = c};
    if (ng > 0)
        st[n++] = (struct ldg_pg_stmt){.sql = groups_sql,
                                       .name = "ldg_storage_groups",
                                       .nparams = 1,
                                       .params = gparams,
                                       .cb = on_groups,
                                       .ud = c};
    st[n++] = (struct ldg_pg_stmt){.sql = "COMMIT", .cb = on_committed, .ud = c};
    if (ldg_pg_pipeline(c->conn, st, n) < 0)
        transient(c, "COMMIT not sent");
}

static void on_lease_before_commit(struct ldg__storage_consumer *c, bool ok)
{
    if (stale(c))
        return;
    if (!ok) {
        finish(c, false); /* discards the connection: the transaction is rolled back */
        return;
    }
    if (ldg_batch_count(&c->batch, c->cur.lo, c->cur.hi, LDG_BATCH_LOST) > 0) {
        /* some entries are another consumer's now: write the range again without them (they are
         * LOST, neither written nor acknowledged here: never dead letters) */
        c->requeue = true;
        if (ldg_pg_query(c->conn, "ROLLBACK", 0, NULL, on_rolled_back, c) < 0)
            transient(c, "ROLLBACK not sent");
        return;
    }
    commit(c);
}

static void before_commit(struct ldg__storage_consumer *c)
{
    if (ldg__storage_lease_stale(c))
        ldg__storage_renew(c, on_lease_before_commit);
    else
        commit(c);
}

static void on_commit_pause(uv_timer_t *t)
{
    struct ldg__storage_consumer *c = t->data;
    if (!stale(c))
        before_commit(c);
}

static bool copy_next(struct ldg__storage_consumer *c);

static void on_copied(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (!tx_step_ok(c, res, "COPY"))
        return;
    if (copy_next(c)) /* the next table's rows */
        return;
    if (ldg__storage.debug && cfg()->debug_pause_before_commit_ms > 0) {
        ldg_log_info(c->ctx, "debug pause stage=commit entries=%zu logs=%zu", c->batch.entries,
                     c->cur.hi - c->cur.lo);
        uv_timer_start(&c->timer, on_commit_pause, (uint64_t)cfg()->debug_pause_before_commit_ms, 0);
        return;
    }
    before_commit(c);
}

static void on_put(struct ldg_pg *conn, int status, void *ud)
{
    (void)conn;
    struct ldg__storage_consumer *c = ud;
    if (stale(c))
        return;
    if (status < 0) {
        ldg__storage_fail(c, "COPY data not sent: %s", strerror(-status));
        finish(c, false);
        return;
    }
    if (ldg_pg_copy_end(c->conn, NULL, on_copied, c) < 0)
        transient(c, "COPY end not sent");
}

static void on_copy_in(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (!tx_step_ok(c, res, "COPY start"))
        return;
    if (ldg_pg_copy_put(c->conn, ldg_buf_head(&c->copy), ldg_buf_size(&c->copy), on_put, c) < 0)
        transient(c, "COPY data not sent");
}

/* Start the COPY of the range's rows of the first table after c->copy_table (logs, spans, metric
 * points; -1: from the first) that has any: true (a failure to send is handled), or false when
 * none is left. */
static bool copy_next(struct ldg__storage_consumer *c)
{
    static const int order[] = {LDG_OTELROW_LOG, LDG_OTELROW_SPAN, LDG_OTELROW_METRIC};
    static const char *const sql[] = {LDG_BATCH_COPY_SQL, LDG_OTELROW_SPAN_COPY_SQL, LDG_OTELROW_METRIC_COPY_SQL};
    size_t k = 0;
    while (k < 3 && order[k] != c->copy_table)
        k++;
    for (k = c->copy_table < 0 ? 0 : k + 1; k < 3; k++) {
        ldg_buf_reset(&c->copy);
        if (ldg_batch_copy_table(&c->batch, c->cur.lo, c->cur.hi, order[k], &c->copy) == 0)
            continue;
        c->copy_table = order[k];
        if (ldg_pg_copy_start(c->conn, sql[k], on_copy_in, c) < 0)
            transient(c, "COPY not sent");
        return true;
    }
    return false;
}

static void copy_rows(struct ldg__storage_consumer *c)
{
    c->copy_table = -1;
    if (!copy_next(c))
        before_commit(c); /* every entry was a duplicate */
}

static void on_dups(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (!tx_step_ok(c, res, "duplicate check"))
        return;
    for (int i = 0; i < PQntuples(res); i++)
        ldg_batch_mark_duplicate(&c->batch, c->cur.lo, c->cur.hi, PQgetvalue(res, i, 0),
                                 (size_t)PQgetlength(res, i, 0));
    /* whatever was not found is not stored: no need to check it again */
    for (size_t i = c->cur.lo; i < c->cur.hi; i++)
        if (c->batch.e[i].state == LDG_BATCH_PENDING)
            c->batch.e[i].maybe_stored = false;
    copy_rows(c);
}

static void on_begin(PGresult *res, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    if (stale(c))
        return;
    if (!res) {
        transient(c, "BEGIN");
        return;
    }
    if (ldg_batch_count_unchecked(&c->batch, c->cur.lo, c->cur.hi) == 0)
        copy_rows(c); /* otherwise on_dups (same pipeline) goes on */
}

static void begin_tx(struct ldg__storage_consumer *c)
{
    if (ldg_batch_count(&c->batch, c->cur.lo, c->cur.hi, LDG_BATCH_PENDING) == 0) {
        next_range(c); /* every entry of the range was in a month PostgreSQL refused */
        return;
    }
    c->in_tx = true;
    struct ldg_pg_stmt st[2];
    size_t n = 0;
    st[n++] = (struct ldg_pg_stmt){.sql = "BEGIN", .cb = on_begin, .ud = c};
    const char *params[3];
    if (ldg_batch_count_unchecked(&c->batch, c->cur.lo, c->cur.hi) > 0) {
        ldg_buf_reset(&c->p_pids);
        ldg_buf_reset(&c->p_ts);
        ldg_buf_reset(&c->p_ids);
        ldg_batch_dup_params(&c->batch, c->cur.lo, c->cur.hi, &c->p_pids, &c->p_ts, &c->p_ids);
        params[0] = ldg_buf_head(&c->p_pids);
        params[1] = ldg_buf_head(&c->p_ts);
        params[2] = ldg_buf_head(&c->p_ids);
        st[n++] = (struct ldg_pg_stmt){.sql = dup_sql,
                                       .name = "ldg_storage_dups",
                                       .nparams = 3,
                                       .params = params,
                                       .cb = on_dups,
                                       .ud = c};
    }
    if (ldg_pg_pipeline(c->conn, st, n) < 0)
        transient(c, "BEGIN not sent");
}

static void next_range(struct ldg__storage_consumer *c)
{
    while (c->nranges > 0) {
        struct ldg__storage_range r = c->ranges[--c->nranges];
        if (ldg_batch_count(&c->batch, r.lo, r.hi, LDG_BATCH_PENDING) == 0)
            continue;
        c->cur = r;
        c->nmonth_todo = c->month_i = 0;
        ensure_next(c);
        return;
    }
    if (ldg__storage_shard_parked(c)) { /* the next logs shard's entries, on a connection of its own */
        release_conn(c);
        ldg__storage_shard_next(c);
        push_range(c, 0, c->batch.n, 0);
        on_lease_before_write(c, true);
        return;
    }
    finish(c, true);
}

/* ---- entry points ----------------------------------------------------------------------------------- */

static void on_conn(struct ldg_pg *conn, int err, void *ud)
{
    struct ldg__storage_consumer *c = ud;
    c->acquiring = false;
    if (c->acquire_orphaned) {
        c->acquire_orphaned = false;
        if (conn)
            ldg_pgpool_release(ldg__storage_shard_pool(c), conn);
        return;
    }
    if (!conn) {
        ldg__storage_fail(c, "no connection to the logs database: %s",
                          err == -ETIMEDOUT  ? "timed out"
                          : err == -ENOTCONN ? "unreachable"
                                             : "pool closed");
        finish(c, false);
        return;
    }
    c->conn = conn;
    next_range(c);
}

static void on_deadline(uv_timer_t *t)
{
    struct ldg__storage_consumer *c = t->data;
    ldg__storage_fail(c, "batch of %zu entries not stored within store_timeout_ms", c->batch.n);
    ldg__storage_write_abandon(c);
    ldg__storage_stored(c, false);
}

static void on_lease_before_write(struct ldg__storage_consumer *c, bool ok)
{
    if (!ok) {
        finish(c, false);
        return;
    }
    struct ldg_pgpool *pool = ldg__storage_shard_pool(c);
    int rc = pool ? ldg_pgpool_acquire(pool, on_conn, c) : -ECANCELED;
    if (rc < 0) {
        ldg__storage_fail(c, "no connection to the logs database: %s",
                          rc == -ENOTCONN ? "unreachable"
                          : rc == -EAGAIN ? "pool busy"
                                          : "pool closed");
        finish(c, false);
        return;
    }
    c->acquiring = true;
}

void ldg__storage_write(struct ldg__storage_consumer *c)
{
    c->nranges = 0;
    c->conflicts = 0;
    c->requeue = false;
    ldg__storage_shard_begin(c, c->acquiring);
    push_range(c, 0, c->batch.n, 0);
    uv_timer_start(&c->deadline, on_deadline, (uint64_t)cfg()->store_timeout_ms, 0);
    if (c->acquiring) {
        /* the acquire of an abandoned attempt is still pending: it serves this one */
        c->acquire_orphaned = false;
        return;
    }
    if (ldg__storage_lease_stale(c))
        ldg__storage_renew(c, on_lease_before_write);
    else
        on_lease_before_write(c, true);
}

void ldg__storage_write_abandon(struct ldg__storage_consumer *c)
{
    uv_timer_stop(&c->deadline);
    c->renew_cb = NULL; /* a renewal in flight: its reply is ignored */
    c->groups_failed = false;
    ldg__storage_regressed_clear(c);
    if (c->acquiring)
        c->acquire_orphaned = true;
    if (c->conn)
        uv_timer_stop(&c->timer); /* a debug pause */
    /* A transaction given up on must not commit later: cancel its running statement. Not a
     * partition being created outside the transaction: that one may as well finish (cancelling it
     * under a short store_timeout_ms would only make every retry start it again). */
    if (c->conn && c->in_tx)
        ldg_pg_cancel(c->conn);
    release_conn(c);
    ldg__storage_shard_end(c);
}
