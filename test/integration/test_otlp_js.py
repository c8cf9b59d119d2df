"""The stock OpenTelemetry JavaScript logs SDK (@opentelemetry/sdk-logs with the -otlp-proto and
-otlp-http exporters, test/otel-js) sending to a real ledgerd: every mapped field read back through
GET /api/v1/logs, and a 503 (backpressure) that the exporter retries successfully after the
server's Retry-After.

Needs Node.js and `npm ci` in test/otel-js; skipped without them."""

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

pytestmark = pytest.mark.skipif(
    not NODE or not os.path.isdir(os.path.join(JS, "node_modules", "@opentelemetry", "sdk-logs")),
    reason="needs node and `npm ci` in test/otel-js")


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

    def send(self, protocol, tag):
        return subprocess.run([NODE, os.path.join(JS, "send-logs.js"), protocol, self.srv.url, self.key, tag],
                              capture_output=True, text=True, timeout=scaled(60))

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
    tag = os.urandom(4).hex()
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

    def free_later():
        time.sleep(1.5)
        rc.set(depth_key, 0)
        freed.append(time.monotonic())

    t = threading.Thread(target=free_later)
    start = time.monotonic()
    t.start()
    tag = os.urandom(4).hex()
    p = e.send("proto", tag)
    t.join()
    assert p.returncode == 0, p.stdout + p.stderr
    # the first attempt was refused (nothing could pass before the queue was freed), the retry
    # after Retry-After got through
    assert time.monotonic() - start >= 5
    check_mapped(e.wait_run(tag), "proto", tag)
