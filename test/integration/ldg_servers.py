"""Private PostgreSQL and Redis servers for integration tests, on free loopback ports.

Self-contained (standard library + pytest) so that conftest.py and single test modules can import
it::

    from ldg_servers import PgServer, RedisServer, free_port, require

* ``free_port()``: a TCP port free on 127.0.0.1 right now.
* ``PgServer(tmpdir)``: ``start()``, ``stop()``, ``restart()`` (fast shutdown: sessions are
  terminated), ``kill()`` (immediate shutdown, like a crash; ``start()`` again afterwards),
  ``cleanup()``; attributes ``host``, ``port``, ``sockdir``, ``datadir``, ``log``; ``dsn(dbname)``.
  PostgreSQL refuses to run as root: when we are root, every server command runs as the
  ``postgres`` user (``runuser``) on a directory owned by it.
* ``RedisServer(tmpdir, password=None, unixsocket=False, appendonly=False)``: ``start()``, ``stop()``,
  ``restart()``, ``kill()`` (SIGKILL; ``start()`` again afterwards); attributes ``host``, ``port``,
  ``password``, ``unixsocket`` (path or None), ``log``.
  Started with ``--save '' --appendonly no`` (``appendonly=True``: ``--appendonly yes``, so that data
  survives a stop and start) and, on Redis 7+, ``--enable-debug-command yes``.

A missing ``initdb`` or ``redis-server`` skips the test, except under ``CI=true`` where it fails.
Ports stay the same across restarts.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

CI = os.environ.get("CI") == "true"
TIMEOUT_MULT = float(os.environ.get("LDG_TEST_TIMEOUT_MULT") or 1)


def require(ok, what):
    """Skip when a prerequisite is missing; under CI=true, fail instead."""
    if ok:
        return
    if CI:
        pytest.fail(f"{what} (CI=true: a missing prerequisite is a failure)", pytrace=False)
    pytest.skip(what)


def free_port():
    """A port nothing listens on at 127.0.0.1 (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_exists():
    try:
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return False


def _pg_bindir():
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                    if p.parent.name.isdigit() else 0, reverse=True):
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PgServer:
    """A throw-away PostgreSQL cluster (trust authentication, fsync off)."""

    def __init__(self, tmpdir):
        self.bindir = _pg_bindir()
        require(self.bindir is not None, "PostgreSQL server binaries (initdb) not installed")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            require(_postgres_exists(), "no postgres user to run PostgreSQL as (it refuses to run as root)")
        base = Path(tmpdir)
        base.mkdir(parents=True, exist_ok=True)
        if self.as_root and not self._postgres_can_use(base):
            # e.g. pytest's tmp_path lives under a 0700 directory of root's
            base = Path(tempfile.mkdtemp(prefix="ldg-pg-", dir="/tmp"))
            require(self._postgres_can_use(base), f"user postgres cannot write {base}")
            self._own_dir = True
        else:
            self._own_dir = False
        self.dir = base
        self.datadir = self.dir / "data"
        self.sockdir = str(self.dir)
        self.log = self.dir / "postgresql.log"
        self.host = "127.0.0.1"
        self.port = None

    # -- helpers --------------------------------------------------------------------------------

    def _postgres_can_use(self, d):
        shutil.chown(d, "postgres", "postgres")
        os.chmod(d, 0o755)
        return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(d)], cwd="/",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def _run(self, *argv, check=True, timeout=120):
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        r = subprocess.run(cmd, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout * TIMEOUT_MULT)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{self.log_tail()}")
        return r

    def _options(self):
        return (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockdir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self):
        if not (self.datadir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "--nosync",
                      "--locale=C", "-E", "UTF8")
        self.port = self.port or free_port()
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60", "-o",
                  self._options(), "start")
        return self

    def stop(self):
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60", "stop", check=False)

    def restart(self):
        """Fast shutdown (every session gets FATAL 57P01 and is closed), then start again."""
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-m", "fast", "-w", "-t", "60",
                  "-o", self._options(), "restart")

    def kill(self):
        """Immediate shutdown, as after a crash (no checkpoint; crash recovery on the next start)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "60", "stop")

    def cleanup(self):
        self.stop()
        if os.environ.get("LDG_TEST_LEAVE") == "1":
            print(f"LDG_TEST_LEAVE: kept {self.dir}")
        elif self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, dbname="postgres"):
        return f"host={self.host} port={self.port} dbname={dbname} user=postgres"


def _redis_major():
    try:
        out = subprocess.run(["redis-server", "--version"], stdout=subprocess.PIPE, text=True, timeout=10).stdout
        v = out.split("v=")[1].split()[0]
        return int(v.split(".")[0])
    except (OSError, IndexError, ValueError, subprocess.SubprocessError):
        return 0


class RedisServer:
    """A throw-away redis-server, without persistence unless ``appendonly``."""

    def __init__(self, tmpdir, password=None, unixsocket=False, appendonly=False):
        require(shutil.which("redis-server") is not None, "redis-server not installed")
        self.appendonly = appendonly
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "redis.log"
        self.host = "127.0.0.1"
        self.port = None
        self.password = password
        self.unixsocket = str(self.dir / "redis.sock") if unixsocket else None
        self.proc = None

    def _ping(self):
        with socket.create_connection((self.host, self.port), timeout=1) as c:
            if self.password:
                pw = self.password.encode()
                c.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw))
                if not c.recv(64).startswith(b"+OK"):
                    return False
            c.sendall(b"PING\r\n")
            return c.recv(64).startswith(b"+PONG")

    def start(self):
        self.port = self.port or free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "yes" if self.appendonly else "no", "--dir", str(self.dir), "--stream-node-max-bytes", "262144"]
        if _redis_major() >= 7:
            argv += ["--enable-debug-command", "yes"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.unixsocket:
            argv += ["--unixsocket", self.unixsocket, "--unixsocketperm", "700"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.dir)
        deadline = time.monotonic() + 10 * TIMEOUT_MULT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.log}")
            try:
                if self._ping():
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def _end(self, sig):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10 * TIMEOUT_MULT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self):
        self._end(signal.SIGTERM)

    def kill(self):
        self._end(signal.SIGKILL)

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()


__all__ = ["CI", "PgServer", "RedisServer", "free_port", "require"]
