"""Streams end when their credentials do: notification streams and live tails are closed with a
last `credentials_expired` event at the access token's expiry, and with `credentials_revoked`
within a second of logout, session revocation, revoke-all, a password change or the revocation of
the API key they were opened with, in every ledgerd process."""

import time

import pytest
import requests

from conftest import scaled
from ldg_api import PASSWORD, Api
from ldg_fixtures import mint_jwt, open_session, read_secret
from test_sse import STREAM, Sse, world  # noqa: F401 (fixture)
from test_tail import tail_path

ACC = "/api/v1/accounts"


def wait_end(s, name, within):
    """The stream's last event is `name` and the body ends, within `within` seconds."""
    t0 = time.monotonic()
    ev = s.next(timeout=within + 2)
    assert ev is not None, "no event"
    assert ev["event"] == name, ev
    elapsed = time.monotonic() - t0
    deadline = time.monotonic() + scaled(3)
    while not s.ended and time.monotonic() < deadline:
        if s._recv(0.1):
            s._dechunk()
    assert s.ended
    return elapsed


def connected(s):
    assert s.status == 200, s.body
    ev = s.next()
    assert ev and ev["event"] == "connected", ev


def user(srv):
    api = Api(srv.url)
    u = api.register()
    p = u.create_project()
    k = u.create_key(p["project_id"])
    return u, p, k


def session_stream(srv, u, path=STREAM):
    return Sse(srv.port, {"Authorization": "Bearer " + u.access_token}, path=path)


@pytest.mark.parametrize("how", ["logout", "revoke", "revoke-all", "password"])
def test_session_streams_end_within_a_second_of_revocation(ledgerd, how):
    srv = ledgerd()
    u, p, _ = user(srv)
    second = Api(srv.url).login(u.email)
    streams = [session_stream(srv, u), session_stream(srv, u, tail_path(project_id=p["project_id"]))]
    for s in streams:
        connected(s)
    if how == "logout":
        r = u.post(ACC + "/logout")
    elif how == "revoke":
        sid = [x for x in second.get(ACC + "/sessions").json()["sessions"] if not x["is_current"]][0]["id"]
        r = second.post(f"{ACC}/sessions/{sid}/revoke")
    elif how == "revoke-all":
        r = second.post(ACC + "/sessions/revoke-all")
    else:
        r = second.post(ACC + "/me/password", json={"old_password": PASSWORD, "new_password": "Brand9NewPass"})
    assert r.status_code in (200, 204), r.text
    for s in streams:
        assert wait_end(s, "credentials_revoked", 1) < scaled(1.0)
        s.close()
    # The other session's stream is untouched by a logout.
    if how == "logout":
        s = session_stream(srv, second)
        connected(s)
        assert s.next(timeout=0.5) is None
        s.close()


def test_key_revocation_ends_its_streams(ledgerd):
    srv = ledgerd()
    u, p, k = user(srv)
    h = {"X-API-Key": k["full_key"]}
    streams = [Sse(srv.port, h, path=STREAM), Sse(srv.port, h, path=tail_path(project_id=p["project_id"]))]
    for s in streams:
        connected(s)
    r = u.delete(f"/api/v1/api-keys/{k['key_id']}")
    assert r.status_code in (200, 204), r.text
    for s in streams:
        assert wait_end(s, "credentials_revoked", 1) < scaled(1.0)
        s.close()


def test_stream_ends_at_access_token_expiry(ledgerd, db, rc, jwt_secret_file):
    srv = ledgerd()
    d = db()
    acct = d.account()
    d.project(acct)
    sid = open_session(rc, acct)
    tok = mint_jwt(read_secret(jwt_secret_file), acct, sid, ttl=2)
    s = Sse(srv.port, {"Authorization": "Bearer " + tok})
    connected(s)
    t0 = time.monotonic()
    wait_end(s, "credentials_expired", 4)
    assert time.monotonic() - t0 < scaled(3.5)
    s.close()


def test_revocation_reaches_every_process(ledgerd):
    a = ledgerd()
    b = ledgerd()
    u, p, _ = user(a)
    s = session_stream(b, u)
    connected(s)
    assert u.post(ACC + "/logout").status_code == 204
    assert wait_end(s, "credentials_revoked", 1) < scaled(1.0)
    s.close()


def test_resume_is_bounded_in_bytes(world):
    w = world(ini={"notifications": {"replay_max_bytes": 8192}})
    s = w.session_stream()
    ev = s.next()
    assert ev["event"] == "connected"
    w.ingest(0, message="first")
    first = s.next()
    s.close()
    for i in range(12):  # ~2 KiB each: 24 KiB stored, 8 KiB may be replayed
        w.ingest(0, message=f"big{i}", attributes={"pad": "x" * 2000})
    s2 = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}", "Last-Event-ID": first["id"]})
    assert s2.next()["event"] == "connected"
    got = s2.events(12, timeout=1.5)
    assert 1 <= len(got) <= 4, [e["data"]["message"] for e in got]
    w.ingest(0, message="live")  # the stream goes on live
    ev = s2.next()
    while ev and ev["data"]["message"] != "live":
        ev = s2.next()
    assert ev and ev["data"]["message"] == "live"
    s2.close()


def test_revocation_missed_during_a_pubsub_outage_is_caught_on_reconnect(ledgerd, rc):
    srv = ledgerd()
    u, p, k = user(srv)
    s = session_stream(srv, u)
    connected(s)
    hk = {"X-API-Key": k["full_key"]}
    sk = Sse(srv.port, hk, path=STREAM)
    connected(sk)
    import base64
    import json as _json

    sid = _json.loads(base64.urlsafe_b64decode(u.access_token.split(".")[1] + "=="))["sid"]
    # The revocations happen without their messages (as if published while the channel was down) ...
    rc.delete("session:" + sid)
    import hashlib

    rc.set("api_key:" + hashlib.sha256(k["full_key"].encode()).hexdigest(), "revoked", ex=300)
    time.sleep(0.3)
    assert s.next(timeout=0.3) is None  # nothing told the stream yet
    # ... then the pub/sub connections drop and come back: the streams' credentials are re-checked.
    rc.client_kill_filter(_type="pubsub")
    wait_end(s, "credentials_revoked", 5)
    wait_end(sk, "credentials_revoked", 5)
    s.close()
    sk.close()
