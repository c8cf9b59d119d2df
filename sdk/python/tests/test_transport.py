"""Failure modes of the transport against a local fake server: timeouts, slow servers, 5xx and
network backoff, 429/503 Retry-After, 401, 400, per-log rejections, the circuit breaker, buffer
overflow, client-side rate limits, keep-alive reuse and fork()."""

import os
import socket
import time

import pytest


def gaps(posts):
    return [b.at - a.at for a, b in zip(posts, posts[1:])]


def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_flush_size_and_interval_trigger_sends(fake, make_client):
    c = make_client(fake.url, flush_interval=60, flush_size=10)
    for i in range(25):
        c.log_info(f"m{i}")
    posts = fake.wait_posts(2)
    assert [len(p.logs) for p in posts[:2]] == [10, 10]  # no flush() call: size alone triggered them
    assert c.flush(5)
    assert [l["message"] for l in fake.logs()] == [f"m{i}" for i in range(25)]
    d = make_client(fake.url, flush_interval=0.2, flush_size=1000)
    d.log_info("by the timer")
    fake.wait_posts(4, timeout=3)
    assert fake.logs()[-1]["message"] == "by the timer"


def test_5xx_backoff_with_same_idempotency_key(fake, make_client):
    fake.answers = [500, 502, 202]
    c = make_client(fake.url, flush_interval=60)
    c.log_info("retried")
    assert c.flush(5)
    posts = fake.posts
    assert len(posts) == 3
    assert len({p.headers["Idempotency-Key"] for p in posts}) == 1
    g = gaps(posts)
    assert g[0] >= 0.02 and g[1] >= 0.04  # the (shortened) 2 s / 4 s schedule
    m = c.get_metrics()
    assert m["errors"]["server"] == 2 and m["flusher"]["retries"] == 2 and m["flusher"]["total_logs_sent"] == 1
    # a new batch gets a new key
    c.log_info("next")
    assert c.flush(5)
    assert fake.posts[-1].headers["Idempotency-Key"] != posts[0].headers["Idempotency-Key"]


def test_5xx_exhausted_drops_batch(fake, make_client):
    fake.answers = [500]
    c = make_client(fake.url, flush_interval=60)
    c.log_info("lost")
    assert c.flush(5) is False
    assert len(fake.posts) == 4  # first try + 3 retries
    m = c.get_metrics()
    assert m["flusher"]["failed_flushes"] == 1 and m["flusher"]["total_logs_failed"] == 1
    assert c.get_health_status()["status"] == "degraded"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_honoured(fake, make_client, status):
    fake.answers = [{"status": status, "headers": {"Retry-After": "0.4"}}, 202]
    c = make_client(fake.url, flush_interval=60)
    c.log_info("later")
    assert c.flush(5)
    posts = fake.posts
    assert len(posts) == 2 and gaps(posts)[0] >= 0.4
    assert posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]


def test_retry_after_http_date_and_cap(fake, make_client):
    fake.answers = [{"status": 429, "headers": {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}}, 202]
    c = make_client(fake.url, flush_interval=60, retry_after_max=0.3)
    c.log_info("capped")
    t0 = time.monotonic()
    assert c.flush(5)
    assert 0.3 <= time.monotonic() - t0 < 3
    assert c.get_metrics()["errors"]["rate_limited"] == 1


def test_timeout_then_retry(fake, make_client):
    fake.answers = [{"status": 202, "delay": 1.0}, 202]
    c = make_client(fake.url, flush_interval=60, http_timeout=0.3)
    c.log_info("slow first")
    assert c.flush(5)
    posts = fake.posts
    assert len(posts) == 2 and posts[0].headers["Idempotency-Key"] == posts[1].headers["Idempotency-Key"]
    assert c.get_metrics()["errors"]["timeout"] == 1
    assert gaps(posts)[0] >= 0.3 + 0.05  # the timeout, then the network schedule's first pause


def test_slow_server_does_not_slow_the_app(fake, make_client):
    fake.answers = [{"status": 202, "delay": 0.8}]
    c = make_client(fake.url, flush_interval=60, flush_size=50, http_timeout=3)
    worst = 0.0
    t_end = time.monotonic() + 1.0
    n = 0
    while time.monotonic() < t_end:
        t0 = time.perf_counter()
        c.log_info("tick", {"n": n})
        worst = max(worst, time.perf_counter() - t0)
        n += 1
        if n % 100 == 0:
            time.sleep(0.001)
    assert len(fake.posts) >= 1  # a send was in flight while we logged
    assert worst < 0.05, worst  # never waited for the network (a GIL switch is at most a few ms)


def test_network_errors_backoff_then_drop(make_client):
    c = make_client(closed_port_url(), flush_interval=60, fetch_settings=False)
    c.log_info("nobody there")
    t0 = time.monotonic()
    assert c.flush(5) is False
    assert time.monotonic() - t0 >= 0.05 + 0.1 + 0.2  # 5/10/20 s, shortened
    m = c.get_metrics()
    assert m["errors"]["network"] == 4 and m["flusher"]["failed_flushes"] == 1


def test_401_stops_and_says_once(fake, make_client, capsys):
    fake.answers = [401]
    c = make_client(fake.url, flush_interval=60)
    c.log_info("refused")
    assert c.flush(5) is False
    c.log_info("not sent")
    c.log_error("not sent either")
    c.flush(1)
    assert len(fake.posts) == 1  # no retry, nothing after
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("ledger:")]
    assert len(err) == 1 and "401" in err[0]
    assert c.get_health_status()["status"] == "unhealthy" and not c.is_healthy()
    assert c.get_metrics()["errors"]["unauthorized"] == 1


def test_settings_401_stops_before_any_post(fake, make_client, capsys):
    fake.settings_status = 401
    c = make_client(fake.url, flush_interval=60)
    c.log_info("x")
    c.flush(2)
    assert fake.posts == [] and not c.is_healthy()
    assert capsys.readouterr().err.count("refused the API key") == 1


def test_400_drops_without_retry(fake, make_client):
    fake.answers = [400, 202]
    c = make_client(fake.url, flush_interval=60)
    c.log_info("bad batch")
    c.flush(5)
    c.log_info("good batch")
    assert c.flush(5)
    assert len(fake.posts) == 2 and c.get_metrics()["errors"]["client"] == 1
    assert c.get_metrics()["flusher"]["consecutive_failures"] == 0


def test_rejected_logs_counted_and_reported_once(fake, make_client, capsys):
    body = {"accepted": 1, "rejected": 1, "message": None, "errors": ["Log 1: error_type is required"]}
    fake.answers = [{"status": 202, "body": body}]
    c = make_client(fake.url, flush_interval=60)
    for _ in range(2):
        c.log_info("ok")
        c.log_info("bad")
        assert c.flush(5)
    m = c.get_metrics()
    assert m["errors"]["rejected_logs"] == 2 and m["flusher"]["total_logs_sent"] == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Log 1: error_type is required" in err


def test_circuit_breaker_opens_and_half_opens(fake, make_client):
    fake.answers = [500, 500, 500, 202]
    c = make_client(fake.url, flush_interval=60, retry_5xx_delays=(), breaker_threshold=3, breaker_cooldown=0.5)
    for i in range(3):
        c.log_info(f"f{i}")
        assert c.flush(5) is False
    assert c.get_metrics()["flusher"]["circuit_breaker_open"] is True
    assert c.get_health_status()["status"] == "unhealthy"
    c.log_info("held")
    assert c.flush(1) is False
    assert len(fake.posts) == 3  # nothing sent while open
    time.sleep(0.55)
    assert c.flush(5)  # half-open: one batch goes, succeeds, breaker closes
    assert len(fake.posts) == 4 and fake.posts[-1].logs[0]["message"] == "held"
    assert c.get_metrics()["flusher"]["circuit_breaker_open"] is False and c.is_healthy()


def test_buffer_overflow_drops_oldest(fake, make_client):
    c = make_client(fake.url, flush_interval=60, flush_size=100000, max_buffer_size=100)
    for i in range(250):
        c.log_info(f"m{i}")
    m = c.get_metrics()
    assert m["buffer"]["size"] == 100 and m["buffer"]["dropped_overflow"] == 150
    assert m["buffer"]["utilization_percent"] == 100.0
    assert "buffer 100% full" in c.get_health_status()["issues"]
    assert c.flush(5)
    assert [l["message"] for l in fake.logs()] == [f"m{i}" for i in range(150, 250)]


def test_dead_server_memory_stays_bounded(make_client):
    c = make_client(closed_port_url(), flush_interval=0.05, flush_size=50, max_buffer_size=500,
                    fetch_settings=False, retry_network_delays=(0.05,), breaker_threshold=2, breaker_cooldown=5)
    for i in range(20000):
        c.log_info("x")
    m = c.get_metrics()
    assert m["buffer"]["size"] <= 500
    accounted = m["buffer"]["dropped_overflow"] + m["flusher"]["total_logs_failed"] + m["buffer"]["size"]
    assert 20000 - 2 * 50 <= accounted <= 20000  # at most one batch in flight and the next encoded


def test_client_side_rate_limit(fake, make_client):
    fake.settings = {"rate_limits": {"requests_per_minute": 10, "requests_per_hour": 1000}}
    # a wall clock 0.3 s before the end of a minute: the third request waits for the next window
    offset = (60 - time.time() % 60) - 0.3
    c = make_client(fake.url, flush_interval=60, rate_limit_buffer=0.2, time_fn=lambda: time.time() + offset)
    for i in range(3):
        c.log_info(f"r{i}")
        assert c.flush(5)
    m = c.get_metrics()["rate_limiter"]
    assert m["requests_per_minute"] == 2 and m["waits"] == 1
    g = gaps(fake.posts)
    assert g[1] >= 0.2


def test_keepalive_connection_reused(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    for i in range(5):
        c.log_info(f"k{i}")
        assert c.flush(5)
    peers = {r.peer for r in fake.requests}
    assert len(peers) == 1  # settings + 5 batches on one connection
    assert c.get_metrics()["flusher"]["connections_opened"] == 1
    # the server closing the connection costs a new one, not an error
    fake.answers = [{"status": 202, "close": True}]
    for i in range(2):
        c.log_info("again")
        assert c.flush(5)
    assert c.get_metrics()["flusher"]["connections_opened"] == 2
    assert c.get_metrics()["flusher"]["retries"] == 0


def test_fork_child_restarts_its_thread(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    c.log_info("parent before fork")
    assert c.flush(5)
    c.log_info("parent buffered at fork")
    pid = os.fork()
    if pid == 0:  # child: a fresh buffer and a new thread on its first log
        code = 1
        try:
            c.log_info("from child")
            code = 0 if c.flush(5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert c.flush(5)
    msgs = sorted(l["message"] for l in fake.logs())
    assert msgs == ["from child", "parent before fork", "parent buffered at fork"]
    child_post = next(p for p in fake.posts if p.logs[0]["message"] == "from child")
    parent_posts = [p for p in fake.posts if p is not child_post]
    assert child_post.peer not in {p.peer for p in parent_posts}  # its own connection


def test_shutdown_respects_its_deadline(make_client):
    c = make_client(closed_port_url(), flush_interval=60, fetch_settings=False,
                    retry_network_delays=(5, 10, 20))
    c.log_info("cannot be sent")
    t0 = time.monotonic()
    assert c.shutdown_sync(0.5) is False
    assert time.monotonic() - t0 < 2
