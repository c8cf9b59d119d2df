/*
 * shardsplit.h: storage writes a batch one logs shard at a time (db/pgroute.h).
 *
 * A batch read from the queue mixes projects, and so shards. The writer (writer.c) stores the
 * PENDING entries of one shard on a connection of that shard's primary; the entries of the other
 * shards are PARKED meanwhile (a state every writer step skips, as it skips STORED ones). When the
 * shard is done the next one's entries become PENDING again and the writer goes on with a
 * connection of that shard; when the write ends, however it ends, nothing is left PARKED. Every
 * entry is written in a transaction of its own shard, so exactly-once holds per shard as it did
 * for one database. With one shard nothing is ever parked and c->shard stays 0.
 *
 * Threading: the consumer's worker thread.
 */
#ifndef LDG_ROLES_STORAGE_SHARDSPLIT_H
#define LDG_ROLES_STORAGE_SHARDSPLIT_H

#include "core/common.h"

struct ldg__storage_consumer;
struct ldg_pgpool;

/* Start a write: pick the shard written first (the current c->shard when `keep`, i.e. a connection
 * of it is being acquired already; otherwise the lowest shard with PENDING entries) and park
 * the others. */
void ldg__storage_shard_begin(struct ldg__storage_consumer *c, bool keep);

/* Are entries of another shard still waiting? */
bool ldg__storage_shard_parked(const struct ldg__storage_consumer *c);

/* The current shard is done: unpark the next shard that has parked entries and make it current
 * (the caller has given back its connection of the former shard first, and acquires one of the
 * new shard). Returns false when none is left. */
bool ldg__storage_shard_next(struct ldg__storage_consumer *c);

/* The write ends (stored, failed or abandoned): every PARKED entry is PENDING again. */
void ldg__storage_shard_end(struct ldg__storage_consumer *c);

/* The primary pool of the shard being written (NULL once the worker is closing). */
struct ldg_pgpool *ldg__storage_shard_pool(struct ldg__storage_consumer *c);

#endif
