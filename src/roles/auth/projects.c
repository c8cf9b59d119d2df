/*
 * projects.c: projects (create, list, get by slug, update, quota), API keys (create, list,
 * revoke) and /settings: reference §3.2, §3.3, §3.5; decisions D2 (ownership), D3 (keys stored
 * as argon2id + an indexed SHA-256 digest, cache invalidation), D4 (live quota counter), D6
 * (/settings reports the limits actually enforced).
 *
 * Ownership: every statement that reaches a project or a key by id also returns the owner, so one
 * round trip tells "missing" (404) from "someone else's" (403) from "done"; writes carry the
 * owner in their WHERE clause, so a write can never land on someone else's row.
 *
 * Caches: gateways cache validated keys (auth/keycache.h). A revocation writes a tombstone for the
 * key's digest and publishes it before we answer; a quota change drops the cached entries of the
 * project's active keys. Both continue when the client has gone: the database change is made.
 */
#include "roles/auth/auth.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/apikey.h"
#include "auth/keycache.h"
#include "auth/password.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "db/redis.h"

#define NAME_MAX_CHARS 255
#define SLUG_MAX_CHARS 255
#define RETENTION_MIN 1
#define RETENTION_MAX 365
#define QUOTA_MIN 1000
#define QUOTA_MAX 1000000000000LL
#define INVALIDATE_CHUNK 64 /* digests per ldg_keycache_invalidate call */
#define SMALL_BODY (16 * 1024)

#define TIMEOUT_TEXT "Service timeout, please try again"
#define KEY_WARNING "Save this key now! It will not be shown again."
#define SETTINGS_SESSION_TEXT                                                                                \
    "This endpoint requires API key authentication (X-API-Key or Authorization: Bearer <api_key>). JWT "     \
    "session tokens are not supported."

/* ---- shared helpers ------------------------------------------------------------------------------ */

const struct ldg_principal *ldg__auth_account(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg_principal(req);
    if (!p) {
        ldg_req_add_header(req, "WWW-Authenticate", "Bearer");
        ldg_req_error(req, 401, "Not authenticated");
        return NULL;
    }
    if (p->kind != LDG_PRINCIPAL_SESSION) {
        ldg_req_error(req, 403, "API keys cannot access account-level endpoints; sign in to the dashboard");
        return NULL;
    }
    return p;
}

bool ldg__auth_owned(struct ldg_req *req, const PGresult *res, const char *missing, const char *forbidden)
{
    if (PQntuples(res) == 0) {
        ldg_req_error(req, 404, missing);
        return false;
    }
    const char *owner = PQgetisnull(res, 0, 0) ? "0" : PQgetvalue(res, 0, 0);
    if (forbidden && strtoll(owner, NULL, 10) != ldg_principal(req)->account_id) {
        ldg_req_error(req, 403, forbidden);
        return false;
    }
    return true;
}

/* Python's int() of a string, roughly: surrounding whitespace, a sign, decimal digits.
 * Returns 0 (*out set; *overflow when it does not fit in int64, *out then has the sign), or -EINVAL. */
static int parse_int_text(const char *s, int64_t *out, bool *overflow)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    uint64_t v = 0;
    *overflow = false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            *overflow = true;
        else
            v = v * 10 + (uint64_t)(*s - '0');
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (*s)
        return -EINVAL;
    if (v > (uint64_t)INT64_MAX)
        *overflow = true;
    *out = *overflow ? (neg ? -1 : 1) : (neg ? -(int64_t)v : (int64_t)v);
    return 0;
}

int ldg__auth_int(struct ldg_req *req, const cJSON *obj, const char *field, bool required, int64_t min,
                  int64_t max, int64_t *out)
{
    const cJSON *v = ldg_json_member(obj, field);
    if (!v || cJSON_IsNull(v)) {
        if (!required)
            return 0;
        if (!v)
            ldg__auth_422(req, "body", field, "missing", "Field required", obj);
        else
            ldg__auth_422(req, "body", field, "int_type", "Input should be a valid integer", v);
        return -EINVAL;
    }
    int64_t n = 0;
    bool below = false, above = false;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        bool in_range = d > -9.2e18 && d < 9.2e18;
        if (in_range && (double)(int64_t)d != d) {
            ldg__auth_422(req, "body", field, "int_from_float",
                          "Input should be a valid integer, got a number with a fractional part", v);
            return -EINVAL;
        }
        below = d < (double)min;
        above = d > (double)max;
        if (in_range)
            n = (int64_t)d;
    } else if (cJSON_IsString(v)) {
        bool overflow = false;
        if (parse_int_text(v->valuestring, &n, &overflow) < 0) {
            ldg__auth_422(req, "body", field, "int_parsing",
                          "Input should be a valid integer, unable to parse string as an integer", v);
            return -EINVAL;
        }
        below = overflow ? n < 0 : n < min;
        above = overflow ? n > 0 : n > max;
    } else {
        ldg__auth_422(req, "body", field, "int_type", "Input should be a valid integer", v);
        return -EINVAL;
    }
    char msg[96];
    if (below) {
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %" PRId64, min);
        ldg__auth_422(req, "body", field, "greater_than_equal", msg, v);
        return -EINVAL;
    }
    if (above) {
        snprintf(msg, sizeof msg, "Input should be less than or equal to %" PRId64, max);
        ldg__auth_422(req, "body", field, "less_than_equal", msg, v);
        return -EINVAL;
    }
    *out = n;
    return 1;
}

static void log_ctx(const struct ldg_req *req, char *out, size_t cap)
{
    snprintf(out, cap, "role=auth rid=%s", req->request_id);
}

static int64_t col_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *col_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static const struct ldg_auth_errs *errs_of(struct ldg_req *req, const char *failed, const char *unique)
{
    struct ldg_auth_errs *e = ldg_arena_alloc(&req->arena, sizeof *e);
    *e = (struct ldg_auth_errs){TIMEOUT_TEXT, failed, unique};
    return e;
}

/* UTC calendar dates for the daily quota: today as YYYYMMDD (the Redis counter's key) and
 * YYYY-MM-DD (daily_usage.date), and the next midnight as isoformat. */
struct quota_day {
    char compact[16];
    char iso_date[16];
    char reset_at[40];
};

static void quota_day_now(struct quota_day *d)
{
    /* Formatted once per UTC day and thread (/settings is a hot path). */
    static _Thread_local int64_t cached_day = -1;
    static _Thread_local struct quota_day cached;
    time_t now = time(NULL);
    if (now / 86400 != cached_day) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached.compact, sizeof cached.compact, "%Y%m%d", &tm);
        strftime(cached.iso_date, sizeof cached.iso_date, "%Y-%m-%d", &tm);
        time_t next = now - (now % 86400) + 86400; /* POSIX time has no leap seconds */
        gmtime_r(&next, &tm);
        strftime(cached.reset_at, sizeof cached.reset_at, "%Y-%m-%dT00:00:00+00:00", &tm);
        cached_day = now / 86400;
    }
    *d = cached;
}

/* Python's datetime.now(timezone.utc).isoformat(). */
static void iso_now(char *out, size_t cap)
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char base[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    unsigned us = (unsigned)(ts.tv_nsec / 1000) % 1000000u;
    if (us)
        snprintf(out, cap, "%.19s.%06u+00:00", base, us);
    else
        snprintf(out, cap, "%.19s+00:00", base);
}

/* ---- per-worker cache of what /settings shows of a project ------------------------------------------ */

/* /settings is the SDKs' hot read (issue target: at least half the req/s of /health), so in the
 * steady state it costs no round trip at all: the quota comes from the principal (the gateways'
 * key cache, invalidated on every quota change), today's usage from the counter the gateway reads
 * in its rate-limit round trip (LDG_ROUTE_USAGE), and a project's name, slug and environment from
 * this per-worker cache. Slug and environment never change; a rename is seen at once by the
 * worker that made it and by the others within PROJECT_CACHE_TTL_MS. */
#define PROJECT_CACHE_SLOTS 256 /* direct-mapped by project id */
#define PROJECT_CACHE_TTL_MS 5000

struct project_entry {
    int64_t project_id; /* 0 = empty */
    uint64_t expires_ms;
    char *name; /* owned */
    char *slug; /* owned */
    char env[24];
};

struct ldg_auth_project_cache {
    struct project_entry slots[PROJECT_CACHE_SLOTS];
};

static struct project_entry *cache_slot(struct ldg_req *req, int64_t project_id, bool create)
{
    struct ldg_auth_worker *aw = ldg__auth_worker(req);
    if (!aw->projects) {
        if (!create)
            return NULL;
        aw->projects = ldg_calloc(1, sizeof *aw->projects);
    }
    return &aw->projects->slots[(uint64_t)project_id % PROJECT_CACHE_SLOTS];
}

static const struct project_entry *cache_get(struct ldg_req *req, int64_t project_id)
{
    const struct project_entry *e = cache_slot(req, project_id, false);
    if (e && e->project_id == project_id && ldg_worker_now(req->w) < e->expires_ms)
        return e;
    return NULL;
}

static void cache_put(struct ldg_req *req, int64_t project_id, const char *name, const char *slug,
                      const char *env)
{
    struct project_entry *e = cache_slot(req, project_id, true);
    free(e->name);
    free(e->slug);
    e->project_id = project_id;
    e->expires_ms = ldg_worker_now(req->w) + PROJECT_CACHE_TTL_MS;
    e->name = ldg_strdup(name);
    e->slug = ldg_strdup(slug);
    snprintf(e->env, sizeof e->env, "%s", env);
}

static void cache_drop(struct ldg_req *req, int64_t project_id)
{
    struct project_entry *e = cache_slot(req, project_id, false);
    if (e && e->project_id == project_id)
        e->expires_ms = 0;
}

void ldg__auth_projects_worker_free(struct ldg_auth_worker *aw)
{
    if (!aw->projects)
        return;
    for (size_t i = 0; i < PROJECT_CACHE_SLOTS; i++) {
        free(aw->projects->slots[i].name);
        free(aw->projects->slots[i].slug);
    }
    free(aw->projects);
    aw->projects = NULL;
}

/* ---- ProjectResponse ----------------------------------------------------------------------------- */

/* Select list of a ProjectResponse over `projects p` (also valid in RETURNING). */
#define PROJECT_COLS                                                                                         \
    "p.id AS project_id, p.name AS name, p.slug AS slug, coalesce(p.environment, 'production') AS "          \
    "environment, coalesce(p.retention_days, 30) AS retention_days, coalesce(p.daily_quota, 1000000) AS "    \
    "daily_quota, coalesce(array_to_json(p.available_routes)::text, '[]') AS available_routes"
#define PROJECT_NCOLS 7

static void write_project(struct ldg_json_writer *jw, const PGresult *res, int row, int c)
{
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "project_id");
    ldg_json_int(jw, col_int(res, row, c));
    ldg_json_key(jw, "name");
    ldg_json_str(jw, col_str(res, row, c + 1));
    ldg_json_key(jw, "slug");
    ldg_json_str(jw, col_str(res, row, c + 2));
    ldg_json_key(jw, "environment");
    ldg_json_str(jw, col_str(res, row, c + 3));
    ldg_json_key(jw, "retention_days");
    ldg_json_int(jw, col_int(res, row, c + 4));
    ldg_json_key(jw, "daily_quota");
    ldg_json_int(jw, col_int(res, row, c + 5));
    ldg_json_key(jw, "available_routes");
    const char *routes = PQgetvalue(res, row, c + 6);
    ldg_json_raw(jw, routes, strlen(routes));
    ldg_json_obj_end(jw);
}

static void respond_project(struct ldg_req *req, int status, const PGresult *res, int row, int c)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    write_project(&jw, res, row, c);
    ldg__auth_respond_buf(req, status, &b);
}

/* ---- POST /projects -------------------------------------------------------------------------------- */

static bool check_slug(struct ldg_req *req, const cJSON *body, const char *slug)
{
    bool alnum = false;
    for (const char *p = slug; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
            alnum = true;
        } else if (*p != '-') {
            ldg__auth_422(req, "body", "slug", "string_pattern_mismatch",
                          "String should match pattern '^[a-z0-9-]+$'", ldg_json_member(body, "slug"));
            return false;
        }
    }
    if (!alnum) {
        ldg__auth_422(req, "body", "slug", "value_error",
                      "Value error, Slug must contain only alphanumeric characters, hyphens, and underscores",
                      ldg_json_member(body, "slug"));
        return false;
    }
    return true;
}

static bool check_environment(struct ldg_req *req, const cJSON *body, const char **env)
{
    if (!*env) {
        *env = "production";
        return true;
    }
    if (strcmp(*env, "production") == 0 || strcmp(*env, "staging") == 0 || strcmp(*env, "dev") == 0)
        return true;
    ldg__auth_422(req, "body", "environment", "enum", "Input should be 'production', 'staging' or 'dev'",
                  ldg_json_member(body, "environment"));
    return false;
}

static void on_project_created(struct ldg_req *req, PGresult *res, void *ud)
{
    if (PQntuples(res) == 0) {
        ldg_req_error(
            req, 400,
            ldg__auth_printf(req, "Project limit reached: an account can have at most %" PRId64 " projects",
                             ldg__auth.cfg->max_projects));
        return;
    }
    respond_project(req, 201, res, 0, 0);
}

static void create_project(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    const char *name, *slug, *env;
    if (ldg__auth_str(req, body, "name", true, 1, NAME_MAX_CHARS, &name) < 0 ||
        ldg__auth_str(req, body, "slug", true, 1, SLUG_MAX_CHARS, &slug) < 0 ||
        !check_slug(req, body, slug) || ldg__auth_str(req, body, "environment", false, 0, 0, &env) < 0 ||
        !check_environment(req, body, &env)) {
        cJSON_Delete(body);
        return;
    }
    const char *params[] = {ldg__auth_itoa(req, pr->account_id), name, slug, env,
                            ldg__auth_itoa(req, ldg__auth.cfg->max_projects)};
    const struct ldg_auth_errs *errs =
        errs_of(req, "Failed to create project",
                ldg__auth_printf(req, "Project with slug '%s' already exists", slug));
    /* The cap is checked in the statement; two concurrent creations may both pass it (a soft cap). */
    ldg__auth_sql(
        req, "prj_create",
        "WITH c AS (SELECT count(*) AS n FROM projects WHERE account_id = $1) "
        "INSERT INTO projects AS p (account_id, name, slug, environment, retention_days, daily_quota, "
        "available_routes) SELECT $1, $2, $3, $4, 30, 1000000, '{}' FROM c WHERE c.n < $5::bigint "
        "RETURNING " PROJECT_COLS,
        5, params, errs, on_project_created, NULL);
    cJSON_Delete(body);
}

/* ---- GET /projects ----------------------------------------------------------------------------------- */

static int64_t write_projects(struct ldg_json_writer *jw, void *ud)
{
    const PGresult *res = ud;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        write_project(jw, res, i, 0);
    return n;
}

static void on_projects_listed(struct ldg_req *req, PGresult *res, void *ud)
{
    ldg__auth_respond_list(req, "projects", write_projects, res);
}

/* At most 100000 rows (far above [auth] max_projects, which bounds what can be created). */
static void list_projects(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    const char *params[] = {ldg__auth_itoa(req, pr->account_id)};
    static const struct ldg_auth_errs errs = {"Service timeout", "Failed to list projects", NULL};
    ldg__auth_sql(req, "prj_list",
                  "SELECT " PROJECT_COLS
                  " FROM projects p WHERE p.account_id = $1 ORDER BY p.id LIMIT 100000",
                  1, params, &errs, on_projects_listed, NULL);
}

/* ---- GET /projects/{project_slug} ----------------------------------------------------------------- */

static void on_project_by_slug(struct ldg_req *req, PGresult *res, void *ud)
{
    if (PQntuples(res) == 0) {
        ldg_req_error(req, 404, ldg__auth_printf(req, "Project '%s' not found", (const char *)ud));
        return;
    }
    respond_project(req, 200, res, 0, 0);
}

static void get_project(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    size_t n;
    char *slug = ldg__auth_path_text(req, "project_slug", &n);
    bool plausible = n > 0 && n <= SLUG_MAX_CHARS && n == strlen(slug);
    for (size_t i = 0; plausible && i < n; i++)
        plausible =
            (slug[i] >= 'a' && slug[i] <= 'z') || (slug[i] >= '0' && slug[i] <= '9') || slug[i] == '-';
    if (!plausible) { /* no project can have it; also keeps invalid UTF-8 away from PostgreSQL */
        ldg_req_error(req, 404, ldg__auth_printf(req, "Project '%s' not found", slug));
        return;
    }
    const char *params[] = {slug, ldg__auth_itoa(req, pr->account_id)};
    static const struct ldg_auth_errs errs = {"Service timeout", "Failed to get project", NULL};
    ldg__auth_sql(req, "prj_by_slug",
                  "SELECT " PROJECT_COLS " FROM projects p WHERE p.slug = $1 AND p.account_id = $2", 2,
                  params, &errs, on_project_by_slug, slug);
}

/* ---- API-key cache invalidation --------------------------------------------------------------------- */

typedef void (*invalidated_fn)(struct ldg_req *req, bool ok, void *ud);

/* One run over a list of digests, INVALIDATE_CHUNK at a time; holds a request reference so the
 * arena (digests included) lives until the last chunk is done, even when the client has gone. */
struct inval_run {
    struct ldg_req *req;  /* referenced until finish */
    const char **digests; /* arena */
    size_t n, next;
    bool revoked;
    bool ok;
    int err;             /* first submission error, 0 if none */
    const char *what;    /* for the log line */
    invalidated_fn done; /* runs only while the client is connected */
    void *ud;
};

static void inval_finish(struct inval_run *run)
{
    struct ldg_req *req = run->req;
    if (!run->ok) {
        char ctx[128];
        log_ctx(req, ctx, sizeof ctx);
        ldg_log_warn(
            ctx,
            "api key cache invalidation failed (%s, %zu keys, err=%d): gateways may use cached entries "
            "for up to %d s",
            run->what, run->n, run->err, LDG_KEYCACHE_TTL_S);
    }
    if (req->conn)
        run->done(req, run->ok, run->ud);
    ldg_req_unref(req);
}

static void inval_step(struct inval_run *run);

static void on_invalidated(bool ok, void *ud)
{
    struct inval_run *run = ud;
    if (!ok)
        run->ok = false;
    inval_step(run);
}

static void inval_step(struct inval_run *run)
{
    if (run->next < run->n) {
        size_t k = run->n - run->next < INVALIDATE_CHUNK ? run->n - run->next : INVALIDATE_CHUNK;
        int rc = ldg_keycache_invalidate(run->req->w->redis, run->digests + run->next, k, run->revoked,
                                         on_invalidated, run);
        run->next += k;
        if (rc == 0)
            return;
        run->ok = false;
        run->err = rc;
    }
    inval_finish(run);
}

static void invalidate_keys(struct ldg_req *req, const char **digests, size_t n, bool revoked,
                            const char *what, invalidated_fn done, void *ud)
{
    struct inval_run *run = ldg_arena_alloc(&req->arena, sizeof *run);
    *run = (struct inval_run){req, digests, n, 0, revoked, true, 0, what, done, ud};
    ldg_req_ref(req);
    inval_step(run);
}

/* ---- PATCH /projects/{project_id} -------------------------------------------------------------------- */

struct patch_ctx {
    int64_t project_id;
    bool quota_given;
    const char *json; /* arena: the response */
    size_t len;
};

static void on_patch_invalidated(struct ldg_req *req, bool ok, void *ud)
{
    struct patch_ctx *pc = ud;
    ldg_req_json(req, 200, pc->json, pc->len);
}

/* Split "d1,d2,..." (string_agg of key_digest) into the arena. */
static size_t split_digests(struct ldg_req *req, char *list, const char ***out)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    const char **v = ldg_arena_alloc(&req->arena, n * sizeof *v);
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        v[k++] = t;
    *out = v;
    return k;
}

static void on_project_updated(struct ldg_req *req, PGresult *res, void *ud)
{
    static const char forbidden[] = "You don't have permission to modify this project";
    struct patch_ctx *pc = ud;
    if (!ldg__auth_owned(req, res, "Project not found", forbidden))
        return;
    if (PQgetisnull(res, 0, 1)) { /* not updated: the owner changed in between */
        ldg_req_error(req, 403, forbidden);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    write_project(&jw, res, 0, 1);
    pc->len = ldg_buf_size(&b);
    pc->json = ldg_arena_strndup(&req->arena, ldg_buf_head(&b), pc->len);
    ldg_buf_free(&b);
    cache_drop(req, pc->project_id);
    const char *list = col_str(res, 0, 1 + PROJECT_NCOLS);
    if (!pc->quota_given || !list || !*list) {
        ldg_req_json(req, 200, pc->json, pc->len);
        return;
    }
    const char **digests;
    size_t n = split_digests(req, ldg_arena_strndup(&req->arena, list, strlen(list)), &digests);
    invalidate_keys(req, digests, n, false, "quota change", on_patch_invalidated, pc);
}

static void update_project(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    int64_t id;
    if (!ldg__auth_path_id(req, "project_id", &id))
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    const char *name = NULL;
    int64_t retention = 0, quota = 0;
    int has_name, has_ret, has_quota;
    if ((has_name = ldg__auth_str(req, body, "name", false, 1, NAME_MAX_CHARS, &name)) < 0 ||
        (has_ret = ldg__auth_int(req, body, "retention_days", false, RETENTION_MIN, RETENTION_MAX,
                                 &retention)) < 0 ||
        (has_quota = ldg__auth_int(req, body, "daily_quota", false, QUOTA_MIN, QUOTA_MAX, &quota)) < 0) {
        cJSON_Delete(body);
        return;
    }
    if (!has_name && !has_ret && !has_quota) {
        cJSON_Delete(body);
        ldg_req_error(req, 400,
                      "Nothing to update: give at least one of 'name', 'retention_days', 'daily_quota'");
        return;
    }
    struct patch_ctx *pc = ldg_arena_alloc(&req->arena, sizeof *pc);
    *pc = (struct patch_ctx){.project_id = id, .quota_given = has_quota > 0};
    const char *params[] = {ldg__auth_itoa(req, id), ldg__auth_itoa(req, pr->account_id),
                            has_name ? name : NULL, has_ret ? ldg__auth_itoa(req, retention) : NULL,
                            has_quota ? ldg__auth_itoa(req, quota) : NULL};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to update project", NULL};
    /* Returns the owner, the updated project (NULLs when not the caller's) and, after a quota
     * change, the digests of the project's active keys whose cached entries hold the old quota. */
    ldg__auth_sql(
        req, "prj_update",
        "WITH t AS (SELECT account_id FROM projects WHERE id = $1), "
        "u AS (UPDATE projects p SET name = coalesce($3::varchar, p.name), "
        "retention_days = coalesce($4::smallint, p.retention_days), "
        "daily_quota = coalesce($5::bigint, p.daily_quota), updated_at = now() "
        "WHERE p.id = $1 AND p.account_id = $2 RETURNING " PROJECT_COLS ") "
        "SELECT t.account_id, u.*, CASE WHEN $5::bigint IS NULL OR u.project_id IS NULL THEN NULL ELSE "
        "(SELECT string_agg(k.key_digest, ',') FROM api_keys k WHERE k.project_id = $1 "
        "AND k.status = 'active' AND k.key_digest IS NOT NULL) END FROM t LEFT JOIN u ON true",
        5, params, &errs, on_project_updated, pc);
    cJSON_Delete(body);
}

/* ---- GET /projects/{project_id}/quota and GET /settings ------------------------------------------ */

struct usage_ctx {
    struct ldg_req *req;
    bool settings;
    int64_t project_id;
    const char *name, *slug, *env; /* arena */
    int64_t daily_quota, retention_days, persisted_usage;
    struct quota_day day;
};

/* Columns: account_id, name, slug, environment, daily_quota, retention_days, persisted usage. */
#define USAGE_SQL                                                                                            \
    "SELECT p.account_id, p.name, p.slug, coalesce(p.environment, 'production'), "                           \
    "coalesce(p.daily_quota, 1000000), coalesce(p.retention_days, 30), "                                     \
    "coalesce((SELECT d.logs_ingested FROM daily_usage d WHERE d.project_id = p.id AND d.date = $2::date), " \
    "0) "                                                                                                    \
    "FROM projects p WHERE p.id = $1"

/* The constant members of /settings, preformatted (decisions D6: the limits actually enforced). */
static const char settings_constraints[] =
    "{\"max_batch_size\":1000,\"max_message_length\":10000,\"max_error_message_length\":5000,"
    "\"max_stack_trace_length\":50000,\"max_attributes_size_bytes\":100000,\"max_environment_length\":20,"
    "\"max_release_length\":100,\"max_sdk_version_length\":20,\"max_platform_length\":50,"
    "\"max_platform_version_length\":50,\"max_error_type_length\":255,"
    "\"supported_log_levels\":[\"debug\",\"info\",\"warning\",\"error\",\"critical\"],"
    "\"supported_log_types\":[\"console\",\"logger\",\"exception\",\"database\",\"endpoint\",\"custom\"],"
    "\"supported_importance_levels\":[\"low\",\"standard\",\"high\",\"critical\"]}";
static const char settings_features[] =
    "{\"batch_ingestion\":true,\"compression\":true,\"streaming\":false,\"endpoint_monitoring\":true}";

static void write_settings(struct ldg_json_writer *jw, const struct usage_ctx *uc,
                           const struct ldg_principal *pr, int64_t usage)
{
    char now[48];
    iso_now(now, sizeof now);
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "project_id");
    ldg_json_int(jw, uc->project_id);
    ldg_json_key(jw, "project_name");
    ldg_json_str(jw, uc->name);
    ldg_json_key(jw, "project_slug");
    ldg_json_str(jw, uc->slug);
    ldg_json_key(jw, "environment");
    ldg_json_str(jw, uc->env);
    ldg_json_key(jw, "rate_limits");
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "requests_per_minute");
    ldg_json_int(jw, pr->rate_limit_per_minute);
    ldg_json_key(jw, "requests_per_hour");
    ldg_json_int(jw, pr->rate_limit_per_hour);
    ldg_json_obj_end(jw);
    ldg_json_key(jw, "quotas");
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "daily_quota");
    ldg_json_int(jw, uc->daily_quota);
    ldg_json_key(jw, "daily_usage");
    ldg_json_int(jw, usage);
    ldg_json_key(jw, "quota_remaining");
    ldg_json_int(jw, usage < uc->daily_quota ? uc->daily_quota - usage : 0);
    ldg_json_key(jw, "quota_reset_at");
    ldg_json_str(jw, uc->day.reset_at);
    ldg_json_obj_end(jw);
    ldg_json_key(jw, "constraints");
    ldg_json_raw(jw, settings_constraints, sizeof settings_constraints - 1);
    ldg_json_key(jw, "features");
    ldg_json_raw(jw, settings_features, sizeof settings_features - 1);
    ldg_json_key(jw, "server_info");
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "version");
    ldg_json_str(jw, LDG_VERSION); /* the one version: ledgerd --version, /metrics */
    ldg_json_key(jw, "timestamp");
    ldg_json_str(jw, now);
    ldg_json_obj_end(jw);
    ldg_json_obj_end(jw);
}

static void write_quota(struct ldg_json_writer *jw, const struct usage_ctx *uc, int64_t usage)
{
    ldg_json_obj_begin(jw);
    ldg_json_key(jw, "project_id");
    ldg_json_int(jw, uc->project_id);
    ldg_json_key(jw, "project_name");
    ldg_json_str(jw, uc->name);
    ldg_json_key(jw, "project_slug");
    ldg_json_str(jw, uc->slug);
    ldg_json_key(jw, "environment");
    ldg_json_str(jw, uc->env);
    ldg_json_key(jw, "daily_quota");
    ldg_json_int(jw, uc->daily_quota);
    ldg_json_key(jw, "daily_usage");
    ldg_json_int(jw, usage);
    ldg_json_key(jw, "quota_remaining");
    ldg_json_int(jw, usage < uc->daily_quota ? uc->daily_quota - usage : 0);
    ldg_json_key(jw, "quota_reset_at");
    ldg_json_str(jw, uc->day.reset_at);
    ldg_json_key(jw, "retention_days");
    ldg_json_int(jw, uc->retention_days);
    ldg_json_obj_end(jw);
}

static void respond_usage(struct usage_ctx *uc, int64_t usage)
{
    struct ldg_req *req = uc->req;
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    if (uc->settings)
        write_settings(&jw, uc, ldg_principal(req), usage);
    else
        write_quota(&jw, uc, usage);
    ldg__auth_respond_buf(req, 200, &b);
}

static void usage_fallback(struct usage_ctx *uc, const char *why)
{
    char ctx[128];
    log_ctx(uc->req, ctx, sizeof ctx);
    ldg_log_warn(
        ctx, "redis usage counter unavailable (%s): project=%" PRId64 " reporting the persisted daily_usage",
        why, uc->project_id);
    respond_usage(uc, uc->persisted_usage);
}

static void on_usage(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct usage_ctx *uc = ud;
    struct ldg_req *req = uc->req;
    if (req->conn) {
        if (!reply) {
            usage_fallback(uc, "no reply");
        } else if (reply->type == REDIS_REPLY_NIL) {
            respond_usage(uc, 0);
        } else if (reply->type == REDIS_REPLY_INTEGER) {
            respond_usage(uc, reply->integer > 0 ? reply->integer : 0);
        } else if (reply->type == REDIS_REPLY_STRING) {
            int64_t v = 0;
            bool overflow = false;
            char text[32];
            snprintf(text, sizeof text, "%.*s", (int)(reply->len < 31 ? reply->len : 31), reply->str);
            if (parse_int_text(text, &v, &overflow) < 0 || overflow)
                usage_fallback(uc, "not an integer");
            else
                respond_usage(uc, v > 0 ? v : 0);
        } else {
            usage_fallback(uc, "error reply");
        }
    }
    ldg_req_unref(req);
}

static void on_project_usage(struct ldg_req *req, PGresult *res, void *ud)
{
    struct usage_ctx *uc = ud;
    const struct ldg_principal *pr = ldg_principal(req);
    /* /settings: the API key's own project, whoever owns it */
    if (!ldg__auth_owned(req, res, "Project not found",
                         uc->settings ? NULL : "You don't have permission to view this project"))
        return;
    uc->name = ldg_arena_strndup(&req->arena, PQgetvalue(res, 0, 1), strlen(PQgetvalue(res, 0, 1)));
    uc->slug = ldg_arena_strndup(&req->arena, PQgetvalue(res, 0, 2), strlen(PQgetvalue(res, 0, 2)));
    uc->env = ldg_arena_strndup(&req->arena, PQgetvalue(res, 0, 3), strlen(PQgetvalue(res, 0, 3)));
    uc->daily_quota = uc->settings ? pr->daily_quota : col_int(res, 0, 4);
    uc->retention_days = col_int(res, 0, 5);
    uc->persisted_usage = col_int(res, 0, 6);
    if (uc->settings) {
        cache_put(req, uc->project_id, uc->name, uc->slug, uc->env);
        if (pr->usage_today >= 0) {
            respond_usage(uc, pr->usage_today);
            return;
        }
    }
    char key[64];
    snprintf(key, sizeof key, "usage:%" PRId64 ":%s", uc->project_id, uc->day.compact);
    ldg_req_ref(req);
    struct ldg_redis *r = ldg_worker_redis_for(req->w, uc->project_id); /* the counter is on its shard */
    int rc = r ? ldg_redis_command(r, on_usage, uc, "GET %s", key) : -ENOTCONN;
    if (rc < 0) {
        ldg_req_unref(req);
        usage_fallback(uc, rc == -ENOTCONN ? "not connected" : "busy");
    }
}

static void query_usage(struct ldg_req *req, int64_t project_id, bool settings)
{
    struct usage_ctx *uc = ldg_arena_alloc(&req->arena, sizeof *uc);
    *uc = (struct usage_ctx){.req = req, .settings = settings, .project_id = project_id};
    quota_day_now(&uc->day);
    const char *params[] = {ldg__auth_itoa(req, project_id), uc->day.iso_date};
    static const struct ldg_auth_errs quota_errs = {"Service timeout", "Failed to get project quota", NULL};
    static const struct ldg_auth_errs settings_errs = {"Service timeout", "Failed to fetch settings", NULL};
    ldg__auth_sql(req, "prj_usage", USAGE_SQL, 2, params, settings ? &settings_errs : &quota_errs,
                  on_project_usage, uc);
}

static void get_quota(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    int64_t id;
    if (!ldg__auth_path_id(req, "project_id", &id))
        return;
    query_usage(req, id, false);
}

static void get_settings(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg_principal(req);
    if (!pr) {
        ldg_req_add_header(req, "WWW-Authenticate", "Bearer");
        ldg_req_error(req, 401, "Not authenticated");
        return;
    }
    if (pr->kind != LDG_PRINCIPAL_API_KEY) {
        ldg_req_error(req, 400, SETTINGS_SESSION_TEXT);
        return;
    }
    const struct project_entry *e = cache_get(req, pr->project_id);
    if (e && pr->usage_today >= 0) { /* the steady state: no I/O */
        struct usage_ctx uc = {.req = req,
                               .settings = true,
                               .project_id = pr->project_id,
                               .name = e->name,
                               .slug = e->slug,
                               .env = e->env,
                               .daily_quota = pr->daily_quota};
        quota_day_now(&uc.day);
        respond_usage(&uc, pr->usage_today);
        return;
    }
    query_usage(req, pr->project_id, true);
}

/* ---- POST /projects/{project_id}/api-keys ---------------------------------------------------------- */

struct key_ctx {
    struct ldg_req *req;
    int64_t project_id;
    const char *name; /* arena */
    char key[LDG_APIKEY_LEN + 1];
    char prefix[LDG_APIKEY_PREFIX_LEN + 1];
    char digest[LDG_SHA256_HEX_LEN + 1];
};

static void on_key_inserted(struct ldg_req *req, PGresult *res, void *ud)
{
    struct key_ctx *kc = ud;
    if (PQntuples(res) == 0) {
        ldg_req_error(
            req, 400,
            ldg__auth_printf(req, "API key limit reached: a project can have at most %" PRId64 " active keys",
                             ldg__auth.cfg->max_keys));
    } else {
        struct ldg_buf b;
        ldg_buf_init(&b);
        struct ldg_json_writer jw;
        ldg_json_writer_init(&jw, &b);
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "key_id");
        ldg_json_int(&jw, col_int(res, 0, 0));
        ldg_json_key(&jw, "full_key");
        ldg_json_str(&jw, kc->key);
        ldg_json_key(&jw, "key_prefix");
        ldg_json_str(&jw, kc->prefix);
        ldg_json_key(&jw, "warning");
        ldg_json_str(&jw, KEY_WARNING);
        ldg_json_obj_end(&jw);
        ldg_req_add_header(req, "Cache-Control", "no-store");
        ldg__auth_respond_buf(req, 201, &b);
    }
    explicit_bzero(kc->key, sizeof kc->key);
}

static void on_key_hashed(int result, const char *hash, void *ud)
{
    struct key_ctx *kc = ud;
    struct ldg_req *req = kc->req;
    if (!req->conn) {
        explicit_bzero(kc->key, sizeof kc->key);
    } else if (result < 0) {
        explicit_bzero(kc->key, sizeof kc->key);
        if (result == -ECANCELED) { /* shutting down */
            ldg_req_add_header(req, "Retry-After", "1");
            ldg_req_error(req, 503, TIMEOUT_TEXT);
        } else {
            char ctx[128];
            log_ctx(req, ctx, sizeof ctx);
            ldg_log_error(ctx, "api key hash failed: err=%d", result);
            ldg_req_error(req, 500, "Failed to create API key");
        }
    } else {
        const char *params[] = {
            ldg__auth_itoa(req, kc->project_id),         kc->prefix, hash, kc->digest, kc->name,
            ldg__auth_itoa(req, ldg__auth.cfg->max_keys)};
        const struct ldg_auth_errs *errs = errs_of(
            req, "Failed to create API key",
            ldg__auth_printf(req, "API key with name '%s' already exists for this project", kc->name));
        /* The partial unique index (project_id, name) WHERE status = 'active' settles races on the
         * name; the cap is re-checked here (soft under concurrency). */
        ldg__auth_sql(
            req, "key_insert",
            "WITH c AS (SELECT count(*) AS n FROM api_keys WHERE project_id = $1 AND status = 'active') "
            "INSERT INTO api_keys (project_id, key_prefix, key_hash, key_digest, name, status, "
            "rate_limit_per_minute, rate_limit_per_hour) "
            "SELECT $1, $2, $3, $4, $5, 'active', 1000, 50000 FROM c WHERE c.n < $6::bigint RETURNING id",
            6, params, errs, on_key_inserted, kc);
    }
    ldg_req_unref(req);
}

static void on_key_checked(struct ldg_req *req, PGresult *res, void *ud)
{
    struct key_ctx *kc = ud;
    if (!ldg__auth_owned(req, res, ldg__auth_printf(req, "Project %" PRId64 " not found", kc->project_id),
                         "You don't have permission to create API keys for this project"))
        return;
    if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
        ldg_req_error(
            req, 409,
            ldg__auth_printf(req, "API key with name '%s' already exists for this project", kc->name));
        return;
    }
    if (col_int(res, 0, 1) >= ldg__auth.cfg->max_keys) {
        ldg_req_error(
            req, 400,
            ldg__auth_printf(req, "API key limit reached: a project can have at most %" PRId64 " active keys",
                             ldg__auth.cfg->max_keys));
        return;
    }
    if (ldg_apikey_generate(kc->key) < 0) {
        char ctx[128];
        log_ctx(req, ctx, sizeof ctx);
        ldg_log_error(ctx, "api key generation failed: no randomness");
        ldg_req_error(req, 500, "Failed to create API key");
        return;
    }
    ldg_apikey_prefix(kc->key, kc->prefix);
    ldg_apikey_digest(kc->key, strlen(kc->key), kc->digest);
    struct ldg_auth_worker *aw = ldg__auth_worker(req);
    ldg_req_ref(req);
    int rc = aw->pw ? ldg_password_hash(aw->pw, kc->key, on_key_hashed, kc) : -ECANCELED;
    if (rc < 0) {
        ldg_req_unref(req);
        explicit_bzero(kc->key, sizeof kc->key);
        ldg_req_add_header(req, "Retry-After", "1");
        ldg_req_error(req, 503, TIMEOUT_TEXT);
    }
}

static void create_key(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    int64_t id;
    if (!ldg__auth_path_id(req, "project_id", &id))
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    const char *name;
    if (ldg__auth_str(req, body, "name", true, 1, NAME_MAX_CHARS, &name) < 0) {
        cJSON_Delete(body);
        return;
    }
    struct key_ctx *kc = ldg_arena_alloc(&req->arena, sizeof *kc);
    memset(kc, 0, sizeof *kc);
    kc->req = req;
    kc->project_id = id;
    kc->name = ldg_arena_strndup(&req->arena, name, strlen(name));
    cJSON_Delete(body);
    const char *params[] = {ldg__auth_itoa(req, id), kc->name};
    static const struct ldg_auth_errs errs = {TIMEOUT_TEXT, "Failed to create API key", NULL};
    ldg__auth_sql(req, "key_check",
                  "SELECT p.account_id, "
                  "(SELECT count(*) FROM api_keys k WHERE k.project_id = p.id AND k.status = 'active'), "
                  "EXISTS (SELECT 1 FROM api_keys k WHERE k.project_id = p.id AND k.status = 'active' "
                  "AND k.name = $2) FROM projects p WHERE p.id = $1",
                  2, params, &errs, on_key_checked, kc);
}

/* ---- GET /projects/{project_id}/api-keys ------------------------------------------------------------- */

struct keys_list {
    const PGresult *res;
    int64_t project_id;
};

static int64_t write_keys(struct ldg_json_writer *jw, void *ud)
{
    const struct keys_list *kl = ud;
    const PGresult *res = kl->res;
    int n = PQntuples(res), total = 0;
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 1)) /* the project has no keys */
            continue;
        total++;
        ldg_json_obj_begin(jw);
        ldg_json_key(jw, "key_id");
        ldg_json_int(jw, col_int(res, i, 1));
        ldg_json_key(jw, "project_id");
        ldg_json_int(jw, kl->project_id);
        ldg_json_key(jw, "name");
        ldg_json_str(jw, col_str(res, i, 2));
        ldg_json_key(jw, "key_prefix");
        ldg_json_str(jw, col_str(res, i, 3));
        ldg_json_key(jw, "status");
        ldg_json_str(jw, col_str(res, i, 4));
        ldg_json_key(jw, "created_at");
        ldg_json_str(jw, col_str(res, i, 5));
        ldg_json_key(jw, "last_used_at");
        ldg_json_str(jw, col_str(res, i, 6));
        ldg_json_obj_end(jw);
    }
    return total;
}

static void on_keys_listed(struct ldg_req *req, PGresult *res, void *ud)
{
    struct keys_list kl = {res, *(const int64_t *)ud};
    if (ldg__auth_owned(req, res, ldg__auth_printf(req, "Project %" PRId64 " not found", kl.project_id),
                        "You don't have permission to view API keys for this project"))
        ldg__auth_respond_list(req, "api_keys", write_keys, &kl);
}

/* Newest first, revoked keys included, at most 10000 (active ones are capped by [auth] max_keys). */
static void list_keys(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    int64_t *id = ldg_arena_alloc(&req->arena, sizeof *id);
    if (!ldg__auth_path_id(req, "project_id", id))
        return;
    const char *params[] = {ldg__auth_itoa(req, *id)};
    static const struct ldg_auth_errs errs = {"Service timeout", "Failed to list API keys", NULL};
    ldg__auth_sql(
        req, "key_list",
        "SELECT p.account_id, k.id, k.name, k.key_prefix, coalesce(k.status, 'active'), " LDG_SQL_ISO(
            "k.created_at") ", " LDG_SQL_ISO("k.last_used_at") " FROM projects p LEFT JOIN LATERAL (SELECT * "
                                                               "FROM api_keys a WHERE a.project_id = p.id "
                                                               "ORDER BY a.created_at DESC NULLS LAST, a.id "
                                                               "DESC LIMIT 10000) k ON true WHERE p.id = $1",
        1, params, &errs, on_keys_listed, id);
}

/* ---- DELETE /api-keys/{key_id} ------------------------------------------------------------------------ */

struct revoke_ctx {
    struct ldg_req *req;
    int64_t key_id;
    int64_t account_id;
};

static void respond_revoked(struct ldg_req *req, bool ok, void *ud)
{
    struct revoke_ctx *rc = ud;
    char msg[96];
    snprintf(msg, sizeof msg, "API key %" PRId64 " has been revoked", rc->key_id);
    ldg__auth_respond_success(req, msg);
}

/* Not through ldg__auth_sql: once the UPDATE committed, the caches must be told even when the
 * client has gone, so this callback runs whether or not the request still has a connection. */
static void on_key_revoked(PGresult *res, void *ud)
{
    struct revoke_ctx *rc = ud;
    struct ldg_req *req = rc->req;
    if (!res) {
        const struct ldg_pg_error *e = ldg_pg_failure();
        bool unavailable = e->code != -EIO || strcmp(e->sqlstate, "57014") == 0;
        char ctx[128];
        log_ctx(req, ctx, sizeof ctx);
        ldg_log_error(ctx, "auth sql=key_revoke failed: code=%d sqlstate=%s err=%s", e->code,
                      *e->sqlstate ? e->sqlstate : "-", e->message ? e->message : "-");
        if (req->conn)
            ldg_req_error(req, unavailable ? 503 : 500,
                          unavailable ? "Service timeout" : "Failed to revoke API key");
    } else if (PQntuples(res) == 0) {
        if (req->conn)
            ldg_req_error(req, 404, ldg__auth_printf(req, "API key %" PRId64 " not found", rc->key_id));
    } else if (PQgetisnull(res, 0, 0) || col_int(res, 0, 0) != rc->account_id) {
        if (req->conn)
            ldg_req_error(req, 403, "You don't have permission to revoke this API key");
    } else if (PQgetisnull(res, 0, 1)) { /* a v1 key never used since import: nothing is cached */
        if (req->conn)
            respond_revoked(req, true, rc);
    } else {
        const char **digests = ldg_arena_alloc(&req->arena, sizeof *digests);
        digests[0] = ldg_arena_strndup(&req->arena, PQgetvalue(res, 0, 1), strlen(PQgetvalue(res, 0, 1)));
        invalidate_keys(req, digests, 1, true, "revocation", respond_revoked, rc);
    }
    ldg_req_unref(req);
}

static void revoke_key(struct ldg_req *req)
{
    const struct ldg_principal *pr = ldg__auth_account(req);
    if (!pr)
        return;
    int64_t id;
    if (!ldg__auth_path_id(req, "key_id", &id))
        return;
    struct revoke_ctx *rc = ldg_arena_alloc(&req->arena, sizeof *rc);
    *rc = (struct revoke_ctx){req, id, pr->account_id};
    const char *params[] = {ldg__auth_itoa(req, id), ldg__auth_itoa(req, pr->account_id)};
    ldg_req_ref(req);
    int err = ldg_pgpool_query_prepared(
        req->w->pg_auth, "key_revoke",
        "WITH k AS (SELECT a.id, a.key_digest, p.account_id FROM api_keys a LEFT JOIN projects p "
        "ON p.id = a.project_id WHERE a.id = $1), "
        "u AS (UPDATE api_keys a SET status = 'revoked' FROM k WHERE a.id = k.id AND k.account_id = $2 "
        "RETURNING a.id) "
        "SELECT k.account_id, k.key_digest, (SELECT count(*) FROM u) FROM k",
        2, params, on_key_revoked, rc);
    if (err < 0) {
        ldg_req_unref(req);
        char ctx[128];
        log_ctx(req, ctx, sizeof ctx);
        ldg_log_error(ctx, "auth sql=key_revoke failed: code=%d (not submitted)", err);
        ldg_req_error(req, 503, "Service timeout");
    }
}

/* ---- routes ----------------------------------------------------------------------------------------- */

void ldg__auth_projects_routes(struct ldg_router *r)
{
    ldg__auth_route(r, "POST", "/api/v1/projects", create_project, LDG_ROUTE_ACCOUNT, SMALL_BODY);
    ldg__auth_route(r, "GET", "/api/v1/projects", list_projects, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "GET", "/api/v1/projects/{project_slug}", get_project, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "PATCH", "/api/v1/projects/{project_id}", update_project, LDG_ROUTE_ACCOUNT,
                    SMALL_BODY);
    ldg__auth_route(r, "GET", "/api/v1/projects/{project_id}/quota", get_quota, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "POST", "/api/v1/projects/{project_id}/api-keys", create_key, LDG_ROUTE_ACCOUNT,
                    SMALL_BODY);
    ldg__auth_route(r, "GET", "/api/v1/projects/{project_id}/api-keys", list_keys, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "DELETE", "/api/v1/api-keys/{key_id}", revoke_key, LDG_ROUTE_ACCOUNT, 0);
    ldg__auth_route(r, "GET", "/api/v1/settings", get_settings, LDG_ROUTE_USAGE, 0);
}
