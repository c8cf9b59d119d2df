-- 0003_ingest_costs: cheaper writes on the ingest path (measured with bench/ingest.sh).
--   * Large text and JSONB values of logs are compressed with lz4 instead of pglz: TOAST compression
--     of stack traces and attributes was ~6% of PostgreSQL's CPU per row with pglz. Existing
--     partitions are altered too (ALTER on the parent only reaches partitions created later); rows
--     already stored stay as they are, both methods are read transparently.
--   * error_groups is updated on every batch carrying exceptions. last_seen sat in two of its
--     indexes, so no update could be HOT and each wrote three index entries. The indexes keep
--     (project_id, status) and (project_id, error_type); ordering a project's groups by last_seen
--     is a sort of that project's groups. fillfactor 70 leaves room on each page for the new
--     versions.

DO $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN SELECT 'logs'::regclass UNION ALL SELECT inhrelid::regclass FROM pg_inherits
               WHERE inhparent = 'logs'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN message SET COMPRESSION lz4, '
                       'ALTER COLUMN error_message SET COMPRESSION lz4, '
                       'ALTER COLUMN stack_trace SET COMPRESSION lz4, '
                       'ALTER COLUMN attributes SET COMPRESSION lz4', rel);
    END LOOP;
END
$$;

DROP INDEX idx_error_groups_status;
DROP INDEX idx_error_groups_type;
CREATE INDEX idx_error_groups_status ON error_groups (project_id, status);
CREATE INDEX idx_error_groups_type ON error_groups (project_id, error_type);
ALTER TABLE error_groups SET (fillfactor = 70);
ALTER TABLE error_groups ALTER COLUMN sample_stack_trace SET COMPRESSION lz4;
