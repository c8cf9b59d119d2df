-- 0014_slice_once: logs_slice_ahead no longer drops and re-creates a leaf it would not cut.
--   A leaf that starts within the horizon but whose first slice would already reach past it (the
--   remainder of a cut leaf, with a rate that asks for slices longer than what is left of the
--   horizon) came out as one piece: the same leaf, dropped and created again on every tick, each
--   time under an ACCESS EXCLUSIVE lock. Such a leaf is now left alone until a later tick can cut it
--   into two or more pieces.
--   logs_cut_open counts only the logs that stay in the open leaf: logs stamped ahead of the cut (a
--   client's clock running ahead) used to count too, moved into the new leaf and made it due at the
--   next tick, which moved them again: a chain of one-second leaves while they were ahead.
--   Otherwise as in 0010.

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
        stop_at := least(nxt.ends, cur.ends + horizon);
        -- one piece would be the same leaf again (the query keeps only leaves longer than 1.5 x len)
        CONTINUE WHEN nxt.starts + len > stop_at;
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', nxt.leaf);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', nxt.leaf) INTO has_rows;
        CONTINUE WHEN has_rows; -- already written to (logs stamped ahead): cutting would move rows
        EXECUTE format('DROP TABLE %I', nxt.leaf);
        t := nxt.starts;
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

CREATE OR REPLACE FUNCTION logs_cut_open(max_rows bigint, min_left interval, at timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    cur record;
    cut timestamptz := date_trunc('second', at) + interval '1 second';
    nxt text;
    nrows bigint;
    ahead bigint;
BEGIN
    IF max_rows <= 0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO cur FROM logs_leaves() l WHERE l.starts <= at AND at < l.ends AND l.parent <> 'logs';
    IF NOT FOUND OR cur.ends - cut <= min_left THEN
        RETURN 0;
    END IF;
    nrows := logs_leaf_rows(cur.leaf);
    IF nrows < max_rows THEN
        RETURN 0;
    END IF;
    -- logs stamped ahead (a client's clock) would move to the new leaf and make it due at once:
    -- count only those that stay (a scan of the block ranges holding logs ahead, once a cut is due)
    EXECUTE format('SELECT count(*) FROM %I WHERE "timestamp" >= %L', cur.leaf, cut) INTO ahead;
    IF nrows - ahead < max_rows THEN
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
