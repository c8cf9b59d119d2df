"""The background sender: one thread, a bounded buffer, batches, retries and a circuit breaker.

Ownership and threading: the application's threads only append to the buffer (``enqueue``), under
one lock held for a few hundred nanoseconds. Everything else (JSON, gzip, HTTP, sleeping) happens on
the transport's own daemon thread, started lazily on the first log and again in a child process
after ``fork()``. No method of this module raises into the application; failures are counted and
reported in ``metrics()``, and the two that need a human (a refused API key, logs rejected by the
server) are said once on stderr.

Every wait has a deadline: HTTP calls have ``http_timeout``, retries follow fixed schedules,
``Retry-After`` is capped, ``flush()`` and ``shutdown()`` take a timeout. The buffer holds at most
``max_buffer_size`` logs; when full, the oldest log is dropped and counted.
"""

from __future__ import annotations

import collections
import email.utils
import gzip
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import uuid
import weakref

from ._version import __version__

INGEST_PATH = "/api/v1/ingest/batch"
SETTINGS_PATH = "/api/v1/settings"
USER_AGENT = "ledger-sdk-python/" + __version__

# Limits ledgerd enforces (GET /api/v1/settings "constraints" overrides them when it answers).
DEFAULT_CONSTRAINTS = {
    "max_batch_size": 1000,
    "max_message_length": 10000,
    "max_error_message_length": 5000,
    "max_stack_trace_length": 50000,
    "max_attributes_size_bytes": 100000,
    "max_environment_length": 20,
    "max_release_length": 100,
    "max_error_type_length": 255,
}
DEFAULT_RATE_LIMITS = (1000, 50000)  # requests per minute, per hour
TRUNCATED = "... [truncated]"

_STRICT = json.JSONEncoder(allow_nan=False)  # Python's default separators and ensure_ascii
_LENIENT = json.JSONEncoder(default=str)
_INF = float("inf")


def _small_flat(attrs, cap):
    """True when ``attrs`` holds only str keys and str/int/float/bool/None values whose encoded size is
    surely within ``cap`` (a bound: 12 bytes per character covers any escape), and no NaN/infinity."""
    if len(attrs) > 64:
        return False
    total = 2
    for k, v in attrs.items():
        if k.__class__ is not str:
            return False
        c = v.__class__
        if c is str:
            total += 12 * (len(k) + len(v)) + 8
        elif c is int:
            total += 12 * len(k) + v.bit_length() // 3 + 10
        elif c is float:
            if v != v or v == _INF or v == -_INF:
                return False
            total += 12 * len(k) + 34
        elif v is None or c is bool:
            total += 12 * len(k) + 13
        else:
            return False
    return total <= cap


# A log waiting in the buffer: built by the client in the calling thread, cheap to make.
# (time_ns, level, log_type, importance, message, attributes, error_type, error_message, stack_trace)


def _say(text: str) -> None:
    try:
        sys.stderr.write("ledger: " + text + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def _cap(s, n):
    if s is None:
        return None
    if not isinstance(s, str):
        s = str(s)
    if len(s) <= n:
        return s
    return s[: max(0, n - len(TRUNCATED))] + TRUNCATED


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (seconds, fractional seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Timestamps:
    """UTC `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` from nanoseconds, the seconds part cached."""

    def __init__(self):
        self._sec = None
        self._prefix = ""

    def format(self, t_ns: int) -> str:
        sec = t_ns // 1_000_000_000
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        us = (t_ns // 1000) % 1_000_000
        return "%s.%06dZ" % (self._prefix, us) if us else self._prefix + "Z"


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections to one origin: at most ``size`` kept idle, each dropped after
    ``idle_timeout`` seconds unused. Not thread-safe on its own: the transport thread owns it (the
    settings fetch and the batches all go through that thread)."""

    def __init__(self, base_url: str, size: int = 10, timeout: float = 5.0, idle_timeout: float = 30.0,
                 clock=time.monotonic):
        u = urllib.parse.urlsplit(base_url)
        self.scheme = u.scheme
        self.host = u.hostname or "localhost"
        self.port = u.port
        self.prefix = u.path.rstrip("/")
        self.size = max(1, int(size))
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.clock = clock
        self._idle = []  # [(conn, last_used)]
        self.opened = 0  # connections made, for metrics and tests

    def _new(self):
        self.opened += 1
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _get(self):
        now = self.clock()
        while self._idle:
            conn, used = self._idle.pop()
            if now - used < self.idle_timeout:
                return conn, True
            conn.close()
        return self._new(), False

    def _put(self, conn):
        if len(self._idle) >= self.size:
            conn.close()
            return
        self._idle.append((conn, self.clock()))

    def start(self, method: str, path: str, body=None, headers=None):
        """Write one request; returns a handle for ``finish``. A reused connection that fails on
        write (the server closed it while idle) is replaced by a new one at once. Raises OSError or
        HTTPException when the request cannot be written."""
        conn, reused = self._get()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest) if reused else ():
            conn.close()
            conn, reused = self._new(), False
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers or {})
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        return (conn, reused, method, path, body, headers)

    def finish(self, handle):
        """(status, headers dict with lower-case names, body bytes) of a started request. A reused
        connection closed by the server before any response (a keep-alive race) is retried once on a
        new connection; other failures raise OSError/HTTPException."""
        conn, reused, method, path, body, headers = handle
        try:
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) if reused else ():
            conn.close()
            return self.finish(self.start_new(method, path, body, headers))
        except BaseException:
            conn.close()
            raise
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            conn.close()
        else:
            self._put(conn)
        return resp.status, hdrs, data

    def start_new(self, method, path, body, headers):
        conn = self._new()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers or {})
        except BaseException:
            conn.close()
            raise
        return (conn, False, method, path, body, headers)

    def request(self, method: str, path: str, body=None, headers=None):
        """start + finish."""
        return self.finish(self.start(method, path, body, headers))

    def close(self):
        while self._idle:
            self._idle.pop()[0].close()

    def forget(self):
        """After fork(): drop the parent's sockets without touching them (closing our copy of the
        descriptor does not affect the parent's connection)."""
        for conn, _ in self._idle:
            try:
                if conn.sock is not None:
                    conn.sock.close()
            except Exception:
                pass
        self._idle = []


class _RateLimiter:
    """Client-side fixed windows per minute and per hour (aligned like the server's), set to the
    key's limits × ``factor``. ``delay()`` is how long to wait before the next request may go."""

    def __init__(self, per_minute, per_hour, factor, time_fn=time.time):
        self.factor = factor
        self.time_fn = time_fn
        self.set_limits(per_minute, per_hour)
        self.from_server = False  # limits read from GET /api/v1/settings
        self._min_window = self._hour_window = None
        self._min_count = self._hour_count = 0
        self.waits = 0

    def set_limits(self, per_minute, per_hour):
        self.per_minute = max(1, int(per_minute * self.factor))
        self.per_hour = max(1, int(per_hour * self.factor))

    def _roll(self, now):
        m, h = int(now // 60), int(now // 3600)
        if m != self._min_window:
            self._min_window, self._min_count = m, 0
        if h != self._hour_window:
            self._hour_window, self._hour_count = h, 0
        return m, h

    def delay(self) -> float:
        now = self.time_fn()
        m, h = self._roll(now)
        if self._hour_count >= self.per_hour:
            return (h + 1) * 3600 - now
        if self._min_count >= self.per_minute:
            return (m + 1) * 60 - now
        return 0.0

    def record(self):
        self._roll(self.time_fn())
        self._min_count += 1
        self._hour_count += 1

    def snapshot(self):
        return {"requests_per_minute": self.per_minute, "requests_per_hour": self.per_hour,
                "from_server": self.from_server,
                "used_this_minute": self._min_count, "used_this_hour": self._hour_count, "waits": self.waits}


class _Batch:
    """One encoded batch and its retry state; the Idempotency-Key is fixed for all its attempts."""

    __slots__ = ("body", "count", "headers", "handle", "error", "attempt", "final")

    def __init__(self, body, count):
        self.body = body
        self.count = count
        self.headers = None
        self.handle = None
        self.error = None
        self.attempt = 0
        self.final = False


class Transport:
    """See the module docstring. Options (all keyword, all with the documented defaults):

    ``retry_5xx_delays`` (2, 4, 8), ``retry_network_delays`` (5, 10, 20): seconds before each retry;
    ``retry_after_max`` (300): cap on a server's Retry-After; ``breaker_threshold`` (5) failed
    batches in a row open the breaker for ``breaker_cooldown`` (60) seconds; ``compress_level`` (1: on
    JSON logs about 8x smaller at a quarter of level 6's CPU);
    ``clock``/``time_fn``: monotonic and wall clocks (tests)."""

    def __init__(self, api_key, base_url, *, flush_interval=5.0, flush_size=1000, max_buffer_size=10000,
                 http_timeout=5.0, http_pool_size=10, rate_limit_buffer=0.9, environment=None, release=None,
                 platform_version="", retry_5xx_delays=(2, 4, 8), retry_network_delays=(5, 10, 20),
                 retry_after_max=300.0, breaker_threshold=5, breaker_cooldown=60.0, compress_level=1,
                 fetch_settings=True, clock=time.monotonic, time_fn=time.time):
        self.api_key = api_key
        self.base_url = base_url
        self.flush_interval = max(0.01, float(flush_interval))
        self.flush_size = max(1, int(flush_size))
        self.max_buffer_size = max(1, int(max_buffer_size))
        self.http_timeout = float(http_timeout)
        self.http_pool_size = int(http_pool_size)
        self.environment = environment
        self.release = release
        self.platform_version = platform_version
        self.retry_5xx_delays = tuple(retry_5xx_delays)
        self.retry_network_delays = tuple(retry_network_delays)
        self.retry_after_max = float(retry_after_max)
        self.breaker_threshold = int(breaker_threshold)
        self.breaker_cooldown = float(breaker_cooldown)
        self.compress_level = int(compress_level)
        self.fetch_settings = fetch_settings
        self.clock = clock
        self.time_fn = time_fn
        self.constraints = dict(DEFAULT_CONSTRAINTS)
        self.limiter = _RateLimiter(*DEFAULT_RATE_LIMITS, rate_limit_buffer, time_fn)
        self._headers = {
            "Authorization": "Bearer " + api_key,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Connection": "keep-alive",
        }
        self._ts = _Timestamps()
        self._started_at = time_fn()
        self._init_runtime()
        self.counters = collections.Counter()
        self.errors = collections.Counter()
        self._said = set()
        self.disabled = False  # 401/403: no more sending
        self.last_success = None
        self.last_error = None
        self.consecutive_failures = 0
        self.breaker_open_until = None
        self._settings_due = 0.0
        ref = weakref.ref(self)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: (lambda t: t and t._after_fork())(ref()))

    # --- state that must be fresh in a forked child --------------------------------------------

    def _init_runtime(self):
        self.lock = threading.Lock()
        self.buffer = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Condition(threading.Lock())
        self._flush_req = 0
        self._flush_done = 0
        self._closing = False
        self._deadline = None
        self._thread = None
        self._pid = os.getpid()
        self.pool = ConnectionPool(self.base_url, self.http_pool_size, self.http_timeout, clock=self.clock)

    def _after_fork(self):
        # The parent keeps (and sends) what was buffered; the child starts empty, with a new thread
        # on its first log.
        old_pool = self.pool
        self._init_runtime()
        old_pool.forget()
        self.counters["forks"] += 1

    # --- called from application threads ---------------------------------------------------------

    def enqueue(self, item) -> None:
        if self.disabled or self._closing:
            self.counters["dropped_closed"] += 1
            return
        with self.lock:
            buf = self.buffer
            if len(buf) >= self.max_buffer_size:
                buf.popleft()
                self.counters["dropped_overflow"] += 1
            buf.append(item)
            n = len(buf)
        if self._thread is None:
            self._start()
        elif n >= self.flush_size and self.breaker_open_until is None and not self._wake.is_set():
            self._wake.set()

    def _start(self):
        with self._done:
            if self._thread is not None or self._closing:
                return
            t = threading.Thread(target=self._run, name="ledger-transport", daemon=True)
            self._thread = t
            t.start()

    def flush(self, timeout=10.0) -> bool:
        """Send everything buffered now; True when the buffer was drained within ``timeout``."""
        if self._thread is None:
            if not self.buffer:
                return True
            self._start()
        failed = self.counters["failed_batches"]
        with self._done:
            self._flush_req += 1
            want = self._flush_req
        self._wake.set()
        deadline = self.clock() + timeout
        with self._done:
            while self._flush_done < want:
                left = deadline - self.clock()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._done.wait(min(left, 0.5))
        return not self.buffer and not self.disabled and self.counters["failed_batches"] == failed

    def shutdown(self, timeout=10.0) -> bool:
        """Send what is buffered (within ``timeout``), then stop the thread. Idempotent."""
        failed = self.counters["failed_batches"]
        self._deadline = self.clock() + max(0.0, timeout)
        self._closing = True
        self._stop.set()
        t = self._thread
        if t is None and self.buffer and not self.disabled:
            # Never started (e.g. logs buffered, then shutdown at once): run the sender here.
            self._thread = threading.current_thread()
            try:
                self._run()
            finally:
                self._thread = None
            return not self.buffer and self.counters["failed_batches"] == failed
        self._wake.set()
        if t is not None and t is not threading.current_thread():
            t.join(max(0.0, self._deadline - self.clock()) + 0.2)
        self.pool.close()
        return not self.buffer and not self.disabled and self.counters["failed_batches"] == failed

    # --- the transport thread ------------------------------------------------------------------

    def _sleep(self, seconds) -> bool:
        """Sleep ``seconds``; False (at once) when shutting down and the wait would pass the deadline."""
        if seconds <= 0:
            return True
        end = self.clock() + seconds
        while True:
            if self._closing and end > self._deadline:
                return False
            left = end - self.clock()
            if left <= 0:
                return True
            if self._closing:
                time.sleep(left)  # within the deadline (checked above)
            else:
                self._stop.wait(left)

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # never let the thread die silently
            self.last_error = f"transport crashed: {e!r}"
            _say(self.last_error)
        finally:
            with self._done:
                self._flush_done = self._flush_req
                self._done.notify_all()

    def _loop(self):
        next_flush = self.clock() + self.flush_interval
        while True:
            ready = len(self.buffer) >= self.flush_size and not self.breaker_is_open()
            if not self._closing and not ready and self._flush_req <= self._flush_done:
                until = next_flush
                if self.breaker_open_until is not None:
                    until = min(until, self.breaker_open_until)
                self._wake.wait(max(0.0, until - self.clock()))
            self._wake.clear()
            closing = self._closing
            want = self._flush_req
            due = self.clock() >= next_flush
            if self.fetch_settings and not self.disabled and self.clock() >= self._settings_due:
                self._load_settings()
            everything = due or closing or want > self._flush_done
            self._drain(everything)
            if due or everything:
                next_flush = self.clock() + self.flush_interval
            with self._done:
                self._flush_done = max(self._flush_done, want)
                self._done.notify_all()
            if closing:
                return

    def _take(self, n):
        with self.lock:
            buf = self.buffer
            k = min(n, len(buf))
            return [buf.popleft() for _ in range(k)]

    def _drain(self, everything):
        """Send batches while there is enough to send. One request is in flight at a time, but the
        next batch is taken and encoded while the server works on the previous one (the socket wait
        releases the GIL), so encoding and the server's time overlap."""
        batch_max = max(1, min(self.flush_size, int(self.constraints.get("max_batch_size") or 1000)))
        inflight = None
        while self.buffer and not self.disabled:
            if not everything and len(self.buffer) < self.flush_size:
                break
            if self._closing and self.clock() >= self._deadline:
                break
            if self.breaker_open_until is not None and self.clock() < self.breaker_open_until:
                break  # logs stay buffered (oldest dropped when full) until the breaker closes
            if inflight is not None and self.breaker_open_until is not None:
                break  # half-open: one batch at a time decides
            items = self._take(batch_max)
            if not items:
                break
            try:
                body = self._encode(items)
            except Exception as e:
                self.counters["dropped_encoding"] += len(items)
                self.last_error = f"could not encode a batch: {e!r}"
                continue
            req = self._new_batch(body, len(items))
            if inflight is not None:
                self._settle(inflight)
                if self.disabled or (self.breaker_open_until is not None and self.clock() < self.breaker_open_until):
                    self._requeue(items)
                    return
            self._begin(req)
            inflight = req
        if inflight is not None:
            self._settle(inflight)

    def _requeue(self, items):
        """Put a taken, unsent batch back at the front of the buffer (still bounded)."""
        with self.lock:
            buf = self.buffer
            room = self.max_buffer_size - len(buf)
            if room < len(items):
                self.counters["dropped_overflow"] += len(items) - max(room, 0)
                items = items[len(items) - max(room, 0):]
            buf.extendleft(reversed(items))

    def _settle(self, req):
        ok = self._finish(req)
        if ok:
            self.consecutive_failures = 0
            self.breaker_open_until = None
        elif ok is False:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.breaker_threshold or self.breaker_open_until is not None:
                if self.breaker_open_until is None:
                    self.counters["breaker_opened"] += 1
                self.breaker_open_until = self.clock() + self.breaker_cooldown
        # ok None: dropped for a reason retrying cannot fix (400), not a connectivity failure

    # --- encoding ---------------------------------------------------------------------------------

    def _encode(self, items) -> bytes:
        c = self.constraints
        fmt = self._ts.format
        pv = self.platform_version
        env, rel = self.environment, self.release
        max_attr = int(c.get("max_attributes_size_bytes") or 100000)
        max_msg = int(c.get("max_message_length") or 10000)
        logs = []
        for (t_ns, level, log_type, importance, message, attrs, etype, emsg, stack) in items:
            d = {"timestamp": fmt(t_ns), "level": level, "log_type": log_type, "importance": importance}
            if message:
                d["message"] = message if len(message) <= max_msg else _cap(message, max_msg)
            if etype:
                d["error_type"] = _cap(etype, c["max_error_type_length"])
                if emsg:
                    d["error_message"] = _cap(emsg, c["max_error_message_length"])
                if stack:
                    d["stack_trace"] = _cap(stack, c["max_stack_trace_length"])
            if attrs:
                d["attributes"] = attrs if attrs.__class__ is dict and _small_flat(attrs, max_attr) \
                    else self._attributes(attrs, max_attr)
            d["sdk_version"] = __version__
            d["platform"] = "python"
            if pv:
                d["platform_version"] = pv
            if env:
                d["environment"] = _cap(env, c["max_environment_length"])
            if rel:
                d["release"] = _cap(rel, c["max_release_length"])
            logs.append(d)
        raw = json.dumps({"logs": logs}, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
        self.counters["bytes_raw"] += len(raw)
        return gzip.compress(raw, self.compress_level)

    def _attributes(self, attrs, cap):
        """A JSON-safe attributes object whose Python-default json.dumps length (what ledgerd limits)
        is at most ``cap``: values it cannot encode become their str(), NaN and infinities null; past
        the cap, keys are kept in order while they fit and "_truncated": true is added."""
        if not isinstance(attrs, dict):
            attrs = {"value": attrs}
        if _small_flat(attrs, cap):
            return attrs  # the common case: a few scalars, no encoding needed to know it fits
        try:
            text = _STRICT.encode(attrs)
        except (TypeError, ValueError):
            try:
                attrs = json.loads(_LENIENT.encode(attrs), parse_constant=lambda _c: None)
                text = _STRICT.encode(attrs)
            except Exception:
                return {"_unserializable": True}
        if len(text) <= cap:
            return attrs
        out, used = {}, 2 + len('"_truncated": true') + 2
        for k, v in attrs.items():
            n = len(_STRICT.encode({k: v})) - 2 + 2
            if used + n > cap:
                break
            out[k] = v
            used += n
        out["_truncated"] = True
        return out

    # --- sending ------------------------------------------------------------------------------------

    def _load_settings(self):
        self._settings_due = self.clock() + 3600.0
        try:
            status, _, data = self.pool.request("GET", SETTINGS_PATH, headers={
                "Authorization": self._headers["Authorization"], "User-Agent": USER_AGENT,
                "Accept": "application/json"})
        except Exception as e:
            self._settings_due = self.clock() + 60.0
            self.errors["settings"] += 1
            self.last_error = f"GET {SETTINGS_PATH}: {type(e).__name__}: {e}"
            return
        if status in (401, 403):
            self._unauthorized(status)
            return
        if status != 200:
            self._settings_due = self.clock() + 60.0
            self.errors["settings"] += 1
            return
        try:
            s = json.loads(data)
            rl = s.get("rate_limits") or {}
            self.limiter.set_limits(int(rl.get("requests_per_minute") or DEFAULT_RATE_LIMITS[0]),
                                    int(rl.get("requests_per_hour") or DEFAULT_RATE_LIMITS[1]))
            for k, v in (s.get("constraints") or {}).items():
                if k in self.constraints and isinstance(v, int) and v > 0:
                    self.constraints[k] = v
            self.limiter.from_server = True
            self.counters["settings_loaded"] += 1
        except Exception:
            self.errors["settings"] += 1

    def _unauthorized(self, status):
        self.disabled = True
        self.errors["unauthorized"] += 1
        with self.lock:
            n = len(self.buffer)
            self.buffer.clear()
        self.counters["dropped_unauthorized"] += n
        self.last_error = f"API key refused ({status})"
        self._say_once("unauthorized", f"the server refused the API key (HTTP {status}); logs are no longer sent "
                                       f"(check LEDGER_API_KEY)")

    def _say_once(self, kind, text):
        if kind not in self._said:
            self._said.add(kind)
            _say(text)

    def _send(self, body, count):
        """POST one batch with its retries, synchronously (see _finish for the outcome)."""
        req = self._new_batch(body, count)
        self._begin(req)
        return self._finish(req)

    def _new_batch(self, body, count):
        req = _Batch(body, count)
        req.headers = dict(self._headers)
        req.headers["Idempotency-Key"] = uuid.uuid4().hex
        req.headers["Content-Length"] = str(len(body))
        self.counters["batches"] += 1
        return req

    def _begin(self, req):
        """Write the batch's request (after a client-side rate-limit wait); errors are kept in req."""
        req.handle = req.error = None
        delay = self.limiter.delay()
        if delay > 0:
            self.limiter.waits += 1
            if not self._sleep(delay):
                req.error = "rate limit wait past the shutdown deadline"
                req.final = True
                return
        self.limiter.record()
        self.counters["requests"] += 1
        try:
            req.handle = self.pool.start("POST", INGEST_PATH, req.body, req.headers)
        except Exception as e:
            req.error = e

    def _finish(self, req):
        """Wait for the batch's answer, retrying as the answer says. True: accepted; False: dropped
        after failures that count for the breaker; None: dropped for good (bad request, key refused)."""
        while True:
            if req.final:
                return self._drop(req.count, req.error)
            status = None
            if req.error is None:
                try:
                    status, hdrs, data = self.pool.finish(req.handle)
                except Exception as e:
                    req.error = e
            wait = None
            if status is None:
                e = req.error
                if isinstance(e, socket.timeout):
                    self.errors["timeout"] += 1
                    self.last_error = f"POST {INGEST_PATH}: timed out after {self.http_timeout:g}s"
                else:
                    self.errors["network"] += 1
                    self.last_error = f"POST {INGEST_PATH}: {type(e).__name__}: {e}"
                schedule = self.retry_network_delays
            else:
                if 200 <= status < 300:
                    self._accepted(data, req.count)
                    return True
                if status in (401, 403):
                    self._unauthorized(status)
                    self.counters["dropped_unauthorized"] += req.count
                    return None
                text = data[:200].decode("utf-8", "replace")
                self.last_error = f"POST {INGEST_PATH}: HTTP {status} {text}"
                retry_after = parse_retry_after(hdrs.get("retry-after"), self.time_fn())
                if status == 429:
                    self.errors["rate_limited"] += 1
                    schedule = self.retry_5xx_delays
                    wait = min(self.retry_after_max, retry_after if retry_after is not None else 60.0)
                elif status >= 500:
                    self.errors["server"] += 1
                    schedule = self.retry_5xx_delays
                    if retry_after is not None:
                        wait = min(self.retry_after_max, retry_after)
                else:  # 400, 402, 404, 413, ...: sending it again cannot succeed
                    self.errors["client"] += 1
                    self._drop(req.count, self.last_error)
                    return None
            if req.attempt >= len(schedule):
                return self._drop(req.count, self.last_error)
            pause = schedule[req.attempt] if wait is None else max(wait, 0.0)
            req.attempt += 1
            self.counters["retries"] += 1
            if not self._sleep(pause):
                return self._drop(req.count, "retry would pass the shutdown deadline")
            self._begin(req)

    def _drop(self, count, why):
        self.counters["failed_batches"] += 1
        self.counters["dropped_failed"] += count
        self.last_error = why
        return False

    def _accepted(self, data, count):
        self.counters["sent_batches"] += 1
        self.last_success = self.time_fn()
        accepted, rejected, errors = count, 0, None
        try:
            r = json.loads(data) if data else {}
            accepted = int(r.get("accepted", count))
            rejected = int(r.get("rejected", 0))
            errors = r.get("errors")
        except Exception:
            pass
        self.counters["sent_logs"] += accepted
        if rejected:
            self.counters["rejected_logs"] += rejected
            self.errors["rejected_logs"] += rejected
            first = errors[0] if isinstance(errors, list) and errors else "no detail"
            self._say_once("rejected", f"the server rejected {rejected} of {count} logs of a batch "
                                       f"(first: {first}); further rejections are only counted "
                                       f"(get_metrics()['errors']['rejected_logs'])")

    # --- introspection ---------------------------------------------------------------------------

    def breaker_is_open(self):
        return self.breaker_open_until is not None and self.clock() < self.breaker_open_until
