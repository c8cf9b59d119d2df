"""HTTP/1.1 core: framing, keep-alive, pipelining, bodies, 100-continue, gzip, limits, timeouts,
router, CORS, request ids and the access log.

Each test starts its own ledgerd with the settings it needs (small timeouts and a 50 ms sweeper,
so timeout tests take well under a second each) and speaks raw HTTP over a socket where
``requests`` cannot express the exchange.
"""

import gzip
import json
import re
import socket
import time
from email.utils import parsedate_to_datetime

import pytest

from conftest import NO_GATEWAY_ROLES, scaled
from ldg_http import HEX16, Closed, RawConn, chunked, exchange, metric, parse_metrics, request, wait_until

GET_HEALTH = request("GET", "/health")


def assert_error(resp, status, detail=None):
    assert resp.status == status, resp
    assert resp.header("content-type") == "application/json", resp
    body = resp.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    if detail is not None:
        assert body["detail"] == detail, body


def assert_closes(conn, timeout=3):
    assert conn.wait_closed(timeout), "the server kept the connection open"


# ---------------------------------------------------------------------------------------------
# Endpoints and response headers
# ---------------------------------------------------------------------------------------------


def test_health_answers_with_standard_headers(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(GET_HEALTH)
        r = c.response()
    assert r.status == 200
    assert json.loads(r.body) == {"status": "healthy"}
    assert r.header("content-type") == "application/json"
    assert int(r.header("content-length")) == len(r.body)
    assert r.header("connection") == "keep-alive"
    assert HEX16.match(r.header("x-request-id")), r.headers
    date = parsedate_to_datetime(r.header("date"))
    assert abs(date.timestamp() - time.time()) < 5


def test_health_deep_reports_services_and_roles(srv):
    s = srv()
    r = exchange(s.port, request("GET", "/health/deep"))
    body = r.json()
    assert body["status"] in ("healthy", "degraded")
    assert r.status == (200 if body["status"] == "healthy" else 503)
    assert set(body["services"]) == {"redis", "postgres_auth", "postgres_logs", "queue"}  # queue: storage runs
    assert set(body["roles"]) == {"storage", "analytics"}  # srv: gateway and the API roles off
    assert r.header("x-request-id")


def test_health_deep_is_503_when_backends_are_unreachable(ledgerd):
    closed_port = _closed_port()
    s = ledgerd(extra_ini={"redis": {"port": closed_port}, "pg_auth": {"port": closed_port},
                           "pg_logs": {"port": closed_port}}, migrate=False)
    s.allow_errors = True  # the clients may log their failed connects
    r = exchange(s.port, request("GET", "/health/deep"), timeout=15)
    assert r.status == 503
    body = r.json()
    assert body["status"] == "degraded"
    assert all(v["status"].startswith("unhealthy") for v in body["services"].values()), body


def _closed_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def test_debug_sleep_answers_after_the_delay(srv):
    s = srv()
    t0 = time.monotonic()
    r = exchange(s.port, request("GET", "/_debug/sleep?ms=200"))
    assert r.status == 200 and r.json() == {"slept": True}
    assert time.monotonic() - t0 >= 0.19


def test_debug_sleep_post_accepts_a_large_body(srv):
    s = srv()
    body = b"x" * (3 * 1024 * 1024)
    r = exchange(s.port, request("POST", "/_debug/sleep?ms=0", body=body), timeout=20)
    assert r.status == 200 and r.json() == {"slept": True}


def test_debug_endpoints_are_off_by_default(ledgerd):
    s = ledgerd(extra_ini={"roles": NO_GATEWAY_ROLES})  # with the gateway, an unknown path is 401 first
    r = exchange(s.port, request("GET", "/_debug/sleep?ms=0"))
    assert_error(r, 404, "Not Found")


# ---------------------------------------------------------------------------------------------
# X-Request-ID
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rid", ["abc-123", "A.b_c:d-9", "x" * 64])
def test_valid_client_request_id_is_echoed(srv, rid):
    s = srv()
    r = exchange(s.port, request("GET", "/health", {"X-Request-ID": rid}))
    assert r.header("x-request-id") == rid


@pytest.mark.parametrize("rid", ["x" * 65, "has space", "semi;colon", "quote\"", "ünï"])
def test_invalid_client_request_id_is_replaced(srv, rid):
    s = srv()
    r = exchange(s.port, request("GET", "/health", {"X-Request-ID": rid}))
    assert HEX16.match(r.header("x-request-id")), r.headers


def test_generated_request_ids_are_unique(srv):
    s = srv()
    ids = set()
    with RawConn(s.port) as c:
        for _ in range(20):
            c.send(GET_HEALTH)
            ids.add(c.response().header("x-request-id"))
    assert len(ids) == 20


def test_early_errors_carry_a_request_id(srv):
    # Rejected before the head was complete (no route, no headers parsed yet): still an id.
    s = srv()
    r = exchange(s.port, b"GARBAGE\r\n\r\n")
    assert r.status == 400
    assert HEX16.match(r.header("x-request-id") or ""), r.headers


# ---------------------------------------------------------------------------------------------
# Keep-alive and pipelining
# ---------------------------------------------------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(srv):
    s = srv()
    with RawConn(s.port) as c:
        for i in range(5):
            c.send(request("GET", "/health", {"X-Request-ID": f"r{i}"}))
            r = c.response()
            assert r.status == 200 and r.header("connection") == "keep-alive"
            assert r.header("x-request-id") == f"r{i}"
        assert c.quiet_for(0.2)


def test_connection_close_request_is_answered_then_closed(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", {"Connection": "close"}))
        r = c.response()
        assert r.status == 200 and r.header("connection") == "close"
        assert_closes(c)


def test_http10_closes_by_default_and_keeps_alive_on_request(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", version="HTTP/1.0"))
        r = c.response()
        assert r.status == 200 and r.header("connection") == "close"
        assert_closes(c)
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", {"Connection": "keep-alive"}, version="HTTP/1.0"))
        assert c.response().header("connection") == "keep-alive"
        c.send(request("GET", "/health", {"Connection": "keep-alive"}, version="HTTP/1.0"))
        assert c.response().status == 200


def test_pipelined_requests_are_answered_in_order(srv):
    s = srv()
    reqs = [request("GET", "/health", {"X-Request-ID": "p1"}),
            request("GET", "/nope", {"X-Request-ID": "p2"}),
            request("POST", "/_debug/sleep?ms=0", {"X-Request-ID": "p3"}, body=b"payload"),
            request("HEAD", "/health", {"X-Request-ID": "p4"}),
            request("GET", "/health", {"X-Request-ID": "p5"})]
    with RawConn(s.port) as c:
        c.send(b"".join(reqs))
        got = [c.response(head=(i == 3)) for i in range(5)]
        assert [r.header("x-request-id") for r in got] == ["p1", "p2", "p3", "p4", "p5"]
        assert [r.status for r in got] == [200, 404, 200, 200, 200]
        assert c.buf == b"" and c.quiet_for(0.2)  # nothing extra, still open


def test_pipelined_order_holds_behind_a_slow_request(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=150", {"X-Request-ID": "slow"}) +
               request("GET", "/health", {"X-Request-ID": "fast"}))
        assert c.response().header("x-request-id") == "slow"
        assert c.response().header("x-request-id") == "fast"


def test_pipelined_requests_split_at_every_byte(srv):
    s = srv()
    data = GET_HEALTH * 3
    with RawConn(s.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), 7):
            c.send(data[i:i + 7])
            time.sleep(0.001)
        assert [c.response().status for _ in range(3)] == [200, 200, 200]


def test_large_body_pipelined_behind_a_slow_request(srv):
    # More than the pipelining buffer arrives while the first request is still being handled:
    # the server stops reading, then resumes and parses the rest once it has answered.
    s = srv()
    body = bytes(range(256)) * 4096  # 1 MiB
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=300", {"X-Request-ID": "b1"}))
        c.send(request("POST", "/_debug/sleep?ms=0", {"X-Request-ID": "b2"}, body=body))
        c.send(request("GET", "/health", {"X-Request-ID": "b3"}))
        got = [c.response(timeout=10) for _ in range(3)]
        assert [(r.status, r.header("x-request-id")) for r in got] == [(200, "b1"), (200, "b2"), (200, "b3")]


def test_many_concurrent_connections(srv):
    s = srv(workers=2)
    conns = [RawConn(s.port) for _ in range(200)]
    try:
        for i, c in enumerate(conns):
            c.send(request("GET", "/health" if i % 3 else "/_debug/sleep?ms=50", {"X-Request-ID": f"c{i}"}))
        for i, c in enumerate(conns):
            r = c.response(timeout=10)
            assert r.status == 200 and r.header("x-request-id") == f"c{i}"
        for i, c in enumerate(conns):
            c.send(request("GET", "/nope"))
        assert all(c.response(timeout=10).status == 404 for c in conns)
    finally:
        for c in conns:
            c.close()


def test_pipelined_requests_before_a_half_close_are_all_answered(srv):
    # The client sends its requests and shuts down its write side (printf ... | nc -N): every
    # request already sent must still be answered before the server closes.
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("GET", "/_debug/sleep?ms=100", {"X-Request-ID": "h1"}) +
               request("GET", "/health", {"X-Request-ID": "h2"}) +
               request("GET", "/health", {"X-Request-ID": "h3"}))
        c.shutdown_write()
        ids = []
        try:
            for _ in range(3):
                ids.append(c.response().header("x-request-id"))
        except Closed:
            pass
        assert ids == ["h1", "h2", "h3"]
        assert_closes(c)


# ---------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------


def test_content_length_body_split_across_writes(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "10"}))
        for part in (b"01234", b"567", b"89"):
            time.sleep(0.02)
            c.send(part)
        assert c.response().status == 200
        c.send(GET_HEALTH)  # the body was consumed exactly: the next request parses
        assert c.response().status == 200


def test_chunked_body_is_accepted(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Transfer-Encoding": "chunked"}))
        body = chunked(b"hello ", b"chunked ", b"world")
        for i in range(0, len(body), 5):
            c.send(body[i:i + 5])
            time.sleep(0.005)
        r = c.response()
        assert r.status == 200 and r.json() == {"slept": True}
        c.send(GET_HEALTH)
        assert c.response().status == 200


def test_chunked_body_with_extensions_and_trailers(srv):
    s = srv()
    body = b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n"
    r = exchange(s.port, request("POST", "/_debug/sleep?ms=0", {"Transfer-Encoding": "chunked"}) + body)
    assert r.status == 200


# ---------------------------------------------------------------------------------------------
# Expect: 100-continue
# ---------------------------------------------------------------------------------------------


def test_expect_continue_sends_100_before_the_body(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "5", "Expect": "100-continue"}))
        interim = c.response()
        assert interim.status == 100 and interim.body == b""
        assert c.quiet_for(0.1)  # nothing more until the body arrives
        c.send(b"hello")
        r = c.response()
        assert r.status == 200 and r.json() == {"slept": True}


def test_expect_continue_on_unknown_route_is_404_without_100(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/nope", {"Content-Length": "5", "Expect": "100-continue"}))
        r = c.response()
        assert_error(r, 404, "Not Found")
        assert r.header("connection") == "close"
        assert_closes(c)


def test_expect_continue_on_wrong_method_is_405_without_100(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/health", {"Content-Length": "5", "Expect": "100-continue"}))
        r = c.response()
        assert_error(r, 405, "Method Not Allowed")
        assert_closes(c)


def test_expect_continue_over_the_limit_is_413_without_100(srv):
    s = srv(server={"max_body_bytes": 1024})
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", {"Content-Length": "4096", "Expect": "100-continue"}))
        r = c.response()
        assert_error(r, 413)
        assert_closes(c)


def test_unknown_expectation_is_417(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Expect": "teapot"}, body=b"hello"))
        r = c.response()
        assert_error(r, 417)
        assert_closes(c)


# ---------------------------------------------------------------------------------------------
# Content-Encoding
# ---------------------------------------------------------------------------------------------


def test_gzip_body_is_inflated(srv):
    s = srv()
    body = gzip.compress(b'{"k":"v"}\n' * 1000)
    r = exchange(s.port, request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "gzip"}, body=body))
    assert r.status == 200


def test_gzip_over_the_inflated_cap_is_413(srv):
    s = srv(server={"max_inflated_bytes": 65536})
    with RawConn(s.port) as c:
        body = gzip.compress(b"a" * 65536)  # inflates to exactly the cap
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "gzip"}, body=body))
        assert c.response().status == 200
        bomb = gzip.compress(b"a" * (65536 + 1))
        assert len(bomb) < 1024
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "gzip"}, body=bomb))
        assert_error(c.response(), 413, "Decompressed request body too large (limit 65536 bytes)")


def test_invalid_gzip_is_400(srv):
    s = srv()
    good = gzip.compress(b"hello world " * 100)
    for bad in (b"not gzip at all", good[:-8], good + b"trailing"):
        r = exchange(s.port, request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "gzip"}, body=bad))
        assert_error(r, 400, "Invalid gzip request body")


def test_unsupported_content_encoding_is_415(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "br"}, body=b"hello"))
        assert_error(c.response(), 415, "Unsupported Content-Encoding")
        assert_closes(c)


def test_identity_encoding_and_gzip_without_body_are_accepted(srv):
    s = srv()
    r = exchange(s.port, request("POST", "/_debug/sleep?ms=0", {"Content-Encoding": "identity"}, body=b"x"))
    assert r.status == 200
    r = exchange(s.port, request("GET", "/health", {"Content-Encoding": "gzip"}))
    assert r.status == 200


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------


def test_header_bytes_over_the_limit_is_431(srv):
    s = srv(server={"max_header_bytes": 2048})
    r = exchange(s.port, request("GET", "/health", {"X-Small": "a" * 1500}))
    assert r.status == 200
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", {"X-Big": "a" * 3000}))
        assert_error(c.response(), 431)
        assert_closes(c)


def test_long_request_target_counts_towards_the_header_limit(srv):
    s = srv(server={"max_header_bytes": 2048})
    r = exchange(s.port, request("GET", "/health?" + "q" * 4000))
    assert_error(r, 431)


def test_too_many_headers_is_431(srv):
    s = srv(server={"max_headers": 8})
    hdrs = [(f"X-H{i}", "v") for i in range(7)]  # plus Host: 8
    assert exchange(s.port, request("GET", "/health", hdrs)).status == 200
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", hdrs + [("X-H7", "v")]))
        assert_error(c.response(), 431)
        assert_closes(c)


def test_content_length_over_the_limit_is_413_before_the_body(srv):
    s = srv(server={"max_body_bytes": 1024})
    assert exchange(s.port, request("GET", "/health", body=b"x" * 1024)).status == 200
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", {"Content-Length": str(10 * 1024 * 1024)}))  # no body sent
        r = c.response(timeout=2)
        assert_error(r, 413, "Request body too large (limit 1024 bytes)")
        assert r.header("connection") == "close"
        assert_closes(c)


def test_chunked_body_over_the_limit_is_413(srv):
    s = srv(server={"max_body_bytes": 1024})
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", {"Transfer-Encoding": "chunked"}) + b"400\r\n" + b"x" * 1024 + b"\r\n")
        assert c.quiet_for(0.1)  # exactly at the limit so far
        c.send(b"1\r\nx\r\n0\r\n\r\n")
        assert_error(c.response(), 413)
        assert_closes(c)


def test_413_reaches_a_client_that_is_still_uploading(srv):
    # The server answers early and closes with a lingering read, so the response is not lost to
    # a reset while the client keeps sending.
    s = srv(server={"max_body_bytes": 1024})
    with RawConn(s.port) as c:
        c.send(request("GET", "/health", {"Content-Length": str(4 * 1024 * 1024)}))
        try:
            for _ in range(16):
                c.send(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert_error(c.response(), 413)


def test_route_body_limit_overrides_the_default(srv):
    s = srv(server={"max_body_bytes": 1024})
    r = exchange(s.port, request("POST", "/_debug/sleep?ms=0", body=b"x" * 65536))
    assert r.status == 200
    r = exchange(s.port, request("POST", "/_debug/sleep?ms=0", {"Content-Length": str(64 * 1024 * 1024 + 1)}))
    assert_error(r, 413)


def test_connections_over_max_connections_are_closed_at_accept(srv):
    s = srv(server={"max_connections": 2})

    def open_two():
        # The startup probe's connection may still be counted for a moment: retry until both fit.
        conns = [RawConn(s.port), RawConn(s.port)]
        try:
            for c in conns:
                c.send(GET_HEALTH)
                assert c.response().status == 200
            return conns
        except (Closed, OSError):
            for c in conns:
                c.close()
            return None

    held = wait_until(open_two, 3, interval=0.05, what="two connections accepted")
    try:
        with RawConn(s.port) as extra:
            try:
                extra.send(GET_HEALTH)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert extra.wait_closed(3)
            assert extra.buf == b""  # closed without an answer
        for c in held:  # the two accepted connections are unaffected
            c.send(GET_HEALTH)
            assert c.response().status == 200
        held.pop().close()

        def served():
            try:
                return exchange(s.port, GET_HEALTH, timeout=2).status == 200
            except (Closed, OSError):
                return False

        wait_until(served, 3, interval=0.05, what="a slot to free up")
    finally:
        for c in held:
            c.close()


# ---------------------------------------------------------------------------------------------
# Timeouts (one sweeper per worker, 50 ms here)
# ---------------------------------------------------------------------------------------------


def _trickle_until_answer(conn, pieces, interval, limit):
    """Send pieces one by one every ``interval`` s until a response arrives; return (resp, seconds
    since the first byte) or (None, elapsed) if none within ``limit`` (scaled) seconds."""
    t0 = time.monotonic()
    deadline = t0 + scaled(limit)
    for piece in pieces:
        try:
            conn.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            if conn._fill(time.monotonic() + interval) is False:
                break
        except TimeoutError:
            pass
        if b"\r\n\r\n" in conn.buf or time.monotonic() > deadline:
            break
    try:
        return conn.response(timeout=2), time.monotonic() - t0
    except (Closed, TimeoutError):
        return None, time.monotonic() - t0


def test_slowloris_header_is_cut_at_header_timeout(srv):
    s = srv(server={"header_timeout_ms": 500})
    with RawConn(s.port) as c:
        pieces = [b"GET /health HTTP/1.1\r\n"] + [b"X-Slow-%d: x\r\n" % i for i in range(200)]
        r, elapsed = _trickle_until_answer(c, pieces, 0.05, 5)
        assert r is not None, "no 408 while trickling header bytes"
        assert_error(r, 408)
        assert r.header("connection") == "close"
        assert 0.4 <= elapsed <= scaled(1.5), elapsed
        assert_closes(c)


def test_silent_connection_is_closed_at_header_timeout(srv):
    s = srv(server={"header_timeout_ms": 500})
    with RawConn(s.port) as c:
        t0 = time.monotonic()
        assert_closes(c, 3)
        assert c.buf == b""
        assert 0.4 <= time.monotonic() - t0 <= scaled(1.5)


def test_partial_request_line_gets_408(srv):
    s = srv(server={"header_timeout_ms": 300})
    with RawConn(s.port) as c:
        c.send(b"GET /hea")
        assert_error(c.response(timeout=3), 408)
        assert_closes(c)


def test_body_timeout_is_408(srv):
    s = srv(server={"body_timeout_ms": 300})
    with RawConn(s.port) as c:
        c.send(request("POST", "/_debug/sleep?ms=0", {"Content-Length": "10"}) + b"abc")
        t0 = time.monotonic()
        r = c.response(timeout=3)
        assert_error(r, 408)
        assert 0.25 <= time.monotonic() - t0 <= scaled(1.5)
        assert_closes(c)


def test_idle_keep_alive_connection_is_closed(srv):
    s = srv(server={"idle_timeout_ms": 300})
    with RawConn(s.port) as c:
        c.send(GET_HEALTH)
        assert c.response().status == 200
        t0 = time.monotonic()
        assert_closes(c, 3)
        assert 0.25 <= time.monotonic() - t0 <= scaled(1.5)
        assert c.buf == b""  # closed silently, no 408


def test_activity_keeps_a_keep_alive_connection_open(srv):
    s = srv(server={"idle_timeout_ms": 400})
    with RawConn(s.port) as c:
        for _ in range(5):  # 5 x 200 ms: longer than idle_timeout in all
            c.send(GET_HEALTH)
            assert c.response().status == 200
            time.sleep(0.2)
        c.send(GET_HEALTH)
        assert c.response().status == 200


def test_request_timeout_answers_503_and_closes(srv):
    s = srv(server={"request_timeout_ms": 300})
    with RawConn(s.port) as c:
        t0 = time.monotonic()
        c.send(request("GET", "/_debug/sleep?ms=5000"))
        r = c.response(timeout=3)
        assert_error(r, 503, "Request timed out")
        assert r.header("connection") == "close"
        assert 0.25 <= time.monotonic() - t0 <= scaled(1.5)
        assert_closes(c)
    # The handler still sleeping must not hold the process up when it stops.
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < scaled(3)


def test_responses_larger_than_the_socket_buffer_complete_in_order(srv):
    """A response the socket cannot take at once is finished by the loop, and the ones pipelined
    behind it follow in order (the write-at-once path and its fallback, alternating)."""
    s = srv()
    with RawConn(s.port, rcvbuf=4096) as c:
        reqs = []
        for i in range(60):
            path = "/metrics" if i % 3 == 0 else "/health"
            reqs.append(request("GET", path, {"X-Request-ID": f"r{i}"}))
        c.send(b"".join(reqs))
        time.sleep(0.3)  # let the server fill the socket buffers before reading
        got = [c.response(timeout=scaled(10)) for _ in range(60)]
        assert [r.header("x-request-id") for r in got] == [f"r{i}" for i in range(60)]
        assert all(r.status == 200 for r in got)
        assert c.buf == b"" and c.quiet_for(0.2)


def test_write_timeout_cuts_a_client_that_does_not_read(srv):
    s = srv(server={"write_timeout_ms": 300})
    with RawConn(s.port, rcvbuf=4096) as c:
        c.send(request("GET", "/metrics") * 3000)  # ~10 MB of responses, never read

        def timeouts():
            samples = parse_metrics(exchange(s.port, request("GET", "/metrics")).body.decode())
            return metric(samples, "ledger_http_timeouts_total")

        wait_until(lambda: timeouts() >= 1, 5, interval=0.1, what="the write timeout")
        assert c.wait_closed(5)
        assert c.buf.count(b"HTTP/1.1 200 OK") < 3000  # cut long before the last response


# ---------------------------------------------------------------------------------------------
# Malformed requests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /hea\x7flth HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET /health HTTP/1.1\r\nX: a\x00b\r\n\r\n",
    b"GET /health HTTP/1.1\nHost: x\n\n",
    b"GET /health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"GET /health HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"GET /health HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello",
    b"GET /health HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"POST /_debug/sleep HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"POST /_debug/sleep HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET health HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    b"CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n",
], ids=["garbage", "control-in-target", "no-colon", "nul-in-value", "bare-lf", "conflicting-length",
        "bad-length", "space-before-colon", "length-and-chunked", "chunked-not-last", "bad-chunk-size",
        "unknown-transfer-coding", "relative-target", "upgrade", "connect"])
def test_malformed_request_is_400_and_closed(srv, raw):
    s = srv()
    with RawConn(s.port) as c:
        c.send(raw)
        r = c.response()
        assert_error(r, 400)
        assert r.header("connection") == "close"
        assert_closes(c)


def test_unsupported_http_version_is_505(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n")
        assert_error(c.response(), 505)
        assert_closes(c)


def test_malformed_request_after_a_good_one_still_answers_the_first(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(GET_HEALTH + b"BROKEN\r\n\r\n")
        assert c.response().status == 200
        assert_error(c.response(), 400)
        assert_closes(c)


# ---------------------------------------------------------------------------------------------
# Router
# ---------------------------------------------------------------------------------------------


def test_unknown_path_is_404(srv):
    s = srv()
    for path in ("/nope", "/health/", "/health/deep/x", "/HEALTH", "//health"):
        r = exchange(s.port, request("GET", path))
        assert_error(r, 404, "Not Found")
        assert r.header("connection") == "keep-alive"


def test_query_string_does_not_affect_routing(srv):
    s = srv()
    assert exchange(s.port, request("GET", "/health?verbose=1&x=%20")).status == 200


def test_wrong_method_is_405_with_allow(srv):
    s = srv()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = exchange(s.port, request(method, "/health", body=b"{}"))
        assert_error(r, 405, "Method Not Allowed")
        assert r.header("allow") == "GET, HEAD, OPTIONS"
    r = exchange(s.port, request("DELETE", "/_debug/sleep"))
    assert r.status == 405
    assert set(r.header("allow").split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


def test_head_sends_the_get_headers_without_a_body(srv):
    s = srv()
    get = exchange(s.port, GET_HEALTH)
    with RawConn(s.port) as c:
        c.send(request("HEAD", "/health"))
        r = c.response(head=True)
        assert r.status == 200
        assert r.header("content-length") == get.header("content-length") == str(len(get.body))
        assert r.header("content-type") == get.header("content-type")
        c.send(GET_HEALTH)  # no stray body bytes precede the next response
        assert c.response().body == get.body


def test_head_on_unknown_path_is_404_without_body(srv):
    s = srv()
    with RawConn(s.port) as c:
        c.send(request("HEAD", "/nope"))
        r = c.response(head=True)
        assert r.status == 404 and int(r.header("content-length")) > 0
        c.send(GET_HEALTH)
        assert c.response().status == 200


# ---------------------------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------------------------

ORIGIN = "https://app.example"


def test_cors_preflight_for_an_allowed_origin(srv):
    s = srv(server={"cors_origins": f"https://other.example, {ORIGIN}"})
    r = exchange(s.port, request("OPTIONS", "/health", {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}))
    assert r.status == 204
    assert r.header("access-control-allow-origin") == ORIGIN
    assert set(r.header("access-control-allow-methods").split(", ")) >= {"GET", "HEAD"}
    assert "X-Request-ID" in r.header("access-control-allow-headers")
    assert int(r.header("access-control-max-age")) > 0
    assert r.header("content-length") is None and r.body == b""


def test_cors_headers_on_normal_responses(srv):
    s = srv(server={"cors_origins": ORIGIN})
    r = exchange(s.port, request("GET", "/health", {"Origin": ORIGIN}))
    assert r.status == 200
    assert r.header("access-control-allow-origin") == ORIGIN
    assert "Origin" in r.header("vary", "")
    r = exchange(s.port, request("GET", "/nope", {"Origin": ORIGIN}))  # errors too
    assert r.status == 404 and r.header("access-control-allow-origin") == ORIGIN


def test_cors_disallowed_origin_gets_no_cors_headers(srv):
    s = srv(server={"cors_origins": ORIGIN})
    r = exchange(s.port, request("GET", "/health", {"Origin": "https://evil.example"}))
    assert r.status == 200
    assert not [k for k in r.headers if k.startswith("access-control-")], r.headers
    r = exchange(s.port, request("OPTIONS", "/health", {"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "GET"}))
    assert r.status == 405
    assert not [k for k in r.headers if k.startswith("access-control-")], r.headers


def test_cors_is_off_by_default(srv):
    s = srv()
    r = exchange(s.port, request("GET", "/health", {"Origin": ORIGIN}))
    assert r.header("access-control-allow-origin") is None


def test_cors_wildcard_allows_any_origin(srv):
    s = srv(server={"cors_origins": "*"})
    r = exchange(s.port, request("OPTIONS", "/_debug/sleep", {"Origin": "https://any.example",
                                                              "Access-Control-Request-Method": "POST"}))
    assert r.status == 204
    assert r.header("access-control-allow-origin") == "*"  # never echoed together with credentials
    assert r.header("access-control-allow-credentials") is None
    assert "POST" in r.header("access-control-allow-methods")
    # An origin listed by name next to the wildcard keeps credentials.
    s = srv(server={"cors_origins": "*, " + ORIGIN})
    r = exchange(s.port, request("GET", "/health", {"Origin": ORIGIN}))
    assert r.header("access-control-allow-origin") == ORIGIN
    assert r.header("access-control-allow-credentials") == "true"


def test_cors_preflight_on_unknown_path_is_404(srv):
    s = srv(server={"cors_origins": ORIGIN})
    r = exchange(s.port, request("OPTIONS", "/nope", {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}))
    assert r.status == 404


# ---------------------------------------------------------------------------------------------
# Access log
# ---------------------------------------------------------------------------------------------


def test_access_log_lines(srv):
    s = srv(log={"access_log": True})
    exchange(s.port, request("GET", "/health", {"X-Request-ID": "acc-1"}))
    exchange(s.port, request("POST", "/nope", {"X-Request-ID": "acc-2"}, body=b"x"))
    def lines():
        return [l for l in s.log_text().splitlines() if "kind=access" in l]

    got = wait_until(lambda: len(lines()) >= 2 and lines(), 3, what="access log lines")
    first = next(l for l in got if "rid=acc-1" in l)
    assert re.search(r'(^|\s)method=GET path="/health" status=200 dur_ms=[0-9.]+ bytes=20 rid=acc-1($|\s)',
                     first), first
    assert re.search(r"(^|\s)worker=0(\s|$)", first) and re.search(r"(^|\s)level=info(\s|$)", first), first
    second = next(l for l in got if "rid=acc-2" in l)
    assert 'method=POST path="/nope" status=404' in second, second


def test_access_log_quotes_the_path(srv):
    s = srv(log={"access_log": True})
    exchange(s.port, request("GET", '/a"b\\c?q=1', {"X-Request-ID": "acc-q"}))
    line = wait_until(lambda: next((l for l in s.log_text().splitlines() if "rid=acc-q" in l), None), 3,
                      what="the access line")
    assert 'path="/a\\"b\\\\c" status=404' in line, line


def test_access_log_is_off_by_default(srv):
    s = srv()
    exchange(s.port, GET_HEALTH)
    time.sleep(0.1)
    assert "kind=access" not in s.log_text()
