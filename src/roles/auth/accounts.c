/*
 * accounts.c: dashboard accounts and their sessions (reference §3.1, Part 2 "JWT + refresh" and
 * "Sessions"; decisions D3): register, login, refresh, logout, me, name, password, the session
 * list and its revocation, and v1's /accounts/stats.
 *
 * A session is one login: a `sessions` row (id = the JWT `sid` claim) plus the Redis key
 * `session:<sid>` (value: account id, TTL: the refresh lifetime) that the gateway checks on
 * every request (auth/keycache.h). SQL is the source of truth (revoked_at, expires_at); the key
 * is the fast path, which is why every revocation DELetes the key first and refuses to report
 * success when Redis did not confirm it. Refresh tokens are random 64-character strings stored
 * as hex HMAC-SHA256(jwt secret, token) and rotated on every use; presenting a token that was
 * already rotated revokes its whole session (reuse detection: someone else holds a copy).
 *
 * Two stores cannot change atomically, so each flow orders its steps so that a failure between
 * them leaves nothing usable behind:
 *   - login: SET session:<sid> first, then INSERT the session; a failed INSERT leaves a key
 *     nobody has a token for, which expires on its own;
 *   - register: INSERT account + session + token in one statement, then SET; if the SET fails
 *     the account is deleted again, so the client can simply retry (never a 409 for an
 *     account it never got tokens for);
 *   - refresh: rotate in one statement, then SET (fresh TTL); if the SET fails the rotation is
 *     undone, so the client's retry with the same token is not mistaken for reuse.
 *
 * Failed logins are counted in Redis per e-mail address and per client address over
 * [auth] login_fail_window_ms and refused with 429 before any hashing once over their limits.
 * Redis down means no limiting (with a rate-limited warning), never a refused login.
 *
 * Password change (our choice, docs/api.md): it revokes every other session of the account and
 * keeps the caller's, as a stolen session must not outlive the password that created it.
 *
 * Threading: handlers and callbacks run on the worker's loop thread; hashing runs on the
 * worker's password pool (never on the loop).
 */
#include "roles/auth/auth.h"
#include "roles/auth/accounts_int.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include "auth/apikey.h"
#include "auth/jwt.h"
#include "auth/keycache.h"
#include "auth/password.h"
#include "core/json.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/redis.h"

#define ACCT_MAX_BODY (16 * 1024)
#define DEVICE_INFO_MAX 255       /* characters (sessions.device_info) */
#define SESSIONS_LIST_MAX 100     /* rows of GET /accounts/sessions */
#define SESSIONS_REVOKE_MAX 10000 /* sessions one revoke-all / password change handles */
#define STR_(x) #x
#define STR(x) STR_(x)
#define REDIS_WARN_EVERY_MS 60000
#define FAIL_KEY_EMAIL "login_fail:email:"
#define FAIL_KEY_ADDR "login_fail:addr:"
#define COOKIE_NAME "refresh_token"
#define COOKIE_ATTRS "; HttpOnly; Path=/api/v1/accounts; SameSite=Strict"
/* The access token again, for the routes a browser cannot send it to in a header: the streams
 * read by a native EventSource (decisions D7): /api/v1/notifications/stream and /api/v1/logs/tail.
 * The path covers both; the gateway accepts the cookie only on routes flagged
 * LDG_ROUTE_TOKEN_QUERY (those two), never as a credential of any other API route. */
#define STREAM_COOKIE_NAME "access_token"
#define STREAM_COOKIE_ATTRS "; HttpOnly; Path=/api/v1; SameSite=Strict"

#define MSG_BAD_LOGIN "Invalid email or password"
#define MSG_BAD_REFRESH "Invalid or expired refresh token"
#define MSG_THROTTLED "Too many failed login attempts. Try again later."
#define MSG_REG_TIMEOUT "Registration service timeout, please try again"
#define MSG_NO_SESSION "Session not found"

static const struct ldg_auth_errs ERRS_REGISTER = {MSG_REG_TIMEOUT, "Registration failed",
                                                   "Email already registered"};
static const struct ldg_auth_errs ERRS_REGISTER_UNDO = {MSG_REG_TIMEOUT, MSG_REG_TIMEOUT, NULL};
static const struct ldg_auth_errs ERRS_LOGIN = {MSG_LOGIN_TIMEOUT, "Login failed", NULL};
static const struct ldg_auth_errs ERRS_REFRESH = {MSG_TIMEOUT, "Token refresh failed", NULL};
static const struct ldg_auth_errs ERRS_REFRESH_UNDO = {MSG_TIMEOUT, MSG_TIMEOUT, NULL};
static const struct ldg_auth_errs ERRS_LOGOUT = {MSG_TIMEOUT, "Logout failed", NULL};
static const struct ldg_auth_errs ERRS_ME = {MSG_TIMEOUT, "Failed to fetch account", NULL};
static const struct ldg_auth_errs ERRS_NAME = {MSG_TIMEOUT, "Failed to update account name", NULL};
static const struct ldg_auth_errs ERRS_PASSWORD = {MSG_TIMEOUT, "Failed to change password", NULL};
static const struct ldg_auth_errs ERRS_SESSIONS = {MSG_TIMEOUT, "Failed to list sessions", NULL};
static const struct ldg_auth_errs ERRS_REVOKE = {MSG_TIMEOUT, "Failed to revoke session", NULL};
static const struct ldg_auth_errs ERRS_REVOKE_ALL = {MSG_TIMEOUT, "Failed to revoke sessions", NULL};

/* ---- SQL ---------------------------------------------------------------------------------------- */

#define TTL_MS(p) "now() + " p "::bigint * interval '1 millisecond'"

/* $1 email, $2 hash, $3 name, $4 sid, $5 device_info, $6 client_addr, $7 refresh digest, $8 ttl ms */
static const char SQL_REGISTER[] =
    "WITH a AS (INSERT INTO accounts (email, password_hash, name) VALUES ($1, $2, $3) "
    "RETURNING id, email, name), "
    "s AS (INSERT INTO sessions (id, account_id, device_info, client_addr, expires_at) "
    "SELECT $4, a.id, $5, $6, " TTL_MS(
        "$8") " FROM a RETURNING id, expires_at), "
              "t AS (INSERT INTO refresh_tokens (token_digest, session_id, expires_at) "
              "SELECT $7, s.id, s.expires_at FROM s) "
              "SELECT a.id, a.email, a.name FROM a";

static const char SQL_REGISTER_UNDO[] = "DELETE FROM accounts WHERE id = $1::bigint";

static const char SQL_LOGIN_LOOKUP[] =
    "SELECT id, email, password_hash, coalesce(status = 'active', false), totp_enabled FROM accounts "
    "WHERE email = $1";

/* $1 sid, $2 account id, $3 device_info, $4 client_addr, $5 refresh digest, $6 ttl ms */
static const char SQL_SESSION_CREATE[] =
    "WITH s AS (INSERT INTO sessions (id, account_id, device_info, client_addr, expires_at) "
    "VALUES ($1, $2::bigint, $3, $4, " TTL_MS("$6") ") RETURNING id, expires_at) "
                                                    "INSERT INTO refresh_tokens (token_digest, session_id, "
                                                    "expires_at) SELECT $5, id, expires_at FROM s";

/* One statement: the presented token ($1) is marked used only if it is unused, unexpired, and its
 * session is live and its account active; the new token ($2) is stored and the session's life
 * extended in the same statement. A revocation committed meanwhile makes `bump` skip the row
 * (READ COMMITTED re-checks revoked_at on the locked row), and then nothing is returned. */
static const char SQL_REFRESH_ROTATE[] =
    "WITH used AS (UPDATE refresh_tokens t SET used_at = now() FROM sessions s, accounts a "
    "WHERE t.token_digest = $1 AND t.used_at IS NULL AND t.expires_at > now() "
    "AND s.id = t.session_id AND s.revoked_at IS NULL AND s.expires_at > now() "
    "AND a.id = s.account_id AND a.status = 'active' "
    "RETURNING t.session_id, a.id AS account_id, a.email), "
    "ins AS (INSERT INTO refresh_tokens (token_digest, session_id, expires_at) "
    "SELECT $2, session_id, " TTL_MS(
        "$3") " FROM used), "
              "bump AS (UPDATE sessions SET last_used_at = now(), expires_at = " TTL_MS(
                  "$3") " "
                        "FROM used WHERE sessions.id = used.session_id AND sessions.revoked_at IS NULL "
                        "RETURNING sessions.id) "
                        "SELECT u.session_id, u.account_id, u.email FROM used u JOIN bump b ON b.id = "
                        "u.session_id";

/* Reuse: the token exists but was rotated already. */
static const char SQL_REFRESH_REUSE[] =
    "UPDATE sessions s SET revoked_at = now() FROM refresh_tokens t "
    "WHERE t.token_digest = $1 AND t.used_at IS NOT NULL AND s.id = t.session_id AND s.revoked_at IS NULL "
    "RETURNING s.id";

static const char SQL_REFRESH_UNDO[] = "WITH d AS (DELETE FROM refresh_tokens WHERE token_digest = $2) "
                                       "UPDATE refresh_tokens SET used_at = NULL WHERE token_digest = $1";

static const char SQL_SESSION_REVOKE[] =
    "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND account_id = $2::bigint AND revoked_at IS NULL";

static const char SQL_ME[] =
    "SELECT id, email, name, " LDG_SQL_ISO("created_at") " FROM accounts WHERE id = $1::bigint";

static const char SQL_NAME[] =
    "UPDATE accounts SET name = $2, updated_at = now() WHERE id = $1::bigint RETURNING name";

static const char SQL_PASSWORD_LOOKUP[] = "SELECT password_hash FROM accounts WHERE id = $1::bigint";

/* New hash, and every other unrevoked session of the account revoked. Rows: one with a NULL sid
 * when the account was updated, then one per revoked session. */
static const char SQL_PASSWORD_SET[] =
    "WITH a AS (UPDATE accounts SET password_hash = $2, updated_at = now() WHERE id = $1::bigint RETURNING "
    "id), "
    "r AS (UPDATE sessions SET revoked_at = now() WHERE account_id IN (SELECT id FROM a) AND id <> $3 "
    "AND revoked_at IS NULL RETURNING id) "
    "SELECT NULL::text FROM a UNION ALL SELECT id FROM r";

static const char SQL_SESSIONS_LIST[] =
    "SELECT id, device_info, " LDG_SQL_ISO("created_at") ", " LDG_SQL_ISO("last_used_at") ", " LDG_SQL_ISO(
        "expires_at") ", count(*) OVER () FROM sessions "
                      "WHERE account_id = $1::bigint AND revoked_at IS NULL AND expires_at > now() "
                      "ORDER BY created_at DESC, id DESC LIMIT " STR(SESSIONS_LIST_MAX);

static const char SQL_SESSION_OWNED[] =
    "SELECT id FROM sessions WHERE id = $1 AND account_id = $2::bigint AND revoked_at IS NULL "
    "AND expires_at > now()";

static const char SQL_SESSIONS_ACTIVE[] =
    "SELECT id FROM sessions WHERE account_id = $1::bigint AND revoked_at IS NULL AND expires_at > now() "
    "LIMIT " STR(SESSIONS_REVOKE_MAX);

static const char SQL_SESSIONS_REVOKE_SET[] =
    "UPDATE sessions SET revoked_at = now() WHERE account_id = $1::bigint AND revoked_at IS NULL "
    "AND id = ANY ($2::text[])";

/* ---- Redis scripts ------------------------------------------------------------------------------ */

/* KEYS: the e-mail and address counters. Returns {count, pttl} of each. */
/* Reserve a failure before the password is hashed, so parallel guesses cannot all pass the
 * check before any of them is counted. KEYS: the e-mail's and the address's counters; ARGV: the
 * window in ms, then the two limits. Both counters are incremented (a fixed window starting at
 * the first attempt); an attempt over either limit is refused and its reservation taken back.
 * Returns {e-mail count before, its PTTL, address count before, its PTTL}. A successful login
 * gives the reservation back (accounts.c). */
static const char LUA_FAIL_RESERVE[] =
    "local n = {} for i, k in ipairs(KEYS) do n[i] = redis.call('INCR', k) "
    "if n[i] == 1 or redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, ARGV[1]) end end "
    "if n[1] > tonumber(ARGV[2]) or n[2] > tonumber(ARGV[3]) then "
    "for i, k in ipairs(KEYS) do redis.call('DECR', k) end end "
    "return {n[1] - 1, redis.call('PTTL', KEYS[1]), n[2] - 1, redis.call('PTTL', KEYS[2])}";

/* KEYS[1]: the address's registration counter; ARGV: window ms, limit. Returns {count, PTTL};
 * counted before hashing, taken back when over the limit. */
static const char LUA_REGISTER_RESERVE[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "if n > tonumber(ARGV[2]) then redis.call('DECR', KEYS[1]) end "
    "return {n, redis.call('PTTL', KEYS[1])}";

#define REGISTER_KEY_ADDR "register:addr:"
#define MSG_REG_THROTTLED "Too many registrations from this address. Try again later."

/* ---- per-request state -------------------------------------------------------------------------- */

struct acct *ldg__acct_new(struct ldg_req *req)
{
    struct acct *a = ldg_arena_alloc(&req->arena, sizeof *a);
    memset(a, 0, sizeof *a);
    a->req = req;
    a->p = ldg_principal(req);
    return a;
}

void ldg__acct_log_context(const struct ldg_req *req, char *out, size_t cap)
{
    snprintf(out, cap, "role=auth rid=%s", req->request_id);
}

static int64_t access_ttl_s(void)
{
    return ldg__auth.cfg->access_ttl_ms / 1000;
}

static int64_t refresh_ttl_s(void)
{
    return ldg__auth.cfg->refresh_ttl_ms / 1000;
}

static const char *refresh_ttl_ms_text(struct ldg_req *req)
{
    return ldg__auth_itoa(req, refresh_ttl_s() * 1000);
}

void ldg__acct_wipe(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
}

/* The session principal of an account route, or NULL after answering 401. */
/* The session principal, or NULL after answering (one rule for the whole role: ldg__auth_account). */
const struct ldg_principal *ldg__acct_session(struct ldg_req *req)
{
    return ldg__auth_account(req);
}

/* ---- Redis and password-pool steps bound to the request ------------------------------------------ */

static void on_redis_reply(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r;
    struct acct *a = ud;
    struct ldg_req *req = a->req;
    redis_step_fn fn = a->on_redis;
    if (req->conn)
        fn(a, reply);
    ldg_req_unref(req); /* may free the arena holding `a` */
}

/* Run one command; `fn` runs once with the reply (NULL on failure) while the request is alive.
 * Returns 0, or -ENOTCONN/-EAGAIN/-EINVAL without callback. */
int ldg__acct_redis(struct acct *a, redis_step_fn fn, int argc, const char **argv)
{
    if (!a->req->w->redis)
        return -ENOTCONN;
    a->on_redis = fn;
    ldg_req_ref(a->req);
    int rc = ldg_redis_commandargv(a->req->w->redis, on_redis_reply, a, argc, argv, NULL);
    if (rc < 0)
        ldg_req_unref(a->req);
    return rc;
}

static void on_redis_ignored(struct ldg_redis *r, redisReply *reply, void *ud)
{
    (void)r, (void)reply, (void)ud;
}

bool ldg__acct_reply_ok(const redisReply *reply)
{
    return reply && reply->type != REDIS_REPLY_ERROR;
}

/* Warn about Redis at most once a minute per worker. */
void ldg__acct_warn_redis(struct ldg_req *req, const char *what)
{
    static _Thread_local uint64_t last;
    uint64_t now = ldg_worker_now(req->w) + 1;
    if (last && now - last < REDIS_WARN_EVERY_MS)
        return;
    last = now;
    ACCT_LOG(warn, req, "redis unavailable: %s", what);
}

static void on_pw_done(int result, const char *hash, void *ud)
{
    struct acct *a = ud;
    struct ldg_req *req = a->req;
    pw_step_fn fn = a->on_pw;
    if (req->conn)
        fn(a, result, hash);
    ldg_req_unref(req);
}

/* Submit a job to the worker's password pool; codes of ldg_password_hash (no callback on < 0). */
int ldg__acct_pw(struct acct *a, enum pw_op op, const char *pw, const char *encoded, pw_step_fn fn)
{
    struct ldg_auth_worker *aw = ldg__auth_worker(a->req);
    if (!aw->pw)
        return -ECANCELED;
    a->on_pw = fn;
    ldg_req_ref(a->req);
    int rc;
    if (op == PW_HASH)
        rc = ldg_password_hash(aw->pw, pw, on_pw_done, a);
    else if (op == PW_VERIFY)
        rc = ldg_password_verify(aw->pw, pw, encoded, on_pw_done, a);
    else
        rc = ldg_password_dummy_verify(aw->pw, pw, on_pw_done, a);
    if (rc < 0)
        ldg_req_unref(a->req);
    return rc;
}

/* A hashing failure: the pool is full or closing (503, retry) or something is wrong (500). */
void ldg__acct_pw_error(struct acct *a, int rc, const char *failed)
{
    if (rc == -EAGAIN || rc == -ECANCELED) {
        ldg_req_add_header(a->req, "Retry-After", "1");
        ldg_req_error(a->req, 503, MSG_BUSY);
        return;
    }
    ACCT_LOG(error, a->req, "password job failed: code=%d", rc);
    ldg_req_error(a->req, 500, failed);
}

/* ---- request helpers ------------------------------------------------------------------------- */

static void value_error(struct ldg_req *req, const cJSON *body, const char *field, const char *msg)
{
    char full[160];
    snprintf(full, sizeof full, "Value error, %s", msg);
    ldg__auth_422(req, "body", field, "value_error", full, ldg_json_member(body, field));
}

static char *lower_dup(struct ldg_req *req, const char *s)
{
    char *d = ldg_arena_strndup(&req->arena, s, strlen(s));
    for (char *c = d; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return d;
}

char *ldg__acct_dup(struct ldg_req *req, const char *s)
{
    return ldg_arena_strndup(&req->arena, s, strlen(s));
}

/* ---- tokens ------------------------------------------------------------------------------------ */

void ldg__acct_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

/* What refresh_tokens stores: hex HMAC-SHA256(jwt secret, token). */
static void refresh_digest(const char *token, size_t n, char out[LDG_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(ldg_sha256_md(), ldg__auth.secret, (int)ldg__auth.secret_len, (const unsigned char *)token, n,
              md, &mdlen) ||
        mdlen != 32)
        ldg_panic("HMAC-SHA256 failed");
    ldg__acct_hex(md, 32, out);
}

static bool refresh_looks_valid(const char *s, size_t n)
{
    if (n != REFRESH_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    return true;
}

/* A new refresh token (and its digest); a new session id too when `with_sid`. 0 or -EIO. */
int ldg__acct_new_tokens(struct acct *a, bool with_sid)
{
    if (with_sid && ldg_random_token(a->sid, SID_BYTES) < 0)
        return -EIO;
    if (ldg_random_token(a->refresh, REFRESH_BYTES) < 0)
        return -EIO;
    refresh_digest(a->refresh, strlen(a->refresh), a->digest);
    return 0;
}

static void set_cookie(struct ldg_req *req, const char *token, int64_t max_age)
{
    char v[256];
    snprintf(v, sizeof v, COOKIE_NAME "=%s" COOKIE_ATTRS "; Max-Age=%" PRId64 "%s", token, max_age,
             ldg__auth.cookie_secure ? "; Secure" : "");
    ldg_req_add_header(req, "Set-Cookie", v);
}

/* access_token cookie for the event streams (value empty and max_age 0: clear it). */
static void set_stream_cookie(struct ldg_req *req, const char *token, size_t len, int64_t max_age)
{
    char v[1024];
    int n = snprintf(v, sizeof v, STREAM_COOKIE_NAME "=%.*s" STREAM_COOKIE_ATTRS "; Max-Age=%" PRId64 "%s",
                     (int)len, token, max_age, ldg__auth.cookie_secure ? "; Secure" : "");
    if (n > 0 && (size_t)n < sizeof v)
        ldg_req_add_header(req, "Set-Cookie", v);
}

/* Answer with a fresh access token for a->{account_id, email, sid} and a->refresh:
 * register (201, with name and message) or login/refresh (200); sets the refresh cookie. */
static void answer_tokens(struct acct *a, bool reg, const char *failed)
{
    struct ldg_req *req = a->req;
    struct ldg_jwt_claims c;
    memset(&c, 0, sizeof c);
    c.sub = a->account_id;
    c.type = LDG_JWT_ACCESS;
    c.iat = (int64_t)time(NULL);
    c.exp = c.iat + access_ttl_s();
    struct ldg_buf tok;
    ldg_buf_init(&tok);
    if (strlen(a->email) >= sizeof c.email || strlen(a->sid) >= sizeof c.sid) {
        ACCT_LOG(error, req, "cannot sign an access token: account=%" PRId64 " email or sid too long",
                 a->account_id);
        ldg_req_error(req, 500, failed);
        return;
    }
    strcpy(c.email, a->email);
    strcpy(c.sid, a->sid);
    if (ldg_jwt_sign(ldg__auth.secret, ldg__auth.secret_len, &c, &tok) < 0) {
        ACCT_LOG(error, req, "cannot sign an access token: account=%" PRId64, a->account_id);
        ldg_req_error(req, 500, failed);
        ldg_buf_free(&tok);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "access_token");
    ldg_json_strn(&jw, ldg_buf_head(&tok), ldg_buf_size(&tok));
    ldg_json_key(&jw, "refresh_token");
    ldg_json_str(&jw, a->refresh);
    ldg_json_key(&jw, "token_type");
    ldg_json_str(&jw, "bearer");
    ldg_json_key(&jw, "account_id");
    ldg_json_int(&jw, a->account_id);
    ldg_json_key(&jw, "email");
    ldg_json_str(&jw, a->email);
    if (reg) {
        ldg_json_key(&jw, "name");
        ldg_json_str(&jw, a->name);
    }
    ldg_json_key(&jw, "expires_in");
    ldg_json_int(&jw, access_ttl_s());
    if (reg) {
        ldg_json_key(&jw, "message");
        ldg_json_str(&jw, "Account created successfully");
    }
    ldg_json_obj_end(&jw);
    set_cookie(req, a->refresh, refresh_ttl_s());
    set_stream_cookie(req, ldg_buf_head(&tok), ldg_buf_size(&tok), access_ttl_s());
    ldg__auth_respond_buf(req, reg ? 201 : 200, &b);
    ldg_buf_free(&tok);
}

/* SET session:<sid> <account id> EX <refresh ttl>. */
int ldg__acct_session_set(struct acct *a, redis_step_fn fn)
{
    struct ldg_req *req = a->req;
    char *key = ldg_arena_alloc(&req->arena, sizeof LDG_SESSION_PREFIX + strlen(a->sid));
    sprintf(key, LDG_SESSION_PREFIX "%s", a->sid);
    const char *argv[] = {"SET", key, ldg__auth_itoa(req, a->account_id), "EX",
                          ldg__auth_itoa(req, refresh_ttl_s())};
    return ldg__acct_redis(a, fn, 5, argv);
}

/* DEL session:<sid> for every a->sids. */
static int session_keys_del(struct acct *a, redis_step_fn fn)
{
    struct ldg_req *req = a->req;
    const char **argv = ldg_arena_alloc(&req->arena, (a->nsids + 1) * sizeof *argv);
    argv[0] = "DEL";
    for (size_t i = 0; i < a->nsids; i++) {
        char *key = ldg_arena_alloc(&req->arena, sizeof LDG_SESSION_PREFIX + strlen(a->sids[i]));
        sprintf(key, LDG_SESSION_PREFIX "%s", a->sids[i]);
        argv[i + 1] = key;
    }
    int rc = ldg__acct_redis(a, fn, (int)a->nsids + 1, argv);
    /* Then tell every process's open streams of these sessions to end (same connection, so after
     * the DEL; best effort: a stream also ends at its access token's expiry). */
    for (size_t i = 0; rc == 0 && i < a->nsids; i++) {
        const char *pub[] = {"PUBLISH", LDG_SESSION_REVOKED_CHANNEL, a->sids[i]};
        if (ldg_redis_commandargv(req->w->redis, on_redis_ignored, NULL, 3, pub, NULL) < 0)
            break;
    }
    return rc;
}

void ldg__acct_note_client(struct acct *a)
{
    ldg_req_peer_addr(a->req, a->addr, sizeof a->addr);
    a->device = ldg__auth_clean_text(a->req, ldg_req_header(a->req, "User-Agent"), DEVICE_INFO_MAX);
}

/* ---- POST /accounts/register -------------------------------------------------------------------- */

static void on_register_undone(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)res, (void)ud;
    ldg_req_error(req, 503, MSG_REG_TIMEOUT);
}

static void on_register_session_set(struct acct *a, redisReply *reply)
{
    if (ldg__acct_reply_ok(reply)) {
        answer_tokens(a, true, "Registration failed");
        return;
    }
    /* The tokens would be refused by every gateway: take the account back so a retry works. */
    ACCT_LOG(warn, a->req, "register: session store unavailable, account %" PRId64 " removed again",
             a->account_id);
    const char *params[] = {ldg__auth_itoa(a->req, a->account_id)};
    ldg__auth_sql(a->req, "acct_register_undo", SQL_REGISTER_UNDO, 1, params, &ERRS_REGISTER_UNDO,
                  on_register_undone, a);
}

static void on_register_inserted(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    if (PQntuples(res) != 1) {
        ACCT_LOG(error, req, "register: insert returned %d rows", PQntuples(res));
        ldg_req_error(req, 500, "Registration failed");
        return;
    }
    a->account_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    a->email = ldg__acct_dup(req, PQgetvalue(res, 0, 1));
    a->name = ldg__acct_dup(req, PQgetvalue(res, 0, 2));
    if (ldg__acct_session_set(a, on_register_session_set) < 0)
        on_register_session_set(a, NULL);
}

static void on_register_hashed(struct acct *a, int result, const char *hash)
{
    if (result < 0) {
        ldg__acct_pw_error(a, result, "Registration failed");
        return;
    }
    struct ldg_req *req = a->req;
    const char *params[] = {a->email,  hash,
                            a->name,   a->sid,
                            a->device, a->addr[0] ? a->addr : NULL,
                            a->digest, refresh_ttl_ms_text(req)};
    ldg__auth_sql(req, "acct_register", SQL_REGISTER, 8, params, &ERRS_REGISTER, on_register_inserted, a);
}

static void on_register_throttle(struct acct *a, redisReply *reply)
{
    struct ldg_req *req = a->req;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        ldg__acct_warn_redis(req, "registrations are not being limited");
    } else if (reply->element[0]->integer > ldg__auth.cfg->register_max_per_addr) {
        ldg__acct_wipe(a->password);
        long long pttl = reply->element[1]->type == REDIS_REPLY_INTEGER ? reply->element[1]->integer : 0;
        int64_t ms = pttl > 0 ? pttl : ldg__auth.cfg->register_window_ms;
        ldg_req_add_header(req, "Retry-After", ldg__auth_itoa(req, LDG_MAX((ms + 999) / 1000, 1)));
        ldg_req_error(req, 429, MSG_REG_THROTTLED);
        return;
    }
    if (ldg__acct_new_tokens(a, true) < 0) {
        ACCT_LOG(error, req, "register: no randomness for session tokens");
        ldg_req_error(req, 500, "Registration failed");
    } else {
        int rc = ldg__acct_pw(a, PW_HASH, a->password, NULL, on_register_hashed);
        if (rc < 0)
            ldg__acct_pw_error(a, rc, "Registration failed");
    }
    ldg__acct_wipe(a->password);
}

static void register_account(struct ldg_req *req)
{
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    struct acct *a = ldg__acct_new(req);
    const char *email, *pw, *name, *msg;
    if (ldg__auth_str(req, body, "email", true, 0, 255, &email) < 0)
        goto out;
    if ((msg = ldg__auth_email_error(email))) {
        value_error(req, body, "email", msg);
        goto out;
    }
    if (ldg__auth_str(req, body, "password", true, 8, 64, &pw) < 0)
        goto out;
    if ((msg = ldg__auth_password_error(pw))) {
        value_error(req, body, "password", msg);
        goto out;
    }
    if (ldg__auth_str(req, body, "name", true, 1, 255, &name) < 0)
        goto out;
    a->email = lower_dup(req, email);
    a->name = ldg__acct_dup(req, name); /* D3: the submitted name is stored */
    a->password = ldg__acct_dup(req, pw);
    ldg__acct_note_client(a);
    cJSON_Delete(body);
    /* Registrations per address are counted before the hash is spent. */
    char *key = ldg_arena_alloc(&req->arena, sizeof REGISTER_KEY_ADDR + strlen(a->addr));
    sprintf(key, REGISTER_KEY_ADDR "%s", a->addr);
    const char *argv[] = {"EVAL", LUA_REGISTER_RESERVE, "1", key,
                          ldg__auth_itoa(req, ldg__auth.cfg->register_window_ms),
                          ldg__auth_itoa(req, ldg__auth.cfg->register_max_per_addr)};
    if (ldg__acct_redis(a, on_register_throttle, 6, argv) < 0)
        on_register_throttle(a, NULL);
    return;
out:
    ldg__acct_wipe(a->password);
    cJSON_Delete(body);
}

/* ---- POST /accounts/login ----------------------------------------------------------------------- */

static void on_login_session_created(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)req, (void)res;
    answer_tokens(ud, false, "Login failed");
}

void ldg__acct_on_login_session_set(struct acct *a, redisReply *reply)
{
    if (!ldg__acct_reply_ok(reply)) {
        ldg__acct_warn_redis(a->req, "login refused: the session could not be stored");
        ldg_req_error(a->req, 503, MSG_LOGIN_TIMEOUT);
        return;
    }
    struct ldg_req *req = a->req;
    const char *params[] = {a->sid,    ldg__auth_itoa(req, a->account_id),
                            a->device, a->addr[0] ? a->addr : NULL,
                            a->digest, refresh_ttl_ms_text(req)};
    ldg__auth_sql(req, "acct_session_create", SQL_SESSION_CREATE, 6, params, &ERRS_LOGIN,
                  on_login_session_created, a);
}

static void login_failed(struct acct *a)
{
    /* Already counted: the attempt was reserved before hashing. */
    ldg_req_error(a->req, 401, MSG_BAD_LOGIN);
}

static void on_login_verified(struct acct *a, int result, const char *hash)
{
    (void)hash;
    if (result < 0) {
        ldg__acct_pw_error(a, result, "Login failed");
        return;
    }
    if (result == 0 || !a->active || a->account_id <= 0) {
        login_failed(a);
        return;
    }
    struct ldg_req *req = a->req;
    if (req->w->redis) { /* a success clears the e-mail's failures and gives the address's
                          * reservation back (best effort, no reply needed) */
        int rc = ldg_redis_command(req->w->redis, on_redis_ignored, NULL, "DEL %s", a->email_key);
        if (rc == 0 && a->reserved)
            rc = ldg_redis_command(req->w->redis, on_redis_ignored, NULL, "DECR %s", a->addr_key);
        (void)rc;
    }
    if (a->totp) { /* the password was right; the second factor decides (POST /accounts/2fa/login) */
        ldg__auth_totp_challenge(a);
        return;
    }
    if (ldg__acct_new_tokens(a, true) < 0) {
        ACCT_LOG(error, req, "login: no randomness for session tokens");
        ldg_req_error(req, 500, "Login failed");
        return;
    }
    if (ldg__acct_session_set(a, ldg__acct_on_login_session_set) < 0)
        ldg__acct_on_login_session_set(a, NULL);
}

static void on_login_row(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    int rc;
    if (PQntuples(res) == 1) {
        a->account_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        a->email = ldg__acct_dup(req, PQgetvalue(res, 0, 1));
        a->active = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        a->totp = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
        rc = ldg__acct_pw(a, PW_VERIFY, a->password, PQgetvalue(res, 0, 2), on_login_verified);
    } else {
        rc = ldg__acct_pw(a, PW_DUMMY, a->password, NULL,
                          on_login_verified); /* same time as a wrong password */
    }
    ldg__acct_wipe(a->password);
    if (rc < 0)
        ldg__acct_pw_error(a, rc, "Login failed");
}

static void login_lookup(struct acct *a)
{
    const char *params[] = {a->email};
    ldg__auth_sql(a->req, "acct_login_lookup", SQL_LOGIN_LOOKUP, 1, params, &ERRS_LOGIN, on_login_row, a);
}

/* Seconds until a counter over its limit resets (>= 1). */
int64_t ldg__acct_retry_after_s(long long pttl)
{
    int64_t ms = pttl > 0 ? pttl : ldg__auth.cfg->login_fail_window_ms;
    return LDG_MAX((ms + 999) / 1000, 1);
}

static void on_login_throttle(struct acct *a, redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        ldg__acct_warn_redis(a->req, "failed logins are not being limited");
        login_lookup(a);
        return;
    }
    long long v[4];
    for (size_t i = 0; i < 4; i++) {
        const redisReply *e = reply->element[i];
        v[i] = e && e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
    }
    a->reserved = true;
    int64_t wait = 0;
    if (v[0] >= ldg__auth.cfg->login_fail_max_email)
        wait = ldg__acct_retry_after_s(v[1]);
    if (v[2] >= ldg__auth.cfg->login_fail_max_addr)
        wait = LDG_MAX(wait, ldg__acct_retry_after_s(v[3]));
    if (wait > 0) {
        ldg__acct_wipe(a->password);
        ldg_req_add_header(a->req, "Retry-After", ldg__auth_itoa(a->req, wait));
        ldg_req_error(a->req, 429, MSG_THROTTLED);
        return;
    }
    login_lookup(a);
}

static void login_account(struct ldg_req *req)
{
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    struct acct *a = ldg__acct_new(req);
    const char *email, *pw;
    if (ldg__auth_str(req, body, "email", true, 0, 255, &email) < 0 ||
        ldg__auth_str(req, body, "password", true, 8, 64, &pw) < 0) {
        cJSON_Delete(body);
        return;
    }
    a->email = lower_dup(req, email);
    a->password = ldg__acct_dup(req, pw);
    cJSON_Delete(body);
    ldg__acct_note_client(a);

    char digest[LDG_SHA256_HEX_LEN + 1];
    ldg_hex_sha256(a->email, strlen(a->email), digest);
    char *ek = ldg_arena_alloc(&req->arena, sizeof FAIL_KEY_EMAIL + LDG_SHA256_HEX_LEN);
    sprintf(ek, FAIL_KEY_EMAIL "%s", digest);
    char *ak = ldg_arena_alloc(&req->arena, sizeof FAIL_KEY_ADDR + strlen(a->addr));
    sprintf(ak, FAIL_KEY_ADDR "%s", a->addr);
    a->email_key = ek;
    a->addr_key = ak;

    const char *argv[] = {"EVAL",
                          LUA_FAIL_RESERVE,
                          "2",
                          ek,
                          ak,
                          ldg__auth_itoa(req, ldg__auth.cfg->login_fail_window_ms),
                          ldg__auth_itoa(req, ldg__auth.cfg->login_fail_max_email),
                          ldg__auth_itoa(req, ldg__auth.cfg->login_fail_max_addr)};
    if (ldg__acct_redis(a, on_login_throttle, 8, argv) < 0)
        on_login_throttle(a, NULL);
}

/* ---- POST /accounts/refresh --------------------------------------------------------------------- */

static void on_refresh_undone(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)res, (void)ud;
    ldg_req_error(req, 503, MSG_TIMEOUT);
}

static void on_refresh_session_set(struct acct *a, redisReply *reply)
{
    if (ldg__acct_reply_ok(reply)) {
        answer_tokens(a, false, "Token refresh failed");
        return;
    }
    ldg__acct_warn_redis(a->req, "refresh refused: the session could not be renewed");
    const char *params[] = {a->old_digest, a->digest};
    ldg__auth_sql(a->req, "acct_refresh_undo", SQL_REFRESH_UNDO, 2, params, &ERRS_REFRESH_UNDO,
                  on_refresh_undone, a);
}

static void on_reuse_key_deleted(struct acct *a, redisReply *reply)
{
    if (!ldg__acct_reply_ok(reply))
        ACCT_LOG(warn, a->req, "refresh token reuse: session %s revoked, but its key could not be deleted",
                 a->sid);
    ldg_req_error(a->req, 401, MSG_BAD_REFRESH);
}

static void on_refresh_reuse(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    if (PQntuples(res) < 1) {
        ldg_req_error(req, 401, MSG_BAD_REFRESH);
        return;
    }
    snprintf(a->sid, sizeof a->sid, "%s", PQgetvalue(res, 0, 0));
    ACCT_LOG(warn, req, "refresh token reuse detected: session %s revoked", a->sid);
    a->sids = ldg_arena_alloc(&req->arena, sizeof *a->sids);
    a->sids[0] = a->sid;
    a->nsids = 1;
    if (session_keys_del(a, on_reuse_key_deleted) < 0)
        on_reuse_key_deleted(a, NULL);
}

static void on_refresh_rotated(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    if (PQntuples(res) != 1) {
        const char *params[] = {a->old_digest};
        ldg__auth_sql(req, "acct_refresh_reuse", SQL_REFRESH_REUSE, 1, params, &ERRS_REFRESH,
                      on_refresh_reuse, a);
        return;
    }
    snprintf(a->sid, sizeof a->sid, "%s", PQgetvalue(res, 0, 0));
    a->account_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    a->email = ldg__acct_dup(req, PQgetvalue(res, 0, 2));
    if (ldg__acct_session_set(a, on_refresh_session_set) < 0)
        on_refresh_session_set(a, NULL);
}

static bool only_space(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
    return true;
}

static void refresh_session(struct ldg_req *req)
{
    struct acct *a = ldg__acct_new(req);
    struct ldg_str tok = ldg_str_make(NULL, 0);
    if (!only_space(ldg_buf_head(&req->body), ldg_buf_size(&req->body))) {
        cJSON *body = ldg__auth_body(req);
        if (!body)
            return;
        const cJSON *v = ldg_json_member(body, "refresh_token");
        if (v && !cJSON_IsNull(v) && !cJSON_IsString(v)) {
            ldg__auth_422(req, "body", "refresh_token", "string_type", "Input should be a valid string", v);
            cJSON_Delete(body);
            return;
        }
        if (v && cJSON_IsString(v)) {
            const char *s = v->valuestring;
            tok = ldg_str_make(ldg_arena_strndup(&req->arena, s, strlen(s)), strlen(s));
        }
        cJSON_Delete(body);
    }
    if (!tok.n) /* no token in the body: the httpOnly cookie */
        tok = ldg_req_cookie(req, COOKIE_NAME);
    if (!refresh_looks_valid(tok.p, tok.n)) {
        ldg_req_error(req, 401, MSG_BAD_REFRESH);
        return;
    }
    refresh_digest(tok.p, tok.n, a->old_digest);
    if (ldg__acct_new_tokens(a, false) < 0) {
        ACCT_LOG(error, req, "refresh: no randomness for a refresh token");
        ldg_req_error(req, 500, "Token refresh failed");
        return;
    }
    const char *params[] = {a->old_digest, a->digest, refresh_ttl_ms_text(req)};
    ldg__auth_sql(req, "acct_refresh_rotate", SQL_REFRESH_ROTATE, 3, params, &ERRS_REFRESH,
                  on_refresh_rotated, a);
}

/* ---- POST /accounts/logout ---------------------------------------------------------------------- */

static void on_logout_revoked(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)res, (void)ud;
    set_cookie(req, "", 0);
    set_stream_cookie(req, "", 0, 0);
    ldg_req_respond(req, 204, NULL, NULL, 0);
}

static void on_logout_key_deleted(struct acct *a, redisReply *reply)
{
    if (!ldg__acct_reply_ok(reply)) {
        ldg__acct_warn_redis(a->req, "logout refused: the session key could not be deleted");
        ldg_req_error(a->req, 503, MSG_TIMEOUT);
        return;
    }
    const char *params[] = {a->p->sid, ldg__auth_itoa(a->req, a->p->account_id)};
    ldg__auth_sql(a->req, "acct_session_revoke", SQL_SESSION_REVOKE, 2, params, &ERRS_LOGOUT,
                  on_logout_revoked, a);
}

static void logout_account(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    struct acct *a = ldg__acct_new(req);
    a->sids = ldg_arena_alloc(&req->arena, sizeof *a->sids);
    a->sids[0] = p->sid;
    a->nsids = 1;
    if (session_keys_del(a, on_logout_key_deleted) < 0)
        on_logout_key_deleted(a, NULL);
}

/* ---- GET /accounts/me, PATCH /accounts/me/name -------------------------------------------------- */

static void on_me_row(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)ud;
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 404, MSG_NO_ACCOUNT);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "account_id");
    ldg_json_int(&jw, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    ldg_json_key(&jw, "email");
    ldg_json_str(&jw, PQgetvalue(res, 0, 1));
    ldg_json_key(&jw, "name");
    ldg_json_str(&jw, PQgetvalue(res, 0, 2));
    ldg_json_key(&jw, "created_at");
    ldg_json_str(&jw, PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));
    ldg_json_obj_end(&jw);
    ldg__auth_respond_buf(req, 200, &b);
}

static void get_me(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_me", SQL_ME, 1, params, &ERRS_ME, on_me_row, NULL);
}

static void on_name_updated(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)ud;
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 404, MSG_NO_ACCOUNT);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "name");
    ldg_json_str(&jw, PQgetvalue(res, 0, 0));
    ldg_json_key(&jw, "message");
    ldg_json_str(&jw, "Account name updated successfully");
    ldg_json_obj_end(&jw);
    ldg__auth_respond_buf(req, 200, &b);
}

static void update_name(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    const char *name;
    if (ldg__auth_str(req, body, "name", true, 1, 255, &name) < 0) {
        cJSON_Delete(body);
        return;
    }
    char *stripped = ldg__auth_strip(req, name);
    cJSON_Delete(body);
    if (!*stripped) {
        ldg_req_error(req, 400, "Name cannot be empty");
        return;
    }
    const char *params[] = {ldg__auth_itoa(req, p->account_id), stripped};
    ldg__auth_sql(req, "acct_name", SQL_NAME, 2, params, &ERRS_NAME, on_name_updated, NULL);
}

/* ---- POST /accounts/me/password ----------------------------------------------------------------- */

static void answer_password_changed(struct ldg_req *req)
{
    static const char body[] = "{\"message\":\"Password changed successfully\"}";
    ldg_req_json(req, 200, body, sizeof body - 1);
}

static void on_password_keys_deleted(struct acct *a, redisReply *reply)
{
    if (!ldg__acct_reply_ok(
            reply)) /* their refresh tokens are dead already; access tokens lapse within access_ttl */
        ACCT_LOG(warn, a->req, "password change: %zu revoked session key(s) could not be deleted", a->nsids);
    answer_password_changed(a->req);
}

static void on_password_set(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    int n = PQntuples(res);
    bool updated = false;
    a->sids = ldg_arena_alloc(&req->arena, (size_t)LDG_MAX(n, 1) * sizeof *a->sids);
    a->nsids = 0;
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 0))
            updated = true;
        else if (a->nsids < SESSIONS_REVOKE_MAX)
            a->sids[a->nsids++] = ldg__acct_dup(req, PQgetvalue(res, i, 0));
    }
    if (!updated) {
        ldg_req_error(req, 404, MSG_NO_ACCOUNT);
        return;
    }
    if (!a->nsids) {
        answer_password_changed(req);
        return;
    }
    if (session_keys_del(a, on_password_keys_deleted) < 0)
        on_password_keys_deleted(a, NULL);
}

static void on_password_hashed(struct acct *a, int result, const char *hash)
{
    if (result < 0) {
        ldg__acct_pw_error(a, result, "Failed to change password");
        return;
    }
    struct ldg_req *req = a->req;
    const char *params[] = {ldg__auth_itoa(req, a->p->account_id), hash, a->p->sid};
    ldg__auth_sql(req, "acct_password_set", SQL_PASSWORD_SET, 3, params, &ERRS_PASSWORD, on_password_set, a);
}

static void on_password_verified(struct acct *a, int result, const char *hash)
{
    (void)hash;
    if (result < 0) {
        ldg__acct_wipe(a->new_password);
        ldg__acct_pw_error(a, result, "Failed to change password");
        return;
    }
    if (result == 0) {
        ldg__acct_wipe(a->new_password);
        ldg_req_error(a->req, 400, "Current password is incorrect");
        return;
    }
    int rc = ldg__acct_pw(a, PW_HASH, a->new_password, NULL, on_password_hashed);
    ldg__acct_wipe(a->new_password);
    if (rc < 0)
        ldg__acct_pw_error(a, rc, "Failed to change password");
}

static void on_password_row(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    if (PQntuples(res) != 1) {
        ldg__acct_wipe(a->password);
        ldg__acct_wipe(a->new_password);
        ldg_req_error(req, 404, MSG_NO_ACCOUNT);
        return;
    }
    int rc = ldg__acct_pw(a, PW_VERIFY, a->password, PQgetvalue(res, 0, 0), on_password_verified);
    ldg__acct_wipe(a->password);
    if (rc < 0) {
        ldg__acct_wipe(a->new_password);
        ldg__acct_pw_error(a, rc, "Failed to change password");
    }
}

static void change_password(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    const char *old_pw, *new_pw, *msg;
    if (ldg__auth_str(req, body, "old_password", true, 8, 64, &old_pw) < 0 ||
        ldg__auth_str(req, body, "new_password", true, 8, 64, &new_pw) < 0) {
        cJSON_Delete(body);
        return;
    }
    if ((msg = ldg__auth_password_error(new_pw))) {
        value_error(req, body, "new_password", msg);
        cJSON_Delete(body);
        return;
    }
    struct acct *a = ldg__acct_new(req);
    a->password = ldg__acct_dup(req, old_pw);
    a->new_password = ldg__acct_dup(req, new_pw);
    cJSON_Delete(body);
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_password_lookup", SQL_PASSWORD_LOOKUP, 1, params, &ERRS_PASSWORD,
                  on_password_row, a);
}

/* ---- sessions ----------------------------------------------------------------------------------- */

struct sessions_list {
    const PGresult *res;
    const struct ldg_principal *p;
};

static int64_t write_sessions(struct ldg_json_writer *jw, void *ud)
{
    const struct sessions_list *sl = ud;
    const PGresult *res = sl->res;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        ldg_json_obj_begin(jw);
        ldg_json_key(jw, "id");
        ldg_json_str(jw, PQgetvalue(res, i, 0));
        static const char *const cols[] = {"device_info", "created_at", "last_used_at", "expires_at"};
        for (int c = 0; c < 4; c++) {
            ldg_json_key(jw, cols[c]);
            ldg_json_str(jw, PQgetisnull(res, i, c + 1) ? NULL : PQgetvalue(res, i, c + 1));
        }
        ldg_json_key(jw, "is_current");
        ldg_json_bool(jw, strcmp(PQgetvalue(res, i, 0), sl->p->sid) == 0);
        ldg_json_obj_end(jw);
    }
    return n ? strtoll(PQgetvalue(res, 0, 5), NULL, 10) : 0;
}

static void on_sessions_rows(struct ldg_req *req, PGresult *res, void *ud)
{
    struct sessions_list sl = {res, ud};
    ldg__auth_respond_list(req, "sessions", write_sessions, &sl);
}

static void list_sessions(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_sessions_list", SQL_SESSIONS_LIST, 1, params, &ERRS_SESSIONS, on_sessions_rows,
                  (void *)p);
}

static void on_session_revoked(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)res, (void)ud;
    static const char body[] = "{\"success\":true,\"message\":\"Session revoked\"}";
    ldg_req_json(req, 200, body, sizeof body - 1);
}

static void on_session_key_deleted(struct acct *a, redisReply *reply)
{
    if (!ldg__acct_reply_ok(reply)) {
        ldg__acct_warn_redis(a->req, "session revocation refused: the session key could not be deleted");
        ldg_req_error(a->req, 503, MSG_TIMEOUT);
        return;
    }
    const char *params[] = {a->sids[0], ldg__auth_itoa(a->req, a->p->account_id)};
    ldg__auth_sql(a->req, "acct_session_revoke", SQL_SESSION_REVOKE, 2, params, &ERRS_REVOKE,
                  on_session_revoked, a);
}

static void on_session_owned(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 404, MSG_NO_SESSION);
        return;
    }
    if (session_keys_del(a, on_session_key_deleted) < 0)
        on_session_key_deleted(a, NULL);
}

static void revoke_session(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    struct ldg_str id = ldg_req_param(req, "session_id");
    if (!id.n || id.n > LDG_JWT_ID_MAX || memchr(id.p, 0, id.n)) {
        ldg_req_error(req, 404, MSG_NO_SESSION);
        return;
    }
    size_t cnt;
    if (ldg_utf8_count(id.p, id.n, &cnt) < 0) { /* PostgreSQL would refuse the parameter */
        ldg_req_error(req, 404, MSG_NO_SESSION);
        return;
    }
    struct acct *a = ldg__acct_new(req);
    a->sids = ldg_arena_alloc(&req->arena, sizeof *a->sids);
    a->sids[0] = ldg_arena_strndup(&req->arena, id.p, id.n);
    a->nsids = 1;
    const char *params[] = {a->sids[0], ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_session_owned", SQL_SESSION_OWNED, 2, params, &ERRS_REVOKE, on_session_owned, a);
}

static void on_all_revoked(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)ud;
    char body[80];
    int n = snprintf(body, sizeof body, "{\"success\":true,\"revoked\":%s}",
                     PQcmdTuples(res)[0] ? PQcmdTuples(res) : "0");
    ldg_req_json(req, 200, body, (size_t)n);
}

static void on_all_keys_deleted(struct acct *a, redisReply *reply)
{
    struct ldg_req *req = a->req;
    if (!ldg__acct_reply_ok(reply)) {
        ldg__acct_warn_redis(req, "session revocation refused: the session keys could not be deleted");
        ldg_req_error(req, 503, MSG_TIMEOUT);
        return;
    }
    /* A PostgreSQL array literal of the ids (base64url: no character needs escaping). */
    struct ldg_buf arr;
    ldg_buf_init(&arr);
    ldg_buf_put(&arr, "{", 1);
    for (size_t i = 0; i < a->nsids; i++)
        ldg_buf_printf(&arr, "%s\"%s\"", i ? "," : "", a->sids[i]);
    ldg_buf_put(&arr, "}", 1);
    const char *params[] = {ldg__auth_itoa(req, a->p->account_id),
                            ldg_arena_strndup(&req->arena, ldg_buf_head(&arr), ldg_buf_size(&arr))};
    ldg_buf_free(&arr);
    ldg__auth_sql(req, "acct_sessions_revoke_set", SQL_SESSIONS_REVOKE_SET, 2, params, &ERRS_REVOKE_ALL,
                  on_all_revoked, a);
}

static void on_all_active(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    int n = PQntuples(res);
    if (n == 0) {
        static const char body[] = "{\"success\":true,\"revoked\":0}";
        ldg_req_json(req, 200, body, sizeof body - 1);
        return;
    }
    a->sids = ldg_arena_alloc(&req->arena, (size_t)n * sizeof *a->sids);
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(res, i, 0);
        bool safe = *id != 0;
        for (const char *c = id; *c; c++) /* only ids this file made are expected */
            safe &= isalnum((unsigned char)*c) || *c == '-' || *c == '_';
        if (safe)
            a->sids[a->nsids++] = ldg__acct_dup(req, id);
    }
    if (a->nsids == 0) {
        static const char body[] = "{\"success\":true,\"revoked\":0}";
        ldg_req_json(req, 200, body, sizeof body - 1);
        return;
    }
    if (session_keys_del(a, on_all_keys_deleted) < 0)
        on_all_keys_deleted(a, NULL);
}

static void revoke_all_sessions(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    struct acct *a = ldg__acct_new(req);
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_sessions_active", SQL_SESSIONS_ACTIVE, 1, params, &ERRS_REVOKE_ALL,
                  on_all_active, a);
}

/* ---- GET /accounts/stats ------------------------------------------------------------------------ */

static void get_stats(struct ldg_req *req)
{
    static const char body[] = "{\"circuit_breakers\":{}}";
    ldg_req_json(req, 200, body, sizeof body - 1);
}

void ldg__auth_accounts_routes(struct ldg_router *r)
{
    ldg__auth_textrules_init();
    const unsigned pub = LDG_ROUTE_PUBLIC, acc = LDG_ROUTE_ACCOUNT;
    ldg__auth_route(r, "POST", "/api/v1/accounts/register", register_account, pub, ACCT_MAX_BODY);
    ldg__auth_route(r, "POST", "/api/v1/accounts/login", login_account, pub, ACCT_MAX_BODY);
    ldg__auth_route(r, "POST", "/api/v1/accounts/refresh", refresh_session, pub, ACCT_MAX_BODY);
    ldg__auth_route(r, "POST", "/api/v1/accounts/logout", logout_account, acc, ACCT_MAX_BODY);
    ldg__auth_route(r, "GET", "/api/v1/accounts/me", get_me, acc, ACCT_MAX_BODY);
    ldg__auth_route(r, "PATCH", "/api/v1/accounts/me/name", update_name, acc, ACCT_MAX_BODY);
    ldg__auth_route(r, "POST", "/api/v1/accounts/me/password", change_password, acc, ACCT_MAX_BODY);
    ldg__auth_route(r, "GET", "/api/v1/accounts/sessions", list_sessions, acc, ACCT_MAX_BODY);
    ldg__auth_route(r, "POST", "/api/v1/accounts/sessions/{session_id}/revoke", revoke_session, acc,
                    ACCT_MAX_BODY);
    ldg__auth_route(r, "POST", "/api/v1/accounts/sessions/revoke-all", revoke_all_sessions, acc,
                    ACCT_MAX_BODY);
    ldg__auth_route(r, "GET", "/api/v1/accounts/stats", get_stats, acc, ACCT_MAX_BODY);
    ldg__auth_twofactor_routes(r);
}
