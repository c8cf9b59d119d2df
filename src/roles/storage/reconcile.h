/*
 * reconcile.h: the queue counters' reconciler, the first step of the storage role's maintenance
 * (maintenance.c; docs/ingest.md "Counters").
 *
 * Ingest checks queue_depth:<pid> (logs queued) and queue_bytes:<pid> (their queue bytes) against
 * its bounds; the enqueue script increments them with its XADD and the storage role's ack script
 * decrements them with its XDEL, both atomically. What the scripts cannot see (entries and counters
 * of a Redis that came back from an older AOF, counters written by hand, a bug) would otherwise
 * stay forever: a counter too high refuses a project's logs with 503s, one too low lets the queue
 * outgrow its bound. The reconciler recomputes both counters of every project of a Redis shard
 * from the entries of that shard's stream (fields p, n and the length of m, as the ack counts them)
 * and sets those that differ, in one script, so nothing enqueued or acknowledged can fall between
 * the count and the write. A shard whose stream holds more than LDG_RECONCILE_MAX_ENTRIES entries
 * or LDG_RECONCILE_MAX_BYTES bytes is skipped (reading it would block Redis too long); the next
 * run tries again.
 *
 * Pure (no I/O); the script text is immutable.
 */
#ifndef LDG_ROLES_STORAGE_RECONCILE_H
#define LDG_ROLES_STORAGE_RECONCILE_H

#include <hiredis/hiredis.h>

#include "core/common.h"

#define LDG_RECONCILE_MAX_ENTRIES 10000
#define LDG_RECONCILE_MAX_BYTES (64 * 1024 * 1024)

/* KEYS[1]: the stream. ARGV: max entries, max bytes, then the project ids whose counters live on
 * this shard. */
extern const char ldg_reconcile_lua[];

enum ldg_reconcile_status {
    LDG_RECONCILE_CHECKED = 0,
    LDG_RECONCILE_TOO_MANY_ENTRIES = 1, /* skipped; size = XLEN */
    LDG_RECONCILE_TOO_MANY_BYTES = 2,   /* skipped; size = MEMORY USAGE of the stream */
};

struct ldg_reconcile_result {
    enum ldg_reconcile_status status;
    long long size;        /* entries read (checked), or what was over its bound (skipped) */
    long long fixed_depth; /* queue_depth keys set right */
    long long fixed_bytes; /* queue_bytes keys set right */
    long long drift_logs;  /* sum of |counted - actual| over the queue_depth keys */
    long long drift_bytes; /* the same over the queue_bytes keys */
};

/* Reads the script's reply; -EPROTO when it is not one (an error reply, a missing reply). */
int ldg_reconcile_parse(const redisReply *reply, struct ldg_reconcile_result *out) LDG_MUSTCHECK;

#endif
