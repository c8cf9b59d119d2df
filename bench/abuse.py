#!/usr/bin/python3
"""Abuse cases against one ledgerd on loopback, each bounded in time and connections, while a
well-behaved client measures GET /health latency and ledgerd's RSS is sampled.

    abuse.py PORT LEDGERD_PID API_KEY PROJECT_ID [SECONDS_PER_CASE] [CONNS]

Prints one line per case: name, peak RSS (MiB), RSS growth, the good client's p50/p99/max latency
(ms) and how many of its requests failed."""

import gzip
import json
import os
import socket
import statistics
import sys
import threading
import time

PORT, PID, KEY, PROJECT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
SECS = float(sys.argv[5]) if len(sys.argv) > 5 else 5.0
CONNS = int(sys.argv[6]) if len(sys.argv) > 6 else 1000


def rss_mib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def conn(timeout=5.0, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", PORT))
    return s


class Good(threading.Thread):
    """GET /health on one keep-alive connection, 20 per second, recording latency."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lat, self.fail, self.stop = [], 0, threading.Event()

    def run(self):
        s = None
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if s is None:
                    s = conn(2.0)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                buf = b""
                while b"\r\n\r\n" not in buf:
                    b = s.recv(4096)
                    if not b:
                        raise OSError("closed")
                    buf += b
                head, _, rest = buf.partition(b"\r\n\r\n")
                n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
                while len(rest) < n:
                    rest += s.recv(4096)
                self.lat.append((time.monotonic() - t0) * 1000)
            except (OSError, IndexError, ValueError):
                self.fail += 1
                if s:
                    s.close()
                s = None
            time.sleep(0.05)


def run_case(name, attack):
    good = Good()
    base = rss_mib()
    peak = [base]
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.1)

    smp = threading.Thread(target=sampler, daemon=True)
    smp.start()
    good.start()
    t0 = time.monotonic()
    try:
        attack(stop)
    finally:
        stop.set()
        good.stop.set()
        good.join(5)
        smp.join(2)
    lat = sorted(good.lat) or [float("nan")]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"{name:<22} rss_peak={peak[0]:7.1f} MiB  growth={peak[0] - base:+7.1f} MiB  "
          f"good p50={statistics.median(lat):6.2f} ms p99={p99:7.2f} ms max={lat[-1]:7.2f} ms "
          f"failed={good.fail}/{len(good.lat) + good.fail}  ({time.monotonic() - t0:.1f} s)", flush=True)


def hold(socks, secs, tick=None):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if tick:
            tick()
        time.sleep(0.5)
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def open_many(n, first=b""):
    socks = []
    for _ in range(n):
        try:
            s = conn(2.0)
            if first:
                s.sendall(first)
            socks.append(s)
        except OSError:
            break
    return socks


def slowloris_headers(stop):
    socks = open_many(CONNS, b"GET /health HTTP/1.1\r\nHost: x\r\n")

    def drip():
        for s in socks:
            try:
                s.send(b"X-a: b\r\n")
            except OSError:
                pass

    hold(socks, SECS, drip)


def slowloris_body(stop):
    head = (f"POST /api/v1/ingest/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n").encode()
    socks = open_many(CONNS // 4, head)

    def drip():
        for s in socks:
            try:
                s.send(b"[")
            except OSError:
                pass

    hold(socks, SECS, drip)


def unauth_bodies(stop):
    head = (b"POST /api/v1/ingest/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: ledger_nope\r\n"
            b"Content-Length: 10000000\r\n\r\n")
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        socks = open_many(50, head + b"x" * 65536)
        for s in socks:
            s.close()


def gzip_bombs(stop):
    bomb = gzip.compress(b"[" + b" " * (16 << 20) + b"]")
    head = (f"POST /api/v1/ingest/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Encoding: gzip\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(bomb)}\r\n\r\n").encode()
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        try:
            s = conn(5.0)
            s.sendall(head + bomb)
            s.recv(4096)
            s.close()
        except OSError:
            pass


def half_open(stop):
    socks = open_many(CONNS)
    hold(socks, SECS)


def oversized(stop):
    cases = [b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n",
             b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(2000)) + b"\r\n",
             b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n",
             b"POST /api/v1/accounts/login HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"{" * 100000,
             b"GET /" + b"a/" * 50000 + b" HTTP/1.1\r\n\r\n"]
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        for c in cases:
            try:
                s = conn(2.0)
                s.sendall(c)
                s.recv(4096)
                s.close()
            except OSError:
                pass


def slow_sse(stop):
    head = f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n".encode()
    socks = []
    for _ in range(min(CONNS, 5)):  # the per-account cap
        try:
            s = conn(2.0, rcvbuf=4096)
            s.sendall(head)
            socks.append(s)
        except OSError:
            break
    body = json.dumps({"logs": [{"timestamp": "2026-01-01T00:00:00Z", "level": "error", "log_type": "exception",
                        "message": "x" * 2000, "attributes": {"pad": "y" * 4000}}] * 50}).encode()
    req = (f"POST /api/v1/ingest/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        try:
            s = conn(5.0)
            s.sendall(req)
            s.recv(4096)
            s.close()
        except OSError:
            pass
        time.sleep(0.05)
    for s in socks:
        s.close()


def reconnect_storm(stop):
    head = f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n".encode()
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        try:
            s = conn(2.0)
            s.sendall(head)
            s.recv(1024)
            s.close()
        except OSError:
            pass


CASES = [("slowloris-headers", slowloris_headers), ("slowloris-body", slowloris_body),
         ("unauthenticated-bodies", unauth_bodies), ("gzip-bombs", gzip_bombs), ("half-open", half_open),
         ("oversized", oversized), ("slow-sse-readers", slow_sse), ("reconnect-storm", reconnect_storm)]

if __name__ == "__main__":
    only = os.environ.get("ABUSE_CASES")
    print(f"abuse: {SECS:.0f} s per case, {CONNS} connections for the connection cases; idle RSS "
          f"{rss_mib():.1f} MiB", flush=True)
    for name, fn in CASES:
        if only and name not in only.split(","):
            continue
        run_case(name, fn)
