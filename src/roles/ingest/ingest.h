/*
 * ingest.h: the ingest role's HTTP side (reference §3.6, §5; decisions D4, D5, D6, D10).
 *
 *   POST /api/v1/ingest/single   one log object                 → 202
 *   POST /api/v1/ingest/batch    {"logs": [1..1000 log objects]} → 202 (partial success)
 *   GET  /api/v1/queue/depth     this key's project queue depth  → 200
 *
 * API-key principals only (sessions get 403). Every accepted log is validated and enriched by
 * ingest/logentry.c, encoded by ingest/logcodec.c and appended to ONE Redis Stream ([ingest]
 * stream) as fields `p` (project id), `n` and `m` (MessagePack). One Lua script call, shared by
 * the requests the worker read in the same loop iteration and run for each in turn, does the
 * backpressure check (queue_depth:<pid> + n > queue_max_depth → 503), the quota check
 * (usage:<pid>:<YYYYMMDD> + n > daily quota → 402), the XADDs and both counter increments
 * atomically (D4), so 202 means queued (D5). Redis unavailable → 503, never 202. Qualifying logs
 * are then published on notifications:errors:<pid> (§5.2), fire-and-forget.
 *
 * Threading: handlers run on the worker that accepted the request, which also owns the list of
 * requests waiting for the next script call; the config and the script digest are immutable
 * after init_global.
 */
#ifndef LDG_ROLES_INGEST_H
#define LDG_ROLES_INGEST_H

#include "core/common.h"
#include "core/config.h"
#include "roles/role.h"

/* The [ingest] section. */
struct ldg_ingest_cfg {
    int64_t queue_max_depth;      /* per project: queued-but-not-stored logs before 503 */
    int64_t queue_max_bytes;      /* per project: queued-but-not-stored MessagePack bytes before 503 */
    char *stream;                 /* Redis Stream key of the queue */
    int64_t max_batch_body_bytes; /* body limit of POST /ingest/batch and /single */
    int64_t max_future_skew_ms;   /* timestamps later than now + this are rejected per log */
    int64_t redis_memory_high_pct; /* 503 while Redis used_memory >= this % of maxmemory (0 = off) */
    bool notify_errors;           /* publish error-level logs */
    bool notify_critical;         /* publish critical-level logs */
};

extern const struct ldg_cfg_key ldg_ingest_cfg_keys[];

/*
 * Idempotency-Key (docs/ingest.md "Idempotent retries"), for every ingest route of the role (v1 and
 * OTLP). Internal to the role; worker thread.
 *   ldg__ingest_idem_read: the request's header as the Redis key idem:<pid>:<key> into out (cap >=
 *     255 + 48), "" without the header; -1 after answering 400 (not 1..255 printable ASCII).
 *   ldg__ingest_idem_answer: with a key, the answer the request gets if its logs are queued (status,
 *     content type, body): the enqueue script stores it atomically with the XADD, for 24 hours, and
 *     any later request with the key gets it back (header Idempotent-Replayed: true) and queues
 *     nothing. Call before starting the enqueue.
 */
struct ldg_req;
struct enqueue;
int ldg__ingest_idem_read(struct ldg_req *req, int64_t project_id, char *out, size_t cap);
void ldg__ingest_idem_answer(struct enqueue *e, const char *key, int status, const char *type, const void *body,
                             size_t len);
extern const struct ldg_role ldg_role_ingest;

#endif
