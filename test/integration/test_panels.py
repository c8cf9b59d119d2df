"""Dashboard panels (reference §3.4) and notification preferences (§3.8 N1/N2), with decisions D2:
panels and preferences may only name the caller's own projects."""

import json
import re
import threading

import pytest

from conftest import scaled
from ldg_api import Api, Session, detail_422

PANEL_FIELDS = ["id", "name", "index", "project_id", "period", "periodFrom", "periodTo", "type", "endpoint"]
PANEL_ID = re.compile(r"^panel_[0-9a-f]{16}$")
PANELS = "/api/v1/dashboard/panels"
PREFS = "/api/v1/notifications/preferences"


def panel_body(project, **kw):
    body = {"name": "Errors today", "index": 0, "project_id": str(project), "period": "today", "type": "errors"}
    body.update(kw)
    return {k: v for k, v in body.items() if v is not ...}


# ------------------------------------------------------------------------------------------------
# Panels
# ------------------------------------------------------------------------------------------------


def test_panels_crud(ledgerd, sql):
    srv = ledgerd()
    s = Api(srv.url).register()
    pid = s.create_project()["project_id"]

    r = s.get(PANELS)
    assert r.status_code == 200 and r.json() == {"panels": [], "total": 0}

    r = s.post(PANELS, json=panel_body(pid, endpoint=""))
    assert r.status_code == 201, r.text
    p1 = r.json()
    assert list(p1) == PANEL_FIELDS and PANEL_ID.match(p1["id"])
    assert p1 == {"id": p1["id"], "name": "Errors today", "index": 0, "project_id": str(pid), "period": "today",
                  "periodFrom": None, "periodTo": None, "type": "errors", "endpoint": None}
    r = s.post(PANELS, json=panel_body(pid, name="Range", index=5, period=None, periodFrom="2024-01-15T00:00:00Z",
                                      periodTo="2024-01-16T00:00:00Z", type="metrics", endpoint="/api/v1/x"))
    assert r.status_code == 201, r.text
    p2 = r.json()
    assert p2["period"] is None and (p2["periodFrom"], p2["periodTo"]) == ("2024-01-15T00:00:00Z",
                                                                           "2024-01-16T00:00:00Z")
    assert (p2["type"], p2["endpoint"], p2["index"]) == ("metrics", "/api/v1/x", 5) and p2["id"] != p1["id"]
    p3 = s.post(PANELS, json=panel_body(pid, name="Logs", index=1, type="logs", period="currentYear")).json()

    r = s.get(PANELS)
    body = r.json()
    assert list(body) == ["panels", "total"] and body == {"panels": [p1, p2, p3], "total": 3}
    assert all(list(p) == PANEL_FIELDS for p in body["panels"])

    # PUT replaces everything but the id; order is kept.
    r = s.put(f"{PANELS}/{p2['id']}", json=panel_body(pid, name="Now weekly", index=9, period="currentWeek"))
    assert r.status_code == 200, r.text
    p2b = r.json()
    assert p2b == {"id": p2["id"], "name": "Now weekly", "index": 9, "project_id": str(pid), "period": "currentWeek",
                   "periodFrom": None, "periodTo": None, "type": "errors", "endpoint": None}
    assert s.get(PANELS).json()["panels"] == [p1, p2b, p3]

    r = s.delete(f"{PANELS}/{p1['id']}")
    assert r.status_code == 200
    assert r.json() == {"success": True, "message": f"Panel {p1['id']} deleted successfully"}
    assert s.get(PANELS).json() == {"panels": [p2b, p3], "total": 2}

    for method in (s.delete, lambda u: s.put(u, json=panel_body(pid))):
        r = method(f"{PANELS}/{p1['id']}")
        assert r.status_code == 404 and r.json() == {"detail": f"Panel {p1['id']} not found"}
    r = s.delete(f"{PANELS}/panel_nope")
    assert r.status_code == 404 and r.json() == {"detail": "Panel panel_nope not found"}
    r = s.delete(f"{PANELS}/%ff%fe")  # not UTF-8: cannot be an id, never reaches PostgreSQL
    assert r.status_code == 404

    # Stored as one JSONB array per account.
    ((stored,),) = sql("SELECT panels FROM user_dashboards WHERE user_id = %s", s.account_id)
    assert [p["id"] for p in stored] == [p2["id"], p3["id"]]


def test_panel_validation(ledgerd):
    srv = ledgerd()
    s = Api(srv.url).register()
    pid = s.create_project()["project_id"]

    rules = [
        (dict(period=None), "Value error, Either 'period' or both 'periodFrom' and 'periodTo' must be provided"),
        (dict(period=None, periodFrom="2024-01-01"),
         "Value error, Either 'period' or both 'periodFrom' and 'periodTo' must be provided"),
        (dict(periodFrom="2024-01-01", periodTo="2024-01-02"),
         "Value error, Cannot use both 'period' and 'periodFrom'/'periodTo' parameters"),
        (dict(periodTo="2024-01-02"), "Value error, Both 'periodFrom' and 'periodTo' must be provided together"),
    ]
    for kw, msg in rules:
        d = detail_422(s.post(PANELS, json=panel_body(pid, **kw)))
        assert (d["type"], d["loc"], d["msg"]) == ("value_error", ["body"], msg), kw

    cases = [
        (dict(name=...), "name", "missing"),
        (dict(name=""), "name", "string_too_short"),
        (dict(name="n" * 256), "name", "string_too_long"),
        (dict(index=-1), "index", "greater_than_equal"),
        (dict(index="x"), "index", "int_parsing"),
        (dict(index=...), "index", "missing"),
        (dict(project_id=7), "project_id", "string_type"),
        (dict(project_id=""), "project_id", "string_too_short"),
        (dict(period="yesterday"), "period", "enum"),
        (dict(type="pie"), "type", "enum"),
        (dict(type=...), "type", "missing"),
        (dict(endpoint=5), "endpoint", "string_type"),
        (dict(period=None, periodFrom="x" * 101, periodTo="y"), "periodFrom", "string_too_long"),
    ]
    for kw, field, typ in cases:
        d = detail_422(s.post(PANELS, json=panel_body(pid, **kw)))
        assert (d["type"], d["loc"]) == (typ, ["body", field]), kw
    d = detail_422(s.post(PANELS, json=panel_body(pid, period="yesterday")))
    assert d["msg"] == ("Input should be 'today', 'last7days', 'last30days', 'currentWeek', 'currentMonth' or "
                        "'currentYear'")
    d = detail_422(s.post(PANELS, json=panel_body(pid, type="pie")))
    assert d["msg"] == "Input should be 'logs', 'errors' or 'metrics'"

    # PUT validates the same way, before looking for the panel.
    p = s.post(PANELS, json=panel_body(pid)).json()
    d = detail_422(s.put(f"{PANELS}/{p['id']}", json=panel_body(pid, period=None)))
    assert d["type"] == "value_error"
    d = detail_422(s.put(f"{PANELS}/panel_missing", json=panel_body(pid, type="pie")))
    assert d["type"] == "enum"
    assert s.get(PANELS).json() == {"panels": [p], "total": 1}


def test_panel_project_must_be_owned(ledgerd):
    srv = ledgerd()
    api = Api(srv.url)
    s, other = api.register(), api.register()
    mine = s.create_project()["project_id"]
    theirs = other.create_project()["project_id"]

    for project in ("99999999", "abc", "-1", "1.5"):
        r = s.post(PANELS, json=panel_body(project))
        assert r.status_code == 404 and r.json() == {"detail": "Project not found"}, project
    r = s.post(PANELS, json=panel_body(theirs))
    assert r.status_code == 403 and r.json() == {"detail": "You don't have permission to use this project"}
    assert s.get(PANELS).json()["total"] == 0

    p = s.post(PANELS, json=panel_body(mine)).json()
    r = s.put(f"{PANELS}/{p['id']}", json=panel_body(theirs, name="hijack"))
    assert r.status_code == 403
    r = s.put(f"{PANELS}/{p['id']}", json=panel_body("99999999"))
    assert r.status_code == 404 and r.json() == {"detail": "Project not found"}
    assert s.get(PANELS).json()["panels"] == [p]


def test_panel_cap(ledgerd):
    srv = ledgerd(extra_ini={"auth": {"max_panels": 2}})
    s = Api(srv.url).register()
    pid = s.create_project()["project_id"]
    for i in range(2):
        assert s.post(PANELS, json=panel_body(pid, index=i)).status_code == 201
    r = s.post(PANELS, json=panel_body(pid, index=2))
    assert r.status_code == 400
    assert r.json() == {"detail": "Panel limit reached: a dashboard can have at most 2 panels"}
    p = s.get(PANELS).json()["panels"]
    assert len(p) == 2
    # Replacing stays possible at the cap; deleting makes room.
    assert s.put(f"{PANELS}/{p[0]['id']}", json=panel_body(pid, name="r")).status_code == 200
    assert s.delete(f"{PANELS}/{p[1]['id']}").status_code == 200
    assert s.post(PANELS, json=panel_body(pid)).status_code == 201


def test_concurrent_panel_changes_are_not_lost(ledgerd):
    srv = ledgerd()
    s = Api(srv.url).register()
    pid = s.create_project()["project_id"]
    seed = [s.post(PANELS, json=panel_body(pid, name=f"seed{i}")).json() for i in range(10)]
    statuses = []

    def clone():
        return Session(s.base, s.body, s.email, s.password)

    def add(i):
        statuses.append(clone().post(PANELS, json=panel_body(pid, name=f"new{i}", index=i)).status_code)

    def delete(p):
        statuses.append(clone().delete(f"{PANELS}/{p['id']}").status_code)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(15)]
    threads += [threading.Thread(target=delete, args=(p,)) for p in seed[:5]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))
    assert sorted(statuses) == [200] * 5 + [201] * 15
    names = sorted(p["name"] for p in s.get(PANELS).json()["panels"])
    assert names == sorted([f"new{i}" for i in range(15)] + [f"seed{i}" for i in range(5, 10)])


def test_panels_are_per_account(ledgerd):
    srv = ledgerd()
    api = Api(srv.url)
    s, other = api.register(), api.register()
    p = s.post(PANELS, json=panel_body(s.create_project()["project_id"])).json()
    assert other.get(PANELS).json() == {"panels": [], "total": 0}
    r = other.delete(f"{PANELS}/{p['id']}")
    assert r.status_code == 404 and r.json() == {"detail": f"Panel {p['id']} not found"}
    r = other.put(f"{PANELS}/{p['id']}", json=panel_body(other.create_project()["project_id"]))
    assert r.status_code == 404
    assert s.get(PANELS).json()["panels"] == [p]


# ------------------------------------------------------------------------------------------------
# Notification preferences
# ------------------------------------------------------------------------------------------------


def test_preferences_roundtrip(ledgerd, sql):
    srv = ledgerd()
    s = Api(srv.url).register()
    p1 = s.create_project()["project_id"]
    p2 = s.create_project()["project_id"]

    r = s.get(PREFS)
    assert r.status_code == 200 and r.json() == {"enabled": True, "projects": {}}

    body = {"enabled": False, "projects": {
        str(p1): {"enabled": True, "levels": ["error", "critical"], "types": ["exception"]},
        f" 0{p2} ": {},  # int() semantics: stored under the canonical decimal id, defaults filled in
    }}
    r = s.put(PREFS, json=body)
    assert r.status_code == 200, r.text
    want = {"enabled": False, "projects": {
        str(p1): {"enabled": True, "levels": ["error", "critical"], "types": ["exception"]},
        str(p2): {"enabled": True, "levels": [], "types": []},
    }}
    assert r.json() == want
    assert list(r.json()) == ["enabled", "projects"]
    assert list(r.json()["projects"][str(p1)]) == ["enabled", "levels", "types"]
    assert s.get(PREFS).json() == want
    ((stored,),) = sql("SELECT notification_preferences FROM accounts WHERE id = %s", s.account_id)
    assert stored == want

    # Replaced wholesale; everything optional.
    r = s.put(PREFS, json={})
    assert r.status_code == 200 and r.json() == {"enabled": True, "projects": {}}
    r = s.put(PREFS, json={"projects": {str(p1): {"enabled": False}}})
    assert r.json() == {"enabled": True, "projects": {str(p1): {"enabled": False, "levels": [], "types": []}}}
    assert s.get(PREFS).json() == r.json()


def test_preferences_validation(ledgerd):
    srv = ledgerd()
    api = Api(srv.url)
    s, other = api.register(), api.register()
    pid = str(s.create_project()["project_id"])
    theirs = str(other.create_project()["project_id"])
    before = s.put(PREFS, json={"projects": {pid: {"levels": ["error"]}}}).json()

    cases = [
        ({"enabled": "yes"}, ["body", "enabled"], "bool_type"),
        ({"projects": []}, ["body", "projects"], "dict_type"),
        ({"projects": {"abc": {}}}, ["body", "projects", "abc", "[key]"], "int_parsing"),
        ({"projects": {"1.5": {}}}, ["body", "projects", "1.5", "[key]"], "int_parsing"),
        ({"projects": {pid: 5}}, ["body", "projects", pid], "dict_type"),
        ({"projects": {pid: {"enabled": 1}}}, ["body", "projects", pid, "enabled"], "bool_type"),
        ({"projects": {pid: {"levels": "error"}}}, ["body", "projects", pid, "levels"], "list_type"),
        ({"projects": {pid: {"types": [1]}}}, ["body", "projects", pid, "types", 0], "string_type"),
        ({"projects": {pid: {"levels": ["x"] * 21}}}, ["body", "projects", pid, "levels"], "too_long"),
        ({"projects": {pid: {"levels": ["ok", "y" * 51]}}}, ["body", "projects", pid, "levels", 1],
         "string_too_long"),
        ({"projects": {str(i): {} for i in range(1, 1002)}}, ["body", "projects"], "too_long"),
    ]
    for body, loc, typ in cases:
        d = detail_422(s.put(PREFS, json=body))
        assert (d["type"], d["loc"]) == (typ, loc), body

    r = s.put(PREFS, json={"projects": {pid: {}, "99999999": {}}})
    assert r.status_code == 404 and r.json() == {"detail": "Project not found"}
    r = s.put(PREFS, json={"projects": {pid: {}, theirs: {}}})
    assert r.status_code == 403 and r.json() == {"detail": "You don't have permission to use this project"}
    r = s.put(PREFS, data=json.dumps({"projects": {pid: {}}})[:-3], headers={"Content-Type": "application/json"})
    assert detail_422(r)["type"] == "json_invalid"
    # Nothing was stored by any of these.
    assert s.get(PREFS).json() == before
