/*
 * auth.h: the auth role: accounts, dashboard sessions, projects, API keys, dashboard panels,
 * settings and notification preferences (reference §3.1-3.5, §3.8 N1/N2; decisions D2-D4).
 *
 * Files: auth.c (registration, config, lifecycle, shared helpers below), accounts.c (register,
 * login, logout, me, name, password, refresh, sessions), projects.c (projects, quota, API keys,
 * settings), panels.c (dashboard panels, notification preferences).
 *
 * The gateway (roles/gateway) authenticates requests before these handlers run: every handler
 * of a non-public route finds its principal with ldg_principal(req).
 *
 * Threading: handlers run on the worker thread that accepted the request; per-worker state is
 * reached with ldg__auth_worker(req). The global state is immutable after init_global.
 */
#ifndef LDG_ROLES_AUTH_H
#define LDG_ROLES_AUTH_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "auth/principal.h"
#include "core/common.h"
#include "core/config.h"
#include "http/request.h"
#include "http/router.h"

/* The [auth] section. */
enum ldg_auth_secure { LDG_AUTH_SECURE_AUTO, LDG_AUTH_SECURE_ON, LDG_AUTH_SECURE_OFF };

struct ldg_auth_cfg {
    char *jwt_secret_file;        /* HS256 secret (also read by gateways to verify tokens) */
    int64_t access_ttl_ms;        /* access JWT lifetime (15 min) */
    int64_t refresh_ttl_ms;       /* refresh token lifetime (7 days) */
    int64_t hash_max_inflight;    /* argon2/bcrypt jobs one worker runs on the thread pool at once */
    int64_t hash_max_queued;      /* more wait; beyond that logins/registrations get 503 */
    int64_t login_fail_window_ms; /* failed-login counting window */
    int64_t login_fail_max_email; /* failures per email per window before 429 */
    int64_t login_fail_max_addr;  /* failures per client address per window before 429 */
    int64_t register_window_ms;   /* registration counting window */
    int64_t register_max_per_addr; /* registrations per client address per window before 429 */
    int cookie_secure;            /* enum ldg_auth_secure; the effective flag is ldg__auth.cookie_secure */
    int64_t max_panels;           /* dashboard panels per account */
    int64_t max_projects;         /* projects per account */
    int64_t max_keys;             /* active API keys per project */
    char *totp_key_file;          /* key sealing TOTP secrets at rest; empty = derived from the JWT secret */
    int64_t totp_session_ttl_ms;  /* life of the token between password and second factor */
    int64_t totp_max_attempts;    /* wrong codes per such token before it is dropped */
    int64_t totp_fail_max;        /* wrong codes per account per login_fail_window_ms before 429 */
    char *totp_issuer;            /* issuer shown by authenticator apps */
};

extern const struct ldg_cfg_key ldg_auth_cfg_keys[];
extern const struct ldg_role ldg_role_auth;

/* Process-wide state, set by init_global (main thread), read-only afterwards. */
struct ldg_auth_global {
    const struct ldg_auth_cfg *cfg;
    const unsigned char *secret; /* borrowed from the config (jwt_secret) */
    size_t secret_len;
    unsigned char totp_key[32]; /* AES-256-GCM key for TOTP secrets, HMAC key for backup codes */
    bool cookie_secure; /* Secure flag on the session cookies (cookie_secure, auto resolved) */
};
extern struct ldg_auth_global ldg__auth;

struct ldg_password_pool;
struct ldg_worker;

/* Per-worker state. */
struct ldg_auth_worker {
    struct ldg_worker *w;
    struct ldg_password_pool *pw; /* owned; closed in stop_worker */
    bool pw_closed;
    struct ldg_auth_project_cache *projects; /* owned by projects.c (lazily created); freed in free_worker */
};

/* projects.c: release aw->projects (free_worker). */
void ldg__auth_projects_worker_free(struct ldg_auth_worker *aw);

struct ldg_auth_worker *ldg__auth_worker(struct ldg_req *req);

/* ---- shared helpers for the handlers ------------------------------------------------------- */

/* Client-facing texts for one SQL call's failures. `timeout`: 503 when PostgreSQL is unreachable,
 * slow or the pool is saturated; `failed`: 500 for any other failure; `unique` (nullable): 409
 * when the statement hits a unique violation (SQLSTATE 23505). */
struct ldg_auth_errs {
    const char *timeout;
    const char *failed;
    const char *unique;
};

/* Result callback: runs only while the request still has a connection, with a successful `res`
 * (PGRES_TUPLES_OK or PGRES_COMMAND_OK; PQclear'ed after the callback). Failures never reach it:
 * they are logged and answered with the texts of `errs`. */
typedef void (*ldg_auth_sql_cb)(struct ldg_req *req, PGresult *res, void *ud);

/* Run one statement (prepared under `name`, parameters as text, NULL = SQL NULL) on the auth
 * database for `req`; holds a request reference until the callback. `errs` must be static or
 * live in req->arena. Never answers from inside this call except when the submission fails. */
void ldg__auth_sql(struct ldg_req *req, const char *name, const char *sql, int nparams,
                   const char *const *params, const struct ldg_auth_errs *errs, ldg_auth_sql_cb cb, void *ud);

/* Parse the request body as a JSON object. On failure answers 422 (FastAPI shape, type
 * json_invalid or model_attributes_type) and returns NULL. The caller owns the tree. */
cJSON *ldg__auth_body(struct ldg_req *req);

/* Answer 422 with FastAPI's body: {"detail":[{"type","loc":["body",<field>],"msg","input"}]}.
 * `where` is "body", "query" or "path"; `field` may be NULL (loc is then [where]); `input` may be
 * NULL (then {} for body-level errors, or the absent marker omitted). */
void ldg__auth_422(struct ldg_req *req, const char *where, const char *field, const char *type,
                   const char *msg, const cJSON *input);

/* FastAPI-style validation of one string member: required/optional, length bounds in code
 * points. Returns 1 (present, *out set, pointing into the tree), 0 (absent and optional), or
 * -EINVAL after answering 422 (types: missing, string_type, string_too_short, string_too_long;
 * messages "Field required", "Input should be a valid string", "String should have at least N
 * character(s)", "String should have at most N characters"). */
int ldg__auth_str(struct ldg_req *req, const cJSON *obj, const char *field, bool required, size_t min_chars,
                  size_t max_chars, const char **out) LDG_MUSTCHECK;

/* A path parameter as a positive int64; answers 422 (int_parsing, "Input should be a valid
 * integer, unable to parse string as an integer") and returns false otherwise. */
bool ldg__auth_path_id(struct ldg_req *req, const char *param, int64_t *out);

/* Decimal text of v in the request arena (for SQL parameters). */
const char *ldg__auth_itoa(struct ldg_req *req, int64_t v);

/* printf into the request arena. */
const char *ldg__auth_printf(struct ldg_req *req, const char *fmt, ...) LDG_PRINTF(2, 3);

/* A path parameter, percent-decoded into the arena (NUL-terminated); *len is its length (a %00
 * makes it differ from strlen). */
char *ldg__auth_path_text(struct ldg_req *req, const char *param, size_t *len);

/* One step of a 422 location: a member name, or (name NULL) an array index. */
struct ldg_auth_loc {
    const char *name;
    int index;
};

/* FastAPI's 422 for a nested location [where, loc...]; `input` NULL writes null. */
void ldg__auth_422_at(struct ldg_req *req, const char *where, const struct ldg_auth_loc *loc, size_t n,
                      const char *type, const char *msg, const cJSON *input);

/* ---- responses ---------------------------------------------------------------------------------- */

struct ldg_buf;
struct ldg_json_writer;

/* Answer `status` with the JSON document in b, then free b. */
void ldg__auth_respond_buf(struct ldg_req *req, int status, struct ldg_buf *b);

/* Answer 200 {"success": true, "message": <msg>}. */
void ldg__auth_respond_success(struct ldg_req *req, const char *msg);

/* Writes the items of a list response (JSON values, into the open array) and returns the value
 * to report as "total". */
typedef int64_t (*ldg_auth_items_fn)(struct ldg_json_writer *jw, void *ud);

/* Answer 200 {"<key>": [items...], "total": <what items returned>}. */
void ldg__auth_respond_list(struct ldg_req *req, const char *key, ldg_auth_items_fn items, void *ud);

/* Column fragment rendering a timestamptz as Python's isoformat() in UTC:
 * `2025-11-30T10:00:00.123456+00:00`, fraction omitted when zero. Use as
 * LDG_SQL_ISO("created_at") inside a SELECT list; NULL stays NULL. */
#define LDG_SQL_ISO(col)                                                                                     \
    "CASE WHEN " col " IS NULL THEN NULL WHEN date_part('microseconds', " col ")::bigint % 1000000 = 0 "     \
    "THEN to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"') "                       \
    "ELSE to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') END"

/* ---- helpers of projects.c shared with panels.c ------------------------------------------------ */

/* The session principal of an account-level route, or NULL after answering 401 "Not
 * authenticated" (no principal: the gateway's filter did not run) or 403 (an API key; the gateway
 * normally refuses those first for LDG_ROUTE_ACCOUNT routes). */
const struct ldg_principal *ldg__auth_account(struct ldg_req *req);

/* Ownership verdict from row 0, column 0 (a project's account_id) of res: true when the row exists
 * and belongs to the caller; otherwise answers 404 `missing` (no row) or 403 `forbidden` (someone
 * else's) and returns false. With `forbidden` NULL any owner is accepted. */
bool ldg__auth_owned(struct ldg_req *req, const PGresult *res, const char *missing, const char *forbidden);

/* FastAPI-style (pydantic lax mode) validation of one integer member: JSON integers and decimal
 * strings are accepted, within [min, max]. Returns 1 (*out set), 0 (absent or null, optional), or
 * -EINVAL after answering 422 (types: missing, int_type, int_parsing, int_from_float,
 * greater_than_equal, less_than_equal). */
int ldg__auth_int(struct ldg_req *req, const cJSON *obj, const char *field, bool required, int64_t min,
                  int64_t max, int64_t *out) LDG_MUSTCHECK;

/* ---- text rules (textrules.c) ---- */

/* Main thread, before workers start: load the C.UTF-8 character classes. */
void ldg__auth_textrules_init(void);
/* v1's register email rule; the client message, or NULL when valid. */
const char *ldg__auth_email_error(const char *s);
/* v1's password complexity rule (upper, lower, digit; Unicode-aware); message or NULL. */
const char *ldg__auth_password_error(const char *pw);
/* s (valid UTF-8) without leading/trailing whitespace as Python's str.strip(), in req->arena. */
char *ldg__auth_strip(struct ldg_req *req, const char *s);
/* A header value made safe for a VARCHAR(max_chars) column: valid UTF-8 only (other bytes become
 * '?'), control characters dropped, cut to max_chars code points; NULL when empty. */
const char *ldg__auth_clean_text(struct ldg_req *req, struct ldg_str v, size_t max_chars);

/* ---- JSON-in-SQL answers (connectors.c; used by connectors.c and alerting.c) ---- */

/* How ldg__auth_json answers. With `missing` set, row 0 column 0 is the owning account
 * (ldg__auth_owned: no row → 404 missing, someone else's → 403 forbidden) and column 1 the JSON;
 * a NULL column 1 (the write found nothing) → gone_status (404) `gone` (or missing). Without
 * `missing`, column 0 is the JSON. status 204 answers without a body. */
struct ldg_auth_json_answer {
    int status;
    const char *missing, *forbidden;
    int gone_status;
    const char *gone;
    const char *invalid; /* with `missing`: column 2 false → 400 invalid */
};

/* Run sql and answer its JSON text column as `a` says (a static or in the arena). */
void ldg__auth_json(struct ldg_req *req, const char *name, const char *sql, int n, const char *const *params,
                    const struct ldg_auth_errs *errs, const struct ldg_auth_json_answer *a);

/* The by-id handler's whole body: the caller's account (LDG_ROUTE_ACCOUNT), the path id `param`,
 * then ldg__auth_json with $1 = that id and, when with_account, $2 = the caller's account id.
 * Answers itself on every path (401/422 before the query). */
void ldg__auth_json_by_id(struct ldg_req *req, const char *param, bool with_account, const char *name,
                          const char *sql, const struct ldg_auth_errs *errs,
                          const struct ldg_auth_json_answer *a);

/* The head of a write by id: the caller's account in *p, the path id `param` in *id and the JSON
 * object body, owned by the caller (cJSON_Delete); NULL once the request is answered (401/422/400). */
cJSON *ldg__auth_id_body(struct ldg_req *req, const char *param, int64_t *id, const struct ldg_principal **p);

/* Integer query parameter within [min, max] (def when absent): 1 set, 0 absent, -EINVAL after 422. */
int ldg__auth_query_int(struct ldg_req *req, const char *name, int64_t def, int64_t min, int64_t max,
                        int64_t *out) LDG_MUSTCHECK;

/* Optional JSON boolean member: 1 set, 0 absent/null, -EINVAL after 422 (bool_type). */
int ldg__auth_bool(struct ldg_req *req, const cJSON *obj, const char *field, bool *out) LDG_MUSTCHECK;

/* Optional array of positive integer ids (at most 50) as PostgreSQL array text "{1,2}" in the
 * arena: 1 set, 0 absent/null, -EINVAL after 422. */
int ldg__auth_id_list(struct ldg_req *req, const cJSON *obj, const char *field,
                      const char **out) LDG_MUSTCHECK;

/* Route registration of each file (called by auth.c's routes hook). */
void ldg__auth_accounts_routes(struct ldg_router *r);
void ldg__auth_projects_routes(struct ldg_router *r);
void ldg__auth_panels_routes(struct ldg_router *r);
void ldg__auth_connectors_routes(struct ldg_router *r);
void ldg__auth_alerting_routes(struct ldg_router *r);
void ldg__auth_monitors_routes(struct ldg_router *r);

/* Add a route or abort startup (programming error). */
void ldg__auth_route(struct ldg_router *r, const char *method, const char *pattern, ldg_handler_fn fn,
                     unsigned flags, size_t max_body);

#endif
