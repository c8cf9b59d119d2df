/*
 * query.h: the query role: reading logs back (reference §3.7 Q1, §10; decisions D1, D2).
 *
 *   GET /api/v1/logs/{log_id}?project_id=   one log (LogEntryResponse)
 *   GET /api/v1/logs                        list with filters, offset or keyset cursor
 *   GET /api/v1/logs/search?q=              the search language of query/qlang.h
 *   GET /api/v1/metrics/aggregated, /error-rate, /log-volume, /top-errors, /usage-stats (metrics.c)
 *
 * Ownership (D2): a session principal reads projects of its account (missing → 404, someone
 * else's → 403); an API-key principal reads only its own project (another → 403).
 *
 * Safety: every statement is parameterised (qlang.h compiles the search language to placeholders),
 * runs under [query] statement_timeout_ms (SET LOCAL in the same pipeline), returns at most
 * limit + 1 rows and stops adding rows once the response would pass [query] max_response_bytes
 * (the client continues with next_cursor). A regular expression needs a time range of at most
 * [query] regex_max_range_ms: it cannot use an index on the partition being written.
 *
 * Threading: handlers run on the worker that accepted the request and use that worker's pools;
 * the config is immutable after init_global. docs/query.md describes the endpoints.
 */
#ifndef LDG_ROLES_QUERY_H
#define LDG_ROLES_QUERY_H

#include "core/common.h"
#include "core/config.h"
#include "roles/role.h"

/* The [query] section. */
struct ldg_query_cfg {
    int64_t statement_timeout_ms; /* server-side limit of one query statement */
    int64_t max_response_bytes;   /* JSON bytes of logs in one answer (at least one log is sent) */
    int64_t regex_max_range_ms;   /* longest time range a message:/re/ search may cover */
    int64_t max_offset;           /* largest offset accepted (deeper pages: use the cursor) */
    int64_t probe_window_ms;      /* list: newest window tried before the unbounded question */
    int64_t cache_ttl_ms;         /* metrics answers cached in Redis (identical dashboard questions) */
};

extern const struct ldg_cfg_key ldg_query_cfg_keys[];
extern const struct ldg_role ldg_role_query;

#endif
