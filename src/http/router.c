/*
 * router.c: a flat table scanned linearly. With a few dozen routes a scan over pre-split
 * segments costs less than building a trie, and keeps 404/405 logic obvious: 405 means "some
 * route matched the path, none the method".
 */
#include "http/router.h"

#include <llhttp.h>

#include "core/alloc.h"

struct ldg_router {
    struct ldg_route **routes; /* owned */
    size_t n, cap;
    ldg_filter_fn filter;
    const struct ldg_route *fallback; /* borrowed from routes[]; NULL when none */
    ldg_fallback_claims_fn claims;
};

void ldg_router_set_filter(struct ldg_router *r, ldg_filter_fn fn)
{
    r->filter = fn;
}

ldg_filter_fn ldg_router_filter(const struct ldg_router *r)
{
    return r->filter;
}

struct ldg_router *ldg_router_new(void)
{
    return ldg_calloc(1, sizeof(struct ldg_router));
}

void ldg_router_free(struct ldg_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        struct ldg_route *rt = r->routes[i];
        for (size_t s = 0; s < rt->nsegs; s++)
            free((char *)rt->segs[s].param);
        free((char *)rt->pattern);
        free(rt);
    }
    free(r->routes);
    free(r);
}

static int method_from_name(const char *m)
{
    static const struct {
        const char *name;
        int v;
    } tab[] = {{"GET", HTTP_GET},       {"POST", HTTP_POST}, {"PUT", HTTP_PUT},        {"PATCH", HTTP_PATCH},
               {"DELETE", HTTP_DELETE}, {"HEAD", HTTP_HEAD}, {"OPTIONS", HTTP_OPTIONS}};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(tab); i++)
        if (strcmp(tab[i].name, m) == 0)
            return tab[i].v;
    return -1;
}

int ldg_router_add(struct ldg_router *r, const char *method, const char *pattern, ldg_handler_fn fn,
                   const struct ldg_route_opts *opts)
{
    int m = method_from_name(method);
    if (m < 0 || pattern[0] != '/' || !fn)
        return -EINVAL;
    struct ldg_route *rt = ldg_calloc(1, sizeof *rt);
    rt->method = m;
    rt->pattern = ldg_strdup(pattern);
    rt->fn = fn;
    if (opts) {
        rt->ud = opts->ud;
        rt->max_body_bytes = opts->max_body_bytes;
        rt->error_fn = opts->error_fn;
        rt->flags = opts->flags;
        rt->name = opts->name;
    }
    if (!rt->name)
        rt->name = rt->pattern;
    size_t nparams = 0;
    const char *p = rt->pattern + 1;
    int rc = 0;
    while (*p || rt->nsegs == 0) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (rt->nsegs == LDG_ROUTE_MAX_SEGS) {
            rc = -EINVAL;
            break;
        }
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
            if (nparams++ == LDG_ROUTE_MAX_PARAMS) {
                rc = -EINVAL;
                break;
            }
            rt->segs[rt->nsegs].param = ldg_strndup(p + 1, n - 2);
        } else {
            rt->segs[rt->nsegs].lit = p;
            rt->segs[rt->nsegs].n = n;
        }
        rt->nsegs++;
        if (!e)
            break;
        p = e + 1;
    }
    for (size_t i = 0; rc == 0 && i < r->n; i++)
        if (r->routes[i]->method == m && strcmp(r->routes[i]->pattern, pattern) == 0)
            rc = -EEXIST;
    if (rc < 0) {
        for (size_t s = 0; s < rt->nsegs; s++)
            free((char *)rt->segs[s].param);
        free((char *)rt->pattern);
        free(rt);
        return rc;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->routes = ldg_realloc(r->routes, r->cap * sizeof *r->routes);
    }
    rt->index = (unsigned)r->n;
    r->routes[r->n++] = rt;
    return 0;
}

/* Split the request path into at most LDG_ROUTE_MAX_SEGS + 1 segments ("/" is one empty one). */
static size_t split_path(struct ldg_str path, struct ldg_str *segs)
{
    size_t n = 0, i = 1;
    if (path.n == 0 || path.p[0] != '/')
        return 0;
    for (;;) {
        size_t s = i;
        while (i < path.n && path.p[i] != '/')
            i++;
        if (n > LDG_ROUTE_MAX_SEGS)
            return 0;
        segs[n++] = ldg_str_make(path.p + s, i - s);
        if (i >= path.n)
            break;
        i++;
    }
    return n;
}

static bool path_matches(const struct ldg_route *rt, const struct ldg_str *segs, size_t nsegs,
                         struct ldg_route_match *m)
{
    if (rt->nsegs != nsegs || (rt->flags & LDG_ROUTE_FALLBACK))
        return false;
    size_t np = 0;
    for (size_t i = 0; i < nsegs; i++) {
        if (rt->segs[i].param) {
            if (segs[i].n == 0)
                return false;
            if (m)
                m->params[np] = segs[i];
            np++;
        } else if (rt->segs[i].n != segs[i].n || memcmp(rt->segs[i].lit, segs[i].p, segs[i].n) != 0) {
            return false;
        }
    }
    if (m)
        m->nparams = np;
    return true;
}

static void append_method(char *out, size_t cap, int method)
{
    const char *name = llhttp_method_name((llhttp_method_t)method);
    size_t o = strlen(out);
    if (strstr(out, name))
        return;
    snprintf(out + o, cap - o, "%s%s", o ? ", " : "", name);
}

enum ldg_route_result ldg_router_match(const struct ldg_router *r, int method, struct ldg_str path,
                                       struct ldg_route_match *m)
{
    struct ldg_str segs[LDG_ROUTE_MAX_SEGS + 1];
    size_t nsegs = split_path(path, segs);
    bool path_seen = false;
    m->route = NULL;
    m->nparams = 0;
    m->allow[0] = '\0';
    if (nsegs == 0 && (path.n == 0 || path.p[0] != '/'))
        return LDG_ROUTE_NOT_FOUND;
    /* nsegs == 0 past here: a path deeper than any route; only the fallback may take it. */
    int want = method == HTTP_HEAD ? HTTP_GET : method;
    for (size_t i = 0; i < r->n; i++) {
        const struct ldg_route *rt = r->routes[i];
        if (rt->method == want && path_matches(rt, segs, nsegs, m)) {
            m->route = rt;
            return LDG_ROUTE_FOUND;
        }
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct ldg_route *rt = r->routes[i];
        if (path_matches(rt, segs, nsegs, NULL)) {
            path_seen = true;
            append_method(m->allow, sizeof m->allow, rt->method);
            if (rt->method == HTTP_GET)
                append_method(m->allow, sizeof m->allow, HTTP_HEAD);
        }
    }
    if (path_seen) {
        append_method(m->allow, sizeof m->allow, HTTP_OPTIONS);
        return LDG_ROUTE_BAD_METHOD;
    }
    if (r->fallback && want == HTTP_GET && r->claims(path)) {
        m->route = r->fallback;
        return LDG_ROUTE_FOUND;
    }
    return LDG_ROUTE_NOT_FOUND;
}

int ldg_router_set_fallback(struct ldg_router *r, const char *name, ldg_fallback_claims_fn claims,
                            ldg_handler_fn fn)
{
    if (!claims || !fn || !name || name[0] != '/')
        return -EINVAL;
    if (r->fallback)
        return -EEXIST;
    /* A table entry like any other (stats row, metrics label), which the path scan skips. */
    struct ldg_route_opts o = {.flags = LDG_ROUTE_PUBLIC | LDG_ROUTE_FALLBACK, .name = NULL};
    int rc = ldg_router_add(r, "GET", name, fn, &o);
    if (rc < 0)
        return rc;
    r->fallback = r->routes[r->n - 1];
    r->claims = claims;
    return 0;
}

bool ldg_router_allowed(const struct ldg_router *r, struct ldg_str path, char *out, size_t cap)
{
    struct ldg_route_match m;
    enum ldg_route_result res = ldg_router_match(r, -1, path, &m);
    snprintf(out, cap, "%s", m.allow);
    return res == LDG_ROUTE_BAD_METHOD;
}

size_t ldg_router_count(const struct ldg_router *r)
{
    return r->n;
}

const struct ldg_route *ldg_router_at(const struct ldg_router *r, size_t i)
{
    return r->routes[i];
}
