/*
 * apikey.c: API key format, SHA-256 digests, random tokens, base64url.
 *
 * Keys are looked up by SHA-256, not by a slow password hash: the key carries 256 bits of
 * randomness, so a fast digest cannot be brute-forced, and it makes the lookup an index probe
 * instead of v1's bcrypt comparison against every active key.
 */
#include "auth/apikey.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t ldg_base64url_encode(const void *in, size_t n, char *out)
{
    const unsigned char *s = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int ldg_base64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    if (n % 4 == 1)
        return -EINVAL;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return -ENOSPC;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits are padding of the last character; a canonical encoder writes them as 0.
     * Rejecting others keeps exactly one accepted spelling per token. */
    if (acc != 0)
        return -EINVAL;
    *outlen = o;
    return 0;
}

int ldg_random_token(char *out, size_t nbytes_random)
{
    unsigned char raw[256];
    LDG_ASSERT(nbytes_random > 0 && nbytes_random <= sizeof raw);
    if (RAND_bytes(raw, (int)nbytes_random) != 1) {
        out[0] = '\0';
        return -EIO;
    }
    ldg_base64url_encode(raw, nbytes_random, out);
    explicit_bzero(raw, nbytes_random);
    return 0;
}

int ldg_apikey_generate(char out[LDG_APIKEY_LEN + 1])
{
    memcpy(out, LDG_APIKEY_PREFIX, strlen(LDG_APIKEY_PREFIX));
    int r = ldg_random_token(out + strlen(LDG_APIKEY_PREFIX), LDG_APIKEY_RANDOM_BYTES);
    if (r < 0)
        out[0] = '\0';
    return r;
}

void ldg_apikey_prefix(const char *key, char out[LDG_APIKEY_PREFIX_LEN + 1])
{
    size_t n = strnlen(key, LDG_APIKEY_PREFIX_LEN);
    memcpy(out, key, n);
    out[n] = '\0';
}

/* EVP_sha256() makes every digest fetch the implementation again (OpenSSL 3): a lock, a name
 * lookup and two mallocs, more than hashing an API key costs. Fetched once instead; never freed
 * (it lives as long as the process, like OpenSSL's own cache). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    LDG_ASSERT(sha256_md != NULL);
}

const struct evp_md_st *ldg_sha256_md(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return sha256_md;
}

void ldg_hex_sha256(const void *data, size_t len, char out[LDG_SHA256_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(data, len, md, &mdlen, ldg_sha256_md(), NULL);
    LDG_ASSERT(ok == 1 && mdlen == 32);
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[LDG_SHA256_HEX_LEN] = '\0';
}

void ldg_apikey_digest(const char *key, size_t len, char out[LDG_SHA256_HEX_LEN + 1])
{
    ldg_hex_sha256(key, len, out);
}

bool ldg_apikey_looks_valid(const char *s, size_t n)
{
    size_t plen = strlen(LDG_APIKEY_PREFIX);
    if (!s || n != LDG_APIKEY_LEN || memcmp(s, LDG_APIKEY_PREFIX, plen) != 0)
        return false;
    for (size_t i = plen; i < n; i++)
        if (b64url_value((unsigned char)s[i]) < 0)
            return false;
    return true;
}
