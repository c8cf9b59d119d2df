/*
 * breaker.h: a circuit breaker in front of a database, counting consecutive failures.
 *
 *   closed    every request goes through (LDG_BREAKER_PASS);
 *   open      after `threshold` consecutive failures: nothing goes through for open_ms
 *             (LDG_BREAKER_REJECT);
 *   half-open once open_ms has passed: exactly ONE request goes through as the probe
 *             (LDG_BREAKER_PROBE); every other request is rejected until that probe's answer.
 *             The probe succeeding closes the breaker; failing reopens it for another open_ms.
 *
 * Answers of requests sent before the breaker opened still count (a success closes it, a failure
 * extends the open period) but never release the probe slot: only the probe's own answer does, so
 * a late answer cannot let a second probe through while the first is still out.
 *
 * Pure, header-only, no clock of its own (the caller passes its loop time in ms); one struct per
 * protected resource per loop, used from that loop's thread only.
 */
#ifndef LDG_DB_BREAKER_H
#define LDG_DB_BREAKER_H

#include "core/common.h"

struct ldg_breaker {
    unsigned threshold;  /* consecutive failures that open it, >= 1 */
    uint64_t open_ms;    /* how long it stays open before the probe */
    unsigned failures;   /* consecutive so far */
    uint64_t open_until; /* loop ms; 0 = closed */
    bool probe_inflight;
};

enum ldg_breaker_admit {
    LDG_BREAKER_REJECT = 0, /* open, or half-open with the probe already out */
    LDG_BREAKER_PASS,       /* closed */
    LDG_BREAKER_PROBE,      /* half-open: this request is the probe; report it with probe = true */
};

/* What ldg_breaker_done changed, for the caller's log line. */
enum ldg_breaker_change {
    LDG_BREAKER_SAME = 0,
    LDG_BREAKER_OPENED,
    LDG_BREAKER_CLOSED,
};

static inline void ldg_breaker_init(struct ldg_breaker *b, unsigned threshold, uint64_t open_ms)
{
    b->threshold = threshold ? threshold : 1;
    b->open_ms = open_ms;
    b->failures = 0;
    b->open_until = 0;
    b->probe_inflight = false;
}

static inline bool ldg_breaker_is_open(const struct ldg_breaker *b)
{
    return b->open_until != 0;
}

/* May a request go to the resource now? */
static inline enum ldg_breaker_admit ldg_breaker_admit(struct ldg_breaker *b, uint64_t now_ms)
{
    if (!b->open_until)
        return LDG_BREAKER_PASS;
    if (now_ms < b->open_until || b->probe_inflight)
        return LDG_BREAKER_REJECT;
    b->probe_inflight = true;
    return LDG_BREAKER_PROBE;
}

/* The answer of a request that was admitted (probe: it was admitted as LDG_BREAKER_PROBE), or of
 * one that could not even be sent (ok = false). */
static inline enum ldg_breaker_change ldg_breaker_done(struct ldg_breaker *b, bool probe, bool ok,
                                                       uint64_t now_ms)
{
    if (probe)
        b->probe_inflight = false;
    if (ok) {
        bool was_open = b->open_until != 0;
        b->failures = 0;
        b->open_until = 0;
        return was_open ? LDG_BREAKER_CLOSED : LDG_BREAKER_SAME;
    }
    if (b->failures < UINT32_MAX)
        b->failures++;
    if (b->failures < b->threshold)
        return LDG_BREAKER_SAME;
    bool was_open = b->open_until != 0;
    b->open_until = now_ms + b->open_ms;
    if (b->open_until == 0)
        b->open_until = 1;
    return was_open ? LDG_BREAKER_SAME : LDG_BREAKER_OPENED;
}

#endif
