/*
 * accounts_int.h: what accounts.c (register, login, sessions) shares with twofactor.c (two-factor
 * sign-in): the per-request state of the account flows and the steps bound to a request (Redis
 * commands, password-pool jobs, session creation). Not for other modules. Same threading as
 * auth.h: the worker's loop thread; everything lives in the request arena.
 */
#ifndef LDG_ROLES_AUTH_ACCOUNTS_INT_H
#define LDG_ROLES_AUTH_ACCOUNTS_INT_H

#include <hiredis/hiredis.h>

#include "auth/apikey.h"
#include "auth/jwt.h"
#include "core/log.h"
#include "roles/auth/auth.h"

#define SID_BYTES 16u
#define SID_LEN LDG_B64URL_LEN(SID_BYTES) /* 22 */
#define REFRESH_BYTES 48u
#define REFRESH_LEN LDG_B64URL_LEN(REFRESH_BYTES) /* 64 */

#define MSG_BUSY "Service busy, please try again"
#define MSG_TIMEOUT "Service timeout"
#define MSG_LOGIN_TIMEOUT "Login service timeout, please try again"
#define MSG_NO_ACCOUNT "Account not found"

struct acct;
typedef void (*redis_step_fn)(struct acct *a, redisReply *reply);
typedef void (*pw_step_fn)(struct acct *a, int result, const char *hash);

/* One request's state across its asynchronous steps; lives in req->arena. */
struct acct {
    struct ldg_req *req;           /* borrowed */
    const struct ldg_principal *p; /* borrowed (request arena); NULL on public routes */
    redis_step_fn on_redis;        /* the pending Redis step (one at a time) */
    pw_step_fn on_pw;              /* the pending hash/verify step */
    int64_t account_id;
    const char *email; /* arena */
    const char *name;  /* arena */
    char *password;    /* arena; wiped once handed to the pool */
    char *new_password;
    bool active;
    bool totp; /* the account has two-factor sign-in enabled */
    char sid[LDG_JWT_ID_MAX + 1];
    char refresh[REFRESH_LEN + 1];
    char digest[LDG_SHA256_HEX_LEN + 1];     /* HMAC of `refresh` */
    char old_digest[LDG_SHA256_HEX_LEN + 1]; /* refresh: the presented token's */
    char addr[64];
    const char *device; /* arena, nullable */
    const char *email_key, *addr_key;
    const char **sids; /* arena: sessions to DEL */
    size_t nsids;
    int64_t count;
    bool reserved; /* login: a failure was reserved in Redis before hashing */
};

enum pw_op { PW_HASH, PW_VERIFY, PW_DUMMY };

/* A zeroed state for req (principal filled in). */
struct acct *ldg__acct_new(struct ldg_req *req);

/* "role=auth rid=<id>" for log lines. */
void ldg__acct_log_context(const struct ldg_req *req, char *out, size_t cap);

#define ACCT_LOG(level, req, ...)                                                                            \
    do {                                                                                                     \
        char ctx_[96];                                                                                       \
        ldg__acct_log_context((req), ctx_, sizeof ctx_);                                                     \
        ldg_log_##level(ctx_, __VA_ARGS__);                                                                  \
    } while (0)

/* The session principal, or NULL after answering 401/403 (ldg__auth_account). */
const struct ldg_principal *ldg__acct_session(struct ldg_req *req);

/* Run one Redis command for a; fn runs once with the reply (NULL on failure) while the request is
 * alive. 0, or -ENOTCONN/-EAGAIN/-EINVAL without callback. */
int ldg__acct_redis(struct acct *a, redis_step_fn fn, int argc, const char **argv);
bool ldg__acct_reply_ok(const redisReply *reply);
/* Warn about Redis at most once a minute per worker. */
void ldg__acct_warn_redis(struct ldg_req *req, const char *what);

/* A job on the worker's password pool (codes of ldg_password_hash; no callback on < 0), and the
 * answer to its failure (503 busy, 500 otherwise). */
int ldg__acct_pw(struct acct *a, enum pw_op op, const char *pw, const char *encoded, pw_step_fn fn);
void ldg__acct_pw_error(struct acct *a, int rc, const char *failed);

char *ldg__acct_dup(struct ldg_req *req, const char *s);
void ldg__acct_wipe(char *s);
void ldg__acct_hex(const unsigned char *in, size_t n, char *out);

/* Client address and User-Agent of the request into a. */
void ldg__acct_note_client(struct acct *a);
/* A new refresh token (and session id when with_sid) with its digest. 0 or -EIO. */
int ldg__acct_new_tokens(struct acct *a, bool with_sid);
/* SET session:<sid>; then fn. */
int ldg__acct_session_set(struct acct *a, redis_step_fn fn);
/* Login's last steps once session:<sid> is set: the sessions row, then the tokens answer. */
void ldg__acct_on_login_session_set(struct acct *a, redisReply *reply);
/* Seconds until a counter with this PTTL resets (>= 1; the login window when unknown). */
int64_t ldg__acct_retry_after_s(long long pttl);

/* twofactor.c: the password was right for an account with two-factor sign-in: answer
 * requires_2fa with a single-use token instead of a session. */
void ldg__auth_totp_challenge(struct acct *a);

/* twofactor.c: its routes. */
void ldg__auth_twofactor_routes(struct ldg_router *r);

#endif
