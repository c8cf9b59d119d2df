/*
 * storage.h: the storage role: the ingest queue (a Redis Stream, [ingest] stream) into PostgreSQL
 * (reference §7.2, §7.3; decisions D5).
 *
 * Every worker of a process with this role runs [storage] consumers consumers of the consumer group
 * [storage] group, named <host>:<pid>:<worker>[.<k>], each on its own Redis connection (its reads
 * block) and, while writing, its own PostgreSQL connection: while one waits for PostgreSQL another
 * reads or acknowledges. A consumer loops:
 *
 *   read      XREADGROUP ... > until batch_max_logs entries, batch_max_bytes, or batch_wait_ms
 *             after the first entry (its own pending list first after start or a failure, and
 *             entries of dead consumers claimed with XAUTOCLAIM once idle for claim_idle_ms);
 *   store     one transaction: [duplicate check for entries delivered before,] COPY into logs
 *             (each row carries its stream entry id in queue_id), one error_groups upsert
 *             aggregated over the batch, COMMIT; months without a partition get one first;
 *             a row PostgreSQL rejects is isolated by halving the batch and dead-lettered;
 *   ack       one script: XACK + XDEL every entry, XADD the dead ones (with the reason) to
 *             [storage] dead_letter_stream, DECRBY queue_depth:<pid> by the entries acknowledged.
 *
 * So an entry is acknowledged only after the transaction holding its row committed, and a
 * redelivered entry whose row exists is not written again (D5). Failures retry with backoff, the
 * batch kept in memory; nothing is acknowledged that is not stored or dead-lettered.
 *
 * Maintenance (one process at a time, Redis lock, every maintenance_interval_ms): the per-project
 * queue counters reconciled with the stream (reconcile.h), partitions for
 * this month and partition_months_ahead more, retention (drop whole partitions past the longest
 * project retention, then delete each project's older rows in bounded batches), and removal of
 * consumers that have been idle a long time with nothing pending. Every slice_interval_ms (one
 * process at a time) the hour after the open leaf is cut into slices of about partition_max_rows
 * each at the current rate (slicing.c), so the unindexed open leaf stays small at any rate.
 *
 * Threading: all per-consumer state lives on its worker's loop; the config and script digests
 * are immutable after init_global.
 */
#ifndef LDG_ROLES_STORAGE_H
#define LDG_ROLES_STORAGE_H

#include "core/common.h"
#include "core/config.h"
#include "roles/role.h"

/* The [storage] section. */
struct ldg_storage_cfg {
    char *group;                     /* consumer group name */
    int64_t consumers;               /* consumers per worker (batches in flight at once) */
    int64_t batch_max_logs;          /* entries per transaction */
    int64_t batch_max_bytes;         /* payload bytes per transaction (checked after each read) */
    int64_t batch_wait_ms;           /* how long a batch may wait to fill after its first entry */
    int64_t read_block_ms;           /* XREADGROUP BLOCK while the queue is empty */
    int64_t store_timeout_ms;        /* deadline of one batch transaction */
    int64_t claim_idle_ms;           /* entries pending this long at a consumer are claimed */
    int64_t claim_interval_ms;       /* how often a consumer looks for such entries */
    int64_t retry_min_ms;            /* first delay after a failure (doubling, jittered) */
    int64_t retry_max_ms;            /* cap of that delay */
    int64_t max_failed_attempts;     /* persistent (non-data, non-connection) errors before dead letters */
    char *dead_letter_stream;        /* where rejected entries go, with their reason */
    int64_t dead_letter_max_len;     /* approximate cap of that stream (XADD MAXLEN ~) */
    int64_t partition_months_ahead;  /* months after the current one kept created */
    bool retention;                  /* drop and delete logs past their project's retention */
    int64_t maintenance_interval_ms; /* partitions ahead, retention, stale consumers */
    int64_t retention_batch_rows;    /* rows per DELETE statement */
    int64_t retention_pause_ms;      /* pause between two DELETE statements */
    int64_t partition_max_rows;      /* leaves ahead are cut to hold about this many rows (0: off) */
    int64_t slice_interval_ms;       /* how often the leaves ahead are looked at */
    int64_t tail_publish_max_bytes;  /* one live-tail message (PUBLISH) at most; larger logs dropped */
    int64_t tail_viewers_refresh_ms; /* how long a project's "has live tails" answer is reused */
    /* Tests only (need [server] debug_endpoints): hold a batch before COMMIT / before the ack. */
    int64_t debug_pause_before_commit_ms;
    int64_t debug_pause_before_ack_ms;
};

extern const struct ldg_cfg_key ldg_storage_cfg_keys[];
extern const struct ldg_role ldg_role_storage;

/* ---- internal to roles/storage/ ----------------------------------------------------------------- */

struct ldg_worker;
struct ldg__storage_maint;
struct ldg__storage_slicing;

/* Process-wide, set by init_global. */
struct ldg__storage_global {
    const struct ldg_storage_cfg *cfg;
    const char *stream; /* [ingest] stream */
    bool debug;         /* [server] debug_endpoints */
    char host[64];
};
extern struct ldg__storage_global ldg__storage;

/* Maintenance (maintenance.c): one per worker; only worker 0 of a process runs the schedule. */
struct ldg__storage_maint *ldg__storage_maint_new(struct ldg_worker *w);
void ldg__storage_maint_stop(struct ldg__storage_maint *m); /* begin closing */
bool ldg__storage_maint_closed(const struct ldg__storage_maint *m);
/* Frees m, or, while a command it sent is still unanswered (the worker frees roles before it closes
 * its clients), leaves that to the answer: the clients' close fails every pending command. */
void ldg__storage_maint_free(struct ldg__storage_maint *m);

/* Leaves closed by size (slicing.c): one per worker; only worker 0 of a process runs the timer.
 * Same lifecycle as the maintenance (free leaves the struct to a pending answer). */
struct ldg__storage_slicing *ldg__storage_slicing_new(struct ldg_worker *w);
void ldg__storage_slicing_stop(struct ldg__storage_slicing *s);
bool ldg__storage_slicing_closed(const struct ldg__storage_slicing *s);
void ldg__storage_slicing_free(struct ldg__storage_slicing *s);

#endif
