/*
 * clock.h: wall-clock time (CLOCK_REALTIME) for what leaves the process: timestamps, token times,
 * day keys, cross-process freshness. Loop timers and deadlines use the loop clock (uv_now) instead.
 * Pure header; any thread.
 */
#ifndef LDG_CLOCK_H
#define LDG_CLOCK_H

#include <time.h>

#include "core/common.h"

/* Unix time in microseconds. */
static inline int64_t ldg_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Unix time in milliseconds. */
static inline uint64_t ldg_wall_ms(void)
{
    return (uint64_t)ldg_wall_us() / 1000u;
}

#endif
