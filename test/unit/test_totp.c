#include <setjmp.h>
#include <errno.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "auth/seal.h"
#include "auth/totp.h"

/* RFC 6238 appendix B, SHA-1 column: the ASCII key "12345678901234567890", 8 digits. */
static const unsigned char RFC_KEY[] = "12345678901234567890";

static void rfc6238_vectors(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        uint32_t code;
    } v[] = {{59, 94287082},         {1111111109, 7081804},  {1111111111, 14050471},
             {1234567890, 89005924}, {2000000000, 69279037}, {20000000000LL, 65353130}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(ldg_totp_code(RFC_KEY, 20, ldg_totp_step(v[i].t), 8), v[i].code);
        assert_int_equal(ldg_totp_code(RFC_KEY, 20, ldg_totp_step(v[i].t), 6), v[i].code % 1000000);
    }
}

static void check_with_skew(void **state)
{
    (void)state;
    uint64_t now = ldg_totp_step(1111111111), m = 0;
    assert_true(ldg_totp_check(RFC_KEY, 20, "050471", now, 1, &m)); /* 14050471 */
    assert_int_equal(m, now);
    /* the code of the previous and the next step pass with skew 1, not with skew 0 */
    char prev[8], next[8], far[8];
    snprintf(prev, sizeof prev, "%06u", ldg_totp_code(RFC_KEY, 20, now - 1, 6));
    snprintf(next, sizeof next, "%06u", ldg_totp_code(RFC_KEY, 20, now + 1, 6));
    snprintf(far, sizeof far, "%06u", ldg_totp_code(RFC_KEY, 20, now + 2, 6));
    assert_true(ldg_totp_check(RFC_KEY, 20, prev, now, 1, &m));
    assert_int_equal(m, now - 1);
    assert_true(ldg_totp_check(RFC_KEY, 20, next, now, 1, &m));
    assert_int_equal(m, now + 1);
    assert_false(ldg_totp_check(RFC_KEY, 20, prev, now, 0, &m));
    assert_false(ldg_totp_check(RFC_KEY, 20, far, now, 1, &m));
    assert_false(ldg_totp_check(RFC_KEY, 20, "05047", now, 1, &m));
    assert_false(ldg_totp_check(RFC_KEY, 20, "05047a", now, 1, &m));
    assert_false(ldg_totp_check(RFC_KEY, 20, "0504711", now, 1, &m));
}

static void base32_roundtrip(void **state)
{
    (void)state;
    char out[64];
    ldg_base32_encode((const unsigned char *)"foobar", 6, out); /* RFC 4648 section 10 */
    assert_string_equal(out, "MZXW6YTBOI");
    ldg_base32_encode(RFC_KEY, 20, out);
    assert_string_equal(out, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    unsigned char back[32];
    assert_int_equal(ldg_base32_decode("gezdgnbvgy3tqojqgezdgnbvgy3tqojq", back, sizeof back), 20);
    assert_memory_equal(back, RFC_KEY, 20);
    assert_int_equal(ldg_base32_decode("MZXW6YTBOI======", back, sizeof back), 6);
    assert_memory_equal(back, "foobar", 6);
    assert_int_equal(ldg_base32_decode("MZ1W", back, sizeof back), -1);
    assert_int_equal(ldg_base32_decode("MZXW6YTBOI", back, 3), -1);
}

static void seal_roundtrip(void **state)
{
    (void)state;
    unsigned char key[32], other[32];
    memset(key, 7, sizeof key);
    memset(other, 8, sizeof other);
    char text[LDG_SEAL_TEXT_MAX], text2[LDG_SEAL_TEXT_MAX];
    assert_int_equal(ldg_seal(key, RFC_KEY, 20, "42", text, sizeof text), 0);
    assert_int_equal(ldg_seal(key, RFC_KEY, 20, "42", text2, sizeof text2), 0);
    assert_string_not_equal(text, text2); /* a fresh nonce each time */
    assert_null(strstr(text, "1234567890"));
    unsigned char out[64];
    assert_int_equal(ldg_seal_open(key, text, "42", out, sizeof out), 20);
    assert_memory_equal(out, RFC_KEY, 20);
    assert_int_equal(ldg_seal_open(other, text, "42", out, sizeof out), -EINVAL);
    assert_int_equal(ldg_seal_open(key, text, "43", out, sizeof out), -EINVAL);
    text[10] = text[10] == 'A' ? 'B' : 'A';
    assert_int_equal(ldg_seal_open(key, text, "42", out, sizeof out), -EINVAL);
    assert_int_equal(ldg_seal_open(key, "garbage", "42", out, sizeof out), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6238_vectors),
        cmocka_unit_test(check_with_skew),
        cmocka_unit_test(base32_roundtrip),
        cmocka_unit_test(seal_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
