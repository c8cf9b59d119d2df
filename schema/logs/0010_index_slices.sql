-- 0010_index_slices: leaves that close by size as well as by clock, and the index backlog.
--   * A 6-hour leaf holds whatever arrives in 6 hours: at 1,000 logs/s that is 21.6 million rows that
--     searches scan until the leaf is closed and indexed. logs_slice_ahead() bounds that in rows: from
--     the current rate it cuts the hour after the open leaf (still empty, so a cut costs no scan)
--     into slices short enough to hold about max_rows each, e.g. 10-minute slices at 1,600 logs/s with
--     max_rows = 1,000,000. A slice is an ordinary leaf named logs_YYYY_MM_DD_HH_MMSS (UTC start);
--     it closes by clock at its end like any leaf and gets its search indexes then. Only the leaves
--     within `horizon` after the end of the open one are cut; the rest stays one leaf until it
--     comes near, so a rate that falls again does not leave a day of tiny leaves ahead.
--   * logs_cut_open() closes the open leaf itself once it holds max_rows (the first leaf, a sudden
--     rise): it ends at the next second and a new leaf takes the rest of its range.
--   * logs_leaves() lists the leaves with their bounds; logs_search_index_todo() accepts slice names;
--     logs_index_backlog() counts the rows searches scan without an index (docs/query.md "Capacity").

CREATE OR REPLACE FUNCTION logs_leaves()
RETURNS TABLE (leaf text, parent text, starts timestamptz, ends timestamptz)
LANGUAGE sql STABLE AS $fn$
    WITH RECURSIVE tree(oid, parent) AS (
        SELECT 'logs'::regclass::oid, 0::oid
        UNION ALL
        SELECT i.inhrelid, i.inhparent FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
    )
    SELECT c.relname::text, p.relname::text,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz
    FROM tree t JOIN pg_class c ON c.oid = t.oid JOIN pg_class p ON p.oid = t.parent
    WHERE c.relkind = 'r' AND c.relname ~ '^logs_[0-9]{4}_[0-9]{2}(_[0-9]{2}_[0-9]{2}(_[0-9]{4})?)?$'
$fn$;

-- Rows of a leaf as the statistics collector counts them (no scan; a second or so behind).
CREATE OR REPLACE FUNCTION logs_leaf_rows(leaf text) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
    SELECT greatest(coalesce((SELECT s.n_live_tup FROM pg_stat_user_tables s WHERE s.relid = c.oid), 0),
                    c.reltuples::bigint, 0)
    FROM pg_class c WHERE c.oid = to_regclass(leaf)
$fn$;

-- The open leaf's insert counter at the last call of logs_slice_ahead: the rate of the last tick.
CREATE TABLE IF NOT EXISTS logs_slice_rate (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    leaf text NOT NULL,
    at timestamptz NOT NULL,
    inserted bigint NOT NULL
);

-- Cut the leaves that start within `horizon` after the end of the open leaf (the leaf holding `at`,
-- never cut itself) into slices of about
-- max_rows at the current rate, the highest of: rows so far over the time elapsed in the open leaf
-- (at least one minute), the previous leaf's rows over its length, and the open leaf's inserts
-- since the previous call (within 10 minutes) over the time since.
-- Lengths are taken from 1, 2, 5, 10, 15, 30 minutes, 1, 2, 3, 6 hours (never below min_slice); a leaf
-- already no longer than 1.5 x that length, or holding rows, is left alone. Slices reach `horizon`
-- past the open leaf's end; the remainder of a leaf stays one leaf until it comes within the horizon
-- (once the open leaf is a slice, that is while the first slices are open). The DROP and CREATEs lock the month briefly: lock_timeout
-- bounds the wait (a search holding the month makes this call fail; the next one tries again).
-- Returns the number of leaves created (0: nothing to do).
CREATE OR REPLACE FUNCTION logs_slice_ahead(max_rows bigint, min_slice interval, horizon interval,
                                            at timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    cur record;
    nxt record;
    nrows bigint;
    rate float8;
    prev_rate float8;
    ins bigint;
    last record;
    want float8;
    len interval;
    step int;
    t timestamptz;
    t2 timestamptz;
    stop_at timestamptz;
    made int := 0;
    has_rows boolean;
BEGIN
    IF max_rows <= 0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO cur FROM logs_leaves() l WHERE l.starts <= at AND at < l.ends;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    nrows := logs_leaf_rows(cur.leaf);
    rate := nrows / greatest(extract(epoch FROM at - cur.starts), 60);
    -- a leaf just opened has seen little yet: the previous leaf's rate counts as well
    SELECT logs_leaf_rows(p.leaf) / greatest(extract(epoch FROM p.ends - p.starts), 60)
    INTO prev_rate FROM logs_leaves() p WHERE p.ends = cur.starts;
    rate := greatest(rate, coalesce(prev_rate, 0));
    SELECT n_tup_ins INTO ins FROM pg_stat_user_tables WHERE relid = to_regclass(cur.leaf);
    SELECT * INTO last FROM logs_slice_rate WHERE id = 1;
    IF FOUND AND last.leaf = cur.leaf AND at > last.at AND at - last.at < interval '10 minutes'
       AND coalesce(ins, 0) >= last.inserted THEN
        rate := greatest(rate, (coalesce(ins, 0) - last.inserted) / extract(epoch FROM at - last.at));
    END IF;
    INSERT INTO logs_slice_rate (id, leaf, at, inserted) VALUES (1, cur.leaf, at, coalesce(ins, 0))
    ON CONFLICT (id) DO UPDATE SET leaf = excluded.leaf, at = excluded.at, inserted = excluded.inserted;
    IF rate <= 0 THEN
        RETURN 0;
    END IF;
    want := greatest(max_rows / rate, extract(epoch FROM min_slice));
    len := NULL;
    FOREACH step IN ARRAY ARRAY[21600, 10800, 7200, 3600, 1800, 900, 600, 300, 120, 60] LOOP
        IF step <= want THEN
            len := make_interval(secs => step);
            EXIT;
        END IF;
    END LOOP;
    len := greatest(coalesce(len, make_interval(secs => 60)), min_slice);
    PERFORM set_config('lock_timeout', '1000', true);
    FOR nxt IN SELECT * FROM logs_leaves() l
               WHERE l.starts >= cur.ends AND l.starts < cur.ends + horizon AND l.ends - l.starts > len * 1.5
                 AND l.parent <> 'logs'
               ORDER BY l.starts
    LOOP
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', nxt.leaf);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', nxt.leaf) INTO has_rows;
        CONTINUE WHEN has_rows; -- already written to (logs stamped ahead): cutting would move rows
        EXECUTE format('DROP TABLE %I', nxt.leaf);
        t := nxt.starts;
        stop_at := least(nxt.ends, cur.ends + horizon);
        WHILE t < nxt.ends LOOP
            t2 := CASE WHEN t + len <= stop_at THEN t + len ELSE nxt.ends END;
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           'logs_' || to_char(t AT TIME ZONE 'UTC', 'YYYY_MM_DD_HH24_MISS'), nxt.parent,
                           to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00',
                           to_char(t2 AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00');
            made := made + 1;
            t := t2;
        END LOOP;
    END LOOP;
    RETURN made;
END
$fn$;

-- Close the open leaf (the one holding `at`) by size: once it holds max_rows logs and more than
-- min_left of its range is still ahead, it ends at the next whole second and a new leaf,
-- logs_YYYY_MM_DD_HH_MMSS, takes the rest of its range. PostgreSQL cannot shrink a partition's
-- bound in place, so in one transaction: the month is locked (lock_timeout bounds the wait, and so
-- the stall of writers queued behind it), the leaf detached, the logs stamped at or after the cut
-- (stamped ahead by their clients) moved out, the leaf attached again with its shorter bound (which
-- checks its rows: writers wait for that scan, about a second per million rows), and the new leaf
-- created with the moved logs. Returns 1 when it cut, 0 otherwise. logs_slice_ahead makes this rare
-- once the rate is known: it is for the first leaf and for sudden rises.
CREATE OR REPLACE FUNCTION logs_cut_open(max_rows bigint, min_left interval, at timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    cur record;
    cut timestamptz := date_trunc('second', at) + interval '1 second';
    nxt text;
BEGIN
    IF max_rows <= 0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO cur FROM logs_leaves() l WHERE l.starts <= at AND at < l.ends AND l.parent <> 'logs';
    IF NOT FOUND OR cur.ends - cut <= min_left OR logs_leaf_rows(cur.leaf) < max_rows THEN
        RETURN 0;
    END IF;
    nxt := 'logs_' || to_char(cut AT TIME ZONE 'UTC', 'YYYY_MM_DD_HH24_MISS');
    PERFORM set_config('lock_timeout', '1000', true);
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', cur.parent);
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', cur.parent, cur.leaf);
    EXECUTE format('CREATE TEMP TABLE ldg_cut_moved ON COMMIT DROP AS SELECT * FROM %I WHERE "timestamp" >= %L',
                   cur.leaf, cut);
    EXECUTE format('DELETE FROM %I WHERE "timestamp" >= %L', cur.leaf, cut);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', cur.parent, cur.leaf,
                   cur.starts, cut);
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', nxt, cur.parent, cut, cur.ends);
    EXECUTE format('INSERT INTO %I SELECT * FROM ldg_cut_moved', nxt);
    RETURN 1;
END
$fn$;

-- The same todo list as 0008, over every leaf logs_leaves() knows (6-hour leaves and slices).
CREATE OR REPLACE FUNCTION logs_search_index_todo(closed_before timestamptz)
RETURNS TABLE (leaf text, index_name text, invalid boolean, create_sql text)
LANGUAGE sql STABLE AS $fn$
    WITH wanted AS (
        SELECT l.leaf, l.leaf || s.suffix AS index_name, s.def
        FROM logs_leaves() l CROSS JOIN (VALUES
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

-- What searches read without a search index, as of `at`: every leaf that has started and holds rows
-- but lacks a valid one of its three indexes (the open leaf always). unindexed_rows: their rows
-- (statistics, not a count); oldest_start: the start of the oldest such leaf (its age is how long
-- the oldest unindexed log may have waited); backlog_*: the same for the closed leaves only (ended
-- by closed_before, i.e. due for the search_index job).
CREATE OR REPLACE FUNCTION logs_index_backlog(closed_before timestamptz, at timestamptz DEFAULT now())
RETURNS TABLE (unindexed_leaves bigint, unindexed_rows bigint, oldest_start timestamptz,
               backlog_leaves bigint, backlog_rows bigint, backlog_oldest_end timestamptz)
LANGUAGE sql STABLE AS $fn$
    WITH l AS (
        SELECT l.leaf, l.starts, l.ends, logs_leaf_rows(l.leaf) AS nrows,
               (SELECT count(*) FROM pg_class ic JOIN pg_index x ON x.indexrelid = ic.oid
                WHERE ic.relkind = 'i' AND x.indisvalid
                  AND ic.relname IN (l.leaf || '_fts', l.leaf || '_trgm', l.leaf || '_attrs')) AS built
        FROM logs_leaves() l
        WHERE l.starts <= at
    ), u AS (
        SELECT * FROM l WHERE built < 3 AND nrows > 0
    )
    SELECT count(*), coalesce(sum(nrows), 0)::bigint, min(starts),
           count(*) FILTER (WHERE ends <= closed_before),
           coalesce(sum(nrows) FILTER (WHERE ends <= closed_before), 0)::bigint,
           min(ends) FILTER (WHERE ends <= closed_before)
    FROM u
$fn$;
