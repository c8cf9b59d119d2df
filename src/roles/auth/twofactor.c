/*
 * twofactor.c: two-factor sign-in with TOTP (RFC 6238) for dashboard accounts (docs/auth.md
 * "Two-factor sign-in", docs/api.md "Two-factor sign-in").
 *
 *   POST /api/v1/accounts/2fa/setup     a new secret (sealed at rest), its otpauth:// URI
 *   POST /api/v1/accounts/2fa/verify    a code of it: enabled, ten backup codes (stored as digests)
 *   GET  /api/v1/accounts/2fa/status
 *   POST /api/v1/accounts/2fa/disable   needs the password
 *   POST /api/v1/accounts/2fa/login     (public) the login token and a code or backup code
 *
 * Login (accounts.c) calls ldg__auth_totp_challenge once the password is right: a random token
 * goes to Redis (totp_session:<sha256>, the account and a failure count, totp_session_ttl_ms).
 * The second step reads it, checks the code (steps now-1..now+1, each step once through
 * accounts.totp_last_step), deletes the token (only the request that deleted it continues) and
 * opens the session as login does. Wrong codes count against the token (dropped after
 * totp_max_attempts) and the account (429 after totp_fail_max within login_fail_window_ms).
 *
 * Threading: the worker's loop thread, like every auth handler.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/seal.h"
#include "auth/totp.h"
#include "core/json.h"
#include "core/worker.h"
#include "roles/auth/accounts_int.h"

#define TOTP_SKEW 1
#define BACKUP_CODES 10
#define BACKUP_LEN 10 /* characters, shown as xxxxx-xxxxx */
#define TOTP_TOKEN_BYTES 32
#define TOTP_SESSION_KEY "totp_session:"
#define TOTP_FAIL_KEY "totp_fail:"
#define MSG_TOTP_BAD_TOKEN "Invalid or expired two-factor session"
#define MSG_TOTP_BAD_CODE "Invalid two-factor code"
#define MSG_TOTP_THROTTLED "Too many failed two-factor attempts. Try again later."
#define MSG_TOTP_ENABLED "Two-factor authentication is already enabled"
#define MSG_TOTP_NOT_ENABLED "Two-factor authentication is not enabled"

static const struct ldg_auth_errs ERRS_TOTP = {MSG_TIMEOUT, "Two-factor operation failed", NULL};
static const struct ldg_auth_errs ERRS_TOTP_LOGIN = {MSG_LOGIN_TIMEOUT, "Login failed", NULL};

static const char SQL_TOTP_SETUP[] =
    "UPDATE accounts SET totp_secret = $2, updated_at = now() WHERE id = $1::bigint AND NOT totp_enabled "
    "RETURNING email";
static const char SQL_TOTP_STATE[] =
    "SELECT totp_secret, totp_enabled, email, coalesce(status = 'active', false), password_hash, "
    "(SELECT count(*) FROM totp_backup_codes c WHERE c.account_id = a.id AND c.used_at IS NULL) "
    "FROM accounts a WHERE id = $1::bigint";
/* $1 account, $2 the sealed secret verified, $3 the step accepted, $4 backup code digests */
static const char SQL_TOTP_ENABLE[] =
    "WITH a AS (UPDATE accounts SET totp_enabled = true, totp_last_step = $3::bigint, updated_at = now() "
    "WHERE id = $1::bigint AND NOT totp_enabled AND totp_secret = $2 RETURNING id), "
    "d AS (DELETE FROM totp_backup_codes WHERE account_id IN (SELECT id FROM a)), "
    "i AS (INSERT INTO totp_backup_codes (account_id, code_digest) SELECT a.id, c FROM a, "
    "unnest($4::text[]) AS c) "
    "SELECT id FROM a";
static const char SQL_TOTP_DISABLE[] =
    "WITH a AS (UPDATE accounts SET totp_enabled = false, totp_secret = NULL, totp_last_step = NULL, "
    "updated_at = now() WHERE id = $1::bigint RETURNING id), "
    "d AS (DELETE FROM totp_backup_codes WHERE account_id IN (SELECT id FROM a)) SELECT id FROM a";
/* Each step once: only a step after the last accepted one moves it. */
static const char SQL_TOTP_USE_STEP[] =
    "UPDATE accounts SET totp_last_step = $2::bigint WHERE id = $1::bigint AND totp_enabled "
    "AND (totp_last_step IS NULL OR totp_last_step < $2::bigint) RETURNING id";
static const char SQL_TOTP_USE_BACKUP[] =
    "UPDATE totp_backup_codes SET used_at = now() WHERE account_id = $1::bigint AND code_digest = $2 "
    "AND used_at IS NULL RETURNING account_id";

/* KEYS[1] the token's hash; ARGV: account id, ttl ms. */
static const char LUA_TOTP_OPEN[] =
    "redis.call('HSET', KEYS[1], 'account', ARGV[1]) redis.call('HSET', KEYS[1], 'fails', 0) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1";
/* KEYS[1] the token's hash; ARGV[1] the account failure key prefix. {account or false, failures}. */
static const char LUA_TOTP_PEEK[] =
    "local a = redis.call('HGET', KEYS[1], 'account') if not a then return {false, 0} end "
    "return {a, tonumber(redis.call('GET', ARGV[1] .. a) or '0')}";
/* KEYS: the token's hash, the account's failure counter; ARGV: max per token, window ms. */
static const char LUA_TOTP_FAIL[] =
    "local n = redis.call('HINCRBY', KEYS[1], 'fails', 1) "
    "if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end "
    "local m = redis.call('INCR', KEYS[2]) "
    "if m == 1 or redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end "
    "return {n, m}";

/* Per-request state of the 2FA handlers (beside struct acct, which carries the login parts). */
struct tfa {
    struct acct *a;
    char code[32]; /* normalised: 6 digits, or a backup code without '-' */
    char token_key[sizeof TOTP_SESSION_KEY + LDG_SHA256_HEX_LEN];
    char fail_key[sizeof TOTP_FAIL_KEY + 24];
    char sealed[LDG_SEAL_TEXT_MAX];
    uint64_t step;
    char backup[BACKUP_CODES][BACKUP_LEN + 2];
};

static void totp_key_of(const char *token, char out[sizeof TOTP_SESSION_KEY + LDG_SHA256_HEX_LEN])
{
    char hex[LDG_SHA256_HEX_LEN + 1];
    ldg_hex_sha256(token, strlen(token), hex);
    snprintf(out, sizeof TOTP_SESSION_KEY + LDG_SHA256_HEX_LEN, TOTP_SESSION_KEY "%s", hex);
}

static void backup_digest(const char *code, char out[LDG_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(ldg_sha256_md(), ldg__auth.totp_key, sizeof ldg__auth.totp_key, (const unsigned char *)code,
              strlen(code), md, &mdlen) ||
        mdlen != 32)
        ldg_panic("HMAC-SHA256 failed");
    ldg__acct_hex(md, 32, out);
}

/* Open a sealed secret of account `id`; the byte count or -EINVAL. */
static int totp_open(struct ldg_req *req, int64_t id, const char *sealed, unsigned char *out, size_t cap)
{
    return ldg_seal_open(ldg__auth.totp_key, sealed, ldg__auth_itoa(req, id), out, cap);
}

static const char *totp_now_step_text(struct ldg_req *req, uint64_t step)
{
    return ldg__auth_printf(req, "%" PRIu64, step);
}

/* The code member of a body, normalised into t->code: 6 digits stay, a backup code loses '-' and
 * spaces and is lower-cased. false after answering 422/400. */
static bool totp_read_code(struct ldg_req *req, const cJSON *body, struct tfa *t, bool backup_ok)
{
    const char *code;
    if (ldg__auth_str(req, body, "code", true, 1, 32, &code) < 0)
        return false;
    size_t n = 0;
    for (const char *c = code; *c && n < sizeof t->code - 1; c++) {
        if (*c == '-' || *c == ' ')
            continue;
        t->code[n++] = (char)tolower((unsigned char)*c);
    }
    t->code[n] = 0;
    bool digits = n == 6;
    for (size_t i = 0; digits && i < n; i++)
        digits = isdigit((unsigned char)t->code[i]);
    if (!digits && !(backup_ok && n == BACKUP_LEN)) {
        ldg_req_error(req, 400, MSG_TOTP_BAD_CODE);
        return false;
    }
    return true;
}

/* POST /accounts/2fa/setup */

static void url_escape(struct ldg_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            ldg_buf_put(b, s, 1);
        else
            ldg_buf_printf(b, "%%%02X", c);
    }
}

static void on_totp_setup(struct ldg_req *req, PGresult *res, void *ud)
{
    const char *b32 = ud;
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 400, MSG_TOTP_ENABLED);
        return;
    }
    const char *issuer =
        ldg__auth.cfg->totp_issuer && *ldg__auth.cfg->totp_issuer ? ldg__auth.cfg->totp_issuer : "Ledger";
    struct ldg_buf uri;
    ldg_buf_init(&uri);
    ldg_buf_printf(&uri, "otpauth://totp/");
    url_escape(&uri, issuer);
    ldg_buf_put(&uri, ":", 1);
    url_escape(&uri, PQgetvalue(res, 0, 0));
    ldg_buf_printf(&uri, "?secret=%s&issuer=", b32);
    url_escape(&uri, issuer);
    ldg_buf_printf(&uri, "&algorithm=SHA1&digits=6&period=%d", LDG_TOTP_STEP_S);
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "secret");
    ldg_json_str(&jw, b32);
    ldg_json_key(&jw, "provisioning_uri");
    ldg_json_strn(&jw, ldg_buf_head(&uri), ldg_buf_size(&uri));
    ldg_json_obj_end(&jw);
    ldg_buf_free(&uri);
    ldg__auth_respond_buf(req, 200, &b);
}

static void totp_setup(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    unsigned char raw[LDG_TOTP_SECRET_BYTES];
    char *b32 = ldg_arena_alloc(&req->arena, LDG_BASE32_LEN(sizeof raw) + 1);
    char *sealed = ldg_arena_alloc(&req->arena, LDG_SEAL_TEXT_MAX);
    if (RAND_bytes(raw, sizeof raw) != 1 ||
        ldg_seal(ldg__auth.totp_key, raw, sizeof raw, ldg__auth_itoa(req, p->account_id), sealed,
                 LDG_SEAL_TEXT_MAX) < 0) {
        OPENSSL_cleanse(raw, sizeof raw);
        ACCT_LOG(error, req, "2fa setup: cannot make or seal a secret");
        ldg_req_error(req, 500, "Two-factor operation failed");
        return;
    }
    ldg_base32_encode(raw, sizeof raw, b32);
    OPENSSL_cleanse(raw, sizeof raw);
    const char *params[] = {ldg__auth_itoa(req, p->account_id), sealed};
    ldg__auth_sql(req, "acct_totp_setup", SQL_TOTP_SETUP, 2, params, &ERRS_TOTP, on_totp_setup, b32);
}

/* POST /accounts/2fa/verify */

static void on_totp_enabled(struct ldg_req *req, PGresult *res, void *ud)
{
    struct tfa *t = ud;
    if (PQntuples(res) != 1) { /* enabled or set up again meanwhile */
        ldg_req_error(req, 400, MSG_TOTP_BAD_CODE);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "success");
    ldg_json_bool(&jw, true);
    ldg_json_key(&jw, "backup_codes");
    ldg_json_arr_begin(&jw);
    for (int i = 0; i < BACKUP_CODES; i++)
        ldg_json_str(&jw, t->backup[i]);
    ldg_json_arr_end(&jw);
    ldg_json_key(&jw, "message");
    ldg_json_str(&jw, "Two-factor authentication enabled");
    ldg_json_obj_end(&jw);
    ldg__auth_respond_buf(req, 200, &b);
}

static void on_totp_verify_state(struct ldg_req *req, PGresult *res, void *ud)
{
    struct tfa *t = ud;
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 404, MSG_NO_ACCOUNT);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        ldg_req_error(req, 400, MSG_TOTP_ENABLED);
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        ldg_req_error(req, 400, "Two-factor setup has not been started");
        return;
    }
    int64_t id = t->a->p->account_id;
    unsigned char key[64];
    int n = totp_open(req, id, PQgetvalue(res, 0, 0), key, sizeof key);
    if (n < 0) {
        ACCT_LOG(error, req, "2fa verify: account=%" PRId64 " secret does not open (wrong totp key?)", id);
        ldg_req_error(req, 500, "Two-factor operation failed");
        return;
    }
    bool ok = ldg_totp_check(key, (size_t)n, t->code, ldg_totp_step(time(NULL)), TOTP_SKEW, &t->step);
    OPENSSL_cleanse(key, sizeof key);
    if (!ok) {
        ldg_req_error(req, 400, MSG_TOTP_BAD_CODE);
        return;
    }
    /* The backup codes: shown once, stored as digests. */
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
    struct ldg_buf arr;
    ldg_buf_init(&arr);
    ldg_buf_put(&arr, "{", 1);
    for (int i = 0; i < BACKUP_CODES; i++) {
        unsigned char rnd[BACKUP_LEN];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            ldg_buf_free(&arr);
            ldg_req_error(req, 500, "Two-factor operation failed");
            return;
        }
        char plain[BACKUP_LEN + 1];
        for (int j = 0; j < BACKUP_LEN; j++)
            plain[j] = alphabet[rnd[j] % (sizeof alphabet - 1)];
        plain[BACKUP_LEN] = 0;
        snprintf(t->backup[i], sizeof t->backup[i], "%.5s-%.5s", plain, plain + 5);
        char digest[LDG_SHA256_HEX_LEN + 1];
        backup_digest(plain, digest);
        ldg_buf_printf(&arr, "%s\"%s\"", i ? "," : "", digest);
    }
    ldg_buf_put(&arr, "}", 1);
    const char *params[] = {ldg__auth_itoa(req, id), ldg__acct_dup(req, PQgetvalue(res, 0, 0)),
                            totp_now_step_text(req, t->step),
                            ldg_arena_strndup(&req->arena, ldg_buf_head(&arr), ldg_buf_size(&arr))};
    ldg_buf_free(&arr);
    ldg__auth_sql(req, "acct_totp_enable", SQL_TOTP_ENABLE, 4, params, &ERRS_TOTP, on_totp_enabled, t);
}

static struct tfa *tfa_new(struct ldg_req *req)
{
    struct tfa *t = ldg_arena_alloc(&req->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->a = ldg__acct_new(req);
    return t;
}

static void totp_verify(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    struct tfa *t = tfa_new(req);
    bool ok = totp_read_code(req, body, t, false);
    cJSON_Delete(body);
    if (!ok)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_totp_state", SQL_TOTP_STATE, 1, params, &ERRS_TOTP, on_totp_verify_state, t);
}

/* GET /accounts/2fa/status */

static void on_totp_status(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)ud;
    if (PQntuples(res) != 1) {
        ldg_req_error(req, 404, MSG_NO_ACCOUNT);
        return;
    }
    bool on = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    const char *body = ldg__auth_printf(req, "{\"enabled\":%s,\"backup_codes_remaining\":%s}",
                                        on ? "true" : "false", on ? PQgetvalue(res, 0, 5) : "0");
    ldg_req_json(req, 200, body, strlen(body));
}

static void totp_status(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_totp_state", SQL_TOTP_STATE, 1, params, &ERRS_TOTP, on_totp_status, NULL);
}

/* POST /accounts/2fa/disable */

static void on_totp_disabled(struct ldg_req *req, PGresult *res, void *ud)
{
    (void)res, (void)ud;
    ldg__auth_respond_success(req, "Two-factor authentication disabled");
}

static void on_totp_disable_verified(struct acct *a, int result, const char *hash)
{
    (void)hash;
    if (result < 0) {
        ldg__acct_pw_error(a, result, "Two-factor operation failed");
        return;
    }
    if (result == 0) {
        ldg_req_error(a->req, 400, "Invalid password");
        return;
    }
    const char *params[] = {ldg__auth_itoa(a->req, a->p->account_id)};
    ldg__auth_sql(a->req, "acct_totp_disable", SQL_TOTP_DISABLE, 1, params, &ERRS_TOTP, on_totp_disabled, a);
}

static void on_totp_disable_state(struct ldg_req *req, PGresult *res, void *ud)
{
    struct acct *a = ud;
    if (PQntuples(res) != 1) {
        ldg__acct_wipe(a->password);
        ldg_req_error(req, 404, MSG_NO_ACCOUNT);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        ldg__acct_wipe(a->password);
        ldg_req_error(req, 400, MSG_TOTP_NOT_ENABLED);
        return;
    }
    int rc = ldg__acct_pw(a, PW_VERIFY, a->password, PQgetvalue(res, 0, 4), on_totp_disable_verified);
    ldg__acct_wipe(a->password);
    if (rc < 0)
        ldg__acct_pw_error(a, rc, "Two-factor operation failed");
}

static void totp_disable(struct ldg_req *req)
{
    const struct ldg_principal *p = ldg__acct_session(req);
    if (!p)
        return;
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    const char *pw;
    if (ldg__auth_str(req, body, "password", true, 1, 64, &pw) < 0) {
        cJSON_Delete(body);
        return;
    }
    struct acct *a = ldg__acct_new(req);
    a->password = ldg__acct_dup(req, pw);
    cJSON_Delete(body);
    const char *params[] = {ldg__auth_itoa(req, p->account_id)};
    ldg__auth_sql(req, "acct_totp_state", SQL_TOTP_STATE, 1, params, &ERRS_TOTP, on_totp_disable_state, a);
}

/* Login, step one: the password was right for an account with 2FA: hand out a single-use token. */

static void on_totp_challenge_stored(struct acct *a, redisReply *reply)
{
    struct ldg_req *req = a->req;
    if (!ldg__acct_reply_ok(reply)) {
        ldg__acct_warn_redis(req, "login refused: the two-factor session could not be stored");
        ldg_req_error(req, 503, MSG_LOGIN_TIMEOUT);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_json_writer jw;
    ldg_json_writer_init(&jw, &b);
    ldg_json_obj_begin(&jw);
    ldg_json_key(&jw, "requires_2fa");
    ldg_json_bool(&jw, true);
    ldg_json_key(&jw, "totp_session_token");
    ldg_json_str(&jw, a->refresh);
    ldg_json_key(&jw, "access_token");
    ldg_json_null(&jw);
    ldg_json_key(&jw, "refresh_token");
    ldg_json_null(&jw);
    ldg_json_key(&jw, "token_type");
    ldg_json_str(&jw, "bearer");
    ldg_json_key(&jw, "expires_in");
    ldg_json_int(&jw, ldg__auth.cfg->totp_session_ttl_ms / 1000);
    ldg_json_obj_end(&jw);
    ldg__auth_respond_buf(req, 200, &b);
}

void ldg__auth_totp_challenge(struct acct *a)
{
    struct ldg_req *req = a->req;
    if (ldg_random_token(a->refresh, TOTP_TOKEN_BYTES) < 0) {
        ACCT_LOG(error, req, "login: no randomness for a two-factor token");
        ldg_req_error(req, 500, "Login failed");
        return;
    }
    char *key = ldg_arena_alloc(&req->arena, sizeof TOTP_SESSION_KEY + LDG_SHA256_HEX_LEN);
    totp_key_of(a->refresh, key);
    const char *argv[] = {"EVAL",
                          LUA_TOTP_OPEN,
                          "1",
                          key,
                          ldg__auth_itoa(req, a->account_id),
                          ldg__auth_itoa(req, ldg__auth.cfg->totp_session_ttl_ms)};
    if (ldg__acct_redis(a, on_totp_challenge_stored, 6, argv) < 0)
        on_totp_challenge_stored(a, NULL);
}

/* POST /accounts/2fa/login */

static void totp_login_fail(struct tfa *t);

static void on_totp_token_taken(struct acct *a, redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        ldg__acct_warn_redis(a->req, "two-factor login refused: the token could not be consumed");
        ldg_req_error(a->req, 503, MSG_LOGIN_TIMEOUT);
        return;
    }
    if (reply->integer != 1) { /* used by a concurrent request */
        ldg_req_error(a->req, 401, MSG_TOTP_BAD_TOKEN);
        return;
    }
    if (ldg__acct_new_tokens(a, true) < 0) {
        ACCT_LOG(error, a->req, "2fa login: no randomness for session tokens");
        ldg_req_error(a->req, 500, "Login failed");
        return;
    }
    if (ldg__acct_session_set(a, ldg__acct_on_login_session_set) < 0)
        ldg__acct_on_login_session_set(a, NULL);
}

static void on_totp_code_used(struct ldg_req *req, PGresult *res, void *ud)
{
    struct tfa *t = ud;
    if (PQntuples(res) != 1) { /* a replayed code or a used backup code */
        totp_login_fail(t);
        return;
    }
    const char *argv[] = {"DEL", t->token_key};
    if (ldg__acct_redis(t->a, on_totp_token_taken, 2, argv) < 0)
        on_totp_token_taken(t->a, NULL);
    (void)req;
}

static void on_totp_login_state(struct ldg_req *req, PGresult *res, void *ud)
{
    struct tfa *t = ud;
    struct acct *a = t->a;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "t") != 0 ||
        strcmp(PQgetvalue(res, 0, 3), "t") != 0 || PQgetisnull(res, 0, 0)) {
        ldg_req_error(req, 401, MSG_TOTP_BAD_TOKEN); /* 2FA was disabled or the account closed meanwhile */
        return;
    }
    a->email = ldg__acct_dup(req, PQgetvalue(res, 0, 2));
    const char *id = ldg__auth_itoa(req, a->account_id);
    if (strlen(t->code) == 6) {
        unsigned char key[64];
        int n = totp_open(req, a->account_id, PQgetvalue(res, 0, 0), key, sizeof key);
        if (n < 0) {
            ACCT_LOG(error, req, "2fa login: account=%" PRId64 " secret does not open (wrong totp key?)",
                     a->account_id);
            ldg_req_error(req, 500, "Login failed");
            return;
        }
        bool ok = ldg_totp_check(key, (size_t)n, t->code, ldg_totp_step(time(NULL)), TOTP_SKEW, &t->step);
        OPENSSL_cleanse(key, sizeof key);
        if (!ok) {
            totp_login_fail(t);
            return;
        }
        const char *params[] = {id, totp_now_step_text(req, t->step)};
        ldg__auth_sql(req, "acct_totp_use_step", SQL_TOTP_USE_STEP, 2, params, &ERRS_TOTP_LOGIN,
                      on_totp_code_used, t);
        return;
    }
    char digest[LDG_SHA256_HEX_LEN + 1];
    backup_digest(t->code, digest);
    const char *params[] = {id, ldg__acct_dup(req, digest)};
    ldg__auth_sql(req, "acct_totp_use_backup", SQL_TOTP_USE_BACKUP, 2, params, &ERRS_TOTP_LOGIN,
                  on_totp_code_used, t);
}

static void on_totp_failed_counted(struct acct *a, redisReply *reply)
{
    (void)reply;
    ldg_req_error(a->req, 401, MSG_TOTP_BAD_CODE);
}

static void totp_login_fail(struct tfa *t)
{
    struct acct *a = t->a;
    const char *argv[] = {"EVAL",
                          LUA_TOTP_FAIL,
                          "2",
                          t->token_key,
                          t->fail_key,
                          ldg__auth_itoa(a->req, ldg__auth.cfg->totp_max_attempts),
                          ldg__auth_itoa(a->req, ldg__auth.cfg->login_fail_window_ms)};
    if (ldg__acct_redis(a, on_totp_failed_counted, 7, argv) < 0)
        on_totp_failed_counted(a, NULL);
}

static void on_totp_token_peeked(struct acct *a, redisReply *reply)
{
    struct ldg_req *req = a->req;
    struct tfa *t = (struct tfa *)a->sids; /* parked there by totp_login */
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        ldg__acct_warn_redis(req, "two-factor login refused: the token store is unavailable");
        ldg_req_error(req, 503, MSG_LOGIN_TIMEOUT);
        return;
    }
    const redisReply *acc = reply->element[0], *fails = reply->element[1];
    if (acc->type != REDIS_REPLY_STRING) {
        ldg_req_error(req, 401, MSG_TOTP_BAD_TOKEN);
        return;
    }
    a->account_id = strtoll(acc->str, NULL, 10);
    snprintf(t->fail_key, sizeof t->fail_key, TOTP_FAIL_KEY "%" PRId64, a->account_id);
    if (fails->type == REDIS_REPLY_INTEGER && fails->integer >= ldg__auth.cfg->totp_fail_max) {
        ldg_req_add_header(req, "Retry-After", ldg__auth_itoa(req, ldg__acct_retry_after_s(0)));
        ldg_req_error(req, 429, MSG_TOTP_THROTTLED);
        return;
    }
    const char *params[] = {ldg__auth_itoa(req, a->account_id)};
    ldg__auth_sql(req, "acct_totp_state", SQL_TOTP_STATE, 1, params, &ERRS_TOTP_LOGIN, on_totp_login_state,
                  t);
}

static void totp_login(struct ldg_req *req)
{
    cJSON *body = ldg__auth_body(req);
    if (!body)
        return;
    struct tfa *t = tfa_new(req);
    const char *token;
    if (ldg__auth_str(req, body, "totp_session_token", true, 1, 128, &token) < 0 ||
        !totp_read_code(req, body, t, true)) {
        cJSON_Delete(body);
        return;
    }
    totp_key_of(token, t->token_key);
    cJSON_Delete(body);
    ldg__acct_note_client(t->a);
    t->a->sids = (const char **)(void *)t; /* the redis step callback only gets the acct */
    const char *argv[] = {"EVAL", LUA_TOTP_PEEK, "1", t->token_key, TOTP_FAIL_KEY};
    if (ldg__acct_redis(t->a, on_totp_token_peeked, 5, argv) < 0)
        on_totp_token_peeked(t->a, NULL);
}

void ldg__auth_twofactor_routes(struct ldg_router *r)
{
    const size_t max_body = 16 * 1024;
    ldg__auth_route(r, "POST", "/api/v1/accounts/2fa/setup", totp_setup, LDG_ROUTE_ACCOUNT, max_body);
    ldg__auth_route(r, "POST", "/api/v1/accounts/2fa/verify", totp_verify, LDG_ROUTE_ACCOUNT, max_body);
    ldg__auth_route(r, "POST", "/api/v1/accounts/2fa/disable", totp_disable, LDG_ROUTE_ACCOUNT, max_body);
    ldg__auth_route(r, "GET", "/api/v1/accounts/2fa/status", totp_status, LDG_ROUTE_ACCOUNT, max_body);
    ldg__auth_route(r, "POST", "/api/v1/accounts/2fa/login", totp_login, LDG_ROUTE_PUBLIC, max_body);
}
