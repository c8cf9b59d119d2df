/*
 * router.h: (method, path) -> handler table. Roles add routes on the main thread before workers
 * start; afterwards the router is immutable and shared read-only by every worker thread.
 *
 * Patterns are absolute paths whose segments are literals or `{name}` parameters, e.g.
 * "/api/v1/projects/{project_id}/quota". A parameter matches one non-empty segment.
 * HEAD is served by GET routes (the body is dropped by the response writer).
 */
#ifndef LDG_ROUTER_H
#define LDG_ROUTER_H

#include "core/common.h"
#include "core/str.h"

struct ldg_req;
typedef void (*ldg_handler_fn)(struct ldg_req *req);
struct ldg_router;

#define LDG_ROUTE_MAX_PARAMS 4
#define LDG_ROUTE_MAX_SEGS 12

/* Route flags. */
#define LDG_ROUTE_PUBLIC 0x1u    /* no authentication (health, register, login...) */
#define LDG_ROUTE_ACCOUNT 0x2u   /* account-level: API-key principals get 403 (D2) */
#define LDG_ROUTE_NO_LIMITS 0x4u /* authenticated, but no rate-limit/quota accounting */
#define LDG_ROUTE_QUOTA 0x8u     /* counts against the project's daily quota: 402 once it is used up */
#define LDG_ROUTE_USAGE                                                                                      \
    0x10u /* API-key principals: the gateway reads today's usage counter into                                \
           * the principal (usage_today) in its rate-limit round trip */
#define LDG_ROUTE_OWN_LIMITS                                                                                 \
    0x20u /* API-key principals: the handler counts rate limits and quota in its own Redis round             \
           * trip (ldg_gateway_ratelimit_*), or asks the gateway to (ldg_gateway_limits_then) */
#define LDG_ROUTE_TOKEN_QUERY                                                                                \
    0x40u /* credentials may also come from ?token= or the access_token cookie (a browser's                  \
           * EventSource cannot set headers); headers still win */
#define LDG_ROUTE_OTLP_LISTENER 0x100u /* also served on the [gateway] otlp_listen listener (only these are) */
#define LDG_ROUTE_FALLBACK 0x80u /* set by ldg_router_set_fallback: never matched by its pattern */

/* Renders this route's error answers instead of {"detail": …} (ldg_req_error calls it, with the
 * same arguments): for protocols with their own error bodies, e.g. OTLP's google.rpc.Status. It
 * must answer with ldg_req_respond. */
typedef void (*ldg_route_error_fn)(struct ldg_req *req, int status, const char *detail);

struct ldg_route_opts {
    size_t max_body_bytes; /* 0: the server default */
    ldg_route_error_fn error_fn; /* NULL: the default error body */
    unsigned flags;
    void *ud;         /* borrowed: handler context, e.g. the role's global state */
    const char *name; /* metrics label; defaults to the pattern */
};

struct ldg_route {
    int method;          /* llhttp_method_t */
    const char *pattern; /* owned copy */
    const char *name;    /* borrowed or == pattern */
    ldg_handler_fn fn;
    void *ud;
    ldg_route_error_fn error_fn;
    size_t max_body_bytes;
    unsigned flags;
    unsigned index; /* dense, 0..n-1: index into per-route stats */
    size_t nsegs;
    struct {
        const char *lit; /* NULL for a parameter; points into pattern copy */
        size_t n;
        const char *param; /* parameter name (NUL-terminated, owned by the route) */
    } segs[LDG_ROUTE_MAX_SEGS];
};

enum ldg_route_result { LDG_ROUTE_FOUND, LDG_ROUTE_NOT_FOUND, LDG_ROUTE_BAD_METHOD };

struct ldg_route_match {
    const struct ldg_route *route;
    struct ldg_str params[LDG_ROUTE_MAX_PARAMS]; /* borrowed from the path */
    size_t nparams;
    char allow[96]; /* for 405: "GET, HEAD, POST" */
};

/* A filter runs before every non-public route (and before 404/405 answers for non-public
 * paths, as v1 authenticates first). It must eventually call ldg_req_run_handler(req) or
 * answer the request itself. Set by the gateway role; NULL = no filter. */
typedef void (*ldg_filter_fn)(struct ldg_req *req);

/*
 * The fallback route answers GET and HEAD requests whose path matches no route at all (not even
 * with another method) and that `claims(path)` accepts: the gateway serves the web app's files
 * and its client-side routes this way. It is public (no filter runs) and gets its own stats row
 * named `name`. `claims` runs on worker threads for every unmatched GET/HEAD and must only read
 * immutable state. At most one fallback; main thread, before workers start.
 * Returns 0, -EEXIST (one is already set) or -EINVAL.
 */
typedef bool (*ldg_fallback_claims_fn)(struct ldg_str path);
int ldg_router_set_fallback(struct ldg_router *r, const char *name, ldg_fallback_claims_fn claims,
                            ldg_handler_fn fn) LDG_MUSTCHECK;

struct ldg_router *ldg_router_new(void);
/* Main thread, before workers start. */
void ldg_router_set_filter(struct ldg_router *r, ldg_filter_fn fn);
ldg_filter_fn ldg_router_filter(const struct ldg_router *r);
void ldg_router_free(struct ldg_router *r);

/* Returns 0, -EINVAL for a bad pattern or method, -EEXIST for a duplicate. Main thread only. */
int ldg_router_add(struct ldg_router *r, const char *method, const char *pattern, ldg_handler_fn fn,
                   const struct ldg_route_opts *opts) LDG_MUSTCHECK;

/* Look up; thread-safe after startup (read-only). `method` is an llhttp_method_t. */
enum ldg_route_result ldg_router_match(const struct ldg_router *r, int method, struct ldg_str path,
                                       struct ldg_route_match *m);

/* Methods allowed for a path, "GET, POST" (for CORS preflight); returns false if no route matches. */
bool ldg_router_allowed(const struct ldg_router *r, struct ldg_str path, char *out, size_t cap);

size_t ldg_router_count(const struct ldg_router *r);
const struct ldg_route *ldg_router_at(const struct ldg_router *r, size_t i);

#endif
