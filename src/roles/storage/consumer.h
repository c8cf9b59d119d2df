/*
 * consumer.h: one storage consumer (one per worker): the Redis side in consumer.c (group, reads,
 * claims, leases, acks), the PostgreSQL side in writer.c (one transaction per range of the batch).
 *
 * States (only consumer.c's set_state changes them):
 *   IDLE     nothing in flight; step() decides what is next (maybe after a timer)
 *   REDIS    a Redis command is in flight (group creation, read, claim, lease, ack)
 *   STORING  writer.c owns the batch until it calls ldg__storage_stored()
 *   CLOSING  handles closing; CLOSED once every close callback ran
 *
 * Leases: a consumer must not write entries another consumer may have claimed. Claims take only
 * entries idle for claim_idle_ms, and delivery (read or claim) resets that idle time, so a batch is
 * ours for claim_idle_ms after the read that delivered it (lease_ms, our monotonic clock). Before a
 * COMMIT later than half of that, and before every retry, the lease is renewed by a script that
 * re-claims the entries still ours (JUSTID, idle reset) and reports the others, which are dropped
 * from the batch (LOST: neither stored nor acknowledged here).
 *
 * Threading: the worker's loop thread only.
 */
#ifndef LDG_ROLES_STORAGE_CONSUMER_H
#define LDG_ROLES_STORAGE_CONSUMER_H

#include <uv.h>

#include "core/buf.h"
#include "db/backoff.h"
#include "roles/storage/batch.h"

struct ldg_worker;
struct ldg_redis;
struct ldg_pg;

enum ldg__storage_state {
    LDG_STORAGE_IDLE,
    LDG_STORAGE_REDIS,
    LDG_STORAGE_STORING,
    LDG_STORAGE_CLOSING,
    LDG_STORAGE_CLOSED,
};

/* Where the batch's entries came from. */
enum ldg__storage_source {
    LDG_STORAGE_OWN,   /* our pending list (after start or failure): maybe stored */
    LDG_STORAGE_NEW,   /* XREADGROUP >: never delivered before */
    LDG_STORAGE_CLAIM, /* XAUTOCLAIM from an idle consumer: maybe stored */
};

#define LDG_STORAGE_MAX_RANGES 64
#define LDG_STORAGE_MONTH_CACHE 32

struct ldg__storage_range {
    size_t lo, hi;
    unsigned attempts;
};

struct ldg__storage_consumer {
    struct ldg_worker *w;    /* borrowed */
    struct ldg_redis *redis; /* owned: blocking reads need their own connection */
    unsigned redis_shard;    /* the Redis shard whose queue it consumes */
    char name[128];          /* consumer name <node>:<pid>:<worker>[.<index>] */
    char ctx[200];           /* logfmt context */
    enum ldg__storage_state state;
    enum ldg__storage_source source;
    bool group_ready;
    bool stopping;
    bool reread_own; /* a reply was lost: read our pending list again once the batch is done */
    char own_cursor[LDG_BATCH_SID_MAX];   /* next id of our pending list to read */
    char claim_cursor[LDG_BATCH_SID_MAX]; /* XAUTOCLAIM start */
    uint64_t next_claim_ms;

    struct ldg_batch batch;
    uint64_t batch_first_ms; /* when the batch's first entry arrived */
    uint64_t lease_ms;       /* loop time of the read that delivered the oldest entry; 0 = unknown */
    uint64_t read_sent_ms;   /* send time of the read in flight */
    size_t rows_per_entry;   /* estimate (>= 1) that sizes reads: last read's mean, or half the former */
    size_t bytes_per_entry;  /* the same for payload bytes (reads bounded in bytes too) */
    bool stored;             /* writer finished the batch: ack next */
    void (*renew_cb)(struct ldg__storage_consumer *c, bool ok); /* lease renewal in flight */
    struct ldg_buf args;                                        /* ack script arguments */
    struct ldg_backoff backoff;

    uv_timer_t timer;      /* next step (retry delay, debug pauses) */
    uv_timer_t deadline;   /* store deadline (writer.c) */
    uv_timer_t stop_timer; /* bound on finishing the held batch when stopping */
    unsigned open_handles;

    /* writer.c */
    struct ldg_pg *conn; /* lent by the pool of logs shard `shard` while storing */
    int shard;           /* shardsplit.h: the logs shard being written */
    bool in_tx;
    bool abandoning; /* ignore callbacks while giving a busy connection back */
    struct ldg__storage_range ranges[LDG_STORAGE_MAX_RANGES];
    size_t nranges;
    struct ldg__storage_range cur;
    int32_t months[LDG_STORAGE_MONTH_CACHE]; /* months known to have a partition */
    size_t nmonths;
    int32_t month_todo[LDG_STORAGE_MONTH_CACHE];
    size_t nmonth_todo, month_i;
    struct ldg_buf copy, groups, p_pids, p_ts, p_ids;
    struct ldg__storage_tail *tail; /* owned reference: live tail publishing (tailpub.h) */
    bool acquiring;        /* a pool acquire is pending */
    bool acquire_orphaned; /* ... for an attempt given up on: release what it brings */
    bool groups_failed;    /* the upsert failed; COMMIT's callback handles it (fail below) */
    struct pg_result *regressed; /* owned: groups the open transaction flipped back to unresolved
                                    (published after its COMMIT), or NULL */
    struct {
        int code;
        char sqlstate[6];
        char constraint[64];
        char message[240];
    } fail;                /* the failure being handled */
    bool requeue;          /* after the ROLLBACK: write the current range again (no split) */
    unsigned conflicts;    /* queue-id conflicts (23505) in this write; bounded */
    unsigned failed_attempts; /* attempts of this batch failed by PERSISTENT errors (batch.h) */
    char data_reason[300]; /* reason given to the entry a data error isolates */

    struct {
        uint64_t batches, stored, duplicates, dead, lost, failures, conflicts;
    } stats;
    char last_error[200];
};

/* consumer.c */
void ldg__storage_consumer_init_global(void); /* script digests; main thread, before workers */
struct ldg__storage_consumer *ldg__storage_consumer_new(struct ldg_worker *w, unsigned index, unsigned shard);
void ldg__storage_consumer_stop(struct ldg__storage_consumer *c);
bool ldg__storage_consumer_closed(const struct ldg__storage_consumer *c);
void ldg__storage_consumer_free(struct ldg__storage_consumer *c);
/* One JSON object for a worker's consumers: counters summed, states listed. */
void ldg__storage_consumer_health(const struct ldg__storage_consumer *const *cs, size_t n,
                                  struct ldg_buf *out);

/* Called by writer.c when the batch is done: ok = every entry STORED, DUPLICATE, DEAD or LOST
 * (ack next); !ok = a failure to retry after backoff (entries stay PENDING). */
void ldg__storage_stored(struct ldg__storage_consumer *c, bool ok);

/* consumer.c, for writer.c: renew the lease; cb(c, ok) once done (LOST entries marked). */
void ldg__storage_renew(struct ldg__storage_consumer *c,
                        void (*cb)(struct ldg__storage_consumer *c, bool ok));
/* Is the lease older than half of claim_idle_ms? */
bool ldg__storage_lease_stale(const struct ldg__storage_consumer *c);

/* writer.c: store the whole batch (state STORING). */
void ldg__storage_write(struct ldg__storage_consumer *c);
/* writer.c: give the connection back at once (deadline, stop); the batch stays PENDING. */
void ldg__storage_write_abandon(struct ldg__storage_consumer *c);
/* writer.c: forget the regressions of a transaction that did not commit. */
void ldg__storage_regressed_clear(struct ldg__storage_consumer *c);

/* Record a failure for logs and health. */
void ldg__storage_fail(struct ldg__storage_consumer *c, const char *fmt, ...) LDG_PRINTF(2, 3);

#endif
