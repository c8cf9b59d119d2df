"""Raw HTTP/1.1 client helpers for the integration tests (test_http.py, test_lifecycle.py).

``requests`` hides what these tests look at (pipelining, 100 Continue, half-closes, exact framing,
when the server closes), so they speak HTTP over a plain socket.  Every wait is bounded and scaled
by LDG_TEST_TIMEOUT_MULT through conftest.scaled().
"""

import re
import socket
import time

from conftest import scaled

HEX16 = re.compile(r"^[0-9a-f]{16}$")


class Response:
    def __init__(self, status, reason, headers, body, head):
        self.status = status
        self.reason = reason
        self.header_list = headers  # [(name, value)] in wire order
        self.headers = {}  # lower-cased name -> last value
        for k, v in headers:
            self.headers[k.lower()] = v
        self.body = body
        self.head = head  # raw status line + headers

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        import json

        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class Closed(Exception):
    """The server closed the connection (FIN or RST) before a full response arrived."""


class RawConn:
    """One client connection. ``response()`` reads exactly one response; ``wait_closed()`` waits
    for the server to close.  Bytes read past a response stay buffered for the next call."""

    def __init__(self, port, host="127.0.0.1", rcvbuf=None, maxseg=None):
        """``rcvbuf`` and ``maxseg`` (set before connecting) keep the kernel from buffering much
        of a response the test does not read: a small MSS also keeps the server's send buffer
        from growing to megabytes on loopback."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if maxseg:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, maxseg)
        self.sock.settimeout(scaled(5))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline):
        """Read once more into buf. Returns False on EOF/RST; raises TimeoutError at the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the server in time")
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the server in time") from None
        except ConnectionResetError:
            b = b""
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def response(self, timeout=5, head=False):
        """Read one response (a 1xx interim response counts as one). ``head``: the request was
        HEAD, so no body follows whatever Content-Length says. ``timeout`` is scaled."""
        deadline = time.monotonic() + scaled(timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise Closed(f"connection closed; partial data {self.buf[:200]!r}")
        raw_head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", lines[0]
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name == name.strip(), f"bad header line {line!r}"
            headers.append((name, value.strip()))
        status = int(status)
        resp = Response(status, reason, headers, b"", raw_head)
        n = 0
        if not head and not (100 <= status < 200 or status in (204, 304)):
            assert resp.header("content-length") is not None, f"no Content-Length: {raw_head!r}"
            n = int(resp.header("content-length"))
        self.buf = rest
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise Closed(f"connection closed inside a body; have {self.buf[:200]!r}")
        resp.body, self.buf = self.buf[:n], self.buf[n:]
        return resp

    def final_response(self, timeout=5, head=False):
        """The next non-1xx response."""
        while True:
            r = self.response(timeout, head)
            if r.status >= 200:
                return r

    def wait_closed(self, timeout=5):
        """True if the server closes within ``timeout`` (scaled) seconds; extra bytes stay in buf."""
        deadline = time.monotonic() + scaled(timeout)
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        return True

    def quiet_for(self, seconds):
        """True if nothing arrives and the connection stays open for ``seconds`` (not scaled)."""
        try:
            self._fill(time.monotonic() + seconds)
        except TimeoutError:
            return True
        return False


def request(method, path, headers=None, body=b"", version="HTTP/1.1", host=True):
    """Serialise one request. ``headers`` is a list of (name, value) or a dict."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if host and not any(k.lower() == "host" for k, _ in items):
        items.insert(0, ("Host", "127.0.0.1"))
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in items):
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1") + body


def chunked(*parts):
    """A chunked body from byte strings (plus the terminating zero chunk)."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"


def exchange(port, data, timeout=5, head=False):
    """Open a connection, send ``data``, return the first final response."""
    with RawConn(port) as c:
        c.send(data)
        return c.final_response(timeout, head)


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Poll ``pred`` until true within ``timeout`` (scaled) seconds; returns its last value."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


_METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> list of (name, {label: value}, float). Raises on a malformed line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line)
        assert m, f"malformed metrics line: {line!r}"
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric(samples, name, **labels):
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == str(x) for k, x in labels.items()))
