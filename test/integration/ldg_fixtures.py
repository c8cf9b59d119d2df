"""Direct database/Redis set-up for gateway tests: accounts, projects, API keys and access tokens
made without going through the HTTP API, so that the gateway can be tested on its own.

    db = AuthDb(pg)                       # autocommit psycopg connection to ledger_auth
    acct = db.account()                   # id
    pid = db.project(acct, daily_quota=5000)
    key, key_id = db.key(pid, rpm=10)     # full key text, row id
    token = mint_jwt(secret, acct, sid)   # HS256 access token
"""

import base64
import hashlib
import hmac
import json
import os
import time

import psycopg
import redis as redis_lib


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key():
    return "ledger_" + b64url(os.urandom(32))


def digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def read_secret(path):
    return open(path, "rb").read().rstrip(b"\n")


def mint_jwt(secret, account_id, sid, email="user@example.com", typ="access", ttl=900, iat=None, alg="HS256"):
    iat = int(time.time()) if iat is None else iat
    header = {"alg": alg, "typ": "JWT"}
    payload = {"sub": str(account_id), "email": email, "type": typ, "sid": sid, "iat": iat, "exp": iat + ttl}
    signing = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(
        json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


class AuthDb:
    def __init__(self, pg):
        self.conn = psycopg.connect(pg.dsn("ledger_auth"), autocommit=True)

    def close(self):
        self.conn.close()

    def one(self, sql, *params):
        return self.conn.execute(sql, params).fetchone()

    def account(self, email=None):
        email = email or f"gw{os.urandom(6).hex()}@example.com"
        return self.one("INSERT INTO accounts (email, password_hash, name) VALUES (%s, %s, %s) RETURNING id",
                        email, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43, "GW")[0]

    def project(self, account_id, daily_quota=1000000):
        slug = "gw-" + os.urandom(6).hex()
        return self.one("INSERT INTO projects (account_id, name, slug, daily_quota) VALUES (%s, %s, %s, %s) "
                        "RETURNING id", account_id, "GW project", slug, daily_quota)[0]

    def key(self, project_id, rpm=1000, rph=50000, status="active"):
        k = new_key()
        kid = self.one(
            "INSERT INTO api_keys (project_id, key_prefix, key_hash, key_digest, name, status, "
            "rate_limit_per_minute, rate_limit_per_hour) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            project_id, k[:20], "unused-" + digest(k), digest(k), "k" + os.urandom(4).hex(), status, rpm, rph)[0]
        return k, kid


def redis_client(r):
    return redis_lib.Redis(host=r.host, port=r.port, password=r.password, socket_timeout=5)


def open_session(rc, account_id, sid=None, ttl=3600):
    """Mark a session live the way the auth role does (session:<sid>)."""
    sid = sid or b64url(os.urandom(16))
    rc.set("session:" + sid, str(account_id), ex=ttl)
    return sid
