/*
 * backoff.h: jittered exponential reconnect delay shared by the Redis and PostgreSQL clients.
 *
 * The n-th consecutive failure waits a uniformly random time in [d/2, d] where
 * d = min(min_ms * 2^(n-1), max_ms): doubling spreads the load of a fleet reconnecting to a server
 * that just came back, and the jitter keeps the workers of one process from retrying in lockstep.
 *
 * Pure, header-only; one struct per reconnecting object, used from its loop thread only.
 */
#ifndef LDG_DB_BACKOFF_H
#define LDG_DB_BACKOFF_H

#include "core/common.h"

struct ldg_backoff {
    uint64_t rng;      /* xorshift64 state, never 0 */
    uint32_t failures; /* consecutive failures so far */
    uint64_t min_ms, max_ms;
};

static inline void ldg_backoff_init(struct ldg_backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed)
{
    b->rng = seed ? seed : UINT64_C(0x9e3779b97f4a7c15);
    b->failures = 0;
    b->min_ms = min_ms > 0 ? (uint64_t)min_ms : 1;
    b->max_ms = max_ms > (int64_t)b->min_ms ? (uint64_t)max_ms : b->min_ms;
}

static inline uint64_t ldg_backoff_rand(struct ldg_backoff *b)
{
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

/* Record one more failure and return the delay before the next attempt, in milliseconds. */
static inline uint64_t ldg_backoff_next(struct ldg_backoff *b)
{
    uint64_t d = b->min_ms;
    if (b->failures < UINT32_MAX)
        b->failures++;
    for (uint32_t i = 1; i < b->failures && d < b->max_ms; i++)
        d *= 2;
    if (d > b->max_ms)
        d = b->max_ms;
    uint64_t half = d / 2;
    return half + ldg_backoff_rand(b) % (d - half + 1);
}

/* A success: the next failure starts again from min_ms. */
static inline void ldg_backoff_reset(struct ldg_backoff *b)
{
    b->failures = 0;
}

#endif
