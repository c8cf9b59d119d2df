/*
 * totp.c: RFC 6238 TOTP over RFC 4226 HOTP with OpenSSL's HMAC-SHA1, and base32.
 */
#include "auth/totp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const uint32_t POW10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

uint32_t ldg_totp_code(const unsigned char *key, size_t keylen, uint64_t step, unsigned digits)
{
    unsigned char msg[8];
    for (int i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(step & 0xff);
        step >>= 8;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof msg, md, &mdlen) || mdlen != 20)
        return UINT32_MAX; /* never a valid code */
    unsigned off = md[19] & 0x0f;
    uint32_t bin = ((uint32_t)(md[off] & 0x7f) << 24) | ((uint32_t)md[off + 1] << 16) |
                   ((uint32_t)md[off + 2] << 8) | (uint32_t)md[off + 3];
    OPENSSL_cleanse(md, sizeof md);
    if (digits < 6 || digits > 8)
        digits = 6;
    return bin % POW10[digits];
}

bool ldg_totp_check(const unsigned char *key, size_t keylen, const char *code, uint64_t now_step,
                    unsigned skew, uint64_t *matched)
{
    if (!code || strlen(code) != 6)
        return false;
    uint32_t want = 0;
    for (int i = 0; i < 6; i++) {
        if (code[i] < '0' || code[i] > '9')
            return false;
        want = want * 10 + (uint32_t)(code[i] - '0');
    }
    bool found = false;
    uint64_t at = 0;
    for (uint64_t s = now_step >= skew ? now_step - skew : 0; s <= now_step + skew; s++) {
        uint32_t got = ldg_totp_code(key, keylen, s, 6);
        bool eq = got == want;
        if (eq && !found) { /* the earliest matching step */
            found = true;
            at = s;
        }
    }
    if (found && matched)
        *matched = at;
    return found;
}

static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

void ldg_base32_encode(const unsigned char *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = B32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = B32[(acc << (5 - bits)) & 31];
    out[o] = 0;
}

int ldg_base32_decode(const char *in, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        int v;
        if (c == '=' || c == ' ' || c == '-')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else
            return -1;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)((acc >> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    return (int)o;
}
