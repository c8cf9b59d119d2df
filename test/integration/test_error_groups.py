"""Error groups (docs/api.md "Error groups"): GET /api/v1/error-groups (filters, sorts, keyset cursor),
GET /api/v1/error-groups/{id} (sample log, hourly counts), PATCH /api/v1/error-groups/{id}/status, the
ownership rules of the query endpoints, and regression detection on the storage path with its
`error_regression` notification.

The list and detail tests write groups and logs straight into ledger_logs and compare the answers
with the same questions asked in SQL; the regression test goes through ingest, storage and the
notification stream of a real server.
"""

import datetime
import hashlib
import json
import time

import psycopg
import pytest
import requests

from conftest import scaled
from ldg_fixtures import mint_jwt, open_session, read_secret
from ldg_http import wait_until
from test_sse import Sse

GROUPS = "/api/v1/error-groups"
SINGLE = "/api/v1/ingest/single"
STATUSES = ["unresolved", "resolved", "ignored", "muted"]
GROUP_KEYS = ["id", "project_id", "fingerprint", "error_type", "error_message", "first_seen", "last_seen",
              "occurrence_count", "status", "assigned_to", "sample_log_id", "resolved_at", "resolved_in_release",
              "is_regression", "regressed_at", "sparkline"]
HOUR = datetime.timedelta(hours=1)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def zform(ts):
    ts = ts.astimezone(datetime.timezone.utc)
    s = ts.strftime("%Y-%m-%dT%H:%M:%S")
    return s + (f".{ts.microsecond:06d}Z" if ts.microsecond else "Z")


def first_hour():
    """The first of the 24 hourly buckets (the last one is the current UTC hour)."""
    return utcnow().replace(minute=0, second=0, microsecond=0) - 23 * HOUR


def fp(n):
    return hashlib.sha256(f"group-{n}".encode()).hexdigest()


class World:
    """Account A with projects p1 (25 groups, logs for some) and p2 (2 groups); account B with p3."""

    def __init__(self, ledgerd, db, rc, pg, jwt_secret_file):
        self.srv = ledgerd()
        d = db()
        self.acct_a, self.acct_b = d.account(), d.account()
        self.p1, self.p2 = d.project(self.acct_a), d.project(self.acct_a)
        self.p3 = d.project(self.acct_b)
        self.key1, _ = d.key(self.p1, rpm=100000, rph=1000000)
        self.key3, _ = d.key(self.p3)
        secret = read_secret(jwt_secret_file)
        self.tok_a = mint_jwt(secret, self.acct_a, open_session(rc, self.acct_a))
        self.tok_b = mint_jwt(secret, self.acct_b, open_session(rc, self.acct_b))
        self.logs = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)

    def close(self):
        self.logs.close()

    def headers(self, token=None, key=None):
        return {"X-API-Key": key} if key else {"Authorization": "Bearer " + (token or self.tok_a)}

    def get(self, path, params=None, token=None, key=None):
        return requests.get(self.srv.url + path, params=params, headers=self.headers(token, key),
                            timeout=scaled(10))

    def patch(self, gid, body, project_id=None, token=None, key=None, raw=None):
        params = {"project_id": project_id} if project_id is not None else None
        h = self.headers(token, key)
        if raw is not None:
            h["Content-Type"] = "application/json"
            return requests.patch(f"{self.srv.url}{GROUPS}/{gid}/status", params=params, data=raw, headers=h,
                                  timeout=scaled(10))
        return requests.patch(f"{self.srv.url}{GROUPS}/{gid}/status", params=params, json=body, headers=h,
                              timeout=scaled(10))

    def group(self, project_id, n, error_type, message, first, last, count, status="unresolved"):
        return self.logs.execute(
            "INSERT INTO error_groups (project_id, fingerprint, error_type, error_message, first_seen, last_seen, "
            "occurrence_count, status, sample_stack_trace) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (project_id, fp(n), error_type, message, first, last, count, status, f"Traceback {n}")).fetchone()[0]

    def log(self, project_id, n, ts, message="occurrence"):
        return self.logs.execute(
            "INSERT INTO logs (project_id, timestamp, level, log_type, message, error_type, error_message, "
            "stack_trace, error_fingerprint) VALUES (%s, %s, 'error', 'exception', %s, 'KeyError', 'k', 'tb', %s) "
            "RETURNING id", (project_id, ts, message, fp(n))).fetchone()[0]


@pytest.fixture
def world(ledgerd, db, rc, pg, jwt_secret_file):
    w = World(ledgerd, db, rc, pg, jwt_secret_file)
    yield w
    w.close()


def seed(w):
    """25 groups in p1 with ties on every sort key, 2 in p2; hourly occurrences for groups 0 and 1."""
    now = utcnow().replace(microsecond=0)
    types = ["KeyError", "ValueError", "TimeoutError", "ZeroDivisionError", "PaymentDeclined"]
    ids = {}
    for n in range(25):
        last = now - datetime.timedelta(minutes=(n // 2) * 7)  # pairs share last_seen
        first = last - datetime.timedelta(days=n % 4, microseconds=(n % 3) * 250000)
        msg = None if n == 24 else f"message {n} of {'the Cache' if n % 5 == 0 else 'a request'}"
        ids[n] = w.group(w.p1, n, types[n % 5], msg, first, last, 1 + (n * 7) % 10, STATUSES[n % 4])
    ids[100] = w.group(w.p2, 100, "KeyError", "other project", now, now, 5)
    ids[101] = w.group(w.p2, 101, "KeyError", "other project", now, now, 6)
    return ids


def sql_ids(w, project_id, order, where="", params=()):
    key = {"last_seen": "last_seen", "first_seen": "first_seen", "count": "occurrence_count"}[order]
    return [r[0] for r in w.logs.execute(
        f"SELECT id FROM error_groups WHERE project_id = %s {where} ORDER BY {key} DESC, id DESC",
        (project_id, *params)).fetchall()]


def walk(w, params, limit):
    seen, pages, cursor, total = [], 0, None, None
    while True:
        p = dict(params, limit=limit)
        if cursor:
            p["cursor"] = cursor
        r = w.get(GROUPS, p)
        assert r.status_code == 200, r.text
        body = r.json()
        assert list(body) == ["project_id", "groups", "total", "has_more", "next_cursor"]
        total = body["total"] if total is None else total
        assert body["total"] == total
        seen += [g["id"] for g in body["groups"]]
        pages += 1
        assert len(body["groups"]) <= limit
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return seen, total, pages
        assert len(body["groups"]) == limit and body["next_cursor"]
        cursor = body["next_cursor"]
        assert pages < 50


def test_list_sorts_filters_and_cursor(world):
    w = world
    ids = seed(w)
    for sort in ("last_seen", "first_seen", "count"):
        seen, total, pages = walk(w, {"project_id": w.p1, "sort": sort}, 4)
        assert seen == sql_ids(w, w.p1, sort), sort
        assert len(set(seen)) == 25 and total == 25 and pages == 7
    # default sort is last_seen, default limit 50
    r = w.get(GROUPS, {"project_id": w.p1})
    assert [g["id"] for g in r.json()["groups"]] == sql_ids(w, w.p1, "last_seen")
    # status filter (a list)
    seen, total, _ = walk(w, {"project_id": w.p1, "status": "resolved,muted", "sort": "count"}, 3)
    want = sql_ids(w, w.p1, "count", "AND status = ANY(%s)", (["resolved", "muted"],))
    assert seen == want and total == len(want) == 12
    # q: case-insensitive substring of the type or the message
    seen, total, _ = walk(w, {"project_id": w.p1, "q": "cACHE"}, 2)
    assert seen == sql_ids(w, w.p1, "last_seen", "AND error_message ILIKE '%%cache%%'") and total == 5
    seen, total, _ = walk(w, {"project_id": w.p1, "q": "timeout", "status": "unresolved,ignored"}, 2)
    want = sql_ids(w, w.p1, "last_seen", "AND error_type = 'TimeoutError' AND status IN ('unresolved', 'ignored')")
    assert seen == want and total == len(want) > 0
    # % and _ are plain characters, not patterns
    assert w.get(GROUPS, {"project_id": w.p1, "q": "%"}).json()["total"] == 0
    assert w.get(GROUPS, {"project_id": w.p1, "q": "_"}).json()["total"] == 0
    # the object
    g = next(g for g in w.get(GROUPS, {"project_id": w.p1, "limit": 100}).json()["groups"] if g["id"] == ids[24])
    assert list(g) == GROUP_KEYS
    row = w.logs.execute("SELECT first_seen, last_seen, occurrence_count, status FROM error_groups WHERE id = %s",
                         (ids[24],)).fetchone()
    assert g["project_id"] == w.p1 and g["fingerprint"] == fp(24) and g["error_type"] == "PaymentDeclined"
    assert g["error_message"] is None
    assert g["first_seen"] == zform(row[0]) and g["last_seen"] == zform(row[1])
    assert g["occurrence_count"] == row[2] and g["status"] == row[3]
    assert g["resolved_at"] is None and g["is_regression"] is False and g["regressed_at"] is None
    assert g["sparkline"] == [0] * 24
    # another project's groups are not listed
    assert sorted(g["id"] for g in w.get(GROUPS, {"project_id": w.p2}).json()["groups"]) == [ids[100], ids[101]]


def test_list_validation(world):
    w = world
    seed(w)

    def bad(params, loc):
        r = w.get(GROUPS, params)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == loc
        return r.json()["detail"][0]

    base = {"project_id": w.p1}
    assert bad({**base, "sort": "occurrence_count"}, ["query", "sort"])["type"] == "enum"
    assert bad({**base, "status": "resolved,open"}, ["query", "status"])["type"] == "enum"
    assert bad({**base, "limit": 0}, ["query", "limit"])["type"] == "greater_than_equal"
    assert bad({**base, "limit": 101}, ["query", "limit"])["type"] == "less_than_equal"
    assert bad({**base, "limit": "x"}, ["query", "limit"])["type"] == "int_parsing"
    assert bad({**base, "cursor": "nope!"}, ["query", "cursor"])["type"] == "value_error"
    assert bad({**base, "q": "x" * 256}, ["query", "q"])["type"] == "string_too_long"
    assert bad({}, ["query", "project_id"])["type"] == "missing"
    # a cursor of another sort is refused, not misread
    cur = w.get(GROUPS, {**base, "limit": 2, "sort": "count"}).json()["next_cursor"]
    assert cur
    bad({**base, "cursor": cur, "sort": "first_seen"}, ["query", "cursor"])
    assert w.get(GROUPS, {**base, "cursor": cur, "sort": "count"}).status_code == 200
    assert w.get(GROUPS, {**base, "limit": 100}).status_code == 200


def hourly_expected(w, project_id, n, h0):
    rows = w.logs.execute(
        "SELECT floor(extract(epoch FROM timestamp - %s) / 3600)::int AS b, count(*) FROM logs "
        "WHERE project_id = %s AND error_fingerprint = %s AND timestamp >= %s AND timestamp < %s GROUP BY 1",
        (h0, project_id, fp(n), h0, h0 + 24 * HOUR)).fetchall()
    out = [0] * 24
    for b, c in rows:
        out[b] = c
    return out


def test_detail_and_sparklines(world):
    w = world
    ids = seed(w)
    h0 = first_hour()
    # group 0: occurrences over the day, some outside the 24 buckets; group 1: two in the current hour
    stamps = [h0 - HOUR, h0 - datetime.timedelta(seconds=1), h0, h0 + datetime.timedelta(minutes=59),
              h0 + 5 * HOUR, h0 + 5 * HOUR + datetime.timedelta(minutes=1), h0 + 20 * HOUR]
    for ts in stamps:
        w.log(w.p1, 0, ts)
    latest = h0 + 23 * HOUR + datetime.timedelta(seconds=1)
    w.log(w.p1, 1, latest, "first")
    last_id = w.log(w.p1, 1, latest, "newest")
    w.log(w.p2, 0, h0 + HOUR)  # same fingerprint in another project: not counted
    w.logs.execute("UPDATE error_groups SET last_seen = %s WHERE id = %s", (latest, ids[1]))

    for attempt in range(2):  # an hour boundary between here and the server: ask again
        h0 = first_hour()
        r = w.get(GROUPS, {"project_id": w.p1, "limit": 100})
        d0 = w.get(f"{GROUPS}/{ids[0]}", {"project_id": w.p1})
        if first_hour() == h0:
            break
    assert r.status_code == 200 and d0.status_code == 200, (r.text, d0.text)
    spark = {g["id"]: g["sparkline"] for g in r.json()["groups"]}
    want0 = hourly_expected(w, w.p1, 0, h0)
    assert sum(want0) == 5 and spark[ids[0]] == want0
    assert spark[ids[1]] == [0] * 23 + [2]
    assert all(spark[ids[n]] == [0] * 24 for n in range(2, 25))

    body = d0.json()
    assert list(body) == GROUP_KEYS + ["sample_stack_trace", "sample_log", "hourly"]
    assert body["id"] == ids[0] and body["sparkline"] == want0
    assert body["sample_stack_trace"] == "Traceback 0"
    assert body["hourly"] == [{"timestamp": zform(h0 + i * HOUR), "count": want0[i]} for i in range(24)]
    assert body["sample_log"] is None  # no log at the group's last_seen

    d1 = w.get(f"{GROUPS}/{ids[1]}", {"project_id": w.p1}).json()
    assert d1["sample_log"]["id"] == last_id and d1["sample_log"]["message"] == "newest"
    assert d1["sample_log"]["error_fingerprint"] == fp(1) and d1["sample_log"]["timestamp"] == zform(latest)
    assert d1["sample_log"]["project_id"] == w.p1

    # unknown ids, and a group of another project, are 404
    for gid, pid in ((999999999, w.p1), (ids[100], w.p1), (ids[0], w.p2)):
        r = w.get(f"{GROUPS}/{gid}", {"project_id": pid})
        assert r.status_code == 404 and r.json() == {"detail": "Error group not found"}
    r = w.get(f"{GROUPS}/abc", {"project_id": w.p1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "group_id"]


def test_status_transitions_and_422(world):
    w = world
    ids = seed(w)
    gid = ids[0]
    w.logs.execute("UPDATE error_groups SET status = 'unresolved', is_regression = true, regressed_at = now() "
                   "WHERE id = %s", (gid,))
    before = utcnow()
    r = w.patch(gid, {"status": "resolved", "resolved_in_release": "1.4.2"}, w.p1)
    assert r.status_code == 200, r.text
    g = r.json()
    assert list(g) == GROUP_KEYS
    assert g["status"] == "resolved" and g["resolved_in_release"] == "1.4.2"
    resolved_at = datetime.datetime.fromisoformat(g["resolved_at"].replace("Z", "+00:00"))
    assert before - datetime.timedelta(seconds=5) <= resolved_at <= utcnow() + datetime.timedelta(seconds=5)
    assert g["is_regression"] is False and g["regressed_at"] is None  # cleared by hand
    assert w.get(f"{GROUPS}/{gid}", {"project_id": w.p1}).json()["status"] == "resolved"

    w.logs.execute("UPDATE error_groups SET is_regression = true, regressed_at = now() WHERE id = %s", (gid,))
    g = w.patch(gid, {"status": "muted"}, w.p1).json()
    assert g["status"] == "muted" and g["resolved_at"] is None and g["resolved_in_release"] is None
    assert g["is_regression"] is True and g["regressed_at"] is not None  # muting keeps the mark
    g = w.patch(gid, {"status": "ignored", "resolved_in_release": None}, w.p1).json()
    assert g["status"] == "ignored" and g["is_regression"] is True
    g = w.patch(gid, {"status": "unresolved"}, w.p1).json()
    assert g["status"] == "unresolved" and g["is_regression"] is False and g["resolved_at"] is None
    g = w.patch(gid, {"status": "resolved"}, w.p1).json()
    assert g["status"] == "resolved" and g["resolved_in_release"] is None and g["resolved_at"]
    # API key of the project, project_id implied
    g = w.patch(gid, {"status": "ignored"}, key=w.key1).json()
    assert g["status"] == "ignored"

    def bad(body, loc, typ, raw=None):
        r = w.patch(gid, body, w.p1, raw=raw)
        assert r.status_code == 422, r.text
        d = r.json()["detail"][0]
        assert d["loc"] == loc and d["type"] == typ, d

    bad({"status": "closed"}, ["body", "status"], "enum")
    bad({}, ["body", "status"], "missing")
    bad({"status": 3}, ["body", "status"], "string_type")
    bad({"status": "resolved", "resolved_in_release": 1.5}, ["body", "resolved_in_release"], "string_type")
    bad({"status": "resolved", "resolved_in_release": "x" * 101}, ["body", "resolved_in_release"],
        "string_too_long")
    bad(None, ["body", "status"], "json_invalid", raw="{not json")
    bad(None, ["body", "status"], "model_attributes_type", raw="[1]")
    r = w.patch("x", {"status": "resolved"}, w.p1)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "group_id"]
    assert w.get(f"{GROUPS}/{gid}", {"project_id": w.p1}).json()["status"] == "ignored"  # unchanged
    r = w.patch(999999999, {"status": "resolved"}, w.p1)
    assert r.status_code == 404 and r.json() == {"detail": "Error group not found"}
    r = w.patch(ids[100], {"status": "resolved"}, w.p1)  # exists, but in p2
    assert r.status_code == 404


def test_ownership(world):
    w = world
    ids = seed(w)
    forbidden = {"detail": "You don't have permission to access this project"}
    cases = [
        ("GET", GROUPS, {"project_id": w.p3}),
        ("GET", f"{GROUPS}/{ids[0]}", {"project_id": w.p3}),
        ("PATCH", f"{GROUPS}/{ids[0]}/status", {"project_id": w.p3}),
    ]
    for method, path, params in cases:
        # session of account A on account B's project: 403; a project that does not exist: 404
        r = requests.request(method, w.srv.url + path, params=params, headers=w.headers(),
                             json={"status": "resolved"}, timeout=scaled(10))
        assert r.status_code == 403 and r.json() == forbidden, (method, path, r.text)
        r = requests.request(method, w.srv.url + path, params={"project_id": 987654321}, headers=w.headers(),
                             json={"status": "resolved"}, timeout=scaled(10))
        assert r.status_code == 404 and r.json() == {"detail": "Project not found"}, (method, path, r.text)
        # an API key of another project: 403
        r = requests.request(method, w.srv.url + path, params={"project_id": w.p1}, headers=w.headers(key=w.key3),
                             json={"status": "resolved"}, timeout=scaled(10))
        assert r.status_code == 403 and r.json() == forbidden, (method, path, r.text)
        # no credentials: 401
        r = requests.request(method, w.srv.url + path, params={"project_id": w.p1}, json={"status": "resolved"},
                             timeout=scaled(10))
        assert r.status_code == 401, (method, path, r.text)
    # account B reads its own (empty) project; the key of p1 reads p1 without project_id
    r = w.get(GROUPS, {"project_id": w.p3}, token=w.tok_b)
    assert r.status_code == 200 and r.json()["groups"] == [] and r.json()["total"] == 0
    r = w.get(GROUPS, key=w.key1)
    assert r.status_code == 200 and r.json()["project_id"] == w.p1 and r.json()["total"] == 25
    assert w.get(f"{GROUPS}/{ids[0]}", key=w.key1).status_code == 200
    # nothing was changed by the refused PATCHes
    assert w.logs.execute("SELECT status FROM error_groups WHERE id = %s", (ids[0],)).fetchone()[0] == "unresolved"


# ---- regression on the storage path ---------------------------------------------------------------


def exception_log(error_type, message, frame):
    return {"timestamp": utcnow().isoformat().replace("+00:00", "Z"), "level": "error", "log_type": "exception",
            "message": message, "error_type": error_type, "error_message": message,
            "stack_trace": f'Traceback (most recent call last):\n  File "/app/{frame}.py", line 3, in run\n'
                           f"{error_type}: {message}"}


def test_regression_flips_group_and_notifies(world):
    w = world
    url = w.srv.url

    def ingest(body):
        r = requests.post(url + SINGLE, json=body, headers={"X-API-Key": w.key1}, timeout=scaled(10))
        assert r.status_code == 202, r.text

    def group_of(error_type):
        row = w.logs.execute("SELECT id, occurrence_count, fingerprint FROM error_groups "
                             "WHERE project_id = %s AND error_type = %s", (w.p1, error_type)).fetchone()
        return row

    ingest(exception_log("RegressionError", "it came back", "regress"))
    ingest(exception_log("QuietError", "ignored for now", "quiet"))
    gid, _, fingerprint = wait_until(lambda: group_of("RegressionError"), 20, 0.1, "group stored")
    qid = wait_until(lambda: group_of("QuietError"), 20, 0.1, "group stored")[0]
    assert w.patch(gid, {"status": "resolved", "resolved_in_release": "2.0.1"}, w.p1).json()["status"] == "resolved"
    assert w.patch(qid, {"status": "ignored"}, w.p1).json()["status"] == "ignored"

    s = Sse(w.srv.port, {"X-API-Key": w.key1})
    assert s.status == 200
    ev = s.next()
    assert ev["event"] == "connected"

    ingest(exception_log("QuietError", "ignored for now", "quiet"))
    ingest(exception_log("RegressionError", "it came back", "regress"))
    wait_until(lambda: group_of("RegressionError")[1] == 2 and group_of("QuietError")[1] == 2, 20, 0.1,
               "occurrences stored")

    g = w.get(f"{GROUPS}/{gid}", {"project_id": w.p1}).json()
    assert g["status"] == "unresolved" and g["is_regression"] is True and g["regressed_at"]
    assert g["occurrence_count"] == 2
    assert g["resolved_in_release"] == "2.0.1" and g["resolved_at"]  # kept: what it regressed from
    assert sum(g["sparkline"]) == 2 and g["sample_log"]["error_type"] == "RegressionError"
    q = w.get(f"{GROUPS}/{qid}", {"project_id": w.p1}).json()
    assert q["status"] == "ignored" and q["is_regression"] is False and q["occurrence_count"] == 2
    listed = w.get(GROUPS, {"project_id": w.p1, "status": "unresolved"}).json()["groups"]
    assert [x["id"] for x in listed if x["is_regression"]] == [gid]

    regressions, before = [], None
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline and not regressions:
        ev = s.next(timeout=1)
        if ev and ev["event"] == "error_regression":
            regressions.append(ev)
        elif ev and ev["event"] == "error_notification":
            before = ev["id"]
    assert len(regressions) == 1, "no error_regression event"
    ev = regressions[0]
    assert ev["id"]  # resumable like error notifications
    data = ev["data"]
    assert list(data) == ["project_id", "group_id", "error_type", "error_message", "fingerprint", "timestamp"]
    assert data["project_id"] == w.p1 and data["group_id"] == gid and data["fingerprint"] == fingerprint
    assert data["error_type"] == "RegressionError" and data["error_message"] == "it came back"
    ts = datetime.datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
    assert abs((utcnow() - ts).total_seconds()) < 60
    # a stream resuming from the notification before it gets it again from the replay stream
    assert before
    s2 = Sse(w.srv.port, {"X-API-Key": w.key1, "Last-Event-ID": before})
    assert s2.status == 200
    replayed = [e for e in s2.events(3, timeout=3) if e["event"] == "error_regression"]
    assert [(e["id"], e["data"]) for e in replayed] == [(ev["id"], data)]
    s2.close()
    # exactly one: neither the ignored group nor another occurrence of the now unresolved group
    ingest(exception_log("RegressionError", "it came back", "regress"))
    wait_until(lambda: group_of("RegressionError")[1] == 3, 20, 0.1, "third occurrence stored")
    deadline = time.monotonic() + scaled(2)
    while time.monotonic() < deadline:
        ev = s.next(timeout=0.5)
        assert not ev or ev["event"] != "error_regression", ev
    s.close()

    # resolving by hand clears the mark
    g = w.patch(gid, {"status": "resolved"}, w.p1).json()
    assert g["is_regression"] is False and g["regressed_at"] is None
