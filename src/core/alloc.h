/*
 * alloc.h: allocation wrappers that never return NULL; they abort on OOM
 * (memory is bounded by limits, not by checking every allocation).
 * Thread-safe (they wrap malloc).
 */
#ifndef LDG_ALLOC_H
#define LDG_ALLOC_H

#include "core/common.h"

void *ldg_malloc(size_t n);
void *ldg_calloc(size_t nmemb, size_t size);
void *ldg_realloc(void *p, size_t n);
/* Returns an owned, NUL-terminated copy; NULL in gives NULL out. */
char *ldg_strdup(const char *s);
char *ldg_strndup(const char *s, size_t n);
/* Owned, formatted string. */
char *ldg_asprintf(const char *fmt, ...) LDG_PRINTF(1, 2);

#endif
