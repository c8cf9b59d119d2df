/*
 * otel.c: the query role's endpoints over what OTLP ingestion stores (docs/otlp.md, docs/api.md):
 * traces from `spans` (GET /api/v1/traces, GET /api/v1/traces/{trace_id},
 * GET /api/v1/metrics/span-latency) and metrics from `metric_points` (GET /api/v1/metrics/series,
 * GET /api/v1/metrics/query).
 *
 * Each answer is one JSON value built by PostgreSQL (json_build_object / json_agg) and passed
 * through, except one trace's waterfall, ordered and written here from its rows. A span stored twice (an exporter retrying a request whose answer it lost) is counted
 * and shown once: rows are made distinct by span id when read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/str.h"
#include "roles/query/query_int.h"

struct tq {
    int64_t project_id;
    const char *sql;  /* arena */
    const char *trace_id; /* GET /api/v1/traces/{trace_id}: the id (arena) */
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
    ldg__query_run(req, q->project_id, q->what, q->failed, q->sql, NULL, &q->p, 0, on_result, q);
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

/* ---- GET /api/v1/traces/{trace_id} --------------------------------------------------------------
 *
 * PostgreSQL returns the trace's spans (each span id once: the first stored copy), one index
 * lookup per month of spans, by a prepared statement; the waterfall is ordered here: depth first
 * from the roots (spans without a parent in the trace), children by start time then span id,
 * at most 256 levels deep (a span whose parents form a cycle is never reached, as before). */

#define TRACE_MAX_DEPTH 256

enum { TC_ID, TC_PARENT, TC_NAME, TC_KIND, TC_SERVICE, TC_START, TC_START_US, TC_DUR, TC_STATUS, TC_MSG, TC_ATTRS,
       TC_EVENTS };

static const char trace_rows_sql[] =
    "SELECT DISTINCT ON (span_id) span_id, parent_span_id, name, kind, service, to_json(start_time)::text, "
    "(extract(epoch FROM start_time) * 1000000)::bigint, duration_us, status_code, status_message, "
    "coalesce(attributes::text, 'null'), coalesce(events::text, 'null') "
    "FROM spans WHERE project_id = $1::bigint AND trace_id = $2::text ORDER BY span_id, ingested_at";

struct wnode {
    int64_t start_us, end_us;
    int parent;             /* row of the parent span in the trace, or -1 */
    int child, last, next;  /* first child, last child, next sibling (rows), -1 for none */
};

struct wkey {
    int64_t start_us;
    const char *id;
    int row;
};

static int by_start(const void *a, const void *b)
{
    const struct wkey *x = a, *y = b;
    if (x->start_us != y->start_us)
        return x->start_us < y->start_us ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The row of span id `id` among the n rows (sorted by span id), or -1. */
static int find_span(const PGresult *res, int n, const char *id)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(PQgetvalue(res, mid, TC_ID), id);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void put_text_or_null(struct ldg_json_writer *jw, const PGresult *res, int r, int col)
{
    if (PQgetisnull(res, r, col))
        ldg_json_null(jw);
    else
        ldg_json_strn(jw, PQgetvalue(res, r, col), (size_t)PQgetlength(res, r, col));
}

static void put_ms(struct ldg_json_writer *jw, int64_t us)
{
    char v[40];
    int len = snprintf(v, sizeof v, "%.3f", (double)us / 1000.0);
    ldg_json_raw(jw, v, (size_t)len);
}

static void on_trace_rows(struct ldg_req *req, PGresult *res, PGresult *count, void *ud)
{
    (void)count;
    struct tq *q = ud;
    int n = PQntuples(res);
    if (n < 1 || PQnfields(res) != TC_EVENTS + 1) {
        ldg_req_error(req, 404, "Trace not found");
        return;
    }
    struct wnode *nd = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *nd);
    struct wkey *keys = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *keys);
    int *order = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *order);
    int *stack = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *stack);
    int *depth = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *depth);
    int *out = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *out);
    for (int i = 0; i < n; i++) {
        nd[i].start_us = strtoll(PQgetvalue(res, i, TC_START_US), NULL, 10);
        nd[i].end_us = nd[i].start_us + strtoll(PQgetvalue(res, i, TC_DUR), NULL, 10);
        nd[i].parent = PQgetisnull(res, i, TC_PARENT) ? -1 : find_span(res, n, PQgetvalue(res, i, TC_PARENT));
        if (nd[i].parent == i)
            nd[i].parent = -1; /* its own parent: a root */
        nd[i].child = nd[i].last = nd[i].next = -1;
        keys[i] = (struct wkey){nd[i].start_us, PQgetvalue(res, i, TC_ID), i};
    }
    qsort(keys, (size_t)n, sizeof *keys, by_start);
    for (int k = 0; k < n; k++)
        order[k] = keys[k].row;
    /* children lists (and the roots, in order[] itself) in start order */
    int nroots = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k], p = nd[i].parent;
        if (p < 0) {
            order[nroots++] = i; /* order[] below k is no longer read: reuse it for the roots */
            continue;
        }
        if (nd[p].last < 0)
            nd[p].child = i;
        else
            nd[nd[p].last].next = i;
        nd[p].last = i;
    }
    /* depth first, children in start order; every span is reached once at most (a tree) */
    int nout = 0;
    for (int r = 0; r < nroots; r++) {
        int sp = 0;
        stack[sp] = order[r];
        depth[order[r]] = 0;
        sp = 1;
        while (sp > 0) {
            int i = stack[--sp];
            out[nout++] = i;
            if (depth[i] >= TRACE_MAX_DEPTH)
                continue;
            /* push the children in reverse start order so that the earliest is visited first */
            int m = 0;
            for (int c = nd[i].child; c >= 0; c = nd[c].next)
                m++;
            int at = sp + m;
            for (int c = nd[i].child; c >= 0; c = nd[c].next) {
                stack[--at] = c;
                depth[c] = depth[i] + 1;
            }
            sp += m;
        }
    }
    if (nout == 0) {
        ldg_req_error(req, 404, "Trace not found");
        return;
    }
    int64_t t0 = INT64_MAX, t1 = INT64_MIN;
    int first = out[0];
    bool error = false;
    for (int k = 0; k < nout; k++) {
        int i = out[k];
        if (nd[i].start_us < t0) {
            t0 = nd[i].start_us;
            first = i;
        }
        if (nd[i].end_us > t1)
            t1 = nd[i].end_us;
        error |= strcmp(PQgetvalue(res, i, TC_STATUS), "2") == 0;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "trace_id");
    ldg_json_str(&jw, q->trace_id);
    ldg_json_key(&jw, "span_count");
    ldg_json_int(&jw, nout);
    ldg_json_key(&jw, "start_time");
    ldg_json_raw(&jw, PQgetvalue(res, first, TC_START), (size_t)PQgetlength(res, first, TC_START));
    ldg_json_key(&jw, "duration_ms");
    put_ms(&jw, t1 - t0);
    ldg_json_key(&jw, "services"); /* distinct, sorted (C collation, as PostgreSQL's DISTINCT here) */
    ldg_json_arr_begin(&jw);
    {
        const char **sv = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *sv);
        int ns = 0;
        for (int i = 0; i < n; i++)
            if (!PQgetisnull(res, i, TC_SERVICE))
                sv[ns++] = PQgetvalue(res, i, TC_SERVICE);
        qsort(sv, (size_t)ns, sizeof *sv, cmp_str);
        for (int i = 0; i < ns; i++)
            if (i == 0 || strcmp(sv[i], sv[i - 1]) != 0)
                ldg_json_str(&jw, sv[i]);
    }
    ldg_json_arr_end(&jw);
    ldg_json_key(&jw, "error");
    ldg_json_bool(&jw, error);
    ldg_json_key(&jw, "spans");
    ldg_json_arr_begin(&jw);
    for (int k = 0; k < nout; k++) {
        int i = out[k];
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "span_id");
        put_text_or_null(&jw, res, i, TC_ID);
        ldg_json_key(&jw, "parent_span_id");
        put_text_or_null(&jw, res, i, TC_PARENT);
        ldg_json_key(&jw, "name");
        put_text_or_null(&jw, res, i, TC_NAME);
        ldg_json_key(&jw, "kind");
        ldg_json_raw(&jw, PQgetvalue(res, i, TC_KIND), (size_t)PQgetlength(res, i, TC_KIND));
        ldg_json_key(&jw, "service");
        put_text_or_null(&jw, res, i, TC_SERVICE);
        ldg_json_key(&jw, "start_time");
        ldg_json_raw(&jw, PQgetvalue(res, i, TC_START), (size_t)PQgetlength(res, i, TC_START));
        ldg_json_key(&jw, "offset_ms");
        put_ms(&jw, nd[i].start_us - t0);
        ldg_json_key(&jw, "duration_ms");
        put_ms(&jw, nd[i].end_us - nd[i].start_us);
        ldg_json_key(&jw, "depth");
        ldg_json_int(&jw, depth[i]);
        ldg_json_key(&jw, "status_code");
        ldg_json_raw(&jw, PQgetvalue(res, i, TC_STATUS), (size_t)PQgetlength(res, i, TC_STATUS));
        ldg_json_key(&jw, "status_message");
        put_text_or_null(&jw, res, i, TC_MSG);
        ldg_json_key(&jw, "attributes");
        ldg_json_raw(&jw, PQgetvalue(res, i, TC_ATTRS), (size_t)PQgetlength(res, i, TC_ATTRS));
        ldg_json_key(&jw, "events");
        ldg_json_raw(&jw, PQgetvalue(res, i, TC_EVENTS), (size_t)PQgetlength(res, i, TC_EVENTS));
        ldg_json_obj_end(&jw);
    }
    ldg_json_arr_end(&jw);
    ldg_json_obj_end(&jw);
    ldg_req_json(req, 200, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

static void on_trace_owned(struct ldg_req *req, void *ud)
{
    struct tq *q = ud;
    ldg__query_run_prepared(req, q->project_id, "qry_trace_rows", q->what, q->failed, trace_rows_sql, &q->p, on_trace_rows, q);
}

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
    q->trace_id = ldg_arena_strndup(&req->arena, tid, 32);
    ldg_qparams_add(&q->p, &req->arena, q->trace_id); /* $2 */
    ldg__query_with_project(req, q->project_id, on_trace_owned, q);
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
