/*
 * chunk.c: see chunk.h.
 */
#include "http/chunk.h"

#include <stdio.h>

#include "core/alloc.h"

struct ldg_chunk *ldg_chunk_new(const void *body, size_t n)
{
    LDG_ASSERT(n > 0 && n < UINT32_MAX - 32);
    char head[16];
    int hn = snprintf(head, sizeof head, "%zx\r\n", n);
    struct ldg_chunk *c = ldg_malloc(sizeof *c + (size_t)hn + n + 2);
    c->refs = 1;
    memcpy(c->data, head, (size_t)hn);
    memcpy(c->data + hn, body, n);
    memcpy(c->data + hn + n, "\r\n", 2);
    c->len = (uint32_t)((size_t)hn + n + 2);
    c->body_off = (uint32_t)hn;
    c->body_len = (uint32_t)n;
    return c;
}

struct ldg_chunk *ldg_chunk_raw(const void *data, size_t n)
{
    LDG_ASSERT(n < UINT32_MAX);
    struct ldg_chunk *c = ldg_malloc(sizeof *c + n);
    c->refs = 1;
    memcpy(c->data, data, n);
    c->len = (uint32_t)n;
    c->body_off = 0;
    c->body_len = (uint32_t)n;
    return c;
}

void ldg_chunk_unref(struct ldg_chunk *c)
{
    LDG_ASSERT(c->refs > 0);
    if (--c->refs == 0)
        free(c);
}
