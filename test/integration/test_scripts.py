"""scripts/ledger as an operator uses it: unknown commands are named, the override file is merged
over `up`'s generated config, and `restart` replaces ledgerd alone (the data stores keep running).

The script is sourced into a scratch root (its helpers are functions): build/release/ledgerd is
the binary under test, var/pg and var/redis point at the session's PostgreSQL and Redis, and
the build and package steps are skipped (the binary is already built).
"""

import os
import re
import signal
import subprocess
import time

import requests

from conftest import ROOT, scaled
from ldg_servers import free_port

SCRIPT = ROOT / "scripts" / "ledger"


def test_unknown_command_is_named():
    r = subprocess.run(["bash", str(SCRIPT), "restat"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "unknown command 'restat'" in r.stderr
    assert "restart" in r.stderr  # the usage follows


def _bash(root, code, env=None):
    prelude = f"""
source {SCRIPT}
LEDGER_ROOT={root}
LEDGER_VAR={root}/var
LEDGER_OVERRIDE={root}/var/ledger.override.ini
build() {{ :; }}
ensure_packages() {{ :; }}
"""
    return subprocess.run(["bash", "-c", prelude + code], capture_output=True, text=True, timeout=scaled(120),
                          env={**os.environ, **(env or {})}, cwd=root)


def test_override_file_is_merged_over_the_generated_config(tmp_path):
    ini = tmp_path / "ledger.ini"
    ini.write_text("; generated\n[server]\nhost = 127.0.0.1\nport = 1\n\n[log]\nlevel = info\n")
    over = tmp_path / "over.ini"
    over.write_text("; mine\n[server]\nport = 9999\nmax_connections = 50\n[storage]\nbatch_max_logs = 10\n")
    r = _bash(tmp_path, f"merge_ini {ini} {over}")
    assert r.returncode == 0, r.stderr
    text = ini.read_text()
    assert text == ("; generated\n[server]\nhost = 127.0.0.1\nport = 9999\nmax_connections = 50\n\n"
                    "[log]\nlevel = info\n\n[storage]\nbatch_max_logs = 10\n"), text


def test_restart_replaces_ledgerd_and_keeps_the_override(tmp_path, pg, redis, ledgerd_bin):
    root = tmp_path
    (root / "build" / "release").mkdir(parents=True)
    os.symlink(ledgerd_bin, root / "build" / "release" / "ledgerd")
    os.symlink(ROOT / "schema", root / "schema")
    os.symlink(ROOT / "scripts", root / "scripts")
    var = root / "var"
    (var / "redis").mkdir(parents=True)
    os.symlink(pg.dir, var / "pg")
    (var / "pg.port").write_text(f"{pg.port}\n")
    (var / "redis.port").write_text(f"{redis.port}\n")
    (var / "redis" / "redis.pid").write_text(f"{redis.proc.pid}\n")
    port = free_port()
    env = {"LEDGER_PORT": str(port)}
    pidfile = var / "ledgerd.pid"
    try:
        r = _bash(root, "cmd_restart", env)  # nothing running yet: it starts one
        assert r.returncode == 0, r.stdout + r.stderr
        first = int(pidfile.read_text())
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=scaled(5)).status_code == 200

        (var / "ledger.override.ini").write_text("[server]\nmax_connections = 123\n[log]\nlevel = debug\n")
        r = _bash(root, "cmd_restart", env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "applied var/ledger.override.ini" in r.stdout
        second = int(pidfile.read_text())
        assert second != first
        assert not os.path.exists(f"/proc/{first}"), "the old ledgerd is still running"
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=scaled(5)).status_code == 200
        text = (var / "ledger.ini").read_text()
        assert re.search(r"^max_connections = 123$", text, re.M) and re.search(r"^level = debug$", text, re.M)
        log = (var / "ledgerd.log").read_text()
        assert "shutting down: SIGTERM" in log, log[-3000:]

        # a bad override stops the restart before anything is touched
        (var / "ledger.override.ini").write_text("[server]\nmax_connections = lots\n")
        r = _bash(root, "cmd_restart", env)
        assert r.returncode != 0 and "ledger.override.ini" in r.stderr, r.stderr
    finally:
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(200):
                if not os.path.exists(f"/proc/{pid}"):
                    break
                time.sleep(0.05)
        except (OSError, ValueError):
            pass
