/*
 * unit.h: small helpers shared by the cmocka suites (header-only, static functions).
 */
#ifndef LDG_TEST_UNIT_H
#define LDG_TEST_UNIT_H

#include <string.h>

#include "core/buf.h"
#include "core/str.h"

/* NUL-terminated view of the buffer contents (the NUL is not counted in its size). */
static inline const char *text(struct ldg_buf *b)
{
    ldg_buf_put(b, "", 1);
    b->len--;
    return ldg_buf_head(b);
}

/* A string slice of a C string. */
static inline struct ldg_str S(const char *s) {
    return ldg_str_make(s, strlen(s));
}

#endif
