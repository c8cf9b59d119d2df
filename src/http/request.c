/*
 * request.c: request objects (pooled per worker), header/query access and the response writer.
 * The response head is serialised in one pass into `out` followed by the body, so a response is
 * one buffer and one uv_write.
 */
#include "http/request.h"

#include <llhttp.h>
#include <zlib.h>

#include "core/alloc.h"
#include "core/worker.h"
#include "http/conn.h"
#include "http/proxy.h"
#include "settings.h"

#define REQ_POOL_MAX 64

struct ldg_req *ldg__req_new(struct ldg_worker *w, struct ldg_conn *conn)
{
    struct ldg_list_node *n = ldg_list_pop_front(&w->req_pool);
    struct ldg_req *req;
    if (n) {
        req = ldg_container_of(n, struct ldg_req, link);
    } else {
        req = ldg_malloc(sizeof *req);
        ldg_buf_init(&req->body);
        ldg_buf_init(&req->out);
        ldg_buf_init(&req->extra);
    }
    struct ldg_buf body = req->body, out = req->out, extra = req->extra;
    memset(req, 0, offsetof(struct ldg_req, arena));
    req->body = body;
    req->out = out;
    req->extra = extra;
    ldg_list_node_init(&req->link);
    ldg_arena_init(&req->arena, req->arena_inline, sizeof req->arena_inline);
    req->w = w;
    req->conn = conn;
    req->refs = 1;
    req->content_length = -1;
    req->start_hr_ns = uv_hrtime();
    return req;
}

/* Buffers above this size are released rather than kept with a pooled request. */
#define KEEP_BUF_BYTES 16384

static void trim(struct ldg_buf *b)
{
    if (b->cap > KEEP_BUF_BYTES)
        ldg_buf_free(b);
    else
        ldg_buf_reset(b);
}

void ldg__req_release(struct ldg_req *req)
{
    struct ldg_worker *w = req->w;
    LDG_ASSERT(w->body_bytes >= req->budget_bytes);
    w->body_bytes -= req->budget_bytes;
    req->budget_bytes = 0;
    ldg_arena_reset(&req->arena);
    if (w->req_pool.count < REQ_POOL_MAX && w->state == LDG_WORKER_RUNNING) {
        trim(&req->body);
        trim(&req->out);
        trim(&req->extra);
        ldg_list_push_front(&w->req_pool, &req->link);
        return;
    }
    ldg__req_release_final(req);
}

void ldg__req_release_final(struct ldg_req *req)
{
    ldg_buf_free(&req->body);
    ldg_buf_free(&req->out);
    ldg_buf_free(&req->extra);
    free(req);
}

void ldg_req_ref(struct ldg_req *req)
{
    req->refs++;
}

void ldg_req_unref(struct ldg_req *req)
{
    LDG_ASSERT(req->refs > 0);
    if (--req->refs == 0)
        ldg__req_release(req);
}

struct ldg_str ldg_req_header(const struct ldg_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (ldg_str_caseeq(req->headers[i].name, name))
            return req->headers[i].value;
    return ldg_str_make(NULL, 0);
}

struct ldg_str ldg_req_param(const struct ldg_req *req, const char *name)
{
    const struct ldg_route *rt = req->match.route;
    if (!rt)
        return ldg_str_make(NULL, 0);
    size_t np = 0;
    for (size_t i = 0; i < rt->nsegs; i++) {
        if (!rt->segs[i].param)
            continue;
        if (strcmp(rt->segs[i].param, name) == 0 && np < req->match.nparams)
            return req->match.params[np];
        np++;
    }
    return ldg_str_make(NULL, 0);
}

bool ldg_req_query(struct ldg_req *req, const char *name, struct ldg_str *out)
{
    size_t nl = strlen(name), i = 0;
    const char *q = req->query.p;
    while (i < req->query.n) {
        size_t s = i;
        while (i < req->query.n && q[i] != '&')
            i++;
        const char *eq = memchr(q + s, '=', i - s);
        size_t kn = eq ? (size_t)(eq - (q + s)) : i - s;
        char *key = ldg_arena_alloc(&req->arena, kn + 1);
        size_t kd = ldg_url_decode(key, q + s, kn, true);
        if (kd == nl && memcmp(key, name, nl) == 0) {
            const char *v = eq ? eq + 1 : q + i;
            size_t vn = eq ? (size_t)(q + i - v) : 0;
            char *val = ldg_arena_alloc(&req->arena, vn + 1);
            *out = ldg_str_make(val, ldg_url_decode(val, v, vn, true));
            return true;
        }
        i++;
    }
    return false;
}

static bool header_safe(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

void ldg_req_add_header(struct ldg_req *req, const char *name, const char *value)
{
    if (!header_safe(name) || !header_safe(value))
        return;
    ldg_buf_puts(&req->extra, name);
    ldg_buf_put(&req->extra, ": ", 2);
    ldg_buf_puts(&req->extra, value);
    ldg_buf_put(&req->extra, "\r\n", 2);
}

const char *ldg_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* Connection, X-Request-ID, CORS and the added headers (everything after Content-*). */
static void put_head_tail(struct ldg_req *req, struct ldg_buf *o)
{
    ldg_buf_puts(o, req->keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (!req->request_id[0]) /* rejected before the head was complete */
        ldg_worker_request_id(req->w, req->request_id);
    ldg_buf_puts(o, "X-Request-ID: ");
    ldg_buf_puts(o, req->request_id);
    ldg_buf_put(o, "\r\n", 2);
    if (req->origin.n && req->origin_any) {
        /* A wildcard never goes with credentials: a page from any origin must not read what a
         * signed-in browser's cookies would fetch. */
        ldg_buf_puts(o, "Access-Control-Allow-Origin: *\r\n");
    } else if (req->origin.n) {
        ldg_buf_puts(o, "Access-Control-Allow-Origin: ");
        ldg_buf_put(o, req->origin.p, req->origin.n);
        ldg_buf_puts(o, "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
    }
    if (ldg_buf_size(&req->extra))
        ldg_buf_put(o, ldg_buf_head(&req->extra), ldg_buf_size(&req->extra));
}

void ldg__req_stream_head(struct ldg_req *req, const char *content_type, bool chunked)
{
    struct ldg_buf *o = &req->out;
    req->responded = true;
    req->status = 200;
    /* HTTP/1.1 streams say keep-alive (reference §3.8): the chunked body has an end. HTTP/1.0 ones
     * are delimited by the close. */
    req->keep_alive = chunked;
    ldg_buf_reset(o);
    ldg_buf_printf(o, "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: %s\r\n", ldg_worker_date(req->w),
                   content_type);
    if (chunked)
        ldg_buf_puts(o, "Transfer-Encoding: chunked\r\n");
    put_head_tail(req, o);
    ldg_buf_put(o, "\r\n", 2);
}

struct ldg_str ldg_req_cookie(const struct ldg_req *req, const char *name)
{
    struct ldg_str h = ldg_req_header(req, "Cookie");
    size_t nlen = strlen(name), i = 0;
    while (h.p && i < h.n) {
        while (i < h.n && (h.p[i] == ' ' || h.p[i] == '\t' || h.p[i] == ';'))
            i++;
        size_t start = i;
        while (i < h.n && h.p[i] != ';')
            i++;
        size_t end = i;
        while (end > start && (h.p[end - 1] == ' ' || h.p[end - 1] == '\t'))
            end--;
        const char *eq = memchr(h.p + start, '=', end - start);
        if (!eq)
            continue;
        size_t klen = (size_t)(eq - (h.p + start));
        while (klen && (h.p[start + klen - 1] == ' ' || h.p[start + klen - 1] == '\t'))
            klen--;
        if (klen != nlen || memcmp(h.p + start, name, nlen) != 0)
            continue;
        const char *v = eq + 1;
        size_t vlen = (size_t)(h.p + end - v);
        while (vlen && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"')
            v++, vlen -= 2;
        return ldg_str_make(v, vlen);
    }
    return ldg_str_make(NULL, 0);
}

void ldg_req_respond(struct ldg_req *req, int status, const char *content_type, const void *body, size_t len)
{
    if (req->responded || !req->conn)
        return;
    req->responded = true;
    req->status = status;
    struct ldg_buf *o = &req->out;
    ldg_buf_reset(o);
    bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    if (req->w->state != LDG_WORKER_RUNNING || req->body_deferred)
        req->keep_alive = false; /* an unread body cannot be skipped: close after answering */
    /* The head of every response: no printf on this path. */
    ldg_buf_puts(o, "HTTP/1.1 ");
    ldg_buf_put_i64(o, status);
    ldg_buf_put(o, " ", 1);
    ldg_buf_puts(o, ldg_http_reason(status));
    ldg_buf_puts(o, "\r\nDate: ");
    ldg_buf_puts(o, ldg_worker_date(req->w));
    ldg_buf_put(o, "\r\n", 2);
    if (!no_body) {
        if (content_type && len) {
            ldg_buf_puts(o, "Content-Type: ");
            ldg_buf_puts(o, content_type);
            ldg_buf_put(o, "\r\n", 2);
        }
        ldg_buf_puts(o, "Content-Length: ");
        ldg_buf_put_i64(o, (int64_t)len);
        ldg_buf_put(o, "\r\n", 2);
    }
    put_head_tail(req, o);
    ldg_buf_put(o, "\r\n", 2);
    req->resp_body_bytes = 0;
    if (!no_body && !req->head_only && len) {
        ldg_buf_put(o, body, len);
        req->resp_body_bytes = len;
    }
    ldg__conn_send_response(req->conn, req);
}

void ldg_req_peer_addr(const struct ldg_req *req, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char peer[LDG_ADDR_MAX] = "";
    if (cap)
        out[0] = 0;
    if (!req->conn || uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)&ss, peer, sizeof peer);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)&ss, peer, sizeof peer);
    char client[LDG_ADDR_MAX];
    ldg_proxy_client(req->w->cfg->server.trusted_proxies, peer, ldg_req_header(req, "forwarded"),
                     ldg_req_header(req, "x-forwarded-for"), client, sizeof client);
    snprintf(out, cap, "%s", client);
}

void ldg_req_error(struct ldg_req *req, int status, const char *detail)
{
    if (req->route_result == LDG_ROUTE_FOUND && req->match.route && req->match.route->error_fn) {
        req->match.route->error_fn(req, status, detail);
        return;
    }
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_puts(&b, "{\"detail\":\"");
    ldg_buf_json_escape(&b, detail, strlen(detail));
    ldg_buf_puts(&b, "\"}");
    ldg_req_json(req, status, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

int ldg_req_inflate(struct ldg_buf *body, size_t max)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 16 + MAX_WBITS: gzip wrapper only. */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -ENOMEM;
    struct ldg_buf out;
    ldg_buf_init(&out);
    zs.next_in = (Bytef *)(uintptr_t)ldg_buf_head(body);
    zs.avail_in = (uInt)ldg_buf_size(body);
    int rc = 0;
    for (;;) {
        size_t room = LDG_MAX(ldg_buf_size(body) * 2, (size_t)16384);
        if (ldg_buf_size(&out) + room > max)
            room = max - ldg_buf_size(&out) + 1; /* one byte over max proves the overflow */
        char *dst = ldg_buf_reserve(&out, room, 0);
        zs.next_out = (Bytef *)dst;
        zs.avail_out = (uInt)room;
        int z = inflate(&zs, Z_NO_FLUSH);
        ldg_buf_commit(&out, room - zs.avail_out);
        if (ldg_buf_size(&out) > max) {
            rc = -E2BIG;
            break;
        }
        if (z == Z_STREAM_END) {
            if (zs.avail_in != 0)
                rc = -EINVAL; /* trailing garbage (or a second member) */
            break;
        }
        if (z != Z_OK || (zs.avail_in == 0 && zs.avail_out != 0)) {
            rc = -EINVAL;
            break;
        }
    }
    inflateEnd(&zs);
    if (rc == 0) {
        ldg_buf_free(body);
        *body = out;
    } else {
        ldg_buf_free(&out);
    }
    return rc;
}

void ldg_req_run_handler(struct ldg_req *req)
{
    if (req->body_deferred) {
        if (req->conn && !req->responded)
            ldg__conn_resume_body(req->conn, req);
        return;
    }
    switch (req->route_result) {
    case LDG_ROUTE_FOUND:
        req->match.route->fn(req);
        return;
    case LDG_ROUTE_BAD_METHOD:
        ldg_req_add_header(req, "Allow", req->match.allow);
        ldg_req_error(req, 405, "Method Not Allowed");
        return;
    case LDG_ROUTE_NOT_FOUND:
        ldg_req_error(req, 404, "Not Found");
        return;
    }
}
