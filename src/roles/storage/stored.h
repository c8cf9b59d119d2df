/*
 * stored.h: the stored_entries rows of a storage transaction (schema 0009, docs/ingest.md "Written
 * once").
 *
 * Every transaction that writes logs also inserts, for each queue entry it writes logs of, one row
 * per contiguous run of those logs: (project, entry id, [first index, last index + 1)). The table's
 * exclusion constraint makes a second transaction writing any of the same logs wait for the first
 * and fail (23P01) once it committed, which is what keeps a log from being stored twice; one row per
 * run instead of a unique key per log keeps that guarantee off the per-row cost of COPY.
 *
 * Pure (no I/O, no globals); not thread-safe.
 */
#ifndef LDG_ROLES_STORAGE_STORED_H
#define LDG_ROLES_STORAGE_STORED_H

#include "core/buf.h"
#include "roles/storage/batch.h"

/* $1 project ids, $2 entry ids, $3 row ranges: the runs of ldg_stored_params. */
#define LDG_STORED_SQL                                                                                       \
    "INSERT INTO stored_entries (project_id, stream_id, rows) "                                              \
    "SELECT * FROM unnest($1::bigint[], $2::text[], $3::int4range[])"

/* A row's index in its stream entry (the number after '/' in its queue id; 0 for an entry without
 * `n`, whose only row's queue id is the entry id). */
uint32_t ldg_stored_index(const struct ldg_batch_entry *e);

/*
 * The runs of the PENDING rows of [lo, hi): rows of one stream entry with consecutive indexes form
 * one run. Appends three PostgreSQL array literals (project ids, entry ids, "[first,end)" ranges),
 * NUL-terminated, to the buffers; returns the number of runs (0: three empty arrays).
 */
size_t ldg_stored_params(const struct ldg_batch *b, size_t lo, size_t hi, struct ldg_buf *pids,
                         struct ldg_buf *sids, struct ldg_buf *ranges);

#endif
