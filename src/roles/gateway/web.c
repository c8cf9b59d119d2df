/*
 * web.c: see web.h. Caching rules: Vite puts content-hashed bundles under assets/, so those are
 * immutable for a year; index.html and the other unhashed files are `no-cache` (revalidated with
 * their ETag on every use, which costs a 304). Each file's ETag is fixed at load, one per
 * representation (identity, gzip), so a 304 never needs the bytes.
 */
#include "roles/gateway/web.h"

#include <errno.h>

#include "core/log.h"
#include "http/request.h"
#include "http/router.h"
#include "roles/gateway/webdir.h"

static struct {
    struct ldg_webdir dir; /* immutable once workers run */
    bool loaded;
} W;

static bool on_claims(struct ldg_str path)
{
    if (ldg_webdir_is_api_path(path))
        return false;
    return W.loaded || (path.n == 1 && path.p[0] == '/');
}

static void add_policy_headers(struct ldg_req *req)
{
    ldg_req_add_header(req, "Content-Security-Policy", LDG_WEB_CSP);
    ldg_req_add_header(req, "X-Content-Type-Options", "nosniff");
    ldg_req_add_header(req, "Referrer-Policy", "same-origin");
}

static void serve_file(struct ldg_req *req, const struct ldg_webfile *f)
{
    bool gz = f->gz && ldg_webdir_accepts_gzip(ldg_req_header(req, "Accept-Encoding"));
    const char *etag = gz ? f->gz_etag : f->etag;
    ldg_req_add_header(req, "ETag", etag);
    ldg_req_add_header(req, "Cache-Control", f->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (f->gz)
        ldg_req_add_header(req, "Vary", "Accept-Encoding");
    if (gz)
        ldg_req_add_header(req, "Content-Encoding", "gzip");
    struct ldg_str inm = ldg_req_header(req, "If-None-Match");
    if (inm.p && ldg_webdir_etag_matches(inm, etag)) {
        ldg_req_respond(req, 304, NULL, NULL, 0);
        return;
    }
    if (gz)
        ldg_req_respond(req, 200, f->type, f->gz, f->gz_len);
    else
        ldg_req_respond(req, 200, f->type, f->data, f->len);
}

static void on_static(struct ldg_req *req)
{
    add_policy_headers(req);
    if (!W.loaded) {
        ldg_req_add_header(req, "Cache-Control", "no-cache");
        ldg_req_error(req, 404, "Dashboard not built: no index.html in [gateway] web_dir");
        return;
    }
    char *name = ldg_arena_alloc(&req->arena, req->path.n + 1);
    int n = ldg_webdir_clean_path(req->path, name, req->path.n + 1);
    if (n < 0) {
        ldg_req_error(req, 400, "Invalid path");
        return;
    }
    const struct ldg_webfile *f = n == 0 ? W.dir.index : ldg_webdir_find(&W.dir, name, (size_t)n);
    if (!f) {
        if (n >= 7 && memcmp(name, "assets/", 7) == 0) {
            /* A hashed bundle that is not there (an old page after a deploy): never the app's HTML. */
            ldg_req_add_header(req, "Cache-Control", "no-cache");
            ldg_req_error(req, 404, "Not Found");
            return;
        }
        f = W.dir.index; /* a client-side route of the app */
    }
    serve_file(req, f);
}

int ldg__gateway_web_routes(struct ldg_router *r, const struct ldg_gateway_cfg *cfg)
{
    if (!cfg->web_enabled)
        return 0;
    return ldg_router_set_fallback(r, "/{static}", on_claims, on_static);
}

int ldg__gateway_web_init(const struct ldg_gateway_cfg *cfg)
{
    if (!cfg->web_enabled)
        return 0;
    char why[256];
    int rc = ldg_webdir_load(&W.dir, cfg->web_dir, why, sizeof why);
    if (rc == -ENOENT) {
        ldg_log_warn(NULL, "gateway: web app not served (%s); GET / answers 404 until it is built", why);
        return 0;
    }
    if (rc < 0) {
        ldg_log_error(NULL, "gateway: cannot load web_dir %s: %s (%s)", cfg->web_dir, why, strerror(-rc));
        return rc;
    }
    W.loaded = true;
    ldg_log_info(NULL, "gateway: serving the web app from %s (%zu files, %zu bytes)", cfg->web_dir, W.dir.n,
                 W.dir.bytes);
    return 0;
}

void ldg__gateway_web_free(void)
{
    ldg_webdir_free(&W.dir);
    W.loaded = false;
}
