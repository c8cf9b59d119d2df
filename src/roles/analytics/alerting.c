/*
 * alerting.c: the alerting jobs of the analytics role (see alerting.h, docs/alerts.md).
 *
 * Evaluator: one statement lists the enabled rules with what decides them (maintenance window,
 * snooze, cool-down, current state); each rule's metric is one statement on the logs database
 * (alert_eval_concurrency at once) over [now - window, now], with the rule's filter compiled by
 * the search language. The transition is one guarded statement on the rule (state = 'ok' →
 * 'firing' inserts an event; 'firing' → 'ok' resolves it), so a pass that runs twice changes
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

enum { R_ID, R_PROJECT, R_ACCOUNT, R_METRIC, R_FILTER, R_CMP, R_THRESHOLD, R_WINDOW, R_COOLDOWN, R_CONNECTORS,
       R_STATE, R_NAME, R_MAINT, R_SNOOZED, R_COOLING };

static const char SQL_RULES[] =
    "SELECT r.id, r.project_id, p.account_id, r.metric, r.filter, r.comparator, r.threshold, r.window_s, "
    "r.cooldown_s, r.connector_ids::text, r.state, r.name, "
    "EXISTS (SELECT 1 FROM maintenance_windows m WHERE m.project_id = r.project_id AND now() >= m.starts_at "
    "AND now() < m.ends_at), "
    "coalesce(r.snoozed_until > now(), false), "
    "coalesce(r.last_fired_at + r.cooldown_s * interval '1 second' > now(), false) "
    "FROM alert_rules r JOIN projects p ON p.id = r.project_id WHERE r.enabled "
    "ORDER BY r.last_evaluated_at NULLS FIRST, r.id LIMIT $1::int";

struct rule_run {
    struct pass *p;
    int row;
    char value[64]; /* text of the metric, "" = no data */
    bool has_value;
    struct ldg_arena arena;
};

static const char *cell(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void eval_next(struct pass *p);

static void rule_done(struct rule_run *rr)
{
    struct pass *p = rr->p;
    ldg_arena_free(&rr->arena);
    free(rr);
    p->inflight--;
    eval_next(p);
}

static void on_rule_written(PGresult *res, void *ud)
{
    struct rule_run *rr = ud;
    if (!res) {
        log_failure("writing a rule's state");
        rr->p->error = "writing rule states";
    }
    rule_done(rr);
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
    return strcmp(cmp, "gt") == 0 ? ">" : strcmp(cmp, "gte") == 0 ? ">=" : strcmp(cmp, "lt") == 0 ? "<" : "<=";
}

static void notify_rule(struct rule_run *rr, bool firing, const char *event_id)
{
    struct pass *p = rr->p;
    const PGresult *r = p->rows;
    int i = rr->row;
    char v[48];
    fmt_value(v, sizeof v, rr->has_value ? rr->value : NULL);
    char title[512];
    const char *name = PQgetvalue(r, i, R_NAME);
    if (firing)
        snprintf(title, sizeof title, "Alert firing: %s (%s %s %s, value %s)", name, PQgetvalue(r, i, R_METRIC),
                 symbol(PQgetvalue(r, i, R_CMP)), PQgetvalue(r, i, R_THRESHOLD), v);
    else
        snprintf(title, sizeof title, "Alert resolved: %s (%s %s)", name, PQgetvalue(r, i, R_METRIC), v);
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
    ldg_json_key(&jw, "comparator");
    ldg_json_str(&jw, PQgetvalue(r, i, R_CMP));
    ldg_json_key(&jw, "threshold");
    ldg_json_double(&jw, strtod(PQgetvalue(r, i, R_THRESHOLD), NULL));
    ldg_json_key(&jw, "value");
    if (rr->has_value)
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

static void on_fired(PGresult *res, void *ud)
{
    struct rule_run *rr = ud;
    if (!res) {
        log_failure("firing a rule");
        rr->p->error = "writing rule states";
    } else if (PQntuples(res) == 1 && !*rr->p->stopping) {
        notify_rule(rr, true, PQgetvalue(res, 0, 0));
    }
    rule_done(rr);
}

static void on_resolved(PGresult *res, void *ud)
{
    struct rule_run *rr = ud;
    const PGresult *r = rr->p->rows;
    bool quiet = strcmp(PQgetvalue(r, rr->row, R_MAINT), "t") == 0 || strcmp(PQgetvalue(r, rr->row, R_SNOOZED), "t") == 0;
    if (!res) {
        log_failure("resolving a rule");
        rr->p->error = "writing rule states";
    } else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0 && !quiet && !*rr->p->stopping) {
        notify_rule(rr, false, cell(res, 0, 1));
    }
    rule_done(rr);
}

static void decide(struct rule_run *rr)
{
    struct pass *p = rr->p;
    const PGresult *r = p->rows;
    int i = rr->row;
    bool firing = strcmp(PQgetvalue(r, i, R_STATE), "firing") == 0;
    bool breach = rr->has_value &&
                  compare(PQgetvalue(r, i, R_CMP), strtod(rr->value, NULL), strtod(PQgetvalue(r, i, R_THRESHOLD), NULL));
    bool quiet = strcmp(PQgetvalue(r, i, R_MAINT), "t") == 0 || strcmp(PQgetvalue(r, i, R_SNOOZED), "t") == 0 ||
                 strcmp(PQgetvalue(r, i, R_COOLING), "t") == 0;
    const char *params[] = {PQgetvalue(r, i, R_ID), rr->has_value ? rr->value : NULL};
    int rc;
    if (!firing && breach && !quiet)
        rc = ldg_pgpool_query_prepared(
            p->w->pg_auth, "alr_eval_fire",
            "WITH u AS (UPDATE alert_rules SET state = 'firing', last_fired_at = now(), last_value = $2::float8, "
            "last_evaluated_at = now() WHERE id = $1::bigint AND state = 'ok' RETURNING id, project_id, metric, "
            "comparator, threshold), e AS (INSERT INTO alert_events (rule_id, project_id, metric, comparator, "
            "threshold, value) SELECT id, project_id, metric, comparator, threshold, $2::float8 FROM u RETURNING "
            "id) SELECT id FROM e",
            2, params, on_fired, rr);
    else if (firing && !breach)
        rc = ldg_pgpool_query_prepared(
            p->w->pg_auth, "alr_eval_resolve",
            "WITH u AS (UPDATE alert_rules SET state = 'ok', last_value = $2::float8, last_evaluated_at = now() "
            "WHERE id = $1::bigint AND state = 'firing' RETURNING id), e AS (UPDATE alert_events SET status = "
            "'resolved', resolved_at = now(), resolved_value = $2::float8 WHERE rule_id IN (SELECT id FROM u) AND "
            "status = 'firing' RETURNING id) SELECT (SELECT count(*) FROM u), (SELECT max(id) FROM e)",
            2, params, on_resolved, rr);
    else
        rc = ldg_pgpool_query_prepared(p->w->pg_auth, "alr_eval_touch",
                                       "UPDATE alert_rules SET last_value = $2::float8, last_evaluated_at = now() "
                                       "WHERE id = $1::bigint",
                                       2, params, on_rule_written, rr);
    if (rc < 0) {
        p->error = "writing rule states";
        rule_done(rr);
    }
}

static void on_metric(PGresult *res, void *ud)
{
    struct rule_run *rr = ud;
    if (*rr->p->stopping) {
        rule_done(rr);
        return;
    }
    if (!res) {
        char what[96];
        snprintf(what, sizeof what, "computing the metric of rule %s", PQgetvalue(rr->p->rows, rr->row, R_ID));
        log_failure(what);
        rr->p->error = "computing rule metrics";
        rule_done(rr);
        return;
    }
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        snprintf(rr->value, sizeof rr->value, "%s", PQgetvalue(res, 0, 0));
        rr->has_value = true;
    }
    decide(rr);
}

#define DURATION_EXPR                                                                                        \
    "CASE WHEN attributes->'endpoint'->>'duration_ms' ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN "    \
    "(attributes->'endpoint'->>'duration_ms')::float8 END"

static void rule_start(struct pass *p, int row)
{
    struct rule_run *rr = ldg_calloc(1, sizeof *rr);
    rr->p = p;
    rr->row = row;
    ldg_arena_init(&rr->arena, NULL, 0);
    p->inflight++;
    const PGresult *r = p->rows;
    const char *metric = PQgetvalue(r, row, R_METRIC);
    struct ldg_qparams qp = {0};
    (void)ldg_qparams_add(&qp, &rr->arena, PQgetvalue(r, row, R_PROJECT));
    (void)ldg_qparams_add(&qp, &rr->arena, PQgetvalue(r, row, R_WINDOW));
    struct ldg_buf where;
    ldg_buf_init(&where);
    ldg_buf_puts(&where, "project_id = $1::bigint AND \"timestamp\" >= now() - $2::int * interval '1 second' AND "
                         "\"timestamp\" <= now()");
    const char *filter = cell(r, row, R_FILTER);
    if (filter && *filter) {
        struct ldg_qnode *root;
        struct ldg_qerror err;
        if (ldg_qlang_parse(filter, strlen(filter), &rr->arena, &root, &err) < 0) {
            ldg_log_warn(CTX, "rule=%s filter does not parse (%s): skipped", PQgetvalue(r, row, R_ID), err.msg);
            ldg_buf_free(&where);
            rule_done(rr);
            return;
        }
        ldg_buf_puts(&where, " AND (");
        ldg_qlang_compile(root, &rr->arena, &where, &qp);
        ldg_buf_puts(&where, ")");
    }
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    const char *pct = strcmp(metric, "p50_latency") == 0   ? "0.5"
                      : strcmp(metric, "p95_latency") == 0 ? "0.95"
                      : strcmp(metric, "p99_latency") == 0 ? "0.99"
                                                            : NULL;
    if (pct)
        ldg_buf_printf(&sql,
                       "SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY dur) FROM (SELECT " DURATION_EXPR
                       " AS dur FROM logs WHERE log_type = 'endpoint' AND %.*s) s WHERE dur IS NOT NULL",
                       pct, (int)ldg_buf_size(&where), ldg_buf_head(&where));
    else if (strcmp(metric, "error_rate") == 0)
        ldg_buf_printf(&sql,
                       "SELECT CASE WHEN count(*) = 0 THEN 0 ELSE 100.0 * count(*) FILTER (WHERE level IN ('error', "
                       "'critical')) / count(*) END::float8 FROM logs WHERE %.*s",
                       (int)ldg_buf_size(&where), ldg_buf_head(&where));
    else if (strcmp(metric, "error_count") == 0)
        ldg_buf_printf(&sql,
                       "SELECT (count(*) FILTER (WHERE level IN ('error', 'critical')))::float8 FROM logs WHERE %.*s",
                       (int)ldg_buf_size(&where), ldg_buf_head(&where));
    else
        ldg_buf_printf(&sql, "SELECT count(*)::float8 FROM logs WHERE %.*s", (int)ldg_buf_size(&where),
                       ldg_buf_head(&where));
    ldg_buf_put(&sql, "", 1);
    ldg_buf_free(&where);
    int rc = ldg_pgpool_query(p->w->pg_logs, ldg_buf_head(&sql), (int)qp.n, qp.v, on_metric, rr);
    ldg_buf_free(&sql);
    if (rc < 0) {
        p->error = "computing rule metrics";
        rule_done(rr);
    }
}

static void eval_next(struct pass *p)
{
    while (!*p->stopping && p->next < p->n && p->inflight < p->cfg->alert_eval_concurrency)
        rule_start(p, p->next++);
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
        notify_monitor(c->p->w, PQgetvalue(r, i, M_ID), PQgetvalue(r, i, M_PROJECT), PQgetvalue(r, i, M_ACCOUNT),
                       PQgetvalue(r, i, M_NAME), PQgetvalue(r, i, M_CONNECTORS), PQgetvalue(res, 0, 1),
                       PQgetvalue(res, 0, 0), c->status, c->latency, c->ok ? NULL : c->error);
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
            "WITH old AS (SELECT state FROM monitors WHERE id = $1::bigint), c AS (INSERT INTO monitor_checks "
            "(monitor_id, ok, latency_ms, status_code, error) VALUES ($1::bigint, $2::bool, $3::int, $4::int, $5)), "
            "u AS (UPDATE monitors SET last_check_at = now(), last_latency_ms = $3::int, last_status_code = $4::int, "
            "last_error = $5, checks_total = checks_total + 1, checks_up = checks_up + ($2::bool)::int, state = "
            "CASE WHEN $2::bool THEN 'up' ELSE 'down' END, state_changed_at = CASE WHEN state = CASE WHEN $2::bool "
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
            "m.connector_ids::text FROM monitors m JOIN projects p ON p.id = m.project_id WHERE m.kind = 'http' "
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
            "m.state <> 'down' AND coalesce(m.last_ping_at, m.created_at) + (m.interval_s + m.grace_s) * interval "
            "'1 second' < now() FOR UPDATE), u AS (UPDATE monitors m SET state = 'down', state_changed_at = now(), "
            "updated_at = now() FROM late WHERE m.id = late.id RETURNING m.id, m.project_id, m.name, "
            "m.connector_ids::text AS c) SELECT u.id, u.project_id, p.account_id, u.name, u.c, late.state FROM u "
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
    if (ldg_pgpool_query_prepared(
            w->pg_auth, "alr_cleanup",
            "WITH a AS (DELETE FROM notifications WHERE created_at < now() - $1::int * interval '1 day' RETURNING "
            "1), b AS (DELETE FROM alert_events WHERE status = 'resolved' AND resolved_at < now() - $1::int * "
            "interval '1 day' RETURNING 1), c AS (DELETE FROM connector_deliveries WHERE created_at < now() - "
            "$1::int * interval '1 day' RETURNING 1), d AS (DELETE FROM monitor_checks WHERE checked_at < now() - "
            "$2::int * interval '1 day' RETURNING 1) SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), "
            "(SELECT count(*) FROM c), (SELECT count(*) FROM d)",
            2, params, on_cleaned, p) < 0) {
        p->error = "deleting expired notifications";
        pass_end(p);
    }
}
