"""Process lifecycle: SIGTERM/SIGINT drain, several workers, /metrics, and the command line
(config errors, --check-config, --print-config, --help, exit codes)."""

import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import make_ini, render_ini, scaled
from ldg_http import RawConn, exchange, metric, parse_metrics, request, wait_until

GET_HEALTH = request("GET", "/health")


def wait_exit(s, timeout):
    """Wait (scaled) for the process to exit by itself; return its exit code."""
    try:
        return s.proc.wait(scaled(timeout))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"ledgerd still running {scaled(timeout):.1f}s after the signal") from None


def wait_log(s, pattern, timeout=3):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(s.log_text()), timeout, what=f"log line /{pattern}/")


def get_metrics(port):
    r = exchange(port, request("GET", "/metrics"))
    assert r.status == 200, r
    return parse_metrics(r.body.decode())


# ---------------------------------------------------------------------------------------------
# Drain
# ---------------------------------------------------------------------------------------------


def test_sigterm_closes_idle_connections_and_exits_0(srv):
    s = srv()
    idle = [RawConn(s.port) for _ in range(3)]
    silent = RawConn(s.port)  # connected, never sent a byte
    try:
        for c in idle:
            c.send(GET_HEALTH)
            assert c.response().status == 200
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        for c in idle + [silent]:
            assert c.wait_closed(2) and c.buf == b""
        assert wait_exit(s, 3) == 0
        assert time.monotonic() - t0 < scaled(3)
    finally:
        for c in idle + [silent]:
            c.close()
    log = s.log_text()
    assert "shutting down: SIGTERM" in log
    assert re.search(r"stopped \(exit 0\)", log)


def test_in_flight_request_finishes_during_drain(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=1500"))
        time.sleep(0.3)
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        wait_log(s, "draining")
        assert s.running
        r = c.response(timeout=5)
        assert r.status == 200 and r.json() == {"slept": True}
        assert r.header("connection") == "close"
        assert c.wait_closed(2)
    assert wait_exit(s, 3) == 0
    assert time.monotonic() - t0 >= 1.0  # it waited for the request


def test_request_body_still_uploading_gets_its_response(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "1000"}) + b"a" * 500)
        time.sleep(0.1)
        s.send_signal(signal.SIGTERM)
        wait_log(s, "draining")
        time.sleep(0.1)
        c.send(b"b" * 500)
        r = c.response()
        assert r.status == 200 and r.header("connection") == "close"
        assert c.wait_closed(2)
    assert wait_exit(s, 3) == 0


def test_request_head_in_progress_is_answered(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.1)
        s.send_signal(signal.SIGTERM)
        wait_log(s, "draining")
        c.send(b"\r\n")
        r = c.response()
        assert r.status == 200 and r.header("connection") == "close"
    assert wait_exit(s, 3) == 0


def test_pipelined_requests_during_drain_end_with_close(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=500", {"X-Request-ID": "d1"}) +
               request("GET", "/health", {"X-Request-ID": "d2"}))
        time.sleep(0.1)
        s.send_signal(signal.SIGTERM)
        r = c.response()
        assert r.header("x-request-id") == "d1" and r.header("connection") == "close"
        assert c.wait_closed(2)
    assert wait_exit(s, 3) == 0


def test_no_new_connections_while_draining(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=2000"))
        time.sleep(0.2)
        s.send_signal(signal.SIGTERM)

        def refused():
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=scaled(1)) as x:
                    x.sendall(GET_HEALTH)
                    x.settimeout(scaled(1))
                    return x.recv(100) == b""
            except (ConnectionRefusedError, ConnectionResetError):
                return True
            except socket.timeout:
                return False

        wait_until(refused, 1.5, what="new connections to be refused")
        assert s.running
        assert c.response(timeout=5).status == 200
    assert wait_exit(s, 3) == 0


def test_drain_deadline_cuts_a_running_request_and_exits_0(srv):
    s = srv(server={"drain_timeout_ms": 500})
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=20000"))
        time.sleep(0.2)
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        assert c.wait_closed(3)
        assert c.buf == b""  # cut, not answered
        assert 0.4 <= time.monotonic() - t0
    assert wait_exit(s, 3) == 0
    assert time.monotonic() - t0 < scaled(3)
    assert "drain deadline passed" in s.log_text()


def test_sigint_drains_like_sigterm(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=300"))
        time.sleep(0.1)
        s.send_signal(signal.SIGINT)
        assert c.response().status == 200
    assert wait_exit(s, 3) == 0
    assert "shutting down: SIGINT" in s.log_text()


def test_second_signal_exits_at_once_with_1(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=10000"))
        time.sleep(0.2)
        s.send_signal(signal.SIGTERM)
        wait_log(s, "draining")
        t0 = time.monotonic()
        assert s.stop(signal.SIGTERM, timeout=3) == 1
        assert time.monotonic() - t0 < scaled(2)
        assert c.wait_closed(2)


def test_drain_with_two_workers(srv):
    s = srv(workers=2)
    wait_log(s, r"with 2 worker\(s\)")
    conns = []
    try:
        for _ in range(8):
            c = RawConn(s.port)
            c.send(GET_HEALTH)
            assert c.response().status == 200
            conns.append(c)
        inflight = RawConn(s.port)
        conns.append(inflight)
        inflight.send(request("GET", "/_debug/sleep?ms=700"))
        time.sleep(0.2)
        s.send_signal(signal.SIGTERM)
        assert inflight.response(timeout=5).status == 200
        for c in conns:
            assert c.wait_closed(2)
    finally:
        for c in conns:
            c.close()
    assert wait_exit(s, 3) == 0
    assert len(re.findall(r"worker=[01] msg=\"worker stopped\"", s.log_text())) == 2


# ---------------------------------------------------------------------------------------------
# Several workers
# ---------------------------------------------------------------------------------------------


def test_two_workers_share_the_port(srv):
    s = srv(workers=2, log={"access_log": True})
    wait_log(s, r"with 2 worker\(s\)")
    before = get_metrics(s.port)
    n = 64
    for i in range(n):  # a fresh connection each: the kernel spreads them over both listeners
        r = exchange(s.port, request("GET", "/health", {"Connection": "close", "X-Request-ID": f"w{i}"}))
        assert r.status == 200
    after = get_metrics(s.port)
    per = [metric(after, "ledger_http_requests_total", worker=w, route="/health", code="2xx")
           - metric(before, "ledger_http_requests_total", worker=w, route="/health", code="2xx") for w in (0, 1)]
    assert sum(per) == n, per
    assert per[0] > 0 and per[1] > 0, per
    accepted = [metric(after, "ledger_http_connections_accepted_total", worker=w) for w in (0, 1)]
    assert accepted[0] > 0 and accepted[1] > 0

    def workers_in_log():
        lines = [l for l in s.log_text().splitlines() if "kind=access" in l and "rid=w" in l]
        return len(lines) == n and {re.search(r"worker=(\d+)", l).group(1) for l in lines}

    assert wait_until(workers_in_log, 3, what="access lines for every request") == {"0", "1"}


# ---------------------------------------------------------------------------------------------
# /metrics
# ---------------------------------------------------------------------------------------------


def test_metrics_is_prometheus_text(srv):
    s = srv()
    r = exchange(s.port, request("GET", "/metrics"))
    assert r.status == 200
    assert r.header("content-type").startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    samples = parse_metrics(text)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    assert set(types) == helps
    for name, _, _ in samples:
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, name
    for fam, typ in [("ledger_http_requests_total", "counter"), ("ledger_http_connections_open", "gauge"),
                     ("ledger_http_request_duration_seconds", "histogram"), ("ledger_build_info", "gauge"),
                     ("ledger_http_timeouts_total", "counter")]:
        assert types.get(fam) == typ, fam


def test_metrics_count_requests_by_route_and_class(srv):
    s = srv()
    before = get_metrics(s.port)
    with RawConn(s.port) as c:
        for _ in range(5):
            c.send(GET_HEALTH)
            assert c.response().status == 200
        c.send(request("GET", "/nope"))
        assert c.response().status == 404
        c.send(request("GET", "/_debug/sleep?ms=0"))
        assert c.response().status == 200
    after = get_metrics(s.port)

    def delta(**labels):
        return (metric(after, "ledger_http_requests_total", **labels)
                - metric(before, "ledger_http_requests_total", **labels))

    assert delta(worker=0, method="GET", route="/health", code="2xx") == 5
    assert delta(route="unmatched", code="4xx") == 1
    assert delta(method="GET", route="/_debug/sleep", code="2xx") == 1
    line = 'ledger_http_requests_total{worker="0",method="GET",route="/health",code="2xx"} '
    assert line in exchange(s.port, request("GET", "/metrics")).body.decode()


def test_metrics_latency_histogram(srv):
    s = srv()
    exchange(s.port, request("GET", "/_debug/sleep?ms=300"))
    samples = get_metrics(s.port)
    buckets = [(l["le"], v) for n, l, v in samples
               if n == "ledger_http_request_duration_seconds_bucket" and l["worker"] == "0"]
    les = [float(le) for le, _ in buckets]
    counts = [v for _, v in buckets]
    assert les == sorted(les) and les[-1] == float("inf")
    assert counts == sorted(counts), "buckets must be cumulative"
    total = metric(samples, "ledger_http_request_duration_seconds_count", worker=0)
    assert counts[-1] == total
    assert total == metric(samples, "ledger_http_requests_total", worker=0)
    le = dict(buckets)
    assert le["0.5"] - le["0.25"] >= 1  # the 300 ms request
    assert metric(samples, "ledger_http_request_duration_seconds_sum", worker=0) >= 0.29  # loop-clock slack


def test_metrics_connection_gauge_and_counters(srv):
    s = srv(server={"header_timeout_ms": 300})
    base = get_metrics(s.port)
    conns = [RawConn(s.port) for _ in range(3)]
    try:
        for c in conns:
            c.send(GET_HEALTH)
            assert c.response().status == 200
        m = get_metrics(s.port)
        assert metric(m, "ledger_http_connections_open", worker=0) >= 4  # 3 + the scrape itself
        assert metric(m, "ledger_http_connections_accepted_total") - metric(
            base, "ledger_http_connections_accepted_total") == 4
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: metric(get_metrics(s.port), "ledger_http_connections_open") == 1, 3,
               what="the gauge to drop back")
    with RawConn(s.port) as c:  # a header timeout is counted
        assert c.wait_closed(3)
    m = get_metrics(s.port)
    assert metric(m, "ledger_http_timeouts_total") - metric(base, "ledger_http_timeouts_total") >= 1
    assert metric(m, "ledger_http_received_bytes_total") > 0
    assert metric(m, "ledger_http_sent_bytes_total") > 0
    assert metric(m, "ledger_build_info") == 1


def test_metrics_allowed_for_ipv4_loopback_on_a_dual_stack_socket(srv):
    # Listening on a v4-mapped address, IPv4 clients appear as ::ffff:127.0.0.1: still loopback.
    s = srv(server={"host": "::ffff:127.0.0.1"})
    r = exchange(s.port, request("GET", "/metrics"))
    assert r.status == 200, r


def test_metrics_allowed_for_ipv6_loopback(ledgerd_bin, tmp_path, pg, redis):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
            port = probe.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback")
    proc, log = _spawn(ledgerd_bin, tmp_path, pg, redis, port, {"server": {"host": "::1"}})
    try:
        def get():
            try:
                with socket.create_connection(("::1", port), timeout=scaled(1)) as x:
                    x.sendall(request("GET", "/metrics"))
                    x.settimeout(scaled(2))
                    return x.recv(100)
            except OSError:
                return None

        head = wait_until(get, 5, interval=0.05, what="ledgerd on ::1")
        assert head.startswith(b"HTTP/1.1 200 "), head
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(scaled(10)) == 0
    assert "level=error" not in log.read_text()


# ---------------------------------------------------------------------------------------------
# Command line and configuration
# ---------------------------------------------------------------------------------------------


def _spawn(binary, tmp_path, pg, redis, port, extra):
    ini = tmp_path / "spawn.ini"
    ini.write_text(render_ini(make_ini(port, pg, redis, 1, extra)))
    log = tmp_path / "spawn.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([binary, "-c", str(ini)], stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def run(binary, *args, cwd=None):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=scaled(10), cwd=cwd,
                          stdin=subprocess.DEVNULL)


def write(tmp_path, text, name="ledger.ini"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_check_config_accepts_a_valid_file(ledgerd_bin, tmp_path):
    ini = write(tmp_path, "[server]\nport = 8080\nworkers = auto\n[log]\nlevel = debug\n")
    r = run(ledgerd_bin, "-c", str(ini), "--check-config")
    assert r.returncode == 0, r.stderr
    assert "configuration ok" in r.stdout


@pytest.mark.parametrize("text, line, words", [
    ("[server]\nport = 8080\nno_such_key = 1\n", 3, ["no_such_key"]),
    ("[server]\nport = 8080\nport = 8081\n", 3, ["duplicate", "port"]),
    ("[server]\n\n; comment\nport = 70000\n", 4, ["port", "out of range"]),
    ("[server]\nheader_timeout_ms = 1\n", 2, ["header_timeout_ms"]),
    ("[server]\nmax_connections = lots\n", 2, ["max_connections"]),
    ("[log]\nlevel = loud\n", 2, ["level"]),
    ("[server]\ndebug_endpoints = maybe\n", 2, ["debug_endpoints"]),
    ("[server]\nport = 1\n[nosuch]\nx = 1\n", 3, ["nosuch"]),
    ("[server]\nport = 1\n\n[storge]\n", 4, ["unknown section", "storge"]),
    ("[server]\nport = 8080;\n", 2, ["port", "';'"]),
], ids=["unknown-key", "duplicate-key", "out-of-range", "below-minimum", "not-a-number", "bad-enum",
        "bad-bool", "unknown-section", "empty-unknown-section", "semicolon-in-value"])
def test_config_errors_exit_3_with_file_and_line(ledgerd_bin, tmp_path, text, line, words):
    ini = write(tmp_path, text)
    r = run(ledgerd_bin, "-c", str(ini), "--check-config")
    err = r.stdout + r.stderr
    assert r.returncode == 3, err
    assert f"{ini}:{line}" in err or f"{ini.name}:{line}" in err, err
    for w in words:
        assert w in err, err


def test_config_error_also_stops_a_normal_start(ledgerd_bin, tmp_path):
    ini = write(tmp_path, "[server]\nport = 8080\nbogus = 1\n")
    r = run(ledgerd_bin, "-c", str(ini))
    assert r.returncode == 3
    assert "ledger.ini:3" in r.stderr


def test_missing_config_file_is_a_config_error(ledgerd_bin, tmp_path):
    r = run(ledgerd_bin, "-c", str(tmp_path / "absent.ini"), "--check-config")
    assert r.returncode == 3
    assert "absent.ini" in r.stderr


def test_print_config_prints_every_section_and_round_trips(ledgerd_bin, tmp_path):
    ini = write(tmp_path, "[server]\nport = 8123\ncors_origins = https://a.example, https://b.example\n"
                          "[log]\naccess_log = on\n")
    r = run(ledgerd_bin, "-c", str(ini), "--print-config")
    assert r.returncode == 0, r.stderr
    sections = re.findall(r"^\[(\w+)\]$", r.stdout, re.M)
    for sec in ("server", "log", "roles", "redis", "pg_auth", "pg_logs",
                "gateway", "auth", "ingest", "query", "storage", "analytics"):
        assert sec in sections, sec
    assert len(sections) == len(set(sections))
    assert re.search(r"^port = 8123$", r.stdout, re.M)
    assert re.search(r"^access_log = on$", r.stdout, re.M)
    assert re.search(r"^sweep_interval_ms = 250$", r.stdout, re.M)  # defaults are printed too
    again = write(tmp_path, r.stdout, "printed.ini")
    r2 = run(ledgerd_bin, "-c", str(again), "--print-config")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == r.stdout


def test_help_and_version_exit_0(ledgerd_bin):
    r = run(ledgerd_bin, "--help")
    assert r.returncode == 0 and "Usage: ledgerd -c FILE" in r.stdout
    assert run(ledgerd_bin, "-h").returncode == 0
    r = run(ledgerd_bin, "--version")
    assert r.returncode == 0 and r.stdout.startswith("ledgerd ")


@pytest.mark.parametrize("args", [[], ["--check-config"], ["--no-such-option"], ["-c"],
                                  ["-c", "x.ini", "extra"], ["-c", "x.ini", "--check-config", "--print-config"]],
                         ids=["nothing", "no-config", "unknown-option", "c-without-file", "extra-argument",
                              "two-modes"])
def test_usage_errors_exit_2(ledgerd_bin, tmp_path, args):
    write(tmp_path, "[server]\nport = 8080\n", "x.ini")
    r = run(ledgerd_bin, *args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip()


def test_port_in_use_exits_1(ledgerd_bin, tmp_path, pg, redis):
    with socket.socket() as holder:  # a plain listener, without SO_REUSEPORT
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc, log = _spawn(ledgerd_bin, tmp_path, pg, redis, port, {})
        try:
            rc = proc.wait(scaled(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("ledgerd kept running on a port in use") from None
    assert rc == 1
    text = log.read_text()
    assert re.search(r"level=error .*cannot listen", text), text
    assert "Sanitizer" not in text


def _kernel_queued(conn, server_port):
    """Bytes of the response sitting in kernel buffers: the server socket's send queue plus our
    receive queue (from /proc/net/tcp, IPv4 loopback)."""
    import fcntl
    import termios
    inq = int.from_bytes(fcntl.ioctl(conn.sock, termios.FIONREAD, b"\0\0\0\0"), "little")
    local = conn.sock.getsockname()[1]
    with open("/proc/net/tcp") as f:
        for line in f:
            fields = line.split()
            if fields[1].endswith(f":{server_port:04X}") and fields[2].endswith(f":{local:04X}"):
                return inq + int(fields[4].split(":")[0], 16)
    raise AssertionError("server side of the connection not found in /proc/net/tcp")


def test_response_being_written_when_drain_starts_then_closes(srv):
    # The response was queued (keep-alive) before SIGTERM, but the client reads it slowly: once
    # it is written the connection must close instead of idling until drain_timeout_ms. With 256
    # workers /metrics is ~400 kB, more than the kernel buffers while the client does not read
    # (a small receive buffer and MSS keep the server's send buffer from growing).
    s = srv(workers=256, server={"drain_timeout_ms": 8000})
    wait_log(s, r"with 256 worker\(s\)")  # /health answers as soon as the first worker runs
    with RawConn(s.port, rcvbuf=4096, maxseg=536) as c:
        c.send(request("GET", "/metrics"))
        time.sleep(0.3)
        assert _kernel_queued(c, s.port) < 300000, "the whole response fit in kernel buffers"
        s.send_signal(signal.SIGTERM)
        wait_until(lambda: s.log_text().count("draining:") == 256, 3, what="every worker draining")
        t0 = time.monotonic()
        r = c.response()
        assert r.status == 200 and len(r.body) > 350000
        assert r.header("connection") == "keep-alive"  # answered before the drain began
        assert c.wait_closed(2)
    assert wait_exit(s, 2) == 0
    assert time.monotonic() - t0 < scaled(2)
    assert "drain deadline passed" not in s.log_text()
