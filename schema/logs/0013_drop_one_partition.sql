-- 0013_drop_one_partition: retention drops one month per statement.
--   logs_drop_partitions_before and otel_drop_partitions_before drop every month before the cutoff
--   in one transaction; a month of logs is ~120 leaves with their indexes, so a first retention run
--   over years of data (or a lowered retention) ran out of lock table ("out of shared memory",
--   max_locks_per_transaction). The storage role now calls these, one month each, until they
--   return nothing. The old functions stay for operators' scripts.

-- The oldest logs_YYYY_MM partition if it ends at or before `cutoff`: dropped, its name returned.
CREATE FUNCTION logs_drop_oldest_partition_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SET lock_timeout = '5s' AS $fn$
DECLARE
    part text;
BEGIN
    SELECT c.relname INTO part FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'logs'::regclass AND c.relname ~ '^logs_[0-9]{4}_[0-9]{2}$'
    ORDER BY c.relname LIMIT 1;
    IF part IS NULL OR ((to_date(substr(part, 6), 'YYYY_MM') + interval '1 month')::date::text
                        || ' 00:00:00+00')::timestamptz > cutoff THEN
        RETURN;
    END IF;
    EXECUTE format('DROP TABLE %I', part);
    RETURN NEXT part;
END
$fn$;

-- The same for one spans_YYYY_MM or metric_points_YYYY_MM partition (oldest month first), after
-- deleting the metric rollups older than the cutoff.
CREATE FUNCTION otel_drop_oldest_partition_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SET lock_timeout = '5s' AS $fn$
DECLARE
    part text;
BEGIN
    DELETE FROM metric_rollups WHERE hour < cutoff;
    DELETE FROM metric_rollup_hours WHERE hour < cutoff;
    SELECT c.relname INTO part FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent IN ('spans'::regclass, 'metric_points'::regclass)
      AND c.relname ~ '^(spans|metric_points)_[0-9]{4}_[0-9]{2}$'
    ORDER BY right(c.relname, 7), c.relname LIMIT 1;
    IF part IS NULL OR ((to_date(right(part, 7), 'YYYY_MM') + interval '1 month')::date::text
                        || ' 00:00:00+00')::timestamptz > cutoff THEN
        RETURN;
    END IF;
    EXECUTE format('DROP TABLE %I', part);
    RETURN NEXT part;
END
$fn$;
