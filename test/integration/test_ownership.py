"""Tenancy (decisions D2): two accounts, alice and bob, each with a project, an API key, a panel and
notification preferences. Neither can read or change the other's data through any endpoint, and
API-key principals cannot call account-level endpoints at all."""

import pytest

from ldg_api import Api, unique

PANELS = "/api/v1/dashboard/panels"
PREFS = "/api/v1/notifications/preferences"
KEY_403 = "API keys cannot access account-level endpoints; sign in to the dashboard"


class Tenant:
    def __init__(self, api, label):
        self.s = api.register()
        self.label = label
        self.project = self.s.create_project(name=f"{label} project", slug=unique(label + "-"))
        self.pid = self.project["project_id"]
        self.key = self.s.create_key(self.pid, name=f"{label} key")
        self.sdk = api.with_key(self.key["full_key"])
        r = self.s.post(PANELS, json={"name": f"{label} panel", "index": 0, "project_id": str(self.pid),
                                      "period": "today", "type": "errors"})
        assert r.status_code == 201, r.text
        self.panel = r.json()
        r = self.s.put(PREFS, json={"projects": {str(self.pid): {"levels": ["error"]}}})
        assert r.status_code == 200, r.text
        self.prefs = r.json()

    def snapshot(self):
        """Everything the tenant can see of its own data (checked unchanged at the end)."""
        return {
            "projects": self.s.get("/api/v1/projects").json(),
            "keys": self.s.get(f"/api/v1/projects/{self.pid}/api-keys").json(),
            "panels": self.s.get(PANELS).json(),
            "prefs": self.s.get(PREFS).json(),
            "quota": self.s.get(f"/api/v1/projects/{self.pid}/quota").json()["daily_quota"],
        }


@pytest.fixture
def tenants(ledgerd):
    srv = ledgerd()
    api = Api(srv.url)
    return api, Tenant(api, "alice"), Tenant(api, "bob")


def panel_body(project):
    return {"name": "intruder", "index": 1, "project_id": str(project), "period": "today", "type": "logs"}


@pytest.mark.parametrize("direction", ["alice->bob", "bob->alice"])
def test_no_cross_tenant_access(tenants, direction):
    api, alice, bob = tenants
    actor, victim = (alice, bob) if direction == "alice->bob" else (bob, alice)
    before = victim.snapshot()
    s, vp = actor.s, victim.pid

    def expect(r, status, detail):
        assert (r.status_code, r.json()) == (status, {"detail": detail}), (r.request.method, r.request.url, r.text)

    # Reads.
    expect(s.get(f"/api/v1/projects/{victim.project['slug']}"), 404, f"Project '{victim.project['slug']}' not found")
    expect(s.get(f"/api/v1/projects/{vp}/quota"), 403, "You don't have permission to view this project")
    expect(s.get(f"/api/v1/projects/{vp}/api-keys"), 403, "You don't have permission to view API keys for this project")
    listed = s.get("/api/v1/projects").json()["projects"]
    assert [p["project_id"] for p in listed] == [actor.pid]
    panels = s.get(PANELS).json()["panels"]
    assert [p["id"] for p in panels] == [actor.panel["id"]]
    assert list(s.get(PREFS).json()["projects"]) == [str(actor.pid)]

    # Writes.
    expect(s.post(f"/api/v1/projects/{vp}/api-keys", json={"name": "backdoor"}), 403,
           "You don't have permission to create API keys for this project")
    expect(s.delete(f"/api/v1/api-keys/{victim.key['key_id']}"), 403, "You don't have permission to revoke this API key")
    for body in ({"name": "pwned"}, {"daily_quota": 1000}, {"retention_days": 1}):
        expect(s.patch(f"/api/v1/projects/{vp}", json=body), 403, "You don't have permission to modify this project")
    expect(s.post(PANELS, json=panel_body(vp)), 403, "You don't have permission to use this project")
    expect(s.put(f"{PANELS}/{actor.panel['id']}", json=panel_body(vp)), 403,
           "You don't have permission to use this project")
    expect(s.put(f"{PANELS}/{victim.panel['id']}", json=panel_body(actor.pid)), 404,
           f"Panel {victim.panel['id']} not found")
    expect(s.delete(f"{PANELS}/{victim.panel['id']}"), 404, f"Panel {victim.panel['id']} not found")
    expect(s.put(PREFS, json={"projects": {str(vp): {"enabled": False}}}), 403,
           "You don't have permission to use this project")
    expect(s.put(PREFS, json={"projects": {str(actor.pid): {}, str(vp): {}}}), 403,
           "You don't have permission to use this project")

    # The actor's key sees its own project only.
    settings = actor.sdk.get("/api/v1/settings").json()
    assert (settings["project_id"], settings["project_slug"]) == (actor.pid, actor.project["slug"])

    # Nothing of the victim's changed, and its key still works.
    assert victim.snapshot() == before
    assert victim.sdk.get("/api/v1/settings").json()["project_id"] == victim.pid
    # And the actor's own data is intact (its failed PUTs changed nothing).
    assert actor.s.get(PANELS).json()["panels"] == [actor.panel]
    assert actor.s.get(PREFS).json() == actor.prefs


def test_api_keys_cannot_call_account_endpoints(tenants):
    api, alice, bob = tenants
    sdk = alice.sdk
    pid, slug = alice.pid, alice.project["slug"]
    calls = [
        ("GET", "/api/v1/projects", None),
        ("POST", "/api/v1/projects", {"name": "x", "slug": unique("k-")}),
        ("GET", f"/api/v1/projects/{slug}", None),
        ("PATCH", f"/api/v1/projects/{pid}", {"daily_quota": 1000}),
        ("GET", f"/api/v1/projects/{pid}/quota", None),
        ("GET", f"/api/v1/projects/{pid}/api-keys", None),
        ("POST", f"/api/v1/projects/{pid}/api-keys", {"name": "minted by a key"}),
        ("DELETE", f"/api/v1/api-keys/{alice.key['key_id']}", None),
        ("GET", PANELS, None),
        ("POST", PANELS, panel_body(pid)),
        ("PUT", f"{PANELS}/{alice.panel['id']}", panel_body(pid)),
        ("DELETE", f"{PANELS}/{alice.panel['id']}", None),
        ("GET", PREFS, None),
        ("PUT", PREFS, {"enabled": False}),
        ("GET", "/api/v1/accounts/me", None),
        ("PATCH", "/api/v1/accounts/me/name", {"name": "key user"}),
        ("POST", "/api/v1/accounts/me/password", {"old_password": "Sup3rSecret!", "new_password": "0ther!Secret"}),
        ("POST", "/api/v1/accounts/logout", None),
    ]
    before = alice.snapshot()
    for method, path, body in calls:
        for client in (sdk, api.with_bearer(alice.key["full_key"])):
            r = client.request(method, path, json=body)
            assert (r.status_code, r.json()) == (403, {"detail": KEY_403}), (method, path, r.text)
    # Nothing changed, the key still works where keys belong, and the session is still alive.
    assert alice.snapshot() == before
    assert sdk.get("/api/v1/settings").status_code == 200
    assert alice.s.get("/api/v1/accounts/me").status_code == 200
    api.login(alice.s.email)  # the password is unchanged


def test_alerting_endpoints(tenants):
    """Connectors, inbox, alert rules and history, maintenance windows, monitors: another account's
    object → 403, a missing one → 404, an API key → 403, no credentials → 401."""
    api, alice, bob = tenants
    s, pid = alice.s, alice.pid
    conn = s.post("/api/v1/connectors", json={"name": "inbox", "kind": "in_app"}).json()
    assert s.post(f"/api/v1/connectors/{conn['id']}/test").json()["success"] is True
    note = s.get("/api/v1/notifications").json()["notifications"][0]
    rule = s.post("/api/v1/alerts/rules", json={"project_id": pid, "name": "r", "metric": "error_count",
                                                "comparator": "gt", "threshold": 1e9}).json()
    win = s.post("/api/v1/maintenance-windows", json={"project_id": pid, "starts_at": "2030-01-01T00:00:00Z",
                                                      "ends_at": "2030-01-02T00:00:00Z"}).json()
    mon = s.post("/api/v1/monitors", json={"project_id": pid, "kind": "heartbeat", "name": "cron"}).json()
    conn_403 = "You don't have permission to use this connector"
    note_403 = "You don't have permission to access this notification"
    proj_403 = "You don't have permission to access this project"
    M = 999999999
    # (method, path, body, 403 text for bob, path of a missing object, its 404 text)
    rows = [
        ("GET", f"/api/v1/connectors/{conn['id']}", None, conn_403, f"/api/v1/connectors/{M}", "Connector not found"),
        ("PATCH", f"/api/v1/connectors/{conn['id']}", {"name": "x"}, conn_403, f"/api/v1/connectors/{M}",
         "Connector not found"),
        ("POST", f"/api/v1/connectors/{conn['id']}/test", None, conn_403, f"/api/v1/connectors/{M}/test",
         "Connector not found"),
        ("GET", f"/api/v1/connectors/{conn['id']}/deliveries", None, conn_403, f"/api/v1/connectors/{M}/deliveries",
         "Connector not found"),
        ("DELETE", f"/api/v1/connectors/{conn['id']}", None, conn_403, f"/api/v1/connectors/{M}",
         "Connector not found"),
        ("POST", f"/api/v1/notifications/{note['id']}/read", None, note_403, f"/api/v1/notifications/{M}/read",
         "Notification not found"),
        ("DELETE", f"/api/v1/notifications/{note['id']}", None, note_403, f"/api/v1/notifications/{M}",
         "Notification not found"),
        ("GET", f"/api/v1/alerts/rules/{rule['id']}", None, proj_403, f"/api/v1/alerts/rules/{M}",
         "Alert rule not found"),
        ("PATCH", f"/api/v1/alerts/rules/{rule['id']}", {"threshold": 1}, proj_403, f"/api/v1/alerts/rules/{M}",
         "Alert rule not found"),
        ("POST", f"/api/v1/alerts/rules/{rule['id']}/disable", None, proj_403, f"/api/v1/alerts/rules/{M}/disable",
         "Alert rule not found"),
        ("POST", f"/api/v1/alerts/rules/{rule['id']}/enable", None, proj_403, f"/api/v1/alerts/rules/{M}/enable",
         "Alert rule not found"),
        ("DELETE", f"/api/v1/alerts/rules/{rule['id']}", None, proj_403, f"/api/v1/alerts/rules/{M}",
         "Alert rule not found"),
        ("GET", f"/api/v1/alerts/history?project_id={pid}", None, proj_403, f"/api/v1/alerts/history?project_id={M}",
         "Project not found"),
        ("GET", f"/api/v1/alerts/rules?project_id={pid}", None, proj_403, f"/api/v1/alerts/rules?project_id={M}",
         "Project not found"),
        ("POST", "/api/v1/alerts/rules", {"project_id": pid, "name": "x", "metric": "log_volume", "comparator": "gt",
                                          "threshold": 1}, proj_403, None, None),
        ("GET", f"/api/v1/maintenance-windows?project_id={pid}", None, proj_403,
         f"/api/v1/maintenance-windows?project_id={M}", "Project not found"),
        ("POST", "/api/v1/maintenance-windows", {"project_id": pid, "starts_at": "2030-01-01T00:00:00Z",
                                                 "ends_at": "2030-01-02T00:00:00Z"}, proj_403, None, None),
        ("DELETE", f"/api/v1/maintenance-windows/{win['id']}", None, proj_403, f"/api/v1/maintenance-windows/{M}",
         "Maintenance window not found"),
        ("GET", f"/api/v1/monitors?project_id={pid}", None, proj_403, f"/api/v1/monitors?project_id={M}",
         "Project not found"),
        ("POST", "/api/v1/monitors", {"project_id": pid, "kind": "heartbeat", "name": "x"}, proj_403, None, None),
        ("GET", f"/api/v1/monitors/{mon['id']}", None, proj_403, f"/api/v1/monitors/{M}", "Monitor not found"),
        ("GET", f"/api/v1/monitors/{mon['id']}/checks", None, proj_403, f"/api/v1/monitors/{M}/checks",
         "Monitor not found"),
        ("PATCH", f"/api/v1/monitors/{mon['id']}", {"name": "x"}, proj_403, f"/api/v1/monitors/{M}",
         "Monitor not found"),
        ("DELETE", f"/api/v1/monitors/{mon['id']}", None, proj_403, f"/api/v1/monitors/{M}", "Monitor not found"),
    ]
    for method, path, body, forbidden, missing, not_found in rows:
        r = bob.s.request(method, path, json=body)
        assert (r.status_code, r.json()) == (403, {"detail": forbidden}), (method, path, r.text)
        if missing:
            r = bob.s.request(method, missing, json=body)
            assert (r.status_code, r.json()) == (404, {"detail": not_found}), (method, missing, r.text)
        for client in (alice.sdk, api.with_bearer(alice.key["full_key"])):
            r = client.request(method, path, json=body)
            assert (r.status_code, r.json()) == (403, {"detail": KEY_403}), (method, path, r.text)
        assert api.request(method, path, json=body).status_code == 401, (method, path)
    for method, path in [("GET", "/api/v1/connectors"), ("POST", "/api/v1/connectors"),
                         ("GET", "/api/v1/notifications"), ("GET", "/api/v1/notifications/unread-count"),
                         ("POST", "/api/v1/notifications/read-all"), ("GET", "/api/v1/alerts/rules"),
                         ("GET", "/api/v1/monitors"), ("POST", "/api/v1/accounts/2fa/setup"),
                         ("POST", "/api/v1/accounts/2fa/verify"), ("POST", "/api/v1/accounts/2fa/disable"),
                         ("GET", "/api/v1/accounts/2fa/status")]:
        r = alice.sdk.request(method, path, json={})
        assert (r.status_code, r.json()) == (403, {"detail": KEY_403}), (method, path)
        assert api.request(method, path, json={}).status_code == 401, (method, path)
    # bob's own lists stay empty; alice's objects are untouched
    assert bob.s.get("/api/v1/connectors").json()["total"] == 0
    assert bob.s.get("/api/v1/monitors").json() == []
    assert bob.s.get("/api/v1/alerts/rules").json()["total"] == 0
    assert s.get(f"/api/v1/alerts/rules/{rule['id']}").json()["enabled"] is True
    assert s.get(f"/api/v1/monitors/{mon['id']}").json()["name"] == "cron"
    assert s.get(f"/api/v1/connectors/{conn['id']}").json()["name"] == "inbox"
    # public routes: the ping works without credentials, with any token shape answered 404
    assert api.post(f"/api/v1/monitors/{mon['token']}/ping").status_code == 204
    assert api.post("/api/v1/monitors/ffffffffffffffffffffffffffffffff/ping").status_code == 404
