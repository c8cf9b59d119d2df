/*
 * analytics.c: [analytics] keys, the scheduler, job health and the jobs (see analytics.h).
 *
 * A job is a chain of callbacks: each step issues one statement (or a burst of Redis SETs) and
 * its callback issues the next, so a job holds no connection between steps and never blocks the
 * loop. A failed step ends the run with a static error text for /health/deep (the server's text
 * goes to the log). Every step first checks `stopping`: during shutdown no new statement starts,
 * and `drained` reports true once no job has a callback due.
 */
#include "roles/analytics/analytics.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/civil.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "db/redis.h"
#include "roles/analytics/alerting.h"
#include "alerts/dispatch.h"
#include "server.h"
#include "settings.h"

#define CFG(f) offsetof(struct ldg_analytics_cfg, f)
#define MIN_MS 60000LL
#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define TICK_MS 1000
#define BACKLOG_SAMPLE_MS 5000 /* how often worker 0 samples the search index backlog */
#define CTX "role=analytics"

const struct ldg_cfg_key ldg_analytics_cfg_keys[] = {
    {"search_index_interval_ms", LDG_CFG_MS, CFG(search_index_interval_ms), "60000", 1000, DAY_MS, NULL, 0,
     "How often closed leaves (6-hour partitions and slices) are checked for missing search indexes (built "
     "then, one pass each)"},
    {"index_grace_ms", LDG_CFG_MS, CFG(index_grace_ms), "60000", 0, DAY_MS, NULL, 0,
     "A leaf counts as closed (and gets its search indexes) this long after its range ended"},
    {"index_timeout_ms", LDG_CFG_MS, CFG(index_timeout_ms), "3600000", 1000, DAY_MS, NULL, 0,
     "Statement timeout of one search index build (on its own connection)"},
    {"index_max_per_run", LDG_CFG_INT, CFG(index_max_per_run), "30", 1, 10000, NULL, 0,
     "Search indexes built by one run of the search_index job (newest partitions first)"},
    {"index_backlog_max_age_ms", LDG_CFG_MS, CFG(index_backlog_max_age_ms), "1800000", 1000, DAY_MS, NULL, 0,
     "/health/deep reports the search index backlog as growing when a closed leaf has waited this long "
     "for its indexes"},
    {"hourly_metrics_interval_ms", LDG_CFG_MS, CFG(hourly_metrics_interval_ms), "3600000", 1000, DAY_MS, NULL,
     0, "How often aggregated_metrics is computed for the full hours not done yet (and the last hour again)"},
    {"backfill_max_hours", LDG_CFG_INT, CFG(backfill_max_hours), "48", 1, 24 * 366, NULL, 0,
     "Oldest missed hour the hourly_metrics job goes back to"},
    {"available_routes_interval_ms", LDG_CFG_MS, CFG(available_routes_interval_ms), "3600000", 1000, DAY_MS,
     NULL, 0, "How often projects.available_routes is refreshed from the aggregated endpoint paths"},
    {"usage_stats_interval_ms", LDG_CFG_MS, CFG(usage_stats_interval_ms), "300000", 1000, DAY_MS, NULL, 0,
     "How often the live usage counters are persisted to daily_usage (and metrics:usage_stats cached)"},
    {"error_rate_interval_ms", LDG_CFG_MS, CFG(error_rate_interval_ms), "300000", 1000, DAY_MS, NULL, 0,
     "How often metrics:error_rate:<pid>:5min is computed (cached for twice this)"},
    {"log_volume_interval_ms", LDG_CFG_MS, CFG(log_volume_interval_ms), "300000", 1000, DAY_MS, NULL, 0,
     "How often metrics:log_volume:<pid>:1hour is computed (cached for twice this)"},
    {"top_errors_interval_ms", LDG_CFG_MS, CFG(top_errors_interval_ms), "900000", 1000, DAY_MS, NULL, 0,
     "How often metrics:top_errors:<pid> is computed (cached for twice this)"},
    {"alert_eval_interval_ms", LDG_CFG_MS, CFG(alert_eval_interval_ms), "60000", 1000, DAY_MS, NULL, 0,
     "How often the alert rules are evaluated (once per tick across every process)"},
    {"alert_eval_concurrency", LDG_CFG_INT, CFG(alert_eval_concurrency), "1", 1, 64, NULL, 0,
     "Metric statements of the evaluator in flight at once"},
    {"alert_eval_parallel_workers", LDG_CFG_INT, CFG(alert_eval_parallel_workers), "0", 0, 64, NULL, 0,
     "PostgreSQL parallel workers per metric statement of the evaluator (0: each statement takes one core)"},
    {"alert_max_rules", LDG_CFG_INT, CFG(alert_max_rules), "5000", 1, 1000000, NULL, 0,
     "Rules evaluated per tick (those evaluated longest ago first)"},
    {"monitor_check_interval_ms", LDG_CFG_MS, CFG(monitor_check_interval_ms), "10000", 1000, DAY_MS, NULL, 0,
     "How often monitors are looked at: due http checks start, late heartbeats go down"},
    {"monitor_history_days", LDG_CFG_INT, CFG(monitor_history_days), "30", 1, 3650, NULL, 0,
     "Days of http monitor check results kept"},
    {"notification_retention_days", LDG_CFG_INT, CFG(notification_retention_days), "30", 1, 3650, NULL, 0,
     "Days inbox notifications, alert history and delivery logs are kept"},
    {"notification_cleanup_interval_ms", LDG_CFG_MS, CFG(notification_cleanup_interval_ms), "3600000", 1000,
     DAY_MS, NULL, 0, "How often expired notifications, alert history, deliveries and checks are deleted"},
    {"webhook_timeout_ms", LDG_CFG_MS, CFG(webhook_timeout_ms), "5000", 100, 60000, NULL, 0,
     "Deadline of one webhook attempt (resolve, connect, send, status line)"},
    {"webhook_max_attempts", LDG_CFG_INT, CFG(webhook_max_attempts), "3", 1, 10, NULL, 0,
     "Attempts per webhook delivery (retried on network errors, 429 and 5xx)"},
    {"webhook_backoff_ms", LDG_CFG_MS, CFG(webhook_backoff_ms), "2000", 10, 600000, NULL, 0,
     "Wait before the second attempt; doubled for each further one"},
    {"outbound_max_inflight", LDG_CFG_INT, CFG(outbound_max_inflight), "16", 1, 1024, NULL, 0,
     "Outgoing HTTP requests (webhooks, http monitors) one worker runs at once"},
    {"outbound_max_queued", LDG_CFG_INT, CFG(outbound_max_queued), "1000", 0, 100000, NULL, 0,
     "Outgoing HTTP requests waiting per worker; beyond that they fail at once"},
    {"outbound_ca_file", LDG_CFG_STR, CFG(outbound_ca_file), "", 0, 0, NULL, 0,
     "PEM file of CA certificates trusted for https:// webhooks and monitors, besides the system store"},
    {"smtp_host", LDG_CFG_STR, CFG(smtp_host), "", 0, 0, NULL, 0,
     "SMTP relay for e-mail connectors (plain SMTP, no authentication); empty = e-mail is skipped"},
    {"smtp_port", LDG_CFG_INT, CFG(smtp_port), "25", 1, 65535, NULL, 0, "Port of the SMTP relay"},
    {"smtp_from", LDG_CFG_STR, CFG(smtp_from), "ledger@localhost", 0, 0, NULL, 0,
     "Sender address of alert e-mails"},
    {"smtp_timeout_ms", LDG_CFG_MS, CFG(smtp_timeout_ms), "10000", 100, 120000, NULL, 0,
     "Deadline of one e-mail delivery"},
    {0},
};

enum job_id {
    J_SEARCH_INDEX,
    J_HOURLY,
    J_ROUTES,
    J_USAGE,
    J_ERROR_RATE,
    J_LOG_VOLUME,
    J_TOP_ERRORS,
    J_ALERTS,
    J_MONITORS,
    J_ALERT_CLEANUP,
    NJOBS
};
static const char *const job_names[NJOBS] = {
    "search_index", "hourly_metrics", "available_routes", "usage_stats",   "error_rate",
    "log_volume",   "top_errors",     "alert_eval",       "monitor_check", "notification_cleanup"};

/* Per-job health: written by the scheduling worker, read by any worker rendering /health/deep. */
struct job_health {
    _Atomic int64_t last_start_ms; /* wall clock; 0 = never */
    _Atomic int64_t last_duration_ms;
    _Atomic uint64_t runs, failures;
    _Atomic(const char *) last_error; /* static text or NULL */
    _Atomic bool running;
};

static struct {
    const struct ldg_analytics_cfg *cfg;
    const struct ldg_config *config;
    struct job_health health[NJOBS];
    _Atomic bool backlog_ok; /* worker 0's last backlog sample succeeded */
    char host[64];
} G;

struct sched;

struct job {
    struct sched *s;
    enum job_id id;
    int64_t interval_ms;
    int64_t last_slot; /* slot last tried */
    bool running;      /* a callback is due */
    uint64_t started_ms;
    /* run state */
    PGresult *rows; /* owned: a result walked over several steps */
    int i, n;
    int64_t hour, hour_end; /* hourly_metrics: hours (since epoch) still to do */
    int shard;              /* the logs shard being done (jobs over logs run on every shard in turn) */
    size_t redis_pending;
    bool redis_failed;
    char *text;         /* owned: a document carried between steps */
    long long *ucounts; /* owned: usage counters, today and yesterday per row of `rows` */
};

/* One Redis shard's MGET of the usage counters (heap, freed by its callback). */
struct usage_read {
    struct job *j;
    unsigned shard;
};

struct sched {
    struct ldg_worker *w;
    uv_timer_t timer;
    bool stopping, timer_closed;
    struct job jobs[NJOBS];
    /* search_index: its own connection (builds outlast the pool's statement timeout) */
    struct ldg_pg *conn;
    struct ldg_pg_cfg conn_cfg[LDG_PG_MAX_SHARDS]; /* each logs shard's, with the index statement timeout */
    int conn_shard;                                /* of conn */
    bool conn_ready;
    unsigned conn_closing;
    /* the search index backlog gauges of /metrics (worker 0) */
    uint64_t backlog_next_ms;
    bool backlog_pending;
    bool backlog_ok; /* the last sample succeeded */
    int backlog_shard; /* the logs shard being sampled; the sums below are over the shards before it */
    uint64_t bl_unindexed_leaves, bl_unindexed_rows, bl_oldest_ms, bl_leaves, bl_rows, bl_age_ms;
};

static int64_t interval_of(enum job_id id)
{
    const struct ldg_analytics_cfg *c = G.cfg;
    switch (id) {
    case J_SEARCH_INDEX:
        return c->search_index_interval_ms;
    case J_HOURLY:
        return c->hourly_metrics_interval_ms;
    case J_ROUTES:
        return c->available_routes_interval_ms;
    case J_USAGE:
        return c->usage_stats_interval_ms;
    case J_ERROR_RATE:
        return c->error_rate_interval_ms;
    case J_LOG_VOLUME:
        return c->log_volume_interval_ms;
    case J_TOP_ERRORS:
        return c->top_errors_interval_ms;
    case J_ALERTS:
        return c->alert_eval_interval_ms;
    case J_MONITORS:
        return c->monitor_check_interval_ms;
    case J_ALERT_CLEANUP:
        return c->notification_cleanup_interval_ms;
    case NJOBS:
        break;
    }
    return HOUR_MS;
}

/* ---- run bookkeeping ---------------------------------------------------------------------------- */

static void job_end(struct job *j, const char *error)
{
    struct job_health *h = &G.health[j->id];
    int64_t took = (int64_t)(ldg_worker_now(j->s->w) - j->started_ms);
    atomic_store_explicit(&h->last_duration_ms, took, memory_order_relaxed);
    atomic_store_explicit(&h->last_error, error, memory_order_relaxed);
    if (error)
        atomic_fetch_add_explicit(&h->failures, 1, memory_order_relaxed);
    atomic_store_explicit(&h->running, false, memory_order_relaxed);
    if (j->rows)
        PQclear(j->rows);
    j->rows = NULL;
    free(j->text);
    j->text = NULL;
    free(j->ucounts);
    j->ucounts = NULL;
    j->running = false;
    char ctx[64];
    snprintf(ctx, sizeof ctx, CTX " job=%s", job_names[j->id]);
    if (error)
        ldg_log_warn(ctx, "job failed: %s took_ms=%" PRId64, error, took);
    else
        ldg_log_info(ctx, "job done took_ms=%" PRId64, took);
}

/* The common start of a statement callback: false when the run ends here (stopping, or the
 * statement failed: logged with the server's reason, health gets `what`). */
static bool step_ok(struct job *j, const PGresult *res, const char *what)
{
    if (j->s->stopping) {
        job_end(j, "stopped by shutdown");
        return false;
    }
    if (!res) {
        const struct ldg_pg_error *f = ldg_pg_failure();
        char ctx[64];
        snprintf(ctx, sizeof ctx, CTX " job=%s", job_names[j->id]);
        ldg_log_warn(ctx, "%s: code=%d sqlstate=%s err=%s", what, f->code, f->sqlstate[0] ? f->sqlstate : "-",
                     f->message ? f->message : "-");
        job_end(j, what);
        return false;
    }
    return true;
}

static void sql_on(struct job *j, struct ldg_pgpool *pool, const char *name, const char *sql, int n,
                   const char *const *params, ldg_pg_cb cb, const char *what)
{
    int rc = !pool  ? -ECANCELED
             : name ? ldg_pgpool_query_prepared(pool, name, sql, n, params, cb, j)
                    : ldg_pgpool_query(pool, sql, n, params, cb, j);
    if (rc < 0)
        job_end(j, what);
}

static bool shard_next(struct job *j);

static void cache_release(struct job *j)
{
    if (--j->redis_pending != 0)
        return;
    if (j->redis_failed)
        job_end(j, "writing the Redis cache");
    else if (j->id == J_USAGE || !shard_next(j))
        job_end(j, NULL);
}

static void on_cache_set(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct job *j = ud;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        j->redis_failed = true;
    cache_release(j);
}

/* SET key (column 0 → "<prefix><pid><suffix>") = column 1 with PX 2 × interval, for every row. */
static void cache_rows(struct job *j, const PGresult *res, const char *prefix, const char *suffix)
{
    char px[24];
    snprintf(px, sizeof px, "%" PRId64, 2 * j->interval_ms);
    int n = PQntuples(res);
    j->redis_pending = 1; /* held while issuing */
    j->redis_failed = false;
    for (int i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s%s%s", prefix, PQgetvalue(res, i, 0), suffix);
        const char *argv[] = {"SET", key, PQgetvalue(res, i, 1), "PX", px};
        size_t argl[] = {3, strlen(key), (size_t)PQgetlength(res, i, 1), 2, strlen(px)};
        /* a project's cache entry is on its Redis shard */
        struct ldg_redis *r = ldg_worker_redis_for(j->s->w, strtoll(PQgetvalue(res, i, 0), NULL, 10));
        if (!r || ldg_redis_commandargv(r, on_cache_set, j, 5, argv, argl) < 0) {
            j->redis_failed = true;
            break;
        }
        j->redis_pending++;
    }
    cache_release(j);
}

/* ---- error_rate, log_volume, top_errors: one statement, one cache entry per project -------------- */

static void on_cache_rows(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "computing the metrics"))
        return;
    if (j->id == J_ERROR_RATE)
        cache_rows(j, res, "metrics:error_rate:", ":5min");
    else if (j->id == J_LOG_VOLUME)
        cache_rows(j, res, "metrics:log_volume:", ":1hour");
    else
        cache_rows(j, res, "metrics:top_errors:", "");
}

/* Timestamps inside the caches are Python isoformat() in UTC (reference §6). */
#define PY_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"
#define PY_ISO_US(col)                                                                                       \
    "CASE WHEN date_part('microseconds', " col ")::bigint % 1000000 = 0 THEN " PY_ISO(                       \
        col) " ELSE to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') END"

static const char error_rate_sql[] = "SELECT project_id, json_agg(json_build_object('timestamp', " PY_ISO(
    "b") ", 'error_count', e, "
         "'critical_count', c) ORDER BY b DESC)::text FROM (SELECT project_id, date_bin('5 minutes', "
         "\"timestamp\", "
         "timestamptz '2000-01-01 00:00:00+00') AS b, count(*) FILTER (WHERE level = 'error') AS e, "
         "count(*) FILTER (WHERE level = 'critical') AS c FROM logs WHERE \"timestamp\" >= now() - interval "
         "'24 hours' "
         "AND \"timestamp\" <= now() + interval '5 minutes' GROUP BY 1, 2) s GROUP BY project_id";

static const char log_volume_sql[] = "SELECT project_id, json_agg(json_build_object('timestamp', " PY_ISO(
    "h") ", 'debug', d, 'info', i, "
         "'warning', w, 'error', e, 'critical', c) ORDER BY h DESC)::text FROM (SELECT project_id, "
         "date_trunc('hour', \"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS h, "
         "count(*) FILTER (WHERE level = 'debug') AS d, count(*) FILTER (WHERE level = 'info') AS i, "
         "count(*) FILTER (WHERE level = 'warning') AS w, count(*) FILTER (WHERE level = 'error') AS e, "
         "count(*) FILTER (WHERE level = 'critical') AS c FROM logs WHERE \"timestamp\" >= now() - interval "
         "'7 days' "
         "AND \"timestamp\" <= now() + interval '5 minutes' GROUP BY 1, 2) s GROUP BY project_id";

static const char top_errors_sql[] = "SELECT project_id, json_agg(json_build_object('fingerprint', "
                                     "fingerprint, 'error_type', error_type, "
                                     "'error_message', error_message, 'occurrence_count', occurrence_count, "
                                     "'first_seen', " PY_ISO_US("first_seen") ", 'last_seen', " PY_ISO_US(
                                         "last_seen") ", 'status', status) ORDER BY "
                                                      "occurrence_count DESC, last_seen DESC)::text "
                                                      "FROM (SELECT g.*, row_number() OVER (PARTITION BY "
                                                      "project_id ORDER BY occurrence_count DESC, "
                                                      "last_seen DESC) AS rn FROM error_groups g WHERE "
                                                      "status = 'unresolved' AND last_seen >= now() - "
                                                      "interval '24 hours') s WHERE rn <= 50 GROUP BY "
                                                      "project_id";

/* ---- usage_stats ------------------------------------------------------------------------------------ */

static void on_usage_cached(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "reading daily_usage"))
        return;
    cache_rows(j, res, "metrics:usage_stats:", "");
}

static void usage_cache(struct job *j)
{
    static const char sql[] =
        "SELECT p.id, coalesce(json_agg(json_build_object('date', to_char(d.date, 'YYYY-MM-DD'), "
        "'log_count', "
        "d.logs_ingested, 'daily_quota', p.daily_quota, 'quota_used_percent', round(d.logs_ingested * 100.0 "
        "/ "
        "greatest(p.daily_quota, 1), 2)) ORDER BY d.date DESC) FILTER (WHERE d.date IS NOT NULL), "
        "'[]')::text "
        "FROM projects p LEFT JOIN daily_usage d ON d.project_id = p.id AND d.date >= current_date - 29 "
        "GROUP BY p.id";
    sql_on(j, j->s->w->pg_auth, "ana_usage_cache", sql, 0, NULL, on_usage_cached, "reading daily_usage");
}

static void on_usage_stored(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "writing daily_usage"))
        return;
    usage_cache(j);
}

static unsigned row_shard(const struct job *j, int i)
{
    return ldg_settings_redis_shard(j->s->w->cfg, strtoll(PQgetvalue(j->rows, i, 0), NULL, 10));
}

static void usage_counted(struct job *j);

/* One shard's MGET reply: counters of today and yesterday for each project of j->rows on that
 * shard (in row order), into j->ucounts. The last reply goes on. */
static void on_usage_counters(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct usage_read *u = ud;
    struct job *j = u->j;
    int n = PQntuples(j->rows), k = 0;
    for (int i = 0; i < n; i++)
        k += row_shard(j, i) == u->shard;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != (size_t)k * 2)
        j->redis_failed = true;
    else
        for (int i = 0, e = 0; i < n; i++) {
            if (row_shard(j, i) != u->shard)
                continue;
            for (int d = 0; d < 2; d++, e++) {
                const redisReply *v = reply->element[e];
                long long c = v->type == REDIS_REPLY_STRING    ? strtoll(v->str, NULL, 10)
                              : v->type == REDIS_REPLY_INTEGER ? v->integer
                                                               : 0;
                j->ucounts[i * 2 + d] = c > 0 ? c : 0;
            }
        }
    free(u);
    if (--j->redis_pending == 0)
        usage_counted(j);
}

static void usage_counted(struct job *j)
{
    if (j->s->stopping) {
        job_end(j, "stopped by shutdown");
        return;
    }
    if (j->redis_failed) {
        job_end(j, "reading the usage counters");
        return;
    }
    int n = PQntuples(j->rows);
    /* {"<pid>": [today, yesterday], ...} → one upsert statement */
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_puts(&b, "[");
    for (int i = 0; i < n; i++)
        for (int d = 0; d < 2; d++)
            ldg_buf_printf(&b, "%s{\"p\":%s,\"d\":%d,\"n\":%lld}", (i || d) ? "," : "",
                           PQgetvalue(j->rows, i, 0), d, j->ucounts[i * 2 + d]);
    ldg_buf_puts(&b, "]");
    j->text = ldg_malloc(ldg_buf_size(&b) + 1);
    memcpy(j->text, ldg_buf_head(&b), ldg_buf_size(&b));
    j->text[ldg_buf_size(&b)] = '\0';
    ldg_buf_free(&b);
    const char *params[] = {j->text};
    /* The live counter only grows during its day: keep the larger of stored and live. */
    static const char sql[] =
        "INSERT INTO daily_usage AS u (project_id, date, logs_ingested) SELECT (e->>'p')::bigint, "
        "(now() AT TIME ZONE 'UTC')::date - (e->>'d')::int, (e->>'n')::bigint FROM "
        "jsonb_array_elements($1::jsonb) e "
        "WHERE (e->>'n')::bigint > 0 ON CONFLICT (project_id, date) DO UPDATE SET logs_ingested = "
        "greatest(u.logs_ingested, excluded.logs_ingested), updated_at = now() "
        "WHERE u.logs_ingested < excluded.logs_ingested";
    sql_on(j, j->s->w->pg_auth, "ana_usage_store", sql, 1, params, on_usage_stored, "writing daily_usage");
}

static void on_usage_projects(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "listing projects"))
        return;
    ldg_pg_keep(res);
    j->rows = res;
    int n = PQntuples(res);
    if (n == 0) {
        job_end(j, NULL);
        return;
    }
    int64_t now_s = ldg_wall_us() / 1000000;
    char today[16], yesterday[16];
    for (int d = 0; d < 2; d++) {
        struct ldg_civil c;
        ldg_civil_from_unix(now_s - d * 86400, &c);
        snprintf(d ? yesterday : today, 16, "%04" PRId64 "%02u%02u", c.year, c.mon, c.day);
    }
    /* one MGET per Redis shard, of the counters of its projects */
    j->ucounts = ldg_calloc((size_t)n * 2, sizeof *j->ucounts);
    j->redis_pending = 1; /* held while issuing */
    j->redis_failed = false;
    const char **argv = ldg_calloc(1 + (size_t)n * 2, sizeof *argv);
    char *keys = ldg_calloc((size_t)n * 2, 64);
    for (unsigned s = 0; s < j->s->w->nredis; s++) {
        size_t argc = 1;
        argv[0] = "MGET";
        for (int i = 0; i < n; i++) {
            if (row_shard(j, i) != s)
                continue;
            for (int d = 0; d < 2; d++) {
                char *k = keys + (size_t)(i * 2 + d) * 64;
                snprintf(k, 64, "usage:%s:%s", PQgetvalue(res, i, 0), d ? yesterday : today);
                argv[argc++] = k;
            }
        }
        if (argc == 1)
            continue;
        struct usage_read *u = ldg_malloc(sizeof *u);
        *u = (struct usage_read){j, s};
        struct ldg_redis *r = j->s->w->redis_shard[s];
        if (r && ldg_redis_commandargv(r, on_usage_counters, u, (int)argc, argv, NULL) == 0) {
            j->redis_pending++;
        } else {
            free(u);
            j->redis_failed = true;
        }
    }
    free(argv);
    free(keys);
    if (--j->redis_pending == 0)
        usage_counted(j);
}

/* ---- hourly_metrics -------------------------------------------------------------------------------- */

static const char hourly_sql[] =
    "WITH src AS (SELECT project_id, level, log_type, attributes FROM logs WHERE \"timestamp\" >= "
    "$1::timestamptz "
    "AND \"timestamp\" < $1::timestamptz + interval '1 hour'), "
    "ep AS (SELECT project_id, left(attributes->'endpoint'->>'method', 10) AS m, "
    "left(attributes->'endpoint'->>'path', 500) AS p, "
    "CASE WHEN attributes->'endpoint'->>'duration_ms' ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' "
    "THEN (attributes->'endpoint'->>'duration_ms')::float8 END AS dur, "
    "CASE WHEN attributes->'endpoint'->>'status_code' ~ '^[0-9]{1,9}$' "
    "THEN (attributes->'endpoint'->>'status_code')::int END AS status "
    "FROM src WHERE log_type = 'endpoint' AND attributes->'endpoint'->>'method' IS NOT NULL "
    "AND attributes->'endpoint'->>'path' IS NOT NULL), "
    "agg AS ("
    "SELECT project_id, 'endpoint' AS t, m, p, NULL AS lv, NULL AS ty, count(*) AS n, "
    "count(*) FILTER (WHERE status >= 400) AS e, avg(dur) AS a, round(min(dur))::int AS mn, "
    "round(max(dur))::int AS mx, round(percentile_cont(0.95) WITHIN GROUP (ORDER BY dur))::int AS p95, "
    "round(percentile_cont(0.99) WITHIN GROUP (ORDER BY dur))::int AS p99, "
    "round(percentile_cont(0.5) WITHIN GROUP (ORDER BY dur))::int AS p50 FROM ep GROUP BY project_id, m, p "
    "UNION ALL SELECT project_id, 'exception', NULL, NULL, NULL, NULL, count(*), count(*), NULL, NULL, NULL, "
    "NULL, NULL, NULL FROM src WHERE log_type = 'exception' GROUP BY project_id "
    "UNION ALL SELECT project_id, 'log_volume', NULL, NULL, level, log_type, count(*), "
    "count(*) FILTER (WHERE level IN ('error', 'critical')), NULL, NULL, NULL, NULL, NULL, NULL FROM src "
    "GROUP BY project_id, level, log_type) "
    "INSERT INTO aggregated_metrics AS am (project_id, date, hour, metric_type, endpoint_method, "
    "endpoint_path, "
    "log_level, log_type, log_count, error_count, avg_duration_ms, min_duration_ms, max_duration_ms, "
    "p95_duration_ms, p99_duration_ms, p50_duration_ms) SELECT project_id, to_char($1::timestamptz AT TIME "
    "ZONE 'UTC', 'YYYYMMDD'), extract(hour FROM $1::timestamptz AT TIME ZONE 'UTC')::int, t, m, p, lv, ty, "
    "n, "
    "e, a, mn, mx, p95, p99, p50 FROM agg "
    "ON CONFLICT (project_id, date, hour, metric_type, COALESCE(endpoint_method, ''), "
    "COALESCE(endpoint_path, ''), "
    "COALESCE(log_level, ''), COALESCE(log_type, '')) DO UPDATE SET log_count = excluded.log_count, "
    "error_count = excluded.error_count, avg_duration_ms = excluded.avg_duration_ms, "
    "min_duration_ms = excluded.min_duration_ms, max_duration_ms = excluded.max_duration_ms, "
    "p95_duration_ms = excluded.p95_duration_ms, p99_duration_ms = excluded.p99_duration_ms, "
    "p50_duration_ms = excluded.p50_duration_ms, updated_at = "
    "now()";

#define HOURLY_DONE_KEY "ledger:analytics:hourly_metrics:done"

static void hourly_next(struct job *j);

static void on_hour_marked(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct job *j = ud;
    if (j->s->stopping) {
        job_end(j, "stopped by shutdown");
        return;
    }
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        job_end(j, "recording the hours done");
        return;
    }
    j->hour++;
    hourly_next(j);
}

static void on_hour_rolled(PGresult *res, void *ud);

/* After the hour's aggregated_metrics on a shard: the hour's metric point rollups there (schema
 * logs/0011, docs/otlp.md "Rollups"); after the last shard, the mark. */
static void on_hour_done(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "aggregating an hour"))
        return;
    char ts[48];
    struct ldg_civil c;
    ldg_civil_from_unix(j->hour * 3600, &c);
    snprintf(ts, sizeof ts, "%04" PRId64 "-%02u-%02u %02u:00:00+00", c.year, c.mon, c.day, c.hour);
    const char *params[] = {ts};
    sql_on(j, ldg_pgroute_primary(j->s->w, j->shard), "ana_rollup", "SELECT metric_rollup_hour($1::timestamptz)",
           1, params, on_hour_rolled, "rolling up metric points");
}

static void on_hour_rolled(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "rolling up metric points"))
        return;
    if (++j->shard < ldg_pgroute_nshards(j->s->w)) { /* the same hour on the next shard */
        hourly_next(j);
        return;
    }
    j->shard = 0;
    /* the mark only moves forward (the previous hour is redone on every run) */
    static const char lua[] = "local v = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
                              "if tonumber(ARGV[1]) > v then redis.call('SET', KEYS[1], ARGV[1]) end\n"
                              "return 1\n";
    char hour[24];
    snprintf(hour, sizeof hour, "%" PRId64, j->hour);
    const char *argv[] = {"EVAL", lua, "1", HOURLY_DONE_KEY, hour};
    if (ldg_redis_commandargv(j->s->w->redis, on_hour_marked, j, 5, argv, NULL) < 0)
        job_end(j, "recording the hours done");
}

static void hourly_next(struct job *j)
{
    if (j->hour >= j->hour_end) {
        job_end(j, NULL);
        return;
    }
    char ts[48];
    struct ldg_civil c;
    ldg_civil_from_unix(j->hour * 3600, &c);
    snprintf(ts, sizeof ts, "%04" PRId64 "-%02u-%02u %02u:00:00+00", c.year, c.mon, c.day, c.hour);
    const char *params[] = {ts};
    sql_on(j, ldg_pgroute_primary(j->s->w, j->shard), "ana_hourly", hourly_sql, 1, params, on_hour_done,
           "aggregating an hour");
}

static void on_hourly_mark(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct job *j = ud;
    if (j->s->stopping) {
        job_end(j, "stopped by shutdown");
        return;
    }
    if (!reply || (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_STRING)) {
        job_end(j, "reading the hours done");
        return;
    }
    int64_t now_h = ldg_wall_us() / 1000000 / 3600; /* the current, unfinished hour */
    int64_t done = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : now_h - 2;
    int64_t from = done; /* the last hour done is redone: logs that arrived after its run */
    if (from < now_h - G.cfg->backfill_max_hours)
        from = now_h - G.cfg->backfill_max_hours;
    j->hour = from;
    j->hour_end = now_h;
    hourly_next(j);
}

/* ---- available_routes ------------------------------------------------------------------------------------
 */

static void on_routes_stored(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "writing available_routes"))
        return;
    if (!shard_next(j))
        job_end(j, NULL);
}

static void on_routes(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "collecting routes"))
        return;
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        if (!shard_next(j))
            job_end(j, NULL);
        return;
    }
    const char *params[] = {PQgetvalue(res, 0, 0)};
    static const char sql[] = "UPDATE projects p SET available_routes = r.routes, updated_at = now() FROM "
                              "(SELECT (e->>'id')::bigint AS "
                              "id, ARRAY(SELECT jsonb_array_elements_text(e->'routes')) AS routes FROM "
                              "jsonb_array_elements($1::jsonb) e) "
                              "r WHERE p.id = r.id AND p.available_routes IS DISTINCT FROM r.routes";
    sql_on(j, j->s->w->pg_auth, "ana_routes_store", sql, 1, params, on_routes_stored,
           "writing available_routes");
}

/* ---- search_index -------------------------------------------------------------------------------------- */

static void index_next(struct job *j);

static bool safe_ident(const char *s)
{
    if (!*s || strlen(s) > 63)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static void on_index_stmt(PGresult *res, void *ud);

/* Row i of the todo list: 0 leaf, 1 index name, 2 invalid, 3 CREATE statement. Phases (j->n) per
 * row: 0 DROP INDEX CONCURRENTLY when the index is invalid (a failed build), 1 CREATE INDEX
 * CONCURRENTLY, 2 ANALYZE once the leaf's last missing index is built (the planner needs the
 * statistics of the indexed expression). */
static void index_step(struct job *j)
{
    const PGresult *t = j->rows;
    const char *leaf = PQgetvalue(t, j->i, 0), *name = PQgetvalue(t, j->i, 1);
    if (!safe_ident(leaf) || !safe_ident(name)) {
        job_end(j, "unexpected partition name");
        return;
    }
    if (j->n == 0 && PQgetvalue(t, j->i, 2)[0] != 't')
        j->n = 1;
    bool last_of_leaf = j->i + 1 >= PQntuples(t) || j->i + 1 >= G.cfg->index_max_per_run ||
                        strcmp(PQgetvalue(t, j->i + 1, 0), leaf) != 0;
    if (j->n == 2 && !last_of_leaf) {
        j->i++;
        j->n = 0;
        index_next(j);
        return;
    }
    char sql[1024]; /* the longest, the full-text CREATE, is about 300 bytes */
    if (j->n == 0)
        snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", name);
    else if (j->n == 1)
        snprintf(sql, sizeof sql, "%s", PQgetvalue(t, j->i, 3));
    else
        snprintf(sql, sizeof sql, "ANALYZE %s", leaf);
    if (ldg_pg_query(j->s->conn, sql, 0, NULL, on_index_stmt, j) < 0)
        job_end(j, "building a search index");
}

static void on_index_stmt(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "building a search index"))
        return;
    if (j->n == 1) {
        ldg_log_info(CTX " job=search_index", "built index %s", PQgetvalue(j->rows, j->i, 1));
    } else if (j->n == 2) {
        j->i++;
        j->n = 0;
        index_next(j);
        return;
    }
    j->n++;
    index_step(j);
}

static void on_conn_state(struct ldg_pg *c, enum ldg_pg_state from, enum ldg_pg_state to, void *ud);
static void drop_conn(struct sched *s);

static void index_next(struct job *j)
{
    struct sched *s = j->s;
    if (j->i >= PQntuples(j->rows) || j->i >= G.cfg->index_max_per_run) {
        PQclear(j->rows);
        j->rows = NULL;
        if (!shard_next(j))
            job_end(j, NULL);
        return;
    }
    if (s->conn && s->conn_shard != j->shard)
        drop_conn(s);
    if (!s->conn) {
        char logctx[64];
        snprintf(logctx, sizeof logctx, "pg=pg_logs shard=%d job=search_index", j->shard);
        s->conn_shard = j->shard;
        s->conn = ldg_pg_new(&s->w->loop, &s->conn_cfg[j->shard],
                             ldg_settings_pg_shard_password(G.config, j->shard), logctx, on_conn_state, s);
    }
    if (s->conn_ready)
        index_step(j);
    /* else on_conn_state continues once connected */
}

static void on_conn_closed(void *ud)
{
    struct sched *s = ud;
    s->conn_closing--;
}

static void drop_conn(struct sched *s)
{
    if (!s->conn)
        return;
    s->conn_closing++;
    struct ldg_pg *c = s->conn;
    s->conn = NULL;
    s->conn_ready = false;
    ldg_pg_close(c, on_conn_closed, s);
}

static void on_conn_state(struct ldg_pg *c, enum ldg_pg_state from, enum ldg_pg_state to, void *ud)
{
    struct sched *s = ud;
    struct job *j = &s->jobs[J_SEARCH_INDEX];
    if (to == LDG_PG_BROKEN) {
        bool was_connecting = from == LDG_PG_CONNECTING;
        drop_conn(s);
        if (j->running && was_connecting)
            job_end(j, "connecting for index builds");
        return; /* a statement in flight gets its own failure */
    }
    if (to == LDG_PG_IDLE && from == LDG_PG_CONNECTING) {
        s->conn_ready = true;
        if (j->running && j->rows && !s->stopping)
            index_next(j);
    }
}

static void on_index_todo(PGresult *res, void *ud)
{
    struct job *j = ud;
    if (!step_ok(j, res, "listing missing search indexes"))
        return;
    if (PQntuples(res) == 0) {
        if (!shard_next(j))
            job_end(j, NULL);
        return;
    }
    ldg_pg_keep(res);
    j->rows = res;
    j->i = 0;
    j->n = 0;
    index_next(j);
}

/* ---- scheduler -------------------------------------------------------------------------------------------
 */

static void on_alerting_done(void *ud, const char *error)
{
    job_end(ud, error);
}

/* The first statement of job j on shard j->shard (jobs that are not about logs ignore it). */
static void job_step(struct job *j)
{
    struct sched *s = j->s;
    switch (j->id) {
    case J_SEARCH_INDEX: {
        char grace[24];
        snprintf(grace, sizeof grace, "%" PRId64, G.cfg->index_grace_ms);
        const char *params[] = {grace};
        sql_on(j, ldg_pgroute_primary(s->w, j->shard), NULL,
               "SELECT leaf, index_name, invalid, create_sql FROM logs_search_index_todo(now() - "
               "make_interval(secs => $1::bigint / 1000.0))",
               1, params, on_index_todo, "listing missing search indexes");
        return;
    }
    case J_HOURLY: {
        const char *argv[] = {"GET", HOURLY_DONE_KEY};
        if (ldg_redis_commandargv(s->w->redis, on_hourly_mark, j, 2, argv, NULL) < 0)
            job_end(j, "reading the hours done");
        return;
    }
    case J_ROUTES:
        sql_on(j, ldg_pgroute_read_shard(s->w, j->shard), "ana_routes",
               "SELECT jsonb_agg(jsonb_build_object('id', project_id, 'routes', routes)) FROM (SELECT "
               "project_id, "
               "array_agg(DISTINCT endpoint_path ORDER BY endpoint_path) AS routes FROM aggregated_metrics "
               "WHERE "
               "metric_type = 'endpoint' AND endpoint_path IS NOT NULL GROUP BY project_id) s",
               0, NULL, on_routes, "collecting routes");
        return;
    case J_USAGE:
        sql_on(j, s->w->pg_auth, "ana_usage_projects", "SELECT id FROM projects ORDER BY id", 0, NULL,
               on_usage_projects, "listing projects");
        return;
    case J_ERROR_RATE:
        sql_on(j, ldg_pgroute_read_shard(s->w, j->shard), "ana_error_rate", error_rate_sql, 0, NULL,
               on_cache_rows, "computing the metrics");
        return;
    case J_LOG_VOLUME:
        sql_on(j, ldg_pgroute_read_shard(s->w, j->shard), "ana_log_volume", log_volume_sql, 0, NULL,
               on_cache_rows, "computing the metrics");
        return;
    case J_TOP_ERRORS:
        sql_on(j, ldg_pgroute_read_shard(s->w, j->shard), "ana_top_errors", top_errors_sql, 0, NULL,
               on_cache_rows, "computing the metrics");
        return;
    case J_ALERTS:
        ldg__alerting_evaluate(s->w, G.cfg, &s->stopping, on_alerting_done, j);
        return;
    case J_MONITORS:
        ldg__alerting_monitors(s->w, G.cfg, &s->stopping, on_alerting_done, j);
        return;
    case J_ALERT_CLEANUP:
        ldg__alerting_cleanup(s->w, G.cfg, &s->stopping, on_alerting_done, j);
        return;
    case NJOBS:
        break;
    }
    job_end(j, "unknown job");
}

static void job_start(struct job *j)
{
    j->shard = 0;
    job_step(j);
}

/* The job's logs part is done on j->shard: go on with the next shard (true) or not (false). */
static bool shard_next(struct job *j)
{
    if (j->s->stopping || ++j->shard >= ldg_pgroute_nshards(j->s->w))
        return false;
    job_step(j);
    return true;
}

static void on_lock(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct job *j = ud;
    if (j->s->stopping || !reply || reply->type != REDIS_REPLY_STATUS) {
        /* taken elsewhere (nil), Redis unavailable, or stopping: not this slot */
        j->running = false;
        return;
    }
    struct job_health *h = &G.health[j->id];
    atomic_store_explicit(&h->last_start_ms, (int64_t)ldg_wall_ms(), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->runs, 1, memory_order_relaxed);
    atomic_store_explicit(&h->running, true, memory_order_relaxed);
    j->started_ms = ldg_worker_now(j->s->w);
    job_start(j);
}

/* ---- search index backlog ------------------------------------------------------------------------------
 * Every BACKLOG_SAMPLE_MS worker 0 reads logs_index_backlog (schema/logs/0010) into its stats: the rows
 * searches read without an index and the closed leaves still due for the search_index job, summed
 * over the logs shards (ages: the oldest of any shard), read one shard after the other. */

static void sample_shard(struct sched *s);

static uint64_t age_ms(const char *epoch_ms, int64_t now)
{
    if (!*epoch_ms)
        return 0;
    int64_t t = strtoll(epoch_ms, NULL, 10);
    return now > t ? (uint64_t)(now - t) : 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static void on_backlog(PGresult *res, void *ud)
{
    struct sched *s = ud;
    if (s->stopping) {
        s->backlog_pending = false;
        return;
    }
    struct ldg_stats *st = &s->w->stats;
    s->backlog_ok = res && PQntuples(res) == 1;
    if (!s->backlog_ok) { /* the pool logged the failure; the gauges keep their last values */
        s->backlog_pending = false;
        atomic_store_explicit(&G.backlog_ok, false, memory_order_relaxed);
        return;
    }
    int64_t now = (int64_t)ldg_wall_ms();
    s->bl_unindexed_leaves += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    s->bl_unindexed_rows += strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    s->bl_oldest_ms = max_u64(s->bl_oldest_ms, age_ms(PQgetvalue(res, 0, 2), now));
    s->bl_leaves += strtoull(PQgetvalue(res, 0, 3), NULL, 10);
    s->bl_rows += strtoull(PQgetvalue(res, 0, 4), NULL, 10);
    s->bl_age_ms = max_u64(s->bl_age_ms, age_ms(PQgetvalue(res, 0, 5), now));
    if (++s->backlog_shard < ldg_pgroute_nshards(s->w)) {
        sample_shard(s);
        return;
    }
    s->backlog_pending = false;
    atomic_store_explicit(&G.backlog_ok, true, memory_order_relaxed);
    ldg_stat_set(&st->index_unindexed_leaves, s->bl_unindexed_leaves);
    ldg_stat_set(&st->index_unindexed_rows, s->bl_unindexed_rows);
    ldg_stat_set(&st->index_oldest_unindexed_ms, s->bl_oldest_ms);
    ldg_stat_set(&st->index_backlog_leaves, s->bl_leaves);
    ldg_stat_set(&st->index_backlog_rows, s->bl_rows);
    ldg_stat_set(&st->index_backlog_age_ms, s->bl_age_ms);
    ldg_stat_set(&st->index_sampled, 1);
}

static void sample_shard(struct sched *s)
{
    char grace[24];
    snprintf(grace, sizeof grace, "%" PRId64, G.cfg->index_grace_ms);
    const char *params[] = {grace};
    struct ldg_pgpool *pool = ldg_pgroute_primary(s->w, s->backlog_shard);
    if (!pool ||
        ldg_pgpool_query_prepared(
            pool, "ana_index_backlog",
            "SELECT unindexed_leaves, unindexed_rows, (extract(epoch FROM oldest_start) * 1000)::bigint, "
            "backlog_leaves, backlog_rows, "
            "(extract(epoch FROM backlog_oldest_end + make_interval(secs => $1::bigint / 1000.0)) * "
            "1000)::bigint "
            "FROM logs_index_backlog(now() - make_interval(secs => $1::bigint / 1000.0))",
            1, params, on_backlog, s) < 0)
        s->backlog_pending = false;
}

static void sample_backlog(struct sched *s)
{
    uint64_t now = ldg_worker_now(s->w);
    if (s->backlog_pending || now < s->backlog_next_ms)
        return;
    s->backlog_next_ms = now + BACKLOG_SAMPLE_MS;
    s->backlog_pending = true;
    s->backlog_shard = 0;
    s->bl_unindexed_leaves = s->bl_unindexed_rows = s->bl_oldest_ms = 0;
    s->bl_leaves = s->bl_rows = s->bl_age_ms = 0;
    sample_shard(s);
}

static void on_tick(uv_timer_t *t)
{
    struct sched *s = t->data;
    if (s->stopping)
        return;
    sample_backlog(s);
    int64_t now = (int64_t)ldg_wall_ms();
    for (int i = 0; i < NJOBS; i++) {
        struct job *j = &s->jobs[i];
        int64_t slot = now / j->interval_ms;
        if (j->running || slot == j->last_slot)
            continue;
        j->last_slot = slot;
        char key[96], token[128], px[24];
        snprintf(key, sizeof key, "ledger:analytics:%s:%" PRId64, job_names[i], slot);
        snprintf(token, sizeof token, "%s:%ld", G.host, (long)getpid());
        snprintf(px, sizeof px, "%" PRId64, j->interval_ms);
        const char *argv[] = {"SET", key, token, "NX", "PX", px};
        j->running = true;
        if (ldg_redis_commandargv(s->w->redis, on_lock, j, 6, argv, NULL) < 0) {
            j->running = false;
            j->last_slot = slot - 1; /* Redis not there: try again next tick */
        }
    }
}

/* ---- health -----------------------------------------------------------------------------------------------
 */

static void analytics_health(const struct ldg_worker *w, const void *state, struct ldg_buf *out)
{
    (void)state;
    ldg_buf_puts(out, "{\"status\":\"running\",\"jobs\":{");
    for (int i = 0; i < NJOBS; i++) {
        struct job_health *h = &G.health[i];
        int64_t start = atomic_load_explicit(&h->last_start_ms, memory_order_relaxed);
        const char *err = atomic_load_explicit(&h->last_error, memory_order_relaxed);
        ldg_buf_printf(out,
                       "%s\"%s\":{\"interval_ms\":%" PRId64 ",\"runs\":%" PRIu64 ",\"failures\":%" PRIu64
                       ",\"running\":%s,\"last_run_ms\":",
                       i ? "," : "", job_names[i], interval_of((enum job_id)i),
                       atomic_load_explicit(&h->runs, memory_order_relaxed),
                       atomic_load_explicit(&h->failures, memory_order_relaxed),
                       atomic_load_explicit(&h->running, memory_order_relaxed) ? "true" : "false");
        if (start)
            ldg_buf_printf(out, "%" PRId64, start);
        else
            ldg_buf_puts(out, "null");
        ldg_buf_printf(out, ",\"last_duration_ms\":%" PRId64 ",\"last_error\":",
                       atomic_load_explicit(&h->last_duration_ms, memory_order_relaxed));
        if (err) {
            ldg_buf_puts(out, "\"");
            ldg_buf_json_escape(out, err, strlen(err));
            ldg_buf_puts(out, "\"");
        } else {
            ldg_buf_puts(out, "null");
        }
        ldg_buf_puts(out, "}");
    }
    ldg_buf_puts(out, "}");
    /* the search index backlog as worker 0 last sampled it */
    const struct ldg_stats *st = &w->srv->workers[0].stats;
    if (ldg_stat_get(&st->index_sampled)) {
        uint64_t due_ms = ldg_stat_get(&st->index_backlog_age_ms);
        bool growing = due_ms > (uint64_t)G.cfg->index_backlog_max_age_ms;
        bool fresh = atomic_load_explicit(&G.backlog_ok, memory_order_relaxed);
        ldg_buf_printf(out,
                       ",\"search_backlog\":{\"status\":\"%s\",\"unindexed_rows\":%" PRIu64
                       ",\"unindexed_leaves\":%" PRIu64 ",\"oldest_unindexed_age_ms\":%" PRIu64
                       ",\"backlog_leaves\":%" PRIu64 ",\"backlog_rows\":%" PRIu64
                       ",\"backlog_age_ms\":%" PRIu64 ",\"max_age_ms\":%" PRId64 "}",
                       !fresh    ? "unknown: sampling failed"
                       : growing ? "growing: indexes are not keeping up"
                                 : "healthy",
                       ldg_stat_get(&st->index_unindexed_rows), ldg_stat_get(&st->index_unindexed_leaves),
                       ldg_stat_get(&st->index_oldest_unindexed_ms), ldg_stat_get(&st->index_backlog_leaves),
                       ldg_stat_get(&st->index_backlog_rows), due_ms, G.cfg->index_backlog_max_age_ms);
    }
    ldg_buf_puts(out, "}");
}

/* ---- role ------------------------------------------------------------------------------------------------
 */

static int analytics_init_global(const struct ldg_config *c, const void *cfg)
{
    G.cfg = cfg;
    G.config = c;
    if (gethostname(G.host, sizeof G.host - 1) != 0)
        snprintf(G.host, sizeof G.host, "unknown");
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct sched *s = h->data;
    s->timer_closed = true;
}

static int analytics_init_worker(struct ldg_worker *w, const void *cfg, void **state)
{
    struct sched *s = ldg_calloc(1, sizeof *s);
    s->w = w;
    for (int i = 0; i < w->cfg->npg_shards; i++) {
        s->conn_cfg[i] = *ldg_settings_pg_shard(w->cfg, i);
        s->conn_cfg[i].statement_timeout_ms = G.cfg->index_timeout_ms;
        s->conn_cfg[i].pool_size = 1;
    }
    for (int i = 0; i < NJOBS; i++) {
        s->jobs[i].s = s;
        s->jobs[i].id = (enum job_id)i;
        s->jobs[i].interval_ms = interval_of((enum job_id)i);
        s->jobs[i].last_slot = -1;
    }
    uv_timer_init(&w->loop, &s->timer);
    s->timer.data = s;
    if (w->id == 0)
        uv_timer_start(&s->timer, on_tick, TICK_MS, TICK_MS);
    *state = s;
    return 0;
}

static void analytics_stop_worker(struct ldg_worker *w, void *state)
{
    struct sched *s = state;
    if (s->stopping)
        return;
    s->stopping = true;
    ldg_dispatch_stop(w);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    /* a statement in flight on the index connection ends its job (-ECANCELED); a job waiting for
     * the connection to open ends here */
    struct job *j = &s->jobs[J_SEARCH_INDEX];
    bool waiting = j->running && j->rows && !s->conn_ready;
    drop_conn(s);
    if (waiting)
        job_end(j, "stopped by shutdown");
}

static bool analytics_drained(const struct ldg_worker *w, const void *state)
{
    const struct sched *s = state;
    if (!s->timer_closed || s->conn_closing || s->backlog_pending || !ldg_dispatch_idle(w))
        return false;
    for (int i = 0; i < NJOBS; i++)
        if (s->jobs[i].running)
            return false;
    return true;
}

static void analytics_free_worker(struct ldg_worker *w, void *state)
{
    struct sched *s = state;
    for (int i = 0; i < NJOBS; i++)
        if (s->jobs[i].running) {
            ldg_log_error(CTX, "job %s still running at exit; its state is left", job_names[i]);
            return;
        }
    if (s->conn_closing || s->backlog_pending) {
        ldg_log_error(CTX, "index connection or backlog sample still open at exit; its state is left");
        return;
    }
    free(s);
}

const struct ldg_role ldg_role_analytics = {
    .name = "analytics",
    .keys = ldg_analytics_cfg_keys,
    .cfg_size = sizeof(struct ldg_analytics_cfg),
    .init_global = analytics_init_global,
    .init_worker = analytics_init_worker,
    .stop_worker = analytics_stop_worker,
    .drained = analytics_drained,
    .free_worker = analytics_free_worker,
    .health = analytics_health,
};
