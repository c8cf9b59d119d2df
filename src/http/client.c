/*
 * client.c: outgoing HTTP/1.1 requests on a loop (see client.h).
 *
 * A request owns up to three things that finish at different times: the getaddrinfo job, the TCP
 * handle and the deadline timer. A name's addresses (up to ADDRS_MAX) are tried one after the
 * other until one connects, each on a new TCP handle, all within the request's one deadline. finish() reports
 * once, then closes what is open; the request is freed when the last of them is gone (close callbacks, the
 * resolution's callback).
 *
 * https:// runs OpenSSL over the same TCP handle through a pair of memory BIOs: bytes read from
 * the socket go into the read BIO, the TLS engine's output is taken from the write BIO and written
 * with uv_write. The engine never touches the socket, so nothing blocks the loop. The client's
 * SSL_CTX (made at the first https:// request) verifies the peer against the system CA store and
 * the configured CA file; each connection sends SNI (names, not addresses) and checks the
 * certificate's name or IP address against the URL's host.
 */
#include "http/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/list.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define HEAD_MAX 512
#define ADDRS_MAX 4 /* addresses of a name tried, in getaddrinfo order */

struct ldg_httpc {
    uv_loop_t *loop;
    unsigned max_inflight, max_queued, inflight, queued;
    struct ldg_list queue, running;
    size_t live; /* requests allocated */
    bool closing;
    char *ca_file;   /* owned; NULL: the system store only */
    SSL_CTX *tls;    /* made at the first https:// request */
    bool tls_failed; /* ... and could not be: https:// requests fail */
};

struct twrite { /* one flush of TLS output to the socket */
    uv_write_t wr;
    struct hreq *h;
    size_t len;
    char data[];
};

struct hreq {
    struct ldg_list_node node;
    struct ldg_httpc *c;
    ldg_httpc_cb cb;
    void *ud;
    char *ubuf; /* owned: host and path point into it */
    const char *host, *path;
    int port;
    bool tls;  /* https:// */
    SSL *ssl;  /* owns its two memory BIOs */
    bool sent; /* TLS: the request went into the engine */
    char tls_err[112];
    char *out; /* owned: the request bytes */
    size_t outlen;
    int64_t timeout_ms;
    uint64_t start_ms;
    uv_getaddrinfo_t gai;
    struct sockaddr_storage addrs[ADDRS_MAX]; /* what the name resolved to, tried in order */
    int naddrs, next_addr;
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

static int parse_url(const char *url, char *buf, size_t cap, const char **host, int *port, const char **path,
                     bool *tls)
{
    if (!url)
        return -EINVAL;
    *tls = strncasecmp(url, "https://", 8) == 0;
    if (!*tls && strncasecmp(url, "http://", 7) != 0)
        return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
    const char *p = url + (*tls ? 8 : 7);
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
    *port = *tls ? 443 : 80;
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

int ldg_httpc_parse_url(const char *url, char *buf, size_t cap, const char **host, int *port,
                        const char **path)
{
    bool tls;
    return parse_url(url, buf, cap, host, port, path, &tls);
}

int ldg_httpc_set_ca_file(struct ldg_httpc *c, const char *path)
{
    free(c->ca_file);
    c->ca_file = path && *path ? ldg_strdup(path) : NULL;
    if (c->tls) { /* made with the old setting: the next https:// request makes a new one */
        SSL_CTX_free(c->tls);
        c->tls = NULL;
    }
    c->tls_failed = false;
    return c->ca_file && access(c->ca_file, R_OK) != 0 ? -errno : 0;
}

/* The client's TLS context: TLS 1.2 or later, peer verification on (system store + CA file). */
static SSL_CTX *tls_ctx(struct ldg_httpc *c)
{
    if (c->tls || c->tls_failed)
        return c->tls;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    bool ok = ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
              SSL_CTX_set_default_verify_paths(ctx) == 1 &&
              (!c->ca_file || SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) == 1);
    ERR_clear_error();
    if (!ok) {
        SSL_CTX_free(ctx);
        c->tls_failed = true;
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    c->tls = ctx;
    return ctx;
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

static void client_free(struct ldg_httpc *c)
{
    SSL_CTX_free(c->tls);
    free(c->ca_file);
    free(c);
}

static void maybe_free(struct hreq *h)
{
    if (!h->done || h->open_handles || h->gai_pending)
        return;
    struct ldg_httpc *c = h->c;
    free(h->ubuf);
    free(h->out);
    free(h);
    if (--c->live == 0 && c->closing)
        client_free(c);
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
    if (h->ssl) {
        SSL_free(h->ssl);
        h->ssl = NULL;
    }
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

static bool status_line(struct hreq *h);

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
    if (status_line(h))
        return;
    if (nread < 0)
        finish(h, nread == UV_EOF ? -EPROTO : (int)nread,
               nread == UV_EOF ? "connection closed before a response" : uv_strerror((int)nread));
}

/* Parse the status line once it is complete: true when the request finished. */
static bool status_line(struct hreq *h)
{
    char *eol = strstr(h->head, "\r\n");
    if (!eol && h->headlen >= HEAD_MAX - 1) {
        finish(h, -EPROTO, "malformed response");
        return true;
    }
    if (!eol)
        return false;
    int major = 0, minor = 0, code = 0;
    if (sscanf(h->head, "HTTP/%d.%d %d", &major, &minor, &code) != 3 || code < 100 || code > 999)
        finish(h, -EPROTO, "malformed response");
    else
        finish(h, code, NULL);
    return true;
}

static void on_tls_written(uv_write_t *w, int status)
{
    struct twrite *tw = w->data;
    struct hreq *h = tw->h;
    free(tw);
    if (status < 0 && !h->done && status != UV_ECANCELED)
        finish(h, status, uv_strerror(status));
}

/* Write what the TLS engine produced to the socket. */
static bool tls_flush(struct hreq *h)
{
    BIO *wbio = SSL_get_wbio(h->ssl);
    size_t n;
    while ((n = BIO_ctrl_pending(wbio)) > 0) {
        struct twrite *tw = ldg_malloc(sizeof *tw + n);
        int got = BIO_read(wbio, tw->data, (int)n);
        if (got <= 0) {
            free(tw);
            break;
        }
        tw->h = h;
        tw->len = (size_t)got;
        tw->wr.data = tw;
        uv_buf_t b = uv_buf_init(tw->data, (unsigned)tw->len);
        int rc = uv_write(&tw->wr, (uv_stream_t *)&h->tcp, &b, 1, on_tls_written);
        if (rc < 0) {
            free(tw);
            finish(h, rc, uv_strerror(rc));
            return false;
        }
    }
    return true;
}

/* A TLS failure: the certificate's verification result when that is what failed, else the
 * library's reason. The text lives in the request until its callback has run. */
static void tls_fail(struct hreq *h, const char *what)
{
    long vr = SSL_get_verify_result(h->ssl);
    unsigned long e = ERR_peek_last_error();
    if (vr != X509_V_OK)
        snprintf(h->tls_err, sizeof h->tls_err, "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    else if (e && ERR_reason_error_string(e))
        snprintf(h->tls_err, sizeof h->tls_err, "TLS %s failed: %s", what, ERR_reason_error_string(e));
    else
        snprintf(h->tls_err, sizeof h->tls_err, "TLS %s failed", what);
    ERR_clear_error();
    finish(h, -EPROTO, h->tls_err);
}

/* Move the TLS connection on as far as the bytes at hand allow: handshake, request, answer. */
static void tls_advance(struct hreq *h)
{
    if (!SSL_is_init_finished(h->ssl)) {
        int r = SSL_do_handshake(h->ssl);
        if (r != 1) {
            int e = SSL_get_error(h->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                tls_flush(h);
                return;
            }
            tls_fail(h, "handshake");
            return;
        }
    }
    if (!h->sent) {
        /* Memory BIOs grow as needed: the whole request goes in at once. */
        if (SSL_write(h->ssl, h->out, (int)h->outlen) != (int)h->outlen) {
            tls_fail(h, "write");
            return;
        }
        h->sent = true;
    }
    if (!tls_flush(h))
        return;
    for (;;) {
        size_t room = HEAD_MAX - 1 - h->headlen;
        char scratch[256];
        char *into = room ? h->head + h->headlen : scratch;
        int r = SSL_read(h->ssl, into, room ? (int)room : (int)sizeof scratch);
        if (r > 0) {
            if (room) {
                h->headlen += (size_t)r;
                h->head[h->headlen] = 0;
            }
            if (status_line(h))
                return;
            continue;
        }
        int e = SSL_get_error(h->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            tls_flush(h); /* e.g. a key update */
            return;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            finish(h, -EPROTO, "connection closed before a response");
            return;
        }
        tls_fail(h, "read");
        return;
    }
}

static void on_tls_read_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)hd;
    (void)suggested;
    static _Thread_local char in[16384]; /* consumed by on_tls_read before the next read */
    *buf = uv_buf_init(in, sizeof in);
}

static void on_tls_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hreq *h = s->data;
    if (h->done)
        return;
    if (nread > 0) {
        if (BIO_write(SSL_get_rbio(h->ssl), buf->base, (int)nread) != (int)nread) {
            tls_fail(h, "read");
            return;
        }
        tls_advance(h);
        return;
    }
    if (nread < 0) {
        bool hs = !SSL_is_init_finished(h->ssl);
        if (nread == UV_EOF)
            finish(h, -EPROTO,
                   hs ? "TLS handshake failed: connection closed" : "connection closed before a response");
        else
            finish(h, (int)nread, uv_strerror((int)nread));
    }
}

static bool is_ip_literal(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static void tls_start(struct hreq *h)
{
    SSL_CTX *ctx = tls_ctx(h->c);
    if (!ctx) {
        finish(h, -EPROTO, "TLS unavailable: the CA file could not be loaded");
        return;
    }
    h->ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    bool ok = h->ssl && rb && wb;
    if (ok) {
        SSL_set_bio(h->ssl, rb, wb); /* the SSL owns them from here */
        rb = wb = NULL;
        SSL_set_connect_state(h->ssl);
        if (is_ip_literal(h->host)) {
            /* No SNI for addresses (RFC 6066); the certificate must name the address. */
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h->ssl), h->host) == 1;
        } else {
            ok = SSL_set_tlsext_host_name(h->ssl, h->host) == 1 && SSL_set1_host(h->ssl, h->host) == 1;
        }
    }
    BIO_free(rb);
    BIO_free(wb);
    if (!ok) {
        ERR_clear_error();
        finish(h, -EPROTO, "TLS setup failed");
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&h->tcp, on_tls_read_alloc, on_tls_read);
    if (rc < 0) {
        finish(h, rc, uv_strerror(rc));
        return;
    }
    tls_advance(h);
}

static void on_written(uv_write_t *w, int status)
{
    struct hreq *h = w->data;
    if (status < 0 && !h->done && status != UV_ECANCELED)
        finish(h, status, uv_strerror(status));
}

static void connect_next(struct hreq *h);

/* The TCP handle of a refused address is closed: the next address gets a new one. */
static void on_retry_closed(uv_handle_t *hd)
{
    struct hreq *h = hd->data;
    h->open_handles--;
    if (h->done)
        maybe_free(h);
    else
        connect_next(h);
}

/* Give up the current address: its handle closes, then the next address is tried. */
static void try_next_addr(struct hreq *h)
{
    h->tcp_open = false;
    uv_close((uv_handle_t *)&h->tcp, on_retry_closed);
}

static void on_connected(uv_connect_t *cr, int status)
{
    struct hreq *h = cr->data;
    if (h->done)
        return;
    if (status < 0 && h->next_addr < h->naddrs) {
        /* "localhost" is both ::1 and 127.0.0.1 on a stock Debian, and a server often listens
         * on one of them only: try the next address within the same deadline. */
        try_next_addr(h);
        return;
    }
    if (status < 0) {
        finish(h, status, uv_strerror(status));
        return;
    }
    if (h->tls) {
        tls_start(h);
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
    h->naddrs = h->next_addr = 0;
    for (const struct addrinfo *a = res; a && h->naddrs < ADDRS_MAX; a = a->ai_next)
        if (a->ai_addr && a->ai_addrlen <= sizeof h->addrs[0])
            memcpy(&h->addrs[h->naddrs++], a->ai_addr, a->ai_addrlen);
    uv_freeaddrinfo(res);
    if (h->naddrs == 0) {
        finish(h, -EHOSTUNREACH, "name resolution failed");
        return;
    }
    connect_next(h);
}

/* A new TCP handle to the next address of h->addrs. */
static void connect_next(struct hreq *h)
{
    int rc = uv_tcp_init(h->c->loop, &h->tcp);
    if (rc < 0) {
        finish(h, rc, uv_strerror(rc));
        return;
    }
    h->tcp.data = h;
    h->tcp_open = true;
    h->open_handles++;
    h->conn.data = h;
    rc = uv_tcp_connect(&h->conn, &h->tcp, (const struct sockaddr *)&h->addrs[h->next_addr++], on_connected);
    if (rc < 0 && h->next_addr < h->naddrs) /* e.g. an IPv6 address on a host without IPv6 */
        try_next_addr(h);
    else if (rc < 0)
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
    bool tls;
    int rc = parse_url(r->url, ubuf, cap, &host, &port, &path, &tls);
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
    h->tls = tls;
    h->timeout_ms = r->timeout_ms > 0 ? r->timeout_ms : 10000;
    struct ldg_buf b;
    ldg_buf_init(&b);
    bool v6 = strchr(host, ':') != NULL;
    ldg_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s%s%s", r->method ? r->method : "GET", path, v6 ? "[" : "",
                   host, v6 ? "]" : "");
    if (port != (tls ? 443 : 80))
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
        client_free(c);
}
