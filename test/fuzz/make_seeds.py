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

# ---- otlp ----------------------------------------------------------------------------------------
# First byte: signal (logs 0, traces 1, metrics 2) + 3 * encoding (protobuf 0, JSON 1) + 6 * a
# retention bound (fuzz_otlp.c); the rest is the request body. Protobuf is encoded by hand.

import json  # noqa: E402


def otlp(name, sig, enc, body, retention=0):
    sel = {"logs": 0, "traces": 1, "metrics": 2}[sig] + 3 * {"pb": 0, "json": 1}[enc] + 6 * retention
    write("otlp", f"{sig}_{enc}_{name}{'_retention' if retention else ''}", bytes([sel]) + (body if isinstance(body, bytes) else json.dumps(body).encode()))


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def f_varint(num, v):
    return varint(num << 3) + varint(v)


def f_bytes(num, b):
    b = b.encode() if isinstance(b, str) else b
    return varint(num << 3 | 2) + varint(len(b)) + b


def f_fixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<Q", v)


def f_double(num, v):
    return varint(num << 3 | 1) + struct.pack("<d", v)


def f_sfixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<q", v)


def any_pb(v):
    if isinstance(v, bool):
        return f_varint(2, int(v))
    if isinstance(v, int):
        return f_varint(3, v)
    if isinstance(v, float):
        return f_double(4, v)
    if isinstance(v, bytes):
        return f_bytes(7, v)
    if isinstance(v, list):
        return f_bytes(5, b"".join(f_bytes(1, any_pb(x)) for x in v))
    if isinstance(v, dict):
        return f_bytes(6, b"".join(f_bytes(1, kv_pb(k, x)) for k, x in v.items()))
    return f_bytes(1, v)


def kv_pb(key, value):
    return f_bytes(1, key) + f_bytes(2, any_pb(value))


def any_json(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [any_json(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": kvs_json(v)}}
    return {"stringValue": v}


def kvs_json(d):
    return [{"key": k, "value": any_json(v)} for k, v in d.items()]


def request_pb(items, resource, item_field=2):
    """Export*ServiceRequest: one resource, one scope holding `items` (already encoded)."""
    res = b"".join(f_bytes(1, kv_pb(k, v)) for k, v in resource.items())
    scope = f_bytes(1, f_bytes(1, "seed-scope") + f_bytes(2, "1.0"))
    return f_bytes(1, f_bytes(1, res) + f_bytes(2, scope + b"".join(f_bytes(item_field, i) for i in items)))


NOW_S = 1765100000  # fuzz_otlp.c's clock
T = (NOW_S - 600) * 10**9  # ten minutes before it, in ns
OLD = (NOW_S - 90 * 86400) * 10**9  # before a 30-day retention
TRACE, SPAN, PARENT = bytes.fromhex("5b8efff798038103d269b633813fc60c"), bytes.fromhex("eee19b7ec3c1b174"), \
    bytes.fromhex("00f067aa0ba902b7")
RES = {"service.name": "checkout", "service.version": "1.4.2", "deployment.environment.name": "prod",
       "telemetry.sdk.language": "python", "telemetry.sdk.version": "1.27.0", "process.runtime.version": "3.12.1"}
STACK = "Traceback (most recent call last):\n  File \"app.py\", line 3, in pay\nValueError: card declined"

# logs: (time_ns, severity, text, body, attributes, trace, span, event_name)
log_records = {
    "plain": (T, 9, "INFO", "user signed in", {"user.id": 7, "ratio": 0.5, "ok": True}, b"", b"", ""),
    "exception": (T, 17, "ERROR", "payment failed", {"exception.type": "ValueError", "exception.message":
                  "card declined", "exception.stacktrace": STACK, "ledger.importance": "high"}, TRACE, SPAN, ""),
    "endpoint": (0, 13, "", "GET /cart", {"http.request.method": "GET", "http.route": "/cart",
                 "http.response.status_code": 503, "ledger.duration_ms": 12.5}, b"", b"", "request"),
    "structured": (T, 5, "", {"event": "cache", "keys": ["a", "b", 3], "nested": {"deep": [{"x": 1.5}]}},
                   {"db.system": "postgresql", "code.function": "load", "tags": ["x", "y"]}, b"", b"", ""),
}


def log_pb(t, sev, text, body, attrs, trace, span, event):
    out = (f_fixed64(1, t) if t else b"") + (f_varint(2, sev) if sev else b"") + (f_bytes(3, text) if text else b"")
    out += f_bytes(5, any_pb(body)) + b"".join(f_bytes(6, kv_pb(k, v)) for k, v in attrs.items())
    out += (f_bytes(9, trace) if trace else b"") + (f_bytes(10, span) if span else b"")
    out += f_fixed64(11, T) + (f_bytes(12, event) if event else b"")
    return out


def log_json(t, sev, text, body, attrs, trace, span, event):
    out = {"observedTimeUnixNano": str(T), "severityNumber": sev, "severityText": text, "body": any_json(body),
           "attributes": kvs_json(attrs)}
    if t:
        out["timeUnixNano"] = str(t)
    if trace:
        out["traceId"], out["spanId"] = trace.hex(), span.hex()
    if event:
        out["eventName"] = event
    return out


for name, rec in log_records.items():
    otlp(name, "logs", "pb", request_pb([log_pb(*rec)], RES))
    otlp(name, "logs", "json", {"resourceLogs": [{"resource": {"attributes": kvs_json(RES)}, "scopeLogs": [
        {"scope": {"name": "seed-scope"}, "logRecords": [log_json(*rec)]}]}]})
otlp("batch", "logs", "pb", request_pb([log_pb(*r) for r in log_records.values()], RES))
otlp("named_severity", "logs", "json", {"resourceLogs": [{"scopeLogs": [{"logRecords": [
    {"timeUnixNano": T, "severityNumber": "SEVERITY_NUMBER_WARN", "body": {"stringValue": "disk 91% full"}},
    {"severityNumber": "SEVERITY_NUMBER_FATAL4", "body": {"bytesValue": "AAEC"}}]}]}]})
otlp("empty", "logs", "pb", b"")
otlp("empty", "logs", "json", {})


def span_pb(span, parent, name, kind, start, dur, attrs=None, events=(), status=None):
    out = f_bytes(1, TRACE) + f_bytes(2, span) + (f_bytes(4, parent) if parent else b"")
    out += f_bytes(5, name) + f_varint(6, kind) + f_fixed64(7, start) + f_fixed64(8, start + dur)
    out += b"".join(f_bytes(9, kv_pb(k, v)) for k, v in (attrs or {}).items())
    for ev_name, ev_t, ev_attrs in events:
        out += f_bytes(11, f_fixed64(1, ev_t) + f_bytes(2, ev_name) + b"".join(
            f_bytes(3, kv_pb(k, v)) for k, v in ev_attrs.items()))
    if status:
        out += f_bytes(15, f_bytes(2, status[1]) + f_varint(3, status[0]))
    return out


def span_json(span, parent, name, kind, start, dur, attrs=None, events=(), status=None):
    out = {"traceId": TRACE.hex(), "spanId": span.hex(), "name": name, "kind": kind,
           "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur), "attributes": kvs_json(attrs or {}),
           "events": [{"name": n, "timeUnixNano": str(t), "attributes": kvs_json(a)} for n, t, a in events]}
    if parent:
        out["parentSpanId"] = parent.hex()
    if status:
        out["status"] = {"code": status[0], "message": status[1]}
    return out


EXC = ("exception", T + 50_000_000, {"exception.type": "ValueError", "exception.message": "card declined",
                                     "exception.stacktrace": STACK})
spans = [
    (PARENT, b"", "GET /checkout", 2, T, 120_000_000, {"http.route": "/checkout", "http.response.status_code": 200}),
    (SPAN, PARENT, "charge\tcard", 3, T + 10_000_000, 90_000_000, {"peer.service": "stripe"}, [EXC], (2, "declined")),
    (bytes(8), PARENT, "bad ids", 1, T, 1000),  # refused: an all-zero span id
    (bytes.fromhex("1111111111111111"), PARENT, "too old", 1, OLD, 1000),  # refused under a retention
]
otlp("trace", "traces", "pb", request_pb([span_pb(*s) for s in spans], RES))
otlp("trace", "traces", "pb", request_pb([span_pb(*s) for s in spans], RES), retention=1)
otlp("trace", "traces", "json", {"resourceSpans": [{"resource": {"attributes": kvs_json(RES)}, "scopeSpans": [
    {"spans": [span_json(*s) for s in spans]}]}]})
otlp("named_enums", "traces", "json", {"resourceSpans": [{"scopeSpans": [{"spans": [
    dict(span_json(*spans[1]), kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR", "message": "x"})]}]}]})
otlp("empty", "traces", "pb", b"")


def num_pb(t, value, attrs=None, start=0):
    out = (f_fixed64(2, start) if start else b"") + f_fixed64(3, t)
    out += f_double(4, value) if isinstance(value, float) else f_sfixed64(6, value)
    return out + b"".join(f_bytes(7, kv_pb(k, v)) for k, v in (attrs or {}).items())


def hist_pb(t, count, total, bounds, counts, mn, mx, attrs=None):
    out = f_fixed64(3, t) + f_fixed64(4, count) + f_double(5, total)
    out += f_bytes(6, b"".join(struct.pack("<Q", c) for c in counts))
    out += f_bytes(7, b"".join(struct.pack("<d", b) for b in bounds))
    out += b"".join(f_bytes(9, kv_pb(k, v)) for k, v in (attrs or {}).items())
    return out + f_double(11, mn) + f_double(12, mx)


gauge = f_bytes(1, "cpu.temp") + f_bytes(3, "Cel") + f_bytes(5, b"".join(f_bytes(1, p) for p in [
    num_pb(T, 41.5, {"host": "a"}), num_pb(T + 10**9, 43.0, {"host": "b"}), num_pb(0, 1.0)]))
total = f_bytes(1, "http.requests") + f_bytes(3, "1") + f_bytes(7, b"".join(f_bytes(1, p) for p in [
    num_pb(T, 100, {"http.route": "/a"}, start=T - 60 * 10**9), num_pb(OLD, 7)]) + f_varint(2, 2) + f_varint(3, 1))
hist = f_bytes(1, "latency") + f_bytes(3, "ms") + f_bytes(9, f_bytes(1, hist_pb(
    T, 10, 300.0, [10.0, 100.0], [5, 4, 1], 1.0, 250.0, {"http.route": "/a"})) + f_varint(2, 1))
expo = f_bytes(1, "expo") + f_bytes(10, f_bytes(1, b""))
summary = f_bytes(1, "summary") + f_bytes(11, f_bytes(1, b"") + f_bytes(1, b""))
otlp("all_types", "metrics", "pb", request_pb([gauge, total, hist, expo, summary], RES))
otlp("all_types", "metrics", "pb", request_pb([gauge, total, hist], RES), retention=1)
otlp("all_types", "metrics", "json", {"resourceMetrics": [{"resource": {"attributes": kvs_json(RES)}, "scopeMetrics": [
    {"metrics": [
        {"name": "queue.size", "unit": "{item}", "gauge": {"dataPoints": [
            {"timeUnixNano": str(T), "asInt": "7", "attributes": kvs_json({"queue": "mail"})},
            {"timeUnixNano": str(T), "asDouble": "NaN"}]}},
        {"name": "bytes.sent", "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                                       "isMonotonic": True, "dataPoints": [
                                           {"startTimeUnixNano": str(T - 10**9), "timeUnixNano": str(T), "asInt": 4096}]}},
        {"name": "latency", "unit": "ms", "histogram": {"aggregationTemporality": 1, "dataPoints": [
            {"timeUnixNano": str(T), "count": "3", "sum": 6, "bucketCounts": ["1", 2], "explicitBounds": [2.5],
             "min": 1, "max": 3}]}},
        {"name": "e", "exponentialHistogram": {"dataPoints": [{}]}},
        {"name": "s", "summary": {"dataPoints": [{}]}}]}]}]})
otlp("empty", "metrics", "json", {"resourceMetrics": []})
