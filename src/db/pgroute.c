/*
 * pgroute.c: shard and replica pools of one worker, and the replicas' lag probes (see pgroute.h).
 */
#include "db/pgroute.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pgpool.h"
#include "db/pgshard.h"
#include "settings.h"

enum rep_state { RS_UNKNOWN, RS_OK, RS_LAGGING, RS_UNREACHABLE, RS_NOT_REPLICA };
static const char *const rep_state_names[] = {"unknown", "ok", "lagging", "unreachable", "not_replica"};

struct replica {
    struct ldg_pgroute *r;
    int idx;
    const struct ldg_pg_replica_cfg *cfg; /* borrowed from the config */
    struct ldg_pgpool *pool;              /* owned */
    uv_timer_t timer;
    bool busy; /* a probe is in flight */
    _Atomic int64_t lag_ms;
    _Atomic bool usable;
    _Atomic int state; /* enum rep_state */
    int last_logged;   /* state last logged (changes are logged once) */
};

struct ldg_pgroute {
    struct ldg_worker *w;
    struct ldg_pgpool *shard[LDG_PG_MAX_SHARDS]; /* owned, [1..]; shard 0 is w->pg_logs */
    struct ldg_pglag lag[LDG_PG_MAX_SHARDS];     /* primary LSN samples per shard */
    struct replica rep[LDG_PG_MAX_REPLICAS];
    int nrep;
    bool probe;
    unsigned rr;
    bool closing;
    unsigned pending; /* closing: pools and timers still to close, probes still to call back */
    void (*on_closed)(void *ud);
    void *ud;
};

static const struct ldg_config *cfg_of(const struct ldg_worker *w)
{
    return w->cfg;
}

static void check_closed(struct ldg_pgroute *r)
{
    if (!r->closing || r->pending)
        return;
    void (*cb)(void *) = r->on_closed;
    void *ud = r->ud;
    free(r);
    if (cb)
        cb(ud);
}

static void set_state(struct replica *p, enum rep_state st, int64_t lag)
{
    atomic_store_explicit(&p->lag_ms, lag, memory_order_relaxed);
    atomic_store_explicit(&p->state, (int)st, memory_order_relaxed);
    atomic_store_explicit(&p->usable, st == RS_OK, memory_order_relaxed);
    if (p->last_logged == (int)st || p->r->w->id != 0)
        return;
    p->last_logged = (int)st;
    char ctx[48];
    snprintf(ctx, sizeof ctx, "pg=pg_logs_replica.%d shard=%lld", cfg_of(p->r->w)->pg_replica_number[p->idx],
             (long long)p->cfg->shard);
    if (st == RS_OK)
        ldg_log_info(ctx, "replica in use lag_ms=%" PRId64, lag);
    else
        ldg_log_warn(ctx, "replica skipped (reads go to the primary): %s lag_ms=%" PRId64,
                     rep_state_names[st], lag);
}

static void probe_done(struct replica *p)
{
    p->busy = false;
    p->r->pending--;
    check_closed(p->r);
}

static void on_replica_lsn(PGresult *res, void *ud)
{
    struct replica *p = ud;
    struct ldg_pgroute *r = p->r;
    if (r->closing) {
        probe_done(p);
        return;
    }
    uint64_t replayed;
    if (!res || PQntuples(res) != 1)
        set_state(p, RS_UNREACHABLE, -1);
    else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0 || PQgetisnull(res, 0, 1) ||
             ldg_pgshard_lsn_parse(PQgetvalue(res, 0, 1), &replayed) < 0)
        set_state(p, RS_NOT_REPLICA, -1);
    else {
        int64_t lag = ldg_pglag_estimate(&r->lag[p->cfg->shard], ldg_worker_now(r->w), replayed);
        set_state(p, lag < 0 ? RS_UNKNOWN : lag <= p->cfg->max_lag_ms ? RS_OK : RS_LAGGING, lag);
    }
    probe_done(p);
}

static void on_primary_lsn(PGresult *res, void *ud)
{
    struct replica *p = ud;
    struct ldg_pgroute *r = p->r;
    if (r->closing) {
        probe_done(p);
        return;
    }
    uint64_t lsn;
    if (res && PQntuples(res) == 1 && ldg_pgshard_lsn_parse(PQgetvalue(res, 0, 0), &lsn) == 0)
        ldg_pglag_note_primary(&r->lag[p->cfg->shard], ldg_worker_now(r->w), lsn);
    /* without a new sample the older ones still bound the lag */
    if (ldg_pgpool_query(p->pool, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text", 0, NULL,
                         on_replica_lsn, p) < 0) {
        set_state(p, RS_UNREACHABLE, -1);
        probe_done(p);
    }
}

static void on_probe_timer(uv_timer_t *t)
{
    struct replica *p = t->data;
    struct ldg_pgroute *r = p->r;
    if (p->busy || r->closing)
        return;
    struct ldg_pgpool *primary = ldg_pgroute_primary(r->w, (int)p->cfg->shard);
    if (!primary)
        return;
    p->busy = true;
    r->pending++;
    if (ldg_pgpool_query(primary, "SELECT pg_current_wal_lsn()::text", 0, NULL, on_primary_lsn, p) < 0)
        on_primary_lsn(NULL, p);
}

struct ldg_pgroute *ldg_pgroute_new(struct ldg_worker *w, bool probe)
{
    const struct ldg_config *c = w->cfg;
    struct ldg_pgroute *r = ldg_calloc(1, sizeof *r);
    r->w = w;
    r->probe = probe;
    char name[32];
    for (int i = 1; i < c->npg_shards; i++) {
        snprintf(name, sizeof name, "pg_logs.%d", i);
        r->shard[i] = ldg_pgpool_new(&w->loop, &c->pg_shard[i], c->pg_shard_password[i], name);
    }
    if (!probe)
        return r;
    r->nrep = c->npg_replicas;
    for (int i = 0; i < r->nrep; i++) {
        struct replica *p = &r->rep[i];
        p->r = r;
        p->idx = i;
        p->cfg = &c->pg_replica[i];
        p->last_logged = RS_UNKNOWN;
        atomic_store(&p->lag_ms, -1);
        snprintf(name, sizeof name, "pg_logs_replica.%d", c->pg_replica_number[i]);
        p->pool = ldg_pgpool_new(&w->loop, &p->cfg->pg, c->pg_replica_password[i], name);
        uv_timer_init(&w->loop, &p->timer);
        p->timer.data = p;
        uint64_t every = (uint64_t)p->cfg->probe_interval_ms;
        /* the first probe soon, so a replica is in use shortly after start */
        uv_timer_start(&p->timer, on_probe_timer, LDG_MIN(every, 100), every);
    }
    return r;
}

static void on_part_closed(void *ud)
{
    struct ldg_pgroute *r = ud;
    r->pending--;
    check_closed(r);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct replica *p = h->data;
    on_part_closed(p->r);
}

void ldg_pgroute_close(struct ldg_pgroute *r, void (*on_closed)(void *ud), void *ud)
{
    r->closing = true;
    r->on_closed = on_closed;
    r->ud = ud;
    r->pending++; /* held while starting the closes */
    for (int i = 0; i < r->nrep; i++) {
        struct replica *p = &r->rep[i];
        atomic_store(&p->usable, false);
        r->pending += 2;
        uv_close((uv_handle_t *)&p->timer, on_timer_closed);
        struct ldg_pgpool *pool = p->pool;
        p->pool = NULL;
        ldg_pgpool_close(pool, on_part_closed, r);
    }
    for (int i = 1; i < LDG_PG_MAX_SHARDS; i++)
        if (r->shard[i]) {
            struct ldg_pgpool *pool = r->shard[i];
            r->shard[i] = NULL;
            r->pending++;
            ldg_pgpool_close(pool, on_part_closed, r);
        }
    on_part_closed(r);
}

int ldg_pgroute_nshards(const struct ldg_worker *w)
{
    return w->cfg->npg_shards;
}

int ldg_pgroute_shard_of(const struct ldg_worker *w, int64_t project)
{
    return ldg_pgshard_of(&w->cfg->pg_shard_map, project);
}

struct ldg_pgpool *ldg_pgroute_primary(struct ldg_worker *w, int shard)
{
    if (shard == 0)
        return w->pg_logs;
    return (w->pg_route && shard > 0 && shard < LDG_PG_MAX_SHARDS) ? w->pg_route->shard[shard] : NULL;
}

struct ldg_pgpool *ldg_pgroute_project(struct ldg_worker *w, int64_t project)
{
    return ldg_pgroute_primary(w, ldg_pgroute_shard_of(w, project));
}

struct ldg_pgpool *ldg_pgroute_read_shard(struct ldg_worker *w, int shard)
{
    struct ldg_pgroute *r = w->pg_route;
    if (r && !r->closing && r->nrep) {
        for (int k = 0; k < r->nrep; k++) {
            struct replica *p = &r->rep[(r->rr + (unsigned)k) % (unsigned)r->nrep];
            if (p->cfg->shard == shard && p->pool && atomic_load_explicit(&p->usable, memory_order_relaxed)) {
                r->rr++;
                return p->pool;
            }
        }
    }
    return ldg_pgroute_primary(w, shard);
}

struct ldg_pgpool *ldg_pgroute_read(struct ldg_worker *w, int64_t project)
{
    return ldg_pgroute_read_shard(w, ldg_pgroute_shard_of(w, project));
}

int ldg_pgroute_nreplicas(const struct ldg_worker *w)
{
    return w->cfg->npg_replicas;
}

void ldg_pgroute_replica(const struct ldg_worker *w, int i, struct ldg_pgroute_replica_view *out)
{
    const struct ldg_config *c = w->cfg;
    const struct ldg_pgroute *r = w->pg_route;
    out->number = c->pg_replica_number[i];
    out->shard = (int)c->pg_replica[i].shard;
    out->probed = r && i < r->nrep;
    out->usable = false;
    out->lag_ms = -1;
    out->state = rep_state_names[RS_UNKNOWN];
    if (!out->probed)
        return;
    const struct replica *p = &r->rep[i];
    out->usable = atomic_load_explicit(&p->usable, memory_order_relaxed);
    out->lag_ms = atomic_load_explicit(&p->lag_ms, memory_order_relaxed);
    int st = atomic_load_explicit(&p->state, memory_order_relaxed);
    out->state = rep_state_names[st >= 0 && st <= RS_NOT_REPLICA ? st : RS_UNKNOWN];
}

uint64_t ldg_pgroute_errors(const struct ldg_worker *w)
{
    const struct ldg_pgroute *r = w->pg_route;
    uint64_t n = 0;
    if (!r)
        return 0;
    for (int i = 1; i < LDG_PG_MAX_SHARDS; i++)
        if (r->shard[i])
            n += ldg_pgpool_errors(r->shard[i]);
    for (int i = 0; i < r->nrep; i++)
        if (r->rep[i].pool)
            n += ldg_pgpool_errors(r->rep[i].pool);
    return n;
}

/* ---- /health/deep and /metrics ------------------------------------------------------------------ */

struct health {
    struct ldg_worker *w;
    ldg_pgroute_health_cb cb;
    void *ud;
    unsigned pending;
    uint64_t started_ns;
    bool ok[LDG_PG_MAX_SHARDS];
    uint64_t took_us[LDG_PG_MAX_SHARDS];
};

struct shard_ping {
    struct health *h;
    int shard;
};

static void health_finish(struct health *h)
{
    const struct ldg_config *c = h->w->cfg;
    struct ldg_buf b;
    ldg_buf_init(&b);
    bool all = true;
    ldg_buf_puts(&b, ",\"postgres_logs_shards\":[");
    for (int i = 0; i < c->npg_shards; i++) {
        all = all && h->ok[i];
        if (h->ok[i])
            ldg_buf_printf(&b, "%s{\"shard\":%d,\"status\":\"healthy\",\"latency_ms\":%.3f}", i ? "," : "", i,
                           (double)h->took_us[i] / 1000.0);
        else
            ldg_buf_printf(&b, "%s{\"shard\":%d,\"status\":\"unhealthy: query failed\"}", i ? "," : "", i);
    }
    ldg_buf_puts(&b, "],\"postgres_logs_replicas\":[");
    for (int i = 0; i < c->npg_replicas; i++) {
        struct ldg_pgroute_replica_view v;
        ldg_pgroute_replica(h->w, i, &v);
        const char *status = !v.probed  ? "not measured here (no query or analytics role)"
                             : v.usable ? "healthy"
                                        : v.state;
        ldg_buf_printf(&b, "%s{\"replica\":%d,\"shard\":%d,\"status\":\"%s\",\"lag_ms\":%lld,\"in_use\":%s}",
                       i ? "," : "", v.number, v.shard, status, (long long)v.lag_ms,
                       v.usable ? "true" : "false");
    }
    ldg_buf_puts(&b, "]");
    h->cb(all, ldg_buf_head(&b), ldg_buf_size(&b), h->ud);
    ldg_buf_free(&b);
    free(h);
}

static void on_shard_ping(PGresult *res, void *ud)
{
    struct shard_ping *p = ud;
    struct health *h = p->h;
    h->ok[p->shard] = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    h->took_us[p->shard] = (uv_hrtime() - h->started_ns) / 1000;
    free(p);
    if (--h->pending == 0)
        health_finish(h);
}

void ldg_pgroute_health(struct ldg_worker *w, ldg_pgroute_health_cb cb, void *ud)
{
    const struct ldg_config *c = w->cfg;
    if (c->npg_shards <= 1 && c->npg_replicas == 0) {
        cb(true, "", 0, ud);
        return;
    }
    struct health *h = ldg_calloc(1, sizeof *h);
    h->w = w;
    h->cb = cb;
    h->ud = ud;
    h->started_ns = uv_hrtime();
    h->pending = 1; /* held while starting */
    for (int i = 0; i < c->npg_shards; i++) {
        struct ldg_pgpool *pool = ldg_pgroute_primary(w, i);
        struct shard_ping *p = ldg_calloc(1, sizeof *p);
        p->h = h;
        p->shard = i;
        h->pending++;
        if (!pool || ldg_pgpool_query(pool, "SELECT 1", 0, NULL, on_shard_ping, p) < 0)
            on_shard_ping(NULL, p);
    }
    if (--h->pending == 0)
        health_finish(h);
}

void ldg_pgroute_metrics(const struct ldg_worker *w, struct ldg_buf *out)
{
    const struct ldg_config *c = w->cfg;
    ldg_buf_printf(out,
                   "# HELP ledger_pg_shards Logs shards configured ([pg_logs] and [pg_logs.N]).\n"
                   "# TYPE ledger_pg_shards gauge\nledger_pg_shards %d\n",
                   c->npg_shards);
    /* this worker's pools only: they belong to its thread (the answering worker is any worker) */
    ldg_buf_printf(
        out, "# HELP ledger_pg_shard_up 0 while the answering worker's pool of the shard's primary is down "
             "(its last connect failed).\n# TYPE ledger_pg_shard_up gauge\n");
    for (int i = 0; i < c->npg_shards; i++) {
        const struct ldg_pgpool *pool = i == 0 ? w->pg_logs : w->pg_route ? w->pg_route->shard[i] : NULL;
        struct ldg_pgpool_stats st = {0};
        if (pool)
            ldg_pgpool_stats(pool, &st);
        ldg_buf_printf(out, "ledger_pg_shard_up{shard=\"%d\",worker=\"%u\"} %d\n", i, w->id,
                       pool && !st.down);
    }
    ldg_buf_printf(
        out, "# HELP ledger_pg_shard_errors_total Connection failures of the answering worker's pool of "
             "the shard's primary.\n# TYPE ledger_pg_shard_errors_total counter\n");
    for (int i = 0; i < c->npg_shards; i++) {
        const struct ldg_pgpool *pool = i == 0 ? w->pg_logs : w->pg_route ? w->pg_route->shard[i] : NULL;
        ldg_buf_printf(out, "ledger_pg_shard_errors_total{shard=\"%d\",worker=\"%u\"} %llu\n", i, w->id,
                       (unsigned long long)(pool ? ldg_pgpool_errors(pool) : 0));
    }
    if (c->npg_replicas == 0)
        return;
    ldg_buf_puts(out, "# HELP ledger_pg_replica_lag_ms Measured lag of a logs replica behind its primary "
                      "(-1: not measured).\n# TYPE ledger_pg_replica_lag_ms gauge\n");
    struct ldg_pgroute_replica_view v;
    for (int i = 0; i < c->npg_replicas; i++) {
        ldg_pgroute_replica(w, i, &v);
        ldg_buf_printf(out, "ledger_pg_replica_lag_ms{replica=\"%d\",shard=\"%d\"} %lld\n", v.number, v.shard,
                       (long long)v.lag_ms);
    }
    ldg_buf_puts(out, "# HELP ledger_pg_replica_in_use 1 while reads go to the replica.\n"
                      "# TYPE ledger_pg_replica_in_use gauge\n");
    for (int i = 0; i < c->npg_replicas; i++) {
        ldg_pgroute_replica(w, i, &v);
        ldg_buf_printf(out, "ledger_pg_replica_in_use{replica=\"%d\",shard=\"%d\"} %d\n", v.number, v.shard,
                       v.usable ? 1 : 0);
    }
}
