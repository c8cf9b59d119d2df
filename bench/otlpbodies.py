#!/usr/bin/env python3
"""otlpbodies.py DIR: write DIR/otlp_NN.pb, an ExportLogsServiceRequest (protobuf) for each
DIR/batch_NN.json of genlogs.py, carrying the same logs: time, severity for the level, body for the
message, ledger.log_type / ledger.importance, exception.* for the error fields, the attributes (objects
as key-value lists), and environment, release, platform, sdk and runtime versions as resource
attributes (one ResourceLogs per distinct combination). Encoded by hand (wire format only)."""
import datetime
import glob
import json
import os
import struct
import sys

SEVERITY = {"debug": 5, "info": 9, "warning": 13, "error": 17, "critical": 21}


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def ld(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(num << 3 | 2) + varint(len(b)) + b


def any_value(v):
    if isinstance(v, bool):
        return varint(2 << 3) + varint(int(v))
    if isinstance(v, int):
        return varint(3 << 3) + varint(v)
    if isinstance(v, float):
        return varint(4 << 3 | 1) + struct.pack("<d", v)
    if isinstance(v, list):
        return ld(5, b"".join(ld(1, any_value(x)) for x in v))
    if isinstance(v, dict):
        return ld(6, b"".join(ld(1, kv(k, x)) for k, x in v.items()))
    if v is None:
        return b""
    return ld(1, str(v))


def kv(k, v):
    return ld(1, k) + ld(2, any_value(v))


def ns(ts):
    t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def record(log):
    out = varint(1 << 3 | 1) + struct.pack("<Q", ns(log["timestamp"]))
    out += varint(2 << 3) + varint(SEVERITY[log["level"]])
    if log.get("message") is not None:
        out += ld(5, any_value(log["message"]))
    attrs = {"ledger.log_type": log.get("log_type", "logger"), "ledger.importance": log.get("importance", "standard")}
    for src, dst in (("error_type", "exception.type"), ("error_message", "exception.message"),
                     ("stack_trace", "exception.stacktrace")):
        if log.get(src) is not None:
            attrs[dst] = log[src]
    attrs.update(log.get("attributes") or {})
    return out + b"".join(ld(6, kv(k, v)) for k, v in attrs.items())


def main():
    d = sys.argv[1]
    for path in sorted(glob.glob(os.path.join(d, "batch_*.json"))):
        with open(path, encoding="utf-8") as f:
            logs = json.load(f)["logs"]
        groups = {}
        for log in logs:
            key = tuple(log.get(k) for k in ("environment", "release", "platform", "sdk_version", "platform_version"))
            groups.setdefault(key, []).append(log)
        body = b""
        for (env, rel, plat, sdk, pv), group in groups.items():
            res = {"service.name": "bench", "deployment.environment": env, "service.version": rel,
                   "telemetry.sdk.language": plat, "telemetry.sdk.version": sdk, "process.runtime.version": pv}
            r = b"".join(ld(1, kv(k, v)) for k, v in res.items() if v is not None)
            sl = b"".join(ld(2, record(log)) for log in group)
            body += ld(1, ld(1, r) + ld(2, sl))
        out = path.replace("batch_", "otlp_").replace(".json", ".pb")
        with open(out, "wb") as f:
            f.write(body)
    print("ok")


if __name__ == "__main__":
    main()
