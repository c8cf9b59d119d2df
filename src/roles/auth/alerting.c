/*
 * alerting.c: alert rules, their history and maintenance windows (docs/alerts.md, docs/api.md
 * "Alerts"). The evaluator that moves rules between `ok` and `firing` is a job of the analytics
 * role (roles/analytics/alerting.c).
 *
 *   GET/POST          /api/v1/alerts/rules                 (?project_id)
 *   GET/PATCH/DELETE  /api/v1/alerts/rules/{rule_id}
 *   POST              /api/v1/alerts/rules/{rule_id}/enable, /disable
 *   GET               /api/v1/alerts/history               (?project_id, rule_id, status, limit, offset)
 *   POST              /api/v1/alerts/history/{event_id}/ack
 *   POST              /api/v1/alerts/history/{event_id}/snooze   {"minutes"}
 *   GET/POST          /api/v1/maintenance-windows          (?project_id)
 *   DELETE            /api/v1/maintenance-windows/{window_id}
 *
 * Everything is project-scoped: the project (of the rule, event or window) must be the caller's:
 * none → 404, someone else's → 403 (decisions D2). Connectors named by a rule must be the
 * caller's (400 otherwise). A rule's filter is parsed with the search language when it is saved
 * (400 with the position when malformed), so the evaluator never meets a bad one.
 *
 * Threading: the worker's loop thread, like every auth handler.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ingest/logentry.h"
#include "query/qlang.h"
#include "roles/auth/auth.h"

#define BODY_MAX (16 * 1024)
#define MSG_TIMEOUT "Service timeout"
#define MSG_NO_PROJECT "Project not found"
#define MSG_PROJECT_DENIED "You don't have permission to access this project"
#define MSG_NO_RULE "Alert rule not found"
#define MSG_NO_EVENT "Alert event not found"
#define MSG_NO_WINDOW "Maintenance window not found"
#define MSG_BAD_CONNECTORS "Unknown connector id: connectors must belong to your account"

static const struct ldg_auth_errs ERRS_ALERTS = {MSG_TIMEOUT, "Alert operation failed", NULL};

static const char *const metrics[] = {"error_rate",  "error_count", "log_volume", "p50_latency",
                                      "p95_latency", "p99_latency", "custom",     NULL};
static const char *const aggregations[] = {"avg", "min", "max", "sum", "last", "count", NULL};
static const char *const comparators[] = {"gt", "gte", "lt", "lte", NULL};
static const char *const comparator_symbols[] = {">", ">=", "<", "<=", NULL};

#define ISO(c) LDG_SQL_ISO(c)
#define RULE_JSON                                                                                                                                                                 \
    "json_build_object('id', r.id, 'project_id', r.project_id, 'name', r.name, 'metric', r.metric, "                                                                              \
    "'metric_name', r.metric_name, 'aggregation', r.aggregation, "                                                                                                \
    "'filter', r.filter, 'comparator', r.comparator, 'threshold', r.threshold, 'unit', CASE WHEN r.metric "                                                                       \
    "= 'error_rate' THEN 'percent' WHEN r.metric LIKE 'p%_latency' THEN 'ms' WHEN r.metric = 'custom' THEN "                                                                      \
    "NULL ELSE 'count' END, 'window_s', "                                                                      \
    "r.window_s, 'cooldown_s', r.cooldown_s, 'connector_ids', to_json(r.connector_ids), 'enabled', "                                                                              \
    "r.enabled, 'state', r.state, 'last_value', r.last_value, 'last_evaluated_at', " ISO("r.last_evaluated_"                                                                      \
                                                                                         "at") ", "                                                                               \
                                                                                               "'last_"                                                                           \
                                                                                               "fired_at',"                                                                       \
                                                                                               " " ISO("r."                                                                       \
                                                                                                       "las"                                                                      \
                                                                                                       "t_"                                                                       \
                                                                                                       "fir"                                                                      \
                                                                                                       "ed_"                                                                      \
                                                                                                       "at") ", 'snoozed_until', " ISO("r.snoozed_until") ", 'created_at', " ISO( \
                                                                                                   "r."                                                                           \
                                                                                                   "created"                                                                      \
                                                                                                   "_at") ", 'updated_at', " ISO("r.updated_at") ")"

#define EVENT_JSON                                                                                           \
    "json_build_object('id', e.id, 'rule_id', e.rule_id, 'rule_name', (SELECT name FROM alert_rules x "      \
    "WHERE "                                                                                                 \
    "x.id = e.rule_id), 'project_id', e.project_id, 'metric', e.metric, 'comparator', e.comparator, "        \
    "'threshold', e.threshold, 'value', e.value, 'status', e.status, 'fired_at', " ISO(                      \
        "e.fired_at") ", 'resolved_at', " ISO("e.resolved_at") ", 'resolved_value', e.resolved_value, "      \
                                                               "'acked_at', " ISO("e.acked_at") ", "         \
                                                                                                "'acked_by'" \
                                                                                                ", "         \
                                                                                                "e.acked_"   \
                                                                                                "by, "       \
                                                                                                "'snoozed_"  \
                                                                                                "until',"    \
                                                                                                " " ISO(     \
                                                                                                    "e."     \
                                                                                                    "snooze" \
                                                                                                    "d_"     \
                                                                                                    "until") ")"

#define WINDOW_JSON                                                                                          \
    "json_build_object('id', m.id, 'project_id', m.project_id, 'starts_at', " ISO(                           \
        "m.starts_at") ", 'ends_at', " ISO("m.ends_at") ", 'reason', m.reason, 'active', now() >= "          \
                                                        "m.starts_at "                                       \
                                                        "AND now() < m.ends_at, 'created_at', " ISO(         \
                                                            "m.created_at") ")"

/* The connector ids $K (array text) all belong to account $A. */
#define CONNECTORS_OK(K, A)                                                                                  \
    "(SELECT count(*) FROM connectors WHERE id = ANY(" K "::bigint[]) AND account_id = " A                   \
    "::bigint) = (SELECT count(DISTINCT x) FROM unnest(" K "::bigint[]) x)"

static int pick(const char *v, const char *const *set)
{
    for (int i = 0; set[i]; i++)
        if (strcmp(set[i], v) == 0)
            return i;
    return -1;
}

struct rule_in {
    int64_t project_id, window_s, cooldown_s;
    const char *name, *metric, *comparator, *filter, *connectors;
    const char *metric_name, *aggregation; /* custom metrics */
    double threshold;
    bool has_threshold, enabled;
    int has_enabled;
    bool filter_given;
};

static bool read_threshold(struct ldg_req *req, const cJSON *body, bool required, struct rule_in *in)
{
    const cJSON *v = ldg_json_member(body, "threshold");
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            ldg__auth_422(req, "body", "threshold", "missing", "Field required", body);
            return false;
        }
        return true;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != v->valuedouble || v->valuedouble > 1e15 ||
        v->valuedouble < -1e15) {
        ldg__auth_422(req, "body", "threshold", "float_type", "Input should be a valid number", v);
        return false;
    }
    in->threshold = v->valuedouble;
    in->has_threshold = true;
    return true;
}

/* Fields of a rule body; `create` requires project_id, name, metric, comparator, threshold. */
static bool read_rule(struct ldg_req *req, const cJSON *body, bool create, struct rule_in *in)
{
    const char *s;
    if (create && ldg__auth_int(req, body, "project_id", true, 1, INT64_MAX / 10, &in->project_id) < 0)
        return false;
    if (ldg__auth_str(req, body, "name", create, 1, 255, &in->name) < 0)
        return false;
    if (ldg__auth_str(req, body, "metric", create, 1, 32, &s) < 0)
        return false;
    if (s) {
        int i = pick(s, metrics);
        if (i < 0) {
            ldg__auth_422(req, "body", "metric", "literal_error",
                          "Input should be 'error_rate', 'error_count', 'log_volume', 'p50_latency', "
                          "'p95_latency', 'p99_latency' or 'custom'",
                          ldg_json_member(body, "metric"));
            return false;
        }
        in->metric = metrics[i];
    }
    if (ldg__auth_str(req, body, "metric_name", false, 1, 255, &in->metric_name) < 0)
        return false;
    if (ldg__auth_str(req, body, "aggregation", false, 1, 8, &s) < 0)
        return false;
    if (s) {
        int i = pick(s, aggregations);
        if (i < 0) {
            ldg__auth_422(req, "body", "aggregation", "literal_error",
                          "Input should be 'avg', 'min', 'max', 'sum', 'last' or 'count'",
                          ldg_json_member(body, "aggregation"));
            return false;
        }
        in->aggregation = aggregations[i];
    }
    bool custom = in->metric && strcmp(in->metric, "custom") == 0;
    if (custom && !in->metric_name) { /* also on PATCH: a rule turned custom names its metric */
        ldg__auth_422(req, "body", "metric_name", "missing", "Field required with metric 'custom'", body);
        return false;
    }
    if (in->metric && !custom && (in->metric_name || in->aggregation)) {
        ldg__auth_422(req, "body", in->metric_name ? "metric_name" : "aggregation", "value_error",
                      "Value error, only rules with metric 'custom' take metric_name and aggregation",
                      ldg_json_member(body, in->metric_name ? "metric_name" : "aggregation"));
        return false;
    }
    if (custom && !in->aggregation)
        in->aggregation = "avg";
    if (in->metric_name)
        in->metric_name = ldg_arena_strndup(&req->arena, in->metric_name, strlen(in->metric_name));
    if (ldg__auth_str(req, body, "comparator", create, 1, 4, &s) < 0)
        return false;
    if (s) {
        int i = pick(s, comparators);
        if (i < 0)
            i = pick(s, comparator_symbols);
        if (i < 0) {
            ldg__auth_422(req, "body", "comparator", "literal_error",
                          "Input should be 'gt', 'gte', 'lt' or 'lte' (or >, >=, <, <=)",
                          ldg_json_member(body, "comparator"));
            return false;
        }
        in->comparator = comparators[i];
    }
    if (!read_threshold(req, body, create, in))
        return false;
    int64_t v;
    int rc = ldg__auth_int(req, body, "window_s", false, 60, 86400, &v);
    if (rc < 0)
        return false;
    in->window_s = rc ? v : (create ? 300 : 0);
    rc = ldg__auth_int(req, body, "cooldown_s", false, 0, 7 * 86400, &v);
    if (rc < 0)
        return false;
    in->cooldown_s = rc ? v : (create ? 900 : -1);
    const cJSON *f = ldg_json_member(body, "filter");
    if (f) {
        in->filter_given = true;
        if (ldg__auth_str(req, body, "filter", false, 0, LDG_QLANG_MAX_LEN, &in->filter) < 0)
            return false;
        if (in->filter && !*in->filter)
            in->filter = NULL;
        if (in->filter) {
            struct ldg_qnode *root;
            struct ldg_qerror err;
            if (ldg_qlang_parse(in->filter, strlen(in->filter), &req->arena, &root, &err) < 0) {
                ldg_req_error(req, 400,
                              ldg__auth_printf(req, "Invalid filter at position %zu: %s", err.pos, err.msg));
                return false;
            }
            in->filter = ldg_arena_strndup(&req->arena, in->filter, strlen(in->filter));
        }
    }
    if (custom && in->filter) {
        ldg__auth_422(req, "body", "filter", "value_error",
                      "Value error, a filter applies to log metrics, not to metric 'custom'",
                      ldg_json_member(body, "filter"));
        return false;
    }
    if (ldg__auth_id_list(req, body, "connector_ids", &in->connectors) < 0)
        return false;
    if ((in->has_enabled = ldg__auth_bool(req, body, "enabled", &in->enabled)) < 0)
        return false;
    if (in->name)
        in->name = ldg_arena_strndup(&req->arena, in->name, strlen(in->name));
    return true;
}

static const char *dbl(struct ldg_req *req, double v)
{
    return ldg__auth_printf(req, "%.17g", v);
}

static void create_rule(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    struct rule_in in = {.enabled = true};
    bool ok = read_rule(req, body, true, &in);
    cJSON_Delete(body);
    if (!ok)
        return;
    const char *params[] = {ldg__auth_itoa(req, in.project_id),
                            ldg__auth_itoa(req, p->account_id),
                            in.name,
                            in.metric,
                            in.filter,
                            in.comparator,
                            dbl(req, in.threshold),
                            ldg__auth_itoa(req, in.window_s),
                            ldg__auth_itoa(req, in.cooldown_s),
                            in.connectors ? in.connectors : "{}",
                            in.has_enabled == 1 && !in.enabled ? "f" : "t",
                            in.metric_name,
                            in.aggregation};
    static const struct ldg_auth_json_answer ans = {.status = 201,
                                                    .missing = MSG_NO_PROJECT,
                                                    .forbidden = MSG_PROJECT_DENIED,
                                                    .invalid = MSG_BAD_CONNECTORS};
    ldg__auth_json(
        req, "alr_rule_create",
        "WITH p AS (SELECT id, account_id FROM projects WHERE id = $1::bigint), ok AS (SELECT " CONNECTORS_OK(
            "$10",
            "$2") " AS good), "
                  "r AS (INSERT INTO alert_rules (project_id, name, metric, filter, comparator, threshold, "
                  "window_s, cooldown_s, connector_ids, enabled, metric_name, aggregation) SELECT p.id, $3, $4, "
                  "$5, $6, $7::float8, $8::int, $9::int, $10::bigint[], $11::bool, $12, $13 FROM p, ok WHERE "
                  "p.account_id = $2::bigint "
                  "AND ok.good RETURNING *) "
                  "SELECT p.account_id, (SELECT " RULE_JSON "::text FROM r), (SELECT good FROM ok) FROM p",
        13, params, &ERRS_ALERTS, &ans);
}

/* The caller's projects, or one of them (?project_id, checked: 404/403 through `missing`). */
static void list_rules(struct ldg_req *req)
{
    int64_t pid;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || ldg__auth_query_int(req, "project_id", 0, 1, INT64_MAX / 10, &pid) < 0)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id), ldg__auth_itoa(req, pid)};
    if (pid) {
        static const struct ldg_auth_json_answer ans = {
            .status = 200, .missing = MSG_NO_PROJECT, .forbidden = MSG_PROJECT_DENIED};
        ldg__auth_json(
            req, "alr_rule_list_project",
            "SELECT p.account_id, (SELECT json_build_object('rules', coalesce(json_agg(" RULE_JSON
            " ORDER BY r.id), '[]'::json), 'total', count(*))::text FROM alert_rules r WHERE "
            "r.project_id = p.id) FROM projects p WHERE p.id = $2::bigint AND $1::bigint IS NOT NULL",
            2, params, &ERRS_ALERTS, &ans);
        return;
    }
    static const struct ldg_auth_json_answer ans = {.status = 200};
    ldg__auth_json(
        req, "alr_rule_list",
        "SELECT json_build_object('rules', coalesce(json_agg(" RULE_JSON
        " ORDER BY r.id), '[]'::json), 'total', count(*))::text FROM alert_rules r JOIN projects p ON "
        "p.id = r.project_id WHERE p.account_id = $1::bigint AND $2::bigint = 0",
        2, params, &ERRS_ALERTS, &ans);
}

static const struct ldg_auth_json_answer RULE_ANS = {
    .status = 200, .missing = MSG_NO_RULE, .forbidden = MSG_PROJECT_DENIED, .invalid = MSG_BAD_CONNECTORS};

#define RULE_OWNER                                                                                           \
    "SELECT r.id, p.account_id FROM alert_rules r JOIN projects p ON p.id = r.project_id WHERE r.id = "      \
    "$1::bigint"

static void get_rule(struct ldg_req *req)
{
    ldg__auth_json_by_id(req, "rule_id", false, "alr_rule_get",
                         "SELECT p.account_id, " RULE_JSON
                         "::text FROM alert_rules r JOIN projects p ON p.id = "
                         "r.project_id WHERE r.id = $1::bigint",
                         &ERRS_ALERTS, &RULE_ANS);
}

static void patch_rule(struct ldg_req *req)
{
    int64_t id;
    const struct ldg_principal *p;
    cJSON *body = ldg__auth_id_body(req, "rule_id", &id, &p);
    if (!body)
        return;
    struct rule_in in = {0};
    bool ok = read_rule(req, body, false, &in);
    cJSON_Delete(body);
    if (!ok)
        return;
    const char *params[] = {ldg__auth_itoa(req, id),
                            ldg__auth_itoa(req, p->account_id),
                            in.name,
                            in.metric,
                            in.filter_given ? "t" : "f",
                            in.filter,
                            in.comparator,
                            in.has_threshold ? dbl(req, in.threshold) : NULL,
                            in.window_s ? ldg__auth_itoa(req, in.window_s) : NULL,
                            in.cooldown_s >= 0 ? ldg__auth_itoa(req, in.cooldown_s) : NULL,
                            in.connectors ? in.connectors : "{}",
                            in.connectors ? "t" : "f",
                            in.has_enabled == 1 ? (in.enabled ? "t" : "f") : NULL,
                            in.metric_name,
                            in.aggregation};
    ldg__auth_json(
        req, "alr_rule_patch",
        "WITH o AS (" RULE_OWNER "), ok AS (SELECT " CONNECTORS_OK(
            "$11",
            "$2") " AS good), "
                  "r AS (UPDATE alert_rules r SET name = coalesce($3, r.name), metric = coalesce($4, "
                  "r.metric), "
                  /* a rule leaving 'custom' drops its name and aggregation; one staying keeps them
                     unless given (the table's CHECK refuses a mix) */
                  "metric_name = CASE WHEN coalesce($4, r.metric) <> 'custom' THEN NULL ELSE "
                  "coalesce($14, r.metric_name) END, aggregation = CASE WHEN coalesce($4, r.metric) <> "
                  "'custom' THEN NULL ELSE coalesce($15, r.aggregation, 'avg') END, "
                  "filter = CASE WHEN $5::bool THEN $6 ELSE r.filter END, comparator = coalesce($7, "
                  "r.comparator), "
                  "threshold = coalesce($8::float8, r.threshold), window_s = coalesce($9::int, r.window_s), "
                  "cooldown_s = coalesce($10::int, r.cooldown_s), connector_ids = CASE WHEN $12::bool THEN "
                  "$11::bigint[] ELSE r.connector_ids END, enabled = coalesce($13::bool, r.enabled), "
                  "updated_at = now() FROM o, ok WHERE r.id = o.id AND o.account_id = $2::bigint AND ok.good "
                  "RETURNING r.*) "
                  "SELECT o.account_id, (SELECT " RULE_JSON "::text FROM r), (SELECT good FROM ok) FROM o",
        15, params, &ERRS_ALERTS, &RULE_ANS);
}

static void set_enabled(struct ldg_req *req, bool on)
{
    int64_t id;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || !ldg__auth_path_id(req, "rule_id", &id))
        return;
    const char *params[] = {ldg__auth_itoa(req, id), ldg__auth_itoa(req, p->account_id), on ? "t" : "f"};
    ldg__auth_json(req, "alr_rule_enable",
                   "WITH o AS (" RULE_OWNER
                   "), r AS (UPDATE alert_rules r SET enabled = $3::bool, updated_at = "
                   "now() FROM o WHERE r.id = o.id AND o.account_id = $2::bigint RETURNING r.*) "
                   "SELECT o.account_id, (SELECT " RULE_JSON "::text FROM r) FROM o",
                   3, params, &ERRS_ALERTS, &RULE_ANS);
}

static void enable_rule(struct ldg_req *req)
{
    set_enabled(req, true);
}

static void disable_rule(struct ldg_req *req)
{
    set_enabled(req, false);
}

static void delete_rule(struct ldg_req *req)
{
    static const struct ldg_auth_json_answer ans = {
        .status = 204, .missing = MSG_NO_RULE, .forbidden = MSG_PROJECT_DENIED};
    ldg__auth_json_by_id(
        req, "rule_id", true, "alr_rule_delete",
        "WITH o AS (" RULE_OWNER "), d AS (DELETE FROM alert_rules r USING o WHERE r.id = o.id AND "
        "o.account_id = $2::bigint RETURNING r.id) SELECT o.account_id, (SELECT 'x' FROM d) FROM o",
        &ERRS_ALERTS, &ans);
}

/* ---- history ------------------------------------------------------------------------------------- */

static void list_history(struct ldg_req *req)
{
    int64_t pid, rid, limit, offset;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || ldg__auth_query_int(req, "project_id", 0, 1, INT64_MAX / 10, &pid) < 0 ||
        ldg__auth_query_int(req, "rule_id", 0, 1, INT64_MAX / 10, &rid) < 0 ||
        ldg__auth_query_int(req, "limit", 50, 1, 500, &limit) < 0 ||
        ldg__auth_query_int(req, "offset", 0, 0, 100000, &offset) < 0)
        return;
    struct ldg_str st;
    const char *status = NULL;
    if (ldg_req_query(req, "status", &st)) {
        status = ldg_arena_strndup(&req->arena, st.p, st.n);
        if (strcmp(status, "firing") != 0 && strcmp(status, "resolved") != 0) {
            cJSON *in = cJSON_CreateString(status);
            ldg__auth_422(req, "query", "status", "literal_error", "Input should be 'firing' or 'resolved'",
                          in);
            cJSON_Delete(in);
            return;
        }
    }
    if (!pid) {
        ldg__auth_422(req, "query", "project_id", "missing", "Field required", NULL);
        return;
    }
    const char *params[] = {ldg__auth_itoa(req, pid), rid ? ldg__auth_itoa(req, rid) : NULL, status,
                            ldg__auth_itoa(req, limit), ldg__auth_itoa(req, offset)};
    static const struct ldg_auth_json_answer ans = {
        .status = 200, .missing = MSG_NO_PROJECT, .forbidden = MSG_PROJECT_DENIED};
    ldg__auth_json(
        req, "alr_history",
        "SELECT p.account_id, json_build_object('project_id', p.id, 'events', coalesce((SELECT "
        "json_agg(" EVENT_JSON " ORDER BY e.id DESC) FROM (SELECT * FROM alert_events WHERE project_id "
        "= p.id AND ($2::bigint IS NULL OR rule_id = $2::bigint) AND ($3::text IS NULL OR status = $3) "
        "ORDER BY id DESC LIMIT $4::int OFFSET $5::int) e), '[]'::json), 'total', (SELECT count(*) FROM "
        "alert_events WHERE project_id = p.id AND ($2::bigint IS NULL OR rule_id = $2::bigint) AND "
        "($3::text IS NULL OR status = $3)))::text FROM projects p WHERE p.id = $1::bigint",
        5, params, &ERRS_ALERTS, &ans);
}

#define EVENT_OWNER                                                                                          \
    "SELECT e.id, e.rule_id, p.account_id FROM alert_events e JOIN projects p ON p.id = e.project_id WHERE " \
    "e.id = $1::bigint"

static const struct ldg_auth_json_answer EVENT_ANS = {
    .status = 200, .missing = MSG_NO_EVENT, .forbidden = MSG_PROJECT_DENIED};

static void ack_event(struct ldg_req *req)
{
    ldg__auth_json_by_id(
        req, "event_id", true, "alr_event_ack",
        "WITH o AS (" EVENT_OWNER "), e AS (UPDATE alert_events e SET acked_at = coalesce(e.acked_at, "
        "now()), acked_by = coalesce(e.acked_by, $2::bigint) FROM o WHERE e.id = o.id AND o.account_id "
        "= $2::bigint RETURNING e.*) SELECT o.account_id, (SELECT " EVENT_JSON "::text FROM e) FROM o",
        &ERRS_ALERTS, &EVENT_ANS);
}

/* Snooze: the event and its rule stay quiet (no new firing is notified) for `minutes`. */
static void snooze_event(struct ldg_req *req)
{
    int64_t id, minutes = 60;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || !ldg__auth_path_id(req, "event_id", &id))
        return;
    if (ldg_buf_size(&req->body)) {
        cJSON *body = ldg__auth_body(req);
        if (!body)
            return;
        int rc = ldg__auth_int(req, body, "minutes", false, 1, 7 * 24 * 60, &minutes);
        cJSON_Delete(body);
        if (rc < 0)
            return;
        if (rc == 0)
            minutes = 60;
    }
    const char *params[] = {ldg__auth_itoa(req, id), ldg__auth_itoa(req, p->account_id),
                            ldg__auth_itoa(req, minutes)};
    ldg__auth_json(
        req, "alr_event_snooze",
        "WITH o AS (" EVENT_OWNER "), e AS (UPDATE alert_events e SET snoozed_until = now() + "
        "$3::int * interval '1 minute' FROM o WHERE e.id = o.id AND o.account_id = $2::bigint "
        "RETURNING e.*), r AS (UPDATE alert_rules r SET snoozed_until = e.snoozed_until FROM e WHERE "
        "r.id = e.rule_id RETURNING r.id) SELECT o.account_id, (SELECT " EVENT_JSON
        "::text FROM e) FROM o, (SELECT count(*) FROM r) rr",
        3, params, &ERRS_ALERTS, &EVENT_ANS);
}

/* ---- maintenance windows ---------------------------------------------------------------------------- */

static bool read_time(struct ldg_req *req, const cJSON *body, const char *field, int64_t *us)
{
    const cJSON *v = ldg_json_member(body, field);
    if (!v || cJSON_IsNull(v)) {
        ldg__auth_422(req, "body", field, "missing", "Field required", body);
        return false;
    }
    int32_t off;
    char err[160];
    if (ldg_logentry_parse_time(v, us, &off, err, sizeof err) < 0) {
        ldg__auth_422(req, "body", field, "datetime_parsing",
                      ldg__auth_printf(req, "Input should be a date-time with an offset or 'Z': %s", err), v);
        return false;
    }
    return true;
}

static void create_window(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    int64_t pid, from, to;
    const char *reason = NULL;
    bool ok = ldg__auth_int(req, body, "project_id", true, 1, INT64_MAX / 10, &pid) >= 0 &&
              read_time(req, body, "starts_at", &from) && read_time(req, body, "ends_at", &to) &&
              ldg__auth_str(req, body, "reason", false, 0, 255, &reason) >= 0;
    if (ok && to <= from) {
        ldg_req_error(req, 400, "ends_at must be after starts_at");
        ok = false;
    }
    if (reason)
        reason = ldg_arena_strndup(&req->arena, reason, strlen(reason));
    cJSON_Delete(body);
    if (!ok)
        return;
    const char *params[] = {ldg__auth_itoa(req, pid), ldg__auth_itoa(req, p->account_id),
                            ldg__auth_itoa(req, from), ldg__auth_itoa(req, to), reason};
    static const struct ldg_auth_json_answer ans = {
        .status = 201, .missing = MSG_NO_PROJECT, .forbidden = MSG_PROJECT_DENIED};
    ldg__auth_json(
        req, "alr_window_create",
        "WITH p AS (SELECT id, account_id FROM projects WHERE id = $1::bigint), m AS (INSERT INTO "
        "maintenance_windows (project_id, starts_at, ends_at, reason) SELECT p.id, to_timestamp("
        "$3::bigint / 1000000.0), to_timestamp($4::bigint / 1000000.0), $5 FROM p WHERE p.account_id "
        "= $2::bigint RETURNING *) SELECT p.account_id, (SELECT " WINDOW_JSON "::text FROM m) FROM p",
        5, params, &ERRS_ALERTS, &ans);
}

static void list_windows(struct ldg_req *req)
{
    int64_t pid;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || ldg__auth_query_int(req, "project_id", 0, 1, INT64_MAX / 10, &pid) < 0)
        return;
    if (!pid) {
        ldg__auth_422(req, "query", "project_id", "missing", "Field required", NULL);
        return;
    }
    const char *params[] = {ldg__auth_itoa(req, pid)};
    static const struct ldg_auth_json_answer ans = {
        .status = 200, .missing = MSG_NO_PROJECT, .forbidden = MSG_PROJECT_DENIED};
    ldg__auth_json(req, "alr_window_list",
                   "SELECT p.account_id, (SELECT json_build_object('windows', coalesce(json_agg(" WINDOW_JSON
                   " ORDER BY m.starts_at DESC, m.id DESC), '[]'::json), 'total', count(*))::text FROM "
                   "maintenance_windows m WHERE m.project_id = p.id) FROM projects p WHERE p.id = $1::bigint",
                   1, params, &ERRS_ALERTS, &ans);
}

static void delete_window(struct ldg_req *req)
{
    static const struct ldg_auth_json_answer ans = {
        .status = 204, .missing = MSG_NO_WINDOW, .forbidden = MSG_PROJECT_DENIED};
    ldg__auth_json_by_id(
        req, "window_id", true, "alr_window_delete",
        "WITH o AS (SELECT m.id, p.account_id FROM maintenance_windows m JOIN projects p ON p.id = "
        "m.project_id WHERE m.id = $1::bigint), d AS (DELETE FROM maintenance_windows m USING o WHERE "
        "m.id = o.id AND o.account_id = $2::bigint RETURNING m.id) SELECT o.account_id, (SELECT 'x' "
        "FROM d) FROM o",
        &ERRS_ALERTS, &ans);
}

void ldg__auth_alerting_routes(struct ldg_router *r)
{
    const unsigned acc = LDG_ROUTE_ACCOUNT;
    ldg__auth_route(r, "GET", "/api/v1/alerts/rules", list_rules, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/alerts/rules", create_rule, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/alerts/rules/{rule_id}", get_rule, acc, BODY_MAX);
    ldg__auth_route(r, "PATCH", "/api/v1/alerts/rules/{rule_id}", patch_rule, acc, BODY_MAX);
    ldg__auth_route(r, "DELETE", "/api/v1/alerts/rules/{rule_id}", delete_rule, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/alerts/rules/{rule_id}/enable", enable_rule, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/alerts/rules/{rule_id}/disable", disable_rule, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/alerts/history", list_history, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/alerts/history/{event_id}/ack", ack_event, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/alerts/history/{event_id}/snooze", snooze_event, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/maintenance-windows", list_windows, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/maintenance-windows", create_window, acc, BODY_MAX);
    ldg__auth_route(r, "DELETE", "/api/v1/maintenance-windows/{window_id}", delete_window, acc, BODY_MAX);
}
