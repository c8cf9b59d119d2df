"""Alert rules, the evaluator (analytics role), history, maintenance windows, against real servers.

The evaluator runs every second here ([analytics] alert_eval_interval_ms). Logs are written
straight into the logs database with timestamps of now, so the rule's window sees them at the
next tick. A webhook receiver in the test checks the signature and answers 500 once, to see the
retry; an in_app connector fills the inbox and sends a live `notification` event to an open
notification stream.
"""

import hashlib
import hmac
import json
import threading
import time

import psycopg
import pytest
import requests

from ldg_api import Api
from ldg_receiver import Receiver

pytestmark = pytest.mark.timeout(180)

SECRET = "alert-hook-secret-0123456789"
RULES = "/api/v1/alerts/rules"


@pytest.fixture
def server(ledgerd):
    return ledgerd(extra_ini={"analytics": {"alert_eval_interval_ms": 1000, "webhook_backoff_ms": 200,
                                            "webhook_timeout_ms": 2000}})


@pytest.fixture
def logs(pg):
    conn = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)
    yield conn
    conn.close()


def add_logs(logs, project_id, n, level="error", error_type="KeyError", log_type="exception", attrs=None,
             ago_s=0):
    for _ in range(n):
        logs.execute(
            "INSERT INTO logs (project_id, timestamp, level, log_type, message, error_type, error_message, "
            "attributes) VALUES (%s, now() - %s * interval '1 second', %s, %s, 'boom', %s, 'k', %s)",
            (project_id, ago_s, level, log_type, error_type, json.dumps(attrs) if attrs else None))


def wait_for(fn, timeout=15.0, step=0.2):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


class Stream:
    """The notification stream of a session, read in a thread: events as (name, data)."""

    def __init__(self, url, token):
        self.events = []
        self.r = requests.get(url + "/api/v1/notifications/stream", params={"token": token}, stream=True,
                              timeout=(5, 60))
        assert self.r.status_code == 200, self.r.text
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        name = None
        try:
            for line in self.r.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    self.events.append((name, json.loads(line[6:]), time.time()))
                    name = None
        except Exception:
            pass

    def named(self, name):
        return [e for e in self.events if e[0] == name]

    def close(self):
        self.r.close()


def rule_body(project_id, **kw):
    body = {"project_id": project_id, "name": "errors", "metric": "error_count", "comparator": "gte",
            "threshold": 3, "window_s": 60, "cooldown_s": 0}
    body.update(kw)
    return body


def test_rule_fires_once_resolves_and_notifies(server, logs):
    api = Api(server.url)
    user = api.register()
    project = user.create_project()
    pid = project["project_id"]
    with Receiver() as rx:
        rx.plan = [500]  # the first delivery fails: retried after the backoff
        hook = user.post("/api/v1/connectors", json={"name": "hook", "kind": "webhook",
                                                     "config": {"url": rx.url("/alerts"), "secret": SECRET}}).json()
        inbox = user.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
        r = user.post(RULES, json=rule_body(pid, connector_ids=[hook["id"], inbox["id"]]))
        assert r.status_code == 201, r.text
        rule = r.json()
        assert rule["state"] == "ok" and rule["unit"] == "count" and rule["connector_ids"] == [hook["id"], inbox["id"]]

        stream = Stream(server.url, user.access_token)
        try:
            assert wait_for(lambda: stream.named("connected"), 5)
            add_logs(logs, pid, 2)
            time.sleep(2.5)  # two ticks below the threshold: nothing happens
            assert user.get(f"{RULES}/{rule['id']}").json()["state"] == "ok"
            assert user.get("/api/v1/alerts/history", params={"project_id": pid}).json()["total"] == 0

            add_logs(logs, pid, 1)
            t0 = time.time()
            fired = wait_for(lambda: user.get(f"{RULES}/{rule['id']}").json()["state"] == "firing", 10)
            assert fired
            # the live event reaches the open stream within one tick + 5 s
            live = wait_for(lambda: [e for e in stream.named("notification") if e[1]["kind"] == "alert_firing"], 7)
            assert live and live[0][2] - t0 < 1 + 5, live
            data = live[0][1]
            assert data["project_id"] == pid and data["data"]["rule_id"] == rule["id"] and data["data"]["value"] == 3
        finally:
            stream.close()

        hist = user.get("/api/v1/alerts/history", params={"project_id": pid}).json()
        assert hist["total"] == 1
        ev = hist["events"][0]
        assert ev["status"] == "firing" and ev["value"] == 3 and ev["rule_id"] == rule["id"]
        assert ev["metric"] == "error_count" and ev["acked_at"] is None

        # webhook: a 500, then the retry succeeds; both signed; both attempts logged
        reqs = rx.wait(2, timeout=10)
        assert len(reqs) == 2, reqs
        for _, path, headers, body, _ in reqs:
            ts = headers["X-Ledger-Timestamp"]
            want = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            assert headers["X-Ledger-Signature"] == want
            doc = json.loads(body)
            assert doc["event"] == "alert_firing" and doc["data"]["event_id"] == ev["id"]
        assert reqs[1][4] - reqs[0][4] >= 0.15  # backoff
        assert [h["X-Ledger-Attempt"] for _, _, h, _, _ in reqs] == ["1", "2"]
        d = user.get(f"/api/v1/connectors/{hook['id']}/deliveries").json()["deliveries"]
        assert [(x["attempt"], x["ok"]) for x in d] == [(2, True), (1, False)]

        # no storm: still breaching over further ticks, nothing new
        time.sleep(2.5)
        assert user.get("/api/v1/alerts/history", params={"project_id": pid}).json()["total"] == 1
        assert len(rx.requests) == 2
        notes = user.get("/api/v1/notifications").json()["notifications"]
        assert [n["kind"] for n in notes] == ["alert_firing"]

        # back under the line: resolves once
        r = user.patch(f"{RULES}/{rule['id']}", json={"threshold": 100})
        assert r.status_code == 200 and r.json()["threshold"] == 100
        assert wait_for(lambda: user.get(f"{RULES}/{rule['id']}").json()["state"] == "ok", 10)
        ev = user.get("/api/v1/alerts/history", params={"project_id": pid}).json()["events"][0]
        assert ev["status"] == "resolved" and ev["resolved_at"] and ev["resolved_value"] == 3
        assert wait_for(lambda: len(rx.requests) == 3, 5)
        assert json.loads(rx.requests[2][3])["event"] == "alert_resolved"
        kinds = [n["kind"] for n in user.get("/api/v1/notifications").json()["notifications"]]
        assert kinds == ["alert_resolved", "alert_firing"]

        # ack and snooze
        r = user.post(f"/api/v1/alerts/history/{ev['id']}/ack")
        assert r.status_code == 200 and r.json()["acked_at"] and r.json()["acked_by"] == user.account_id
        r = user.post(f"/api/v1/alerts/history/{ev['id']}/snooze", json={"minutes": 30})
        assert r.status_code == 200 and r.json()["snoozed_until"]
        assert user.get(f"{RULES}/{rule['id']}").json()["snoozed_until"]


def test_cooldown_and_maintenance(server, logs):
    api = Api(server.url)
    user = api.register()
    pid = user.create_project()["project_id"]
    inbox = user.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
    rule = user.post(RULES, json=rule_body(pid, cooldown_s=3600, connector_ids=[inbox["id"]])).json()
    add_logs(logs, pid, 3)

    def events():
        return user.get("/api/v1/alerts/history", params={"project_id": pid, "rule_id": rule["id"]}).json()["events"]

    assert wait_for(lambda: len(events()) == 1, 10)
    user.patch(f"{RULES}/{rule['id']}", json={"threshold": 100})
    assert wait_for(lambda: events()[0]["status"] == "resolved", 10)
    # breaching again within the cool-down: no new event
    user.patch(f"{RULES}/{rule['id']}", json={"threshold": 3})
    time.sleep(3)
    assert len(events()) == 1
    assert user.get(f"{RULES}/{rule['id']}").json()["state"] == "ok"
    # cool-down over (shortened): it fires again
    user.patch(f"{RULES}/{rule['id']}", json={"cooldown_s": 0})
    assert wait_for(lambda: len(events()) == 2, 10)

    # a maintenance window silences a second rule until it is deleted
    now = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    r = user.post("/api/v1/maintenance-windows", json={"project_id": pid, "starts_at": iso(now - 60),
                                                       "ends_at": iso(now + 3600), "reason": "deploy"})
    assert r.status_code == 201, r.text
    win = r.json()
    assert win["active"] is True and win["reason"] == "deploy"
    assert user.get("/api/v1/maintenance-windows", params={"project_id": pid}).json()["total"] == 1
    rule2 = user.post(RULES, json=rule_body(pid, name="second", connector_ids=[inbox["id"]])).json()
    time.sleep(3)
    assert user.get(f"{RULES}/{rule2['id']}").json()["state"] == "ok"
    assert user.delete(f"/api/v1/maintenance-windows/{win['id']}").status_code == 204
    assert wait_for(lambda: user.get(f"{RULES}/{rule2['id']}").json()["state"] == "firing", 10)

    # disabled rules are not evaluated
    r = user.post(f"{RULES}/{rule2['id']}/disable")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert user.post(f"{RULES}/{rule2['id']}/enable").json()["enabled"] is True


def test_metrics_and_filter(server, logs):
    api = Api(server.url)
    user = api.register()
    pid = user.create_project()["project_id"]
    add_logs(logs, pid, 2, level="info", log_type="logger")
    add_logs(logs, pid, 2, error_type="ValueError")
    add_logs(logs, pid, 1, error_type="KeyError")
    for ms in (10, 20, 30, 40, 1000):
        add_logs(logs, pid, 1, level="info", log_type="endpoint",
                 attrs={"endpoint": {"method": "GET", "path": "/x", "status_code": 200, "duration_ms": ms}})
    mk = lambda **kw: user.post(RULES, json=rule_body(pid, **kw)).json()
    rules = {
        "rate": mk(metric="error_rate", comparator="gt", threshold=29),       # 3 of 10 = 30 %
        "count_kv": mk(filter="error_type:KeyError", threshold=2),           # 1 KeyError: stays ok
        "volume": mk(metric="log_volume", threshold=10),
        "p50": mk(metric="p50_latency", comparator=">", threshold=25),       # 30
        "p99": mk(metric="p99_latency", comparator="<", threshold=500),      # ~990: stays ok
    }
    assert rules["rate"]["unit"] == "percent" and rules["p50"]["unit"] == "ms" and rules["p50"]["comparator"] == "gt"

    def state(name):
        return user.get(f"{RULES}/{rules[name]['id']}").json()

    assert wait_for(lambda: all(state(n)["last_evaluated_at"] for n in rules), 10)
    time.sleep(1.5)
    got = {n: state(n) for n in rules}
    assert got["rate"]["state"] == "firing" and abs(got["rate"]["last_value"] - 30) < 1e-6
    assert got["count_kv"]["state"] == "ok" and got["count_kv"]["last_value"] == 1
    assert got["volume"]["state"] == "firing" and got["volume"]["last_value"] == 10
    assert got["p50"]["state"] == "firing" and got["p50"]["last_value"] == 30
    assert got["p99"]["state"] == "ok" and got["p99"]["last_value"] > 900
    listed = user.get(RULES, params={"project_id": pid}).json()
    assert listed["total"] == 5
    assert user.get(RULES).json()["total"] == 5


def assert_values(user, rules):
    """rules: name -> (rule, expected last_value or None for no data); every rule stays ok."""
    def state(name):
        return user.get(f"{RULES}/{rules[name][0]['id']}").json()

    assert wait_for(lambda: all(state(n)["last_evaluated_at"] for n in rules), 10)
    time.sleep(1.5)  # a full pass after every rule was first evaluated
    for name, (_, want) in rules.items():
        got = state(name)
        assert got["state"] == "ok", (name, got)
        if want is None:
            assert got["last_value"] is None, (name, got)
        else:
            assert got["last_value"] is not None and abs(got["last_value"] - want) < 1e-6, (name, got, want)


def test_rules_sharing_windows_filters_and_aggregates(server, logs):
    # One statement per project computes each distinct (window, filter, kind) once: rules that share
    # them, rules that differ only in window or filter, and error_rate (two shared counts) each get
    # their own value.
    api = Api(server.url)
    user = api.register()
    pid = user.create_project()["project_id"]
    add_logs(logs, pid, 2, level="info", log_type="logger", error_type=None)
    add_logs(logs, pid, 2, error_type="ValueError")
    add_logs(logs, pid, 1, error_type="KeyError")
    for ms in (10, 20, 30):
        add_logs(logs, pid, 1, level="info", log_type="endpoint", error_type=None,
                 attrs={"endpoint": {"method": "GET", "path": "/x", "status_code": 200, "duration_ms": ms}})
    # ten minutes ago: inside the 15-minute window only
    add_logs(logs, pid, 3, error_type="KeyError", ago_s=600)
    for ms in (1000, 2000):
        add_logs(logs, pid, 1, level="info", log_type="endpoint", error_type=None, ago_s=600,
                 attrs={"endpoint": {"method": "GET", "path": "/x", "status_code": 200, "duration_ms": ms}})
    kv = "error_type:KeyError"
    mk = lambda **kw: user.post(RULES, json=rule_body(pid, threshold=1e9, comparator="gt", **kw)).json()
    rules = {
        "vol5": (mk(metric="log_volume", window_s=300), 8),
        "vol15": (mk(metric="log_volume", window_s=900), 13),
        "vol15_again": (mk(metric="log_volume", window_s=900), 13),
        "kv5": (mk(metric="error_count", window_s=300, filter=kv), 1),
        "kv15": (mk(metric="error_count", window_s=900, filter=kv), 4),
        "ve15": (mk(metric="error_count", window_s=900, filter="error_type:ValueError"), 2),
        "rate15_kv": (mk(metric="error_rate", window_s=900, filter=kv), 100),
        "rate15": (mk(metric="error_rate", window_s=900), 100 * 6 / 13),
        "rate5": (mk(metric="error_rate", window_s=300), 100 * 3 / 8),
        "p50_5": (mk(metric="p50_latency", window_s=300), 20),
        "p95_15": (mk(metric="p95_latency", window_s=900), 1800),
        "p99_15": (mk(metric="p99_latency", window_s=900), 1960),
        "p50_kv": (mk(metric="p50_latency", window_s=900, filter=kv), None),  # no endpoint logs: no data
    }
    assert_values(user, rules)


def test_rules_of_several_projects_share_one_statement(server, logs):
    # The rules of projects of one shard are computed by one statement grouped by project: each
    # project gets its own values, a filter shared by two projects is computed for both, and a
    # project without logs gets 0 for counts and no data for percentiles.
    api = Api(server.url)
    user = api.register()
    a, b, c = (user.create_project()["project_id"] for _ in range(3))
    add_logs(logs, a, 2, error_type="KeyError")
    add_logs(logs, a, 1, level="info", log_type="logger", error_type=None)
    add_logs(logs, b, 1, error_type="ValueError")
    add_logs(logs, b, 1, error_type="KeyError")
    add_logs(logs, b, 1, level="info", log_type="endpoint", error_type=None,
             attrs={"endpoint": {"method": "GET", "path": "/x", "status_code": 200, "duration_ms": 50}})
    kv = "error_type:KeyError"
    mk = lambda pid, **kw: user.post(RULES, json=rule_body(pid, threshold=1e9, comparator="gt", **kw)).json()
    rules = {
        "a_errors": (mk(a), 2),
        "a_volume": (mk(a, metric="log_volume"), 3),
        "a_kv": (mk(a, filter=kv), 2),
        "b_kv": (mk(b, filter=kv), 1),
        "b_rate": (mk(b, metric="error_rate"), 100 * 2 / 3),
        "b_p50": (mk(b, metric="p50_latency"), 50),
        "c_volume": (mk(c, metric="log_volume"), 0),
        "c_rate": (mk(c, metric="error_rate"), 0),
        "c_p95": (mk(c, metric="p95_latency"), None),
        "c_ve": (mk(c, filter="error_type:ValueError"), 0),
    }
    assert_values(user, rules)


def test_rules_over_the_limit_take_turns(ledgerd, logs):
    # alert_max_rules bounds a pass; the rules evaluated longest ago (never first) go first, so
    # rules beyond the limit are not starved.
    srv = ledgerd(extra_ini={"analytics": {"alert_eval_interval_ms": 1000, "alert_max_rules": 2}})
    user = Api(srv.url).register()
    pid = user.create_project()["project_id"]
    ids = [user.post(RULES, json=rule_body(pid, name=f"r{i}", threshold=1e9)).json()["id"] for i in range(5)]
    assert wait_for(lambda: all(user.get(f"{RULES}/{i}").json()["last_evaluated_at"] for i in ids), 20)


def test_rule_validation_and_ownership(server):
    api = Api(server.url)
    alice, bob = api.register(), api.register()
    pid = alice.create_project()["project_id"]
    bob_conn = bob.post("/api/v1/connectors", json={"name": "b", "kind": "in_app"}).json()
    assert alice.post(RULES, json=rule_body(pid, metric="cpu")).status_code == 422
    assert alice.post(RULES, json=rule_body(pid, comparator="!=")).status_code == 422
    assert alice.post(RULES, json=rule_body(pid, window_s=5)).status_code == 422
    assert alice.post(RULES, json=rule_body(pid, threshold="x")).status_code == 422
    r = alice.post(RULES, json=rule_body(pid, filter="level:(error"))
    assert r.status_code == 400 and "position" in r.json()["detail"]
    r = alice.post(RULES, json=rule_body(pid, connector_ids=[bob_conn["id"]]))
    assert r.status_code == 400 and "connector" in r.json()["detail"]
    assert alice.post(RULES, json=rule_body(999999999)).status_code == 404
    assert bob.post(RULES, json=rule_body(pid)).status_code == 403

    rule = alice.post(RULES, json=rule_body(pid)).json()
    r = alice.post("/api/v1/maintenance-windows", json={"project_id": pid, "starts_at": "2030-01-01T00:00:00Z",
                                                        "ends_at": "2030-01-01T01:00:00Z"})
    win = r.json()
    assert alice.post("/api/v1/maintenance-windows", json={"project_id": pid, "starts_at": "2030-01-01T01:00:00Z",
                                                           "ends_at": "2030-01-01T00:00:00Z"}).status_code == 400
    assert alice.post("/api/v1/maintenance-windows", json={"project_id": pid, "starts_at": "tomorrow",
                                                           "ends_at": "2030-01-01T00:00:00Z"}).status_code == 422
    project = alice.create_project()
    key = api.with_key(alice.create_key(project["project_id"])["full_key"])
    rid, wid = rule["id"], win["id"]
    rows = [
        ("GET", f"{RULES}/{rid}", None, "/999999999"),
        ("PATCH", f"{RULES}/{rid}", {"name": "x"}, "/999999999"),
        ("POST", f"{RULES}/{rid}/enable", None, "/999999999"),
        ("POST", f"{RULES}/{rid}/disable", None, "/999999999"),
        ("DELETE", f"{RULES}/{rid}", None, "/999999999"),
        ("DELETE", f"/api/v1/maintenance-windows/{wid}", None, "/999999999"),
    ]
    for method, path, body, missing in rows:
        assert bob.request(method, path, json=body).status_code == 403, (method, path)
        other = path.rsplit("/", 1)[0] + missing if not path.endswith(("enable", "disable")) else \
            path.replace(f"/{rid}/", missing + "/")
        assert bob.request(method, other, json=body).status_code == 404, (method, other)
        assert key.request(method, path, json=body).status_code == 403, (method, path)
        assert api.request(method, path, json=body).status_code == 401, (method, path)
    for method, path, params in [("GET", "/api/v1/alerts/history", {"project_id": pid}),
                                 ("GET", "/api/v1/maintenance-windows", {"project_id": pid}),
                                 ("GET", RULES, {"project_id": pid})]:
        assert bob.request(method, path, params=params).status_code == 403, path
        assert bob.request(method, path, params={"project_id": 999999999}).status_code == 404, path
        assert key.request(method, path, params=params).status_code == 403, path
    for path in ("/api/v1/alerts/history/999999999/ack", "/api/v1/alerts/history/999999999/snooze"):
        assert alice.post(path).status_code == 404
        assert key.post(path).status_code == 403
    assert alice.get(f"{RULES}/{rid}").status_code == 200


def test_logs_database_down_fails_the_pass_and_nothing_else(ledgerd, pg):
    # With the logs database refusing connections the metric statements cannot even be sent (the
    # pool answers at once while it waits to retry: 3 s here): the pass ends once with its error,
    # ledgerd stays up, and the rules are evaluated again once the database is back. A pass used to
    # end twice then (a double free).
    srv = ledgerd(extra_ini={"analytics": {"alert_eval_interval_ms": 1000},
                             "pg_logs": {"reconnect_min_ms": 3000, "reconnect_max_ms": 3000}})
    srv.allow_errors = True
    user = Api(srv.url).register()
    a, b = user.create_project()["project_id"], user.create_project()["project_id"]
    with psycopg.connect(pg.dsn("ledger_logs"), autocommit=True) as logs:  # the database exists now
        add_logs(logs, a, 1)
    rules = [user.post(RULES, json=rule_body(p, threshold=1e9, **kw)).json()
             for p in (a, b) for kw in ({}, {"metric": "log_volume", "window_s": 900})]
    evaluated = lambda: [user.get(f"{RULES}/{r['id']}").json()["last_evaluated_at"] for r in rules]
    assert wait_for(lambda: all(evaluated()), 15)
    admin = psycopg.connect(pg.dsn("ledger_auth"), autocommit=True)
    try:
        admin.execute("ALTER DATABASE ledger_logs ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'ledger_logs'")

        def failing():
            job = requests.get(srv.url + "/health/deep", timeout=10).json()["roles"]["analytics"]["jobs"]["alert_eval"]
            return job["last_error"] == "computing rule metrics"

        assert wait_for(failing, 20)
        time.sleep(3)  # several passes while the pool refuses at once
        assert srv.running, srv.log_text()[-3000:]
    finally:
        admin.execute("ALTER DATABASE ledger_logs ALLOW_CONNECTIONS true")
        admin.close()
    before = evaluated()
    assert wait_for(lambda: all(x != y for x, y in zip(evaluated(), before)), 30)
    assert srv.running
