/*
 * analytics.h: the analytics role: scheduled jobs over the logs (reference §8; decisions D8).
 *
 *   search_index      builds the search indexes of closed 6-hour partitions (docs/query.md)
 *   hourly_metrics    aggregated_metrics for each full UTC hour (endpoint, exception, log_volume),
 *                     backfilling up to backfill_max_hours missed hours, the last hour redone
 *   available_routes  projects.available_routes from the aggregated endpoint paths
 *   usage_stats       today's and yesterday's live usage counters into daily_usage, and the
 *                     metrics:usage_stats:<pid> cache (30 days)
 *   error_rate        metrics:error_rate:<pid>:5min (last 24 h, 5-minute buckets)
 *   log_volume        metrics:log_volume:<pid>:1hour (last 7 days, per hour and level)
 *   top_errors        metrics:top_errors:<pid> (50 unresolved groups seen within 24 h)
 *
 * Scheduling: worker 0 of every process with the role checks the jobs once a second. Job j's
 * schedule is its interval, aligned to the Unix epoch: slot = now / interval. A job runs in a slot
 * only in the process that takes `ledger:analytics:<job>:<slot>` (SET NX PX interval), so across
 * the fleet each slot runs once; a process that dies mid-run loses that slot, and the next slot
 * (with the backfill of hourly_metrics) makes up for it. Every job is idempotent (upserts, cache
 * overwrites, CREATE INDEX IF NOT EXISTS). Redis caches live 2 × the job's interval.
 *
 * Health: /health/deep shows, per job, runs, failures, the last start, duration and error
 * (static texts; details go to the log). Written by worker 0 only, read by any worker (relaxed
 * atomics).
 *
 * Threading: every job runs on worker 0's loop with that worker's pools and Redis connection;
 * search_index opens its own connection (its statements may run longer than the pool's
 * statement timeout).
 */
#ifndef LDG_ROLES_ANALYTICS_H
#define LDG_ROLES_ANALYTICS_H

#include "core/common.h"
#include "core/config.h"
#include "roles/role.h"

/* The [analytics] section. */
struct ldg_analytics_cfg {
    int64_t search_index_interval_ms;
    int64_t index_grace_ms;   /* a partition is closed this long after its range ended */
    int64_t index_timeout_ms; /* statement timeout of one index build */
    int64_t index_max_per_run;
    int64_t index_backlog_max_age_ms; /* /health/deep: search_backlog degrades past this */
    int64_t hourly_metrics_interval_ms;
    int64_t backfill_max_hours;
    int64_t available_routes_interval_ms;
    int64_t usage_stats_interval_ms;
    int64_t error_rate_interval_ms;
    int64_t log_volume_interval_ms;
    int64_t top_errors_interval_ms;
    /* alerting (docs/alerts.md) */
    int64_t alert_eval_interval_ms;    /* evaluator tick */
    int64_t alert_eval_concurrency;    /* metric statements in flight per tick */
    int64_t alert_eval_parallel_workers; /* max_parallel_workers_per_gather of those statements */
    int64_t alert_max_rules;           /* rules evaluated per tick (oldest evaluation first) */
    int64_t monitor_check_interval_ms; /* monitor checker tick */
    int64_t monitor_history_days;      /* monitor_checks kept */
    int64_t notification_retention_days;
    int64_t notification_cleanup_interval_ms;
    /* outgoing deliveries and checks (webhooks, http monitors, e-mail) */
    int64_t webhook_timeout_ms;
    int64_t webhook_max_attempts;
    int64_t webhook_backoff_ms;
    int64_t outbound_max_inflight; /* HTTP requests one worker runs at once */
    int64_t outbound_max_queued;   /* more wait; beyond that a delivery or check fails at once */
    char *outbound_ca_file;        /* extra trusted CAs for https://; empty: the system store only */
    char *smtp_host;               /* empty: e-mail connectors are skipped */
    int64_t smtp_port;
    char *smtp_from;
    int64_t smtp_timeout_ms;
};

extern const struct ldg_cfg_key ldg_analytics_cfg_keys[];
extern const struct ldg_role ldg_role_analytics;

#endif
