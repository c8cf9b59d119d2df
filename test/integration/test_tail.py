"""Live tail: GET /api/v1/logs/tail (Server-Sent Events of the logs storage commits).

Logs come from real ingest requests, go through the queue and the storage role into PostgreSQL,
and are read back and published only because a tail is open; streams are read over raw sockets
(test_sse.Sse).
"""

import json
import re
import signal
import time
import urllib.parse

import requests

from conftest import scaled
from ldg_http import wait_until
from test_sse import ISO_Z, Sse, log, world  # noqa: F401 (world is a fixture)

TAIL = "/api/v1/logs/tail"
BATCH = "/api/v1/ingest/batch"


def tail_path(**params):
    return TAIL + ("?" + urllib.parse.urlencode(params) if params else "")


def open_tail(w, headers=None, rcvbuf=None, **params):
    return Sse(w.srv.port, {"X-API-Key": w.keys[0]} if headers is None else headers, path=tail_path(**params),
               rcvbuf=rcvbuf)


def connected(s):
    assert s.status == 200, s.body
    ev = s.next()
    assert ev and ev["event"] == "connected", ev
    return ev


def post_batch(w, logs, i=0):
    r = requests.post(w.srv.url + BATCH, json={"logs": logs}, headers={"X-API-Key": w.keys[i]},
                      timeout=scaled(10))
    assert r.status_code == 202, r.text


def logs_of(s, n, timeout=10):
    """The next n `log` events' data (anything else but pings and heartbeats fails)."""
    out = []
    deadline = time.monotonic() + scaled(timeout)
    while len(out) < n:
        ev = s.next(max(0.0, deadline - time.monotonic()) / scaled(1))
        assert ev is not None, f"only {len(out)} of {n} logs arrived: {[o['message'] for o in out]}"
        assert ev["event"] == "log", ev
        out.append(ev["data"])
    return out


def test_committed_logs_arrive_with_their_stored_ids(world, rc):
    w = world()
    s = open_tail(w)
    ev = connected(s)
    assert ev["data"] == {"project_id": w.pids[0], "q": None}
    assert re.fullmatch(rb'event: connected\r\ndata: \{"project_id": \d+, "q": null\}\r\n\r\n', ev["raw"])
    post_batch(w, [log(level="info", message=f"tail {i}", attributes={"i": i}) for i in range(3)])
    got = logs_of(s, 3)
    assert sorted(g["message"] for g in got) == ["tail 0", "tail 1", "tail 2"]
    for g in got:
        # What the tail sent is what is stored: the same object GET /api/v1/logs/{id} answers.
        r = requests.get(f"{w.srv.url}/api/v1/logs/{g['id']}", params={"project_id": w.pids[0]},
                         headers={"X-API-Key": w.keys[0]}, timeout=scaled(10))
        assert r.status_code == 200, r.text
        assert r.json() == g
        assert re.fullmatch(ISO_Z, g["timestamp"]) and g["project_id"] == w.pids[0]
    # The stream is registered as a viewer of its project while open, and not after.
    key = f"tail:viewers:{{p{w.pids[0]}}}"
    assert rc.zcard(key) == 1
    s.close()
    wait_until(lambda: rc.zcard(key) == 0, 5, what="viewer removed")


def test_filters_q_level_log_type(world):
    w = world()
    by_q = open_tail(w, q='timeout AND NOT level:debug')
    by_level = open_tail(w, level="error,critical")
    by_type = open_tail(w, log_type="exception")
    by_regex = open_tail(w, q="message:/^db-[0-9]+ /")
    for s in (by_q, by_level, by_type, by_regex):
        connected(s)
    post_batch(w, [
        log(level="debug", message="timeout in debug"),
        log(level="warning", message="request timeout"),
        log(level="error", message="plain error"),
        log(level="critical", log_type="exception", error_type="TimeoutError", message="db-7 down"),
        log(level="info", message="db-12 timeout"),
    ])
    # (error_type TimeoutError is the word "timeouterror", not "timeout")
    assert sorted(d["message"] for d in logs_of(by_q, 2)) == ["db-12 timeout", "request timeout"]
    assert sorted(d["message"] for d in logs_of(by_level, 2)) == ["db-7 down", "plain error"]
    assert [d["message"] for d in logs_of(by_type, 1)] == ["db-7 down"]
    assert sorted(d["message"] for d in logs_of(by_regex, 2)) == ["db-12 timeout", "db-7 down"]
    for s in (by_q, by_level, by_type, by_regex):
        assert s.quiet(0.5)
        s.close()


def test_other_projects_never_appear(world):
    w = world(nprojects=2)
    p1, p2 = w.pids
    s = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}"}, path=tail_path(project_id=p1))
    assert connected(s)["data"]["project_id"] == p1
    post_batch(w, [log(message="second project")], i=1)
    post_batch(w, [log(message="first project")], i=0)
    got = logs_of(s, 1)
    assert got[0]["message"] == "first project" and got[0]["project_id"] == p1
    assert s.quiet(1.0)
    s.close()
    # A key reads its own project only; a session needs project_id and ownership.
    s = open_tail(w, project_id=p2)
    assert s.status == 403 and s.json_body() == {"detail": "You don't have permission to access this project"}
    s = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}"}, path=TAIL)
    assert s.status == 422
    other = w.d.project(w.d.account())
    s = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}"}, path=tail_path(project_id=other))
    assert s.status == 403
    s = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}"}, path=tail_path(project_id=other + 1000))
    assert s.status == 404 and s.json_body() == {"detail": "Project not found"}


def test_cookie_on_the_tail_but_not_on_other_routes(world):
    w = world()
    p = w.pids[0]
    s = Sse(w.srv.port, {"Cookie": f"theme=dark; access_token={w.jwt}"}, path=tail_path(project_id=p))
    assert connected(s)["data"]["project_id"] == p
    s.close()
    s = Sse(w.srv.port, {}, path=tail_path(project_id=p, token=w.jwt))
    connected(s)
    s.close()
    # The same cookie is no credential on an ordinary API route (CSRF), nor is ?token=.
    r = requests.get(w.srv.url + "/api/v1/logs", params={"project_id": p},
                     headers={"Cookie": f"access_token={w.jwt}"}, timeout=scaled(10))
    assert r.status_code == 401
    r = requests.get(w.srv.url + "/api/v1/logs", params={"project_id": p, "token": w.jwt}, timeout=scaled(10))
    assert r.status_code == 401
    r = requests.get(w.srv.url + "/api/v1/logs", params={"project_id": p},
                     headers={"Authorization": f"Bearer {w.jwt}"}, timeout=scaled(10))
    assert r.status_code == 200
    s = Sse(w.srv.port, {"Cookie": "access_token=a.b.c"}, path=tail_path(project_id=p))
    assert s.status == 401


def test_streams_per_account_cap_counts_both_kinds(world):
    w = world(ini={"notifications": {"max_streams_per_account": 2}})
    note = w.stream()
    assert note.status == 200
    t1 = open_tail(w)
    connected(t1)
    t2 = open_tail(w)
    assert t2.status == 429
    assert t2.headers["retry-after"] == "5"
    assert t2.json_body() == {"detail": "Too many live streams for this account (limit 2)"}
    t1.close()
    time.sleep(0.3)
    t3 = open_tail(w)
    connected(t3)
    t3.close()
    note.close()


def test_rate_bound_reports_dropped_exactly(world):
    w = world(ini={"notifications": {"tail_max_logs_per_s": 5, "heartbeat_ms": 500}})
    s = open_tail(w, level="warning")
    connected(s)
    n = 40
    post_batch(w, [log(level="warning", message=f"burst {i}") for i in range(n)] +
               [log(level="info", message="not matching")])
    sent, dropped, reports = 0, 0, 0
    deadline = time.monotonic() + scaled(15)
    while sent + dropped < n and time.monotonic() < deadline:
        ev = s.next(1)
        if ev is None:
            continue
        if ev["event"] == "log":
            assert ev["data"]["level"] == "warning"
            sent += 1
        elif ev["event"] == "dropped":
            assert re.fullmatch(rb'event: dropped\r\ndata: \{"dropped": \d+\}\r\n\r\n', ev["raw"])
            dropped += ev["data"]["dropped"]
            reports += 1
    assert sent + dropped == n, (sent, dropped)
    assert 5 <= sent < n and dropped > 0
    assert s.quiet(1.5)  # nothing left over: every matching log was sent or counted once
    s.close()


def test_full_send_buffer_drops_instead_of_queueing(world):
    # A reader that does not read: once the kernel holds what it can, logs are counted, not queued
    # (the stream stays open, unlike a notification stream past its buffer), and every log is
    # finally either received or reported as dropped.
    w = world(ini={"notifications": {"tail_send_buffer_bytes": 8192, "heartbeat_ms": 500}})
    slow = open_tail(w, rcvbuf=4096)
    big = {"blob": "x" * 60000}
    n = 0
    for i in range(4):
        post_batch(w, [log(message=f"big {i}-{k}", attributes=big) for k in range(20)])
        n += 20
    time.sleep(scaled(3))  # let storage commit and the server fill the socket
    sent, dropped = 0, 0
    deadline = time.monotonic() + scaled(20)
    while sent + dropped < n and time.monotonic() < deadline:
        ev = slow.next(1)
        if ev is None:
            continue
        if ev["event"] == "log":
            sent += 1
        elif ev["event"] == "dropped":
            dropped += ev["data"]["dropped"]
    assert sent + dropped == n and dropped > 0 and sent > 0, (sent, dropped)
    assert not slow.closed
    assert "slow stream reader" not in w.srv.log_text()
    slow.close()


def test_no_viewer_no_publish(world, rc):
    w = world()
    pid = w.pids[0]
    channel = f"tail:{{p{pid}}}"
    ps = rc.pubsub()
    ps.subscribe(channel)
    assert ps.get_message(timeout=scaled(2))["type"] == "subscribe"
    # Nobody tails: the log is stored and nothing is published for it.
    post_batch(w, [log(message="unseen")])
    wait_until(lambda: requests.get(w.srv.url + "/api/v1/logs", params={"project_id": pid},
                                    headers={"X-API-Key": w.keys[0]}, timeout=scaled(10)).json()["logs"],
               10, interval=0.1, what="log stored")
    assert rc.exists(f"tail:viewers:{{p{pid}}}") == 0
    assert dict(rc.pubsub_numsub(channel))[channel.encode()] == 1  # the test's own subscription
    time.sleep(0.3)
    assert ps.get_message(timeout=0.5) is None
    # A tail opens: the server subscribes, registers a viewer, and storage publishes.
    s = open_tail(w)
    connected(s)
    # `connected` can be written before the server's SUBSCRIBE is confirmed: wait for it
    wait_until(lambda: dict(rc.pubsub_numsub(channel))[channel.encode()] == 2, scaled(5), interval=0.05,
               what="the server's subscription")
    assert rc.zcard(f"tail:viewers:{{p{pid}}}") == 1
    time.sleep(1.2)  # past [storage] tail_viewers_refresh_ms of any earlier "no viewers" answer
    post_batch(w, [log(message="seen")])
    msg = None
    deadline = time.monotonic() + scaled(10)
    while msg is None and time.monotonic() < deadline:
        msg = ps.get_message(timeout=1)
    assert msg and msg["type"] == "message", msg
    head, body = msg["data"].split(b"\n", 1)
    assert head == b"0" and json.loads(body)["message"] == "seen"
    assert logs_of(s, 1)[0]["message"] == "seen"
    s.close()
    wait_until(lambda: dict(rc.pubsub_numsub(channel))[channel.encode()] == 1, 5, what="unsubscribed")
    ps.close()


def test_bad_query_is_400_before_the_stream(world):
    w = world()
    for q in ["level:nope", "(timeout", "message:/a(b/", "AND"]:
        s = open_tail(w, q=q)
        assert s.status == 400, (q, s.body)
        detail = s.json_body()["detail"]
        assert detail.startswith("Invalid query at position "), detail
        if not q.startswith("message:"):
            # exactly what /logs/search answers for it
            r = requests.get(w.srv.url + "/api/v1/logs/search", params={"q": q, "period": "1h"},
                             headers={"X-API-Key": w.keys[0]}, timeout=scaled(10))
            assert r.status_code == 400 and r.json()["detail"] == detail
        else:
            assert detail.startswith("Invalid query at position 1: invalid regular expression: "), detail
    s = open_tail(w, level="loud")
    assert s.status == 422
    assert s.json_body()["detail"][0]["loc"] == ["query", "level"]


def test_shutdown_ends_the_tail(world):
    w = world(ini={"notifications": {"shutdown_retry_ms": 2500}})
    s = open_tail(w, q="anything")
    connected(s)
    w.srv.send_signal(signal.SIGTERM)
    raw = s.next_raw()
    assert re.fullmatch(rb'retry: 2500\r\nevent: shutdown\r\ndata: \{"timestamp": "' + ISO_Z.encode() +
                        rb'", "reason": "server shutting down"\}\r\n\r\n', raw), raw
    deadline = time.monotonic() + scaled(5)
    while not s.closed and time.monotonic() < deadline:
        if s._recv(0.2):
            s._dechunk()
    assert s.ended and s.closed
    assert w.srv.proc.wait(scaled(15)) == 0
    s.close()
