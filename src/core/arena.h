/*
 * arena.h: bump allocator for request- or job-scoped memory (ngx_pool_t, h2o_mem_pool_t).
 * Allocations are freed all at once by ldg_arena_reset/ldg_arena_free. The first chunk may be
 * embedded in the owner (no malloc for small requests). Not thread-safe.
 */
#ifndef LDG_ARENA_H
#define LDG_ARENA_H

#include "core/common.h"

struct ldg_arena_chunk;

struct ldg_arena {
    char *base;  /* borrowed: the embedded first chunk */
    size_t size; /* size of the embedded chunk */
    size_t used; /* bytes used in the current chunk */
    char *cur;   /* current chunk (base or the newest heap chunk's data) */
    size_t cur_size;
    struct ldg_arena_chunk *chunks; /* owned: heap chunks, newest first */
    size_t heap_bytes;              /* total heap bytes held, for limits */
};

void ldg_arena_init(struct ldg_arena *a, void *first, size_t first_size);
/* 16-byte aligned; never NULL (aborts on OOM). */
void *ldg_arena_alloc(struct ldg_arena *a, size_t n);
char *ldg_arena_strndup(struct ldg_arena *a, const char *s, size_t n);
/* Release heap chunks and rewind to the embedded chunk. */
void ldg_arena_reset(struct ldg_arena *a);
static inline void ldg_arena_free(struct ldg_arena *a)
{
    ldg_arena_reset(a);
}

#endif
