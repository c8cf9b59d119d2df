"""Projects, quota, API keys and /settings (reference §3.2, §3.3, §3.5; decisions D2, D3, D4, D6).

Every test talks to a real ledgerd over HTTP, with real PostgreSQL and Redis; database and Redis
state is checked directly where the API cannot show it (hashes, cache entries, counters).
"""

import datetime
import hashlib
import re
import subprocess
import threading

import pytest

from conftest import scaled
from ldg_api import Api, detail_422, unique
from ldg_http import wait_until
from ldg_servers import RedisServer

PROJECT_FIELDS = ["project_id", "name", "slug", "environment", "retention_days", "daily_quota", "available_routes"]
QUOTA_FIELDS = ["project_id", "project_name", "project_slug", "environment", "daily_quota", "daily_usage",
                "quota_remaining", "quota_reset_at", "retention_days"]
KEY_RE = re.compile(r"^ledger_[A-Za-z0-9_-]{43}$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
WARNING = "Save this key now! It will not be shown again."
SESSION_TEXT = ("This endpoint requires API key authentication (X-API-Key or Authorization: Bearer <api_key>). "
                "JWT session tokens are not supported.")


def today_utc():
    return datetime.datetime.now(datetime.timezone.utc).date()


def next_midnight():
    return (today_utc() + datetime.timedelta(days=1)).isoformat() + "T00:00:00+00:00"


# ------------------------------------------------------------------------------------------------
# POST /projects, GET /projects, GET /projects/{slug}
# ------------------------------------------------------------------------------------------------


def test_create_list_and_get_by_slug(ledgerd):
    srv = ledgerd()
    api = Api(srv.url)
    alice, bob = api.register(), api.register()

    slug1, slug2 = unique("a-"), unique("b-")
    r = alice.post("/api/v1/projects", json={"name": "First", "slug": slug1})
    assert r.status_code == 201, r.text
    p1 = r.json()
    assert list(p1) == PROJECT_FIELDS
    assert isinstance(p1["project_id"], int)
    assert p1 == {"project_id": p1["project_id"], "name": "First", "slug": slug1, "environment": "production",
                  "retention_days": 30, "daily_quota": 1000000, "available_routes": []}
    p2 = alice.create_project(name="Zweite ✓", slug=slug2, environment="staging")
    assert p2["environment"] == "staging" and p2["name"] == "Zweite ✓"
    assert alice.create_project(environment="dev")["environment"] == "dev"
    pb = bob.create_project()

    r = alice.get("/api/v1/projects")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["projects", "total"]
    assert body["total"] == 3 and [p["slug"] for p in body["projects"]][:2] == [slug1, slug2]
    assert pb["project_id"] not in [p["project_id"] for p in body["projects"]]
    assert body["projects"][0] == p1

    r = alice.get(f"/api/v1/projects/{slug2}")
    assert r.status_code == 200 and r.json() == p2
    r = alice.get(f"/api/v1/projects/{pb['slug']}")  # bob's
    assert r.status_code == 404 and r.json() == {"detail": f"Project '{pb['slug']}' not found"}
    r = alice.get("/api/v1/projects/no-such-slug")
    assert r.status_code == 404 and r.json() == {"detail": "Project 'no-such-slug' not found"}
    r = alice.get("/api/v1/projects/" + slug2.replace("-", "%2D"))  # percent-decoded like any path
    assert r.status_code == 200 and r.json() == p2
    r = alice.get(f"/api/v1/projects/{slug2}%00")
    assert r.status_code == 404
    r = alice.get("/api/v1/projects/Not%20A%20Slug")
    assert r.status_code == 404 and r.json() == {"detail": "Project 'Not A Slug' not found"}

    r = bob.get("/api/v1/projects")
    assert [p["project_id"] for p in r.json()["projects"]] == [pb["project_id"]]
    fresh = api.register()
    assert fresh.get("/api/v1/projects").json() == {"projects": [], "total": 0}


def test_create_project_validation(ledgerd):
    srv = ledgerd()
    s = Api(srv.url).register()

    def create(body, **kw):
        return s.post("/api/v1/projects", json=body, **kw)

    d = detail_422(create({"slug": "abc"}))
    assert d["type"] == "missing" and d["loc"] == ["body", "name"] and d["msg"] == "Field required"
    d = detail_422(create({"name": "", "slug": "abc"}))
    assert d["type"] == "string_too_short" and d["loc"] == ["body", "name"]
    d = detail_422(create({"name": "x" * 256, "slug": "abc"}))
    assert d["type"] == "string_too_long" and d["msg"] == "String should have at most 255 characters"
    d = detail_422(create({"name": 5, "slug": "abc"}))
    assert d["type"] == "string_type"
    d = detail_422(create({"name": "n"}))
    assert d["type"] == "missing" and d["loc"] == ["body", "slug"]
    for bad in ("UPPER", "with_underscore", "sp ace", "dot.s"):
        d = detail_422(create({"name": "n", "slug": bad}))
        assert d["type"] == "string_pattern_mismatch" and d["loc"] == ["body", "slug"], bad
        assert d["msg"] == "String should match pattern '^[a-z0-9-]+$'" and d["input"] == bad
    d = detail_422(create({"name": "n", "slug": "---"}))
    assert d["type"] == "value_error"
    assert d["msg"] == "Value error, Slug must contain only alphanumeric characters, hyphens, and underscores"
    d = detail_422(create({"name": "n", "slug": "s" * 256}))
    assert d["type"] == "string_too_long"
    d = detail_422(create({"name": "n", "slug": unique("e-"), "environment": "prod"}))
    assert d["type"] == "enum" and d["loc"] == ["body", "environment"]
    assert d["msg"] == "Input should be 'production', 'staging' or 'dev'" and d["input"] == "prod"
    d = detail_422(s.post("/api/v1/projects", data="{not json", headers={"Content-Type": "application/json"}))
    assert d["type"] == "json_invalid"
    d = detail_422(create(["name", "slug"]))
    assert d["type"] == "model_attributes_type"
    # Nothing was created by any of these.
    assert s.get("/api/v1/projects").json()["total"] == 0
    # 255 characters on both is fine.
    slug = ("z" + unique("m-") + "x" * 255)[:255]
    p = s.create_project(name="y" * 255, slug=slug)
    assert p["slug"] == slug


def test_duplicate_slug_is_409_across_accounts(ledgerd):
    srv = ledgerd()
    api = Api(srv.url)
    alice, bob = api.register(), api.register()
    slug = unique("dup-")
    alice.create_project(slug=slug)
    for who in (alice, bob):
        r = who.post("/api/v1/projects", json={"name": "again", "slug": slug})
        assert r.status_code == 409 and r.json() == {"detail": f"Project with slug '{slug}' already exists"}
    assert bob.get("/api/v1/projects").json()["total"] == 0


def test_project_cap_per_account(ledgerd):
    srv = ledgerd(extra_ini={"auth": {"max_projects": 2}})
    api = Api(srv.url)
    s = api.register()
    s.create_project()
    s.create_project()
    r = s.post("/api/v1/projects", json={"name": "third", "slug": unique("c-")})
    assert r.status_code == 400
    assert r.json() == {"detail": "Project limit reached: an account can have at most 2 projects"}
    assert s.get("/api/v1/projects").json()["total"] == 2
    api.register().create_project()  # per account, not global


# ------------------------------------------------------------------------------------------------
# PATCH /projects/{project_id}
# ------------------------------------------------------------------------------------------------


def test_patch_project(ledgerd):
    srv = ledgerd()
    api = Api(srv.url)
    s, other = api.register(), api.register()
    p = s.create_project(name="Before")
    pid = p["project_id"]
    url = f"/api/v1/projects/{pid}"

    r = s.patch(url, json={"name": "After"})
    assert r.status_code == 200, r.text
    assert r.json() == {**p, "name": "After"}
    r = s.patch(url, json={"retention_days": 365, "daily_quota": 1000})
    assert r.status_code == 200 and r.json() == {**p, "name": "After", "retention_days": 365, "daily_quota": 1000}
    r = s.patch(url, json={"retention_days": "7", "daily_quota": 10 ** 12, "name": None})  # lax ints; null = unchanged
    assert r.status_code == 200
    assert r.json() == {**p, "name": "After", "retention_days": 7, "daily_quota": 10 ** 12}
    assert s.get(f"/api/v1/projects/{p['slug']}").json()["retention_days"] == 7

    cases = [
        ({"retention_days": 0}, "greater_than_equal", "Input should be greater than or equal to 1"),
        ({"retention_days": 366}, "less_than_equal", "Input should be less than or equal to 365"),
        ({"daily_quota": 999}, "greater_than_equal", "Input should be greater than or equal to 1000"),
        ({"daily_quota": 10 ** 12 + 1}, "less_than_equal", "Input should be less than or equal to 1000000000000"),
        ({"daily_quota": 10 ** 30}, "less_than_equal", "Input should be less than or equal to 1000000000000"),
        ({"retention_days": "abc"}, "int_parsing", "Input should be a valid integer, unable to parse string as an integer"),
        ({"retention_days": 1.5}, "int_from_float", "Input should be a valid integer, got a number with a fractional part"),
        ({"retention_days": True}, "int_type", "Input should be a valid integer"),
        ({"daily_quota": [1]}, "int_type", "Input should be a valid integer"),
        ({"name": ""}, "string_too_short", "String should have at least 1 character"),
        ({"name": 3}, "string_type", "Input should be a valid string"),
    ]
    for body, typ, msg in cases:
        d = detail_422(s.patch(url, json=body))
        assert (d["type"], d["msg"]) == (typ, msg), body
        assert d["loc"] == ["body", next(iter(body))]
    r = s.patch(url, json={})
    assert r.status_code == 400
    assert r.json() == {"detail": "Nothing to update: give at least one of 'name', 'retention_days', 'daily_quota'"}
    r = s.patch(url, json={"unknown": 1})
    assert r.status_code == 400
    assert s.get(f"/api/v1/projects/{p['slug']}").json() == {**p, "name": "After", "retention_days": 7,
                                                             "daily_quota": 10 ** 12}

    r = s.patch("/api/v1/projects/99999999", json={"name": "x"})
    assert r.status_code == 404 and r.json() == {"detail": "Project not found"}
    r = other.patch(url, json={"name": "stolen"})
    assert r.status_code == 403 and r.json() == {"detail": "You don't have permission to modify this project"}
    d = detail_422(s.patch("/api/v1/projects/abc", json={"name": "x"}))
    assert d["type"] == "int_parsing" and d["loc"] == ["path", "project_id"]
    assert s.get(f"/api/v1/projects/{p['slug']}").json()["name"] == "After"


def test_quota_change_drops_cached_key_entries(ledgerd, rc):
    srv = ledgerd()
    api = Api(srv.url)
    s = api.register()
    p = s.create_project()
    keys = [s.create_key(p["project_id"])["full_key"] for _ in range(3)]
    digests = [hashlib.sha256(k.encode()).hexdigest() for k in keys]
    for k in keys:
        r = api.with_key(k).get("/api/v1/settings")
        assert r.status_code == 200 and r.json()["quotas"]["daily_quota"] == 1000000
    cached = lambda: all(rc.get("api_key:" + d) not in (None, b"revoked") for d in digests)  # noqa: E731
    wait_until(cached, 5, what="gateway cache fills")

    r = s.patch(f"/api/v1/projects/{p['project_id']}", json={"daily_quota": 5000})
    assert r.status_code == 200
    # The shared cache entries are gone by the time the PATCH answers ...
    assert [rc.get("api_key:" + d) for d in digests] == [None, None, None]
    # ... and every gateway loop evicts its copy within a second (pub/sub).
    for k in keys:
        wait_until(lambda: api.with_key(k).get("/api/v1/settings").json()["quotas"]["daily_quota"] == 5000, 1,
                   what="new quota in use")

    # A name-only change leaves the caches alone.
    wait_until(cached, 5, what="gateway cache fills again")
    r = s.patch(f"/api/v1/projects/{p['project_id']}", json={"name": "renamed"})
    assert r.status_code == 200
    assert cached()


# ------------------------------------------------------------------------------------------------
# GET /projects/{project_id}/quota
# ------------------------------------------------------------------------------------------------


def test_quota_reads_live_counter(ledgerd, rc):
    srv = ledgerd()
    api = Api(srv.url)
    s, other = api.register(), api.register()
    p = s.create_project(environment="staging")
    pid = p["project_id"]
    url = f"/api/v1/projects/{pid}/quota"

    r = s.get(url)
    assert r.status_code == 200, r.text
    q = r.json()
    assert list(q) == QUOTA_FIELDS
    assert q == {"project_id": pid, "project_name": p["name"], "project_slug": p["slug"], "environment": "staging",
                 "daily_quota": 1000000, "daily_usage": 0, "quota_remaining": 1000000,
                 "quota_reset_at": next_midnight(), "retention_days": 30}

    counter = f"usage:{pid}:{today_utc().strftime('%Y%m%d')}"
    rc.set(counter, 1234)
    q = s.get(url).json()
    assert (q["daily_usage"], q["quota_remaining"]) == (1234, 1000000 - 1234)
    rc.incrby(counter, 10)
    assert s.get(url).json()["daily_usage"] == 1244
    s.patch(f"/api/v1/projects/{pid}", json={"daily_quota": 1000})
    q = s.get(url).json()
    assert (q["daily_quota"], q["daily_usage"], q["quota_remaining"]) == (1000, 1244, 0)
    # Yesterday's counter does not count.
    rc.delete(counter)
    rc.set(f"usage:{pid}:{(today_utc() - datetime.timedelta(days=1)).strftime('%Y%m%d')}", 50)
    assert s.get(url).json()["daily_usage"] == 0

    r = s.get("/api/v1/projects/99999999/quota")
    assert r.status_code == 404 and r.json() == {"detail": "Project not found"}
    r = other.get(url)
    assert r.status_code == 403 and r.json() == {"detail": "You don't have permission to view this project"}
    d = detail_422(s.get("/api/v1/projects/x1/quota"))
    assert d["type"] == "int_parsing" and d["loc"] == ["path", "project_id"]


def test_quota_falls_back_to_daily_usage_when_redis_is_down(ledgerd, sql, tmp_path):
    private = RedisServer(str(tmp_path / "redis")).start()
    try:
        srv = ledgerd(extra_ini={"redis": {"port": private.port}})
        api = Api(srv.url)
        s = api.register()
        p = s.create_project()
        key = s.create_key(p["project_id"])["full_key"]
        sdk = api.with_key(key)
        assert sdk.get("/api/v1/settings").status_code == 200  # cached in this loop
        sql("INSERT INTO daily_usage (project_id, date, logs_ingested) VALUES (%s, %s, 777)", p["project_id"],
            today_utc())
        sql("INSERT INTO daily_usage (project_id, date, logs_ingested) VALUES (%s, %s, 5)", p["project_id"],
            today_utc() - datetime.timedelta(days=1))
        assert s.get(f"/api/v1/projects/{p['project_id']}/quota").json()["daily_usage"] == 0  # live counter
        private.stop()
        r = s.get(f"/api/v1/projects/{p['project_id']}/quota")  # the gateway fails open by default
        assert r.status_code == 200, r.text
        assert (r.json()["daily_usage"], r.json()["quota_remaining"]) == (777, 1000000 - 777)
        r = sdk.get("/api/v1/settings")
        assert r.status_code == 200, r.text
        assert r.json()["quotas"]["daily_usage"] == 777
        assert "redis usage counter unavailable" in srv.log_text()
    finally:
        private.cleanup()


# ------------------------------------------------------------------------------------------------
# API keys
# ------------------------------------------------------------------------------------------------


def test_create_and_list_keys(ledgerd, sql):
    srv = ledgerd()
    api = Api(srv.url)
    s = api.register()
    p = s.create_project()
    pid = p["project_id"]

    r = s.post(f"/api/v1/projects/{pid}/api-keys", json={"name": "production sdk"})
    assert r.status_code == 201, r.text
    assert r.headers.get("Cache-Control") == "no-store"
    k1 = r.json()
    assert list(k1) == ["key_id", "full_key", "key_prefix", "warning"]
    assert KEY_RE.match(k1["full_key"]) and k1["key_prefix"] == k1["full_key"][:20] and k1["warning"] == WARNING
    ((key_hash, key_digest, prefix, status, rpm, rph),) = sql(
        "SELECT key_hash, key_digest, key_prefix, status, rate_limit_per_minute, rate_limit_per_hour "
        "FROM api_keys WHERE id = %s", k1["key_id"])
    assert key_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and k1["full_key"] not in key_hash
    assert key_digest == hashlib.sha256(k1["full_key"].encode()).hexdigest()
    assert (prefix, status, rpm, rph) == (k1["key_prefix"], "active", 1000, 50000)
    # The key works at once.
    assert api.with_key(k1["full_key"]).get("/api/v1/settings").status_code == 200

    k2 = s.create_key(pid, name="ci")
    k3 = s.create_key(pid, name="ünïcødé ✓")
    assert len({k1["full_key"], k2["full_key"], k3["full_key"]}) == 3
    assert s.delete(f"/api/v1/api-keys/{k2['key_id']}").status_code == 200

    r = s.get(f"/api/v1/projects/{pid}/api-keys")
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["api_keys", "total"] and body["total"] == 3
    assert [k["key_id"] for k in body["api_keys"]] == [k3["key_id"], k2["key_id"], k1["key_id"]]
    for k in body["api_keys"]:
        assert list(k) == ["key_id", "project_id", "name", "key_prefix", "status", "created_at", "last_used_at"]
        assert k["project_id"] == pid and ISO_RE.match(k["created_at"])
        assert k["last_used_at"] is None or ISO_RE.match(k["last_used_at"])
    by_id = {k["key_id"]: k for k in body["api_keys"]}
    assert by_id[k2["key_id"]]["status"] == "revoked" and by_id[k1["key_id"]]["status"] == "active"
    assert by_id[k3["key_id"]]["name"] == "ünïcødé ✓" and by_id[k1["key_id"]]["key_prefix"] == k1["key_prefix"]
    for secret in (k1["full_key"], k2["full_key"], key_hash, key_digest):
        assert secret not in r.text

    empty = s.create_project()
    assert s.get(f"/api/v1/projects/{empty['project_id']}/api-keys").json() == {"api_keys": [], "total": 0}


def test_create_key_errors(ledgerd):
    srv = ledgerd(extra_ini={"auth": {"max_keys": 2}})
    api = Api(srv.url)
    s, other = api.register(), api.register()
    pid = s.create_project()["project_id"]
    url = f"/api/v1/projects/{pid}/api-keys"

    d = detail_422(s.post(url, json={}))
    assert d["type"] == "missing" and d["loc"] == ["body", "name"]
    d = detail_422(s.post(url, json={"name": ""}))
    assert d["type"] == "string_too_short"
    d = detail_422(s.post(url, json={"name": "n" * 256}))
    assert d["type"] == "string_too_long"
    d = detail_422(s.post("/api/v1/projects/zz/api-keys", json={"name": "a"}))
    assert d["loc"] == ["path", "project_id"]

    r = s.post("/api/v1/projects/99999999/api-keys", json={"name": "a"})
    assert r.status_code == 404 and r.json() == {"detail": "Project 99999999 not found"}
    r = other.post(url, json={"name": "a"})
    assert r.status_code == 403
    assert r.json() == {"detail": "You don't have permission to create API keys for this project"}

    a = s.create_key(pid, name="same")
    r = s.post(url, json={"name": "same"})
    assert r.status_code == 409
    assert r.json() == {"detail": "API key with name 'same' already exists for this project"}
    # The same name is fine in another project.
    s.create_key(s.create_project()["project_id"], name="same")

    s.create_key(pid, name="second")
    r = s.post(url, json={"name": "third"})
    assert r.status_code == 400
    assert r.json() == {"detail": "API key limit reached: a project can have at most 2 active keys"}
    # Revoked keys neither count against the cap nor hold their name.
    assert s.delete(f"/api/v1/api-keys/{a['key_id']}").status_code == 200
    s.create_key(pid, name="same")
    assert s.get(url).json()["total"] == 3


def test_duplicate_key_names_race(ledgerd):
    """Concurrent creations with one name: exactly one wins (the partial unique index)."""
    srv = ledgerd()
    s = Api(srv.url).register()
    pid = s.create_project()["project_id"]
    results = []

    def worker():
        r = s.__class__(s.base, s.body, s.email, s.password).post(f"/api/v1/projects/{pid}/api-keys",
                                                                  json={"name": "racy"})
        results.append(r.status_code)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))
    assert sorted(results) == [201] + [409] * 5, results
    assert s.get(f"/api/v1/projects/{pid}/api-keys").json()["total"] == 1


def test_revoke_key(ledgerd, rc):
    srv = ledgerd()
    api = Api(srv.url)
    s, other = api.register(), api.register()
    pid = s.create_project()["project_id"]
    k = s.create_key(pid)
    keep = s.create_key(pid)
    sdk = api.with_key(k["full_key"])
    assert sdk.get("/api/v1/settings").status_code == 200  # now cached in Redis and in the loop
    digest = hashlib.sha256(k["full_key"].encode()).hexdigest()
    wait_until(lambda: rc.get("api_key:" + digest) not in (None, b"revoked"), 5, what="gateway cache fills")

    r = other.delete(f"/api/v1/api-keys/{k['key_id']}")
    assert r.status_code == 403 and r.json() == {"detail": "You don't have permission to revoke this API key"}
    assert sdk.get("/api/v1/settings").status_code == 200

    r = s.delete(f"/api/v1/api-keys/{k['key_id']}")
    assert r.status_code == 200
    assert r.json() == {"success": True, "message": f"API key {k['key_id']} has been revoked"}
    assert rc.get("api_key:" + digest) == b"revoked"
    # Refused everywhere within a second (the tombstone at once, each loop's copy via pub/sub).
    wait_until(lambda: sdk.get("/api/v1/settings").status_code == 401, 1, what="revoked key refused")
    r = sdk.get("/api/v1/settings")
    assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired API key"}
    assert api.with_key(keep["full_key"]).get("/api/v1/settings").status_code == 200

    r = s.delete(f"/api/v1/api-keys/{k['key_id']}")  # idempotent
    assert r.status_code == 200 and r.json()["message"] == f"API key {k['key_id']} has been revoked"
    statuses = {x["key_id"]: x["status"] for x in s.get(f"/api/v1/projects/{pid}/api-keys").json()["api_keys"]}
    assert statuses == {k["key_id"]: "revoked", keep["key_id"]: "active"}

    r = s.delete("/api/v1/api-keys/99999999")
    assert r.status_code == 404 and r.json() == {"detail": "API key 99999999 not found"}
    d = detail_422(s.delete("/api/v1/api-keys/k1"))
    assert d["loc"] == ["path", "key_id"]


def test_revoke_with_redis_down_still_revokes(ledgerd, tmp_path):
    private = RedisServer(str(tmp_path / "redis")).start()
    try:
        srv = ledgerd(extra_ini={"redis": {"port": private.port}})
        api = Api(srv.url)
        s = api.register()
        pid = s.create_project()["project_id"]
        k = s.create_key(pid)
        private.stop()
        r = s.delete(f"/api/v1/api-keys/{k['key_id']}")
        assert r.status_code == 200, r.text
        assert "api key cache invalidation failed" in srv.log_text()
        statuses = [x["status"] for x in s.get(f"/api/v1/projects/{pid}/api-keys").json()["api_keys"]]
        assert statuses == ["revoked"]
    finally:
        private.cleanup()


# ------------------------------------------------------------------------------------------------
# GET /settings
# ------------------------------------------------------------------------------------------------


def test_settings(ledgerd, rc, sql, ledgerd_bin):
    srv = ledgerd()
    version = subprocess.run([ledgerd_bin, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[1]
    api = Api(srv.url)
    s = api.register()
    p = s.create_project(environment="dev")
    k = s.create_key(p["project_id"])
    sdk = api.with_key(k["full_key"])
    rc.set(f"usage:{p['project_id']}:{today_utc().strftime('%Y%m%d')}", 250)

    r = sdk.get("/api/v1/settings")
    assert r.status_code == 200, r.text
    body = r.json()
    ts = body["server_info"].pop("timestamp")
    assert ISO_RE.match(ts)
    assert abs(datetime.datetime.fromisoformat(ts) - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 60
    assert body == {
        "project_id": p["project_id"], "project_name": p["name"], "project_slug": p["slug"], "environment": "dev",
        "rate_limits": {"requests_per_minute": 1000, "requests_per_hour": 50000},
        "quotas": {"daily_quota": 1000000, "daily_usage": 250, "quota_remaining": 999750,
                   "quota_reset_at": next_midnight()},
        "constraints": {
            "max_batch_size": 1000, "max_message_length": 10000, "max_error_message_length": 5000,
            "max_stack_trace_length": 50000, "max_attributes_size_bytes": 100000, "max_environment_length": 20,
            "max_release_length": 100, "max_sdk_version_length": 20, "max_platform_length": 50,
            "max_platform_version_length": 50, "max_error_type_length": 255,
            "supported_log_levels": ["debug", "info", "warning", "error", "critical"],
            "supported_log_types": ["console", "logger", "exception", "database", "endpoint", "custom"],
            "supported_importance_levels": ["low", "standard", "high", "critical"]},
        "features": {"batch_ingestion": True, "compression": True, "streaming": False, "endpoint_monitoring": True},
        "server_info": {"version": version},  # the one version of ledgerd --version
    }
    assert list(body) == ["project_id", "project_name", "project_slug", "environment", "rate_limits", "quotas",
                          "constraints", "features", "server_info"]
    assert list(body["quotas"]) == ["daily_quota", "daily_usage", "quota_remaining", "quota_reset_at"]

    # Served from the worker's project cache and the gateway's counter read: still live.
    rc.incrby(f"usage:{p['project_id']}:{today_utc().strftime('%Y%m%d')}", 50)
    assert sdk.get("/api/v1/settings").json()["quotas"]["daily_usage"] == 300
    assert s.patch(f"/api/v1/projects/{p['project_id']}", json={"name": "Renamed"}).status_code == 200
    assert sdk.get("/api/v1/settings").json()["project_name"] == "Renamed"
    rc.incrby(f"usage:{p['project_id']}:{today_utc().strftime('%Y%m%d')}", 900)
    assert s.patch(f"/api/v1/projects/{p['project_id']}", json={"daily_quota": 1000}).status_code == 200
    wait_until(lambda: sdk.get("/api/v1/settings").json()["quotas"] == {
        "daily_quota": 1000, "daily_usage": 1200, "quota_remaining": 0, "quota_reset_at": next_midnight()}, 1,
        what="new quota in /settings")

    # Limits come from the key.
    sql("UPDATE api_keys SET rate_limit_per_minute = 77, rate_limit_per_hour = 4321 WHERE id = %s", k["key_id"])
    k2 = s.create_key(p["project_id"])
    sql("UPDATE api_keys SET rate_limit_per_minute = 77, rate_limit_per_hour = 4321 WHERE id = %s", k2["key_id"])
    assert api.with_key(k2["full_key"]).get("/api/v1/settings").json()["rate_limits"] == {
        "requests_per_minute": 77, "requests_per_hour": 4321}

    r = s.get("/api/v1/settings")
    assert r.status_code == 400 and r.json() == {"detail": SESSION_TEXT}
    r = api.get("/api/v1/settings")
    assert r.status_code == 401
