#!/usr/bin/python3
"""genlogs.py: realistic log bodies for bench/ingest.sh, reproducible (fixed seed).

    genlogs.py OUTDIR --project-id PID --now UNIX_SECONDS [--batches 20] [--per-batch 1000]
               [--singles 8] [--seed 4242]

Writes into OUTDIR:
  batch_NN.json   {"logs": [...]} bodies of PER_BATCH logs each (POST /api/v1/ingest/batch)
  single_NN.json  one log object each (POST /api/v1/ingest/single), every type, 1 in 8 an exception
  ref.copy        the batches' rows in PostgreSQL COPY text format, columns REF_COLUMNS below, as the
                  storage role would store them (project_id and ingested_at given, fingerprint computed)
and prints one line of shell assignments: logs=N json_bytes=N avg_log_bytes=N exceptions=N
copy_bytes=N ts_min=ISO ts_max=ISO.

Logs: ~100-byte messages, 5 attributes, mixed levels and types (no `network`: the HTTP layer
rejects it, reference-api.md 4.1), 10% exceptions with multi-line Python/Node/Java stack traces of
about 1-2 kB, timestamps in the hour before --now, ascending within a batch.
"""

import argparse
import hashlib
import json
import os
import random
import re
import sys
from datetime import datetime, timezone

REF_COLUMNS = ('project_id, "timestamp", ingested_at, level, log_type, importance, environment, release, '
               'message, error_type, error_message, stack_trace, attributes, sdk_version, platform, '
               'platform_version, error_fingerprint')

WORDS = ("user session order payment invoice cache request upstream worker queue retry token account "
         "profile export report search index shard replica timeout latency checkout cart coupon email "
         "webhook scheduler job batch refund ledger balance transfer audit login signup billing").split()
VERBS = ("created updated deleted fetched processed rejected scheduled completed failed retried "
         "validated enqueued flushed expired refreshed").split()
PATHS = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/users/{id}", "/api/v1/cart", "/api/v1/checkout",
         "/api/v1/search", "/api/v1/invoices/{id}/pdf", "/health", "/api/v1/payments", "/api/v1/reports"]
METHODS = ["GET"] * 6 + ["POST"] * 3 + ["PUT", "DELETE"]
PLATFORMS = [("python", "3.11.6", "ledger-python/1.4.2"), ("node", "20.10.0", "ledger-node/2.1.0"),
             ("java", "17.0.9", "ledger-java/0.9.3")]
ERRORS = {
    "python": ["ValueError", "KeyError", "TypeError", "ConnectionError", "TimeoutError", "IntegrityError"],
    "node": ["TypeError", "RangeError", "FetchError", "SequelizeDatabaseError", "UnhandledPromiseRejection"],
    "java": ["NullPointerException", "IllegalStateException", "SQLException", "SocketTimeoutException"],
}
MODULES = ["orders", "payments", "users", "billing", "search", "notifications", "reports", "inventory"]
FUNCS = ["handle", "process", "validate", "dispatch", "load", "save", "render", "charge", "lookup", "apply"]


def pick_weighted(rng, pairs):
    x = rng.random() * sum(w for _, w in pairs)
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


def sentence(rng, target):
    out = []
    n = 0
    while n < target:
        w = rng.choice(WORDS) if rng.random() < 0.7 else rng.choice(VERBS)
        if rng.random() < 0.15:
            w += "=" + str(rng.randrange(1, 100000))
        out.append(w)
        n += len(w) + 1
    s = " ".join(out)
    return s[0].upper() + s[1:]


def stack_trace(rng, platform, error_type, error_message):
    """A multi-line trace of about 1-2 kB in the platform's shape."""
    target = rng.randrange(1000, 2000)
    lines = []
    if platform == "python":
        lines.append("Traceback (most recent call last):")
        while sum(len(x) + 1 for x in lines) < target - 60:
            mod, fn = rng.choice(MODULES), rng.choice(FUNCS)
            lines.append(f'  File "/app/{mod}/{fn}_service.py", line {rng.randrange(10, 900)}, in {fn}_{rng.choice(WORDS)}')
            lines.append(f"    result = self.{rng.choice(FUNCS)}({rng.choice(WORDS)}, {rng.choice(WORDS)}=True)")
        lines.append(f"{error_type}: {error_message}")
    else:
        lines.append(f"{error_type}: {error_message}")
        while sum(len(x) + 1 for x in lines) < target:
            mod, fn = rng.choice(MODULES), rng.choice(FUNCS)
            if platform == "node":
                lines.append(f"    at {mod[0].upper() + mod[1:]}Service.{fn} "
                             f"(/srv/app/src/{mod}/{fn}.js:{rng.randrange(10, 900)}:{rng.randrange(1, 80)})")
            else:
                cls = mod[0].upper() + mod[1:] + "Service"
                lines.append(f"\tat com.example.{mod}.{cls}.{fn}({cls}.java:{rng.randrange(10, 900)})")
    return "\n".join(lines)


RE_PY = re.compile(r'File "([^"\n]+)", line (\d+)')
RE_NODE = re.compile(r"at .+ \(([^:\n]+):(\d+):\d+\)")
RE_JAVA = re.compile(r"at .+\(([^:\n]+):(\d+)\)")


def fingerprint(error_type, stack, platform):
    """reference-api.md 4.3."""
    frames = []
    for rx in (RE_PY, RE_NODE, RE_JAVA):
        for line in stack.split("\n"):
            frames.extend(rx.findall(line))
        if frames:
            break
    sig = "%s:%s:%s" % (error_type or "UnknownError", "|".join("%s:%s" % f for f in frames[:3]), platform or "unknown")
    return hashlib.sha256(sig.encode()).hexdigest()


def make_log(rng, ts, force_type=None):
    plat, plat_ver, sdk = rng.choice(PLATFORMS)
    log_type = force_type or pick_weighted(rng, [("logger", 30), ("endpoint", 25), ("database", 15),
                                                 ("console", 10), ("custom", 10), ("exception", 10)])
    if log_type == "exception":
        level = pick_weighted(rng, [("error", 80), ("critical", 20)])
    else:
        level = pick_weighted(rng, [("debug", 15), ("info", 55), ("warning", 15), ("error", 12), ("critical", 3)])
    importance = {"critical": "critical", "error": "high"}.get(level) or pick_weighted(
        rng, [("standard", 80), ("low", 15), ("high", 5)])
    req_id = "%032x" % rng.getrandbits(128)
    user_id = rng.randrange(1, 50000)
    log = {
        "timestamp": datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds"),
        "level": level,
        "log_type": log_type,
        "importance": importance,
        "environment": pick_weighted(rng, [("production", 85), ("staging", 15)]),
        "release": "v2.%d.%d" % (rng.randrange(0, 8), rng.randrange(0, 20)),
        "message": None,
        "attributes": None,
        "sdk_version": sdk.split("/")[1],
        "platform": plat,
        "platform_version": plat_ver,
    }
    if log_type == "endpoint":
        method, path = rng.choice(METHODS), rng.choice(PATHS).replace("{id}", str(rng.randrange(1, 10**6)))
        status = pick_weighted(rng, [(200, 80), (201, 5), (404, 6), (400, 4), (500, 3), (503, 2)])
        dur = round(rng.lognormvariate(3.0, 0.9), 2)
        log["message"] = f"{method} {path} -> {status} in {dur} ms; " + sentence(rng, 60)
        log["attributes"] = {
            "endpoint": {"method": method, "path": path, "status_code": status, "duration_ms": dur},
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/119.0",
            "ip_address": "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)),
            "request_id": req_id,
            "user_id": user_id,
        }
    else:
        log["message"] = sentence(rng, rng.randrange(80, 120))
        attrs = {"request_id": req_id, "user_id": user_id, "module": rng.choice(MODULES),
                 "host": "app-%02d.eu-west-1" % rng.randrange(1, 24)}
        if log_type == "database":
            attrs["query_ms"] = round(rng.lognormvariate(1.5, 1.0), 3)
        else:
            attrs["duration_ms"] = rng.randrange(1, 5000)
        log["attributes"] = attrs
    if log_type == "exception":
        et = rng.choice(ERRORS[plat])
        em = sentence(rng, rng.randrange(40, 90))
        log["error_type"] = et
        log["error_message"] = em
        log["stack_trace"] = stack_trace(rng, plat, et, em)
    return log


def copy_text(v):
    if v is None:
        return "\\N"
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def copy_row(log, project_id, ingested_at):
    fp = None
    if log["log_type"] == "exception" and log.get("stack_trace"):
        fp = fingerprint(log.get("error_type"), log["stack_trace"], log.get("platform"))
    attrs = json.dumps(log["attributes"], separators=(",", ":")) if log.get("attributes") is not None else None
    cols = [str(project_id), log["timestamp"], ingested_at, log["level"], log["log_type"], log["importance"],
            log.get("environment"), log.get("release"), log.get("message"), log.get("error_type"),
            log.get("error_message"), log.get("stack_trace"), attrs, log.get("sdk_version"), log.get("platform"),
            log.get("platform_version"), fp]
    return "\t".join(copy_text(c) for c in cols) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--project-id", type=int, required=True)
    ap.add_argument("--now", type=float, required=True, help="bench start (Unix seconds)")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--per-batch", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=8)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--span", type=float, default=3540.0,
                    help="seconds the timestamps spread over, ending 60 s before --now (at most 3540)")
    a = ap.parse_args()
    if not 1 <= a.per_batch <= 1000:
        sys.exit("genlogs: --per-batch must be 1..1000")
    rng = random.Random(a.seed)
    os.makedirs(a.outdir, exist_ok=True)
    ingested_at = datetime.fromtimestamp(a.now, timezone.utc).isoformat(timespec="microseconds")
    total = a.batches * a.per_batch
    # Timestamps spread over [now - 60 s - span, now - 60 s) (span 3540 s by default), ascending
    # across the whole run.
    span = min(max(a.span, 1.0), 3540.0)
    start = a.now - 60 - span
    n = 0
    json_bytes = copy_bytes = exceptions = 0
    ts_min = ts_max = None
    with open(os.path.join(a.outdir, "ref.copy"), "w", encoding="utf-8", newline="\n") as ref:
        for b in range(a.batches):
            logs = []
            for i in range(a.per_batch):
                ts = start + span * (n + rng.random()) / total
                n += 1
                log = make_log(rng, ts)
                log = {k: v for k, v in log.items() if v is not None}
                logs.append(log)
                json_bytes += len(json.dumps(log, separators=(",", ":")).encode())
                exceptions += log["log_type"] == "exception"
                row = copy_row(log, a.project_id, ingested_at)
                copy_bytes += len(row.encode())
                ref.write(row)
            ts_min = ts_min or logs[0]["timestamp"]
            ts_max = logs[-1]["timestamp"]
            with open(os.path.join(a.outdir, "batch_%02d.json" % b), "w", encoding="utf-8") as f:
                json.dump({"logs": logs}, f, separators=(",", ":"))
    types = ["logger", "endpoint", "database", "console", "custom", "logger", "endpoint", "exception"]
    for s in range(a.singles):
        log = make_log(rng, a.now - 1800 + s, force_type=types[s % len(types)])
        log = {k: v for k, v in log.items() if v is not None}
        with open(os.path.join(a.outdir, "single_%02d.json" % s), "w", encoding="utf-8") as f:
            json.dump(log, f, separators=(",", ":"))
    print("logs=%d json_bytes=%d avg_log_bytes=%d exceptions=%d copy_bytes=%d ts_min=%s ts_max=%s"
          % (total, json_bytes, json_bytes // total, exceptions, copy_bytes, ts_min, ts_max))


if __name__ == "__main__":
    main()
