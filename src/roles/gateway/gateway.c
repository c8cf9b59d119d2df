/*
 * gateway.c: see gateway.h. Request flow:
 *
 *   on_filter -> credentials -> API key: key_lookup (loop table -> Redis -> PostgreSQL)
 *                            -> JWT: ldg_jwt_verify
 *             -> principal -> limits (one Redis pipeline) -> ldg_req_run_handler
 */
#include "roles/gateway/gateway.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "auth/apikey.h"
#include "auth/jwt.h"
#include "auth/keycache.h"
#include "auth/principal.h"
#include "core/alloc.h"
#include "core/json.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"
#include "core/worker.h"
#include "db/breaker.h"
#include "db/pgpool.h"
#include "db/redis.h"
#include "http/request.h"
#include "http/router.h"
#include "roles/gateway/keytable.h"
#include "roles/gateway/otlplisten.h"
#include "roles/gateway/web.h"
#include "settings.h"

#define CFG(f) offsetof(struct ldg_gateway_cfg, f)

static const struct ldg_cfg_enum failure_choices[] = {
    {"open", LDG_GATEWAY_FAIL_OPEN}, {"closed", LDG_GATEWAY_FAIL_CLOSED}, {NULL, 0}};

const struct ldg_cfg_key ldg_gateway_cfg_keys[] = {
    {"key_cache_size", LDG_CFG_INT, CFG(key_cache_size), "10000", 1, 10000000, NULL, 0,
     "API keys remembered per worker loop (least recently used evicted)"},
    {"key_cache_ttl_ms", LDG_CFG_MS, CFG(key_cache_ttl_ms), "300000", 0, 3600000, NULL, 0,
     "How long a loop trusts a validated key without asking Redis, while revocations flow"},
    {"key_recheck_ms", LDG_CFG_MS, CFG(key_recheck_ms), "1000", 0, 60000, NULL, 0,
     "How long a loop trusts a key while its revocation channel is down (bounds revocation delay)"},
    {"key_negative_ttl_ms", LDG_CFG_MS, CFG(key_negative_ttl_ms), "30000", 0, 3600000, NULL, 0,
     "How long a loop remembers that a key does not exist"},
    {"key_stale_ms", LDG_CFG_MS, CFG(key_stale_ms), "600000", 0, 86400000, NULL, 0,
     "Auth database unreachable: keys validated this recently keep working, others get 503"},
    {"breaker_failures", LDG_CFG_INT, CFG(breaker_failures), "5", 1, 1000, NULL, 0,
     "Consecutive auth database failures that open the circuit breaker"},
    {"breaker_open_ms", LDG_CFG_MS, CFG(breaker_open_ms), "60000", 100, 3600000, NULL, 0,
     "Open breaker: no auth database lookups for this long, then one probe"},
    {"redis_failure", LDG_CFG_ENUM, CFG(redis_failure), "open", 0, 0, failure_choices, 0,
     "Redis unreachable: open = requests pass without rate limits (v1), closed = 503"},
    {"session_rate_per_minute", LDG_CFG_INT, CFG(session_rate_per_minute), "1000", 1, 100000000, NULL, 0,
     "Requests per minute per dashboard account"},
    {"session_rate_per_hour", LDG_CFG_INT, CFG(session_rate_per_hour), "50000", 1, 1000000000, NULL, 0,
     "Requests per hour per dashboard account"},
    {"last_used_interval_ms", LDG_CFG_MS, CFG(last_used_interval_ms), "60000", 1000, 3600000, NULL, 0,
     "api_keys.last_used_at is written at most this often per key (off the request path)"},
    {"web_enabled", LDG_CFG_BOOL, CFG(web_enabled), "on", 0, 0, NULL, 0,
     "Serve the web app from web_dir at / (API paths are never affected)"},
    {"web_dir", LDG_CFG_PATH, CFG(web_dir), "web/dist", 0, 0, NULL, 0,
     "The built web app, read into memory at start; relative to the config file's directory"},
    {"otlp_listen", LDG_CFG_STR, CFG(otlp_listen), "", 0, 0, NULL, 0,
     "host:port (e.g. 0.0.0.0:4318) of a second listener serving only the OTLP/HTTP routes /v1/logs, "
     "/v1/traces and /v1/metrics; empty = none (they are served on [server] port anyway)"},
    {0},
};

/* ---- state -------------------------------------------------------------------------------------- */

static struct {
    const struct ldg_gateway_cfg *cfg;
    const unsigned char *secret;
    size_t secret_len;
} G;

struct gw {
    struct ldg_worker *w;
    struct ldg_keytable keys;
    struct ldg_redis_sub *sub; /* revocations; NULL once closing */
    bool sub_closed;
    struct ldg__otlp_listener otlp; /* [gateway] otlp_listen */
    uint64_t sub_errors_seen;
    uint32_t gen;               /* bumped whenever invalidations may have been missed */
    struct ldg_breaker breaker; /* auth database lookups */
    uint64_t redis_warn_ms;
};

static int gateway_index = -1;

static struct gw *gw_of(struct ldg_req *req)
{
    return req->w->role_state[gateway_index];
}

static void log_ctx(struct ldg_req *req, char *ctx, size_t cap)
{
    snprintf(ctx, cap, "rid=%s", req->request_id);
}

/* ---- answers ------------------------------------------------------------------------------------- */

static void deny_401(struct ldg_req *req, const char *detail)
{
    ldg_req_add_header(req, "WWW-Authenticate", "Bearer");
    ldg_req_error(req, 401, detail);
}

static void deny_503(struct ldg_req *req, const char *detail, int retry_after)
{
    char v[16];
    snprintf(v, sizeof v, "%d", retry_after);
    ldg_req_add_header(req, "Retry-After", v);
    ldg_req_error(req, 503, detail);
}

/* ---- limits: one Redis round trip --------------------------------------------------------------- */

enum { R_SESSION, R_MIN, R_HOUR, R_USAGE, R_COUNT };

struct limits {
    struct ldg_req *req;
    struct ldg_principal *p;
    unsigned pending;
    bool failed;
    bool want[R_COUNT];
    bool got[R_COUNT]; /* an answer arrived for the slot */
    long long val[R_COUNT];
    uint64_t now_s;
    ldg_gateway_then_fn then; /* NULL: run the route's handler */
    void *then_ud;
};

static void limits_redis_down(struct limits *l);
static void account_check_and_run(struct ldg_req *req, const struct ldg_principal *p);
static void limits_finish(struct limits *l);
static void touch_last_used(struct ldg_req *req, const struct ldg_principal *p);

/* Each command gets its own small context so the callback knows its slot. */
struct limit_cmd {
    struct limits *l;
    int slot;
    const char *expire_key; /* INCR of a window counter: set its TTL when it was just created */
    int ttl;
};

static void on_expire_set(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    (void)r, (void)reply, (void)ud; /* best effort: the key's name carries its window anyway */
}

static void on_cmd_reply(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct limit_cmd *c = ud;
    struct limits *l = c->l;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        l->failed = true;
    else if (c->slot >= 0) {
        if (reply->type == REDIS_REPLY_INTEGER) {
            l->val[c->slot] = reply->integer;
            l->got[c->slot] = true;
            /* A window counter starts at 1: give it its TTL once, instead of an EXPIRE per request. */
            if (c->expire_key && reply->integer == 1) {
                char ttl[16];
                snprintf(ttl, sizeof ttl, "%d", c->ttl);
                const char *argv[] = {"EXPIRE", c->expire_key, ttl};
                if (ldg_redis_commandargv(r, on_expire_set, NULL, 3, argv, NULL) < 0)
                    ldg_log_debug(NULL, "gateway: EXPIRE of a new rate-limit window not sent");
            }
        } else if (reply->type == REDIS_REPLY_STRING)
            l->val[c->slot] = strtoll(reply->str, NULL, 10);
        else if (reply->type == REDIS_REPLY_NIL)
            l->val[c->slot] = 0;
    }
    if (--l->pending == 0)
        limits_finish(l);
}

static void limits_run(struct ldg_req *req, struct ldg_principal *p, ldg_gateway_then_fn then, void *ud);

static void limits_start(struct ldg_req *req, struct ldg_principal *p)
{
    unsigned flags = req->match.route ? req->match.route->flags : 0;
    p->usage_today = -1;
    if ((flags & LDG_ROUTE_OWN_LIMITS) && p->kind == LDG_PRINCIPAL_API_KEY) {
        /* The handler counts this request in its own round trip (ldg_gateway_ratelimit_*). */
        account_check_and_run(req, p);
        return;
    }
    limits_run(req, p, NULL, NULL);
}

void ldg_gateway_limits_then(struct ldg_req *req, ldg_gateway_then_fn then, void *ud)
{
    limits_run(req, (struct ldg_principal *)ldg_principal(req), then, ud);
}

void ldg_gateway_ratelimit_keys(struct ldg_req *req, struct ldg_ratelimit *rl)
{
    const struct ldg_principal *p = ldg_principal(req);
    rl->now_s = ldg_wall_ms() / 1000u;
    rl->min_limit = p->rate_limit_per_minute;
    rl->hour_limit = p->rate_limit_per_hour;
    /* ratelimit:<pid>:min:<minute> and ratelimit:<pid>:hour:<hour>, without printf (per request) */
    char pid[24];
    size_t n = ldg_str_i64(pid, p->project_id);
    memcpy(rl->min_key, "ratelimit:", 10);
    memcpy(rl->min_key + 10, pid, n);
    memcpy(rl->hour_key, rl->min_key, 10 + n);
    memcpy(rl->min_key + 10 + n, ":min:", 5);
    memcpy(rl->hour_key + 10 + n, ":hour:", 6);
    ldg_str_i64(rl->min_key + 15 + n, (int64_t)(rl->now_s / 60));
    ldg_str_i64(rl->hour_key + 16 + n, (int64_t)(rl->now_s / 3600));
}

static void limits_run(struct ldg_req *req, struct ldg_principal *p, ldg_gateway_then_fn then, void *ud)
{
    unsigned flags = req->match.route ? req->match.route->flags : 0;
    bool session = p->kind == LDG_PRINCIPAL_SESSION;
    /* a session's keys (its own, its account's windows) are global: shard 0; an API key's windows
     * and usage are its project's, on the project's shard (the enqueue script counts them too) */
    struct ldg_redis *r = session ? req->w->redis : ldg_worker_redis_for(req->w, p->project_id);
    bool counted = !(flags & LDG_ROUTE_NO_LIMITS);
    bool quota = (flags & (LDG_ROUTE_QUOTA | LDG_ROUTE_USAGE)) && p->kind == LDG_PRINCIPAL_API_KEY;
    if (!session && !counted && !quota) {
        if (then)
            then(req, ud);
        else
            ldg_req_run_handler(req);
        return;
    }
    struct limits *l = ldg_arena_alloc(&req->arena, sizeof *l);
    memset(l, 0, sizeof *l);
    l->req = req;
    l->p = p;
    l->then = then;
    l->then_ud = ud;
    if (!ldg_redis_connected(r)) {
        limits_redis_down(l);
        return;
    }
    l->now_s = ldg_wall_ms() / 1000u;
    l->want[R_SESSION] = session;
    l->want[R_MIN] = l->want[R_HOUR] = counted;
    l->want[R_USAGE] = quota;

    char bucket[48];
    if (session)
        snprintf(bucket, sizeof bucket, "acct:%" PRId64, p->account_id);
    else
        snprintf(bucket, sizeof bucket, "%" PRId64, p->project_id);

    /* One pipelined round trip: [EXISTS session] [INCR minute, INCR hour] [GET usage]. */
    struct {
        const char *verb;
        char *key; /* arena: an INCR's key is reused by its EXPIRE after the reply */
        int slot, ttl;
    } cmds[4];
    size_t n = 0;
    if (session) {
        cmds[n] = (typeof(cmds[0])){"EXISTS", ldg_arena_alloc(&req->arena, 128), R_SESSION, 0};
        snprintf(cmds[n++].key, 128, LDG_SESSION_PREFIX "%s", p->sid);
    }
    if (counted) {
        cmds[n] = (typeof(cmds[0])){"INCR", ldg_arena_alloc(&req->arena, 96), R_MIN, 60};
        snprintf(cmds[n++].key, 96, "ratelimit:%s:min:%" PRIu64, bucket, l->now_s / 60);
        cmds[n] = (typeof(cmds[0])){"INCR", ldg_arena_alloc(&req->arena, 96), R_HOUR, 3600};
        snprintf(cmds[n++].key, 96, "ratelimit:%s:hour:%" PRIu64, bucket, l->now_s / 3600);
    }
    if (quota) {
        time_t t = (time_t)l->now_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        cmds[n] = (typeof(cmds[0])){"GET", ldg_arena_alloc(&req->arena, 64), R_USAGE, 0};
        snprintf(cmds[n++].key, 64, "usage:%" PRId64 ":%04d%02d%02d", p->project_id, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday);
    }
    ldg_req_ref(req);
    l->pending = 1; /* held while issuing */
    for (size_t i = 0; i < n; i++) {
        struct limit_cmd *c = ldg_arena_alloc(&req->arena, sizeof *c);
        c->l = l;
        c->slot = cmds[i].slot;
        c->expire_key = cmds[i].ttl ? cmds[i].key : NULL;
        c->ttl = cmds[i].ttl;
        const char *argv[2] = {cmds[i].verb, cmds[i].key};
        if (ldg_redis_commandargv(r, on_cmd_reply, c, 2, argv, NULL) == 0)
            l->pending++;
        else
            l->failed = true;
    }
    if (--l->pending == 0)
        limits_finish(l);
}

static void add_int_header(struct ldg_req *req, const char *name, long long v)
{
    char s[24];
    ldg_str_i64(s, v);
    ldg_req_add_header(req, name, s);
}

static void account_check_and_run(struct ldg_req *req, const struct ldg_principal *p)
{
    unsigned flags = req->match.route ? req->match.route->flags : 0;
    if ((flags & LDG_ROUTE_ACCOUNT) && p->kind == LDG_PRINCIPAL_API_KEY) {
        ldg_req_error(req, 403, "API keys cannot access account-level endpoints; sign in to the dashboard");
        return;
    }
    if (p->kind == LDG_PRINCIPAL_API_KEY)
        touch_last_used(req, p);
    ldg_req_run_handler(req);
}

/* The limits let the request through: its handler, or the continuation it was run for. */
static void limits_pass(struct limits *l)
{
    if (l->then)
        l->then(l->req, l->then_ud);
    else
        account_check_and_run(l->req, l->p);
}

bool ldg_gateway_ratelimit_verdict(struct ldg_req *req, const struct ldg_ratelimit *rl, long long mc,
                                   long long hc)
{
    long long ml = rl->min_limit, hl = rl->hour_limit;
    add_int_header(req, "X-RateLimit-Limit-Minute", ml);
    add_int_header(req, "X-RateLimit-Remaining-Minute", mc >= ml ? 0 : ml - mc);
    add_int_header(req, "X-RateLimit-Limit-Hour", hl);
    add_int_header(req, "X-RateLimit-Remaining-Hour", hc >= hl ? 0 : hl - hc);
    if (hc <= hl && mc <= ml)
        return false;
    char detail[160];
    long long retry;
    if (hc > hl) {
        snprintf(detail, sizeof detail, "Hourly rate limit exceeded. Current: %lld, Limit: %lld", hc, hl);
        retry = 3600 - (long long)(rl->now_s % 3600);
    } else {
        snprintf(detail, sizeof detail, "Per-minute rate limit exceeded. Current: %lld, Limit: %lld", mc, ml);
        retry = 60 - (long long)(rl->now_s % 60);
    }
    add_int_header(req, "Retry-After", retry < 1 ? 1 : retry);
    ldg_req_error(req, 429, detail);
    return true;
}

static void limits_redis_down(struct limits *l)
{
    struct ldg_req *req = l->req;
    struct gw *gw = gw_of(req);
    uint64_t now = ldg_worker_now(req->w);
    if (now - gw->redis_warn_ms >= 10000 || gw->redis_warn_ms == 0) {
        gw->redis_warn_ms = now;
        ldg_log_warn(NULL, "gateway: Redis unavailable, rate limits %s",
                     G.cfg->redis_failure == LDG_GATEWAY_FAIL_OPEN ? "skipped (fail open)"
                                                                   : "refuse requests (fail closed)");
    }
    if (G.cfg->redis_failure == LDG_GATEWAY_FAIL_CLOSED) {
        deny_503(req, "Service temporarily unavailable", 1);
        return;
    }
    limits_pass(l);
}

static void limits_finish(struct limits *l)
{
    struct ldg_req *req = l->req;
    struct ldg_principal *p = l->p;
    if (!req->conn) {
        ldg_req_unref(req);
        return;
    }
    /* A session Redis answered as gone is refused whatever else failed: fail-open is for
     * questions Redis could not answer, never for a revocation it did report. */
    if (l->want[R_SESSION] && l->got[R_SESSION] && l->val[R_SESSION] != 1) {
        deny_401(req, "Invalid or expired session token");
        ldg_req_unref(req);
        return;
    }
    if (l->failed) {
        limits_redis_down(l);
        ldg_req_unref(req);
        return;
    }
    if (l->want[R_SESSION] && l->val[R_SESSION] != 1) {
        deny_401(req, "Invalid or expired session token");
        ldg_req_unref(req);
        return;
    }
    if (l->want[R_MIN]) {
        struct ldg_ratelimit rl = {
            .now_s = l->now_s, .min_limit = p->rate_limit_per_minute, .hour_limit = p->rate_limit_per_hour};
        if (ldg_gateway_ratelimit_verdict(req, &rl, l->val[R_MIN], l->val[R_HOUR])) {
            ldg_req_unref(req);
            return;
        }
    }
    unsigned flags = req->match.route ? req->match.route->flags : 0;
    if (l->want[R_USAGE])
        p->usage_today = l->val[R_USAGE];
    if (l->want[R_USAGE] && (flags & LDG_ROUTE_QUOTA) && l->val[R_USAGE] >= p->daily_quota) {
        char detail[96];
        snprintf(detail, sizeof detail, "Daily quota exceeded: %lld/%" PRId64, l->val[R_USAGE],
                 p->daily_quota);
        ldg_req_error(req, 402, detail);
        ldg_req_unref(req);
        return;
    }
    limits_pass(l);
    ldg_req_unref(req);
}

/* ---- last_used_at: at most once per interval per key, off the request path ------------------- */

static void on_last_used_written(PGresult *res, void *ud)
{
    if (!res)
        ldg_log_debug(NULL, "gateway: last_used_at update failed (code=%d)", ldg_pg_failure()->code);
}

struct touch {
    struct ldg_worker *w;
    int64_t key_id;
};

static void on_last_used_claimed(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct touch *t = ud;
    /* SET NX answered OK: this process writes; nil: someone did within the interval. */
    if (reply && reply->type == REDIS_REPLY_STATUS && t->w->state == LDG_WORKER_RUNNING) {
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, t->key_id);
        const char *params[1] = {id};
        int rc = ldg_pgpool_query_prepared(t->w->pg_auth, "gw_last_used",
                                           "UPDATE api_keys SET last_used_at = now() WHERE id = $1", 1,
                                           params, on_last_used_written, NULL);
        if (rc < 0)
            ldg_log_debug(NULL, "gateway: last_used_at update not submitted: %s", strerror(-rc));
    }
    free(t);
}

static void touch_last_used(struct ldg_req *req, const struct ldg_principal *p)
{
    struct gw *gw = gw_of(req);
    uint64_t now = ldg_worker_now(req->w);
    struct ldg_keyentry *e = ldg_keytable_get(&gw->keys, p->key_digest);
    if (!e || e->negative ||
        (e->last_used_ms && now - e->last_used_ms < (uint64_t)G.cfg->last_used_interval_ms))
        return;
    e->last_used_ms = now;
    struct touch *t = ldg_malloc(sizeof *t);
    t->w = req->w;
    t->key_id = p->key_id;
    char key[48], ttl[24];
    snprintf(key, sizeof key, "last_used:%" PRId64, p->key_id);
    snprintf(ttl, sizeof ttl, "%" PRId64, G.cfg->last_used_interval_ms);
    const char *argv[] = {"SET", key, "1", "PX", ttl, "NX"};
    if (ldg_redis_commandargv(req->w->redis, on_last_used_claimed, t, 6, argv, NULL) < 0)
        free(t); /* Redis down: skip this time */
}

/* ---- API keys ------------------------------------------------------------------------------------ */

struct keyjob {
    struct ldg_req *req;
    bool probe; /* the one lookup a half-open breaker lets through */
    char digest[LDG_SHA256_HEX_LEN + 1];
};

static struct ldg_principal *principal_from_entry(struct ldg_req *req, const struct ldg_keyentry *e)
{
    struct ldg_principal *p = ldg_arena_alloc(&req->arena, sizeof *p);
    memset(p, 0, sizeof *p);
    p->kind = LDG_PRINCIPAL_API_KEY;
    p->account_id = e->account_id;
    p->project_id = e->project_id;
    p->key_id = e->key_id;
    p->rate_limit_per_minute = e->rate_limit_per_minute;
    p->rate_limit_per_hour = e->rate_limit_per_hour;
    p->daily_quota = e->daily_quota;
    p->retention_days = e->retention_days;
    _Static_assert(sizeof p->key_digest == sizeof e->digest, "digest sizes");
    memcpy(p->key_digest, e->digest, sizeof p->key_digest);
    req->principal = p;
    return p;
}

static void key_accept(struct ldg_req *req, const struct ldg_keyentry *e)
{
    limits_start(req, principal_from_entry(req, e));
}

static void key_reject(struct ldg_req *req)
{
    deny_401(req, "Invalid or expired API key");
}

static void remember_negative(struct gw *gw, const char *digest)
{
    if (G.cfg->key_negative_ttl_ms == 0)
        return;
    struct ldg_keyentry e;
    memset(&e, 0, sizeof e);
    snprintf(e.digest, sizeof e.digest, "%s", digest);
    e.negative = true;
    e.confirmed_ms = ldg_worker_now(gw->w);
    e.gen = gw->gen;
    ldg_keytable_put(&gw->keys, &e);
}

/* The auth database could not answer: a recently validated key keeps working. */
static void key_unavailable(struct ldg_req *req, const char *digest)
{
    struct gw *gw = gw_of(req);
    struct ldg_keyentry *e = ldg_keytable_get(&gw->keys, digest);
    if (e && !e->negative && ldg_wall_ms() - e->validated_wall_ms <= (uint64_t)G.cfg->key_stale_ms) {
        key_accept(req, e);
        return;
    }
    deny_503(req, "Authentication service unavailable", 5);
}

static void breaker_result(struct gw *gw, bool probe, bool ok)
{
    switch (ldg_breaker_done(&gw->breaker, probe, ok, ldg_worker_now(gw->w))) {
    case LDG_BREAKER_CLOSED:
        ldg_log_info(NULL, "gateway: auth database reachable again, circuit breaker closed");
        break;
    case LDG_BREAKER_OPENED:
        ldg_log_warn(NULL, "gateway: circuit breaker open after %u auth database failures",
                     gw->breaker.failures);
        break;
    case LDG_BREAKER_SAME:
        break;
    }
}

static void write_redis_cache(struct gw *gw, const struct ldg_keyentry *e);

static void on_key_row(PGresult *res, void *ud)
{
    struct keyjob *job = ud;
    struct ldg_req *req = job->req;
    struct gw *gw = gw_of(req);
    /* Only the probe's own answer ends the half-open state (breaker.h). */
    if (!res) {
        const struct ldg_pg_error *err = ldg_pg_failure();
        breaker_result(gw, job->probe, false);
        char ctx[96];
        log_ctx(req, ctx, sizeof ctx);
        ldg_log_warn(ctx, "gateway: API key lookup failed (code=%d sqlstate=%s)", err->code,
                     err->sqlstate[0] ? err->sqlstate : "-");
        if (req->conn)
            key_unavailable(req, job->digest);
        ldg_req_unref(req);
        return;
    }
    breaker_result(gw, job->probe, true);
    bool active = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    if (!active) {
        ldg_keytable_del(&gw->keys, job->digest);
        remember_negative(gw, job->digest);
        if (req->conn)
            key_reject(req);
        ldg_req_unref(req);
        return;
    }
    struct ldg_keyentry e;
    memset(&e, 0, sizeof e);
    snprintf(e.digest, sizeof e.digest, "%s", job->digest);
    e.key_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    e.project_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    e.account_id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    e.rate_limit_per_minute = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    e.rate_limit_per_hour = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    e.daily_quota = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    e.retention_days = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    e.validated_wall_ms = ldg_wall_ms();
    e.confirmed_ms = ldg_worker_now(gw->w);
    e.gen = gw->gen;
    struct ldg_keyentry *old = ldg_keytable_get(&gw->keys, job->digest);
    if (old)
        e.last_used_ms = old->last_used_ms;
    const struct ldg_keyentry *stored = ldg_keytable_put(&gw->keys, &e);
    write_redis_cache(gw, stored);
    if (req->conn)
        key_accept(req, stored);
    ldg_req_unref(req);
}

static void key_from_db(struct ldg_req *req, struct keyjob *job)
{
    struct gw *gw = gw_of(req);
    uint64_t now = ldg_worker_now(req->w);
    enum ldg_breaker_admit admit = ldg_breaker_admit(&gw->breaker, now);
    if (admit == LDG_BREAKER_REJECT) {
        key_unavailable(req, job->digest);
        return;
    }
    job->probe = admit == LDG_BREAKER_PROBE; /* half-open: this lookup is the probe, the only one */
    const char *params[1] = {job->digest};
    job->req = req;
    ldg_req_ref(req);
    int rc = ldg_pgpool_query_prepared(
        req->w->pg_auth, "gw_key",
        "SELECT k.id, k.project_id, p.account_id, COALESCE(k.rate_limit_per_minute, 1000), "
        "COALESCE(k.rate_limit_per_hour, 50000), COALESCE(p.daily_quota, 1000000), "
        "(k.status = 'active' AND (k.expires_at IS NULL OR k.expires_at > now())), "
        "COALESCE(p.retention_days, 30) "
        "FROM api_keys k JOIN projects p ON p.id = k.project_id WHERE k.key_digest = $1",
        1, params, on_key_row, job);
    if (rc < 0) {
        breaker_result(gw, job->probe, false);
        ldg_req_unref(req);
        key_unavailable(req, job->digest);
    }
}

struct cachefill {
    struct ldg_worker *w;
    char digest[LDG_SHA256_HEX_LEN + 1];
};

static void on_cache_written(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct cachefill *job = ud;
    struct ldg_worker *w = job->w;
    /* nil: the key was already there, possibly a revocation tombstone written while we read the
     * database: drop our loop entry so the next request asks Redis. */
    if (reply && reply->type == REDIS_REPLY_NIL && w->state == LDG_WORKER_RUNNING && gateway_index >= 0) {
        struct gw *gw = w->role_state[gateway_index];
        if (gw)
            ldg_keytable_del(&gw->keys, job->digest);
    }
    free(job);
}

static void write_redis_cache(struct gw *gw, const struct ldg_keyentry *e)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_printf(&b,
                   "{\"project_id\":%" PRId64 ",\"account_id\":%" PRId64 ",\"rate_limit_per_minute\":%" PRId64
                   ",\"rate_limit_per_hour\":%" PRId64 ",\"daily_quota\":%" PRId64
                   ",\"current_usage\":0,\"key_id\":%" PRId64 ",\"validated_at_ms\":%" PRIu64
                   ",\"retention_days\":%" PRId64 "}",
                   e->project_id, e->account_id, e->rate_limit_per_minute, e->rate_limit_per_hour,
                   e->daily_quota, e->key_id, e->validated_wall_ms, e->retention_days);
    char key[sizeof LDG_KEYCACHE_PREFIX + LDG_SHA256_HEX_LEN];
    snprintf(key, sizeof key, LDG_KEYCACHE_PREFIX "%s", e->digest);
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", LDG_KEYCACHE_TTL_S);
    const char *argv[] = {"SET", key, ldg_buf_head(&b), "EX", ttl, "NX"};
    size_t argl[] = {3, strlen(key), ldg_buf_size(&b), 2, strlen(ttl), 2};
    struct cachefill *job = ldg_malloc(sizeof *job);
    job->w = gw->w;
    snprintf(job->digest, sizeof job->digest, "%s", e->digest);
    if (ldg_redis_commandargv(gw->w->redis, on_cache_written, job, 6, argv, argl) < 0)
        free(job);
    ldg_buf_free(&b);
}

static bool parse_cached(const char *s, size_t n, struct ldg_keyentry *e)
{
    cJSON *root = ldg_json_parse(s, n);
    if (!root)
        return false;
    int64_t v[7];
    static const char *const names[7] = {"project_id",          "account_id",  "rate_limit_per_minute",
                                         "rate_limit_per_hour", "daily_quota", "key_id",
                                         "validated_at_ms"};
    bool ok = true;
    for (int i = 0; i < 7 && ok; i++)
        ok = ldg_json_get_int(root, names[i], true, 0, INT64_MAX, &v[i], NULL, 0) == 1;
    int64_t retention = 30; /* entries cached by an earlier version have none */
    if (ok && ldg_json_get_int(root, "retention_days", false, 1, INT64_MAX, &retention, NULL, 0) < 0)
        retention = 30;
    e->retention_days = retention;
    cJSON_Delete(root);
    if (!ok)
        return false;
    e->project_id = v[0];
    e->account_id = v[1];
    e->rate_limit_per_minute = v[2];
    e->rate_limit_per_hour = v[3];
    e->daily_quota = v[4];
    e->key_id = v[5];
    e->validated_wall_ms = (uint64_t)v[6];
    return true;
}

static void on_key_cached(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct keyjob *job = ud;
    struct ldg_req *req = job->req;
    if (!req->conn) {
        ldg_req_unref(req);
        return;
    }
    struct gw *gw = gw_of(req);
    if (reply && reply->type == REDIS_REPLY_STRING) {
        if (reply->len == sizeof LDG_KEYCACHE_TOMBSTONE - 1 &&
            memcmp(reply->str, LDG_KEYCACHE_TOMBSTONE, reply->len) == 0) {
            ldg_keytable_del(&gw->keys, job->digest);
            remember_negative(gw, job->digest);
            key_reject(req);
            ldg_req_unref(req);
            return;
        }
        struct ldg_keyentry e;
        memset(&e, 0, sizeof e);
        if (parse_cached(reply->str, reply->len, &e)) {
            snprintf(e.digest, sizeof e.digest, "%s", job->digest);
            e.confirmed_ms = ldg_worker_now(req->w);
            e.gen = gw->gen;
            struct ldg_keyentry *old = ldg_keytable_get(&gw->keys, job->digest);
            if (old)
                e.last_used_ms = old->last_used_ms;
            key_accept(req, ldg_keytable_put(&gw->keys, &e));
            ldg_req_unref(req);
            return;
        }
        ldg_log_warn(NULL, "gateway: unreadable API key cache entry ignored");
    }
    /* nil, unreadable, or Redis failed: ask the database. */
    key_from_db(req, job);
    ldg_req_unref(req);
}

/* Invalidation generation: messages may have been missed whenever the channel dropped. */
static void sync_generation(struct gw *gw)
{
    uint64_t errs = gw->sub ? ldg_redis_sub_errors(gw->sub) : 0;
    if (errs != gw->sub_errors_seen) {
        gw->sub_errors_seen = errs;
        gw->gen++;
    }
}

static bool entry_fresh(struct gw *gw, const struct ldg_keyentry *e, uint64_t now)
{
    uint64_t age = now - e->confirmed_ms;
    if (e->negative)
        return age < (uint64_t)G.cfg->key_negative_ttl_ms;
    if (age < (uint64_t)G.cfg->key_recheck_ms)
        return true;
    return e->gen == gw->gen && gw->sub && ldg_redis_sub_connected(gw->sub) &&
           age < (uint64_t)G.cfg->key_cache_ttl_ms;
}

static void auth_api_key(struct ldg_req *req, const char *key, size_t n)
{
    if (!ldg_apikey_looks_valid(key, n)) {
        key_reject(req);
        return;
    }
    struct gw *gw = gw_of(req);
    struct keyjob *job = ldg_arena_alloc(&req->arena, sizeof *job);
    job->req = req;
    ldg_apikey_digest(key, n, job->digest);
    sync_generation(gw);
    uint64_t now = ldg_worker_now(req->w);
    struct ldg_keyentry *e = ldg_keytable_get(&gw->keys, job->digest);
    if (e && entry_fresh(gw, e, now)) {
        if (e->negative)
            key_reject(req);
        else
            key_accept(req, e);
        return;
    }
    if (e && e->negative) /* expired negative entry */
        ldg_keytable_del(&gw->keys, job->digest);
    char rkey[sizeof LDG_KEYCACHE_PREFIX + LDG_SHA256_HEX_LEN];
    snprintf(rkey, sizeof rkey, LDG_KEYCACHE_PREFIX "%s", job->digest);
    const char *argv[] = {"GET", rkey};
    ldg_req_ref(req);
    if (ldg_redis_commandargv(req->w->redis, on_key_cached, job, 2, argv, NULL) < 0) {
        ldg_req_unref(req);
        key_from_db(req, job);
    }
}

/* ---- sessions (access JWTs) ------------------------------------------------------------------- */

static void auth_jwt(struct ldg_req *req, const char *tok, size_t n)
{
    struct ldg_jwt_claims c;
    int rc = ldg_jwt_verify(G.secret, G.secret_len, tok, n, (int64_t)(ldg_wall_ms() / 1000u), &c);
    if (rc < 0 || c.type != LDG_JWT_ACCESS) {
        deny_401(req, "Invalid or expired session token");
        return;
    }
    struct ldg_principal *p = ldg_arena_alloc(&req->arena, sizeof *p);
    memset(p, 0, sizeof *p);
    p->kind = LDG_PRINCIPAL_SESSION;
    p->account_id = c.sub;
    p->project_id = -1;
    p->rate_limit_per_minute = G.cfg->session_rate_per_minute;
    p->rate_limit_per_hour = G.cfg->session_rate_per_hour;
    snprintf(p->sid, sizeof p->sid, "%s", c.sid);
    p->expires_at = c.exp;
    p->email = ldg_arena_strndup(&req->arena, c.email, strlen(c.email));
    req->principal = p;
    limits_start(req, p);
}

/* ---- credentials (reference §1.3) --------------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static void on_filter(struct ldg_req *req)
{
    struct ldg_str xk = ldg_req_header(req, "X-API-Key");
    if (xk.n > 0) {
        auth_api_key(req, xk.p, xk.n);
        return;
    }
    struct ldg_str a = ldg_req_header(req, "Authorization");
    if ((!a.p || a.n == 0) && req->match.route && (req->match.route->flags & LDG_ROUTE_TOKEN_QUERY)) {
        /* A browser's EventSource cannot set headers (decisions D7): ?token=<access token or API
         * key>, else the access_token cookie set at login. Treated as a bearer token. */
        struct ldg_str q;
        if (ldg_req_query(req, "token", &q) && q.n)
            a = q;
        else
            a = ldg_req_cookie(req, "access_token");
    }
    if (!a.p || a.n == 0) {
        deny_401(req, "Missing authentication header (X-API-Key or Authorization)");
        return;
    }
    /* Split on whitespace: "<scheme> <token>" or a bare token. */
    struct ldg_str part[3];
    size_t np = 0, i = 0;
    while (i < a.n && np < 3) {
        while (i < a.n && is_space(a.p[i]))
            i++;
        if (i == a.n)
            break;
        size_t s = i;
        while (i < a.n && !is_space(a.p[i]))
            i++;
        part[np++] = ldg_str_make(a.p + s, i - s);
    }
    struct ldg_str tok;
    if (np == 2 && ldg_str_caseeq(part[0], "bearer"))
        tok = part[1];
    else if (np == 1)
        tok = part[0];
    else {
        deny_401(req, "Invalid Authorization header format");
        return;
    }
    if (tok.n > 7 && memcmp(tok.p, "ledger_", 7) == 0) {
        auth_api_key(req, tok.p, tok.n);
        return;
    }
    size_t dots = 0;
    for (size_t k = 0; k < tok.n; k++)
        dots += tok.p[k] == '.';
    if (dots == 2 || (tok.n > 6 && memcmp(tok.p, "token_", 6) == 0)) {
        auth_jwt(req, tok.p, tok.n); /* v1 "token_..." session tokens fail verification: 401 */
        return;
    }
    auth_api_key(req, tok.p, tok.n);
}

/* ---- revocations -------------------------------------------------------------------------------- */

static void on_invalidate(struct ldg_redis_sub *s, const char *channel, size_t chlen, const char *msg,
                          size_t msglen, void *ud)
{
    struct gw *gw = ud;
    if (msglen != LDG_SHA256_HEX_LEN)
        return;
    char digest[LDG_SHA256_HEX_LEN + 1];
    memcpy(digest, msg, msglen);
    digest[msglen] = 0;
    ldg_keytable_del(&gw->keys, digest);
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

static int gateway_init_global(const struct ldg_config *c, const void *cfg)
{
    G.cfg = cfg;
    G.secret = (const unsigned char *)c->jwt_secret;
    G.secret_len = strlen(c->jwt_secret);
    gateway_index = ldg_role_index("gateway");
    int rc = ldg__otlp_listen_check(G.cfg->otlp_listen, c);
    if (rc < 0)
        return rc;
    return ldg__gateway_web_init(cfg);
}

static void gateway_free_global(void)
{
    ldg__gateway_web_free();
}

static void gateway_routes(struct ldg_router *r, const void *cfg)
{
    ldg_router_set_filter(r, on_filter);
    int rc = ldg__gateway_web_routes(r, cfg);
    if (rc < 0)
        ldg_log_error(NULL, "gateway: cannot install the web app route: %s", strerror(-rc));
}

static int gateway_init_worker(struct ldg_worker *w, const void *cfg, void **state)
{
    struct gw *gw = ldg_calloc(1, sizeof *gw);
    gw->w = w;
    ldg_breaker_init(&gw->breaker, (unsigned)G.cfg->breaker_failures, (uint64_t)G.cfg->breaker_open_ms);
    ldg_keytable_init(&gw->keys, (size_t)G.cfg->key_cache_size);
    const struct ldg_config *c = w->cfg;
    char name[32];
    snprintf(name, sizeof name, "gw-sub-%u", w->id);
    gw->sub = ldg_redis_sub_new(&w->loop, &c->redis, c->redis_password, name, on_invalidate, gw);
    int rc = ldg_redis_sub_subscribe(gw->sub, LDG_KEYCACHE_CHANNEL);
    LDG_ASSERT(rc == 0);
    gw->sub_errors_seen = 0;
    *state = gw;
    return ldg__otlp_listen_start(w, G.cfg->otlp_listen, &gw->otlp);
}

static void on_sub_closed(void *ud)
{
    struct gw *gw = ud;
    gw->sub_closed = true;
}

static void gateway_stop_worker(struct ldg_worker *w, void *state)
{
    struct gw *gw = state;
    if (gw->sub) {
        struct ldg_redis_sub *s = gw->sub;
        gw->sub = NULL;
        ldg_redis_sub_close(s, on_sub_closed, gw);
    }
    ldg__otlp_listen_stop(&gw->otlp);
}

static bool gateway_drained(const struct ldg_worker *w, const void *state)
{
    const struct gw *gw = state;
    return gw->sub_closed && ldg__otlp_listen_closed(&gw->otlp);
}

static void gateway_free_worker(struct ldg_worker *w, void *state)
{
    struct gw *gw = state;
    if (gw->sub)
        ldg_redis_sub_close(gw->sub, NULL, NULL);
    ldg_keytable_free(&gw->keys);
    free(gw);
}

static void gateway_health(const struct ldg_worker *w, const void *state, struct ldg_buf *out)
{
    const struct gw *gw = state;
    const char *breaker = ldg_breaker_is_open(&gw->breaker) ? "open" : "closed";
    bool sub = gw->sub && ldg_redis_sub_connected(gw->sub);
    ldg_buf_printf(
        out, "{\"status\":\"running\",\"key_cache\":%zu,\"auth_db_breaker\":\"%s\",\"revocations\":\"%s\"}",
        gw->keys.count, breaker, sub ? "subscribed" : "disconnected");
}

const struct ldg_role ldg_role_gateway = {
    .name = "gateway",
    .keys = ldg_gateway_cfg_keys,
    .cfg_size = sizeof(struct ldg_gateway_cfg),
    .init_global = gateway_init_global,
    .routes = gateway_routes,
    .init_worker = gateway_init_worker,
    .stop_worker = gateway_stop_worker,
    .drained = gateway_drained,
    .free_worker = gateway_free_worker,
    .free_global = gateway_free_global,
    .health = gateway_health,
};
