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

#endif
