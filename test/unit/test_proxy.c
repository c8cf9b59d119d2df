#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "http/proxy.h"

static struct ldg_str S(const char *s)
{
    return ldg_str_make(s, s ? strlen(s) : 0);
}

static const char *client(const char *list, const char *peer, const char *fwd, const char *xff)
{
    static char out[LDG_ADDR_MAX];
    ldg_proxy_client(list, peer, S(fwd), S(xff), out, sizeof out);
    return out;
}

static void test_list_validation(void **state)
{
    (void)state;
    char bad[64];
    assert_true(ldg_proxy_list_valid("", bad, sizeof bad));
    assert_true(ldg_proxy_list_valid(NULL, bad, sizeof bad));
    assert_true(ldg_proxy_list_valid("10.0.0.0/8, 127.0.0.1 ,::1/128,2001:db8::/32, 0.0.0.0/0", bad, sizeof bad));
    assert_false(ldg_proxy_list_valid("10.0.0.0/33", bad, sizeof bad));
    assert_string_equal(bad, "10.0.0.0/33");
    assert_false(ldg_proxy_list_valid("127.0.0.1, proxy.example", bad, sizeof bad));
    assert_string_equal(bad, "proxy.example");
    assert_false(ldg_proxy_list_valid("::1/129", bad, sizeof bad));
    assert_false(ldg_proxy_list_valid("1.2.3.4/", bad, sizeof bad));
    assert_false(ldg_proxy_list_valid("1.2.3.4/x", bad, sizeof bad));
}

static void test_trusted(void **state)
{
    (void)state;
    const char *l = "10.0.0.0/8, 192.168.1.7, fd00::/8";
    assert_true(ldg_proxy_trusted(l, "10.255.0.1", 10));
    assert_true(ldg_proxy_trusted(l, "192.168.1.7", 11));
    assert_false(ldg_proxy_trusted(l, "192.168.1.8", 11));
    assert_true(ldg_proxy_trusted(l, "::ffff:10.1.2.3", 15)); /* a dual-stack listener's view */
    assert_true(ldg_proxy_trusted(l, "fd12::1", 7));
    assert_false(ldg_proxy_trusted(l, "fe80::1", 7));
    assert_false(ldg_proxy_trusted("", "10.0.0.1", 8));
    assert_false(ldg_proxy_trusted(l, "garbage", 7));
    assert_true(ldg_proxy_trusted("172.16.0.0/12", "172.31.255.255", 14));
    assert_false(ldg_proxy_trusted("172.16.0.0/12", "172.32.0.0", 10));
}

static void test_client(void **state)
{
    (void)state;
    const char *l = "127.0.0.1, 10.0.0.0/8";
    /* No proxies configured, or an untrusted peer: headers are ignored. */
    assert_string_equal(client("", "127.0.0.1", NULL, "203.0.113.9"), "127.0.0.1");
    assert_string_equal(client(l, "198.51.100.2", NULL, "203.0.113.9"), "198.51.100.2");
    /* Trusted peer: the rightmost untrusted hop. */
    assert_string_equal(client(l, "127.0.0.1", NULL, "203.0.113.9"), "203.0.113.9");
    assert_string_equal(client(l, "127.0.0.1", NULL, "1.1.1.1, 203.0.113.9, 10.0.0.5"), "203.0.113.9");
    /* Every hop trusted: the leftmost. */
    assert_string_equal(client(l, "127.0.0.1", NULL, "10.1.1.1, 10.0.0.5"), "10.1.1.1");
    /* Unreadable hop: the last good one. */
    assert_string_equal(client(l, "127.0.0.1", NULL, "203.0.113.9, unknown"), "127.0.0.1");
    assert_string_equal(client(l, "127.0.0.1", NULL, "junk, 10.0.0.7"), "10.0.0.7");
    /* Ports and brackets. */
    assert_string_equal(client(l, "127.0.0.1", NULL, "203.0.113.9:4711"), "203.0.113.9");
    assert_string_equal(client(l, "127.0.0.1", NULL, "[2001:db8::1]:4711"), "2001:db8::1");
    assert_string_equal(client(l, "::ffff:127.0.0.1", NULL, "2001:db8::2"), "2001:db8::2");
    /* Forwarded wins over X-Forwarded-For. */
    assert_string_equal(client(l, "127.0.0.1", "for=192.0.2.60;proto=http;by=203.0.113.43", "1.2.3.4"),
                        "192.0.2.60");
    assert_string_equal(client(l, "127.0.0.1", "for=\"[2001:db8:cafe::17]:4711\", for=10.0.0.3", NULL),
                        "2001:db8:cafe::17");
    assert_string_equal(client(l, "127.0.0.1", "For=198.51.100.17;by=x, for=unknown", NULL), "127.0.0.1");
    assert_string_equal(client(l, "127.0.0.1", "proto=https", NULL), "127.0.0.1");
    /* Normalised peer. */
    assert_string_equal(client("", "::ffff:192.0.2.1", NULL, NULL), "192.0.2.1");
    /* Hostile lengths. */
    char big[600];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_string_equal(client(l, "127.0.0.1", NULL, big), "127.0.0.1");
    assert_string_equal(client(l, "127.0.0.1", NULL, ",,,"), "127.0.0.1");
    assert_string_equal(client(l, "127.0.0.1", "\"", NULL), "127.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_validation),
        cmocka_unit_test(test_trusted),
        cmocka_unit_test(test_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
