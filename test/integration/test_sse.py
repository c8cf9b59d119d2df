"""Real-time error notifications over Server-Sent Events (reference §3.8 N3, §5.2; decisions D7):
GET /api/v1/notifications/stream.

Streams are read over raw sockets (the chunked body is decoded here) so that the bytes on the wire
can be checked exactly. Accounts, projects and keys are written straight into the auth database
(ldg_fixtures); notifications come from real ingest requests.
"""

import datetime
import json
import os
import re
import select
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import scaled
from ldg_fixtures import mint_jwt, open_session, read_secret

STREAM = "/api/v1/notifications/stream"
SINGLE = "/api/v1/ingest/single"
BATCH = "/api/v1/ingest/batch"
PREFS = "/api/v1/notifications/preferences"

ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"


class Sse:
    """One stream over a raw socket: the response head, then events decoded from the chunked body."""

    def __init__(self, port, headers=None, path=STREAM, rcvbuf=None, http10=False, read_head=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(scaled(5))
        self.sock.connect(("127.0.0.1", port))
        version = "1.0" if http10 else "1.1"
        lines = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""  # received, not yet de-chunked
        self.body = b""  # de-chunked, not yet split into events
        self.ended = False  # terminating chunk seen
        self.closed = False  # EOF
        self.chunked = False
        self.status = None
        self.headers = {}
        self.head_bytes = b""
        if read_head:
            self.read_head()

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            b = b""
        if not b:
            self.closed = True
            return False
        self.raw += b
        return True

    def read_head(self, timeout=5):
        deadline = time.monotonic() + scaled(timeout)
        while b"\r\n\r\n" not in self.raw:
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"no response head: {self.raw!r}")
            self._recv(0.2)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        self.head_bytes = head
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        if self.status != 200:
            self.body = self.raw
            self.raw = b""
        self._dechunk()
        return self.status

    def _dechunk(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while not self.ended:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(self.raw[:i], 16)
            if len(self.raw) < i + 2 + size + 2:
                return
            assert self.raw[i + 2 + size:i + 4 + size] == b"\r\n", self.raw[:80]
            if size == 0:
                self.ended = True
            self.body += self.raw[i + 2:i + 2 + size]
            self.raw = self.raw[i + 4 + size:]

    def json_body(self, timeout=5):
        deadline = time.monotonic() + scaled(timeout)
        length = int(self.headers.get("content-length", "0"))
        while len(self.body) < length and time.monotonic() < deadline and not self.closed:
            self._recv(0.2)
            self.body += self.raw
            self.raw = b""
        return json.loads(self.body[:length])

    def next_raw(self, timeout=5):
        """The next event's bytes (through its blank line), or None when none arrives in time."""
        return self._next_raw_until(time.monotonic() + scaled(timeout))

    def _next_raw_until(self, deadline):
        while True:
            i = self.body.find(b"\r\n\r\n")
            if i >= 0:
                ev, self.body = self.body[:i + 4], self.body[i + 4:]
                return ev
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            if self._recv(min(left, 0.2)):
                self._dechunk()

    def next(self, timeout=5, skip=("ping", "heartbeat")):
        """The next event as {"raw", "event", "id", "data", "comment"}, skipping pings and heartbeats
        unless asked for."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            raw = self._next_raw_until(deadline)
            if raw is None:
                return None
            ev = parse_event(raw)
            if ev["comment"] is not None and "ping" in skip:
                continue
            if ev["event"] == "heartbeat" and "heartbeat" in skip:
                continue
            return ev

    def events(self, n, timeout=5):
        out = []
        deadline = time.monotonic() + scaled(timeout)
        while len(out) < n:
            ev = self.next(max(0.0, deadline - time.monotonic()) / scaled(1))
            if ev is None:
                break
            out.append(ev)
        return out

    def quiet(self, seconds):
        """No notification (other than pings and heartbeats) within `seconds`."""
        ev = self.next(seconds)
        return ev is None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_event(raw):
    ev = {"raw": raw, "event": None, "id": None, "data": None, "comment": None, "retry": None}
    data = []
    for line in raw.decode().split("\r\n"):
        if not line:
            continue
        if line.startswith(":"):
            ev["comment"] = line[1:].strip()
            continue
        k, _, v = line.partition(": ")
        if k == "data":
            data.append(v)
        elif k in ("event", "id", "retry"):
            ev[k] = v
    if data:
        ev["data"] = json.loads("\n".join(data))
    return ev


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def log(**kw):
    base = {"timestamp": now_iso(), "level": "error", "log_type": "console", "message": "boom"}
    base.update(kw)
    return base


class World:
    """A server plus an account with projects and keys."""

    def __init__(self, ledgerd, db, rc, jwt_secret_file, nprojects=1, ini=None, server=None):
        self.srv = server or ledgerd(extra_ini=ini or {})
        self.rc = rc
        self.d = db()
        self.acct = self.d.account()
        self.pids = [self.d.project(self.acct) for _ in range(nprojects)]
        self.keys = [self.d.key(p)[0] for p in self.pids]
        self.secret = read_secret(jwt_secret_file)
        self.sid = open_session(rc, self.acct)
        self.jwt = mint_jwt(self.secret, self.acct, self.sid)

    def stream(self, headers=None, srv=None, **kw):
        h = {"X-API-Key": self.keys[0]} if headers is None else headers
        return Sse((srv or self.srv).port, h, **kw)

    def session_stream(self, srv=None, **kw):
        return Sse((srv or self.srv).port, {"Authorization": f"Bearer {self.jwt}"}, **kw)

    def ingest(self, i=0, srv=None, **kw):
        r = requests.post((srv or self.srv).url + SINGLE, json=log(**kw), headers={"X-API-Key": self.keys[i]},
                          timeout=scaled(10))
        assert r.status_code == 202, r.text
        return r

    def put_prefs(self, prefs):
        r = requests.put(self.srv.url + PREFS, json=prefs, headers={"Authorization": f"Bearer {self.jwt}"},
                         timeout=scaled(10))
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def world(ledgerd, db, rc, jwt_secret_file):
    def make(**kw):
        return World(ledgerd, db, rc, jwt_secret_file, **kw)

    return make


def connected(s):
    ev = s.next()
    assert ev and ev["event"] == "connected", ev
    return ev


# ---- format -------------------------------------------------------------------------------------


def test_head_and_event_bytes(world, rc):
    w = world()
    s = w.stream()
    assert s.status == 200
    assert s.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert s.headers["cache-control"] == "no-cache"
    assert s.headers["connection"] == "keep-alive"
    assert s.headers["x-accel-buffering"] == "no"
    assert s.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in s.headers

    raw = s.next_raw()
    m = re.fullmatch(rb'event: connected\r\ndata: \{"timestamp": "(' + ISO_Z.encode() + rb')", "projects": \[(\d+)\]\}\r\n\r\n',
                     raw)
    assert m, raw
    assert int(m.group(3)) == w.pids[0]

    w.ingest(message="first failure", error_type="ValueError", attributes={"user": "ada", "n": 3})
    raw = s.next_raw()
    # The id is the entry of the project's replay stream, whose payload is the published §5.2 JSON.
    entries = rc.xrange(f"notifications:replay:{w.pids[0]}")
    assert len(entries) == 1
    eid, fields = entries[0]
    assert raw == b"id: " + eid + b"\r\nevent: error_notification\r\ndata: " + fields[b"d"] + b"\r\n\r\n"
    data = json.loads(fields[b"d"])
    assert data["log_id"] is None and data["project_id"] == w.pids[0]
    assert data["level"] == "error" and data["message"] == "first failure"
    assert data["error_type"] == "ValueError" and data["attributes"] == {"user": "ada", "n": 3}
    assert list(data) == ["log_id", "project_id", "level", "log_type", "message", "error_type", "timestamp",
                          "error_fingerprint", "attributes", "sdk_version", "platform"]

    # Only notifiable logs are sent.
    w.ingest(level="info", message="fine")
    w.ingest(level="warning", log_type="exception", error_type="KeyError", message="exc")
    ev = s.next()
    assert ev["event"] == "error_notification" and ev["data"]["message"] == "exc"
    s.close()


def test_http10_stream_is_close_delimited(world):
    w = world()
    s = w.stream(http10=True)
    assert s.status == 200 and "transfer-encoding" not in s.headers
    assert s.headers["connection"] == "close"
    assert connected(s)
    w.ingest(message="over 1.0")
    assert s.next()["data"]["message"] == "over 1.0"
    s.close()


# ---- authentication -----------------------------------------------------------------------------


def test_auth_methods(world):
    w = world(nprojects=2)
    cases = [
        ({"X-API-Key": w.keys[0]}, STREAM, [w.pids[0]]),
        ({"Authorization": f"Bearer {w.keys[1]}"}, STREAM, [w.pids[1]]),
        ({"Authorization": f"Bearer {w.jwt}"}, STREAM, sorted(w.pids)),
        ({}, STREAM + "?token=" + w.jwt, sorted(w.pids)),
        ({}, STREAM + "?token=" + w.keys[1], [w.pids[1]]),
        ({"Cookie": f"theme=dark; access_token={w.jwt}"}, STREAM, sorted(w.pids)),
    ]
    for headers, path, projects in cases:
        s = Sse(w.srv.port, headers, path=path)
        assert s.status == 200, (headers, path, s.body)
        ev = connected(s)
        assert ev["data"]["projects"] == projects, (headers, path)
        s.close()

    for headers, path in [({}, STREAM), ({}, STREAM + "?token=nope"), ({"Cookie": "access_token=a.b.c"}, STREAM),
                          ({"Authorization": "Bearer a.b.c"}, STREAM + "?token=" + w.jwt)]:
        s = Sse(w.srv.port, headers, path=path)
        assert s.status == 401, (headers, path)
        s.close()
    # ?token= is only for the stream.
    r = requests.get(w.srv.url + PREFS + "?token=" + w.jwt, timeout=scaled(10))
    assert r.status_code == 401


def test_login_sets_the_cookie_the_stream_reads(world):
    """A browser's EventSource sends cookies, not headers: login's access_token cookie (scoped to
    /api/v1, read only by the event streams) opens the stream; logout clears it."""
    w = world()
    email = "cookie-" + os.urandom(4).hex() + "@example.com"
    sess = requests.Session()
    r = sess.post(w.srv.url + "/api/v1/accounts/register",
                  json={"email": email, "password": "Cookie-Passw0rd", "name": "C"}, timeout=scaled(30))
    assert r.status_code == 201, r.text
    jar = {c.name: c for c in sess.cookies}
    assert jar["access_token"].path == "/api/v1"
    assert jar["access_token"].value == r.json()["access_token"]
    s = Sse(w.srv.port, {"Cookie": f"access_token={jar['access_token'].value}"})
    assert s.status == 200, s.body
    assert connected(s)["data"]["projects"] == []
    s.close()
    r = sess.post(w.srv.url + "/api/v1/accounts/logout",
                  headers={"Authorization": "Bearer " + jar["access_token"].value}, timeout=scaled(10))
    assert r.status_code == 204
    assert "access_token" not in {c.name for c in sess.cookies}


def test_disabled(world):
    w = world(ini={"notifications": {"enabled": False}})
    s = w.stream()
    assert s.status == 503
    assert s.json_body() == {"detail": "Notifications are currently disabled"}


def test_account_without_projects_stays_open(world, db, rc, jwt_secret_file):
    w = world(ini={"notifications": {"heartbeat_ms": 200}})
    d = db()
    acct = d.account()
    tok = mint_jwt(read_secret(jwt_secret_file), acct, open_session(rc, acct))
    s = Sse(w.srv.port, {"Authorization": f"Bearer {tok}"})
    assert connected(s)["data"]["projects"] == []
    ev = s.next(skip=("ping",))
    assert ev["event"] == "heartbeat"
    s.close()


# ---- preferences --------------------------------------------------------------------------------


def test_preferences_filter_and_live_reread(world):
    w = world(nprojects=2)
    p1, p2 = w.pids
    w.put_prefs({"enabled": True, "projects": {str(p1): {"enabled": False}}})
    s = w.session_stream()
    connected(s)
    w.ingest(0, message="p1 muted")
    w.ingest(1, message="p2 loud")
    ev = s.next()
    assert ev["data"]["message"] == "p2 loud"
    assert s.quiet(0.3)

    # A change applies to the open stream, without reconnecting.
    w.put_prefs({"enabled": True, "projects": {str(p1): {"enabled": True, "levels": ["CRITICAL"]}}})
    time.sleep(0.3)
    w.ingest(0, message="p1 error")
    w.ingest(0, level="critical", message="p1 critical")
    assert s.next()["data"]["message"] == "p1 critical"

    w.put_prefs({"projects": {str(p1): {"types": ["exception"]}}})
    time.sleep(0.3)
    w.ingest(0, message="p1 console")
    w.ingest(0, level="warning", log_type="exception", error_type="E", message="p1 exception")
    assert s.next()["data"]["message"] == "p1 exception"

    w.put_prefs({"enabled": False, "projects": {}})
    time.sleep(0.3)
    w.ingest(1, message="all off")
    assert s.quiet(0.5)

    w.put_prefs({"enabled": True, "projects": {}})
    time.sleep(0.3)
    w.ingest(1, message="back on")
    assert s.next()["data"]["message"] == "back on"
    s.close()


# ---- bounds -------------------------------------------------------------------------------------


def test_per_account_cap(world, rc):
    w = world()
    streams = [w.stream() for _ in range(5)]
    for s in streams:
        assert s.status == 200
        connected(s)
    sixth = w.session_stream()
    assert sixth.status == 429
    assert sixth.headers["retry-after"].isdigit()
    assert "limit 5" in sixth.json_body()["detail"]
    sixth.close()
    # Closing one frees its slot.
    streams.pop().close()
    deadline = time.monotonic() + scaled(5)
    while rc.zcard(f"notifications:streams:{w.acct}") > 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    again = w.stream()
    assert again.status == 200
    streams.append(again)
    for s in streams:
        s.close()


def test_slow_reader_is_disconnected(world):
    w = world(ini={"notifications": {"send_buffer_bytes": 4096}})
    slow = w.stream(rcvbuf=4096)
    assert slow.status == 200
    fast = w.stream()
    connected(fast)
    big = {"blob": "x" * 60000}
    got = 0
    for i in range(8):
        r = requests.post(w.srv.url + BATCH, json={"logs": [log(message=f"big {i}-{k}", attributes=big)
                                                             for k in range(20)]},
                          headers={"X-API-Key": w.keys[0]}, timeout=scaled(20))
        assert r.status_code == 202
        while fast.next(0.05):
            got += 1
        if "slow stream reader" in w.srv.log_text():
            break
    assert "slow stream reader" in w.srv.log_text()
    # The slow stream was cut: reading it now ends in EOF, short of everything that was sent.
    total = 0
    while slow.next_raw(2) is not None:
        total += 1
    assert slow.closed and total < got
    # The other stream is unaffected.
    w.ingest(message="still here")
    while True:
        ev = fast.next()
        assert ev is not None
        if ev["data"]["message"] == "still here":
            break
    fast.close()


# ---- cross-process, resume ----------------------------------------------------------------------


def test_cross_process_delivery_and_cap(world, ledgerd):
    w = world()
    other = ledgerd()
    s = w.stream(srv=other)
    connected(s)
    w.ingest(message="via the first process")
    ev = s.next()
    assert ev["data"]["message"] == "via the first process"
    # The per-account cap spans processes.
    more = [w.stream() for _ in range(2)] + [w.stream(srv=other) for _ in range(2)]
    assert all(m.status == 200 for m in more)
    sixth = w.stream(srv=other)
    assert sixth.status == 429
    for x in more + [s, sixth]:
        x.close()


def test_resume_with_last_event_id(world):
    w = world(nprojects=2)
    s = w.session_stream()
    connected(s)
    w.ingest(0, message="m0")
    first = s.next()
    assert first["data"]["message"] == "m0" and first["id"]
    s.close()

    for i in range(1, 4):
        w.ingest(i % 2, message=f"m{i}")
    s2 = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}", "Last-Event-ID": first["id"]})
    connected(s2)
    got = s2.events(3)
    assert [e["data"]["message"] for e in got] == ["m1", "m2", "m3"]
    ids = [first["id"]] + [e["id"] for e in got]
    key = [tuple(map(int, i.split("-"))) for i in ids]
    assert key == sorted(key) and len(set(ids)) == 4
    assert s2.quiet(0.3)  # nothing twice
    w.ingest(1, message="live")
    live = s2.next()
    assert live["data"]["message"] == "live"
    assert s2.quiet(0.3)
    s2.close()

    # A resume from the latest id replays nothing; from an older one, only what follows it.
    s3 = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}", "Last-Event-ID": live["id"]})
    connected(s3)
    assert s3.quiet(0.5)
    s3.close()
    s4 = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}", "Last-Event-ID": got[-1]["id"]})
    connected(s4)
    assert [e["data"]["message"] for e in s4.events(1)] == ["live"]
    assert s4.quiet(0.3)
    s4.close()
    # A malformed id is ignored: a plain live stream.
    s5 = Sse(w.srv.port, {"Authorization": f"Bearer {w.jwt}", "Last-Event-ID": "garbage"})
    connected(s5)
    assert s5.quiet(0.3)
    s5.close()


# The notifications role's publish script (src/roles/notify/publish.c), run here as a second
# publisher: an event is added to the project's replay stream and published in one step.
PUBLISH_LUA = """
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if ms < last then ms = last end
for i = 5, #ARGV do
  local id = string.format('%d-%d', ms, redis.call('INCR', KEYS[2]))
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], id, 'd', ARGV[i])
  redis.call('PUBLISH', ARGV[2], id .. '\\n' .. ARGV[i])
end
redis.call('SET', KEYS[3], ms)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


class SlowSubscribeProxy:
    """A TCP proxy in front of Redis that holds every client bytes carrying a SUBSCRIBE for
    `delay` seconds before passing them on: a subscription takes effect late, everything else
    (the replay read on the command connection) goes through at once."""

    def __init__(self, port, delay):
        self.target, self.delay = port, delay
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.delayed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.ls.accept()
                b = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                return
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a, b):
        try:
            while True:
                for s in select.select([a, b], [], [], 1)[0]:
                    data = s.recv(65536)
                    if not data:
                        raise OSError
                    if s is a and b"SUBSCRIBE" in data.upper():
                        self.delayed += 1
                        time.sleep(self.delay)
                    (b if s is a else a).sendall(data)
        except OSError:
            a.close()
            b.close()

    def close(self):
        self.ls.close()


def test_resume_misses_nothing_published_while_it_subscribes(world, rc, redis):
    # A resumed stream that is its project's first on the loop subscribes the project's channel and
    # reads the replay stream. An event published after the read but before the subscription took
    # effect would reach it neither way: the read waits for the SUBSCRIBE's confirmation. Here every
    # SUBSCRIBE reaches Redis 300 ms late while events are published without pause, and streams
    # resume one after the other, each from the last event the previous one got: each must get
    # every event after its id, without a gap.
    proxy = SlowSubscribeProxy(redis.port, 0.3)
    w = world(ini={"redis": {"port": proxy.port}, "notifications": {"replay_events": 100000}})
    pid = w.pids[0]
    keys = [f"notifications:replay:{pid}", "notifications:seq", "notifications:clock"]
    script = rc.register_script(PUBLISH_LUA)
    args = [100000, f"notifications:events:{pid}", f"notifications:errors:{pid}", 300000]
    stop = threading.Event()

    def publish(k):
        script(keys=keys, args=args + ["notification\n" + json.dumps({"k": k})])

    def publisher():
        k = 1
        while not stop.is_set():
            k += 1
            publish(k)
            time.sleep(0.002)

    publish(1)
    last_id, _ = rc.xrange(keys[0])[-1]
    last_id, last_k = last_id.decode(), 1
    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    try:
        for trial in range(4):
            delayed = proxy.delayed
            s = w.stream(headers={"X-API-Key": w.keys[0], "Last-Event-ID": last_id})
            connected(s)
            end = time.monotonic() + 0.6
            got = []
            while time.monotonic() < end:
                ev = s.next(2)
                assert ev is not None, (trial, got[-3:])
                got.append(ev)
            s.close()
            assert proxy.delayed > delayed  # this stream's SUBSCRIBE went through the delay
            ks = [e["data"]["k"] for e in got]
            assert ks == list(range(last_k + 1, last_k + 1 + len(ks))), (trial, last_k, ks[:10])
            last_id, last_k = got[-1]["id"], ks[-1]
            time.sleep(0.4)  # the stream's close unsubscribes: the next one subscribes again
    finally:
        stop.set()
        t.join(5)
        proxy.close()


# ---- timing, shutdown ---------------------------------------------------------------------------


def test_heartbeat_and_ping_timing(world):
    w = world(ini={"notifications": {"heartbeat_ms": 400, "ping_ms": 250}})
    s = w.stream()
    connected(s)
    t0 = time.monotonic()
    beats, pings = [], []
    while time.monotonic() - t0 < scaled(2.1):
        raw = s.next_raw(0.5)
        if raw is None:
            continue
        at = time.monotonic() - t0
        if raw.startswith(b": "):
            assert re.fullmatch(rb": ping - \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\r\n\r\n", raw), raw
            pings.append(at)
        else:
            assert re.fullmatch(rb'event: heartbeat\r\ndata: \{"timestamp": "' + ISO_Z.encode() + rb'"\}\r\n\r\n',
                                raw), raw
            beats.append(at)
    assert len(beats) >= 4 and len(pings) >= 7, (beats, pings)
    # The period is checked on the whole series (a wrong period shifts the mean gap), each event
    # against its slot on that schedule: a busy machine may deliver one event late, which lengthens
    # one gap and shortens the next, but never moves the schedule.
    for series, period in ((beats, 0.4), (pings, 0.25)):
        assert abs(series[0] - period) < 0.25, series
        mean_gap = (series[-1] - series[0]) / (len(series) - 1)
        assert abs(mean_gap - period) < 0.06, (period, series)
        assert all(abs(t - (series[0] + k * period)) < 0.25 for k, t in enumerate(series)), (period, series)
    s.close()


def test_shutdown_sends_final_event(world):
    w = world(ini={"notifications": {"shutdown_retry_ms": 2500}})
    s = w.stream()
    connected(s)
    w.srv.send_signal(signal.SIGTERM)
    raw = s.next_raw()
    assert re.fullmatch(rb'retry: 2500\r\nevent: shutdown\r\ndata: \{"timestamp": "' + ISO_Z.encode() +
                        rb'", "reason": "server shutting down"\}\r\n\r\n', raw), raw
    deadline = time.monotonic() + scaled(5)
    while not s.closed and time.monotonic() < deadline:
        if s._recv(0.2):
            s._dechunk()
    assert s.ended and s.closed and s.body == b""
    assert w.srv.proc.wait(scaled(15)) == 0
    s.close()


def test_pubsub_loss_is_replayed_to_open_streams(world, rc):
    # The loop's pub/sub connection is cut and comes back 1.5 s later: what was published meanwhile
    # reaches the open stream from the replay stream, once, in order.
    w = world(ini={"redis": {"reconnect_min_ms": 1500, "reconnect_max_ms": 1500}})
    s = w.stream()
    connected(s)
    w.ingest(message="before")
    assert s.next()["data"]["message"] == "before"
    killed = rc.client_kill_filter(_type="pubsub")
    assert killed >= 1
    w.ingest(message="during 1")
    w.ingest(message="during 2")
    got = s.events(2, timeout=8)
    assert [e["data"]["message"] for e in got] == ["during 1", "during 2"]
    w.ingest(message="after")
    assert s.next()["data"]["message"] == "after"
    assert s.quiet(0.3)
    s.close()
