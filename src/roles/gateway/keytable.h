/*
 * keytable.h: the per-loop API-key cache of the gateway: digest -> what a validation returned,
 * bounded (LRU eviction), with positive and negative entries.
 *
 * Pure bookkeeping: the caller supplies the clocks. `loop_ms` is the loop's monotonic clock (when
 * this loop last confirmed the entry: drives freshness); `validated_wall_ms` is the wall-clock
 * time PostgreSQL last said the key is valid, possibly in another process (drives the stale
 * window used while the auth database is unreachable).
 *
 * Threading: one table per loop; not thread-safe.
 */
#ifndef LDG_GATEWAY_KEYTABLE_H
#define LDG_GATEWAY_KEYTABLE_H

#include "auth/apikey.h"
#include "core/common.h"
#include "core/list.h"

struct ldg_keyentry {
    char digest[LDG_SHA256_HEX_LEN + 1];
    bool negative; /* no such active key */
    int64_t key_id, project_id, account_id;
    int64_t rate_limit_per_minute, rate_limit_per_hour, daily_quota;
    int64_t retention_days;     /* the project's; ingest refuses logs older than that */
    uint64_t validated_wall_ms; /* positive: when PostgreSQL last confirmed it */
    uint64_t confirmed_ms;      /* loop clock: when this loop last confirmed it (PG or Redis) */
    uint32_t gen;               /* invalidation generation at confirmation */
    uint64_t last_used_ms;      /* loop clock: last last_used_at write attempt (0 = never) */
    struct ldg_list_node lru;   /* private */
    struct ldg_keyentry *next;  /* private: bucket chain */
};

struct ldg_keytable {
    struct ldg_keyentry **buckets; /* private */
    size_t nbuckets, count, cap;
    struct ldg_list lru; /* front = most recently used */
};

/* cap >= 1 entries. */
void ldg_keytable_init(struct ldg_keytable *t, size_t cap);
void ldg_keytable_free(struct ldg_keytable *t);

/* Entry for a digest (64 hex chars) or NULL; a hit becomes most recently used. */
struct ldg_keyentry *ldg_keytable_get(struct ldg_keytable *t, const char *digest);

/* Insert or overwrite the entry for e->digest with a copy of *e (list/chain fields ignored);
 * evicts the least recently used entry when full. Returns the stored entry (borrowed). */
struct ldg_keyentry *ldg_keytable_put(struct ldg_keytable *t, const struct ldg_keyentry *e);

/* Remove a digest; returns true if it was present. */
bool ldg_keytable_del(struct ldg_keytable *t, const char *digest);

#endif
