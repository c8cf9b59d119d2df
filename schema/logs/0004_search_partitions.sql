-- 0004_search_partitions: 6-hour partitions, so search indexes can be built once per closed
-- partition instead of being maintained row by row on the ingest path (docs/query.md).
--   * A month logs_YYYY_MM is now itself partitioned by range of timestamp into leaves of 6 hours
--     (UTC) logs_YYYY_MM_DD_HH (HH = 00, 06, 12, 18). logs_ensure_partition(ts) creates the month
--     and all its leaves at once, so the storage role (which ensures a partition per month it
--     writes) and retention (which drops whole months, logs_drop_partitions_before) keep working
--     unchanged. 6 hours: the open leaf, which searches scan, holds at most a quarter of a day,
--     while a week is still only 28 leaves to plan.
--   * Monthly partitions created as plain tables by 0001 are replaced when they are empty: from last
--     month to next month by partitioned ones, later ones are dropped (the storage role's
--     maintenance creates months ahead, and any month on demand); older empty ones are left alone.
--     A plain month that holds rows stays plain: it is indexed once it is closed.
--   * logs_search_index_todo() lists the search indexes missing on closed leaves (the analytics
--     role's search_index job builds them with CREATE INDEX CONCURRENTLY, then ANALYZEs the leaf):
--       <leaf>_fts    GIN over the full-text document (query/qlang.h LDG_QLANG_FTS_DOC)
--       <leaf>_trgm   GIN trigram over message (regular expressions)
--       <leaf>_attrs  GIN jsonb_path_ops over attributes (containment: attribute equality)
--     The open leaf carries only the btree and BRIN indexes of 0001.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE OR REPLACE FUNCTION logs_ensure_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    month_start date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
    month_end date := (month_start + interval '1 month')::date;
    part text := 'logs_' || to_char(month_start, 'YYYY_MM');
    t timestamp; -- UTC
BEGIN
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF logs FOR VALUES FROM (%L) TO (%L) '
                           'PARTITION BY RANGE ("timestamp")',
                           part, month_start::text || ' 00:00:00+00', month_end::text || ' 00:00:00+00');
            t := month_start;
            WHILE t < month_end LOOP
                EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               'logs_' || to_char(t, 'YYYY_MM_DD_HH24'), part,
                               to_char(t, 'YYYY-MM-DD HH24:MI:SS') || '+00',
                               to_char(t + interval '6 hours', 'YYYY-MM-DD HH24:MI:SS') || '+00');
                t := t + interval '6 hours';
            END LOOP;
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL; -- created concurrently by another session
        END;
    END IF;
    RETURN part;
END
$fn$;

-- Replace the empty plain months from last month on by partitioned ones.
DO $$
DECLARE
    part text;
    empty boolean;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'logs'::regclass AND c.relkind = 'r' AND c.relname ~ '^logs_[0-9]{4}_[0-9]{2}$'
          AND to_date(substr(c.relname, 6), 'YYYY_MM') >= date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month'
        ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM %I)', part) INTO empty;
        IF empty THEN
            EXECUTE format('DROP TABLE %I', part);
            -- months after the next one come back when the storage role's maintenance creates them
            IF to_date(substr(part, 6), 'YYYY_MM') <= date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month' THEN
                PERFORM logs_ensure_partition((to_date(substr(part, 6), 'YYYY_MM')::text || ' 12:00:00+00')::timestamptz);
            END IF;
        END IF;
    END LOOP;
END
$$;

-- Search indexes still to build on leaves whose range ended by closed_before: one row per missing
-- (or invalid, after a failed concurrent build) index with its CREATE statement. A leaf's end is
-- read from its partition bound, so plain months of 0001 and 6-hour leaves are handled alike.
CREATE FUNCTION logs_search_index_todo(closed_before timestamptz)
RETURNS TABLE (leaf text, index_name text, invalid boolean, create_sql text)
LANGUAGE sql STABLE AS $fn$
    WITH RECURSIVE tree(oid) AS (
        SELECT 'logs'::regclass::oid
        UNION ALL
        SELECT i.inhrelid FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
    ), leaves AS (
        SELECT c.relname::text AS leaf,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz AS ends
        FROM tree t JOIN pg_class c ON c.oid = t.oid
        WHERE c.relkind = 'r' AND c.relname ~ '^logs_[0-9]{4}_[0-9]{2}(_[0-9]{2}_[0-9]{2})?$'
    ), wanted AS (
        SELECT l.leaf, l.leaf || s.suffix AS index_name, s.def
        FROM leaves l CROSS JOIN (VALUES
            ('_fts', 'gin (to_tsvector(''simple''::regconfig, coalesce(message, '''') || '' '' || '
                     'coalesce(error_message, '''') || '' '' || coalesce(error_type, '''')))'),
            ('_trgm', 'gin (message gin_trgm_ops)'),
            ('_attrs', 'gin (attributes jsonb_path_ops)')) AS s(suffix, def)
        WHERE l.ends <= closed_before
    )
    SELECT w.leaf, w.index_name, coalesce(NOT x.indisvalid, false),
           format('CREATE INDEX CONCURRENTLY IF NOT EXISTS %I ON %I USING ', w.index_name, w.leaf) || w.def
    FROM wanted w
    LEFT JOIN pg_class ic ON ic.relname = w.index_name AND ic.relkind = 'i'
    LEFT JOIN pg_index x ON x.indexrelid = ic.oid
    WHERE x.indexrelid IS NULL OR NOT x.indisvalid
    ORDER BY w.leaf DESC, w.index_name;
$fn$;
