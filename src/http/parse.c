/*
 * parse.c: llhttp callbacks. llhttp hands out spans that point into the caller's read buffer
 * and may be split across reads, so URL and header tokens are accumulated in `tok` and copied
 * into the request arena when llhttp reports the token complete. Nothing keeps a pointer into
 * the read buffer after ldg_parser_feed returns.
 */
#include "http/parse.h"

#include <strings.h>

#include "core/arena.h"

static struct ldg_parser *P(llhttp_t *ll)
{
    return ldg_container_of(ll, struct ldg_parser, ll);
}

static int too_large(struct ldg_parser *p)
{
    snprintf(p->detail_buf, sizeof p->detail_buf, "Request body too large (limit %zu bytes)",
             p->req->body_limit);
    p->status = 413;
    p->detail = p->detail_buf;
    return HPE_USER;
}

static int fail(struct ldg_parser *p, int status, const char *detail)
{
    p->status = status;
    p->detail = detail;
    return HPE_USER;
}

static int count_head(struct ldg_parser *p, size_t n)
{
    p->head_bytes += n;
    if (p->head_bytes > p->limits.max_header_bytes)
        return fail(p, 431, "Request header fields too large");
    return 0;
}

static int on_message_begin(llhttp_t *ll)
{
    struct ldg_parser *p = P(ll);
    p->in_head = true;
    p->head_bytes = 0;
    ldg_buf_reset(&p->tok);
    return 0;
}

/* URL, header names and header values arrive in pieces; all accumulate in `tok` under the
 * head-size limit (`overhead` accounts for the ": " and CRLF around a header). */
static int accumulate(llhttp_t *ll, const char *at, size_t n, size_t overhead)
{
    struct ldg_parser *p = P(ll);
    int rc = count_head(p, n + overhead);
    if (rc)
        return rc;
    ldg_buf_put(&p->tok, at, n);
    return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t n)
{
    return accumulate(ll, at, n, 0);
}

static int on_url_complete(llhttp_t *ll)
{
    struct ldg_parser *p = P(ll);
    struct ldg_req *req = p->req;
    size_t n = ldg_buf_size(&p->tok);
    char *u = ldg_arena_strndup(&req->arena, ldg_buf_head(&p->tok), n);
    ldg_buf_reset(&p->tok);
    req->url = ldg_str_make(u, n);
    const char *q = memchr(u, '?', n);
    size_t pathlen = q ? (size_t)(q - u) : n;
    req->path = ldg_str_make(u, pathlen);
    req->query = q ? ldg_str_make(q + 1, n - pathlen - 1) : ldg_str_make(u + n, 0);
    if (pathlen == 0 || u[0] != '/')
        return fail(p, 400, "Invalid request target");
    return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t n)
{
    return accumulate(ll, at, n, 4);
}

static int on_header_field_complete(llhttp_t *ll)
{
    struct ldg_parser *p = P(ll);
    size_t n = ldg_buf_size(&p->tok);
    p->field = ldg_str_make(ldg_arena_strndup(&p->req->arena, ldg_buf_head(&p->tok), n), n);
    ldg_buf_reset(&p->tok);
    return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t n)
{
    return accumulate(ll, at, n, 0);
}

static int on_header_value_complete(llhttp_t *ll)
{
    struct ldg_parser *p = P(ll);
    struct ldg_req *req = p->req;
    if (req->nheaders == p->limits.max_headers)
        return fail(p, 431, "Too many request header fields");
    if (req->nheaders == req->headers_cap) {
        size_t cap = req->headers_cap ? req->headers_cap * 2 : 16;
        struct ldg_header *h = ldg_arena_alloc(&req->arena, cap * sizeof *h);
        if (req->nheaders)
            memcpy(h, req->headers, req->nheaders * sizeof *h);
        req->headers = h;
        req->headers_cap = cap;
    }
    size_t n = ldg_buf_size(&p->tok);
    /* A field value excludes surrounding whitespace (RFC 9110 5.5); llhttp skips the leading
     * part only. "X-API-Key: ledger_... " is the key. */
    while (n > 0 && (ldg_buf_head(&p->tok)[n - 1] == ' ' || ldg_buf_head(&p->tok)[n - 1] == '\t'))
        n--;
    struct ldg_str v = ldg_str_make(ldg_arena_strndup(&req->arena, ldg_buf_head(&p->tok), n), n);
    ldg_buf_reset(&p->tok);
    req->headers[req->nheaders].name = p->field;
    req->headers[req->nheaders].value = v;
    req->nheaders++;

    struct ldg_str f = p->field;
    if (ldg_str_caseeq(f, "expect")) {
        if (!ldg_str_caseeq(v, "100-continue"))
            return fail(p, 417, "Expectation failed");
        req->expect_continue = true;
    } else if (ldg_str_caseeq(f, "content-encoding")) {
        if (ldg_str_caseeq(v, "gzip") || ldg_str_caseeq(v, "x-gzip"))
            req->gzip = true;
        else if (!ldg_str_caseeq(v, "identity"))
            return fail(p, 415, "Unsupported Content-Encoding");
    }
    return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
    struct ldg_parser *p = P(ll);
    struct ldg_req *req = p->req;
    p->in_head = false;
    req->method = llhttp_get_method(ll);
    req->method_name = llhttp_method_name((llhttp_method_t)req->method);
    req->http_major = llhttp_get_http_major(ll);
    req->http_minor = llhttp_get_http_minor(ll);
    req->keep_alive = llhttp_should_keep_alive(ll);
    req->chunked = (ll->flags & F_CHUNKED) != 0;
    if ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > (uint64_t)INT64_MAX) {
        fail(p, 400, "Invalid message framing"); /* would turn negative as an int64_t */
        return -1;
    }
    req->content_length = (ll->flags & F_CONTENT_LENGTH) ? (int64_t)ll->content_length : -1;
    if (req->method == HTTP_CONNECT || (ll->flags & F_UPGRADE))
        return fail(p, 400, "Upgrade is not supported");
    if (p->on_head) {
        int status = p->on_head(p, req);
        if (status) {
            p->status = status;
            if (!p->detail && status == 413)
                too_large(p);
            else if (!p->detail)
                p->detail = "Request rejected";
            return -1;
        }
    }
    if (req->content_length > 0 && (uint64_t)req->content_length > req->body_limit) {
        too_large(p);
        return -1;
    }
    if (p->defer_body) {
        p->defer_body = false;
        p->head_paused = true;
        return HPE_PAUSED; /* llhttp goes on after the head once resumed */
    }
    return 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t n)
{
    struct ldg_parser *p = P(ll);
    if (ldg_buf_append(&p->req->body, at, n, p->req->body_limit) < 0)
        return too_large(p);
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    struct ldg_parser *p = P(ll);
    p->done = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void ldg_parser_init(struct ldg_parser *p, const struct ldg_parser_limits *limits, ldg_parser_head_cb on_head,
                     void *ud)
{
    memset(p, 0, sizeof *p);
    llhttp_init(&p->ll, HTTP_REQUEST, &settings);
    ldg_buf_init(&p->tok);
    p->limits = *limits;
    p->on_head = on_head;
    p->ud = ud;
}

void ldg_parser_begin(struct ldg_parser *p, struct ldg_req *req)
{
    p->req = req;
    p->done = false;
    p->started = false;
    p->defer_body = false;
    p->head_paused = false;
    p->status = 0;
    p->detail = NULL;
    if (llhttp_get_errno(&p->ll) == HPE_PAUSED)
        llhttp_resume(&p->ll);
}

enum ldg_parse_result ldg_parser_feed(struct ldg_parser *p, const char *data, size_t len, size_t *consumed)
{
    LDG_ASSERT(p->req && !p->done);
    if (len)
        p->started = true;
    llhttp_errno_t e = llhttp_execute(&p->ll, data, len);
    if (e == HPE_OK) {
        *consumed = len;
        return LDG_PARSE_MORE;
    }
    if (e == HPE_PAUSED && p->head_paused) {
        *consumed = (size_t)(llhttp_get_error_pos(&p->ll) - data);
        return LDG_PARSE_HEAD;
    }
    if (e == HPE_PAUSED && p->done) {
        *consumed = (size_t)(llhttp_get_error_pos(&p->ll) - data);
        return LDG_PARSE_DONE;
    }
    *consumed = len;
    if (!p->status) {
        switch (e) {
        case HPE_INVALID_METHOD:
            p->status = 400;
            p->detail = "Invalid HTTP method";
            break;
        case HPE_INVALID_VERSION:
            p->status = 505;
            p->detail = "HTTP version not supported";
            break;
        case HPE_UNEXPECTED_CONTENT_LENGTH:
        case HPE_INVALID_CONTENT_LENGTH:
        case HPE_INVALID_TRANSFER_ENCODING:
            p->status = 400;
            p->detail = "Invalid message framing";
            break;
        default:
            p->status = 400;
            p->detail = "Malformed HTTP request";
            break;
        }
    }
    return LDG_PARSE_ERROR;
}

void ldg_parser_resume(struct ldg_parser *p)
{
    LDG_ASSERT(p->head_paused);
    p->head_paused = false;
    llhttp_resume(&p->ll);
}

void ldg_parser_shrink(struct ldg_parser *p)
{
    ldg_buf_free(&p->tok);
}

void ldg_parser_free(struct ldg_parser *p)
{
    ldg_buf_free(&p->tok);
}
