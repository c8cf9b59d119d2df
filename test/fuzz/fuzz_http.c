/*
 * fuzz_http.c: bytes in -> responses out through the real connection code, parser and router.
 *
 * One worker loop (no thread) with a TCP listener on 127.0.0.1; each input is written by a client
 * socket, which then half-closes; the loop runs (ldg_conn_on_connection, reads, the deferred-body
 * filter, handlers, writes, lingering close) until the connection is gone, and the client reads
 * every response. Handlers are stubs that exercise the request accessors (query, params,
 * cookies, headers, the client address behind trusted proxies) and answer with what they saw;
 * the filter admits or refuses on a header, so the authenticate-before-body path runs too.
 * Every response must start with a status line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/worker.h"
#include "http/conn.h"
#include "http/request.h"
#include "http/router.h"
#include "server.h"
#include "settings.h"

static struct ldg_config cfg;
static struct ldg_server srv;
static struct ldg_worker w;
static struct ldg_router *router;
static uv_tcp_t listener;
static int port;

static void answer(struct ldg_req *req)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    struct ldg_str v;
    char addr[64];
    ldg_req_peer_addr(req, addr, sizeof addr);
    ldg_buf_printf(&b, "{\"n\":%zu,\"addr\":\"%s\"", ldg_buf_size(&req->body), addr);
    if (ldg_req_query(req, "q", &v))
        ldg_buf_printf(&b, ",\"q\":%zu", v.n);
    v = ldg_req_param(req, "id");
    ldg_buf_printf(&b, ",\"id\":%zu", v.n);
    v = ldg_req_cookie(req, "access_token");
    ldg_buf_printf(&b, ",\"c\":%zu}", v.n);
    if (ldg_req_header(req, "x-extra").n)
        ldg_req_add_header(req, "X-Extra", "1\r\nInjected: no");
    ldg_req_json(req, ldg_req_header(req, "x-204").n ? 204 : 200, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

static void on_filter(struct ldg_req *req)
{
    if (ldg_req_header(req, "x-deny").n) {
        ldg_req_error(req, 401, "denied");
        return;
    }
    ldg_req_run_handler(req);
}

static bool claims(struct ldg_str path)
{
    return path.n > 4 && memcmp(path.p, "/app", 4) == 0;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    ldg_log_min_level = (enum ldg_log_level)(LDG_LOG_ERROR + 1); /* quiet */
    struct ldg_cfg_err err = {{0}};
    static const char ini[] = "[server]\n"
                              "max_body_bytes = 65536\n"
                              "max_inflated_bytes = 262144\n"
                              "max_buffered_body_bytes = 131072\n"
                              "max_header_bytes = 8192\n"
                              "max_headers = 32\n"
                              "cors_origins = https://a.example, *\n"
                              "trusted_proxies = 127.0.0.1, 10.0.0.0/8, ::1\n";
    if (ldg_settings_load_string(&cfg, ini, &err) != 0) {
        fprintf(stderr, "config: %s\n", err.msg);
        abort();
    }
    router = ldg_router_new();
    struct ldg_route_opts pub = {.flags = LDG_ROUTE_PUBLIC};
    struct ldg_route_opts small = {.max_body_bytes = 1024};
    if (ldg_router_add(router, "GET", "/health", answer, &pub) || ldg_router_add(router, "POST", "/login", answer, &pub) ||
        ldg_router_add(router, "POST", "/api/v1/items/{id}", answer, NULL) ||
        ldg_router_add(router, "PUT", "/api/v1/items/{id}/{sub}", answer, &small) ||
        ldg_router_add(router, "GET", "/api/v1/items", answer, NULL) ||
        ldg_router_add(router, "DELETE", "/api/v1/items/{id}", answer, NULL) ||
        ldg_router_set_fallback(router, "/app", claims, answer))
        abort();
    ldg_router_set_filter(router, on_filter);

    w.cfg = &cfg;
    w.srv = &srv;
    w.router = router;
    w.state = LDG_WORKER_RUNNING;
    for (int i = 0; i < LDG_CONN_NSTATES; i++)
        ldg_list_init(&w.conns[i]);
    ldg_list_init(&w.req_pool);
    w.read_buf = ldg_malloc(LDG_WORKER_READ_BUF);
    ldg_stats_init(&w.stats, ldg_router_count(router));
    if (uv_loop_init(&w.loop) < 0)
        abort();
    uv_check_init(&w.loop, &w.written);
    w.written.data = &w;

    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&w.loop, &listener);
    listener.data = &w;
    if (uv_tcp_bind(&listener, (const struct sockaddr *)&sa, 0) < 0 ||
        uv_listen((uv_stream_t *)&listener, 128, ldg_conn_on_connection) < 0)
        abort();
    int len = sizeof sa;
    uv_tcp_getsockname(&listener, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            close(fd); /* the client side ran out of ports or the backlog is full: let the loop run */
            fd = -1;
            uv_run(&w.loop, UV_RUN_NOWAIT);
            usleep(1000);
        }
    }
    if (fd < 0)
        abort();
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t off = 0;
    bool shut = false, accepted = false;
    char resp[65536];
    struct ldg_buf got;
    ldg_buf_init(&got);
    for (int spins = 0; spins < 20000; spins++) {
        if (off < size) {
            ssize_t n = write(fd, data + off, size - off);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                off = size; /* the server closed: stop sending */
        } else if (!shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        uv_run(&w.loop, UV_RUN_NOWAIT);
        if (w.nconns)
            accepted = true;
        ssize_t n;
        while ((n = read(fd, resp, sizeof resp)) > 0)
            if (ldg_buf_size(&got) < (1u << 20))
                ldg_buf_put(&got, resp, (size_t)n);
        if (accepted && w.nconns == 0 && shut)
            break;
    }
    /* Whatever came back is a sequence of responses: each starts with a status line. */
    if (ldg_buf_size(&got) && (ldg_buf_size(&got) < 9 || memcmp(ldg_buf_head(&got), "HTTP/1.1 ", 9) != 0))
        abort();
    ldg_buf_free(&got);
    /* Reset rather than FIN: the exchange is over, and millions of runs must not leave as many
     * client ports in TIME_WAIT. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    /* A connection still open (a bug: nothing should be left) is closed now. */
    if (w.nconns) {
        ldg_conn_close_all(&w);
        for (int i = 0; i < 10 && w.nconns; i++)
            uv_run(&w.loop, UV_RUN_NOWAIT);
    }
    if (w.body_bytes != 0)
        abort(); /* every body's budget charge is returned */
    return 0;
}
