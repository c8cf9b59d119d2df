"""Two-factor sign-in (TOTP, RFC 6238) against real PostgreSQL and Redis.

The codes are computed here from the secret that setup returns, independently of the server.
Setup, verify (backup codes), login with `requires_2fa`, the second step, replay refusal, backup
codes (each once), the per-token and per-account attempt limits, disable (password required) and
the secret being sealed at rest.
"""

import base64
import hashlib
import hmac
import struct
import time
import urllib.parse

import pytest

from ldg_api import PASSWORD, Api

pytestmark = pytest.mark.timeout(120)

ACC = "/api/v1/accounts"


def totp(secret_b32, t=None, step=0):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if t is None else t) // 30) + step
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[19] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def wait_fresh_step(margin=3):
    """Return when at least `margin` seconds are left in the current 30 s step."""
    left = 30 - time.time() % 30
    if left < margin:
        time.sleep(left + 0.2)


@pytest.fixture
def server(ledgerd, tmp_path):
    key = tmp_path / "totp.key"
    key.write_text("k" * 40 + "\n")
    key.chmod(0o600)
    return ledgerd(extra_ini={"auth": {"totp_key_file": key, "totp_max_attempts": 3, "totp_fail_max": 6}})


def enable(api, user):
    r = user.post(ACC + "/2fa/setup")
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    wait_fresh_step()
    r = user.post(ACC + "/2fa/verify", json={"code": totp(secret)})
    assert r.status_code == 200, r.text
    return secret, r.json()["backup_codes"]


def password_step(api, email):
    r = api.post(ACC + "/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["requires_2fa"] is True and body["access_token"] is None, body
    return body["totp_session_token"]


def test_setup_verify_login_replay_disable(server, sql):
    api = Api(server.url)
    user = api.register()
    r = user.get(ACC + "/2fa/status")
    assert r.json() == {"enabled": False, "backup_codes_remaining": 0}

    r = user.post(ACC + "/2fa/setup")
    assert r.status_code == 200, r.text
    body = r.json()
    secret = body["secret"]
    assert len(secret) == 32 and base64.b32decode(secret)
    uri = urllib.parse.urlparse(body["provisioning_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    q = urllib.parse.parse_qs(uri.query)
    assert q["secret"] == [secret] and q["issuer"] == ["Ledger"] and q["digits"] == ["6"]
    assert urllib.parse.unquote(uri.path) == "/Ledger:" + user.email

    # stored sealed, never in clear
    stored = sql("SELECT totp_secret, totp_enabled FROM accounts WHERE id = %s", user.account_id)[0]
    assert stored[0].startswith("v1.") and secret not in stored[0] and stored[1] is False

    # a wrong code does not enable it
    wait_fresh_step()
    wrong = "%06d" % ((int(totp(secret)) + 1) % 1000000)
    r = user.post(ACC + "/2fa/verify", json={"code": wrong})
    assert r.status_code == 400
    r = user.post(ACC + "/2fa/verify", json={"code": "12ab56"})
    assert r.status_code == 400

    vcode = totp(secret)
    r = user.post(ACC + "/2fa/verify", json={"code": vcode})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["success"] is True and len(v["backup_codes"]) == 10 and len(set(v["backup_codes"])) == 10
    codes = v["backup_codes"]
    digests = [row[0] for row in sql("SELECT code_digest FROM totp_backup_codes WHERE account_id = %s",
                                     user.account_id)]
    assert len(digests) == 10 and not any(c.replace("-", "") in d for c in codes for d in digests)
    assert user.post(ACC + "/2fa/setup").status_code == 400  # already on
    assert user.get(ACC + "/2fa/status").json() == {"enabled": True, "backup_codes_remaining": 10}

    # password alone no longer signs in
    token = password_step(api, user.email)
    # the code used by verify cannot be used again (same step)
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": vcode})
    assert r.status_code == 401, r.text
    # the next step's code (clock skew of one step) works once
    nxt = totp(secret, step=1)
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": nxt})
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["account_id"] == user.account_id
    assert api.with_bearer(tokens["access_token"]).get(ACC + "/me").status_code == 200
    # the token was single-use
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": nxt})
    assert r.status_code == 401
    # a fresh token with the same code: replay refused
    token = password_step(api, user.email)
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": nxt})
    assert r.status_code == 401

    # backup code: works once, with or without the dash, any case
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": codes[0].upper()})
    assert r.status_code == 200, r.text
    token = password_step(api, user.email)
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": codes[0].replace("-", "")})
    assert r.status_code == 401
    assert user.get(ACC + "/2fa/status").json()["backup_codes_remaining"] == 9

    # disable needs the password
    r = user.post(ACC + "/2fa/disable", json={"password": "Wrong1Password"})
    assert r.status_code == 400
    r = user.post(ACC + "/2fa/disable", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    assert sql("SELECT totp_secret, totp_enabled FROM accounts WHERE id = %s", user.account_id)[0] == (None, False)
    assert sql("SELECT count(*) FROM totp_backup_codes WHERE account_id = %s", user.account_id)[0][0] == 0
    r = api.post(ACC + "/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["access_token"], r.text
    assert user.post(ACC + "/2fa/disable", json={"password": PASSWORD}).status_code == 400


def test_attempts_are_throttled(server):
    api = Api(server.url)
    user = api.register()
    secret, _ = enable(api, user)
    good = totp(secret, step=1)
    bad = "%06d" % ((int(good) + 7) % 1000000)

    # per token: totp_max_attempts (3) wrong codes drop the token, even for a right code after
    token = password_step(api, user.email)
    for _ in range(3):
        r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": bad})
        assert r.status_code == 401
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": good})
    assert r.status_code == 401

    # per account: totp_fail_max (6) within the window, across tokens -> 429 with Retry-After
    token = password_step(api, user.email)
    for _ in range(3):
        assert api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": bad}).status_code == 401
    token = password_step(api, user.email)
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": token, "code": good})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1

    # unknown token, malformed bodies
    r = api.post(ACC + "/2fa/login", json={"totp_session_token": "nope", "code": "123456"})
    assert r.status_code == 401
    assert api.post(ACC + "/2fa/login", json={"code": "123456"}).status_code == 422
    assert api.post(ACC + "/2fa/login", json={"totp_session_token": "x", "code": "12"}).status_code == 400


def test_endpoints_need_a_session(server):
    api = Api(server.url)
    for path in ("/2fa/setup", "/2fa/verify", "/2fa/disable"):
        assert api.post(ACC + path, json={}).status_code == 401
    assert api.get(ACC + "/2fa/status").status_code == 401
    user = api.register()
    project = user.create_project()
    key = user.create_key(project["project_id"])
    r = api.with_key(key["full_key"]).post(ACC + "/2fa/setup")
    assert r.status_code == 403
