#include "http/admin.h"

#include <netinet/in.h>
#include <hiredis/hiredis.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/worker.h"
#include "db/pgpool.h"
#include "db/pgroute.h"
#include "db/redis.h"
#include "http/conn.h"
#include "http/proxy.h"
#include "http/request.h"
#include "roles/ingest/ingest.h"
#include "roles/storage/storage.h"
#include "server.h"

static void on_health(struct ldg_req *req)
{
    static const char body[] = "{\"status\":\"healthy\"}";
    ldg_req_json(req, 200, body, sizeof body - 1);
}

/* ---- /health/deep ---------------------------------------------------------------------------- */

/* Checks: PING of every Redis shard, SELECT 1 on both pools, and (where ingest or storage runs)
 * the queue of every shard. "redis" and "queue" in "services" are shard 0 and the whole queue
 * (sums, the oldest age, the fewest consumers); "redis_shards" (beside "services") lists each
 * shard with its own queue. The PostgreSQL logs shards and replicas (db/pgroute.h) add their
 * members to "services" when there are any. */
enum { CHECK_PG_AUTH, CHECK_PG_LOGS, NPG };
static const char *const pg_names[NPG] = {"postgres_auth", "postgres_logs"};

/* The ingest queue, in one round trip: its length, the age of its oldest entry (the storage role
 * deletes entries once stored, so the oldest entry is the oldest log accepted but not stored) by
 * Redis's own clock, and the consumers of the storage group (-1: no such group). */
static const char queue_lua[] =
    "local n = redis.call('XLEN', KEYS[1])\n"
    "if n == 0 then return {0, 0, -2} end\n"
    "local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)\n"
    "local t = redis.call('TIME')\n"
    "local age = 0\n"
    "if #e > 0 then\n"
    "  local ms = tonumber(string.match(e[1][1], '^(%d+)'))\n"
    "  age = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - ms\n"
    "  if age < 0 then age = 0 end\n"
    "end\n"
    "local consumers = -1\n"
    "local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])\n"
    "if ok then\n"
    "  for _, g in ipairs(groups) do\n"
    "    local name, c\n"
    "    for i = 1, #g, 2 do\n"
    "      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'consumers' then c = g[i + 1] end\n"
    "    end\n"
    "    if name == ARGV[1] then consumers = c end\n"
    "  end\n"
    "end\n"
    "return {n, age, consumers}\n";

struct deep;

/* One check's outcome. */
struct probe {
    struct deep *d;
    bool ok;
    const char *why; /* static text; never server error strings */
    uint64_t took_us;
    long long queued, oldest_age_ms, consumers; /* queue probes */
};

struct deep {
    struct ldg_req *req; /* reference held until every check answered */
    unsigned pending;
    unsigned nshards;
    bool queue; /* the queue is checked only where ingest or storage runs */
    uint64_t started_ns;
    struct probe pg[NPG];
    struct probe ping[LDG_SHARDS_MAX];
    struct probe q[LDG_SHARDS_MAX];
    struct probe pg_shards; /* the logs shards and replicas beyond [pg_logs] */
    char *shards_json;      /* owned: members from ldg_pgroute_health */
};

static void put_ping(struct ldg_buf *b, const struct probe *p)
{
    if (p->ok)
        ldg_buf_printf(b, "\"status\":\"healthy\",\"latency_ms\":%.3f", (double)p->took_us / 1000.0);
    else
        ldg_buf_printf(b, "\"status\":\"unhealthy: %s\"", p->why);
}

static void put_queue(struct ldg_buf *b, bool ok, const char *why, long long queued, long long age,
                      long long consumers, long long max_age)
{
    ldg_buf_printf(b, "{\"status\":\"%s%s\",\"queued\":%lld,\"oldest_age_ms\":%lld",
                   ok ? "healthy" : "unhealthy: ", ok ? "" : why, queued < 0 ? 0 : queued, age);
    if (consumers >= -1)
        ldg_buf_printf(b, ",\"consumers\":%lld", consumers < 0 ? 0 : consumers);
    ldg_buf_printf(b, ",\"max_age_ms\":%lld}", max_age);
}

static void deep_finish(struct deep *d)
{
    struct ldg_req *req = d->req;
    long long max_age = (long long)req->w->cfg->server.health_queue_max_age_ms;
    bool all = d->pg[0].ok && d->pg[1].ok && d->pg_shards.ok;
    /* the whole queue: every shard's entries, the oldest of them, the fewest consumers */
    bool qok = true;
    const char *qwhy = NULL;
    long long queued = 0, age = 0, consumers = -2;
    for (unsigned i = 0; i < d->nshards; i++) {
        all = all && d->ping[i].ok;
        if (!d->queue)
            continue;
        const struct probe *q = &d->q[i];
        if (!q->ok && qok) {
            qok = false;
            qwhy = q->why;
        }
        queued += q->queued > 0 ? q->queued : 0;
        age = LDG_MAX(age, q->oldest_age_ms);
        if (q->consumers >= -1 && (consumers < -1 || q->consumers < consumers))
            consumers = q->consumers;
    }
    all = all && qok;
    struct ldg_buf b;
    ldg_buf_init(&b);
    ldg_buf_printf(&b, "{\"status\":\"%s\",\"services\":{\"redis\":{", all ? "healthy" : "degraded");
    put_ping(&b, &d->ping[0]);
    for (int i = 0; i < NPG; i++) {
        ldg_buf_printf(&b, "},\"%s\":{", pg_names[i]);
        put_ping(&b, &d->pg[i]);
    }
    ldg_buf_puts(&b, "}");
    ldg_buf_puts(&b, d->shards_json ? d->shards_json : "");
    if (d->queue) {
        ldg_buf_puts(&b, ",\"queue\":");
        put_queue(&b, qok, qwhy, queued, age, consumers, max_age);
    }
    ldg_buf_puts(&b, "},\"redis_shards\":[");
    for (unsigned i = 0; i < d->nshards; i++) {
        ldg_buf_printf(&b, "%s{\"shard\":%u,", i ? "," : "", i);
        put_ping(&b, &d->ping[i]);
        if (d->queue) {
            const struct probe *q = &d->q[i];
            ldg_buf_puts(&b, ",\"queue\":");
            put_queue(&b, q->ok, q->why, q->queued, q->oldest_age_ms, q->consumers, max_age);
        }
        ldg_buf_puts(&b, "}");
    }
    ldg_buf_puts(&b, "],\"roles\":{");
    size_t mark = ldg_buf_size(&b);
    struct ldg_worker *w = req->w;
    for (size_t i = 0; i < ldg_roles_count; i++) {
        if (!w->cfg->roles.enabled[i])
            continue;
        ldg_buf_printf(&b, "%s\"%s\":", ldg_buf_size(&b) == mark ? "" : ",", ldg_roles[i]->name);
        if (w->role_started[i] && ldg_roles[i]->health)
            ldg_roles[i]->health(w, w->role_state[i], &b);
        else
            ldg_buf_printf(&b, "{\"status\":\"%s\"}", w->role_started[i] ? "running" : "stopped");
    }
    ldg_buf_puts(&b, "},\"node\":\"");
    ldg_buf_json_escape(&b, w->cfg->node.name, strlen(w->cfg->node.name));
    ldg_buf_printf(&b, "\",\"worker\":%u}", w->id);
    ldg_req_json(req, all ? 200 : 503, ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
    ldg_req_unref(req);
    free(d->shards_json);
    free(d);
}

static void probe_done(struct probe *p, bool ok, const char *why)
{
    struct deep *d = p->d;
    p->ok = ok;
    p->why = why;
    p->took_us = (uv_hrtime() - d->started_ns) / 1000;
    if (--d->pending == 0)
        deep_finish(d);
}

static void on_redis_ping(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    bool ok = reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
    probe_done(ud, ok, reply ? "unexpected reply" : "no reply");
}

static bool pg_ok(const PGresult *res)
{
    return res && PQresultStatus(res) == PGRES_TUPLES_OK;
}

static void on_queue(struct ldg_redis *r, struct redisReply *reply, void *ud)
{
    struct probe *p = ud;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_INTEGER) {
        probe_done(p, false, reply ? "unexpected reply" : "no reply");
        return;
    }
    p->queued = reply->element[0]->integer;
    p->oldest_age_ms = reply->element[1]->integer;
    p->consumers = reply->element[2]->integer;
    int64_t bound = p->d->req->w->cfg->server.health_queue_max_age_ms;
    if (p->queued > 0 && p->consumers <= 0)
        probe_done(p, false, "no consumer");
    else if (p->queued > 0 && p->oldest_age_ms > bound)
        probe_done(p, false, "logs not consumed in time");
    else
        probe_done(p, true, NULL);
}

static void on_pg(PGresult *res, void *ud)
{
    probe_done(ud, pg_ok(res), "query failed");
}

static void on_pg_shards(bool ok, const char *json, size_t len, void *ud)
{
    struct deep *d = ud;
    d->shards_json = ldg_strndup(json, len);
    probe_done(&d->pg_shards, ok, "a logs shard does not answer");
}

static void on_health_deep(struct ldg_req *req)
{
    struct ldg_worker *w = req->w;
    struct deep *d = ldg_calloc(1, sizeof *d);
    d->req = req;
    d->started_ns = uv_hrtime();
    d->nshards = w->nredis;
    const struct ldg_config *c = w->cfg;
    int ii = ldg_role_index("ingest"), si = ldg_role_index("storage");
    d->queue = ii >= 0 && si >= 0 && (c->roles.enabled[ii] || c->roles.enabled[si]);
    for (int i = 0; i < NPG; i++)
        d->pg[i].d = d;
    for (unsigned i = 0; i < LDG_SHARDS_MAX; i++) {
        d->ping[i].d = d->q[i].d = d;
        d->q[i].queued = -1;
        d->q[i].consumers = -2;
    }
    d->pg_shards.d = d;
    /* +1 held while starting (synchronous failures) */
    d->pending = NPG + 1 + d->nshards * (d->queue ? 2 : 1) + 1;
    ldg_req_ref(req);
    for (unsigned i = 0; i < d->nshards; i++) {
        struct ldg_redis *r = w->redis_shard[i];
        if (!r || ldg_redis_command(r, on_redis_ping, &d->ping[i], "PING") < 0)
            probe_done(&d->ping[i], false, "not connected");
        if (d->queue) {
            const struct ldg_ingest_cfg *ic = c->role_cfg[ii];
            const struct ldg_storage_cfg *sc = c->role_cfg[si];
            const char *argv[] = {"EVAL", queue_lua, "1", ic->stream, sc->group};
            if (!r || ldg_redis_commandargv(r, on_queue, &d->q[i], 5, argv, NULL) < 0)
                probe_done(&d->q[i], false, "not connected");
        }
    }
    if (!w->pg_auth || ldg_pgpool_query(w->pg_auth, "SELECT 1", 0, NULL, on_pg, &d->pg[CHECK_PG_AUTH]) < 0)
        probe_done(&d->pg[CHECK_PG_AUTH], false, "not connected");
    if (!w->pg_logs || ldg_pgpool_query(w->pg_logs, "SELECT 1", 0, NULL, on_pg, &d->pg[CHECK_PG_LOGS]) < 0)
        probe_done(&d->pg[CHECK_PG_LOGS], false, "not connected");
    ldg_pgroute_health(w, on_pg_shards, d);
    if (--d->pending == 0)
        deep_finish(d);
}

/* ---- /metrics -------------------------------------------------------------------------------- */

/* The client (behind trusted proxies: the forwarded one, so a proxy on loopback does not make
 * /metrics public) is a loopback address. */
static bool peer_is_loopback(struct ldg_req *req)
{
    char addr[LDG_ADDR_MAX];
    ldg_req_peer_addr(req, addr, sizeof addr);
    return addr[0] && ldg_proxy_trusted("127.0.0.0/8, ::1", addr, strlen(addr));
    return false;
}

static bool token_ok(struct ldg_req *req)
{
    const char *tok = req->w->cfg->metrics_token;
    struct ldg_str h = ldg_req_header(req, "authorization");
    if (!tok || !*tok || h.n < 7 || strncasecmp(h.p, "Bearer ", 7) != 0)
        return false;
    size_t n = strlen(tok);
    return h.n - 7 == n && CRYPTO_memcmp(h.p + 7, tok, n) == 0;
}

static void metric_head(struct ldg_buf *b, const char *name, const char *type, const char *help)
{
    ldg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void per_worker(struct ldg_buf *b, const struct ldg_server *srv, const char *name, const char *type,
                       const char *help, size_t field_off)
{
    metric_head(b, name, type, help);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const _Atomic uint64_t *v =
            (const _Atomic uint64_t *)((const char *)&srv->workers[i].stats + field_off);
        ldg_buf_printf(b, "%s{worker=\"%u\"} %llu\n", name, i, (unsigned long long)ldg_stat_get(v));
    }
}

static uint64_t sum_stat(const struct ldg_server *srv, size_t field_off)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        v += ldg_stat_get((const _Atomic uint64_t *)((const char *)&srv->workers[i].stats + field_off));
    return v;
}

/* The storage role's outcomes (summed over workers) and the queue as the worker that samples it
 * last saw it (docs/ingest.md "Metrics"). */
static void storage_metrics(struct ldg_buf *b, const struct ldg_server *srv)
{
#define SUM(field) sum_stat(srv, offsetof(struct ldg_stats, field))
    metric_head(b, "ledger_storage_logs_total", "counter",
                "Logs of acknowledged batches by outcome: stored, duplicate (already stored: a "
                "redelivery), dead_lettered.");
    ldg_buf_printf(b, "ledger_storage_logs_total{outcome=\"stored\"} %llu\n",
                   (unsigned long long)SUM(store_stored));
    ldg_buf_printf(b, "ledger_storage_logs_total{outcome=\"duplicate\"} %llu\n",
                   (unsigned long long)SUM(store_duplicates));
    ldg_buf_printf(b, "ledger_storage_logs_total{outcome=\"dead_lettered\"} %llu\n",
                   (unsigned long long)SUM(store_dead));
    metric_head(
        b, "ledger_storage_redelivered_logs_total", "counter",
        "Logs of batches delivered before (own pending list after a restart or lost reply, claimed).");
    ldg_buf_printf(b, "ledger_storage_redelivered_logs_total %llu\n",
                   (unsigned long long)SUM(store_redelivered));
    metric_head(b, "ledger_storage_conflicts_total", "counter",
                "COPYs refused by the queue-id key (rows committed by another transaction), then looked up.");
    ldg_buf_printf(b, "ledger_storage_conflicts_total %llu\n", (unsigned long long)SUM(store_conflicts));
    metric_head(b, "ledger_storage_failures_total", "counter", "Failed batch attempts (retried).");
    ldg_buf_printf(b, "ledger_storage_failures_total %llu\n", (unsigned long long)SUM(store_failures));
    metric_head(
        b, "ledger_queue_reconciles_total", "counter",
        "Runs of the queue counters' reconciler per Redis shard: checked, or skipped (stream too large).");
    ldg_buf_printf(b, "ledger_queue_reconciles_total{outcome=\"checked\"} %llu\n",
                   (unsigned long long)SUM(queue_reconciles));
    ldg_buf_printf(b, "ledger_queue_reconciles_total{outcome=\"skipped\"} %llu\n",
                   (unsigned long long)SUM(queue_reconcile_skips));
    metric_head(b, "ledger_queue_counter_repairs_total", "counter",
                "Per-project queue counters the reconciler found wrong and set to what the stream holds.");
    ldg_buf_printf(b, "ledger_queue_counter_repairs_total{counter=\"depth\"} %llu\n",
                   (unsigned long long)SUM(queue_repairs_depth));
    ldg_buf_printf(b, "ledger_queue_counter_repairs_total{counter=\"bytes\"} %llu\n",
                   (unsigned long long)SUM(queue_repairs_bytes));
#undef SUM
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const struct ldg_stats *s = &srv->workers[i].stats;
        if (!ldg_stat_get(&s->queue_sampled))
            continue;
        unsigned n = srv->workers[i].cfg->nredis;
        metric_head(
            b, "ledger_queue_entries", "gauge",
            "Entries in the ingest stream of each Redis shard: queued, not yet stored (one entry holds "
            "one or more logs).");
        for (unsigned k = 0; k < n; k++)
            ldg_buf_printf(b, "ledger_queue_entries{shard=\"%u\"} %llu\n", k,
                           (unsigned long long)ldg_stat_get(&s->queue_entries[k]));
        metric_head(b, "ledger_queue_pending_entries", "gauge",
                    "Entries delivered to a storage consumer and not acknowledged yet, by Redis shard.");
        for (unsigned k = 0; k < n; k++)
            ldg_buf_printf(b, "ledger_queue_pending_entries{shard=\"%u\"} %llu\n", k,
                           (unsigned long long)ldg_stat_get(&s->queue_pending[k]));
        metric_head(b, "ledger_queue_oldest_pending_age_seconds", "gauge",
                    "Age of the oldest pending entry (0 when none), by Redis shard.");
        for (unsigned k = 0; k < n; k++)
            ldg_buf_printf(b, "ledger_queue_oldest_pending_age_seconds{shard=\"%u\"} %.3f\n", k,
                           (double)ldg_stat_get(&s->queue_oldest_pending_ms[k]) / 1000.0);
        break;
    }
}

/* Redis errors per worker and shard: the worker's command connection to that shard (the storage
 * consumers' own connections count in ledger_storage_failures_total). */
static void redis_metrics(struct ldg_buf *b, const struct ldg_server *srv)
{
    metric_head(b, "ledger_redis_errors_total", "counter",
                "Redis command failures, timeouts and connection failures, by Redis shard.");
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const struct ldg_worker *w = &srv->workers[i];
        for (unsigned s = 0; s < w->cfg->nredis; s++)
            ldg_buf_printf(b, "ledger_redis_errors_total{worker=\"%u\",shard=\"%u\"} %llu\n", i, s,
                           (unsigned long long)ldg_stat_get(&w->stats.redis_shard_errors[s]));
    }
}

/* The search index backlog as the analytics role's worker 0 last sampled it (docs/query.md
 * "Capacity"). */
static void index_metrics(struct ldg_buf *b, const struct ldg_server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const struct ldg_stats *s = &srv->workers[i].stats;
        if (!ldg_stat_get(&s->index_sampled))
            continue;
        metric_head(
            b, "ledger_search_unindexed_rows", "gauge",
            "Logs in leaves without their search indexes (the open leaf included): what searches scan.");
        ldg_buf_printf(b, "ledger_search_unindexed_rows %llu\n",
                       (unsigned long long)ldg_stat_get(&s->index_unindexed_rows));
        metric_head(b, "ledger_search_unindexed_leaves", "gauge",
                    "Leaves holding logs without their search indexes.");
        ldg_buf_printf(b, "ledger_search_unindexed_leaves %llu\n",
                       (unsigned long long)ldg_stat_get(&s->index_unindexed_leaves));
        metric_head(b, "ledger_search_oldest_unindexed_age_seconds", "gauge",
                    "Age of the start of the oldest leaf without its search indexes.");
        ldg_buf_printf(b, "ledger_search_oldest_unindexed_age_seconds %.3f\n",
                       (double)ldg_stat_get(&s->index_oldest_unindexed_ms) / 1000.0);
        metric_head(b, "ledger_search_index_backlog_rows", "gauge",
                    "Logs in closed leaves whose search indexes are due but not built yet.");
        ldg_buf_printf(b, "ledger_search_index_backlog_rows %llu\n",
                       (unsigned long long)ldg_stat_get(&s->index_backlog_rows));
        metric_head(b, "ledger_search_index_backlog_leaves", "gauge",
                    "Closed leaves whose search indexes are due but not built yet.");
        ldg_buf_printf(b, "ledger_search_index_backlog_leaves %llu\n",
                       (unsigned long long)ldg_stat_get(&s->index_backlog_leaves));
        metric_head(b, "ledger_search_index_backlog_age_seconds", "gauge",
                    "How long the oldest of those leaves has been due (0 when none).");
        ldg_buf_printf(b, "ledger_search_index_backlog_age_seconds %.3f\n",
                       (double)ldg_stat_get(&s->index_backlog_age_ms) / 1000.0);
        break;
    }
}

static void on_metrics(struct ldg_req *req)
{
    if (!peer_is_loopback(req) && !token_ok(req)) {
        ldg_req_error(req, 403, "Metrics are only served to loopback clients or with the metrics token");
        return;
    }
    const struct ldg_server *srv = req->w->srv;
    const struct ldg_router *r = srv->router;
    static const char *const classes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    struct ldg_buf b;
    ldg_buf_init(&b);

    metric_head(&b, "ledger_build_info", "gauge", "Build information.");
    ldg_buf_printf(&b, "ledger_build_info{version=\"%s\"} 1\n", LDG_VERSION);
    metric_head(&b, "ledger_node_info", "gauge",
                "This process's [node] name and its number of Redis shards.");
    ldg_buf_puts(&b, "ledger_node_info{node=\"");
    ldg_buf_json_escape(&b, req->w->cfg->node.name, strlen(req->w->cfg->node.name));
    ldg_buf_printf(&b, "\",redis_shards=\"%u\"} 1\n", req->w->cfg->nredis);
    metric_head(&b, "ledger_process_start_time_seconds", "gauge",
                "Start time of the process (Unix seconds).");
    ldg_buf_printf(&b, "ledger_process_start_time_seconds %llu\n", (unsigned long long)srv->started_unix);

    metric_head(&b, "ledger_http_requests_total", "counter",
                "HTTP requests answered, by route and status class.");
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const struct ldg_stats *s = &srv->workers[i].stats;
        for (size_t rt = 0; rt <= s->nroutes; rt++) {
            const struct ldg_route *route = rt < s->nroutes ? ldg_router_at(r, rt) : NULL;
            for (int c = 0; c < 5; c++) {
                uint64_t v = ldg_stat_get(&s->by_route[rt * 5 + (size_t)c]);
                if (!v)
                    continue;
                ldg_buf_printf(
                    &b,
                    "ledger_http_requests_total{worker=\"%u\",method=\"%s\",route=\"%s\",code=\"%s\"} %llu\n",
                    i, route ? llhttp_method_name((llhttp_method_t)route->method) : "",
                    route ? route->name : "unmatched", classes[c], (unsigned long long)v);
            }
        }
    }
    metric_head(&b, "ledger_http_request_duration_seconds", "histogram",
                "Time from a request's first byte to its response being queued.");
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const struct ldg_stats *s = &srv->workers[i].stats;
        uint64_t cum = 0;
        for (int k = 0; k <= LDG_STATS_LAT_BUCKETS; k++) {
            cum += ldg_stat_get(&s->lat[k]);
            if (k < LDG_STATS_LAT_BUCKETS)
                ldg_buf_printf(&b,
                               "ledger_http_request_duration_seconds_bucket{worker=\"%u\",le=\"%g\"} %llu\n",
                               i, (double)ldg_stats_lat_bounds_us[k] / 1e6, (unsigned long long)cum);
            else
                ldg_buf_printf(
                    &b, "ledger_http_request_duration_seconds_bucket{worker=\"%u\",le=\"+Inf\"} %llu\n", i,
                    (unsigned long long)cum);
        }
        ldg_buf_printf(&b, "ledger_http_request_duration_seconds_sum{worker=\"%u\"} %.6f\n", i,
                       (double)ldg_stat_get(&s->lat_sum_us) / 1e6);
        ldg_buf_printf(&b, "ledger_http_request_duration_seconds_count{worker=\"%u\"} %llu\n", i,
                       (unsigned long long)cum);
    }
#define W(name, type, help, field) per_worker(&b, srv, name, type, help, offsetof(struct ldg_stats, field))
    W("ledger_http_connections_open", "gauge", "Open client connections.", conns_open);
    W("ledger_http_connections_accepted_total", "counter", "Client connections accepted.", conns_accepted);
    W("ledger_http_connections_rejected_total", "counter", "Connections closed at accept (max_connections).",
      conns_rejected);
    W("ledger_http_timeouts_total", "counter", "Connections or requests cut by a deadline.", timeouts);
    W("ledger_http_received_bytes_total", "counter", "Bytes read from clients.", bytes_in);
    W("ledger_http_sent_bytes_total", "counter", "Bytes of responses queued to clients.", bytes_out);
    W("ledger_postgres_errors_total", "counter", "PostgreSQL query and connection failures.", pg_errors);
#undef W
    redis_metrics(&b, srv);
    storage_metrics(&b, srv);
    ldg_pgroute_metrics(req->w, &b);
    index_metrics(&b, srv);
    ldg_req_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", ldg_buf_head(&b), ldg_buf_size(&b));
    ldg_buf_free(&b);
}

/* ---- /_debug/sleep (tests only: [server] debug_endpoints = on) ------------------------------ */

struct sleeper {
    uv_timer_t timer; /* freed in on_sleeper_closed */
    struct ldg_req *req;
    uint64_t due_ms; /* loop time at which to answer */
};

/* The sleep advances in ticks so that it ends as soon as the connection has dropped the request
 * (request_timeout_ms answered 503, the client went away, a drain deadline closed it): nobody
 * waits for the answer any more, and a pending timer would keep the worker's loop, and so a
 * stopping process, alive for the rest of the delay. */
#define SLEEP_TICK_MS 50

static void on_sleeper_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_sleep_tick(uv_timer_t *t)
{
    struct sleeper *s = t->data;
    uint64_t now = uv_now(t->loop);
    if (s->req->conn && now < s->due_ms) {
        uv_timer_start(&s->timer, on_sleep_tick, LDG_MIN(s->due_ms - now, (uint64_t)SLEEP_TICK_MS), 0);
        return;
    }
    static const char body[] = "{\"slept\":true}";
    ldg_req_json(s->req, 200, body, sizeof body - 1); /* a no-op if the request was dropped */
    ldg_req_unref(s->req);
    uv_close((uv_handle_t *)&s->timer, on_sleeper_closed);
}

static void on_debug_sleep(struct ldg_req *req)
{
    struct ldg_str v;
    long ms = 0;
    if (ldg_req_query(req, "ms", &v))
        ms = strtol(v.p, NULL, 10);
    if (ms < 0 || ms > 60000) {
        ldg_req_error(req, 400, "ms must be between 0 and 60000");
        return;
    }
    struct sleeper *s = ldg_calloc(1, sizeof *s);
    s->req = req;
    ldg_req_ref(req);
    uv_timer_init(&req->w->loop, &s->timer);
    s->timer.data = s;
    s->due_ms = uv_now(&req->w->loop) + (uint64_t)ms;
    uv_timer_start(&s->timer, on_sleep_tick, LDG_MIN((uint64_t)ms, (uint64_t)SLEEP_TICK_MS), 0);
}

/* ---- /api/v1/_debug/quota-probe (tests only) -------------------------------------------------
 * An authenticated route flagged LDG_ROUTE_QUOTA that does nothing: it lets tests see the
 * gateway's daily-quota check on its own, independently of any ingest route. */
static void on_debug_quota_probe(struct ldg_req *req)
{
    ldg_req_respond(req, 204, NULL, NULL, 0);
}

int ldg_admin_routes(struct ldg_router *r, bool debug)
{
    const struct ldg_route_opts pub = {.flags = LDG_ROUTE_PUBLIC};
    int rc = ldg_router_add(r, "GET", "/health", on_health, &pub);
    if (rc == 0)
        rc = ldg_router_add(r, "GET", "/health/deep", on_health_deep, &pub);
    if (rc == 0)
        rc = ldg_router_add(r, "GET", "/metrics", on_metrics, &pub);
    if (rc == 0 && debug) {
        const struct ldg_route_opts dbg = {.flags = LDG_ROUTE_PUBLIC, .max_body_bytes = 64 * 1024 * 1024};
        rc = ldg_router_add(r, "GET", "/_debug/sleep", on_debug_sleep, &dbg);
        if (rc == 0)
            rc = ldg_router_add(r, "POST", "/_debug/sleep", on_debug_sleep, &dbg);
        const struct ldg_route_opts quota = {.flags = LDG_ROUTE_QUOTA};
        if (rc == 0)
            rc = ldg_router_add(r, "POST", "/api/v1/_debug/quota-probe", on_debug_quota_probe, &quota);
    }
    return rc;
}
