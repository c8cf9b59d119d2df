/*
 * jwt.h: HS256 JSON Web Tokens for dashboard sessions (decisions D3: access token 15 min,
 * rotating refresh token 7 days; RFC 7519 / RFC 7515 compact form).
 *
 * Tokens this module signs have the header {"alg":"HS256","typ":"JWT"} and the payload
 *   {"sub":"<account id>","email":"...","type":"access"|"refresh","sid":"...","iat":N,"exp":N[,"jti":"..."]}
 * with `sub` a decimal string, as RFC 7519 asks of StringOrURI claims.
 *
 * Verification is strict: exactly three base64url parts without padding, at most
 * LDG_JWT_MAX_TOKEN bytes, a header whose members are only `alg` (must be "HS256"; "none" and every
 * other algorithm are refused) and optionally `typ` (must be "JWT"), a signature checked in
 * constant time before the payload is looked at, then every claim present with the right type and
 * bounds. `sub` is accepted as a decimal string or as a JSON integer. Unknown payload claims are
 * ignored. Callers compare `type` with what the endpoint expects (an access token is not a
 * refresh token) and check `sid` against the session store.
 *
 * Pure functions: no global state, any thread. Secrets and tokens are borrowed for the call.
 */
#ifndef LDG_AUTH_JWT_H
#define LDG_AUTH_JWT_H

#include "core/buf.h"
#include "core/common.h"

#define LDG_JWT_MAX_TOKEN 4096      /* bytes */
#define LDG_JWT_EMAIL_MAX_CHARS 255 /* code points */
#define LDG_JWT_ID_MAX 64           /* bytes of sid / jti */

enum ldg_jwt_type {
    LDG_JWT_ACCESS = 1, /* "access" */
    LDG_JWT_REFRESH,    /* "refresh" */
};

struct ldg_jwt_claims {
    int64_t sub;                                 /* account id, >= 0 */
    char email[LDG_JWT_EMAIL_MAX_CHARS * 4 + 1]; /* UTF-8, NUL-terminated */
    enum ldg_jwt_type type;
    char sid[LDG_JWT_ID_MAX + 1]; /* session id, non-empty, NUL-terminated */
    int64_t iat;                  /* issued at, Unix seconds */
    int64_t exp;                  /* expires at, Unix seconds */
    char jti[LDG_JWT_ID_MAX + 1]; /* token id; "" = absent (not emitted) */
};

/* "access" / "refresh"; NULL for anything else. Static storage. */
const char *ldg_jwt_type_name(enum ldg_jwt_type t);

/* Append the signed token for `c` to `out` (owned by the caller; existing contents are kept).
 * Returns 0, or -EINVAL (empty secret; email not UTF-8 or over 255 characters; sid empty or
 * over 64 bytes; jti over 64 bytes; sub negative; unknown type), and then appends nothing. */
int ldg_jwt_sign(const unsigned char *secret, size_t slen, const struct ldg_jwt_claims *c,
                 struct ldg_buf *out) LDG_MUSTCHECK;

/* Check token[0..len) against `secret` at time `now` (Unix seconds) and fill *out.
 * Returns 0; -EINVAL (malformed, wrong header, bad signature, missing or invalid claim, empty
 * secret); -ETIMEDOUT (well-formed and correctly signed but exp <= now). *out is fully written
 * on 0 and on -ETIMEDOUT, and zeroed otherwise. */
int ldg_jwt_verify(const unsigned char *secret, size_t slen, const char *token, size_t len, int64_t now,
                   struct ldg_jwt_claims *out) LDG_MUSTCHECK;

#endif
