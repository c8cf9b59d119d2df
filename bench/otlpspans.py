#!/usr/bin/env python3
"""otlpspans.py DIR PROJECT_ID NOW_S BODIES: the span bench's inputs (bench/otlp.sh).

Writes DIR/spans_NN.pb, BODIES ExportTraceServiceRequests (protobuf) of 1,000 spans each (5 traces
of 200 spans: a root, then children of the root and of one another, a few attributes, every 50th
span an error), and DIR/spans.copy: the same spans as the rows ledgerd stores for them, in COPY
text format, columns project_id, trace_id, span_id, parent_span_id, name, kind, service,
start_time, duration_us, status_code, status_message, attributes, events (what the raw `\\copy`
reference loads). Encoded by hand (wire format only)."""
import datetime
import json
import os
import struct
import sys


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


def fixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<Q", v)


def vint(num, v):
    return varint(num << 3) + varint(v)


def any_value(v):
    if isinstance(v, int):
        return vint(3, v)
    return ld(1, str(v))


def kv(k, v):
    return ld(1, k) + ld(2, any_value(v))


def iso(us):
    t = datetime.datetime.fromtimestamp(us // 1_000_000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S") + ".%06d+00" % (us % 1_000_000)


def main():
    out, pid, now_s, bodies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    copy = open(os.path.join(out, "spans.copy"), "w")
    t_base = (now_s - 600) * 1_000_000  # µs
    routes = ["/cart", "/checkout", "/price", "/search", "/login"]
    for b in range(bodies):
        spans = []
        for t in range(5):
            trace = struct.pack(">QQ", 0x5EED0000 + b, t + 1)
            start0 = t_base + (b * 5 + t) * 1000
            for s in range(200):
                sid = struct.pack(">Q", (b * 5 + t) * 1000 + s + 1)
                parent = b"" if s == 0 else struct.pack(">Q", (b * 5 + t) * 1000 + (s - 1) // 2 + 1)
                start = start0 + s * 10
                dur = 50 + (s * 37) % 900
                name = "GET " + routes[s % 5] if s == 0 else f"step {s % 20}"
                err = s % 50 == 49
                attrs = {"http.route": routes[s % 5], "worker": s % 7, "region": "eu-west-1"}
                msg = fixed64(7, start * 1000) + fixed64(8, (start + dur) * 1000)
                sp = ld(1, trace) + ld(2, sid) + (ld(4, parent) if parent else b"") + ld(5, name) + vint(6, 2 if s == 0 else 1)
                sp += msg + b"".join(ld(9, kv(k, v)) for k, v in attrs.items())
                if err:
                    sp += ld(15, ld(2, "failed") + vint(3, 2))
                spans.append(sp)
                nested = {"http": {"route": attrs["http.route"]}, "worker": attrs["worker"], "region": "eu-west-1"}
                copy.write("\t".join([
                    str(pid), trace.hex(), sid.hex(), parent.hex() if parent else "\\N", name,
                    str(2 if s == 0 else 1), "bench", iso(start), str(dur), "2" if err else "0",
                    "failed" if err else "\\N", json.dumps(nested, separators=(",", ":")), "[]"]) + "\n")
        res = ld(1, kv("service.name", "bench"))
        ss = ld(1, ld(1, "bench")) + b"".join(ld(2, s) for s in spans)
        with open(os.path.join(out, "spans_%02d.pb" % b), "wb") as f:
            f.write(ld(1, ld(1, res) + ld(2, ss)))
    copy.close()


if __name__ == "__main__":
    main()
