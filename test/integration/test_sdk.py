"""The Python SDK (sdk/python) end to end: FastAPI, Flask and Django applications driven through their
own test clients, plus plain client calls and the logging handler, send to a real ledgerd; the logs
are then read back through GET /api/v1/logs with the project's API key and compared field by field
(endpoint logs, exceptions with type, message and stack trace, levels, fingerprints)."""

import logging
import sys
import types

import pytest

from conftest import ROOT, scaled
from ldg_api import Api
from ldg_http import wait_until

sys.path.insert(0, str(ROOT / "sdk" / "python"))

import ledger  # noqa: E402


@pytest.fixture
def project(ledgerd):
    """(ledgerd, api_key, reader): a project with an API key; reader() lists its logs, oldest first."""
    srv = ledgerd()
    api = Api(srv.url)
    owner = api.register()
    p = owner.create_project()
    key = owner.create_key(p["project_id"])["full_key"]
    reader = api.with_key(key)

    def logs(n, **params):
        def got():
            r = reader.get("/api/v1/logs", params={"limit": 1000, "period": "last1h", **params})
            assert r.status_code == 200, r.text
            rows = r.json()["logs"]
            return rows if len(rows) >= n else None

        rows = wait_until(got, 30, interval=0.1, what=f"{n} logs stored")
        assert len(rows) == n, [(l["log_type"], l["message"]) for l in rows]
        return sorted(rows, key=lambda l: (l["timestamp"], l["id"]))

    ledger.set_ledger_client(None)
    yield srv, key, logs
    ledger.set_ledger_client(None)


def make_client(srv, key, **kw):
    return ledger.LedgerClient(api_key=key, base_url=srv.url, flush_interval=60, flush_at_exit=False,
                               http_timeout=scaled(5), **kw)


def endpoint(log):
    return log["attributes"]["endpoint"]


def check_exception(log, etype, emsg, func):
    assert (log["level"], log["log_type"], log["importance"]) == ("error", "exception", "high")
    assert log["error_type"] == etype and log["error_message"] == emsg
    assert log["stack_trace"].startswith("Traceback (most recent call last):")
    assert f", in {func}\n" in log["stack_trace"] and log["stack_trace"].rstrip().endswith(f"{etype}: {emsg}")
    assert len(log["error_fingerprint"]) == 64


def raise_value_error(n):
    raise ValueError(f"bad value {n}")


def test_sdk_client_calls_and_logging_handler(project):
    srv, key, logs = project
    c = make_client(srv, key, environment="prod", release="2.0.1")
    c.log_debug("debug line")
    c.log_info("info line", {"user": {"id": 7, "tags": ["a", "b"]}})
    c.log_warning("warning line")
    c.log_error("error line")
    c.log_critical("critical line")
    for n in (1, 2):  # the same failure twice: one fingerprint
        try:
            raise_value_error(n)
        except ValueError as e:
            c.log_exception(e, attributes={"n": n})
    try:
        raise RuntimeError()
    except RuntimeError as e:
        c.log_exception(e)  # empty str(): no message, no error_message, still stored
    log = logging.getLogger("sdk.e2e")
    log.setLevel(logging.INFO)
    handler = ledger.LedgerHandler(c)
    log.addHandler(handler)
    try:
        log.info("through logging %d", 1, extra={"order_id": 99})
        try:
            {}["k"]
        except KeyError:
            log.exception("lookup failed")
    finally:
        log.removeHandler(handler)
    assert c.flush(scaled(10))
    m = c.get_metrics()
    assert m["flusher"]["total_logs_sent"] == 10 and m["errors"]["rejected_logs"] == 0
    # the key's limits (1000/min, 50000/h by default) read from GET /api/v1/settings, times 0.9
    assert m["rate_limiter"]["from_server"] is True
    assert (m["rate_limiter"]["requests_per_minute"], m["rate_limiter"]["requests_per_hour"]) == (900, 45000)
    assert c.is_healthy()
    assert c.shutdown_sync(scaled(5))

    rows = logs(10)
    by_msg = {l["message"]: l for l in rows}
    for level in ("debug", "info", "warning", "error", "critical"):
        l = by_msg[f"{level} line"]
        assert l["level"] == level and l["log_type"] == "console"
        assert l["environment"] == "prod" and l["release"] == "2.0.1"
        assert l["platform"] == "python" and l["sdk_version"] == ledger.__version__
    assert by_msg["info line"]["attributes"] == {"user": {"id": 7, "tags": ["a", "b"]}}
    assert [by_msg[f"{lv} line"]["importance"] for lv in ("debug", "info", "error", "critical")] == \
        ["low", "standard", "high", "critical"]
    e1, e2 = by_msg["bad value 1"], by_msg["bad value 2"]
    check_exception(e1, "ValueError", "bad value 1", "raise_value_error")
    check_exception(e2, "ValueError", "bad value 2", "raise_value_error")
    assert e1["error_fingerprint"] == e2["error_fingerprint"] and e1["attributes"] == {"n": 1}
    empty = next(l for l in rows if l["error_type"] == "RuntimeError")
    assert empty["message"] is None and empty["error_message"] is None and empty["stack_trace"]
    h = by_msg["through logging 1"]
    assert h["log_type"] == "logger" and h["level"] == "info"
    assert h["attributes"]["order_id"] == 99 and h["attributes"]["logger"] == "sdk.e2e"
    k = by_msg["lookup failed"]
    assert k["log_type"] == "exception" and k["error_type"] == "KeyError" and '{}["k"]' in k["stack_trace"]


def test_sdk_fastapi(project):
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from ledger.integrations.fastapi import LedgerMiddleware

    srv, key, logs = project
    c = make_client(srv, key)
    app = fastapi.FastAPI()
    app.add_middleware(LedgerMiddleware, ledger_client=c, exclude_paths=["/health"])

    @app.get("/users/{user_id}")
    async def get_user(user_id: int):
        return {"id": user_id}

    @app.get("/health")
    async def health():
        return {"ok": True}

    @app.post("/orders")
    async def make_order():
        raise fastapi.HTTPException(status_code=409, detail="duplicate")

    @app.get("/boom")
    async def boom():
        raise ZeroDivisionError("kaboom")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/users/42?verbose=1").status_code == 200
    assert client.get("/users/abc").status_code == 422
    assert client.post("/orders").status_code == 409
    assert client.get("/health").status_code == 200
    assert client.get("/nope/12345").status_code == 404
    assert client.get("/robots.txt").status_code == 404
    assert client.get("/boom").status_code == 500
    assert c.flush(scaled(10))
    c.shutdown_sync(scaled(5))

    rows = logs(5)
    eps = [l for l in rows if l["log_type"] == "endpoint"]
    assert [(endpoint(l)["method"], endpoint(l)["path"], endpoint(l)["status_code"], l["level"]) for l in eps] == [
        ("GET", "/users/{user_id}", 200, "info"), ("GET", "/users/{user_id}", 422, "warning"),
        ("POST", "/orders", 409, "warning"), ("GET", "/nope/{id}", 404, "warning")]
    assert endpoint(eps[0])["query_params"] == "verbose=1" and endpoint(eps[0])["duration_ms"] >= 0
    assert eps[0]["message"].startswith("GET /users/{user_id} - 200 (")
    (exc,) = [l for l in rows if l["log_type"] == "exception"]
    check_exception(exc, "ZeroDivisionError", "kaboom", "boom")
    assert exc["message"] == "GET /boom - Exception: kaboom"
    assert exc["attributes"]["method"] == "GET" and exc["attributes"]["path"] == "/boom"


def test_sdk_flask(project):
    flask = pytest.importorskip("flask")
    from ledger.integrations.flask import Ledger, LedgerMiddleware

    srv, key, logs = project
    c = make_client(srv, key)
    app = flask.Flask("sdk_e2e_flask")

    @app.route("/users/<int:user_id>")
    def user(user_id):
        return {"id": user_id}

    @app.route("/boom")
    def boom():
        raise LookupError("flask kaboom")

    @app.route("/gone")
    def gone():
        flask.abort(410)

    app.wsgi_app = LedgerMiddleware(app.wsgi_app, ledger_client=c, exclude_paths=["/health"])
    client = app.test_client()
    assert client.get("/users/5?x=y").status_code == 200
    assert client.get("/gone").status_code == 410
    assert client.get("/boom").status_code == 500
    assert client.get("/health").status_code == 404
    assert client.get("/nothing/5f1d7a8e9c0b1a2b3c4d5e6f").status_code == 404

    # the extension form, on a second app
    app2 = flask.Flask("sdk_e2e_flask2")

    @app2.route("/items/<name>", methods=["POST"])
    def item(name):
        return "", 201

    Ledger(app2, ledger_client=c)
    assert app2.extensions["ledger"] is c
    assert app2.test_client().post("/items/abc").status_code == 201
    assert c.flush(scaled(10))
    c.shutdown_sync(scaled(5))

    rows = logs(5)
    eps = [l for l in rows if l["log_type"] == "endpoint"]
    assert [(endpoint(l)["method"], endpoint(l)["path"], endpoint(l)["status_code"], l["level"]) for l in eps] == [
        ("GET", "/users/<int:user_id>", 200, "info"), ("GET", "/gone", 410, "warning"),
        ("GET", "/nothing/{id}", 404, "warning"), ("POST", "/items/<name>", 201, "info")]
    assert endpoint(eps[0])["query_params"] == "x=y"
    (exc,) = [l for l in rows if l["log_type"] == "exception"]
    check_exception(exc, "LookupError", "flask kaboom", "boom")
    assert exc["message"] == "GET /boom - Exception: flask kaboom"


def test_sdk_django(project):
    django = pytest.importorskip("django")
    from django.conf import settings

    srv, key, logs = project
    if settings.configured:
        pytest.skip("Django settings were configured elsewhere in this process")
    from django.http import JsonResponse
    from django.urls import path

    def user(request, user_id):
        return JsonResponse({"id": user_id})

    def boom(request):
        raise PermissionError("django kaboom")

    urls = types.ModuleType("ldg_sdk_django_urls")
    urls.urlpatterns = [path("users/<int:user_id>", user), path("boom", boom)]
    sys.modules[urls.__name__] = urls
    settings.configure(
        DEBUG=False, SECRET_KEY="x" * 50, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=urls.__name__,
        MIDDLEWARE=["ledger.integrations.django.LedgerMiddleware"], INSTALLED_APPS=[], DATABASES={},
        LOGGING_CONFIG=None,
        LEDGER_CONFIG={"api_key": key, "base_url": srv.url, "flush_interval": 60, "flush_at_exit": False},
        LEDGER_EXCLUDE_PATHS=["/health"])
    django.setup()
    from django.test import Client

    client = Client(raise_request_exception=False)
    assert client.get("/users/3?q=1").status_code == 200
    assert client.get("/boom").status_code == 500
    assert client.get("/missing/77").status_code == 404
    assert client.get("/health").status_code == 404
    c = ledger.get_ledger_client()
    assert c is not None and c.base_url == srv.url
    assert c.flush(scaled(10))
    c.shutdown_sync(scaled(5))

    rows = logs(3)
    eps = [l for l in rows if l["log_type"] == "endpoint"]
    assert [(endpoint(l)["method"], endpoint(l)["path"], endpoint(l)["status_code"]) for l in eps] == [
        ("GET", "/users/<int:user_id>", 200), ("GET", "/missing/{id}", 404)]
    assert endpoint(eps[0])["query_params"] == "q=1"
    (exc,) = [l for l in rows if l["log_type"] == "exception"]
    check_exception(exc, "PermissionError", "django kaboom", "boom")
    assert exc["message"] == "GET /boom - Exception: django kaboom"
