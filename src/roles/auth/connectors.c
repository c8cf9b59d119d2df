/*
 * connectors.c: notification connectors and the notification inbox of an account (docs/alerts.md,
 * docs/api.md "Connectors", "Notification inbox"), plus the JSON-in-SQL helpers the alerting
 * handlers (alerting.c) share.
 *
 *   GET/POST          /api/v1/connectors
 *   GET/PATCH/DELETE  /api/v1/connectors/{connector_id}
 *   POST              /api/v1/connectors/{connector_id}/test
 *   GET               /api/v1/connectors/{connector_id}/deliveries
 *   GET               /api/v1/notifications                 (inbox; ?limit, offset, unread_only)
 *   GET               /api/v1/notifications/unread-count
 *   POST              /api/v1/notifications/{notification_id}/read
 *   POST              /api/v1/notifications/read-all
 *   DELETE            /api/v1/notifications/{notification_id}
 *
 * Connectors and notifications belong to an account: another account's → 403, none → 404.
 * Answers are built by PostgreSQL (json_build_object) in the statement that reads or writes, so
 * one round trip answers. A webhook's secret is never returned, only its last four characters.
 *
 * Threading: the worker's loop thread, like every auth handler.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts/dispatch.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/client.h"
#include "roles/auth/auth.h"

#define BODY_MAX (16 * 1024)
#define NAME_MAX_CHARS 255
#define URL_MAX 2048
#define SECRET_MIN 16
#define SECRET_MAX 256
#define EMAILS_MAX 20
#define MSG_TIMEOUT "Service timeout"
#define MSG_NO_CONNECTOR "Connector not found"
#define MSG_CONNECTOR_DENIED "You don't have permission to use this connector"
#define MSG_NO_NOTIFICATION "Notification not found"
#define MSG_NOTIFICATION_DENIED "You don't have permission to access this notification"

static const struct ldg_auth_errs ERRS_CONNECTORS = {MSG_TIMEOUT, "Connector operation failed", NULL};
static const struct ldg_auth_errs ERRS_INBOX = {MSG_TIMEOUT, "Notification operation failed", NULL};

/* ---- shared helpers ------------------------------------------------------------------------------ */

static void on_json_row(struct ldg_req *req, PGresult *res, void *ud)
{
    const struct ldg_auth_json_answer *a = ud;
    if (a->missing && !ldg__auth_owned(req, res, a->missing, a->forbidden))
        return;
    if (PQntuples(res) < 1) {
        ldg_req_error(req, 404, a->missing ? a->missing : "Not found");
        return;
    }
    int col = a->missing ? 1 : 0;
    if (a->invalid && PQnfields(res) > 2 && strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
        ldg_req_error(req, 400, a->invalid);
        return;
    }
    if (PQgetisnull(res, 0, col)) { /* owned, but the write found nothing (changed in between) */
        ldg_req_error(req, a->gone_status ? a->gone_status : 404, a->gone ? a->gone : a->missing);
        return;
    }
    if (a->status == 204) {
        ldg_req_respond(req, 204, NULL, NULL, 0);
        return;
    }
    ldg_req_json(req, a->status, PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col));
}

void ldg__auth_json(struct ldg_req *req, const char *name, const char *sql, int n, const char *const *params,
                    const struct ldg_auth_errs *errs, const struct ldg_auth_json_answer *a)
{
    ldg__auth_sql(req, name, sql, n, params, errs, on_json_row, (void *)a);
}

void ldg__auth_json_by_id(struct ldg_req *req, const char *param, bool with_account, const char *name,
                          const char *sql, const struct ldg_auth_errs *errs,
                          const struct ldg_auth_json_answer *a)
{
    int64_t id;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || !ldg__auth_path_id(req, param, &id))
        return;
    const char *params[] = {ldg__auth_itoa(req, id),
                            with_account ? ldg__auth_itoa(req, p->account_id) : NULL};
    ldg__auth_json(req, name, sql, with_account ? 2 : 1, params, errs, a);
}

cJSON *ldg__auth_id_body(struct ldg_req *req, const char *param, int64_t *id, const struct ldg_principal **p)
{
    *p = ldg__auth_account(req);
    if (!*p || !ldg__auth_path_id(req, param, id))
        return NULL;
    return ldg__auth_body(req);
}

int ldg__auth_query_int(struct ldg_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                        int64_t *out)
{
    struct ldg_str s;
    *out = def;
    if (!ldg_req_query(req, name, &s))
        return 0;
    char buf[24];
    bool ok = s.n > 0 && s.n < sizeof buf;
    int64_t v = 0;
    if (ok) {
        memcpy(buf, s.p, s.n);
        buf[s.n] = 0;
        char *end;
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        ok = *end == 0 && errno == 0;
        v = x;
    }
    cJSON *in = cJSON_CreateString(ldg_arena_strndup(&req->arena, s.p, s.n));
    if (!ok) {
        ldg__auth_422(req, "query", name, "int_parsing",
                      "Input should be a valid integer, unable to parse string as an integer", in);
        cJSON_Delete(in);
        return -EINVAL;
    }
    char msg[96];
    if (v < min || v > max) {
        snprintf(msg, sizeof msg, "Input should be %s %" PRId64,
                 v < min ? "greater than or equal to" : "less than or equal to", v < min ? min : max);
        ldg__auth_422(req, "query", name, v < min ? "greater_than_equal" : "less_than_equal", msg, in);
        cJSON_Delete(in);
        return -EINVAL;
    }
    cJSON_Delete(in);
    *out = v;
    return 1;
}

int ldg__auth_bool(struct ldg_req *req, const cJSON *obj, const char *field, bool *out)
{
    const cJSON *v = ldg_json_member(obj, field);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v)) {
        ldg__auth_422(req, "body", field, "bool_type", "Input should be a valid boolean", v);
        return -EINVAL;
    }
    *out = cJSON_IsTrue(v);
    return 1;
}

int ldg__auth_id_list(struct ldg_req *req, const cJSON *obj, const char *field, const char **out)
{
    const cJSON *v = ldg_json_member(obj, field);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 50) {
        ldg__auth_422(req, "body", field, "list_type", "Input should be a valid list of at most 50 ids", v);
        return -EINVAL;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_put(&b, "{", 1);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (d < 1 || d > 9e15 || d != (double)(int64_t)d) {
            struct ldg_auth_loc loc[] = {{field, 0}, {NULL, i}};
            ldg__auth_422_at(req, "body", loc, 2, "int_type", "Input should be a valid integer", e);
            ldg_buf_free(&b);
            return -EINVAL;
        }
        ldg_buf_printf(&b, "%s%" PRId64, i ? "," : "", (int64_t)d);
    }
    ldg_buf_put(&b, "}", 1);
    *out = ldg_arena_strndup(&req->arena, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
    return 1;
}

/* ---- connectors -------------------------------------------------------------------------------- */

#define ISO(c) LDG_SQL_ISO(c)
#define CONNECTOR_JSON                                                                                       \
    "json_build_object('id', c.id, 'name', c.name, 'kind', c.kind, 'enabled', c.enabled, 'config', CASE "    \
    "c.kind WHEN 'webhook' THEN json_build_object('url', c.url, 'secret', CASE WHEN c.secret IS NULL THEN "  \
    "NULL ELSE '****' || right(c.secret, 4) END, 'has_secret', c.secret IS NOT NULL) WHEN 'email' THEN "     \
    "json_build_object('to', string_to_array(c.email_to, ',')) ELSE '{}'::json END, 'created_at', " ISO(     \
        "c.created_at") ", 'updated_at', " ISO("c.updated_at") ")::text"

static const char *const kinds[] = {"in_app", "webhook", "email", NULL};

struct connector_in {
    const char *name, *kind, *url, *secret, *to;
    bool enabled, has_enabled, secret_given;
};

static bool email_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s || at == s + n - 1 || n > 254)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '<' || c == '>' || c == ',' || c == '"' || c >= 0x7f)
            return false;
    }
    return memchr(at + 1, '.', (size_t)(s + n - at - 1)) != NULL;
}

/* The config object of a connector body (creation: kind known; PATCH: kind NULL). */
static bool read_config(struct ldg_req *req, const cJSON *body, const char *kind, struct connector_in *in)
{
    const cJSON *cfg = ldg_json_member(body, "config");
    if (!cfg || cJSON_IsNull(cfg)) {
        if (kind && strcmp(kind, "in_app") != 0) {
            ldg__auth_422(req, "body", "config", "missing", "Field required", body);
            return false;
        }
        return true;
    }
    if (!cJSON_IsObject(cfg)) {
        ldg__auth_422(req, "body", "config", "dict_type", "Input should be a valid dictionary", cfg);
        return false;
    }
    const cJSON *url = ldg_json_member(cfg, "url");
    if (url && !cJSON_IsNull(url)) {
        char buf[URL_MAX + 8];
        const char *host, *path;
        int port;
        int rc = cJSON_IsString(url) && strlen(url->valuestring) <= URL_MAX
                     ? ldg_httpc_parse_url(url->valuestring, buf, sizeof buf, &host, &port, &path)
                     : -EINVAL;
        if (rc < 0) {
            struct ldg_auth_loc loc[] = {{"config", 0}, {"url", 0}};
            ldg__auth_422_at(req, "body", loc, 2, "value_error",
                             rc == -EPROTONOSUPPORT ? "Value error, only http:// and https:// URLs are supported"
                                                    : "Value error, invalid URL",
                             url);
            return false;
        }
        in->url = url->valuestring;
    } else if (kind && strcmp(kind, "webhook") == 0) {
        struct ldg_auth_loc loc[] = {{"config", 0}, {"url", 0}};
        ldg__auth_422_at(req, "body", loc, 2, "missing", "Field required", NULL);
        return false;
    }
    const cJSON *sec = ldg_json_member(cfg, "secret");
    if (sec) {
        in->secret_given = true;
        if (!cJSON_IsNull(sec)) {
            size_t n = cJSON_IsString(sec) ? strlen(sec->valuestring) : 0;
            if (!cJSON_IsString(sec) || n < SECRET_MIN || n > SECRET_MAX) {
                struct ldg_auth_loc loc[] = {{"config", 0}, {"secret", 0}};
                ldg__auth_422_at(req, "body", loc, 2, "value_error",
                                 "Value error, the secret must be a string of 16 to 256 characters", NULL);
                return false;
            }
            in->secret = sec->valuestring;
        }
    }
    const cJSON *to = ldg_json_member(cfg, "to");
    if (to && !cJSON_IsNull(to)) {
        struct ldg_buf b;
        ldg_buf_init(&b);
        int n = 0;
        bool ok = true;
        const cJSON *items = cJSON_IsArray(to) ? to->child : to;
        for (const cJSON *e = items; e && ok; e = cJSON_IsArray(to) ? e->next : NULL) {
            ok = cJSON_IsString(e) && email_ok(e->valuestring, strlen(e->valuestring)) && ++n <= EMAILS_MAX;
            if (ok)
                ldg_buf_printf(&b, "%s%s", n > 1 ? "," : "", e->valuestring);
        }
        if (!ok || n == 0) {
            ldg_buf_free(&b);
            struct ldg_auth_loc loc[] = {{"config", 0}, {"to", 0}};
            ldg__auth_422_at(req, "body", loc, 2, "value_error",
                             "Value error, 'to' must be an e-mail address or a list of 1 to 20 of them",
                             NULL);
            return false;
        }
        in->to = ldg_arena_strndup(&req->arena, ldg_buf_head(&b), ldg_buf_size(&b));
        ldg_buf_free(&b);
    } else if (kind && strcmp(kind, "email") == 0) {
        struct ldg_auth_loc loc[] = {{"config", 0}, {"to", 0}};
        ldg__auth_422_at(req, "body", loc, 2, "missing", "Field required", NULL);
        return false;
    }
    return true;
}

static void create_connector(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    struct connector_in in = {.enabled = true};
    bool ok = ldg__auth_str(req, body, "name", true, 1, NAME_MAX_CHARS, &in.name) >= 0 &&
              ldg__auth_str(req, body, "kind", true, 1, 16, &in.kind) >= 0;
    if (ok) {
        bool known = false;
        for (int i = 0; kinds[i]; i++)
            known |= strcmp(kinds[i], in.kind) == 0;
        if (!known) {
            ldg__auth_422(req, "body", "kind", "literal_error",
                          "Input should be 'in_app', 'webhook' or 'email'", ldg_json_member(body, "kind"));
            ok = false;
        }
    }
    ok = ok && ldg__auth_bool(req, body, "enabled", &in.enabled) >= 0 && read_config(req, body, in.kind, &in);
    if (!ok) {
        cJSON_Delete(body);
        return;
    }
    bool webhook = strcmp(in.kind, "webhook") == 0, email = strcmp(in.kind, "email") == 0;
    const char *params[] = {
        ldg__auth_itoa(req, p->account_id),
        ldg_arena_strndup(&req->arena, in.name, strlen(in.name)),
        ldg_arena_strndup(&req->arena, in.kind, strlen(in.kind)),
        webhook ? ldg_arena_strndup(&req->arena, in.url, strlen(in.url)) : NULL,
        webhook && in.secret ? ldg_arena_strndup(&req->arena, in.secret, strlen(in.secret)) : NULL,
        email ? in.to : NULL,
        in.enabled ? "t" : "f"};
    cJSON_Delete(body);
    static const struct ldg_auth_json_answer ans = {.status = 201};
    ldg__auth_json(
        req, "alr_connector_create",
        "WITH c AS (INSERT INTO connectors (account_id, name, kind, url, secret, email_to, enabled) "
        "VALUES ($1::bigint, $2, $3, $4, $5, $6, $7::bool) RETURNING *) SELECT " CONNECTOR_JSON " FROM c",
        7, params, &ERRS_CONNECTORS, &ans);
}

static void list_connectors(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    static const struct ldg_auth_json_answer ans = {.status = 200};
    ldg__auth_json(req, "alr_connector_list",
                   "SELECT json_build_object('connectors', coalesce(json_agg(j ORDER BY id), '[]'::json), "
                   "'total', count(*))::text FROM (SELECT c.id, (" CONNECTOR_JSON
                   ")::json AS j FROM connectors c WHERE c.account_id = $1::bigint) s",
                   1, params, &ERRS_CONNECTORS, &ans);
}

static const struct ldg_auth_json_answer CONNECTOR_ANS = {
    .status = 200, .missing = MSG_NO_CONNECTOR, .forbidden = MSG_CONNECTOR_DENIED};

static void get_connector(struct ldg_req *req)
{
    ldg__auth_json_by_id(req, "connector_id", false, "alr_connector_get",
                         "SELECT c.account_id, " CONNECTOR_JSON " FROM connectors c WHERE c.id = $1::bigint",
                         &ERRS_CONNECTORS, &CONNECTOR_ANS);
}

static void patch_connector(struct ldg_req *req)
{
    int64_t id;
    const struct ldg_principal *p;
    cJSON *body = ldg__auth_id_body(req, "connector_id", &id, &p);
    if (!body)
        return;
    struct connector_in in = {0};
    int has_enabled = 0;
    bool ok = ldg__auth_str(req, body, "name", false, 1, NAME_MAX_CHARS, &in.name) >= 0 &&
              (has_enabled = ldg__auth_bool(req, body, "enabled", &in.enabled)) >= 0 &&
              read_config(req, body, NULL, &in);
    if (!ok) {
        cJSON_Delete(body);
        return;
    }
#define ADUP(s) ((s) ? ldg_arena_strndup(&req->arena, (s), strlen(s)) : NULL)
    const char *params[] = {ldg__auth_itoa(req, id),
                            ldg__auth_itoa(req, p->account_id),
                            ADUP(in.name),
                            has_enabled == 1 ? (in.enabled ? "t" : "f") : NULL,
                            ADUP(in.url),
                            ADUP(in.secret),
                            in.secret_given ? "t" : "f",
                            in.to};
#undef ADUP
    cJSON_Delete(body);
    ldg__auth_json(req, "alr_connector_patch",
                   "WITH o AS (SELECT id, account_id FROM connectors WHERE id = $1::bigint), "
                   "c AS (UPDATE connectors c SET name = coalesce($3, c.name), enabled = coalesce($4::bool, "
                   "c.enabled), url = CASE WHEN c.kind = 'webhook' THEN coalesce($5, c.url) ELSE c.url END, "
                   "secret = CASE WHEN c.kind = 'webhook' AND $7::bool THEN $6 ELSE c.secret END, "
                   "email_to = CASE WHEN c.kind = 'email' THEN coalesce($8, c.email_to) ELSE c.email_to END, "
                   "updated_at = now() FROM o WHERE c.id = o.id AND o.account_id = $2::bigint RETURNING c.*) "
                   "SELECT o.account_id, (SELECT " CONNECTOR_JSON " FROM c) FROM o",
                   8, params, &ERRS_CONNECTORS, &CONNECTOR_ANS);
}

static void delete_connector(struct ldg_req *req)
{
    static const struct ldg_auth_json_answer ans = {
        .status = 204, .missing = MSG_NO_CONNECTOR, .forbidden = MSG_CONNECTOR_DENIED};
    ldg__auth_json_by_id(
        req, "connector_id", true, "alr_connector_delete",
        "WITH o AS (SELECT id, account_id FROM connectors WHERE id = $1::bigint), "
        "d AS (DELETE FROM connectors c USING o WHERE c.id = o.id AND o.account_id = $2::bigint "
        "RETURNING c.id) SELECT o.account_id, (SELECT 'x' FROM d) FROM o",
        &ERRS_CONNECTORS, &ans);
}

static void on_test_done(const struct ldg_dispatch_result *r, void *ud)
{
    struct ldg_req *req = ud;
    if (req->conn) {
        struct ldg_buf b;
        ldg_buf_init(&b);
        struct ldg_json_writer jw;
        ldg_json_writer_init(&jw, &b);
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "success");
        ldg_json_bool(&jw, r->delivered > 0 && r->failed == 0);
        ldg_json_key(&jw, "delivered");
        ldg_json_int(&jw, r->delivered);
        ldg_json_key(&jw, "failed");
        ldg_json_int(&jw, r->failed);
        ldg_json_key(&jw, "skipped");
        ldg_json_int(&jw, r->skipped);
        ldg_json_key(&jw, "status_code");
        if (r->last_status)
            ldg_json_int(&jw, r->last_status);
        else
            ldg_json_null(&jw);
        ldg_json_key(&jw, "error");
        ldg_json_str(&jw, r->last_error[0] ? r->last_error : NULL);
        ldg_json_obj_end(&jw);
        ldg__auth_respond_buf(req, 200, &b);
    }
    ldg_req_unref(req);
}

static void on_test_owned(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)ud;
    if (!ldg__auth_owned(req, res, MSG_NO_CONNECTOR, MSG_CONNECTOR_DENIED))
        return;
    const char *id = PQgetvalue(res, 0, 1);
    const char *data = ldg__auth_printf(
        req, "{\"connector_id\":%s,\"message\":\"This is a test notification from Ledger.\"}", id);
    struct ldg_dispatch_event ev = {
        .account_id = ldg_principal(req)->account_id,
        .kind = "test",
        .title = "Test notification",
        .data_json = data,
    };
    ldg_req_ref(req);
    ldg_dispatch_send(req->w, &ev, ldg__auth_printf(req, "{%s}", id), true, on_test_done, req);
}

static void test_connector(struct ldg_req *req)
{
    int64_t id;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || !ldg__auth_path_id(req, "connector_id", &id))
        return;
    const char *params[] = {ldg__auth_itoa(req, id)};
    ldg__auth_sql(req, "alr_connector_owner", "SELECT account_id, id FROM connectors WHERE id = $1::bigint",
                  1, params, &ERRS_CONNECTORS, on_test_owned, NULL);
}

static void list_deliveries(struct ldg_req *req)
{
    int64_t id, limit;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || !ldg__auth_path_id(req, "connector_id", &id) ||
        ldg__auth_query_int(req, "limit", 50, 1, 500, &limit) < 0)
        return;
    const char *params[] = {ldg__auth_itoa(req, id), ldg__auth_itoa(req, limit)};
    ldg__auth_json(
        req, "alr_connector_deliveries",
        "SELECT c.account_id, (SELECT json_build_object('deliveries', coalesce(json_agg(json_build_object("
        "'id', d.id, 'event_kind', d.event_kind, 'attempt', d.attempt, 'ok', d.ok, 'status_code', "
        "d.status_code, 'error', d.error, 'duration_ms', d.duration_ms, 'created_at', " ISO(
            "d.created_at") ") ORDER BY d.id DESC), '[]'::json), 'total', count(*))::text FROM (SELECT * "
                            "FROM connector_deliveries WHERE connector_id = c.id ORDER BY id DESC LIMIT "
                            "$2::int) d) FROM connectors c WHERE c.id = $1::bigint",
        2, params, &ERRS_CONNECTORS, &CONNECTOR_ANS);
}

/* ---- notification inbox ---------------------------------------------------------------------------- */

#define NOTIFICATION_JSON                                                                                    \
    "json_build_object('id', n.id, 'project_id', n.project_id, 'kind', n.kind, 'title', n.title, 'data', "   \
    "n.data, 'read', n.read_at IS NOT NULL, 'read_at', " ISO("n.read_at") ", 'created_at', " ISO(            \
        "n.created_at") ")"

static void list_notifications(struct ldg_req *req)
{
    int64_t limit, offset, unread_only = 0;
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p || ldg__auth_query_int(req, "limit", 50, 1, 200, &limit) < 0 ||
        ldg__auth_query_int(req, "offset", 0, 0, 100000, &offset) < 0)
        return;
    struct ldg_str u;
    if (ldg_req_query(req, "unread_only", &u))
        unread_only = (u.n == 4 && strncasecmp(u.p, "true", 4) == 0) || (u.n == 1 && u.p[0] == '1');
    const char *params[] = {ldg__auth_itoa(req, p->account_id), unread_only ? "t" : "f",
                            ldg__auth_itoa(req, limit), ldg__auth_itoa(req, offset)};
    static const struct ldg_auth_json_answer ans = {.status = 200};
    ldg__auth_json(
        req, "alr_inbox_list",
        "SELECT json_build_object('notifications', coalesce((SELECT json_agg(" NOTIFICATION_JSON
        " ORDER BY n.id DESC) FROM (SELECT * FROM notifications WHERE account_id = $1::bigint AND "
        "(NOT $2::bool OR read_at IS NULL) ORDER BY id DESC LIMIT $3::int OFFSET $4::int) n), "
        "'[]'::json), 'total', (SELECT count(*) FROM notifications WHERE account_id = $1::bigint AND "
        "(NOT $2::bool OR read_at IS NULL)), 'unread', (SELECT count(*) FROM notifications WHERE "
        "account_id = $1::bigint AND read_at IS NULL))::text",
        4, params, &ERRS_INBOX, &ans);
}

static void unread_count(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    static const struct ldg_auth_json_answer ans = {.status = 200};
    ldg__auth_json(req, "alr_inbox_unread",
                   "SELECT json_build_object('unread_count', count(*))::text FROM notifications WHERE "
                   "account_id = $1::bigint AND read_at IS NULL",
                   1, params, &ERRS_INBOX, &ans);
}

static void read_notification(struct ldg_req *req)
{
    static const struct ldg_auth_json_answer ans = {
        .status = 200, .missing = MSG_NO_NOTIFICATION, .forbidden = MSG_NOTIFICATION_DENIED};
    ldg__auth_json_by_id(
        req, "notification_id", true, "alr_inbox_read",
        "WITH o AS (SELECT id, account_id FROM notifications WHERE id = $1::bigint), "
        "n AS (UPDATE notifications n SET read_at = coalesce(n.read_at, now()) FROM o WHERE n.id = o.id "
        "AND o.account_id = $2::bigint RETURNING n.*) SELECT o.account_id, (SELECT " NOTIFICATION_JSON
        "::text FROM n) FROM o",
        &ERRS_INBOX, &ans);
}

static void read_all(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__auth_account(req);
    if (!p)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    static const struct ldg_auth_json_answer ans = {.status = 200};
    ldg__auth_json(
        req, "alr_inbox_read_all",
        "WITH u AS (UPDATE notifications SET read_at = now() WHERE account_id = $1::bigint AND read_at "
        "IS NULL RETURNING 1) SELECT json_build_object('success', true, 'updated', count(*))::text FROM u",
        1, params, &ERRS_INBOX, &ans);
}

static void delete_notification(struct ldg_req *req)
{
    static const struct ldg_auth_json_answer ans = {
        .status = 204, .missing = MSG_NO_NOTIFICATION, .forbidden = MSG_NOTIFICATION_DENIED};
    ldg__auth_json_by_id(
        req, "notification_id", true, "alr_inbox_delete",
        "WITH o AS (SELECT id, account_id FROM notifications WHERE id = $1::bigint), "
        "d AS (DELETE FROM notifications n USING o WHERE n.id = o.id AND o.account_id = $2::bigint "
        "RETURNING n.id) SELECT o.account_id, (SELECT 'x' FROM d) FROM o",
        &ERRS_INBOX, &ans);
}

void ldg__auth_connectors_routes(struct ldg_router *r)
{
    const unsigned acc = LDG_ROUTE_ACCOUNT;
    ldg__auth_route(r, "GET", "/api/v1/connectors", list_connectors, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/connectors", create_connector, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/connectors/{connector_id}", get_connector, acc, BODY_MAX);
    ldg__auth_route(r, "PATCH", "/api/v1/connectors/{connector_id}", patch_connector, acc, BODY_MAX);
    ldg__auth_route(r, "DELETE", "/api/v1/connectors/{connector_id}", delete_connector, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/connectors/{connector_id}/test", test_connector, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/connectors/{connector_id}/deliveries", list_deliveries, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/notifications", list_notifications, acc, BODY_MAX);
    ldg__auth_route(r, "GET", "/api/v1/notifications/unread-count", unread_count, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/notifications/read-all", read_all, acc, BODY_MAX);
    ldg__auth_route(r, "POST", "/api/v1/notifications/{notification_id}/read", read_notification, acc,
                    BODY_MAX);
    ldg__auth_route(r, "DELETE", "/api/v1/notifications/{notification_id}", delete_notification, acc,
                    BODY_MAX);
}
