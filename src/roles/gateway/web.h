/*
 * web.h: the gateway serves the built web app (`[gateway] web_enabled`, `web_dir`; docs/web.md).
 *
 * The directory is loaded into memory once by init_global (webdir.h); requests are answered from
 * that immutable table through the router's fallback route, so they never touch the file system
 * and never block a loop. The fallback takes GET/HEAD requests that match no API route and whose
 * path is not an API path (ldg_webdir_is_api_path): a file of the table, else index.html for the
 * app's client-side routes (except under /assets/, where a missing file is a 404). Without a
 * loadable directory only `/` is taken, answered 404 "dashboard not built"; other paths keep their
 * JSON behaviour.
 *
 * Internal to the gateway role. Threading: init/routes/free on the main thread; the handler on
 * worker threads, reading only immutable state.
 */
#ifndef LDG_ROLES_GATEWAY_WEB_H
#define LDG_ROLES_GATEWAY_WEB_H

#include "roles/gateway/gateway.h"

struct ldg_router;

/* The Content-Security-Policy of every web app answer. */
#define LDG_WEB_CSP                                                                                          \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "                       \
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "     \
    "form-action 'self'"

/* Install the fallback route when web_enabled. */
int ldg__gateway_web_routes(struct ldg_router *r, const struct ldg_gateway_cfg *cfg) LDG_MUSTCHECK;
/* Load web_dir when web_enabled: 0 (also when it is missing: one warning), or a negative errno when
 * it exists but cannot be loaded within the bounds (logged; startup fails). */
int ldg__gateway_web_init(const struct ldg_gateway_cfg *cfg) LDG_MUSTCHECK;
void ldg__gateway_web_free(void);

#endif
