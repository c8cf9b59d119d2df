"""Metrics endpoints of the query role (reference §3.7 Q2, §6, §10; decisions D1, D2, D8):
/metrics/aggregated in every granularity on aggregated_metrics rows written here, compared with the
same buckets computed from those rows; the cached metric endpoints with and without their cache."""

import datetime
import json
import time

import psycopg
import pytest
import requests

from conftest import scaled
from ldg_fixtures import mint_jwt, open_session, read_secret

AGG = "/api/v1/metrics/aggregated"
TODAY = datetime.datetime.now(datetime.timezone.utc).date()


@pytest.fixture(autouse=True)
def _today():
    """TODAY as of each test, not of the module's import: a whole suite can run across midnight."""
    global TODAY
    TODAY = datetime.datetime.now(datetime.timezone.utc).date()
SLOW = {k: 3600000 for k in ("search_index_interval_ms", "hourly_metrics_interval_ms",
                              "available_routes_interval_ms", "usage_stats_interval_ms", "error_rate_interval_ms",
                              "log_volume_interval_ms", "top_errors_interval_ms")}
KEYS = ["date", "hour", "endpoint_method", "endpoint_path", "log_level", "log_type", "log_count", "error_count",
        "avg_duration_ms", "min_duration_ms", "max_duration_ms", "p95_duration_ms", "p99_duration_ms",
        "p50_duration_ms"]


def ymd(d):
    return d.strftime("%Y%m%d")


class Env:
    def __init__(self, ledgerd, db, rc, pg, jwt_secret_file, query=None):
        self.srv = ledgerd(extra_ini={"analytics": SLOW, "query": query or {}, "roles": {"storage": False}})
        d = db()
        self.acct, self.other = d.account(), d.account()
        self.pid = d.project(self.acct)
        self.pid_other = d.project(self.other)
        self.key, _ = d.key(self.pid, rpm=100000, rph=1000000)
        secret = read_secret(jwt_secret_file)
        self.tok = mint_jwt(secret, self.acct, open_session(rc, self.acct))
        self.logs = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)
        self.rows = []

    def add(self, day, hour, mtype, count, errors=0, method=None, path=None, level=None, ltype=None, avg=None,
            mn=None, mx=None, p95=None, p99=None, p50=None):
        if p50 is None and p95 is not None:
            p50 = max(1, p95 // 3)
        r = dict(date=ymd(day), hour=hour, metric_type=mtype, endpoint_method=method, endpoint_path=path,
                 log_level=level, log_type=ltype, log_count=count, error_count=errors, avg_duration_ms=avg,
                 min_duration_ms=mn, max_duration_ms=mx, p95_duration_ms=p95, p99_duration_ms=p99,
                 p50_duration_ms=p50)
        self.rows.append(r)
        self.logs.execute(
            "INSERT INTO aggregated_metrics (project_id, date, hour, metric_type, endpoint_method, endpoint_path, "
            "log_level, log_type, log_count, error_count, avg_duration_ms, min_duration_ms, max_duration_ms, "
            "p95_duration_ms, p99_duration_ms, p50_duration_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s)",
            (self.pid, r["date"], hour, mtype, method, path, level, ltype, count, errors, avg, mn, mx, p95, p99, p50))

    def get(self, path, params, token=None, key=None):
        headers = {"X-API-Key": key} if key else {"Authorization": "Bearer " + (token or self.tok)}
        return requests.get(self.srv.url + path, params=params, headers=headers, timeout=scaled(10))


@pytest.fixture
def env(ledgerd, db, rc, pg, jwt_secret_file):
    made = []

    def make(**kw):
        e = Env(ledgerd, db, rc, pg, jwt_secret_file, **kw)
        made.append(e)
        return e

    yield make
    for e in made:
        e.logs.close()


def seed(e):
    for d in range(0, 75, 3):
        day = TODAY - datetime.timedelta(days=d)
        e.add(day, 0, "endpoint", 10 + d, 2, "GET", "/users/{id}", avg=12.5, mn=1, mx=90, p95=40, p99=80)
        e.add(day, 5, "endpoint", 4, 0, "POST", "/orders", avg=30.0, mn=5, mx=60, p95=55, p99=59)
        e.add(day, 5, "endpoint", 6, 1, "GET", "/orders", avg=20.0, mn=2, mx=70, p95=50, p99=66)
        e.add(day, 23, "exception", 3 + d % 4, 3 + d % 4)
        e.add(day, 7, "log_volume", 100 + d, 5, level="info", ltype="console")
        e.add(day, 7, "log_volume", 7, 7, level="error", ltype="exception")
        e.add(day, 8, "log_volume", 50, 0, level="info", ltype="console")


def buckets(e, mtype, start, end, step, path=None):
    """The expected daily/weekly/monthly data computed from the rows in Python."""
    out = []
    starts = []
    s = start
    while s <= end:
        starts.append(s)
        s = s + datetime.timedelta(days=step)
    for i, b in enumerate(starts):
        nxt = starts[i + 1] if i + 1 < len(starts) else None
        rows = [r for r in e.rows if r["metric_type"] == mtype and ymd(b) <= r["date"] <= ymd(end)
                and (nxt is None or r["date"] < ymd(nxt)) and (path is None or mtype != "endpoint"
                                                               or r["endpoint_path"] == path)]
        groups = {}
        for r in rows:
            groups.setdefault((r["endpoint_method"], r["endpoint_path"], r["log_level"], r["log_type"]), []).append(r)
        if not groups:
            out.append({**{k: None for k in KEYS}, "date": ymd(b), "log_count": 0, "error_count": 0})
            continue
        for k in sorted(groups, key=lambda g: (g[1] or "~", g[0] or "~", g[2] or "~", g[3] or "~")):
            g = groups[k]
            n = sum(r["log_count"] for r in g)
            dur = [r for r in g if r["avg_duration_ms"] is not None]
            avg = sum(r["avg_duration_ms"] * r["log_count"] for r in dur) / sum(r["log_count"] for r in dur) if dur else None
            mean = lambda f: round(sum(r[f] for r in g) / len(g)) if g[0][f] is not None else None
            out.append({"date": ymd(b), "hour": None, "endpoint_method": k[0], "endpoint_path": k[1],
                        "log_level": k[2], "log_type": k[3], "log_count": n,
                        "error_count": sum(r["error_count"] for r in g), "avg_duration_ms": avg,
                        "min_duration_ms": min((r["min_duration_ms"] for r in g), default=None) if g[0]["min_duration_ms"] is not None else None,
                        "max_duration_ms": max(r["max_duration_ms"] for r in g) if g[0]["max_duration_ms"] is not None else None,
                        "p95_duration_ms": mean("p95_duration_ms"), "p99_duration_ms": mean("p99_duration_ms"),
                        "p50_duration_ms": mean("p50_duration_ms")})
    return out


def test_aggregated_every_granularity(env):
    e = env()
    seed(e)
    # hourly (today): 24 hours, hour 0 is 0, both rows of hour 5 returned, zero-filled hours
    r = e.get(AGG, {"project_id": e.pid, "type": "endpoint", "period": "today"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("project_id", "metric_type", "granularity", "start_date", "end_date")} == {
        "project_id": e.pid, "metric_type": "endpoint", "granularity": "hourly", "start_date": ymd(TODAY),
        "end_date": ymd(TODAY)}
    data = body["data"]
    assert [d["hour"] for d in data] == [0] + list(range(1, 5)) + [5, 5] + list(range(6, 24))
    assert all(list(d) == KEYS for d in data)
    assert data[0] == {"date": ymd(TODAY), "hour": 0, "endpoint_method": "GET", "endpoint_path": "/users/{id}",
                       "log_level": None, "log_type": None, "log_count": 10, "error_count": 2,
                       "avg_duration_ms": 12.5, "min_duration_ms": 1, "max_duration_ms": 90, "p95_duration_ms": 40,
                       "p99_duration_ms": 80, "p50_duration_ms": 13}
    assert [(d["endpoint_method"], d["endpoint_path"]) for d in data if d["hour"] == 5] == [
        ("GET", "/orders"), ("POST", "/orders")]
    assert data[1] == {**{k: None for k in KEYS}, "date": ymd(TODAY), "hour": 1, "log_count": 0, "error_count": 0}
    # endpointPath filter in hourly mode
    data = e.get(AGG, {"project_id": e.pid, "type": "endpoint", "period": "today", "endpointPath": "/orders"}).json()["data"]
    assert [d["hour"] for d in data if d["log_count"]] == [5, 5]
    assert data[0]["endpoint_path"] == "/orders" and data[0]["log_count"] == 0

    cases = [
        ({"period": "last7days"}, "daily", TODAY - datetime.timedelta(days=6), TODAY, 1),
        ({"period": "last30days"}, "daily", TODAY - datetime.timedelta(days=29), TODAY, 1),
        ({"periodFrom": str(TODAY - datetime.timedelta(days=20)), "periodTo": str(TODAY)}, "daily",
         TODAY - datetime.timedelta(days=20), TODAY, 1),
        ({"periodFrom": str(TODAY - datetime.timedelta(days=70)), "periodTo": str(TODAY - datetime.timedelta(days=3))},
         "weekly", TODAY - datetime.timedelta(days=70), TODAY - datetime.timedelta(days=3), 7),
    ]
    for params, gran, start, end, step in cases:
        for mtype in ("endpoint", "exception", "log_volume"):
            r = e.get(AGG, {"project_id": e.pid, "type": mtype, **params})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["granularity"] == gran and body["start_date"] == ymd(start) and body["end_date"] == ymd(end)
            assert body["data"] == buckets(e, mtype, start, end, step), (params, mtype)
    # monthly: more than 180 days; buckets a month apart from the start
    start = TODAY - datetime.timedelta(days=200)
    r = e.get(AGG, {"project_id": e.pid, "type": "exception", "periodFrom": str(start), "periodTo": str(TODAY)})
    body = r.json()
    assert body["granularity"] == "monthly"
    assert sum(d["log_count"] for d in body["data"]) == sum(
        x["log_count"] for x in e.rows if x["metric_type"] == "exception" and x["date"] >= ymd(start))
    assert len({d["date"] for d in body["data"]}) in (7, 8)
    r = e.get(AGG, {"project_id": e.pid, "type": "log_volume", "period": "currentYear"})
    assert r.status_code == 200 and r.json()["granularity"] == "monthly"


def test_aggregated_errors_and_ownership(env):
    e = env()
    p = e.pid

    def check(params, status, detail=None):
        r = e.get(AGG, params)
        assert r.status_code == status, (params, r.text)
        if detail:
            assert r.json() == {"detail": detail}

    check({"type": "endpoint", "period": "today"}, 422)
    check({"project_id": p, "period": "today"}, 422)
    check({"project_id": p, "type": "spans", "period": "today"}, 422)
    check({"project_id": p, "type": "endpoint", "period": "yesterday"}, 422)
    check({"project_id": p, "type": "endpoint", "periodFrom": "2025/01/01", "periodTo": "2025-01-02"}, 422)
    check({"project_id": p, "type": "endpoint"}, 400,
          "Either 'period' or both 'periodFrom' and 'periodTo' must be provided")
    check({"project_id": p, "type": "endpoint", "periodFrom": "2025-01-01"}, 400,
          "Either 'period' or both 'periodFrom' and 'periodTo' must be provided")
    check({"project_id": p, "type": "endpoint", "period": "today", "periodFrom": "2025-01-01"}, 400,
          "Cannot use both 'period' and 'periodFrom'/'periodTo' parameters")
    check({"project_id": p, "type": "endpoint", "periodFrom": "2025-02-30", "periodTo": "2025-03-01"}, 400,
          "periodFrom must be in ISO 8601 format (YYYY-MM-DD)")
    future = str(TODAY + datetime.timedelta(days=2))
    check({"project_id": p, "type": "endpoint", "periodFrom": str(TODAY), "periodTo": future}, 400,
          "periodTo cannot be in the future")
    check({"project_id": p, "type": "endpoint", "periodFrom": "2025-03-02", "periodTo": "2025-03-01"}, 400,
          "periodFrom must be before or equal to periodTo")
    check({"project_id": e.pid_other, "type": "endpoint", "period": "today"}, 403,
          "You don't have permission to access this project")
    check({"project_id": 999999999, "type": "endpoint", "period": "today"}, 404, "Project not found")
    r = e.get(AGG, {"project_id": p, "type": "endpoint", "period": "today"}, key=e.key)
    assert r.status_code == 200
    r = e.get(AGG, {"project_id": e.pid_other, "type": "endpoint", "period": "today"}, key=e.key)
    assert r.status_code == 403


def test_aggregated_answers_are_cached(env, rc):
    e = env(query={"cache_ttl_ms": 1500})
    e.add(TODAY, 3, "exception", 5, 5)
    q = {"project_id": e.pid, "type": "exception", "period": "today"}
    first = e.get(AGG, q).json()
    assert first["data"][3]["log_count"] == 5
    e.logs.execute("UPDATE aggregated_metrics SET log_count = 6 WHERE project_id = %s", (e.pid,))
    assert e.get(AGG, q).json() == first  # cached
    keys = rc.keys(f"qcache:aggregated:{e.pid}:*")
    assert len(keys) == 1 and 0 < rc.pttl(keys[0]) <= 1500
    time.sleep(1.6)
    assert e.get(AGG, q).json()["data"][3]["log_count"] == 6  # expired, asked again


def test_cached_metric_endpoints(env, rc):
    e = env()
    p = e.pid
    now = datetime.datetime.now(datetime.timezone.utc)
    e.logs.execute("INSERT INTO logs (project_id, timestamp, level, log_type) SELECT %s, %s - make_interval(mins => g), "
                   "(ARRAY['error', 'critical', 'info'])[g %% 3 + 1], 'console' FROM generate_series(0, 90) g", (p, now))
    e.logs.execute("INSERT INTO error_groups (project_id, fingerprint, error_type, error_message, first_seen, "
                   "last_seen, occurrence_count) SELECT %s, lpad(g::text, 64, '0'), 'E', 'm' || g, now(), now(), g "
                   "FROM generate_series(1, 15) g", (p,))
    # no cache yet: computed live, equal to SQL, then cached for cache_ttl_ms
    r = e.get("/api/v1/metrics/error-rate", {"project_id": p})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["project_id", "interval", "data", "updated_every_s"] and body["interval"] == "5min"
    assert body["updated_every_s"] == 3600  # [analytics] error_rate_interval_ms: when newer logs show
    want = e.logs.execute("SELECT count(*) FILTER (WHERE level = 'error'), count(*) FILTER (WHERE level = 'critical') "
                          "FROM logs WHERE project_id = %s", (p,)).fetchone()
    assert (sum(d["error_count"] for d in body["data"]), sum(d["critical_count"] for d in body["data"])) == want
    assert rc.exists(f"metrics:error_rate:{p}:5min")
    body = e.get("/api/v1/metrics/log-volume", {"project_id": p}).json()
    assert body["interval"] == "1hour" and sum(d["info"] for d in body["data"]) == 30
    body = e.get("/api/v1/metrics/top-errors", {"project_id": p}).json()
    assert list(body) == ["project_id", "errors", "updated_every_s"]
    assert [t["occurrence_count"] for t in body["errors"]] == list(range(15, 5, -1))  # limit 10
    body = e.get("/api/v1/metrics/top-errors", {"project_id": p, "limit": 3}).json()
    assert [t["occurrence_count"] for t in body["errors"]] == [15, 14, 13]
    assert e.get("/api/v1/metrics/top-errors", {"project_id": p, "limit": 0}).status_code == 422
    body = e.get("/api/v1/metrics/usage-stats", {"project_id": p}).json()
    # today's entry is always computed from the live counter (nothing counted here: 0)
    today = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "log_count": 0,
             "daily_quota": body["usage"][0]["daily_quota"], "quota_used_percent": 0}
    assert body == {"project_id": p, "usage": [today], "updated_every_s": 3600}
    # a cache written by the analytics role (or wrapped as v1's query service accepted) is served as is,
    # today's entry first
    rc.set(f"metrics:usage_stats:{p}", json.dumps({"usage": [{"date": "2026-01-01", "log_count": 3}]}))
    assert e.get("/api/v1/metrics/usage-stats", {"project_id": p}).json()["usage"] == [
        today, {"date": "2026-01-01", "log_count": 3}]
    # ownership before any cache
    for path in ("error-rate", "log-volume", "top-errors", "usage-stats"):
        r = e.get(f"/api/v1/metrics/{path}", {"project_id": e.pid_other})
        assert r.status_code == 403, (path, r.text)
        r = e.get(f"/api/v1/metrics/{path}", {}, key=e.key)
        assert r.status_code == 200 and r.json()["project_id"] == p
