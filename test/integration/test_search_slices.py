"""Leaves that close by size as well as by clock (schema/logs/0010, storage/slicing.c) and the search
index backlog on /metrics and /health/deep (docs/query.md "Capacity")."""

import datetime

import psycopg
import pytest
import requests

from conftest import scaled
from ldg_http import metric, parse_metrics, wait_until

SLOW = {k: 3600000 for k in ("search_index_interval_ms", "hourly_metrics_interval_ms",
                              "available_routes_interval_ms", "usage_stats_interval_ms", "error_rate_interval_ms",
                              "log_volume_interval_ms", "top_errors_interval_ms")}
UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC)
# A 6-hour leaf of a month long past (before the plain months of schema 0001), so the leaves cut here
# are nobody else's.
PAST = datetime.datetime(2024, 3, 4, 6, tzinfo=UTC)
PID = -23  # rows of these tests only


def leaves(conn, since, until):
    return [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT leaf, starts, ends FROM logs_leaves() WHERE starts >= %s AND starts < %s ORDER BY starts",
        (since, until))]


def fill(conn, start, n, span):
    """n logs of project PID spread evenly over span (a timedelta) from start."""
    conn.execute("SELECT logs_ensure_partition(%s)", (start,))
    conn.execute(
        "INSERT INTO logs (project_id, timestamp, level, log_type, message, attributes) "
        "SELECT %s, %s::timestamptz + g * (%s::interval / %s::int), 'info', 'logger', 'slice probe ' || g, jsonb_build_object('k', g %% 7) "
        "FROM generate_series(0, %s - 1) g", (PID, start, span, n, n))


def leaf_rows(conn, leaf):
    return conn.execute("SELECT logs_leaf_rows(%s)", (leaf,)).fetchone()[0]


@pytest.fixture
def logs(pg, ledgerd):
    ledgerd(extra_ini={"analytics": SLOW, "roles": {"storage": False}})  # migrated
    c = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)
    yield c
    c.execute("DELETE FROM logs WHERE project_id = %s", (PID,))
    c.close()


def test_leaves_ahead_are_cut_to_the_rate(logs):
    """6,000 logs in the 5.5 hours of a leaf so far (0.3/s) with max_rows 1,000: the next leaf,
    starting within the hour, is cut into 30-minute slices (1,000 / 0.3 s rounded down to a step)
    up to about an hour ahead; the rest stays one leaf; lookups route into the slices."""
    fill(logs, PAST, 6000, datetime.timedelta(hours=5, minutes=30))
    cur = f"logs_{PAST:%Y_%m_%d}_06"
    wait_until(lambda: leaf_rows(logs, cur) >= 6000, 10, interval=0.2, what="statistics of the open leaf")
    at = PAST + datetime.timedelta(hours=5, minutes=30)
    made = logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)", (at,)).fetchone()[0]
    nxt = PAST + datetime.timedelta(hours=6)
    half = datetime.timedelta(minutes=30)
    want = [(f"logs_{nxt:%Y_%m_%d}_12_0000", nxt, nxt + half),
            (f"logs_{nxt:%Y_%m_%d}_12_3000", nxt + half, nxt + 2 * half),
            (f"logs_{nxt:%Y_%m_%d}_13_0000", nxt + 2 * half, nxt + datetime.timedelta(hours=6))]
    assert made == 3
    assert leaves(logs, nxt, nxt + datetime.timedelta(hours=6)) == want
    # the open leaf is never cut, and a second call finds nothing to do
    assert leaves(logs, PAST, nxt) == [(cur, PAST, nxt)]
    assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)", (at,)).fetchone()[0] == 0
    # rows land in their slice
    logs.execute("INSERT INTO logs (project_id, timestamp, level, log_type, message) "
                 "VALUES (%s, %s, 'info', 'logger', 'in the second slice')", (PID, nxt + half + datetime.timedelta(minutes=1)))
    part = logs.execute("SELECT tableoid::regclass::text FROM logs WHERE project_id = %s AND message = "
                        "'in the second slice'", (PID,)).fetchone()[0]
    assert part == want[1][0]
    # a slow leaf is left alone: 10 logs in 5.5 hours would need slices longer than 6 hours
    later = PAST + datetime.timedelta(days=1)
    fill(logs, later, 10, datetime.timedelta(hours=5, minutes=30))
    assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)",
                        (later + datetime.timedelta(hours=5, minutes=30),)).fetchone()[0] == 0
    # a leaf that already holds rows (logs stamped ahead) is not cut: that would move rows
    day2 = PAST + datetime.timedelta(days=2)
    fill(logs, day2, 6000, datetime.timedelta(hours=5, minutes=30))
    fill(logs, day2 + datetime.timedelta(hours=7), 1, datetime.timedelta(seconds=1))
    wait_until(lambda: leaf_rows(logs, f"logs_{day2:%Y_%m_%d}_06") >= 6000, 10, interval=0.2, what="statistics")
    assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)",
                        (day2 + datetime.timedelta(hours=5, minutes=30),)).fetchone()[0] == 0
    assert [x[0] for x in leaves(logs, day2 + datetime.timedelta(hours=6), day2 + datetime.timedelta(hours=7))] == \
        [f"logs_{day2:%Y_%m_%d}_12"]


def test_a_rise_is_seen_from_one_call_to_the_next(logs):
    """The rate is also the open leaf's inserts since the previous call: 600 logs in 5 hours would
    leave the next leaf whole, but 6,000 more in the minute since the last call make it 1-minute
    slices for its first hour."""
    day = PAST + datetime.timedelta(days=15)
    leaf = f"logs_{day:%Y_%m_%d}_06"

    def inserted():
        return logs.execute("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relid = %s::regclass",
                            (leaf,)).fetchone()[0]
    fill(logs, day, 600, datetime.timedelta(hours=5))
    wait_until(lambda: inserted() >= 600 and leaf_rows(logs, leaf) >= 600, 10, interval=0.2, what="statistics")
    t1 = day + datetime.timedelta(hours=5)
    assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)", (t1,)).fetchone()[0] == 0
    fill(logs, t1, 6000, datetime.timedelta(seconds=59))
    wait_until(lambda: inserted() >= 6600, 10, interval=0.2, what="statistics")
    t2 = t1 + datetime.timedelta(seconds=60)
    assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)", (t2,)).fetchone()[0] == 61
    nxt = day + datetime.timedelta(hours=6)
    got = leaves(logs, nxt, nxt + datetime.timedelta(hours=6))
    assert got[0] == (f"logs_{nxt:%Y_%m_%d}_12_0000", nxt, nxt + datetime.timedelta(minutes=1))
    assert got[-1] == (f"logs_{nxt:%Y_%m_%d}_13_0000", nxt + datetime.timedelta(hours=1),
                       nxt + datetime.timedelta(hours=6))


def test_the_open_leaf_is_closed_by_size(logs):
    """Once the open leaf holds max_rows it ends at the next second and a new leaf takes the rest of
    its range: every log stays, with its id, in the leaf its timestamp now belongs to (logs stamped
    ahead of the cut move); below max_rows, or near its end, nothing happens."""
    day = PAST + datetime.timedelta(days=10)
    leaf = f"logs_{day:%Y_%m_%d}_06"
    fill(logs, day, 3000, datetime.timedelta(minutes=30))
    fill(logs, day + datetime.timedelta(hours=2), 5, datetime.timedelta(minutes=5))  # stamped ahead
    wait_until(lambda: leaf_rows(logs, leaf) >= 3005, 10, interval=0.2, what="statistics of the open leaf")
    before = dict(logs.execute("SELECT id, \"timestamp\" FROM logs WHERE project_id = %s AND \"timestamp\" >= %s "
                               "AND \"timestamp\" < %s", (PID, day, day + datetime.timedelta(hours=6))).fetchall())
    at = day + datetime.timedelta(minutes=30, microseconds=500)
    assert logs.execute("SELECT logs_cut_open(5000, '2 minutes', %s)", (at,)).fetchone()[0] == 0  # too few
    assert logs.execute("SELECT logs_cut_open(1000, '2 minutes', %s)", (at,)).fetchone()[0] == 1
    cut = day + datetime.timedelta(minutes=30, seconds=1)
    new = f"logs_{day:%Y_%m_%d}_06_3001"
    assert leaves(logs, day, day + datetime.timedelta(hours=6)) == [
        (leaf, day, cut), (new, cut, day + datetime.timedelta(hours=6))]
    after = logs.execute("SELECT id, \"timestamp\", tableoid::regclass::text FROM logs WHERE project_id = %s "
                         "AND \"timestamp\" >= %s AND \"timestamp\" < %s",
                         (PID, day, day + datetime.timedelta(hours=6))).fetchall()
    assert {i: t for i, t, _ in after} == before
    assert {p for i, t, p in after if t >= cut} == {new} and sum(1 for _, t, _ in after if t >= cut) == 5
    assert {p for i, t, p in after if t < cut} == {leaf}
    # the leaf now ends at the cut: too little of it is left to cut again
    assert logs.execute("SELECT logs_cut_open(1000, '2 minutes', %s)", (cut - datetime.timedelta(seconds=1),)
                        ).fetchone()[0] == 0
    # both keep the partitioned indexes of logs (the detached leaf's were attached again)
    for name in (leaf, new):
        n = logs.execute("SELECT count(*) FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
                         "WHERE x.indrelid = %s::regclass", (name,)).fetchone()[0]
        total = logs.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (name,)).fetchone()[0]
        assert n == total >= 4, (name, n, total)


def test_a_leaf_that_would_stay_whole_is_left_alone(logs):
    """A leaf within the horizon whose first slice would already reach past it came out as one
    piece: the same range dropped and created again (as a slice) on every call, under an ACCESS
    EXCLUSIVE lock (schema 0014). It is left as it is until a call can cut it in two or more."""
    day = PAST + datetime.timedelta(days=20)
    leaf = f"logs_{day:%Y_%m_%d}_06"
    fill(logs, day, 6000, datetime.timedelta(hours=5, minutes=30))  # 0.3/s: 30-minute slices for 1,000
    wait_until(lambda: leaf_rows(logs, leaf) >= 6000, 10, interval=0.2, what="statistics of the open leaf")
    nxt = day + datetime.timedelta(hours=6)
    name = f"logs_{nxt:%Y_%m_%d}_12"
    oid = logs.execute("SELECT %s::regclass::oid", (name,)).fetchone()[0]
    at = day + datetime.timedelta(hours=5, minutes=30)
    for _ in range(2):
        assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '10 minutes', %s)", (at,)).fetchone()[0] == 0
    assert logs.execute("SELECT %s::regclass::oid", (name,)).fetchone()[0] == oid
    assert leaves(logs, nxt, nxt + datetime.timedelta(hours=6)) == [(name, nxt, nxt + datetime.timedelta(hours=6))]
    # with a horizon that holds two slices it is cut as before
    assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)", (at,)).fetchone()[0] == 3


def test_logs_stamped_ahead_do_not_close_the_open_leaf(logs):
    """Only the logs that stay count towards max_rows: logs stamped ahead of the cut (a client's
    clock running ahead) would move into the new leaf and make it due at once, a one-second leaf
    per call for as long as they are ahead (schema 0014)."""
    day = PAST + datetime.timedelta(days=21)
    leaf = f"logs_{day:%Y_%m_%d}_06"
    fill(logs, day, 500, datetime.timedelta(minutes=30))
    fill(logs, day + datetime.timedelta(hours=3), 1000, datetime.timedelta(minutes=10))  # ahead
    wait_until(lambda: leaf_rows(logs, leaf) >= 1500, 10, interval=0.2, what="statistics of the open leaf")
    at = day + datetime.timedelta(hours=1)
    assert logs.execute("SELECT logs_cut_open(1000, '2 minutes', %s)", (at,)).fetchone()[0] == 0
    assert logs.execute("SELECT logs_cut_open(500, '2 minutes', %s)", (at,)).fetchone()[0] == 1
    new = f"logs_{day:%Y_%m_%d}_07_0001"
    wait_until(lambda: leaf_rows(logs, new) >= 1000, 10, interval=0.2, what="statistics of the new leaf")
    for k in (1, 2, 3):
        assert logs.execute("SELECT logs_cut_open(500, '2 minutes', %s)",
                            (at + datetime.timedelta(seconds=k),)).fetchone()[0] == 0
    assert [x[0] for x in leaves(logs, day, day + datetime.timedelta(hours=6))] == [leaf, new]


def test_slices_get_their_search_indexes_and_the_backlog_drains(ledgerd, logs):
    """Closed slices are indexed like any leaf. Before that, the backlog of closed leaves waiting
    for indexes is on /metrics and /health/deep says it is growing; once built, both say so."""
    base = PAST + datetime.timedelta(days=5)
    fill(logs, base, 6000, datetime.timedelta(hours=5, minutes=30))
    wait_until(lambda: leaf_rows(logs, f"logs_{base:%Y_%m_%d}_06") >= 6000, 10, interval=0.2, what="statistics")
    assert logs.execute("SELECT logs_slice_ahead(1000, '1 minute', '1 hour', %s)",
                        (base + datetime.timedelta(hours=5, minutes=30),)).fetchone()[0] == 3
    first = base + datetime.timedelta(hours=6)
    slice1 = f"logs_{first:%Y_%m_%d}_12_0000"
    fill(logs, first, 500, datetime.timedelta(minutes=29))
    wait_until(lambda: leaf_rows(logs, slice1) >= 500, 10, interval=0.2, what="statistics of the slice")

    srv = ledgerd(extra_ini={"analytics": {**SLOW, "index_grace_ms": 0, "index_backlog_max_age_ms": 1000},
                             "roles": {"storage": False}})

    def sample():
        m = parse_metrics(requests.get(srv.url + "/metrics", timeout=scaled(5)).text)
        deep = requests.get(srv.url + "/health/deep", timeout=scaled(5)).json()
        return m, deep["roles"]["analytics"].get("search_backlog")

    def sampled():
        m, b = sample()
        return b is not None and any(n == "ledger_search_index_backlog_rows" for n, _, _ in m)
    wait_until(sampled, 20, interval=0.2, what="a backlog sample")
    m, b = sample()
    assert metric(m, "ledger_search_index_backlog_rows") >= 6500
    assert metric(m, "ledger_search_index_backlog_leaves") >= 2
    assert metric(m, "ledger_search_unindexed_rows") >= 6500
    assert metric(m, "ledger_search_oldest_unindexed_age_seconds") > 365 * 86400
    assert metric(m, "ledger_search_index_backlog_age_seconds") > 365 * 86400
    assert b["status"].startswith("growing"), b
    assert b["backlog_rows"] >= 6500 and b["backlog_leaves"] >= 2 and b["max_age_ms"] == 1000, b

    srv.stop()
    srv = ledgerd(extra_ini={"analytics": {**SLOW, "search_index_interval_ms": 1000, "index_grace_ms": 0,
                                           "index_max_per_run": 10000, "index_backlog_max_age_ms": 1000},
                             "roles": {"storage": False}})

    def drained():
        m, b = sample()
        return b is not None and b["backlog_leaves"] == 0 and metric(m, "ledger_search_index_backlog_rows") == 0
    wait_until(drained, 120, interval=0.5, what="the backlog drained")
    m, b = sample()
    assert b["status"] == "healthy" and b["backlog_age_ms"] == 0, b
    assert metric(m, "ledger_search_index_backlog_age_seconds") == 0
    built = sorted(r[0] for r in logs.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)",
        (slice1, [slice1 + k for k in ("_attrs", "_fts", "_trgm")])))
    assert built == [slice1 + "_attrs", slice1 + "_fts", slice1 + "_trgm"]
    # the full-text index of the slice serves the search language's expression
    fts = ("to_tsvector('simple'::regconfig, ledger_search_words(coalesce(message, '') || ' ' || "
           "coalesce(error_message, '') || ' ' || coalesce(error_type, '')))")
    logs.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in logs.execute(
        f"EXPLAIN SELECT id FROM {slice1} WHERE {fts} @@ plainto_tsquery('simple', 'probe')").fetchall())
    assert slice1 + "_fts" in plan, plan
    logs.execute("RESET enable_seqscan")


def test_storage_role_closes_the_open_leaf_and_cuts_the_leaves_ahead(ledgerd, pg):
    """With partition_max_rows set, the storage role itself closes the open leaf by size and cuts the
    hour after it at the current rate (here 1 row per leaf: the open leaf ends within seconds and
    the slices ahead are of 1 minute). In a logs database of its own: this changes the layout of
    the present. 400 logs: even averaged over a whole 6-hour leaf (the rate a first call sees
    late in the leaf) that is one per 54 s, so the slices are of 1 minute at any time of day."""
    dbname = "ledger_logs_slices"
    with psycopg.connect(pg.dsn("postgres"), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {dbname}")
        c.execute(f"CREATE DATABASE {dbname}")
    now = datetime.datetime.now(UTC)
    srv = ledgerd(extra_ini={"analytics": SLOW, "pg_logs": {"dbname": dbname},
                             "storage": {"partition_max_rows": 1, "slice_interval_ms": 1000}})
    conn = psycopg.connect(pg.dsn(dbname), autocommit=True)
    try:
        conn.execute("SELECT logs_ensure_partition(%s)", (now + datetime.timedelta(hours=7),))
        conn.execute("SELECT logs_ensure_partition(%s)", (now,))
        cur = conn.execute("SELECT leaf, starts FROM logs_leaves() WHERE starts <= %s AND %s < ends",
                           (now, now)).fetchone()
        # the logs of the last 30 s, within the open leaf (it may have begun less than 30 s ago)
        first = max(cur[1], now - datetime.timedelta(seconds=30))
        fill(conn, first, 400, max(now - datetime.timedelta(seconds=1) - first, datetime.timedelta(0)))

        def closed():
            return conn.execute("SELECT ends FROM logs_leaves() WHERE leaf = %s", (cur[0],)).fetchone()[0] < \
                now + datetime.timedelta(minutes=5)
        wait_until(closed, 30, interval=0.5, what="the open leaf closed by size")
        ends = conn.execute("SELECT ends FROM logs_leaves() WHERE leaf = %s", (cur[0],)).fetchone()[0]
        assert conn.execute("SELECT count(*) FROM logs WHERE tableoid = %s::regclass", (cur[0],)).fetchone()[0] == 400

        def cut():
            return [x for x in leaves(conn, ends, ends + datetime.timedelta(hours=8))
                    if x[2] - x[1] <= datetime.timedelta(minutes=1)]
        slices = wait_until(cut, 30, interval=0.5, what="1-minute slices ahead")
        assert all(len(x[0]) == len("logs_YYYY_MM_DD_HH_MMSS") for x in slices), slices
        # contiguous: every instant from the old leaf's start on still has exactly one leaf
        span = leaves(conn, cur[1], now + datetime.timedelta(hours=7))
        assert span[0][0] == cur[0]
        assert all(a[2] == b[1] for a, b in zip(span, span[1:])), \
            "\n".join(f"{x[0]} {x[1]:%H:%M:%S} {x[2]:%H:%M:%S}" for x in span)
        assert span[-1][2] >= now + datetime.timedelta(hours=7)
        # a log still finds its leaf
        fill(conn, datetime.datetime.now(UTC), 1, datetime.timedelta(seconds=1))
    finally:
        conn.close()
        srv.stop()
        with psycopg.connect(pg.dsn("postgres"), autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
