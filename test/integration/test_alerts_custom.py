"""Alert rules over custom metrics: OTLP metric points sent to /v1/metrics, evaluated by the
analytics role's evaluator (every second here) with the rule's aggregation over its window."""

import time

import pytest
import requests

from ldg_api import Api

pytestmark = pytest.mark.timeout(120)

RULES = "/api/v1/alerts/rules"


@pytest.fixture
def server(ledgerd):
    return ledgerd(extra_ini={"analytics": {"alert_eval_interval_ms": 1000}})


def wait_for(fn, timeout=15.0, step=0.2):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def send_points(server, key, name, values, kind="gauge"):
    """OTLP/JSON: one metric with a point per value, stamped now."""
    now = time.time_ns()
    if kind == "gauge":
        data = {"gauge": {"dataPoints": [{"timeUnixNano": str(now - i * 1000), "asDouble": v}
                                         for i, v in enumerate(values)]}}
    else:  # histogram points: (count, sum, min, max)
        data = {"histogram": {"aggregationTemporality": 1, "dataPoints": [
            {"timeUnixNano": str(now - i * 1000), "count": str(c), "sum": s, "min": lo, "max": hi,
             "explicitBounds": [], "bucketCounts": [str(c)]} for i, (c, s, lo, hi) in enumerate(values)]}}
    body = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": name, **data}]}]}]}
    r = requests.post(server.url + "/v1/metrics", json=body, headers={"X-API-Key": key}, timeout=10)
    assert r.status_code == 200, r.text


def test_custom_metric_rule_fires_and_resolves(server):
    user = Api(server.url).register()
    pid = user.create_project()["project_id"]
    key = user.create_key(pid)["full_key"]
    inbox = user.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
    r = user.post(RULES, json={"project_id": pid, "name": "queue backlog", "metric": "custom",
                               "metric_name": "queue.depth", "comparator": "gt", "threshold": 100,
                               "window_s": 60, "cooldown_s": 0, "connector_ids": [inbox["id"]]})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["metric"] == "custom" and rule["metric_name"] == "queue.depth" and rule["aggregation"] == "avg"
    assert rule["unit"] is None and rule["filter"] is None
    # a rule over a histogram's largest observation, and one over a metric that has no points
    hist = user.post(RULES, json={"project_id": pid, "name": "slowest", "metric": "custom", "metric_name": "rpc.ms",
                                  "aggregation": "max", "comparator": "gte", "threshold": 900, "window_s": 60,
                                  "cooldown_s": 0}).json()
    silent = user.post(RULES, json={"project_id": pid, "name": "silent", "metric": "custom", "metric_name": "nothing",
                                    "aggregation": "count", "comparator": "lt", "threshold": -1, "window_s": 60,
                                    "cooldown_s": 0}).json()
    # a log metric rule of the same project is evaluated in its own statement
    logs_rule = user.post(RULES, json={"project_id": pid, "name": "errors", "metric": "error_count",
                                       "comparator": "gte", "threshold": 1, "window_s": 60}).json()

    def get(rid):
        return user.get(f"{RULES}/{rid}").json()

    send_points(server, key, "queue.depth", [10.0, 20.0])
    send_points(server, key, "rpc.ms", [(4, 400.0, 50.0, 200.0)], kind="histogram")
    assert wait_for(lambda: get(rule["id"])["last_value"] == 15.0, 10), get(rule["id"])
    assert get(rule["id"])["state"] == "ok"
    assert wait_for(lambda: get(hist["id"])["last_value"] == 200.0, 10), get(hist["id"])
    assert wait_for(lambda: get(logs_rule["id"])["last_evaluated_at"], 10), get(logs_rule["id"])
    assert get(silent["id"])["state"] == "ok" and get(silent["id"])["last_value"] == 0

    send_points(server, key, "queue.depth", [510.0])  # avg (10 + 20 + 510) / 3 = 180
    send_points(server, key, "rpc.ms", [(1, 950.0, 950.0, 950.0)], kind="histogram")
    assert wait_for(lambda: get(rule["id"])["state"] == "firing", 10), get(rule["id"])
    assert get(rule["id"])["last_value"] == 180.0
    assert wait_for(lambda: get(hist["id"])["state"] == "firing", 10)
    assert get(silent["id"])["state"] == "ok" and get(logs_rule["id"])["state"] == "ok"

    hist_ev = user.get("/api/v1/alerts/history", params={"project_id": pid}).json()["events"]
    ev = [e for e in hist_ev if e["rule_id"] == rule["id"]][0]
    assert ev["metric"] == "custom" and ev["value"] == 180.0 and ev["status"] == "firing"
    notes = wait_for(lambda: user.get("/api/v1/notifications").json()["notifications"], 5)
    note = [n for n in notes if n["data"]["rule_id"] == rule["id"]][0]
    assert note["kind"] == "alert_firing" and "avg(queue.depth)" in note["title"], note
    assert note["data"]["metric_name"] == "queue.depth" and note["data"]["aggregation"] == "avg"

    # the same points under "last": the newest (510) still breaches; under "min" (10) it resolves
    r = user.patch(f"{RULES}/{rule['id']}", json={"aggregation": "min"})
    assert r.status_code == 200 and r.json()["aggregation"] == "min" and r.json()["metric_name"] == "queue.depth"
    assert wait_for(lambda: get(rule["id"])["state"] == "ok", 10), get(rule["id"])
    assert get(rule["id"])["last_value"] == 10.0


def test_custom_metric_rule_validation(server):
    user = Api(server.url).register()
    pid = user.create_project()["project_id"]
    base = {"project_id": pid, "name": "x", "comparator": "gt", "threshold": 1}
    for body, field in [
        ({"metric": "custom"}, "metric_name"),
        ({"metric": "custom", "metric_name": ""}, "metric_name"),
        ({"metric": "custom", "metric_name": "m", "aggregation": "median"}, "aggregation"),
        ({"metric": "error_count", "metric_name": "m"}, "metric_name"),
        ({"metric": "error_count", "aggregation": "avg"}, "aggregation"),
        ({"metric": "custom", "metric_name": "m", "filter": "level:error"}, "filter"),
        ({"metric": "gauge"}, "metric"),
    ]:
        r = user.post(RULES, json={**base, **body})
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert r.json()["detail"][0]["loc"][-1] == field, (body, r.text)
    # a log rule turned custom must name its metric; a custom rule turned back drops name and aggregation
    rule = user.post(RULES, json={**base, "metric": "error_count"}).json()
    assert rule["metric_name"] is None and rule["aggregation"] is None and rule["unit"] == "count"
    assert user.patch(f"{RULES}/{rule['id']}", json={"metric": "custom"}).status_code == 422
    r = user.patch(f"{RULES}/{rule['id']}", json={"metric": "custom", "metric_name": "jobs.pending",
                                                  "aggregation": "last"})
    assert r.status_code == 200 and r.json()["metric_name"] == "jobs.pending" and r.json()["aggregation"] == "last"
    r = user.patch(f"{RULES}/{rule['id']}", json={"metric": "log_volume"})
    assert r.status_code == 200 and r.json()["metric_name"] is None and r.json()["aggregation"] is None
