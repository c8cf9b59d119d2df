/*
 * alerting.c: the alerting jobs of the analytics role (see alerting.h, docs/alerts.md).
 *
 * Evaluator: one statement lists the enabled rules with what decides them (maintenance window,
 * snooze, cool-down, current state); the rules of one project (up to GROUP_MAX) are computed by
 * one statement on the logs database that scans the project's logs over the group's longest window
 * once. Rules are reduced to distinct aggregates first: each window, filter (compiled by the search
 * language), error flag and endpoint duration is computed once per row in a subquery, and each
 * distinct (window, filter, kind) is one aggregate over those columns, however many rules share it
 * (error_rate is count and error count, divided here); alert_eval_concurrency such statements run
 * at once. Values that do not change
 * the state are written with one statement per group. A transition is one guarded statement on the rule
 * (state = 'ok' → 'firing' inserts an event; 'firing' → 'ok' resolves it), so a pass that runs twice changes
 * nothing twice. Only transitions notify: a rule that keeps breaching stays quiet.
 *
 * Monitor checker: late heartbeats go down in one statement; due http monitors are requested
 * through the worker's outgoing HTTP client (bounded), each result is one statement that records
 * the check and moves the state; a changed state notifies.
 */
#include "roles/analytics/alerting.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/dispatch.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "http/client.h"
#include "query/qlang.h"
#include "roles/analytics/analytics.h"

#define CTX "role=analytics job=alerts"

/* ---- shared ------------------------------------------------------------------------------------- */

struct pass {
    struct ldg_worker *w;
    const struct ldg_analytics_cfg *cfg;
    const bool *stopping;
    ldg_alerting_done_fn done;
    void *ud;
    PGresult *rows; /* owned */
    int next, n, inflight;
    const char *error;
    bool listed;
    bool starting; /* inside eval_next's loop: a group that fails at once must not end the pass */
};

static struct pass *pass_new(struct ldg_worker *w, const struct ldg_analytics_cfg *cfg, const bool *stopping,
                             ldg_alerting_done_fn done, void *ud)
{
    struct pass *p = ldg_calloc(1, sizeof *p);
    *p = (struct pass){.w = w, .cfg = cfg, .stopping = stopping, .done = done, .ud = ud};
    return p;
}

static void pass_end(struct pass *p)
{
    if (p->rows)
        PQclear(p->rows);
    ldg_alerting_done_fn done = p->done;
    void *ud = p->ud;
    const char *err = p->error;
    free(p);
    done(ud, err);
}

static void log_failure(const char *what)
{
    const struct ldg_pg_error *e = ldg_pg_failure();
    ldg_log_warn(CTX, "%s: code=%d sqlstate=%s err=%s", what, e->code, e->sqlstate[0] ? e->sqlstate : "-",
                 e->message ? e->message : "-");
}

static void fmt_value(char *out, size_t cap, const char *v)
{
    if (!v) {
        snprintf(out, cap, "no data");
        return;
    }
    double d = strtod(v, NULL);
    snprintf(out, cap, "%.6g", d);
}

/* ---- evaluator --------------------------------------------------------------------------------- */

/* Rules of one project are evaluated together: one statement scans the project's logs over the
 * longest window of the group once and computes each distinct aggregate the rules need once.
 * GROUP_MAX bounds a statement's columns: at most 2 aggregates per rule. */
#define GROUP_MAX 250

enum {
    R_ID,
    R_PROJECT,
    R_ACCOUNT,
    R_METRIC,
    R_FILTER,
    R_CMP,
    R_THRESHOLD,
    R_WINDOW,
    R_COOLDOWN,
    R_CONNECTORS,
    R_STATE,
    R_NAME,
    R_MAINT,
    R_SNOOZED,
    R_COOLING,
    R_METRIC_NAME, /* custom metrics: the metric_points name */
    R_AGGREGATION
};

static const char SQL_RULES[] =
    "SELECT r.id, r.project_id, p.account_id, r.metric, r.filter, r.comparator, r.threshold, r.window_s, "
    "r.cooldown_s, r.connector_ids::text, r.state, r.name, "
    "EXISTS (SELECT 1 FROM maintenance_windows m WHERE m.project_id = r.project_id AND now() >= m.starts_at "
    "AND now() < m.ends_at), "
    "coalesce(r.snoozed_until > now(), false), "
    "coalesce(r.last_fired_at + r.cooldown_s * interval '1 second' > now(), false), "
    "r.metric_name, r.aggregation "
    "FROM (SELECT * FROM alert_rules WHERE enabled ORDER BY last_evaluated_at NULLS FIRST, id LIMIT $1::int) r "
    "JOIN projects p ON p.id = r.project_id ORDER BY r.metric = 'custom', r.project_id, r.id";

struct group_run {
    struct pass *p;
    int first, n;      /* rows of p->rows */
    int pending;       /* statements in flight */
    int ncols;         /* log rules: columns of the metric statement */
    char (*value)[64]; /* per rule: the metric as text, "" = no data */
    int (*col)[3];     /* log rules: the result columns of the rule's value ([1] only for error_rate),
                        * [2] whether it counts (0 when its project has no logs in the window) */
    struct ldg_pgpool *pool; /* log rules: the pool of the metric statement, and its lent connection */
    struct ldg_pg *conn;
    const char *sql;         /* g->arena */
    struct ldg_qparams qp;
    struct ldg_arena arena;
};

/* One transition of one rule (fire or resolve), with what its notification needs. */
struct rule_run {
    struct group_run *g;
    int row;
    const char *value; /* NULL = no data */
};

static const char *cell(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void eval_next(struct pass *p);

static bool is_custom(const PGresult *r, int i)
{
    return strcmp(PQgetvalue(r, i, R_METRIC), "custom") == 0;
}

static void group_release(struct group_run *g)
{
    if (--g->pending > 0)
        return;
    struct pass *p = g->p;
    ldg_arena_free(&g->arena);
    free(g->value);
    free(g->col);
    free(g);
    p->inflight--;
    eval_next(p);
}

static bool compare(const char *cmp, double v, double t)
{
    if (strcmp(cmp, "gt") == 0)
        return v > t;
    if (strcmp(cmp, "gte") == 0)
        return v >= t;
    if (strcmp(cmp, "lt") == 0)
        return v < t;
    return v <= t;
}

static const char *symbol(const char *cmp)
{
    return strcmp(cmp, "gt") == 0    ? ">"
           : strcmp(cmp, "gte") == 0 ? ">="
           : strcmp(cmp, "lt") == 0  ? "<"
                                     : "<=";
}

static void notify_rule(struct rule_run *rr, bool firing, const char *event_id)
{
    struct pass *p = rr->g->p;
    const PGresult *r = p->rows;
    int i = rr->row;
    char v[48];
    fmt_value(v, sizeof v, rr->value);
    char title[512], metric[300];
    const char *name = PQgetvalue(r, i, R_NAME);
    if (is_custom(r, i)) /* e.g. "avg(queue.depth)" */
        snprintf(metric, sizeof metric, "%s(%s)", PQgetvalue(r, i, R_AGGREGATION),
                 PQgetvalue(r, i, R_METRIC_NAME));
    else
        snprintf(metric, sizeof metric, "%s", PQgetvalue(r, i, R_METRIC));
    if (firing)
        snprintf(title, sizeof title, "Alert firing: %s (%s %s %s, value %s)", name, metric,
                 symbol(PQgetvalue(r, i, R_CMP)), PQgetvalue(r, i, R_THRESHOLD), v);
    else
        snprintf(title, sizeof title, "Alert resolved: %s (%s %s)", name, metric, v);
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "rule_id");
    ldg_json_int(&jw, strtoll(PQgetvalue(r, i, R_ID), NULL, 10));
    ldg_json_key(&jw, "rule_name");
    ldg_json_str(&jw, name);
    ldg_json_key(&jw, "event_id");
    if (event_id)
        ldg_json_int(&jw, strtoll(event_id, NULL, 10));
    else
        ldg_json_null(&jw);
    ldg_json_key(&jw, "state");
    ldg_json_str(&jw, firing ? "firing" : "resolved");
    ldg_json_key(&jw, "metric");
    ldg_json_str(&jw, PQgetvalue(r, i, R_METRIC));
    if (is_custom(r, i)) {
        ldg_json_key(&jw, "metric_name");
        ldg_json_str(&jw, PQgetvalue(r, i, R_METRIC_NAME));
        ldg_json_key(&jw, "aggregation");
        ldg_json_str(&jw, PQgetvalue(r, i, R_AGGREGATION));
    }
    ldg_json_key(&jw, "comparator");
    ldg_json_str(&jw, PQgetvalue(r, i, R_CMP));
    ldg_json_key(&jw, "threshold");
    ldg_json_double(&jw, strtod(PQgetvalue(r, i, R_THRESHOLD), NULL));
    ldg_json_key(&jw, "value");
    if (rr->value)
        ldg_json_double(&jw, strtod(rr->value, NULL));
    else
        ldg_json_null(&jw);
    ldg_json_key(&jw, "window_s");
    ldg_json_int(&jw, strtoll(PQgetvalue(r, i, R_WINDOW), NULL, 10));
    ldg_json_obj_end(&jw);
    ldg_buf_put(&b, "", 1);
    struct ldg_dispatch_event ev = {
        .account_id = strtoll(PQgetvalue(r, i, R_ACCOUNT), NULL, 10),
        .project_id = strtoll(PQgetvalue(r, i, R_PROJECT), NULL, 10),
        .kind = firing ? "alert_firing" : "alert_resolved",
        .title = title,
        .data_json = ldg_buf_head(&b),
    };
    ldg_log_info(CTX, "rule=%s %s value=%s", PQgetvalue(r, i, R_ID), ev.kind, v);
    ldg_dispatch_send(p->w, &ev, PQgetvalue(r, i, R_CONNECTORS), false, NULL, NULL);
    ldg_buf_free(&b);
}

static void rule_done(struct rule_run *rr)
{
    struct group_run *g = rr->g;
    free(rr);
    group_release(g);
}

static void on_fired(PGresult *res, void *ud)
{
    struct rule_run *rr = ud;
    if (!res) {
        log_failure("firing a rule");
        rr->g->p->error = "writing rule states";
    } else if (PQntuples(res) == 1 && !*rr->g->p->stopping) {
        notify_rule(rr, true, PQgetvalue(res, 0, 0));
    }
    rule_done(rr);
}

static void on_resolved(PGresult *res, void *ud)
{
    struct rule_run *rr = ud;
    const PGresult *r = rr->g->p->rows;
    bool quiet = strcmp(PQgetvalue(r, rr->row, R_MAINT), "t") == 0 ||
                 strcmp(PQgetvalue(r, rr->row, R_SNOOZED), "t") == 0;
    if (!res) {
        log_failure("resolving a rule");
        rr->g->p->error = "writing rule states";
    } else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0 && !quiet &&
               !*rr->g->p->stopping) {
        notify_rule(rr, false, cell(res, 0, 1));
    }
    rule_done(rr);
}

static void on_touched(PGresult *res, void *ud)
{
    struct group_run *g = ud;
    if (!res) {
        log_failure("writing rule values");
        g->p->error = "writing rule states";
    }
    group_release(g);
}

/* Every rule of the group: a transition (its own guarded statement) or, for the others, one
 * statement that records the values. */
static void decide_group(struct group_run *g)
{
    struct pass *p = g->p;
    const PGresult *r = p->rows;
    struct ldg_buf ids, vals;
    ldg_buf_init(&ids);
    ldg_buf_init(&vals);
    int touched = 0;
    for (int k = 0; k < g->n; k++) {
        int i = g->first + k;
        const char *value = g->value[k][0] ? g->value[k] : NULL;
        bool firing = strcmp(PQgetvalue(r, i, R_STATE), "firing") == 0;
        bool breach = value && compare(PQgetvalue(r, i, R_CMP), strtod(value, NULL),
                                       strtod(PQgetvalue(r, i, R_THRESHOLD), NULL));
        bool quiet = strcmp(PQgetvalue(r, i, R_MAINT), "t") == 0 ||
                     strcmp(PQgetvalue(r, i, R_SNOOZED), "t") == 0 ||
                     strcmp(PQgetvalue(r, i, R_COOLING), "t") == 0;
        bool fire = !firing && breach && !quiet, resolve = firing && !breach;
        if (!fire && !resolve) {
            ldg_buf_printf(&ids, "%s%s", touched ? "," : "{", PQgetvalue(r, i, R_ID));
            ldg_buf_printf(&vals, "%s%s", touched ? "," : "{", value ? value : "NULL");
            touched++;
            continue;
        }
        struct rule_run *rr = ldg_calloc(1, sizeof *rr);
        rr->g = g;
        rr->row = i;
        rr->value = value;
        const char *params[] = {PQgetvalue(r, i, R_ID), value};
        g->pending++;
        int rc;
        if (fire)
            rc = ldg_pgpool_query_prepared(
                p->w->pg_auth, "alr_eval_fire",
                "WITH u AS (UPDATE alert_rules SET state = 'firing', last_fired_at = now(), last_value = "
                "$2::float8, last_evaluated_at = now() WHERE id = $1::bigint AND state = 'ok' RETURNING id, "
                "project_id, metric, comparator, threshold), e AS (INSERT INTO alert_events (rule_id, "
                "project_id, "
                "metric, comparator, threshold, value) SELECT id, project_id, metric, comparator, threshold, "
                "$2::float8 FROM u RETURNING id) SELECT id FROM e",
                2, params, on_fired, rr);
        else
            rc = ldg_pgpool_query_prepared(p->w->pg_auth, "alr_eval_resolve",
                                           "WITH u AS (UPDATE alert_rules SET state = 'ok', last_value = "
                                           "$2::float8, last_evaluated_at = "
                                           "now() WHERE id = $1::bigint AND state = 'firing' RETURNING id), "
                                           "e AS (UPDATE alert_events SET "
                                           "status = 'resolved', resolved_at = now(), resolved_value = "
                                           "$2::float8 WHERE rule_id IN (SELECT "
                                           "id FROM u) AND status = 'firing' RETURNING id) SELECT (SELECT "
                                           "count(*) FROM u), (SELECT max(id) "
                                           "FROM e)",
                                           2, params, on_resolved, rr);
        if (rc < 0) {
            p->error = "writing rule states";
            free(rr);
            g->pending--;
        }
    }
    if (touched) {
        ldg_buf_put(&ids, "}", 2);
        ldg_buf_put(&vals, "}", 2);
        const char *params[] = {ldg_buf_head(&ids), ldg_buf_head(&vals)};
        g->pending++;
        if (ldg_pgpool_query_prepared(
                p->w->pg_auth, "alr_eval_touch",
                "UPDATE alert_rules r SET last_value = v.val, last_evaluated_at = now() FROM "
                "unnest($1::bigint[], $2::float8[]) AS v(id, val) WHERE r.id = v.id",
                2, params, on_touched, g) < 0) {
            p->error = "writing rule states";
            g->pending--;
        }
    }
    ldg_buf_free(&ids);
    ldg_buf_free(&vals);
    group_release(g); /* the metric statement's hold */
}

/* The value of log rule k from row `row` of the metric statement (-1: its project has no logs in
 * the longest window: counts are 0, percentiles have no data). */
static void log_value(struct group_run *g, const PGresult *res, int row, int k)
{
    int a = g->col[k][0] + 1, b = g->col[k][1] < 0 ? -1 : g->col[k][1] + 1; /* column 0: the project */
    if (row < 0) {
        if (g->col[k][2])
            snprintf(g->value[k], sizeof g->value[k], "0");
        return;
    }
    if (PQgetisnull(res, row, a))
        return;
    if (b < 0) {
        snprintf(g->value[k], sizeof g->value[k], "%s", PQgetvalue(res, row, a));
        return;
    }
    /* error_rate: errors (a) × 100 / logs (b) of the window, 0 without logs */
    double errors = strtod(PQgetvalue(res, row, a), NULL), all = strtod(PQgetvalue(res, row, b), NULL);
    snprintf(g->value[k], sizeof g->value[k], "%.17g", all > 0 ? 100.0 * errors / all : 0.0);
}

static void on_group_metrics(PGresult *res, void *ud)
{
    struct group_run *g = ud;
    if (*g->p->stopping) {
        group_release(g);
        return;
    }
    bool ok = res && (g->col ? PQnfields(res) == g->ncols + 1
                             : PQntuples(res) == 1 && PQnfields(res) == g->n);
    if (!ok) {
        if (!res) {
            char what[128];
            snprintf(what, sizeof what, "computing the metrics of projects %s..%s",
                     PQgetvalue(g->p->rows, g->first, R_PROJECT),
                     PQgetvalue(g->p->rows, g->first + g->n - 1, R_PROJECT));
            log_failure(what);
        }
        g->p->error = "computing rule metrics";
        group_release(g);
        return;
    }
    if (!g->col) { /* custom metrics: one row, a column per rule */
        for (int k = 0; k < g->n; k++)
            if (!PQgetisnull(res, 0, k))
                snprintf(g->value[k], sizeof g->value[k], "%s", PQgetvalue(res, 0, k));
    } else { /* a row per project with logs, by project id, as the rules are */
        int row = 0, rows = PQntuples(res);
        for (int k = 0; k < g->n; k++) {
            int64_t project = strtoll(PQgetvalue(g->p->rows, g->first + k, R_PROJECT), NULL, 10);
            while (row < rows && strtoll(PQgetvalue(res, row, 0), NULL, 10) < project)
                row++;
            bool found = row < rows && strtoll(PQgetvalue(res, row, 0), NULL, 10) == project;
            log_value(g, res, found ? row : -1, k);
        }
    }
    decide_group(g);
}

#define DURATION_EXPR                                                                                        \
    "CASE WHEN log_type = 'endpoint' AND attributes->'endpoint'->>'duration_ms' ~ "                          \
    "'^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN (attributes->'endpoint'->>'duration_ms')::float8 END"

/* The statement of a group of log rules. Every distinct window is one bound (b<i>, computed once
 * in a one-row subquery), every distinct filter one boolean column (f<i>) of the row subquery,
 * every distinct (window, filter, kind) one aggregate over those columns. OFFSET 0 keeps both
 * subqueries from being pulled up, which would evaluate their expressions once per aggregate. */
enum agg_kind { AGG_COUNT, AGG_ERRORS, AGG_P50, AGG_P95, AGG_P99 };

struct logstmt {
    struct group_run *g;
    struct ldg_qparams qp;
    struct ldg_buf cols;   /* ", (<filter>) AS f0, ..." */
    struct ldg_buf bounds; /* "now() - $n::int * interval '1 second' AS b0, ..." */
    struct ldg_buf aggs;   /* the select list */
    int64_t longest;
    int64_t window[GROUP_MAX];
    int nwindow, nbounds;
    const char *filter[GROUP_MAX];
    const char *fsql[GROUP_MAX];     /* the compiled filter, g->arena */
    struct ldg_buf fprojects[GROUP_MAX]; /* "{pid,pid": the projects whose rules use the filter */
    const char *flast[GROUP_MAX];    /* the last project appended */
    int nfilter;
    int nprojects;                   /* distinct projects of the group */
    int agg[2 * GROUP_MAX][3]; /* window index, filter index (-1: none), kind */
    int nagg;
    bool dur;
};

static int window_index(struct logstmt *ls, int64_t w)
{
    for (int i = 0; i < ls->nwindow; i++)
        if (ls->window[i] == w)
            return i;
    ls->window[ls->nwindow] = w;
    if (w != ls->longest) { /* the longest window is the scan's own range: no bound */
        char t[24];
        snprintf(t, sizeof t, "%" PRId64, w);
        int n = ldg_qparams_add(&ls->qp, &ls->g->arena, ldg_arena_strndup(&ls->g->arena, t, strlen(t)));
        ldg_buf_printf(&ls->bounds, "%snow() - $%d::int * interval '1 second' AS b%d", ls->nbounds ? ", " : "",
                       n, ls->nwindow);
        ls->nbounds++;
    }
    return ls->nwindow++;
}

static int filter_index(struct logstmt *ls, int row)
{
    const PGresult *r = ls->g->p->rows;
    const char *filter = cell(r, row, R_FILTER), *project = PQgetvalue(r, row, R_PROJECT);
    if (!filter || !*filter)
        return -1;
    for (int i = 0; i < ls->nfilter; i++)
        if (strcmp(ls->filter[i], filter) == 0) {
            if (strcmp(ls->flast[i], project) != 0) { /* rules come sorted by project */
                ldg_buf_printf(&ls->fprojects[i], ",%s", project);
                ls->flast[i] = project;
            }
            return i;
        }
    int i = ls->nfilter++;
    struct ldg_qnode *root;
    struct ldg_qerror err;
    struct ldg_buf b;
    ldg_buf_init(&b);
    if (ldg_qlang_parse(filter, strlen(filter), &ls->g->arena, &root, &err) < 0) {
        ldg_log_warn(CTX, "rule=%s filter does not parse (%s): never breaches", PQgetvalue(r, row, R_ID), err.msg);
        ldg_buf_puts(&b, "false");
    } else {
        ldg_qlang_compile(root, &ls->g->arena, &b, &ls->qp);
    }
    ls->fsql[i] = ldg_arena_strndup(&ls->g->arena, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
    ls->filter[i] = filter;
    ldg_buf_init(&ls->fprojects[i]);
    ldg_buf_printf(&ls->fprojects[i], "{%s", project);
    ls->flast[i] = project;
    return i;
}

/* The filter columns of the row subquery. In a statement of several projects a filter is
 * computed only on the rows of the projects whose rules use it (a CASE, evaluated in order). */
static void filter_columns(struct logstmt *ls)
{
    for (int i = 0; i < ls->nfilter; i++) {
        ldg_buf_put(&ls->fprojects[i], "}", 2);
        if (ls->nprojects > 1) {
            int n = ldg_qparams_add(&ls->qp, &ls->g->arena,
                                    ldg_arena_strndup(&ls->g->arena, ldg_buf_head(&ls->fprojects[i]),
                                                      strlen(ldg_buf_head(&ls->fprojects[i]))));
            ldg_buf_printf(&ls->cols, ", CASE WHEN project_id = ANY($%d::bigint[]) THEN (%s) END AS f%d", n,
                           ls->fsql[i], i);
        } else {
            ldg_buf_printf(&ls->cols, ", (%s) AS f%d", ls->fsql[i], i);
        }
        ldg_buf_free(&ls->fprojects[i]);
    }
}

/* The column of aggregate (w, f, kind), added to the select list the first time. */
static int agg_column(struct logstmt *ls, int w, int f, enum agg_kind kind)
{
    for (int i = 0; i < ls->nagg; i++)
        if (ls->agg[i][0] == w && ls->agg[i][1] == f && ls->agg[i][2] == (int)kind)
            return i;
    char cond[96];
    int n = 0;
    cond[0] = 0;
    if (ls->window[w] != ls->longest)
        n += snprintf(cond + n, sizeof cond - (size_t)n, "s.ts >= t.b%d", w);
    if (f >= 0)
        n += snprintf(cond + n, sizeof cond - (size_t)n, "%ss.f%d", n ? " AND " : "", f);
    if (kind == AGG_ERRORS)
        n += snprintf(cond + n, sizeof cond - (size_t)n, "%ss.err", n ? " AND " : "");
    else if (kind != AGG_COUNT)
        n += snprintf(cond + n, sizeof cond - (size_t)n, "%ss.dur IS NOT NULL", n ? " AND " : "");
    if (ls->nagg)
        ldg_buf_puts(&ls->aggs, ", ");
    if (kind == AGG_COUNT || kind == AGG_ERRORS) {
        ldg_buf_puts(&ls->aggs, "count(*)");
    } else {
        ldg_buf_printf(&ls->aggs, "percentile_cont(%s) WITHIN GROUP (ORDER BY s.dur)",
                       kind == AGG_P50 ? "0.5" : kind == AGG_P95 ? "0.95" : "0.99");
        ls->dur = true;
    }
    if (n)
        ldg_buf_printf(&ls->aggs, " FILTER (WHERE %s)", cond);
    ls->agg[ls->nagg][0] = w;
    ls->agg[ls->nagg][1] = f;
    ls->agg[ls->nagg][2] = (int)kind;
    return ls->nagg++;
}

static void on_metrics_set(PGresult *res, void *ud)
{
    (void)res; /* a failure fails the metric statement too (one implicit transaction) */
    (void)ud;
}

static void on_log_metrics(PGresult *res, void *ud)
{
    struct group_run *g = ud;
    ldg_pgpool_release(g->pool, g->conn);
    g->conn = NULL;
    on_group_metrics(res, g);
}

/* The metric statement runs with its own max_parallel_workers_per_gather (SET LOCAL of the
 * pipeline's implicit transaction): PostgreSQL's default of 2 would have one statement take three
 * cores, so that alert_eval_concurrency = 1 would still take every core of a small machine. */
static void on_metrics_conn(struct ldg_pg *conn, int err, void *ud)
{
    struct group_run *g = ud;
    if (!conn) {
        ldg_log_warn(CTX, "computing the metrics of project %s: no connection (%s)",
                     PQgetvalue(g->p->rows, g->first, R_PROJECT), strerror(-err));
        g->p->error = "computing rule metrics";
        group_release(g);
        return;
    }
    g->conn = conn;
    char workers[24];
    snprintf(workers, sizeof workers, "%" PRId64, g->p->cfg->alert_eval_parallel_workers);
    const char *wparams[] = {workers};
    struct ldg_pg_stmt stmts[2] = {
        {"SELECT set_config('max_parallel_workers_per_gather', $1, true)", "alr_eval_workers", 1, wparams,
         on_metrics_set, g},
        {g->sql, NULL, (int)g->qp.n, g->qp.v, on_log_metrics, g},
    };
    if (ldg_pg_pipeline(conn, stmts, 2) < 0) {
        ldg_pgpool_release(g->pool, conn);
        g->conn = NULL;
        ldg_log_warn(CTX, "computing the metrics of project %s: the statement could not be sent",
                     PQgetvalue(g->p->rows, g->first, R_PROJECT));
        g->p->error = "computing rule metrics";
        group_release(g);
    }
}

/* Start the metric statement of a group of log rules (of one or more projects of one shard); 0,
 * or -1 when it could not be sent. */
static int log_group_start(struct group_run *g)
{
    const PGresult *r = g->p->rows;
    struct logstmt *ls = ldg_calloc(1, sizeof *ls);
    ls->g = g;
    ldg_buf_init(&ls->cols);
    ldg_buf_init(&ls->bounds);
    ldg_buf_init(&ls->aggs);
    struct ldg_buf projects;
    ldg_buf_init(&projects);
    for (int k = 0; k < g->n; k++) {
        int i = g->first + k;
        ls->longest = LDG_MAX(ls->longest, strtoll(PQgetvalue(r, i, R_WINDOW), NULL, 10));
        if (k == 0 || strcmp(PQgetvalue(r, i, R_PROJECT), PQgetvalue(r, i - 1, R_PROJECT)) != 0) {
            ldg_buf_printf(&projects, "%s%s", k ? "," : "{", PQgetvalue(r, i, R_PROJECT));
            ls->nprojects++;
        }
    }
    ldg_buf_put(&projects, "}", 2);
    (void)ldg_qparams_add(&ls->qp, &g->arena,
                          ldg_arena_strndup(&g->arena, ldg_buf_head(&projects), strlen(ldg_buf_head(&projects))));
    ldg_buf_free(&projects);
    char lw[24];
    snprintf(lw, sizeof lw, "%" PRId64, ls->longest);
    (void)ldg_qparams_add(&ls->qp, &g->arena, ldg_arena_strndup(&g->arena, lw, strlen(lw)));
    g->col = ldg_calloc((size_t)g->n, sizeof *g->col);
    for (int k = 0; k < g->n; k++) {
        int i = g->first + k;
        const char *metric = PQgetvalue(r, i, R_METRIC);
        int w = window_index(ls, strtoll(PQgetvalue(r, i, R_WINDOW), NULL, 10));
        int f = filter_index(ls, i);
        g->col[k][1] = -1;
        g->col[k][2] = 1;
        if (strcmp(metric, "p50_latency") == 0 || strcmp(metric, "p95_latency") == 0 ||
            strcmp(metric, "p99_latency") == 0) {
            g->col[k][0] = agg_column(ls, w, f,
                                      metric[1] == '5' ? AGG_P50 : metric[2] == '5' ? AGG_P95 : AGG_P99);
            g->col[k][2] = 0;
        } else if (strcmp(metric, "error_count") == 0) {
            g->col[k][0] = agg_column(ls, w, f, AGG_ERRORS);
        } else if (strcmp(metric, "error_rate") == 0) {
            g->col[k][0] = agg_column(ls, w, f, AGG_ERRORS);
            g->col[k][1] = agg_column(ls, w, f, AGG_COUNT);
        } else {
            g->col[k][0] = agg_column(ls, w, f, AGG_COUNT);
        }
    }
    filter_columns(ls);
    g->ncols = ls->nagg;
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(&sql,
                   "SELECT s.pid, %.*s FROM (SELECT project_id AS pid, \"timestamp\" AS ts, level IN ('error', "
                   "'critical') AS err%s%.*s FROM logs WHERE project_id = ANY($1::bigint[]) AND \"timestamp\" >= "
                   "now() - $2::int * interval '1 second' AND \"timestamp\" <= now() OFFSET 0) s",
                   (int)ldg_buf_size(&ls->aggs), ldg_buf_head(&ls->aggs), ls->dur ? ", " DURATION_EXPR " AS dur" : "",
                   (int)ldg_buf_size(&ls->cols), ldg_buf_head(&ls->cols));
    if (ls->nbounds)
        ldg_buf_printf(&sql, ", (SELECT %.*s OFFSET 0) t", (int)ldg_buf_size(&ls->bounds),
                       ldg_buf_head(&ls->bounds));
    ldg_buf_puts(&sql, " GROUP BY s.pid ORDER BY s.pid");
    ldg_buf_put(&sql, "", 1);
    int64_t project = strtoll(PQgetvalue(r, g->first, R_PROJECT), NULL, 10);
    g->sql = ldg_arena_strndup(&g->arena, ldg_buf_head(&sql), ldg_buf_size(&sql));
    g->qp = ls->qp;
    g->pool = ldg_pgroute_read(g->p->w, project);
    ldg_buf_free(&sql);
    ldg_buf_free(&ls->cols);
    ldg_buf_free(&ls->bounds);
    ldg_buf_free(&ls->aggs);
    free(ls);
    return g->pool && ldg_pgpool_acquire(g->pool, on_metrics_conn, g) == 0 ? 0 : -1;
}

/* A custom metric rule: its points in the window, reduced by its aggregation. A point's value is
 * `value` (gauge, sum) or, for a histogram, its mean (sum / count), its min, max or sum. */
static void custom_aggregate(struct group_run *g, int i, struct ldg_buf *sql, struct ldg_qparams *qp)
{
    const PGresult *r = g->p->rows;
    const char *agg = PQgetvalue(r, i, R_AGGREGATION);
    int name = ldg_qparams_add(qp, &g->arena, PQgetvalue(r, i, R_METRIC_NAME));
    int w = ldg_qparams_add(qp, &g->arena, PQgetvalue(r, i, R_WINDOW));
    const char *expr = strcmp(agg, "min") == 0     ? "min(coalesce(value, min))"
                       : strcmp(agg, "max") == 0   ? "max(coalesce(value, max))"
                       : strcmp(agg, "sum") == 0   ? "sum(coalesce(value, sum))"
                       : strcmp(agg, "count") == 0 ? "count(*)"
                       : strcmp(agg, "last") == 0
                           ? "(array_agg(coalesce(value, sum / nullif(count, 0)) ORDER BY \"time\" DESC))[1]"
                           : "avg(coalesce(value, sum / nullif(count, 0)))";
    ldg_buf_printf(sql,
                   "(SELECT %s FROM metric_points WHERE project_id = $1::bigint AND name = $%d AND "
                   "\"time\" >= now() - $%d::int * interval '1 second' AND \"time\" <= now())::float8",
                   expr, name, w);
}

static void group_start(struct pass *p, int first, int n)
{
    struct group_run *g = ldg_calloc(1, sizeof *g);
    g->p = p;
    g->first = first;
    g->n = n;
    g->pending = 1;
    g->value = ldg_calloc((size_t)n, sizeof *g->value);
    ldg_arena_init(&g->arena, NULL, 0);
    p->inflight++;
    const PGresult *r = p->rows;
    int rc;
    if (!is_custom(r, first)) { /* a group is all custom or all log metrics (eval_next) */
        rc = log_group_start(g);
    } else {
        struct ldg_qparams qp = {0};
        (void)ldg_qparams_add(&qp, &g->arena, PQgetvalue(r, first, R_PROJECT));
        struct ldg_buf aggs;
        ldg_buf_init(&aggs);
        for (int k = 0; k < n; k++) {
            if (k)
                ldg_buf_puts(&aggs, ", ");
            custom_aggregate(g, first + k, &aggs, &qp);
        }
        struct ldg_buf sql;
        ldg_buf_init(&sql);
        ldg_buf_printf(&sql, "SELECT %.*s", (int)ldg_buf_size(&aggs), ldg_buf_head(&aggs)); /* one row */
        ldg_buf_put(&sql, "", 1);
        ldg_buf_free(&aggs);
        int64_t project = strtoll(PQgetvalue(r, first, R_PROJECT), NULL, 10);
        rc = ldg_pgpool_query(ldg_pgroute_read(p->w, project), ldg_buf_head(&sql), (int)qp.n, qp.v,
                              on_group_metrics, g);
        ldg_buf_free(&sql);
    }
    if (rc < 0) {
        p->error = "computing rule metrics";
        group_release(g);
    }
}

/* Rows of log rules from `first` that share one statement: whole projects of the same shard while
 * the group holds at most GROUP_MAX rules and SIG_MAX distinct (metric, window, filter), so that
 * one scan reads the logs of several projects (rows of many projects share pages: one scan per
 * project would read the same pages again) without every row paying for many aggregates. A
 * project's rules are never split, unless the project alone has more than GROUP_MAX. */
#define SIG_MAX 64

static bool same_sig(const PGresult *r, int a, int b)
{
    const char *fa = cell(r, a, R_FILTER), *fb = cell(r, b, R_FILTER);
    return strcmp(PQgetvalue(r, a, R_METRIC), PQgetvalue(r, b, R_METRIC)) == 0 &&
           strcmp(PQgetvalue(r, a, R_WINDOW), PQgetvalue(r, b, R_WINDOW)) == 0 &&
           strcmp(fa ? fa : "", fb ? fb : "") == 0;
}

/* Add the signatures of rows [from, to) not yet in sig[0..*nsig); false (and *nsig past SIG_MAX
 * untouched) when they do not all fit. */
static bool add_sigs(const PGresult *r, int from, int to, int *sig, int *nsig)
{
    for (int i = from; i < to; i++) {
        bool seen = false;
        for (int j = 0; j < *nsig && !seen; j++)
            seen = same_sig(r, i, sig[j]);
        if (seen)
            continue;
        if (*nsig == SIG_MAX)
            return false;
        sig[(*nsig)++] = i;
    }
    return true;
}

static int log_group_extent(const struct pass *p, int first)
{
    const PGresult *r = p->rows;
    int shard = ldg_pgroute_shard_of(p->w, strtoll(PQgetvalue(r, first, R_PROJECT), NULL, 10));
    int sig[SIG_MAX], nsig = 0, n = 0;
    while (first + n < p->n && !is_custom(r, first + n)) {
        int start = first + n, end = start; /* the next project's rules: [start, end) */
        while (end < p->n && !is_custom(r, end) &&
               strcmp(PQgetvalue(r, end, R_PROJECT), PQgetvalue(r, start, R_PROJECT)) == 0)
            end++;
        if (n == 0 && end - start > GROUP_MAX)
            return GROUP_MAX; /* a project with more rules than one statement takes: alone, in parts */
        if (n > 0 && (n + (end - start) > GROUP_MAX ||
                      ldg_pgroute_shard_of(p->w, strtoll(PQgetvalue(r, start, R_PROJECT), NULL, 10)) != shard))
            break;
        int before = nsig;
        bool fits = add_sigs(r, start, end, sig, &nsig);
        if (!fits && n > 0) {
            nsig = before;
            break;
        }
        n += end - start;
        if (!fits)
            break; /* a project with more shapes than one statement takes: alone */
    }
    return n;
}

static void eval_next(struct pass *p)
{
    /* A group whose statement cannot even be sent (its logs database down: the pool refuses at
     * once) is released inside group_start, which calls this again: the loop below goes on with
     * the next group and ends the pass once, after it. */
    if (p->starting)
        return;
    p->starting = true;
    const PGresult *r = p->rows;
    while (!*p->stopping && p->next < p->n && p->inflight < p->cfg->alert_eval_concurrency) {
        int first = p->next, n = 1;
        if (is_custom(r, first)) {
            while (first + n < p->n && n < GROUP_MAX &&
                   strcmp(PQgetvalue(r, first + n, R_PROJECT), PQgetvalue(r, first, R_PROJECT)) == 0 &&
                   is_custom(r, first + n))
                n++;
        } else {
            n = log_group_extent(p, first);
        }
        p->next += n;
        group_start(p, first, n);
    }
    p->starting = false;
    if (p->inflight == 0 && (p->next >= p->n || *p->stopping)) {
        if (*p->stopping && p->next < p->n)
            p->error = "stopped by shutdown";
        pass_end(p);
    }
}

static void on_rules(PGresult *res, void *ud)
{
    struct pass *p = ud;
    if (!res) {
        log_failure("listing alert rules");
        p->error = "listing alert rules";
        pass_end(p);
        return;
    }
    ldg_pg_keep(res);
    p->rows = res;
    p->n = PQntuples(res);
    eval_next(p);
}

void ldg__alerting_evaluate(struct ldg_worker *w, const struct ldg_analytics_cfg *cfg, const bool *stopping,
                            ldg_alerting_done_fn done, void *ud)
{
    struct pass *p = pass_new(w, cfg, stopping, done, ud);
    char limit[24];
    snprintf(limit, sizeof limit, "%" PRId64, cfg->alert_max_rules);
    const char *params[] = {limit};
    if (ldg_pgpool_query_prepared(w->pg_auth, "alr_eval_rules", SQL_RULES, 1, params, on_rules, p) < 0) {
        p->error = "listing alert rules";
        pass_end(p);
    }
}

/* ---- monitors ---------------------------------------------------------------------------------- */

static void notify_monitor(struct ldg_worker *w, const char *id, const char *project, const char *account,
                           const char *name, const char *connectors, const char *state, const char *old_state,
                           int status, int64_t latency, const char *error)
{
    bool up = strcmp(state, "up") == 0;
    char title[400];
    snprintf(title, sizeof title, "Monitor %s: %s", up ? "up" : "down", name);
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "monitor_id");
    ldg_json_int(&jw, strtoll(id, NULL, 10));
    ldg_json_key(&jw, "monitor_name");
    ldg_json_str(&jw, name);
    ldg_json_key(&jw, "state");
    ldg_json_str(&jw, state);
    ldg_json_key(&jw, "previous_state");
    ldg_json_str(&jw, old_state);
    ldg_json_key(&jw, "status_code");
    if (status > 0)
        ldg_json_int(&jw, status);
    else
        ldg_json_null(&jw);
    ldg_json_key(&jw, "latency_ms");
    if (latency >= 0)
        ldg_json_int(&jw, latency);
    else
        ldg_json_null(&jw);
    ldg_json_key(&jw, "error");
    ldg_json_str(&jw, error);
    ldg_json_obj_end(&jw);
    ldg_buf_put(&b, "", 1);
    struct ldg_dispatch_event ev = {
        .account_id = strtoll(account, NULL, 10),
        .project_id = strtoll(project, NULL, 10),
        .kind = up ? "monitor_up" : "monitor_down",
        .title = title,
        .data_json = ldg_buf_head(&b),
    };
    ldg_log_info(CTX, "monitor=%s %s -> %s", id, old_state, state);
    ldg_dispatch_send(w, &ev, connectors, false, NULL, NULL);
    ldg_buf_free(&b);
}

struct check {
    struct pass *p;
    int row;
    int status;
    int64_t latency;
    char error[96];
    bool ok;
};

enum { M_ID, M_PROJECT, M_ACCOUNT, M_NAME, M_URL, M_TIMEOUT, M_EXPECTED, M_CONNECTORS };

static void monitors_next(struct pass *p);

static void check_done(struct check *c)
{
    struct pass *p = c->p;
    free(c);
    p->inflight--;
    monitors_next(p);
}

static void on_check_recorded(PGresult *res, void *ud)
{
    struct check *c = ud;
    const PGresult *r = c->p->rows;
    int i = c->row;
    if (!res) {
        log_failure("recording a monitor check");
        c->p->error = "recording monitor checks";
    } else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)) != 0 &&
               !*c->p->stopping) {
        notify_monitor(c->p->w, PQgetvalue(r, i, M_ID), PQgetvalue(r, i, M_PROJECT),
                       PQgetvalue(r, i, M_ACCOUNT), PQgetvalue(r, i, M_NAME), PQgetvalue(r, i, M_CONNECTORS),
                       PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0), c->status, c->latency,
                       c->ok ? NULL : c->error);
    }
    check_done(c);
}

static void on_checked(int status, int64_t latency, const char *error, void *ud)
{
    struct check *c = ud;
    struct pass *p = c->p;
    if (status == -ECANCELED || *p->stopping) {
        check_done(c);
        return;
    }
    int expected = atoi(PQgetvalue(p->rows, c->row, M_EXPECTED));
    c->status = status;
    c->latency = latency;
    c->ok = status == expected;
    if (status < 0)
        snprintf(c->error, sizeof c->error, "%s", error ? error : "request failed");
    else if (!c->ok)
        snprintf(c->error, sizeof c->error, "HTTP %d (expected %d)", status, expected);
    char st[16], lat[24];
    snprintf(st, sizeof st, "%d", status);
    snprintf(lat, sizeof lat, "%" PRId64, latency);
    const char *params[] = {PQgetvalue(p->rows, c->row, M_ID), c->ok ? "t" : "f", lat, status > 0 ? st : NULL,
                            c->ok ? NULL : c->error};
    if (ldg_pgpool_query_prepared(
            p->w->pg_auth, "alr_monitor_record",
            "WITH old AS (SELECT state FROM monitors WHERE id = $1::bigint), c AS (INSERT INTO "
            "monitor_checks "
            "(monitor_id, ok, latency_ms, status_code, error) VALUES ($1::bigint, $2::bool, $3::int, "
            "$4::int, $5)), "
            "u AS (UPDATE monitors SET last_check_at = now(), last_latency_ms = $3::int, last_status_code = "
            "$4::int, "
            "last_error = $5, checks_total = checks_total + 1, checks_up = checks_up + ($2::bool)::int, "
            "state = "
            "CASE WHEN $2::bool THEN 'up' ELSE 'down' END, state_changed_at = CASE WHEN state = CASE WHEN "
            "$2::bool "
            "THEN 'up' ELSE 'down' END THEN state_changed_at ELSE now() END, updated_at = now() WHERE id = "
            "$1::bigint RETURNING state) SELECT (SELECT state FROM old), u.state FROM u",
            5, params, on_check_recorded, c) < 0) {
        p->error = "recording monitor checks";
        check_done(c);
    }
}

static void monitors_next(struct pass *p)
{
    struct ldg_httpc *http = ldg_dispatch_http(p->w);
    while (!*p->stopping && http && p->next < p->n) {
        int i = p->next++;
        struct check *c = ldg_calloc(1, sizeof *c);
        c->p = p;
        c->row = i;
        struct ldg_httpc_req req = {
            .method = "GET",
            .url = PQgetvalue(p->rows, i, M_URL),
            .timeout_ms = strtoll(PQgetvalue(p->rows, i, M_TIMEOUT), NULL, 10) * 1000,
        };
        p->inflight++;
        int rc = ldg_httpc_send(http, &req, on_checked, c);
        if (rc == -EAGAIN) { /* the client is full: these wait for the next pass */
            free(c);
            p->inflight--;
            p->next = p->n;
            break;
        }
        if (rc < 0) { /* an unusable URL is a failed check (reported on the loop) */
            p->inflight--;
            free(c);
            ldg_log_warn(CTX, "monitor=%s url refused (%d)", PQgetvalue(p->rows, i, M_ID), rc);
        }
    }
    if (p->inflight == 0 && (p->next >= p->n || *p->stopping || !http))
        pass_end(p);
}

static void on_due_checks(PGresult *res, void *ud)
{
    struct pass *p = ud;
    if (!res) {
        log_failure("listing due monitors");
        p->error = "listing due monitors";
        pass_end(p);
        return;
    }
    ldg_pg_keep(res);
    p->rows = res;
    p->n = PQntuples(res);
    monitors_next(p);
}

static void on_heartbeats_down(PGresult *res, void *ud)
{
    struct pass *p = ud;
    if (!res) {
        log_failure("marking late heartbeats down");
        p->error = "marking late heartbeats down";
    } else if (!*p->stopping) {
        for (int i = 0; i < PQntuples(res); i++)
            notify_monitor(p->w, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                           PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), "down", PQgetvalue(res, i, 5), 0, -1,
                           "no ping within the interval and grace period");
    }
    if (*p->stopping) {
        pass_end(p);
        return;
    }
    if (ldg_pgpool_query_prepared(
            p->w->pg_auth, "alr_monitor_due",
            "SELECT m.id, m.project_id, p.account_id, m.name, m.target_url, m.timeout_s, m.expected_status, "
            "m.connector_ids::text FROM monitors m JOIN projects p ON p.id = m.project_id WHERE m.kind = "
            "'http' "
            "AND m.enabled AND m.target_url IS NOT NULL AND (m.last_check_at IS NULL OR m.last_check_at + "
            "m.interval_s * interval '1 second' <= now() + interval '500 milliseconds') ORDER BY "
            "m.last_check_at NULLS FIRST, m.id LIMIT 5000",
            0, NULL, on_due_checks, p) < 0) {
        p->error = "listing due monitors";
        pass_end(p);
    }
}

void ldg__alerting_monitors(struct ldg_worker *w, const struct ldg_analytics_cfg *cfg, const bool *stopping,
                            ldg_alerting_done_fn done, void *ud)
{
    struct pass *p = pass_new(w, cfg, stopping, done, ud);
    /* Late heartbeats: no ping (or creation) within interval + grace. */
    if (ldg_pgpool_query_prepared(
            w->pg_auth, "alr_monitor_late",
            "WITH late AS (SELECT m.id, m.state FROM monitors m WHERE m.kind = 'heartbeat' AND m.enabled AND "
            "m.state <> 'down' AND coalesce(m.last_ping_at, m.created_at) + (m.interval_s + m.grace_s) * "
            "interval "
            "'1 second' < now() FOR UPDATE), u AS (UPDATE monitors m SET state = 'down', state_changed_at = "
            "now(), "
            "updated_at = now() FROM late WHERE m.id = late.id RETURNING m.id, m.project_id, m.name, "
            "m.connector_ids::text AS c) SELECT u.id, u.project_id, p.account_id, u.name, u.c, late.state "
            "FROM u "
            "JOIN late ON late.id = u.id JOIN projects p ON p.id = u.project_id",
            0, NULL, on_heartbeats_down, p) < 0) {
        p->error = "marking late heartbeats down";
        pass_end(p);
    }
}

/* ---- cleanup ------------------------------------------------------------------------------------ */

static void on_cleaned(PGresult *res, void *ud)
{
    struct pass *p = ud;
    if (!res) {
        log_failure("deleting expired notifications");
        p->error = "deleting expired notifications";
    } else if (PQntuples(res) == 1) {
        ldg_log_info(CTX, "cleanup notifications=%s events=%s deliveries=%s checks=%s", PQgetvalue(res, 0, 0),
                     PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
    }
    pass_end(p);
}

void ldg__alerting_cleanup(struct ldg_worker *w, const struct ldg_analytics_cfg *cfg, const bool *stopping,
                           ldg_alerting_done_fn done, void *ud)
{
    struct pass *p = pass_new(w, cfg, stopping, done, ud);
    char days[24], mdays[24];
    snprintf(days, sizeof days, "%" PRId64, cfg->notification_retention_days);
    snprintf(mdays, sizeof mdays, "%" PRId64, cfg->monitor_history_days);
    const char *params[] = {days, mdays};
    if (ldg_pgpool_query_prepared(w->pg_auth, "alr_cleanup",
                                  "WITH a AS (DELETE FROM notifications WHERE created_at < now() - $1::int * "
                                  "interval '1 day' RETURNING "
                                  "1), b AS (DELETE FROM alert_events WHERE status = 'resolved' AND "
                                  "resolved_at < now() - $1::int * "
                                  "interval '1 day' RETURNING 1), c AS (DELETE FROM connector_deliveries "
                                  "WHERE created_at < now() - "
                                  "$1::int * interval '1 day' RETURNING 1), d AS (DELETE FROM monitor_checks "
                                  "WHERE checked_at < now() - "
                                  "$2::int * interval '1 day' RETURNING 1) SELECT (SELECT count(*) FROM a), "
                                  "(SELECT count(*) FROM b), "
                                  "(SELECT count(*) FROM c), (SELECT count(*) FROM d)",
                                  2, params, on_cleaned, p) < 0) {
        p->error = "deleting expired notifications";
        pass_end(p);
    }
}
