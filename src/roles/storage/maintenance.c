/*
 * maintenance.c: the storage role's scheduled upkeep (see storage.h).
 *
 * Worker 0 of every storage process runs a timer; each tick tries to take the Redis lock
 * `ledger:storage:maintenance` (SET NX PX maintenance_interval_ms), so across the fleet one process
 * runs the job per interval. The job, one step at a time on the worker's own pools:
 *
 *   0. the per-project queue counters of every Redis shard are recounted from its stream and set
 *      right where they drifted (reconcile.h; the project ids come from the auth database);
 *   1. partitions for last month, this month and partition_months_ahead more (logs_ensure_partition),
 *      on every logs shard in turn; then, on every logs shard, stored_entries rows (schema 0009)
 *      older than a day are deleted, retention_batch_rows per statement with retention_pause_ms
 *      between statements;
 *   2. retention (unless off): read every project's retention_days from the auth database, drop
 *      whole partitions that end before now - (longest retention), a month per statement
 *      (logs_drop_oldest_partition_before, otel_drop_oldest_partition_before, schema 0013) on
 *      every shard (logs, spans, metric_points), then for each project delete its rows of logs, spans,
 *      metric_points and metric_rollups older than its own retention on its shard, table by table,
 *      retention_batch_rows per statement with retention_pause_ms after a statement that deleted
 *      rows, until a statement deletes fewer;
 *   3. consumers of the group idle for over an hour with nothing pending are deleted.
 *
 * A failed step ends the run (logged); the next interval starts again. Every step is idempotent.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "settings.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "db/redis.h"
#include "roles/storage/reconcile.h"
#include "roles/storage/storage.h"

#define CTX "role=storage job=maintenance"
#define FIRST_RUN_MS 1000
#define LOCK_KEY "ledger:storage:maintenance"
#define CONSUMER_IDLE_MAX_MS (3600 * 1000)
/* How long a stored_entries row is kept: far longer than an entry can come back to a consumer that
 * does not know it was delivered (Redis losing its last second of acknowledgements). */
#define STORED_ENTRIES_KEEP "1 day"

/* KEYS: stream. ARGV: group, consumer. Deletes the consumer only if nothing is pending at it. */
static const char delconsumer_lua[] =
    "if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return -1 end\n"
    "return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])\n";

struct project {
    int64_t id;
    int64_t days;
};

struct ldg__storage_maint {
    struct ldg_worker *w;
    uv_timer_t timer;
    uv_timer_t sample_timer; /* worker 0: the queue gauges of /metrics */
    unsigned open_handles;
    bool active; /* this worker runs the schedule */
    bool stopping, closed;
    bool running; /* a run is in progress (a callback is due) */
    int shard;    /* steps 1 and 2: the logs shard being done (db/pgroute.h) */
    int64_t longest_days;
    /* Commands sent with this struct as their callback data and not answered yet. The worker frees
     * the roles before it closes its database and Redis clients, whose close then fails the commands
     * still pending: the struct outlives ldg__storage_maint_free (orphan) until the last answer. */
    unsigned pending;
    bool orphan;
    unsigned cshard; /* the Redis shard whose consumers are being checked */
    struct sample {
        struct ldg__storage_maint *m;
        unsigned shard;
    } samples[LDG_SHARDS_MAX]; /* callback data of the queue gauges' reads */
    struct project *projects;
    size_t nprojects, cur;
    int64_t *rpids; /* step 0: every project id, while the counters are reconciled */
    size_t nrpids;
    unsigned rshard; /* step 0: the Redis shard being reconciled */
    char *rargs;     /* step 0: the script's project ids, NUL-separated */
    size_t table;    /* step 2: the retention_tables[] entry of project cur being deleted from */
    uint64_t deleted, expired, run_started_ms;
    size_t dropped;
};

static const struct ldg_storage_cfg *cfg(void)
{
    return ldg__storage.cfg;
}

static void schedule(struct ldg__storage_maint *m, uint64_t ms);

static void run_end(struct ldg__storage_maint *m, const char *failure)
{
    m->running = false;
    free(m->projects);
    m->projects = NULL;
    m->nprojects = m->cur = m->table = 0;
    free(m->rpids);
    m->rpids = NULL;
    m->nrpids = 0;
    if (failure)
        ldg_log_warn(CTX, "maintenance stopped: %s", failure);
    else
        ldg_log_info(CTX,
                     "maintenance done: partitions_dropped=%zu rows_deleted=%" PRIu64
                     " stored_entries_expired=%" PRIu64 " took_ms=%" PRIu64,
                     m->dropped, m->deleted, m->expired, ldg_worker_now(m->w) - m->run_started_ms);
    schedule(m, (uint64_t)cfg()->maintenance_interval_ms);
}

/* The first thing every callback of a command sent by the job does: false when the struct was freed
 * meanwhile (then the last such callback frees it for real). */
static bool answered(struct ldg__storage_maint *m)
{
    m->pending--;
    if (!m->orphan)
        return true;
    if (m->pending == 0) {
        free(m->projects);
        free(m);
    }
    return false;
}

/* The common start of a statement callback of the job: false when the run ends here (freed,
 * stopping, or the statement failed: logged with the server's reason). */
static bool step_ok(struct ldg__storage_maint *m, const PGresult *res, const char *what)
{
    if (!answered(m))
        return false;
    if (m->stopping) {
        m->running = false;
        return false;
    }
    if (!res) {
        const struct ldg_pg_error *f = ldg_pg_failure();
        char buf[300];
        snprintf(buf, sizeof buf, "%s: %s%s%s", what, f->sqlstate, f->sqlstate[0] ? " " : "",
                 f->message ? f->message : "failed");
        run_end(m, buf);
        return false;
    }
    return true;
}

/* ---- 3. consumers ----------------------------------------------------------------------------- */

static void consumers_of_shard(struct ldg__storage_maint *m);

static void on_consumers(struct ldg_redis *r, redisReply *reply, void *ud)
{
    struct ldg__storage_maint *m = ud;
    if (!answered(m))
        return;
    if (m->stopping) {
        m->running = false;
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        /* no group yet (no consumer ran) is not a failure */
        run_end(m, reply && reply->type == REDIS_REPLY_ERROR && !strstr(reply->str, "no such key") &&
                           !strstr(reply->str, "NOGROUP")
                       ? "XINFO CONSUMERS failed"
                       : NULL);
        return;
    }
    size_t removed = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *c = reply->element[i];
        if (c->type != REDIS_REPLY_ARRAY)
            continue;
        const char *name = NULL;
        long long pending = -1, idle = -1;
        for (size_t k = 0; k + 1 < c->elements; k += 2) {
            const redisReply *key = c->element[k], *v = c->element[k + 1];
            if (key->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(key->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
                name = v->str;
            else if (strcmp(key->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = v->integer;
            else if (strcmp(key->str, "idle") == 0 && v->type == REDIS_REPLY_INTEGER)
                idle = v->integer;
        }
        if (name && pending == 0 && idle > CONSUMER_IDLE_MAX_MS && r) {
            /* DELCONSUMER drops the consumer's pending entries (never delivered again): check and
             * delete in one script, so an entry claimed by it in between is not lost. */
            const char *argv[] = {"EVAL", delconsumer_lua, "1", ldg__storage.stream, cfg()->group, name};
            if (ldg_redis_commandargv(r, NULL, NULL, 6, argv, NULL) == 0)
                removed++;
        }
    }
    if (removed)
        ldg_log_info(CTX, "removed %zu idle consumers with nothing pending from Redis shard %u", removed,
                     m->cshard);
    if (++m->cshard < m->w->nredis)
        consumers_of_shard(m);
    else
        run_end(m, NULL);
}

/* One Redis shard's consumers, then the next (every shard has its own queue and group). */
static void consumers_of_shard(struct ldg__storage_maint *m)
{
    const char *argv[] = {"XINFO", "CONSUMERS", ldg__storage.stream, cfg()->group};
    struct ldg_redis *r = m->w->redis_shard[m->cshard];
    m->pending++;
    if (!r || ldg_redis_commandargv(r, on_consumers, m, 4, argv, NULL) < 0) {
        m->pending--;
        run_end(m, "Redis unavailable");
    }
}

static void consumers(struct ldg__storage_maint *m)
{
    m->cshard = 0;
    consumers_of_shard(m);
}

/* ---- 2. retention -------------------------------------------------------------------------- */

static void delete_next(struct ldg__storage_maint *m);

static void on_pause(uv_timer_t *t)
{
    struct ldg__storage_maint *m = t->data;
    if (!m->stopping)
        delete_next(m);
}

/* The tables whose rows follow a project's retention, with their time column. logs deletes by
 * primary key; the others have none, so a statement deletes up to the time of its LIMITth oldest
 * row (ties may take a few more rows, and the next statement goes on). */
static const struct retention_table {
    const char *stmt; /* prepared statement name */
    const char *sql;
} retention_tables[] = {
    {"ldg_retention_delete",
     "WITH d AS (SELECT id, \"timestamp\" FROM logs WHERE project_id = $1::bigint "
     "AND \"timestamp\" < now() - make_interval(days => $2::int) LIMIT $3::int) "
     "DELETE FROM logs l USING d WHERE l.id = d.id AND l.\"timestamp\" = d.\"timestamp\""},
#define BY_TIME(table, col)                                                                                  \
    "WITH c AS (SELECT now() - make_interval(days => $2::int) AS cut), "                                     \
    "b AS (SELECT " col " AS t FROM " table ", c WHERE project_id = $1::bigint AND " col " < c.cut "         \
    "ORDER BY " col " OFFSET $3::int - 1 LIMIT 1) "                                                          \
    "DELETE FROM " table " x USING c WHERE x.project_id = $1::bigint AND x." col " < c.cut "                 \
    "AND x." col " <= coalesce((SELECT t FROM b), c.cut)"
    {"ldg_retention_delete_spans", BY_TIME("spans", "start_time")},
    {"ldg_retention_delete_points", BY_TIME("metric_points", "\"time\"")},
    {"ldg_retention_delete_rollups", BY_TIME("metric_rollups", "hour")},
#undef BY_TIME
};
#define RETENTION_TABLES (sizeof retention_tables / sizeof retention_tables[0])

static void on_deleted(PGresult *res, void *ud)
{
    struct ldg__storage_maint *m = ud;
    if (!step_ok(m, res, "retention delete"))
        return;
    uint64_t n = strtoull(PQcmdTuples(res), NULL, 10);
    m->deleted += n;
    if (n < (uint64_t)cfg()->retention_batch_rows && ++m->table == RETENTION_TABLES) {
        m->table = 0;
        m->cur++; /* this project is done */
    }
    if (n == 0)
        delete_next(m); /* nothing deleted, nothing to let PostgreSQL catch up on */
    else
        uv_timer_start(&m->timer, on_pause, (uint64_t)cfg()->retention_pause_ms, 0);
}

/* One statement's worth of project cur's rows of retention_tables[table] past its retention. */
static void delete_next(struct ldg__storage_maint *m)
{
    if (m->cur >= m->nprojects) {
        consumers(m);
        return;
    }
    char pid[24], days[24], limit[24];
    snprintf(pid, sizeof pid, "%" PRId64, m->projects[m->cur].id);
    snprintf(days, sizeof days, "%" PRId64, m->projects[m->cur].days);
    snprintf(limit, sizeof limit, "%" PRId64, cfg()->retention_batch_rows);
    const char *params[] = {pid, days, limit};
    const struct retention_table *t = &retention_tables[m->table];
    m->pending++;
    struct ldg_pgpool *pool = ldg_pgroute_project(m->w, m->projects[m->cur].id);
    if (!pool || ldg_pgpool_query_prepared(pool, t->stmt, t->sql, 3, params, on_deleted, m) < 0) {
        m->pending--;
        run_end(m, "logs database unavailable");
    }
}

static void drop_before(struct ldg__storage_maint *m);

static void on_dropped(PGresult *res, void *ud)
{
    struct ldg__storage_maint *m = ud;
    if (!step_ok(m, res, "dropping partitions"))
        return;
    for (int i = 0; i < PQntuples(res); i++) {
        m->dropped++;
        ldg_log_info(CTX, "dropped partition %s (past the longest retention) shard=%d", PQgetvalue(res, i, 0),
                     m->shard);
    }
    if (PQntuples(res) > 0 || ++m->shard < ldg_pgroute_nshards(m->w)) {
        drop_before(m); /* one more month on this shard, or the next shard */
        return;
    }
    m->cur = m->table = 0;
    delete_next(m);
}

/* Whole partitions past the longest retention on shard m->shard: the oldest month of logs and the
 * oldest of spans or metric points, one statement (so one transaction's locks) at a time. */
static void drop_before(struct ldg__storage_maint *m)
{
    char days[24];
    snprintf(days, sizeof days, "%" PRId64, m->longest_days);
    const char *params[] = {days};
    m->pending++;
    struct ldg_pgpool *pool = ldg_pgroute_primary(m->w, m->shard);
    if (!pool ||
        ldg_pgpool_query(pool,
                         "SELECT logs_drop_oldest_partition_before(now() - make_interval(days => $1::int)) "
                         "UNION ALL SELECT otel_drop_oldest_partition_before(now() - make_interval(days => "
                         "$1::int))",
                         1, params, on_dropped, m) < 0) {
        m->pending--;
        run_end(m, "logs database unavailable");
    }
}

static void on_projects(PGresult *res, void *ud)
{
    struct ldg__storage_maint *m = ud;
    if (!step_ok(m, res, "reading project retention"))
        return;
    int n = PQntuples(res);
    m->projects = ldg_calloc((size_t)n + 1, sizeof *m->projects);
    int64_t longest = 0;
    for (int i = 0; i < n; i++) {
        struct project *p = &m->projects[m->nprojects];
        p->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        p->days = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (p->id <= 0 || p->days <= 0)
            continue;
        if (p->days > longest)
            longest = p->days;
        m->nprojects++;
    }
    if (m->nprojects == 0) {
        consumers(m); /* no project: nothing decides a retention; keep everything */
        return;
    }
    m->longest_days = longest;
    m->shard = 0;
    drop_before(m);
}

/* ---- 1. partitions ahead, stored entries ----------------------------------------------------- */

static void retention(struct ldg__storage_maint *m)
{
    if (!cfg()->retention) {
        consumers(m);
        return;
    }
    m->pending++;
    if (ldg_pgpool_query(m->w->pg_auth, "SELECT id, retention_days FROM projects ORDER BY id", 0, NULL,
                         on_projects, m) < 0) {
        m->pending--;
        run_end(m, "auth database unavailable");
    }
}

static void expire_next(struct ldg__storage_maint *m);

static void on_expire_pause(uv_timer_t *t)
{
    struct ldg__storage_maint *m = t->data;
    if (!m->stopping)
        expire_next(m);
}

static void on_expired(PGresult *res, void *ud)
{
    struct ldg__storage_maint *m = ud;
    if (!step_ok(m, res, "expiring stored entries"))
        return;
    uint64_t n = strtoull(PQcmdTuples(res), NULL, 10);
    m->expired += n;
    if (n >= (uint64_t)cfg()->retention_batch_rows) {
        uv_timer_start(&m->timer, on_expire_pause, (uint64_t)cfg()->retention_pause_ms, 0);
        return;
    }
    if (++m->shard < ldg_pgroute_nshards(m->w)) {
        expire_next(m);
        return;
    }
    retention(m);
}

/* Expires one statement's worth of stored_entries rows on shard m->shard. */
static void expire_next(struct ldg__storage_maint *m)
{
    char limit[24];
    snprintf(limit, sizeof limit, "%" PRId64, cfg()->retention_batch_rows);
    const char *params[] = {limit};
    static const char sql[] =
        "DELETE FROM stored_entries WHERE ctid = ANY (ARRAY(SELECT ctid FROM stored_entries "
        "WHERE stored_at < now() - interval '" STORED_ENTRIES_KEEP "' LIMIT $1::int))";
    m->pending++;
    struct ldg_pgpool *pool = ldg_pgroute_primary(m->w, m->shard);
    if (!pool || ldg_pgpool_query_prepared(pool, "ldg_stored_expire", sql, 1, params, on_expired, m) < 0) {
        m->pending--;
        run_end(m, "logs database unavailable");
    }
}

static void ensure_ahead(struct ldg__storage_maint *m);

static void on_ahead(PGresult *res, void *ud)
{
    struct ldg__storage_maint *m = ud;
    if (!step_ok(m, res, "creating partitions ahead"))
        return;
    if (++m->shard < ldg_pgroute_nshards(m->w)) {
        ensure_ahead(m);
        return;
    }
    m->shard = 0;
    expire_next(m);
}

/* ---- 0. queue counters (reconcile.h) ------------------------------------------------------------ */

static void reconcile_shard(struct ldg__storage_maint *m);

static void reconcile_done(struct ldg__storage_maint *m)
{
    free(m->rpids);
    m->rpids = NULL;
    m->nrpids = 0;
    m->shard = 0;
    ensure_ahead(m);
}

static void on_reconciled(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_maint *m = ud;
    free(m->rargs);
    m->rargs = NULL;
    if (!answered(m))
        return;
    if (m->stopping) {
        m->running = false;
        return;
    }
    struct ldg_reconcile_result res;
    struct ldg_stats *st = &m->w->stats;
    if (ldg_reconcile_parse(reply, &res) < 0) {
        ldg_log_warn(CTX, "queue counters not reconciled on Redis shard %u: %s", m->rshard,
                     reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no answer");
    } else if (res.status != LDG_RECONCILE_CHECKED) {
        ldg_stat_add(&st->queue_reconcile_skips, 1);
        ldg_log_info(CTX, "queue counters not reconciled on Redis shard %u: the stream holds %lld %s",
                     m->rshard, res.size, res.status == LDG_RECONCILE_TOO_MANY_ENTRIES ? "entries" : "bytes");
    } else {
        ldg_stat_add(&st->queue_reconciles, 1);
        ldg_stat_add(&st->queue_repairs_depth, (uint64_t)res.fixed_depth);
        ldg_stat_add(&st->queue_repairs_bytes, (uint64_t)res.fixed_bytes);
        if (res.fixed_depth || res.fixed_bytes)
            ldg_log_warn(CTX,
                         "queue counters repaired on Redis shard %u: entries=%lld depth_keys=%lld "
                         "drift_logs=%lld bytes_keys=%lld drift_bytes=%lld",
                         m->rshard, res.size, res.fixed_depth, res.drift_logs, res.fixed_bytes,
                         res.drift_bytes);
        else
            ldg_log_info(CTX, "queue counters checked on Redis shard %u: entries=%lld, all right", m->rshard,
                         res.size);
    }
    m->rshard++;
    reconcile_shard(m);
}

/* One Redis shard: the script over its stream and the counters of the projects it holds. */
static void reconcile_shard(struct ldg__storage_maint *m)
{
    for (; m->rshard < m->w->nredis; m->rshard++) {
        struct ldg_redis *r = m->w->redis_shard[m->rshard];
        if (!r || !ldg_redis_connected(r))
            continue; /* down: its consumers cannot run either; the next run checks it */
        size_t n = 0;
        for (size_t i = 0; i < m->nrpids; i++)
            n += m->w->nredis <= 1 || ldg_settings_redis_shard(m->w->cfg, m->rpids[i]) == m->rshard;
        if (n == 0)
            continue;
        size_t argc = 6 + n; /* EVAL, script, 1, stream, 2 bounds, the ids */
        const char **argv = ldg_malloc(argc * sizeof *argv);
        m->rargs = ldg_malloc(n * 21 + 2 * 24);
        char *at = m->rargs;
        argv[0] = "EVAL";
        argv[1] = ldg_reconcile_lua;
        argv[2] = "1";
        argv[3] = ldg__storage.stream;
        size_t k = 4;
        argv[k++] = at;
        at += sprintf(at, "%d", LDG_RECONCILE_MAX_ENTRIES) + 1;
        argv[k++] = at;
        at += sprintf(at, "%d", LDG_RECONCILE_MAX_BYTES) + 1;
        for (size_t i = 0; i < m->nrpids; i++) {
            if (m->w->nredis > 1 && ldg_settings_redis_shard(m->w->cfg, m->rpids[i]) != m->rshard)
                continue;
            argv[k++] = at;
            at += sprintf(at, "%" PRId64, m->rpids[i]) + 1;
        }
        m->pending++;
        int rc = ldg_redis_commandargv(r, on_reconciled, m, (int)k, argv, NULL);
        free(argv);
        if (rc == 0)
            return;
        m->pending--;
        free(m->rargs);
        m->rargs = NULL;
    }
    reconcile_done(m);
}

static void on_reconcile_projects(PGresult *res, void *ud)
{
    struct ldg__storage_maint *m = ud;
    if (!answered(m))
        return;
    if (m->stopping) {
        m->running = false;
        return;
    }
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        ldg_log_warn(CTX, "queue counters not reconciled: reading the projects failed: %s",
                     res ? PQresultErrorMessage(res) : "auth database unavailable");
        reconcile_done(m);
        return;
    }
    int n = PQntuples(res);
    m->rpids = ldg_calloc((size_t)n + 1, sizeof *m->rpids);
    for (int i = 0; i < n; i++) {
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        if (id > 0)
            m->rpids[m->nrpids++] = id;
    }
    m->rshard = 0;
    reconcile_shard(m);
}

static void reconcile(struct ldg__storage_maint *m)
{
    m->pending++;
    if (ldg_pgpool_query(m->w->pg_auth, "SELECT id FROM projects ORDER BY id", 0, NULL, on_reconcile_projects,
                         m) < 0) {
        m->pending--;
        ldg_log_warn(CTX, "queue counters not reconciled: auth database unavailable");
        reconcile_done(m);
    }
}

static void on_lock(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct ldg__storage_maint *m = ud;
    if (!answered(m))
        return;
    if (m->stopping) {
        m->running = false;
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_STATUS) {
        /* taken by another process (nil) or Redis unavailable: try again next interval */
        m->running = false;
        schedule(m, (uint64_t)cfg()->maintenance_interval_ms);
        return;
    }
    m->run_started_ms = ldg_worker_now(m->w);
    m->deleted = 0;
    m->expired = 0;
    m->dropped = 0;
    reconcile(m);
}

/* Partitions ahead on shard m->shard. */
static void ensure_ahead(struct ldg__storage_maint *m)
{
    char ahead[24];
    snprintf(ahead, sizeof ahead, "%" PRId64, cfg()->partition_months_ahead);
    const char *params[] = {ahead};
    m->pending++;
    struct ldg_pgpool *pool = ldg_pgroute_primary(m->w, m->shard);
    if (!pool || ldg_pgpool_query(pool,
                                  "SELECT logs_ensure_partition(now() + make_interval(months => k)) "
                                  "FROM generate_series(-1, $1::int) AS k",
                                  1, params, on_ahead, m) < 0) {
        m->pending--;
        run_end(m, "logs database unavailable");
    }
}

static void on_tick(uv_timer_t *t)
{
    struct ldg__storage_maint *m = t->data;
    if (m->stopping || m->running)
        return;
    char px[24];
    snprintf(px, sizeof px, "%" PRId64, cfg()->maintenance_interval_ms);
    char token[96];
    snprintf(token, sizeof token, "%s:%ld", ldg__storage.host, (long)getpid());
    const char *argv[] = {"SET", LOCK_KEY, token, "NX", "PX", px};
    m->running = true;
    m->pending++;
    if (ldg_redis_commandargv(m->w->redis, on_lock, m, 6, argv, NULL) < 0) {
        m->pending--;
        m->running = false;
        schedule(m, (uint64_t)cfg()->maintenance_interval_ms);
    }
}

/* ---- queue gauges (/metrics) ------------------------------------------------------------------
 * Every SAMPLE_MS worker 0 of each storage process reads the queue's ground truth: XLEN of the
 * stream (entries not yet stored and deleted) and the XPENDING summary of the group (entries
 * delivered and not acknowledged, the oldest one's id, whose milliseconds date its entry). */
#define SAMPLE_MS 2000

static void on_sampled(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct sample *smp = ud;
    struct ldg__storage_maint *m = smp->m;
    unsigned i = smp->shard;
    if (!answered(m) || !reply)
        return;
    struct ldg_stats *st = &m->w->stats;
    if (reply->type == REDIS_REPLY_INTEGER) { /* XLEN */
        ldg_stat_set(&st->queue_entries[i], (uint64_t)reply->integer);
        ldg_stat_set(&st->queue_sampled, 1);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER)
        return; /* NOGROUP before the first consumer made it: keep zeros */
    ldg_stat_set(&st->queue_pending[i], (uint64_t)reply->element[0]->integer);
    uint64_t age = 0;
    if (reply->element[0]->integer > 0 && reply->element[1]->type == REDIS_REPLY_STRING) {
        uint64_t id_ms = strtoull(reply->element[1]->str, NULL, 10), now = ldg_wall_ms();
        age = now > id_ms ? now - id_ms : 0;
    }
    ldg_stat_set(&st->queue_oldest_pending_ms[i], age);
}

static void on_sample_timer(uv_timer_t *t)
{
    struct ldg__storage_maint *m = t->data;
    if (m->stopping)
        return;
    const char *xlen[] = {"XLEN", ldg__storage.stream};
    const char *xpending[] = {"XPENDING", ldg__storage.stream, cfg()->group};
    for (unsigned i = 0; i < m->w->nredis; i++) {
        struct ldg_redis *r = m->w->redis_shard[i];
        if (!r || !ldg_redis_connected(r))
            continue;
        m->samples[i] = (struct sample){m, i};
        m->pending++;
        if (ldg_redis_commandargv(r, on_sampled, &m->samples[i], 2, xlen, NULL) < 0)
            m->pending--;
        m->pending++;
        if (ldg_redis_commandargv(r, on_sampled, &m->samples[i], 3, xpending, NULL) < 0)
            m->pending--;
    }
}

static void schedule(struct ldg__storage_maint *m, uint64_t ms)
{
    if (!m->stopping)
        uv_timer_start(&m->timer, on_tick, ms, 0);
}

/* ---- lifecycle ---------------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    struct ldg__storage_maint *m = h->data;
    if (--m->open_handles == 0)
        m->closed = true;
}

struct ldg__storage_maint *ldg__storage_maint_new(struct ldg_worker *w)
{
    struct ldg__storage_maint *m = ldg_calloc(1, sizeof *m);
    m->w = w;
    m->active = w->id == 0;
    uv_timer_init(&w->loop, &m->timer);
    m->timer.data = m;
    uv_timer_init(&w->loop, &m->sample_timer);
    m->sample_timer.data = m;
    m->open_handles = 2;
    if (m->active) {
        schedule(m, FIRST_RUN_MS);
        uv_timer_start(&m->sample_timer, on_sample_timer, 0, SAMPLE_MS);
    }
    return m;
}

void ldg__storage_maint_stop(struct ldg__storage_maint *m)
{
    if (m->stopping)
        return;
    m->stopping = true;
    uv_close((uv_handle_t *)&m->timer, on_closed);
    uv_close((uv_handle_t *)&m->sample_timer, on_closed);
}

bool ldg__storage_maint_closed(const struct ldg__storage_maint *m)
{
    return m->closed;
}

void ldg__storage_maint_free(struct ldg__storage_maint *m)
{
    if (m->pending) {
        m->orphan = true; /* the last answer frees it (see answered) */
        return;
    }
    free(m->rargs);
    free(m->rpids);
    free(m->projects);
    free(m);
}
