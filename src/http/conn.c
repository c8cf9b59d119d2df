/*
 * conn.c: the connection state machine.
 *
 *   accept -> READ_HEAD --head complete--> READ_BODY --message complete--> DISPATCHED
 *   DISPATCHED --handler responds--> WRITING --written--> IDLE (keep-alive) | CLOSING (linger)
 *   IDLE --first byte--> READ_HEAD
 *
 * One request is in flight per connection. Bytes that arrive behind it (pipelining) are kept in
 * `in` and parsed once its response has been written, so responses leave in request order. That
 * buffer is bounded: past the bound reading stops until the connection catches up.
 *
 * Authentication comes before the body: when a route that the filter (the gateway) guards has a
 * body, parsing stops after the head (LDG_PARSE_HEAD), reading stops, and the filter decides on the
 * headers alone, under the handler's deadline (DISPATCHED). A refusal (401/403/429...) is answered
 * without reading a body byte, and `Expect: 100-continue` gets it as its final answer; the
 * connection then closes (the unread body cannot be skipped). Only a request the filter lets
 * through (ldg_req_run_handler -> ldg__conn_resume_body) gets its 100 Continue and its body read.
 *
 * Memory: every body is charged to its worker's budget (max_buffered_body_bytes): a known
 * Content-Length is reserved before the first body byte is read, a chunked body as it arrives,
 * an inflated body once inflated; past the budget the request gets 503. The charge is returned
 * when the request is released. A gzip body is inflated only for a found route the filter let
 * through (or a public one), to at most max_inflate_ratio times its size (at least 1 MiB) and
 * max_inflated_bytes.
 *
 * Deadlines: READ_HEAD runs from the first byte of the request and is never extended (a
 * slowloris client is cut at header_timeout_ms however slowly it trickles); READ_BODY is a total
 * deadline set when the body starts, body_timeout_ms plus the body's length at body_min_rate
 * bytes/s (a chunked body's length so far), never extended by mere progress, so trickling a byte
 * at a time is cut too (its list is not ordered by deadline: the sweeper scans it all);
 * DISPATCHED is the handler's deadline
 * (request_timeout_ms, then 503); WRITING is write_timeout_ms; IDLE is idle_timeout_ms; CLOSING
 * is the lingering close (read and discard until the peer closes, at most LINGER_MS).
 *
 * Closing with unread input makes the kernel send RST, which can destroy a response the client
 * has not read yet (a 413 sent while the client is still uploading). So error responses are
 * followed by shutdown(SHUT_WR) and a short lingering read, as nginx does.
 */
#include "http/conn.h"

#include <llhttp.h>

#include "core/alloc.h"
#include "core/log.h"
#include "http/chunk.h"
#include "http/request.h"
#include "settings.h"

#define LINGER_MS 2000
#define INFLATE_FLOOR (1024 * 1024) /* any gzip body may inflate this far, whatever its ratio */
#define MAX_PENDING_INPUT (256 * 1024)
/* Input buffered while the filter decides on a request's head (the client's body, mostly). */
#define MAX_HELD_INPUT (64 * 1024)

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_close(struct ldg_conn *c);
static void process_input(struct ldg_conn *c, const char *data, size_t len);

static uint64_t timeout_for(const struct ldg_conn *c, enum ldg_conn_state st)
{
    const struct ldg_server_cfg *s = &c->w->cfg->server;
    switch (st) {
    case LDG_CONN_READ_HEAD:
        return (uint64_t)s->header_timeout_ms;
    case LDG_CONN_READ_BODY:
        return (uint64_t)s->body_timeout_ms;
    case LDG_CONN_DISPATCHED:
        return (uint64_t)s->request_timeout_ms;
    case LDG_CONN_WRITING:
        return (uint64_t)s->write_timeout_ms;
    case LDG_CONN_IDLE:
        return (uint64_t)s->idle_timeout_ms;
    case LDG_CONN_CLOSING:
        return LINGER_MS;
    case LDG_CONN_STREAM:
        return UINT64_MAX; /* see set_state */
    default:
        return 0;
    }
}

/* The one place a state changes: the connection moves to the tail of its new state's list,
 * which keeps every list ordered by deadline. */
static void set_state(struct ldg_conn *c, enum ldg_conn_state st)
{
    struct ldg_worker *w = c->w;
    ldg_list_remove(&w->conns[c->state], &c->link);
    c->state = st;
    /* A stream has no deadline: its list is never expired (the sweeper stops at its head). */
    c->deadline_ms = st == LDG_CONN_STREAM ? UINT64_MAX : ldg_worker_now(w) + timeout_for(c, st);
    ldg_list_push_back(&w->conns[st], &c->link);
}

/* The READ_BODY deadline: body_timeout_ms from the start of the body, plus `bytes` at the
 * minimum rate. */
static void set_body_deadline(struct ldg_conn *c, uint64_t bytes)
{
    struct ldg_worker *w = c->w;
    const struct ldg_server_cfg *s = &w->cfg->server;
    if (c->state != LDG_CONN_READ_BODY) {
        ldg_list_remove(&w->conns[c->state], &c->link);
        c->state = LDG_CONN_READ_BODY;
        ldg_list_push_back(&w->conns[LDG_CONN_READ_BODY], &c->link);
    }
    uint64_t rate = (uint64_t)s->body_min_rate;
    uint64_t extra = bytes / rate * 1000 + (bytes % rate) * 1000 / rate;
    c->deadline_ms = c->body_start_ms + (uint64_t)s->body_timeout_ms + extra;
}

/* Charge the worker's body budget up to `total` bytes for this request; false when over it. */
static bool budget_charge(struct ldg_worker *w, struct ldg_req *req, size_t total)
{
    if (total <= req->budget_bytes)
        return true;
    size_t more = total - req->budget_bytes;
    if (w->body_bytes + more > (size_t)w->cfg->server.max_buffered_body_bytes)
        return false;
    w->body_bytes += more;
    req->budget_bytes = total;
    return true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ldg_conn *c = (struct ldg_conn *)h;
    /* libuv calls alloc then read then on_read, one handle at a time, so one shared buffer per
     * worker serves every connection: on_read consumes it before returning. */
    buf->base = c->w->read_buf;
    buf->len = LDG_WORKER_READ_BUF;
}

static void stream_free(struct ldg_conn *c);

static void on_close(uv_handle_t *h)
{
    struct ldg_conn *c = (struct ldg_conn *)h;
    struct ldg_worker *w = c->w;
    if (c->stream)
        stream_free(c);
    ldg_list_remove(&w->conns[c->state], &c->link);
    w->nconns--;
    ldg_stat_sub(&w->stats.conns_open, 1);
    ldg_parser_free(&c->parser);
    ldg_buf_free(&c->in);
    free(c);
}

static void detach_request(struct ldg_conn *c)
{
    struct ldg_req *req = c->req;
    if (!req)
        return;
    c->req = NULL;
    req->conn = NULL;
    ldg_req_unref(req);
}

static void conn_close(struct ldg_conn *c)
{
    if (c->handle_closing)
        return;
    c->handle_closing = true;
    /* A write in flight is cancelled by uv_close; its callback still runs and drops the request. */
    if (!c->writing)
        detach_request(c);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void start_reading(struct ldg_conn *c);

static void on_linger_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0)
        conn_close((struct ldg_conn *)s);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct ldg_conn *c = sr->data;
    if (status < 0 || c->handle_closing)
        conn_close(c);
}

/* Half-close our side and discard input until the peer closes or LINGER_MS passes. */
static void linger_close(struct ldg_conn *c)
{
    if (c->handle_closing)
        return;
    detach_request(c);
    set_state(c, LDG_CONN_CLOSING);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_linger_read) < 0)
        conn_close(c);
}

static void access_log(struct ldg_conn *c, struct ldg_req *req, uint64_t lat_us)
{
    char fields[1024], path[512], addr[64];
    ldg_log_quote(path, sizeof path, req->path.p ? req->path.p : "", req->path.n);
    ldg_req_peer_addr(req, addr, sizeof addr);
    snprintf(fields, sizeof fields,
             "%s kind=access client=%s method=%s path=%s status=%d dur_ms=%.3f bytes=%zu rid=%s", c->ctx,
             addr[0] ? addr : "-", req->method_name ? req->method_name : "-", path, req->status,
             (double)lat_us / 1000.0, req->resp_body_bytes, req->request_id[0] ? req->request_id : "-");
    ldg_log_raw(LDG_LOG_INFO, fields);
}

static void finish_request(struct ldg_conn *c)
{
    struct ldg_req *req = c->req;
    /* A response queued before a drain began still says keep-alive; once written, the
     * connection must not go idle, or it would hold the drain until its deadline. A request
     * answered before its body was read (parser not done) cannot keep the connection either. */
    bool keep = req->keep_alive && !c->close_after && c->w->state == LDG_WORKER_RUNNING && c->parser.done;
    c->auth_hold = false;
    detach_request(c);
    if (!keep) {
        linger_close(c);
        return;
    }
    set_state(c, LDG_CONN_IDLE);
    if (ldg_buf_size(&c->in)) {
        /* Parse what was pipelined behind the request we just answered. */
        struct ldg_buf pending = c->in;
        ldg_buf_init(&c->in);
        process_input(c, ldg_buf_head(&pending), ldg_buf_size(&pending));
        ldg_buf_free(&pending);
    } else {
        ldg_parser_shrink(&c->parser);
    }
    if (c->read_stopped && !c->auth_hold && !c->handle_closing && c->state != LDG_CONN_CLOSING)
        start_reading(c);
}

static void on_write_done(uv_write_t *wr, int status)
{
    struct ldg_conn *c = ldg_container_of(wr, struct ldg_conn, wreq);
    c->writing = false;
    if (c->handle_closing) {
        detach_request(c);
        return;
    }
    if (status < 0) {
        ldg_log_debug(c->ctx, "write failed: %s", uv_strerror(status));
        detach_request(c);
        conn_close(c);
        return;
    }
    finish_request(c);
}

/* Check handle: finish the requests whose responses were written at once during this loop
 * iteration. Finishing one may parse, run and answer the request pipelined behind it, which
 * puts the connection back on the list. */
static void on_written(uv_check_t *h)
{
    struct ldg_worker *w = h->data;
    struct ldg_list *l = &w->conns[LDG_CONN_WRITTEN];
    while (!ldg_list_empty(l)) {
        struct ldg_conn *c = ldg_container_of(l->head.next, struct ldg_conn, link);
        if (c->handle_closing)
            set_state(c, LDG_CONN_CLOSING); /* off the list; on_close frees it */
        else
            finish_request(c);
    }
    uv_check_stop(h);
}

void ldg__conn_send_response(struct ldg_conn *c, struct ldg_req *req)
{
    struct ldg_worker *w = c->w;
    uint64_t lat_us = (uv_hrtime() - req->start_hr_ns) / 1000;
    size_t route = req->match.route ? req->match.route->index : w->stats.nroutes;
    ldg_stats_request(&w->stats, route, req->status, lat_us);
    ldg_stat_add(&w->stats.bytes_out, ldg_buf_size(&req->out));
    if (w->cfg->log.access_log)
        access_log(c, req, lat_us);
    if (c->handle_closing) {
        return;
    }
    LDG_ASSERT(c->req == req && !c->writing);
    /* Most responses fit the socket buffer: write now. uv_write would do the same write but then
     * re-arm the poll watcher when its callback runs, one epoll_ctl per response. The request is
     * finished from the worker's check handle, after the handler that responded has returned. */
    uv_buf_t b = uv_buf_init((char *)ldg_buf_head(&req->out), (unsigned)ldg_buf_size(&req->out));
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)b.len) {
        set_state(c, LDG_CONN_WRITTEN);
        if (!uv_is_active((uv_handle_t *)&w->written))
            uv_check_start(&w->written, on_written);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        ldg_log_debug(c->ctx, "write failed: %s", uv_strerror(n));
        conn_close(c);
        return;
    }
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    set_state(c, LDG_CONN_WRITING);
    c->writing = true;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write_done);
    if (rc < 0) {
        c->writing = false;
        conn_close(c);
    }
}

/* Answer a request that failed to parse or was rejected early, then close. */
static void respond_error_and_close(struct ldg_conn *c, int status, const char *detail)
{
    struct ldg_req *req = c->req;
    if (!req || req->responded) {
        conn_close(c);
        return;
    }
    c->close_after = true;
    req->keep_alive = false;
    ldg_req_error(req, status, detail);
}

/* 1: the origin is listed by name (credentials allowed); 2: only by `*` (no credentials); 0: no. */
static int origin_allowed(const struct ldg_conn *c, struct ldg_str origin)
{
    const char *list = c->w->cfg->server.cors_origins;
    if (!origin.n || !list || !*list)
        return 0;
    if (ldg_cfg_list_has(list, origin.p, origin.n))
        return 1;
    return ldg_cfg_list_has(list, "*", 1) ? 2 : 0;
}

static bool valid_request_id(struct ldg_str v)
{
    if (v.n == 0 || v.n > 64)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        char ch = v.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}

/* The body is about to be read: reserve a known length in the budget, send 100 Continue, start
 * the body deadline. Returns 0 or a status to answer (*detail says why). */
static int body_begin(struct ldg_conn *c, struct ldg_req *req, const char **detail)
{
    if (req->content_length > 0 && !budget_charge(c->w, req, (size_t)req->content_length)) {
        ldg_log_info(c->ctx, "request body budget exhausted: %zu bytes buffered on this worker",
                     c->w->body_bytes);
        *detail = "Server busy: too many request bodies in flight";
        return 503;
    }
    if (req->expect_continue) {
        uv_buf_t b = uv_buf_init((char *)continue_line, sizeof continue_line - 1);
        if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != (int)b.len) {
            *detail = "Cannot send 100 Continue";
            return 500;
        }
    }
    c->body_start_ms = ldg_worker_now(c->w);
    set_body_deadline(c, req->content_length > 0 ? (uint64_t)req->content_length : 0);
    return 0;
}

static bool is_preflight(const struct ldg_req *req)
{
    return req->method == HTTP_OPTIONS && req->origin.n && ldg_req_header(req, "access-control-request-method").n;
}

/* Head complete: route, limits, request id, CORS; then either the filter first (a guarded route
 * with a body) or the body (100-continue, budget, deadline). */
static int on_head(struct ldg_parser *p, struct ldg_req *req)
{
    struct ldg_conn *c = p->ud;
    const struct ldg_server_cfg *s = &c->w->cfg->server;
    struct ldg_str rid = ldg_req_header(req, "x-request-id");
    if (valid_request_id(rid))
        snprintf(req->request_id, sizeof req->request_id, "%.*s", (int)rid.n, rid.p);
    else
        ldg_worker_request_id(c->w, req->request_id);
    struct ldg_str origin = ldg_req_header(req, "origin");
    int allowed = origin_allowed(c, origin);
    if (allowed) {
        req->origin = origin;
        req->origin_any = allowed == 2;
    }

    req->route_result = ldg_router_match(c->w->router, req->method, req->path, &req->match);
    if (c->otlp_only &&
        (req->route_result != LDG_ROUTE_FOUND || !(req->match.route->flags & LDG_ROUTE_OTLP_LISTENER)))
        req->route_result = LDG_ROUTE_NOT_FOUND; /* the OTLP listener serves nothing else */
    req->body_limit = (size_t)s->max_body_bytes;
    if (req->route_result == LDG_ROUTE_FOUND && req->match.route->max_body_bytes)
        req->body_limit = req->match.route->max_body_bytes;
    if (req->method == HTTP_HEAD)
        req->head_only = true;

    bool has_body = req->chunked || req->content_length > 0;
    ldg_filter_fn filter = ldg_router_filter(c->w->router);
    bool public_route = req->route_result == LDG_ROUTE_FOUND && (req->match.route->flags & LDG_ROUTE_PUBLIC);
    if (has_body && filter && !public_route && !is_preflight(req)) {
        /* Credentials first: parse_feed stops after the head (LDG_PARSE_HEAD). */
        req->body_deferred = true;
        p->defer_body = true;
        set_state(c, LDG_CONN_DISPATCHED);
        return 0;
    }
    if (req->expect_continue) {
        if (req->route_result != LDG_ROUTE_FOUND) {
            p->detail = req->route_result == LDG_ROUTE_NOT_FOUND ? "Not Found" : "Method Not Allowed";
            return req->route_result == LDG_ROUTE_NOT_FOUND ? 404 : 405;
        }
    }
    if (req->content_length > 0 && (uint64_t)req->content_length > req->body_limit)
        return 413;
    return body_begin(c, req, &p->detail);
}

void ldg__conn_resume_body(struct ldg_conn *c, struct ldg_req *req)
{
    LDG_ASSERT(c->req == req && req->body_deferred && c->parser.head_paused);
    req->body_deferred = false;
    req->authorized = true;
    if (req->route_result != LDG_ROUTE_FOUND) {
        c->close_after = true; /* the body stays unread */
        req->keep_alive = false;
        ldg_req_run_handler(req); /* 404 / 405 */
        return;
    }
    const char *detail = NULL;
    int status = body_begin(c, req, &detail);
    if (status) {
        c->close_after = true;
        req->keep_alive = false;
        ldg_req_error(req, status, detail);
        return;
    }
    c->auth_hold = false;
    ldg_parser_resume(&c->parser);
    if (c->head_rest) { /* the filter decided at once: go on with what came with the head */
        const char *rest = c->head_rest;
        size_t n = c->head_rest_len;
        c->head_rest = NULL;
        c->head_rest_len = 0;
        if (n)
            process_input(c, rest, n);
        if (c->read_stopped && !c->handle_closing && c->state == LDG_CONN_READ_BODY)
            start_reading(c);
        return;
    }
    struct ldg_buf pending = c->in;
    ldg_buf_init(&c->in);
    if (ldg_buf_size(&pending))
        process_input(c, ldg_buf_head(&pending), ldg_buf_size(&pending));
    ldg_buf_free(&pending);
    if (c->read_stopped && !c->handle_closing && c->state == LDG_CONN_READ_BODY)
        start_reading(c);
}

static void handle_preflight(struct ldg_req *req)
{
    char allow[96];
    if (!ldg_router_allowed(req->w->router, req->path, allow, sizeof allow)) {
        ldg_req_error(req, 404, "Not Found");
        return;
    }
    ldg_req_add_header(req, "Access-Control-Allow-Methods", allow);
    ldg_req_add_header(
        req, "Access-Control-Allow-Headers",
        "Authorization, Content-Type, Content-Encoding, X-API-Key, X-Request-ID, Last-Event-ID");
    ldg_req_add_header(req, "Access-Control-Max-Age", "600");
    ldg_req_respond(req, 204, NULL, NULL, 0);
}

static void dispatch(struct ldg_conn *c)
{
    struct ldg_req *req = c->req;
    const struct ldg_server_cfg *s = &c->w->cfg->server;
    set_state(c, LDG_CONN_DISPATCHED);
    if (is_preflight(req)) {
        handle_preflight(req);
        return;
    }
    ldg_filter_fn filter = ldg_router_filter(c->w->router);
    bool public_route = req->route_result == LDG_ROUTE_FOUND && (req->match.route->flags & LDG_ROUTE_PUBLIC);
    bool cleared = req->authorized || public_route || !filter;
    /* Inflate only what a found route will read, for a request already let through (a guarded
     * route's body is only read after the filter, so `cleared` is false only for empty bodies). */
    if (req->gzip && ldg_buf_size(&req->body) && cleared && req->route_result == LDG_ROUTE_FOUND) {
        size_t in = ldg_buf_size(&req->body);
        size_t max = (size_t)s->max_inflated_bytes;
        size_t by_ratio = in > SIZE_MAX / (size_t)s->max_inflate_ratio ? SIZE_MAX : in * (size_t)s->max_inflate_ratio;
        if (by_ratio < INFLATE_FLOOR)
            by_ratio = INFLATE_FLOOR;
        if (by_ratio < max)
            max = by_ratio;
        int rc = ldg_req_inflate(&req->body, max);
        if (rc == -E2BIG) {
            char msg[96];
            /* The limit that applied: the size cap, or the ratio cap for this body's size. */
            snprintf(msg, sizeof msg, "Decompressed request body too large (limit %zu bytes)", max);
            ldg_req_error(req, 413, msg);
            return;
        }
        if (rc < 0) {
            ldg_req_error(req, 400, "Invalid gzip request body");
            return;
        }
        if (!budget_charge(c->w, req, ldg_buf_size(&req->body))) {
            ldg_req_error(req, 503, "Server busy: too many request bodies in flight");
            return;
        }
    }
    if (req->authorized || !filter || public_route)
        ldg_req_run_handler(req);
    else
        filter(req);
}

static void process_input(struct ldg_conn *c, const char *data, size_t len)
{
    if (c->state == LDG_CONN_STREAM)
        return; /* a stream's client has nothing more to say: discard */
    while (len > 0 && !c->handle_closing) {
        if (c->state == LDG_CONN_CLOSING)
            return;
        if (c->auth_hold || c->state == LDG_CONN_DISPATCHED || c->state == LDG_CONN_WRITING ||
            c->state == LDG_CONN_WRITTEN) {
            ldg_buf_put(&c->in, data, len);
            size_t bound = c->auth_hold ? MAX_HELD_INPUT : MAX_PENDING_INPUT;
            if (ldg_buf_size(&c->in) > bound && !c->read_stopped) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->read_stopped = true;
            }
            return;
        }
        if (!c->req) {
            c->req = ldg__req_new(c->w, c);
            ldg_parser_begin(&c->parser, c->req);
            set_state(c, LDG_CONN_READ_HEAD);
        }
        size_t used = 0;
        enum ldg_parse_result r = ldg_parser_feed(&c->parser, data, len, &used);
        data += used;
        len -= used;
        if (c->req->chunked && (r == LDG_PARSE_MORE || r == LDG_PARSE_DONE) &&
            ldg_buf_size(&c->req->body) > c->req->budget_bytes) {
            /* A chunked body is charged as it arrives (at most one read past the budget), and
             * its deadline grows with its length at the minimum rate. */
            if (!budget_charge(c->w, c->req, ldg_buf_size(&c->req->body))) {
                ldg_log_info(c->ctx, "request body budget exhausted: %zu bytes buffered on this worker",
                             c->w->body_bytes);
                respond_error_and_close(c, 503, "Server busy: too many request bodies in flight");
                return;
            }
            if (r == LDG_PARSE_MORE && c->state == LDG_CONN_READ_BODY)
                set_body_deadline(c, ldg_buf_size(&c->req->body));
        }
        switch (r) {
        case LDG_PARSE_MORE:
            return;
        case LDG_PARSE_HEAD: {
            /* Nothing more is parsed until the filter has decided (ldg__conn_resume_body). The
             * body bytes read with the head are lent to a filter that decides at once, and kept
             * in `in` only when it answers later: a refusal on the spot buffers nothing. Reading
             * is not stopped for that: a filter that decides at once (a cached key) is the rule,
             * and stopping and restarting cost two epoll_ctl calls per request. A filter that
             * waits gets at most MAX_HELD_INPUT more bytes buffered before reading stops. */
            struct ldg_req *req = c->req;
            c->auth_hold = true;
            c->head_rest = data;
            c->head_rest_len = len;
            ldg_req_ref(req);
            ldg_router_filter(c->w->router)(req);
            if (c->head_rest && c->head_rest_len && !c->handle_closing && c->req == req && req->body_deferred &&
                !req->responded)
                ldg_buf_put(&c->in, c->head_rest, c->head_rest_len);
            c->head_rest = NULL;
            c->head_rest_len = 0;
            ldg_req_unref(req);
            return;
        }
        case LDG_PARSE_ERROR:
            ldg_log_debug(c->ctx, "bad request: %d %s", c->parser.status, c->parser.detail);
            respond_error_and_close(c, c->parser.status, c->parser.detail);
            return;
        case LDG_PARSE_DONE:
            dispatch(c);
            break;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ldg_conn *c = (struct ldg_conn *)s;
    if (nread > 0) {
        ldg_stat_add(&c->w->stats.bytes_in, (uint64_t)nread);
        process_input(c, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    /* EOF or error. A request still being handled keeps the connection until its response is
     * written (a client may half-close after sending); otherwise close now. Requests pipelined
     * behind it before a clean EOF are still answered: finish_request parses them and resumes
     * reading, which reports the EOF again once they are done. */
    if (c->auth_hold || c->state == LDG_CONN_DISPATCHED || c->state == LDG_CONN_WRITING ||
        c->state == LDG_CONN_WRITTEN) {
        uv_read_stop(s);
        c->read_stopped = true;
        if (nread != UV_EOF || !ldg_buf_size(&c->in)) {
            c->close_after = true;
            if (!c->req->responded)
                c->req->keep_alive = false; /* so the response says Connection: close */
        }
        return;
    }
    conn_close(c);
}

static void start_reading(struct ldg_conn *c)
{
    c->read_stopped = false;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        conn_close(c);
}

static void accept_conn(uv_stream_t *server, int status, bool otlp_only)
{
    struct ldg_worker *w = server->data;
    if (status < 0) {
        ldg_log_warn(NULL, "accept failed: %s", uv_strerror(status));
        return;
    }
    const struct ldg_server_cfg *s = &w->cfg->server;
    struct ldg_conn *c = ldg_calloc(1, sizeof *c);
    c->w = w;
    c->otlp_only = otlp_only;
    c->id = ++w->next_conn_id * 1000 + w->id; /* unique across workers */
    snprintf(c->ctx, sizeof c->ctx, "conn=%llu", (unsigned long long)c->id);
    uv_tcp_init(&w->loop, &c->tcp);
    ldg_list_node_init(&c->link);
    c->state = LDG_CONN_READ_HEAD;
    ldg_list_push_back(&w->conns[LDG_CONN_READ_HEAD], &c->link);
    w->nconns++;
    ldg_stat_add(&w->stats.conns_open, 1);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    if (w->nconns > (size_t)s->max_connections || w->state != LDG_WORKER_RUNNING) {
        /* Over the bound: shed the connection at once rather than queue it. */
        ldg_stat_add(&w->stats.conns_rejected, 1);
        conn_close(c);
        return;
    }
    ldg_stat_add(&w->stats.conns_accepted, 1);
    uv_tcp_nodelay(&c->tcp, 1);
    struct ldg_parser_limits lim = {(size_t)s->max_header_bytes, (size_t)s->max_headers};
    ldg_parser_init(&c->parser, &lim, on_head, c);
    /* A new connection waits for its first byte under the header deadline (READ_HEAD without a
     * request yet), so connecting and sending nothing is cut like a slowloris. */
    set_state(c, LDG_CONN_READ_HEAD);
    start_reading(c);
}

void ldg_conn_on_connection(uv_stream_t *server, int status)
{
    accept_conn(server, status, false);
}

void ldg_conn_on_otlp_connection(uv_stream_t *server, int status)
{
    accept_conn(server, status, true);
}

static void expire(struct ldg_conn *c)
{
    struct ldg_worker *w = c->w;
    switch (c->state) {
    case LDG_CONN_READ_HEAD:
    case LDG_CONN_READ_BODY:
        ldg_stat_add(&w->stats.timeouts, 1);
        ldg_log_debug(c->ctx, "request read timeout");
        if (c->req && c->parser.started)
            respond_error_and_close(c, 408, "Request timeout");
        else
            conn_close(c);
        break;
    case LDG_CONN_DISPATCHED:
        ldg_stat_add(&w->stats.timeouts, 1);
        ldg_log_warn(c->ctx, "request timed out in handler: %s %.*s", c->req->method_name,
                     (int)c->req->path.n, c->req->path.p);
        c->close_after = true;
        c->req->keep_alive = false;
        ldg_req_error(c->req, 503, "Request timed out");
        break;
    case LDG_CONN_WRITING:
        ldg_stat_add(&w->stats.timeouts, 1);
        conn_close(c);
        break;
    case LDG_CONN_WRITTEN: /* finished by on_written in this loop iteration */
        break;
    case LDG_CONN_IDLE:
    case LDG_CONN_CLOSING:
        conn_close(c);
        break;
    default:
        break;
    }
}

void ldg_conn_sweep(struct ldg_worker *w, uint64_t now)
{
    for (int st = 0; st < LDG_CONN_NSTATES; st++) {
        struct ldg_list *l = &w->conns[st];
        /* Each list is ordered by deadline: stop at the first connection that has time left. A
         * connection whose close is pending stays on its list until on_close; skip past it. */
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(l, it, tmp)
        {
            struct ldg_conn *c = ldg_container_of(it, struct ldg_conn, link);
            if (c->deadline_ms > now) {
                if (st == LDG_CONN_READ_BODY)
                    continue; /* body deadlines differ per request: not ordered */
                break;
            }
            if (!c->handle_closing)
                expire(c);
        }
    }
}

void ldg_conn_drain(struct ldg_worker *w)
{
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&w->conns[LDG_CONN_IDLE], it, tmp)
    {
        conn_close(ldg_container_of(it, struct ldg_conn, link));
    }
    ldg_list_foreach_safe(&w->conns[LDG_CONN_READ_HEAD], it, tmp)
    {
        struct ldg_conn *c = ldg_container_of(it, struct ldg_conn, link);
        if (!c->parser.started)
            conn_close(c);
    }
}

void ldg_conn_close_all(struct ldg_worker *w)
{
    for (int st = 0; st < LDG_CONN_NSTATES; st++) {
        struct ldg_list_node *it, *tmp;
        ldg_list_foreach_safe(&w->conns[st], it, tmp)
        {
            conn_close(ldg_container_of(it, struct ldg_conn, link));
        }
    }
}

/* ---- streamed responses ------------------------------------------------------------------------ */

/* A chunk (or what is left of it) waiting for the kernel. Allocated only when a write could not
 * complete at once, so a stream that keeps up holds no queue at all. */
struct qitem {
    struct ldg_list_node node;
    struct ldg_chunk *ch; /* owned reference */
    size_t off;           /* bytes of the chunk's written part already sent */
};

#define STREAM_IOV_MAX 16

struct ldg_conn_stream {
    struct ldg_list queue; /* of qitem, in send order; the first `inflight` are in the uv_write */
    size_t queued;         /* bytes in the queue not yet written */
    size_t max_queued;
    unsigned inflight;
    bool writing; /* c->wreq in flight */
    bool chunked; /* HTTP/1.1: chunk framing; HTTP/1.0: body only, delimited by the close */
    bool ending;  /* ldg_conn_stream_end called: close once the queue is empty */
    ldg_conn_stream_closed_cb on_closed;
    void *ud;
};

static size_t item_left(const struct ldg_conn_stream *s, const struct qitem *q, const char **p)
{
    size_t n;
    const char *b = ldg_chunk_bytes(q->ch, s->chunked, &n);
    if (p)
        *p = b + q->off;
    return n - q->off;
}

static void stream_free(struct ldg_conn *c)
{
    struct ldg_conn_stream *s = c->stream;
    c->stream = NULL;
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&s->queue))) {
        struct qitem *q = ldg_container_of(n, struct qitem, node);
        ldg_chunk_unref(q->ch);
        free(q);
    }
    ldg_conn_stream_closed_cb cb = s->on_closed;
    void *ud = s->ud;
    free(s);
    if (cb)
        cb(c, ud);
}

static void stream_flush(struct ldg_conn *c);

static void on_stream_written(uv_write_t *wr, int status)
{
    struct ldg_conn *c = ldg_container_of(wr, struct ldg_conn, wreq);
    struct ldg_conn_stream *s = c->stream;
    s->writing = false;
    /* uv_write finishes every buffer or fails: the in-flight items are done either way. */
    for (; s->inflight; s->inflight--) {
        struct qitem *q = ldg_container_of(ldg_list_pop_front(&s->queue), struct qitem, node);
        size_t left = item_left(s, q, NULL);
        s->queued -= left;
        if (status == 0)
            ldg_stat_add(&c->w->stats.bytes_out, left);
        ldg_chunk_unref(q->ch);
        free(q);
    }
    if (c->handle_closing)
        return;
    if (status < 0) {
        ldg_log_debug(c->ctx, "stream write failed: %s", uv_strerror(status));
        conn_close(c);
        return;
    }
    if (!ldg_list_empty(&s->queue))
        stream_flush(c);
    else if (s->ending)
        linger_close(c);
}

static void stream_flush(struct ldg_conn *c)
{
    struct ldg_conn_stream *s = c->stream;
    if (s->writing || ldg_list_empty(&s->queue) || c->handle_closing)
        return;
    uv_buf_t iov[STREAM_IOV_MAX];
    unsigned n = 0;
    struct ldg_list_node *it, *tmp;
    ldg_list_foreach_safe(&s->queue, it, tmp)
    {
        if (n == STREAM_IOV_MAX)
            break;
        const char *p;
        size_t left = item_left(s, ldg_container_of(it, struct qitem, node), &p);
        iov[n++] = uv_buf_init((char *)p, (unsigned)left);
    }
    s->inflight = n;
    s->writing = true;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, n, on_stream_written) < 0) {
        s->writing = false;
        s->inflight = 0;
        conn_close(c);
    }
}

int ldg_conn_stream_send(struct ldg_conn *c, struct ldg_chunk *ch)
{
    struct ldg_conn_stream *s = c->stream;
    if (!s || s->ending || c->handle_closing || c->state != LDG_CONN_STREAM)
        return -ENOTCONN;
    size_t n;
    const char *p = ldg_chunk_bytes(ch, s->chunked, &n);
    size_t off = 0;
    if (!s->writing && ldg_list_empty(&s->queue)) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (rc == (int)n) {
            ldg_stat_add(&c->w->stats.bytes_out, n);
            return 0;
        }
        if (rc < 0 && rc != UV_EAGAIN) {
            ldg_log_debug(c->ctx, "stream write failed: %s", uv_strerror(rc));
            conn_close(c);
            return -ENOTCONN;
        }
        if (rc > 0) {
            off = (size_t)rc;
            ldg_stat_add(&c->w->stats.bytes_out, off);
        }
    }
    if (s->queued + (n - off) > s->max_queued) {
        ldg_log_info(c->ctx, "slow stream reader: %zu bytes queued (limit %zu), disconnecting",
                     s->queued + (n - off), s->max_queued);
        conn_close(c);
        return -ENOBUFS;
    }
    struct qitem *q = ldg_malloc(sizeof *q);
    q->ch = ldg_chunk_ref(ch);
    q->off = off;
    ldg_list_push_back(&s->queue, &q->node);
    s->queued += n - off;
    stream_flush(c);
    return 0;
}

struct ldg_conn *ldg_conn_stream_begin(struct ldg_req *req, const char *content_type, size_t max_queued,
                                       ldg_conn_stream_closed_cb on_closed, void *ud)
{
    struct ldg_conn *c = req->conn;
    if (!c || req->responded || c->handle_closing)
        return NULL;
    LDG_ASSERT(c->req == req && !c->writing && !c->stream);
    bool chunked = req->http_major > 1 || (req->http_major == 1 && req->http_minor >= 1);
    ldg__req_stream_head(req, content_type, chunked);
    struct ldg_worker *w = c->w;
    uint64_t lat_us = (uv_hrtime() - req->start_hr_ns) / 1000;
    size_t route = req->match.route ? req->match.route->index : w->stats.nroutes;
    ldg_stats_request(&w->stats, route, 200, lat_us);
    if (w->cfg->log.access_log)
        access_log(c, req, lat_us);
    struct ldg_conn_stream *s = ldg_calloc(1, sizeof *s);
    ldg_list_init(&s->queue);
    s->max_queued = max_queued;
    s->chunked = chunked;
    s->on_closed = on_closed;
    s->ud = ud;
    c->stream = s;
    struct ldg_chunk *head = ldg_chunk_raw(ldg_buf_head(&req->out), ldg_buf_size(&req->out));
    detach_request(c);
    set_state(c, LDG_CONN_STREAM);
    ldg_buf_free(&c->in); /* anything pipelined behind a stream request is never answered */
    ldg_parser_shrink(&c->parser);
    c->close_after = true;
    if (c->read_stopped)
        start_reading(c); /* to notice the client's close */
    /* The head is bigger than nothing queued, so it only fails on a dead socket. */
    (void)ldg_conn_stream_send(c, head);
    ldg_chunk_unref(head);
    return c;
}

void ldg_conn_stream_end(struct ldg_conn *c, struct ldg_chunk *last)
{
    struct ldg_conn_stream *s = c->stream;
    if (!s || s->ending || c->handle_closing)
        return;
    if (last && ldg_conn_stream_send(c, last) < 0)
        return;
    if (s->chunked) {
        static const char end[] = "0\r\n\r\n";
        struct ldg_chunk *t = ldg_chunk_raw(end, sizeof end - 1);
        int rc = ldg_conn_stream_send(c, t);
        ldg_chunk_unref(t);
        if (rc < 0)
            return;
    }
    s->ending = true;
    if (!s->writing && ldg_list_empty(&s->queue))
        linger_close(c);
}

size_t ldg_conn_stream_queued(const struct ldg_conn *c)
{
    return c->stream ? c->stream->queued : 0;
}
