"""Notification connectors and the notification inbox, against real PostgreSQL and Redis.

Webhook deliveries go to a receiver in the test, which checks the HMAC-SHA256 signature; the
inbox is filled by in_app connector tests. Retries with backoff are exercised by the alert tests
(test_alerts.py), where real events are delivered.
"""

import hashlib
import hmac
import json

import pytest

from ldg_api import Api
from ldg_receiver import Receiver, SmtpSink

pytestmark = pytest.mark.timeout(120)

SECRET = "s3cret-signing-key-0123456789"


@pytest.fixture
def server(ledgerd):
    return ledgerd(extra_ini={"analytics": {"webhook_timeout_ms": 2000, "webhook_backoff_ms": 100}})


def verify_signature(headers, body, secret=SECRET):
    ts = headers["X-Ledger-Timestamp"]
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Ledger-Signature", ""), want)


def test_webhook_connector_crud_and_test(server):
    api = Api(server.url)
    user = api.register()
    with Receiver() as rx:
        r = user.post("/api/v1/connectors", json={"name": "ops hook", "kind": "webhook",
                                                  "config": {"url": rx.url("/hook"), "secret": SECRET}})
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["kind"] == "webhook" and c["enabled"] is True and c["name"] == "ops hook"
        assert c["config"]["url"] == rx.url("/hook")
        assert c["config"]["has_secret"] is True and c["config"]["secret"] == "****" + SECRET[-4:]
        assert SECRET not in r.text
        r = user.get("/api/v1/connectors")
        assert r.status_code == 200 and r.json()["total"] == 1 and SECRET not in r.text
        assert user.get(f"/api/v1/connectors/{c['id']}").json() == c

        r = user.post(f"/api/v1/connectors/{c['id']}/test")
        assert r.status_code == 200, r.text
        assert r.json()["success"] is True and r.json()["status_code"] == 200
        reqs = rx.wait(1)
        method, path, headers, body, _ = reqs[0]
        assert method == "POST" and path == "/hook"
        assert headers["Content-Type"] == "application/json" and headers["X-Ledger-Event"] == "test"
        assert verify_signature(headers, body)
        assert not verify_signature(headers, body, secret="another-secret-of-length")
        doc = json.loads(body)
        assert doc["event"] == "test" and doc["data"]["connector_id"] == c["id"]

        # a failing receiver: the test reports it (one attempt) and the log has it
        rx.status = 500
        r = user.post(f"/api/v1/connectors/{c['id']}/test")
        assert r.status_code == 200 and r.json()["success"] is False and r.json()["status_code"] == 500
        assert len(rx.wait(2)) == 2
        d = user.get(f"/api/v1/connectors/{c['id']}/deliveries").json()
        assert [x["ok"] for x in d["deliveries"]] == [False, True]
        assert d["deliveries"][0]["status_code"] == 500 and d["deliveries"][0]["error"] == "HTTP 500"

        # PATCH: rename, disable, new secret (still masked)
        r = user.patch(f"/api/v1/connectors/{c['id']}", json={"name": "renamed", "enabled": False,
                                                               "config": {"secret": "z" * 20}})
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "renamed" and r.json()["enabled"] is False
        assert r.json()["config"]["secret"] == "****zzzz"

    # an unreachable receiver
    r = user.post("/api/v1/connectors", json={"name": "dead", "kind": "webhook",
                                              "config": {"url": "http://127.0.0.1:9/x"}})
    dead = r.json()
    r = user.post(f"/api/v1/connectors/{dead['id']}/test")
    assert r.status_code == 200 and r.json()["success"] is False and r.json()["error"]

    assert user.delete(f"/api/v1/connectors/{c['id']}").status_code == 204
    assert user.get(f"/api/v1/connectors/{c['id']}").status_code == 404


def test_connector_validation(server):
    user = Api(server.url).register()
    bad = [
        {"name": "x", "kind": "sms"},
        {"name": "x", "kind": "webhook"},
        {"name": "x", "kind": "webhook", "config": {"url": "ftp://example.com"}},
        {"name": "x", "kind": "webhook", "config": {"url": "gopher://example.com/hook"}},
        {"name": "x", "kind": "webhook", "config": {"url": "http://example.com", "secret": "short"}},
        {"name": "x", "kind": "email", "config": {"to": "not-an-address"}},
        {"name": "", "kind": "in_app"},
        {"kind": "in_app"},
    ]
    for body in bad:
        r = user.post("/api/v1/connectors", json=body)
        assert r.status_code == 422, (body, r.status_code, r.text)
    r = user.post("/api/v1/connectors", json={"name": "x", "kind": "webhook",
                                              "config": {"url": "ftp://example.com/hook"}})
    assert "only http:// and https://" in r.json()["detail"][0]["msg"]


def test_email_without_relay_is_skipped(server):
    user = Api(server.url).register()
    r = user.post("/api/v1/connectors", json={"name": "mail", "kind": "email",
                                              "config": {"to": ["a@example.com", "b@example.com"]}})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["config"]["to"] == ["a@example.com", "b@example.com"]
    r = user.post(f"/api/v1/connectors/{c['id']}/test")
    assert r.status_code == 200
    assert r.json()["skipped"] == 1 and r.json()["success"] is False
    assert "no SMTP relay" in r.json()["error"]


def test_email_through_a_relay(ledgerd):
    sink = SmtpSink()
    try:
        server = ledgerd(extra_ini={"analytics": {"smtp_host": "127.0.0.1", "smtp_port": sink.port,
                                                  "smtp_from": "alerts@ledger.test"}})
        user = Api(server.url).register()
        c = user.post("/api/v1/connectors", json={"name": "mail", "kind": "email",
                                                  "config": {"to": ["a@example.com", "b@example.com"]}}).json()
        r = user.post(f"/api/v1/connectors/{c['id']}/test")
        assert r.status_code == 200 and r.json()["success"] is True, r.text
        frm, rcpt, data = sink.wait(1)[0]
        assert frm == "alerts@ledger.test" and rcpt == ["a@example.com", "b@example.com"]
        assert "Subject: [Ledger] Test notification" in data and "To: a@example.com,b@example.com" in data
        d = user.get(f"/api/v1/connectors/{c['id']}/deliveries").json()["deliveries"]
        assert d[0]["ok"] is True
    finally:
        sink.close()


def test_inbox(server):
    api = Api(server.url)
    user = api.register()
    c = user.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
    assert c["config"] == {}
    assert user.get("/api/v1/notifications/unread-count").json() == {"unread_count": 0}
    for _ in range(3):
        r = user.post(f"/api/v1/connectors/{c['id']}/test")
        assert r.status_code == 200 and r.json()["success"] is True, r.text
    assert user.get("/api/v1/notifications/unread-count").json() == {"unread_count": 3}
    r = user.get("/api/v1/notifications")
    body = r.json()
    assert body["total"] == 3 and body["unread"] == 3
    n = body["notifications"]
    assert [x["kind"] for x in n] == ["test"] * 3 and n[0]["id"] > n[1]["id"] > n[2]["id"]
    assert n[0]["read"] is False and n[0]["data"]["connector_id"] == c["id"]

    r = user.post(f"/api/v1/notifications/{n[0]['id']}/read")
    assert r.status_code == 200 and r.json()["read"] is True and r.json()["read_at"]
    assert user.get("/api/v1/notifications/unread-count").json() == {"unread_count": 2}
    r = user.get("/api/v1/notifications", params={"unread_only": "true", "limit": 1})
    assert r.json()["total"] == 2 and len(r.json()["notifications"]) == 1
    assert user.delete(f"/api/v1/notifications/{n[1]['id']}").status_code == 204
    assert user.post(f"/api/v1/notifications/{n[1]['id']}/read").status_code == 404
    r = user.post("/api/v1/notifications/read-all")
    assert r.status_code == 200 and r.json() == {"success": True, "updated": 1}
    assert user.get("/api/v1/notifications/unread-count").json() == {"unread_count": 0}
    assert user.get("/api/v1/notifications").json()["total"] == 2
    assert user.get("/api/v1/notifications", params={"limit": 0}).status_code == 422


def test_ownership(server):
    api = Api(server.url)
    alice, bob = api.register(), api.register()
    c = alice.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
    alice.post(f"/api/v1/connectors/{c['id']}/test")
    note = alice.get("/api/v1/notifications").json()["notifications"][0]
    project = alice.create_project()
    key = api.with_key(alice.create_key(project["project_id"])["full_key"])
    cid, nid = c["id"], note["id"]
    rows = [
        ("GET", f"/api/v1/connectors/{cid}", None),
        ("PATCH", f"/api/v1/connectors/{cid}", {"name": "x"}),
        ("DELETE", f"/api/v1/connectors/{cid}", None),
        ("POST", f"/api/v1/connectors/{cid}/test", None),
        ("GET", f"/api/v1/connectors/{cid}/deliveries", None),
        ("POST", f"/api/v1/notifications/{nid}/read", None),
        ("DELETE", f"/api/v1/notifications/{nid}", None),
    ]
    for method, path, body in rows:
        assert bob.request(method, path, json=body).status_code == 403, (method, path)
        missing = path.replace(f"/{cid}", "/999999999").replace(f"/{nid}", "/999999999")
        assert bob.request(method, missing, json=body).status_code == 404, (method, missing)
        assert key.request(method, path, json=body).status_code == 403, (method, path)
        assert api.request(method, path, json=body).status_code == 401, (method, path)
    for method, path in [("GET", "/api/v1/connectors"), ("POST", "/api/v1/connectors"),
                         ("GET", "/api/v1/notifications"), ("GET", "/api/v1/notifications/unread-count"),
                         ("POST", "/api/v1/notifications/read-all")]:
        assert key.request(method, path, json={}).status_code == 403, (method, path)
        assert api.request(method, path, json={}).status_code == 401, (method, path)
    # bob sees none of alice's things
    assert bob.get("/api/v1/connectors").json()["total"] == 0
    assert bob.get("/api/v1/notifications").json()["total"] == 0
    assert alice.get(f"/api/v1/connectors/{cid}").status_code == 200


def test_regression_reaches_inbox(server):
    import datetime
    import time

    api = Api(server.url)
    user = api.register()
    pid = user.create_project()["project_id"]
    sdk = api.with_key(user.create_key(pid)["full_key"])

    def ingest():
        ts = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        r = sdk.post("/api/v1/ingest/single", json={
            "timestamp": ts, "level": "error", "log_type": "exception", "message": "it came back",
            "error_type": "ComebackError", "error_message": "it came back",
            "stack_trace": 'Traceback (most recent call last):\n  File "/app/x.py", line 3, in run\nComebackError'})
        assert r.status_code == 202, r.text

    def groups():
        return user.get("/api/v1/error-groups", params={"project_id": pid}).json().get("groups", [])

    def wait(fn, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            v = fn()
            if v:
                return v
            time.sleep(0.2)
        return fn()

    ingest()
    g = wait(groups)[0]
    r = user.patch(f"/api/v1/error-groups/{g['id']}/status", params={"project_id": pid}, json={"status": "resolved"})
    assert r.status_code == 200, r.text
    ingest()
    notes = wait(lambda: [n for n in user.get("/api/v1/notifications").json()["notifications"]
                          if n["kind"] == "error_regression"])
    assert len(notes) == 1, notes
    n = notes[0]
    assert n["project_id"] == pid and n["data"]["group_id"] == g["id"] and n["title"] == "Error regressed: ComebackError"


def test_retention_cleanup(ledgerd, sql):
    import time

    server = ledgerd(extra_ini={"analytics": {"notification_retention_days": 1, "monitor_history_days": 1,
                                              "notification_cleanup_interval_ms": 1000}})
    user = Api(server.url).register()
    c = user.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
    for _ in range(2):
        assert user.post(f"/api/v1/connectors/{c['id']}/test").json()["success"] is True
    new, old = [n["id"] for n in user.get("/api/v1/notifications").json()["notifications"]]  # newest first
    sql("UPDATE notifications SET created_at = now() - interval '2 days' WHERE id = %s", old)
    end = time.time() + 15
    while time.time() < end:
        ids = [n["id"] for n in user.get("/api/v1/notifications").json()["notifications"]]
        if ids == [new]:
            break
        time.sleep(0.3)
    assert ids == [new]
