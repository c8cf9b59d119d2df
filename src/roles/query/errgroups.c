/*
 * errgroups.c: the error-group endpoints of the query role (docs/api.md "Error groups",
 * docs/query.md "Error groups").
 *
 *   GET   /api/v1/error-groups                      list: status, q, sort, limit, keyset cursor
 *   GET   /api/v1/error-groups/{group_id}           one group, its hourly counts and a sample log
 *   PATCH /api/v1/error-groups/{group_id}/status    set the workflow status
 *
 * Every answer is one statement on a [pg_logs] connection (plus the total's count(*) for the
 * list, in the same pipeline; the detail asks for its sample log in a second one). The hourly
 * counts of a group (the list's 24-entry sparkline, the detail's `hourly`) come from the logs
 * themselves: a LATERAL count per group over the partial index idx_logs_fingerprint (schema 0005),
 * bounded to the last 24 UTC hours, so they are exact and cost a short index range per group.
 *
 * Ownership is that of the log endpoints (ldg__query_with_project). Same threading as query.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/civil.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "http/request.h"
#include "http/router.h"
#include "query/gcursor.h"
#include "roles/query/query_int.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 100
#define Q_MAX 255         /* characters of the q filter */
#define RELEASE_MAX 100   /* resolved_in_release, as logs.release */
#define HOURS 24
#define HOUR_US (3600LL * 1000000)
#define BODY_MAX 4096

#define NOT_FOUND_TEXT "Error group not found"

static const char *const statuses[] = {"unresolved", "resolved", "ignored", "muted", NULL};

/* ---- SQL ---------------------------------------------------------------------------------------- */

#define US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/* The group object's columns (read by write_group) and, last, the sparkline as an int array text. */
#define GROUP_COLS                                                                                           \
    "g.id, g.project_id, g.fingerprint, g.error_type, g.error_message, " US("g.first_seen") ", " US(          \
        "g.last_seen") ", coalesce(g.occurrence_count, 0), g.status, g.assigned_to, g.sample_log_id, " US(    \
        "g.resolved_at") ", g.resolved_in_release, g.is_regression, " US("g.regressed_at") ", sp.spark"
enum {
    C_ID,
    C_PROJECT,
    C_FP,
    C_TYPE,
    C_MSG,
    C_FIRST,
    C_LAST,
    C_COUNT,
    C_STATUS,
    C_ASSIGNED,
    C_SAMPLE_ID,
    C_RESOLVED_AT,
    C_RELEASE,
    C_REGRESSION,
    C_REGRESSED_AT,
    C_SPARK,
    C_NGROUP,
};

/* Hourly counts of g's fingerprint from $1 (project), %d (first hour, timestamptz) and %d (its end,
 * 24 hours later): one index range of idx_logs_fingerprint per group. Both bounds are parameters
 * so that partitions outside them are pruned when the statement is planned. */
#define SPARK_JOIN                                                                                           \
    " LEFT JOIN LATERAL (SELECT array_agg(coalesce(h.c, 0) ORDER BY b.i)::text AS spark "                    \
    "FROM generate_series(0, 23) AS b(i) LEFT JOIN (SELECT floor(extract(epoch FROM l.\"timestamp\" - "      \
    "$%d::timestamptz) / 3600)::int AS i, count(*) AS c FROM logs l WHERE l.project_id = $1::bigint "        \
    "AND l.error_fingerprint = g.fingerprint AND l.\"timestamp\" >= $%d::timestamptz "                       \
    "AND l.\"timestamp\" < $%d::timestamptz GROUP BY 1) h ON h.i = b.i) sp ON true"

/* ---- helpers ------------------------------------------------------------------------------------ */

/* Unix µs as a timestamptz literal in UTC, in the arena. */
static const char *ts_text(struct ldg_req *req, int64_t us)
{
    int64_t s = us / 1000000, frac = us % 1000000; /* us >= 0: times here are recent */
    struct ldg_civil c;
    ldg_civil_from_unix(s, &c);
    char *out = ldg_arena_alloc(&req->arena, 48);
    snprintf(out, 48, "%04" PRId64 "-%02u-%02u %02u:%02u:%02u.%06" PRId64 "+00", c.year, c.mon, c.day, c.hour,
             c.min, c.sec, frac);
    return out;
}

/* The first of the 24 hourly buckets ending with the current UTC hour. */
static int64_t first_hour_us(void)
{
    int64_t now = ldg_wall_us();
    return (now / HOUR_US - (HOURS - 1)) * HOUR_US;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void write_opt_text(struct ldg_json_writer *jw, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        ldg_json_null(jw);
    else
        ldg_json_strn(jw, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

static void write_opt_ts(struct ldg_json_writer *jw, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        ldg_json_null(jw);
    else
        ldg__query_write_ts(jw, col_i64(res, row, col));
}

static void write_opt_int(struct ldg_json_writer *jw, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        ldg_json_null(jw);
    else
        ldg_json_int(jw, col_i64(res, row, col));
}

/* The 24 counts of an int array text "{3,0,...}" (missing or malformed entries are 0). */
static void parse_spark(const PGresult *res, int row, int64_t out[HOURS])
{
    memset(out, 0, HOURS * sizeof *out);
    if (PQgetisnull(res, row, C_SPARK))
        return;
    const char *s = PQgetvalue(res, row, C_SPARK);
    if (*s == '{')
        s++;
    for (int i = 0; i < HOURS && *s && *s != '}'; i++) {
        char *end;
        out[i] = strtoll(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
    }
}

/* The group object's members (the object is left open for the detail's additions). */
static void write_group_fields(struct ldg_json_writer *jw, const PGresult *res, int row)
{
    ldg_json_key(jw, "id");
    ldg_json_int(jw, col_i64(res, row, C_ID));
    ldg_json_key(jw, "project_id");
    ldg_json_int(jw, col_i64(res, row, C_PROJECT));
    ldg_json_key(jw, "fingerprint");
    write_opt_text(jw, res, row, C_FP);
    ldg_json_key(jw, "error_type");
    write_opt_text(jw, res, row, C_TYPE);
    ldg_json_key(jw, "error_message");
    write_opt_text(jw, res, row, C_MSG);
    ldg_json_key(jw, "first_seen");
    write_opt_ts(jw, res, row, C_FIRST);
    ldg_json_key(jw, "last_seen");
    write_opt_ts(jw, res, row, C_LAST);
    ldg_json_key(jw, "occurrence_count");
    ldg_json_int(jw, col_i64(res, row, C_COUNT));
    ldg_json_key(jw, "status");
    if (PQgetisnull(res, row, C_STATUS))
        ldg_json_str(jw, "unresolved");
    else
        write_opt_text(jw, res, row, C_STATUS);
    ldg_json_key(jw, "assigned_to");
    write_opt_int(jw, res, row, C_ASSIGNED);
    ldg_json_key(jw, "sample_log_id");
    write_opt_int(jw, res, row, C_SAMPLE_ID);
    ldg_json_key(jw, "resolved_at");
    write_opt_ts(jw, res, row, C_RESOLVED_AT);
    ldg_json_key(jw, "resolved_in_release");
    write_opt_text(jw, res, row, C_RELEASE);
    ldg_json_key(jw, "is_regression");
    ldg_json_bool(jw, PQgetvalue(res, row, C_REGRESSION)[0] == 't');
    ldg_json_key(jw, "regressed_at");
    write_opt_ts(jw, res, row, C_REGRESSED_AT);
    int64_t spark[HOURS];
    parse_spark(res, row, spark);
    ldg_json_key(jw, "sparkline");
    ldg_json_arr_begin(jw);
    for (int i = 0; i < HOURS; i++)
        ldg_json_int(jw, spark[i]);
    ldg_json_arr_end(jw);
}

static void respond_buf(struct ldg_req *req, struct ldg_buf *b)
{
    ldg_req_json(req, 200, ldg_buf_head(b), ldg_buf_size(b));
    ldg_buf_free(b);
}

/* One group (PATCH's answer). */
static void respond_group(struct ldg_req *req, const PGresult *res)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    write_group_fields(&jw, res, 0);
    ldg_json_obj_end(&jw);
    respond_buf(req, &b);
}

/* The {group_id} path parameter; false after answering 422. */
static bool group_id_param(struct ldg_req *req, int64_t *out)
{
    struct ldg_str raw = ldg_req_param(req, "group_id");
    const char *text = ldg_arena_strndup(&req->arena, raw.p, raw.n);
    return ldg__query_int(req, "path", "group_id", text, INT64_MIN / 10, INT64_MAX / 10, out) == 1;
}

/* ---- GET /api/v1/error-groups ------------------------------------------------------------------------ */

struct list_req {
    int64_t project_id, limit;
    enum ldg_gsort sort;
    bool has_cursor;
    struct ldg_gcursor cursor;
    const char *status_arr; /* "{resolved,muted}" or NULL */
    const char *q;          /* NULL: no text filter */
};

static const char *const sort_key[] = {"g.last_seen", "g.first_seen", "coalesce(g.occurrence_count, 0)"};
static const int sort_col[] = {C_LAST, C_FIRST, C_COUNT};

static void on_list(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    struct list_req *lr = ud;
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "project_id");
    ldg_json_int(&jw, lr->project_id);
    ldg_json_key(&jw, "groups");
    ldg_json_arr_begin(&jw);
    int n = PQntuples(page);
    int out = (int)LDG_MIN((int64_t)n, lr->limit);
    for (int i = 0; i < out; i++) {
        ldg_json_obj_begin(&jw);
        write_group_fields(&jw, page, i);
        ldg_json_obj_end(&jw);
    }
    ldg_json_arr_end(&jw);
    ldg_json_key(&jw, "total");
    ldg_json_int(&jw, count && PQntuples(count) ? col_i64(count, 0, 0) : 0);
    bool has_more = n > out;
    ldg_json_key(&jw, "has_more");
    ldg_json_bool(&jw, has_more);
    ldg_json_key(&jw, "next_cursor");
    if (has_more && out > 0) {
        struct ldg_gcursor c = {lr->sort, col_i64(page, out - 1, sort_col[lr->sort]), col_i64(page, out - 1, C_ID)};
        char text[LDG_GCURSOR_MAX + 1];
        ldg_gcursor_encode(&c, text);
        ldg_json_str(&jw, text);
    } else {
        ldg_json_null(&jw);
    }
    ldg_json_obj_end(&jw);
    respond_buf(req, &b);
}

static void list_owned(struct ldg_req *req, void *ud)
{
    struct list_req *lr = ud;
    struct ldg_arena *a = &req->arena;
    struct ldg_qparams *p = ldg_arena_alloc(a, sizeof *p);
    memset(p, 0, sizeof *p);
    struct ldg_buf where;
    ldg_buf_init(&where);
    int k = ldg_qparams_add(p, a, ldg__query_itoa(req, lr->project_id));
    ldg_buf_printf(&where, "g.project_id = $%d::bigint", k);
    if (lr->status_arr) {
        k = ldg_qparams_add(p, a, lr->status_arr);
        ldg_buf_printf(&where, " AND g.status = ANY($%d::text[])", k);
    }
    if (lr->q) {
        k = ldg_qparams_add(p, a, lr->q);
        ldg_buf_printf(&where,
                       " AND (strpos(lower(g.error_type), lower($%d::text)) > 0 OR "
                       "strpos(lower(coalesce(g.error_message, '')), lower($%d::text)) > 0)",
                       k, k);
    }
    int nfilter = (int)p->n;
    const char *where_sql = ldg_arena_strndup(a, ldg_buf_head(&where), ldg_buf_size(&where));
    ldg_buf_free(&where);

    struct ldg_buf sql;
    ldg_buf_init(&sql);
    const char *key = sort_key[lr->sort];
    ldg_buf_printf(&sql, "SELECT " GROUP_COLS " FROM (SELECT g.* FROM error_groups g WHERE %s", where_sql);
    if (lr->has_cursor) {
        int kk = ldg_qparams_add(p, a, ldg__query_itoa(req, lr->cursor.key));
        int ki = ldg_qparams_add(p, a, ldg__query_itoa(req, lr->cursor.id));
        if (lr->sort == LDG_GSORT_COUNT)
            ldg_buf_printf(&sql, " AND (%s, g.id) < ($%d::bigint, $%d::bigint)", key, kk, ki);
        else
            ldg_buf_printf(&sql,
                           " AND (%s, g.id) < (timestamptz 'epoch' + $%d::bigint * interval '1 microsecond', "
                           "$%d::bigint)",
                           key, kk, ki);
    }
    int kl = ldg_qparams_add(p, a, ldg__query_itoa(req, lr->limit + 1));
    int64_t h0 = first_hour_us();
    int kh = ldg_qparams_add(p, a, ts_text(req, h0));
    int ke = ldg_qparams_add(p, a, ts_text(req, h0 + HOURS * HOUR_US));
    ldg_buf_printf(&sql, " ORDER BY %s DESC, g.id DESC LIMIT $%d::int) g" SPARK_JOIN " ORDER BY %s DESC, g.id DESC",
                   key, kl, kh, kh, ke, key);
    const char *page_sql = ldg_arena_strndup(a, ldg_buf_head(&sql), ldg_buf_size(&sql));
    ldg_buf_reset(&sql);
    ldg_buf_printf(&sql, "SELECT count(*) FROM error_groups g WHERE %s", where_sql);
    const char *count_sql = ldg_arena_strndup(a, ldg_buf_head(&sql), ldg_buf_size(&sql));
    ldg_buf_free(&sql);
    ldg__query_run(req, lr->project_id, "list error groups", "Failed to list error groups", page_sql,
                   count_sql, p, nfilter, on_list, lr);
}

/* status=unresolved[,…] as a text[] literal; false after answering 422. */
static bool status_filter(struct ldg_req *req, const char *text, const char **out)
{
    struct ldg_buf arr;
    ldg_buf_init(&arr);
    ldg_buf_puts(&arr, "{");
    size_t count = 0;
    for (const char *s = text;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        bool known = false;
        for (size_t i = 0; statuses[i] && !known; i++)
            known = strlen(statuses[i]) == len && strncmp(statuses[i], s, len) == 0;
        if (!known || ++count > 4) {
            ldg_buf_free(&arr);
            ldg__query_422(req, "query", "status", "enum",
                           "Input should be 'unresolved', 'resolved', 'ignored' or 'muted' (comma-separated)",
                           text);
            return false;
        }
        ldg_buf_printf(&arr, "%s%.*s", count > 1 ? "," : "", (int)len, s);
        if (!comma)
            break;
        s = comma + 1;
    }
    ldg_buf_puts(&arr, "}");
    *out = ldg_arena_strndup(&req->arena, ldg_buf_head(&arr), ldg_buf_size(&arr));
    ldg_buf_free(&arr);
    return true;
}

static void handle_list(struct ldg_req *req)
{
    struct list_req *lr = ldg_arena_alloc(&req->arena, sizeof *lr);
    memset(lr, 0, sizeof *lr);
    if (!ldg__query_project(req, &lr->project_id))
        return;
    const char *status = ldg__query_param(req, "status");
    if (status && *status && !status_filter(req, status, &lr->status_arr))
        return;
    const char *q = ldg__query_param(req, "q");
    if (q && *q) {
        size_t chars;
        if (ldg_utf8_count(q, strlen(q), &chars) < 0 || strlen(q) > 4 * Q_MAX || chars > Q_MAX) {
            ldg__query_422(req, "query", "q", "string_too_long", "String should have at most 255 characters",
                           NULL);
            return;
        }
        lr->q = q;
    }
    const char *sort = ldg__query_param(req, "sort");
    lr->sort = LDG_GSORT_LAST_SEEN;
    if (sort && !ldg_gsort_parse(sort, &lr->sort)) {
        ldg__query_422(req, "query", "sort", "enum", "Input should be 'last_seen', 'first_seen' or 'count'",
                       sort);
        return;
    }
    lr->limit = LIMIT_DEFAULT;
    if (ldg__query_int(req, "query", "limit", ldg__query_param(req, "limit"), 1, LIMIT_MAX, &lr->limit) < 0)
        return;
    const char *cursor = ldg__query_param(req, "cursor");
    if (cursor && *cursor) {
        if (!ldg_gcursor_decode(cursor, strlen(cursor), &lr->cursor) || lr->cursor.sort != lr->sort) {
            ldg__query_422(req, "query", "cursor", "value_error",
                           "Value error, not a cursor of this list and sort", cursor);
            return;
        }
        lr->has_cursor = true;
    }
    ldg__query_with_project(req, lr->project_id, list_owned, lr);
}

/* ---- GET /api/v1/error-groups/{group_id} ------------------------------------------------------------- */

struct detail_req {
    int64_t project_id, group_id, h0;
    /* between the two statements: the answer so far (arena) and its writer's state */
    const char *head;
    size_t head_len;
    struct ldg_json_writer jw;
    int64_t spark[HOURS];
};

static void on_sample(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    (void)count;
    struct detail_req *d = ud;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_put(&b, d->head, d->head_len);
    struct ldg_json_writer jw = d->jw; /* continues the open object */
    jw.b = &b;
    ldg_json_key(&jw, "sample_log");
    if (PQntuples(page) > 0)
        ldg__query_write_log(&jw, page, 0, 0);
    else
        ldg_json_null(&jw);
    ldg_json_key(&jw, "hourly");
    ldg_json_arr_begin(&jw);
    for (int i = 0; i < HOURS; i++) {
        ldg_json_obj_begin(&jw);
        ldg_json_key(&jw, "timestamp");
        ldg__query_write_ts(&jw, d->h0 + i * HOUR_US);
        ldg_json_key(&jw, "count");
        ldg_json_int(&jw, d->spark[i]);
        ldg_json_obj_end(&jw);
    }
    ldg_json_arr_end(&jw);
    ldg_json_obj_end(&jw);
    respond_buf(req, &b);
}

static void on_detail(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    (void)count;
    struct detail_req *d = ud;
    if (PQntuples(page) == 0) {
        ldg_req_error(req, 404, NOT_FOUND_TEXT);
        return;
    }
    struct ldg_arena *a = &req->arena;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_json_writer_init(&d->jw, &b);
    ldg_json_obj_begin(&d->jw);
    write_group_fields(&d->jw, page, 0);
    ldg_json_key(&d->jw, "sample_stack_trace");
    write_opt_text(&d->jw, page, 0, C_NGROUP);
    d->head = ldg_arena_strndup(a, ldg_buf_head(&b), ldg_buf_size(&b));
    d->head_len = ldg_buf_size(&b);
    d->jw.b = NULL;
    ldg_buf_free(&b);
    parse_spark(page, 0, d->spark);
    /* The sample: the group's latest occurrence. Its timestamp is last_seen, so the statement is
     * planned on the one partition holding it. */
    struct ldg_qparams *p = ldg_arena_alloc(a, sizeof *p);
    memset(p, 0, sizeof *p);
    ldg_qparams_add(p, a, ldg__query_itoa(req, d->project_id));
    ldg_qparams_add(p, a, ldg_arena_strndup(a, PQgetvalue(page, 0, C_FP), (size_t)PQgetlength(page, 0, C_FP)));
    ldg_qparams_add(p, a, ts_text(req, col_i64(page, 0, C_LAST)));
    ldg__query_run(
        req, d->project_id, "error group sample", "Failed to retrieve error group",
        "SELECT " LDG_QUERY_LOG_COLS " FROM logs WHERE project_id = $1::bigint "
        "AND error_fingerprint = $2::bpchar AND \"timestamp\" = $3::timestamptz ORDER BY id DESC LIMIT 1",
        NULL, p, 0, on_sample, d);
}

static void detail_owned(struct ldg_req *req, void *ud)
{
    struct detail_req *d = ud;
    struct ldg_arena *a = &req->arena;
    struct ldg_qparams *p = ldg_arena_alloc(a, sizeof *p);
    memset(p, 0, sizeof *p);
    ldg_qparams_add(p, a, ldg__query_itoa(req, d->project_id));
    ldg_qparams_add(p, a, ldg__query_itoa(req, d->group_id));
    d->h0 = first_hour_us();
    int kh = ldg_qparams_add(p, a, ts_text(req, d->h0));
    int ke = ldg_qparams_add(p, a, ts_text(req, d->h0 + HOURS * HOUR_US));
    char *sql = ldg_arena_alloc(a, 2048);
    snprintf(sql, 2048,
             "SELECT " GROUP_COLS ", g.sample_stack_trace FROM error_groups g" SPARK_JOIN
             " WHERE g.project_id = $1::bigint AND g.id = $2::bigint",
             kh, kh, ke);
    ldg__query_run(req, d->project_id, "get error group", "Failed to retrieve error group", sql, NULL, p, 0,
                   on_detail, d);
}

static void handle_detail(struct ldg_req *req)
{
    struct detail_req *d = ldg_arena_alloc(&req->arena, sizeof *d);
    memset(d, 0, sizeof *d);
    if (!group_id_param(req, &d->group_id) || !ldg__query_project(req, &d->project_id))
        return;
    ldg__query_with_project(req, d->project_id, detail_owned, d);
}

/* ---- PATCH /api/v1/error-groups/{group_id}/status ------------------------------------------------------ */

struct status_req {
    int64_t project_id, group_id;
    const char *status, *release; /* release NULL: none */
};

static void on_status(struct ldg_req *req, PGresult *page, PGresult *count, void *ud)
{
    (void)count, (void)ud;
    if (PQntuples(page) == 0) {
        ldg_req_error(req, 404, NOT_FOUND_TEXT);
        return;
    }
    respond_group(req, page);
}

static void status_owned(struct ldg_req *req, void *ud)
{
    struct status_req *s = ud;
    struct ldg_arena *a = &req->arena;
    struct ldg_qparams *p = ldg_arena_alloc(a, sizeof *p);
    memset(p, 0, sizeof *p);
    ldg_qparams_add(p, a, ldg__query_itoa(req, s->project_id));
    ldg_qparams_add(p, a, ldg__query_itoa(req, s->group_id));
    ldg_qparams_add(p, a, s->status);
    ldg_qparams_add(p, a, s->release); /* NULL: SQL NULL */
    int64_t h0 = first_hour_us();
    int kh = ldg_qparams_add(p, a, ts_text(req, h0));
    int ke = ldg_qparams_add(p, a, ts_text(req, h0 + HOURS * HOUR_US));
    /* resolved: stamped now, with the release; unresolved/resolved by hand end a regression;
     * any other status forgets the resolution. */
    char *sql = ldg_arena_alloc(a, 3072);
    snprintf(sql, 3072,
             "WITH g AS (UPDATE error_groups SET status = $3::text, "
             "resolved_at = CASE WHEN $3::text = 'resolved' THEN now() END, "
             "resolved_in_release = CASE WHEN $3::text = 'resolved' THEN $4::text END, "
             "is_regression = CASE WHEN $3::text IN ('unresolved', 'resolved') THEN false ELSE is_regression END, "
             "regressed_at = CASE WHEN $3::text IN ('unresolved', 'resolved') THEN NULL ELSE regressed_at END, "
             "updated_at = now() WHERE project_id = $1::bigint AND id = $2::bigint RETURNING *) "
             "SELECT " GROUP_COLS " FROM g" SPARK_JOIN,
             kh, kh, ke);
    ldg__query_write(req, s->project_id, "set error group status", "Failed to update error group", sql, NULL,
                     p, 0, on_status, s);
}

/* FastAPI's 422 for one body field. */
static void body_422(struct ldg_req *req, const char *field, const char *type, const char *msg)
{
    ldg__query_422(req, "body", field, type, msg, NULL);
}

static void handle_status(struct ldg_req *req)
{
    struct status_req *s = ldg_arena_alloc(&req->arena, sizeof *s);
    memset(s, 0, sizeof *s);
    if (!group_id_param(req, &s->group_id) || !ldg__query_project(req, &s->project_id))
        return;
    cJSON *body = ldg_json_parse(ldg_buf_head(&req->body), ldg_buf_size(&req->body));
    if (!body) {
        ldg__query_422(req, "body", "status", "json_invalid", "JSON decode error", NULL);
        return;
    }
    bool ok = false;
    const cJSON *st = ldg_json_member(body, "status");
    const cJSON *rel = ldg_json_member(body, "resolved_in_release");
    if (!cJSON_IsObject(body)) {
        ldg__query_422(req, "body", "status", "model_attributes_type",
                       "Input should be a valid dictionary or object to extract fields from", NULL);
    } else if (!st) {
        body_422(req, "status", "missing", "Field required");
    } else if (!cJSON_IsString(st)) {
        body_422(req, "status", "string_type", "Input should be a valid string");
    } else {
        for (size_t i = 0; statuses[i]; i++)
            if (strcmp(st->valuestring, statuses[i]) == 0)
                s->status = statuses[i];
        size_t chars = 0;
        if (!s->status) {
            ldg__query_422(req, "body", "status", "enum",
                           "Input should be 'unresolved', 'resolved', 'ignored' or 'muted'", st->valuestring);
        } else if (rel && !cJSON_IsNull(rel) && !cJSON_IsString(rel)) {
            body_422(req, "resolved_in_release", "string_type", "Input should be a valid string");
        } else if (cJSON_IsString(rel) &&
                   (ldg_utf8_count(rel->valuestring, strlen(rel->valuestring), &chars) < 0 ||
                    chars > RELEASE_MAX)) {
            body_422(req, "resolved_in_release", "string_too_long", "String should have at most 100 characters");
        } else {
            if (cJSON_IsString(rel) && rel->valuestring[0])
                s->release = ldg_arena_strndup(&req->arena, rel->valuestring, strlen(rel->valuestring));
            ok = true;
        }
    }
    cJSON_Delete(body);
    if (ok)
        ldg__query_with_project(req, s->project_id, status_owned, s);
}

/* ---- routes -------------------------------------------------------------------------------------------- */

void ldg__query_errgroups_routes(struct ldg_router *r)
{
    struct ldg_route_opts get = {.flags = 0, .max_body_bytes = 0};
    struct ldg_route_opts patch = {.flags = 0, .max_body_bytes = BODY_MAX};
    int rc = ldg_router_add(r, "GET", "/api/v1/error-groups", handle_list, &get);
    rc |= ldg_router_add(r, "GET", "/api/v1/error-groups/{group_id}", handle_detail, &get);
    rc |= ldg_router_add(r, "PATCH", "/api/v1/error-groups/{group_id}/status", handle_status, &patch);
    LDG_ASSERT(rc == 0);
}
