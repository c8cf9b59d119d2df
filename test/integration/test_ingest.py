"""The ingest role's HTTP side (reference §3.6, §5; decisions D4, D5, D6, D10): single and batch
ingestion into the Redis Stream, partial success, whole-request 400s, gzip, backpressure, quota,
notifications, Redis down, and the queue depth endpoint.

Accounts, projects and keys are written straight into the auth database (ldg_fixtures). Each test
uses its own stream name so that entries can be counted exactly.
"""

import datetime
import gzip
import json
import os
import signal
import socket
import time

import pytest
import requests

from conftest import scaled
from ldg_fixtures import mint_jwt, open_session, read_secret
from ldg_http import wait_until
from ldg_queue import queued, queued_logs, split_logs
from ldg_servers import RedisServer

SINGLE = "/api/v1/ingest/single"
BATCH = "/api/v1/ingest/batch"
DEPTH = "/api/v1/queue/depth"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def log(**kw):
    base = {"timestamp": now_iso(), "level": "info", "log_type": "console", "message": "hello world"}
    base.update(kw)
    return base


def today():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")


class Ingest:
    def __init__(self, srv, key, pid, stream):
        self.srv, self.key, self.pid, self.stream = srv, key, pid, stream

    def post(self, path, body, headers=None, raw=None):
        h = {"X-API-Key": self.key, "Content-Type": "application/json", **(headers or {})}
        data = raw if raw is not None else json.dumps(body).encode()
        return requests.post(self.srv.url + path, data=data, headers=h, timeout=scaled(10))

    def depth(self, headers=None):
        return requests.get(self.srv.url + DEPTH, headers=headers or {"X-API-Key": self.key}, timeout=scaled(10))


def start(ledgerd, db, ingest=None, redis=None, quota=1000000, rpm=1000, rph=50000, **extra):
    stream = "test:logs:" + os.urandom(6).hex()
    # storage off: these tests look at the queue entries themselves (test_storage.py stores them)
    ini = {"ingest": {"stream": stream, **(ingest or {})}, "roles": {"storage": False}}
    if redis:
        ini["redis"] = redis
    ini.update(extra)
    s = ledgerd(extra_ini=ini)
    d = db()
    pid = d.project(d.account(), daily_quota=quota)
    key, _ = d.key(pid, rpm=rpm, rph=rph)
    return Ingest(s, key, pid, stream)


def entries(rc, stream):
    return [(eid, fields) for eid, fields in rc.xrange(stream)]


def check_entry(fields, pid, messages):
    """A request's stream entry: p, n and the n logs back to back, in the order posted. (Requests
    that reach the server in the same loop iteration share one entry per project; these tests send
    one at a time.)"""
    if isinstance(messages, str):
        messages = [messages]
    assert fields[b"p"] == str(pid).encode()
    assert fields[b"n"] == str(len(messages)).encode()
    logs = split_logs(fields[b"m"])
    assert len(logs) == len(messages)
    for m, msg in zip(logs, messages):
        assert m[:4] == b"\xdc\x00\x13\x02"  # logcodec format 2: array16 of 19 elements, version 2
        assert msg.encode() in m


# ---- single ------------------------------------------------------------------------------------


def test_single_is_202_and_queued(ledgerd, db, rc):
    t = start(ledgerd, db)
    r = t.post(SINGLE, log(message="single one"))
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "rejected": 0, "message": "Log accepted for processing", "errors": None}
    es = entries(rc, t.stream)
    assert len(es) == 1
    check_entry(es[0][1], t.pid, "single one")
    assert int(rc.get(f"queue_depth:{t.pid}")) == 1
    assert int(rc.get(f"usage:{t.pid}:{today()}")) == 1
    assert 0 < rc.ttl(f"usage:{t.pid}:{today()}") <= 172800


def test_single_bad_log_is_400(ledgerd, db, rc):
    t = start(ledgerd, db)
    r = t.post(SINGLE, log(level="loud"))
    assert r.status_code == 400
    assert r.json()["detail"].startswith("Invalid log entry: ")
    naive = log(timestamp="2025-01-01T10:00:00")
    r = t.post(SINGLE, naive)
    assert r.status_code == 400 and "timezone" in r.json()["detail"]
    assert entries(rc, t.stream) == []


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\"x\"", b""])
def test_single_whole_request_problems_are_400(ledgerd, db, raw):
    t = start(ledgerd, db)
    r = t.post(SINGLE, None, raw=raw)
    assert r.status_code == 400 and isinstance(r.json()["detail"], str)


def test_gzip_body(ledgerd, db, rc):
    t = start(ledgerd, db)
    body = gzip.compress(json.dumps({"logs": [log(message=f"gz {i}") for i in range(5)]}).encode())
    r = t.post(BATCH, None, raw=body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 5, "rejected": 0, "message": None, "errors": None}
    assert len(queued_logs(rc, t.stream)) == 5


# ---- batch -------------------------------------------------------------------------------------


def test_batch_all_accepted(ledgerd, db, rc):
    t = start(ledgerd, db)
    r = t.post(BATCH, {"logs": [log(message=f"batch {i}") for i in range(10)]})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 10, "rejected": 0, "message": None, "errors": None}
    es = entries(rc, t.stream)
    assert len(es) == 1  # one stream entry per request
    check_entry(es[0][1], t.pid, [f"batch {i}" for i in range(10)])
    assert t.depth().json() == {"project_id": t.pid, "queue_depth": 10}


def test_batch_partial_success(ledgerd, db, rc):
    t = start(ledgerd, db)
    logs = [log(message="ok 0"), log(level="nope"), log(message="ok 2"),
            log(log_type="exception", level="error"), "not an object"]
    r = t.post(BATCH, {"logs": logs})
    assert r.status_code == 202, r.text
    b = r.json()
    assert b["accepted"] == 2 and b["rejected"] == 3
    assert [e.split(":")[0] for e in b["errors"]] == ["Log 1", "Log 3", "Log 4"]
    assert all(len(e) > len("Log 1: ") for e in b["errors"])
    es = entries(rc, t.stream)
    assert len(es) == 1
    check_entry(es[0][1], t.pid, ["ok 0", "ok 2"])
    assert int(rc.get(f"usage:{t.pid}:{today()}")) == 2


def test_batch_all_rejected_is_202_with_nothing_queued(ledgerd, db, rc):
    t = start(ledgerd, db)
    r = t.post(BATCH, {"logs": [log(level="x"), log(importance="y")]})
    assert r.status_code == 202, r.text
    b = r.json()
    assert b["accepted"] == 0 and b["rejected"] == 2 and len(b["errors"]) == 2
    assert entries(rc, t.stream) == []
    assert rc.get(f"queue_depth:{t.pid}") is None


@pytest.mark.parametrize("body", [{"logs": []}, {"logs": [{}] * 1001}, {"logs": "x"}, {"nologs": []}, [1]])
def test_batch_whole_request_problems_are_400(ledgerd, db, rc, body):
    t = start(ledgerd, db)
    r = t.post(BATCH, body)
    assert r.status_code == 400 and isinstance(r.json()["detail"], str), r.text
    assert entries(rc, t.stream) == []


def test_batch_of_1000(ledgerd, db, rc):
    t = start(ledgerd, db)
    r = t.post(BATCH, {"logs": [log(message=f"m{i}", attributes={"i": i, "s": "x" * 50}) for i in range(1000)]})
    assert r.status_code == 202 and r.json()["accepted"] == 1000
    (_, f, logs), = queued(rc, t.stream)
    assert f[b"n"] == b"1000" and len(logs) == 1000


# ---- principals ---------------------------------------------------------------------------------


def test_session_principal_is_403(ledgerd, db, rc, jwt_secret_file):
    t = start(ledgerd, db)
    d = db()
    acct = d.account()
    tok = mint_jwt(read_secret(jwt_secret_file), acct, open_session(rc, acct))
    h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
    for path, body in ((SINGLE, log()), (BATCH, {"logs": [log()]})):
        r = requests.post(t.srv.url + path, data=json.dumps(body), headers=h, timeout=scaled(10))
        assert r.status_code == 403 and r.json() == {"detail": "Ingestion requires an API key"}
    r = t.depth({"Authorization": "Bearer " + tok})
    assert r.status_code == 403 and r.json() == {"detail": "Ingestion requires an API key"}


# ---- backpressure and quota --------------------------------------------------------------------


def test_backpressure_503_at_max_depth(ledgerd, db, rc):
    t = start(ledgerd, db, ingest={"queue_max_depth": 5})
    assert t.post(BATCH, {"logs": [log() for _ in range(4)]}).status_code == 202
    r = t.post(BATCH, {"logs": [log() for _ in range(2)]})
    assert r.status_code == 503 and r.json() == {"detail": "Service temporarily unavailable - queue full"}
    assert r.headers["Retry-After"] == "5"
    assert t.post(SINGLE, log()).status_code == 202
    r = t.post(SINGLE, log())
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert len(queued_logs(rc, t.stream)) == 5
    assert t.depth().json()["queue_depth"] == 5
    rc.decrby(f"queue_depth:{t.pid}", 5)  # what the storage role does after acking
    assert t.post(SINGLE, log()).status_code == 202


def test_quota_402_is_exact(ledgerd, db, rc):
    t = start(ledgerd, db, quota=100)
    ukey = f"usage:{t.pid}:{today()}"
    rc.set(ukey, 98)
    r = t.post(BATCH, {"logs": [log() for _ in range(3)]})
    assert r.status_code == 402 and r.json() == {"detail": "Daily quota exceeded: 98/100"}
    assert rc.exists(t.stream) == 0
    assert t.post(BATCH, {"logs": [log() for _ in range(2)]}).status_code == 202
    assert int(rc.get(ukey)) == 100
    r = t.post(SINGLE, log())
    assert r.status_code == 402 and r.json() == {"detail": "Daily quota exceeded: 100/100"}
    assert len(queued_logs(rc, t.stream)) == 2


def send_at_once(srv, bodies_and_keys):
    """POST each (body, key) as a single log on its own connection while ledgerd is stopped
    (SIGSTOP), so that it reads them all in one loop iteration once it continues. Returns the
    statuses in order."""
    socks = []
    for body, key in bodies_and_keys:
        data = json.dumps(body).encode()
        req = (f"POST {SINGLE} HTTP/1.1\r\nHost: t\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data
        socks.append((socket.create_connection(("127.0.0.1", srv.port), timeout=scaled(10)), req))
    time.sleep(0.2)  # every connection accepted
    srv.proc.send_signal(signal.SIGSTOP)
    try:
        for s, req in socks:
            s.sendall(req)
    finally:
        srv.proc.send_signal(signal.SIGCONT)
    statuses = []
    for s, _ in socks:
        got = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        statuses.append(int(got.split(b" ", 2)[1]))
    return statuses


def test_concurrent_singles_share_script_calls_and_stay_exact(ledgerd, db, rc):
    """Requests read in the same loop iteration share one script call (coalescing); the verdicts
    are still those of one call per request: the depth bound, the usage and the rate-limit counts
    are exact, also across two keys of one project with different limits (two groups of the call
    sharing counters), and each project's accepted logs are queued once."""
    t = start(ledgerd, db, ingest={"queue_max_depth": 30})
    d = db()
    pid2 = d.project(d.account(), daily_quota=1000000)
    key2, _ = d.key(pid2, rpm=1000, rph=50000)
    key1b, _ = d.key(t.pid, rpm=999, rph=50000)  # same project, other limits: another group, same counters
    for k in (t.key, key1b, key2):  # keys looked up and cached (that request counts in the minute window)
        assert t.depth({"X-API-Key": k}).json()["queue_depth"] == 0
    clear_of_minute_edge()
    minute = int(time.time()) // 60
    counted = {p: int(rc.get(f"ratelimit:{p}:min:{minute}") or 0) for p in (t.pid, pid2)}
    rc.config_resetstat()
    reqs = [(log(message=f"a{i}"), (t.key, key1b)[i % 2]) if i % 3 else (log(message=f"b{i}"), key2)
            for i in range(90)]
    statuses = send_at_once(t.srv, reqs)
    a = [s for s, (_, k) in zip(statuses, reqs) if k != key2]
    b = [s for s, (_, k) in zip(statuses, reqs) if k == key2]
    assert sorted(set(a)) == [202, 503] and a.count(202) == 30, statuses  # 60 posted, depth bound 30
    assert b == [202] * 30, statuses
    calls = rc.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0) + \
        rc.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)
    assert 1 <= calls <= 10, calls  # shared: far fewer calls than requests
    per_project = {}
    for _, f in entries(rc, t.stream):
        logs = split_logs(f[b"m"])
        assert int(f[b"n"]) == len(logs) >= 1
        per_project.setdefault(int(f[b"p"]), []).extend(logs)
    assert len(per_project[t.pid]) == 30 and len(per_project[pid2]) == 30
    assert len(set(per_project[t.pid])) == 30  # each log once
    for pid in (t.pid, pid2):
        assert int(rc.get(f"queue_depth:{pid}")) == 30
        assert int(rc.get(f"usage:{pid}:{today()}")) == 30
        assert 0 < rc.ttl(f"usage:{pid}:{today()}") <= 172800
    assert int(rc.get(f"ratelimit:{t.pid}:min:{minute}")) == counted[t.pid] + 60  # refused ones count too
    assert int(rc.get(f"ratelimit:{pid2}:min:{minute}")) == counted[pid2] + 30
    assert 0 < rc.ttl(f"ratelimit:{pid2}:min:{minute}") <= 60


# ---- rate limits: counted by the enqueue script (LDG_ROUTE_OWN_LIMITS) --------------------------


def clear_of_minute_edge():
    """The per-minute window must not roll over in the middle of a test."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.2)


def test_rate_limit_counted_with_the_enqueue(ledgerd, db, rc):
    t = start(ledgerd, db, rpm=3)
    clear_of_minute_edge()
    for remaining in (2, 1, 0):
        r = t.post(SINGLE, log())
        assert r.status_code == 202, r.text
        assert r.headers["X-RateLimit-Limit-Minute"] == "3"
        assert r.headers["X-RateLimit-Remaining-Minute"] == str(remaining)
        assert r.headers["X-RateLimit-Limit-Hour"] == "50000"
    r = t.post(BATCH, {"logs": [log(), log()]})
    assert r.status_code == 429
    assert r.json() == {"detail": "Per-minute rate limit exceeded. Current: 4, Limit: 3"}
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert len(queued_logs(rc, t.stream)) == 3
    assert int(rc.get(f"queue_depth:{t.pid}")) == 3
    assert int(rc.get(f"usage:{t.pid}:{today()}")) == 3
    minute = int(time.time()) // 60
    assert int(rc.get(f"ratelimit:{t.pid}:min:{minute}")) == 4
    assert 0 < rc.ttl(f"ratelimit:{t.pid}:min:{minute}") <= 60
    assert 0 < rc.ttl(f"ratelimit:{t.pid}:hour:{int(time.time()) // 3600}") <= 3600


def test_rejected_requests_count_and_get_429_first(ledgerd, db, rc):
    t = start(ledgerd, db, rpm=2)
    clear_of_minute_edge()
    r = t.post(SINGLE, log(level="loud"))  # answered before the enqueue: the gateway counts it
    assert r.status_code == 400 and r.headers["X-RateLimit-Remaining-Minute"] == "1"
    r = t.post(SINGLE, log())
    assert r.status_code == 202 and r.headers["X-RateLimit-Remaining-Minute"] == "0"
    for body, raw in ((log(level="loud"), None), (None, b"not json"), ({"logs": [log(level="x")]}, None)):
        r = t.post(BATCH if body and "logs" in body else SINGLE, body, raw=raw)
        assert r.status_code == 429, r.text
        assert r.json()["detail"].startswith("Per-minute rate limit exceeded. Current: ")
    assert t.post(SINGLE, log()).status_code == 429
    assert len(queued_logs(rc, t.stream)) == 1


def test_hourly_limit_on_ingest(ledgerd, db, rc):
    t = start(ledgerd, db, rpm=100, rph=2)
    assert t.post(SINGLE, log()).status_code == 202
    r = t.post(BATCH, {"logs": [log(level="x")]})  # all rejected: still 202, counted
    assert r.status_code == 202 and r.json()["accepted"] == 0
    assert r.headers["X-RateLimit-Remaining-Hour"] == "0"
    r = t.post(SINGLE, log())
    assert r.status_code == 429 and r.json() == {"detail": "Hourly rate limit exceeded. Current: 3, Limit: 2"}
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert len(queued_logs(rc, t.stream)) == 1


# ---- notifications -----------------------------------------------------------------------------


def test_notifications_published(ledgerd, db, rc):
    t = start(ledgerd, db)
    ps = rc.pubsub()
    ps.subscribe(f"notifications:errors:{t.pid}")
    wait_until(lambda: ps.get_message(timeout=0.1) is not None, scaled(5), what="subscribed")
    logs = [log(message="plain"), log(level="error", message="an error"),
            log(level="critical", message="critical one"),
            log(level="warning", log_type="exception", error_type="ValueError", message="exc")]
    assert t.post(BATCH, {"logs": logs}).status_code == 202
    got = []
    deadline = time.time() + scaled(5)
    while len(got) < 3 and time.time() < deadline:
        m = ps.get_message(timeout=0.2)
        if m and m["type"] == "message":
            got.append(json.loads(m["data"]))
    ps.close()
    assert sorted(g["message"] for g in got) == ["an error", "critical one", "exc"]
    for g in got:
        assert g["project_id"] == t.pid and g["log_id"] is None


def test_notifications_can_be_turned_off(ledgerd, db, rc):
    t = start(ledgerd, db, ingest={"notify_errors": False, "notify_critical": False})
    ps = rc.pubsub()
    ps.subscribe(f"notifications:errors:{t.pid}")
    wait_until(lambda: ps.get_message(timeout=0.1) is not None, scaled(5), what="subscribed")
    assert t.post(BATCH, {"logs": [log(level="error"), log(level="critical"),
                                   log(log_type="exception", error_type="E")]}).status_code == 202
    got = []
    deadline = time.time() + scaled(1)
    while time.time() < deadline:
        m = ps.get_message(timeout=0.2)
        if m and m["type"] == "message":
            got.append(json.loads(m["data"]))
    ps.close()
    assert [g["log_type"] for g in got] == ["exception"]


# ---- Redis down ----------------------------------------------------------------------------------


def test_redis_down_is_503_never_202(ledgerd, db, tmp_path):
    own = RedisServer(str(tmp_path / "redis-own")).start()
    try:
        t = start(ledgerd, db, redis={"port": own.port, "reconnect_min_ms": 100, "reconnect_max_ms": 200})
        t.srv.allow_errors = True
        assert t.post(SINGLE, log()).status_code == 202
        own.stop()
        for path, body in ((SINGLE, log()), (BATCH, {"logs": [log()]})):
            r = t.post(path, body)
            assert r.status_code == 503, r.text
            assert r.json() == {"detail": "Service temporarily unavailable"}
            assert r.headers["Retry-After"] == "1"
        r = t.depth()
        assert r.status_code == 503
        own.start()
        wait_until(lambda: t.post(SINGLE, log()).status_code == 202, scaled(10), interval=0.2,
                   what="ingest back after Redis returned")
    finally:
        own.cleanup()


# ---- queue depth ---------------------------------------------------------------------------------


def test_queue_depth_starts_at_zero(ledgerd, db):
    t = start(ledgerd, db)
    r = t.depth()
    assert r.status_code == 200 and r.json() == {"project_id": t.pid, "queue_depth": 0}


def test_script_reloaded_after_flush(ledgerd, db, rc):
    t = start(ledgerd, db)
    assert t.post(SINGLE, log()).status_code == 202
    rc.script_flush()
    assert t.post(SINGLE, log()).status_code == 202
    assert rc.xlen(t.stream) == 2


def test_body_limit_is_413(ledgerd, db, rc):
    t = start(ledgerd, db, ingest={"max_batch_body_bytes": 4096})
    r = t.post(BATCH, {"logs": [log(message="x" * 2000) for _ in range(3)]})
    assert r.status_code == 413
    assert t.post(SINGLE, log(message="y" * 5000)).status_code == 413
    assert t.post(SINGLE, log(message="y" * 1000)).status_code == 202
    assert rc.xlen(t.stream) == 1
