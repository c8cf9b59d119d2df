#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/apikey.h"
#include "auth/jwt.h"

#define SECRET ((const unsigned char *)"ledger-test-secret")
#define SECRET_LEN 18

/* Produced with the openssl CLI, independently of this code:
 *   H=$(printf '%s' '{"alg":"HS256","typ":"JWT"}' | b64u)
 *   P=$(printf '%s' '{"sub":"42","email":"alice@example.com","type":"access","sid":"s3ss10n",
 *                     "iat":1700000000,"exp":1700000900,"jti":"j1"}' | b64u)   (one line)
 *   S=$(printf '%s' "$H.$P" | openssl dgst -sha256 -hmac ledger-test-secret -binary | b64u)
 * with b64u = openssl base64 -A | tr '+/' '-_' | tr -d '='. */
static const char known_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiI0MiIsImVtYWlsIjoiYWxpY2VAZXhhbXBsZS5jb20iLCJ0eXBlIjoiYWNjZXNzIiwic2lkIjoiczNzczEwbiIsImlhdCI6"
    "MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAwOTAwLCJqdGkiOiJqMSJ9."
    "pQq4MPgL425U5YvBkS3p4uXt4NI1YSMgHm9CI1TE1YA";

static void known_claims(struct ldg_jwt_claims *c)
{
    memset(c, 0, sizeof *c);
    c->sub = 42;
    strcpy(c->email, "alice@example.com");
    c->type = LDG_JWT_ACCESS;
    strcpy(c->sid, "s3ss10n");
    c->iat = 1700000000;
    c->exp = 1700000900;
    strcpy(c->jti, "j1");
}

/* Build header.payload.signature from raw JSON texts, signed with `secret` (NULL: empty signature). */
static char *craft(const char *header, const char *payload, const char *secret)
{
    size_t hl = strlen(header), pl = strlen(payload);
    char *t = calloc(1, LDG_B64URL_LEN(hl) + LDG_B64URL_LEN(pl) + 64);
    size_t n = ldg_base64url_encode(header, hl, t);
    t[n++] = '.';
    n += ldg_base64url_encode(payload, pl, t + n);
    t[n++] = '.';
    t[n] = '\0';
    if (secret) {
        unsigned char mac[32];
        unsigned int ml = 0;
        assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)t, n - 1, mac, &ml));
        ldg_base64url_encode(mac, ml, t + n);
    }
    return t;
}

static int verify_str(const char *tok, int64_t now, struct ldg_jwt_claims *c)
{
    return ldg_jwt_verify(SECRET, SECRET_LEN, tok, strlen(tok), now, c);
}

static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char good_payload[] =
    "{\"sub\":\"7\",\"email\":\"b@c.d\",\"type\":\"refresh\",\"sid\":\"x\",\"iat\":100,\"exp\":200}";

static void test_known_vector(void **state)
{
    struct ldg_jwt_claims c, got;
    known_claims(&c);
    struct ldg_buf b;
    ldg_buf_init(&b);
    assert_int_equal(ldg_jwt_sign(SECRET, SECRET_LEN, &c, &b), 0);
    assert_int_equal(ldg_buf_size(&b), strlen(known_token));
    assert_memory_equal(ldg_buf_head(&b), known_token, strlen(known_token));
    ldg_buf_free(&b);

    assert_int_equal(verify_str(known_token, 1700000000, &got), 0);
    assert_memory_equal(&got, &c, sizeof c);
}

static void test_round_trip(void **state)
{
    struct ldg_jwt_claims c, got;
    memset(&c, 0, sizeof c);
    c.sub = INT64_MAX;
    strcpy(c.email, "Zoë.😀@example.com");
    c.type = LDG_JWT_REFRESH;
    char sid[LDG_B64URL_LEN(32) + 1];
    assert_int_equal(ldg_random_token(sid, 32), 0);
    strcpy(c.sid, sid);
    c.iat = 1;
    c.exp = 2;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_puts(&b, "Bearer ");
    assert_int_equal(ldg_jwt_sign(SECRET, SECRET_LEN, &c, &b), 0);
    const char *tok = ldg_buf_head(&b) + 7;
    size_t n = ldg_buf_size(&b) - 7;
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN, tok, n, 1, &got), 0);
    assert_memory_equal(&got, &c, sizeof c);
    assert_string_equal(got.jti, "");
    /* exp <= now: expired, but the claims are still reported. */
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN, tok, n, 2, &got), -ETIMEDOUT);
    assert_int_equal(got.sub, INT64_MAX);
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN, tok, n, 3, &got), -ETIMEDOUT);
    ldg_buf_free(&b);
}

static void test_wrong_secret(void **state)
{
    struct ldg_jwt_claims got;
    assert_int_equal(ldg_jwt_verify((const unsigned char *)"ledger-test-secreT", SECRET_LEN, known_token,
                                    strlen(known_token), 0, &got),
                     -EINVAL);
    assert_int_equal(got.sub, 0);
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN - 1, known_token, strlen(known_token), 0, &got),
                     -EINVAL);
    assert_int_equal(ldg_jwt_verify(SECRET, 0, known_token, strlen(known_token), 0, &got), -EINVAL);
}

static void test_tampered(void **state)
{
    struct ldg_jwt_claims got;
    size_t n = strlen(known_token);
    char *t = strdup(known_token);
    const char *d1 = strchr(known_token, '.'), *d2 = strrchr(known_token, '.');

    /* Every single-character change anywhere must be refused. */
    for (size_t i = 0; i < n; i++) {
        char orig = t[i];
        t[i] = orig == 'A' ? 'B' : 'A';
        if (orig == '.')
            t[i] = 'A';
        assert_int_equal(verify_str(t, 0, &got), -EINVAL);
        t[i] = orig;
    }
    assert_int_equal(verify_str(t, 0, &got), 0);

    /* Payload swapped for another (sub 1) while keeping the signature. */
    char *other =
        craft(hs256,
              "{\"sub\":\"1\",\"email\":\"alice@example.com\",\"type\":\"access\",\"sid\":\"s3ss10n\","
              "\"iat\":1700000000,\"exp\":1700000900,\"jti\":\"j1\"}",
              NULL);
    char *mix = calloc(1, strlen(other) + 64);
    strcpy(mix, other);
    strcat(mix, d2 + 1);
    assert_int_equal(verify_str(mix, 0, &got), -EINVAL);
    free(mix);
    free(other);

    /* Truncated and extended forms. */
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN, known_token, n - 1, 0, &got), -EINVAL);
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN, known_token, (size_t)(d2 - known_token), 0, &got),
                     -EINVAL);
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN, known_token, (size_t)(d1 - known_token), 0, &got),
                     -EINVAL);
    char *ext = calloc(1, n + 8);
    strcpy(ext, known_token);
    strcat(ext, ".");
    assert_int_equal(verify_str(ext, 0, &got), -EINVAL);
    strcpy(ext, known_token);
    strcat(ext, "=");
    assert_int_equal(verify_str(ext, 0, &got), -EINVAL);
    free(ext);
    assert_int_equal(verify_str("", 0, &got), -EINVAL);
    assert_int_equal(verify_str("..", 0, &got), -EINVAL);
    assert_int_equal(verify_str("a.b.c", 0, &got), -EINVAL);
    free(t);
}

static void test_header_rules(void **state)
{
    struct ldg_jwt_claims got;
    static const char *bad_headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"none\"}",
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"1\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}",
        "{\"alg\":[\"HS256\"]}",
        "[\"HS256\"]",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        char *tok = craft(bad_headers[i], good_payload, "ledger-test-secret");
        assert_int_equal(verify_str(tok, 0, &got), -EINVAL);
        free(tok);
    }
    /* Unsigned "none" token, as an attacker would send it. */
    char *none = craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_payload, NULL);
    assert_int_equal(verify_str(none, 0, &got), -EINVAL);
    free(none);

    /* Accepted header spellings: typ optional, member order and whitespace free. */
    static const char *ok_headers[] = {hs256, "{\"alg\":\"HS256\"}",
                                       "{ \"typ\" : \"JWT\", \"alg\" : \"HS256\" }"};
    for (size_t i = 0; i < sizeof ok_headers / sizeof ok_headers[0]; i++) {
        char *tok = craft(ok_headers[i], good_payload, "ledger-test-secret");
        assert_int_equal(verify_str(tok, 0, &got), 0);
        assert_int_equal(got.sub, 7);
        assert_int_equal(got.type, LDG_JWT_REFRESH);
        assert_string_equal(got.email, "b@c.d");
        assert_string_equal(got.sid, "x");
        assert_int_equal(got.iat, 100);
        assert_int_equal(got.exp, 200);
        free(tok);
    }
}

static void test_claim_rules(void **state)
{
    struct ldg_jwt_claims got;
    /* sub as a JSON number is accepted too. */
    char *tok = craft(hs256,
                      "{\"sub\":9,\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5,"
                      "\"extra\":{\"ignored\":true}}",
                      "ledger-test-secret");
    assert_int_equal(verify_str(tok, 0, &got), 0);
    assert_int_equal(got.sub, 9);
    free(tok);

    static const char *bad_payloads[] = {
        "{\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"-1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"07\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"1x\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"9223372036854775808\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,"
        "\"exp\":5}",
        "{\"sub\":1.5,\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":true,\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"1\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"admin\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"sid\":\"x\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"iat\":1,\"exp\":5}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"exp\":5}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":\"5\"}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\",\"iat\":1,\"exp\":5,\"jti\":7}",
        "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":"
        "\"0123456789012345678901234567890123456789012345678901234567890123456789\",\"iat\":1,\"exp\":5}",
        "[1,2,3]",
        "{\"sub\":\"1\"",
    };
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        tok = craft(hs256, bad_payloads[i], "ledger-test-secret");
        assert_int_equal(verify_str(tok, 0, &got), -EINVAL);
        free(tok);
    }
}

static void test_sign_rejects(void **state)
{
    struct ldg_jwt_claims c;
    struct ldg_buf b;
    ldg_buf_init(&b);
    known_claims(&c);
    assert_int_equal(ldg_jwt_sign(SECRET, 0, &c, &b), -EINVAL);
    c.sid[0] = '\0';
    assert_int_equal(ldg_jwt_sign(SECRET, SECRET_LEN, &c, &b), -EINVAL);
    known_claims(&c);
    c.type = 0;
    assert_int_equal(ldg_jwt_sign(SECRET, SECRET_LEN, &c, &b), -EINVAL);
    known_claims(&c);
    c.sub = -1;
    assert_int_equal(ldg_jwt_sign(SECRET, SECRET_LEN, &c, &b), -EINVAL);
    known_claims(&c);
    memset(c.email, 'a', 256);
    c.email[256] = '\0';
    assert_int_equal(ldg_jwt_sign(SECRET, SECRET_LEN, &c, &b), -EINVAL);
    c.email[255] = '\0';
    assert_int_equal(ldg_jwt_sign(SECRET, SECRET_LEN, &c, &b), 0);
    struct ldg_jwt_claims got;
    assert_int_equal(ldg_jwt_verify(SECRET, SECRET_LEN, ldg_buf_head(&b), ldg_buf_size(&b), 0, &got), 0);
    assert_int_equal(strlen(got.email), 255);
    ldg_buf_free(&b);
}

static void test_oversize(void **state)
{
    struct ldg_jwt_claims got;
    /* A correctly signed token just over the limit (padding in an ignored claim) is refused. */
    size_t pad = LDG_JWT_MAX_TOKEN; /* base64 grows it further */
    char *payload = malloc(pad + 200);
    int n = snprintf(payload, 200,
                     "{\"sub\":\"1\",\"email\":\"b@c.d\",\"type\":\"access\",\"sid\":\"x\","
                     "\"iat\":1,\"exp\":5,\"pad\":\"");
    memset(payload + n, 'p', pad);
    strcpy(payload + n + pad, "\"}");
    char *tok = craft(hs256, payload, "ledger-test-secret");
    assert_true(strlen(tok) > LDG_JWT_MAX_TOKEN);
    assert_int_equal(verify_str(tok, 0, &got), -EINVAL);
    free(tok);

    /* The same at a size that fits is fine. */
    size_t small = 2000;
    strcpy(payload + n + small, "\"}");
    tok = craft(hs256, payload, "ledger-test-secret");
    assert_true(strlen(tok) <= LDG_JWT_MAX_TOKEN);
    assert_int_equal(verify_str(tok, 0, &got), 0);
    free(tok);
    free(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vector), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_wrong_secret), cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_header_rules), cmocka_unit_test(test_claim_rules),
        cmocka_unit_test(test_sign_rejects), cmocka_unit_test(test_oversize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
