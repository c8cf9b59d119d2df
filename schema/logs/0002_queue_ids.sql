-- 0002_queue_ids: what the storage role needs beyond v1 (decisions D5).
--   * logs.queue_id: the Redis Stream entry id a row was written from. A redelivered entry (after a
--     crash between COMMIT and XACK) is looked up by (project_id, timestamp, queue_id) through the
--     existing btree before it is written again, so no extra index sits on the ingest path.
--     NULL for rows that did not come through the queue.
--   * logs_drop_partitions_before(): retention drops whole monthly partitions.

ALTER TABLE logs ADD COLUMN queue_id TEXT;

-- Drop every logs_YYYY_MM partition that ends at or before `cutoff`; returns the names dropped.
-- Waits at most 5 s for the parent's lock (it is retried at the next maintenance run).
CREATE FUNCTION logs_drop_partitions_before(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SET lock_timeout = '5s' AS $fn$
DECLARE
    part text;
    part_end timestamptz;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'logs'::regclass AND c.relname ~ '^logs_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        part_end := ((to_date(substr(part, 6), 'YYYY_MM') + interval '1 month')::date::text
                     || ' 00:00:00+00')::timestamptz;
        EXIT WHEN part_end > cutoff;
        EXECUTE format('DROP TABLE %I', part);
        RETURN NEXT part;
    END LOOP;
END
$fn$;
