/*
 * principal.h: who is making a request, as established by the gateway (roles/gateway).
 *
 * The gateway authenticates every non-public request before its handler runs and stores a
 * struct ldg_principal in the request's arena (req->principal). Handlers of authenticated routes
 * can rely on it being set; public routes see NULL.
 *
 * Kinds (reference §1.3, decisions D2/D3):
 *   API_KEY  an SDK: project_id is the key's project, account_id the project's owner. May only
 *            call project-scoped routes (routes flagged LDG_ROUTE_ACCOUNT answer 403 first).
 *   SESSION  a dashboard user with an access JWT: account_id from `sub`, the session id from
 *            `sid`; project_id is -1 (none).
 *
 * Threading/ownership: arena memory of the request; read-only for handlers.
 */
#ifndef LDG_AUTH_PRINCIPAL_H
#define LDG_AUTH_PRINCIPAL_H

#include "auth/apikey.h"
#include "auth/jwt.h"
#include "core/common.h"

enum ldg_principal_kind {
    LDG_PRINCIPAL_API_KEY = 1,
    LDG_PRINCIPAL_SESSION,
};

struct ldg_principal {
    enum ldg_principal_kind kind;
    int64_t account_id;
    int64_t project_id;            /* API key: its project; session: -1 */
    int64_t key_id;                /* API key: api_keys.id; session: 0 */
    int64_t rate_limit_per_minute; /* the key's limits, or the session defaults of [gateway] */
    int64_t rate_limit_per_hour;
    int64_t daily_quota;                     /* API key: the project's quota; session: 0 (none) */
    int64_t retention_days;                  /* API key: the project's retention (days); session: 0 */
    int64_t usage_today;                     /* routes flagged LDG_ROUTE_QUOTA/USAGE, API keys: the live
                                              * usage:<project>:<UTC day> counter; -1 = not read */
    char sid[LDG_JWT_ID_MAX + 1];            /* session id ("" for API keys) */
    char key_digest[LDG_SHA256_HEX_LEN + 1]; /* API key: SHA-256 hex of the key ("" for sessions) */
    const char *email;                       /* session: from the token (arena); API key: NULL */
    int64_t expires_at;                      /* session: the access token's exp (Unix s); API key: 0 */
};

struct ldg_req;

/* The request's principal, or NULL on public routes. */
static inline const struct ldg_principal *ldg_principal(const struct ldg_req *req);

#include "http/request.h"

static inline const struct ldg_principal *ldg_principal(const struct ldg_req *req)
{
    return (const struct ldg_principal *)req->principal;
}

#endif
