"""The middlewares on bare ASGI and WSGI applications (no framework): what each request logs, and that
exceptions and non-HTTP traffic pass through unchanged. Framework apps: test/integration/test_sdk.py."""

import asyncio

import pytest

from ledger.integrations.fastapi import LedgerMiddleware as AsgiMiddleware
from ledger.integrations.flask import LedgerMiddleware as WsgiMiddleware


def asgi_call(app, path, scope_type="http", query=b""):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": scope_type, "method": "GET", "path": path, "query_string": query, "headers": []}
    asyncio.run(app(scope, receive, send))
    return sent


async def plain_asgi(scope, receive, send):
    if scope["path"] == "/boom":
        raise OSError("disk gone")
    status = 404 if scope["path"].startswith("/missing") else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_asgi_on_a_bare_app(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    app = AsgiMiddleware(plain_asgi, ledger_client=c, exclude_paths=["/health"])
    assert asgi_call(app, "/orders/123", query=b"page=2")[0]["status"] == 200
    asgi_call(app, "/health")
    asgi_call(app, "/missing/550e8400-e29b-41d4-a716-446655440000")
    asgi_call(app, "/wp-admin/setup.php")
    asgi_call(app, "/ws", scope_type="websocket")  # not HTTP: passed through, not logged
    with pytest.raises(OSError):
        asgi_call(app, "/boom")
    assert c.flush(5)
    a, b, e = fake.logs()
    assert a["attributes"]["endpoint"] == {"method": "GET", "path": "/orders/{id}", "status_code": 200,
                                           "duration_ms": a["attributes"]["endpoint"]["duration_ms"],
                                           "query_params": "page=2"}
    assert b["attributes"]["endpoint"]["path"] == "/missing/{id}" and b["level"] == "warning"
    assert e["log_type"] == "exception" and e["error_type"] == "OSError"
    assert e["message"] == "GET /boom - Exception: disk gone"
    assert set(e["attributes"]) == {"method", "path", "duration_ms"}


def plain_wsgi(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise KeyError("nope")
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"made"]


def test_wsgi_on_a_bare_app(fake, make_client):
    c = make_client(fake.url, flush_interval=60)
    app = WsgiMiddleware(plain_wsgi, ledger_client=c)
    env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/things", "QUERY_STRING": "x=1"}
    assert app(env, lambda s, h, e=None: None) == [b"made"]
    with pytest.raises(KeyError):
        app({"REQUEST_METHOD": "GET", "PATH_INFO": "/boom"}, lambda s, h, e=None: None)
    assert c.flush(5)
    a, e = fake.logs()
    assert a["message"].startswith("POST /things - 201 (") and a["attributes"]["endpoint"]["query_params"] == "x=1"
    assert e["error_type"] == "KeyError" and "raise KeyError" in e["stack_trace"]


def test_middleware_without_a_client_is_a_no_op():
    app = AsgiMiddleware(plain_asgi)
    assert asgi_call(app, "/x")[0]["status"] == 200
    w = WsgiMiddleware(plain_wsgi)
    assert w({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda s, h, e=None: None) == [b"made"]
