/*
 * explore.c: what the log explorer draws next to its rows (docs/query.md "Histogram and facets").
 *
 *   GET /api/v1/logs/histogram  log counts per time bucket and level over a range
 *   GET /api/v1/logs/facets     log counts per level and per log type over a range
 *
 * Both take the scope of ldg__query_scope (project, required range [start, end), `q`, level and
 * log_type filters), check ownership like every query endpoint, and run one statement under the
 * statement timeout. Zero counts are filled in here, not in SQL: the statement only returns the
 * groups that exist, at most buckets x 5 rows (histogram) or 5 + 7 rows (facets).
 *
 * Facets follow the usual faceted-search rule: each facet's counts apply every filter but its own
 * (the level counts ignore `level`, the type counts ignore `log_type`), so a client can show what
 * picking another value would add. One scan answers both through GROUPING SETS with a FILTER per
 * set.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "query/bucket.h"
#include "roles/query/query_int.h"

#define G ldg__query

#define NLEVELS 5
#define NTYPES 7
#define INTERVAL_MAX_S (366LL * 86400 * 10) /* ten years: any wider is one bucket anyway */

static int index_of(const char *const *names, const char *v)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], v) == 0)
            return i;
    return -1;
}

/* ---- GET /api/v1/logs/histogram ----------------------------------------------------------------- */

struct histogram {
    struct ldg_query_scope sc;
    int64_t width_s;
    int64_t first, count; /* bucket indexes (start / width_s) */
};

static void on_histogram(struct ldg_req *req, PGresult *res, PGresult *unused, void *ud)
{
    struct histogram *h = ud;
    int64_t *n = ldg_arena_alloc(&req->arena, (size_t)h->count * NLEVELS * sizeof *n);
    memset(n, 0, (size_t)h->count * NLEVELS * sizeof *n);
    for (int r = 0; r < PQntuples(res); r++) {
        int64_t b = strtoll(PQgetvalue(res, r, 0), NULL, 10) - h->first;
        int lv = index_of(ldg__query_levels, PQgetvalue(res, r, 1));
        if (b >= 0 && b < h->count && lv >= 0)
            n[b * NLEVELS + lv] += strtoll(PQgetvalue(res, r, 2), NULL, 10);
    }
    struct ldg_buf out;
    ldg_buf_init(&out);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &out);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "project_id");
    ldg_json_int(&jw, h->sc.project_id);
    ldg_json_key(&jw, "start_time");
    ldg__query_write_ts(&jw, h->sc.from_us);
    ldg_json_key(&jw, "end_time");
    ldg__query_write_ts(&jw, h->sc.to_us);
    ldg_json_key(&jw, "interval_s");
    ldg_json_int(&jw, h->width_s);
    ldg_json_key(&jw, "buckets");
    ldg_json_arr_begin(&jw);
    for (int64_t b = 0; b < h->count; b++) {
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "timestamp");
        ldg__query_write_ts(&jw, (h->first + b) * h->width_s * 1000000);
        for (int lv = 0; lv < NLEVELS; lv++) {
            ldg_json_key(&jw, ldg__query_levels[lv]);
            ldg_json_int(&jw, n[b * NLEVELS + lv]);
        }
        ldg_json_obj_end(&jw);
    }
    ldg_json_arr_end(&jw);
    ldg_json_obj_end(&jw);
    ldg_req_json(req, 200, ldg_buf_head(&out), ldg_buf_size(&out));
    ldg_buf_free(&out);
}

static void run_histogram(struct ldg_req *req, void *ud)
{
    struct histogram *h = ud;
    struct ldg_arena *a = &req->arena;
    int kw = ldg_qparams_add(&h->sc.params, a, ldg__query_itoa(req, h->width_s));
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(&sql,
                   "SELECT floor(extract(epoch FROM \"timestamp\") / $%d::bigint)::bigint AS b, level, "
                   "count(*) FROM logs WHERE %s%s%s GROUP BY 1, 2",
                   kw, h->sc.where_sql, h->sc.level_sql, h->sc.log_type_sql);
    const char *text = ldg_arena_strndup(a, ldg_buf_head(&sql), ldg_buf_size(&sql));
    ldg_buf_free(&sql);
    ldg__query_run(req, h->sc.project_id, "log histogram", "Failed to count logs", text, NULL, &h->sc.params,
                   0, on_histogram, h);
}

static void handle_histogram(struct ldg_req *req)
{
    struct histogram *h = ldg_arena_alloc(&req->arena, sizeof *h);
    memset(h, 0, sizeof *h);
    const char *interval = ldg__query_param(req, "interval_s");
    const char *buckets = ldg__query_param(req, "buckets");
    int64_t target = LDG_BUCKET_DEFAULT;
    if (ldg__query_int(req, "query", "interval_s", interval, 1, INTERVAL_MAX_S, &h->width_s) < 0 ||
        ldg__query_int(req, "query", "buckets", buckets, 1, LDG_BUCKET_MAX, &target) < 0)
        return;
    if (interval && buckets) {
        ldg_req_error(req, 400, "Cannot use both 'interval_s' and 'buckets' parameters");
        return;
    }
    if (!ldg__query_scope(req, &h->sc))
        return;
    if (!interval)
        h->width_s = ldg_bucket_pick(h->sc.from_us, h->sc.to_us, target);
    ldg_bucket_span(h->sc.from_us, h->sc.to_us, h->width_s, &h->first, &h->count);
    if (h->count > LDG_BUCKET_MAX) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "Too many buckets: %" PRId64 " of %" PRId64 " s over this range (at most %d); widen interval_s "
                 "or narrow the range",
                 h->count, h->width_s, LDG_BUCKET_MAX);
        ldg_req_error(req, 400, msg);
        return;
    }
    ldg__query_with_project(req, h->sc.project_id, run_histogram, h);
}

/* ---- GET /api/v1/logs/facets -------------------------------------------------------------------- */

static void on_facets(struct ldg_req *req, PGresult *res, PGresult *unused, void *ud)
{
    struct ldg_query_scope *sc = ud;
    int64_t lv[NLEVELS] = {0}, ty[NTYPES] = {0};
    for (int r = 0; r < PQntuples(res); r++) {
        bool by_type = strcmp(PQgetvalue(res, r, 0), "1") == 0; /* GROUPING(level): level not grouped */
        if (by_type) {
            int i = index_of(ldg__query_log_types, PQgetvalue(res, r, 2));
            if (i >= 0)
                ty[i] = strtoll(PQgetvalue(res, r, 4), NULL, 10);
        } else {
            int i = index_of(ldg__query_levels, PQgetvalue(res, r, 1));
            if (i >= 0)
                lv[i] = strtoll(PQgetvalue(res, r, 3), NULL, 10);
        }
    }
    struct ldg_buf out;
    ldg_buf_init(&out);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &out);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "project_id");
    ldg_json_int(&jw, sc->project_id);
    ldg_json_key(&jw, "levels");
    ldg_json_obj_begin(&jw);
    for (int i = 0; i < NLEVELS; i++) {
        ldg_json_key(&jw, ldg__query_levels[i]);
        ldg_json_int(&jw, lv[i]);
    }
    ldg_json_obj_end(&jw);
    ldg_json_key(&jw, "log_types");
    ldg_json_obj_begin(&jw);
    for (int i = 0; i < NTYPES; i++) {
        ldg_json_key(&jw, ldg__query_log_types[i]);
        ldg_json_int(&jw, ty[i]);
    }
    ldg_json_obj_end(&jw);
    ldg_json_obj_end(&jw);
    ldg_req_json(req, 200, ldg_buf_head(&out), ldg_buf_size(&out));
    ldg_buf_free(&out);
}

static void run_facets(struct ldg_req *req, void *ud)
{
    struct ldg_query_scope *sc = ud;
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    /* Level rows count under the log_type filter only, type rows under the level filter only. */
    ldg_buf_printf(&sql,
                   "SELECT GROUPING(level), level, log_type, count(*) FILTER (WHERE true%s), "
                   "count(*) FILTER (WHERE true%s) FROM logs WHERE %s GROUP BY GROUPING SETS ((level), "
                   "(log_type))",
                   sc->log_type_sql, sc->level_sql, sc->where_sql);
    const char *text = ldg_arena_strndup(&req->arena, ldg_buf_head(&sql), ldg_buf_size(&sql));
    ldg_buf_free(&sql);
    ldg__query_run(req, sc->project_id, "log facets", "Failed to count logs", text, NULL, &sc->params, 0,
                   on_facets, sc);
}

static void handle_facets(struct ldg_req *req)
{
    struct ldg_query_scope *sc = ldg_arena_alloc(&req->arena, sizeof *sc);
    if (!ldg__query_scope(req, sc))
        return;
    ldg__query_with_project(req, sc->project_id, run_facets, sc);
}

/* ---- routes ----------------------------------------------------------------------------------------- */

void ldg__query_explore_routes(struct ldg_router *r)
{
    struct ldg_route_opts o = {.flags = 0, .max_body_bytes = 0};
    int rc = ldg_router_add(r, "GET", "/api/v1/logs/histogram", handle_histogram, &o);
    LDG_ASSERT(rc == 0);
    rc = ldg_router_add(r, "GET", "/api/v1/logs/facets", handle_facets, &o);
    LDG_ASSERT(rc == 0);
}
