"""Accounts and dashboard sessions (reference §3.1, Part 2 "JWT + refresh" and "Sessions"; D3).

Register, login (with failed-login limiting), refresh-token rotation and reuse detection, logout,
me, name and password changes, the session list and its revocation, against real PostgreSQL and
Redis. Account routes are authenticated by the gateway; the tests check that revocations reach
it at once (the session:<sid> key).
"""

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from pathlib import Path

import psycopg
import pytest
import redis as redislib
import requests

from conftest import scaled
from ldg_api import PASSWORD, Api, unique
from ldg_servers import RedisServer, free_port

pytestmark = pytest.mark.timeout(120)

ACC = "/api/v1/accounts"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{64}$")

# A bcrypt hash as v1 stored them (cost 12), made once with crypt(3): crypt.crypt("Legacy1Pass",
# crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=4096)).
BCRYPT_PASSWORD = "Legacy1Pass"
BCRYPT_HASH = "$2b$12$PxstzO.OeLzziu3ojAzSD.OTOJUBO3oEGW0Royw4xtkZ/5HvMDYZy"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_decode(token):
    h, p, _ = token.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p))


def jwt_sign(secret, payload):
    h = b64e(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64e(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64e(sig)}"


def post(url, path, **kw):
    kw.setdefault("timeout", scaled(10))
    return requests.post(url + path, **kw)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def me_status(url, token):
    return requests.get(url + ACC + "/me", headers=bearer(token), timeout=scaled(10)).status_code


def register(url, email=None, password=PASSWORD, name="Test User", **kw):
    email = email or unique("acct") + "@example.com"
    r = post(url, ACC + "/register", json={"email": email, "password": password, "name": name}, **kw)
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def login(url, email, password=PASSWORD, **kw):
    return post(url, ACC + "/login", json={"email": email, "password": password}, **kw)


def refresh(url, token):
    return post(url, ACC + "/refresh", json={"refresh_token": token})


def set_cookie(r, name):
    """The Set-Cookie header of `name` among those of response r, as cookie_attrs gives it."""
    for h in r.raw.headers.getlist("Set-Cookie"):
        if h.startswith(name + "="):
            return cookie_attrs(h)
    raise AssertionError(f"no Set-Cookie for {name}: {r.raw.headers.getlist('Set-Cookie')}")


def cookie_attrs(header):
    """Set-Cookie value -> (name, value, {attribute lower: value or True})."""
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        attrs[k.lower()] = v if eq else True
    return name, value, attrs


def detail_422(r):
    assert r.status_code == 422, (r.status_code, r.text)
    return r.json()["detail"][0]


@pytest.fixture
def secret(jwt_secret_file):
    return Path(jwt_secret_file).read_bytes().rstrip(b"\r\n")


@pytest.fixture
def sql(pg):
    """sql(query, *params) on the auth database: rows for a SELECT/RETURNING, else the row count."""

    def run(query, *params):
        with psycopg.connect(pg.dsn("ledger_auth"), autocommit=True) as c:
            cur = c.execute(query, params)
            return cur.fetchall() if cur.description else cur.rowcount

    return run


@pytest.fixture
def rds(redis):
    """A Redis client on the suite's server; the per-address failure counter of 127.0.0.1 is reset
    around each test so that failed logins of one test never throttle another."""
    r = redislib.Redis(host="127.0.0.1", port=redis.port, decode_responses=True)
    r.delete("login_fail:addr:127.0.0.1")
    yield r
    r.delete("login_fail:addr:127.0.0.1")
    r.close()


@pytest.fixture
def server(ledgerd, rds):
    return ledgerd()


# ---------------------------------------------------------------------------------------------
# register
# ---------------------------------------------------------------------------------------------


def test_register_creates_account_session_and_tokens(server, sql, rds, secret):
    email = unique("Reg") + "@Example.COM"
    r = post(server.url, ACC + "/register", json={"email": email, "password": PASSWORD, "name": "Ada Lovelace"},
             headers={"User-Agent": "pytest-ua/1.0"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert list(body) == ["access_token", "refresh_token", "token_type", "account_id", "email", "name",
                          "expires_in", "message"]
    assert body["token_type"] == "bearer"
    assert body["email"] == email.lower()
    assert body["name"] == "Ada Lovelace"  # D3: the submitted name is stored
    assert body["expires_in"] == 900
    assert body["message"] == "Account created successfully"
    assert isinstance(body["account_id"], int) and body["account_id"] > 0
    assert TOKEN_RE.match(body["refresh_token"])

    header, claims = jwt_decode(body["access_token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(claims) >= {"sub", "email", "type", "sid", "iat", "exp"}
    assert claims["sub"] == str(body["account_id"])
    assert claims["email"] == email.lower()
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - time.time()) < 60

    rows = sql("SELECT email, name, password_hash, plan, status, notification_preferences FROM accounts WHERE id = %s",
               body["account_id"])
    assert len(rows) == 1
    em, name, pwhash, plan, status, prefs = rows[0]
    assert (em, name, plan, status) == (email.lower(), "Ada Lovelace", "free", "active")
    assert pwhash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert prefs == {"enabled": True, "projects": {}}

    sid = claims["sid"]
    sess = sql("SELECT account_id, device_info, client_addr, revoked_at, expires_at - created_at FROM sessions "
               "WHERE id = %s", sid)
    assert len(sess) == 1
    acct, device, addr, revoked, life = sess[0]
    assert (acct, device, addr, revoked) == (body["account_id"], "pytest-ua/1.0", "127.0.0.1", None)
    assert abs(life.total_seconds() - 7 * 86400) < 5

    digest = hmac.new(secret, body["refresh_token"].encode(), hashlib.sha256).hexdigest()
    toks = sql("SELECT session_id, used_at FROM refresh_tokens WHERE token_digest = %s", digest)
    assert toks == [(sid, None)]
    # The token itself is stored nowhere.
    assert sql("SELECT count(*) FROM refresh_tokens WHERE token_digest = %s", body["refresh_token"]) == [(0,)]

    assert rds.get("session:" + sid) == str(body["account_id"])
    assert 7 * 86400 - 60 < rds.ttl("session:" + sid) <= 7 * 86400

    name_, value, attrs = set_cookie(r, "refresh_token")
    assert (name_, value) == ("refresh_token", body["refresh_token"])
    assert attrs["httponly"] is True
    assert attrs["path"] == "/api/v1/accounts"
    assert attrs["samesite"] == "Strict"
    assert attrs["max-age"] == str(7 * 86400)
    assert "secure" not in attrs
    # the access token again, for the event streams only (a browser's EventSource); its path covers
    # /api/v1/notifications/stream and /api/v1/logs/tail, and the gateway reads it only there
    name_, value, attrs = set_cookie(r, "access_token")
    assert value == body["access_token"] and attrs["path"] == "/api/v1"
    assert attrs["httponly"] is True and attrs["samesite"] == "Strict" and attrs["max-age"] == "900"
    assert "secure" not in attrs


@pytest.mark.parametrize(
    "field,value,type_,msg",
    [
        ("email", "a@example.com", "value_error", "Value error, Invalid email format"),
        ("email", "ab@e.com", "value_error", "Value error, Invalid email format"),
        ("email", "ab@example.c", "value_error", "Value error, Invalid email format"),
        ("email", "ab@example.c0m", "value_error", "Value error, Invalid email format"),
        ("email", "a+b@example.com", "value_error", "Value error, Invalid email format"),
        ("email", ".ab@example.com", "value_error", "Value error, Invalid email format"),
        ("email", "ab@@example.com", "value_error", "Value error, Invalid email format"),
        ("email", "ab", "value_error", "Value error, Invalid email format"),
        ("email", "", "value_error", "Value error, Invalid email format"),
        ("email", "a..b@example.com", "value_error", "Value error, Invalid email format: consecutive dots not allowed"),
        ("email", "ab@example..com", "value_error", "Value error, Invalid email format: consecutive dots not allowed"),
        ("email", "a" * 250 + "@example.com", "string_too_long", "String should have at most 255 characters"),
        ("email", 5, "string_type", "Input should be a valid string"),
        ("password", "Sh0rt", "string_too_short", "String should have at least 8 characters"),
        ("password", "Aa1" + "x" * 62, "string_too_long", "String should have at most 64 characters"),
        ("password", "alllower123", "value_error", "Value error, Password must contain uppercase letter"),
        ("password", "ALLUPPER123", "value_error", "Value error, Password must contain lowercase letter"),
        ("password", "NoDigitsHere", "value_error", "Value error, Password must contain digit"),
        ("name", "", "string_too_short", "String should have at least 1 character"),
        ("name", "n" * 256, "string_too_long", "String should have at most 255 characters"),
        ("name", None, "string_type", "Input should be a valid string"),
    ],
)
def test_register_validation(server, sql, field, value, type_, msg):
    body = {"email": unique("val") + "@example.com", "password": PASSWORD, "name": "Val"}
    body[field] = value
    d = detail_422(post(server.url, ACC + "/register", json=body))
    assert d["type"] == type_
    assert d["loc"] == ["body", field]
    assert d["msg"] == msg
    assert d["input"] == ("[redacted]" if field == "password" else value)  # a password is never echoed
    if isinstance(value, str) and "@" in value:
        assert sql("SELECT count(*) FROM accounts WHERE email = %s", value.lower()) == [(0,)]


def test_register_missing_fields_and_bad_json(server):
    for missing in ("email", "password", "name"):
        body = {"email": unique("m") + "@example.com", "password": PASSWORD, "name": "N"}
        del body[missing]
        d = detail_422(post(server.url, ACC + "/register", json=body))
        assert (d["type"], d["loc"], d["msg"]) == ("missing", ["body", missing], "Field required")
    d = detail_422(post(server.url, ACC + "/register", data=b"{not json", headers={"Content-Type": "application/json"}))
    assert d["type"] == "json_invalid"
    d = detail_422(post(server.url, ACC + "/register", json=[1, 2]))
    assert d["type"] == "model_attributes_type"
    # Over the 16 KiB body limit of these routes.
    r = post(server.url, ACC + "/register", json={"email": "x" * 20000, "password": PASSWORD, "name": "N"})
    assert r.status_code == 413


def test_register_accepts_unicode_password_classes_and_valid_emails(server):
    # Unicode upper/lower case letters count, as Python's str.isupper/islower do.
    b = register(server.url, password="ÉCOLE été 42")
    assert b["account_id"] > 0
    for email in ("a.b-c_d@sub.example-x.org", "ab@cd.io", "AB12@EXAMPLE.ORG"):
        b = register(server.url, email=email.replace("@", unique("-") + "@", 1))
        assert b["email"] == b["email"].lower()


def test_register_duplicate_email(server):
    email = unique("dup") + "@example.com"
    register(server.url, email=email)
    for variant in (email, email.upper()):
        r = post(server.url, ACC + "/register", json={"email": variant, "password": PASSWORD, "name": "Again"})
        assert r.status_code == 409, r.text
        assert r.json() == {"detail": "Email already registered"}


# ---------------------------------------------------------------------------------------------
# login
# ---------------------------------------------------------------------------------------------


def test_login_success(server, sql, rds):
    email = unique("Login") + "@example.com"
    reg = register(server.url, email=email)
    r = login(server.url, email.upper(), headers={"User-Agent": "UA-two"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["access_token", "refresh_token", "token_type", "account_id", "email", "expires_in"]
    assert body["account_id"] == reg["account_id"]
    assert body["email"] == email.lower()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    _, claims = jwt_decode(body["access_token"])
    _, reg_claims = jwt_decode(reg["access_token"])
    assert claims["sid"] != reg_claims["sid"]  # a new session per login
    assert claims["exp"] - claims["iat"] == 900
    assert rds.get("session:" + claims["sid"]) == str(reg["account_id"])
    assert sql("SELECT device_info FROM sessions WHERE id = %s", claims["sid"]) == [("UA-two",)]
    assert body["refresh_token"] != reg["refresh_token"]
    _, value, attrs = set_cookie(r, "refresh_token")
    assert value == body["refresh_token"] and attrs["httponly"] is True


def test_login_failures(server, sql):
    email = unique("lf") + "@example.com"
    register(server.url, email=email)
    for em, pw in ((email, "Wrong1Password"), (unique("nobody") + "@example.com", PASSWORD)):
        r = login(server.url, em, pw)
        assert r.status_code == 401, r.text
        assert r.json() == {"detail": "Invalid email or password"}
        assert "Set-Cookie" not in r.headers
    # A suspended account cannot log in, even with the right password.
    sql("UPDATE accounts SET status = 'suspended' WHERE email = %s", email)
    assert login(server.url, email).status_code == 401
    sql("UPDATE accounts SET status = 'active' WHERE email = %s", email)
    assert login(server.url, email).status_code == 200
    # Validation: 8..64 characters, no format check on the email.
    d = detail_422(login(server.url, email, "short"))
    assert (d["type"], d["loc"]) == ("string_too_short", ["body", "password"])
    d = detail_422(login(server.url, email, "x" * 65))
    assert (d["type"], d["loc"]) == ("string_too_long", ["body", "password"])
    d = detail_422(post(server.url, ACC + "/login", json={"password": PASSWORD}))
    assert (d["type"], d["loc"]) == ("missing", ["body", "email"])
    assert login(server.url, "not an email", PASSWORD).status_code == 401


def test_login_bcrypt_account_from_v1(server, sql):
    email = unique("legacy") + "@example.com"
    (acct,) = sql("INSERT INTO accounts (email, password_hash, name) VALUES (%s, %s, 'Legacy') RETURNING id",
                  email, BCRYPT_HASH)[0]
    assert login(server.url, email, "Legacy1Wrong").status_code == 401
    r = login(server.url, email, BCRYPT_PASSWORD)
    assert r.status_code == 200, r.text
    assert r.json()["account_id"] == acct
    # A password change stores argon2id from then on.
    tok = r.json()["access_token"]
    r = requests.post(server.url + ACC + "/me/password", headers=bearer(tok), timeout=scaled(10),
                      json={"old_password": BCRYPT_PASSWORD, "new_password": "Modern2Pass"})
    assert r.status_code == 200, r.text
    assert sql("SELECT password_hash FROM accounts WHERE id = %s", acct)[0][0].startswith("$argon2id$")
    assert login(server.url, email, "Modern2Pass").status_code == 200


def test_login_throttled_per_email(ledgerd, rds):
    srv = ledgerd(extra_ini={"auth": {"login_fail_max_email": 3, "login_fail_window_ms": 60000}})
    email = unique("thr") + "@example.com"
    other = unique("thr2") + "@example.com"
    register(srv.url, email=email)
    register(srv.url, email=other)

    # Two failures, then a success clears the e-mail's count.
    for _ in range(2):
        assert login(srv.url, email, "Wrong1Password").status_code == 401
    assert login(srv.url, email).status_code == 200
    for _ in range(3):
        assert login(srv.url, email, "Wrong1Password").status_code == 401
    for pw in ("Wrong1Password", PASSWORD):  # the right password is refused too while throttled
        r = login(srv.url, email.upper(), pw)
        assert r.status_code == 429, r.text
        assert r.json() == {"detail": "Too many failed login attempts. Try again later."}
        ra = r.headers["Retry-After"]
        assert ra.isdigit() and 1 <= int(ra) <= 60
    # Other accounts from the same address are not affected (its limit is 100).
    assert login(srv.url, other).status_code == 200


def test_login_throttled_per_address_and_window_expiry(ledgerd, rds):
    srv = ledgerd(extra_ini={"auth": {"login_fail_max_addr": 3, "login_fail_window_ms": 2000}})
    email = unique("addr") + "@example.com"
    register(srv.url, email=email)
    for _ in range(3):
        assert login(srv.url, unique("ghost") + "@example.com", "Wrong1Password").status_code == 401
    r = login(srv.url, email)
    assert r.status_code == 429
    assert r.headers["Retry-After"] in ("1", "2")
    assert int(rds.get("login_fail:addr:127.0.0.1")) == 3
    time.sleep(2.2)
    assert login(srv.url, email).status_code == 200


def test_login_and_register_with_redis_down(ledgerd, tmp_path, sql):
    own = RedisServer(tmp_path / "redis-own").start()
    try:
        srv = ledgerd(extra_ini={"redis": {"port": own.port}, "auth": {"login_fail_max_email": 1}})
        email = unique("rd") + "@example.com"
        reg = register(srv.url, email=email)
        own.stop()
        # No limiting without Redis, but no 500 either: a wrong password is still a plain 401 ...
        for _ in range(3):
            assert login(srv.url, email, "Wrong1Password").status_code == 401
        # ... and a login whose session cannot be stored is refused, not half-done.
        r = login(srv.url, email)
        assert r.status_code == 503, r.text
        assert r.json() == {"detail": "Login service timeout, please try again"}
        # A registration is taken back, so that a retry later works.
        email2 = unique("rd2") + "@example.com"
        r = post(srv.url, ACC + "/register", json={"email": email2, "password": PASSWORD, "name": "N"})
        assert r.status_code == 503
        assert r.json() == {"detail": "Registration service timeout, please try again"}
        assert sql("SELECT count(*) FROM accounts WHERE email = %s", email2) == [(0,)]
        # A refresh is undone: the same refresh token works once Redis is back.
        r = refresh(srv.url, reg["refresh_token"])
        assert r.status_code == 503
        assert r.json() == {"detail": "Service timeout"}
        own.start()
        deadline = time.monotonic() + scaled(15)
        while True:
            r = refresh(srv.url, reg["refresh_token"])
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            assert r.status_code == 503, r.text
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        assert login(srv.url, email).status_code == 200
        register(srv.url, email=email2)
    finally:
        own.cleanup()


def test_login_and_register_with_postgres_down(ledgerd, rds):
    srv = ledgerd(extra_ini={"pg_auth": {"port": free_port()}}, migrate=False)
    srv.allow_errors = True  # the failed statements are logged as errors
    r = post(srv.url, ACC + "/register", json={"email": unique("pgd") + "@example.com", "password": PASSWORD,
                                               "name": "N"})
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": "Registration service timeout, please try again"}
    r = login(srv.url, unique("pgd") + "@example.com")
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": "Login service timeout, please try again"}


def test_password_pool_full_answers_503(ledgerd, rds):
    srv = ledgerd(extra_ini={"auth": {"hash_max_inflight": 1, "hash_max_queued": 0}})
    n = 12
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        results[i] = post(srv.url, ACC + "/register",
                          json={"email": unique("busy") + "@example.com", "password": PASSWORD, "name": "B"})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert set(codes) <= {201, 503}, codes
    assert 201 in codes and 503 in codes, codes
    busy = next(r for r in results if r.status_code == 503)
    assert busy.json() == {"detail": "Service busy, please try again"}
    assert busy.headers["Retry-After"] == "1"


# ---------------------------------------------------------------------------------------------
# refresh
# ---------------------------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_session(server, sql, rds, secret):
    reg = register(server.url)
    _, c0 = jwt_decode(reg["access_token"])
    sid = c0["sid"]

    r = refresh(server.url, reg["refresh_token"])
    assert r.status_code == 200, r.text
    b1 = r.json()
    assert list(b1) == ["access_token", "refresh_token", "token_type", "account_id", "email", "expires_in"]
    assert b1["account_id"] == reg["account_id"] and b1["email"] == reg["email"]
    assert b1["token_type"] == "bearer" and b1["expires_in"] == 900
    assert TOKEN_RE.match(b1["refresh_token"]) and b1["refresh_token"] != reg["refresh_token"]
    _, c1 = jwt_decode(b1["access_token"])
    assert c1["sid"] == sid and c1["type"] == "access" and c1["exp"] - c1["iat"] == 900
    _, value, _ = set_cookie(r, "refresh_token")
    assert value == b1["refresh_token"]
    old = hmac.new(secret, reg["refresh_token"].encode(), hashlib.sha256).hexdigest()
    assert sql("SELECT used_at IS NOT NULL FROM refresh_tokens WHERE token_digest = %s", old) == [(True,)]
    assert me_status(server.url, b1["access_token"]) == 200

    # The second token rotates too.
    r = refresh(server.url, b1["refresh_token"])
    assert r.status_code == 200, r.text
    b2 = r.json()

    # Presenting an already rotated token: 401, and the whole session is revoked.
    r = refresh(server.url, reg["refresh_token"])
    assert r.status_code == 401
    assert r.json() == {"detail": "Invalid or expired refresh token"}
    assert sql("SELECT revoked_at IS NOT NULL FROM sessions WHERE id = %s", sid) == [(True,)]
    assert rds.exists("session:" + sid) == 0
    assert refresh(server.url, b2["refresh_token"]).status_code == 401
    assert me_status(server.url, b2["access_token"]) == 401
    assert me_status(server.url, reg["access_token"]) == 401


def test_refresh_from_cookie(ledgerd, rds):
    srv = ledgerd(extra_ini={"auth": {"cookie_secure": True}})
    reg = register(srv.url)
    r = post(srv.url, ACC + "/refresh", cookies={"refresh_token": reg["refresh_token"]})
    assert r.status_code == 200, r.text
    new = r.json()["refresh_token"]
    _, value, attrs = set_cookie(r, "refresh_token")
    assert value == new and attrs["secure"] is True and attrs["httponly"] is True
    # Among other cookies, with an empty JSON object as body, the cookie is used as well.
    r = post(srv.url, ACC + "/refresh", json={}, headers={"Cookie": f"theme=dark; refresh_token={new}; x=1"})
    assert r.status_code == 200, r.text
    # The body wins over the cookie.
    body_tok = r.json()["refresh_token"]
    r = post(srv.url, ACC + "/refresh", json={"refresh_token": body_tok}, cookies={"refresh_token": "x" * 64})
    assert r.status_code == 200, r.text


def test_refresh_errors(server, sql, secret):
    bad = {"detail": "Invalid or expired refresh token"}
    for kw in ({}, {"json": {}}, {"json": {"refresh_token": ""}}, {"json": {"refresh_token": "abc"}},
               {"json": {"refresh_token": "A" * 64}}, {"cookies": {"refresh_token": "B" * 64}}):
        r = post(server.url, ACC + "/refresh", **kw)
        assert r.status_code == 401, (kw, r.text)
        assert r.json() == bad
    d = detail_422(post(server.url, ACC + "/refresh", data=b"{nope", headers={"Content-Type": "application/json"}))
    assert d["type"] == "json_invalid"
    d = detail_422(post(server.url, ACC + "/refresh", json={"refresh_token": 5}))
    assert (d["type"], d["loc"]) == ("string_type", ["body", "refresh_token"])

    # An expired refresh token.
    reg = register(server.url)
    digest = hmac.new(secret, reg["refresh_token"].encode(), hashlib.sha256).hexdigest()
    assert sql("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_digest = %s",
               digest) == 1
    r = refresh(server.url, reg["refresh_token"])
    assert r.status_code == 401 and r.json() == bad
    # Not reuse: the session lives on.
    _, c = jwt_decode(reg["access_token"])
    assert sql("SELECT revoked_at FROM sessions WHERE id = %s", c["sid"]) == [(None,)]

    # An expired session.
    reg = register(server.url)
    _, c = jwt_decode(reg["access_token"])
    sql("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = %s", c["sid"])
    assert refresh(server.url, reg["refresh_token"]).status_code == 401

    # A suspended account.
    reg = register(server.url)
    sql("UPDATE accounts SET status = 'suspended' WHERE id = %s", reg["account_id"])
    assert refresh(server.url, reg["refresh_token"]).status_code == 401


# ---------------------------------------------------------------------------------------------
# access tokens
# ---------------------------------------------------------------------------------------------


def test_access_token_expiry_crafted(server, secret):
    reg = register(server.url)
    _, c = jwt_decode(reg["access_token"])
    now = int(time.time())
    live = dict(c, iat=now - 10, exp=now + 600)
    assert me_status(server.url, jwt_sign(secret, live)) == 200  # our signing matches the server's
    expired = dict(c, iat=now - 1000, exp=now - 100)
    assert me_status(server.url, jwt_sign(secret, expired)) == 401
    assert me_status(server.url, jwt_sign(b"x" * 64, live)) == 401


def test_access_token_expires(ledgerd, rds):
    srv = ledgerd(extra_ini={"auth": {"access_ttl_ms": 10000}})
    reg = register(srv.url)
    assert reg["expires_in"] == 10
    _, c = jwt_decode(reg["access_token"])
    assert c["exp"] - c["iat"] == 10
    assert me_status(srv.url, reg["access_token"]) == 200
    time.sleep(max(0, c["exp"] - time.time()) + 1.1)
    assert me_status(srv.url, reg["access_token"]) == 401
    # The refresh token still gives a new access token for the same session.
    r = refresh(srv.url, reg["refresh_token"])
    assert r.status_code == 200
    assert me_status(srv.url, r.json()["access_token"]) == 200


# ---------------------------------------------------------------------------------------------
# logout, me, name, password
# ---------------------------------------------------------------------------------------------


def test_logout_revokes_the_session_at_once(server, sql, rds):
    api = Api(server.url)
    alice = api.register()
    other = api.login(alice.email)  # a second session of the same account
    _, c = jwt_decode(alice.access_token)

    r = alice.post(ACC + "/logout")
    assert r.status_code == 204, r.text
    assert r.content == b""
    name, value, attrs = set_cookie(r, "refresh_token")
    assert (name, value, attrs["max-age"], attrs["path"]) == ("refresh_token", "", "0", "/api/v1/accounts")
    name, value, attrs = set_cookie(r, "access_token")
    assert (name, value, attrs["max-age"], attrs["path"]) == ("access_token", "", "0", "/api/v1")
    assert rds.exists("session:" + c["sid"]) == 0
    assert sql("SELECT revoked_at IS NOT NULL FROM sessions WHERE id = %s", c["sid"]) == [(True,)]
    assert me_status(server.url, alice.access_token) == 401
    assert refresh(server.url, alice.refresh_token).status_code == 401
    # The other session is untouched.
    assert me_status(server.url, other.access_token) == 200
    assert refresh(server.url, other.refresh_token).status_code == 200


def test_account_routes_need_a_session(server):
    for method, path in (("POST", "/logout"), ("GET", "/me"), ("PATCH", "/me/name"), ("POST", "/me/password"),
                         ("GET", "/sessions"), ("POST", "/sessions/abc/revoke"), ("POST", "/sessions/revoke-all"),
                         ("GET", "/stats")):
        r = requests.request(method, server.url + ACC + path, timeout=scaled(10))
        assert r.status_code == 401, (method, path, r.status_code, r.text)


def test_me(server, sql):
    api = Api(server.url)
    alice = api.register(name="Alice A.")
    r = alice.get(ACC + "/me")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["account_id", "email", "name", "created_at"]
    assert body["account_id"] == alice.account_id
    assert body["email"] == alice.email.lower()
    assert body["name"] == "Alice A."
    assert ISO.match(body["created_at"]), body["created_at"]
    # The account disappears under a live token: 404.
    sql("DELETE FROM accounts WHERE id = %s", alice.account_id)
    r = alice.get(ACC + "/me")
    assert (r.status_code, r.json()) == (404, {"detail": "Account not found"})


def test_stats(server):
    alice = Api(server.url).register()
    r = alice.get(ACC + "/stats")
    assert (r.status_code, r.json()) == (200, {"circuit_breakers": {}})


def test_change_name(server, sql):
    alice = Api(server.url).register()
    r = alice.patch(ACC + "/me/name", json={"name": "  \u00a0Grace Hopper\t "})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Grace Hopper", "message": "Account name updated successfully"}
    assert alice.get(ACC + "/me").json()["name"] == "Grace Hopper"
    assert sql("SELECT name FROM accounts WHERE id = %s", alice.account_id) == [("Grace Hopper",)]
    r = alice.patch(ACC + "/me/name", json={"name": " \t\u3000 "})
    assert (r.status_code, r.json()) == (400, {"detail": "Name cannot be empty"})
    d = detail_422(alice.patch(ACC + "/me/name", json={"name": ""}))
    assert (d["type"], d["loc"]) == ("string_too_short", ["body", "name"])
    d = detail_422(alice.patch(ACC + "/me/name", json={"name": "é" * 256}))
    assert d["type"] == "string_too_long"
    assert alice.patch(ACC + "/me/name", json={"name": "é" * 255}).status_code == 200
    d = detail_422(alice.patch(ACC + "/me/name", json={}))
    assert d["type"] == "missing"


def test_change_password(server, sql, rds):
    api = Api(server.url)
    alice = api.register()
    second = api.login(alice.email)
    third = api.login(alice.email)
    _, c2 = jwt_decode(second.access_token)

    r = second.post(ACC + "/me/password", json={"old_password": "Wrong1Password", "new_password": "Brand9NewPass"})
    assert (r.status_code, r.json()) == (400, {"detail": "Current password is incorrect"})
    for new, msg in (("nouppercase1", "Password must contain uppercase letter"),
                     ("NOLOWERCASE1", "Password must contain lowercase letter"),
                     ("NoDigitsAtAll", "Password must contain digit")):
        d = detail_422(second.post(ACC + "/me/password", json={"old_password": PASSWORD, "new_password": new}))
        assert (d["type"], d["loc"], d["msg"]) == ("value_error", ["body", "new_password"], "Value error, " + msg)
    d = detail_422(second.post(ACC + "/me/password", json={"old_password": "short", "new_password": "Brand9NewPass"}))
    assert (d["type"], d["loc"]) == ("string_too_short", ["body", "old_password"])
    d = detail_422(second.post(ACC + "/me/password", json={"old_password": PASSWORD}))
    assert (d["type"], d["loc"]) == ("missing", ["body", "new_password"])
    # Nothing was revoked by the failed attempts.
    assert me_status(server.url, alice.access_token) == 200

    r = second.post(ACC + "/me/password", json={"old_password": PASSWORD, "new_password": "Brand9NewPass"})
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Password changed successfully"}
    assert sql("SELECT password_hash FROM accounts WHERE id = %s", alice.account_id)[0][0].startswith("$argon2id$")
    assert login(server.url, alice.email).status_code == 401
    assert login(server.url, alice.email, "Brand9NewPass").status_code == 200

    # Every other session is revoked; the caller's stays.
    for s in (alice, third):
        assert me_status(server.url, s.access_token) == 401
        assert refresh(server.url, s.refresh_token).status_code == 401
    assert me_status(server.url, second.access_token) == 200
    assert rds.exists("session:" + c2["sid"]) == 1
    assert refresh(server.url, second.refresh_token).status_code == 200


# ---------------------------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------------------------


def test_sessions_list_and_revoke_one(server, sql, rds):
    api = Api(server.url)
    alice = api.register()
    logins = []
    for ua in ("Firefox/1", "x" * 300):
        r = login(server.url, alice.email, headers={"User-Agent": ua})
        assert r.status_code == 200
        logins.append(r.json())
    bob = api.register()

    r = alice.get(ACC + "/sessions")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["sessions", "total"]
    assert body["total"] == 3 and len(body["sessions"]) == 3
    sids = [jwt_decode(t["access_token"])[1]["sid"] for t in logins]
    _, mine = jwt_decode(alice.access_token)
    assert [s["id"] for s in body["sessions"]] == [sids[1], sids[0], mine["sid"]]  # newest first
    for s in body["sessions"]:
        assert list(s) == ["id", "device_info", "created_at", "last_used_at", "expires_at", "is_current"]
        assert ISO.match(s["created_at"]) and ISO.match(s["last_used_at"]) and ISO.match(s["expires_at"])
        assert s["is_current"] == (s["id"] == mine["sid"])
    assert body["sessions"][0]["device_info"] == "x" * 255
    assert body["sessions"][1]["device_info"] == "Firefox/1"

    # Revoke the Firefox session.
    r = alice.post(f"{ACC}/sessions/{sids[0]}/revoke")
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "message": "Session revoked"}
    assert rds.exists("session:" + sids[0]) == 0
    assert me_status(server.url, logins[0]["access_token"]) == 401
    assert refresh(server.url, logins[0]["refresh_token"]).status_code == 401
    assert me_status(server.url, logins[1]["access_token"]) == 200
    ids = [s["id"] for s in alice.get(ACC + "/sessions").json()["sessions"]]
    assert ids == [sids[1], mine["sid"]]

    # Already revoked, unknown, or someone else's: 404, and nothing happens.
    _, bobs = jwt_decode(bob.access_token)
    for sid in (sids[0], "nope", "n" * 200, bobs["sid"]):
        r = alice.post(f"{ACC}/sessions/{sid}/revoke")
        assert (r.status_code, r.json()) == (404, {"detail": "Session not found"}), sid
    assert me_status(server.url, bob.access_token) == 200
    assert rds.exists("session:" + bobs["sid"]) == 1
    # Bob sees only his own session.
    assert [s["id"] for s in bob.get(ACC + "/sessions").json()["sessions"]] == [bobs["sid"]]

    # Revoking the current session works like a logout.
    r = alice.post(f"{ACC}/sessions/{mine['sid']}/revoke")
    assert r.status_code == 200
    assert me_status(server.url, alice.access_token) == 401


def test_revoke_all(server, sql, rds):
    api = Api(server.url)
    alice = api.register()
    others = [api.login(alice.email) for _ in range(2)]
    bob = api.register()
    # An expired (not revoked) session is not counted.
    extra = api.login(alice.email)
    _, ce = jwt_decode(extra.access_token)
    sql("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = %s", ce["sid"])

    r = alice.post(ACC + "/sessions/revoke-all")
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "revoked": 3}
    for s in [alice] + others:
        _, c = jwt_decode(s.access_token)
        assert rds.exists("session:" + c["sid"]) == 0
        assert me_status(server.url, s.access_token) == 401
        assert refresh(server.url, s.refresh_token).status_code == 401
    active = sql("SELECT count(*) FROM sessions WHERE account_id = %s AND revoked_at IS NULL AND expires_at > now()",
                 alice.account_id)
    assert active == [(0,)]
    assert me_status(server.url, bob.access_token) == 200
    # A new login works afterwards.
    fresh = api.login(alice.email)
    r = fresh.get(ACC + "/sessions")
    assert r.json()["total"] == 1
