-- 0012_endpoint_p50: the median of endpoint durations in the hourly aggregates (docs/metrics.md),
-- beside p95/p99. Hours aggregated before this migration keep NULL until recomputed.
ALTER TABLE aggregated_metrics ADD COLUMN p50_duration_ms INTEGER;
