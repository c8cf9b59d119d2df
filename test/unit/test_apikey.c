#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "auth/apikey.h"

static bool charset_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return false;
    }
    return true;
}

static void test_generate_format(void **state)
{
    char key[LDG_APIKEY_LEN + 1];
    assert_int_equal(ldg_apikey_generate(key), 0);
    assert_int_equal(strlen(key), 50);
    assert_memory_equal(key, "ledger_", 7);
    assert_true(charset_ok(key + 7, 43));
    assert_true(ldg_apikey_looks_valid(key, strlen(key)));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_unique_1000(void **state)
{
    enum { N = 1000 };
    char(*keys)[LDG_APIKEY_LEN + 1] = calloc(N, sizeof *keys);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ldg_apikey_generate(keys[i]), 0);
        assert_true(ldg_apikey_looks_valid(keys[i], strlen(keys[i])));
    }
    qsort(keys, N, sizeof *keys, cmp_str);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(keys[i - 1], keys[i]) != 0);
    free(keys);
}

static void test_prefix(void **state)
{
    char key[LDG_APIKEY_LEN + 1], prefix[LDG_APIKEY_PREFIX_LEN + 1];
    assert_int_equal(ldg_apikey_generate(key), 0);
    ldg_apikey_prefix(key, prefix);
    assert_int_equal(strlen(prefix), 20);
    assert_memory_equal(prefix, key, 20);
    ldg_apikey_prefix("ledger_x", prefix);
    assert_string_equal(prefix, "ledger_x");
}

static void test_digest_known(void **state)
{
    char out[LDG_SHA256_HEX_LEN + 1];
    /* Reference values from sha256sum. */
    ldg_apikey_digest("ledger_abc", 10, out);
    assert_string_equal(out, "35bdcafd283175ff6f1a2825ff2ad0e85a1d0d3e7f64af3bf0f4f694a85fdaa2");
    ldg_hex_sha256("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ldg_hex_sha256("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_looks_valid(void **state)
{
    const char *good = "ledger_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
    assert_int_equal(strlen(good), 50);
    assert_true(ldg_apikey_looks_valid(good, 50));
    assert_false(ldg_apikey_looks_valid(good, 49));
    assert_false(ldg_apikey_looks_valid("ledgeR_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde", 50));
    assert_false(ldg_apikey_looks_valid("ledger_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+_abcde", 50));
    assert_false(ldg_apikey_looks_valid("ledger_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789=_abcde", 50));
    assert_false(ldg_apikey_looks_valid("token_1_a@b.c", 13));
    assert_false(ldg_apikey_looks_valid("", 0));
    char withnul[51];
    memcpy(withnul, good, 51);
    withnul[30] = '\0';
    assert_false(ldg_apikey_looks_valid(withnul, 50));
}

static void test_random_token(void **state)
{
    char a[LDG_B64URL_LEN(32) + 1], b[LDG_B64URL_LEN(32) + 1];
    assert_int_equal(ldg_random_token(a, 32), 0);
    assert_int_equal(ldg_random_token(b, 32), 0);
    assert_int_equal(strlen(a), 43);
    assert_true(charset_ok(a, 43));
    assert_true(strcmp(a, b) != 0);
    char c[LDG_B64URL_LEN(16) + 1];
    assert_int_equal(ldg_random_token(c, 16), 0);
    assert_int_equal(strlen(c), 22);
}

static void test_base64url(void **state)
{
    /* RFC 4648 section 10 vectors, in the URL alphabet without padding. */
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff\xbf", "-_-_"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[32];
        unsigned char back[32];
        size_t n = strlen(v[i].in), blen;
        assert_int_equal(ldg_base64url_encode(v[i].in, n, out), strlen(v[i].out));
        assert_string_equal(out, v[i].out);
        assert_int_equal(LDG_B64URL_LEN(n), strlen(v[i].out));
        assert_int_equal(ldg_base64url_decode(out, strlen(out), back, sizeof back, &blen), 0);
        assert_int_equal(blen, n);
        assert_memory_equal(back, v[i].in, n);
    }
    unsigned char buf[8];
    size_t blen;
    assert_int_equal(ldg_base64url_decode("Zg==", 4, buf, sizeof buf, &blen), -EINVAL);
    assert_int_equal(ldg_base64url_decode("Z", 1, buf, sizeof buf, &blen), -EINVAL);
    assert_int_equal(ldg_base64url_decode("Zh", 2, buf, sizeof buf, &blen),
                     -EINVAL); /* non-zero spare bits */
    assert_int_equal(ldg_base64url_decode("Zm+v", 4, buf, sizeof buf, &blen), -EINVAL);
    assert_int_equal(ldg_base64url_decode("Zm9vYmFy", 8, buf, 5, &blen), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_format), cmocka_unit_test(test_unique_1000),
        cmocka_unit_test(test_prefix),          cmocka_unit_test(test_digest_known),
        cmocka_unit_test(test_looks_valid),     cmocka_unit_test(test_random_token),
        cmocka_unit_test(test_base64url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
