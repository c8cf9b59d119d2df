-- 0009_stored_entries: "written once" enforced per queue entry instead of per row (docs/ingest.md
-- "Written once").
--   * stored_entries: one row per (queue entry, contiguous run of its logs) a transaction writes, in
--     the same transaction as the logs' rows. The exclusion constraint makes two transactions that
--     write overlapping logs of one entry behave as a unique key does: the second one waits for the
--     first and fails with 23P01 once it committed (the storage role then rolls back, looks the rows
--     up in logs and writes the others). Ranges rather than one row per entry keep it exact while a
--     rejected log is isolated inside an entry (the halves cover disjoint ranges). The project is
--     part of the key: stream entry ids are unique per stream, and projects may be queued on
--     different streams.
--   * The rows are needed only as long as an entry can come back to a consumer that does not know
--     it was delivered before (a second of acknowledgements lost by Redis, a second consumer group):
--     the storage role's maintenance deletes rows older than a day.
--   * logs_queue_id_key (0007), one unique btree entry per row (it doubled COPY's cost), is dropped;
--     logs.queue_id stays: redelivered entries are looked up by (project_id, timestamp, queue_id).

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE stored_entries (
    project_id bigint NOT NULL,
    stream_id text NOT NULL,
    rows int4range NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stored_entries_queue_id_excl EXCLUDE USING gist (project_id WITH =, stream_id WITH =, rows WITH &&)
);
CREATE INDEX stored_entries_stored_at ON stored_entries USING brin (stored_at);

DROP INDEX IF EXISTS logs_queue_id_key;
