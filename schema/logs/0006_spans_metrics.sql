-- 0006_spans_metrics: OpenTelemetry spans and metric points (docs/otlp.md).
--   * spans: one row per span, partitioned by month of start_time like logs were before 0004
--     (spans_YYYY_MM; spans_ensure_partition(ts) creates one idempotently, also under concurrency).
--     Ids are lowercase hex text (what the API shows and filters take). A trace's spans are found
--     through (project_id, trace_id); the trace list and the latency percentiles scan
--     (project_id, start_time) and (project_id, name, start_time).
--   * metric_points: one row per data point of a gauge, sum or histogram, partitioned the same way
--     by month of time (metric_points_YYYY_MM, metric_points_ensure_partition(ts)).

CREATE TABLE spans (
    project_id      BIGINT NOT NULL,
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    parent_span_id  TEXT,
    name            TEXT NOT NULL,
    kind            SMALLINT NOT NULL DEFAULT 0,
    service         TEXT,
    start_time      TIMESTAMPTZ NOT NULL,
    duration_us     BIGINT NOT NULL,
    status_code     SMALLINT NOT NULL DEFAULT 0,
    status_message  TEXT,
    attributes      JSONB,
    events          JSONB,
    ingested_at     TIMESTAMPTZ NOT NULL DEFAULT now()
) PARTITION BY RANGE (start_time);

CREATE INDEX idx_spans_trace ON spans (project_id, trace_id);
CREATE INDEX idx_spans_start ON spans (project_id, start_time DESC);
CREATE INDEX idx_spans_name_start ON spans (project_id, name, start_time DESC);

CREATE TABLE metric_points (
    project_id      BIGINT NOT NULL,
    name            TEXT NOT NULL,
    type            TEXT NOT NULL,          -- gauge, sum, histogram
    unit            TEXT,
    temporality     SMALLINT NOT NULL DEFAULT 0, -- 0 unspecified, 1 delta, 2 cumulative
    monotonic       BOOLEAN NOT NULL DEFAULT false,
    service         TEXT,
    "time"          TIMESTAMPTZ NOT NULL,
    start_time      TIMESTAMPTZ,
    value           DOUBLE PRECISION,       -- gauge and sum
    count           BIGINT,                 -- histogram
    sum             DOUBLE PRECISION,
    min             DOUBLE PRECISION,
    max             DOUBLE PRECISION,
    bounds          DOUBLE PRECISION[],
    bucket_counts   BIGINT[],
    attributes      JSONB,
    ingested_at     TIMESTAMPTZ NOT NULL DEFAULT now()
) PARTITION BY RANGE ("time");

CREATE INDEX idx_metric_points_name_time ON metric_points (project_id, name, "time" DESC);

-- Partition <table>_YYYY_MM covers [first of the month, first of the next month) in UTC.
CREATE FUNCTION otel_ensure_partition(tbl text, ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    month_start date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
    part text := tbl || '_' || to_char(month_start, 'YYYY_MM');
BEGIN
    IF tbl NOT IN ('spans', 'metric_points') THEN
        RAISE EXCEPTION 'not an OpenTelemetry table: %', tbl;
    END IF;
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           part, tbl, month_start::text || ' 00:00:00+00',
                           (month_start + interval '1 month')::date::text || ' 00:00:00+00');
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL; -- created concurrently by another session
        END;
    END IF;
    RETURN part;
END
$fn$;

SELECT otel_ensure_partition(t, now() + make_interval(months => k))
FROM generate_series(-1, 2) AS k, unnest(ARRAY['spans', 'metric_points']) AS t;

-- Retention (the storage role's maintenance, with logs_drop_partitions_before): drop the months of
-- both tables that end before cutoff, oldest first; returns the dropped names.
CREATE FUNCTION otel_drop_partitions_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SET lock_timeout = '5s' AS $fn$
DECLARE
    part text;
    part_end timestamptz;
BEGIN
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
