/*
 * buf.h: growable byte buffer with a hard cap (h2o_buffer_t, pgbouncer mbuf).
 * Owned by whoever embeds it; not thread-safe.
 */
#ifndef LDG_BUF_H
#define LDG_BUF_H

#include "core/common.h"

struct ldg_buf {
    char *data; /* owned; NULL until first reserve */
    size_t len; /* bytes in use: data[off .. len) is readable */
    size_t off; /* consumed prefix */
    size_t cap; /* allocated bytes */
};

static inline void ldg_buf_init(struct ldg_buf *b)
{
    b->data = NULL;
    b->len = b->off = b->cap = 0;
}

static inline size_t ldg_buf_size(const struct ldg_buf *b)
{
    return b->len - b->off;
}

static inline const char *ldg_buf_head(const struct ldg_buf *b)
{
    /* An empty buffer that never allocated has no data: NULL + 0 is undefined behaviour, and
     * callers pass the head to memcpy with a size of 0. */
    return b->data ? b->data + b->off : "";
}

/* Make room for n more bytes; returns a pointer to the writable area. Grows by doubling.
 * Returns NULL (and changes nothing) if the readable size would exceed `limit` (0 = no limit). */
char *ldg_buf_reserve(struct ldg_buf *b, size_t n, size_t limit);
static inline void ldg_buf_commit(struct ldg_buf *b, size_t n)
{
    b->len += n;
}
/* Append; returns 0 or -E2BIG when over limit (0 = no limit). */
int ldg_buf_append(struct ldg_buf *b, const void *p, size_t n, size_t limit) LDG_MUSTCHECK;
/* Append with no limit (caller bounds the size by construction). Inline when it fits: encoders
 * append a few bytes at a time. */
void ldg__buf_put_grow(struct ldg_buf *b, const void *p, size_t n);
static inline void ldg_buf_put(struct ldg_buf *b, const void *p, size_t n)
{
    if (likely(b->len + n <= b->cap)) {
        if (n)
            memcpy(b->data + b->len, p, n);
        b->len += n;
        return;
    }
    ldg__buf_put_grow(b, p, n);
}
void ldg_buf_puts(struct ldg_buf *b, const char *s);
/* Append the decimal form of v. */
void ldg_buf_put_i64(struct ldg_buf *b, int64_t v);
void ldg_buf_printf(struct ldg_buf *b, const char *fmt, ...) LDG_PRINTF(2, 3);
/* Append s as the inside of a JSON string (escaped, no quotes). */
void ldg_buf_json_escape(struct ldg_buf *b, const char *s, size_t n);
void ldg_buf_consume(struct ldg_buf *b, size_t n);
/* Forget the contents, keep the allocation. */
static inline void ldg_buf_reset(struct ldg_buf *b)
{
    b->len = b->off = 0;
}
/* Forget the contents and release the allocation. */
void ldg_buf_free(struct ldg_buf *b);

#endif
