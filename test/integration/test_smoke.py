"""Smoke tests: the binary starts, answers /health, and its basic CLI contract holds."""

import re
import subprocess

from conftest import scaled


def test_health_answers_healthy(ledgerd, http_get):
    srv = ledgerd()
    r = http_get(srv.url + "/health")
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("application/json")
    assert r.json() == {"status": "healthy"}


def test_sigterm_exits_zero(ledgerd):
    srv = ledgerd()
    assert srv.stop() == 0


def test_version_prints_version(ledgerd_bin):
    r = subprocess.run([ledgerd_bin, "--version"], capture_output=True, text=True, timeout=scaled(10))
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+\.\d+", r.stdout), r.stdout


def test_check_config_rejects_unknown_key_with_file_and_line(ledgerd_bin, tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[server]\nhost = 127.0.0.1\nno_such_key = 1\n")
    r = subprocess.run([ledgerd_bin, "-c", str(ini), "--check-config"], capture_output=True, text=True,
                       timeout=scaled(10))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"{ini.name}:3" in out, out
    assert "no_such_key" in out, out
