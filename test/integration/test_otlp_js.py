"""The stock OpenTelemetry JavaScript SDK (@opentelemetry/sdk-logs, sdk-trace-base and sdk-metrics,
each with its -otlp-proto and -otlp-http exporter; test/otel-js) sending to a real ledgerd: every
mapped log field read back through GET /api/v1/logs, a trace across two services through
/api/v1/traces, metrics through /api/v1/metrics/*, and a 503 (backpressure) that the exporter
retries successfully after the server's Retry-After.

Needs Node.js and `npm ci` in test/otel-js (./scripts/ledger test runs it); skipped without them,
except under CI=true, where their absence is an error."""

import json
import os
import shutil
import subprocess
import threading
import time

import pytest
import requests

from conftest import scaled
from ldg_http import wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "..", "otel-js")
NODE = shutil.which("node")

_HAVE_JS = NODE and os.path.isdir(os.path.join(JS, "node_modules", "@opentelemetry", "sdk-logs"))
if not _HAVE_JS and os.environ.get("CI") == "true":
    raise RuntimeError("test/otel-js is not installed: ./scripts/ledger test runs `npm ci` there")
pytestmark = pytest.mark.skipif(not _HAVE_JS, reason="needs node and `npm ci` in test/otel-js")


class Env:
    def __init__(self, ledgerd, db, ingest=None):
        tag = os.urandom(5).hex()
        self.srv = ledgerd(extra_ini={
            "ingest": {"stream": f"test:logs:{tag}", **(ingest or {})},
            "storage": {"group": f"test:group:{tag}", "dead_letter_stream": f"test:dead:{tag}", "batch_wait_ms": 20},
        })
        d = db()
        self.pid = d.project(d.account())
        self.key, _ = d.key(self.pid, rpm=100000, rph=1000000)

    def send(self, protocol, tag, script="send-logs.js"):
        return subprocess.run([NODE, os.path.join(JS, script), protocol, self.srv.url, self.key, tag],
                              capture_output=True, text=True, timeout=scaled(60))

    def get(self, path, **params):
        r = requests.get(self.srv.url + path, params=params, headers={"X-API-Key": self.key}, timeout=scaled(10))
        assert r.status_code == 200, r.text
        return r.json()

    def logs(self, **params):
        r = requests.get(self.srv.url + "/api/v1/logs", params={"limit": 100, **params},
                         headers={"X-API-Key": self.key}, timeout=scaled(10))
        assert r.status_code == 200, r.text
        return r.json()["logs"]

    def wait_run(self, tag, n=3):
        got = []

        def enough():
            got[:] = self.logs(**{"attributes.run": tag})
            return len(got) >= n

        wait_until(enough, scaled(15), what=f"{n} logs of run {tag}")
        return {lg["message"].split(" " + tag)[0]: lg for lg in got}


def check_mapped(logs, protocol, tag):
    hello, failed, get = logs["hello"], logs["failed"], logs["GET /items"]
    for lg in (hello, failed, get):
        assert lg["environment"] == "qa" and lg["release"] == "3.1.4"
        assert lg["platform"] == "nodejs" and lg["sdk_version"]
        assert lg["attributes"]["service"]["name"] == "js-" + protocol
        assert lg["attributes"]["run"] == tag
    assert hello["level"] == "info" and hello["log_type"] == "custom" and hello["importance"] == "standard"
    assert hello["attributes"]["user"] == {"id": 7}
    assert hello["attributes"]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert hello["attributes"]["span_id"] == "00f067aa0ba902b7"
    assert failed["level"] == "error" and failed["log_type"] == "exception" and failed["importance"] == "high"
    assert failed["error_type"] == "TypeError" and failed["error_message"] == "x is undefined"
    assert failed["stack_trace"].startswith("TypeError: x is undefined\n    at f (/app/a.js:3:7)")
    assert len(failed["error_fingerprint"]) == 64
    assert get["level"] == "warning" and get["log_type"] == "endpoint"
    assert get["attributes"]["endpoint"] == {"method": "GET", "path": "/items/:id", "status_code": 404,
                                             "duration_ms": 3.5}


@pytest.mark.parametrize("protocol", ["proto", "http"])
def test_js_sdk_logs(ledgerd, db, protocol):
    e = Env(ledgerd, db)
    tag = "r" + os.urandom(4).hex()  # not a number (attribute filters compare numbers as numbers)
    p = e.send(protocol, tag)
    assert p.returncode == 0, p.stdout + p.stderr
    logs = e.wait_run(tag)
    check_mapped(logs, protocol, tag)
    # found by trace id and by service
    assert [lg["message"] for lg in e.logs(**{"attributes.trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})] == [
        "hello " + tag]
    assert len(e.logs(**{"attributes.service.name": "js-" + protocol})) == 3


def test_js_exporter_retries_503(ledgerd, db, rc):
    e = Env(ledgerd, db, ingest={"queue_max_depth": 100})
    depth_key = f"queue_depth:{e.pid}"
    rc.set(depth_key, 100)  # the project's queue is full: 503 + Retry-After: 5
    freed = []

    def free_after_first_refusal():
        # every answered request counts in the key's minute window: the first one was the 503
        deadline = time.monotonic() + scaled(30)
        while time.monotonic() < deadline:
            if sum(int(rc.get(k) or 0) for k in rc.keys(f"ratelimit:{e.pid}:min:*")) >= 1:
                rc.set(depth_key, 0)
                freed.append(time.monotonic())
                return
            time.sleep(0.02)

    t = threading.Thread(target=free_after_first_refusal)
    t.start()
    tag = "r" + os.urandom(4).hex()
    p = e.send("proto", tag)
    end = time.monotonic()
    t.join()
    assert p.returncode == 0, p.stdout + p.stderr
    assert freed, "no request reached ledgerd"
    # the retry came after the server's Retry-After (5 s), and got through
    assert end - freed[0] >= 4
    check_mapped(e.wait_run(tag), "proto", tag)


@pytest.mark.parametrize("protocol", ["proto", "http"])
def test_js_sdk_trace_two_services(ledgerd, db, protocol):
    e = Env(ledgerd, db)
    tag = "r" + os.urandom(4).hex()  # not a number (attribute filters compare numbers as numbers)
    p = e.send(protocol, tag, "send-traces.js")
    assert p.returncode == 0, p.stdout + p.stderr
    trace_id = json.loads(p.stdout.strip().splitlines()[-1])["trace_id"]
    got = {}

    def stored():
        r = requests.get(f"{e.srv.url}/api/v1/traces/{trace_id}", headers={"X-API-Key": e.key}, timeout=scaled(10))
        if r.status_code == 200 and r.json()["span_count"] == 4:
            got.update(r.json())
            return True
        return False

    wait_until(stored, scaled(15), what="4 spans stored")
    assert sorted(got["services"]) == ["backend-" + tag, "frontend-" + tag] and got["error"] is True
    spans = got["spans"]
    assert [(s["name"], s["depth"]) for s in spans] == [("GET /cart", 0), ("POST /price", 1), ("price", 2),
                                                       ("SELECT prices", 3)]
    assert [s["kind"] for s in spans] == [2, 3, 2, 3]
    assert spans[0]["attributes"] == {"http": {"route": "/cart"}, "run": tag}
    assert spans[3]["status_code"] == 2 and spans[3]["status_message"] == "price missing"
    assert spans[3]["events"][0]["name"] == "exception"
    assert all(spans[i + 1]["parent_span_id"] == spans[i]["span_id"] for i in range(3))
    lst = e.get("/api/v1/traces", service="frontend-" + tag)["traces"]
    assert [(t["trace_id"], t["root_name"], t["span_count"], t["error"]) for t in lst] == [
        (trace_id, "GET /cart", 4, True)]
    ops = {o["operation"]: o for o in e.get("/api/v1/metrics/span-latency", service="backend-" + tag)["operations"]}
    assert sorted(ops) == ["SELECT prices", "price"] and ops["SELECT prices"]["error_count"] == 1
    # recordException became an exception log linked to the trace
    logs = []

    def linked():
        logs[:] = e.logs(**{"attributes.trace_id": trace_id})
        return len(logs) == 1

    wait_until(linked, scaled(15), what="the exception log")
    lg = logs[0]
    assert lg["log_type"] == "exception" and lg["error_type"] == "TypeError"
    assert lg["error_message"] == "price missing" and lg["stack_trace"].startswith("TypeError: price missing")
    assert lg["attributes"]["span_id"] == spans[3]["span_id"]


@pytest.mark.parametrize("protocol", ["proto", "http"])
def test_js_sdk_metrics(ledgerd, db, protocol):
    e = Env(ledgerd, db)
    tag = "r" + os.urandom(4).hex()  # not a number (attribute filters compare numbers as numbers)
    p = e.send(protocol, tag, "send-metrics.js")
    assert p.returncode == 0, p.stdout + p.stderr
    # 200 means queued: the storage role writes the points shortly after
    wait_until(lambda: len(e.get("/api/v1/metrics/series", service="metrics-" + tag)["series"]) == 3, scaled(15),
               what="the points stored")
    series = {s["name"]: s for s in e.get("/api/v1/metrics/series", service="metrics-" + tag)["series"]}
    assert series["js.requests." + tag]["type"] == "sum"
    assert series["js.requests." + tag]["temporality"] == "cumulative" and series["js.requests." + tag]["monotonic"]
    assert series["js.requests." + tag]["attribute_keys"] == ["http.route"]
    assert series["js.latency." + tag]["type"] == "histogram" and series["js.latency." + tag]["unit"] == "ms"
    assert series["js.temp." + tag]["type"] == "gauge" and series["js.temp." + tag]["attribute_keys"] == ["host"]

    def q(name, agg, **kw):
        return [d["value"] for d in e.get("/api/v1/metrics/query", name=name, aggregation=agg, interval="1d", **kw)["data"]]

    wait_until(lambda: q("js.requests." + tag, "sum", group_by="http.route") == [7], scaled(15),
               what="every point stored")
    assert q("js.temp." + tag, "max") == [42]
    assert q("js.latency." + tag, "max") == [400] and q("js.latency." + tag, "min") == [3]
    assert q("js.latency." + tag, "sum") == [443]
    assert q("js.latency." + tag, "p50") == [50]  # the default buckets: 40 falls in (25, 50]
