/*
 * auth.c: registration, [auth] keys and lifecycle of the auth role, and the helpers its handler
 * files share (SQL bound to a request, FastAPI-shaped 422 answers, body and path parsing, JSON
 * responses).
 */
#include "roles/auth/auth.h"

#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "alerts/dispatch.h"
#include "auth/password.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pgpool.h"
#include "settings.h"

#define CFG(f) offsetof(struct ldg_auth_cfg, f)
#define MIN_MS 60000
#define DAY_MS (24LL * 3600 * 1000)

static const struct ldg_cfg_enum secure_choices[] = {
    {"auto", LDG_AUTH_SECURE_AUTO}, {"on", LDG_AUTH_SECURE_ON}, {"off", LDG_AUTH_SECURE_OFF}, {NULL, 0}};

const struct ldg_cfg_key ldg_auth_cfg_keys[] = {
    {"jwt_secret_file", LDG_CFG_PATH, CFG(jwt_secret_file), "", 0, 0, NULL, LDG_CFG_SECRET,
     "File holding the HS256 secret for access tokens (>= 32 bytes; every gateway and auth process of a "
     "fleet "
     "needs the same one); empty = a random secret per process (single process only)"},
    {"access_ttl_ms", LDG_CFG_MS, CFG(access_ttl_ms), "900000", 10000, DAY_MS, NULL, 0,
     "Access token lifetime"},
    {"refresh_ttl_ms", LDG_CFG_MS, CFG(refresh_ttl_ms), "604800000", MIN_MS, 365 * DAY_MS, NULL, 0,
     "Refresh token lifetime; each use rotates it and starts a new lifetime"},
    {"hash_max_inflight", LDG_CFG_INT, CFG(hash_max_inflight), "1", 1, 64, NULL, 0,
     "Password hashes (argon2id, bcrypt) one worker runs on the thread pool at once"},
    {"hash_max_queued", LDG_CFG_INT, CFG(hash_max_queued), "64", 0, 100000, NULL, 0,
     "Password hashes waiting per worker; beyond that login/register/password change answer 503"},
    {"login_fail_window_ms", LDG_CFG_MS, CFG(login_fail_window_ms), "900000", 1000, DAY_MS, NULL, 0,
     "Window over which failed logins are counted"},
    {"login_fail_max_email", LDG_CFG_INT, CFG(login_fail_max_email), "10", 1, 1000000, NULL, 0,
     "Failed logins per email address within the window before 429"},
    {"login_fail_max_addr", LDG_CFG_INT, CFG(login_fail_max_addr), "100", 1, 1000000, NULL, 0,
     "Failed logins per client address within the window before 429"},
    {"register_window_ms", LDG_CFG_MS, CFG(register_window_ms), "3600000", 1000, DAY_MS, NULL, 0,
     "Window over which registrations are counted per client address"},
    {"register_max_per_addr", LDG_CFG_INT, CFG(register_max_per_addr), "20", 1, 1000000, NULL, 0,
     "Registrations per client address within the window before 429 (counted before hashing)"},
    {"cookie_secure", LDG_CFG_ENUM, CFG(cookie_secure), "auto", 0, 0, secure_choices, 0,
     "Mark the session cookies Secure: auto = on unless [server] host is a loopback address"},
    {"max_panels", LDG_CFG_INT, CFG(max_panels), "100", 1, 10000, NULL, 0, "Dashboard panels per account"},
    {"max_projects", LDG_CFG_INT, CFG(max_projects), "100", 1, 100000, NULL, 0, "Projects per account"},
    {"max_keys", LDG_CFG_INT, CFG(max_keys), "100", 1, 100000, NULL, 0, "Active API keys per project"},
    {"totp_key_file", LDG_CFG_PATH, CFG(totp_key_file), "", 0, 0, NULL, LDG_CFG_SECRET,
     "File holding the key that encrypts two-factor secrets at rest (>= 32 bytes; the same on every auth "
     "process); empty = derived from the JWT secret"},
    {"totp_session_ttl_ms", LDG_CFG_MS, CFG(totp_session_ttl_ms), "300000", 10000, 3600000, NULL, 0,
     "Lifetime of the single-use token a password login hands out when a second factor is required"},
    {"totp_max_attempts", LDG_CFG_INT, CFG(totp_max_attempts), "5", 1, 100, NULL, 0,
     "Wrong two-factor codes per login token before the token is dropped"},
    {"totp_fail_max", LDG_CFG_INT, CFG(totp_fail_max), "10", 1, 100000, NULL, 0,
     "Wrong two-factor codes per account within login_fail_window_ms before 429"},
    {"totp_issuer", LDG_CFG_STR, CFG(totp_issuer), "Ledger", 0, 0, NULL, 0,
     "Issuer name in otpauth:// URIs (shown by authenticator apps)"},
    {0},
};

struct ldg_auth_global ldg__auth;

/* [auth] totp_key_file: SHA-256 of the file's content (>= 32 bytes), or an HMAC of the JWT secret. */
static int load_totp_key(const struct ldg_config *c, const struct ldg_auth_cfg *ac)
{
    unsigned int n = 0;
    if (ac->totp_key_file && *ac->totp_key_file) {
        struct ldg_cfg_err err = {0};
        char *k = ldg_cfg_read_secret(ac->totp_key_file, &err);
        if (!k || strlen(k) < 32) {
            ldg_log_error(NULL, "[auth] totp_key_file: %s",
                          k ? "the key must be at least 32 bytes" : err.msg);
            if (k)
                OPENSSL_cleanse(k, strlen(k));
            free(k);
            return -EINVAL;
        }
        SHA256((const unsigned char *)k, strlen(k), ldg__auth.totp_key);
        OPENSSL_cleanse(k, strlen(k));
        free(k);
        return 0;
    }
    static const char label[] = "ledger totp secret key v1";
    if (!HMAC(EVP_sha256(), c->jwt_secret, (int)strlen(c->jwt_secret), (const unsigned char *)label,
              sizeof label - 1, ldg__auth.totp_key, &n) ||
        n != 32)
        return -EIO;
    return 0;
}

static bool host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return strcmp(host, "localhost") == 0;
}

static int auth_init_global(const struct ldg_config *c, const void *cfg)
{
    ldg__auth.cfg = cfg;
    const struct ldg_auth_cfg *ac = cfg;
    ldg__auth.cookie_secure = ac->cookie_secure == LDG_AUTH_SECURE_ON ||
                              (ac->cookie_secure == LDG_AUTH_SECURE_AUTO && !host_is_loopback(c->server.host));
    ldg__auth.secret = (const unsigned char *)c->jwt_secret;
    ldg__auth.secret_len = strlen(c->jwt_secret);
    if (c->jwt_secret_generated)
        ldg_log_warn(NULL, "[auth] jwt_secret_file is not set: using a random secret for this process only");
    return load_totp_key(c, cfg);
}

static void auth_routes(struct ldg_router *r, const void *cfg)
{
    ldg__auth_accounts_routes(r);
    ldg__auth_projects_routes(r);
    ldg__auth_panels_routes(r);
    ldg__auth_connectors_routes(r);
    ldg__auth_alerting_routes(r);
    ldg__auth_monitors_routes(r);
}

static int auth_init_worker(struct ldg_worker *w, const void *cfg, void **state)
{
    const struct ldg_auth_cfg *ac = cfg;
    struct ldg_auth_worker *aw = ldg_calloc(1, sizeof *aw);
    aw->w = w;
    aw->pw = ldg_password_pool_new(&w->loop, (unsigned)ac->hash_max_inflight, (unsigned)ac->hash_max_queued);
    *state = aw;
    return 0;
}

static void on_pw_closed(void *ud)
{
    struct ldg_auth_worker *aw = ud;
    aw->pw_closed = true;
}

static void auth_stop_worker(struct ldg_worker *w, void *state)
{
    struct ldg_auth_worker *aw = state;
    ldg_dispatch_stop(w);
    if (aw->pw) {
        struct ldg_password_pool *p = aw->pw;
        aw->pw = NULL;
        ldg_password_pool_close(p, on_pw_closed, aw);
    }
}

static bool auth_drained(const struct ldg_worker *w, const void *state)
{
    const struct ldg_auth_worker *aw = state;
    return aw->pw_closed && ldg_dispatch_idle(w);
}

static void auth_free_worker(struct ldg_worker *w, void *state)
{
    struct ldg_auth_worker *aw = state;
    if (aw->pw) /* stop_worker never ran (startup failed) */
        ldg_password_pool_close(aw->pw, NULL, NULL);
    ldg__auth_projects_worker_free(aw);
    free(aw);
}

const struct ldg_role ldg_role_auth = {
    .name = "auth",
    .keys = ldg_auth_cfg_keys,
    .cfg_size = sizeof(struct ldg_auth_cfg),
    .init_global = auth_init_global,
    .routes = auth_routes,
    .init_worker = auth_init_worker,
    .stop_worker = auth_stop_worker,
    .drained = auth_drained,
    .free_worker = auth_free_worker,
};

struct ldg_auth_worker *ldg__auth_worker(struct ldg_req *req)
{
    int i = ldg_role_index("auth");
    LDG_ASSERT(i >= 0 && req->w->role_started[i]);
    return req->w->role_state[i];
}

void ldg__auth_route(struct ldg_router *r, const char *method, const char *pattern, ldg_handler_fn fn,
                     unsigned flags, size_t max_body)
{
    struct ldg_route_opts o = {.flags = flags, .max_body_bytes = max_body ? max_body : 64 * 1024};
    int rc = ldg_router_add(r, method, pattern, fn, &o);
    LDG_ASSERT(rc == 0);
}

/* ---- SQL bound to a request ------------------------------------------------------------------ */

struct sql_call {
    struct ldg_req *req;
    const struct ldg_auth_errs *errs;
    ldg_auth_sql_cb cb;
    void *ud;
    const char *name;
};

static void answer_failure(struct ldg_req *req, const struct ldg_auth_errs *errs, int code,
                           const char *sqlstate, const char *name, const char *message)
{
    if (code == -EIO && errs->unique && strcmp(sqlstate, "23505") == 0) {
        ldg_req_error(req, 409, errs->unique);
        return;
    }
    bool unavailable = code == -ETIMEDOUT || code == -ENOTCONN || code == -EAGAIN || code == -ECONNRESET ||
                       (code == -EIO && strcmp(sqlstate, "57014") == 0);
    char ctx[96];
    snprintf(ctx, sizeof ctx, "rid=%s", req->request_id);
    ldg_log_error(ctx, "auth sql=%s failed: code=%d sqlstate=%s err=%s", name, code,
                  sqlstate && *sqlstate ? sqlstate : "-", message ? message : "-");
    ldg_req_error(req, unavailable ? 503 : 500, unavailable ? errs->timeout : errs->failed);
}

static void on_sql_done(PGresult *res, void *ud)
{
    struct sql_call *call = ud;
    struct ldg_req *req = call->req;
    if (req->conn) {
        if (res)
            call->cb(req, res, call->ud);
        else {
            const struct ldg_pg_error *e = ldg_pg_failure();
            answer_failure(req, call->errs, e->code, e->sqlstate, call->name, e->message);
        }
    }
    ldg_req_unref(req);
}

void ldg__auth_sql(struct ldg_req *req, const char *name, const char *sql, int nparams,
                   const char *const *params, const struct ldg_auth_errs *errs, ldg_auth_sql_cb cb, void *ud)
{
    struct sql_call *call = ldg_arena_alloc(&req->arena, sizeof *call);
    *call = (struct sql_call){req, errs, cb, ud, name};
    ldg_req_ref(req);
    int rc = ldg_pgpool_query_prepared(req->w->pg_auth, name, sql, nparams, params, on_sql_done, call);
    if (rc < 0) {
        ldg_req_unref(req);
        answer_failure(req, errs, rc, "", name, "not submitted");
    }
}

/* ---- request parsing --------------------------------------------------------------------------- */

/* Fields whose values a 422 never echoes (passwords, tokens, secrets, codes), at any depth. */
static bool secret_field(const char *name)
{
    return name && (strstr(name, "password") || strstr(name, "token") || strstr(name, "secret") ||
                    strcmp(name, "code") == 0 || strcmp(name, "totp") == 0);
}

static const char redacted[] = "\"[redacted]\"";

/* A copy of v with the value of every secret member replaced by "[redacted]". */
static cJSON *redact(const cJSON *v)
{
    cJSON *copy = cJSON_Duplicate(v, true);
    if (!copy)
        ldg_panic("cJSON_Duplicate: out of memory");
    cJSON *stack[32];
    size_t n = 0;
    stack[n++] = copy;
    while (n) {
        cJSON *node = stack[--n];
        for (cJSON *it = node->child; it; it = it->next) {
            if (cJSON_IsObject(node) && secret_field(it->string)) {
                cJSON *r = cJSON_CreateString("[redacted]");
                if (!r)
                    ldg_panic("cJSON_CreateString: out of memory");
                r->string = it->string; /* the key moves to the replacement */
                r->type |= it->type & cJSON_StringIsConst;
                it->string = NULL;
                cJSON_ReplaceItemViaPointer(node, it, r);
                it = r;
            } else if ((cJSON_IsObject(it) || cJSON_IsArray(it)) && n < LDG_ARRAY_SIZE(stack)) {
                stack[n++] = it;
            } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
                /* deeper than any body we validate: drop it rather than echo it unchecked */
                cJSON *r = cJSON_CreateString("[redacted]");
                if (!r)
                    ldg_panic("cJSON_CreateString: out of memory");
                r->string = it->string;
                r->type |= it->type & cJSON_StringIsConst;
                it->string = NULL;
                cJSON_ReplaceItemViaPointer(node, it, r);
                it = r;
            }
        }
    }
    return copy;
}

/* FastAPI's 422 body; `absent` (raw JSON) stands for a NULL `input`. The value of a secret field
 * (see secret_field) is never echoed: as `input` itself, or inside an echoed object. */
static void answer_422(struct ldg_req *req, const char *where, const struct ldg_auth_loc *loc, size_t n,
                       const char *type, const char *msg, const cJSON *input, const char *absent)
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
    for (size_t i = 0; i < n; i++) {
        if (loc[i].name)
            ldg_json_str(&jw, loc[i].name);
        else
            ldg_json_int(&jw, loc[i].index);
    }
    ldg_json_arr_end(&jw);
    ldg_json_key(&jw, "msg");
    ldg_json_str(&jw, msg);
    ldg_json_key(&jw, "input");
    const char *leaf = NULL;
    for (size_t i = 0; i < n; i++)
        leaf = loc[i].name ? loc[i].name : leaf;
    if (input && secret_field(leaf)) {
        ldg_json_raw(&jw, redacted, sizeof redacted - 1);
    } else {
        cJSON *safe = input && (cJSON_IsObject(input) || cJSON_IsArray(input)) ? redact(input) : NULL;
        char *text = input ? cJSON_PrintUnformatted(safe ? safe : input) : NULL;
        if (text)
            ldg_json_raw(&jw, text, strlen(text));
        else if (input)
            ldg_json_null(&jw);
        else
            ldg_json_raw(&jw, absent, strlen(absent));
        free(text);
        cJSON_Delete(safe);
    }
    ldg_json_obj_end(&jw);
    ldg_json_arr_end(&jw);
    ldg_json_obj_end(&jw);
    ldg__auth_respond_buf(req, 422, &b);
}

void ldg__auth_422(struct ldg_req *req, const char *where, const char *field, const char *type,
                   const char *msg, const cJSON *input)
{
    struct ldg_auth_loc loc = {field, 0};
    answer_422(req, where, &loc, field ? 1 : 0, type, msg, input, "{}");
}

void ldg__auth_422_at(struct ldg_req *req, const char *where, const struct ldg_auth_loc *loc, size_t n,
                      const char *type, const char *msg, const cJSON *input)
{
    answer_422(req, where, loc, n, type, msg, input, "null");
}

cJSON *ldg__auth_body(struct ldg_req *req)
{
    size_t pos = 0;
    cJSON *root = ldg_json_parse_at(ldg_buf_head(&req->body), ldg_buf_size(&req->body), &pos);
    if (!root) {
        /* FastAPI's shape: the byte offset of the problem follows "body" in loc. */
        struct ldg_auth_loc at = {NULL, (int)LDG_MIN(pos, (size_t)INT_MAX)};
        answer_422(req, "body", &at, 1, "json_invalid", "JSON decode error", NULL, "{}");
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        ldg__auth_422(req, "body", NULL, "model_attributes_type",
                      "Input should be a valid dictionary or object to extract fields from", root);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int ldg__auth_str(struct ldg_req *req, const cJSON *obj, const char *field, bool required, size_t min_chars,
                  size_t max_chars, const char **out)
{
    const cJSON *v = ldg_json_member(obj, field);
    *out = NULL;
    if (!v || (cJSON_IsNull(v) && !required)) {
        if (!required)
            return 0;
        ldg__auth_422(req, "body", field, "missing", "Field required", obj);
        return -EINVAL;
    }
    if (!cJSON_IsString(v)) {
        ldg__auth_422(req, "body", field, "string_type", "Input should be a valid string", v);
        return -EINVAL;
    }
    size_t n = 0;
    if (ldg_utf8_count(v->valuestring, strlen(v->valuestring), &n) < 0)
        n = strlen(v->valuestring); /* ldg_json_parse only yields valid UTF-8; never reached */
    char msg[96];
    if (n < min_chars) {
        snprintf(msg, sizeof msg, "String should have at least %zu character%s", min_chars,
                 min_chars == 1 ? "" : "s");
        ldg__auth_422(req, "body", field, "string_too_short", msg, v);
        return -EINVAL;
    }
    if (max_chars && n > max_chars) {
        snprintf(msg, sizeof msg, "String should have at most %zu character%s", max_chars,
                 max_chars == 1 ? "" : "s");
        ldg__auth_422(req, "body", field, "string_too_long", msg, v);
        return -EINVAL;
    }
    *out = v->valuestring;
    return 1;
}

bool ldg__auth_path_id(struct ldg_req *req, const char *param, int64_t *out)
{
    struct ldg_str s = ldg_req_param(req, param);
    int64_t v = 0;
    bool ok = s.n > 0 && s.n <= 18;
    for (size_t i = 0; ok && i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            ok = false;
        else
            v = v * 10 + (s.p[i] - '0');
    }
    if (!ok) {
        cJSON *in = cJSON_CreateString(ldg_arena_strndup(&req->arena, s.p, s.n));
        ldg__auth_422(req, "path", param, "int_parsing",
                      "Input should be a valid integer, unable to parse string as an integer", in);
        cJSON_Delete(in);
        return false;
    }
    *out = v;
    return true;
}

const char *ldg__auth_itoa(struct ldg_req *req, int64_t v)
{
    char *s = ldg_arena_alloc(&req->arena, 24);
    snprintf(s, 24, "%" PRId64, v);
    return s;
}

const char *ldg__auth_printf(struct ldg_req *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = ldg_arena_alloc(&req->arena, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *ldg__auth_path_text(struct ldg_req *req, const char *param, size_t *len)
{
    struct ldg_str s = ldg_req_param(req, param);
    char *out = ldg_arena_alloc(&req->arena, s.n + 1);
    *len = ldg_url_decode(out, s.p, s.n, false);
    return out;
}

/* ---- responses ------------------------------------------------------------------------------- */

void ldg__auth_respond_buf(struct ldg_req *req, int status, struct ldg_buf *b)
{
    ldg_req_json(req, status, ldg_buf_head(b), ldg_buf_size(b));
    ldg_buf_free(b);
}

void ldg__auth_respond_success(struct ldg_req *req, const char *msg)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "success");
    ldg_json_bool(&jw, true);
    ldg_json_key(&jw, "message");
    ldg_json_str(&jw, msg);
    ldg_json_obj_end(&jw);
    ldg__auth_respond_buf(req, 200, &b);
}

void ldg__auth_respond_list(struct ldg_req *req, const char *key, ldg_auth_items_fn items, void *ud)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, key);
    ldg_json_arr_begin(&jw);
    int64_t total = items(&jw, ud);
    ldg_json_arr_end(&jw);
    ldg_json_key(&jw, "total");
    ldg_json_int(&jw, total);
    ldg_json_obj_end(&jw);
    ldg__auth_respond_buf(req, 200, &b);
}
