"""The public API: what each call puts on the wire, configuration, health and metrics, the logging
handler, shutdown and exit."""

import asyncio
import logging
import os
import re
import subprocess
import sys
import textwrap

import ledger
from ledger.integrations._common import is_scanner_noise, normalize_path

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


def test_batch_shape_and_headers(fake, make_client):
    c = make_client(fake.url, flush_interval=60, environment="prod", release="1.2.3")
    c.log_debug("d")
    c.log_info("hello", {"user": 7})
    c.log_warning("w")
    c.log_error("e")
    c.log_critical("c")
    c.log("info", "custom", None, log_type="database", importance="low")
    assert c.flush(5)
    (post,) = fake.posts
    assert post.path == "/api/v1/ingest/batch"
    h = post.headers
    assert h["Authorization"] == "Bearer ledger_test_key"
    assert h["Content-Encoding"] == "gzip" and h["Content-Type"] == "application/json"
    assert h["User-Agent"].startswith("ledger-sdk-python/")
    assert re.fullmatch(r"[0-9a-f]{32}", h["Idempotency-Key"])
    logs = post.logs
    assert [(l["level"], l["log_type"], l["importance"]) for l in logs] == [
        ("debug", "console", "low"), ("info", "console", "standard"), ("warning", "console", "standard"),
        ("error", "console", "high"), ("critical", "console", "critical"), ("info", "database", "low")]
    assert logs[1]["message"] == "hello" and logs[1]["attributes"] == {"user": 7}
    assert "attributes" not in logs[0]
    for l in logs:
        assert TS.match(l["timestamp"]), l["timestamp"]
        assert l["platform"] == "python" and l["sdk_version"] == ledger.__version__
        assert l["environment"] == "prod" and l["release"] == "1.2.3"
    # settings were fetched first, over the same keep-alive connection
    assert fake.requests[0].method == "GET" and fake.requests[0].path == "/api/v1/settings"


def fail_here():
    raise KeyError("missing")


def test_exception_fields(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    try:
        fail_here()
    except KeyError as e:
        c.log_exception(e, attributes={"order": 1})
    try:
        raise RuntimeError()
    except RuntimeError as e:
        c.log_exception(e, message="empty one")
    try:
        raise RuntimeError()
    except RuntimeError as e:
        c.log_exception(e)
    assert c.flush(5)
    a, b, d = fake.logs()
    assert (a["level"], a["log_type"], a["importance"]) == ("error", "exception", "high")
    assert a["error_type"] == "KeyError" and a["error_message"] == "'missing'" and a["message"] == "'missing'"
    # the frames ledgerd fingerprints: File "<path>", line <n>, innermost last
    frames = re.findall(r'File "([^"]+)", line (\d+)', a["stack_trace"])
    assert frames[0][0].endswith("test_client.py") and len(frames) == 2
    assert a["stack_trace"].startswith("Traceback (most recent call last):")
    assert a["stack_trace"].rstrip().endswith("KeyError: 'missing'")
    assert b["message"] == "empty one" and "error_message" not in b
    assert d["error_type"] == "RuntimeError" and "message" not in d and "error_message" not in d


def test_endpoint_log(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    c.log_endpoint("GET", "/users/{id}", 200, 12.345, "a=1")
    c.log_endpoint("POST", "/x", 404, 1.0)
    c.log_endpoint("GET", "/y", 503, 1500.7)
    assert c.flush(5)
    a, b, d = fake.logs()
    assert a["log_type"] == "endpoint" and a["level"] == "info"
    assert a["message"] == "GET /users/{id} - 200 (12ms)"
    assert a["attributes"] == {"endpoint": {"method": "GET", "path": "/users/{id}", "status_code": 200,
                                            "duration_ms": 12.35, "query_params": "a=1"}}
    assert (b["level"], b["importance"]) == ("warning", "standard") and "query_params" not in b["attributes"]["endpoint"]
    assert (d["level"], d["importance"]) == ("error", "high")


def test_caps_and_attributes(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    c.log_info("x" * 20000)
    c.log_info("big", {f"k{i}": "v" * 1000 for i in range(200)})
    c.log_info("odd", {"obj": object(), "nan": float("nan")})
    c.log_info(12345)
    assert c.flush(5)
    a, b, d, e = fake.logs()
    assert len(a["message"]) == 10000 and a["message"].endswith("... [truncated]")
    import json
    assert len(json.dumps(b["attributes"])) <= 100000 and b["attributes"]["_truncated"] is True
    assert "k0" in b["attributes"]
    assert isinstance(d["attributes"]["obj"], str) and d["attributes"]["nan"] is None
    assert e["message"] == "12345"


def test_env_configuration(fake, monkeypatch):
    monkeypatch.setenv("LEDGER_API_KEY", "ledger_from_env")
    monkeypatch.setenv("LEDGER_BASE_URL", fake.url)
    monkeypatch.setenv("LEDGER_ENVIRONMENT", "staging")
    c = ledger.get_ledger_client()
    try:
        assert c is not None and ledger.get_ledger_client() is c
        c.log_info("from env")
        assert c.flush(5)
        assert fake.posts[0].headers["Authorization"] == "Bearer ledger_from_env"
        assert fake.logs()[0]["environment"] == "staging"
    finally:
        c.shutdown_sync(1)


def test_never_raises_when_misconfigured(capsys):
    c = ledger.LedgerClient(api_key="", base_url="http://127.0.0.1:1", flush_at_exit=False)
    c.log_info("dropped")
    assert c.flush(1) is False or c.get_metrics()["buffer"]["size"] == 0
    assert not c.is_healthy()
    d = ledger.LedgerClient(api_key="ledger_k", base_url="ftp://nope", flush_at_exit=False)
    d.log_error("dropped")
    d.log_exception(ValueError("x"))
    d.log_endpoint("GET", "/", "not a number", "x")
    assert d.get_health_status()["status"] == "unhealthy"
    err = capsys.readouterr().err
    assert "no API key" in err and "base_url must start with http" in err
    c.shutdown_sync(0.1)
    d.shutdown_sync(0.1)


def test_health_and_metrics_shapes(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    c.log_info("x")
    assert c.flush(5)
    h = c.get_health_status()
    assert h["status"] == "healthy" and h["healthy"] is True and c.is_healthy()
    for k in ("issues", "buffer_size", "buffer_utilization_percent", "circuit_breaker_open", "consecutive_failures",
              "dropped_logs", "last_success", "last_error"):
        assert k in h
    m = c.get_metrics()
    assert m["flusher"]["total_logs_sent"] == 1 and m["flusher"]["failed_flushes"] == 0
    assert m["buffer"]["max_size"] == 10000
    assert m["rate_limiter"]["requests_per_minute"] == 90000  # 100000 from settings x 0.9
    assert m["rate_limiter"]["from_server"] is True
    assert set(m["errors"]) >= {"network", "timeout", "server", "rate_limited", "unauthorized", "rejected_logs"}


def test_logging_handler(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    log = logging.getLogger("shop.orders")
    log.setLevel(logging.DEBUG)
    h = ledger.LedgerHandler(c)
    log.addHandler(h)
    try:
        log.info("order %s placed", 42, extra={"order_id": 42})
        log.warning("slow")
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("division failed")
        logging.getLogger("ledger.internal").addHandler(h)
        logging.getLogger("ledger.internal").error("ignored")
    finally:
        log.removeHandler(h)
        logging.getLogger("ledger.internal").removeHandler(h)
    assert c.flush(5)
    a, b, e = fake.logs()
    assert a["log_type"] == "logger" and a["level"] == "info" and a["message"] == "order 42 placed"
    assert a["attributes"]["order_id"] == 42 and a["attributes"]["logger"] == "shop.orders"
    assert b["level"] == "warning"
    assert e["log_type"] == "exception" and e["error_type"] == "ZeroDivisionError"
    assert e["message"] == "division failed" and "1 / 0" in e["stack_trace"]


def test_shutdown_sync_and_async(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    c.log_info("one")
    assert c.shutdown_sync(5)
    c.log_info("after shutdown")  # dropped, counted, no error
    assert c.get_metrics()["buffer"]["dropped_closed"] == 1
    d = make_client(fake.url, flush_interval=60)
    d.log_info("two")
    assert asyncio.run(d.shutdown(5)) is True
    assert [l["message"] for l in fake.logs()] == ["one", "two"]


def test_flush_at_exit(fake, tmp_path):
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.join(os.path.dirname(__file__), '..')!r})
        from ledger import LedgerClient
        c = LedgerClient(api_key="ledger_k", base_url={fake.url!r}, flush_interval=60)
        for i in range(3):
            c.log_info("exit %d" % i)
    """))
    r = subprocess.run([sys.executable, str(script)], timeout=30, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert [l["message"] for l in fake.logs()] == ["exit 0", "exit 1", "exit 2"]


def test_path_normalisation():
    assert normalize_path("/users/42/orders/5f1d7a8e9c0b1a2b3c4d5e6f") == "/users/{id}/orders/{id}"
    assert normalize_path("/t/123e4567-e89b-12d3-a456-426614174000") == "/t/{id}"
    assert normalize_path("/a/abcdefghijklmnopqrstuvwxyz") == "/a/{id}"
    assert normalize_path("/a/short") == "/a/short"
    for p in ("/robots.txt", "/favicon.ico", "/.env.local", "/wp-admin/x", "/x.php", "/apple-touch-icon-1.png"):
        assert is_scanner_noise(p), p
    assert not is_scanner_noise("/users/1")


def test_bad_django_style_config_does_not_raise(capsys, monkeypatch):
    import types
    conf = types.ModuleType("django.conf")
    conf.settings = types.SimpleNamespace(configured=True, LEDGER_CONFIG={"api_key": "k", "no_such_option": 1})
    monkeypatch.setitem(sys.modules, "django.conf", conf)
    assert ledger.get_ledger_client() is None
    assert "no_such_option" in capsys.readouterr().err
