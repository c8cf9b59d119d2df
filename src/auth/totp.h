/*
 * totp.h: RFC 6238 time-based one-time passwords (HMAC-SHA1, 30-second steps) and the RFC 4648
 * base32 text their secrets travel in (authenticator apps, otpauth:// URIs).
 *
 * Pure functions: no allocation, no global state; safe on any thread.
 */
#ifndef LDG_AUTH_TOTP_H
#define LDG_AUTH_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LDG_TOTP_STEP_S 30
#define LDG_TOTP_SECRET_BYTES 20 /* 160 bits, RFC 4226's recommendation */
/* base32 text length of n bytes, without padding */
#define LDG_BASE32_LEN(n) (((n)*8 + 4) / 5)

/* The HOTP value of counter `step` (RFC 4226 dynamic truncation) modulo 10^digits (6..8). */
uint32_t ldg_totp_code(const unsigned char *key, size_t keylen, uint64_t step, unsigned digits);

/* The time step of a Unix time. */
static inline uint64_t ldg_totp_step(int64_t unix_s)
{
    return unix_s < 0 ? 0 : (uint64_t)unix_s / LDG_TOTP_STEP_S;
}

/* Check a 6-digit code text against steps now-skew..now+skew (constant work over the window).
 * Returns true and the matching step in *matched; false for a wrong or malformed code. */
bool ldg_totp_check(const unsigned char *key, size_t keylen, const char *code, uint64_t now_step,
                    unsigned skew, uint64_t *matched);

/* Base32 (RFC 4648 alphabet, upper case, no padding) of n bytes into out (LDG_BASE32_LEN(n)+1). */
void ldg_base32_encode(const unsigned char *in, size_t n, char *out);

/* Decode base32 (case-insensitive, '=' padding and spaces ignored) into out (cap bytes).
 * Returns the byte count, or -1 on a bad character or overflow. */
int ldg_base32_decode(const char *in, unsigned char *out, size_t cap);

#endif
