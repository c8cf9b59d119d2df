"""The storage role under faults (reference §7.2, §7.3; decisions D5): a storage process killed in
the middle of a batch (before COMMIT, or after COMMIT but before the ack), PostgreSQL or Redis going
away and coming back, a row PostgreSQL rejects, entries claimed from a dead consumer, and retention.

What every test checks in the end is the D5 promise: each log that ingest answered 202 for is stored
exactly once (one row per queue entry, distinct queue_id) or dead-lettered, and nothing is left in
the stream, in a pending list or in queue_depth.

Each test uses its own stream, consumer group and dead-letter stream (so entries, pending lists and
rows can be counted exactly) and its own project (rows are found by project id). Processes are split
by role where the test needs it: an ingest-only ledgerd (storage off) feeds the stream, and
storage-only ledgerds consume it; they share the stream and group names.
"""

import collections
import datetime
import os
import re
import threading
import time

import psycopg
import pytest
import redis as redis_lib
import requests

from conftest import scaled
from ldg_fixtures import AuthDb, redis_client
from ldg_http import wait_until
from ldg_queue import queued, queued_logs
from ldg_servers import PgServer, RedisServer

SINGLE = "/api/v1/ingest/single"
BATCH = "/api/v1/ingest/batch"
MAINT_LOCK = "ledger:storage:maintenance"

INGEST_ONLY = {"storage": False}
STORAGE_ONLY = {r: False for r in ("gateway", "auth", "ingest", "notifications", "query", "analytics")}

# A storage process meant to be killed while it holds a batch at a debug pause (10 s); the lease
# (claim_idle_ms) is long enough that it never renews during the pause. One consumer, so that the
# one batch held is the whole of what the process has in hand, and batches of 1000, so that it holds
# part of the 2000 logs the tests post.
HOLDING = {"store_timeout_ms": 15000, "claim_idle_ms": 30000, "retry_max_ms": 300, "consumers": 1,
           "batch_max_logs": 1000}
# A storage process that takes over quickly: entries idle for 2 s are claimed.
QUICK = {"store_timeout_ms": 1000, "claim_idle_ms": 2000, "claim_interval_ms": 200, "retry_min_ms": 50,
         "retry_max_ms": 300}


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def log(message, **kw):
    base = {"timestamp": iso(utcnow()), "level": "info", "log_type": "console", "message": message}
    base.update(kw)
    return base


def health_storage(srv):
    r = requests.get(srv.url + "/health/deep", timeout=scaled(10))
    return r.json()["roles"]["storage"]


def consumer_of(srv, worker=0):
    return f":{srv.proc.pid}:{worker}"


def wait_log(srv, pattern, timeout=10):
    """The first match of ``pattern`` in the server's log, waiting for it to appear."""
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(srv.log_text()), timeout, interval=0.02, what=f"log line /{pattern}/")


def log_time(srv, pattern):
    """The ts= of the first log line matching ``pattern``, as a datetime."""
    for line in srv.log_text().splitlines():
        if re.search(pattern, line):
            ts = re.match(r"ts=(\S+)", line).group(1)
            return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    raise AssertionError(f"no log line /{pattern}/")


def log_sum(srv, pattern):
    """Sum of the first group of every match of ``pattern`` in the server's log."""
    return sum(int(m.group(1)) for m in re.finditer(pattern, srv.log_text()))


class Fleet:
    """ledgerd processes sharing private stream/group/dead-letter names, one project and its key.

    ``extra`` is merged into every process's INI (private Redis or PostgreSQL ports)."""

    def __init__(self, ledgerd, pg, redis, extra=None):
        self.tag = os.urandom(5).hex()
        self.stream, self.group = f"test:logs:{self.tag}", f"test:group:{self.tag}"
        self.dead = f"test:dead:{self.tag}"
        self.ledgerd, self.pg, self.redis, self.extra = ledgerd, pg, redis, extra or {}
        self.rc = redis_client(redis)
        self.pid = self.key = None
        self._auth = self._logs = None

    def close(self):
        self.rc.close()
        self.disconnect()
        if self._auth is not None:
            self._auth.close()

    def disconnect(self):
        """Close the test's own logs connection (before stopping PostgreSQL); reopened on use."""
        if self._logs is not None:
            self._logs.close()
            self._logs = None

    def start(self, roles=None, storage=None, workers=1, ingest=None):
        ini = {
            "ingest": {"stream": self.stream, **(ingest or {})},
            "storage": {"group": self.group, "dead_letter_stream": self.dead, "batch_wait_ms": 20,
                        "claim_interval_ms": 200, **(storage or {})},
            "server": {"debug_endpoints": True},
            **self.extra,
        }
        if roles:
            ini["roles"] = roles
        srv = self.ledgerd(extra_ini=ini, workers=workers)
        if self.pid is None:  # the first process has migrated the databases
            self._auth = AuthDb(self.pg)
            self.pid = self._auth.project(self._auth.account())
            self.key, _ = self._auth.key(self.pid, rpm=1000000, rph=10000000)
        return srv

    @property
    def logs_db(self):
        if self._logs is None:
            self._logs = psycopg.connect(self.pg.dsn("ledger_logs"), autocommit=True)
        return self._logs

    def auth_sql(self, query, *params):
        cur = self._auth.conn.execute(query, params)
        return cur.fetchall() if cur.description else None

    # ---- ingest ----

    def post(self, srv, path, body, timeout=10):
        return requests.post(srv.url + path, json=body, headers={"X-API-Key": self.key}, timeout=scaled(timeout))

    def ingest(self, srv, logs, per_request=100):
        """POST ``logs`` (dicts) in batches of ``per_request`` (one stream entry each); every one must
        be accepted."""
        for i in range(0, len(logs), per_request):
            chunk = logs[i:i + per_request]
            r = self.post(srv, BATCH, {"logs": chunk})
            assert r.status_code == 202, r.text
            assert r.json()["accepted"] == len(chunk), r.text

    def messages(self, n, prefix="m"):
        return [f"{self.tag}-{prefix}{i}" for i in range(n)]

    # ---- state ----

    def count(self):
        return self.logs_db.execute("SELECT count(*) FROM logs WHERE project_id = %s", (self.pid,)).fetchone()[0]

    def rows(self, cols):
        return self.logs_db.execute(f"SELECT {cols} FROM logs WHERE project_id = %s ORDER BY id",
                                    (self.pid,)).fetchall()

    def depth(self):
        return int(self.rc.get(f"queue_depth:{self.pid}") or 0)

    def pending(self):
        try:
            return self.rc.xpending(self.stream, self.group)["pending"]
        except redis_lib.exceptions.ResponseError as e:  # no group (yet)
            if "NOGROUP" in str(e):
                return 0
            raise

    def pending_at(self, consumer_suffix):
        """Entries pending at the consumer whose name ends with ``consumer_suffix`` (0 if none)."""
        for c in self.rc.xinfo_consumers(self.stream, self.group):
            name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
            if name.endswith(consumer_suffix):
                return c["pending"]
        return 0

    def drained(self):
        return self.depth() == 0 and self.rc.xlen(self.stream) == 0 and self.pending() == 0

    def wait_stored_exactly(self, expected, timeout=20):
        """Every message of ``expected`` stored once (one row each, distinct queue ids), nothing else
        stored for the project, and the queue drained (stream, pending list, queue_depth)."""
        n = len(expected)
        try:
            wait_until(lambda: self.count() >= n, timeout, interval=0.1, what=f"{n} rows stored")
            wait_until(self.drained, timeout, interval=0.1, what="the queue drained")
        except AssertionError as e:
            raise AssertionError(f"{e}: rows={self.count()} depth={self.depth()} "
                                 f"xlen={self.rc.xlen(self.stream)} pending={self.pending()}") from None
        time.sleep(0.3)  # anything written twice would show up by now
        rows = self.rows("message, queue_id")
        msgs = collections.Counter(m for m, _ in rows)
        twice = {m: c for m, c in msgs.items() if c > 1}
        assert not twice, f"stored more than once: {dict(list(twice.items())[:10])}"
        missing = set(expected) - set(msgs)
        assert not missing, f"{len(missing)} accepted logs not stored, e.g. {sorted(missing)[:5]}"
        extra = set(msgs) - set(expected)
        assert not extra, f"unexpected rows: {sorted(extra)[:5]}"
        qids = [q for _, q in rows]
        assert None not in qids and len(set(qids)) == len(rows) == n
        assert self.drained()


@pytest.fixture
def fleet(ledgerd, pg, redis):
    made = []

    def make(pg_server=None, redis_server=None, extra=None):
        f = Fleet(ledgerd, pg_server or pg, redis_server or redis, extra)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


class DurablePg(PgServer):
    """PgServer with synchronous_commit on: the suite's clusters run with it off, so an immediate
    shutdown may lose transactions PostgreSQL already reported committed, which no client survives."""

    def _options(self):
        return super()._options().replace("synchronous_commit=off", "synchronous_commit=on")


@pytest.fixture
def own_pg(tmp_path):
    srv = DurablePg(str(tmp_path / "pg-own"))
    srv.start()
    yield srv
    srv.cleanup()


# ---- a storage process killed mid-batch ------------------------------------------------------------


def test_kill_before_commit_loses_nothing(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    msgs = f.messages(2000)
    f.ingest(ing, [log(m) for m in msgs])
    assert f.rc.xlen(f.stream) == 20 and len(queued_logs(f.rc, f.stream)) == 2000 and f.depth() == 2000

    a = f.start(roles=STORAGE_ONLY, storage={**HOLDING, "debug_pause_before_commit_ms": 10000})
    held = int(wait_log(a, r"debug pause stage=commit entries=(\d+) logs=\d+").group(1))
    a.kill()
    assert 0 < held < 20
    assert f.pending_at(consumer_of(a)) == held  # the batch COPYed but never committed
    assert f.count() == 0

    b = f.start(roles=STORAGE_ONLY, storage=QUICK)
    f.wait_stored_exactly(msgs)
    assert f.pending_at(consumer_of(a)) == 0
    st = health_storage(b)
    assert st["stored"] == 2000 and st["dead_lettered"] == 0, st
    assert st["duplicates"] == 0, st  # nothing of the killed batch had been committed


def test_kill_after_commit_before_ack_stores_once(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    msgs = f.messages(2000)
    f.ingest(ing, [log(m) for m in msgs])

    a = f.start(roles=STORAGE_ONLY, storage={**HOLDING, "debug_pause_before_ack_ms": 10000})
    m = wait_log(a, r"debug pause stage=ack entries=(\d+) logs=(\d+)")
    held, held_logs = int(m.group(1)), int(m.group(2))
    a.kill()
    assert 0 < held < 20 and held_logs == 100 * held
    assert f.count() == held_logs  # committed, not acknowledged
    assert f.pending_at(consumer_of(a)) == held
    assert f.depth() == 2000

    b = f.start(roles=STORAGE_ONLY, storage=QUICK)
    f.wait_stored_exactly(msgs)
    st = health_storage(b)
    assert st["duplicates"] == held_logs and st["stored"] == 2000 - held_logs, st
    assert log_sum(b, r"(\d+) redelivered logs were already stored") == held_logs


def test_claim_from_dead_consumer(fleet):
    """A storage process dies holding a batch; a two-worker storage process, started afterwards and
    kept busy with new logs, claims the dead consumer's entries once they are idle claim_idle_ms."""
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    first, second = f.messages(600, "a"), f.messages(600, "b")
    f.ingest(ing, [log(m) for m in first])

    a = f.start(roles=STORAGE_ONLY, storage={**HOLDING, "debug_pause_before_commit_ms": 10000})
    held = int(wait_log(a, r"debug pause stage=commit entries=(\d+) logs=\d+").group(1))
    a.kill()
    assert f.pending_at(consumer_of(a)) == held > 0

    b = f.start(roles=STORAGE_ONLY, storage=QUICK, workers=2)
    f.ingest(ing, [log(m) for m in second])
    wait_log(b, r"claimed \d+ entries left pending by other consumers")
    # claimed only once idle for claim_idle_ms (2 s after the read, which came just before the pause)
    idle = log_time(b, r"claimed \d+ entries") - log_time(a, r"debug pause stage=commit")
    assert idle >= datetime.timedelta(seconds=1.5), idle
    f.wait_stored_exactly(first + second)
    assert log_sum(b, r"claimed (\d+) entries left pending by other consumers") == held
    assert f.pending_at(consumer_of(a)) == 0
    assert "were claimed by another consumer" not in b.log_text()


# ---- PostgreSQL and Redis going away ------------------------------------------------------------------


class Feeder(threading.Thread):
    """Posts batches of 10 unique logs in a loop until stopped; remembers what was accepted."""

    def __init__(self, f, srv, path=BATCH):
        super().__init__(daemon=True)
        self.f, self.srv, self.path = f, srv, path
        self.stop_ev = threading.Event()
        self.accepted, self.statuses, self.errors = [], collections.Counter(), []
        self.n = 0

    def run(self):
        while not self.stop_ev.is_set():
            msgs = [f"{self.f.tag}-feed{self.n + i}" for i in range(10)]
            self.n += 10
            try:
                r = self.f.post(self.srv, self.path, {"logs": [log(m) for m in msgs]}, timeout=5)
            except requests.RequestException as e:
                self.errors.append(repr(e))
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 202:
                body = r.json()
                if body["accepted"] != 10:
                    self.errors.append(f"partial batch: {body}")
                self.accepted.extend(msgs)
            time.sleep(0.02)

    def finish(self):
        self.stop_ev.set()
        self.join(scaled(15))
        assert not self.is_alive()


@pytest.mark.parametrize("how", ["stop", "crash"])
def test_postgres_restart_while_ingesting_loses_nothing(fleet, own_pg, how):
    """PostgreSQL goes away for 3 s (fast shutdown, or an immediate one that needs crash recovery)
    while logs keep coming: storage retries, and every log answered 202 is stored exactly once."""
    pgopts = {"port": own_pg.port, "reconnect_min_ms": 50, "reconnect_max_ms": 300, "connect_timeout_ms": 1000}
    f = fleet(pg_server=own_pg, extra={"pg_auth": pgopts, "pg_logs": pgopts})
    srv = f.start(storage=QUICK)
    feeder = Feeder(f, srv)
    feeder.start()
    try:
        wait_until(lambda: len(feeder.accepted) >= 100, 10, interval=0.05, what="ingest running")
        wait_until(lambda: f.count() >= 50, 10, interval=0.05, what="storage running")
        f.disconnect()
        own_pg.stop() if how == "stop" else own_pg.kill()
        down_from = len(feeder.accepted)
        time.sleep(3)
        accepted_while_down = len(feeder.accepted) - down_from
        own_pg.start()
        time.sleep(1.5)
    finally:
        feeder.finish()
    assert not feeder.errors, feeder.errors[:5]
    assert set(feeder.statuses) <= {202, 503}, feeder.statuses
    assert accepted_while_down > 0, "ingest does not need PostgreSQL once the key is known"
    f.wait_stored_exactly(feeder.accepted, timeout=25)
    st = health_storage(srv)
    assert st["failures"] > 0, st  # it did notice PostgreSQL was gone


def _redis_outage(f, srv, own, hold_ack):
    """Store a few logs, stop Redis (ingest answers 503 only), start it again and ingest more: every
    log answered 202 is stored exactly once. ``hold_ack``: Redis goes away while the first batch is
    committed but not yet acknowledged (debug_pause_before_ack_ms), so the ack has to be retried."""
    accepted = f.messages(10, "before")
    f.ingest(srv, [log(m) for m in accepted])
    if hold_ack:
        wait_log(srv, r"debug pause stage=ack")
        assert f.count() > 0
    else:
        f.wait_stored_exactly(accepted)

    own.stop()
    # A request in flight when the connection drops is logged at level=error ("ingest enqueue
    # failed"); that is the only error line accepted (checked below).
    srv.allow_errors = True
    deadline = time.monotonic() + 1.5
    i = 0
    while time.monotonic() < deadline:
        for path, body in ((SINGLE, log(f"{f.tag}-down{i}")), (BATCH, {"logs": [log(f"{f.tag}-downb{i}")]})):
            r = f.post(srv, path, body)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json() == {"detail": "Service temporarily unavailable"}
        i += 1
    own.start()

    def back():
        m = f"{f.tag}-after{len(accepted)}"
        r = f.post(srv, SINGLE, log(m))
        assert r.status_code in (202, 503), r.text
        if r.status_code == 202:
            accepted.append(m)
            return True
        return False

    wait_until(back, 10, interval=0.2, what="ingest back after Redis returned")
    more = f.messages(50, "later")
    f.ingest(srv, [log(m) for m in more])
    accepted.extend(more)
    f.wait_stored_exactly(accepted)
    errs = [l for l in srv.error_lines() if "ingest enqueue failed" not in l]
    assert not errs, errs[:5]


def test_redis_restart_is_503_then_stores(fleet, tmp_path):
    """Redis with persistence (AOF) stopped and started again while a committed batch waits for its
    ack: the stream, group and pending list survive, the ack is retried, nothing is stored twice."""
    own = RedisServer(str(tmp_path / "redis-own"), appendonly=True).start()
    try:
        f = fleet(redis_server=own, extra={"redis": {"port": own.port, "reconnect_min_ms": 50,
                                                     "reconnect_max_ms": 200}})
        # one consumer: a second one of the same process would claim the batch whose ack waits
        # (idle > claim_idle_ms while Redis is away) and count it as duplicates, correctly but
        # hiding what this test looks at
        srv = f.start(storage={**QUICK, "debug_pause_before_ack_ms": 1000, "consumers": 1})
        _redis_outage(f, srv, own, hold_ack=True)
        st = health_storage(srv)
        assert st["duplicates"] == 0, st
        # the first batch's ack (due while Redis was down) was tried again, pausing once more
        assert len(re.findall(r"debug pause stage=ack", srv.log_text())) > st["batches"], st
    finally:
        own.cleanup()


def test_redis_restart_without_persistence_recreates_group(fleet, tmp_path):
    """Redis without persistence comes back empty: the stream and the consumer group are gone, and
    logs accepted afterwards must still be stored (the consumer has to create its group again)."""
    own = RedisServer(str(tmp_path / "redis-own")).start()
    try:
        f = fleet(redis_server=own, extra={"redis": {"port": own.port, "reconnect_min_ms": 50,
                                                     "reconnect_max_ms": 200}})
        srv = f.start(storage=QUICK)
        _redis_outage(f, srv, own, hold_ack=False)
    finally:
        own.cleanup()


# ---- a row PostgreSQL rejects ------------------------------------------------------------------------


def test_poison_row_is_dead_lettered_alone(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    poison = f"poison-{f.tag}"
    msgs = f.messages(50)
    msgs[25] = poison
    f.ingest(ing, [log(m) for m in msgs])
    (eid, pfields, logs), = queued(f.rc, f.stream)  # one request, one stream entry
    assert pfields[b"n"] == b"50" and len(logs) == 50 and poison.encode() in logs[25]

    cname = f"poison_{f.tag}"
    db = f.logs_db
    db.execute("SET lock_timeout = '10s'")
    db.execute(f"ALTER TABLE logs ADD CONSTRAINT {cname} CHECK (message IS DISTINCT FROM '{poison}')")
    try:
        s = f.start(roles=STORAGE_ONLY, storage=QUICK)
        f.wait_stored_exactly([m for m in msgs if m != poison])
        assert f.rc.xlen(f.dead) == 1
        (_, d), = f.rc.xrange(f.dead)
        assert d[b"id"] == eid + b"/25"  # the row's queue id
        assert d[b"reason"].startswith(b"23514: "), d[b"reason"]
        assert cname.encode() in d[b"reason"]
        assert re.search(re.escape(consumer_of(s)) + r"(\.\d+)?$", d[b"consumer"].decode()), d[b"consumer"]
        assert d[b"p"] == pfields[b"p"] == str(f.pid).encode()
        assert d[b"m"] == logs[25]  # that log alone
        st = health_storage(s)
        assert st["stored"] == 49 and st["dead_lettered"] == 1, st
        assert "entry rejected by PostgreSQL, dead-lettered: 23514" in s.log_text()
    finally:
        db.execute(f"ALTER TABLE logs DROP CONSTRAINT IF EXISTS {cname}")


# ---- retention -------------------------------------------------------------------------------------------


def test_retention_deletes_old_rows_and_drops_old_partitions(fleet):
    f = fleet()
    # Hold the fleet-wide maintenance lock until the rows are in (other processes of the session
    # may also hold it, for their hour-long interval): the run is then started by releasing it.
    f.rc.set(MAINT_LOCK, "test-hold", px=int(scaled(60) * 1000))
    try:
        srv = f.start(storage={**QUICK, "maintenance_interval_ms": 1000})
        # ingest accepts logs within the project's retention: long at ingest time, 1 day after
        f.auth_sql("UPDATE projects SET retention_days = 1000 WHERE id = %s", f.pid)
        now = utcnow()
        ancient = now - datetime.timedelta(days=730)
        part = f"logs_{ancient:%Y_%m}"
        old = [log(f"{f.tag}-old{i}", timestamp=iso(now - datetime.timedelta(days=3))) for i in range(3)]
        new = [log(f"{f.tag}-new{i}") for i in range(3)]
        anc = [log(f"{f.tag}-ancient", timestamp=iso(ancient))]
        f.ingest(srv, old + new + anc)
        f.wait_stored_exactly([l["message"] for l in old + new + anc])
        f.auth_sql("UPDATE projects SET retention_days = 1 WHERE id = %s", f.pid)
        regclass = lambda: f.logs_db.execute("SELECT to_regclass(%s)", (part,)).fetchone()[0]
        assert regclass() is not None, f"{part} was not created for the old row"
        # two years of months before it (about 120 leaves each, with their indexes): dropped in one
        # transaction they would overflow the lock table (max_locks_per_transaction)
        older = [ancient - datetime.timedelta(days=31 * k) for k in range(1, 25)]
        for ts in older:
            f.logs_db.execute("SELECT logs_ensure_partition(%s)", (ts,))
        # spans and metric points (OTLP) follow the same retention
        otel = [f"spans_{ancient:%Y_%m}", f"metric_points_{ancient:%Y_%m}"]
        for t in ("spans", "metric_points"):
            f.logs_db.execute("SELECT otel_ensure_partition(%s, %s)", (t, ancient))
        # and their rows younger than that partition but past the project's retention go too:
        # 3 days old goes, 1 hour old stays (as the storage role would have written them)
        otel_rows = {"old": now - datetime.timedelta(days=3), "new": now - datetime.timedelta(hours=1)}
        for age, ts in otel_rows.items():
            for t in ("spans", "metric_points"):
                f.logs_db.execute("SELECT otel_ensure_partition(%s, %s)", (t, ts))
            f.logs_db.execute(
                "INSERT INTO spans (project_id, trace_id, span_id, name, start_time, duration_us) "
                "VALUES (%s, %s, %s, 'op', %s, 5)", (f.pid, f"{f.tag}-{age}", "0" * 16, ts))
            f.logs_db.execute(
                "INSERT INTO metric_points (project_id, name, type, \"time\", value) "
                "VALUES (%s, %s, 'gauge', %s, 1)", (f.pid, f"{f.tag}.{age}", ts))
            f.logs_db.execute(
                "INSERT INTO metric_rollups (project_id, name, type, temporality, monotonic, hour, n_v) "
                "VALUES (%s, %s, 'gauge', 0, false, date_trunc('hour', %s::timestamptz), 1)",
                (f.pid, f"{f.tag}.{age}", ts))
        time.sleep(1.5)
        assert "maintenance done" not in srv.log_text()  # the lock held it off
        f.rc.delete(MAINT_LOCK)

        done = wait_log(srv, r"maintenance (done|stopped).*", timeout=30).group(0)
        m = re.match(r"maintenance done: partitions_dropped=(\d+) rows_deleted=(\d+)", done)
        assert m and int(m.group(1)) >= 1 and int(m.group(2)) >= 3, done
        assert regclass() is None, f"{part} not dropped"
        for ts in older:
            assert f.logs_db.execute("SELECT to_regclass(%s)", (f"logs_{ts:%Y_%m}",)).fetchone()[0] is None
        assert f"dropped partition {part}" in srv.log_text()
        for p in otel:
            assert f.logs_db.execute("SELECT to_regclass(%s)", (p,)).fetchone()[0] is None, f"{p} not dropped"
            assert f"dropped partition {p}" in srv.log_text()
        assert sorted(m for m, in f.rows("message")) == sorted(l["message"] for l in new)
        left = lambda sql: sorted(r[0] for r in f.logs_db.execute(sql, (f.pid,)).fetchall())
        assert left("SELECT trace_id FROM spans WHERE project_id = %s") == [f"{f.tag}-new"]
        assert left("SELECT name FROM metric_points WHERE project_id = %s") == [f"{f.tag}.new"]
        assert left("SELECT name FROM metric_rollups WHERE project_id = %s") == [f"{f.tag}.new"]
    finally:
        if f.rc.get(MAINT_LOCK) == b"test-hold":
            f.rc.delete(MAINT_LOCK)


# ---- queue counters ---------------------------------------------------------------------------------------


def test_reconciler_sets_drifted_queue_counters_to_what_the_stream_holds(fleet):
    """queue_depth/queue_bytes written wrong behind ledgerd's back (as an older AOF or a hand edit
    would leave them) are set right by the next maintenance run, in both directions: too low while
    entries are pending (the acks then bring them to 0 exactly), too high with an empty stream."""
    f = fleet()
    f.rc.set(MAINT_LOCK, "test-hold", px=int(scaled(60) * 1000))
    try:
        ing = f.start(roles=INGEST_ONLY)
        msgs = f.messages(150)
        f.ingest(ing, [log(m) for m in msgs])  # two entries: 100 and 50 logs
        depth_key, bytes_key = f"queue_depth:{f.pid}", f"queue_bytes:{f.pid}"
        assert f.depth() == 150
        queued_bytes = int(f.rc.get(bytes_key))
        assert queued_bytes == sum(len(e[1][b"m"]) for e in f.rc.xrange(f.stream))
        f.rc.set(depth_key, 3)
        f.rc.set(bytes_key, 7)
        # a storage process that holds the batch before its COMMIT: the entries stay in the stream
        st = f.start(roles=STORAGE_ONLY, storage={**HOLDING, "debug_pause_before_commit_ms": 4000,
                                                   "maintenance_interval_ms": 1000})
        wait_until(lambda: f.pending() == 2, scaled(10), interval=0.05, what="both entries delivered")
        f.rc.delete(MAINT_LOCK)
        line = wait_log(st, r"queue counters repaired on Redis shard 0: .*", timeout=scaled(10)).group(0)
        assert (f"entries=2 depth_keys=1 drift_logs=147 bytes_keys=1 drift_bytes={queued_bytes - 7}" in line), line
        assert f.depth() == 150 and int(f.rc.get(bytes_key)) == queued_bytes
        # the batch commits, the ack counts it down: 0 exactly (not a clamped negative)
        f.wait_stored_exactly(msgs, timeout=scaled(30))
        assert f.rc.get(depth_key) in (None, b"0") and f.rc.get(bytes_key) in (None, b"0")

        # too high with nothing queued: a project refused with 503s until the next run
        f.rc.set(depth_key, 777)
        f.rc.set(bytes_key, 5)
        wait_until(lambda: f.rc.get(depth_key) is None and f.rc.get(bytes_key) is None, scaled(15), interval=0.1,
                   what="phantom counters removed")
        assert "depth_keys=1 drift_logs=777 bytes_keys=1 drift_bytes=5" in st.log_text()
        text = requests.get(st.url + "/metrics", timeout=scaled(10)).text
        m = {l.split(" ")[0]: float(l.split(" ")[1]) for l in text.splitlines() if l and not l.startswith("#")}
        assert m['ledger_queue_counter_repairs_total{counter="depth"}'] == 2
        assert m['ledger_queue_counter_repairs_total{counter="bytes"}'] == 2
        assert m['ledger_queue_reconciles_total{outcome="checked"}'] >= 2
        assert m['ledger_queue_reconciles_total{outcome="skipped"}'] == 0
    finally:
        if f.rc.get(MAINT_LOCK) == b"test-hold":
            f.rc.delete(MAINT_LOCK)
