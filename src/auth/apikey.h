/*
 * apikey.h: API key format, digests, and random tokens (decisions D3, reference §1.3 and §9).
 *
 * An API key is `ledger_` + 43 URL-safe base64 characters ([A-Za-z0-9_-], 32 random bytes, no
 * padding) = 50 characters, the format of v1's `secrets.token_urlsafe(32)`. Its `key_prefix`
 * (shown in listings) is the first 20 characters. Keys are looked up by the lowercase hex SHA-256
 * of the full key: the indexed digest column, and the Redis cache key `api_key:<digest>`.
 *
 * Also the encoding helpers the other credential modules share: base64url without padding, hex
 * SHA-256, random tokens for session ids and refresh tokens.
 *
 * All functions are pure (randomness comes from OpenSSL's RAND_bytes) and thread-safe. Output
 * buffers are the caller's; nothing is allocated.
 */
#ifndef LDG_AUTH_APIKEY_H
#define LDG_AUTH_APIKEY_H

#include "core/common.h"

#define LDG_APIKEY_PREFIX "ledger_"
#define LDG_APIKEY_RANDOM_BYTES 32u
#define LDG_APIKEY_LEN 50u        /* characters, without NUL */
#define LDG_APIKEY_PREFIX_LEN 20u /* key_prefix characters, without NUL */
#define LDG_SHA256_HEX_LEN 64u    /* without NUL */

/* Characters of base64url without padding for n input bytes. */
#define LDG_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Write a new key into out (LDG_APIKEY_LEN + 1 bytes, NUL-terminated).
 * Returns 0 or -EIO (the CSPRNG failed; out is then an empty string). */
int ldg_apikey_generate(char out[LDG_APIKEY_LEN + 1]) LDG_MUSTCHECK;

/* Copy the first LDG_APIKEY_PREFIX_LEN characters of `key` (NUL-terminated, borrowed) into out,
 * NUL-terminated (fewer if key is shorter). */
void ldg_apikey_prefix(const char *key, char out[LDG_APIKEY_PREFIX_LEN + 1]);

/* Lowercase hex SHA-256 of key[0..len) into out (65 bytes, NUL-terminated). */
void ldg_apikey_digest(const char *key, size_t len, char out[LDG_SHA256_HEX_LEN + 1]);

/* Format check only (no lookup): `ledger_` prefix, exactly 50 characters, all of the
 * 43 after the prefix in [A-Za-z0-9_-]. */
bool ldg_apikey_looks_valid(const char *s, size_t n);

/* Write base64url (no padding) of `nbytes_random` fresh random bytes into out, which must hold
 * LDG_B64URL_LEN(nbytes_random) + 1 bytes; NUL-terminated. For session ids and refresh tokens
 * (use at least 16 bytes, 32 for refresh tokens; at most 256). Returns 0 or -EIO (out is then ""). */
int ldg_random_token(char *out, size_t nbytes_random) LDG_MUSTCHECK;

/* Lowercase hex SHA-256 of data[0..len) into out (65 bytes, NUL-terminated). */
void ldg_hex_sha256(const void *data, size_t len, char out[LDG_SHA256_HEX_LEN + 1]);

/* OpenSSL's SHA-256 (an EVP_MD), fetched once per process: pass it wherever EVP_sha256() would
 * go on a per-request path. Any thread. */
struct evp_md_st;
const struct evp_md_st *ldg_sha256_md(void);

/* Encode n bytes as base64url without padding into out (LDG_B64URL_LEN(n) + 1 bytes);
 * NUL-terminated. Returns the number of characters written (without NUL). */
size_t ldg_base64url_encode(const void *in, size_t n, char *out);

/* Decode base64url without padding (strict: no '=', no whitespace, no other alphabet, unused low
 * bits must be zero, length % 4 != 1). Writes at most `cap` bytes to out.
 * Returns 0 and *outlen, or -EINVAL (not canonical base64url), -ENOSPC (cap too small). */
int ldg_base64url_decode(const char *in, size_t n, unsigned char *out, size_t cap,
                         size_t *outlen) LDG_MUSTCHECK;

#endif
