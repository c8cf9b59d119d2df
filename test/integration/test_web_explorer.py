"""The dashboard's log explorer in Debian's chromium (playwright-core, web/tests/explorer.mjs) against a
real ledgerd serving web/dist, with PostgreSQL and Redis: rows visible, virtualisation (thousands of
rows loaded by cursor while scrolling, a small window of them in the DOM), facets and histogram, the
server's 400 with its position under the query box, filters and range round-tripping through the URL,
a row's every field and its link, and the live tail showing a log posted to ingest.

The data set is written straight into ledger_logs (deterministic, the last hour); the tail's log goes
through ingest and storage like any other. Screenshots land in build/screenshots/."""

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from conftest import ROOT, scaled, tail
from ldg_api import Api
from ldg_servers import require

WEB = ROOT / "web"
LOGS = 3000


def _browser_prerequisites():
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    require(chromium is not None, "chromium is not installed (apt-get install chromium)")
    require(shutil.which("node") is not None, "node is not installed")
    require((WEB / "node_modules" / "playwright-core").is_dir(), "web/node_modules missing: run npm ci in web/")
    require((WEB / "dist" / "index.html").is_file(), "web/dist missing: run npm run build in web/")
    return chromium


@pytest.fixture
def explorer_server(ledgerd):
    chromium = _browser_prerequisites()
    srv = ledgerd(extra_ini={"gateway": {"web_enabled": True, "web_dir": WEB / "dist"}})
    return srv, chromium


def _load_logs(pg, project_id, n):
    """n logs over the last 50 minutes, newest first by id: 3% error/critical, 10% exceptions with a
    stack trace, every one with attributes (the query bench's shape, smaller)."""
    with psycopg.connect(pg.dsn("ledger_logs"), autocommit=True) as c:
        c.execute("SELECT logs_ensure_partition(now())")
        c.execute(
            """INSERT INTO logs (project_id, "timestamp", ingested_at, level, log_type, message, error_type,
                                 error_message, stack_trace, attributes)
               SELECT %s, now() - make_interval(secs => g * 1.0), now(),
                      CASE WHEN g %% 100 < 2 THEN 'error' WHEN g %% 100 < 3 THEN 'critical'
                           WHEN g %% 100 < 15 THEN 'warning' ELSE 'info' END,
                      CASE WHEN g %% 10 = 0 THEN 'exception' ELSE 'logger' END,
                      'request ' || g || ' handled on worker ' || (g %% 7),
                      CASE WHEN g %% 10 = 0 THEN 'KeyError' END,
                      CASE WHEN g %% 10 = 0 THEN 'missing key ' || g END,
                      CASE WHEN g %% 10 = 0 THEN E'Traceback (most recent call last):\\n  File "/app/h.py", line '
                           || g || E', in handler\\nKeyError: ''k''' END,
                      jsonb_build_object('user_id', g %% 97, 'region', 'eu', 'request', jsonb_build_object('n', g))
               FROM generate_series(1, %s) g""",
            (project_id, n),
        )
        c.execute("ANALYZE logs")


def test_explorer_in_browser(explorer_server, pg):
    srv, chromium = explorer_server
    api = Api(srv.url)
    alice = api.register()
    project = alice.create_project()
    pid = project["project_id"]
    key = alice.create_key(pid)["full_key"]
    _load_logs(pg, pid, LOGS)

    shots = ROOT / "build" / "screenshots"
    env = {**os.environ, "CHROMIUM": chromium}
    try:
        p = subprocess.run(
            ["node", str(WEB / "tests" / "explorer.mjs"), srv.url, alice.email, alice.password, str(pid), key,
             str(LOGS), str(shots)],
            cwd=WEB, env=env, capture_output=True, text=True, timeout=scaled(300),
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"explorer.mjs timed out\n{e.stdout}\n{e.stderr}")
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"explorer.mjs failed:\n{out}\n--- ledgerd log\n{tail(srv.log_text(), 30)}"
    for check in ("rows visible", "virtualisation", "facets", "400 position shown", "URL round trip",
                  "detail and link", "zoom", "live tail"):
        assert f"ok {check}" in p.stdout, out
    assert (shots / "explorer.png").is_file()
