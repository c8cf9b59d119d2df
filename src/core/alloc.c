#include "core/alloc.h"

#include <stdarg.h>

static LDG_NORETURN void oom(size_t n)
{
    ldg_panic("out of memory allocating %zu bytes", n);
}

void *ldg_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (unlikely(p == NULL))
        oom(n);
    return p;
}

void *ldg_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (unlikely(p == NULL))
        oom(nmemb * size);
    return p;
}

void *ldg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (unlikely(q == NULL))
        oom(n);
    return q;
}

char *ldg_strdup(const char *s)
{
    return s ? ldg_strndup(s, strlen(s)) : NULL;
}

char *ldg_strndup(const char *s, size_t n)
{
    char *d = ldg_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *ldg_asprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}
