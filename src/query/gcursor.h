/*
 * gcursor.h: the opaque keyset cursor of the error-group list (GET /api/v1/error-groups).
 *
 * A page is ordered by (sort key DESC, id DESC); the cursor is the sort and the (key, id) of the
 * last group of a page, as base64url of "g1:<sort letter>:<key>:<id>" (l = last_seen, f =
 * first_seen, c = occurrence_count; key = Unix microseconds or the count). A cursor names its sort,
 * so one made for another sort is refused instead of silently skipping groups.
 *
 * Pure: any thread; no allocation (buffers are the caller's).
 */
#ifndef LDG_QUERY_GCURSOR_H
#define LDG_QUERY_GCURSOR_H

#include "core/common.h"

enum ldg_gsort {
    LDG_GSORT_LAST_SEEN,
    LDG_GSORT_FIRST_SEEN,
    LDG_GSORT_COUNT,
};

/* Longest encoded cursor, NUL excluded. */
#define LDG_GCURSOR_MAX 80

struct ldg_gcursor {
    enum ldg_gsort sort;
    int64_t key, id;
};

/* The sort named by the list's `sort` parameter (last_seen, first_seen, count); false if unknown. */
bool ldg_gsort_parse(const char *name, enum ldg_gsort *out);

/* Encode c into out (at least LDG_GCURSOR_MAX + 1 bytes); returns the length. */
size_t ldg_gcursor_encode(const struct ldg_gcursor *c, char *out);

/* Decode text (n bytes). False when it is not a cursor this module made (id must be >= 1). */
bool ldg_gcursor_decode(const char *text, size_t n, struct ldg_gcursor *out);

#endif
