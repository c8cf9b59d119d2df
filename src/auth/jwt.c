/*
 * jwt.c: HS256 sign and verify.
 *
 * Order of checks in verify matters: the header is checked first (so "alg":"none" or an RS256
 * key-confusion token never reaches the MAC), then the signature over the exact bytes received,
 * and only then is the payload parsed, so unauthenticated input never reaches the claim code.
 * Expiry is checked last, so -ETIMEDOUT always means "genuine but expired" and callers can tell
 * a stale session from a forged token.
 */
#include "auth/jwt.h"

#include <inttypes.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/apikey.h"
#include "core/json.h"

#define SIG_LEN 32     /* HMAC-SHA256 */
#define HEADER_MAX 256 /* decoded header bytes; ours is 27 */
#define PAYLOAD_MAX (LDG_JWT_MAX_TOKEN / 4 * 3)

static const char header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

const char *ldg_jwt_type_name(enum ldg_jwt_type t)
{
    switch (t) {
    case LDG_JWT_ACCESS:
        return "access";
    case LDG_JWT_REFRESH:
        return "refresh";
    }
    return NULL;
}

static bool hmac_sha256(const unsigned char *key, size_t klen, const void *data, size_t n,
                        unsigned char out[SIG_LEN])
{
    unsigned int len = 0;
    if (klen > INT32_MAX)
        return false;
    return HMAC(ldg_sha256_md(), key, (int)klen, data, n, out, &len) && len == SIG_LEN;
}

static void put_b64url(struct ldg_buf *b, const void *data, size_t n)
{
    char *dst = ldg_buf_reserve(b, LDG_B64URL_LEN(n) + 1, 0);
    ldg_buf_commit(b, ldg_base64url_encode(data, n, dst));
}

static bool claims_ok(const struct ldg_jwt_claims *c)
{
    size_t chars;
    size_t elen = strnlen(c->email, sizeof c->email);
    if (elen == sizeof c->email || ldg_utf8_count(c->email, elen, &chars) < 0 ||
        chars > LDG_JWT_EMAIL_MAX_CHARS)
        return false;
    size_t sidlen = strnlen(c->sid, sizeof c->sid);
    if (sidlen == 0 || sidlen > LDG_JWT_ID_MAX)
        return false;
    if (strnlen(c->jti, sizeof c->jti) > LDG_JWT_ID_MAX)
        return false;
    return c->sub >= 0 && ldg_jwt_type_name(c->type) != NULL;
}

int ldg_jwt_sign(const unsigned char *secret, size_t slen, const struct ldg_jwt_claims *c,
                 struct ldg_buf *out)
{
    if (!secret || !slen || !claims_ok(c))
        return -EINVAL;

    struct ldg_buf payload;
    ldg_buf_init(&payload);
    struct ldg_json_writer w;
    ldg_json_writer_init(&w, &payload);
    ldg_json_obj_begin(&w);
    ldg_json_key(&w, "sub");
    char sub[24];
    snprintf(sub, sizeof sub, "%" PRId64, c->sub);
    ldg_json_str(&w, sub);
    ldg_json_key(&w, "email");
    ldg_json_str(&w, c->email);
    ldg_json_key(&w, "type");
    ldg_json_str(&w, ldg_jwt_type_name(c->type));
    ldg_json_key(&w, "sid");
    ldg_json_str(&w, c->sid);
    ldg_json_key(&w, "iat");
    ldg_json_int(&w, c->iat);
    ldg_json_key(&w, "exp");
    ldg_json_int(&w, c->exp);
    if (c->jti[0]) {
        ldg_json_key(&w, "jti");
        ldg_json_str(&w, c->jti);
    }
    ldg_json_obj_end(&w);

    size_t start = out->len;
    put_b64url(out, header_json, strlen(header_json));
    ldg_buf_put(out, ".", 1);
    put_b64url(out, ldg_buf_head(&payload), ldg_buf_size(&payload));
    ldg_buf_free(&payload);

    unsigned char sig[SIG_LEN];
    if (!hmac_sha256(secret, slen, out->data + start, out->len - start, sig)) {
        out->len = start;
        return -EINVAL;
    }
    ldg_buf_put(out, ".", 1);
    put_b64url(out, sig, sizeof sig);
    return 0;
}

/* Header members: alg (required, "HS256") and typ (optional, "JWT"); nothing else. */
static bool header_ok(const char *json, size_t n)
{
    cJSON *h = ldg_json_parse(json, n);
    bool ok = cJSON_IsObject(h), alg = false;
    for (const cJSON *it = ok ? h->child : NULL; it && ok; it = it->next) {
        if (strcmp(it->string, "alg") == 0) {
            ok = cJSON_IsString(it) && strcmp(it->valuestring, "HS256") == 0;
            alg = true;
        } else if (strcmp(it->string, "typ") == 0) {
            ok = cJSON_IsString(it) && strcmp(it->valuestring, "JWT") == 0;
        } else {
            ok = false;
        }
    }
    cJSON_Delete(h);
    return ok && alg;
}

/* Decimal, non-negative, fits int64, no sign, no leading zeros (one spelling per id). */
static bool parse_sub_string(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool copy_id(const cJSON *it, char *dst, bool allow_empty)
{
    if (!cJSON_IsString(it))
        return false;
    size_t n = strlen(it->valuestring);
    if (n > LDG_JWT_ID_MAX || (!allow_empty && n == 0))
        return false;
    memcpy(dst, it->valuestring, n + 1);
    return true;
}

static bool read_claims(const cJSON *p, struct ldg_jwt_claims *out)
{
    char err[128];
    if (!cJSON_IsObject(p))
        return false;

    const cJSON *sub = ldg_json_member(p, "sub");
    if (cJSON_IsString(sub)) {
        if (!parse_sub_string(sub->valuestring, &out->sub))
            return false;
    } else if (ldg_json_get_int(p, "sub", true, 0, INT64_MAX, &out->sub, err, sizeof err) != 1) {
        return false;
    }

    const char *email;
    if (ldg_json_get_string(p, "email", true, 1, LDG_JWT_EMAIL_MAX_CHARS, &email, err, sizeof err) != 1)
        return false;
    size_t elen = strlen(email);
    if (elen >= sizeof out->email)
        return false;
    memcpy(out->email, email, elen + 1);

    const char *type;
    if (ldg_json_get_string(p, "type", true, 1, 16, &type, err, sizeof err) != 1)
        return false;
    if (strcmp(type, "access") == 0)
        out->type = LDG_JWT_ACCESS;
    else if (strcmp(type, "refresh") == 0)
        out->type = LDG_JWT_REFRESH;
    else
        return false;

    if (!copy_id(ldg_json_member(p, "sid"), out->sid, false))
        return false;
    const cJSON *jti = ldg_json_member(p, "jti");
    if (jti && !cJSON_IsNull(jti) && !copy_id(jti, out->jti, true))
        return false;

    if (ldg_json_get_int(p, "iat", true, 0, INT64_MAX, &out->iat, err, sizeof err) != 1)
        return false;
    if (ldg_json_get_int(p, "exp", true, 0, INT64_MAX, &out->exp, err, sizeof err) != 1)
        return false;
    return true;
}

int ldg_jwt_verify(const unsigned char *secret, size_t slen, const char *token, size_t len, int64_t now,
                   struct ldg_jwt_claims *out)
{
    memset(out, 0, sizeof *out);
    if (!secret || !slen || !token || len == 0 || len > LDG_JWT_MAX_TOKEN)
        return -EINVAL;

    const char *d1 = memchr(token, '.', len);
    if (!d1)
        return -EINVAL;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2)
        return -EINVAL;
    const char *end = token + len;
    if (memchr(d2 + 1, '.', (size_t)(end - (d2 + 1))))
        return -EINVAL;

    char header[HEADER_MAX];
    size_t hlen;
    int r = ldg_base64url_decode(token, (size_t)(d1 - token), (unsigned char *)header, sizeof header, &hlen);
    if (r < 0 || !header_ok(header, hlen))
        return -EINVAL;

    unsigned char sig[SIG_LEN], want[SIG_LEN];
    size_t siglen;
    if (ldg_base64url_decode(d2 + 1, (size_t)(end - (d2 + 1)), sig, sizeof sig, &siglen) < 0 ||
        siglen != SIG_LEN)
        return -EINVAL;
    if (!hmac_sha256(secret, slen, token, (size_t)(d2 - token), want))
        return -EINVAL;
    if (CRYPTO_memcmp(sig, want, SIG_LEN) != 0)
        return -EINVAL;

    char payload[PAYLOAD_MAX];
    size_t plen;
    if (ldg_base64url_decode(d1 + 1, (size_t)(d2 - (d1 + 1)), (unsigned char *)payload, sizeof payload,
                             &plen) < 0)
        return -EINVAL;
    cJSON *p = ldg_json_parse(payload, plen);
    bool ok = p && read_claims(p, out);
    cJSON_Delete(p);
    if (!ok) {
        memset(out, 0, sizeof *out);
        return -EINVAL;
    }
    return out->exp <= now ? -ETIMEDOUT : 0;
}
