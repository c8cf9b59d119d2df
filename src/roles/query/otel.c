/*
 * otel.c: the query role's endpoints over what OTLP ingestion stores (docs/otlp.md, docs/api.md):
 * traces from `spans` (GET /api/v1/traces, GET /api/v1/traces/{trace_id},
 * GET /api/v1/metrics/span-latency) and metrics from `metric_points` (GET /api/v1/metrics/series,
 * GET /api/v1/metrics/query).
 *
 * Each answer is one JSON value built by PostgreSQL (json_build_object / json_agg) and passed
 * through. A span stored twice (an exporter retrying a request whose answer it lost) is counted
 * and shown once: rows are made distinct by span id when read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/str.h"
#include "roles/query/query_int.h"

struct tq {
    int64_t project_id;
    const char *sql;  /* arena */
    const char *name; /* a fixed sql's prepared statement name, or NULL */
    struct ldg_qparams p;
    const char *what, *failed;
    bool not_found_if_null;
};

static void on_result(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    (void)count;
    struct tq *q = ud;
    if (PQntuples(page) < 1 || PQgetisnull(page, 0, 0)) {
        ldg_req_error(req, 404, "Trace not found");
        return;
    }
    ldg_req_json(req, 200, PQgetvalue(page, 0, 0), (size_t)PQgetlength(page, 0, 0));
    (void)q;
}

static void on_owned(struct ldg_req *req, void *ud)
{
    struct tq *q = ud;
    if (q->name)
        ldg__query_run_prepared(req, q->name, q->what, q->failed, q->sql, &q->p, on_result, q);
    else
        ldg__query_run(req, q->what, q->failed, q->sql, NULL, &q->p, 0, on_result, q);
}

static struct tq *tq_new(struct ldg_req *req, const char *what, const char *failed)
{
    struct tq *q = ldg_arena_alloc(&req->arena, sizeof *q);
    memset(q, 0, sizeof *q);
    q->what = what;
    q->failed = failed;
    if (!ldg__query_project(req, &q->project_id))
        return NULL;
    ldg_qparams_add(&q->p, &req->arena, ldg__query_itoa(req, q->project_id)); /* $1 */
    return q;
}

static void finish(struct ldg_req *req, struct tq *q, struct ldg_buf *sql)
{
    ldg_buf_put(sql, "", 1);
    q->sql = ldg_arena_strndup(&req->arena, ldg_buf_head(sql), ldg_buf_size(sql) - 1);
    ldg_buf_free(sql);
    ldg__query_with_project(req, q->project_id, on_owned, q);
}

/* start_time / end_time (ISO 8601, checked by PostgreSQL: a bad one is a 400): the range
 * condition on `col`, by default the last 24 hours. */
static void time_range(struct ldg_req *req, struct tq *q, struct ldg_buf *sql, const char *col)
{
    int a = ldg_qparams_add(&q->p, &req->arena, ldg__query_param(req, "start_time"));
    int b = ldg_qparams_add(&q->p, &req->arena, ldg__query_param(req, "end_time"));
    ldg_buf_printf(sql,
                   " AND %s >= coalesce($%d::timestamptz, now() - interval '24 hours')"
                   " AND %s < coalesce($%d::timestamptz, now() + interval '5 minutes')",
                   col, a, col, b);
}

static void text_filter(struct ldg_req *req, struct tq *q, struct ldg_buf *sql, const char *param, const char *col)
{
    const char *v = ldg__query_param(req, param);
    if (v)
        ldg_buf_printf(sql, " AND %s = $%d::text", col, ldg_qparams_add(&q->p, &req->arena, v));
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- GET /api/v1/traces ------------------------------------------------------------------------- */

static void handle_list(struct ldg_req *req)
{
    struct tq *q = tq_new(req, "traces", "Failed to list traces");
    if (!q)
        return;
    int64_t limit = 50, min_ms = 0;
    if (ldg__query_int(req, "query", "limit", ldg__query_param(req, "limit"), 1, 500, &limit) < 0 ||
        ldg__query_int(req, "query", "min_duration_ms", ldg__query_param(req, "min_duration_ms"), 0,
                       INT64_MAX / 1000000, &min_ms) < 0)
        return;
    const char *errors = ldg__query_param(req, "errors_only");
    bool errors_only = errors && (strcmp(errors, "true") == 0 || strcmp(errors, "1") == 0);
    if (errors && !errors_only && strcmp(errors, "false") != 0 && strcmp(errors, "0") != 0) {
        ldg__query_422(req, "query", "errors_only", "bool_parsing", "Input should be a valid boolean", errors);
        return;
    }
    struct ldg_buf w;
    ldg_buf_init(&w);
    ldg_buf_puts(&w, "r.project_id = $1::bigint AND r.parent_span_id IS NULL");
    time_range(req, q, &w, "r.start_time");
    text_filter(req, q, &w, "service", "r.service");
    text_filter(req, q, &w, "operation", "r.name");
    if (min_ms > 0)
        ldg_buf_printf(&w, " AND r.duration_us >= $%d::bigint * 1000",
                       ldg_qparams_add(&q->p, &req->arena, ldg__query_itoa(req, min_ms)));
    if (errors_only)
        ldg_buf_puts(&w, " AND EXISTS (SELECT 1 FROM spans e WHERE e.project_id = r.project_id "
                         "AND e.trace_id = r.trace_id AND e.status_code = 2)");
    const char *cursor = ldg__query_param(req, "cursor");
    if (cursor) {
        const char *colon = strchr(cursor, ':');
        int64_t us = 0;
        bool ok = colon && colon > cursor && colon - cursor < 20 && is_hex(colon + 1, 32);
        for (const char *c = cursor; ok && c < colon; c++) {
            ok = *c >= '0' && *c <= '9';
            us = us * 10 + (*c - '0');
        }
        if (!ok) {
            ldg_buf_free(&w);
            ldg_req_error(req, 400, "Invalid cursor");
            return;
        }
        int a = ldg_qparams_add(&q->p, &req->arena, ldg__query_itoa(req, us));
        int b = ldg_qparams_add(&q->p, &req->arena, colon + 1);
        ldg_buf_printf(&w,
                       " AND (r.start_time, r.trace_id) < (timestamptz 'epoch' + $%d::bigint * interval '1 microsecond', "
                       "$%d::text)",
                       a, b);
    }
    int lim = ldg_qparams_add(&q->p, &req->arena, ldg__query_itoa(req, limit));
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(
        &sql,
        "SELECT json_build_object("
        "'traces', coalesce(json_agg(json_build_object('trace_id', x.trace_id, 'root_name', x.name, "
        "'service', x.service, 'start_time', x.start_time, 'duration_ms', x.duration_us / 1000.0, "
        "'span_count', x.span_count, 'error', x.error) ORDER BY x.n) FILTER (WHERE x.n <= $%d::int), '[]'), "
        "'next_cursor', max(CASE WHEN x.n = $%d::int AND x.more THEN x.us::text || ':' || x.trace_id END)) "
        "FROM (SELECT r.*, row_number() OVER (ORDER BY r.start_time DESC, r.trace_id DESC) AS n, "
        "count(*) OVER () > $%d::int AS more, "
        "(extract(epoch FROM r.start_time) * 1000000)::bigint AS us, "
        "(SELECT count(DISTINCT s.span_id) FROM spans s WHERE s.project_id = r.project_id AND s.trace_id = "
        "r.trace_id) AS span_count, "
        "EXISTS (SELECT 1 FROM spans s WHERE s.project_id = r.project_id AND s.trace_id = r.trace_id AND "
        "s.status_code = 2) AS error "
        "FROM (SELECT DISTINCT ON (r.start_time, r.trace_id) r.* FROM spans r WHERE %.*s "
        "ORDER BY r.start_time DESC, r.trace_id DESC LIMIT $%d::int + 1) r) x",
        lim, lim, lim, (int)ldg_buf_size(&w), ldg_buf_head(&w), lim);
    ldg_buf_free(&w);
    finish(req, q, &sql);
}

/* ---- GET /api/v1/traces/{trace_id} -------------------------------------------------------------- */

static void handle_one(struct ldg_req *req)
{
    struct ldg_str id = ldg_req_param(req, "trace_id");
    char tid[33];
    if (id.n != 32) {
        ldg_req_error(req, 404, "Trace not found");
        return;
    }
    for (size_t i = 0; i < 32; i++)
        tid[i] = (char)((id.p[i] >= 'A' && id.p[i] <= 'F') ? id.p[i] - 'A' + 'a' : id.p[i]);
    tid[32] = '\0';
    if (!is_hex(tid, 32)) {
        ldg_req_error(req, 404, "Trace not found");
        return;
    }
    struct tq *q = tq_new(req, "trace", "Failed to get trace");
    if (!q)
        return;
    int t = ldg_qparams_add(&q->p, &req->arena, ldg_arena_strndup(&req->arena, tid, 32));
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    /* Waterfall order: depth first from the roots (spans without a parent in the trace), children by
     * start time. */
    ldg_buf_printf(
        &sql,
        "WITH RECURSIVE s AS (SELECT DISTINCT ON (span_id) span_id, parent_span_id, name, kind, service, "
        "start_time, duration_us, status_code, status_message, attributes, events, "
        "lpad(((extract(epoch FROM start_time) * 1000000)::bigint)::text, 20, '0') || span_id AS k "
        "FROM spans WHERE project_id = $1::bigint AND trace_id = $%d::text ORDER BY span_id, ingested_at), "
        "t AS (SELECT s.*, 0 AS depth, ARRAY[s.k] AS path FROM s WHERE s.parent_span_id IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM s p WHERE p.span_id = s.parent_span_id) "
        "UNION ALL SELECT c.*, t.depth + 1, t.path || c.k FROM s c JOIN t ON c.parent_span_id = t.span_id "
        "WHERE t.depth < 256), "
        "x AS (SELECT t.*, min(t.start_time) OVER () AS t0 FROM t) "
        "SELECT CASE WHEN count(*) > 0 THEN json_build_object('trace_id', $%d::text, 'span_count', count(*), "
        "'start_time', min(x.start_time), "
        "'duration_ms', round((extract(epoch FROM max(x.start_time + x.duration_us * interval '1 microsecond') "
        "- min(x.start_time)) * 1000)::numeric, 3), "
        "'services', (SELECT coalesce(json_agg(DISTINCT service), '[]') FROM s WHERE service IS NOT NULL), "
        "'error', bool_or(x.status_code = 2), "
        "'spans', json_agg(json_build_object('span_id', x.span_id, 'parent_span_id', x.parent_span_id, "
        "'name', x.name, 'kind', x.kind, 'service', x.service, 'start_time', x.start_time, "
        "'offset_ms', round((extract(epoch FROM x.start_time - x.t0) * 1000)::numeric, 3), "
        "'duration_ms', x.duration_us / 1000.0, 'depth', x.depth, 'status_code', x.status_code, "
        "'status_message', x.status_message, 'attributes', x.attributes, 'events', x.events) "
        "ORDER BY x.path)) END FROM x",
        t, t);
    q->name = "qry_trace"; /* the same text every time ($2 is always the trace id) */
    finish(req, q, &sql);
}

/* ---- GET /api/v1/metrics/span-latency ----------------------------------------------------------- */

static void handle_latency(struct ldg_req *req)
{
    struct tq *q = tq_new(req, "span latency", "Failed to compute span latency");
    if (!q)
        return;
    struct ldg_buf w;
    ldg_buf_init(&w);
    ldg_buf_puts(&w, "project_id = $1::bigint");
    time_range(req, q, &w, "start_time");
    text_filter(req, q, &w, "service", "service");
    text_filter(req, q, &w, "operation", "name");
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(&sql,
                   "SELECT json_build_object('operations', coalesce(json_agg(json_build_object("
                   "'service', x.service, 'operation', x.name, 'count', x.n, 'error_count', x.errors, "
                   "'p50_ms', x.p50, 'p95_ms', x.p95, 'p99_ms', x.p99) ORDER BY x.n DESC, x.name), '[]')) "
                   "FROM (SELECT service, name, count(*) AS n, count(*) FILTER (WHERE status_code = 2) AS errors, "
                   "round((percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_us) / 1000)::numeric, 3) AS p50, "
                   "round((percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_us) / 1000)::numeric, 3) AS p95, "
                   "round((percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) / 1000)::numeric, 3) AS p99 "
                   "FROM (SELECT DISTINCT ON (trace_id, span_id) * FROM spans WHERE %.*s) d "
                   "GROUP BY service, name ORDER BY count(*) DESC, name LIMIT 200) x",
                   (int)ldg_buf_size(&w), ldg_buf_head(&w));
    ldg_buf_free(&w);
    finish(req, q, &sql);
}

/* ---- GET /api/v1/metrics/series ----------------------------------------------------------------- */

static void handle_series(struct ldg_req *req)
{
    struct tq *q = tq_new(req, "metric series", "Failed to list metric series");
    if (!q)
        return;
    struct ldg_buf w;
    ldg_buf_init(&w);
    ldg_buf_puts(&w, "project_id = $1::bigint");
    time_range(req, q, &w, "\"time\"");
    text_filter(req, q, &w, "service", "service");
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(&sql,
                   "WITH m AS (SELECT name, type, unit, temporality, monotonic, service, \"time\", attributes "
                   "FROM metric_points WHERE %.*s) "
                   "SELECT json_build_object('series', coalesce(json_agg(json_build_object('name', s.name, "
                   "'type', s.type, 'unit', s.unit, 'temporality', CASE s.temporality WHEN 1 THEN 'delta' "
                   "WHEN 2 THEN 'cumulative' END, 'monotonic', s.monotonic, 'points', s.n, 'last_time', s.last, "
                   "'services', s.services, 'attribute_keys', coalesce(k.keys, '[]'::json)) "
                   "ORDER BY s.name, s.type), '[]')) "
                   "FROM (SELECT name, type, max(unit) AS unit, max(temporality) AS temporality, "
                   "bool_or(monotonic) AS monotonic, count(*) AS n, max(\"time\") AS last, "
                   "coalesce(json_agg(DISTINCT service) FILTER (WHERE service IS NOT NULL), '[]') AS services "
                   "FROM m GROUP BY name, type) s "
                   "LEFT JOIN (SELECT name, type, json_agg(DISTINCT key ORDER BY key) AS keys "
                   "FROM m, jsonb_object_keys(m.attributes) AS key GROUP BY name, type) k USING (name, type)",
                   (int)ldg_buf_size(&w), ldg_buf_head(&w));
    ldg_buf_free(&w);
    finish(req, q, &sql);
}

/* ---- GET /api/v1/metrics/query ------------------------------------------------------------------ */

/* interval: seconds, or a number with s, m, h or d; 1 s .. 31 days. 0 when invalid. */
static int64_t parse_interval(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0)
        return 0;
    int64_t mul = *end == '\0' || strcmp(end, "s") == 0 ? 1
                  : strcmp(end, "m") == 0                 ? 60
                  : strcmp(end, "h") == 0                 ? 3600
                  : strcmp(end, "d") == 0                 ? 86400
                                                          : 0;
    if (!mul || v > 31LL * 86400 / mul)
        return 0;
    return v * mul;
}

/*
 * avg, sum, min, max and rate by whole hours: from the hourly rollups (schema logs/0011) for the
 * hours the analytics role rolled up and that lie wholly in the range (plus their points stored
 * after the rollup's cutoff), from the points for every other hour. Both become partial rows of the same shape, one per series and hour (a point is its
 * own partial), and the aggregation combines partials: for every bucket of whole hours this gives
 * the same numbers as the points alone (rate's increase of a cumulative sum is max - min per
 * series and bucket, which the hourly maxima and minima preserve).
 */
static void query_rollups(struct ldg_req *req, struct tq *q, const char *name, const char *agg, size_t ai,
                          int64_t iv)
{
    static const char *const value_exprs[] = {
        "CASE WHEN max(type) = 'histogram' THEN sum(h_sum) / nullif(sum(h_count), 0) "
        "ELSE sum(v_sum) / nullif(sum(n_v), 0) END",
        "CASE WHEN max(type) = 'histogram' THEN sum(h_sum) ELSE sum(v_sum) END",
        "CASE WHEN max(type) = 'histogram' THEN min(h_min) ELSE min(v_min) END",
        "CASE WHEN max(type) = 'histogram' THEN max(h_max) ELSE max(v_max) END",
    };
    const char *group_by = ldg__query_param(req, "group_by");
    const char *service = ldg__query_param(req, "service");
    int pn = ldg_qparams_add(&q->p, &req->arena, name);
    int pa = ldg_qparams_add(&q->p, &req->arena, agg);
    int pi = ldg_qparams_add(&q->p, &req->arena, ldg__query_itoa(req, iv));
    int pg = ldg_qparams_add(&q->p, &req->arena, group_by);
    int ps = ldg_qparams_add(&q->p, &req->arena, ldg__query_param(req, "start_time"));
    int pe = ldg_qparams_add(&q->p, &req->arena, ldg__query_param(req, "end_time"));
    int psv = ldg_qparams_add(&q->p, &req->arena, service);
    struct ldg_buf w;
    ldg_buf_init(&w);
    ldg_buf_printf(&w, "project_id = $1::bigint AND name = $%d::text", pn);
    time_range(req, q, &w, "\"time\"");
    text_filter(req, q, &w, "service", "service");
    struct ldg_buf rows;
    ldg_buf_init(&rows);
    if (ai < 4)
        ldg_buf_printf(&rows, "SELECT b, g, (%s)::float8 AS v FROM p GROUP BY b, g", value_exprs[ai]);
    else
        ldg_buf_printf(&rows,
                       "SELECT b, g, sum(inc) / $%d::float8 AS v FROM (SELECT b, g, "
                       "CASE WHEN max(type) = 'histogram' THEN "
                       "CASE WHEN max(temporality) = 2 THEN max(h_count_max) - min(h_count_min) ELSE sum(h_count) END "
                       "ELSE CASE WHEN max(temporality) = 2 THEN max(v_max) - min(v_min) ELSE sum(v_sum) END END "
                       "AS inc FROM p GROUP BY b, g, attributes::text) s GROUP BY b, g",
                       pi);
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(&sql,
                   "WITH hrs AS (SELECT hour, upto FROM metric_rollup_hours WHERE "
                   "hour >= coalesce($%d::timestamptz, now() - interval '24 hours') AND "
                   "hour + interval '1 hour' <= coalesce($%d::timestamptz, now() + interval '5 minutes')), "
                   "pr AS (SELECT r.hour AS t, r.type, r.unit, r.temporality, r.attributes, r.n_v, r.v_sum, r.v_min, "
                   "r.v_max, r.h_count, r.h_count_min, r.h_count_max, r.h_sum, r.h_min, r.h_max FROM metric_rollups r "
                   "WHERE r.project_id = $1::bigint AND r.name = $%d::text AND r.hour IN (SELECT hour FROM hrs) "
                   "AND ($%d::text IS NULL OR r.service = $%d::text) "
                   "UNION ALL SELECT \"time\", type, unit, temporality, attributes, (value IS NOT NULL)::int, value, "
                   "value, value, count, count, count, sum, min, max FROM metric_points m WHERE %.*s AND NOT EXISTS "
                   "(SELECT 1 FROM hrs WHERE hrs.hour = to_timestamp(floor(extract(epoch FROM m.\"time\") / 3600) * "
                   "3600) AND m.ingested_at < hrs.upto)), "
                   "p AS (SELECT *, to_timestamp(floor(extract(epoch FROM t) / $%d::float8) * $%d::float8) AS b, "
                   "CASE WHEN $%d::text IS NULL THEN NULL ELSE attributes ->> $%d::text END AS g FROM pr), "
                   "r AS (%.*s ORDER BY 1, 2 LIMIT 10000) "
                   "SELECT json_build_object('name', $%d::text, 'type', (SELECT max(type) FROM p), "
                   "'unit', (SELECT max(unit) FROM p), 'aggregation', $%d::text, 'interval_s', $%d::bigint, "
                   "'group_by', $%d::text, 'data', coalesce((SELECT json_agg(json_build_object('time', r.b, "
                   "'group', r.g, 'value', r.v) ORDER BY r.b, r.g) FROM r), '[]'))",
                   ps, pe, pn, psv, psv, (int)ldg_buf_size(&w), ldg_buf_head(&w), pi, pi, pg, pg,
                   (int)ldg_buf_size(&rows), ldg_buf_head(&rows), pn, pa, pi, pg);
    ldg_buf_free(&w);
    ldg_buf_free(&rows);
    finish(req, q, &sql);
}

static void handle_query(struct ldg_req *req)
{
    static const char *const aggs[] = {"avg", "sum", "min", "max", "rate", "p50", "p95", "p99"};
    struct tq *q = tq_new(req, "metric query", "Failed to query metric");
    if (!q)
        return;
    const char *name = ldg__query_param(req, "name");
    if (!name || !*name) {
        ldg__query_422(req, "query", "name", "missing", "Field required", NULL);
        return;
    }
    const char *agg = ldg__query_param(req, "aggregation");
    if (!agg)
        agg = "avg";
    size_t ai = 0;
    while (ai < LDG_ARRAY_SIZE(aggs) && strcmp(aggs[ai], agg) != 0)
        ai++;
    if (ai == LDG_ARRAY_SIZE(aggs)) {
        ldg__query_422(req, "query", "aggregation", "enum",
                       "Input should be 'avg', 'sum', 'min', 'max', 'rate', 'p50', 'p95' or 'p99'", agg);
        return;
    }
    const char *ivs = ldg__query_param(req, "interval");
    int64_t iv = ivs ? parse_interval(ivs) : 60;
    if (!iv) {
        ldg__query_422(req, "query", "interval", "value_error",
                       "Interval must be seconds or a number with s, m, h or d, at most 31 days", ivs);
        return;
    }
    if (iv % 3600 == 0 && ai <= 4) {
        query_rollups(req, q, name, agg, ai, iv);
        return;
    }
    const char *group_by = ldg__query_param(req, "group_by");
    int pn = ldg_qparams_add(&q->p, &req->arena, name);
    int pa = ldg_qparams_add(&q->p, &req->arena, agg);
    int pi = ldg_qparams_add(&q->p, &req->arena, ldg__query_itoa(req, iv));
    int pg = ldg_qparams_add(&q->p, &req->arena, group_by);
    struct ldg_buf w;
    ldg_buf_init(&w);
    ldg_buf_printf(&w, "project_id = $1::bigint AND name = $%d::text", pn);
    time_range(req, q, &w, "\"time\"");
    text_filter(req, q, &w, "service", "service");
    const char *value_expr = NULL;
    double quant = 0;
    switch (ai) {
    case 0:
        value_expr = "CASE WHEN max(type) = 'histogram' THEN sum(sum) / nullif(sum(count), 0) ELSE avg(value) END";
        break;
    case 1:
        value_expr = "CASE WHEN max(type) = 'histogram' THEN sum(sum) ELSE sum(value) END";
        break;
    case 2:
        value_expr = "CASE WHEN max(type) = 'histogram' THEN min(min) ELSE min(value) END";
        break;
    case 3:
        value_expr = "CASE WHEN max(type) = 'histogram' THEN max(max) ELSE max(value) END";
        break;
    case 5:
        quant = 0.5;
        break;
    case 6:
        quant = 0.95;
        break;
    case 7:
        quant = 0.99;
        break;
    default:
        break;
    }
    struct ldg_buf rows;
    ldg_buf_init(&rows);
    if (value_expr) {
        ldg_buf_printf(&rows, "SELECT b, g, (%s)::float8 AS v FROM p GROUP BY b, g", value_expr);
    } else if (ai == 4) { /* rate: per series, the increase over the bucket (cumulative) or the sum (delta) */
        ldg_buf_printf(&rows,
                       "SELECT b, g, sum(inc) / $%d::float8 AS v FROM (SELECT b, g, "
                       "CASE WHEN max(type) = 'histogram' THEN "
                       "CASE WHEN max(temporality) = 2 THEN max(count) - min(count) ELSE sum(count) END "
                       "ELSE CASE WHEN max(temporality) = 2 THEN max(value) - min(value) ELSE sum(value) END END "
                       "AS inc FROM p GROUP BY b, g, attributes::text) s GROUP BY b, g",
                       pi);
    } else {
        char qs[16];
        snprintf(qs, sizeof qs, "%.2f", quant);
        /* gauges and sums: over the values; histograms: the upper bound of the bucket where the
         * merged counts reach the quantile (the largest value seen for the overflow bucket) */
        ldg_buf_printf(&rows,
                       "SELECT b, g, percentile_cont(%s) WITHIN GROUP (ORDER BY value) AS v FROM p "
                       "WHERE type <> 'histogram' GROUP BY b, g "
                       "UNION ALL SELECT b, g, min(bnd) FILTER (WHERE run >= %s * total AND total > 0) FROM "
                       "(SELECT b, g, coalesce(bnd, mx) AS bnd, sum(c) OVER (PARTITION BY b, g ORDER BY i) AS run, "
                       "sum(c) OVER (PARTITION BY b, g) AS total FROM "
                       "(SELECT p.b, p.g, u.i, sum(u.c) AS c, max(p.bounds[u.i]) AS bnd, max(p.max) AS mx "
                       "FROM p, unnest(p.bucket_counts) WITH ORDINALITY AS u(c, i) WHERE p.type = 'histogram' "
                       "GROUP BY p.b, p.g, u.i) hb) cum GROUP BY b, g",
                       qs, qs);
    }
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(&sql,
                   "WITH p AS (SELECT *, to_timestamp(floor(extract(epoch FROM \"time\") / $%d::float8) * "
                   "$%d::float8) AS b, CASE WHEN $%d::text IS NULL THEN NULL ELSE attributes ->> $%d::text END AS g "
                   "FROM metric_points WHERE %.*s), "
                   "r AS (%.*s ORDER BY 1, 2 LIMIT 10000) "
                   "SELECT json_build_object('name', $%d::text, 'type', (SELECT max(type) FROM p), "
                   "'unit', (SELECT max(unit) FROM p), 'aggregation', $%d::text, 'interval_s', $%d::bigint, "
                   "'group_by', $%d::text, 'data', coalesce((SELECT json_agg(json_build_object('time', r.b, "
                   "'group', r.g, 'value', r.v) ORDER BY r.b, r.g) FROM r), '[]'))",
                   pi, pi, pg, pg, (int)ldg_buf_size(&w), ldg_buf_head(&w), (int)ldg_buf_size(&rows),
                   ldg_buf_head(&rows), pn, pa, pi, pg);
    ldg_buf_free(&w);
    ldg_buf_free(&rows);
    finish(req, q, &sql);
}

void ldg__query_traces_routes(struct ldg_router *r)
{
    static const struct {
        const char *pattern;
        ldg_handler_fn fn;
    } routes[] = {
        {"/api/v1/traces", handle_list},
        {"/api/v1/traces/{trace_id}", handle_one},
        {"/api/v1/metrics/span-latency", handle_latency},
        {"/api/v1/metrics/series", handle_series},
        {"/api/v1/metrics/query", handle_query},
    };
    for (size_t i = 0; i < LDG_ARRAY_SIZE(routes); i++) {
        struct ldg_route_opts o = {0};
        int rc = ldg_router_add(r, "GET", routes[i].pattern, routes[i].fn, &o);
        LDG_ASSERT(rc == 0);
    }
}
