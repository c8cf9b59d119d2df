#include "core/buf.h"

#include <stdarg.h>

#include "core/alloc.h"
#include "core/str.h"

char *ldg_buf_reserve(struct ldg_buf *b, size_t n, size_t limit)
{
    if (limit && ldg_buf_size(b) + n > limit)
        return NULL;
    if (b->len + n <= b->cap)
        return b->data + b->len;
    /* Compact first when a consumed prefix makes enough room. */
    if (b->off && ldg_buf_size(b) + n <= b->cap) {
        memmove(b->data, b->data + b->off, ldg_buf_size(b));
        b->len -= b->off;
        b->off = 0;
        return b->data + b->len;
    }
    size_t want = ldg_buf_size(b) + n, cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    char *d = ldg_malloc(cap);
    if (b->data) {
        memcpy(d, b->data + b->off, ldg_buf_size(b));
        free(b->data);
    }
    b->len -= b->off;
    b->off = 0;
    b->data = d;
    b->cap = cap;
    return b->data + b->len;
}

int ldg_buf_append(struct ldg_buf *b, const void *p, size_t n, size_t limit)
{
    char *dst = ldg_buf_reserve(b, n, limit);
    if (!dst)
        return -E2BIG;
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void ldg__buf_put_grow(struct ldg_buf *b, const void *p, size_t n)
{
    char *dst = ldg_buf_reserve(b, n, 0);
    if (n)
        memcpy(dst, p, n);
    b->len += n;
}

void ldg_buf_put_i64(struct ldg_buf *b, int64_t v)
{
    char tmp[24];
    ldg_buf_put(b, tmp, ldg_str_i64(tmp, v));
}

void ldg_buf_puts(struct ldg_buf *b, const char *s)
{
    ldg_buf_put(b, s, strlen(s));
}

void ldg_buf_printf(struct ldg_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *dst = ldg_buf_reserve(b, 128, 0);
    size_t room = b->cap - b->len;
    va_start(ap, fmt);
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= room) {
        dst = ldg_buf_reserve(b, (size_t)n + 1, 0);
        va_start(ap, fmt);
        vsnprintf(dst, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void ldg_buf_json_escape(struct ldg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *dst = ldg_buf_reserve(b, n * 6, 0);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (c == '\r') {
            dst[o++] = '\\';
            dst[o++] = 'r';
        } else if (c == '\t') {
            dst[o++] = '\\';
            dst[o++] = 't';
        } else if (c < 0x20) {
            memcpy(dst + o, "\\u00", 4);
            o += 4;
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            dst[o++] = (char)c;
        }
    }
    b->len += o;
}

void ldg_buf_consume(struct ldg_buf *b, size_t n)
{
    LDG_ASSERT(n <= ldg_buf_size(b));
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}

void ldg_buf_free(struct ldg_buf *b)
{
    free(b->data);
    ldg_buf_init(b);
}
