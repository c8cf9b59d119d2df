"""Measurements of the Python SDK (sdk/python), run by bench/sdk.sh. Each phase prints one
`key=value ...` line (and human-readable lines prefixed with '#').

    sdk_bench.py call URL KEY          log_info cost in the calling thread (live ledgerd behind it)
    sdk_bench.py middleware            FastAPI (ASGI) and Flask (WSGI) apps with vs without the middleware
    sdk_bench.py throughput URL KEY    one process logging at RATE logs/s into ledgerd for SECONDS
    sdk_bench.py dead                  a dead server: memory and buffer while logging for SECONDS
"""

import asyncio
import gc
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk", "python"))

import ledger  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_SDK_ROUNDS", "5"))


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def block_medians(fn, blocks, per_block):
    """Median over ``blocks`` of the mean time (µs) of one call within a block of ``per_block`` calls."""
    out = []
    pc = time.perf_counter_ns
    for _ in range(blocks):
        t0 = pc()
        for _ in range(per_block):
            fn()
        out.append((pc() - t0) / per_block / 1000.0)
    return statistics.median(out), out


def phase_call(url, key):
    c = ledger.LedgerClient(api_key=key, base_url=url, max_buffer_size=200000, flush_at_exit=False)
    attrs = {"user_id": 42, "path": "/checkout"}
    for _ in range(20000):  # warm up (thread started, settings fetched)
        c.log_info("warm up", attrs)
    c.flush(30)
    gc.collect()
    msg = "user 42 checked out cart 1234"
    med_attrs, _ = block_medians(lambda: c.log_info(msg, attrs), 200, 100)
    c.flush(30)
    med_plain, _ = block_medians(lambda: c.log_info(msg), 200, 100)
    c.flush(30)
    m = c.get_metrics()
    c.shutdown_sync(30)
    print(f"# log_info median {med_plain:.2f} us (no attributes), {med_attrs:.2f} us (2 attributes); "
          f"sent {m['flusher']['total_logs_sent']}, rejected {m['errors']['rejected_logs']}")
    print(f"call_us={med_plain:.3f} call_attrs_us={med_attrs:.3f} sent={m['flusher']['total_logs_sent']} "
          f"rejected={m['errors']['rejected_logs']} dropped={m['buffer']['dropped_overflow']}")



def phase_middleware():
    import fastapi
    import flask
    from werkzeug.test import EnvironBuilder

    from ledger.integrations.fastapi import LedgerMiddleware as AsgiMW
    from ledger.integrations.flask import LedgerMiddleware as WsgiMW

    client = ledger.LedgerClient(api_key="ledger_bench", base_url="http://127.0.0.1:9", flush_at_exit=False,
                                 flush_interval=3600, flush_size=10 ** 9, max_buffer_size=10 ** 9,
                                 fetch_settings=False)

    def make_fastapi(with_mw):
        app = fastapi.FastAPI()

        @app.get("/users/{user_id}")
        async def user(user_id: int):
            return {"id": user_id}

        if with_mw:
            app.add_middleware(AsgiMW, ledger_client=client)
        return app

    def make_flask(with_mw):
        app = flask.Flask("bench" + str(with_mw))

        @app.route("/users/<int:user_id>")
        def user(user_id):
            return {"id": user_id}

        if with_mw:
            app.wsgi_app = WsgiMW(app.wsgi_app, ledger_client=client)
        return app

    # ASGI: drive the app directly (no HTTP client in the measurement)
    scope_base = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                  "scheme": "http", "path": "/users/42", "raw_path": b"/users/42", "query_string": b"a=1",
                  "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
                  "server": ("127.0.0.1", 80)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    async def asgi_times(app, n):
        out = []
        pc = time.perf_counter_ns
        for _ in range(n):
            scope = dict(scope_base)
            t0 = pc()
            await app(scope, receive, send)
            out.append((pc() - t0) / 1000.0)
        return out

    def wsgi_times(app, n):
        env = EnvironBuilder(path="/users/42", query_string="a=1").get_environ()

        def start_response(status, headers, exc_info=None):
            return None

        out = []
        pc = time.perf_counter_ns
        for _ in range(n):
            e = dict(env)
            t0 = pc()
            for _chunk in app(e, start_response):
                pass
            out.append((pc() - t0) / 1000.0)
        return out

    results = {}
    loop = asyncio.new_event_loop()
    apps = {("fastapi", w): make_fastapi(w) for w in (False, True)}
    fl = {("flask", w): make_flask(w) for w in (False, True)}
    samples = {k: [] for k in list(apps) + list(fl)}
    n = 2000
    for k, app in apps.items():  # warm up (lazy middleware stack build, route compilation)
        loop.run_until_complete(asgi_times(app, 500))
    for k, app in fl.items():
        wsgi_times(app, 500)
    for _ in range(ROUNDS):  # alternate with and without, so drift hits both alike
        for w in (False, True):
            samples[("fastapi", w)] += loop.run_until_complete(asgi_times(apps[("fastapi", w)], n))
            samples[("flask", w)] += wsgi_times(fl[("flask", w)], n)
            client._transport.buffer.clear()
    loop.close()
    line = []
    for fw in ("fastapi", "flask"):
        base = statistics.median(samples[(fw, False)])
        with_mw = statistics.median(samples[(fw, True)])
        results[fw] = (base, with_mw)
        print(f"# {fw}: median {base:.1f} us per request without, {with_mw:.1f} us with the middleware: "
              f"overhead {with_mw - base:.1f} us ({len(samples[(fw, True)])} requests each)")
        line.append(f"{fw}_without_us={base:.2f} {fw}_with_us={with_mw:.2f} {fw}_overhead_us={with_mw - base:.2f}")
    print(" ".join(line))


def phase_throughput(url, key, rate, seconds):
    c = ledger.LedgerClient(api_key=key, base_url=url, flush_at_exit=False, flush_interval=1.0)
    c.log_info("hello")
    c.flush(30)
    attrs = {"user_id": 42, "route": "/checkout", "cart": 1234}
    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            samples.append(len(c._transport.buffer))
            stop.wait(0.05)  # 20 samples per second

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    chunk = max(1, rate // 100)  # 100 slices per second
    t_start = time.monotonic()
    produced = 0
    log_info = c.log_info
    while True:
        now = time.monotonic()
        el = now - t_start
        if el >= seconds:
            break
        due = int(el * rate) + chunk
        while produced < due:
            log_info("order placed for user 42 cart 1234 total 99.90 EUR", attrs)
            produced += 1
        nxt = t_start + produced / rate
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
    elapsed = time.monotonic() - t_start
    stop.set()
    th.join()
    ok = c.flush(60)
    m = c.get_metrics()
    c.shutdown_sync(30)
    s = sorted(samples)
    p99 = s[int(0.99 * (len(s) - 1))] if s else 0
    half = len(samples) // 2
    first, second = (max(samples[:half]) if half else 0), (max(samples[half:]) if half else 0)
    rate_got = produced / elapsed
    print(f"# produced {produced} logs in {elapsed:.2f} s = {rate_got:.0f} logs/s; buffer max {max(s)} "
          f"(first half {first}, second half {second}, p99 {p99}); sent {m['flusher']['total_logs_sent']} in "
          f"{m['flusher']['successful_flushes']} batches, failed {m['flusher']['failed_flushes']}, "
          f"dropped {m['buffer']['dropped_overflow']}, rejected {m['errors']['rejected_logs']}, flush ok {ok}")
    per_s = [max(samples[i:i + 20]) for i in range(0, len(samples), 20)]
    print(f"# buffer max per second: {per_s}")
    print(f"produced={produced} rate={rate_got:.0f} buffer_max={max(s)} buffer_p99={p99} buffer_max_first_half={first} "
          f"buffer_max_second_half={second} sent={m['flusher']['total_logs_sent']} "
          f"failed={m['flusher']['failed_flushes']} dropped={m['buffer']['dropped_overflow']} "
          f"rejected={m['errors']['rejected_logs']}")


def phase_dead(seconds):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = ledger.LedgerClient(api_key="ledger_bench", base_url=f"http://127.0.0.1:{port}", flush_at_exit=False,
                            max_buffer_size=10000, http_timeout=1.0)
    attrs = {"user_id": 42, "route": "/checkout"}
    msg = "order placed for user 42 cart 1234 total 99.90 EUR"
    for _ in range(50000):
        c.log_info(msg, attrs)
    gc.collect()
    rss0 = rss_kb()
    t_end = time.monotonic() + seconds
    n = 0
    rss_max = rss0
    buf_max = 0
    pc = time.perf_counter_ns
    block_us = []
    while time.monotonic() < t_end:
        t0 = pc()
        for _ in range(1000):
            c.log_info(msg, attrs)
        block_us.append((pc() - t0) / 1000 / 1000.0)
        n += 1000
        if n % 50000 == 0:
            rss_max = max(rss_max, rss_kb())
            buf_max = max(buf_max, len(c._transport.buffer))
            time.sleep(0.01)
    gc.collect()
    rss1 = rss_kb()
    m = c.get_metrics()
    c.shutdown_sync(0.5)
    print(f"# dead server: {n} logs in {seconds} s; buffer max {buf_max} (max_buffer_size 10000), dropped "
          f"{m['buffer']['dropped_overflow']}; RSS {rss0} kB after the buffer filled, {rss1} kB at the end "
          f"(max {rss_max} kB); log_info median {statistics.median(block_us):.2f} us; "
          f"breaker open {m['flusher']['circuit_breaker_open']}")
    print(f"dead_logs={n} dead_buffer_max={buf_max} dead_dropped={m['buffer']['dropped_overflow']} "
          f"dead_rss_start_kb={rss0} dead_rss_end_kb={rss1} dead_rss_max_kb={rss_max} "
          f"dead_call_us={statistics.median(block_us):.3f}")


def main():
    phase = sys.argv[1]
    if phase == "call":
        phase_call(sys.argv[2], sys.argv[3])
    elif phase == "middleware":
        phase_middleware()
    elif phase == "throughput":
        phase_throughput(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif phase == "dead":
        phase_dead(float(sys.argv[2]))
    else:
        sys.exit("unknown phase " + phase)


if __name__ == "__main__":
    main()
