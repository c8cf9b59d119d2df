"""The gateway: credentials (reference §1.3), API-key validation layers, revocation, stale cache and
circuit breaker (decisions D3), JWT sessions, rate limits and the daily quota (§1.4, D4).

Accounts, projects and keys are written straight into the auth database (ldg_fixtures) so that
these tests depend on the gateway alone; the endpoint tests live in test_accounts/test_projects.
"""

import datetime
import time

import pytest
import requests

from conftest import scaled
from ldg_fixtures import AuthDb, digest, mint_jwt, new_key, open_session, read_secret
from ldg_http import wait_until
from ldg_servers import RedisServer

PROBE = "/api/v1/_debug/quota-probe"
UNKNOWN = "/api/v1/no-such-route"


def get(srv, path, headers=None, method="GET"):
    return requests.request(method, srv.url + path, headers=headers or {}, timeout=scaled(10))


def not_near_window_end(period=60, margin=8):
    """Counters are per clock window: start a counting test early in one."""
    left = period - time.time() % period
    if left < margin:
        time.sleep(left + 0.2)


def gw(ledgerd, **sections):
    extra = {"server": {"debug_endpoints": True}}
    for k, v in sections.items():
        extra.setdefault(k, {}).update(v)
    return ledgerd(extra_ini=extra)


# ---- credentials ---------------------------------------------------------------------------------


def test_missing_credentials_is_401_with_www_authenticate(ledgerd):
    s = gw(ledgerd)
    for path in (UNKNOWN, "/api/v1/projects", "/redoc", "/api/v1/accounts/me"):
        r = get(s, path)
        assert r.status_code == 401, (path, r.text)
        assert r.json() == {"detail": "Missing authentication header (X-API-Key or Authorization)"}
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_public_paths_need_no_credentials(ledgerd):
    s = gw(ledgerd)
    assert get(s, "/health").status_code == 200
    assert get(s, "/health/deep").status_code == 200


@pytest.mark.parametrize("value", ["Basic abc", "Bearer a b", "Token x y", "bearer  a  b"])
def test_malformed_authorization_is_401(ledgerd, value):
    s = gw(ledgerd)
    r = get(s, UNKNOWN, {"Authorization": value})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid Authorization header format"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("how", ["x-api-key", "bearer", "BEARER", "bare"])
def test_api_key_in_every_accepted_place(ledgerd, db, how):
    s = gw(ledgerd)
    d = db()
    key, _ = d.key(d.project(d.account()))
    headers = {"x-api-key": {"X-API-Key": key}, "bearer": {"Authorization": "Bearer " + key},
               "BEARER": {"Authorization": "BEARER " + key}, "bare": {"Authorization": key}}[how]
    r = get(s, UNKNOWN, headers)
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}  # authenticated, then routed
    r = get(s, "/health/deep", headers)
    assert r.status_code in (200, 503)
    r = get(s, "/health", headers, method="DELETE")
    assert r.status_code == 405


def test_x_api_key_wins_over_authorization(ledgerd, db):
    s = gw(ledgerd)
    d = db()
    key, _ = d.key(d.project(d.account()))
    r = get(s, UNKNOWN, {"X-API-Key": key, "Authorization": "Basic nonsense"})
    assert r.status_code == 404


@pytest.mark.parametrize("bad", ["ledger_short", "ledger_" + "!" * 43, "x" * 50, "ledger_" + "A" * 44])
def test_malformed_or_unknown_key_is_401(ledgerd, bad):
    s = gw(ledgerd)
    r = get(s, UNKNOWN, {"X-API-Key": bad})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired API key"}


def test_unknown_revoked_and_expired_keys_are_401(ledgerd, db):
    s = gw(ledgerd)
    d = db()
    pid = d.project(d.account())
    revoked, _ = d.key(pid, status="revoked")
    expired, kid = d.key(pid)
    d.one("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s RETURNING id", kid)
    for k in (new_key(), revoked, expired):
        r = get(s, UNKNOWN, {"X-API-Key": k})
        assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired API key"}, k


def test_valid_key_is_cached_in_redis_with_v1_fields(ledgerd, db, rc):
    s = gw(ledgerd)
    d = db()
    acct = d.account()
    pid = d.project(acct, daily_quota=7777)
    key, kid = d.key(pid, rpm=33, rph=444)
    assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 404
    raw = rc.get("api_key:" + digest(key))
    assert raw is not None
    import json
    cached = json.loads(raw)
    assert cached["project_id"] == pid and cached["account_id"] == acct and cached["key_id"] == kid
    assert cached["rate_limit_per_minute"] == 33 and cached["rate_limit_per_hour"] == 444
    assert cached["daily_quota"] == 7777 and cached["current_usage"] == 0
    assert 0 < rc.ttl("api_key:" + digest(key)) <= 300


def test_last_used_at_is_written_off_the_request_path(ledgerd, db):
    s = gw(ledgerd)
    d = db()
    key, kid = d.key(d.project(d.account()))
    assert d.one("SELECT last_used_at FROM api_keys WHERE id = %s", kid)[0] is None
    assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 404
    wait_until(lambda: d.one("SELECT last_used_at FROM api_keys WHERE id = %s", kid)[0] is not None, scaled(5),
               what="last_used_at")
    first = d.one("SELECT last_used_at FROM api_keys WHERE id = %s", kid)[0]
    for _ in range(5):
        assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 404
    time.sleep(0.3)
    assert d.one("SELECT last_used_at FROM api_keys WHERE id = %s", kid)[0] == first  # at most once a minute


# ---- revocation --------------------------------------------------------------------------------


def revoke_like_auth(d, rc, kid, key):
    """What the auth role does on DELETE /api-keys/{id}: PG first, then tombstone + publish."""
    d.one("UPDATE api_keys SET status = 'revoked' WHERE id = %s RETURNING id", kid)
    rc.set("api_key:" + digest(key), "revoked", ex=300)
    rc.publish("ledger:api_key:invalidate", digest(key))


def test_revocation_reaches_two_processes_within_one_second(ledgerd, db, rc):
    a = gw(ledgerd, server={"workers": 2})
    b = gw(ledgerd, server={"workers": 2})
    d = db()
    key, kid = d.key(d.project(d.account()))
    # Warm every loop's table: many requests over fresh connections spread over both workers.
    for srv in (a, b):
        for _ in range(12):
            assert get(srv, UNKNOWN, {"X-API-Key": key}).status_code == 404
    rc.delete("api_key:" + digest(key))  # only the loop tables hold it now
    revoke_like_auth(d, rc, kid, key)
    t0 = time.monotonic()
    for srv in (a, b):
        wait_until(lambda srv=srv: all(get(srv, UNKNOWN, {"X-API-Key": key}).status_code == 401 for _ in range(8)),
                   scaled(1.0), what="revocation seen")
    assert time.monotonic() - t0 < scaled(1.0)


def test_revocation_through_loop_cache_without_channel_message_is_bounded(ledgerd, db, rc):
    """A tombstone alone (no publish) is seen once the loop re-checks Redis (key_cache_ttl_ms)."""
    s = gw(ledgerd, gateway={"key_cache_ttl_ms": 300, "key_recheck_ms": 0})
    d = db()
    key, kid = d.key(d.project(d.account()))
    assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 404
    d.one("UPDATE api_keys SET status = 'revoked' WHERE id = %s RETURNING id", kid)
    rc.set("api_key:" + digest(key), "revoked", ex=300)
    time.sleep(0.4)
    assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 401


# ---- auth database down: stale window and circuit breaker --------------------------------------


def test_stale_cache_and_breaker_while_postgres_is_down(ledgerd, db, rc, pg):
    s = gw(ledgerd, gateway={"key_cache_ttl_ms": 0, "key_recheck_ms": 0, "key_stale_ms": 4000,
                             "breaker_failures": 3, "breaker_open_ms": 1000},
           pg_auth={"connect_timeout_ms": 500, "acquire_timeout_ms": 500, "reconnect_min_ms": 100,
                    "reconnect_max_ms": 200})
    s.allow_errors = True
    d = db()
    pid = d.project(d.account())
    known, _ = d.key(pid)
    never, _ = d.key(pid)
    assert get(s, UNKNOWN, {"X-API-Key": known}).status_code == 404
    rc.delete("api_key:" + digest(known))  # force the database path from now on
    d.close()
    pg.stop()
    try:
        t_down = time.monotonic()
        r = get(s, UNKNOWN, {"X-API-Key": known})
        assert r.status_code == 404, r.text  # validated < key_stale_ms ago: still works
        r = get(s, UNKNOWN, {"X-API-Key": never})
        assert r.status_code == 503 and r.json() == {"detail": "Authentication service unavailable"}
        assert r.headers["Retry-After"].isdigit()
        for _ in range(4):
            get(s, UNKNOWN, {"X-API-Key": never})
        wait_until(lambda: "circuit breaker open" in s.log_text(), scaled(3), what="breaker opened")
        # Past the stale window the known key is refused too.
        time.sleep(max(0.0, 4.3 - (time.monotonic() - t_down)))
        r = get(s, UNKNOWN, {"X-API-Key": known})
        assert r.status_code == 503
    finally:
        pg.start()
    db_holder = AuthDb(pg)
    db_holder.close()
    # Half-open probe after breaker_open_ms: the database answers, the breaker closes.
    wait_until(lambda: get(s, UNKNOWN, {"X-API-Key": never}).status_code == 404, scaled(10), interval=0.2,
               what="key accepted after recovery")
    wait_until(lambda: "circuit breaker closed" in s.log_text(), scaled(3), what="breaker closed")


# ---- sessions (access JWTs) --------------------------------------------------------------------


def test_access_token_needs_a_live_session(ledgerd, db, rc, jwt_secret_file):
    s = gw(ledgerd)
    acct = db().account()
    secret = read_secret(jwt_secret_file)
    sid = open_session(rc, acct)
    tok = mint_jwt(secret, acct, sid)
    r = get(s, UNKNOWN, {"Authorization": "Bearer " + tok})
    assert r.status_code == 404, r.text
    rc.delete("session:" + sid)  # logout / revocation
    r = get(s, UNKNOWN, {"Authorization": "Bearer " + tok})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired session token"}


@pytest.mark.parametrize("case", ["expired", "bad-signature", "refresh-type", "alg-none", "v1-token", "garbage"])
def test_bad_access_tokens_are_401(ledgerd, db, rc, jwt_secret_file, case):
    s = gw(ledgerd)
    acct = db().account()
    secret = read_secret(jwt_secret_file)
    sid = open_session(rc, acct)
    tok = {
        "expired": lambda: mint_jwt(secret, acct, sid, iat=int(time.time()) - 1000, ttl=900),
        "bad-signature": lambda: mint_jwt(b"another secret of at least 32 bytes!!", acct, sid),
        "refresh-type": lambda: mint_jwt(secret, acct, sid, typ="refresh"),
        "alg-none": lambda: mint_jwt(secret, acct, sid, alg="none"),
        "v1-token": lambda: f"token_{acct}_user@example.com",
        "garbage": lambda: "a.b.c",
    }[case]()
    r = get(s, UNKNOWN, {"Authorization": "Bearer " + tok})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired session token"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


# ---- rate limits ---------------------------------------------------------------------------------


def test_per_minute_limit_per_project(ledgerd, db, rc):
    s = gw(ledgerd)
    d = db()
    pid = d.project(d.account())
    key, _ = d.key(pid, rpm=10)
    not_near_window_end()
    for i in range(10):
        r = get(s, UNKNOWN, {"X-API-Key": key})
        assert r.status_code == 404, (i, r.text)
        assert r.headers["X-RateLimit-Limit-Minute"] == "10"
        assert r.headers["X-RateLimit-Remaining-Minute"] == str(9 - i)
        assert r.headers["X-RateLimit-Limit-Hour"] == "50000"
    r = get(s, UNKNOWN, {"X-API-Key": key})
    assert r.status_code == 429
    assert r.json() == {"detail": "Per-minute rate limit exceeded. Current: 11, Limit: 10"}
    assert r.headers["Retry-After"].isdigit() and 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["X-RateLimit-Remaining-Minute"] == "0"
    now = int(time.time())
    assert int(rc.get(f"ratelimit:{pid}:min:{now // 60}")) >= 11
    assert 0 < rc.ttl(f"ratelimit:{pid}:min:{now // 60}") <= 60  # windows expire
    assert 0 < rc.ttl(f"ratelimit:{pid}:hour:{now // 3600}") <= 3600
    # Another project is not affected.
    other, _ = d.key(d.project(d.account()), rpm=10)
    assert get(s, UNKNOWN, {"X-API-Key": other}).status_code == 404


def test_hourly_limit(ledgerd, db):
    s = gw(ledgerd)
    d = db()
    key, _ = d.key(d.project(d.account()), rpm=1000, rph=3)
    not_near_window_end(3600, 10)
    for _ in range(3):
        assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 404
    r = get(s, UNKNOWN, {"X-API-Key": key})
    assert r.status_code == 429
    assert r.json() == {"detail": "Hourly rate limit exceeded. Current: 4, Limit: 3"}
    assert 1 <= int(r.headers["Retry-After"]) <= 3600


def test_sessions_are_limited_per_account_not_globally(ledgerd, db, rc, jwt_secret_file):
    s = gw(ledgerd, gateway={"session_rate_per_minute": 3})
    d = db()
    secret = read_secret(jwt_secret_file)
    a, b = d.account(), d.account()
    ta = mint_jwt(secret, a, open_session(rc, a))
    tb = mint_jwt(secret, b, open_session(rc, b))
    not_near_window_end()
    for _ in range(3):
        assert get(s, UNKNOWN, {"Authorization": "Bearer " + ta}).status_code == 404
    r = get(s, UNKNOWN, {"Authorization": "Bearer " + ta})
    assert r.status_code == 429 and r.json()["detail"].startswith("Per-minute rate limit exceeded. Current: 4")
    assert get(s, UNKNOWN, {"Authorization": "Bearer " + tb}).status_code == 404  # b has its own bucket


# ---- daily quota ---------------------------------------------------------------------------------


def test_daily_quota_402_reads_the_live_counter(ledgerd, db, rc):
    s = gw(ledgerd)
    d = db()
    pid = d.project(d.account(), daily_quota=1000)
    key, _ = d.key(pid)
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    rc.set(f"usage:{pid}:{day}", 999)
    assert get(s, PROBE, {"X-API-Key": key}, method="POST").status_code == 204
    rc.set(f"usage:{pid}:{day}", 1000)
    r = get(s, PROBE, {"X-API-Key": key}, method="POST")
    assert r.status_code == 402 and r.json() == {"detail": "Daily quota exceeded: 1000/1000"}
    # Routes that do not count against the quota keep working.
    assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 404


# ---- Redis down: fail open or closed -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_down_fail_open_or_closed(ledgerd, db, tmp_path, mode):
    own = RedisServer(str(tmp_path / "redis-own")).start()
    try:
        s = gw(ledgerd, redis={"port": own.port, "reconnect_min_ms": 100, "reconnect_max_ms": 200},
               gateway={"redis_failure": mode})
        s.allow_errors = True
        d = db()
        key, _ = d.key(d.project(d.account()))
        assert get(s, UNKNOWN, {"X-API-Key": key}).status_code == 404
        own.stop()
        r = get(s, UNKNOWN, {"X-API-Key": key})
        if mode == "open":
            assert r.status_code == 404  # authenticated (loop table / database), limits skipped
            assert "X-RateLimit-Limit-Minute" not in r.headers
        else:
            assert r.status_code == 503 and r.json() == {"detail": "Service temporarily unavailable"}
            assert r.headers["Retry-After"] == "1"
        own.start()
        wait_until(lambda: get(s, UNKNOWN, {"X-API-Key": key}).headers.get("X-RateLimit-Limit-Minute") == "1000",
                   scaled(10), interval=0.2, what="limits back after Redis returned")
    finally:
        own.cleanup()


def test_health_deep_shows_gateway_state(ledgerd, db):
    s = gw(ledgerd)
    body = get(s, "/health/deep").json()
    g = body["roles"]["gateway"]
    assert g["status"] == "running" and g["auth_db_breaker"] == "closed"
    wait_until(lambda: get(s, "/health/deep").json()["roles"]["gateway"]["revocations"] == "subscribed",
               scaled(5), what="revocation channel subscribed")
