"""Fixtures for the ledgerd integration suite.

Every test runs against real servers that the suite starts itself on free loopback ports:

* ``pg`` (session): a private PostgreSQL cluster, run as the ``postgres`` user when we are root.
* ``redis`` (session): a private redis-server.
* ``ledgerd`` (function): a factory that writes an INI into ``tmp_path``, applies the schema once
  per session (``--migrate``), starts ``$LDG_BINARY`` and waits for ``/health``.  On teardown every
  server still running gets SIGTERM and must exit 0; its log must hold no ``level=error`` line
  (unless ``srv.allow_errors = True``) and no sanitizer report.

Environment:

* ``LDG_BINARY``: the ledgerd binary (default ``build/debug/ledgerd``).
* ``LDG_DBCHECK``, ``LDG_BUILD_DIR``: set by ``scripts/ledger test``.
* ``LDG_TEST_TIMEOUT_MULT``: scales every wait (3 under sanitizers).
* ``LDG_TEST_CATLOG=1``: print the whole server log when a test fails.
* ``LDG_TEST_LEAVE=1``: keep temporary directories (their paths are printed).
* ``CI=true``: a missing initdb, redis-server or binary fails instead of skipping.

The suite runs at any time of day and CI starts it at any hour: read the clock inside a test, not
when its module is imported (collection happens minutes before the last tests run), and keep a test
that counts in a per-minute or per-hour window clear of the window's end (``clear_of_minute_edge`` in
test_ingest.py). Logs leaves are 6-hour ranges: a test that assumes something of "the open leaf"
must hold at any point of it (test_search_slices.py).

Helpers to import (``from conftest import scaled``): ``scaled(seconds)`` (a wait scaled by
LDG_TEST_TIMEOUT_MULT), ``require(ok, what)`` (skip, or fail under CI), and ``raw_http(port, data,
read_timeout)`` and ``http_get(url, **kw)``, which are fixtures as well.
"""

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import requests

from ldg_servers import PgServer, RedisServer, free_port, require

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MULT = float(os.environ.get("LDG_TEST_TIMEOUT_MULT") or 1)
LEAVE = os.environ.get("LDG_TEST_LEAVE") == "1"
CATLOG = os.environ.get("LDG_TEST_CATLOG") == "1"

ERROR_LINE = re.compile(r"(^|\s)level=error(\s|$)")
SANITIZER_LINE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: |SUMMARY: \w+Sanitizer")


def scaled(seconds):
    """A timeout scaled by LDG_TEST_TIMEOUT_MULT."""
    return seconds * TIMEOUT_MULT


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# Plain helpers
# ---------------------------------------------------------------------------------------------


def raw_http(port, data, read_timeout=2.0, host="127.0.0.1", pause=0.05):
    """Send raw bytes to host:port and return every byte received.

    ``data`` is bytes, or a list of byte chunks sent one by one with ``pause`` seconds between them
    (for split requests).  Reading stops when the server closes the connection (or resets it) or
    when nothing new has arrived for ``read_timeout`` seconds (scaled by LDG_TEST_TIMEOUT_MULT).
    """
    chunks = [data] if isinstance(data, (bytes, bytearray)) else list(data)
    received = bytearray()
    with socket.create_connection((host, port), timeout=scaled(5)) as s:
        try:
            for i, chunk in enumerate(chunks):
                if i:
                    time.sleep(pause)
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close early on malformed input; report what it sent
        s.settimeout(scaled(read_timeout))
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            received += b
    return bytes(received)


def http_get(url, **kw):
    """requests.get with a bounded (scaled) timeout."""
    kw.setdefault("timeout", scaled(10))
    return requests.get(url, **kw)


@pytest.fixture(name="raw_http")
def raw_http_fixture():
    return raw_http


@pytest.fixture(name="http_get")
def http_get_fixture():
    return http_get


# ---------------------------------------------------------------------------------------------
# Session: temp root, PostgreSQL, Redis, binary
# ---------------------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures see whether the test itself failed (for LDG_TEST_CATLOG).
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def session_dir():
    """A temp dir the postgres user can traverse (pytest's own basetemp is 0700 under root)."""
    d = Path(tempfile.mkdtemp(prefix="ldg-it-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    if LEAVE:
        print(f"\nLDG_TEST_LEAVE: kept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(session_dir):
    srv = PgServer(str(session_dir / "pg"))
    srv.start()
    yield srv
    srv.cleanup()


@pytest.fixture(scope="session")
def redis(session_dir):
    srv = RedisServer(str(session_dir / "redis"))
    srv.start()
    yield srv
    srv.cleanup()


@pytest.fixture
def sql(pg):
    """run(query, *params) on ledger_auth (one autocommit connection, opened on first use): the rows,
    or None for a statement that returns none."""
    conns = []

    def run(query, *params):
        if not conns:
            conns.append(psycopg.connect(pg.dsn("ledger_auth"), autocommit=True))
        cur = conns[0].execute(query, params)
        return cur.fetchall() if cur.description else None

    yield run
    for c in conns:
        c.close()


@pytest.fixture(scope="session")
def ledgerd_bin():
    path = os.path.abspath(os.environ.get("LDG_BINARY") or ROOT / "build" / "debug" / "ledgerd")
    require(os.path.isfile(path) and os.access(path, os.X_OK), f"ledgerd binary not found: {path} (set LDG_BINARY)")
    return path


@pytest.fixture(scope="session")
def dbcheck():
    """Path of the dbcheck helper built next to the binary (LDG_DBCHECK)."""
    path = os.path.abspath(os.environ.get("LDG_DBCHECK") or ROOT / "build" / "debug" / "test" / "integration" / "dbcheck")
    require(os.path.isfile(path) and os.access(path, os.X_OK), f"dbcheck helper not found: {path} (set LDG_DBCHECK)")
    return path


# ---------------------------------------------------------------------------------------------
# INI files
# ---------------------------------------------------------------------------------------------


def _ini_value(v):
    if v is True:
        return "on"
    if v is False:
        return "off"
    return str(v)


# [roles] for a process without the gateway: the roles that answer API routes need it.
NO_GATEWAY_ROLES = {"gateway": False, "auth": False, "ingest": False, "notifications": False, "query": False}


def make_ini(port, pg, redis, workers=1, extra=None, jwt_secret_file=None):
    """The base config as {section: {key: value}} with ``extra`` merged in (a None value drops a key)."""
    cfg = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "workers": workers,
            "schema_dir": ROOT / "schema",
        },
        "roles": {r: "on" for r in ("gateway", "auth", "ingest", "query", "storage", "analytics")},
        "redis": {"host": "127.0.0.1", "port": redis.port},
        "pg_auth": {"host": pg.host, "port": pg.port, "dbname": "ledger_auth", "user": "postgres"},
        "pg_logs": {"host": pg.host, "port": pg.port, "dbname": "ledger_logs", "user": "postgres"},
        "log": {"level": "info", "format": "logfmt", "access_log": "off"},
    }
    # Every test registers from 127.0.0.1 against one Redis: the per-address registration
    # throttle is tested on its own (test_hardening.py).
    cfg["auth"] = {"register_max_per_addr": 1000000}
    if jwt_secret_file:
        cfg["auth"]["jwt_secret_file"] = jwt_secret_file
    for section, keys in (extra or {}).items():
        sec = cfg.setdefault(section, {})
        for k, v in keys.items():
            if v is None:
                sec.pop(k, None)
            else:
                sec[k] = v
    return cfg


def render_ini(cfg):
    out = []
    for section, keys in cfg.items():
        out.append(f"[{section}]")
        out.extend(f"{k} = {_ini_value(v)}" for k, v in keys.items())
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# ledgerd
# ---------------------------------------------------------------------------------------------


class Ledgerd:
    """One ledgerd process. ``allow_errors`` tolerates level=error log lines; ``expect_exit`` is the
    exit code required when teardown (or an unexpected death) ends it, None to accept any."""

    def __init__(self, binary, ini_path, log_path, port, env):
        self.binary = binary
        self.ini_path = Path(ini_path)
        self.log_path = Path(log_path)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.proc = None
        self.allow_errors = False
        self.expect_exit = 0
        self._stopped_by_test = False

    def start(self, wait=True, timeout=10):
        """Start (again, appending to the same log) and wait for /health."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.ini_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.ini_path.parent,
                start_new_session=True,
            )
        self._stopped_by_test = False
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"ledgerd exited with {self.proc.returncode} during startup\n--- {self.log_path}\n"
                    + tail(self.log_text()),
                    pytrace=False,
                )
            try:
                r = requests.get(self.url + "/health", timeout=scaled(1))
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = type(e).__name__
            time.sleep(0.05)
        pytest.fail(
            f"ledgerd did not answer /health within {scaled(timeout):.0f}s (last: {last})\n--- {self.log_path}\n"
            + tail(self.log_text()),
            pytrace=False,
        )

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Send ``sig`` and wait; returns the exit code (negative: killed by that signal).
        Raises AssertionError (after SIGKILL) if it does not exit within the scaled timeout."""
        self._stopped_by_test = True
        return self._stop(sig, timeout)

    def kill(self):
        return self.stop(signal.SIGKILL)

    def _stop(self, sig, timeout):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"ledgerd did not exit within {scaled(timeout):.0f}s of {signal.Signals(sig).name}"
                ) from None
        return self.proc.returncode

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def error_lines(self):
        return [l for l in self.log_text().splitlines() if ERROR_LINE.search(l)]

    def sanitizer_lines(self):
        return [l for l in self.log_text().splitlines() if SANITIZER_LINE.search(l)]

    def _teardown_problems(self):
        problems = []
        if self.running:
            try:
                rc = self._stop(signal.SIGTERM, 15)
            except AssertionError as e:
                problems.append(str(e))
                rc = None
            if rc is not None and self.expect_exit is not None and rc != self.expect_exit:
                problems.append(f"exit code {rc} after SIGTERM (expected {self.expect_exit})")
        elif self.proc is not None and not self._stopped_by_test:
            rc = self.proc.returncode
            if self.expect_exit is not None and rc != self.expect_exit:
                problems.append(f"ledgerd died during the test with exit code {rc}")
        san = self.sanitizer_lines()
        if san:
            problems.append("sanitizer report in the log:\n  " + "\n  ".join(san[:10]))
        if not self.allow_errors:
            errs = self.error_lines()
            if errs:
                problems.append("level=error lines in the log (set srv.allow_errors = True if expected):\n  "
                                + "\n  ".join(errs[:10]))
        return problems


@pytest.fixture(scope="session")
def ldg_migrate(ledgerd_bin):
    """migrate(ini_path): ``ledgerd --migrate`` once per (cluster, databases) for the session."""
    done = set()

    def run(ini_path, cfg):
        key = tuple((cfg[s]["host"], cfg[s]["port"], cfg[s]["dbname"]) for s in ("pg_auth", "pg_logs"))
        key += (str(cfg["server"].get("schema_dir")),)
        if key in done:
            return
        r = subprocess.run([ledgerd_bin, "-c", str(ini_path), "--migrate"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=scaled(120))
        if r.returncode != 0:
            pytest.fail(f"ledgerd --migrate exited {r.returncode}:\n" + tail(r.stdout.decode(errors="replace")),
                        pytrace=False)
        done.add(key)

    return run


@pytest.fixture(scope="session")
def jwt_secret_file(session_dir):
    """One HS256 secret for every ledgerd of the session (processes of one fleet share it)."""
    path = session_dir / "jwt.secret"
    path.write_text(os.urandom(32).hex() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def ledgerd(request, tmp_path, pg, redis, ledgerd_bin, ldg_migrate, jwt_secret_file):
    """Factory: ``ledgerd(extra_ini=None, workers=1, env=None, migrate=True, wait=True, binary=None)``.

    ``extra_ini`` is {section: {key: value}} merged over the base config (True/False become on/off,
    None drops a key).  ``env`` adds to os.environ.  ``binary`` runs another executable in place of
    ``$LDG_BINARY`` (a wrapper that execs it).  Returns a started ``Ledgerd``."""
    started = []
    seq = itertools.count()

    def factory(extra_ini=None, workers=1, env=None, migrate=True, wait=True, binary=None):
        d = tmp_path / f"ledgerd{next(seq)}"
        d.mkdir()
        port = free_port()
        cfg = make_ini(port, pg, redis, workers, extra_ini, jwt_secret_file)
        ini = d / "ledger.ini"
        ini.write_text(render_ini(cfg))
        if migrate:
            ldg_migrate(ini, cfg)
        srv = Ledgerd(binary or ledgerd_bin, ini, d / "ledgerd.log", port, {**os.environ, **(env or {})})
        started.append(srv)
        return srv.start(wait=wait)

    yield factory

    problems = []
    for srv in started:
        for p in srv._teardown_problems():
            problems.append(f"{srv.log_path}: {p}")
    failed = bool(problems) or getattr(getattr(request.node, "rep_call", None), "failed", False)
    if CATLOG and failed:
        for srv in started:
            print(f"\n===== {srv.log_path} =====\n{srv.log_text()}")
    if LEAVE:
        print(f"\nLDG_TEST_LEAVE: kept {tmp_path}")
    if problems:
        logs = "" if CATLOG else "\n".join(f"--- tail of {s.log_path}\n{tail(s.log_text(), 20)}" for s in started)
        pytest.fail("ledgerd teardown:\n" + "\n".join(problems) + ("\n" + logs if logs else ""), pytrace=False)


@pytest.fixture
def srv(ledgerd):
    """start(server={...}, log={...}, workers=1): ledgerd with debug endpoints and a 50 ms sweeper,
    for tests of the HTTP layer itself: the gateway role is off, so no route needs credentials
    (and so are the API roles, which cannot serve without it)."""

    def start(server=None, log=None, **kw):
        extra = {"server": {"debug_endpoints": True, "sweep_interval_ms": 50, **(server or {})},
                 "roles": NO_GATEWAY_ROLES}
        if log:
            extra["log"] = log
        return ledgerd(extra_ini=extra, **kw)

    return start


# ---------------------------------------------------------------------------------------------
# Direct access to the auth database and Redis (ldg_fixtures)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def db(ledgerd, pg):
    """db(): an AuthDb on ledger_auth, opened on first use (after a ledgerd has migrated it)."""
    from ldg_fixtures import AuthDb

    holder = []

    def make():
        if not holder:
            holder.append(AuthDb(pg))
        return holder[0]

    yield make
    for d in holder:
        d.close()


@pytest.fixture
def rc(redis):
    """A redis-py client of the session's Redis."""
    from ldg_fixtures import redis_client

    c = redis_client(redis)
    yield c
    c.close()
