/*
 * pgroute.h: which PostgreSQL pool a statement about logs goes to, per worker.
 *
 * Logs, spans, metric points, error groups and the aggregates are per project and live on the
 * project's logs shard: shard 0 is [pg_logs] (the worker's w->pg_logs pool), shard N is
 * [pg_logs.N]; the project -> shard map is db/pgshard.h. Writes (storage's COPY, maintenance,
 * updates) go to the shard's primary. Reads of the query and analytics roles may go to a
 * streaming replica of the shard ([pg_logs_replica.N]) while its measured lag is at most its
 * max_lag_ms; otherwise (lagging, unreachable, promoted, not measured yet) they go to the primary.
 * The auth database is never routed: it is [pg_auth] alone.
 *
 * Lag: every probe_interval_ms a worker that runs query or analytics reads the primary's
 * pg_current_wal_lsn() and then the replica's pg_is_in_recovery() and pg_last_wal_replay_lsn()
 * (db/pgshard.h turns them into a time). A probe has the pools' own deadlines; one at a time per
 * replica.
 *
 * With one shard and no replica (the default) this adds nothing: every call returns w->pg_logs.
 *
 * Threading: a route belongs to its worker's loop; every function runs on that thread. The
 * replica states read by /health/deep and /metrics of another worker are copied through relaxed
 * atomics (struct ldg_pgroute_replica_view).
 */
#ifndef LDG_DB_PGROUTE_H
#define LDG_DB_PGROUTE_H

#include "core/common.h"

struct ldg_worker;
struct ldg_pgpool;
struct ldg_pgroute;

/* Create the worker's route (w->pg_route): pools of shards 1.. and, with `probe`, of the replicas
 * and their lag probes. Opens nothing yet (pools connect on demand; the first probe runs after
 * one interval). Never NULL. */
struct ldg_pgroute *ldg_pgroute_new(struct ldg_worker *w, bool probe);

/* Close every pool and timer of the route; on_closed(ud) once all have closed and no probe is
 * in flight (a probe waiting on w->pg_logs ends when that pool closes). Call once. */
void ldg_pgroute_close(struct ldg_pgroute *r, void (*on_closed)(void *ud), void *ud);

int ldg_pgroute_nshards(const struct ldg_worker *w);
int ldg_pgroute_shard_of(const struct ldg_worker *w, int64_t project);

/* The primary pool of a shard / of a project's shard; NULL once the worker is closing. */
struct ldg_pgpool *ldg_pgroute_primary(struct ldg_worker *w, int shard);
struct ldg_pgpool *ldg_pgroute_project(struct ldg_worker *w, int64_t project);

/* For a read of a shard / of a project's shard: a fresh replica (round robin among them) or the
 * primary. NULL once the worker is closing. */
struct ldg_pgpool *ldg_pgroute_read_shard(struct ldg_worker *w, int shard);
struct ldg_pgpool *ldg_pgroute_read(struct ldg_worker *w, int64_t project);

/* A replica as last measured by worker `w` (any thread may call this with any worker: the
 * fields are atomics). lag_ms -1: not measured (no answer yet, unreachable, or not a replica). */
struct ldg_pgroute_replica_view {
    int number; /* N of [pg_logs_replica.N] */
    int shard;
    bool probed; /* this worker measures it (query or analytics runs here) */
    bool usable; /* reads go to it now */
    int64_t lag_ms;
    const char *state; /* static: "ok", "lagging", "unreachable", "not_replica", "unknown" */
};
int ldg_pgroute_nreplicas(const struct ldg_worker *w);
void ldg_pgroute_replica(const struct ldg_worker *w, int i, struct ldg_pgroute_replica_view *out);

/* Connection-level failures of the route's own pools (shards 1.., replicas), for /metrics. */
uint64_t ldg_pgroute_errors(const struct ldg_worker *w);

#endif

/* /health/deep: `SELECT 1` on every shard's primary and the replicas' last measured state, as
 * JSON members to put in the "services" object (starting with ','):
 *   ,"postgres_logs_shards":[{"shard":0,"status":"healthy","latency_ms":0.4}, ...]
 *   ,"postgres_logs_replicas":[{"replica":1,"shard":0,"status":"healthy","lag_ms":12,"in_use":true}, ...]
 * `ok` is false when a shard does not answer; a replica that lags or is down only says so (reads
 * then go to its primary) and does not make ok false. cb runs once, possibly from inside this call
 * (json owned by the callee, valid during cb). With one shard and no replica: cb(true, "", 0). */
typedef void (*ldg_pgroute_health_cb)(bool ok, const char *json, size_t len, void *ud);
void ldg_pgroute_health(struct ldg_worker *w, ldg_pgroute_health_cb cb, void *ud);

/* /metrics lines of the shards and replicas seen by worker w (Prometheus text, appended to out):
 * ledger_pg_shards, ledger_pg_shard_up{shard,worker}, ledger_pg_shard_errors_total{shard,worker}
 * (w's own pools), ledger_pg_replica_lag_ms{replica,shard}, ledger_pg_replica_in_use{replica,shard}.
 * Worker w's thread only. */
struct ldg_buf;
void ldg_pgroute_metrics(const struct ldg_worker *w, struct ldg_buf *out);
