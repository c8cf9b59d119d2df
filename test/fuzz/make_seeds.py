#!/usr/bin/python3
"""Writes the seed corpus of each fuzz harness into corpus/<target>/ (committed; re-run after
changing a seed). Inputs found by fuzzing runs go to var/fuzz/<target>, not here."""

import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- http ----------------------------------------------------------------------------------------

def req(method, path, headers=(), body=b"", version="HTTP/1.1"):
    h = "".join(f"{k}: {v}\r\n" for k, v in headers)
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        h += f"Content-Length: {len(body)}\r\n"
    return f"{method} {path} {version}\r\nHost: x\r\n{h}\r\n".encode() + body


gz = gzip.compress(b'{"k":"v"}' * 200)
http = {
    "get": req("GET", "/health"),
    "post": req("POST", "/api/v1/items/7?q=a%20b&x", [("Cookie", "a=1; access_token=tok")], b'{"a":1}'),
    "chunked": req("POST", "/api/v1/items/7", [("Transfer-Encoding", "chunked")], b"3\r\nabc\r\n0\r\n\r\n"),
    "gzip": req("POST", "/api/v1/items/7", [("Content-Encoding", "gzip")], gz),
    "continue": req("POST", "/api/v1/items/7", [("Expect", "100-continue"), ("Content-Length", "2")]) + b"{}",
    "deny": req("POST", "/api/v1/items/7", [("X-Deny", "1"), ("Content-Length", "100000")]),
    "pipelined": req("GET", "/health") + req("POST", "/login", body=b"x") + req("GET", "/api/v1/items", [("X-204", "1")]),
    "proxy": req("GET", "/api/v1/items", [("X-Forwarded-For", "203.0.113.9, 10.0.0.1"),
                                          ("Forwarded", 'for="[2001:db8::1]:80";proto=https')]),
    "preflight": req("OPTIONS", "/api/v1/items/3", [("Origin", "https://a.example"),
                                                    ("Access-Control-Request-Method", "POST")]),
    "cors": req("GET", "/health", [("Origin", "https://b.example"), ("X-Extra", "1")]),
    "notfound": req("POST", "/nope", body=b"abc"),
    "method": req("PATCH", "/api/v1/items/1", body=b"abc"),
    "fallback": req("GET", "/app/some/page"),
    "head": req("HEAD", "/health"),
    "http10": req("GET", "/health", version="HTTP/1.0"),
    "small": req("PUT", "/api/v1/items/1/2", body=b"z" * 2000),
    "bad": b"GET /health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "huge_cl": req("POST", "/login", [("Content-Length", "18446744073709551615")]),
    "garbage": b"\x00\xff GET / HTTP/9.9\r\n\r\n",
}
for k, v in http.items():
    write("http", k, v)

# ---- logentry ------------------------------------------------------------------------------------

logs = [
    '{"timestamp":"2025-01-15T10:30:45.123+05:30","level":"error","log_type":"exception","message":"boom",'
    '"error_type":"ValueError","error_message":"bad","stack_trace":"Traceback\\n  File x","attributes":'
    '{"user":{"id":7,"tags":["a","b"]},"n":1.5,"ok":true,"none":null},"importance":"high",'
    '"environment":"prod","release":"1.2.3","sdk_version":"0.1","platform":"python","platform_version":"3.11"}',
    '{"timestamp":"2025-01-15T10:30:45Z","level":"info","log_type":"console","message":"hello"}',
    '[{"timestamp":"2025-01-15T10:30:45","level":"warning","log_type":"network","message":"x","attributes":{}}]',
    '{"timestamp":1736937045,"level":"critical","log_type":"custom","message":"' + "\\u00e9" * 10 + '"}',
    '{"level":"debug","log_type":"logger","message":"","error_fingerprint":"' + "a" * 64 + '"}',
]
for i, v in enumerate(logs):
    write("logentry", f"log{i}", v)

# ---- logcodec (MessagePack) ---------------------------------------------------------------------


def mp(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, list):
        return (bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))) + b"".join(map(mp, v))
    if isinstance(v, dict):
        return (bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))) + b"".join(
            mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


ts = 1736937045123000
e1 = [2, 42, ts, 330, ts + 5000, "error", "exception", "high", "prod", "1.2.3", "boom", "ValueError", "bad",
      "Traceback", {"user": {"id": 7, "tags": ["a", "b"]}, "n": 1.5, "ok": True}, "0.1", "python", "3.11", "a" * 64]
e2 = [2, 42, ts, 0, ts, "info", "console", "normal", None, None, "hi", None, None, None, None, None, None, None, None]
m1 = {"project_id": 42, "timestamp": "2025-01-15T10:30:45.123000+05:30", "level": "error", "log_type": "console",
      "importance": "normal", "message": "m", "attributes": {"k": "v"}, "ts_us": ts, "ingested_us": ts,
      "ingested_at": "2025-01-15T05:00:45.123000"}
write("logcodec", "array", mp(e1))
write("logcodec", "array_min", mp(e2))
write("logcodec", "map", mp(m1))
write("logcodec", "batch", mp(e1) + mp(e2) + mp(m1))

# ---- qlang ---------------------------------------------------------------------------------------

for i, q in enumerate(['level:error AND message:"payment timeout"', 'attributes.user.id:7 OR NOT level:info',
                       '(timeout OR refused) AND -retry', 'message:/pay(ment)?/ AND attributes.tags:a',
                       'error_type:ValueError\n{"message":"x","error_type":"ValueError","level":"error"}',
                       'attributes.n:>1 AND attributes.n:<=2', '"exact phrase" foo*', 'a AND (b OR (c AND NOT d))']):
    write("qlang", f"q{i}", q)

# ---- cursor --------------------------------------------------------------------------------------

import base64  # noqa: E402

for i, c in enumerate([b"g1:l:1765100000123456:1", b"g1:c:5:99", b"g1:f:-5:3", b"v1:1765100000123456:7"]):
    write("cursor", f"c{i}", base64.urlsafe_b64encode(c).rstrip(b"="))
write("cursor", "xff", "10.0.0.0/8, ::1\n203.0.113.9, 10.0.0.1")
write("cursor", "fwd", "127.0.0.1\nfor=\"[2001:db8::1]:4711\";proto=https, for=10.0.0.3")

# ---- ini -----------------------------------------------------------------------------------------

with open(os.path.join(HERE, "..", "..", "conf", "ledger.ini"), "rb") as f:
    write("ini", "ledger.ini", f.read())
write("ini", "small", "[server]\nport = 8080\nworkers = 2\ncors_origins = *\ntrusted_proxies = 10.0.0.0/8\n"
                      "[log]\nlevel = debug\n[roles]\ngateway = off\n[auth]\ncookie_secure = on\n")
write("ini", "bad", "[server]\nport = 99999\n[nope]\nx = 1\n")
