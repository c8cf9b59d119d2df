/*
 * gateway.h: the gateway role: the public edge's authentication, rate limits and daily-quota
 * check (reference §1.1-1.4, decisions D2-D4). It installs the router filter that runs before
 * every non-public route (and before 404/405 answers, as v1 authenticates first).
 *
 * Per request: credentials (X-API-Key, Authorization: Bearer <API key | access JWT>, a bare key)
 * -> principal (src/auth/principal.h) -> one pipelined Redis round trip (session liveness for
 * JWTs, minute and hour counters, the daily usage counter on quota routes) -> 401/402/403/429 or
 * the handler, with X-RateLimit-* headers.
 *
 * API keys are validated through three layers (decisions D3): a per-loop table (keytable.h),
 * Redis `api_key:<digest>` (TTL 300 s, shared by every gateway), then PostgreSQL by the indexed
 * digest. Revocations arrive on the Redis channel of auth/keycache.h and evict from every loop
 * table. While the auth database is unreachable (failures counted by a per-loop circuit breaker),
 * keys validated within key_stale_ms keep working; others get 503.
 *
 * Threading: per-worker state on the worker's loop; the config is immutable.
 */
#ifndef LDG_ROLES_GATEWAY_H
#define LDG_ROLES_GATEWAY_H

#include "core/common.h"
#include "core/config.h"
#include "roles/role.h"

enum ldg_gateway_redis_failure {
    LDG_GATEWAY_FAIL_OPEN,   /* Redis unreachable: requests pass without limits (v1) */
    LDG_GATEWAY_FAIL_CLOSED, /* Redis unreachable: 503 */
};

/* The [gateway] section. */
struct ldg_gateway_cfg {
    int64_t key_cache_size;      /* per-loop table entries */
    int64_t key_cache_ttl_ms;    /* how long a loop trusts an entry (with invalidations flowing) */
    int64_t key_recheck_ms;      /* how long it trusts one while the invalidation channel is down */
    int64_t key_negative_ttl_ms; /* unknown keys remembered */
    int64_t key_stale_ms;        /* auth DB down: keys validated this recently still work */
    int64_t breaker_failures;    /* consecutive auth DB failures that open the breaker */
    int64_t breaker_open_ms;     /* then no attempt for this long (then one probe) */
    int redis_failure;           /* enum ldg_gateway_redis_failure */
    int64_t session_rate_per_minute;
    int64_t session_rate_per_hour;
    int64_t last_used_interval_ms; /* api_keys.last_used_at written at most this often per key */
    bool web_enabled;              /* serve the web app (web.h) */
    char *web_dir;                 /* its built files; relative: to the working directory */
    char *otlp_listen;             /* "host:port" of the OTLP-only listener, "" = none (otlplisten.h) */
};

/*
 * Routes flagged LDG_ROUTE_OWN_LIMITS let an API-key request through without the gateway's
 * rate-limit round trip: the handler increments the two window counters in its own Redis call
 * (keys from ldg_gateway_ratelimit_keys, each given its TTL when created: 60 s and 3600 s) and
 * hands the counts to ldg_gateway_ratelimit_verdict. A request that will not reach that call
 * (e.g. a 400 for its body) goes through ldg_gateway_limits_then instead, so every request is
 * counted and answered as the gateway would have. All functions: worker thread.
 */
struct ldg_req;
typedef void (*ldg_gateway_then_fn)(struct ldg_req *req, void *ud);

struct ldg_ratelimit {
    char min_key[64], hour_key[64]; /* ratelimit:<project_id>:min|hour:<window> */
    uint64_t now_s;
    long long min_limit, hour_limit;
};

/* Fill rl for the request's API-key principal. */
void ldg_gateway_ratelimit_keys(struct ldg_req *req, struct ldg_ratelimit *rl);

/* Add the X-RateLimit-* headers for the counts after this request; when one is over its limit,
 * answer 429 with Retry-After and return true. */
bool ldg_gateway_ratelimit_verdict(struct ldg_req *req, const struct ldg_ratelimit *rl, long long mc,
                                   long long hc);

/* Run the gateway's limits (429, 402, Redis down) for the request now, then then(req, ud) unless
 * they answered. Not called if the client went away: ud must live in the request's arena or be
 * static. */
void ldg_gateway_limits_then(struct ldg_req *req, ldg_gateway_then_fn then, void *ud);

extern const struct ldg_cfg_key ldg_gateway_cfg_keys[];
extern const struct ldg_role ldg_role_gateway;

#endif
