"""A local fake Ledger server (http.server in a thread) whose answers each test scripts."""

import gzip
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import ledger  # noqa: E402
from ledger import client as ledger_client_module  # noqa: E402


class Recorded:
    def __init__(self, method, path, headers, body, peer):
        self.method = method
        self.path = path
        self.headers = headers
        self.raw = body
        self.peer = peer  # (host, port) of the client socket: same port = same connection
        self.at = time.monotonic()
        self.logs = None
        if method == "POST":
            data = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
            self.logs = json.loads(data)["logs"]


class FakeServer:
    """``answers`` is a list of responses used in order for POSTs (the last one repeats): each is a
    status, or a dict {status, body, headers, delay, close}. GET /api/v1/settings answers ``settings``
    (or ``settings_status``)."""

    def __init__(self):
        self.requests = []
        self.answers = [202]
        self.settings = {"rate_limits": {"requests_per_minute": 100000, "requests_per_hour": 1000000},
                         "constraints": {"max_batch_size": 1000}}
        self.settings_status = 200
        self.lock = threading.Lock()
        self.posts_seen = threading.Condition(self.lock)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, status, body=b"", headers=None, close=False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                with fake.lock:
                    fake.requests.append(Recorded("GET", self.path, dict(self.headers), b"", self.client_address))
                if self.path.endswith("/api/v1/settings"):
                    self._reply(fake.settings_status, json.dumps(fake.settings).encode())
                else:
                    self._reply(404, b'{"detail":"Not Found"}')

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                rec = Recorded("POST", self.path, dict(self.headers), body, self.client_address)
                with fake.lock:
                    idx = sum(1 for r in fake.requests if r.method == "POST")
                    fake.requests.append(rec)
                    ans = fake.answers[min(idx, len(fake.answers) - 1)]
                    fake.posts_seen.notify_all()
                if not isinstance(ans, dict):
                    ans = {"status": ans}
                if ans.get("delay"):
                    time.sleep(ans["delay"])
                status = ans["status"]
                body = ans.get("body")
                if body is None and status == 202:
                    body = {"accepted": len(rec.logs), "rejected": 0, "message": None, "errors": None}
                if body is None:
                    body = {"detail": "fake"}
                try:
                    self._reply(status, json.dumps(body).encode(), ans.get("headers"), ans.get("close", False))
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def posts(self):
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]

    def logs(self):
        return [log for r in self.posts for log in r.logs]

    def wait_posts(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while sum(1 for r in self.requests if r.method == "POST") < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.posts_seen.wait(left)
        return self.posts

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


FAST = dict(retry_5xx_delays=(0.02, 0.04, 0.08), retry_network_delays=(0.05, 0.1, 0.2), breaker_cooldown=0.5,
            flush_at_exit=False)


@pytest.fixture
def fake():
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture
def make_client():
    made = []

    def make(url, **kw):
        opts = dict(FAST)
        opts.update(kw)
        opts.setdefault("api_key", "ledger_test_key")
        c = ledger.LedgerClient(base_url=url, **opts)
        made.append(c)
        return c

    yield make
    for c in made:
        c.shutdown_sync(0.5)
    ledger.set_ledger_client(None)


@pytest.fixture(autouse=True)
def _no_default_client():
    ledger.set_ledger_client(None)
    yield
    ledger.set_ledger_client(None)
