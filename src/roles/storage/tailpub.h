/*
 * tailpub.h: the storage side of the live tail (docs/tail.md): after a transaction committed,
 * the logs it stored for projects someone tails are read back (their real ids, exactly as
 * GET /api/v1/logs/{id} answers them) and published on the project's tail channel
 * (notify/tailmsg.h).
 *
 * Whether a project has viewers is the count of unexpired members of its `tail:viewers:{p<id>}`
 * set, cached per consumer for [storage] tail_viewers_refresh_ms: a project nobody tails costs at
 * most one ZCOUNT per consumer and refresh period, nothing per log.
 *
 * Threading: the consumer's loop. A job (one project of one committed range) holds copies of what
 * it needs and a reference to the cache, so it may outlive its consumer; it uses the worker's
 * Redis and pg_logs clients only while they exist (the worker clears them when closing).
 */
#ifndef LDG_ROLES_STORAGE_TAILPUB_H
#define LDG_ROLES_STORAGE_TAILPUB_H

#include "core/common.h"

struct ldg__storage_consumer;
struct ldg__storage_tail;

struct ldg__storage_tail *ldg__storage_tail_new(void);
/* Drop the consumer's reference (jobs in flight keep theirs). */
void ldg__storage_tail_release(struct ldg__storage_tail *t);

/* The rows of [lo, hi) just committed (state STORED): publish them to their projects' tails. */
void ldg__storage_tail_committed(struct ldg__storage_consumer *c, size_t lo, size_t hi);

#endif
