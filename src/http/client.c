/*
 * client.c: outgoing HTTP/1.1 requests on a loop (see client.h).
 *
 * A request owns up to three things that finish at different times: the getaddrinfo job, the TCP
 * handle and the deadline timer. finish() reports once, then closes what is open; the request is
 * freed when the last of them is gone (close callbacks, the resolution's callback).
 */
#include "http/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/list.h"

#define HEAD_MAX 512

struct ldg_httpc {
    uv_loop_t *loop;
    unsigned max_inflight, max_queued, inflight, queued;
    struct ldg_list queue, running;
    size_t live; /* requests allocated */
    bool closing;
};

struct hreq {
    struct ldg_list_node node;
    struct ldg_httpc *c;
    ldg_httpc_cb cb;
    void *ud;
    char *ubuf; /* owned: host and path point into it */
    const char *host, *path;
    int port;
    char *out; /* owned: the request bytes */
    size_t outlen;
    int64_t timeout_ms;
    uint64_t start_ms;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    uv_timer_t timer;
    bool gai_pending, tcp_open, timer_open, done, queued_only;
    int open_handles;
    int fail_code; /* a failure found while starting, reported by the timer */
    const char *fail_text;
    char head[HEAD_MAX];
    size_t headlen;
};

int ldg_httpc_parse_url(const char *url, char *buf, size_t cap, const char **host, int *port,
                        const char **path)
{
    if (!url)
        return -EINVAL;
    if (strncasecmp(url, "https://", 8) == 0)
        return -EPROTONOSUPPORT;
    if (strncasecmp(url, "http://", 7) != 0)
        return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
    const char *p = url + 7;
    size_t n = strlen(p);
    if (n + 3 > cap || n == 0)
        return -EINVAL;
    /* buf: host NUL path NUL */
    const char *slash = strpbrk(p, "/?#");
    size_t authlen = slash ? (size_t)(slash - p) : n;
    const char *auth = p;
    if (memchr(auth, '@', authlen))
        return -EINVAL; /* no credentials in URLs */
    const char *hs = auth, *he;
    *port = 80;
    if (authlen && auth[0] == '[') {
        const char *rb = memchr(auth, ']', authlen);
        if (!rb)
            return -EINVAL;
        hs = auth + 1;
        he = rb;
        if (rb + 1 < auth + authlen) {
            if (rb[1] != ':')
                return -EINVAL;
            char *end;
            long v = strtol(rb + 2, &end, 10);
            if (end != auth + authlen || v < 1 || v > 65535)
                return -EINVAL;
            *port = (int)v;
        }
    } else {
        const char *colon = memchr(auth, ':', authlen);
        he = colon ? colon : auth + authlen;
        if (colon) {
            char *end;
            long v = strtol(colon + 1, &end, 10);
            if (end != auth + authlen || v < 1 || v > 65535)
                return -EINVAL;
            *port = (int)v;
        }
    }
    if (he <= hs)
        return -EINVAL;
    size_t hl = (size_t)(he - hs);
    memcpy(buf, hs, hl);
    buf[hl] = 0;
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)buf[i] <= ' ')
            return -EINVAL;
    char *pp = buf + hl + 1;
    if (!slash || *slash != '/') {
        *pp = '/';
        strcpy(pp + 1, slash ? slash : "");
    } else {
        strcpy(pp, slash);
    }
    for (char *q = pp; *q; q++) {
        if (*q == '#') {
            *q = 0;
            break;
        }
        if ((unsigned char)*q <= ' ')
            return -EINVAL;
    }
    *host = buf;
    *path = pp;
    return 0;
}

struct ldg_httpc *ldg_httpc_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_queued)
{
    struct ldg_httpc *c = ldg_calloc(1, sizeof *c);
    c->loop = loop;
    c->max_inflight = max_inflight ? max_inflight : 1;
    c->max_queued = max_queued;
    ldg_list_init(&c->queue);
    ldg_list_init(&c->running);
    return c;
}

size_t ldg_httpc_pending(const struct ldg_httpc *c)
{
    return c->inflight + c->queued;
}

static void start(struct hreq *h);

static void maybe_free(struct hreq *h)
{
    if (!h->done || h->open_handles || h->gai_pending)
        return;
    struct ldg_httpc *c = h->c;
    free(h->ubuf);
    free(h->out);
    free(h);
    if (--c->live == 0 && c->closing)
        free(c);
}

static void on_handle_closed(uv_handle_t *hd)
{
    struct hreq *h = hd->data;
    h->open_handles--;
    maybe_free(h);
}

static void pump(struct ldg_httpc *c)
{
    while (!c->closing && c->inflight < c->max_inflight && !ldg_list_empty(&c->queue)) {
        struct hreq *h = ldg_container_of(ldg_list_pop_front(&c->queue), struct hreq, node);
        c->queued--;
        start(h);
    }
}

static void finish(struct hreq *h, int status, const char *error)
{
    if (h->done)
        return;
    h->done = true;
    struct ldg_httpc *c = h->c;
    ldg_list_remove(&c->running, &h->node);
    c->inflight--;
    int64_t took = (int64_t)(uv_now(c->loop) - h->start_ms);
    if (h->timer_open) {
        h->timer_open = false;
        uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    }
    if (h->tcp_open) {
        h->tcp_open = false;
        uv_close((uv_handle_t *)&h->tcp, on_handle_closed);
    }
    if (h->gai_pending)
        uv_cancel((uv_req_t *)&h->gai);
    h->cb(status, took, error, h->ud);
    pump(c);
    maybe_free(h);
}

static void on_timer(uv_timer_t *t)
{
    struct hreq *h = t->data;
    if (h->fail_code)
        finish(h, h->fail_code, h->fail_text);
    else
        finish(h, -ETIMEDOUT, "timed out");
}

static void on_read_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct hreq *h = hd->data;
    size_t room = HEAD_MAX - 1 - h->headlen;
    if (room == 0) { /* the status line did not fit: read into a scratch area */
        static _Thread_local char scratch[256];
        *buf = uv_buf_init(scratch, sizeof scratch);
        return;
    }
    *buf = uv_buf_init(h->head + h->headlen, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hreq *h = s->data;
    if (h->done)
        return;
    if (nread > 0 && buf->base == h->head + h->headlen) {
        h->headlen += (size_t)nread;
        h->head[h->headlen] = 0;
    }
    char *eol = strstr(h->head, "\r\n");
    if (!eol && h->headlen >= HEAD_MAX - 1) {
        finish(h, -EPROTO, "malformed response");
        return;
    }
    if (eol) {
        int major = 0, minor = 0, code = 0;
        if (sscanf(h->head, "HTTP/%d.%d %d", &major, &minor, &code) != 3 || code < 100 || code > 999)
            finish(h, -EPROTO, "malformed response");
        else
            finish(h, code, NULL);
        return;
    }
    if (nread < 0)
        finish(h, nread == UV_EOF ? -EPROTO : (int)nread,
               nread == UV_EOF ? "connection closed before a response" : uv_strerror((int)nread));
}

static void on_written(uv_write_t *w, int status)
{
    struct hreq *h = w->data;
    if (status < 0 && !h->done && status != UV_ECANCELED)
        finish(h, status, uv_strerror(status));
}

static void on_connected(uv_connect_t *cr, int status)
{
    struct hreq *h = cr->data;
    if (h->done)
        return;
    if (status < 0) {
        finish(h, status, uv_strerror(status));
        return;
    }
    uv_buf_t b = uv_buf_init(h->out, (unsigned)h->outlen);
    h->wr.data = h;
    int rc = uv_write(&h->wr, (uv_stream_t *)&h->tcp, &b, 1, on_written);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&h->tcp, on_read_alloc, on_read);
    if (rc < 0)
        finish(h, rc, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct hreq *h = g->data;
    h->gai_pending = false;
    if (h->done) {
        if (res)
            uv_freeaddrinfo(res);
        maybe_free(h);
        return;
    }
    if (status < 0 || !res) {
        if (res)
            uv_freeaddrinfo(res);
        finish(h, -EHOSTUNREACH, "name resolution failed");
        return;
    }
    int rc = uv_tcp_init(h->c->loop, &h->tcp);
    if (rc == 0) {
        h->tcp.data = h;
        h->tcp_open = true;
        h->open_handles++;
        h->conn.data = h;
        rc = uv_tcp_connect(&h->conn, &h->tcp, res->ai_addr, on_connected);
    }
    uv_freeaddrinfo(res);
    if (rc < 0)
        finish(h, rc, uv_strerror(rc));
}

static void start(struct hreq *h)
{
    struct ldg_httpc *c = h->c;
    c->inflight++;
    ldg_list_push_back(&c->running, &h->node);
    h->start_ms = uv_now(c->loop);
    uv_timer_init(c->loop, &h->timer);
    h->timer.data = h;
    h->timer_open = true;
    h->open_handles++;
    char port[8];
    snprintf(port, sizeof port, "%d", h->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    h->gai.data = h;
    int rc = uv_getaddrinfo(c->loop, &h->gai, on_resolved, h->host, port, &hints);
    if (rc < 0) {
        h->fail_code = -EHOSTUNREACH;
        h->fail_text = "name resolution failed";
        uv_timer_start(&h->timer, on_timer, 0, 0);
        return;
    }
    h->gai_pending = true;
    uv_timer_start(&h->timer, on_timer, (uint64_t)h->timeout_ms, 0);
}

int ldg_httpc_send(struct ldg_httpc *c, const struct ldg_httpc_req *r, ldg_httpc_cb cb, void *ud)
{
    if (c->closing)
        return -ECANCELED;
    size_t cap = strlen(r->url ? r->url : "") + 4;
    char *ubuf = ldg_malloc(cap);
    const char *host, *path;
    int port;
    int rc = ldg_httpc_parse_url(r->url, ubuf, cap, &host, &port, &path);
    if (rc < 0) {
        free(ubuf);
        return rc;
    }
    if (c->inflight >= c->max_inflight && c->queued >= c->max_queued) {
        free(ubuf);
        return -EAGAIN;
    }
    struct hreq *h = ldg_calloc(1, sizeof *h);
    h->c = c;
    h->cb = cb;
    h->ud = ud;
    h->ubuf = ubuf;
    h->host = host;
    h->path = path;
    h->port = port;
    h->timeout_ms = r->timeout_ms > 0 ? r->timeout_ms : 10000;
    struct ldg_buf b;
    ldg_buf_init(&b);
    bool v6 = strchr(host, ':') != NULL;
    ldg_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s%s%s", r->method ? r->method : "GET", path, v6 ? "[" : "",
                   host, v6 ? "]" : "");
    if (port != 80)
        ldg_buf_printf(&b, ":%d", port);
    ldg_buf_puts(&b, "\r\nUser-Agent: ledgerd\r\nConnection: close\r\n");
    for (size_t i = 0; i < r->nheaders; i++) {
        ldg_buf_puts(&b, r->headers[i]);
        ldg_buf_puts(&b, "\r\n");
    }
    if (r->body || (r->method && strcmp(r->method, "GET") != 0))
        ldg_buf_printf(&b, "Content-Length: %zu\r\n", r->body ? r->body_len : 0);
    ldg_buf_puts(&b, "\r\n");
    if (r->body)
        ldg_buf_put(&b, r->body, r->body_len);
    h->outlen = ldg_buf_size(&b);
    h->out = ldg_malloc(h->outlen ? h->outlen : 1);
    memcpy(h->out, ldg_buf_head(&b), h->outlen);
    ldg_buf_free(&b);
    c->live++;
    if (c->inflight < c->max_inflight) {
        start(h);
    } else {
        ldg_list_push_back(&c->queue, &h->node);
        c->queued++;
    }
    return 0;
}

void ldg_httpc_close(struct ldg_httpc *c)
{
    if (c->closing)
        return;
    c->closing = true;
    size_t live = c->live;
    while (!ldg_list_empty(&c->queue)) {
        struct hreq *h = ldg_container_of(ldg_list_pop_front(&c->queue), struct hreq, node);
        c->queued--;
        h->done = true;
        h->cb(-ECANCELED, 0, "cancelled", h->ud);
        free(h->ubuf);
        free(h->out);
        free(h);
        live--;
    }
    c->live = live + 1; /* held while failing the running ones */
    while (!ldg_list_empty(&c->running)) {
        struct hreq *h = ldg_container_of(ldg_list_first(&c->running), struct hreq, node);
        finish(h, -ECANCELED, "cancelled");
    }
    if (--c->live == 0)
        free(c);
}
