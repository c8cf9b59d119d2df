/*
 * stats.h: per-worker counters and a latency histogram.
 *
 * Each counter has exactly one writer (its worker's loop thread) and is read by whichever worker
 * renders /metrics. Relaxed atomics make that race-free at the cost of a plain load and store on
 * the writer's side (no locked instruction: single writer).
 */
#ifndef LDG_STATS_H
#define LDG_STATS_H

#include <stdatomic.h>

#include "core/common.h"
#include "db/shardmap.h"

/* Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf). */
#define LDG_STATS_LAT_BUCKETS 14
extern const uint64_t ldg_stats_lat_bounds_us[LDG_STATS_LAT_BUCKETS];

struct ldg_stats {
    size_t nroutes;             /* route rows; row nroutes counts unmatched requests */
    _Atomic uint64_t *by_route; /* owned: (nroutes + 1) * 5 status classes (1xx..5xx) */
    _Atomic uint64_t lat[LDG_STATS_LAT_BUCKETS + 1];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t requests;
    _Atomic uint64_t conns_open; /* gauge */
    _Atomic uint64_t conns_accepted;
    _Atomic uint64_t conns_rejected; /* over max_connections */
    _Atomic uint64_t timeouts;       /* connections cut by a header/body/idle/write deadline */
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t redis_errors; /* mirrored from the worker's Redis clients by the sweeper */
    _Atomic uint64_t redis_shard_errors[LDG_SHARDS_MAX]; /* the same, per Redis shard */
    _Atomic uint64_t pg_errors; /* mirrored from the worker's PostgreSQL pools by the sweeper */
    /* storage role (docs/ingest.md "Metrics"): logs by outcome, and the queue as worker 0 samples it */
    _Atomic uint64_t store_stored, store_duplicates, store_conflicts, store_dead, store_redelivered;
    _Atomic uint64_t store_failures;
    _Atomic uint64_t queue_sampled; /* gauge: 1 once this worker sampled the queue */
    /* the queue counters' reconciler (roles/storage/reconcile.h) */
    _Atomic uint64_t queue_reconciles, queue_reconcile_skips, queue_repairs_depth, queue_repairs_bytes;
    /* per Redis shard: */
    _Atomic uint64_t queue_entries[LDG_SHARDS_MAX]; /* gauge: XLEN of the ingest stream */
    _Atomic uint64_t queue_pending[LDG_SHARDS_MAX]; /* gauge: delivered to a consumer, not acknowledged */
    _Atomic uint64_t queue_oldest_pending_ms[LDG_SHARDS_MAX]; /* gauge: age of the oldest pending entry */
    /* analytics role: what searches read without a search index, as worker 0 samples it
     * (docs/query.md "Capacity") */
    _Atomic uint64_t index_sampled;             /* gauge: 1 once this worker sampled it */
    _Atomic uint64_t index_unindexed_rows;      /* gauge: rows of leaves without their search indexes */
    _Atomic uint64_t index_unindexed_leaves;    /* gauge: those leaves (the open one included) */
    _Atomic uint64_t index_oldest_unindexed_ms; /* gauge: age of the oldest such leaf's start */
    _Atomic uint64_t index_backlog_rows;        /* gauge: rows of closed leaves due for the builder */
    _Atomic uint64_t index_backlog_leaves;      /* gauge: those closed leaves */
    _Atomic uint64_t index_backlog_age_ms;      /* gauge: how long the oldest of them has been due */
};

void ldg_stats_init(struct ldg_stats *s, size_t nroutes);
void ldg_stats_free(struct ldg_stats *s);

/* Writer side: only the owning worker's thread. */
static inline void ldg_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void ldg_stat_sub(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n, memory_order_relaxed);
}
static inline void ldg_stat_set(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}
/* Reader side: any thread. */
static inline uint64_t ldg_stat_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Record one finished request: route index (nroutes for unmatched), status, latency. */
void ldg_stats_request(struct ldg_stats *s, size_t route, int status, uint64_t lat_us);

#endif
