"""The dashboard's alerts, monitors, inbox and two-factor pages in Debian's chromium
(playwright-core, web/tests/alerts.mjs) against a real ledgerd serving web/dist, with PostgreSQL
and Redis, the alert evaluator running every second: sign up, turn on two-factor sign-in with a
TOTP computed in the script, sign out and in with a code, an in_app connector and its test, a rule
that fires on ingested logs (the inbox bell rises through the notification stream), history ack,
a heartbeat monitor pinged to up, the inbox marked read. No CSP violation or page error; every new
page is captured in both themes to build/screenshots/."""

import os
import subprocess

import pytest

from conftest import ROOT, scaled, tail
from test_web_explorer import WEB, _browser_prerequisites

SHOTS = ROOT / "build" / "screenshots"
CHECKS = ("sign up", "2fa enabled", "2fa sign in", "connector", "rule created", "bell count from stream",
          "history ack", "heartbeat up", "uptime bars", "inbox read all", "no csp violations or page errors")


@pytest.mark.timeout(420)
def test_alerts_pages_in_browser(ledgerd):
    chromium = _browser_prerequisites()
    srv = ledgerd(extra_ini={"gateway": {"web_enabled": True, "web_dir": WEB / "dist"},
                             "analytics": {"alert_eval_interval_ms": 1000}})
    env = {**os.environ, "CHROMIUM": chromium}
    try:
        p = subprocess.run(["node", str(WEB / "tests" / "alerts.mjs"), srv.url, str(SHOTS)], cwd=WEB, env=env,
                           capture_output=True, text=True, timeout=scaled(300))
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"alerts.mjs timed out\n{e.stdout}\n{e.stderr}")
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"alerts.mjs failed:\n{out}\n--- ledgerd log\n{tail(srv.log_text(), 40)}"
    for check in CHECKS:
        assert f"ok {check}" in p.stdout, out
    for page in ("account", "account-2fa-setup", "signin-2fa", "alerts", "monitors", "inbox"):
        for scheme in ("light", "dark"):
            assert (SHOTS / f"{page}-{scheme}.png").is_file(), page
