"""Heartbeat and http monitors, against real servers.

The checker runs every second here ([analytics] monitor_check_interval_ms); monitor intervals keep
their 10 s floor, so a heartbeat goes down about 10 s after its last ping. The http monitor checks
a local server in the test that starts failing. State changes reach an in_app connector (inbox)
and a webhook receiver.
"""

import json
import time

import pytest

from ldg_api import Api
from ldg_receiver import Receiver

pytestmark = pytest.mark.timeout(180)

MON = "/api/v1/monitors"


@pytest.fixture
def server(ledgerd):
    return ledgerd(extra_ini={"analytics": {"monitor_check_interval_ms": 1000}})


def wait_for(fn, timeout=15.0, step=0.2):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def test_heartbeat_up_late_down_up(server):
    api = Api(server.url)
    user = api.register()
    pid = user.create_project()["project_id"]
    inbox = user.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
    r = user.post(MON, json={"project_id": pid, "kind": "heartbeat", "name": "nightly job", "interval_s": 10,
                             "grace_s": 2, "connector_ids": [inbox["id"]]})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["state"] == "unknown" and len(m["token"]) == 32 and m["ping_url"] == f"{MON}/{m['token']}/ping"
    assert m["interval_s"] == 10 and m["grace_s"] == 2 and m["timeout_s"] == 10 and m["expected_status"] == 200

    def state():
        return user.get(f"{MON}/{m['id']}").json()["state"]

    # ping: public, 204; unknown → up (notified)
    r = api.post(f"{MON}/{m['token']}/ping")
    assert r.status_code == 204 and r.content == b""
    assert state() == "up" and user.get(f"{MON}/{m['id']}").json()["last_ping_at"]
    assert api.post(f"{MON}/{'0' * 32}/ping").status_code == 404
    assert api.post(f"{MON}/not-a-token/ping").status_code == 404
    assert api.get(f"{MON}/{m['token']}/ping").status_code == 204  # cron-friendly GET

    # late: still up within interval + grace, down after it (notified once)
    t0 = time.time()
    time.sleep(6)
    assert state() == "up"
    assert wait_for(lambda: state() == "down", 12)
    assert time.time() - t0 >= 11
    assert wait_for(lambda: len(user.get("/api/v1/notifications").json()["notifications"]) == 2, 5)
    kinds = [n["kind"] for n in user.get("/api/v1/notifications").json()["notifications"]]
    assert kinds == ["monitor_down", "monitor_up"], kinds

    # a ping brings it back up (notified)
    assert api.post(f"{MON}/{m['token']}/ping").status_code == 204
    assert state() == "up"
    # the notification is delivered after the 204 (asynchronously)
    inbox = lambda: user.get("/api/v1/notifications").json()["notifications"]
    assert wait_for(lambda: len(inbox()) == 3, 5)
    notes = inbox()
    assert [n["kind"] for n in notes] == ["monitor_up", "monitor_down", "monitor_up"]
    assert notes[0]["data"]["previous_state"] == "down" and notes[0]["data"]["monitor_id"] == m["id"]


def test_http_monitor_against_a_failing_server(server, sql):
    api = Api(server.url)
    user = api.register()
    pid = user.create_project()["project_id"]
    with Receiver() as site, Receiver() as hook:
        conn = user.post("/api/v1/connectors", json={"name": "hook", "kind": "webhook",
                                                     "config": {"url": hook.url("/m")}}).json()
        r = user.post(MON, json={"project_id": pid, "kind": "http", "name": "site",
                                 "target_url": site.url("/health"), "interval_s": 10, "timeout_s": 1,
                                 "connector_ids": [conn["id"]]})
        assert r.status_code == 201, r.text
        m = r.json()

        def get():
            return user.get(f"{MON}/{m['id']}").json()

        assert wait_for(lambda: get()["state"] == "up", 10)
        cur = get()
        assert cur["last_status_code"] == 200 and cur["last_latency_ms"] is not None
        assert cur["uptime_percent"] == 100 and cur["checks_total"] == 1
        assert site.requests[0][0] == "GET" and site.requests[0][1] == "/health"
        assert wait_for(lambda: len(hook.requests) == 1, 5)
        assert json.loads(hook.requests[0][3])["event"] == "monitor_up"

        # the site starts failing: the next check (due after interval_s) finds it down
        site.status = 503
        sql("UPDATE monitors SET last_check_at = now() - interval '1 hour' WHERE id = %s", m["id"])
        assert wait_for(lambda: get()["state"] == "down", 10)
        cur = get()
        assert cur["last_status_code"] == 503 and "expected 200" in cur["last_error"]
        assert cur["uptime_percent"] == 50
        assert wait_for(lambda: len(hook.requests) == 2, 5)
        doc = json.loads(hook.requests[1][3])
        assert doc["event"] == "monitor_down" and doc["data"]["status_code"] == 503

        # a server that does not answer in time is down too (timeout), and no new notification
        site.status, site.delay = 200, 1.5
        sql("UPDATE monitors SET last_check_at = now() - interval '1 hour' WHERE id = %s", m["id"])
        assert wait_for(lambda: get()["checks_total"] == 3, 10)
        assert get()["state"] == "down" and "timed out" in get()["last_error"]
        time.sleep(1)
        assert len(hook.requests) == 2

        checks = user.get(f"{MON}/{m['id']}/checks").json()
        assert checks["total"] == 3 and [c["ok"] for c in checks["checks"]] == [False, False, True]
        assert checks["uptime_percent"] == pytest.approx(33.33)

    # list (bare array), PATCH, DELETE
    r = user.get(MON, params={"project_id": pid})
    assert r.status_code == 200 and isinstance(r.json(), list) and [x["id"] for x in r.json()] == [m["id"]]
    r = user.patch(f"{MON}/{m['id']}", json={"name": "renamed", "enabled": False, "interval_s": 300})
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["interval_s"] == 300
    assert user.delete(f"{MON}/{m['id']}").status_code == 204
    assert user.get(f"{MON}/{m['id']}").status_code == 404


def test_monitor_validation_and_ownership(server):
    api = Api(server.url)
    alice, bob = api.register(), api.register()
    pid = alice.create_project()["project_id"]
    base = {"project_id": pid, "kind": "http", "name": "x", "target_url": "http://127.0.0.1:9/"}
    for patch in ({"kind": "tcp"}, {"target_url": None}, {"target_url": "ftp://example.com"},
                  {"interval_s": 5}, {"timeout_s": 61}, {"expected_status": 99}, {"name": ""}):
        r = alice.post(MON, json={**base, **patch})
        assert r.status_code == 422, (patch, r.text)
    assert alice.post(MON, json={**base, "project_id": 999999999}).status_code == 404
    assert bob.post(MON, json=base).status_code == 403
    m = alice.post(MON, json={**base, "kind": "heartbeat", "target_url": None}).json()
    key = api.with_key(alice.create_key(alice.create_project()["project_id"])["full_key"])
    for method, path, body in [("GET", f"{MON}/{m['id']}", None), ("PATCH", f"{MON}/{m['id']}", {"name": "y"}),
                               ("DELETE", f"{MON}/{m['id']}", None), ("GET", f"{MON}/{m['id']}/checks", None)]:
        assert bob.request(method, path, json=body).status_code == 403, (method, path)
        assert bob.request(method, path.replace(str(m["id"]), "999999999"), json=body).status_code == 404
        assert key.request(method, path, json=body).status_code == 403, (method, path)
        assert api.request(method, path, json=body).status_code == 401, (method, path)
    assert bob.get(MON, params={"project_id": pid}).status_code == 403
    assert bob.get(MON, params={"project_id": 999999999}).status_code == 404
    assert bob.get(MON).json() == []
    assert key.get(MON).status_code == 403
    assert alice.get(f"{MON}/{m['id']}").status_code == 200
