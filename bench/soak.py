#!/usr/bin/python3
"""A mixed soak against one ledgerd on loopback: ingest batches, queries, notification streams
that reconnect, and logins, at a modest steady rate, for DURATION seconds. Every SAMPLE seconds it
records ledgerd's RSS, its open descriptors, Redis's used_memory and the ingest queue depth; at the
end it prints the samples and the least-squares slope of each after the warm-up (first quarter).

    soak.py PORT LEDGERD_PID REDIS_PORT API_KEY PROJECT_ID EMAIL PASSWORD DURATION [SAMPLE]"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import requests

PORT, PID, RPORT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
KEY, PROJECT, EMAIL, PASSWORD = sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7]
DURATION = float(sys.argv[8])
SAMPLE = float(sys.argv[9]) if len(sys.argv) > 9 else 10.0
URL = f"http://127.0.0.1:{PORT}"
stop = threading.Event()
counts = {"ingest": 0, "query": 0, "stream": 0, "login": 0, "errors": 0}


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


def redis_mem():
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(RPORT), "INFO", "memory"], capture_output=True,
                         text=True, timeout=5).stdout
    for line in out.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


def queue_depth(s):
    try:
        r = s.get(URL + "/api/v1/queue/depth", headers={"X-API-Key": KEY}, timeout=5)
        d = r.json()
        return int(d.get("depth", d.get("queue_depth", 0))) if isinstance(d, dict) else 0
    except (requests.RequestException, ValueError):
        return -1


def loop(name, fn, period):
    s = requests.Session()
    while not stop.is_set():
        try:
            fn(s)
            counts[name] += 1
        except (requests.RequestException, OSError, ValueError):
            counts["errors"] += 1
        stop.wait(period)


def ingest(s):
    logs = [{"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": lv, "log_type": "console",
             "message": f"soak {i}", "attributes": {"i": i}} for i, lv in enumerate(["info"] * 45 + ["error"] * 5)]
    r = s.post(URL + "/api/v1/ingest/batch", json={"logs": logs}, headers={"X-API-Key": KEY}, timeout=10)
    if r.status_code not in (200, 201, 202):
        raise ValueError(r.status_code)


def query(s):
    r = s.get(URL + "/api/v1/logs", params={"project_id": PROJECT, "limit": 50}, headers={"X-API-Key": KEY},
              timeout=10)
    if r.status_code != 200:
        raise ValueError(r.status_code)


def stream(s):
    c = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    c.sendall(f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n".encode())
    end = time.monotonic() + 3
    while time.monotonic() < end and not stop.is_set():
        try:
            if not c.recv(65536):
                break
        except socket.timeout:
            break
    c.close()


def login(s):
    r = s.post(URL + "/api/v1/accounts/login", json={"email": EMAIL, "password": PASSWORD}, timeout=10)
    if r.status_code != 200:
        raise ValueError(r.status_code)


def slope(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main():
    threads = [threading.Thread(target=loop, args=a, daemon=True) for a in
               [("ingest", ingest, 0.05), ("query", query, 0.2), ("stream", stream, 0.1), ("stream", stream, 0.1),
                ("login", login, 1.0)]]
    for t in threads:
        t.start()
    s = requests.Session()
    samples = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < DURATION:
        samples.append((time.monotonic() - t0, rss_kib(), fds(), redis_mem(), queue_depth(s)))
        t, r, f, m, q = samples[-1]
        print(f"t={t:7.1f}s rss={r / 1024:7.1f} MiB fds={f:5d} redis={m / 1048576:7.1f} MiB queue={q}", flush=True)
        stop.wait(SAMPLE)
    stop.set()
    for t in threads:
        t.join(10)
    warm = [x for x in samples if x[0] >= DURATION / 4] or samples
    xs = [x[0] / 3600 for x in warm]
    print(f"done: {json.dumps(counts)}")
    print(f"slopes after warm-up ({len(warm)} samples): rss {slope(xs, [x[1] / 1024 for x in warm]):+.2f} MiB/h, "
          f"fds {slope(xs, [x[2] for x in warm]):+.1f}/h, redis {slope(xs, [x[3] / 1048576 for x in warm]):+.2f} MiB/h, "
          f"queue {slope(xs, [x[4] for x in warm]):+.1f}/h")


main()
