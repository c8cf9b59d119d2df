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

ALTER TABLE spans ADD COLUMN queue_id TEXT;
ALTER TABLE metric_points ADD COLUMN queue_id TEXT;

CREATE UNIQUE INDEX spans_queue_id_key ON spans (queue_id, start_time);
CREATE UNIQUE INDEX metric_points_queue_id_key ON metric_points (queue_id, "time");

ALTER FUNCTION otel_ensure_partition(text, timestamptz) SET lock_timeout = '2s';
