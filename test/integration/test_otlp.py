"""OTLP/HTTP logs receiver (docs/otlp.md): POST /v1/logs with protobuf and OTLP/JSON bodies, gzip,
every error status with its google.rpc.Status body, partial success, quota as partial success,
rate limit and backpressure with Retry-After, and the mapping of every field read back through
GET /api/v1/logs against a real ledgerd, PostgreSQL and Redis.

Protobuf bodies are built by hand with the small wire-format encoder below (no protobuf package):
the field numbers are those of the public OTLP definitions."""

import gzip
import json
import os
import struct
import time

import pytest
import requests

from conftest import scaled
from ldg_http import wait_until

LOGS_URL = "/v1/logs"
PB = "application/x-protobuf"
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")


# ---- protobuf wire format -------------------------------------------------------------------------


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, v):
    return varint(num << 3) + varint(v)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(num << 3 | 2) + varint(len(b)) + b


def f_fixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<Q", v)


def f_double(num, v):
    return varint(num << 3 | 1) + struct.pack("<d", v)


def any_value(v):
    if isinstance(v, bool):
        return f_varint(2, int(v))
    if isinstance(v, int):
        return f_varint(3, v)
    if isinstance(v, float):
        return f_double(4, v)
    if isinstance(v, bytes):
        return f_bytes(7, v)
    if isinstance(v, list):
        return f_bytes(5, b"".join(f_bytes(1, any_value(x)) for x in v))
    if isinstance(v, dict):
        return f_bytes(6, b"".join(f_bytes(1, kv(k, x)) for k, x in v.items()))
    return f_bytes(1, v)


def kv(key, value):
    return f_bytes(1, key) + f_bytes(2, any_value(value))


def pb_record(time_ns=None, severity=0, text="", body=None, attrs=None, trace=b"", span=b""):
    out = b""
    if time_ns:
        out += f_fixed64(1, time_ns)
    if severity:
        out += f_varint(2, severity)
    if text:
        out += f_bytes(3, text)
    if body is not None:
        out += f_bytes(5, any_value(body))
    for k, v in (attrs or {}).items():
        out += f_bytes(6, kv(k, v))
    if trace:
        out += f_bytes(9, trace)
    if span:
        out += f_bytes(10, span)
    out += f_bytes(99, b"an unknown field")  # skipped
    return out


def pb_request(records, resource=None, scope="test-scope"):
    res = b"".join(f_bytes(1, kv(k, v)) for k, v in (resource or {}).items())
    sl = f_bytes(1, f_bytes(1, scope)) + b"".join(f_bytes(2, r) for r in records)
    rl = f_bytes(1, res) + f_bytes(2, sl)
    return f_bytes(1, rl)


def pb_fields(data):
    """Decode one message level: {field: [values]} (varints as int, length-delimited as bytes)."""
    out, i = {}, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wt == 1:
            v, i = data[i:i + 8], i + 8
        else:
            v, i = data[i:i + 4], i + 4
        out.setdefault(num, []).append(v)
    return out


def _read_varint(data, i):
    r = shift = 0
    while True:
        b = data[i]
        i += 1
        r |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return r, i


def pb_status(data):
    f = pb_fields(data)
    return f.get(1, [0])[0], f.get(2, [b""])[0].decode()


def pb_partial(data):
    """ExportLogsServiceResponse → (rejected, message); (0, '') when empty."""
    f = pb_fields(data)
    if 1 not in f:
        return 0, ""
    ps = pb_fields(f[1][0])
    return ps.get(1, [0])[0], ps.get(2, [b""])[0].decode()


# ---- environment ------------------------------------------------------------------------------------


class Env:
    def __init__(self, ledgerd, db, ingest=None, storage=True, server=None, quota=1000000, rpm=100000):
        tag = os.urandom(5).hex()
        ini = {"ingest": {"stream": f"test:logs:{tag}", **(ingest or {})},
               "storage": {"group": f"test:group:{tag}", "dead_letter_stream": f"test:dead:{tag}",
                           "batch_wait_ms": 20}}
        if not storage:
            ini["roles"] = {"storage": False}
        if server:
            ini["server"] = server
        self.srv = ledgerd(extra_ini=ini)
        d = db()
        self.pid = d.project(d.account(), daily_quota=quota)
        self.key, _ = d.key(self.pid, rpm=rpm, rph=1000000)

    def post(self, body, ctype=PB, headers=None, auth=True):
        h = {"Content-Type": ctype, **(headers or {})}
        if auth:
            h["Authorization"] = "Bearer " + self.key
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return requests.post(self.srv.url + LOGS_URL, data=body, headers=h, timeout=scaled(10))

    def logs(self, **params):
        r = requests.get(self.srv.url + "/api/v1/logs", params={"limit": 100, **params},
                         headers={"X-API-Key": self.key}, timeout=scaled(10))
        assert r.status_code == 200, r.text
        return r.json()["logs"]

    def wait_logs(self, n, **params):
        got = []

        def enough():
            got[:] = self.logs(**params)
            return len(got) >= n

        wait_until(enough, scaled(15), what=f"{n} logs stored")
        return got


@pytest.fixture
def env(ledgerd, db):
    return lambda **kw: Env(ledgerd, db, **kw)


RESOURCE = {"service.name": "checkout", "service.version": "2.4.1", "deployment.environment": "production",
            "telemetry.sdk.language": "nodejs", "telemetry.sdk.version": "1.30.1",
            "process.runtime.version": "20.1.0", "host.name": "not-kept"}


def now_ns(delta_s=0):
    return (int(time.time()) + delta_s) * 1_000_000_000 + 123_456_000


# ---- mapping ----------------------------------------------------------------------------------------


def test_protobuf_logs_mapped_field_by_field(env):
    e = env()
    t = now_ns(-5)
    stack = 'Traceback (most recent call last):\n  File "/app/pay.py", line 12, in charge\nValueError: no'
    records = [
        pb_record(t, severity=9, text="INFO", body="user signed in", attrs={"user.id": 42, "plan": "pro"},
                  trace=TRACE, span=SPAN),
        pb_record(t + 1000, severity=17, body="payment failed",
                  attrs={"exception.type": "ValueError", "exception.message": "no", "exception.stacktrace": stack}),
        pb_record(t + 2000, severity=13, body="GET /orders",
                  attrs={"http.request.method": "GET", "http.route": "/orders/{id}", "http.response.status_code": 404,
                         "ledger.duration_ms": 12.5}),
        pb_record(t + 3000, severity=5, body="select", attrs={"db.system": "postgresql"}),
        pb_record(t + 4000, severity=21, body={"k": [1, True]}, attrs={"code.function": "main",
                                                                         "ledger.importance": "low"}),
        pb_record(0, severity=0, text="WARNING", body="no time", attrs={"ledger.log_type": "console"}),
    ]
    r = e.post(pb_request(records, RESOURCE))
    assert r.status_code == 200, r.content
    assert r.content == b""  # an empty ExportLogsServiceResponse (no Content-Type for no body)
    logs = e.wait_logs(6)
    by_msg = {lg["message"]: lg for lg in logs}

    info = by_msg["user signed in"]
    assert info["level"] == "info" and info["log_type"] == "custom" and info["importance"] == "standard"
    assert info["environment"] == "production" and info["release"] == "2.4.1"
    assert info["platform"] == "nodejs" and info["sdk_version"] == "1.30.1"
    assert info["platform_version"] == "20.1.0"
    assert info["timestamp"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)))
    assert ".123456" in info["timestamp"]
    a = info["attributes"]
    assert a["service"] == {"name": "checkout", "version": "2.4.1"}
    assert a["user"] == {"id": 42} and a["plan"] == "pro"
    assert a["trace_id"] == TRACE.hex() and a["span_id"] == SPAN.hex()
    assert "host" not in a

    exc = by_msg["payment failed"]
    assert exc["level"] == "error" and exc["log_type"] == "exception" and exc["importance"] == "high"
    assert exc["error_type"] == "ValueError" and exc["error_message"] == "no" and exc["stack_trace"] == stack
    assert len(exc["error_fingerprint"]) == 64
    assert "exception" not in exc["attributes"]

    ep = by_msg["GET /orders"]
    assert ep["level"] == "warning" and ep["log_type"] == "endpoint"
    assert ep["attributes"]["endpoint"] == {"method": "GET", "path": "/orders/{id}", "status_code": 404,
                                            "duration_ms": 12.5}
    assert ep["attributes"]["http"]["route"] == "/orders/{id}"
    assert "ledger" not in ep["attributes"]

    dbl = by_msg["select"]
    assert dbl["level"] == "debug" and dbl["log_type"] == "database" and dbl["importance"] == "low"

    crit = by_msg['{"k":[1,true]}']
    assert crit["level"] == "critical" and crit["log_type"] == "logger" and crit["importance"] == "low"

    warn = by_msg["no time"]
    assert warn["level"] == "warning" and warn["log_type"] == "console"

    # the service and the trace id are searchable with the attribute filters
    assert len(e.logs(**{"attributes.service.name": "checkout"})) == 6
    assert len(e.logs(**{"attributes.service.name": "other"})) == 0
    found = e.logs(**{"attributes.trace_id": TRACE.hex()})
    assert [lg["message"] for lg in found] == ["user signed in"]
    # the exception formed an error group
    groups = requests.get(e.srv.url + "/api/v1/error-groups", headers={"X-API-Key": e.key},
                          params={"project_id": e.pid}, timeout=scaled(10))
    if groups.status_code == 200:
        assert exc["error_fingerprint"] in groups.text


def test_json_gzip_logs(env):
    e = env()
    t = now_ns(-3)
    body = {
        "resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "api"}},
                {"key": "deployment.environment.name", "value": {"stringValue": "staging"}},
            ], "droppedAttributesCount": 0},
            "scopeLogs": [{
                "scope": {"name": "s"},
                "logRecords": [
                    {"timeUnixNano": str(t), "severityNumber": "SEVERITY_NUMBER_ERROR", "severityText": "ERROR",
                     "body": {"stringValue": "json error"}, "traceId": TRACE.hex().upper(), "spanId": SPAN.hex(),
                     "attributes": [{"key": "n", "value": {"intValue": "7"}},
                                    {"key": "f", "value": {"doubleValue": 1.5}},
                                    {"key": "b", "value": {"boolValue": True}},
                                    {"key": "l", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}},
                                    {"key": "m", "value": {"kvlistValue": {"values": [
                                        {"key": "inner", "value": {"intValue": 1}}]}}}],
                     "someFutureField": {"x": 1}},
                    {"timeUnixNano": t + 1000, "severityNumber": 1, "body": {"stringValue": "json trace"}},
                ],
            }],
        }],
    }
    r = e.post(gzip.compress(json.dumps(body).encode()), ctype="application/json",
               headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {}
    logs = {lg["message"]: lg for lg in e.wait_logs(2)}
    err = logs["json error"]
    assert err["level"] == "error" and err["environment"] == "staging" and err["log_type"] == "custom"
    assert err["attributes"] == {"service": {"name": "api"}, "n": 7, "f": 1.5, "b": True, "l": ["x"],
                                 "m": {"inner": 1}, "trace_id": TRACE.hex(), "span_id": SPAN.hex()}
    assert logs["json trace"]["level"] == "debug"


# ---- statuses ---------------------------------------------------------------------------------------


def test_partial_success_both_encodings(env):
    e = env()
    good = pb_record(now_ns(), severity=9, body="kept")
    bad_type = pb_record(now_ns(), severity=9, body="bad", attrs={"ledger.log_type": "bogus"})
    future = pb_record(now_ns(3600), severity=9, body="future")
    r = e.post(pb_request([good, bad_type, future]))
    assert r.status_code == 200
    rejected, msg = pb_partial(r.content)
    assert rejected == 2
    assert "Log record 1:" in msg and "log_type" in msg and "Log record 2:" in msg and "future" in msg
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": "ok"}},
        {"body": {"stringValue": "x"}, "attributes": [{"key": "ledger.importance", "value": {"stringValue": "?"}}]},
    ]}]}]}
    r = e.post(body, ctype="application/json")
    assert r.status_code == 200
    ps = r.json()["partialSuccess"]
    assert ps["rejectedLogRecords"] in ("1", 1) and "Log record 1:" in ps["errorMessage"]
    # every record rejected: still 200, nothing queued
    r = e.post(pb_request([bad_type]))
    assert r.status_code == 200 and pb_partial(r.content)[0] == 1
    assert sorted(lg["message"] for lg in e.wait_logs(2)) == ["kept", "ok"]


def test_error_statuses_have_status_bodies(env):
    e = env(ingest={"max_batch_body_bytes": 2048}, server={"max_inflated_bytes": 4096})
    one = pb_request([pb_record(now_ns(), severity=9, body="x")])
    # 415: another content type (answered in JSON)
    r = e.post(one, ctype="text/plain")
    assert r.status_code == 415 and r.json()["code"] == 3 and "application/x-protobuf" in r.json()["message"]
    # 400: undecodable protobuf → protobuf Status
    r = e.post(b"\x0a\xff\xff\xff", ctype=PB)
    assert r.status_code == 400 and r.headers["Content-Type"].startswith(PB)
    code, msg = pb_status(r.content)
    assert code == 3 and "ExportLogsServiceRequest" in msg
    # 400: nesting beyond the limit
    deep = "x"
    for _ in range(40):
        deep = [deep]
    r = e.post(pb_request([pb_record(now_ns(), body=deep)]))
    assert r.status_code == 400
    # 400: bad JSON and bad hex ids → JSON Status
    r = e.post("{not json", ctype="application/json")
    assert r.status_code == 400 and r.json()["code"] == 3
    r = e.post({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}, ctype="application/json")
    assert r.status_code == 400 and "traceId" in r.json()["message"]
    # 400: more than 1000 records
    r = e.post({"resourceLogs": [{"scopeLogs": [{"logRecords": [{}] * 1001}]}]}, ctype="application/json")
    assert r.status_code == 413 or (r.status_code == 400 and "1000" in r.json()["message"])
    # 401: no credentials, 401 bad key — as Status in the request's encoding
    r = e.post(one, auth=False)
    assert r.status_code == 401 and pb_status(r.content)[0] == 16
    r = e.post(one, auth=False, headers={"X-API-Key": "ledger_" + "A" * 43})
    assert r.status_code == 401 and pb_status(r.content)[0] == 16
    # X-API-Key works as well as Bearer
    r = e.post(one, auth=False, headers={"X-API-Key": e.key})
    assert r.status_code == 200
    # 413: body over the route's limit; gzip inflating past the server's cap
    r = e.post(b"\x00" * 4000)
    assert r.status_code == 413 and pb_status(r.content)[0] == 3
    big = pb_request([pb_record(now_ns(), body="a" * 8000)])
    r = e.post(gzip.compress(big), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413 and r.headers["Content-Type"].startswith(PB)
    # bad gzip → 400
    r = e.post(b"not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and pb_status(r.content)[0] == 3


def test_rate_limit_429_with_retry_after(env):
    e = env(rpm=2, storage=False)
    left = 60 - time.time() % 60
    if left < 8:  # the per-minute window must not roll over between the posts
        time.sleep(left + 0.2)
    one = pb_request([pb_record(now_ns(), severity=9, body="x")])
    assert e.post(one).status_code == 200
    assert e.post(one).status_code == 200
    r = e.post(one)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    code, msg = pb_status(r.content)
    assert code == 8 and "rate limit" in msg


def test_backpressure_503_with_retry_after(env):
    e = env(ingest={"queue_max_depth": 2}, storage=False)
    two = pb_request([pb_record(now_ns(), severity=9, body="x"), pb_record(now_ns(), severity=9, body="y")])
    assert e.post(two).status_code == 200
    r = e.post(two)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert pb_status(r.content)[0] == 14


def test_quota_overrun_is_partial_success(env):
    e = env(quota=3, storage=False)
    three = pb_request([pb_record(now_ns(), severity=9, body=str(i)) for i in range(3)])
    r = e.post(three)
    assert r.status_code == 200 and pb_partial(r.content) == (0, "")
    r = e.post(three)
    assert r.status_code == 200
    rejected, msg = pb_partial(r.content)
    assert rejected == 3 and "quota" in msg.lower()
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "q"}}]}]}]}
    r = e.post(body, ctype="application/json")
    assert r.status_code == 200 and r.json()["partialSuccess"]["rejectedLogRecords"] in ("1", 1)


def test_empty_request_is_success(env):
    e = env(storage=False)
    r = e.post(b"")
    assert r.status_code == 200 and r.content == b""
    r = e.post({}, ctype="application/json")
    assert r.status_code == 200 and r.json() == {}


# ---- traces -----------------------------------------------------------------------------------------


def pb_span(trace, span, parent, name, kind, start_ns, dur_ns, attrs=None, events=(), status=None):
    out = f_bytes(1, trace) + f_bytes(2, span)
    if parent:
        out += f_bytes(4, parent)
    out += f_bytes(5, name) + f_varint(6, kind) + f_fixed64(7, start_ns) + f_fixed64(8, start_ns + dur_ns)
    for k, v in (attrs or {}).items():
        out += f_bytes(9, kv(k, v))
    for ev_name, ev_ns, ev_attrs in events:
        ev = f_fixed64(1, ev_ns) + f_bytes(2, ev_name) + b"".join(f_bytes(3, kv(k, v)) for k, v in ev_attrs.items())
        out += f_bytes(11, ev)
    if status:
        out += f_bytes(15, f_bytes(2, status[1]) + f_varint(3, status[0]))
    return out


def pb_traces(spans, resource):
    res = b"".join(f_bytes(1, kv(k, v)) for k, v in resource.items())
    ss = f_bytes(1, f_bytes(1, "scope")) + b"".join(f_bytes(2, s) for s in spans)
    return f_bytes(1, f_bytes(1, res) + f_bytes(2, ss))


def post_traces(e, body, ctype=PB):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return requests.post(e.srv.url + "/v1/traces", data=body, timeout=scaled(10),
                         headers={"Content-Type": ctype, "Authorization": "Bearer " + e.key})


def api(e, path, **params):
    return requests.get(e.srv.url + path, params=params, headers={"X-API-Key": e.key}, timeout=scaled(10))


def test_traces_multi_service(env):
    e = env()
    trace = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    root, child, grand = bytes.fromhex("b7ad6b7169203331"), bytes.fromhex("00f067aa0ba902b7"), bytes.fromhex(
        "1111111111111111")
    t0 = now_ns(-10)
    stack = "Error: db down\n    at q (/srv/db.js:1:1)"
    front = pb_traces([
        pb_span(trace, root, b"", "GET /checkout", 2, t0, 120_000_000, {"http.route": "/checkout"}),
        pb_span(trace, child, root, "POST backend", 3, t0 + 10_000_000, 90_000_000),
    ], {"service.name": "frontend", "deployment.environment": "prod"})
    r = post_traces(e, front)
    assert r.status_code == 200, r.content
    assert pb_partial(r.content) == (0, "")
    # the backend's part as OTLP/JSON, with an exception event, an error status and one bad span
    back = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "backend"}}]},
                               "scopeSpans": [{"spans": [
                                   {"traceId": trace.hex(), "spanId": grand.hex(), "parentSpanId": child.hex(),
                                    "name": "db query", "kind": "SPAN_KIND_INTERNAL",
                                    "startTimeUnixNano": str(t0 + 20_000_000),
                                    "endTimeUnixNano": str(t0 + 70_000_000),
                                    "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
                                    "events": [{"name": "exception", "timeUnixNano": str(t0 + 60_000_000),
                                                "attributes": [
                                                    {"key": "exception.type", "value": {"stringValue": "Error"}},
                                                    {"key": "exception.message", "value": {"stringValue": "db down"}},
                                                    {"key": "exception.stacktrace", "value": {"stringValue": stack}}]}]},
                                   {"traceId": trace.hex(), "spanId": "0000000000000000", "name": "bad",
                                    "startTimeUnixNano": str(t0)},
                               ]}]}]}
    r = post_traces(e, back, ctype="application/json")
    assert r.status_code == 200, r.text
    ps = r.json()["partialSuccess"]
    assert ps["rejectedSpans"] in ("1", 1) and "Span 1:" in ps["errorMessage"]

    # 200 means queued: the storage role writes the spans shortly after
    wait_until(lambda: len(api(e, f"/api/v1/traces/{trace.hex()}").json().get("spans", [])) == 3, scaled(15),
               what="the trace's spans stored")
    lst = api(e, "/api/v1/traces")
    assert lst.status_code == 200, lst.text
    traces = lst.json()["traces"]
    assert len(traces) == 1
    tr = traces[0]
    assert tr["trace_id"] == trace.hex() and tr["root_name"] == "GET /checkout" and tr["service"] == "frontend"
    assert tr["span_count"] == 3 and tr["error"] is True and abs(tr["duration_ms"] - 120) < 0.01
    assert lst.json()["next_cursor"] is None
    # filters
    assert api(e, "/api/v1/traces", service="backend").json()["traces"] == []
    assert len(api(e, "/api/v1/traces", operation="GET /checkout", errors_only="true").json()["traces"]) == 1
    assert api(e, "/api/v1/traces", min_duration_ms=500).json()["traces"] == []

    one = api(e, f"/api/v1/traces/{trace.hex()}")
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["span_count"] == 3 and sorted(body["services"]) == ["backend", "frontend"] and body["error"]
    spans = body["spans"]
    assert [s["name"] for s in spans] == ["GET /checkout", "POST backend", "db query"]
    assert [s["depth"] for s in spans] == [0, 1, 2]
    assert [s["offset_ms"] for s in spans] == [0, 10, 20]
    assert spans[0]["parent_span_id"] is None and spans[1]["parent_span_id"] == root.hex()
    assert spans[0]["kind"] == 2 and spans[0]["attributes"] == {"http": {"route": "/checkout"}}
    assert spans[2]["status_code"] == 2 and spans[2]["status_message"] == "boom"
    assert spans[2]["events"][0]["name"] == "exception"
    assert api(e, "/api/v1/traces/" + "ab" * 16).status_code == 404
    assert api(e, "/api/v1/traces/nothex").status_code == 404

    lat = api(e, "/api/v1/metrics/span-latency").json()["operations"]
    by_op = {o["operation"]: o for o in lat}
    assert by_op["GET /checkout"]["count"] == 1 and by_op["GET /checkout"]["p50_ms"] == 120
    assert by_op["db query"]["error_count"] == 1 and by_op["db query"]["service"] == "backend"

    # the exception event became an exception log linked by trace id
    logs = e.wait_logs(1, **{"attributes.trace_id": trace.hex()})
    lg = logs[0]
    assert lg["log_type"] == "exception" and lg["level"] == "error" and lg["error_type"] == "Error"
    assert lg["error_message"] == "db down" and lg["stack_trace"] == stack and len(lg["error_fingerprint"]) == 64
    assert lg["attributes"]["span_id"] == grand.hex() and lg["attributes"]["span"] == {"name": "db query"}
    assert lg["attributes"]["service"] == {"name": "backend"}


def test_traces_pagination_and_retries(env):
    e = env()
    t0 = now_ns(-60)
    for i in range(3):
        trace = bytes([i + 1]) * 16
        body = pb_traces([pb_span(trace, bytes([9]) * 8, b"", f"op{i}", 1, t0 + i * 1_000_000_000, 5_000_000)],
                         {"service.name": "svc"})
        assert post_traces(e, body).status_code == 200
        if i == 0:  # an exporter retrying: the same span twice is shown once
            assert post_traces(e, body).status_code == 200
    wait_until(lambda: len(api(e, "/api/v1/traces").json()["traces"]) == 3, scaled(15), what="3 traces stored")
    page1 = api(e, "/api/v1/traces", limit=2).json()
    assert [t["root_name"] for t in page1["traces"]] == ["op2", "op1"] and page1["next_cursor"]
    page2 = api(e, "/api/v1/traces", limit=2, cursor=page1["next_cursor"]).json()
    assert [t["root_name"] for t in page2["traces"]] == ["op0"] and page2["next_cursor"] is None
    assert page2["traces"][0]["span_count"] == 1
    assert api(e, "/api/v1/traces", cursor="junk").status_code == 400
    assert api(e, "/api/v1/traces", start_time="not a time").status_code in (400, 422)
    assert post_traces(e, b"\x0a\xff").status_code == 400
    assert post_traces(e, b"", ctype="text/plain").status_code == 415


# ---- metrics ----------------------------------------------------------------------------------------


def f_sfixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<q", v)


def num_point(t_ns, value, attrs=None, start_ns=0):
    out = (f_fixed64(2, start_ns) if start_ns else b"") + f_fixed64(3, t_ns)
    out += f_double(4, value) if isinstance(value, float) else f_sfixed64(6, value)
    return out + b"".join(f_bytes(7, kv(k, v)) for k, v in (attrs or {}).items())


def hist_point(t_ns, count, total, bounds, counts, mn, mx, attrs=None):
    out = f_fixed64(3, t_ns) + f_fixed64(4, count) + f_double(5, total)
    out += f_bytes(6, b"".join(struct.pack("<Q", c) for c in counts))
    out += f_bytes(7, b"".join(struct.pack("<d", b) for b in bounds))
    out += b"".join(f_bytes(9, kv(k, v)) for k, v in (attrs or {}).items())
    return out + f_double(11, mn) + f_double(12, mx)


def pb_metrics(metrics, resource):
    res = b"".join(f_bytes(1, kv(k, v)) for k, v in resource.items())
    sm = f_bytes(1, f_bytes(1, "scope")) + b"".join(f_bytes(2, m) for m in metrics)
    return f_bytes(1, f_bytes(1, res) + f_bytes(2, sm))


def post_metrics(e, body, ctype=PB):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return requests.post(e.srv.url + "/v1/metrics", data=body, timeout=scaled(10),
                         headers={"Content-Type": ctype, "X-API-Key": e.key})


def test_metrics_store_and_query(env):
    e = env()
    hour = (int(time.time()) // 3600 - 1) * 3600  # the previous full hour: one bucket of 1h
    ns = lambda s: (hour + s) * 1_000_000_000  # noqa: E731
    gauge = f_bytes(1, "cpu.temp") + f_bytes(3, "Cel") + f_bytes(5, b"".join(f_bytes(1, p) for p in [
        num_point(ns(60), 10.0, {"host": "a"}), num_point(ns(120), 20.0, {"host": "a"}),
        num_point(ns(60), 30.0, {"host": "b"}), num_point(ns(120), 40.0, {"host": "b"})]))
    total = f_bytes(1, "http.requests") + f_bytes(3, "1") + f_bytes(7, b"".join(
        f_bytes(1, p) for p in [num_point(ns(60), 100, {"http.route": "/a"}, start_ns=ns(0)),
                                num_point(ns(1200), 160, {"http.route": "/a"}, start_ns=ns(0))]) + f_varint(2, 2) + f_varint(3, 1))
    hist = f_bytes(1, "latency") + f_bytes(3, "ms") + f_bytes(9, f_bytes(1, hist_point(
        ns(300), 10, 300.0, [10.0, 100.0], [5, 4, 1], 1.0, 250.0, {"http.route": "/a"})) + f_varint(2, 1))
    expo = f_bytes(1, "expo") + f_bytes(10, f_bytes(1, f_bytes(1, b"")))  # one exponential point
    r = post_metrics(e, pb_metrics([gauge, total, hist, expo], {"service.name": "api"}))
    assert r.status_code == 200, r.content
    rejected, msg = pb_partial(r.content)
    assert rejected == 1 and "exponential" in msg
    # OTLP/JSON: a gauge with an integer value given as a string
    body = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
                                 "scopeMetrics": [{"metrics": [{"name": "queue.size", "unit": "{item}", "gauge": {
                                     "dataPoints": [{"timeUnixNano": str(ns(30)), "asInt": "7"}]}}]}]}]}
    r = post_metrics(e, body, ctype="application/json")
    assert r.status_code == 200 and r.json() == {}, r.text

    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour - 3600))
    wait_until(lambda: sum(s["points"] for s in api(e, "/api/v1/metrics/series", start_time=start).json()["series"])
               == 8, scaled(15), what="the points stored")
    series = api(e, "/api/v1/metrics/series", start_time=start).json()["series"]
    by = {s["name"]: s for s in series}
    assert sorted(by) == ["cpu.temp", "http.requests", "latency", "queue.size"]
    assert by["cpu.temp"]["type"] == "gauge" and by["cpu.temp"]["unit"] == "Cel"
    assert by["cpu.temp"]["attribute_keys"] == ["host"] and by["cpu.temp"]["points"] == 4
    assert by["http.requests"]["type"] == "sum" and by["http.requests"]["temporality"] == "cumulative"
    assert by["http.requests"]["monotonic"] is True and by["http.requests"]["attribute_keys"] == ["http.route"]
    assert by["latency"]["type"] == "histogram" and by["latency"]["services"] == ["api"]
    assert by["queue.size"]["services"] == ["web"]

    def q(**kw):
        r = api(e, "/api/v1/metrics/query", start_time=start, interval="1h", **kw)
        assert r.status_code == 200, r.text
        return r.json()

    res = q(name="cpu.temp", aggregation="avg", group_by="host")
    assert res["type"] == "gauge" and res["interval_s"] == 3600
    assert [(d["group"], d["value"]) for d in res["data"]] == [("a", 15), ("b", 35)]
    assert [d["value"] for d in q(name="cpu.temp", aggregation="max")["data"]] == [40]
    assert [d["value"] for d in q(name="cpu.temp", aggregation="p50")["data"]] == [25]
    rate = q(name="http.requests", aggregation="rate")["data"]
    assert len(rate) == 1 and abs(rate[0]["value"] - 60 / 3600) < 1e-9
    assert [d["value"] for d in q(name="latency", aggregation="avg")["data"]] == [30]
    assert [d["value"] for d in q(name="latency", aggregation="p50")["data"]] == [10]
    assert [d["value"] for d in q(name="latency", aggregation="p95")["data"]] == [250]
    assert [d["value"] for d in q(name="queue.size", aggregation="sum")["data"]] == [7]
    assert q(name="nothing")["data"] == []
    assert api(e, "/api/v1/metrics/query", name="cpu.temp", aggregation="median").status_code == 422
    assert api(e, "/api/v1/metrics/query", name="cpu.temp", interval="5y").status_code == 422
    assert api(e, "/api/v1/metrics/query").status_code == 422
    assert post_metrics(e, b"\x0a\x05\x12\x03\x12\x01\xff").status_code == 400


def test_trace_waterfall_order_depth_and_duplicates(env):
    """Spans sent out of order, twice, with an orphan (its parent never sent) and a cycle: depth
    first from the roots, children by start time, each span once, the cycle left out."""
    e = env()
    trace = bytes.fromhex("77" * 16)
    sid = lambda k: bytes([0, 0, 0, 0, 0, 0, 0, k])  # noqa: E731
    t0 = now_ns(-20)
    spans = [
        pb_span(trace, sid(4), sid(2), "c2", 1, t0 + 30_000_000, 1_000_000),
        pb_span(trace, sid(3), sid(2), "c1", 1, t0 + 20_000_000, 1_000_000),
        pb_span(trace, sid(2), sid(1), "b", 1, t0 + 10_000_000, 40_000_000),
        pb_span(trace, sid(5), sid(1), "b2", 1, t0 + 10_000_000, 1_000_000, status=(2, "x")),
        pb_span(trace, sid(1), b"", "root", 2, t0, 100_000_000),
        pb_span(trace, sid(6), sid(9), "orphan", 1, t0 + 5_000_000, 1_000_000),
        pb_span(trace, sid(7), sid(8), "cyc-a", 1, t0, 1_000),
        pb_span(trace, sid(8), sid(7), "cyc-b", 1, t0, 1_000),
    ]
    for _ in range(2):  # an exporter's retry: the same spans again
        assert post_traces(e, pb_traces(spans, {"service.name": "svc"})).status_code == 200
    wait_until(lambda: api(e, f"/api/v1/traces/{trace.hex()}").status_code == 200, scaled(15), what="stored")
    time.sleep(0.5)
    body = api(e, f"/api/v1/traces/{trace.hex()}").json()
    got = [(s["name"], s["depth"], s["offset_ms"]) for s in body["spans"]]
    assert got == [("root", 0, 0), ("b", 1, 10), ("c1", 2, 20), ("c2", 2, 30), ("b2", 1, 10), ("orphan", 0, 5)]
    assert body["span_count"] == 6 and body["error"] is True and body["services"] == ["svc"]
    assert body["duration_ms"] == 100 and body["spans"][0]["duration_ms"] == 100
    assert body["spans"][4]["status_code"] == 2 and body["spans"][4]["status_message"] == "x"
    assert body["spans"][5]["parent_span_id"] == sid(9).hex()
