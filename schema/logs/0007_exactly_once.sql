-- 0007_exactly_once: one row per queue entry, enforced by the database (docs/ingest.md "Written once").
--   * logs_queue_id_key: UNIQUE (queue_id, "timestamp") on logs and so on every partition and leaf
--     (a unique index of a partitioned table must hold the partition key; a log's timestamp never
--     changes between deliveries, so (queue_id, timestamp) is as unique as queue_id). A second
--     transaction writing a row with the same queue id waits for the first one and fails with
--     23505 if it committed; the storage role then rolls back, looks its rows up and writes only the
--     ones not stored. Rows without a queue id (NULL) are not constrained.
--   * Rows stored twice by earlier versions (at-least-once under faults) would prevent the index:
--     every copy but the first (lowest id) is deleted first.

DELETE FROM logs a USING logs b
WHERE a.queue_id IS NOT NULL AND a.queue_id = b.queue_id AND a."timestamp" = b."timestamp" AND a.id > b.id;

CREATE UNIQUE INDEX logs_queue_id_key ON logs (queue_id, "timestamp");

-- Creating a month takes an ACCESS EXCLUSIVE lock on logs: never wait for it longer than 2 s
-- (SQLSTATE 55P03: the storage role retries the batch after backoff, maintenance at its next run),
-- so one creation queued behind a long query cannot stall every writer and reader queued behind it.
ALTER FUNCTION logs_ensure_partition(timestamptz) SET lock_timeout = '2s';
