/*
 * bucket.h: time buckets of the log volume histogram (GET /api/v1/logs/histogram).
 *
 * Buckets are aligned to multiples of their width since the Unix epoch, so the same width gives
 * the same bucket boundaries whatever the range (a zoomed-in chart lines up with the wider one).
 * A range [from, to) covers every bucket from the one holding `from` to the one holding the last
 * microsecond before `to`; an empty range (from == to) covers the one bucket holding `from`.
 *
 * Pure functions, any thread.
 */
#ifndef LDG_QUERY_BUCKET_H
#define LDG_QUERY_BUCKET_H

#include "core/common.h"

#define LDG_BUCKET_MAX 500     /* buckets in one answer */
#define LDG_BUCKET_DEFAULT 60  /* target when the client names none */

/* Index (bucket start / width) of the first bucket of [from_us, to_us) and how many there are.
 * width_s >= 1, from_us <= to_us. */
void ldg_bucket_span(int64_t from_us, int64_t to_us, int64_t width_s, int64_t *first, int64_t *count);

/* The smallest "nice" width (1, 5, 10, 15, 30 s; 1, 5, 10, 15, 30 min; 1, 3, 6, 12 h; 1 d; 7 d)
 * giving at most `target` buckets over the range; past 7 d, the smallest multiple of 7 d that
 * does. target >= 1. */
int64_t ldg_bucket_pick(int64_t from_us, int64_t to_us, int64_t target);

#endif
