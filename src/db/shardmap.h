/*
 * shardmap.h: which shard holds a project. Pure (no I/O), used for the Redis shards.
 *
 * A project goes to the shard given by an explicit override ([redis] project_shards), else to
 * jump_consistent_hash(project_id, n) (Lamping and Veach): with n shards each holds about 1/n of
 * the projects, and growing from n to n+1 shards moves only about 1/(n+1) of them, all to the new
 * shard. With one shard every project is on shard 0 and nothing is computed.
 *
 * Threading: built on the main thread while the config loads, then immutable and read by any
 * thread.
 */
#ifndef LDG_DB_SHARDMAP_H
#define LDG_DB_SHARDMAP_H

#include "core/common.h"

#define LDG_SHARDS_MAX 16

struct ldg_shardmap_override {
    int64_t project_id;
    unsigned shard;
};

struct ldg_shardmap {
    unsigned n;                              /* shards, 1..LDG_SHARDS_MAX */
    size_t noverrides;                       /* sorted by project_id */
    struct ldg_shardmap_override *overrides; /* owned */
};

/* The jump consistent hash of key over `buckets` (>= 1) buckets: a value in [0, buckets). */
int32_t ldg_shardmap_jump(uint64_t key, int32_t buckets);

/* Build a map of n shards (1..LDG_SHARDS_MAX) with the overrides of `spec` (NULL or "" = none):
 * comma-separated `project_id:shard` pairs, whitespace around items ignored. Returns 0, or
 * -EINVAL with a message in err (a bad pair, a shard >= n, a project listed twice). */
int ldg_shardmap_init(struct ldg_shardmap *m, unsigned n, const char *spec, char *err,
                      size_t cap) LDG_MUSTCHECK;

/* The shard of a project. */
unsigned ldg_shardmap_of(const struct ldg_shardmap *m, int64_t project_id);

void ldg_shardmap_free(struct ldg_shardmap *m);

#endif
