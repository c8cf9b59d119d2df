/*
 * pgshard.h: the pure parts of logs sharding and replica lag (no I/O, no loop).
 *
 *   - which logs shard holds a project: an explicit pin from [pg_shards] projects ("42:1, 57:0"),
 *     otherwise the jump consistent hash (db/shardmap.h) of the project id over the shard
 *     count. Jump hash moves only about 1/(n+1) of the projects when a shard n+1 is added, and
 *     needs no state beyond the count.
 *   - PostgreSQL LSNs ("16/B374D848") as integers.
 *   - the lag of a replica in time, from LSNs: the primary's pg_current_wal_lsn() is sampled with
 *     the loop clock on every probe; a replica that has replayed up to L is late by the age of the
 *     oldest sample above L (WAL it has not applied existed since then), and not late at all when
 *     L reaches the newest sample. An idle primary, whose LSN does not move, therefore never makes
 *     a caught-up replica look late (now() - pg_last_xact_replay_timestamp() would). The estimate
 *     can be short by up to one probe interval (WAL written between two samples).
 *
 * Threading: the map is immutable after parsing and read by every thread; a lag tracker belongs to
 * one worker's thread.
 */
#ifndef LDG_DB_PGSHARD_H
#define LDG_DB_PGSHARD_H

#include "core/common.h"

#define LDG_PG_MAX_SHARDS 8   /* [pg_logs] plus [pg_logs.1] .. [pg_logs.7] */
#define LDG_PG_MAX_REPLICAS 8 /* [pg_logs_replica.1] .. [pg_logs_replica.8] */
#define LDG_PG_MAX_PINS 4096  /* entries of [pg_shards] projects */

struct ldg_pgshard_pin {
    int64_t project;
    int shard;
};

/* The project -> shard map. Owned by the config; immutable after ldg_pgshard_map_parse. */
struct ldg_pgshard_map {
    int nshards;                  /* >= 1 */
    struct ldg_pgshard_pin *pins; /* owned, sorted by project, no duplicates */
    size_t npins;
};

/* Parse "project:shard, project:shard, ..." (empty = no pins) for nshards shards into m (m->pins
 * owned by m afterwards; free with ldg_pgshard_map_free). Returns 0, or -EINVAL with `why` filled
 * (a malformed entry, a shard >= nshards, a project pinned twice, more than LDG_PG_MAX_PINS). */
int ldg_pgshard_map_parse(struct ldg_pgshard_map *m, const char *list, int nshards, char *why, size_t whylen);
void ldg_pgshard_map_free(struct ldg_pgshard_map *m);

/* The shard of project (a pin, or the jump hash). A map with one shard always answers 0. */
int ldg_pgshard_of(const struct ldg_pgshard_map *m, int64_t project);

/* "X/Y" (hex, as PostgreSQL prints a pg_lsn) -> (X << 32) | Y. Returns 0 or -EINVAL. */
int ldg_pgshard_lsn_parse(const char *s, uint64_t *out);

/* Samples of the primary's current LSN, newest last (a ring; bounded). */
#define LDG_PGLAG_SAMPLES 64
struct ldg_pglag {
    uint64_t at_ms[LDG_PGLAG_SAMPLES];
    uint64_t lsn[LDG_PGLAG_SAMPLES];
    size_t head, n; /* next slot, samples held */
};

/* Record that the primary's current LSN was `lsn` at `now_ms` (monotonic, non-decreasing). */
void ldg_pglag_note_primary(struct ldg_pglag *l, uint64_t now_ms, uint64_t lsn);

/* The replica has replayed up to `replayed`: how many ms behind it is at now_ms, 0 when it has
 * replayed everything the newest sample had. Returns -1 when no primary sample is known yet;
 * when every sample held is above `replayed`, the age of the oldest (a lower bound). */
int64_t ldg_pglag_estimate(const struct ldg_pglag *l, uint64_t now_ms, uint64_t replayed);

#endif
