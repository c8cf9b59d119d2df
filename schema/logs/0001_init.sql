-- 0001_init: the v1 logs database (reference-api.md section 7.2).
-- Applied by `ledgerd --migrate` inside one transaction; do not add BEGIN/COMMIT here.
-- Differences from v1, on purpose:
--   * logs carries only two indexes (BRIN on timestamp, btree on project_id + timestamp). Search
--     indexes (GIN on attributes, full-text, trigram) and the partial indexes come in later
--     migrations with the queries that need them. (v1's covering index on `message` also fails
--     for long messages: a btree entry cannot exceed about 2.7 kB.)
--   * partition bounds are written in UTC explicitly, independent of the session time zone.
--   * logs_ensure_partition() creates a month's partition idempotently (also under concurrency);
--     the storage role calls it for each month it writes.

CREATE TABLE logs (
    id                 BIGSERIAL NOT NULL,
    project_id         BIGINT NOT NULL,
    timestamp          TIMESTAMPTZ NOT NULL,
    ingested_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    level              VARCHAR(20) NOT NULL,
    log_type           VARCHAR(30) NOT NULL,
    importance         VARCHAR(20) NOT NULL DEFAULT 'standard',
    environment        VARCHAR(20),
    release            VARCHAR(100),
    message            TEXT,
    error_type         VARCHAR(255),
    error_message      TEXT,
    stack_trace        TEXT,
    attributes         JSONB,
    sdk_version        VARCHAR(20),
    platform           VARCHAR(50),
    platform_version   VARCHAR(50),
    processing_time_ms SMALLINT,
    error_fingerprint  CHAR(64),
    PRIMARY KEY (id, timestamp),
    CONSTRAINT check_log_level CHECK (level IN ('debug', 'info', 'warning', 'error', 'critical')),
    CONSTRAINT check_log_type CHECK (log_type IN ('console', 'logger', 'exception', 'network', 'database',
                                                  'endpoint', 'custom')),
    CONSTRAINT check_importance CHECK (importance IN ('critical', 'high', 'standard', 'low'))
) PARTITION BY RANGE (timestamp);

CREATE INDEX idx_logs_timestamp ON logs USING BRIN (timestamp);
CREATE INDEX idx_logs_project_timestamp ON logs (project_id, timestamp DESC);

-- Partition logs_YYYY_MM covers [first of the month, first of the next month) in UTC.
CREATE FUNCTION logs_ensure_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    month_start date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
    part text := 'logs_' || to_char(month_start, 'YYYY_MM');
BEGIN
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF logs FOR VALUES FROM (%L) TO (%L)',
                           part, month_start::text || ' 00:00:00+00',
                           (month_start + interval '1 month')::date::text || ' 00:00:00+00');
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL; -- created concurrently by another session
        END;
    END IF;
    RETURN part;
END
$fn$;

-- As deployed: 2025-01 .. 2026-01; plus last month, this month and the next six.
SELECT logs_ensure_partition(m)
FROM generate_series(timestamptz '2025-01-15 00:00:00+00', timestamptz '2026-01-15 00:00:00+00',
                     interval '1 month') AS m;
SELECT logs_ensure_partition(now() + make_interval(months => k)) FROM generate_series(-1, 6) AS k;

CREATE TABLE error_groups (
    id                 BIGSERIAL PRIMARY KEY,
    project_id         BIGINT NOT NULL,
    fingerprint        CHAR(64) NOT NULL,
    error_type         VARCHAR(255) NOT NULL,
    error_message      TEXT,
    first_seen         TIMESTAMPTZ NOT NULL,
    last_seen          TIMESTAMPTZ NOT NULL,
    occurrence_count   BIGINT DEFAULT 1,
    status             VARCHAR(20) DEFAULT 'unresolved',
    assigned_to        BIGINT,
    sample_log_id      BIGINT,
    sample_stack_trace TEXT,
    created_at         TIMESTAMPTZ DEFAULT now(),
    updated_at         TIMESTAMPTZ DEFAULT now(),
    CONSTRAINT check_error_status CHECK (status IN ('unresolved', 'resolved', 'ignored', 'muted'))
);
CREATE UNIQUE INDEX idx_error_groups_fingerprint ON error_groups (project_id, fingerprint);
CREATE INDEX idx_error_groups_status ON error_groups (project_id, status, last_seen DESC);
CREATE INDEX idx_error_groups_type ON error_groups (project_id, error_type, last_seen DESC);

CREATE TABLE aggregated_metrics (
    id              BIGSERIAL PRIMARY KEY,
    project_id      BIGINT NOT NULL,
    date            VARCHAR(8) NOT NULL,       -- YYYYMMDD, UTC
    hour            SMALLINT NOT NULL,
    metric_type     VARCHAR(20) NOT NULL,
    endpoint_method VARCHAR(10),
    endpoint_path   VARCHAR(500),
    log_level       VARCHAR(20),
    log_type        VARCHAR(30),
    log_count       INTEGER NOT NULL DEFAULT 0,
    error_count     INTEGER NOT NULL DEFAULT 0,
    avg_duration_ms FLOAT,
    min_duration_ms INTEGER,
    max_duration_ms INTEGER,
    p95_duration_ms INTEGER,
    p99_duration_ms INTEGER,
    extra_metadata  JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT check_metric_type CHECK (metric_type IN ('exception', 'endpoint', 'log_volume')),
    CONSTRAINT check_hour_range CHECK (hour >= 0 AND hour <= 23)
);
CREATE UNIQUE INDEX uq_aggregated_metrics ON aggregated_metrics (
    project_id, date, hour, metric_type,
    COALESCE(endpoint_method, ''), COALESCE(endpoint_path, ''),
    COALESCE(log_level, ''), COALESCE(log_type, '')
);
CREATE INDEX idx_aggregated_metrics_lookup ON aggregated_metrics (project_id, date, metric_type);
CREATE INDEX idx_aggregated_metrics_endpoint ON aggregated_metrics (project_id, date, endpoint_path)
    WHERE metric_type = 'endpoint';
