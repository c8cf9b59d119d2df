"""What a new user meets first, as they meet it: header whitespace, /settings, limits in error
texts, 422 answers that never echo a secret, JSON errors with a position, and full-text search
that finds words inside URL paths, dotted names and snake_case.
"""

import datetime
import json
import subprocess

import requests

from conftest import scaled
from ldg_api import Api
from ldg_http import wait_until


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def start(ledgerd, db, **ini):
    s = ledgerd(extra_ini=ini or None)
    d = db()
    pid = d.project(d.account())
    key, _ = d.key(pid)
    return s, pid, key


def test_api_key_with_trailing_whitespace_is_the_key(ledgerd, db):
    s, pid, key = start(ledgerd, db)
    # requests refuses header values with surrounding whitespace: send the bytes ourselves
    import socket
    with socket.create_connection(("127.0.0.1", s.port), timeout=scaled(5)) as c:
        c.sendall(f"GET /api/v1/settings HTTP/1.1\r\nHost: x\r\nX-API-Key: {key} \t \r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]


def test_settings_says_compression_and_the_servers_version(ledgerd, db, ledgerd_bin):
    s, pid, key = start(ledgerd, db)
    body = requests.get(s.url + "/api/v1/settings", headers={"X-API-Key": key}, timeout=scaled(10)).json()
    assert body["features"]["compression"] is True
    version = subprocess.run([ledgerd_bin, "--version"], capture_output=True, text=True, timeout=10).stdout
    assert version == f"ledgerd {body['server_info']['version']}\n"


def test_413_states_the_limit(ledgerd, db):
    s, pid, key = start(ledgerd, db, ingest={"max_batch_body_bytes": 4096})
    big = {"logs": [{"timestamp": now_iso(), "message": "x" * 5000}]}
    r = requests.post(s.url + "/api/v1/ingest/batch", headers={"X-API-Key": key}, json=big, timeout=scaled(10))
    assert r.status_code == 413
    assert r.json() == {"detail": "Request body too large (limit 4096 bytes)"}


def test_422_never_echoes_a_password(ledgerd):
    s = ledgerd()
    api = Api(s.url)
    secret = "Sh0rt!"
    cases = [
        ("/api/v1/accounts/register", {"email": "ada@example.com", "password": secret, "name": "Ada"}),
        ("/api/v1/accounts/register", {"email": "not-an-email", "password": secret + "Long1", "name": ""}),
        ("/api/v1/accounts/register", {"password": secret + "Long1", "name": "Ada"}),  # missing: whole body
        ("/api/v1/accounts/login", {"email": "ada@example.com", "password": secret}),
        ("/api/v1/accounts/login", {"password": secret + "Long1"}),
        ("/api/v1/accounts/refresh", {"refresh_token": 12345}),
    ]
    for path, body in cases:
        r = api.post(path, json=body)
        assert r.status_code == 422, (path, body, r.text)
        assert secret not in r.text and "12345" not in r.text, (path, r.text)
    r = api.post("/api/v1/accounts/register", json={"email": "ada@example.com", "password": secret, "name": "Ada"})
    d = r.json()["detail"][0]
    assert d["loc"] == ["body", "password"] and d["input"] == "[redacted]", d
    r = api.post("/api/v1/accounts/register", json={"password": secret + "Long1", "name": "Ada"})
    d = r.json()["detail"][0]
    assert d["type"] == "missing" and d["input"] == {"password": "[redacted]", "name": "Ada"}, d
    # a session's own password change too
    alice = api.register()
    r = alice.post("/api/v1/accounts/me/password", json={"old_password": secret, "new_password": "x"})
    assert r.status_code == 422 and secret not in r.text, r.text


def test_malformed_json_errors_give_the_position(ledgerd, db):
    s, pid, key = start(ledgerd, db)
    bad = b'{"logs": [{"timestamp": "x", }]}'
    r = requests.post(s.url + "/api/v1/ingest/batch", headers={"X-API-Key": key, "Content-Type": "application/json"},
                      data=bad, timeout=scaled(10))
    assert r.status_code == 400
    pos = bad.index(b"}")  # cJSON stops at the byte it could not use, or just after it
    detail = r.json()["detail"]
    assert detail.startswith("Request body must be valid JSON (UTF-8, no NUL characters): invalid at byte ")
    assert pos <= int(detail.rsplit(" ", 1)[1]) <= pos + 1, detail
    r = requests.post(s.url + "/api/v1/accounts/login", data=b'{"email": "a@b.c" "password"}',
                      headers={"Content-Type": "application/json"}, timeout=scaled(10))
    d = r.json()["detail"][0]
    assert d["type"] == "json_invalid" and d["loc"][0] == "body" and 17 <= d["loc"][1] <= 18, d


def test_search_finds_words_inside_paths_dotted_names_and_snake_case(ledgerd, db):
    s, pid, key = start(ledgerd, db)
    msgs = ["GET /api/orders slow", "loaded app.billing.invoice", "payment_failed for 42", "nothing to see"]
    r = requests.post(s.url + "/api/v1/ingest/batch", headers={"X-API-Key": key}, timeout=scaled(10),
                      json={"logs": [{"timestamp": now_iso(), "level": "info", "message": m} for m in msgs]})
    assert r.status_code == 202 and r.json()["accepted"] == 4, r.text

    def search(q):
        r = requests.get(s.url + "/api/v1/logs/search", params={"q": q, "period": "last1h"},
                         headers={"X-API-Key": key}, timeout=scaled(10))
        assert r.status_code == 200, (q, r.text)
        return sorted(l["message"] for l in r.json()["logs"])

    wait_until(lambda: len(search("see")) == 1, 20, what="the logs to be stored")
    assert search("orders") == ["GET /api/orders slow"]
    assert search("api") == ["GET /api/orders slow"]
    assert search("/api/orders") == ["GET /api/orders slow"]
    assert search('"get api orders"') == ["GET /api/orders slow"]
    assert search("billing") == ["loaded app.billing.invoice"]
    assert search("app.billing") == ["loaded app.billing.invoice"]
    assert search("payment") == ["payment_failed for 42"]
    assert search("failed") == ["payment_failed for 42"]
    assert search("payment_failed") == ["payment_failed for 42"]
    assert search("order") == []  # whole words, no stemming


def test_usage_stats_count_today_as_settings_does(ledgerd, db):
    # analytics off: no job has copied anything into daily_usage; today is computed on demand
    s, pid, key = start(ledgerd, db, roles={"analytics": False})
    logs = [{"timestamp": now_iso(), "level": "info", "message": f"m{i}"} for i in range(7)]
    r = requests.post(s.url + "/api/v1/ingest/batch", headers={"X-API-Key": key}, json={"logs": logs},
                      timeout=scaled(10))
    assert r.status_code == 202, r.text
    h = {"X-API-Key": key}
    settings = requests.get(s.url + "/api/v1/settings", headers=h, timeout=scaled(10)).json()
    usage = requests.get(s.url + "/api/v1/metrics/usage-stats", headers=h, timeout=scaled(10)).json()
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert settings["quotas"]["daily_usage"] == 7
    assert usage["usage"][0] == {"date": today, "log_count": 7, "daily_quota": settings["quotas"]["daily_quota"],
                                 "quota_used_percent": 0.0}, usage
