#!/usr/bin/python3
"""Sustained ingest while searching (bench/query.sh, phase "sustain"; docs/query.md "Capacity").

    sustain.py URL API_KEY MAX_S DURATION_S [FRACTION]

1. Maximum: POST /api/v1/ingest/batch (1000 logs each, timestamps = now) flat out from 4 threads for
   MAX_S seconds; the end-to-end rate is the slope of ledger_storage_logs_total{outcome="stored"}
   over the second half of that window (logs committed per second while the queue is never empty).
   Then wait for the queue to drain.
2. Sustained: FRACTION (0.8) of that rate, paced, for DURATION_S seconds. Every 2 s one full-text
   search over the last hour (`q=zanzibar&period=last1h`, a word in 0.1% of the logs) with its
   latency; every 10 s the gauges ledger_search_unindexed_rows, ledger_search_index_backlog_rows
   and the queue.
Prints `key=value` lines (read by query.sh) and the samples. Every wait is bounded."""

import json
import os
import random
import statistics
import sys
import threading
import time
from datetime import datetime, timezone

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genlogs  # noqa: E402

URL, KEY = sys.argv[1], sys.argv[2]
MAX_S, DURATION = float(sys.argv[3]), float(sys.argv[4])
FRACTION = float(sys.argv[5]) if len(sys.argv) > 5 else 0.8
PER_BATCH = 1000
TS = "__TS__"
H = {"X-API-Key": KEY, "Content-Type": "application/json"}


def templates(n=8):
    """n bodies of PER_BATCH logs with a placeholder timestamp; 'zanzibar' in 0.1% of messages."""
    rng = random.Random(23)
    out = []
    for b in range(n):
        logs = []
        for i in range(PER_BATCH):
            log = genlogs.make_log(rng, 0)
            log["timestamp"] = TS
            if (b * PER_BATCH + i) % 1000 == 7:
                log["message"] += " zanzibar"
            logs.append(log)
        out.append(json.dumps({"logs": logs}, separators=(",", ":")))
    return out


BODIES = templates()


def body():
    ts = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return random.choice(BODIES).replace(TS, ts)


def metrics():
    out = {}
    for line in requests.get(URL + "/metrics", timeout=10).text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


def stored(m):
    return m.get('ledger_storage_logs_total{outcome="stored"}', 0.0)


def poster(stop, sess, interval, counts):
    """Post batches; interval None = flat out, else one batch per interval seconds (paced)."""
    nxt = time.monotonic()
    while not stop.is_set():
        if interval:
            delay = nxt - time.monotonic()
            if delay > 0:
                stop.wait(delay)
                if stop.is_set():
                    break
            nxt += interval
        try:
            r = sess.post(URL + "/api/v1/ingest/batch", data=body(), headers=H, timeout=30)
            counts["ok" if r.status_code == 202 else "refused"] += 1
        except requests.RequestException:
            counts["errors"] += 1


def run_posters(nthreads, interval, seconds, on_tick=None, tick=1.0):
    stop = threading.Event()
    counts = {"ok": 0, "refused": 0, "errors": 0}
    ths = [threading.Thread(target=poster, args=(stop, requests.Session(), interval, counts), daemon=True)
           for _ in range(nthreads)]
    t0 = time.monotonic()
    for t in ths:
        t.start()
    while time.monotonic() - t0 < seconds:
        time.sleep(tick)
        if on_tick:
            on_tick(time.monotonic() - t0)
    stop.set()
    for t in ths:
        t.join(timeout=35)
    return counts


def drain(limit=300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if metrics().get("ledger_queue_entries", 0) == 0:
            return time.monotonic() - t0
        time.sleep(1)
    return -1


def main():
    # 1. maximum end-to-end rate
    marks = []
    run_posters(4, None, MAX_S, lambda t: marks.append((t, stored(metrics()))))
    half = [m for m in marks if m[0] >= MAX_S / 2]
    e2e = (half[-1][1] - half[0][1]) / (half[-1][0] - half[0][0]) if len(half) >= 2 else 0.0
    print(f"e2e_max_logs_per_s={e2e:.0f}")
    print(f"drained_after_s={drain():.1f}")
    if e2e <= 0:
        print("error=no end-to-end rate")
        return 1
    # 2. sustained at FRACTION of it
    target = e2e * FRACTION
    nthreads = 4
    interval = nthreads * PER_BATCH / target  # seconds between two batches of one thread
    lat, samples = [], []
    s0 = stored(metrics())
    last = {"search": -10.0, "sample": -10.0}

    def on_tick(t):
        if t - last["search"] >= 2:
            last["search"] = t
            t1 = time.monotonic()
            r = requests.get(URL + "/api/v1/logs/search", params={"q": "zanzibar", "period": "last1h", "limit": 100},
                             headers={"X-API-Key": KEY}, timeout=30)
            ms = (time.monotonic() - t1) * 1000
            if r.status_code == 200:
                lat.append(ms)
            else:
                print(f"search answered {r.status_code}: {r.text[:200]}")
        if t - last["sample"] >= 10:
            last["sample"] = t
            m = metrics()
            samples.append((t, m.get("ledger_search_unindexed_rows", -1), m.get("ledger_search_index_backlog_rows", -1),
                            m.get("ledger_search_index_backlog_leaves", -1), m.get("ledger_queue_entries", -1),
                            stored(m) - s0))

    t0 = time.monotonic()
    counts = run_posters(nthreads, interval, DURATION, on_tick, tick=0.5)
    secs = time.monotonic() - t0
    got = (samples[-1][5] / samples[-1][0]) if samples and samples[-1][0] > 0 else 0
    print(f"target_logs_per_s={target:.0f}")
    print(f"stored_logs_per_s={got:.0f}")
    print(f"posted_batches={counts['ok']} refused={counts['refused']} errors={counts['errors']} seconds={secs:.0f}")
    if lat:
        q = statistics.quantiles(lat, n=20) if len(lat) >= 20 else [max(lat)] * 19
        print(f"search_n={len(lat)} search_p50_ms={statistics.median(lat):.1f} search_p95_ms={q[18]:.1f} "
              f"search_max_ms={max(lat):.1f}")
    for s in samples:
        print("sample t=%.0f unindexed_rows=%d backlog_rows=%d backlog_leaves=%d queue_entries=%d stored=%d" % s)
    if len(samples) >= 4:
        n = len(samples) // 4
        first = statistics.mean(s[1] for s in samples[n:2 * n])
        final = statistics.mean(s[1] for s in samples[-n:])
        print(f"unindexed_rows_second_quarter={first:.0f} unindexed_rows_last_quarter={final:.0f}")
        print(f"backlog_rows_max={max(s[2] for s in samples):.0f} backlog_rows_last={samples[-1][2]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
