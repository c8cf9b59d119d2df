#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <zlib.h>

#include "core/buf.h"
#include "http/request.h"

static void gzip_buf(const char *in, size_t n, struct ldg_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, n);
    char *dst = ldg_buf_reserve(out, cap, 0);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)dst;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    ldg_buf_commit(out, cap - zs.avail_out);
    deflateEnd(&zs);
}

static void test_inflate_roundtrip(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    char text[50000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    gzip_buf(text, sizeof text, &b);
    assert_int_equal(ldg_req_inflate(&b, 1 << 20), 0);
    assert_int_equal(ldg_buf_size(&b), sizeof text);
    assert_memory_equal(ldg_buf_head(&b), text, sizeof text);
    ldg_buf_free(&b);
}

static void test_inflate_bomb_capped(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    size_t n = 8 << 20;
    char *zeros = calloc(1, n);
    gzip_buf(zeros, n, &b);
    free(zeros);
    assert_true(ldg_buf_size(&b) < 64 * 1024);
    assert_int_equal(ldg_req_inflate(&b, 1 << 20), -E2BIG);
    ldg_buf_free(&b);
}

static void test_inflate_garbage(void **state)
{
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_puts(&b, "definitely not gzip");
    assert_int_equal(ldg_req_inflate(&b, 1 << 20), -EINVAL);
    ldg_buf_free(&b);

    /* Truncated stream. */
    ldg_buf_init(&b);
    gzip_buf("hello hello hello", 17, &b);
    b.len -= 6;
    assert_int_equal(ldg_req_inflate(&b, 1 << 20), -EINVAL);
    ldg_buf_free(&b);
}

static void test_reason(void **state)
{
    assert_string_equal(ldg_http_reason(404), "Not Found");
    assert_string_equal(ldg_http_reason(431), "Request Header Fields Too Large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inflate_roundtrip),
        cmocka_unit_test(test_inflate_bomb_capped),
        cmocka_unit_test(test_inflate_garbage),
        cmocka_unit_test(test_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
