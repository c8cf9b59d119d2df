/*
 * monitors.c: uptime and heartbeat monitors (docs/alerts.md "Monitors", docs/api.md "Monitors").
 *
 *   GET/POST          /api/v1/monitors                    (?project_id; the list is a bare array)
 *   GET/PATCH/DELETE  /api/v1/monitors/{monitor_id}
 *   GET               /api/v1/monitors/{monitor_id}/checks (latency and uptime of http checks)
 *   POST, GET         /api/v1/monitors/{token}/ping        (public: 204, unknown token 404)
 *
 * The checker (analytics role, roles/analytics/alerting.c) requests http monitors and marks late
 * heartbeats down; a ping marks its heartbeat up here and, when that is a change, notifies the
 * monitor's connectors. Ownership as everywhere: the monitor's project must be the caller's.
 *
 * Threading: the worker's loop thread, like every auth handler.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/dispatch.h"
#include "core/json.h"
#include "core/log.h"
#include "http/client.h"
#include "roles/auth/auth.h"

#define BODY_MAX (16 * 1024)
#define MSG_TIMEOUT "Service timeout"
#define MSG_NO_PROJECT "Project not found"
#define MSG_PROJECT_DENIED "You don't have permission to access this project"
#define MSG_NO_MONITOR "Monitor not found"
#define MSG_BAD_CONNECTORS "Unknown connector id: connectors must belong to your account"
#define TOKEN_BYTES 16

static const struct ldg_auth_errs ERRS_MONITORS = {MSG_TIMEOUT, "Monitor operation failed", NULL};

#define ISO(c) LDG_SQL_ISO(c)
#define MONITOR_JSON                                                                                         \
    "json_build_object('id', m.id, 'project_id', m.project_id, 'kind', m.kind, 'name', m.name, "             \
    "'target_url', m.target_url, 'interval_s', m.interval_s, 'timeout_s', m.timeout_s, 'expected_status', "  \
    "m.expected_status, 'grace_s', m.grace_s, 'token', m.token, 'ping_url', '/api/v1/monitors/' || m.token " \
    "|| '/ping', 'connector_ids', to_json(m.connector_ids), 'enabled', m.enabled, 'state', m.state, "        \
    "'state_changed_at', " ISO("m.state_changed_at") ", 'last_ping_at', " ISO(                               \
        "m.last_ping_at") ", 'last_check_at', " ISO("m.last_check_at") ", 'last_latency_ms', "               \
                                                                       "m.last_latency_ms, "                 \
                                                                       "'last_status_code', "                \
                                                                       "m.last_status_code, 'last_error', "  \
                                                                       "m.last_error, 'checks_total', "      \
                                                                       "m.checks_total, 'uptime_percent', "  \
                                                                       "CASE WHEN "                          \
                                                                       "m.checks_total > 0 THEN "            \
                                                                       "round(m.checks_up * 100.0 / "        \
                                                                       "m.checks_total, 2) END, "            \
                                                                       "'created_at', " ISO(                 \
                                                                           "m.created_at") ", "              \
                                                                                           "'updated_at',"   \
                                                                                           " " ISO("m."      \
                                                                                                   "updated" \
                                                                                                   "_at") ")"

#define CONNECTORS_OK(K, A)                                                                                  \
    "(SELECT count(*) FROM connectors WHERE id = ANY(" K "::bigint[]) AND account_id = " A                   \
    "::bigint) = (SELECT count(DISTINCT x) FROM unnest(" K "::bigint[]) x)"

#define MONITOR_OWNER                                                                                        \
    "SELECT m.id, p.account_id FROM monitors m JOIN projects p ON p.id = m.project_id WHERE m.id = "         \
    "$1::bigint"

struct monitor_in {
    int64_t project_id, interval_s, timeout_s, expected_status, grace_s;
    int has_interval, has_timeout, has_expected, has_grace, has_enabled;
    const char *kind, *name, *url, *connectors;
    bool enabled, url_given;
};

static bool read_monitor(struct ldg_req *req, const cJSON *body, bool create, struct monitor_in *in)
{
    if (create && ldg__auth_int(req, body, "project_id", true, 1, INT64_MAX / 10, &in->project_id) < 0)
        return false;
    if (create) {
        if (ldg__auth_str(req, body, "kind", true, 1, 16, &in->kind) < 0)
            return false;
        if (strcmp(in->kind, "http") != 0 && strcmp(in->kind, "heartbeat") != 0) {
            ldg__auth_422(req, "body", "kind", "literal_error", "Input should be 'http' or 'heartbeat'",
                          ldg_json_member(body, "kind"));
            return false;
        }
        in->kind = strcmp(in->kind, "http") == 0 ? "http" : "heartbeat";
    }
    if (ldg__auth_str(req, body, "name", create, 1, 255, &in->name) < 0)
        return false;
    if ((in->has_interval = ldg__auth_int(req, body, "interval_s", false, 10, 86400, &in->interval_s)) < 0 ||
        (in->has_timeout = ldg__auth_int(req, body, "timeout_s", false, 1, 60, &in->timeout_s)) < 0 ||
        (in->has_expected =
             ldg__auth_int(req, body, "expected_status", false, 100, 599, &in->expected_status)) < 0 ||
        (in->has_grace = ldg__auth_int(req, body, "grace_s", false, 0, 86400, &in->grace_s)) < 0 ||
        ldg__auth_id_list(req, body, "connector_ids", &in->connectors) < 0 ||
        (in->has_enabled = ldg__auth_bool(req, body, "enabled", &in->enabled)) < 0)
        return false;
    const cJSON *u = ldg_json_member(body, "target_url");
    if (u && !cJSON_IsNull(u)) {
        char buf[2100];
        const char *host, *path;
        int port;
        int rc = cJSON_IsString(u) && strlen(u->valuestring) <= 2048
                     ? ldg_httpc_parse_url(u->valuestring, buf, sizeof buf, &host, &port, &path)
                     : -EINVAL;
        if (rc < 0) {
            ldg__auth_422(req, "body", "target_url", "value_error",
                          rc == -EPROTONOSUPPORT ? "Value error, only http:// and https:// URLs are supported"
                                                 : "Value error, invalid URL",
                          u);
            return false;
        }
        in->url = ldg_arena_strndup(&req->arena, u->valuestring, strlen(u->valuestring));
        in->url_given = true;
    } else if (create && strcmp(in->kind, "http") == 0) {
        ldg__auth_422(req, "body", "target_url", "missing", "Field required", body);
        return false;
    }
    if (in->name)
        in->name = ldg_arena_strndup(&req->arena, in->name, strlen(in->name));
    return true;
}

static void create_monitor(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    struct monitor_in in = {0};
    bool ok = read_monitor(req, body, true, &in);
    cJSON_Delete(body);
    if (!ok)
        return;
    unsigned char raw[TOKEN_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        ldg_req_error(req, 500, "Monitor operation failed");
        return;
    }
    char *token = ldg_arena_alloc(&req->arena, 2 * TOKEN_BYTES + 1);
    for (int i = 0; i < TOKEN_BYTES; i++)
        sprintf(token + 2 * i, "%02x", raw[i]);
    const char *params[] = {ldg__auth_itoa(req, in.project_id),
                            ldg__auth_itoa(req, p->account_id),
                            in.kind,
                            in.name,
                            strcmp(in.kind, "http") == 0 ? in.url : NULL,
                            ldg__auth_itoa(req, in.has_interval == 1 ? in.interval_s : 60),
                            ldg__auth_itoa(req, in.has_timeout == 1 ? in.timeout_s : 10),
                            ldg__auth_itoa(req, in.has_expected == 1 ? in.expected_status : 200),
                            ldg__auth_itoa(req, in.has_grace == 1 ? in.grace_s : 0),
                            token,
                            in.connectors ? in.connectors : "{}",
                            in.has_enabled == 1 && !in.enabled ? "f" : "t"};
    static const struct ldg_auth_json_answer ans = {.status = 201,
                                                    .missing = MSG_NO_PROJECT,
                                                    .forbidden = MSG_PROJECT_DENIED,
                                                    .invalid = MSG_BAD_CONNECTORS};
    ldg__auth_json(
        req, "alr_monitor_create",
        "WITH p AS (SELECT id, account_id FROM projects WHERE id = $1::bigint), ok AS (SELECT " CONNECTORS_OK(
            "$11", "$2") " AS good), m AS (INSERT INTO monitors (project_id, kind, name, target_url, "
                         "interval_s, timeout_s, expected_status, grace_s, token, connector_ids, enabled) "
                         "SELECT p.id, $3, $4, $5, $6::int, $7::int, $8::int, $9::int, $10, $11::bigint[], "
                         "$12::bool FROM p, ok WHERE p.account_id = $2::bigint AND ok.good RETURNING *) "
                         "SELECT p.account_id, (SELECT " MONITOR_JSON "::text FROM m), (SELECT good FROM "
                         "ok) FROM p",
        12, params, &ERRS_MONITORS, &ans);
}

static void list_monitors(struct ldg_req *req)
{
    int64_t pid;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || ldg__auth_query_int(req, "project_id", 0, 1, INT64_MAX / 10, &pid) < 0)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id), ldg__auth_itoa(req, pid)};
    if (pid) {
        static const struct ldg_auth_json_answer ans = {
            .status = 200, .missing = MSG_NO_PROJECT, .forbidden = MSG_PROJECT_DENIED};
        ldg__auth_json(req, "alr_monitor_list_project",
                       "SELECT p.account_id, (SELECT coalesce(json_agg(" MONITOR_JSON
                       " ORDER BY m.id), '[]'::json)::text FROM monitors m WHERE m.project_id = p.id) FROM "
                       "projects p WHERE p.id = $2::bigint AND $1::bigint IS NOT NULL",
                       2, params, &ERRS_MONITORS, &ans);
        return;
    }
    static const struct ldg_auth_json_answer ans = {.status = 200};
    ldg__auth_json(
        req, "alr_monitor_list",
        "SELECT coalesce(json_agg(" MONITOR_JSON " ORDER BY m.id), '[]'::json)::text FROM monitors m "
        "JOIN projects p ON p.id = m.project_id WHERE p.account_id = $1::bigint AND $2::bigint = 0",
        2, params, &ERRS_MONITORS, &ans);
}

static const struct ldg_auth_json_answer MONITOR_ANS = {
    .status = 200, .missing = MSG_NO_MONITOR, .forbidden = MSG_PROJECT_DENIED, .invalid = MSG_BAD_CONNECTORS};

static void get_monitor(struct ldg_req *req)
{
    ldg__auth_json_by_id(req, "monitor_id", false, "alr_monitor_get",
                         "SELECT p.account_id, " MONITOR_JSON
                         "::text FROM monitors m JOIN projects p ON p.id = "
                         "m.project_id WHERE m.id = $1::bigint",
                         &ERRS_MONITORS, &MONITOR_ANS);
}

static void patch_monitor(struct ldg_req *req)
{
    int64_t id;
    const struct ldg_principal *p;
    cJSON *body = ldg__auth_id_body(req, "monitor_id", &id, &p);
    if (!body)
        return;
    struct monitor_in in = {0};
    bool ok = read_monitor(req, body, false, &in);
    cJSON_Delete(body);
    if (!ok)
        return;
    const char *params[] = {ldg__auth_itoa(req, id),
                            ldg__auth_itoa(req, p->account_id),
                            in.name,
                            in.url,
                            in.has_interval == 1 ? ldg__auth_itoa(req, in.interval_s) : NULL,
                            in.has_timeout == 1 ? ldg__auth_itoa(req, in.timeout_s) : NULL,
                            in.has_expected == 1 ? ldg__auth_itoa(req, in.expected_status) : NULL,
                            in.has_grace == 1 ? ldg__auth_itoa(req, in.grace_s) : NULL,
                            in.connectors ? in.connectors : "{}",
                            in.connectors ? "t" : "f",
                            in.has_enabled == 1 ? (in.enabled ? "t" : "f") : NULL};
    ldg__auth_json(
        req, "alr_monitor_patch",
        "WITH o AS (" MONITOR_OWNER "), ok AS (SELECT " CONNECTORS_OK(
            "$9",
            "$2") " AS good), "
                  "m AS (UPDATE monitors m SET name = coalesce($3, m.name), target_url = CASE WHEN m.kind = "
                  "'http' THEN coalesce($4, m.target_url) ELSE m.target_url END, interval_s = "
                  "coalesce($5::int, "
                  "m.interval_s), timeout_s = coalesce($6::int, m.timeout_s), expected_status = "
                  "coalesce($7::int, "
                  "m.expected_status), grace_s = coalesce($8::int, m.grace_s), connector_ids = CASE WHEN "
                  "$10::bool THEN $9::bigint[] ELSE m.connector_ids END, enabled = coalesce($11::bool, "
                  "m.enabled), "
                  "updated_at = now() FROM o, ok WHERE m.id = o.id AND o.account_id = $2::bigint AND ok.good "
                  "RETURNING m.*) SELECT o.account_id, (SELECT " MONITOR_JSON
                  "::text FROM m), (SELECT good FROM "
                  "ok) FROM o",
        11, params, &ERRS_MONITORS, &MONITOR_ANS);
}

static void delete_monitor(struct ldg_req *req)
{
    static const struct ldg_auth_json_answer ans = {
        .status = 204, .missing = MSG_NO_MONITOR, .forbidden = MSG_PROJECT_DENIED};
    ldg__auth_json_by_id(
        req, "monitor_id", true, "alr_monitor_delete",
        "WITH o AS (" MONITOR_OWNER "), d AS (DELETE FROM monitors m USING o WHERE m.id = o.id AND "
        "o.account_id = $2::bigint RETURNING m.id) SELECT o.account_id, (SELECT 'x' FROM d) FROM o",
        &ERRS_MONITORS, &ans);
}

static void list_checks(struct ldg_req *req)
{
    int64_t id, limit;
    if (!ldg__auth_account(req) || !ldg__auth_path_id(req, "monitor_id", &id) ||
        ldg__auth_query_int(req, "limit", 100, 1, 1000, &limit) < 0)
        return;
    const char *params[] = {ldg__auth_itoa(req, id), ldg__auth_itoa(req, limit)};
    static const struct ldg_auth_json_answer ans = {
        .status = 200, .missing = MSG_NO_MONITOR, .forbidden = MSG_PROJECT_DENIED};
    ldg__auth_json(
        req, "alr_monitor_checks",
        "SELECT p.account_id, (SELECT json_build_object('monitor_id', m.id, 'checks', coalesce(json_agg("
        "json_build_object('checked_at', " ISO(
            "c.checked_at") ", 'ok', c.ok, 'latency_ms', c.latency_ms, "
                            "'status_code', c.status_code, 'error', c.error) ORDER BY c.id DESC), "
                            "'[]'::json), 'total', "
                            "count(*), 'uptime_percent', CASE WHEN count(*) > 0 THEN round(count(*) FILTER "
                            "(WHERE c.ok) * "
                            "100.0 / count(*), 2) END, 'avg_latency_ms', round(avg(c.latency_ms), 1))::text "
                            "FROM (SELECT * "
                            "FROM monitor_checks WHERE monitor_id = m.id ORDER BY id DESC LIMIT $2::int) c) "
                            "FROM monitors m "
                            "JOIN projects p ON p.id = m.project_id WHERE m.id = $1::bigint",
        2, params, &ERRS_MONITORS, &ans);
}

/* ---- ping ------------------------------------------------------------------------------------------ */

static void on_pinged(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)ud;
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 404, MSG_NO_MONITOR);
        return;
    }
    const char *old = PQgetvalue(res, 0, 5);
    if (strcmp(old, "up") != 0) {
        const char *name = PQgetvalue(res, 0, 3);
        struct ldg_buf b;
        ldg_buf_init(&b);
        struct ldg_json_writer jw;
        ldg_json_writer_init(&jw, &b);
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "monitor_id");
        ldg_json_int(&jw, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
        ldg_json_key(&jw, "monitor_name");
        ldg_json_str(&jw, name);
        ldg_json_key(&jw, "state");
        ldg_json_str(&jw, "up");
        ldg_json_key(&jw, "previous_state");
        ldg_json_str(&jw, old);
        ldg_json_obj_end(&jw);
        ldg_buf_put(&b, "", 1);
        struct ldg_dispatch_event ev = {
            .account_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10),
            .project_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
            .kind = "monitor_up",
            .title = ldg__auth_printf(req, "Monitor up: %s", name),
            .data_json = ldg_buf_head(&b),
        };
        ldg_dispatch_send(req->w, &ev, PQgetvalue(res, 0, 4), false, NULL, NULL);
        ldg_buf_free(&b);
    }
    ldg_req_respond(req, 204, NULL, NULL, 0);
}

static void ping_monitor(struct ldg_req *req)
{
    struct ldg_str t = ldg_req_param(req, "token");
    bool ok = t.n == 2 * TOKEN_BYTES;
    for (size_t i = 0; ok && i < t.n; i++)
        ok = (t.p[i] >= '0' && t.p[i] <= '9') || (t.p[i] >= 'a' && t.p[i] <= 'f');
    if (!ok) {
        ldg_req_error(req, 404, MSG_NO_MONITOR);
        return;
    }
    const char *params[] = {ldg_arena_strndup(&req->arena, t.p, t.n)};
    ldg__auth_sql(
        req, "alr_monitor_ping",
        "WITH old AS (SELECT id, state FROM monitors WHERE token = $1 AND kind = 'heartbeat' FOR UPDATE), "
        "u AS (UPDATE monitors m SET last_ping_at = now(), state = CASE WHEN m.enabled THEN 'up' ELSE "
        "m.state END, state_changed_at = CASE WHEN m.enabled AND m.state <> 'up' THEN now() ELSE "
        "m.state_changed_at END FROM old WHERE m.id = old.id RETURNING m.id, m.project_id, m.name, "
        "m.connector_ids::text AS c, m.enabled) "
        "SELECT u.id, u.project_id, p.account_id, u.name, u.c, CASE WHEN u.enabled THEN old.state ELSE "
        "'up' END FROM u JOIN old ON old.id = u.id JOIN projects p ON p.id = u.project_id",
        1, params, &ERRS_MONITORS, on_pinged, NULL);
}

void ldg__auth_monitors_routes(struct ldg_router *r)
{
    const unsigned acc = LDG_ROUTE_ACCOUNT;
    ldg__auth_route(r, "GET", "/api/v1/monitors", list_monitors, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/monitors", create_monitor, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/monitors/{monitor_id}", get_monitor, acc, BODY_MAX);
    ldg__auth_route(r, "PATCH", "/api/v1/monitors/{monitor_id}", patch_monitor, acc, BODY_MAX);
    ldg__auth_route(r, "DELETE", "/api/v1/monitors/{monitor_id}", delete_monitor, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/monitors/{monitor_id}/checks", list_checks, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/monitors/{token}/ping", ping_monitor, LDG_ROUTE_PUBLIC, 4096);
    ldg__auth_route(r, "GET", "/api/v1/monitors/{token}/ping", ping_monitor, LDG_ROUTE_PUBLIC, 4096);
}
