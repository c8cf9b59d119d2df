/*
 * request.h: one HTTP request and its response.
 *
 * Memory: every string of the request (path, query, headers, params) lives in `arena` and is
 * valid until the request is released; the body lives in `body` (owned). A handler may keep
 * pointers into them for as long as it holds a reference.
 *
 * Threading: the worker thread that accepted the connection, only.
 *
 * Async work: the connection holds one reference. A handler that starts backend work takes its
 * own with ldg_req_ref() and drops it with ldg_req_unref() in the backend callback. If the
 * connection went away (closed, or the request timed out and was answered 503), `req->conn` is
 * NULL: the callback drops its result, unrefs, and must not respond (ldg_req_respond then is a
 * no-op, so calling it is harmless).
 *
 * Responding: exactly one ldg_req_respond*() per request (later calls are ignored). It adds
 * Date, Content-Length, Connection, X-Request-ID and CORS headers itself.
 */
#ifndef LDG_REQUEST_H
#define LDG_REQUEST_H

#include "core/arena.h"
#include "core/buf.h"
#include "core/list.h"
#include "core/str.h"
#include "http/router.h"

struct ldg_conn;
struct ldg_worker;

struct ldg_header {
    struct ldg_str name, value; /* in req->arena */
};

#define LDG_REQ_ARENA_INLINE 2048

struct ldg_req {
    struct ldg_conn *conn;     /* borrowed; NULL once the connection dropped this request */
    struct ldg_worker *w;      /* borrowed */
    struct ldg_list_node link; /* on the worker's req_pool when free */
    unsigned refs;

    /* Request line and head. */
    int method;              /* llhttp_method_t */
    const char *method_name; /* static */
    struct ldg_str url;      /* raw request target */
    struct ldg_str path;     /* target up to '?' */
    struct ldg_str query;    /* after '?', raw (not decoded) */
    uint8_t http_major, http_minor;
    struct ldg_header *headers; /* in arena */
    size_t nheaders, headers_cap;
    bool keep_alive;      /* client allows it and the server is not draining */
    bool expect_continue; /* Expect: 100-continue seen */
    bool gzip;            /* Content-Encoding: gzip */
    bool chunked;
    int64_t content_length; /* -1 if absent */

    struct ldg_buf body; /* owned: request body, de-chunked and (after dispatch) inflated */
    size_t body_limit;   /* bytes allowed for this route */
    size_t budget_bytes; /* charged to the worker's buffered-body budget (w->body_bytes) */
    bool body_deferred;  /* head read, body not: the filter runs first; ldg_req_run_handler reads it */
    bool authorized;     /* the filter let the request through before its body was read */

    /* Routing. */
    struct ldg_route_match match;
    enum ldg_route_result route_result;

    /* Response. */
    int status;
    bool responded;
    bool head_only;       /* HEAD: send headers only */
    struct ldg_buf out;   /* owned: serialised response */
    struct ldg_buf extra; /* owned: extra header lines ("Name: value\r\n") */
    size_t resp_body_bytes;
    char request_id[72];
    struct ldg_str origin; /* allowed CORS origin to echo, or empty */
    bool origin_any;       /* allowed only by `*`: answered `*`, never with credentials */

    uint64_t start_hr_ns; /* uv_hrtime() at the first byte */

    void *principal; /* borrowed: set by the gateway's auth (later roles), arena-owned */

    struct ldg_arena arena;
    _Alignas(16) char arena_inline[LDG_REQ_ARENA_INLINE];
};

/* Internal to http/: allocate from the worker's pool / give back. */
struct ldg_req *ldg__req_new(struct ldg_worker *w, struct ldg_conn *conn);
void ldg__req_release(struct ldg_req *req);
/* Internal: free a request taken off a worker's pool at shutdown. */
void ldg__req_release_final(struct ldg_req *req);

void ldg_req_ref(struct ldg_req *req);
void ldg_req_unref(struct ldg_req *req);

/* Header lookup (case-insensitive); empty slice (p == NULL) when absent. First occurrence. */
struct ldg_str ldg_req_header(const struct ldg_req *req, const char *name);
/* Path parameter by name from the matched route; empty slice when absent. */
struct ldg_str ldg_req_param(const struct ldg_req *req, const char *name);
/* Query parameter, percent-decoded into the arena; returns false when absent. */
bool ldg_req_query(struct ldg_req *req, const char *name, struct ldg_str *out);
/* The client's address as text ("127.0.0.1", "::1") into out (>= 64 bytes); "" when unknown
 * (connection gone). Never includes the port. The TCP peer, or when the peer is one of
 * [server] trusted_proxies, the client its Forwarded / X-Forwarded-For names (http/proxy.h);
 * IPv4-mapped IPv6 peers are given as IPv4. Throttles, logs and the /metrics rule use this. */
void ldg_req_peer_addr(const struct ldg_req *req, char *out, size_t cap);
/* Append one response header (NUL-terminated name and value; no CR/LF allowed: they are dropped). */
void ldg_req_add_header(struct ldg_req *req, const char *name, const char *value);

/* Internal to http/: serialise a 200 streaming head into req->out (Transfer-Encoding: chunked when
 * `chunked`, no Content-Length) and mark the request responded. */
void ldg__req_stream_head(struct ldg_req *req, const char *content_type, bool chunked);

/* The value of cookie `name` (first match) in the Cookie header, or an empty slice; borrowed from
 * the request's headers. Surrounding double quotes are removed. */
struct ldg_str ldg_req_cookie(const struct ldg_req *req, const char *name);

void ldg_req_respond(struct ldg_req *req, int status, const char *content_type, const void *body, size_t len);
static inline void ldg_req_json(struct ldg_req *req, int status, const char *json, size_t len)
{
    ldg_req_respond(req, status, "application/json", json, len);
}
/* {"detail": "<detail>"}; detail is escaped. Never pass internal error text here. */
void ldg_req_error(struct ldg_req *req, int status, const char *detail);

/* Inflate a gzip body in place under `max` bytes. Returns 0, -E2BIG (over max) or -EINVAL. */
int ldg_req_inflate(struct ldg_buf *body, size_t max) LDG_MUSTCHECK;

const char *ldg_http_reason(int status);

/* Run the matched route's handler, or answer 404/405 (after a filter let the request through).
 * For a request whose body was deferred (a filtered route with a body), this first reads the body
 * (100 Continue, the body deadline and the worker's budget apply from here) and runs the handler
 * once it is complete; a 404/405 is answered without reading it. */
void ldg_req_run_handler(struct ldg_req *req);

#endif
