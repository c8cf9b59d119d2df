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
