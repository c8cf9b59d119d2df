"""The Redis and PostgreSQL clients (src/db) against real servers, through the dbcheck driver.

Every test runs one dbcheck scenario on a private loop; the scenario checks its own results and
that uv_loop_close() returns 0 at the end. Tests that break a server wait for the scenario to print
READY, restart/kill the server, and let the scenario observe the error and the recovery.

Run: /usr/bin/python3 -m pytest -q test/integration/test_db_clients.py
Env: LDG_DBCHECK (default build/debug/test/integration/dbcheck), LDG_TEST_TIMEOUT_MULT, CI.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ldg_servers import PgServer, RedisServer, free_port, require  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MULT = float(os.environ.get("LDG_TEST_TIMEOUT_MULT") or 1)
SANITIZER = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: |SUMMARY: \w+Sanitizer")
PASSWORD = "s3cret-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def dbcheck_bin():
    path = os.path.abspath(os.environ.get("LDG_DBCHECK") or ROOT / "build" / "debug" / "test" / "integration" / "dbcheck")
    require(os.path.isfile(path) and os.access(path, os.X_OK), f"dbcheck not built: {path} (set LDG_DBCHECK)")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = Path(tmp_path_factory.mktemp("dbclients"))
    return d


@pytest.fixture(scope="module")
def pg(workdir):
    srv = PgServer(workdir / "pg")
    srv.start()
    import psycopg

    with psycopg.connect(srv.dsn("postgres"), autocommit=True) as c:
        c.execute("CREATE DATABASE dbcheck")
    yield srv
    srv.cleanup()


@pytest.fixture
def redis_srv(tmp_path):
    srv = RedisServer(tmp_path / "redis")
    srv.start()
    yield srv
    srv.cleanup()


@pytest.fixture
def redis_pw(tmp_path):
    srv = RedisServer(tmp_path / "redis-pw", password=PASSWORD)
    srv.start()
    pwfile = tmp_path / "redis.pass"
    pwfile.write_text(PASSWORD + "\n")
    srv.password_file = str(pwfile)
    yield srv
    srv.cleanup()


class Scenario:
    """One running dbcheck; stdout lines are collected by a thread so we can wait for READY."""

    def __init__(self, binary, name, *args):
        self.name = name
        self.proc = subprocess.Popen([binary, name, *map(str, args)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.err = []
        self.q = queue.Queue()
        self._t = [threading.Thread(target=self._read_out, daemon=True),
                   threading.Thread(target=self._read_err, daemon=True)]
        for t in self._t:
            t.start()

    def _read_out(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self.q.put(line)
        self.q.put(None)

    def _read_err(self):
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(["--- stdout"] + self.lines + ["--- stderr"] + self.err[-60:])

    def wait_for(self, token, timeout=30):
        deadline = time.monotonic() + timeout * MULT
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("FAIL"):
                break
            if line == token or line.startswith(token + " "):
                return line
        self.proc.kill()
        self.proc.wait()
        for t in self._t:
            t.join(5)
        pytest.fail(f"{self.name}: no {token!r}\n{self.output()}", pytrace=False)

    def finish(self, timeout=90):
        try:
            rc = self.proc.wait(timeout * MULT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "timeout"
        for t in self._t:
            t.join(5)
        out = self.output()
        assert rc == 0, f"{self.name} exited with {rc}\n{out}"
        assert f"PASS {self.name}" in self.lines, out
        assert "LOOP_CLOSED ok" in self.lines, out
        assert not any(SANITIZER.search(l) for l in self.err), out
        return self

    def line(self, prefix):
        for line in self.lines:
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting with {prefix!r}\n{self.output()}")


def run(binary, name, *args, timeout=90):
    return Scenario(binary, name, *args).finish(timeout)


def pg_args(pg, dbname="dbcheck"):
    return ["--host", pg.host, "--port", pg.port, "--user", "postgres", "--dbname", dbname]


def wait_activity(pg, pattern, timeout=15):
    """Wait until a backend runs a statement matching `pattern` (ILIKE)."""
    import psycopg

    deadline = time.monotonic() + timeout * MULT
    with psycopg.connect(pg.dsn("postgres"), autocommit=True) as c:
        while time.monotonic() < deadline:
            n = c.execute("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE %s AND pid <> pg_backend_pid()",
                          (pattern,)).fetchone()[0]
            if n:
                return
            time.sleep(0.05)
    pytest.fail(f"no backend running {pattern!r}", pytrace=False)


# ---- Redis ------------------------------------------------------------------------------------------


def test_redis_basic_auth_select_pipeline_close(dbcheck_bin, redis_pw):
    import redis

    run(dbcheck_bin, "redis-basic", "--port", redis_pw.port, "--password-file", redis_pw.password_file)
    r = redis.Redis(host="127.0.0.1", port=redis_pw.port, password=PASSWORD, db=3)
    assert r.get("dbcheck:k") == b"v", "AUTH + SELECT 3 not applied"
    assert r.get("dbcheck:cnt") == b"8"


def test_redis_unix_socket(dbcheck_bin, tmp_path):
    import redis

    srv = RedisServer(tmp_path / "redis-unix", unixsocket=True)
    srv.start()
    try:
        run(dbcheck_bin, "redis-basic", "--host", srv.unixsocket)
        assert redis.Redis(unix_socket_path=srv.unixsocket, db=3).get("dbcheck:k") == b"v"
    finally:
        srv.cleanup()


def test_redis_wrong_password_never_connects(dbcheck_bin, redis_pw):
    run(dbcheck_bin, "redis-auth-fail", "--port", redis_pw.port)


def test_redis_command_timeout_drops_and_reconnects(dbcheck_bin, redis_srv):
    s = run(dbcheck_bin, "redis-timeout", "--port", redis_srv.port)
    s.line("TIMEOUT ok")
    s.line("RECOVERED")


def test_redis_subscribe_confirmation_timeout(dbcheck_bin, redis_srv):
    s = run(dbcheck_bin, "redis-sub-timeout", "--port", redis_srv.port)
    s.line("SUB_RECOVERED ok")


def test_redis_killed_pending_null_then_reconnect(dbcheck_bin, redis_srv):
    s = Scenario(dbcheck_bin, "redis-reconnect", "--port", redis_srv.port)
    s.wait_for("READY")
    redis_srv.kill()
    time.sleep(0.5)
    redis_srv.start()
    s.finish()
    s.line("PENDING_NULL ok")
    s.line("RECONNECTED ok")


def test_redis_sub_resubscribes_after_restart(dbcheck_bin, redis_srv):
    s = Scenario(dbcheck_bin, "redis-sub", "--port", redis_srv.port)
    s.wait_for("READY")
    redis_srv.kill()
    time.sleep(0.5)
    redis_srv.start()
    s.finish()
    s.line("RESUBSCRIBED ok")
    s.line("CHANNEL_SET ok")


def test_redis_down_fails_fast(dbcheck_bin):
    run(dbcheck_bin, "redis-down", "--port", free_port())


# ---- PostgreSQL ----------------------------------------------------------------------------------------


def test_pg_query_params_errors_prepared(dbcheck_bin, pg):
    run(dbcheck_bin, "pg-query", *pg_args(pg))


def test_pg_pipeline(dbcheck_bin, pg):
    run(dbcheck_bin, "pg-pipeline", *pg_args(pg))


def test_pg_waiters_bound_and_acquire_timeout(dbcheck_bin, pg):
    run(dbcheck_bin, "pg-waiters-bound", *pg_args(pg))


def test_pg_copy_bounded_and_errors(dbcheck_bin, pg):
    run(dbcheck_bin, "pg-copy", *pg_args(pg))


def test_pg_unix_socket(dbcheck_bin, pg):
    run(dbcheck_bin, "pg-query", "--host", pg.sockdir, "--port", pg.port, "--user", "postgres", "--dbname", "dbcheck")


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_pg_server_restart_mid_query(dbcheck_bin, pg, how):
    s = Scenario(dbcheck_bin, "pg-restart-mid-query", *pg_args(pg))
    s.wait_for("READY")
    wait_activity(pg, "SELECT pg_sleep(5)%")
    if how == "restart":
        pg.restart()
    else:
        pg.kill()
        time.sleep(0.5)
        pg.start()
    s.finish()
    s.line("QUERY_ERROR ok")
    s.line("RECOVERED")


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_pg_server_restart_mid_copy(dbcheck_bin, pg, how):
    s = Scenario(dbcheck_bin, "pg-copy-restart", *pg_args(pg))
    s.wait_for("READY")
    wait_activity(pg, "COPY dbcheck_copy%")
    if how == "restart":
        pg.restart()
    else:
        pg.kill()
        time.sleep(0.5)
        pg.start()
    s.finish()
    s.line("COPY_ERROR ok")
    s.line("COPY_OK rows=1000")


def backend_pids(pg, pattern):
    import psycopg

    with psycopg.connect(pg.dsn("postgres"), autocommit=True) as c:
        return [r[0] for r in c.execute(
            "SELECT pid FROM pg_stat_activity WHERE query ILIKE %s AND pid <> pg_backend_pid()", (pattern,))]


def test_pg_client_deadline_when_server_freezes(dbcheck_bin, pg):
    s = Scenario(dbcheck_bin, "pg-deadline", *pg_args(pg))
    s.wait_for("READY")
    wait_activity(pg, "%dbcheck-freeze-me%")
    pids = backend_pids(pg, "%dbcheck-freeze-me%")
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        s.wait_for("DEADLINE ok", timeout=20)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    s.finish()
    s.line("AFTER_DEADLINE ok")


def test_pg_down_fails_fast(dbcheck_bin):
    run(dbcheck_bin, "pg-down", "--port", free_port())


# ---- migrations ------------------------------------------------------------------------------------------


SCHEMA_FILES = len(list((ROOT / "schema").glob("*/*.sql")))


def test_migrate_twice_is_idempotent(dbcheck_bin, pg):
    prefix = "mig_" + uuid.uuid4().hex[:8]
    s = run(dbcheck_bin, "migrate", *pg_args(pg), "--schema-dir", ROOT / "schema", "--prefix", prefix)
    s.line("SECOND_RUN_NOOP ok")
    applied = [l for l in s.err if "msg=\"applied " in l]
    assert len(applied) == SCHEMA_FILES, "\n".join(s.err)  # every file once, first run only
    import psycopg

    with psycopg.connect(pg.dsn(prefix + "_auth")) as c:
        cols = {r[0]: r[1] for r in c.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'accounts'")}
        assert cols["notification_preferences"] == "jsonb" and cols["password_hash"] == "text"


def test_migrate_concurrent_runs_apply_once(dbcheck_bin, pg):
    prefix = "mig_" + uuid.uuid4().hex[:8]
    args = [*pg_args(pg), "--schema-dir", ROOT / "schema", "--prefix", prefix]
    runs = [Scenario(dbcheck_bin, "migrate-once", *args) for _ in range(3)]
    for r in runs:
        r.finish()
    applied = [l for r in runs for l in r.err if "msg=\"applied " in l]
    assert len(applied) == SCHEMA_FILES, "\n".join(applied)
