"""Hardening of the request path: credentials are checked on the head before any body byte is
read or inflated, bodies have a total deadline at a minimum rate, every worker has a budget for
buffered bodies, gzip inflation is capped by ratio, and framing numbers cannot overflow."""

import gzip
import time

import pytest

from conftest import scaled
from ldg_http import Closed, RawConn, request

PROBE = "/api/v1/_debug/quota-probe"


def gw(ledgerd, **sections):
    extra = {"server": {"debug_endpoints": True, "sweep_interval_ms": 50}}
    for k, v in sections.items():
        extra.setdefault(k, {}).update(v)
    return ledgerd(extra_ini=extra)


def head_only(path, length, headers=None):
    h = {"Content-Length": str(length), "Content-Type": "application/json", **(headers or {})}
    return request("POST", path, h)


# ---- credentials before the body ----------------------------------------------------------------


@pytest.mark.parametrize("creds", [{}, {"X-API-Key": "ledger_" + "A" * 43}, {"Authorization": "Bearer a.b.c"}])
def test_bad_credentials_are_refused_without_reading_the_body(ledgerd, creds):
    s = gw(ledgerd)
    with RawConn(s.port) as c:
        # A megabyte announced, not one byte of it sent: the answer must not wait for it.
        c.send(head_only("/api/v1/ingest/batch", 1_000_000, creds))
        t0 = time.monotonic()
        r = c.response(timeout=3)
        assert r.status == 401, r
        assert time.monotonic() - t0 < scaled(2)
        assert r.header("connection") == "close"
        assert c.wait_closed(3)


def test_expect_continue_gets_the_401_as_its_final_answer(ledgerd):
    s = gw(ledgerd)
    with RawConn(s.port) as c:
        c.send(head_only("/api/v1/ingest/batch", 5000, {"Expect": "100-continue"}))
        r = c.response(timeout=3)
        assert r.status == 401  # no 100 Continue before it
        assert c.wait_closed(3)


def test_expect_continue_with_a_good_key_gets_100_then_the_answer(ledgerd, db):
    s = gw(ledgerd)
    d = db()
    key, _ = d.key(d.project(d.account()))
    with RawConn(s.port) as c:
        c.send(head_only(PROBE, 2, {"Expect": "100-continue", "X-API-Key": key}))
        r = c.response(timeout=5)
        assert r.status == 100
        c.send(b"{}")
        r = c.response(timeout=5)
        assert r.status == 204, r  # the probe's answer
        assert r.header("connection") == "keep-alive"


def test_body_arriving_with_the_head_is_kept_for_the_handler(ledgerd, db):
    s = gw(ledgerd)
    d = db()
    key, _ = d.key(d.project(d.account()))
    with RawConn(s.port) as c:
        body = b'{"x":"' + b"y" * 3000 + b'"}'
        for _ in range(3):  # keep-alive and pipelining still work behind a deferred body
            c.send(request("POST", PROBE, {"X-API-Key": key}, body=body))
        for _ in range(3):
            assert c.response().status == 204


def test_gzip_is_not_inflated_before_authentication_nor_for_unknown_paths(ledgerd, db):
    s = gw(ledgerd)
    d = db()
    key, _ = d.key(d.project(d.account()))
    garbage = b"not gzip at all" * 10
    with RawConn(s.port) as c:
        c.send(request("POST", "/api/v1/no-such-route", {"Content-Encoding": "gzip"}, body=garbage))
        assert c.response().status == 401
    with RawConn(s.port) as c:
        # Authenticated but nowhere to go: 404, the body neither read nor inflated (a 400 would
        # mean it was inflated first).
        c.send(head_only("/api/v1/no-such-route", 100000, {"Content-Encoding": "gzip", "X-API-Key": key}))
        r = c.response(timeout=3)
        assert r.status == 404, r


# ---- bodies: deadline, budget, inflation ----------------------------------------------------------


def test_body_deadline_is_total_not_per_read(srv):
    s = srv(server={"body_timeout_ms": 400, "body_min_rate": 1024 * 1024})
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "8"}))
        try:
            for b in b"12345678":  # a byte every 150 ms: progress never extends the deadline
                time.sleep(0.15)
                c.send(bytes([b]))
        except OSError:
            pass
        r = c.response(timeout=3)
        assert r.status == 408  # 8 bytes in 1.2 s, each gap well under 400 ms


def test_body_deadline_grows_with_the_announced_length(srv):
    # 400 ms plus 8192 bytes at 8 KiB/s: a steady upload of 1.2 s is within its deadline.
    s = srv(server={"body_timeout_ms": 400, "body_min_rate": 8192})
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "8192"}))
        for _ in range(8):
            time.sleep(0.15)
            c.send(b"x" * 1024)
        assert c.response().status == 200


def test_buffered_body_budget_gives_503(srv):
    s = srv(server={"max_buffered_body_bytes": 65536, "body_timeout_ms": 5000})
    with RawConn(s.port) as a, RawConn(s.port) as b:
        a.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "60000"}) + b"x" * 100)
        time.sleep(0.2)
        b.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "10000"}) + b"x" * 10000)
        r = b.response(timeout=3)
        assert r.status == 503, r
        assert r.json()["detail"].startswith("Server busy")
        a.send(b"x" * 59900)
        assert a.response().status == 200
    # Released: the same request fits now.
    with RawConn(s.port) as b:
        b.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "10000"}) + b"x" * 10000)
        assert b.response().status == 200


def test_chunked_bodies_count_against_the_budget(srv):
    s = srv(server={"max_buffered_body_bytes": 65536, "max_body_bytes": 1 << 20})
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Transfer-Encoding": "chunked"}))
        try:
            for _ in range(20):
                c.send(b"%x\r\n%s\r\n" % (8192, b"z" * 8192))
        except OSError:
            pass
        assert c.response(timeout=3).status == 503


def test_gzip_inflation_is_capped_by_ratio(srv):
    s = srv(server={"max_inflate_ratio": 100})
    ok = gzip.compress(b"a" * (1 << 20))  # to the 1 MiB floor: always allowed
    r_ok = None
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "gzip"}, body=ok))
        r_ok = c.response()
    assert r_ok.status == 200
    bomb = gzip.compress(b"a" * (4 << 20))  # ~4 KiB that would become 4 MiB (ratio ~1000)
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "gzip"}, body=bomb))
        r = c.response()
        # ~4 KiB × 100 is under the 1 MiB floor, so the floor is the limit that applied
        assert r.status == 413 and r.json() == {"detail": "Decompressed request body too large (limit 1048576 bytes)"}


@pytest.mark.parametrize("length", ["9223372036854775808", "18446744073709551615"])
def test_content_length_beyond_int64_is_400(srv, length):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": length}) + b"abc")
        r = c.response(timeout=3)
        assert r.status == 400, r


@pytest.mark.parametrize("raw", [b"v1:-9223372036854775808:1", b"v1:9223372036854775807:1", b"v1:0:-5"])
def test_out_of_range_cursor_is_400(ledgerd, db, raw):
    import base64

    import requests

    s = ledgerd()
    d = db()
    key, _ = d.key(d.project(d.account()))
    cur = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    r = requests.get(s.url + "/api/v1/logs", params={"cursor": cur}, headers={"X-API-Key": key}, timeout=scaled(10))
    assert r.status_code == 400 and r.json() == {"detail": "Invalid cursor"}, r.text


# ---- shutdown with work in flight ------------------------------------------------------------------


def test_shutdown_with_key_lookups_and_hash_jobs_in_flight(ledgerd, db, pg):
    """Role state outlives the clients: the failed callbacks of key lookups still waiting in
    PostgreSQL, and hash jobs still on the thread pool, run into live memory (ASan checks)."""
    import json

    import psycopg

    s = ledgerd(extra_ini={"server": {"drain_timeout_ms": 300}, "auth": {"hash_max_inflight": 2}})
    d = db()
    keys = [d.key(d.project(d.account()))[0] for _ in range(4)]
    lock = psycopg.connect(pg.dsn("ledger_auth"))
    conns = []
    try:
        lock.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")  # lookups wait behind it
        for k in keys:
            c = RawConn(s.port)
            c.send(request("GET", "/api/v1/no-such-route", {"X-API-Key": k}))
            conns.append(c)
        for i in range(6):
            body = json.dumps({"email": f"late{i}-{time.time_ns()}@example.com", "password": "correct horse 1",
                               "name": "Late"}).encode()
            c = RawConn(s.port)
            c.send(request("POST", "/api/v1/accounts/register", {"Content-Type": "application/json"}, body=body))
            conns.append(c)
        time.sleep(0.3)
        rc = s.stop()
    finally:
        lock.rollback()
        lock.close()
        for c in conns:
            c.close()
    assert rc == 0
    assert not s.sanitizer_lines()


# ---- address-independent rules: CORS, revoked sessions, throttles, cookies --------------------------


def test_revoked_session_is_refused_even_when_another_limit_command_fails(ledgerd, db, rc, jwt_secret_file):
    import requests

    from ldg_fixtures import mint_jwt, open_session, read_secret

    s = ledgerd(extra_ini={"gateway": {"redis_failure": "open"}})
    acct = db().account()
    sid = open_session(rc, acct)
    tok = mint_jwt(read_secret(jwt_secret_file), acct, sid)
    url = s.url + "/api/v1/accounts/me"
    assert requests.get(url, headers={"Authorization": "Bearer " + tok}, timeout=scaled(10)).status_code == 200
    # The minute counter holds a string: its INCR fails, which alone would fail open ...
    now = int(time.time())
    for m in (now // 60, now // 60 + 1):
        rc.set(f"ratelimit:acct:{acct}:min:{m}", "not a number", ex=120)
    assert requests.get(url, headers={"Authorization": "Bearer " + tok}, timeout=scaled(10)).status_code == 200
    # ... but a session Redis reports gone is refused all the same.
    rc.delete("session:" + sid)
    r = requests.get(url, headers={"Authorization": "Bearer " + tok}, timeout=scaled(10))
    assert r.status_code == 401, r.text


def test_registration_is_throttled_per_address(ledgerd, rc):
    import requests

    s = ledgerd(extra_ini={"auth": {"register_max_per_addr": 2}})
    rc.delete("register:addr:127.0.0.1")
    codes = []
    for i in range(3):
        r = requests.post(s.url + "/api/v1/accounts/register", timeout=scaled(10),
                          json={"email": f"reg{i}-{time.time_ns()}@example.com", "password": "Correct1Horse",
                                "name": "R"})
        codes.append(r.status_code)
    assert codes == [201, 201, 429], codes
    assert r.json() == {"detail": "Too many registrations from this address. Try again later."}
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    rc.delete("register:addr:127.0.0.1")


def test_parallel_login_guesses_cannot_pass_the_limit(ledgerd, rc):
    import concurrent.futures

    import requests

    s = ledgerd(extra_ini={"auth": {"login_fail_max_email": 3, "hash_max_inflight": 1}})
    email = f"par-{time.time_ns()}@example.com"
    r = requests.post(s.url + "/api/v1/accounts/register", timeout=scaled(10),
                      json={"email": email, "password": "Correct1Horse", "name": "P"})
    assert r.status_code == 201

    def guess(i):
        return requests.post(s.url + "/api/v1/accounts/login", timeout=scaled(20),
                             json={"email": email, "password": f"Wrong{i}Password"}).status_code

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        codes = list(ex.map(guess, range(12)))
    assert codes.count(401) == 3, codes  # only as many hashes as the limit allows
    assert codes.count(429) == 9, codes


# ---- trusted proxies ------------------------------------------------------------------------------


def test_trusted_proxy_names_the_client_for_throttles_and_metrics(ledgerd, rc):
    import requests

    s = ledgerd(extra_ini={"server": {"trusted_proxies": "127.0.0.1"},
                           "auth": {"login_fail_max_addr": 2}, "log": {"access_log": True}})
    a, b = "203.0.113.7", "203.0.113.8"
    for k in (a, b):
        rc.delete("login_fail:addr:" + k)

    def login(xff):
        return requests.post(s.url + "/api/v1/accounts/login", headers={"X-Forwarded-For": xff}, timeout=scaled(10),
                             json={"email": f"ghost{time.time_ns()}@example.com", "password": "Wrong1Password"})

    assert [login(a).status_code for _ in range(3)] == [401, 401, 429]
    assert int(rc.get("login_fail:addr:" + a)) == 2
    assert login(b).status_code == 401  # another client behind the same proxy is not locked out
    assert login("198.51.100.1, " + b).status_code == 401  # the rightmost untrusted hop counts
    assert int(rc.get("login_fail:addr:" + b)) == 2
    # /metrics is for loopback clients: a forwarded outside client is not one.
    assert requests.get(s.url + "/metrics", timeout=scaled(10)).status_code == 200
    r = requests.get(s.url + "/metrics", headers={"X-Forwarded-For": a}, timeout=scaled(10))
    assert r.status_code == 403
    r = requests.get(s.url + "/metrics", headers={"Forwarded": f'for="{a}:1234";proto=https'}, timeout=scaled(10))
    assert r.status_code == 403
    assert "kind=access client=203.0.113.7 " in s.log_text()
    for k in (a, b):
        rc.delete("login_fail:addr:" + k)


def test_forwarding_headers_are_ignored_without_trusted_proxies(ledgerd):
    import requests

    s = ledgerd()
    r = requests.get(s.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=scaled(10))
    assert r.status_code == 200


def test_bad_trusted_proxies_refuse_to_start(ledgerd):
    s = ledgerd(extra_ini={"server": {"trusted_proxies": "10.0.0.0/40"}}, wait=False)
    s.expect_exit = None
    rc = s.proc.wait(scaled(10))
    assert rc != 0
    assert "trusted_proxies" in s.log_text()
