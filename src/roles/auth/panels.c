/*
 * panels.c: dashboard panels (reference §3.4) and notification preferences (§3.8 N1/N2), with
 * decisions D2: a panel's project_id, and every project named in the preferences, must be a
 * project of the caller (missing → 404, someone else's → 403).
 *
 * Panels live in user_dashboards.panels, one JSONB array per account. Every change is a single
 * statement computing the new array from the current one (append, replace or remove by id), so
 * concurrent changes of one dashboard serialise on its row and none is lost. Responses are
 * rendered from the stored objects in the reference's field order (JSONB does not keep it).
 */
#include "roles/auth/auth.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "roles/notify/notify.h"

#define TIMEOUT_TEXT "Service timeout, please try again"
#define PANEL_BODY_MAX (16 * 1024)
#define PREFS_BODY_MAX (1024 * 1024)
#define PANEL_NAME_MAX 255
#define PANEL_INDEX_MAX 1000000
#define PANEL_PROJECT_MAX 64
#define PANEL_PERIOD_TEXT_MAX 100 /* periodFrom / periodTo: meant as ISO 8601 */
#define PANEL_ENDPOINT_MAX 1024
#define PANEL_ID_MAX 255
#define PREFS_PROJECTS_MAX 1000
#define PREFS_LIST_MAX 20
#define PREFS_ITEM_MAX 50

static const char *const periods[] = {"today",       "last7days",    "last30days",
                                      "currentWeek", "currentMonth", "currentYear"};
static const char *const panel_types[] = {"logs", "errors", "metrics"};

static void log_ctx(const struct ldg_req *req, char *out, size_t cap)
{
    snprintf(out, cap, "role=auth rid=%s", req->request_id);
}

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

/* A positive project id written as plain decimal digits (as panels and preferences carry it). */
static bool parse_project_id(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v > 0;
}

/* A path parameter, percent-decoded into the arena; NULL when it is not valid UTF-8, holds a NUL
 * or is longer than max bytes (no stored id can match it then). */
static const char *path_text(struct ldg_req *req, const char *param, size_t max)
{
    size_t n, chars;
    const char *out = ldg__auth_path_text(req, param, &n);
    if (n == 0 || n > max || memchr(out, '\0', n) || ldg_utf8_count(out, n, &chars) < 0)
        return NULL;
    return out;
}

/* ---- project ownership ------------------------------------------------------------------------- */

typedef void (*owned_fn)(struct ldg_req *req, void *ud);

struct owned_check {
    owned_fn next;
    void *ud;
};

static void on_project_owner(struct ldg_req *req, PGresult *res, void *ud)
{
    struct owned_check *oc = ud;
    if (ldg__auth_owned(req, res, "Project not found", "You don't have permission to use this project"))
        oc->next(req, oc->ud);
}

/* Continue with next(req, ud) once project `text` (a panel's project_id) is known to be the
 * caller's; answer 404/403 otherwise. */
static void require_project(struct ldg_req *req, const char *text, owned_fn next, void *ud)
{
    int64_t id;
    if (!parse_project_id(text, &id)) {
        ldg_req_error(req, 404, "Project not found");
        return;
    }
    struct owned_check *oc = ldg_arena_alloc(&req->arena, sizeof *oc);
    *oc = (struct owned_check){next, ud};
    const char *params[] = {ldg__auth_itoa(req, id)};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to check the project", NULL};
    ldg__auth_sql(req, "pnl_owner", "SELECT account_id FROM projects WHERE id = $1", 1, params, &errs,
                  on_project_owner, oc);
}

/* ---- panel objects ----------------------------------------------------------------------------- */

static void write_opt_str(struct ldg_json_writer *jw, const cJSON *v, bool empty_is_null)
{
    if (cJSON_IsString(v) && !(empty_is_null && !*v->valuestring))
        ldg_json_str(jw, v->valuestring);
    else
        ldg_json_null(jw);
}

/* One stored panel with all nine fields, in the reference's order. */
static void write_panel(struct ldg_json_writer *jw, const cJSON *p)
{
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "id");
    write_opt_str(jw, ldg_json_member(p, "id"), false);
    ldg_json_key(jw, "name");
    write_opt_str(jw, ldg_json_member(p, "name"), false);
    ldg_json_key(jw, "index");
    const cJSON *index = ldg_json_member(p, "index");
    if (cJSON_IsNumber(index))
        ldg_json_int(jw, (int64_t)index->valuedouble);
    else
        ldg_json_null(jw);
    ldg_json_key(jw, "project_id");
    const cJSON *project = ldg_json_member(p, "project_id");
    if (cJSON_IsNumber(project)) { /* not written by us; shown as the string the schema promises */
        char text[32];
        snprintf(text, sizeof text, "%" PRId64, (int64_t)project->valuedouble);
        ldg_json_str(jw, text);
    } else {
        write_opt_str(jw, project, false);
    }
    ldg_json_key(jw, "period");
    write_opt_str(jw, ldg_json_member(p, "period"), false);
    ldg_json_key(jw, "periodFrom");
    write_opt_str(jw, ldg_json_member(p, "periodFrom"), false);
    ldg_json_key(jw, "periodTo");
    write_opt_str(jw, ldg_json_member(p, "periodTo"), false);
    ldg_json_key(jw, "type");
    write_opt_str(jw, ldg_json_member(p, "type"), false);
    ldg_json_key(jw, "endpoint");
    write_opt_str(jw, ldg_json_member(p, "endpoint"), true);
    ldg_json_obj_end(jw);
}

static void enum_422(struct ldg_req *req, const cJSON *body, const char *field, const char *const *set,
                     size_t n)
{
    char msg[256] = "Input should be ";
    for (size_t i = 0; i < n; i++) {
        size_t o = strlen(msg);
        snprintf(msg + o, sizeof msg - o, "%s'%s'", i == 0 ? "" : i + 1 == n ? " or " : ", ", set[i]);
    }
    ldg__auth_422(req, "body", field, "enum", msg, ldg_json_member(body, field));
}

/* Validate a panel body (POST and PUT) and build the panel to store, with id `id`. Returns NULL
 * after answering 422. The caller owns the result. */
static cJSON *panel_from_body(struct ldg_req *req, const cJSON *body, const char *id)
{
    const char *name, *project, *period, *from, *to, *type, *endpoint;
    int64_t index;
    if (ldg__auth_str(req, body, "name", true, 1, PANEL_NAME_MAX, &name) < 0 ||
        ldg__auth_int(req, body, "index", true, 0, PANEL_INDEX_MAX, &index) < 0 ||
        ldg__auth_str(req, body, "project_id", true, 1, PANEL_PROJECT_MAX, &project) < 0 ||
        ldg__auth_str(req, body, "period", false, 0, 0, &period) < 0)
        return NULL;
    if (period && !one_of(period, periods, LDG_ARRAY_SIZE(periods))) {
        enum_422(req, body, "period", periods, LDG_ARRAY_SIZE(periods));
        return NULL;
    }
    if (ldg__auth_str(req, body, "periodFrom", false, 0, PANEL_PERIOD_TEXT_MAX, &from) < 0 ||
        ldg__auth_str(req, body, "periodTo", false, 0, PANEL_PERIOD_TEXT_MAX, &to) < 0 ||
        ldg__auth_str(req, body, "type", true, 0, 0, &type) < 0)
        return NULL;
    if (!one_of(type, panel_types, LDG_ARRAY_SIZE(panel_types))) {
        enum_422(req, body, "type", panel_types, LDG_ARRAY_SIZE(panel_types));
        return NULL;
    }
    if (ldg__auth_str(req, body, "endpoint", false, 0, PANEL_ENDPOINT_MAX, &endpoint) < 0)
        return NULL;
    /* The reference's model validator, in its order. */
    bool has_period = period != NULL, has_dates = from && to;
    const char *rule = NULL;
    if (!has_period && !has_dates)
        rule = "Value error, Either 'period' or both 'periodFrom' and 'periodTo' must be provided";
    else if (has_period && has_dates)
        rule = "Value error, Cannot use both 'period' and 'periodFrom'/'periodTo' parameters";
    else if ((from == NULL) != (to == NULL))
        rule = "Value error, Both 'periodFrom' and 'periodTo' must be provided together";
    if (rule) {
        ldg__auth_422(req, "body", NULL, "value_error", rule, body);
        return NULL;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "id", id);
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddNumberToObject(p, "index", (double)index);
    cJSON_AddStringToObject(p, "project_id", project);
    if (period)
        cJSON_AddStringToObject(p, "period", period);
    else
        cJSON_AddNullToObject(p, "period");
    if (from)
        cJSON_AddStringToObject(p, "periodFrom", from);
    else
        cJSON_AddNullToObject(p, "periodFrom");
    if (to)
        cJSON_AddStringToObject(p, "periodTo", to);
    else
        cJSON_AddNullToObject(p, "periodTo");
    cJSON_AddStringToObject(p, "type", type);
    if (endpoint && *endpoint)
        cJSON_AddStringToObject(p, "endpoint", endpoint);
    else
        cJSON_AddNullToObject(p, "endpoint");
    return p;
}

/* A change in flight: the panel as stored (its text is parsed again to answer, so nothing but
 * the arena has to outlive the asynchronous statements) and its id. */
struct panel_op {
    const char *id;         /* arena */
    const char *json;       /* arena */
    const char *project_id; /* arena */
};

/* Takes `panel` (deletes it). */
static struct panel_op *panel_op_new(struct ldg_req *req, cJSON *panel, const char *id)
{
    struct panel_op *op = ldg_arena_alloc(&req->arena, sizeof *op);
    op->id = id;
    const char *project = cJSON_GetObjectItemCaseSensitive(panel, "project_id")->valuestring;
    op->project_id = ldg_arena_strndup(&req->arena, project, strlen(project));
    char *text = cJSON_PrintUnformatted(panel);
    cJSON_Delete(panel);
    LDG_ASSERT(text);
    op->json = ldg_arena_strndup(&req->arena, text, strlen(text));
    free(text);
    return op;
}

static void respond_panel(struct ldg_req *req, int status, const struct panel_op *op)
{
    cJSON *panel = ldg_json_parse(op->json, strlen(op->json));
    LDG_ASSERT(panel);
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    write_panel(&jw, panel);
    cJSON_Delete(panel);
    ldg__auth_respond_buf(req, status, &b);
}

/* ---- GET /dashboard/panels ------------------------------------------------------------------------ */

static int64_t write_panels(struct ldg_json_writer *jw, void *ud)
{
    const cJSON *list = ud, *p;
    int64_t total = 0;
    cJSON_ArrayForEach(p, list)
    {
        if (!cJSON_IsObject(p))
            continue;
        write_panel(jw, p);
        total++;
    }
    return total;
}

static void on_panels(struct ldg_req *req, PGresult *res, void *ud)
{
    cJSON *arr = NULL;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        arr = ldg_json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    ldg__auth_respond_list(req, "panels", write_panels, cJSON_IsArray(arr) ? arr : NULL);
    cJSON_Delete(arr);
}

static void list_panels(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    const char *params[] = {ldg__auth_itoa(req, pr->account_id)};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to get dashboard panels", NULL};
    ldg__auth_sql(req, "pnl_list", "SELECT panels::text FROM user_dashboards WHERE user_id = $1", 1, params,
                  &errs, on_panels, NULL);
}

/* ---- POST /dashboard/panels ----------------------------------------------------------------------- */

static void on_panel_added(struct ldg_req *req, PGresult *res, void *ud)
{
    struct panel_op *op = ud;
    if (PQntuples(res) == 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "Panel limit reached: a dashboard can have at most %" PRId64 " panels",
                 ldg__auth.cfg->max_panels);
        ldg_req_error(req, 400, msg);
        return;
    }
    respond_panel(req, 201, op);
}

static void add_panel(struct ldg_req *req, void *ud)
{
    struct panel_op *op = ud;
    const struct ldg_principal *pr = ldg_principal(req);
    const char *params[] = {ldg__auth_itoa(req, pr->account_id), op->json,
                            ldg__auth_itoa(req, ldg__auth.cfg->max_panels)};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to create dashboard panel", NULL};
    /* The cap is checked on the locked row (ON CONFLICT DO UPDATE ... WHERE). */
    ldg__auth_sql(
        req, "pnl_add",
        "INSERT INTO user_dashboards AS d (user_id, panels) VALUES ($1, jsonb_build_array($2::jsonb)) "
        "ON CONFLICT (user_id) DO UPDATE SET panels = d.panels || jsonb_build_array($2::jsonb), "
        "updated_at = now() WHERE jsonb_array_length(d.panels) < $3::int RETURNING 1",
        3, params, &errs, on_panel_added, op);
}

static void create_panel(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    unsigned char rnd[8];
    char id[sizeof "panel_" + 16];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        cJSON_Delete(body);
        char ctx[128];
        log_ctx(req, ctx, sizeof ctx);
        ldg_log_error(ctx, "panel id: RAND_bytes failed");
        ldg_req_error(req, 500, "Failed to create dashboard panel");
        return;
    }
    memcpy(id, "panel_", 6);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 6 + 2 * i, 3, "%02x", rnd[i]);
    cJSON *panel = panel_from_body(req, body, id);
    cJSON_Delete(body);
    if (!panel)
        return;
    struct panel_op *op = panel_op_new(req, panel, ldg_arena_strndup(&req->arena, id, strlen(id)));
    require_project(req, op->project_id, add_panel, op);
}

/* ---- PUT /dashboard/panels/{panel_id} ------------------------------------------------------------- */

static void on_panel_replaced(struct ldg_req *req, PGresult *res, void *ud)
{
    struct panel_op *op = ud;
    if (PQntuples(res) == 0) {
        ldg_req_error(req, 404, ldg__auth_printf(req, "Panel %s not found", op->id));
        return;
    }
    respond_panel(req, 200, op);
}

static void replace_panel(struct ldg_req *req, void *ud)
{
    struct panel_op *op = ud;
    const struct ldg_principal *pr = ldg_principal(req);
    const char *params[] = {ldg__auth_itoa(req, pr->account_id), op->id, op->json};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to update dashboard panel", NULL};
    ldg__auth_sql(
        req, "pnl_replace",
        "UPDATE user_dashboards d SET panels = (SELECT jsonb_agg(CASE WHEN t.e->>'id' = $2 THEN $3::jsonb "
        "ELSE t.e END ORDER BY t.i) FROM jsonb_array_elements(d.panels) WITH ORDINALITY AS t(e, i)), "
        "updated_at = now() "
        "WHERE d.user_id = $1 AND d.panels @> jsonb_build_array(jsonb_build_object('id', $2::text)) "
        "RETURNING 1",
        3, params, &errs, on_panel_replaced, op);
}

static void update_panel(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    const char *id = path_text(req, "panel_id", PANEL_ID_MAX);
    struct ldg_str raw = ldg_req_param(req, "panel_id");
    cJSON *panel = panel_from_body(req, body, id ? id : "");
    cJSON_Delete(body);
    if (!panel)
        return;
    if (!id) {
        cJSON_Delete(panel);
        ldg_req_error(
            req, 404,
            ldg__auth_printf(req, "Panel %s not found", ldg_arena_strndup(&req->arena, raw.p, raw.n)));
        return;
    }
    struct panel_op *op = panel_op_new(req, panel, id);
    require_project(req, op->project_id, replace_panel, op);
}

/* ---- DELETE /dashboard/panels/{panel_id} ---------------------------------------------------------- */

static void on_panel_deleted(struct ldg_req *req, PGresult *res, void *ud)
{
    const char *id = ud;
    if (PQntuples(res) == 0) {
        ldg_req_error(req, 404, ldg__auth_printf(req, "Panel %s not found", id));
        return;
    }
    ldg__auth_respond_success(req, ldg__auth_printf(req, "Panel %s deleted successfully", id));
}

static void delete_panel(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    const char *id = path_text(req, "panel_id", PANEL_ID_MAX);
    if (!id) {
        struct ldg_str raw = ldg_req_param(req, "panel_id");
        ldg_req_error(
            req, 404,
            ldg__auth_printf(req, "Panel %s not found", ldg_arena_strndup(&req->arena, raw.p, raw.n)));
        return;
    }
    const char *params[] = {ldg__auth_itoa(req, pr->account_id), id};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to delete dashboard panel", NULL};
    ldg__auth_sql(
        req, "pnl_delete",
        "UPDATE user_dashboards d SET panels = coalesce((SELECT jsonb_agg(t.e ORDER BY t.i) "
        "FROM jsonb_array_elements(d.panels) WITH ORDINALITY AS t(e, i) "
        "WHERE t.e->>'id' IS DISTINCT FROM $2), '[]'::jsonb), updated_at = now() "
        "WHERE d.user_id = $1 AND d.panels @> jsonb_build_array(jsonb_build_object('id', $2::text)) "
        "RETURNING 1",
        2, params, &errs, on_panel_deleted, (void *)id);
}

/* ---- notification preferences ---------------------------------------------------------------------- */

/* N1 shape from a stored document (any shape: unknown members are dropped, wrong types become
 * the defaults). */
static void write_prefs(struct ldg_json_writer *jw, const cJSON *root)
{
    const cJSON *enabled = ldg_json_member(root, "enabled");
    const cJSON *projects = ldg_json_member(root, "projects");
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "enabled");
    ldg_json_bool(jw, !cJSON_IsBool(enabled) || cJSON_IsTrue(enabled));
    ldg_json_key(jw, "projects");
    ldg_json_obj_begin(jw);
    const cJSON *p;
    const cJSON *map = cJSON_IsObject(projects) ? projects : NULL;
    cJSON_ArrayForEach(p, map)
    {
        if (!cJSON_IsObject(p) || !p->string)
            continue;
        ldg_json_key(jw, p->string);
        ldg_json_obj_begin(jw);
        const cJSON *pe = ldg_json_member(p, "enabled");
        ldg_json_key(jw, "enabled");
        ldg_json_bool(jw, !cJSON_IsBool(pe) || cJSON_IsTrue(pe));
        static const char *const lists[] = {"levels", "types"};
        for (size_t l = 0; l < LDG_ARRAY_SIZE(lists); l++) {
            ldg_json_key(jw, lists[l]);
            ldg_json_arr_begin(jw);
            const cJSON *item;
            const cJSON *arr = ldg_json_member(p, lists[l]);
            if (!cJSON_IsArray(arr))
                arr = NULL;
            cJSON_ArrayForEach(item, arr)
            {
                if (cJSON_IsString(item))
                    ldg_json_str(jw, item->valuestring);
            }
            ldg_json_arr_end(jw);
        }
        ldg_json_obj_end(jw);
    }
    ldg_json_obj_end(jw);
    ldg_json_obj_end(jw);
}

static void respond_prefs_text(struct ldg_req *req, const char *text, size_t len)
{
    cJSON *root = text ? ldg_json_parse(text, len) : NULL;
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    write_prefs(&jw, root);
    cJSON_Delete(root);
    ldg__auth_respond_buf(req, 200, &b);
}

static void on_prefs(struct ldg_req *req, PGresult *res, void *ud)
{
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) /* reference: defaults, not an error */
        respond_prefs_text(req, NULL, 0);
    else
        respond_prefs_text(req, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static void get_prefs(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    const char *params[] = {ldg__auth_itoa(req, pr->account_id)};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to get preferences", NULL};
    ldg__auth_sql(req, "pref_get", "SELECT notification_preferences::text FROM accounts WHERE id = $1", 1,
                  params, &errs, on_prefs, NULL);
}

/* A bool member (default true when absent). Returns false after answering 422. */
static bool prefs_bool(struct ldg_req *req, const cJSON *obj, struct ldg_auth_loc *loc, size_t n, bool *out)
{
    const cJSON *v = ldg_json_member(obj, loc[n - 1].name);
    if (!v) {
        *out = true;
        return true;
    }
    if (!cJSON_IsBool(v)) {
        ldg__auth_422_at(req, "body", loc, n, "bool_type", "Input should be a valid boolean", v);
        return false;
    }
    *out = cJSON_IsTrue(v);
    return true;
}

/* A list of short strings (default []); copies the items into `dst`. */
static bool prefs_list(struct ldg_req *req, const cJSON *obj, struct ldg_auth_loc *loc, size_t n, cJSON *dst)
{
    const cJSON *v = ldg_json_member(obj, loc[n - 1].name);
    cJSON *out = cJSON_AddArrayToObject(dst, loc[n - 1].name);
    if (!v)
        return true;
    if (!cJSON_IsArray(v)) {
        ldg__auth_422_at(req, "body", loc, n, "list_type", "Input should be a valid list", v);
        return false;
    }
    int count = cJSON_GetArraySize(v);
    if (count > PREFS_LIST_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "List should have at most %d items after validation, not %d",
                 PREFS_LIST_MAX, count);
        ldg__auth_422_at(req, "body", loc, n, "too_long", msg, v);
        return false;
    }
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v)
    {
        struct ldg_auth_loc at[8];
        memcpy(at, loc, n * sizeof *loc);
        at[n] = (struct ldg_auth_loc){NULL, i++};
        size_t chars = 0;
        if (!cJSON_IsString(item)) {
            ldg__auth_422_at(req, "body", at, n + 1, "string_type", "Input should be a valid string", item);
            return false;
        }
        if (ldg_utf8_count(item->valuestring, strlen(item->valuestring), &chars) < 0 ||
            chars > PREFS_ITEM_MAX) {
            char msg[64];
            snprintf(msg, sizeof msg, "String should have at most %d characters", PREFS_ITEM_MAX);
            ldg__auth_422_at(req, "body", at, n + 1, "string_too_long", msg, item);
            return false;
        }
        cJSON_AddItemToArray(out, cJSON_CreateString(item->valuestring));
    }
    return true;
}

/* Python's int() of a dict key, canonicalised to decimal digits. */
static bool canonical_key(const char *s, char *out, size_t cap, int64_t *id)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    int64_t v = 0;
    size_t digits = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (++digits > 18 && v != 0)
            return false; /* cannot be a project id (BIGINT) anyway */
        v = v * 10 + (*s - '0');
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (digits == 0 || *s)
        return false;
    *id = neg ? -v : v;
    snprintf(out, cap, "%" PRId64, *id);
    return true;
}

/* Validate an N2 body into the normalised document to store; collects the project ids.
 * Returns NULL after answering 422. */
static cJSON *prefs_from_body(struct ldg_req *req, const cJSON *body, int64_t **ids, size_t *nids)
{
    cJSON *doc = cJSON_CreateObject();
    bool enabled;
    struct ldg_auth_loc loc[4] = {{"enabled", 0}};
    if (!prefs_bool(req, body, loc, 1, &enabled))
        goto fail;
    cJSON_AddBoolToObject(doc, "enabled", enabled);
    cJSON *out = cJSON_AddObjectToObject(doc, "projects");
    const cJSON *projects = ldg_json_member(body, "projects");
    *nids = 0;
    if (!projects)
        return doc;
    loc[0] = (struct ldg_auth_loc){"projects", 0};
    if (!cJSON_IsObject(projects)) {
        ldg__auth_422_at(req, "body", loc, 1, "dict_type", "Input should be a valid dictionary", projects);
        goto fail;
    }
    int count = cJSON_GetArraySize(projects);
    if (count > PREFS_PROJECTS_MAX) {
        char msg[96];
        snprintf(msg, sizeof msg, "Dictionary should have at most %d items after validation, not %d",
                 PREFS_PROJECTS_MAX, count);
        ldg__auth_422_at(req, "body", loc, 1, "too_long", msg, NULL);
        goto fail;
    }
    *ids = ldg_arena_alloc(&req->arena, (size_t)(count ? count : 1) * sizeof **ids);
    const cJSON *p;
    cJSON_ArrayForEach(p, projects)
    {
        char key[24];
        int64_t id;
        loc[1] = (struct ldg_auth_loc){p->string, 0};
        if (!canonical_key(p->string, key, sizeof key, &id)) {
            loc[2] = (struct ldg_auth_loc){"[key]", 0};
            cJSON *in = cJSON_CreateString(p->string);
            ldg__auth_422_at(req, "body", loc, 3, "int_parsing",
                             "Input should be a valid integer, unable to parse string as an integer", in);
            cJSON_Delete(in);
            goto fail;
        }
        if (!cJSON_IsObject(p)) {
            ldg__auth_422_at(req, "body", loc, 2, "dict_type", "Input should be a valid dictionary", p);
            goto fail;
        }
        cJSON *entry = cJSON_CreateObject();
        bool pe;
        loc[2] = (struct ldg_auth_loc){"enabled", 0};
        bool ok = prefs_bool(req, p, loc, 3, &pe);
        if (ok) {
            cJSON_AddBoolToObject(entry, "enabled", pe);
            loc[2] = (struct ldg_auth_loc){"levels", 0};
            ok = prefs_list(req, p, loc, 3, entry);
        }
        if (ok) {
            loc[2] = (struct ldg_auth_loc){"types", 0};
            ok = prefs_list(req, p, loc, 3, entry);
        }
        if (!ok) {
            cJSON_Delete(entry);
            goto fail;
        }
        if (cJSON_GetObjectItemCaseSensitive(out, key)) { /* "7" and "07", or a repeated key: the last wins */
            cJSON_ReplaceItemInObjectCaseSensitive(out, key, entry);
        } else {
            cJSON_AddItemToObject(out, key, entry);
            (*ids)[(*nids)++] = id;
        }
    }
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

struct prefs_op {
    const char *json; /* arena: the document to store */
};

static void on_prefs_stored(struct ldg_req *req, PGresult *res, void *ud)
{
    if (PQntuples(res) == 0) {
        ldg_req_error(req, 404, "Account not found");
        return;
    }
    ldg_notify_prefs_changed(req->w, ldg_principal(req)->account_id); /* open streams re-read them */
    respond_prefs_text(req, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static void store_prefs(struct ldg_req *req, struct prefs_op *op)
{
    const struct ldg_principal *pr = ldg_principal(req);
    const char *params[] = {ldg__auth_itoa(req, pr->account_id), op->json};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to update preferences", NULL};
    ldg__auth_sql(
        req, "pref_put",
        "UPDATE accounts SET notification_preferences = $2::jsonb, updated_at = now() WHERE id = $1 "
        "RETURNING notification_preferences::text",
        2, params, &errs, on_prefs_stored, NULL);
}

static void on_prefs_projects(struct ldg_req *req, PGresult *res, void *ud)
{
    const struct ldg_principal *pr = ldg_principal(req);
    int n = PQntuples(res);
    bool forbidden = false;
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 1)) {
            ldg_req_error(req, 404, "Project not found");
            return;
        }
        if (strtoll(PQgetvalue(res, i, 1), NULL, 10) != pr->account_id)
            forbidden = true;
    }
    if (forbidden) {
        ldg_req_error(req, 403, "You don't have permission to use this project");
        return;
    }
    store_prefs(req, ud);
}

static void put_prefs(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    int64_t *ids = NULL;
    size_t nids = 0;
    cJSON *doc = prefs_from_body(req, body, &ids, &nids);
    cJSON_Delete(body);
    if (!doc)
        return;
    struct prefs_op *op = ldg_arena_alloc(&req->arena, sizeof *op);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    LDG_ASSERT(text);
    op->json = ldg_arena_strndup(&req->arena, text, strlen(text));
    free(text);
    if (nids == 0) {
        store_prefs(req, op);
        return;
    }
    /* Every project named must be the caller's: "{1,2,3}" as a BIGINT[] parameter. */
    char *arr = ldg_arena_alloc(&req->arena, nids * 21 + 3);
    size_t o = 0;
    arr[o++] = '{';
    for (size_t i = 0; i < nids; i++)
        o += (size_t)sprintf(arr + o, "%s%" PRId64, i ? "," : "", ids[i]);
    arr[o++] = '}';
    arr[o] = '\0';
    const char *params[] = {arr};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to update preferences", NULL};
    ldg__auth_sql(
        req, "pref_projects",
        "SELECT k.id, p.account_id FROM unnest($1::bigint[]) AS k(id) LEFT JOIN projects p ON p.id = k.id", 1,
        params, &errs, on_prefs_projects, op);
}

/* ---- routes ----------------------------------------------------------------------------------------- */

void ldg__auth_panels_routes(struct ldg_router *r)
{
    ldg__auth_route(r, "GET", "/api/v1/dashboard/panels", list_panels, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "POST", "/api/v1/dashboard/panels", create_panel, LDG_ROUTE_ACCOUNT, PANEL_BODY_MAX);
    ldg__auth_route(r, "PUT", "/api/v1/dashboard/panels/{panel_id}", update_panel, LDG_ROUTE_ACCOUNT,
                    PANEL_BODY_MAX);
    ldg__auth_route(r, "DELETE", "/api/v1/dashboard/panels/{panel_id}", delete_panel, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "GET", "/api/v1/notifications/preferences", get_prefs, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "PUT", "/api/v1/notifications/preferences", put_prefs, LDG_ROUTE_ACCOUNT,
                    PREFS_BODY_MAX);
}
