/* Whole requests fed in one piece, byte by byte, and in random splits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/worker.h"
#include "http/parse.h"

static struct ldg_worker W;

struct fixture {
    struct ldg_parser p;
    struct ldg_req *req;
    size_t body_limit;
    int head_calls;
};

static int on_head(struct ldg_parser *p, struct ldg_req *req)
{
    struct fixture *f = p->ud;
    f->head_calls++;
    req->body_limit = f->body_limit;
    return 0;
}

static void setup_fx(struct fixture *f, size_t max_header, size_t body_limit)
{
    memset(f, 0, sizeof *f);
    struct ldg_parser_limits lim = {max_header, 100};
    f->body_limit = body_limit;
    ldg_parser_init(&f->p, &lim, on_head, f);
    f->req = ldg__req_new(&W, NULL);
    ldg_parser_begin(&f->p, f->req);
}

static void next_req(struct fixture *f)
{
    ldg_req_unref(f->req);
    f->req = ldg__req_new(&W, NULL);
    ldg_parser_begin(&f->p, f->req);
}

static void teardown_fx(struct fixture *f)
{
    ldg_req_unref(f->req);
    ldg_parser_free(&f->p);
}

/* Feed `data` in pieces of `step` bytes (0 = all at once); returns the result and total consumed. */
static enum ldg_parse_result feed(struct fixture *f, const char *data, size_t len, size_t step, size_t *used)
{
    size_t off = 0;
    enum ldg_parse_result r = LDG_PARSE_MORE;
    while (off < len) {
        size_t n = step ? LDG_MIN(step, len - off) : len - off;
        size_t c = 0;
        r = ldg_parser_feed(&f->p, data + off, n, &c);
        off += c;
        if (r != LDG_PARSE_MORE)
            break;
    }
    *used = off;
    return r;
}

static const char simple[] = "POST /api/v1/ingest/batch?x=1&y=%20z HTTP/1.1\r\n"
                             "Host: example\r\n"
                             "Content-Type: application/json\r\n"
                             "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                             "Content-Length: 11\r\n"
                             "\r\n"
                             "{\"logs\":[]}";

static void check_simple(struct fixture *f)
{
    struct ldg_req *r = f->req;
    assert_int_equal(r->method, HTTP_POST);
    assert_true(ldg_str_eq(r->path, "/api/v1/ingest/batch"));
    assert_true(ldg_str_eq(r->query, "x=1&y=%20z"));
    assert_int_equal(r->nheaders, 4);
    assert_true(ldg_str_eq(ldg_req_header(r, "content-type"), "application/json"));
    assert_true(
        ldg_str_eq(ldg_req_header(r, "X-LONG"), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_int_equal(r->content_length, 11);
    assert_int_equal(ldg_buf_size(&r->body), 11);
    assert_memory_equal(ldg_buf_head(&r->body), "{\"logs\":[]}", 11);
    assert_true(r->keep_alive);
    struct ldg_str v;
    assert_true(ldg_req_query(r, "y", &v));
    assert_true(ldg_str_eq(v, " z"));
    assert_false(ldg_req_query(r, "z", &v));
}

static void test_splits(void **state)
{
    size_t steps[] = {0, 1, 2, 3, 7, 13, 64};
    for (size_t i = 0; i < LDG_ARRAY_SIZE(steps); i++) {
        struct fixture f;
        setup_fx(&f, 8192, 1024);
        size_t used;
        assert_int_equal(feed(&f, simple, sizeof simple - 1, steps[i], &used), LDG_PARSE_DONE);
        assert_int_equal(used, sizeof simple - 1);
        check_simple(&f);
        teardown_fx(&f);
    }
    srand(7);
    for (int round = 0; round < 200; round++) {
        struct fixture f;
        setup_fx(&f, 8192, 1024);
        size_t off = 0, len = sizeof simple - 1;
        enum ldg_parse_result r = LDG_PARSE_MORE;
        while (off < len && r == LDG_PARSE_MORE) {
            size_t n = 1 + (size_t)rand() % (len - off);
            size_t c;
            r = ldg_parser_feed(&f.p, simple + off, n, &c);
            off += c;
        }
        assert_int_equal(r, LDG_PARSE_DONE);
        check_simple(&f);
        teardown_fx(&f);
    }
}

static void test_pipelined(void **state)
{
    static const char two[] =
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct fixture f;
    setup_fx(&f, 8192, 1024);
    size_t used;
    assert_int_equal(ldg_parser_feed(&f.p, two, sizeof two - 1, &used), LDG_PARSE_DONE);
    assert_true(ldg_str_eq(f.req->path, "/a"));
    assert_true(used < sizeof two - 1);
    next_req(&f);
    size_t used2;
    assert_int_equal(ldg_parser_feed(&f.p, two + used, sizeof two - 1 - used, &used2), LDG_PARSE_DONE);
    assert_int_equal(used + used2, sizeof two - 1);
    assert_true(ldg_str_eq(f.req->path, "/b"));
    assert_false(f.req->keep_alive);
    teardown_fx(&f);
}

static void test_chunked(void **state)
{
    static const char req[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
    for (size_t step = 0; step < 5; step++) {
        struct fixture f;
        setup_fx(&f, 8192, 1024);
        size_t used;
        assert_int_equal(feed(&f, req, sizeof req - 1, step, &used), LDG_PARSE_DONE);
        assert_true(f.req->chunked);
        assert_int_equal(ldg_buf_size(&f.req->body), 11);
        assert_memory_equal(ldg_buf_head(&f.req->body), "hello world", 11);
        teardown_fx(&f);
    }
}

static void test_chunked_over_limit(void **state)
{
    static const char req[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    struct fixture f;
    setup_fx(&f, 8192, 8);
    size_t used;
    assert_int_equal(feed(&f, req, sizeof req - 1, 0, &used), LDG_PARSE_ERROR);
    assert_int_equal(f.p.status, 413);
    teardown_fx(&f);
}

static void test_content_length_over_limit(void **state)
{
    static const char req[] = "POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n";
    struct fixture f;
    setup_fx(&f, 8192, 10);
    size_t used;
    assert_int_equal(feed(&f, req, sizeof req - 1, 0, &used), LDG_PARSE_ERROR);
    assert_int_equal(f.p.status, 413);
    assert_int_equal(f.head_calls, 1);
    teardown_fx(&f);
}

static void test_header_too_large(void **state)
{
    char req[4096];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nX-Big: %0*d\r\n\r\n", 2000, 0);
    struct fixture f;
    setup_fx(&f, 1024, 10);
    size_t used;
    assert_int_equal(feed(&f, req, (size_t)n, 100, &used), LDG_PARSE_ERROR);
    assert_int_equal(f.p.status, 431);
    teardown_fx(&f);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "GET nothing HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < LDG_ARRAY_SIZE(bad); i++) {
        struct fixture f;
        setup_fx(&f, 8192, 1024);
        size_t used;
        assert_int_equal(feed(&f, bad[i], strlen(bad[i]), 0, &used), LDG_PARSE_ERROR);
        assert_true(f.p.status == 400 || f.p.status == 505);
        assert_non_null(f.p.detail);
        teardown_fx(&f);
    }
}

static void test_expect_and_encoding(void **state)
{
    static const char ok[] = "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Encoding: gzip\r\n"
                             "Content-Length: 0\r\n\r\n";
    struct fixture f;
    setup_fx(&f, 8192, 1024);
    size_t used;
    assert_int_equal(feed(&f, ok, sizeof ok - 1, 0, &used), LDG_PARSE_DONE);
    assert_true(f.req->expect_continue);
    assert_true(f.req->gzip);
    teardown_fx(&f);

    static const char bad_expect[] = "POST /x HTTP/1.1\r\nExpect: tea\r\n\r\n";
    setup_fx(&f, 8192, 1024);
    assert_int_equal(feed(&f, bad_expect, sizeof bad_expect - 1, 0, &used), LDG_PARSE_ERROR);
    assert_int_equal(f.p.status, 417);
    teardown_fx(&f);

    static const char bad_enc[] = "POST /x HTTP/1.1\r\nContent-Encoding: br\r\n\r\n";
    setup_fx(&f, 8192, 1024);
    assert_int_equal(feed(&f, bad_enc, sizeof bad_enc - 1, 0, &used), LDG_PARSE_ERROR);
    assert_int_equal(f.p.status, 415);
    teardown_fx(&f);
}

static int group_setup(void **state)
{
    memset(&W, 0, sizeof W);
    ldg_list_init(&W.req_pool);
    W.state = LDG_WORKER_RUNNING;
    return 0;
}

static int group_teardown(void **state)
{
    struct ldg_list_node *n;
    while ((n = ldg_list_pop_front(&W.req_pool)))
        ldg__req_release_final(ldg_container_of(n, struct ldg_req, link));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splits),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_over_limit),
        cmocka_unit_test(test_content_length_over_limit),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_expect_and_encoding),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
