/*
 * metrics.c: the metrics endpoints of the query role (reference §3.7 Q2, §6, §10; decisions D1, D8).
 *
 *   GET /api/v1/metrics/aggregated   aggregated_metrics in hourly, daily, weekly or monthly buckets
 *   GET /api/v1/metrics/error-rate   metrics:error_rate:<pid>:5min
 *   GET /api/v1/metrics/log-volume   metrics:log_volume:<pid>:1hour
 *   GET /api/v1/metrics/top-errors   metrics:top_errors:<pid> (first `limit`)
 *   GET /api/v1/metrics/usage-stats  metrics:usage_stats:<pid>
 *
 * The last four read the caches the analytics role writes; when a cache is missing (the job has
 * not run yet, or its entry expired) the same question is asked of PostgreSQL for that project
 * and the answer is cached for [query] cache_ttl_ms (SET NX: a job's fresher entry is never
 * overwritten). /aggregated answers are cached under qcache:aggregated:<digest of the question>
 * for cache_ttl_ms: identical dashboard panels polling the same question cost one statement per
 * TTL. A new hour's aggregation therefore shows within cache_ttl_ms.
 *
 * Ownership is checked before any cache is read (a cache key never answers for another tenant).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include "auth/apikey.h"
#include "core/civil.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pgpool.h"
#include "db/redis.h"
#include "roles/analytics/analytics.h"
#include "roles/query/query_int.h"
#include "settings.h"

#define G ldg__query

/* ---- Redis cache helpers ------------------------------------------------------------------------ */

typedef void (*cache_fn)(struct ldg_req *req, const char *value, size_t len, void *ud);

struct cache_get {
    struct ldg_req *req;
    cache_fn hit, miss; /* miss gets value NULL */
    void *ud;
};

static void on_cache_get(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct cache_get *cg = ud;
    struct ldg_req *req = cg->req;
    if (req->conn) {
        if (reply && reply->type == REDIS_REPLY_STRING)
            cg->hit(req, reply->str, reply->len, cg->ud);
        else
            cg->miss(req, NULL, 0, cg->ud); /* absent, or Redis unavailable: ask PostgreSQL */
    }
    ldg_req_unref(req);
}

/* Caches and counters of a project are on its Redis shard. */
static void cache_get(struct ldg_req *req, int64_t project_id, const char *key, cache_fn hit, cache_fn miss,
                      void *ud)
{
    struct cache_get *cg = ldg_arena_alloc(&req->arena, sizeof *cg);
    *cg = (struct cache_get){req, hit, miss, ud};
    const char *argv[] = {"GET", key};
    struct ldg_redis *r = ldg_worker_redis_for(req->w, project_id);
    ldg_req_ref(req);
    if (!ldg_redis_connected(r) || ldg_redis_commandargv(r, on_cache_get, cg, 2, argv, NULL) < 0) {
        ldg_req_unref(req);
        miss(req, NULL, 0, ud);
    }
}

static void on_cache_set(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r, (void)reply, (void)ud;
}

/* Best effort: an answer that cannot be cached is still answered. */
static void cache_put(struct ldg_req *req, int64_t project_id, const char *key, const char *value, size_t len,
                      bool nx)
{
    struct ldg_redis *r = ldg_worker_redis_for(req->w, project_id);
    char px[24];
    snprintf(px, sizeof px, "%" PRId64, G.cfg->cache_ttl_ms);
    const char *argv[] = {"SET", key, value, "PX", px, "NX"};
    size_t argl[] = {3, strlen(key), len, 2, strlen(px), 2};
    if (ldg_redis_connected(r) && ldg_redis_commandargv(r, on_cache_set, NULL, nx ? 6 : 5, argv, argl) < 0)
        return; /* full or disconnected: the next request computes it again */
}

static void respond(struct ldg_req *req, struct ldg_buf *b)
{
    ldg_req_json(req, 200, ldg_buf_head(b), ldg_buf_size(b));
    ldg_buf_free(b);
}

/* ---- error-rate, log-volume, top-errors, usage-stats ---------------------------------------------- */

enum cached_kind { K_ERROR_RATE, K_LOG_VOLUME, K_TOP_ERRORS, K_USAGE };

struct cached {
    enum cached_kind kind;
    int64_t project_id;
    int64_t limit; /* top-errors */
    const char *key;
    /* usage-stats: today's entry is computed on demand (below) */
    bool today_done;
    const char *list; /* the cached or computed list, in the request's arena */
    size_t list_len;
    bool have_count;
    long long count; /* usage:<pid>:<today>, the live counter the gateway and /settings use */
};

/* Live equivalents of the analytics jobs' statements for one project ($1); one row, one JSON text. */
#define PY_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"
#define PY_ISO_US(col)                                                                                       \
    "CASE WHEN date_part('microseconds', " col ")::bigint % 1000000 = 0 THEN " PY_ISO(                       \
        col) " ELSE to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') END"

static const char live_error_rate[] = "SELECT coalesce(json_agg(json_build_object('timestamp', " PY_ISO(
    "b") ", 'error_count', e, 'critical_count', c) "
         "ORDER BY b DESC), '[]')::text FROM (SELECT date_bin('5 minutes', \"timestamp\", timestamptz "
         "'2000-01-01 "
         "00:00:00+00') AS b, count(*) FILTER (WHERE level = 'error') AS e, count(*) FILTER (WHERE level = "
         "'critical') "
         "AS c FROM logs WHERE project_id = $1::bigint AND \"timestamp\" >= now() - interval '24 hours' AND "
         "\"timestamp\" <= now() + interval '5 minutes' GROUP BY 1) s";

static const char live_log_volume[] = "SELECT coalesce(json_agg(json_build_object('timestamp', " PY_ISO(
    "h") ", 'debug', d, 'info', i, 'warning', w, "
         "'error', e, 'critical', c) ORDER BY h DESC), '[]')::text FROM (SELECT date_trunc('hour', "
         "\"timestamp\" AT TIME "
         "ZONE 'UTC') AT TIME ZONE 'UTC' AS h, count(*) FILTER (WHERE level = 'debug') AS d, count(*) FILTER "
         "(WHERE "
         "level = 'info') AS i, count(*) FILTER (WHERE level = 'warning') AS w, count(*) FILTER (WHERE level "
         "= 'error') "
         "AS e, count(*) FILTER (WHERE level = 'critical') AS c FROM logs WHERE project_id = $1::bigint AND "
         "\"timestamp\" >= now() - interval '7 days' AND \"timestamp\" <= now() + interval '5 minutes' GROUP "
         "BY 1) s";

static const char live_top_errors[] = "SELECT coalesce(json_agg(json_build_object('fingerprint', "
                                      "fingerprint, 'error_type', error_type, "
                                      "'error_message', error_message, 'occurrence_count', occurrence_count, "
                                      "'first_seen', " PY_ISO_US("first_seen") ", 'last_seen', " PY_ISO_US(
                                          "last_seen") ", 'status', status) ORDER BY occurrence_count "
                                                       "DESC, last_seen DESC), '[]')::text FROM (SELECT * "
                                                       "FROM error_groups WHERE project_id = $1::bigint AND "
                                                       "status = 'unresolved' AND last_seen >= now() - "
                                                       "interval '24 hours' ORDER BY occurrence_count DESC, "
                                                       "last_seen DESC LIMIT 50) s";

static const char live_usage[] =
    "SELECT coalesce(json_agg(json_build_object('date', to_char(d.date, 'YYYY-MM-DD'), 'log_count', "
    "d.logs_ingested, 'daily_quota', p.daily_quota, 'quota_used_percent', round(d.logs_ingested * 100.0 / "
    "greatest(p.daily_quota, 1), 2)) ORDER BY d.date DESC) FILTER (WHERE d.date IS NOT NULL), '[]')::text "
    "FROM projects p LEFT JOIN daily_usage d ON d.project_id = p.id AND d.date >= current_date - 29 "
    "WHERE p.id = $1::bigint GROUP BY p.id";

static void usage_today(struct ldg_req *req, struct cached *c);

static void respond_cached(struct ldg_req *req, const char *value, size_t len, void *ud)
{
    struct cached *c = ud;
    if (c->kind == K_USAGE && !c->today_done) {
        c->list = ldg_arena_strndup(&req->arena, value, len);
        c->list_len = len;
        usage_today(req, c);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "project_id");
    ldg_json_int(&jw, c->project_id);
    static const char *const interval[] = {"5min", "1hour", NULL, NULL};
    static const char *const list_key[] = {"data", "data", "errors", "usage"};
    if (interval[c->kind]) {
        ldg_json_key(&jw, "interval");
        ldg_json_str(&jw, interval[c->kind]);
    }
    ldg_json_key(&jw, list_key[c->kind]);
    cJSON *arr = ldg_json_parse(value, len);
    /* the reference's query service also accepts an object wrapping the list (§6) */
    if (cJSON_IsObject(arr)) {
        static const char *const wrap[] = {"data", "errors", "usage"};
        for (size_t i = 0; i < LDG_ARRAY_SIZE(wrap); i++) {
            cJSON *inner = cJSON_DetachItemFromObjectCaseSensitive(arr, wrap[i]);
            if (cJSON_IsArray(inner)) {
                cJSON_Delete(arr);
                arr = inner;
                break;
            }
            cJSON_Delete(inner);
        }
    }
    if (!cJSON_IsArray(arr)) {
        ldg_json_raw(&jw, "[]", 2);
    } else {
        ldg_json_arr_begin(&jw);
        int64_t n = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, arr)
        {
            if (c->limit > 0 && n++ >= c->limit)
                break;
            char *text = cJSON_PrintUnformatted(item);
            if (text)
                ldg_json_raw(&jw, text, strlen(text));
            free(text);
        }
        ldg_json_arr_end(&jw);
    }
    cJSON_Delete(arr);
    /* How stale the list may be: the analytics job that refreshes it runs this often (its [analytics]
     * interval; every process parses that section), so a client knows newer logs are pending the
     * next run. usage-stats computes today's entry on demand (usage_today). */
    int ai = ldg_role_index("analytics");
    const struct ldg_analytics_cfg *ac = ai >= 0 ? req->w->cfg->role_cfg[ai] : NULL;
    if (ac) {
        const int64_t every[] = {ac->error_rate_interval_ms, ac->log_volume_interval_ms,
                                 ac->top_errors_interval_ms, ac->usage_stats_interval_ms};
        ldg_json_key(&jw, "updated_every_s");
        ldg_json_int(&jw, (every[c->kind] + 999) / 1000);
    }
    ldg_json_obj_end(&jw);
    respond(req, &b);
}

static void on_live(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    struct cached *c = ud;
    const char *v = PQntuples(page) ? PQgetvalue(page, 0, 0) : "[]";
    size_t len = PQntuples(page) ? (size_t)PQgetlength(page, 0, 0) : 2;
    cache_put(req, c->project_id, c->key, v, len, true);
    respond_cached(req, v, len, c);
}

struct auth_call {
    struct ldg_req *req;
    struct cached *c;
};

static void on_live_usage(PGresult *res, void *ud)
{
    struct auth_call *ac = ud;
    struct ldg_req *req = ac->req;
    if (req->conn) {
        if (!res)
            ldg__query_pg_failure(req, "usage stats", ldg_pg_failure(), "Failed to get usage stats");
        else
            on_live(req, res, NULL, ac->c);
    }
    ldg_req_unref(req);
}

/* ---- usage-stats: today on demand ----------------------------------------------------------------
 * The daily_usage rows come from the analytics role's usage job, which copies the live counters
 * usage:<pid>:<YYYYMMDD> into PostgreSQL on its schedule; between two runs today's row would lag
 * behind /settings and the quota check. So today's entry is always taken from the live counter
 * (one GET) with the project's quota (one primary-key read), replacing the stored one. */

static void usage_answer(struct ldg_req *req, struct cached *c, int64_t quota)
{
    char today[16];
    struct ldg_civil cv;
    ldg_civil_from_unix((int64_t)time(NULL), &cv);
    snprintf(today, sizeof today, "%04lld-%02u-%02u", (long long)cv.year, cv.mon, cv.day);
    cJSON *arr = ldg_json_parse(c->list, c->list_len);
    if (cJSON_IsObject(arr)) { /* a wrapped list, as respond_cached accepts */
        cJSON *inner = cJSON_DetachItemFromObjectCaseSensitive(arr, "usage");
        cJSON_Delete(arr);
        arr = inner;
    }
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        arr = cJSON_CreateArray();
    }
    cJSON *found = NULL, *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "date");
        if (cJSON_IsString(d) && strcmp(d->valuestring, today) == 0) {
            found = it;
            break;
        }
    }
    long long count = c->have_count ? c->count : 0;
    if (found && !c->have_count) { /* no live counter (expired, or Redis answered nil): keep the row */
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(found, "log_count");
        count = cJSON_IsNumber(n) ? (long long)n->valuedouble : 0;
    }
    cJSON *row = cJSON_CreateObject();
    if (!arr || !row)
        ldg_panic("cJSON: out of memory");
    cJSON_AddStringToObject(row, "date", today);
    cJSON_AddNumberToObject(row, "log_count", (double)count);
    cJSON_AddNumberToObject(row, "daily_quota", (double)quota);
    double pct = (double)count * 100.0 / (double)(quota > 1 ? quota : 1);
    cJSON_AddNumberToObject(row, "quota_used_percent", (double)llround(pct * 100.0) / 100.0);
    if (found)
        cJSON_ReplaceItemViaPointer(arr, found, row);
    else
        cJSON_InsertItemInArray(arr, 0, row); /* newest first */
    char *text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!text)
        ldg_panic("cJSON: out of memory");
    c->today_done = true;
    respond_cached(req, text, strlen(text), c);
    free(text);
}

struct usage_call {
    struct ldg_req *req;
    struct cached *c;
};

static void on_usage_quota(PGresult *res, void *ud)
{
    struct usage_call *uc = ud;
    struct ldg_req *req = uc->req;
    if (req->conn) {
        if (!res)
            ldg__query_pg_failure(req, "usage stats", ldg_pg_failure(), "Failed to get usage stats");
        else if (PQntuples(res) == 0)
            ldg_req_error(req, 404, "Project not found");
        else
            usage_answer(req, uc->c, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    }
    ldg_req_unref(req);
}

static void on_usage_count(struct ldg_redis *r, redisReply *reply, void *ud)
{
    struct usage_call *uc = ud;
    struct ldg_req *req = uc->req;
    struct cached *c = uc->c;
    if (req->conn) {
        if (reply && reply->type == REDIS_REPLY_STRING) {
            c->have_count = true;
            c->count = strtoll(reply->str, NULL, 10);
        } else if (reply && reply->type == REDIS_REPLY_NIL) {
            c->have_count = true; /* nothing counted today */
            c->count = 0;
        }
        struct ldg_qparams *p = ldg_arena_alloc(&req->arena, sizeof *p);
        memset(p, 0, sizeof *p);
        ldg_qparams_add(p, &req->arena, ldg__query_itoa(req, c->project_id));
        ldg_req_ref(req);
        if (ldg_pgpool_query_prepared(req->w->pg_auth, "qry_usage_quota",
                                      "SELECT daily_quota FROM projects WHERE id = $1::bigint", 1, p->v,
                                      on_usage_quota, uc) < 0) {
            ldg_req_unref(req);
            ldg_req_error(req, 503, "Service timeout, please try again");
        }
    }
    ldg_req_unref(req);
}

static void usage_today(struct ldg_req *req, struct cached *c)
{
    struct usage_call *uc = ldg_arena_alloc(&req->arena, sizeof *uc);
    *uc = (struct usage_call){req, c};
    struct ldg_civil cv;
    ldg_civil_from_unix((int64_t)time(NULL), &cv);
    char key[64];
    snprintf(key, sizeof key, "usage:%" PRId64 ":%04lld%02u%02u", c->project_id, (long long)cv.year, cv.mon,
             cv.day);
    const char *argv[] = {"GET", key};
    ldg_req_ref(req);
    struct ldg_redis *r = ldg_worker_redis_for(req->w, c->project_id);
    if (!r || ldg_redis_commandargv(r, on_usage_count, uc, 2, argv, NULL) < 0)
        on_usage_count(r, NULL, uc); /* no live counter: the stored row stands */
}

static void cached_miss(struct ldg_req *req, const char *value, size_t len, void *ud)
{
    struct cached *c = ud;
    struct ldg_qparams *p = ldg_arena_alloc(&req->arena, sizeof *p);
    memset(p, 0, sizeof *p);
    ldg_qparams_add(p, &req->arena, ldg__query_itoa(req, c->project_id));
    if (c->kind == K_USAGE) { /* daily_usage lives in the auth database */
        struct auth_call *ac = ldg_arena_alloc(&req->arena, sizeof *ac);
        *ac = (struct auth_call){req, c};
        ldg_req_ref(req);
        if (ldg_pgpool_query_prepared(req->w->pg_auth, "qry_usage", live_usage, 1, p->v, on_live_usage, ac) <
            0) {
            ldg_req_unref(req);
            ldg_req_error(req, 503, "Service timeout, please try again");
        }
        return;
    }
    static const char *const sql[] = {live_error_rate, live_log_volume, live_top_errors};
    ldg__query_run(req, c->project_id, "metrics", "Failed to compute metrics", sql[c->kind], NULL, p, 0,
                   on_live, c);
}

static void cached_owned(struct ldg_req *req, void *ud)
{
    struct cached *c = ud;
    cache_get(req, c->project_id, c->key, respond_cached, cached_miss, c);
}

static void handle_cached(struct ldg_req *req, enum cached_kind kind)
{
    struct cached *c = ldg_arena_alloc(&req->arena, sizeof *c);
    memset(c, 0, sizeof *c);
    c->kind = kind;
    if (!ldg__query_project(req, &c->project_id))
        return;
    if (kind == K_TOP_ERRORS) {
        c->limit = 10;
        if (ldg__query_int(req, "query", "limit", ldg__query_param(req, "limit"), 1, 50, &c->limit) < 0)
            return;
    }
    char key[96];
    static const char *const fmt[] = {"metrics:error_rate:%" PRId64 ":5min",
                                      "metrics:log_volume:%" PRId64 ":1hour", "metrics:top_errors:%" PRId64,
                                      "metrics:usage_stats:%" PRId64};
    snprintf(key, sizeof key, fmt[kind], c->project_id);
    c->key = ldg_arena_strndup(&req->arena, key, strlen(key));
    ldg__query_with_project(req, c->project_id, cached_owned, c);
}

static void handle_error_rate(struct ldg_req *req)
{
    handle_cached(req, K_ERROR_RATE);
}

static void handle_log_volume(struct ldg_req *req)
{
    handle_cached(req, K_LOG_VOLUME);
}

static void handle_top_errors(struct ldg_req *req)
{
    handle_cached(req, K_TOP_ERRORS);
}

static void handle_usage_stats(struct ldg_req *req)
{
    handle_cached(req, K_USAGE);
}

/* ---- GET /metrics/aggregated ------------------------------------------------------------------------- */

enum gran { GRAN_HOURLY, GRAN_DAILY, GRAN_WEEKLY, GRAN_MONTHLY };
static const char *const gran_names[] = {"hourly", "daily", "weekly", "monthly"};

struct agg {
    int64_t project_id;
    const char *type, *path;  /* path: endpointPath or NULL */
    int64_t from_day, to_day; /* days since 1970-01-01 */
    enum gran gran;
    char from[9], to[9]; /* YYYYMMDD */
    const char *key;
};

static void day_text(int64_t day, char *out, size_t cap, bool dashes)
{
    struct ldg_civil c;
    ldg_civil_from_unix(day * 86400, &c);
    snprintf(out, cap, dashes ? "%04" PRId64 "-%02u-%02u" : "%04" PRId64 "%02u%02u", c.year, c.mon, c.day);
}

/* YYYY-MM-DD (the reference's pattern) → day number; -1 = not that shape, -2 = not a real date. */
static int64_t parse_day(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return -2;
    return ldg_days_from_civil(y, (uint32_t)m, (uint32_t)d);
}

static const char *num_or_null(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    const char *v = PQgetvalue(res, row, col);
    return strtod(v, NULL) == 0 ? NULL : v; /* zero durations are null (reference Q2) */
}

/* Columns of the bucket statements: 0 date, 1 hour (NULL outside hourly), 2 method, 3 path, 4 level,
 * 5 type, 6 log_count, 7 error_count, 8 avg, 9 min, 10 max, 11 p95, 12 p99, 13 p50. */
static void on_agg(struct ldg_req *req, PGresult *res, PGresult *count, void *ud)
{
    struct agg *a = ud;
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "project_id");
    ldg_json_int(&jw, a->project_id);
    ldg_json_key(&jw, "metric_type");
    ldg_json_str(&jw, a->type);
    ldg_json_key(&jw, "granularity");
    ldg_json_str(&jw, gran_names[a->gran]);
    ldg_json_key(&jw, "start_date");
    ldg_json_str(&jw, a->from);
    ldg_json_key(&jw, "end_date");
    ldg_json_str(&jw, a->gran == GRAN_HOURLY ? a->from : a->to);
    ldg_json_key(&jw, "data");
    ldg_json_arr_begin(&jw);
    static const char *const keys[] = {"date",
                                       "hour",
                                       "endpoint_method",
                                       "endpoint_path",
                                       "log_level",
                                       "log_type",
                                       "log_count",
                                       "error_count",
                                       "avg_duration_ms",
                                       "min_duration_ms",
                                       "max_duration_ms",
                                       "p95_duration_ms",
                                       "p99_duration_ms",
                                       "p50_duration_ms"};
    for (int i = 0; i < PQntuples(res); i++) {
        ldg_json_obj_begin(&jw);
        for (int c = 0; c < 14; c++) {
            ldg_json_key(&jw, keys[c]);
            const char *v = PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c);
            if (c == 0 || (c >= 2 && c <= 5)) {
                ldg_json_str(&jw, v && *v ? v : NULL); /* empty strings are null */
            } else if (c == 1 || c == 6 || c == 7) {
                if (v)
                    ldg_json_int(&jw, strtoll(v, NULL, 10));
                else if (c == 1)
                    ldg_json_null(&jw);
                else
                    ldg_json_int(&jw, 0);
            } else {
                v = num_or_null(res, i, c);
                if (!v)
                    ldg_json_null(&jw);
                else if (c == 8)
                    ldg_json_double(&jw, strtod(v, NULL));
                else
                    ldg_json_int(&jw, strtoll(v, NULL, 10));
            }
        }
        ldg_json_obj_end(&jw);
    }
    ldg_json_arr_end(&jw);
    ldg_json_obj_end(&jw);
    cache_put(req, a->project_id, a->key, ldg_buf_head(&b), ldg_buf_size(&b), false);
    respond(req, &b);
}

/* Hourly: the 24 hours of the first day; every stored row of an hour, or one zero row. */
static const char agg_hourly_sql[] =
    "SELECT $2::text, h, r.endpoint_method, coalesce(r.endpoint_path, $4::text), r.log_level, r.log_type, "
    "coalesce(r.log_count, 0), coalesce(r.error_count, 0), r.avg_duration_ms, r.min_duration_ms, "
    "r.max_duration_ms, "
    "r.p95_duration_ms, r.p99_duration_ms, r.p50_duration_ms FROM generate_series(0, 23) AS h LEFT JOIN "
    "aggregated_metrics r ON "
    "r.project_id = $1::bigint AND r.date = $2::text AND r.hour = h AND r.metric_type = $3::text AND "
    "($4::text IS NULL OR r.endpoint_path = $4::text) "
    "ORDER BY h, r.endpoint_path, r.endpoint_method, r.log_level, r.log_type";

/* Daily, weekly, monthly: buckets from the range start stepped by $6; rows of a bucket grouped by
 * (method, path, level, type), so rows sharing a bucket are all returned (D8); an empty bucket is
 * one zero row. Durations: count-weighted mean, min of mins, max of maxes, mean of percentiles. */
static const char agg_buckets_sql[] =
    "WITH b AS (SELECT g::date AS s, lead(g::date) OVER (ORDER BY g) AS e FROM generate_series($2::date, "
    "$5::date, "
    "$6::interval) AS g), r AS (SELECT to_date(date, 'YYYYMMDD') AS d, * FROM aggregated_metrics WHERE "
    "project_id = $1::bigint AND metric_type = $3::text AND date >= to_char($2::date, 'YYYYMMDD') AND "
    "date <= to_char($5::date, 'YYYYMMDD') AND ($4::text IS NULL OR $3::text <> 'endpoint' OR "
    "endpoint_path = $4::text)) "
    "SELECT to_char(b.s, 'YYYYMMDD'), NULL::int, r.endpoint_method, r.endpoint_path, r.log_level, "
    "r.log_type, "
    "coalesce(sum(r.log_count), 0), coalesce(sum(r.error_count), 0), "
    "sum(r.avg_duration_ms * r.log_count) / nullif(sum(r.log_count) FILTER (WHERE r.avg_duration_ms IS NOT "
    "NULL), "
    "0), min(r.min_duration_ms), max(r.max_duration_ms), round(avg(r.p95_duration_ms))::int, "
    "round(avg(r.p99_duration_ms))::int, round(avg(r.p50_duration_ms))::int FROM b LEFT JOIN r ON r.d >= b.s "
    "AND (b.e IS NULL OR r.d < b.e) "
    "GROUP BY b.s, r.endpoint_method, r.endpoint_path, r.log_level, r.log_type "
    "ORDER BY b.s, r.endpoint_path, r.endpoint_method, r.log_level, r.log_type";

static void agg_run(struct ldg_req *req, struct agg *a)
{
    struct ldg_qparams *p = ldg_arena_alloc(&req->arena, sizeof *p);
    memset(p, 0, sizeof *p);
    struct ldg_arena *ar = &req->arena;
    ldg_qparams_add(p, ar, ldg__query_itoa(req, a->project_id));
    if (a->gran == GRAN_HOURLY) {
        ldg_qparams_add(p, ar, a->from);
        ldg_qparams_add(p, ar, a->type);
        ldg_qparams_add(p, ar, a->path);
        ldg__query_run(req, a->project_id, "aggregated metrics", "Failed to retrieve aggregated metrics",
                       agg_hourly_sql, NULL, p, 0, on_agg, a);
        return;
    }
    char *from = ldg_arena_alloc(ar, 12), *to = ldg_arena_alloc(ar, 12);
    day_text(a->from_day, from, 12, true);
    day_text(a->to_day, to, 12, true);
    ldg_qparams_add(p, ar, from);
    ldg_qparams_add(p, ar, a->type);
    ldg_qparams_add(p, ar, a->path);
    ldg_qparams_add(p, ar, to);
    ldg_qparams_add(p, ar, a->gran == GRAN_DAILY ? "1 day" : a->gran == GRAN_WEEKLY ? "7 days" : "1 month");
    ldg__query_run(req, a->project_id, "aggregated metrics", "Failed to retrieve aggregated metrics",
                   agg_buckets_sql, NULL, p, 0, on_agg, a);
}

static void respond_agg_cached(struct ldg_req *req, const char *value, size_t len, void *ud)
{
    ldg_req_json(req, 200, value, len);
}

static void agg_miss(struct ldg_req *req, const char *value, size_t len, void *ud)
{
    agg_run(req, ud);
}

static void agg_owned(struct ldg_req *req, void *ud)
{
    struct agg *a = ud;
    cache_get(req, a->project_id, a->key, respond_agg_cached, agg_miss, a);
}

static void handle_aggregated(struct ldg_req *req)
{
    struct agg *a = ldg_arena_alloc(&req->arena, sizeof *a);
    memset(a, 0, sizeof *a);
    const char *ptext = ldg__query_param(req, "project_id");
    if (!ptext) {
        ldg__query_422(req, "query", "project_id", "missing", "Field required", NULL);
        return;
    }
    if (ldg__query_int(req, "query", "project_id", ptext, 1, INT64_MAX / 10, &a->project_id) < 0)
        return;
    a->type = ldg__query_param(req, "type");
    if (!a->type) {
        ldg__query_422(req, "query", "type", "missing", "Field required", NULL);
        return;
    }
    if (strcmp(a->type, "exception") && strcmp(a->type, "endpoint") && strcmp(a->type, "log_volume")) {
        ldg__query_422(req, "query", "type", "enum",
                       "Input should be 'exception', 'endpoint' or 'log_volume'", a->type);
        return;
    }
    const char *period = ldg__query_param(req, "period");
    static const char *const periods[] = {"today",       "last7days",    "last30days",
                                          "currentWeek", "currentMonth", "currentYear"};
    int pi = -1;
    for (int i = 0; period && i < (int)LDG_ARRAY_SIZE(periods); i++)
        if (strcmp(period, periods[i]) == 0)
            pi = i;
    if (period && pi < 0) {
        ldg__query_422(req, "query", "period", "enum",
                       "Input should be 'today', 'last7days', 'last30days', 'currentWeek', 'currentMonth' or "
                       "'currentYear'",
                       period);
        return;
    }
    const char *pf = ldg__query_param(req, "periodFrom"), *pt = ldg__query_param(req, "periodTo");
    const char *names[] = {"periodFrom", "periodTo"};
    const char *vals[] = {pf, pt};
    for (int i = 0; i < 2; i++)
        if (vals[i] && parse_day(vals[i]) == -1) {
            ldg__query_422(req, "query", names[i], "string_pattern_mismatch",
                           "String should match pattern '^\\d{4}-\\d{2}-\\d{2}$'", vals[i]);
            return;
        }
    a->path = ldg__query_param(req, "endpointPath");
    if (a->path && !*a->path)
        a->path = NULL;
    if (a->path && strlen(a->path) > 500) {
        ldg__query_422(req, "query", "endpointPath", "string_too_long",
                       "String should have at most 500 characters", NULL);
        return;
    }
    /* the reference's checks, in its order (all 400) */
    int64_t today = ldg_wall_us() / 1000000 / 86400;
    if (!period && !(pf && pt)) {
        ldg_req_error(req, 400, "Either 'period' or both 'periodFrom' and 'periodTo' must be provided");
        return;
    }
    if (period && (pf || pt)) {
        ldg_req_error(req, 400, "Cannot use both 'period' and 'periodFrom'/'periodTo' parameters");
        return;
    }
    if (period) {
        struct ldg_civil c;
        ldg_civil_from_unix(today * 86400, &c);
        a->to_day = today;
        a->gran = GRAN_DAILY;
        switch (pi) {
        case 0:
            a->from_day = today;
            a->gran = GRAN_HOURLY;
            break;
        case 1:
            a->from_day = today - 6;
            break;
        case 2:
            a->from_day = today - 29;
            break;
        case 3:
            a->from_day = today - ((today + 3) % 7); /* Monday (1970-01-01 was a Thursday) */
            break;
        case 4:
            a->from_day = ldg_days_from_civil(c.year, c.mon, 1);
            break;
        default:
            a->from_day = ldg_days_from_civil(c.year, 1, 1);
            a->gran = GRAN_MONTHLY;
            break;
        }
    } else {
        for (int i = 0; i < 2; i++) {
            int64_t d = parse_day(vals[i]);
            char msg[96];
            if (d < 0) {
                snprintf(msg, sizeof msg, "%s must be in ISO 8601 format (YYYY-MM-DD)", names[i]);
                ldg_req_error(req, 400, msg);
                return;
            }
            if (d > today) {
                snprintf(msg, sizeof msg, "%s cannot be in the future", names[i]);
                ldg_req_error(req, 400, msg);
                return;
            }
            *(i ? &a->to_day : &a->from_day) = d;
        }
        if (a->from_day > a->to_day) {
            ldg_req_error(req, 400, "periodFrom must be before or equal to periodTo");
            return;
        }
        int64_t d = a->to_day - a->from_day;
        a->gran = d <= 1 ? GRAN_HOURLY : d <= 30 ? GRAN_DAILY : d <= 180 ? GRAN_WEEKLY : GRAN_MONTHLY;
    }
    day_text(a->from_day, a->from, sizeof a->from, false);
    day_text(a->to_day, a->to, sizeof a->to, false);
    char question[700], digest[LDG_SHA256_HEX_LEN + 1];
    int qn = snprintf(question, sizeof question, "%" PRId64 "|%s|%s|%s|%d|%s", a->project_id, a->type,
                      a->from, a->to, (int)a->gran, a->path ? a->path : "\x01");
    ldg_hex_sha256(question, (size_t)qn, digest);
    char key[128];
    snprintf(key, sizeof key, "qcache:aggregated:%" PRId64 ":%s", a->project_id, digest);
    a->key = ldg_arena_strndup(&req->arena, key, strlen(key));
    ldg__query_with_project(req, a->project_id, agg_owned, a);
}

/* ---- routes ------------------------------------------------------------------------------------------- */

void ldg__query_metrics_routes(struct ldg_router *r)
{
    static const struct {
        const char *pattern;
        ldg_handler_fn fn;
    } routes[] = {
        {"/api/v1/metrics/aggregated", handle_aggregated},
        {"/api/v1/metrics/error-rate", handle_error_rate},
        {"/api/v1/metrics/log-volume", handle_log_volume},
        {"/api/v1/metrics/top-errors", handle_top_errors},
        {"/api/v1/metrics/usage-stats", handle_usage_stats},
    };
    for (size_t i = 0; i < LDG_ARRAY_SIZE(routes); i++) {
        struct ldg_route_opts o = {0};
        int rc = ldg_router_add(r, "GET", routes[i].pattern, routes[i].fn, &o);
        LDG_ASSERT(rc == 0);
    }
}
