#include "core/arena.h"

#include "core/alloc.h"

struct ldg_arena_chunk {
    struct ldg_arena_chunk *next;
    size_t size;
    _Alignas(16) char data[];
};

#define ARENA_ALIGN 16
#define ARENA_MIN_CHUNK 8192

void ldg_arena_init(struct ldg_arena *a, void *first, size_t first_size)
{
    a->base = first;
    a->size = first ? first_size : 0;
    a->cur = a->base;
    a->cur_size = a->size;
    a->used = 0;
    a->chunks = NULL;
    a->heap_bytes = 0;
}

void *ldg_arena_alloc(struct ldg_arena *a, size_t n)
{
    size_t off = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (a->cur && off + n <= a->cur_size) {
        a->used = off + n;
        return a->cur + off;
    }
    size_t sz = n > ARENA_MIN_CHUNK / 2 ? n : ARENA_MIN_CHUNK;
    struct ldg_arena_chunk *c = ldg_malloc(sizeof *c + sz);
    c->size = sz;
    a->heap_bytes += sz;
    if (n > ARENA_MIN_CHUNK / 2 && a->chunks) {
        /* A big allocation gets its own chunk behind the current one, so the current keeps serving. */
        c->next = a->chunks->next;
        a->chunks->next = c;
        return c->data;
    }
    c->next = a->chunks;
    a->chunks = c;
    a->cur = c->data;
    a->cur_size = sz;
    a->used = n;
    return c->data;
}

char *ldg_arena_strndup(struct ldg_arena *a, const char *s, size_t n)
{
    char *d = ldg_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void ldg_arena_reset(struct ldg_arena *a)
{
    struct ldg_arena_chunk *c = a->chunks;
    while (c) {
        struct ldg_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->heap_bytes = 0;
    a->cur = a->base;
    a->cur_size = a->size;
    a->used = 0;
}
