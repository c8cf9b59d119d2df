"""The storage role (reference §7.2, §7.3; decisions D5): the ingest stream into PostgreSQL.

Each test uses its own stream, consumer group and dead-letter stream, so that entries, pending lists
and rows can be counted exactly; rows are found by project id (every test makes its own project).
"""

import datetime
import os
import time

import psycopg
import pytest
import requests

from conftest import scaled
from ldg_http import wait_until

SINGLE = "/api/v1/ingest/single"
BATCH = "/api/v1/ingest/batch"


def now_iso(delta_s=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)
    return t.isoformat().replace("+00:00", "Z")


def log(**kw):
    base = {"timestamp": now_iso(), "level": "info", "log_type": "console", "message": "hello world"}
    base.update(kw)
    return base


class Env:
    """A ledgerd with storage on, its own stream/group/dead-letter names, a project and a key."""

    def __init__(self, ledgerd, db, pg, storage=None, ingest=None, roles=None, server=None, workers=1):
        tag = os.urandom(5).hex()
        self.stream, self.group, self.dead = f"test:logs:{tag}", f"test:group:{tag}", f"test:dead:{tag}"
        self.ini = {
            "ingest": {"stream": self.stream, **(ingest or {})},
            "storage": {"group": self.group, "dead_letter_stream": self.dead, "batch_wait_ms": 20,
                        "claim_interval_ms": 200, **(storage or {})},
            "server": {"debug_endpoints": True, **(server or {})},
        }
        if roles:
            self.ini["roles"] = roles
        self.srv = ledgerd(extra_ini=self.ini, workers=workers)
        d = db()
        self.pid = d.project(d.account())
        self.key, _ = d.key(self.pid, rpm=100000, rph=1000000)
        self.logs_db = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)

    def post(self, path, body):
        return requests.post(self.srv.url + path, json=body, headers={"X-API-Key": self.key}, timeout=scaled(10))

    def rows(self, cols="*", where=""):
        cur = self.logs_db.execute(f"SELECT {cols} FROM logs WHERE project_id = %s {where} ORDER BY id",
                                   (self.pid,))
        return cur.fetchall()

    def count(self):
        return self.logs_db.execute("SELECT count(*) FROM logs WHERE project_id = %s", (self.pid,)).fetchone()[0]

    def wait_rows(self, n, timeout=15):
        wait_until(lambda: self.count() >= n, timeout, what=f"{n} rows stored")
        return self.count()


@pytest.fixture
def env(ledgerd, db, pg):
    made = []

    def make(**kw):
        e = Env(ledgerd, db, pg, **kw)
        made.append(e)
        return e

    yield make
    for e in made:
        e.logs_db.close()


def test_single_and_batch_round_trip(env, rc):
    e = env()
    r = e.post(SINGLE, log(message="one", level="warning", environment="prod", release="1.2.3",
                           attributes={"user": {"id": 7}, "tags": ["a", "b"]}, sdk_version="1.0",
                           platform="python", platform_version="3.11", importance="high"))
    assert r.status_code == 202, r.text
    r = e.post(BATCH, {"logs": [log(message=f"b{i}") for i in range(50)]})
    assert r.status_code == 202 and r.json()["accepted"] == 50
    e.wait_rows(51)
    time.sleep(0.2)
    assert e.count() == 51
    row = e.rows("level, log_type, importance, environment, release, message, attributes, sdk_version, "
                 "platform, platform_version, error_fingerprint, queue_id", "AND message = 'one'")[0]
    assert row[:6] == ("warning", "console", "high", "prod", "1.2.3", "one")
    assert row[6] == {"user": {"id": 7}, "tags": ["a", "b"]}
    assert row[7:11] == ("1.0", "python", "3.11", None)
    assert row[11] and "-" in row[11]
    wait_until(lambda: int(rc.get(f"queue_depth:{e.pid}") or 0) == 0, 5, what="queue depth 0")
    assert rc.xlen(e.stream) == 0
    assert rc.xpending(e.stream, e.group)["pending"] == 0


def test_exception_groups(env, rc):
    e = env()
    tb = 'Traceback:\n  File "/app/main.py", line 10, in f\n  File "/app/svc.py", line 42, in g\n'
    exc = log(level="error", log_type="exception", error_type="ValueError", error_message="bad",
              stack_trace=tb, platform="python")
    r = e.post(BATCH, {"logs": [exc, exc, exc]})
    assert r.status_code == 202 and r.json()["accepted"] == 3
    e.wait_rows(3)
    fps = {r[0] for r in e.rows("error_fingerprint")}
    assert len(fps) == 1
    fp = fps.pop()
    wait_until(lambda: e.logs_db.execute("SELECT occurrence_count FROM error_groups WHERE project_id = %s",
                                         (e.pid,)).fetchone() is not None, 5, what="error group")
    g = e.logs_db.execute("SELECT fingerprint, error_type, error_message, occurrence_count, status "
                          "FROM error_groups WHERE project_id = %s", (e.pid,)).fetchall()
    assert g == [(fp, "ValueError", "bad", 3, "unresolved")]
    r = e.post(SINGLE, exc)
    assert r.status_code == 202
    e.wait_rows(4)
    wait_until(lambda: e.logs_db.execute("SELECT occurrence_count FROM error_groups WHERE project_id = %s",
                                         (e.pid,)).fetchone()[0] == 4, 5, what="count 4")


def test_undecodable_entry_is_dead_lettered(env, rc):
    e = env()
    rc.xadd(e.stream, {"p": str(e.pid), "m": b"\xc1garbage"})
    rc.incrby(f"queue_depth:{e.pid}", 1)
    r = e.post(SINGLE, log(message="after poison"))
    assert r.status_code == 202
    e.wait_rows(1)
    wait_until(lambda: rc.xlen(e.dead) == 1, 5, what="dead letter")
    (_, f), = rc.xrange(e.dead)
    assert f[b"reason"] == b"undecodable queue entry"
    assert f[b"m"] == b"\xc1garbage" and f[b"p"] == str(e.pid).encode()
    wait_until(lambda: int(rc.get(f"queue_depth:{e.pid}") or 0) == 0, 5, what="queue depth 0")


def test_scripts_flushed_are_sent_again(env, rc):
    """After SCRIPT FLUSH (or a Redis restart) the acknowledgement script is sent by body again."""
    e = env()
    assert e.post(BATCH, {"logs": [log(message=f"a{i}") for i in range(5)]}).status_code == 202
    e.wait_rows(5)
    rc.script_flush()
    assert e.post(BATCH, {"logs": [log(message=f"b{i}") for i in range(5)]}).status_code == 202
    e.wait_rows(10)
    wait_until(lambda: int(rc.get(f"queue_depth:{e.pid}") or 0) == 0, 5, what="queue depth 0")
    assert rc.xlen(e.stream) == 0
    assert rc.xpending(e.stream, e.group)["pending"] == 0
    assert e.count() == 10
