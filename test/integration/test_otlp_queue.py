"""Spans and metric points on the queue path (docs/otlp.md "How they are written"): a traces or
metrics request is queued like a logs request (one stream entry, counted in queue_depth and the
daily quota), the storage role copies its rows into spans / metric_points with their queue ids,
exactly once under redelivery (a storage process killed between COMMIT and its acknowledgement, two
consumer groups writing the same entries); the OTLP routes honour Idempotency-Key, so the retry of
one export with its key stores nothing twice."""

import collections
import json
import subprocess
import time

import requests

from ldg_servers import free_port
from test_misconfig import _ini_of
from conftest import render_ini

from conftest import scaled
from ldg_http import wait_until
from ldg_queue import queued
from test_otlp import (PB, Env, f_bytes, f_varint, hist_point, num_point, pb_metrics, pb_partial, pb_record, pb_request,
                       pb_span, pb_traces, now_ns)
from test_storage_faults import (HOLDING, INGEST_ONLY, QUICK, STORAGE_ONLY, consumer_of, fleet,  # noqa: F401
                                 health_storage, wait_log)

STACK = "Error: db down\n    at q (/srv/db.js:1:1)"


def traces_body(tag, n=20, t0=None, with_exception=True):
    """n spans of one trace (ids from tag), the last with an `exception` event."""
    t0 = t0 or now_ns(-30)
    trace = bytes.fromhex(tag)[:5].ljust(16, b"\x01")
    spans = []
    for i in range(n):
        sid = (i + 1).to_bytes(8, "big")
        events = ()
        if with_exception and i == n - 1:
            events = [("exception", t0 + i * 1000, {"exception.type": "Error", "exception.message": "db down",
                                                   "exception.stacktrace": STACK})]
        spans.append(pb_span(trace, sid, b"" if i == 0 else (1).to_bytes(8, "big"), f"op{i}", 1,
                             t0 + i * 1_000_000, 500_000, {"i": i}, events=events))
    return trace, pb_traces(spans, {"service.name": "svc"})


def metrics_body(n=10, t_ns=None):
    t_ns = t_ns or now_ns(-30)
    gauge = f_bytes(1, "q.gauge") + f_bytes(5, b"".join(
        f_bytes(1, num_point(t_ns + i * 1000, float(i), {"k": str(i)})) for i in range(n)))
    hist = f_bytes(1, "q.hist") + f_bytes(9, f_bytes(1, hist_point(t_ns, 3, 6.0, [1.0], [1, 2], 1.0, 3.0))
                                          + f_varint(2, 1))
    return pb_metrics([gauge, hist], {"service.name": "svc"})


def post(srv, key, path, body, idem=None, ctype=PB):
    h = {"Content-Type": ctype, "X-API-Key": key}
    if idem:
        h["Idempotency-Key"] = idem
    return requests.post(srv.url + path, data=body, headers=h, timeout=scaled(10))


def span_rows(f, trace=None):
    q = "SELECT trace_id, span_id, queue_id FROM spans WHERE project_id = %s"
    args = [f.pid]
    if trace:
        q += " AND trace_id = %s"
        args.append(trace.hex())
    return f.logs_db.execute(q, args).fetchall()


def point_rows(f):
    return f.logs_db.execute("SELECT name, attributes::text, \"time\", queue_id FROM metric_points "
                             "WHERE project_id = %s",
                             (f.pid,)).fetchall()


def assert_once(rows, n):
    """n rows, each key once, every one with its own queue id."""
    keys = collections.Counter(r[:-1] for r in rows)
    assert len(rows) == n and all(c == 1 for c in keys.values()), keys
    qids = [r[-1] for r in rows]
    assert None not in qids and len(set(qids)) == n


def test_spans_and_points_are_queued_counted_and_stored_with_queue_ids(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    trace, body = traces_body("ab12cd34ef", n=20)
    r = post(ing, f.key, "/v1/traces", body)
    assert r.status_code == 200 and pb_partial(r.content) == (0, ""), r.content
    r = post(ing, f.key, "/v1/metrics", metrics_body(10))
    assert r.status_code == 200 and pb_partial(r.content) == (0, ""), r.content
    # queued, not written: two entries, 20 spans + 1 exception log and 11 points, counted like logs
    entries = queued(f.rc, f.stream)
    assert [int(fl[b"n"]) for _, fl, _ in entries] == [21, 11]
    assert [len(items) for _, _, items in entries] == [21, 11]
    assert sum(item[:2] == b"\x94\x10" for item in entries[0][2]) == 20  # span row items
    assert sum(item[:2] == b"\x94\x11" for item in entries[1][2]) == 11  # metric point row items
    assert f.depth() == 32
    day = time.strftime("%Y%m%d", time.gmtime())
    assert int(f.rc.get(f"usage:{f.pid}:{day}")) == 32
    assert span_rows(f) == [] and point_rows(f) == []

    st = f.start(roles=STORAGE_ONLY, storage=QUICK)
    wait_until(lambda: len(span_rows(f)) == 20 and len(point_rows(f)) == 11 and f.drained(), scaled(20),
               what="spans and points stored")
    assert_once(span_rows(f), 20)
    assert_once(point_rows(f), 11)
    eid = entries[0][0].decode()
    assert {q.rsplit("/", 1)[0] for _, _, q in span_rows(f)} == {eid}
    # the exception event's log went to logs, not to the live tail of spans
    assert f.count() == 1
    assert health_storage(st)["stored"] == 32


def test_kill_after_commit_before_ack_stores_spans_and_points_once(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    for i in range(4):
        assert post(ing, f.key, "/v1/traces", traces_body(f"{i:02x}aa55bb66", n=50)[1]).status_code == 200
        assert post(ing, f.key, "/v1/metrics", metrics_body(20, t_ns=now_ns(-30) + i * 1_000_000)).status_code == 200
    assert f.depth() == 4 * 51 + 4 * 21

    a = f.start(roles=STORAGE_ONLY, storage={**HOLDING, "debug_pause_before_ack_ms": 10000})
    wait_log(a, r"debug pause stage=ack")
    a.kill()
    assert f.pending_at(consumer_of(a)) > 0
    committed = len(span_rows(f)) + len(point_rows(f))
    assert committed > 0  # committed, not acknowledged: delivered again to the next process

    b = f.start(roles=STORAGE_ONLY, storage=QUICK)
    wait_until(lambda: f.drained(), scaled(30), what="the queue drained")
    time.sleep(0.3)
    assert_once(span_rows(f), 200)
    assert_once(point_rows(f), 4 * 21)
    assert f.count() == 4
    assert health_storage(b)["duplicates"] > 0


def test_two_storage_processes_write_the_same_span_entries_once(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    other = f"{f.group}:b"
    f.start(roles=STORAGE_ONLY, storage=QUICK)
    f.start(roles=STORAGE_ONLY, storage={**QUICK, "group": other})
    for i in range(10):
        assert post(ing, f.key, "/v1/traces", traces_body(f"{i:02x}77dd88ee", n=30)[1]).status_code == 200
        assert post(ing, f.key, "/v1/metrics", metrics_body(5, t_ns=now_ns(-30) + i * 1_000_000)).status_code == 200

    def settled():
        return (f.rc.xlen(f.stream) == 0 and
                all(f.rc.xpending(f.stream, g)["pending"] == 0 for g in (f.group, other)))

    wait_until(settled, scaled(30), what="both groups drained")
    time.sleep(0.3)
    assert_once(span_rows(f), 300)
    assert_once(point_rows(f), 10 * 6)


def test_retry_of_the_same_export_with_its_idempotency_key_stores_nothing_twice(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    trace, tbody = traces_body("1234567890", n=10)
    mbody = metrics_body(4)
    lbody = pb_request([pb_record(now_ns(-5), 9, body=f"{f.tag}-log{i}") for i in range(3)])
    first = {}
    for path, body in (("/v1/traces", tbody), ("/v1/metrics", mbody), ("/v1/logs", lbody)):
        r = post(ing, f.key, path, body, idem=f"exp-{path}")
        assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers, r.content
        first[path] = r
    assert f.rc.xlen(f.stream) == 3 and f.depth() == 11 + 5 + 3
    # the exporter retries each export (its answer was lost): the first answer, nothing queued
    for path, body in (("/v1/traces", tbody), ("/v1/metrics", mbody), ("/v1/logs", lbody)):
        r = post(ing, f.key, path, body, idem=f"exp-{path}")
        assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true"
        assert r.content == first[path].content
        assert r.headers.get("Content-Type") == first[path].headers.get("Content-Type")
    # OTLP/JSON: the stored answer is the JSON one, with its partial success
    jbody = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "ff" * 16, "spanId": "ee" * 8, "name": "ok", "startTimeUnixNano": str(now_ns(-5))},
        {"traceId": "ff" * 16, "spanId": "00" * 8, "name": "bad", "startTimeUnixNano": str(now_ns(-5))}]}]}]}
    j1 = post(ing, f.key, "/v1/traces", json.dumps(jbody), idem="exp-json", ctype="application/json")
    j2 = post(ing, f.key, "/v1/traces", json.dumps(jbody), idem="exp-json", ctype="application/json")
    assert j1.status_code == j2.status_code == 200 and j1.json() == j2.json()
    assert j1.json()["partialSuccess"]["rejectedSpans"] in (1, "1")
    assert j2.headers["Idempotent-Replayed"] == "true"
    assert f.rc.xlen(f.stream) == 4
    # a bad key is a 400 in the request's encoding
    r = post(ing, f.key, "/v1/traces", tbody, idem="has space")
    assert r.status_code == 400 and r.headers["Content-Type"].startswith(PB)

    f.start(roles=STORAGE_ONLY, storage=QUICK)
    wait_until(f.drained, scaled(20), what="the queue drained")
    time.sleep(0.3)
    assert_once(span_rows(f), 11)
    assert_once(point_rows(f), 5)
    assert f.count() == 3 + 1  # the log records and the exception event's log


def test_spans_and_points_count_against_the_daily_quota(ledgerd, db):
    e = Env(ledgerd, db, quota=25)
    trace, body = traces_body("5555aaaa77", n=20, with_exception=False)
    r = post(e.srv, e.key, "/v1/traces", body)
    assert r.status_code == 200 and pb_partial(r.content) == (0, "")
    # 20 used: 10 more spans do not fit; the whole request is refused as a partial success
    r = post(e.srv, e.key, "/v1/traces", traces_body("6666bbbb88", n=10, with_exception=False)[1])
    rejected, msg = pb_partial(r.content)
    assert r.status_code == 200 and rejected == 10 and msg == "Daily quota exceeded: 20/25", (rejected, msg)
    r = post(e.srv, e.key, "/v1/metrics", metrics_body(10))
    rejected, msg = pb_partial(r.content)
    assert r.status_code == 200 and rejected == 11 and msg.startswith("Daily quota exceeded"), (rejected, msg)
    assert post(e.srv, e.key, "/v1/metrics", metrics_body(4)).status_code == 200  # 5 points: fits
    wait_until(lambda: requests.get(e.srv.url + f"/api/v1/traces/{trace.hex()}", headers={"X-API-Key": e.key},
                                    timeout=scaled(10)).status_code == 200, scaled(15), what="the trace stored")


def test_spans_older_than_the_retention_are_refused(ledgerd, db):
    e = Env(ledgerd, db)
    old = now_ns(-40 * 86400)  # the project's retention is 30 days
    body = pb_traces([pb_span(b"\x07" * 16, b"\x08" * 8, b"", "old", 1, old, 1000),
                      pb_span(b"\x07" * 16, b"\x09" * 8, b"", "new", 1, now_ns(-5), 1000)], {})
    r = post(e.srv, e.key, "/v1/traces", body)
    rejected, msg = pb_partial(r.content)
    assert r.status_code == 200 and rejected == 1 and "Span 0: Span starts before the project's retention" in msg
    r = post(e.srv, e.key, "/v1/metrics", metrics_body(1, t_ns=old))
    rejected, msg = pb_partial(r.content)
    assert rejected == 2 and "before the project's retention period" in msg


# ---- the OTLP-only listener ([gateway] otlp_listen) -------------------------------------------------


def test_otlp_listener_serves_only_the_otlp_routes(fleet):
    port = free_port()
    f = fleet(extra={"gateway": {"otlp_listen": f"127.0.0.1:{port}"}})
    srv = f.start(storage=QUICK, workers=2)
    base = f"http://127.0.0.1:{port}"
    assert "OTLP/HTTP listener on 127.0.0.1:" in srv.log_text()
    trace, body = traces_body("4318431843", n=5, with_exception=False)
    for _ in range(4):  # several connections: every worker listens
        r = requests.post(base + "/v1/traces", data=body, timeout=scaled(10),
                          headers={"Content-Type": PB, "X-API-Key": f.key, "Connection": "close"})
        assert r.status_code == 200 and pb_partial(r.content) == (0, ""), r.content
    r = requests.post(base + "/v1/logs", data=pb_request([pb_record(now_ns(-1), 9, body="via 4318")]),
                      headers={"Content-Type": PB, "Authorization": "Bearer " + f.key}, timeout=scaled(10))
    assert r.status_code == 200
    r = requests.post(base + "/v1/metrics", data=metrics_body(2), timeout=scaled(10),
                      headers={"Content-Type": PB, "X-API-Key": f.key})
    assert r.status_code == 200
    # the same authentication and errors as on the main port
    r = requests.post(base + "/v1/traces", data=body, headers={"Content-Type": PB}, timeout=scaled(10))
    assert r.status_code == 401 and r.headers["Content-Type"].startswith(PB)
    # nothing else is served there
    for method, path in (("GET", "/health"), ("POST", "/api/v1/ingest/batch"), ("GET", "/api/v1/traces"),
                         ("GET", "/"), ("GET", "/v1/traces")):
        r = requests.request(method, base + path, headers={"X-API-Key": f.key}, timeout=scaled(10))
        assert r.status_code == 404, (method, path, r.status_code)
    # ... and the main port still serves everything
    assert requests.get(srv.url + "/health", timeout=scaled(10)).status_code == 200
    # the same export sent 4 times without a key: 4 copies (the queries read each span id once)
    wait_until(lambda: len(span_rows(f)) == 20 and len(point_rows(f)) == 3, scaled(20), what="stored")
    assert f.count() == 1


def test_otlp_listen_misconfigured_refuses_to_start(ledgerd, ledgerd_bin, tmp_path):
    first = ledgerd()
    base = _ini_of(first)
    for i, bad in enumerate(("4318", "localhost:4318", "127.0.0.1:0", "[::1]4318", f"127.0.0.1:{first.port}")):
        cfg = {s: dict(v) for s, v in base.items()}
        cfg["server"]["port"] = str(free_port())
        cfg.setdefault("gateway", {})["otlp_listen"] = bad if i < 4 else f"127.0.0.1:{cfg['server']['port']}"
        ini = tmp_path / f"bad{i}.ini"
        ini.write_text(render_ini(cfg))
        p = subprocess.run([ledgerd_bin, "-c", str(ini)], capture_output=True, text=True, timeout=scaled(30),
                           stdin=subprocess.DEVNULL)
        assert p.returncode != 0 and "otlp_listen" in p.stdout + p.stderr, (bad, p.returncode, p.stderr[-500:])


# ---- hourly rollups of metric points ------------------------------------------------------------------


def test_metric_queries_by_whole_hours_read_the_rollups(fleet):
    f = fleet(extra={"analytics": {"hourly_metrics_interval_ms": 1000}})
    srv = f.start()
    hour = (int(time.time()) // 3600 - 6) * 3600  # well before the hours the hourly job does (now-2, now-1)
    ns = lambda s: (hour + s) * 1_000_000_000  # noqa: E731
    gauge = f_bytes(1, "r.gauge") + f_bytes(5, b"".join(f_bytes(1, p) for p in [
        num_point(ns(60), 10.0, {"host": "a"}), num_point(ns(1800), 20.0, {"host": "a"}),
        num_point(ns(60), 30.0, {"host": "b"}), num_point(ns(3599), 50.0, {"host": "b"})]))
    total = f_bytes(1, "r.requests") + f_bytes(7, b"".join(
        f_bytes(1, p) for p in [num_point(ns(60), 100, {"route": "/a"}, start_ns=ns(0)),
                                num_point(ns(1200), 160, {"route": "/a"}, start_ns=ns(0)),
                                num_point(ns(3700), 400, {"route": "/a"}, start_ns=ns(0))])
                                                  + f_varint(2, 2) + f_varint(3, 1))
    hist = f_bytes(1, "r.latency") + f_bytes(9, b"".join(f_bytes(1, hist_point(
        ns(300 + k), 10, 300.0, [10.0, 100.0], [5, 4, 1], 1.0, 250.0)) for k in range(3)) + f_varint(2, 1))
    r = post(srv, f.key, "/v1/metrics", pb_metrics([gauge, total, hist], {"service.name": "api"}))
    assert r.status_code == 200 and pb_partial(r.content) == (0, ""), r.content
    wait_until(lambda: len(point_rows(f)) == 10, scaled(20), what="points stored")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour - 3600))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour + 7200))

    def query():
        out = {}
        for name, aggs in (("r.gauge", ("avg", "sum", "min", "max")), ("r.requests", ("rate", "sum")),
                           ("r.latency", ("avg", "sum", "max", "rate"))):
            for agg in aggs:
                for gb in (None, "host"):
                    params = {"name": name, "aggregation": agg, "interval": "1h", "start_time": start,
                              "end_time": end}
                    if gb:
                        params["group_by"] = gb
                    rr = requests.get(srv.url + "/api/v1/metrics/query", params=params,
                                      headers={"X-API-Key": f.key}, timeout=scaled(10))
                    assert rr.status_code == 200, rr.text
                    out[(name, agg, gb)] = [(d["time"], d["group"], round(d["value"], 9)) for d in rr.json()["data"]]
        return out

    raw = query()
    assert [v for _, _, v in raw[("r.gauge", "avg", None)]] == [27.5]
    assert [(g, v) for _, g, v in raw[("r.gauge", "max", "host")]] == [("a", 20), ("b", 50)]
    assert [v for _, _, v in raw[("r.requests", "rate", None)]] == [round(60 / 3600, 9), 0]
    assert [v for _, _, v in raw[("r.latency", "avg", None)]] == [30]

    # the points were stored long ago (before a rollup's cutoff) and the hour is rolled up: the
    # same answers, now from the rollups, as they stay once the points are gone
    f.logs_db.execute("UPDATE metric_points SET ingested_at = ingested_at - interval '1 hour' "
                      "WHERE project_id = %s", (f.pid,))
    for h in (hour, hour + 3600):
        f.logs_db.execute("SELECT metric_rollup_hour(to_timestamp(%s))", (h,))
    rolled = f.logs_db.execute("SELECT count(*) FROM metric_rollups WHERE project_id = %s", (f.pid,)).fetchone()[0]
    assert rolled == 5  # gauge a, gauge b, requests (2 hours), latency
    assert query() == raw
    f.logs_db.execute("DELETE FROM metric_points WHERE project_id = %s", (f.pid,))
    assert query() == raw

    # a late point of a rolled-up hour (stored after the cutoff) is read from the points
    late = f_bytes(1, "r.gauge") + f_bytes(5, f_bytes(1, num_point(ns(900), 100.0, {"host": "a"})))
    assert post(srv, f.key, "/v1/metrics", pb_metrics([late], {"service.name": "api"})).status_code == 200
    wait_until(lambda: len(point_rows(f)) == 1, scaled(20), what="the late point stored")
    now = query()
    assert [(g, v) for _, g, v in now[("r.gauge", "max", "host")]] == [("a", 100), ("b", 50)]
    assert [v for _, _, v in now[("r.gauge", "sum", None)]] == [210]

    # the analytics role's hourly job rolls up the hours it aggregates (here every second)
    wait_until(lambda: f.logs_db.execute(
        "SELECT count(*) FROM metric_rollup_hours WHERE hour = to_timestamp(%s) AND rolled_at > now() - "
        "interval '30 seconds'", ((int(time.time()) // 3600 - 1) * 3600,)).fetchone()[0] == 1, scaled(20),
               what="the hourly job's rollup of the last hour")
