/*
 * query.c: [query] keys, registration and the log read endpoints (see query.h).
 *
 * A request goes: parameters checked (422 FastAPI-style for malformed ones, 400 for a bad search
 * query or an unusable combination) → project ownership (a session principal costs one
 * auth-database round trip) → one pipeline on a [pg_logs] connection:
 *
 *   SELECT set_config('statement_timeout', <[query] statement_timeout_ms>, true);
 *   <the page>;                       -- at most limit + 1 rows, see PAGE_SQL
 *   [SELECT count(*) ...]             -- only with include_total=true
 *
 * The pipeline is one implicit transaction, so the timeout applies to its statements only.
 *
 * Pages are ordered newest first by (timestamp, id). The keyset cursor is the (timestamp, id) of
 * the last log of a page, base64url-encoded; the next page is `timestamp <= t AND (timestamp < t
 * OR id < i)`, which keeps the (project_id, timestamp) btree usable. The page statement also
 * bounds bytes: a running sum of each row's approximate size stops rows once the page holds
 * [query] max_response_bytes (at least one row is always returned), and the JSON writer checks
 * the exact size again.
 */
#include "roles/query/query.h"
#include "roles/query/query_int.h"
#include "db/pgroute.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/apikey.h"
#include "auth/principal.h"
#include "core/civil.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/logrow.h"
#include "db/pg.h"
#include "db/pgpool.h"
#include "http/request.h"
#include "http/router.h"
#include "ingest/logentry.h"
#include "query/qlang.h"

#define CFG(f) offsetof(struct ldg_query_cfg, f)
#define MIN_MS 60000LL
#define DAY_MS (24LL * 3600 * 1000)
#define MB (1024LL * 1024)

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define MAX_ATTR_FILTERS 10
#define MAX_LIST_VALUES 8 /* level=error,critical */
#define FIELD_MAX 255     /* longest free-text filter value (release is VARCHAR(100)) */
#define PROBE_WIDEST_US (64LL * 86400 * 1000000) /* widest probe window before asking unbounded */
#define FUTURE_MAX_US (10LL * 60 * 1000000)      /* implicit end of a range: now + 10 min (ingest allows 5) */

#define FORBIDDEN_TEXT "You don't have permission to access this project"
#define TIMEOUT_TEXT "Service timeout, please try again"
#define SLOW_TEXT "Query took too long: narrow the time range or add filters"

const struct ldg_cfg_key ldg_query_cfg_keys[] = {
    {"statement_timeout_ms", LDG_CFG_MS, CFG(statement_timeout_ms), "10000", 100, 600000, NULL, 0,
     "Server-side time limit of one list or search statement; past it the request answers 503"},
    {"max_response_bytes", LDG_CFG_SIZE, CFG(max_response_bytes), "8388608", 65536, 256 * MB, NULL, 0,
     "Bytes of logs in one list or search answer; a larger page stops early with has_more and next_cursor "
     "(one log is always sent)"},
    {"regex_max_range_ms", LDG_CFG_MS, CFG(regex_max_range_ms), "86400000", MIN_MS, 31 * DAY_MS, NULL, 0,
     "Longest time range a search with message:/regex/ may cover (it scans rows); longer or unbounded "
     "answers 400"},
    {"max_offset", LDG_CFG_INT, CFG(max_offset), "100000", 0, 10000000, NULL, 0,
     "Largest offset accepted by list and search; deeper pages use the keyset cursor"},
    {"probe_window_ms", LDG_CFG_MS, CFG(probe_window_ms), "86400000", 60000, 31 * DAY_MS, NULL, 0,
     "A list without start_time first looks this far back (a few 6-hour partitions) and asks again "
     "without the bound only when that window holds less than a page"},
    {"cache_ttl_ms", LDG_CFG_MS, CFG(cache_ttl_ms), "60000", 1000, 3600000, NULL, 0,
     "Metrics answers are cached in Redis this long (identical dashboard questions cost one statement)"},
    {0},
};

struct ldg_query_global ldg__query;
#define G ldg__query

/* ---- small helpers ------------------------------------------------------------------------------ */

const char *ldg__query_itoa(struct ldg_req *req, int64_t v)
{
    char *s = ldg_arena_alloc(&req->arena, 24);
    snprintf(s, 24, "%" PRId64, v);
    return s;
}

/* Unix µs as a timestamptz literal in UTC, in the arena. */
static const char *ts_text(struct ldg_req *req, int64_t us)
{
    int64_t s = us / 1000000, frac = us % 1000000; /* floor division, without negating us */
    if (frac < 0) {
        s--;
        frac += 1000000;
    }
    struct ldg_civil c;
    ldg_civil_from_unix(s, &c);
    char *out = ldg_arena_alloc(&req->arena, 48);
    snprintf(out, 48, "%04" PRId64 "-%02u-%02u %02u:%02u:%02u.%06" PRId64 "+00", c.year, c.mon, c.day, c.hour,
             c.min, c.sec, frac);
    return out;
}

/* The reference's Z form: 2025-11-21T14:30:00.123456Z, fraction only when non-zero. */
void ldg__query_write_ts(struct ldg_json_writer *jw, int64_t us)
{
    ldg_logrow_write_ts(jw, us);
}

/* FastAPI's 422 for one query or path parameter. input NULL: the parameter was absent. */
void ldg__query_422(struct ldg_req *req, const char *where, const char *name, const char *type,
                    const char *msg, const char *input)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "detail");
    ldg_json_arr_begin(&jw);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "type");
    ldg_json_str(&jw, type);
    ldg_json_key(&jw, "loc");
    ldg_json_arr_begin(&jw);
    ldg_json_str(&jw, where);
    ldg_json_str(&jw, name);
    ldg_json_arr_end(&jw);
    ldg_json_key(&jw, "msg");
    ldg_json_str(&jw, msg);
    ldg_json_key(&jw, "input");
    ldg_json_str(&jw, input); /* NULL writes null */
    ldg_json_obj_end(&jw);
    ldg_json_arr_end(&jw);
    ldg_json_obj_end(&jw);
    ldg_req_json(req, 422, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

/* A query parameter as a NUL-terminated arena string; NULL when absent. */
const char *ldg__query_param(struct ldg_req *req, const char *name)
{
    struct ldg_str v;
    if (!ldg_req_query(req, name, &v))
        return NULL;
    return v.p ? v.p : "";
}

/* Decimal integer text in [min, max]. Returns 1 (set), 0 (absent: *out untouched) or -EINVAL after
 * answering 422. */
int ldg__query_int(struct ldg_req *req, const char *where, const char *name, const char *text, int64_t min,
                   int64_t max, int64_t *out)
{
    if (!text)
        return 0;
    const char *s = text;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    int64_t v = 0;
    bool ok = *s != '\0' && strlen(s) <= 18;
    for (; ok && *s; s++) {
        if (*s < '0' || *s > '9')
            ok = false;
        else
            v = v * 10 + (*s - '0');
    }
    if (!ok) {
        ldg__query_422(req, where, name, "int_parsing",
                       "Input should be a valid integer, unable to parse string as an integer", text);
        return -EINVAL;
    }
    if (neg)
        v = -v;
    char msg[96];
    if (v < min) {
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %" PRId64, min);
        ldg__query_422(req, where, name, "greater_than_equal", msg, text);
        return -EINVAL;
    }
    if (v > max) {
        snprintf(msg, sizeof msg, "Input should be less than or equal to %" PRId64, max);
        ldg__query_422(req, where, name, "less_than_equal", msg, text);
        return -EINVAL;
    }
    *out = v;
    return 1;
}

static void log_failure(struct ldg_req *req, const char *what, const struct ldg_pg_error *e)
{
    char ctx[96];
    snprintf(ctx, sizeof ctx, "role=query rid=%s", req->request_id);
    ldg_log_error(ctx, "%s failed: code=%d sqlstate=%s err=%s", what, e->code,
                  e->sqlstate[0] ? e->sqlstate : "-", e->message ? e->message : "-");
}

/* Answer a failed statement: bad input the server found (an invalid regex, a value out of range)
 * is 400, a timeout or an unreachable database 503, anything else 500 (logged). */
void ldg__query_pg_failure(struct ldg_req *req, const char *what, const struct ldg_pg_error *e,
                           const char *failed_text)
{
    if (e->code == -EIO && strcmp(e->sqlstate, "2201B") == 0) {
        ldg_req_error(req, 400, "Invalid regular expression");
        return;
    }
    if (e->code == -EIO && (strcmp(e->sqlstate, "54001") == 0 || strcmp(e->sqlstate, "54000") == 0)) {
        ldg_req_error(req, 400, "Query too complex");
        return;
    }
    if (e->code == -EIO && strcmp(e->sqlstate, "57014") == 0) {
        ldg_req_error(req, 503, SLOW_TEXT);
        return;
    }
    if (e->code == -EIO && (strncmp(e->sqlstate, "22", 2) == 0)) {
        ldg_req_error(req, 400, "Invalid parameter value");
        return;
    }
    bool unavailable = e->code == -ETIMEDOUT || e->code == -ENOTCONN || e->code == -EAGAIN ||
                       e->code == -ECONNRESET || e->code == -ECANCELED;
    if (!unavailable)
        log_failure(req, what, e);
    ldg_req_error(req, unavailable ? 503 : 500, unavailable ? TIMEOUT_TEXT : failed_text);
}

/* ---- ownership ------------------------------------------------------------------------------------ */

struct owner_check {
    struct ldg_req *req;
    ldg_query_owned_fn next;
    void *ud;
};

static void on_owner(PGresult *res, void *ud)
{
    struct owner_check *oc = ud;
    struct ldg_req *req = oc->req;
    if (req->conn) {
        if (!res) {
            ldg__query_pg_failure(req, "project ownership", ldg_pg_failure(), "Failed to check the project");
        } else if (PQntuples(res) == 0) {
            ldg_req_error(req, 404, "Project not found");
        } else if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) != ldg_principal(req)->account_id) {
            ldg_req_error(req, 403, FORBIDDEN_TEXT);
        } else {
            oc->next(req, oc->ud);
        }
    }
    ldg_req_unref(req);
}

/* Continue with next(req, ud) once project_id is known to be readable by the caller. */
void ldg__query_with_project(struct ldg_req *req, int64_t project_id, ldg_query_owned_fn next, void *ud)
{
    const struct ldg_principal *pr = ldg_principal(req);
    if (!pr) {
        ldg_req_add_header(req, "WWW-Authenticate", "Bearer");
        ldg_req_error(req, 401, "Not authenticated");
        return;
    }
    if (pr->kind == LDG_PRINCIPAL_API_KEY) {
        if (project_id != pr->project_id) {
            ldg_req_error(req, 403, FORBIDDEN_TEXT);
            return;
        }
        next(req, ud);
        return;
    }
    struct owner_check *oc = ldg_arena_alloc(&req->arena, sizeof *oc);
    *oc = (struct owner_check){req, next, ud};
    const char *params[] = {ldg__query_itoa(req, project_id)};
    ldg_req_ref(req);
    int rc =
        ldg_pgpool_query_prepared(req->w->pg_auth, "qry_owner",
                                  "SELECT account_id FROM projects WHERE id = $1", 1, params, on_owner, oc);
    if (rc < 0) {
        ldg_req_unref(req);
        ldg_req_error(req, 503, TIMEOUT_TEXT);
    }
}

/* The project of a request: project_id (required for sessions, defaulting to the key's project for
 * API keys). Returns false after answering. */
bool ldg__query_project(struct ldg_req *req, int64_t *out)
{
    const char *text = ldg__query_param(req, "project_id");
    const struct ldg_principal *pr = ldg_principal(req);
    if (!text && pr && pr->kind == LDG_PRINCIPAL_API_KEY) {
        *out = pr->project_id;
        return true;
    }
    if (!text) {
        ldg__query_422(req, "query", "project_id", "missing", "Field required", NULL);
        return false;
    }
    return ldg__query_int(req, "query", "project_id", text, 1, INT64_MAX / 10, out) == 1;
}

/* ---- one pipeline on the logs database ---------------------------------------------------------- */

struct run {
    struct ldg_req *req;
    const char *what, *failed_text;
    const char *timeout; /* statement_timeout setting, e.g. "10000" */
    const char *sql, *count_sql;
    const char *name; /* sql as a prepared statement of this name (per connection), or NULL */
    const char *const *params;
    int nparams, ncount_params;
    PGresult *page, *count;   /* kept results */
    struct ldg_pg_error fail; /* message in the arena */
    bool failed;
    struct ldg_pgpool *pool; /* the project's shard: a replica for reads, else its primary */
    struct ldg_pg *conn;
    ldg_query_done_fn done;
    void *ud;
};

static void run_finish(struct run *r)
{
    struct ldg_req *req = r->req;
    if (r->conn) {
        ldg_pgpool_release(r->pool, r->conn);
        r->conn = NULL;
    }
    if (req->conn) {
        if (r->failed)
            ldg__query_pg_failure(req, r->what, &r->fail, r->failed_text);
        else
            r->done(req, r->page, r->count, r->ud);
    }
    if (r->page)
        PQclear(r->page);
    if (r->count)
        PQclear(r->count);
    ldg_req_unref(req);
}

static void note_failure(struct run *r)
{
    if (r->failed)
        return;
    const struct ldg_pg_error *e = ldg_pg_failure();
    r->failed = true;
    r->fail.code = e->code;
    memcpy(r->fail.sqlstate, e->sqlstate, sizeof r->fail.sqlstate);
    r->fail.message = e->message ? ldg_arena_strndup(&r->req->arena, e->message, strlen(e->message)) : NULL;
}

static void on_set_timeout(PGresult *res, void *ud)
{
    struct run *r = ud;
    if (!res)
        note_failure(r);
}

static void on_count(PGresult *res, void *ud)
{
    struct run *r = ud;
    if (!res)
        note_failure(r);
    else {
        ldg_pg_keep(res);
        r->count = res;
    }
    run_finish(r);
}

static void on_page(PGresult *res, void *ud)
{
    struct run *r = ud;
    if (!res)
        note_failure(r);
    else {
        ldg_pg_keep(res);
        r->page = res;
    }
    if (!r->count_sql)
        run_finish(r);
}

static void on_conn(struct ldg_pg *conn, int err, void *ud)
{
    struct run *r = ud;
    struct ldg_req *req = r->req;
    if (!conn) {
        r->failed = true;
        r->fail.code = err;
        r->fail.sqlstate[0] = '\0';
        run_finish(r);
        return;
    }
    r->conn = conn;
    if (!req->conn) {
        run_finish(r);
        return;
    }
    const char *tparams[] = {r->timeout};
    struct ldg_pg_stmt stmts[3] = {
        {"SELECT set_config('statement_timeout', $1, true)", "qry_timeout", 1, tparams, on_set_timeout, r},
        {r->sql, r->name, r->nparams, r->params, on_page, r},
        {r->count_sql, NULL, r->ncount_params, r->params, on_count, r},
    };
    int rc = ldg_pg_pipeline(conn, stmts, r->count_sql ? 3 : 2);
    if (rc < 0) {
        r->failed = true;
        r->fail.code = rc;
        r->fail.sqlstate[0] = '\0';
        run_finish(r);
    }
}

/* Run sql (and count_sql when non-NULL, with the first ncount_params parameters) on pool under the
 * statement timeout, prepared once per connection under name when name is not NULL; done gets both
 * results. */
static void run_on(struct ldg_req *req, struct ldg_pgpool *pool, const char *name, const char *what,
                   const char *failed_text, const char *sql, const char *count_sql, const struct ldg_qparams *p,
                   int ncount_params, ldg_query_done_fn done, void *ud)
{
    if (!pool) { /* the worker is closing */
        ldg_req_error(req, 503, TIMEOUT_TEXT);
        return;
    }
    struct run *r = ldg_arena_alloc(&req->arena, sizeof *r);
    memset(r, 0, sizeof *r);
    r->req = req;
    r->name = name;
    r->what = what;
    r->failed_text = failed_text;
    r->timeout = ldg__query_itoa(req, G.cfg->statement_timeout_ms);
    r->sql = sql;
    r->count_sql = count_sql;
    r->params = p->v;
    r->nparams = (int)p->n;
    r->ncount_params = ncount_params;
    r->pool = pool;
    r->done = done;
    r->ud = ud;
    ldg_req_ref(req);
    int rc = ldg_pgpool_acquire(pool, on_conn, r);
    if (rc < 0) {
        ldg_req_unref(req);
        ldg_req_error(req, 503, TIMEOUT_TEXT);
    }
}

/* The project's shard (a fresh replica when there is one). */
void ldg__query_run(struct ldg_req *req, int64_t project_id, const char *what, const char *failed_text,
                    const char *sql, const char *count_sql, const struct ldg_qparams *p, int ncount_params,
                    ldg_query_done_fn done, void *ud)
{
    run_on(req, ldg_pgroute_read(req->w, project_id), NULL, what, failed_text, sql, count_sql, p, ncount_params,
           done, ud);
}

void ldg__query_run_prepared(struct ldg_req *req, int64_t project_id, const char *name, const char *what,
                             const char *failed_text, const char *sql, const struct ldg_qparams *p,
                             ldg_query_done_fn done, void *ud)
{
    run_on(req, ldg_pgroute_read(req->w, project_id), name, what, failed_text, sql, NULL, p, 0, done, ud);
}

void ldg__query_write(struct ldg_req *req, int64_t project_id, const char *what, const char *failed_text,
                      const char *sql, const char *count_sql, const struct ldg_qparams *p, int ncount_params,
                      ldg_query_done_fn done, void *ud)
{
    run_on(req, ldg_pgroute_project(req->w, project_id), NULL, what, failed_text, sql, count_sql, p,
           ncount_params, done, ud);
}

/* ---- log rows ------------------------------------------------------------------------------------- */

/* Columns of a log row (db/logrow.h), in the order ldg_logrow_write reads them. */
#define LOG_COLS LDG_LOGROW_COLS
#define COL_ID LDG_LOGROW_COL_ID
#define COL_TS LDG_LOGROW_COL_TS
#define NCOLS LDG_LOGROW_NCOLS

/* Approximate bytes of a row in the answer (lengths of stored values, not decompressed). */
#define ROW_SIZE                                                                                             \
    "(300 + coalesce(octet_length(message), 0) + coalesce(octet_length(error_message), 0) + "                \
    "coalesce(octet_length(stack_trace), 0) + coalesce(pg_column_size(attributes), 0))"

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* LogEntryResponse of row `row`. */
static void write_log(struct ldg_json_writer *jw, const PGresult *res, int row)
{
    ldg_logrow_write(jw, res, row, 0);
}

/* One renderer for every answer holding logs (db/logrow.h; the live tail uses it too). */
void ldg__query_write_log(struct ldg_json_writer *jw, const PGresult *res, int row, int base)
{
    ldg_logrow_write(jw, res, row, base);
}

/* ---- GET /api/v1/logs/{log_id} ------------------------------------------------------------------------ */

struct one_log {
    const char *id, *project;
};

static void on_one_log(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    if (PQntuples(page) == 0) {
        ldg_req_error(req, 404, "Log not found or access denied");
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    write_log(&jw, page, 0);
    ldg_req_json(req, 200, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

static void get_log_owned(struct ldg_req *req, void *ud)
{
    struct one_log *o = ud;
    struct ldg_qparams *p = ldg_arena_alloc(&req->arena, sizeof *p);
    memset(p, 0, sizeof *p);
    ldg_qparams_add(p, &req->arena, o->id);
    ldg_qparams_add(p, &req->arena, o->project);
    ldg__query_run(req, strtoll(o->project, NULL, 10), "get log", "Failed to retrieve log",
                   "SELECT " LOG_COLS " FROM logs WHERE id = $1::bigint AND project_id = $2::bigint LIMIT 1",
                   NULL, p, 0, on_one_log, o);
}

static void handle_get_log(struct ldg_req *req)
{
    struct ldg_str raw = ldg_req_param(req, "log_id");
    const char *id_text = ldg_arena_strndup(&req->arena, raw.p, raw.n);
    int64_t log_id = 0, project_id = 0;
    if (ldg__query_int(req, "path", "log_id", id_text, INT64_MIN / 10, INT64_MAX / 10, &log_id) < 0)
        return;
    const char *ptext = ldg__query_param(req, "project_id");
    if (!ptext) {
        ldg__query_422(req, "query", "project_id", "missing", "Field required", NULL);
        return;
    }
    if (ldg__query_int(req, "query", "project_id", ptext, 1, INT64_MAX / 10, &project_id) < 0)
        return;
    struct one_log *o = ldg_arena_alloc(&req->arena, sizeof *o);
    o->id = ldg__query_itoa(req, log_id);
    o->project = ldg__query_itoa(req, project_id);
    ldg__query_with_project(req, project_id, get_log_owned, o);
}

/* ---- list and search: shared parameters ------------------------------------------------------------ */

struct page_req {
    int64_t project_id;
    bool has_from, has_to;
    int64_t from_us, to_us;
    int64_t limit, offset;
    bool has_cursor;
    int64_t cursor_us, cursor_id;
    bool include_total;
    int64_t now_us;        /* wall clock when the request was read (period, regex range) */
    struct ldg_buf where;  /* the filter while it is built (freed by where_done) */
    const char *where_sql; /* arena: the finished filter */
    const char *page_sql;  /* arena: the page statement without the probe's bound */
    const char *probe_sql; /* arena: the page statement with a lower bound (its last parameter) */
    int64_t probe_ref_us, probe_window_us;
    bool probe;   /* list: try the newest window first (run_page) */
    bool probing; /* the probe is running */
    int nfilter;
    struct ldg_qparams probe_params;
    struct ldg_qparams params;
    const char *what;
};

static bool parse_time_param(struct ldg_req *req, const char *name, const char *text, int64_t *us)
{
    cJSON *v = cJSON_CreateString(text);
    int32_t off;
    char err[160];
    int rc = ldg_logentry_parse_time(v, us, &off, err, sizeof err);
    cJSON_Delete(v);
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "%s must be an ISO 8601 date-time with an offset or 'Z', or Unix seconds: %s", name, err);
        ldg_req_error(req, 400, msg);
        return false;
    }
    return true;
}

/* period → [from, now]. UTC calendar. Returns false for an unknown name. */
static bool period_range(const char *period, int64_t now_us, int64_t *from_us)
{
    int64_t day_us = 86400LL * 1000000;
    int64_t now_s = now_us / 1000000;
    int64_t today = now_s / 86400; /* days since epoch (now is after 1970) */
    struct ldg_civil c;
    ldg_civil_from_unix(now_s, &c);
    if (strcmp(period, "last1h") == 0 || strcmp(period, "1h") == 0)
        *from_us = now_us - 3600LL * 1000000;
    else if (strcmp(period, "last24h") == 0 || strcmp(period, "24h") == 0)
        *from_us = now_us - day_us;
    else if (strcmp(period, "today") == 0)
        *from_us = today * day_us;
    else if (strcmp(period, "last7days") == 0)
        *from_us = (today - 6) * day_us;
    else if (strcmp(period, "last30days") == 0)
        *from_us = (today - 29) * day_us;
    else if (strcmp(period, "currentWeek") == 0)
        *from_us = (today - ((today + 3) % 7)) * day_us; /* 1970-01-01 was a Thursday */
    else if (strcmp(period, "currentMonth") == 0)
        *from_us = ldg_days_from_civil(c.year, c.mon, 1) * day_us;
    else if (strcmp(period, "currentYear") == 0)
        *from_us = ldg_days_from_civil(c.year, 1, 1) * day_us;
    else
        return false;
    return true;
}

#define CURSOR_MIN_US (-62135596800LL * 1000000)  /* 0001-01-01T00:00:00Z */
#define CURSOR_MAX_US (253402300800LL * 1000000 - 1) /* 9999-12-31T23:59:59.999999Z */

static bool decode_cursor(const char *text, int64_t *us, int64_t *id)
{
    unsigned char raw[64];
    size_t n;
    if (ldg_base64url_decode(text, strlen(text), raw, sizeof raw - 1, &n) < 0)
        return false;
    raw[n] = '\0';
    long long a, b;
    int used = 0;
    if (sscanf((const char *)raw, "v1:%lld:%lld%n", &a, &b, &used) != 2 || (size_t)used != n)
        return false;
    /* Years 1..9999 only: anything else is not a timestamp we wrote, and the extremes would
     * overflow the arithmetic that renders it. */
    if (a < CURSOR_MIN_US || a > CURSOR_MAX_US || b < 0)
        return false;
    *us = a;
    *id = b;
    return true;
}

static const char *encode_cursor(struct ldg_req *req, int64_t us, int64_t id)
{
    char raw[64];
    int n = snprintf(raw, sizeof raw, "v1:%" PRId64 ":%" PRId64, us, id);
    char *out = ldg_arena_alloc(&req->arena, LDG_B64URL_LEN(sizeof raw) + 1);
    ldg_base64url_encode(raw, (size_t)n, out);
    return out;
}

static bool bool_param(struct ldg_req *req, const char *name, bool *out)
{
    const char *t = ldg__query_param(req, name);
    *out = false;
    if (!t)
        return true;
    if (!strcmp(t, "true") || !strcmp(t, "1") || !strcmp(t, "yes") || !strcmp(t, "on"))
        *out = true;
    else if (strcmp(t, "false") && strcmp(t, "0") && strcmp(t, "no") && strcmp(t, "off")) {
        ldg__query_422(req, "query", name, "bool_parsing",
                       "Input should be a valid boolean, unable to interpret input", t);
        return false;
    }
    return true;
}

/* period or start_time/end_time into pr (has_from, has_to, now_us). Returns false after answering. */
static bool parse_range(struct ldg_req *req, struct page_req *pr)
{
    const char *period = ldg__query_param(req, "period");
    const char *start = ldg__query_param(req, "start_time");
    const char *end = ldg__query_param(req, "end_time");
    if (period && (start || end)) {
        ldg_req_error(req, 400, "Cannot use both 'period' and 'start_time'/'end_time' parameters");
        return false;
    }
    pr->now_us = ldg_wall_us();
    if (period) {
        if (!period_range(period, pr->now_us, &pr->from_us)) {
            ldg__query_422(
                req, "query", "period", "enum",
                "Input should be 'last1h', 'last24h', 'today', 'last7days', 'last30days', 'currentWeek', "
                "'currentMonth' or 'currentYear'",
                period);
            return false;
        }
        pr->has_from = true;
    }
    if (start) {
        if (!parse_time_param(req, "start_time", start, &pr->from_us))
            return false;
        pr->has_from = true;
    }
    if (end) {
        if (!parse_time_param(req, "end_time", end, &pr->to_us))
            return false;
        pr->has_to = true;
    }
    if (pr->has_from && pr->has_to && pr->from_us > pr->to_us) {
        ldg_req_error(req, 400, "start_time must be before or equal to end_time");
        return false;
    }
    return true;
}

/* Time range, paging and total: the parameters list and search share. Starts the WHERE clause
 * with project and time. Returns false after answering. */
static bool page_common(struct ldg_req *req, struct page_req *pr)
{
    if (!ldg__query_project(req, &pr->project_id) || !parse_range(req, pr))
        return false;
    pr->limit = LIMIT_DEFAULT;
    if (ldg__query_int(req, "query", "limit", ldg__query_param(req, "limit"), 1, LIMIT_MAX, &pr->limit) < 0 ||
        ldg__query_int(req, "query", "offset", ldg__query_param(req, "offset"), 0, G.cfg->max_offset,
                       &pr->offset) < 0)
        return false;
    const char *cursor = ldg__query_param(req, "cursor");
    if (cursor && *cursor) {
        if (!decode_cursor(cursor, &pr->cursor_us, &pr->cursor_id)) {
            ldg_req_error(req, 400, "Invalid cursor");
            return false;
        }
        pr->has_cursor = true;
    }
    if (!bool_param(req, "include_total", &pr->include_total))
        return false;
    struct ldg_arena *a = &req->arena;
    int k = ldg_qparams_add(&pr->params, a, ldg__query_itoa(req, pr->project_id));
    ldg_buf_printf(&pr->where, "project_id = $%d::bigint", k);
    if (pr->has_from) {
        k = ldg_qparams_add(&pr->params, a, ts_text(req, pr->from_us));
        ldg_buf_printf(&pr->where, " AND \"timestamp\" >= $%d::timestamptz", k);
    }
    /* Without end_time the range still ends shortly after now: ingest refuses logs more than
     * 5 minutes ahead, and a literal bound lets the planner skip the partitions made ahead. */
    k = ldg_qparams_add(&pr->params, a, ts_text(req, pr->has_to ? pr->to_us : pr->now_us + FUTURE_MAX_US));
    ldg_buf_printf(&pr->where, " AND \"timestamp\" <= $%d::timestamptz", k);
    return true;
}

static void respond_page(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    struct page_req *pr = ud;
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "project_id");
    ldg_json_int(&jw, pr->project_id);
    ldg_json_key(&jw, "logs");
    ldg_json_arr_begin(&jw);
    int n = PQntuples(page);
    int64_t fetched = n ? col_i64(page, 0, NCOLS + 1) : 0; /* rows before the byte cap (<= limit + 1) */
    int out = 0;
    size_t cap = (size_t)G.cfg->max_response_bytes;
    for (int i = 0; i < n && out < pr->limit; i++) {
        size_t before = b.len;
        bool first = jw.first[jw.depth];
        write_log(&jw, page, i);
        if (out > 0 && ldg_buf_size(&b) > cap) { /* over the exact cap: this row starts the next page */
            b.len = before;
            jw.first[jw.depth] = first;
            break;
        }
        out++;
    }
    ldg_json_arr_end(&jw);
    bool has_more = fetched > out;
    ldg_json_key(&jw, "total");
    if (count)
        ldg_json_int(&jw, col_i64(count, 0, 0));
    else
        ldg_json_null(&jw);
    ldg_json_key(&jw, "has_more");
    ldg_json_bool(&jw, has_more);
    ldg_json_key(&jw, "next_cursor");
    if (has_more && out > 0)
        ldg_json_str(&jw, encode_cursor(req, col_i64(page, out - 1, COL_TS), col_i64(page, out - 1, COL_ID)));
    else
        ldg_json_null(&jw);
    ldg_json_obj_end(&jw);
    ldg_req_json(req, 200, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

/* Run the page (and the count) for pr, whose where/params hold every filter. */
static void on_page_done(struct ldg_req *req, PGresult *page, PGresult *count, void *ud);

/* Run the page (and the count) for pr, whose where/params hold every filter.
 *
 * The newest page of a list without a lower time bound is asked in two steps: first within
 * [query] probe_window_ms before its upper reference (the cursor, end_time or now), which touches
 * a few 6-hour partitions; when that window holds fewer than offset + limit + 1 rows it grows 8
 * times (twice at most with the default 24 h), and only past 64 days is the unbounded question
 * asked. Both answers are the same page (every row of the window is newer
 * than every row outside it); the probe saves planning and opening every partition of the
 * retention period for the common case, an active project. */
static void run_page(struct ldg_req *req, void *ud)
{
    struct page_req *pr = ud;
    struct ldg_arena *a = &req->arena;
    const char *where = pr->where_sql;
    int nfilter = (int)pr->params.n;
    const char *count_sql = NULL;
    struct ldg_buf sql;
    ldg_buf_init(&sql);
    ldg_buf_printf(
        &sql,
        "SELECT t.* FROM (SELECT s.*, count(*) OVER () AS n_all, sum(s.sz) OVER (ORDER BY s.ts_us DESC, "
        "s.id DESC ROWS UNBOUNDED PRECEDING) - s.sz AS before FROM (SELECT " LOG_COLS ", " ROW_SIZE
        " AS sz FROM logs WHERE %s",
        where);
    if (pr->has_cursor) {
        int kt = ldg_qparams_add(&pr->params, a, ts_text(req, pr->cursor_us));
        int ki = ldg_qparams_add(&pr->params, a, ldg__query_itoa(req, pr->cursor_id));
        ldg_buf_printf(&sql,
                       " AND \"timestamp\" <= $%d::timestamptz AND (\"timestamp\" < $%d::timestamptz OR id < "
                       "$%d::bigint)",
                       kt, kt, ki);
    }
    int kl = ldg_qparams_add(&pr->params, a, ldg__query_itoa(req, pr->limit + 1));
    int ko = ldg_qparams_add(&pr->params, a, ldg__query_itoa(req, pr->offset));
    int kc = ldg_qparams_add(&pr->params, a, ldg__query_itoa(req, G.cfg->max_response_bytes));
    char tail[256];
    snprintf(tail, sizeof tail,
             " ORDER BY \"timestamp\" DESC, id DESC LIMIT $%d::int OFFSET $%d::int) s) t WHERE t.before < "
             "$%d::bigint ORDER BY t.ts_us DESC, t.id DESC",
             kl, ko, kc);
    size_t head_len = ldg_buf_size(&sql);
    ldg_buf_puts(&sql, tail);
    pr->page_sql = ldg_arena_strndup(a, ldg_buf_head(&sql), ldg_buf_size(&sql));
    int64_t ref = pr->has_cursor ? pr->cursor_us : pr->has_to ? pr->to_us : pr->now_us;
    int64_t lower = ref - G.cfg->probe_window_ms * 1000;
    if (pr->probe && !pr->include_total && (!pr->has_from || pr->from_us < lower)) {
        /* the probe: the same statement with one more lower bound, parameters shared plus one */
        pr->probe_params = pr->params;
        pr->probe_params.v = ldg_arena_alloc(a, (pr->params.n + 1) * sizeof *pr->probe_params.v);
        memcpy(pr->probe_params.v, pr->params.v, pr->params.n * sizeof *pr->params.v);
        pr->probe_params.cap = pr->params.n + 1;
        int kp = ldg_qparams_add(&pr->probe_params, a, ts_text(req, lower));
        sql.len = sql.off + head_len;
        ldg_buf_printf(&sql, " AND \"timestamp\" >= $%d::timestamptz%s", kp, tail);
        pr->probe_sql = ldg_arena_strndup(a, ldg_buf_head(&sql), ldg_buf_size(&sql));
        ldg_buf_free(&sql);
        pr->probing = true;
        pr->probe_ref_us = ref;
        pr->probe_window_us = G.cfg->probe_window_ms * 1000;
        ldg__query_run(req, pr->project_id, pr->what, "Failed to query logs", pr->probe_sql, NULL,
                       &pr->probe_params, 0, on_page_done, pr);
        return;
    }
    ldg_buf_reset(&sql);
    if (pr->include_total) {
        ldg_buf_printf(&sql, "SELECT count(*) FROM logs WHERE %s", where);
        count_sql = ldg_arena_strndup(a, ldg_buf_head(&sql), ldg_buf_size(&sql));
    }
    ldg_buf_free(&sql);
    pr->nfilter = nfilter;
    ldg__query_run(req, pr->project_id, pr->what,
                   pr->what[0] == 's' ? "Failed to search logs" : "Failed to query logs", pr->page_sql,
                   count_sql, &pr->params, nfilter, on_page_done, pr);
}

static void on_page_done(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    struct page_req *pr = ud;
    if (pr->probing) {
        pr->probing = false;
        int64_t fetched = PQntuples(page) ? strtoll(PQgetvalue(page, 0, NCOLS + 1), NULL, 10) : 0;
        if (fetched < pr->limit + 1) {
            /* the window did not hold the page (a sparse filter, a quiet project): a window 8 times
             * wider, and past PROBE_WIDEST_US the question without any bound */
            pr->probe_window_us *= 8;
            int64_t lower = pr->probe_ref_us - pr->probe_window_us;
            if (pr->probe_window_us <= PROBE_WIDEST_US && (!pr->has_from || pr->from_us < lower)) {
                pr->probing = true;
                pr->probe_params.v[pr->probe_params.n - 1] = ts_text(req, lower);
                ldg__query_run(req, pr->project_id, pr->what, "Failed to query logs", pr->probe_sql, NULL,
                               &pr->probe_params, 0, on_page_done, pr);
                return;
            }
            ldg__query_run(req, pr->project_id, pr->what, "Failed to query logs", pr->page_sql, NULL,
                           &pr->params, 0, on_page_done, pr);
            return;
        }
    }
    respond_page(req, page, count, ud);
}

/* The filter is complete: move it into the arena (nothing to free on any later path). */
static void where_done(struct ldg_req *req, struct page_req *pr)
{
    pr->where_sql = ldg_arena_strndup(&req->arena, ldg_buf_head(&pr->where), ldg_buf_size(&pr->where));
    ldg_buf_free(&pr->where);
}

static struct page_req *page_new(struct ldg_req *req, const char *what)
{
    struct page_req *pr = ldg_arena_alloc(&req->arena, sizeof *pr);
    memset(pr, 0, sizeof *pr);
    ldg_buf_init(&pr->where);
    pr->what = what;
    return pr;
}

/* ---- GET /api/v1/logs ------------------------------------------------------------------------------ */

const char *const ldg__query_levels[] = {"debug", "info", "warning", "error", "critical", NULL};
const char *const ldg__query_log_types[] = {"console",  "logger",   "exception", "network",
                                            "database", "endpoint", "custom",    NULL};
static const char *const importances[] = {"critical", "high", "standard", "low", NULL};

/* An enumerated filter: one value or a comma-separated list of them (level=error,critical). */
static bool enum_filter(struct ldg_req *req, struct page_req *pr, const char *name, const char *column,
                        const char *const *choices)
{
    const char *text = ldg__query_param(req, name);
    if (!text)
        return true;
    struct ldg_buf arr;
    ldg_buf_init(&arr);
    ldg_buf_puts(&arr, "{");
    size_t count = 0;
    const char *s = text;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        bool known = false;
        for (size_t i = 0; choices[i] && !known; i++)
            known = strlen(choices[i]) == len && strncmp(choices[i], s, len) == 0;
        if (!known || ++count > MAX_LIST_VALUES) {
            ldg_buf_free(&arr);
            char msg[160];
            snprintf(msg, sizeof msg, "Input should be one of the %s values (comma-separated, at most %d)",
                     name, MAX_LIST_VALUES);
            ldg__query_422(req, "query", name, "enum", msg, text);
            return false;
        }
        ldg_buf_printf(&arr, "%s%.*s", count > 1 ? "," : "", (int)len, s);
        if (!comma)
            break;
        s = comma + 1;
    }
    ldg_buf_puts(&arr, "}");
    int k = ldg_qparams_add(&pr->params, &req->arena,
                            ldg_arena_strndup(&req->arena, ldg_buf_head(&arr), ldg_buf_size(&arr)));
    ldg_buf_free(&arr);
    ldg_buf_printf(&pr->where, " AND %s = ANY($%d::text[])", column, k);
    return true;
}

static bool text_filter(struct ldg_req *req, struct page_req *pr, const char *name, const char *column)
{
    const char *text = ldg__query_param(req, name);
    if (!text)
        return true;
    size_t chars;
    if (strlen(text) > FIELD_MAX || ldg_utf8_count(text, strlen(text), &chars) < 0) {
        ldg__query_422(req, "query", name, "string_too_long", "String should have at most 255 characters",
                       NULL);
        return false;
    }
    int k = ldg_qparams_add(&pr->params, &req->arena, text);
    ldg_buf_printf(&pr->where, " AND %s = $%d::text", column, k);
    return true;
}

/* attributes.<path>=<value> parameters (raw query string: names are not known in advance). */
static bool attr_filters(struct ldg_req *req, struct page_req *pr)
{
    struct ldg_str q = req->query;
    size_t n = 0;
    size_t i = 0;
    while (i < q.n) {
        size_t amp = i;
        while (amp < q.n && q.p[amp] != '&')
            amp++;
        size_t eq = i;
        while (eq < amp && q.p[eq] != '=')
            eq++;
        char *name = ldg_arena_alloc(&req->arena, eq - i + 1);
        size_t nlen = ldg_url_decode(name, q.p + i, eq - i, true);
        if (nlen > 11 && strncmp(name, "attributes.", 11) == 0 && strlen(name) == nlen) {
            size_t vn = eq < amp ? amp - eq - 1 : 0;
            char *value = ldg_arena_alloc(&req->arena, vn + 1);
            size_t vlen = ldg_url_decode(value, eq < amp ? q.p + eq + 1 : q.p + amp, vn, true);
            size_t chars;
            if (strlen(value) != vlen || ldg_utf8_count(value, vlen, &chars) < 0) {
                ldg_req_error(req, 400, "Attribute filter values must be UTF-8 text without NUL");
                return false;
            }
            if (++n > MAX_ATTR_FILTERS) {
                ldg_req_error(req, 400, "At most 10 attribute filters");
                return false;
            }
            char err[128];
            ldg_buf_puts(&pr->where, " AND ");
            if (ldg_qlang_attr_sql(name + 11, value, false, &req->arena, &pr->where, &pr->params, err,
                                   sizeof err) < 0) {
                char msg[200];
                snprintf(msg, sizeof msg, "Invalid attribute filter '%s': %s", name, err);
                ldg_req_error(req, 400, msg);
                return false;
            }
        }
        i = amp + 1;
    }
    return true;
}

static void handle_list(struct ldg_req *req)
{
    struct page_req *pr = page_new(req, "list logs");
    pr->probe = true;
    bool ok = page_common(req, pr) && enum_filter(req, pr, "level", "level", ldg__query_levels) &&
              enum_filter(req, pr, "log_type", "log_type", ldg__query_log_types) &&
              enum_filter(req, pr, "importance", "importance", importances) &&
              text_filter(req, pr, "environment", "environment") &&
              text_filter(req, pr, "release", "release") &&
              text_filter(req, pr, "error_fingerprint", "error_fingerprint") &&
              text_filter(req, pr, "error_type", "error_type") &&
              text_filter(req, pr, "platform", "platform") && attr_filters(req, pr);
    if (!ok) {
        ldg_buf_free(&pr->where);
        return;
    }
    where_done(req, pr);
    ldg__query_with_project(req, pr->project_id, run_page, pr);
}

/* ---- GET /api/v1/logs/search ------------------------------------------------------------------------ */

static void handle_search(struct ldg_req *req)
{
    struct page_req *pr = page_new(req, "search logs");
    const char *q = ldg__query_param(req, "q");
    if (!q) {
        ldg__query_422(req, "query", "q", "missing", "Field required", NULL);
        return;
    }
    if (!page_common(req, pr)) {
        ldg_buf_free(&pr->where);
        return;
    }
    struct ldg_qnode *root;
    struct ldg_qerror err;
    struct ldg_str raw;
    (void)ldg_req_query(req, "q", &raw);
    if (ldg_qlang_parse(raw.p ? raw.p : "", raw.n, &req->arena, &root, &err) < 0) {
        ldg_buf_free(&pr->where);
        char msg[256];
        snprintf(msg, sizeof msg, "Invalid query at position %zu: %s", err.pos, err.msg);
        ldg_req_error(req, 400, msg);
        return;
    }
    ldg_buf_puts(&pr->where, " AND ");
    unsigned uses = ldg_qlang_compile(root, &req->arena, &pr->where, &pr->params);
    if (uses & LDG_QLANG_USES_REGEX) {
        int64_t max_us = G.cfg->regex_max_range_ms * 1000;
        int64_t to = pr->has_to ? pr->to_us : pr->now_us;
        if (!pr->has_from || to - pr->from_us > max_us) {
            ldg_buf_free(&pr->where);
            char msg[200];
            snprintf(msg, sizeof msg,
                     "A regular expression search needs a time range of at most %" PRId64
                     " minutes: set period or start_time/end_time",
                     G.cfg->regex_max_range_ms / 60000);
            ldg_req_error(req, 400, msg);
            return;
        }
    }
    where_done(req, pr);
    ldg__query_with_project(req, pr->project_id, run_page, pr);
}

/* ---- the explorer's scope (histogram and facets, explore.c) --------------------------------------- */

/* Move what enum_filter appended to pr->where since `mark` into an arena string. */
static const char *cut_where(struct ldg_req *req, struct page_req *pr, size_t mark)
{
    size_t n = ldg_buf_size(&pr->where) - mark;
    const char *out = ldg_arena_strndup(&req->arena, ldg_buf_head(&pr->where) + mark, n);
    pr->where.len -= n;
    return out;
}

static bool scope_parse(struct ldg_req *req, struct page_req *pr, struct ldg_query_scope *sc)
{
    if (!ldg__query_project(req, &pr->project_id) || !parse_range(req, pr))
        return false;
    if (!pr->has_from) {
        ldg__query_422(req, "query", "start_time", "missing",
                       "Field required: a time range (start_time, with an optional end_time) or period", NULL);
        return false;
    }
    if (!pr->has_to)
        pr->to_us = pr->now_us;
    if (pr->from_us > pr->to_us) {
        ldg_req_error(req, 400, "start_time must be before or equal to end_time");
        return false;
    }
    struct ldg_arena *a = &req->arena;
    int kp = ldg_qparams_add(&pr->params, a, ldg__query_itoa(req, pr->project_id));
    int kf = ldg_qparams_add(&pr->params, a, ts_text(req, pr->from_us));
    int kt = ldg_qparams_add(&pr->params, a, ts_text(req, pr->to_us));
    ldg_buf_printf(&pr->where,
                   "project_id = $%d::bigint AND \"timestamp\" >= $%d::timestamptz AND \"timestamp\" < "
                   "$%d::timestamptz",
                   kp, kf, kt);
    struct ldg_str raw = ldg_str_make(NULL, 0);
    size_t qn = 0;
    if (!ldg_req_query(req, "q", &raw))
        raw = ldg_str_make(NULL, 0);
    if (raw.p) {
        while (raw.n && (raw.p[raw.n - 1] == ' ' || raw.p[raw.n - 1] == '\t'))
            raw.n--;
        while (qn < raw.n && (raw.p[qn] == ' ' || raw.p[qn] == '\t'))
            qn++;
    }
    if (raw.p && qn < raw.n) {
        struct ldg_qnode *root;
        struct ldg_qerror err;
        if (ldg_qlang_parse(raw.p, raw.n, a, &root, &err) < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "Invalid query at position %zu: %s", err.pos, err.msg);
            ldg_req_error(req, 400, msg);
            return false;
        }
        ldg_buf_puts(&pr->where, " AND ");
        unsigned uses = ldg_qlang_compile(root, a, &pr->where, &pr->params);
        if ((uses & LDG_QLANG_USES_REGEX) && pr->to_us - pr->from_us > G.cfg->regex_max_range_ms * 1000) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "A regular expression search needs a time range of at most %" PRId64
                     " minutes: set period or start_time/end_time",
                     G.cfg->regex_max_range_ms / 60000);
            ldg_req_error(req, 400, msg);
            return false;
        }
    }
    sc->where_sql = ldg_arena_strndup(a, ldg_buf_head(&pr->where), ldg_buf_size(&pr->where));
    size_t mark = ldg_buf_size(&pr->where);
    if (!enum_filter(req, pr, "level", "level", ldg__query_levels))
        return false;
    sc->level_sql = cut_where(req, pr, mark);
    if (!enum_filter(req, pr, "log_type", "log_type", ldg__query_log_types))
        return false;
    sc->log_type_sql = cut_where(req, pr, mark);
    sc->project_id = pr->project_id;
    sc->from_us = pr->from_us;
    sc->to_us = pr->to_us;
    sc->params = pr->params;
    return true;
}

bool ldg__query_scope(struct ldg_req *req, struct ldg_query_scope *sc)
{
    memset(sc, 0, sizeof *sc);
    struct page_req *pr = page_new(req, "explore");
    bool ok = scope_parse(req, pr, sc);
    ldg_buf_free(&pr->where);
    return ok;
}

/* ---- role -----------------------------------------------------------------------------------------------
 */

static int query_init_global(const struct ldg_config *c, const void *cfg)
{
    (void)c;
    G.cfg = cfg;
    return 0;
}

static void add_route(struct ldg_router *r, const char *pattern, ldg_handler_fn fn)
{
    struct ldg_route_opts o = {.flags = 0, .max_body_bytes = 0};
    int rc = ldg_router_add(r, "GET", pattern, fn, &o);
    LDG_ASSERT(rc == 0);
}

static void query_routes(struct ldg_router *r, const void *cfg)
{
    G.cfg = cfg;
    add_route(r, "/api/v1/logs", handle_list);
    add_route(r, "/api/v1/logs/search", handle_search);
    ldg__query_explore_routes(r); /* before /api/v1/logs/{log_id}, which would take their paths */
    add_route(r, "/api/v1/logs/{log_id}", handle_get_log);
    ldg__query_metrics_routes(r);
    ldg__query_errgroups_routes(r);
    ldg__query_traces_routes(r);
}

const struct ldg_role ldg_role_query = {
    .name = "query",
    .keys = ldg_query_cfg_keys,
    .cfg_size = sizeof(struct ldg_query_cfg),
    .init_global = query_init_global,
    .routes = query_routes,
};
