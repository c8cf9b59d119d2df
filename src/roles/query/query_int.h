/*
 * query_int.h: what query.c (logs endpoints, shared helpers) and metrics.c (metrics endpoints) of
 * the query role share. Not for other modules. Same threading as query.h: the worker thread of
 * the request; every string returned lives in the request arena.
 */
#ifndef LDG_ROLES_QUERY_INT_H
#define LDG_ROLES_QUERY_INT_H

#include <libpq-fe.h>

#include "db/logrow.h"
#include "db/pg.h"
#include "http/request.h"
#include "http/router.h"
#include "query/qlang.h"
#include "roles/query/query.h"

struct ldg_query_global {
    const struct ldg_query_cfg *cfg; /* set by init_global / routes, read-only afterwards */
};
extern struct ldg_query_global ldg__query;

/* Decimal text of v in the arena. */
const char *ldg__query_itoa(struct ldg_req *req, int64_t v);

/* FastAPI's 422 for one parameter: where "query" or "path"; input NULL when absent. */
void ldg__query_422(struct ldg_req *req, const char *where, const char *name, const char *type,
                    const char *msg, const char *input);

/* A percent-decoded query parameter (NUL-terminated, arena) or NULL when absent. */
const char *ldg__query_param(struct ldg_req *req, const char *name);

/* Decimal integer parameter within [min, max]: 1 (set), 0 (text NULL), -EINVAL after a 422. */
int ldg__query_int(struct ldg_req *req, const char *where, const char *name, const char *text, int64_t min,
                   int64_t max, int64_t *out) LDG_MUSTCHECK;

/* project_id of a request (API keys default to their project); false after answering 422. */
bool ldg__query_project(struct ldg_req *req, int64_t *out);

/* Answer a failed statement (400 for bad input the server found, 503 for timeouts and outages,
 * 500 otherwise; unexpected failures are logged with `what`). */
void ldg__query_pg_failure(struct ldg_req *req, const char *what, const struct ldg_pg_error *e,
                           const char *failed_text);

typedef void (*ldg_query_owned_fn)(struct ldg_req *req, void *ud);

/* Continue with next(req, ud) once the caller may read project_id (D2); answers 401/403/404/503
 * otherwise. next may run from inside this call (API keys) or later. */
void ldg__query_with_project(struct ldg_req *req, int64_t project_id, ldg_query_owned_fn next, void *ud);

/* Results of ldg__query_run: page (and count, or NULL), borrowed for the call. Runs only while the
 * client is still there. */
typedef void (*ldg_query_done_fn)(struct ldg_req *req, PGresult *page, PGresult *count, void *ud);

/* Run sql (and count_sql when non-NULL, with the first ncount_params parameters of p) on the logs
 * shard of project_id (db/pgroute.h: a replica within its lag bound, else the shard's primary)
 * under [query] statement_timeout_ms; failures are answered here. sql, count_sql and the
 * parameters must live in the request arena (or be static). Every statement must be about that
 * one project. */
void ldg__query_run(struct ldg_req *req, int64_t project_id, const char *what, const char *failed_text,
                    const char *sql, const char *count_sql, const struct ldg_qparams *p, int ncount_params,
                    ldg_query_done_fn done, void *ud);
/* The same for a statement that writes: always the shard's primary. */
void ldg__query_write(struct ldg_req *req, int64_t project_id, const char *what, const char *failed_text,
                      const char *sql, const char *count_sql, const struct ldg_qparams *p, int ncount_params,
                      ldg_query_done_fn done, void *ud);
/* The same as ldg__query_run for a statement whose text never changes, prepared once per connection
 * under `name` (PostgreSQL then stops planning it again once a generic plan is as good). */
void ldg__query_run_prepared(struct ldg_req *req, int64_t project_id, const char *name, const char *what,
                             const char *failed_text, const char *sql, const struct ldg_qparams *p,
                             ldg_query_done_fn done, void *ud);

/* The scope of the explorer endpoints (explore.c): project_id (API keys default to theirs), a
 * required time range [from, to) (period, or start_time with end_time defaulting to now), the
 * optional search language `q`, and the level and log_type filters (comma lists) kept apart so a
 * facet can leave its own filter out. Every string lives in the request arena. */
struct ldg_query_scope {
    int64_t project_id;
    int64_t from_us, to_us;   /* Unix µs, half-open */
    const char *where_sql;    /* project, range and q: "project_id = $1::bigint AND ..." */
    const char *level_sql;    /* " AND level = ANY($k::text[])" or "" */
    const char *log_type_sql; /* " AND log_type = ANY($k::text[])" or "" */
    struct ldg_qparams params; /* values of every placeholder of the three */
};

/* Parse the scope; false after answering (422, 400). Ownership is not checked here. */
bool ldg__query_scope(struct ldg_req *req, struct ldg_query_scope *sc);

/* A timestamp in the answers' form (UTC, "Z", fraction only when non-zero). */
struct ldg_json_writer;
void ldg__query_write_ts(struct ldg_json_writer *jw, int64_t us);

/* The known levels and log types, in answer order; NULL-terminated. */
extern const char *const ldg__query_levels[];
extern const char *const ldg__query_log_types[];

/* explore.c: its routes. */
void ldg__query_explore_routes(struct ldg_router *r);

/* metrics.c: its routes. */
void ldg__query_metrics_routes(struct ldg_router *r);

/* errgroups.c: its routes. */
void ldg__query_errgroups_routes(struct ldg_router *r);

/* otel.c: its routes (traces and metrics stored by OTLP ingestion). */
void ldg__query_traces_routes(struct ldg_router *r);

/* A log row (LogEntryResponse) as SELECT columns, unqualified, and their number. */
#define LDG_QUERY_LOG_COLS LDG_LOGROW_COLS /* db/logrow.h */
#define LDG_QUERY_LOG_NCOLS LDG_LOGROW_NCOLS

struct ldg_json_writer;

/* Write the LogEntryResponse of a row whose LDG_QUERY_LOG_COLS start at column `base`. */
void ldg__query_write_log(struct ldg_json_writer *jw, const PGresult *res, int row, int base);

#endif
