/*
 * str.h: non-owning byte slices (h2o_iovec_t). A slice borrows its bytes; the owner is stated
 * wherever a slice is stored.
 */
#ifndef LDG_STR_H
#define LDG_STR_H

#include <strings.h>

#include "core/common.h"

struct ldg_str {
    const char *p;
    size_t n;
};

#define LDG_STR_LIT(s) ((struct ldg_str){(s), sizeof(s) - 1})

static inline struct ldg_str ldg_str_make(const char *p, size_t n)
{
    return (struct ldg_str){p, n};
}

static inline bool ldg_str_eq(struct ldg_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && memcmp(a.p, lit, n) == 0;
}

static inline bool ldg_str_caseeq(struct ldg_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && strncasecmp(a.p, lit, n) == 0;
}

/* Does the comma-separated header value contain token (case-insensitive)? */
bool ldg_str_has_token(struct ldg_str v, const char *token);

/* Percent-decode src[0..n) into dst (room for n + 1 bytes; NUL-terminated). A '%' not followed by
 * two hex digits is kept as is; plus_space turns '+' into ' ' (query strings). Returns the decoded
 * length, which differs from strlen(dst) when the text holds %00. */
size_t ldg_url_decode(char *dst, const char *src, size_t n, bool plus_space);

/* Write the decimal form of v and a NUL at dst (room for 21 bytes); returns its length. For the
 * per-request paths, where snprintf showed in profiles. */
static inline size_t ldg_str_i64(char *dst, int64_t v)
{
    char tmp[20], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t n = (size_t)(tmp + sizeof tmp - p), k = 0;
    if (v < 0)
        dst[k++] = '-';
    memcpy(dst + k, p, n);
    dst[k + n] = '\0';
    return k + n;
}

/* Word-at-a-time scanning (8 bytes per step) for the byte loops of the encoders. Each test is
 * exact as a yes/no for the whole word; callers fall back to a byte loop to find the position. */
#define LDG_SWAR_ONES 0x0101010101010101ULL
#define LDG_SWAR_HIGHS 0x8080808080808080ULL

static inline uint64_t ldg_swar_load(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Some byte of v is < n (n <= 128). */
static inline uint64_t ldg_swar_less(uint64_t v, unsigned n)
{
    return (v - LDG_SWAR_ONES * n) & ~v & LDG_SWAR_HIGHS;
}

/* Some byte of v equals c. */
static inline uint64_t ldg_swar_has(uint64_t v, unsigned char c)
{
    return ldg_swar_less(v ^ (LDG_SWAR_ONES * c), 1);
}

/* Some byte of v is >= 0x80. */
static inline uint64_t ldg_swar_high(uint64_t v)
{
    return v & LDG_SWAR_HIGHS;
}

#endif
