/*
 * storage.c: [storage] keys, checks and the role's lifecycle (see storage.h). The consumer lives in
 * consumer.c (Redis) and writer.c (PostgreSQL), the scheduled upkeep in maintenance.c.
 */
#include "roles/storage/storage.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/worker.h"
#include "roles/ingest/ingest.h"
#include "roles/storage/consumer.h"
#include "settings.h"

#define CFG(f) offsetof(struct ldg_storage_cfg, f)
#define MB (1024LL * 1024)

const struct ldg_cfg_key ldg_storage_cfg_keys[] = {
    {"group", LDG_CFG_STR, CFG(group), "ledger:storage", 0, 0, NULL, 0,
     "Consumer group of the storage consumers on the ingest stream ([ingest] stream)"},
    {"consumers", LDG_CFG_INT, CFG(consumers), "1", 1, 16, NULL, 0,
     "Consumers per worker: batches read, written and acknowledged at the same time (each holds one "
     "[pg_logs] connection while writing)"},
    {"batch_max_logs", LDG_CFG_INT, CFG(batch_max_logs), "2000", 1, 10000, NULL, 0,
     "Logs written per PostgreSQL transaction (one COPY)"},
    {"batch_max_bytes", LDG_CFG_SIZE, CFG(batch_max_bytes), "16777216", 65536, 1024 * MB, NULL, 0,
     "Queued payload bytes per transaction; a batch stops growing past this (checked after each read of up "
     "to 200 entries)"},
    {"batch_wait_ms", LDG_CFG_MS, CFG(batch_wait_ms), "100", 0, 60000, NULL, 0,
     "How long a batch waits to fill after its first log before it is written anyway"},
    {"read_block_ms", LDG_CFG_MS, CFG(read_block_ms), "1000", 10, 60000, NULL, 0,
     "XREADGROUP BLOCK while the queue is empty; must stay below [redis] command_timeout_ms"},
    {"store_timeout_ms", LDG_CFG_MS, CFG(store_timeout_ms), "30000", 100, 600000, NULL, 0,
     "Deadline of writing one batch; past it the attempt is abandoned and retried"},
    {"claim_idle_ms", LDG_CFG_MS, CFG(claim_idle_ms), "60000", 200, 86400000, NULL, 0,
     "Entries pending this long at a consumer are claimed by another (a dead worker's batch); at least 2 x "
     "store_timeout_ms and 4 x retry_max_ms"},
    {"claim_interval_ms", LDG_CFG_MS, CFG(claim_interval_ms), "5000", 10, 3600000, NULL, 0,
     "How often each consumer looks for such entries"},
    {"retry_min_ms", LDG_CFG_MS, CFG(retry_min_ms), "100", 1, 60000, NULL, 0,
     "First delay after a failed read, write or acknowledgement (doubling, jittered)"},
    {"retry_max_ms", LDG_CFG_MS, CFG(retry_max_ms), "5000", 1, 600000, NULL, 0, "Cap of that delay"},
    {"max_failed_attempts", LDG_CFG_INT, CFG(max_failed_attempts), "10", 1, 1000, NULL, 0,
     "Attempts of a batch failing with a PostgreSQL error that is neither about the data nor the "
     "connection (e.g. a missing column); then its rejected logs are dead-lettered with the error"},
    {"dead_letter_stream", LDG_CFG_STR, CFG(dead_letter_stream), "ledger:logs:dead", 0, 0, NULL, 0,
     "Stream receiving entries PostgreSQL rejects or that cannot be decoded, with fields id, reason, "
     "consumer, "
     "p, m"},
    {"dead_letter_max_len", LDG_CFG_INT, CFG(dead_letter_max_len), "100000", 1, 1000000000, NULL, 0,
     "Approximate cap of the dead-letter stream (oldest entries trimmed)"},
    {"partition_months_ahead", LDG_CFG_INT, CFG(partition_months_ahead), "1", 0, 24, NULL, 0,
     "Monthly partitions created ahead of the current month"},
    {"retention", LDG_CFG_BOOL, CFG(retention), "on", 0, 0, NULL, 0,
     "Remove logs older than their project's retention_days (whole partitions past the longest retention, "
     "then per-project deletes)"},
    {"maintenance_interval_ms", LDG_CFG_MS, CFG(maintenance_interval_ms), "3600000", 1000, 604800000, NULL, 0,
     "How often partitions ahead, retention and idle-consumer cleanup run (once across all processes)"},
    {"retention_batch_rows", LDG_CFG_INT, CFG(retention_batch_rows), "10000", 1, 10000000, NULL, 0,
     "Rows removed per DELETE statement of the retention job"},
    {"retention_pause_ms", LDG_CFG_MS, CFG(retention_pause_ms), "50", 0, 60000, NULL, 0,
     "Pause after a retention DELETE statement that removed rows"},
    {"partition_max_rows", LDG_CFG_INT, CFG(partition_max_rows), "1000000", 0, 1000000000, NULL, 0,
     "The hour after the open leaf is cut into slices holding about this many logs at the current rate, so "
     "the open leaf that searches scan stays small (0 = 6-hour leaves only)"},
    {"slice_interval_ms", LDG_CFG_MS, CFG(slice_interval_ms), "30000", 1000, 3600000, NULL, 0,
     "How often the rate is looked at and the leaves ahead cut (once across all processes)"},
    {"tail_publish_max_bytes", LDG_CFG_SIZE, CFG(tail_publish_max_bytes), "262144", 4096, 64 * MB, NULL, 0,
     "Bytes of one live-tail message of committed logs (a larger commit is split; a single larger log is "
     "counted as dropped)"},
    {"tail_viewers_refresh_ms", LDG_CFG_MS, CFG(tail_viewers_refresh_ms), "1000", 10, 60000, NULL, 0,
     "How long a consumer reuses its answer to whether a project has live tails (a new tail waits up to "
     "this long for its first logs)"},
    {"debug_pause_before_commit_ms", LDG_CFG_MS, CFG(debug_pause_before_commit_ms), "0", 0, 600000, NULL, 0,
     "Tests only, with [server] debug_endpoints: hold each batch this long before COMMIT"},
    {"debug_pause_before_ack_ms", LDG_CFG_MS, CFG(debug_pause_before_ack_ms), "0", 0, 600000, NULL, 0,
     "Tests only, with [server] debug_endpoints: hold each batch this long before acknowledging it"},
    {0},
};

struct ldg__storage_global ldg__storage;

struct state {
    struct ldg__storage_consumer *consumer[16 * LDG_SHARDS_MAX]; /* consumers per Redis shard */
    size_t n;
    struct ldg__storage_maint *maint;
    struct ldg__storage_slicing *slicing;
};

static int storage_validate(const void *cfg, struct ldg_cfg_err *err)
{
    const struct ldg_storage_cfg *c = cfg;
    if (!c->group || !*c->group || !c->dead_letter_stream || !*c->dead_letter_stream) {
        snprintf(err->msg, sizeof err->msg, "[storage] group and dead_letter_stream must not be empty");
        return -EINVAL;
    }
    if (c->retry_max_ms < c->retry_min_ms) {
        snprintf(err->msg, sizeof err->msg, "[storage] retry_max_ms must be >= retry_min_ms");
        return -EINVAL;
    }
    /* A batch is ours for claim_idle_ms after its read (see consumer.h): a write attempt and the
     * waits between attempts must fit well inside. */
    if (c->claim_idle_ms < 2 * c->store_timeout_ms || c->claim_idle_ms < 4 * c->retry_max_ms) {
        snprintf(err->msg, sizeof err->msg,
                 "[storage] claim_idle_ms must be at least 2 x store_timeout_ms and 4 x retry_max_ms");
        return -EINVAL;
    }
    return 0;
}

static int storage_init_global(const struct ldg_config *c, const void *cfg)
{
    const struct ldg_storage_cfg *sc = cfg;
    const struct ldg_ingest_cfg *ic = c->role_cfg[ldg_role_index("ingest")];
    ldg__storage.cfg = sc;
    ldg__storage.stream = ic->stream;
    ldg__storage.debug = c->server.debug_endpoints;
    snprintf(ldg__storage.host, sizeof ldg__storage.host, "%s", c->node.name);
    for (unsigned i = 0; i < c->nredis; i++)
        if (sc->read_block_ms + 500 > ldg_settings_redis_cfg(c, i)->command_timeout_ms) {
            ldg_log_error("role=storage", "[storage] read_block_ms must be at least 500 ms below [redis] "
                                          "command_timeout_ms (of every Redis shard)");
            return -EINVAL;
        }
    if (strcmp(sc->dead_letter_stream, ic->stream) == 0) {
        ldg_log_error("role=storage", "[storage] dead_letter_stream must differ from [ingest] stream");
        return -EINVAL;
    }
    if (!ldg__storage.debug && (sc->debug_pause_before_commit_ms || sc->debug_pause_before_ack_ms))
        ldg_log_warn("role=storage", "debug pauses are ignored without [server] debug_endpoints");
    ldg__storage_consumer_init_global();
    return 0;
}

static int storage_init_worker(struct ldg_worker *w, const void *cfg, void **state)
{
    (void)cfg;
    struct state *s = ldg_calloc(1, sizeof *s);
    /* every worker consumes every shard's queue: `consumers` consumers per shard */
    size_t per = (size_t)ldg__storage.cfg->consumers;
    s->n = per * w->nredis;
    for (size_t i = 0; i < s->n; i++)
        s->consumer[i] = ldg__storage_consumer_new(w, (unsigned)(i % per), (unsigned)(i / per));
    s->maint = ldg__storage_maint_new(w);
    s->slicing = ldg__storage_slicing_new(w);
    *state = s;
    return 0;
}

static void storage_stop_worker(struct ldg_worker *w, void *state)
{
    (void)w;
    struct state *s = state;
    for (size_t i = 0; i < s->n; i++)
        ldg__storage_consumer_stop(s->consumer[i]);
    ldg__storage_maint_stop(s->maint);
    ldg__storage_slicing_stop(s->slicing);
}

static bool storage_drained(const struct ldg_worker *w, const void *state)
{
    (void)w;
    const struct state *s = state;
    for (size_t i = 0; i < s->n; i++)
        if (!ldg__storage_consumer_closed(s->consumer[i]))
            return false;
    return ldg__storage_maint_closed(s->maint) && ldg__storage_slicing_closed(s->slicing);
}

static void storage_free_worker(struct ldg_worker *w, void *state)
{
    (void)w;
    struct state *s = state;
    for (size_t i = 0; i < s->n; i++)
        if (!ldg__storage_consumer_closed(s->consumer[i])) {
            ldg_log_error("role=storage", "consumer not closed at exit; its memory is left");
            return;
        }
    for (size_t i = 0; i < s->n; i++)
        ldg__storage_consumer_free(s->consumer[i]);
    ldg__storage_maint_free(s->maint);
    ldg__storage_slicing_free(s->slicing);
    free(s);
}

static void storage_health(const struct ldg_worker *w, const void *state, struct ldg_buf *out)
{
    (void)w;
    const struct state *s = state;
    ldg__storage_consumer_health((const struct ldg__storage_consumer *const *)s->consumer, s->n, out);
}

const struct ldg_role ldg_role_storage = {
    .name = "storage",
    .keys = ldg_storage_cfg_keys,
    .cfg_size = sizeof(struct ldg_storage_cfg),
    .validate = storage_validate,
    .init_global = storage_init_global,
    .init_worker = storage_init_worker,
    .stop_worker = storage_stop_worker,
    .drained = storage_drained,
    .free_worker = storage_free_worker,
    .health = storage_health,
};
