/*
 * bucket.c: see bucket.h.
 */
#include "query/bucket.h"

static const int64_t nice_widths[] = {1,    5,     10,    15,    30,    60,    300,   600,
                                      900,  1800,  3600,  10800, 21600, 43200, 86400, 604800};

#define WEEK_S 604800

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void ldg_bucket_span(int64_t from_us, int64_t to_us, int64_t width_s, int64_t *first, int64_t *count)
{
    int64_t w = width_s * 1000000;
    int64_t a = floor_div(from_us, w);
    int64_t b = to_us > from_us ? floor_div(to_us - 1, w) : a;
    *first = a;
    *count = b - a + 1;
}

int64_t ldg_bucket_pick(int64_t from_us, int64_t to_us, int64_t target)
{
    int64_t first, count;
    for (size_t i = 0; i < LDG_ARRAY_SIZE(nice_widths); i++) {
        ldg_bucket_span(from_us, to_us, nice_widths[i], &first, &count);
        if (count <= target)
            return nice_widths[i];
    }
    /* Wider than target weeks: whole weeks, enough of them. Alignment can add one bucket, hence
     * the loop (it runs at most twice). */
    ldg_bucket_span(from_us, to_us, WEEK_S, &first, &count);
    int64_t k = (count + target - 1) / target;
    for (;;) {
        ldg_bucket_span(from_us, to_us, WEEK_S * k, &first, &count);
        if (count <= target)
            return WEEK_S * k;
        k++;
    }
}
