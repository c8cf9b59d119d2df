"""Exactly once under faults (docs/ingest.md "Delivery guarantee"): ingest runs at load with a unique
id per log (its message) while a fault is injected; at the end the set of stored ids is compared with
the set of ids ingest answered 202 for: nothing lost, nothing stored twice, and every error group's
occurrence_count equal to the number of its rows.

Faults, one test each: kill -9 of storage processes under load (their batches die mid-COPY, mid-COMMIT
or before the ack), PostgreSQL stopped and started again, a COMMIT slower than store_timeout_ms (a row
lock held on an error group), the PostgreSQL connection cut by a TCP proxy, Redis restarted from an
append-only file missing its last writes (the acknowledgements: entries come back as new), and two
storage processes writing the same entries (two consumer groups on one stream).

The default run does each once, briefly. ``./scripts/ledger test --faults`` (LDG_FAULTS=full) runs
each three times for longer; every run appends a line to the table printed at the end
(``$LDG_BUILD_DIR/exactly_once.txt``): fault, run, accepted, lost, duplicated, unexpected.
"""

import collections
import os
import uuid
import select
import socket
import threading
import time

import psycopg
import pytest
import requests

from conftest import scaled
from ldg_http import wait_until
from ldg_servers import RedisServer
from test_storage_faults import (BATCH, INGEST_ONLY, QUICK, SINGLE, STORAGE_ONLY, fleet, iso,  # noqa: F401
                                 own_pg, utcnow)

FULL = os.environ.get("LDG_FAULTS") == "full"
RUNS = range(3 if FULL else 1)
LOAD_S = 6.0 if FULL else 3.0
TABLE = os.path.join(os.environ.get("LDG_BUILD_DIR", "build/debug"), "exactly_once.txt")
ERROR_TYPES = ("KeyError", "ValueError", "OSError")
if os.path.exists(TABLE):  # one table per session
    os.remove(TABLE)


def record(fault, run, accepted, lost, duplicated, unexpected):
    new = not os.path.exists(TABLE)
    with open(TABLE, "a") as f:
        if new:
            f.write(f"{'fault':<24} {'run':>3} {'accepted':>8} {'lost':>5} {'duplicated':>10} {'unknown':>7}\n")
        f.write(f"{fault:<24} {run:>3} {accepted:>8} {lost:>5} {duplicated:>10} {unexpected:>7}\n")


def exception(msg, k):
    et = ERROR_TYPES[k % len(ERROR_TYPES)]
    return {"timestamp": iso(utcnow()), "level": "error", "log_type": "exception", "message": msg,
            "error_type": et, "error_message": "boom",
            "stack_trace": f'Traceback (most recent call last):\n  File "/app/{et}.py", line 3, in run\n{et}: boom'}


class Load(threading.Thread):
    """Posts batches of 10 logs with unique messages (every third an exception of one of three
    groups) until stopped. accepted: messages answered 202; unknown: messages of requests whose
    answer never came (a timeout, a reset): they may or may not be queued."""

    def __init__(self, f, srv):
        super().__init__(daemon=True)
        self.f, self.srv = f, srv
        self.stop_ev = threading.Event()
        self.accepted, self.unknown, self.statuses = [], set(), collections.Counter()
        self.n = 0

    def run(self):
        while not self.stop_ev.is_set():
            msgs = [f"{self.f.tag}-x{self.n + i}" for i in range(10)]
            logs = [exception(m, self.n + i) if (self.n + i) % 3 == 0 else
                    {"timestamp": iso(utcnow()), "level": "info", "log_type": "console", "message": m}
                    for i, m in enumerate(msgs)]
            self.n += 10
            try:
                r = self.f.post(self.srv, BATCH, {"logs": logs}, timeout=5)
            except requests.RequestException:
                self.unknown.update(msgs)
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 202 and r.json()["accepted"] == 10:
                self.accepted.extend(msgs)
            elif r.status_code not in (429, 503):
                self.unknown.update(msgs)
            time.sleep(0.01)

    def finish(self):
        self.stop_ev.set()
        self.join(scaled(15))
        assert not self.is_alive()


def run_load(f, srv, during, seconds=LOAD_S):
    """Ingest for ``seconds`` (at least) while ``during()`` injects the fault; returns the Load."""
    load = Load(f, srv)
    load.start()
    try:
        wait_until(lambda: len(load.accepted) >= 50, 20, interval=0.05, what="ingest running")
        t0 = time.monotonic()
        during()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
    finally:
        load.finish()
    return load


def check(f, load, fault, run, groups=None, timeout=60):
    """Wait until everything accepted is stored and the queue is empty, then compare and record."""
    groups = groups or [f.group]
    accepted = set(load.accepted)
    assert len(accepted) == len(load.accepted)

    def stored():
        return collections.Counter(
            m for (m,) in f.logs_db.execute("SELECT message FROM logs WHERE project_id = %s", (f.pid,)))

    def settled():
        if not accepted <= set(stored()) or f.rc.xlen(f.stream):
            return False
        return all(f.rc.xpending(f.stream, g)["pending"] == 0 for g in groups)

    try:
        wait_until(settled, timeout, interval=0.2, what="every accepted log stored and the queue empty")
    except AssertionError:
        pass  # counted below as lost
    time.sleep(0.5)  # anything written twice would show by now
    got = stored()
    lost = len(accepted - set(got))
    duplicated = sum(c - 1 for c in got.values())
    unexpected = set(got) - accepted
    record(fault, run, len(accepted), lost, duplicated, len(unexpected))
    assert lost == 0, f"{lost} accepted logs not stored"
    assert duplicated == 0, f"{duplicated} rows stored twice"
    assert unexpected <= load.unknown, f"rows never sent: {sorted(unexpected - load.unknown)[:5]}"
    # error groups count exactly the rows stored
    rows = dict(f.logs_db.execute(
        "SELECT error_fingerprint, count(*) FROM logs WHERE project_id = %s AND error_fingerprint IS NOT NULL "
        "GROUP BY 1", (f.pid,)).fetchall())
    counts = dict(f.logs_db.execute(
        "SELECT fingerprint, occurrence_count FROM error_groups WHERE project_id = %s", (f.pid,)).fetchall())
    assert rows and rows == counts, (rows, counts)
    # the queue's counters came back to zero with the queue (decremented once per acknowledged entry)
    assert f.depth() == 0 and int(f.rc.get(f"queue_bytes:{f.pid}") or 0) == 0


# ---- faults ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", RUNS)
def test_kill9_storage_under_load(fleet, run):
    """Storage processes killed with SIGKILL every ~0.7 s, a new one started each time: batches die
    mid-COPY, mid-COMMIT or between COMMIT and the acknowledgement."""
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    procs = [f.start(roles=STORAGE_ONLY, storage=QUICK)]

    def fault():
        for _ in range(4 if FULL else 3):
            time.sleep(0.7)
            procs[-1].kill()
            procs.append(f.start(roles=STORAGE_ONLY, storage=QUICK))

    load = run_load(f, ing, fault)
    check(f, load, "kill -9 storage", run)


@pytest.mark.parametrize("run", RUNS)
def test_postgres_restart_under_load(fleet, own_pg, run):
    pgopts = {"port": own_pg.port, "reconnect_min_ms": 50, "reconnect_max_ms": 300, "connect_timeout_ms": 1000}
    f = fleet(pg_server=own_pg, extra={"pg_auth": pgopts, "pg_logs": pgopts})
    srv = f.start(storage=QUICK)

    def fault():
        time.sleep(0.5)
        f.disconnect()
        own_pg.kill()  # immediate shutdown: crash recovery on start
        time.sleep(1.5)
        own_pg.start()

    load = run_load(f, srv, fault)
    check(f, load, "PostgreSQL restart", run)


@pytest.mark.parametrize("run", RUNS)
def test_commit_slower_than_store_timeout(fleet, run):
    """A row lock held on every error group for 3.5 s: batches with exceptions wait in the upsert past
    store_timeout_ms (1 s), are abandoned (cancelled) and retried; none may count or store twice."""
    f = fleet()
    srv = f.start(storage=QUICK)

    def fault():
        wait_until(lambda: f.logs_db.execute("SELECT count(*) FROM error_groups WHERE project_id = %s",
                                             (f.pid,)).fetchone()[0] > 0, 20, interval=0.1,
                   what="the error groups")
        with psycopg.connect(f.pg.dsn("ledger_logs")) as lock:
            lock.execute("SELECT id FROM error_groups WHERE project_id = %s FOR UPDATE", (f.pid,))
            time.sleep(3.5)
            lock.rollback()

    load = run_load(f, srv, fault, seconds=max(LOAD_S, 5.0))
    check(f, load, "COMMIT > store_timeout", run)
    assert "not stored within store_timeout_ms" in srv.log_text()


class CutProxy:
    """A TCP proxy that can cut every connection through it at once."""

    def __init__(self, port):
        self.target = port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.cuts = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                a.close()
                continue
            with self.lock:
                self.pairs.append((a, b))
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                r, _, _ = select.select([a, b], [], [], 1)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise OSError
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            pass

    def cut(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    s.close()  # RST
                except OSError:
                    pass
        self.cuts += 1

    def close(self):
        self.closed = True
        self.ls.close()
        self.cut()


@pytest.mark.parametrize("run", RUNS)
def test_pg_connection_cut_by_proxy(fleet, pg, run):
    proxy = CutProxy(pg.port)
    try:
        f = fleet(extra={"pg_logs": {"port": proxy.port, "reconnect_min_ms": 50, "reconnect_max_ms": 300}})
        srv = f.start(storage=QUICK)

        def fault():
            for _ in range(6 if FULL else 4):
                time.sleep(0.5)
                proxy.cut()

        load = run_load(f, srv, fault)
        check(f, load, "PG connection cut", run)
    finally:
        proxy.close()


def aof_incr(dirpath):
    d = os.path.join(dirpath, "appendonlydir")
    incr = [n for n in os.listdir(d) if n.endswith(".incr.aof")]
    assert len(incr) == 1, incr
    return os.path.join(d, incr[0])


@pytest.mark.parametrize("run", RUNS)
def test_redis_restart_from_aof_missing_its_last_writes(fleet, tmp_path, run):
    """Logs are queued and their queue state fsynced; storage then stores and acknowledges them; Redis
    dies and comes back from its append-only file cut where it was before the acknowledgements (the
    last second `appendfsync everysec` may lose). The entries are delivered again as new ones: the
    database's queue-id constraint must keep them from being stored twice."""
    own = RedisServer(str(tmp_path / "redis-own"), appendonly=True)
    own.start()
    try:
        ropts = {"port": own.port, "reconnect_min_ms": 50, "reconnect_max_ms": 300}
        f = fleet(redis_server=own, extra={"redis": ropts})
        ing = f.start(roles=INGEST_ONLY)
        load = run_load(f, ing, lambda: None, seconds=1.0)
        time.sleep(1.2)  # everysec: the queued entries are on disk
        path = aof_incr(own.dir)
        cut_at = os.path.getsize(path)
        st = f.start(roles=STORAGE_ONLY, storage=QUICK)
        wait_until(lambda: set(load.accepted) <= {m for (m,) in f.logs_db.execute(
            "SELECT message FROM logs WHERE project_id = %s", (f.pid,))} and f.rc.xlen(f.stream) == 0,
                   30, interval=0.1, what="first pass stored")
        stored_before = f.count()
        own.kill()
        with open(path, "r+b") as fh:
            fh.truncate(cut_at)
        own.start()
        assert f.rc.xlen(f.stream) > 0  # the acknowledged entries are back
        check(f, load, "Redis AOF lost last 1 s", run)
        assert f.count() == stored_before
        assert health_dups(st) > 0
    finally:
        own.kill()


def health_dups(srv):
    r = requests.get(srv.url + "/health/deep", timeout=scaled(10))
    st = r.json()["roles"]["storage"]
    return st["duplicates"]


@pytest.mark.parametrize("run", RUNS)
def test_two_storage_processes_race_for_the_same_entries(fleet, run):
    """Two storage processes in two consumer groups of one stream: each is delivered every entry the
    other has not deleted yet, so both write the same entries at the same time."""
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    other = f"{f.group}:b"
    a = f.start(roles=STORAGE_ONLY, storage=QUICK)
    b = f.start(roles=STORAGE_ONLY, storage={**QUICK, "group": other})
    load = run_load(f, ing, lambda: None)
    check(f, load, "two storage processes", run, groups=[f.group, other])
    assert health_dups(a) + health_dups(b) > 0


# ---- Idempotency-Key ----------------------------------------------------------------------------------


def post_key(f, srv, path, body, key, timeout=10):
    return requests.post(srv.url + path, json=body, headers={"X-API-Key": f.key, "Idempotency-Key": key},
                         timeout=scaled(timeout))


def test_idempotency_key_repeat_gets_the_first_answer_and_queues_nothing(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    good = [{"timestamp": iso(utcnow()), "level": "info", "message": f"{f.tag}-{i}"} for i in range(2)]
    bad = {"level": "nope", "message": "x"}
    first = post_key(f, ing, BATCH, {"logs": good + [bad]}, "k-1")
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 2 and first.json()["rejected"] == 1
    assert "Idempotent-Replayed" not in first.headers
    assert f.rc.xlen(f.stream) == 1 and f.depth() == 2

    # a repeat, even with another body, gets the first answer and queues nothing
    again = post_key(f, ing, BATCH, {"logs": good * 3}, "k-1")
    assert again.status_code == 202 and again.text == first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Content-Type"].startswith("application/json")
    assert f.rc.xlen(f.stream) == 1 and f.depth() == 2
    ttl = f.rc.ttl(f"idem:{f.pid}:k-1")
    assert 86000 < ttl <= 86400

    # another key is another request; single works the same
    assert post_key(f, ing, BATCH, {"logs": good}, "k-2").status_code == 202
    s1 = post_key(f, ing, SINGLE, good[0], "k-3")
    s2 = post_key(f, ing, SINGLE, good[0], "k-3")
    assert s1.status_code == s2.status_code == 202 and s1.text == s2.text
    assert f.rc.xlen(f.stream) == 3 and f.depth() == 5

    # concurrent duplicates (one script call or several): exactly one is queued
    errs = []

    def hit():
        try:
            r = post_key(f, ing, SINGLE, good[1], "k-4")
            assert r.status_code == 202, r.text
        except Exception as e:  # noqa: BLE001
            errs.append(e)

    ts = [threading.Thread(target=hit) for _ in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errs and f.rc.xlen(f.stream) == 4 and f.depth() == 6

    # bad keys
    for k in ("", "a" * 256, "has space", "caf\u00e9"):
        r = requests.post(ing.url + SINGLE, json=good[0],
                          headers={"X-API-Key": f.key, "Idempotency-Key": k.encode("utf-8")}, timeout=scaled(10))
        assert r.status_code == 400 and "Idempotency-Key" in r.json()["detail"], (k, r.text)
    assert f.rc.xlen(f.stream) == 4


class RetryingClient(threading.Thread):
    """Posts batches of 10 unique logs, each with its own Idempotency-Key, and retries every 503 (and
    every lost answer) with the same key until it gets a 202."""

    def __init__(self, f, srv):
        super().__init__(daemon=True)
        self.f, self.srv = f, srv
        self.stop_ev = threading.Event()
        self.accepted, self.unknown, self.statuses = [], set(), collections.Counter()
        self.retries = 0
        self.n = 0

    def run(self):
        while not self.stop_ev.is_set():
            msgs = [f"{self.f.tag}-r{self.n + i}" for i in range(10)]
            logs = [exception(m, self.n + i) if (self.n + i) % 3 == 0 else
                    {"timestamp": iso(utcnow()), "level": "info", "message": m} for i, m in enumerate(msgs)]
            self.n += 10
            key = uuid.uuid4().hex
            for attempt in range(200):
                try:
                    r = post_key(self.f, self.srv, BATCH, {"logs": logs}, key, timeout=5)
                except requests.RequestException:
                    self.statuses["exception"] += 1
                    self.retries += 1
                    time.sleep(0.05)
                    continue
                self.statuses[r.status_code] += 1
                if r.status_code == 202:
                    self.accepted.extend(msgs)
                    break
                self.retries += 1
                time.sleep(0.05)
            else:
                self.unknown.update(msgs)

    def finish(self):
        self.stop_ev.set()
        self.join(scaled(60))
        assert not self.is_alive()


@pytest.mark.parametrize("run", RUNS)
def test_client_retrying_every_503_with_its_key(fleet, tmp_path, run):
    """Redis stalls (DEBUG SLEEP) longer than ingest's command timeout: the script calls in flight time
    out on the client side (503, outcome unknown) but run once Redis is back; the client retries
    each with its key: every log is stored once."""
    own = RedisServer(str(tmp_path / "redis-own"))
    own.start()
    try:
        ropts = {"port": own.port, "reconnect_min_ms": 50, "reconnect_max_ms": 200}
        # ingest with a short Redis command timeout (its calls time out while Redis sleeps), storage
        # in its own process with the default one (its blocking reads need more)
        f = fleet(redis_server=own, extra={"redis": {**ropts, "command_timeout_ms": 300}})
        srv = f.start(roles=INGEST_ONLY)
        srv.allow_errors = True  # the timed-out calls are logged as errors
        f.extra = {"redis": ropts}
        f.start(roles=STORAGE_ONLY, storage=QUICK)
        client = RetryingClient(f, srv)
        client.start()
        try:
            wait_until(lambda: len(client.accepted) >= 50, 20, interval=0.05, what="ingest running")
            for _ in range(3 if FULL else 2):
                side = redis_lib_client(own)
                side.execute_command("DEBUG", "SLEEP", "0.8")
                side.close()
                time.sleep(0.5)
            time.sleep(LOAD_S / 2)
        finally:
            client.finish()
        assert client.retries > 0, client.statuses
        check(f, client, "client retries 503 w/ key", run)
    finally:
        own.kill()


def redis_lib_client(server):
    import redis as redis_lib
    return redis_lib.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


# ---- accepted time window -------------------------------------------------------------------------------


def test_timestamps_outside_the_accepted_window_are_rejected_per_log(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY, ingest={"max_future_skew_ms": 60000})
    f.auth_sql("UPDATE projects SET retention_days = 2 WHERE id = %s", f.pid)  # before the key is first used
    now = utcnow()
    import datetime
    logs = [
        {"timestamp": iso(now), "level": "info", "message": f"{f.tag}-now"},
        {"timestamp": iso(now - datetime.timedelta(days=3)), "level": "info", "message": f"{f.tag}-old"},
        {"timestamp": iso(now - datetime.timedelta(days=1)), "level": "info", "message": f"{f.tag}-yesterday"},
        {"timestamp": iso(now + datetime.timedelta(minutes=2)), "level": "info", "message": f"{f.tag}-ahead"},
        {"timestamp": iso(now + datetime.timedelta(seconds=30)), "level": "info", "message": f"{f.tag}-skewed"},
        {"timestamp": "0001-01-01T00:00:00Z", "level": "info", "message": f"{f.tag}-year1"},
    ]
    r = f.post(ing, BATCH, {"logs": logs})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 3 and body["rejected"] == 3, body
    assert body["errors"] == [
        "Log 1: Timestamp is older than the project's retention of 2 days",
        "Log 3: Timestamp cannot be more than 60000 ms in the future",
        "Log 5: Timestamp is older than the project's retention of 2 days",
    ], body
    r = f.post(ing, SINGLE, logs[1])
    assert r.status_code == 400
    assert r.json()["detail"] == "Invalid log entry: Timestamp is older than the project's retention of 2 days"
    assert f.depth() == 3


# ---- bytes bounds ----------------------------------------------------------------------------------------


def test_queue_max_bytes_bounds_a_project_in_bytes(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY, ingest={"queue_max_bytes": 1048576, "queue_max_depth": 1000000})
    big = "x" * 20000
    statuses, n = collections.Counter(), 0
    while statuses[503] == 0 and n < 200:
        r = f.post(ing, BATCH, {"logs": [{"timestamp": iso(utcnow()), "level": "info", "message": f"{f.tag}-{n}-{i}",
                                          "attributes": {"pad": big}} for i in range(5)]})
        statuses[r.status_code] += 1
        n += 1
        if r.status_code == 503:
            assert r.json() == {"detail": "Service temporarily unavailable - queue full"}
            assert r.headers["Retry-After"] == "5"
    assert statuses[503] == 1 and statuses[202] >= 5, statuses
    queued = int(f.rc.get(f"queue_bytes:{f.pid}"))
    assert 900000 < queued <= 1048576, queued
    assert f.depth() == 5 * statuses[202]
    f.start(roles=STORAGE_ONLY, storage=QUICK)
    wait_until(lambda: f.drained() and int(f.rc.get(f"queue_bytes:{f.pid}") or 0) == 0, 30, interval=0.1,
               what="queue_bytes back to 0")
    assert f.count() == 5 * statuses[202]


def test_ingest_answers_503_before_redis_refuses_writes(fleet, tmp_path):
    own = RedisServer(str(tmp_path / "redis-own"))
    own.start()
    try:
        side = redis_lib_client(own)
        used = int(side.info("memory")["used_memory"])
        side.config_set("maxmemory", str(used + 3 * 1024 * 1024))
        side.config_set("maxmemory-policy", "noeviction")
        f = fleet(redis_server=own, extra={"redis": {"port": own.port}})
        ing = f.start(roles=INGEST_ONLY, ingest={"redis_memory_high_pct": 70})
        big = "y" * 25000
        bodies = collections.Counter()
        for n in range(400):
            r = f.post(ing, BATCH, {"logs": [{"timestamp": iso(utcnow()), "level": "info", "message": f"{n}",
                                              "attributes": {"pad": big}}]})
            time.sleep(0.05)
            if r.status_code == 202:
                continue
            bodies[(r.status_code, r.json()["detail"])] += 1
            if bodies[(503, "Service temporarily unavailable - queue full")] >= 3:
                break
            time.sleep(0.05)
        assert bodies[(503, "Service temporarily unavailable - queue full")] >= 3, bodies
        assert set(bodies) == {(503, "Service temporarily unavailable - queue full")}, bodies  # never an OOM
        assert int(side.info("memory")["used_memory"]) < int(side.config_get("maxmemory")["maxmemory"])
        side.close()
    finally:
        own.kill()


# ---- metrics ---------------------------------------------------------------------------------------------


def test_metrics_show_the_queue_and_storage_outcomes(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    f.ingest(ing, [{"timestamp": iso(utcnow()), "level": "info", "message": m} for m in f.messages(300)])
    st = f.start(roles=STORAGE_ONLY, storage=QUICK)
    f.wait_stored_exactly(f.messages(300))

    def metrics():
        text = requests.get(st.url + "/metrics", timeout=scaled(10)).text
        return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                if line and not line.startswith("#")}

    m = wait_until(lambda: (lambda m: m if 'ledger_queue_entries{shard="0"}' in m else None)(metrics()), 10, interval=0.2,
                   what="queue gauges")
    assert m['ledger_storage_logs_total{outcome="stored"}'] == 300
    assert m['ledger_storage_logs_total{outcome="duplicate"}'] == 0
    assert m['ledger_storage_logs_total{outcome="dead_lettered"}'] == 0
    for k in ("ledger_storage_redelivered_logs_total", "ledger_storage_conflicts_total",
              "ledger_storage_failures_total", 'ledger_queue_pending_entries{shard="0"}',
              'ledger_queue_oldest_pending_age_seconds{shard="0"}'):
        assert k in m, k
    wait_until(lambda: metrics()['ledger_queue_entries{shard="0"}'] == 0, 10, interval=0.2, what="queue_entries 0")
