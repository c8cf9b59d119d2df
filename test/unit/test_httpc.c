#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "http/client.h"

static void parse(const char *url, int want_rc, const char *host, int port, const char *path)
{
    char buf[256];
    const char *h = NULL, *p = NULL;
    int po = 0;
    int rc = ldg_httpc_parse_url(url, buf, sizeof buf, &h, &po, &p);
    assert_int_equal(rc, want_rc);
    if (rc == 0) {
        assert_string_equal(h, host);
        assert_int_equal(po, port);
        assert_string_equal(p, path);
    }
}

static void urls(void **state)
{
    (void)state;
    parse("http://example.com", 0, "example.com", 80, "/");
    parse("http://example.com/", 0, "example.com", 80, "/");
    parse("HTTP://Example.com:8080/hook?x=1#frag", 0, "Example.com", 8080, "/hook?x=1");
    parse("http://127.0.0.1:9/a/b", 0, "127.0.0.1", 9, "/a/b");
    parse("http://[::1]:8000/x", 0, "::1", 8000, "/x");
    parse("http://[::1]", 0, "::1", 80, "/");
    parse("http://host?q=1", 0, "host", 80, "/?q=1");
    parse("https://example.com/", 0, "example.com", 443, "/");
    parse("HTTPS://example.com:8443/h", 0, "example.com", 8443, "/h");
    parse("https://[::1]/x", 0, "::1", 443, "/x");
    parse("https://", -EINVAL, NULL, 0, NULL);
    parse("ftp://example.com/", -EPROTONOSUPPORT, NULL, 0, NULL);
    parse("example.com/x", -EINVAL, NULL, 0, NULL);
    parse("http://", -EINVAL, NULL, 0, NULL);
    parse("http://:80/", -EINVAL, NULL, 0, NULL);
    parse("http://host:0/", -EINVAL, NULL, 0, NULL);
    parse("http://host:70000/", -EINVAL, NULL, 0, NULL);
    parse("http://host:8x/", -EINVAL, NULL, 0, NULL);
    parse("http://user:pw@host/", -EINVAL, NULL, 0, NULL);
    parse("http://ho st/", -EINVAL, NULL, 0, NULL);
    parse("http://host/a b", -EINVAL, NULL, 0, NULL);
    parse("http://host/a\r\nX: y", -EINVAL, NULL, 0, NULL);
    parse("http://[::1/", -EINVAL, NULL, 0, NULL);
    parse(NULL, -EINVAL, NULL, 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(urls)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
