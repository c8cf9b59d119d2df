"""The analytics role (reference §8; decisions D8): search indexes of closed partitions, hourly aggregated
metrics with backfill, available routes, usage persistence and the Redis metric caches; every job
once per schedule slot across processes, idempotent, with health in /health/deep."""

import datetime
import json
import re
import time

import psycopg
import pytest
import requests

from conftest import scaled
from ldg_http import wait_until

FAST = {"search_index_interval_ms": 1000, "index_grace_ms": 0, "hourly_metrics_interval_ms": 1000,
        "available_routes_interval_ms": 1000, "usage_stats_interval_ms": 1000, "error_rate_interval_ms": 1000,
        "log_volume_interval_ms": 1000, "top_errors_interval_ms": 1000}
SLOW = {k: 3600000 for k in FAST if k.endswith("interval_ms")}

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture(autouse=True)
def _now():
    """NOW as of each test, not of the module's import: a whole suite can run across a leaf's or a
    day's end."""
    global NOW
    NOW = datetime.datetime.now(datetime.timezone.utc)


def jobs(srv):
    r = requests.get(srv.url + "/health/deep", timeout=scaled(5))
    return r.json()["roles"]["analytics"]["jobs"]


def wait_runs(srv, job, n, timeout=20):
    def ok():
        j = jobs(srv)[job]
        return j["runs"] - j["failures"] >= n and not j["running"]
    wait_until(ok, timeout, interval=0.1, what=f"{n} runs of {job}")
    j = jobs(srv)[job]
    assert j["last_error"] is None, j
    return j


def wait_run_after(srv, job, timeout=20):
    """Wait for a run of job that started after this call: a run counted or in progress now may
    have started before the test's rows and marks were in place (jobs first run 1 s after start)."""
    j = jobs(srv)[job]
    return wait_runs(srv, job, j["runs"] - j["failures"] + (2 if j["running"] else 1), timeout)


class Env:
    def __init__(self, ledgerd, db, pg, analytics):
        self.srv = ledgerd(extra_ini={"analytics": analytics, "roles": {"storage": False}})
        d = db()
        self.auth = d
        self.acct = d.account()
        self.pid = d.project(self.acct)
        self.logs = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)

    def insert(self, rows):
        with self.logs.cursor() as cur:
            for r in rows:
                cur.execute("SELECT logs_ensure_partition(%s)", (r["timestamp"],))
            with cur.copy("COPY logs (project_id, timestamp, level, log_type, message, attributes, error_type, "
                          "error_message) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row([self.pid, r["timestamp"], r.get("level", "info"), r.get("log_type", "console"),
                                  r.get("message", "hello"), json.dumps(r["attributes"]) if r.get("attributes") else None,
                                  r.get("error_type"), r.get("error_message")])


@pytest.fixture
def env(ledgerd, db, pg):
    made = []

    def make(analytics):
        e = Env(ledgerd, db, pg, analytics)
        made.append(e)
        return e

    yield make
    for e in made:
        e.logs.close()


def indexes_of(conn, leaf):
    """The search indexes of a leaf (not the btree/BRIN ones inherited from logs)."""
    return sorted(r[0] for r in conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname = ANY(%s)",
        (leaf, [leaf + s for s in ("_fts", "_trgm", "_attrs")])))


def leaf_of(ts):
    return f"logs_{ts:%Y_%m_%d}_{ts.hour // 6 * 6:02d}"


def test_partitions_are_six_hours_under_monthly(pg, ledgerd):
    ledgerd(extra_ini={"analytics": SLOW})
    with psycopg.connect(pg.dsn("ledger_logs"), autocommit=True) as c:
        month = f"logs_{NOW:%Y_%m}"
        kids = [r[0] for r in c.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1", (month,))]
        first = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (first + datetime.timedelta(days=32)).replace(day=1)
        want = []
        t = first
        while t < nxt:
            want.append(leaf_of(t))
            t += datetime.timedelta(hours=6)
        assert kids == want
        # a row lands in its leaf
        c.execute("INSERT INTO logs (project_id, timestamp, level, log_type) VALUES (-1, %s, 'info', 'console')", (NOW,))
        part = c.execute("SELECT tableoid::regclass::text FROM logs WHERE project_id = -1").fetchone()[0]
        assert part == leaf_of(NOW)
        c.execute("DELETE FROM logs WHERE project_id = -1")


def test_search_indexes_on_closed_partitions_only(env):
    e = env({**SLOW, "search_index_interval_ms": 1000, "index_grace_ms": 0})
    past = (NOW - datetime.timedelta(days=2)).replace(hour=(NOW.hour // 6) * 6 + 1, minute=0)
    e.insert([{"timestamp": past + datetime.timedelta(seconds=i), "message": f"needle{i % 3} haystack",
               "attributes": {"k": i % 5}} for i in range(300)] +
             [{"timestamp": NOW - datetime.timedelta(seconds=5), "message": "needle0 today"}])
    closed, today = leaf_of(past), leaf_of(NOW)
    wait_runs(e.srv, "search_index", 1)
    wait_until(lambda: len(indexes_of(e.logs, closed)) >= 3, 30, interval=0.2, what="indexes built")
    assert indexes_of(e.logs, closed) == [closed + "_attrs", closed + "_fts", closed + "_trgm"]
    assert indexes_of(e.logs, today) == [], "the open partition must not carry GIN indexes"
    # the planner uses them for a search over the closed partition
    fts = ("to_tsvector('simple'::regconfig, ledger_search_words(coalesce(message, '') || ' ' || "
           "coalesce(error_message, '') || ' ' || coalesce(error_type, '')))")
    e.logs.execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in e.logs.execute(
        f"EXPLAIN SELECT id FROM {closed} WHERE {fts} @@ plainto_tsquery('simple', 'needle1')").fetchall())
    assert closed + "_fts" in plan, plan
    plan = "\n".join(r[0] for r in e.logs.execute(
        f"EXPLAIN SELECT id FROM {closed} WHERE attributes @> '{{\"k\": 3}}'").fetchall())
    assert closed + "_attrs" in plan, plan
    # idempotent: the next runs find nothing to do on that partition
    wait_runs(e.srv, "search_index", 3)
    assert indexes_of(e.logs, closed) == [closed + "_attrs", closed + "_fts", closed + "_trgm"]


def test_hourly_metrics_backfill_idempotent_and_routes(env, rc):
    # The current hour when this test starts, not when the module was imported: a whole suite can
    # run across an hour boundary (this test itself lasts seconds).
    left = 3600 - time.time() % 3600
    if left < 20:  # the job must first run within the hour it started in
        time.sleep(left + 0.5)
    HOUR = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
    e = env({**SLOW, "hourly_metrics_interval_ms": 1500, "available_routes_interval_ms": 1000})
    rows = []
    for h in (1, 2, 3):
        start = HOUR - datetime.timedelta(hours=h)
        for i in range(20 * h):
            path = ["/users/{id}", "/orders", "/health"][i % 3]
            rows.append({"timestamp": start + datetime.timedelta(seconds=i * 7), "level": "info",
                         "log_type": "endpoint", "attributes": {"endpoint": {
                             "method": "GET" if i % 2 else "POST", "path": path,
                             "status_code": 500 if i % 5 == 0 else 200, "duration_ms": float(i)}}})
        rows += [{"timestamp": start + datetime.timedelta(seconds=5), "level": "error", "log_type": "exception",
                  "error_type": "E", "error_message": "m"}] * h
    e.insert(rows)
    # the mark says hours up to H-4 are done: H-3..H-1 are missed hours to backfill
    mark = int(HOUR.timestamp()) // 3600 - 4
    for _ in range(100):  # a run that read the old mark and is still running would move it forward again
        rc.set("ledger:analytics:hourly_metrics:done", mark)
        if not jobs(e.srv)["hourly_metrics"]["running"]:
            break
        time.sleep(0.05)
    wait_run_after(e.srv, "hourly_metrics")

    def table():
        return sorted(e.logs.execute(
            "SELECT date, hour, metric_type, endpoint_method, endpoint_path, log_level, log_type, log_count, "
            "error_count, round(avg_duration_ms::numeric, 3), min_duration_ms, max_duration_ms, p95_duration_ms, "
            "p99_duration_ms, p50_duration_ms FROM aggregated_metrics WHERE project_id = %s", (e.pid,)).fetchall())

    want = sorted(e.logs.execute(
        "WITH s AS (SELECT * FROM logs WHERE project_id = %s), "
        "ep AS (SELECT to_char(date_trunc('hour', timestamp AT TIME ZONE 'UTC'), 'YYYYMMDD') d, "
        "extract(hour FROM timestamp AT TIME ZONE 'UTC')::int h, attributes#>>'{endpoint,method}' m, "
        "attributes#>>'{endpoint,path}' p, (attributes#>>'{endpoint,status_code}')::int st, "
        "(attributes#>>'{endpoint,duration_ms}')::float8 du FROM s WHERE log_type = 'endpoint') "
        "SELECT d, h, 'endpoint', m, p, NULL, NULL, count(*), count(*) FILTER (WHERE st >= 400), "
        "round(avg(du)::numeric, 3), round(min(du))::int, round(max(du))::int, "
        "round(percentile_cont(0.95) WITHIN GROUP (ORDER BY du))::int, "
        "round(percentile_cont(0.99) WITHIN GROUP (ORDER BY du))::int, "
        "round(percentile_cont(0.5) WITHIN GROUP (ORDER BY du))::int FROM ep GROUP BY d, h, m, p "
        "UNION ALL SELECT to_char(timestamp AT TIME ZONE 'UTC', 'YYYYMMDD'), extract(hour FROM timestamp AT TIME "
        "ZONE 'UTC')::int, 'exception', NULL, NULL, NULL, NULL, count(*), count(*), NULL, NULL, NULL, NULL, NULL, "
        "NULL FROM s WHERE log_type = 'exception' GROUP BY 1, 2 "
        "UNION ALL SELECT to_char(timestamp AT TIME ZONE 'UTC', 'YYYYMMDD'), extract(hour FROM timestamp AT TIME "
        "ZONE 'UTC')::int, 'log_volume', NULL, NULL, level, log_type, count(*), count(*) FILTER (WHERE level IN "
        "('error', 'critical')), NULL, NULL, NULL, NULL, NULL, NULL FROM s GROUP BY 1, 2, level, log_type",
        (e.pid,)).fetchall())
    assert table() == want
    done = int(rc.get("ledger:analytics:hourly_metrics:done"))
    assert done == int(HOUR.timestamp()) // 3600 - 1
    # runs again (the last hour is redone): same table, nothing doubled
    runs = jobs(e.srv)["hourly_metrics"]["runs"]
    wait_runs(e.srv, "hourly_metrics", runs + 1)
    assert table() == want
    # available routes from the aggregated endpoint paths
    wait_until(lambda: e.auth.one("SELECT available_routes FROM projects WHERE id = %s", e.pid)[0], 15,
               what="available_routes")
    wait_runs(e.srv, "available_routes", 1)
    assert e.auth.one("SELECT available_routes FROM projects WHERE id = %s", e.pid)[0] == [
        "/health", "/orders", "/users/{id}"]


def test_usage_and_metric_caches(env, rc):
    e = env({**SLOW, "usage_stats_interval_ms": 1000, "error_rate_interval_ms": 1000,
             "log_volume_interval_ms": 1000, "top_errors_interval_ms": 1000})
    today = NOW.strftime("%Y%m%d")
    rc.set(f"usage:{e.pid}:{today}", 1234)
    e.insert([{"timestamp": NOW - datetime.timedelta(minutes=m), "level": lv}
              for m in range(0, 120, 7) for lv in ("error", "critical", "info")])
    e.logs.execute("INSERT INTO error_groups (project_id, fingerprint, error_type, error_message, first_seen, "
                   "last_seen, occurrence_count) VALUES (%s, %s, 'E', 'boom', now() - interval '2 hours', now(), 7), "
                   "(%s, %s, 'F', 'bang', now() - interval '1 hour', now(), 9)",
                   (e.pid, "a" * 64, e.pid, "b" * 64))
    for job in ("usage_stats", "error_rate", "log_volume", "top_errors"):
        wait_run_after(e.srv, job)
    assert e.auth.one("SELECT logs_ingested FROM daily_usage WHERE project_id = %s AND date = %s",
                      e.pid, NOW.date())[0] == 1234
    usage = json.loads(rc.get(f"metrics:usage_stats:{e.pid}"))
    assert usage[0] == {"date": NOW.strftime("%Y-%m-%d"), "log_count": 1234, "daily_quota": 1000000,
                        "quota_used_percent": 0.12}
    assert 0 < rc.pttl(f"metrics:usage_stats:{e.pid}") <= 2000

    er = json.loads(rc.get(f"metrics:error_rate:{e.pid}:5min"))
    want = e.logs.execute(
        "SELECT date_bin('5 minutes', timestamp, timestamptz '2000-01-01Z') b, count(*) FILTER (WHERE level = "
        "'error'), count(*) FILTER (WHERE level = 'critical') FROM logs WHERE project_id = %s GROUP BY 1 "
        "ORDER BY 1 DESC", (e.pid,)).fetchall()
    assert [(x["timestamp"], x["error_count"], x["critical_count"]) for x in er] == [
        (b.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00"), ec, cc) for b, ec, cc in want]
    lv = json.loads(rc.get(f"metrics:log_volume:{e.pid}:1hour"))
    assert sum(x["error"] + x["critical"] + x["info"] for x in lv) == e.logs.execute(
        "SELECT count(*) FROM logs WHERE project_id = %s", (e.pid,)).fetchone()[0]
    top = json.loads(rc.get(f"metrics:top_errors:{e.pid}"))
    assert [(t["fingerprint"], t["occurrence_count"]) for t in top] == [("b" * 64, 9), ("a" * 64, 7)]


def test_each_slot_runs_once_across_processes(env, ledgerd):
    e = env({**SLOW, "error_rate_interval_ms": 1000})
    other = ledgerd(extra_ini={"analytics": {**SLOW, "error_rate_interval_ms": 1000}, "roles": {"storage": False}})
    t0 = time.time()
    time.sleep(scaled(4.5))
    t1 = time.time()
    a, b = jobs(e.srv)["error_rate"]["runs"], jobs(other)["error_rate"]["runs"]
    slots = int(t1) - int(t0) + 1
    assert a + b <= slots, (a, b, slots)
    assert a + b >= slots - 2, (a, b, slots)
