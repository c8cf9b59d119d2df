-- 0011_otel_queue: spans and metric points are written by the storage role from the ingest queue,
-- exactly once like logs (docs/otlp.md "How they are written", docs/ingest.md "Written once").
--   * queue_id on spans and metric_points: "<stream entry id>/<index in the entry>", and the unique
--     keys spans_queue_id_key (queue_id, start_time) and metric_points_queue_id_key (queue_id, time)
--     (a unique index of a partitioned table must hold the partition key; a row's time is the same in
--     every delivery). A second transaction copying a row of the same queue entry waits for the
--     first and fails with 23505 if it committed; the storage role then looks the rows up and
--     writes the others. Rows stored before this migration (written by the receiving worker) have
--     no queue id and are not constrained.
--   * otel_ensure_partition waits at most 2 s for its lock, as logs_ensure_partition does (0007):
--     the storage role now calls it for each new month of a batch, inside its write.
--   * metric_rollups: hourly rollups of metric points (below).

ALTER TABLE spans ADD COLUMN queue_id TEXT;
ALTER TABLE metric_points ADD COLUMN queue_id TEXT;

CREATE UNIQUE INDEX spans_queue_id_key ON spans (queue_id, start_time);
CREATE UNIQUE INDEX metric_points_queue_id_key ON metric_points (queue_id, "time");

ALTER FUNCTION otel_ensure_partition(text, timestamptz) SET lock_timeout = '2s';

-- Hourly rollups of metric points (docs/otlp.md "Rollups"): one row per series (project, name,
-- type, unit, temporality, monotonic, service, attribute set) and hour, with what the avg, sum,
-- min, max and rate aggregations of GET /api/v1/metrics/query need, so that a query by whole hours
-- reads one row per series and hour instead of every point. metric_rollup_hour(h) recomputes one
-- hour (delete and insert in one statement) from the points stored more than 10 minutes before it
-- runs (ingested_at < upto: every transaction that stored such a point has ended, storage
-- transactions being bounded by [storage] store_timeout_ms) and records the hour with that upto in
-- metric_rollup_hours; the analytics role's hourly job calls it for the hours it aggregates.
-- Queries read, for a recorded hour, its rollups plus its points stored at or after upto (late
-- points), and the points of every other hour: each point is counted once. Retention:
-- otel_drop_partitions_before deletes both before its cutoff.
CREATE TABLE metric_rollups (
    project_id      BIGINT NOT NULL,
    name            TEXT NOT NULL,
    type            TEXT NOT NULL,
    unit            TEXT,
    temporality     SMALLINT NOT NULL,
    monotonic       BOOLEAN NOT NULL,
    service         TEXT,
    attributes      JSONB,
    hour            TIMESTAMPTZ NOT NULL,
    n_v             BIGINT NOT NULL,        -- points with a value (gauge, sum)
    v_sum           DOUBLE PRECISION,
    v_min           DOUBLE PRECISION,
    v_max           DOUBLE PRECISION,
    h_count         BIGINT,                 -- histograms: sum, min and max of count
    h_count_min     BIGINT,
    h_count_max     BIGINT,
    h_sum           DOUBLE PRECISION,       -- sum of sum, min of min, max of max
    h_min           DOUBLE PRECISION,
    h_max           DOUBLE PRECISION
);

CREATE INDEX idx_metric_rollups_name_hour ON metric_rollups (project_id, name, hour);
CREATE INDEX idx_metric_rollups_hour ON metric_rollups (hour);

CREATE TABLE metric_rollup_hours (
    hour            TIMESTAMPTZ PRIMARY KEY,
    upto            TIMESTAMPTZ NOT NULL,   -- the rollups hold the points with ingested_at < upto
    rolled_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION metric_rollup_hour(h timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
    cut timestamptz := now() - interval '10 minutes';
BEGIN
    DELETE FROM metric_rollups WHERE hour = h;
    INSERT INTO metric_rollups (project_id, name, type, unit, temporality, monotonic, service, attributes, hour,
                                n_v, v_sum, v_min, v_max, h_count, h_count_min, h_count_max, h_sum, h_min, h_max)
    SELECT project_id, name, type, unit, temporality, monotonic, service, attributes, h,
           count(value), sum(value), min(value), max(value), sum(count), min(count), max(count),
           sum(sum), min(min), max(max)
    FROM metric_points WHERE "time" >= h AND "time" < h + interval '1 hour' AND ingested_at < cut
    GROUP BY project_id, name, type, unit, temporality, monotonic, service, attributes;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO metric_rollup_hours (hour, upto) VALUES (h, cut)
    ON CONFLICT (hour) DO UPDATE SET upto = EXCLUDED.upto, rolled_at = now();
    RETURN n;
END
$fn$;

-- 0006's retention function, now also deleting the rollups older than the cutoff.
CREATE OR REPLACE FUNCTION otel_drop_partitions_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SET lock_timeout = '5s' AS $fn$
DECLARE
    part text;
    part_end timestamptz;
BEGIN
    DELETE FROM metric_rollups WHERE hour < cutoff;
    DELETE FROM metric_rollup_hours WHERE hour < cutoff;
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('spans'::regclass, 'metric_points'::regclass)
          AND c.relname ~ '^(spans|metric_points)_[0-9]{4}_[0-9]{2}$'
        ORDER BY right(c.relname, 7), c.relname
    LOOP
        part_end := ((to_date(right(part, 7), 'YYYY_MM') + interval '1 month')::date::text
                     || ' 00:00:00+00')::timestamptz;
        CONTINUE WHEN part_end > cutoff;
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
END
$fn$;
