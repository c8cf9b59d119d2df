-- Full-text search finds words inside URL paths, dotted names and snake_case: ASCII punctuation
-- separates words. The message "GET /api/orders slow" is indexed as get, api, orders, slow (before,
-- PostgreSQL's parser kept "/api/orders" as one file-path token and `orders` found nothing).
-- Queries normalise their words the same way (src/query/qlang.c), and the live tail's in-memory
-- evaluator (src/query/qeval.c) already split at every ASCII character that is not a letter or digit.

-- The text that is indexed: every run of ASCII punctuation becomes one space. Non-ASCII text is left
-- alone ([[:punct:]] is ASCII punctuation under the C locale these clusters use).
CREATE FUNCTION ledger_search_words(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT regexp_replace(t, '[[:punct:]]+', ' ', 'g')
$$;

-- The search index of a closed leaf indexes the normalised text.
CREATE OR REPLACE FUNCTION logs_search_index_todo(closed_before timestamptz)
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
            ('_fts', 'gin (to_tsvector(''simple''::regconfig, ledger_search_words(coalesce(message, '''') || '' '' || '
                     'coalesce(error_message, '''') || '' '' || coalesce(error_type, ''''))))'),
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

-- Indexes built over the old expression no longer serve the queries: drop them; the analytics role's
-- search_index job builds the new ones (newest leaves first). Until then a search over an older leaf
-- scans it.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.relname FROM pg_class c
             WHERE c.relkind = 'i' AND c.relname ~ '^logs_[0-9]{4}_[0-9]{2}(_[0-9]{2}_[0-9]{2})?_fts$'
    LOOP
        EXECUTE format('DROP INDEX %I', r.relname);
    END LOOP;
END
$$;
