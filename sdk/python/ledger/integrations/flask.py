"""WSGI middleware (Flask or any WSGI application) and a Flask extension.

    app.wsgi_app = LedgerMiddleware(app.wsgi_app, ledger_client=ledger)   # any WSGI app
    Ledger(app, ledger_client=ledger)                                     # Flask extension form

Per request, one ``endpoint`` log (method, route, status, duration, query). Flask turns an unhandled
exception into a 500 itself, so the middleware would only see the 500: on a Flask application (given
as ``app.wsgi_app``, or through the extension) the exception is taken from Flask's
``handle_exception`` and logged as an ``exception`` log with the request's context instead, and the
route template (``/users/<int:user_id>``) is used as the path. Flask is not imported by this module.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Optional

from ..client import LedgerClient, get_ledger_client
from ._common import exception_attributes, is_scanner_noise, normalize_path

ROUTE_KEY = "ledger.route"
EXC_KEY = "ledger.exception"


class LedgerMiddleware:
    def __init__(self, wsgi_app: Any, ledger_client: Optional[LedgerClient] = None,
                 exclude_paths: Iterable[str] = ()):
        self.app = wsgi_app
        self._client = ledger_client
        self.exclude_paths = frozenset(exclude_paths or ())
        flask_app = getattr(wsgi_app, "__self__", None)
        if flask_app is not None and hasattr(flask_app, "url_map") and hasattr(flask_app, "handle_exception"):
            _install_flask_hooks(flask_app)

    def _get_client(self):
        c = self._client
        if c is None:
            c = self._client = get_ledger_client()
        return c

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "/") in self.exclude_paths:
            return self.app(environ, start_response)
        status = [0]
        start = time.perf_counter()

        def sr(status_line, headers, exc_info=None):
            try:
                status[0] = int(status_line[:3])
            except ValueError:
                pass
            if exc_info is None:
                return start_response(status_line, headers)
            return start_response(status_line, headers, exc_info)

        try:
            result = self.app(environ, sr)
        except Exception as exc:
            self._record(environ, status[0], start, exc)
            raise
        self._record(environ, status[0], start, environ.pop(EXC_KEY, None))
        return result

    def _record(self, environ, status, start, exc):
        try:
            duration_ms = (time.perf_counter() - start) * 1000.0
            client = self._get_client()
            if client is None:
                return
            path = environ.get(ROUTE_KEY)
            if not path:
                raw = environ.get("PATH_INFO") or "/"
                if is_scanner_noise(raw):
                    return
                path = normalize_path(raw)
            method = environ.get("REQUEST_METHOD", "GET")
            query = environ.get("QUERY_STRING") or None
            if exc is not None:
                client.log_exception(exc, message=f"{method} {path} - Exception: {exc}",
                                     attributes=exception_attributes(method, path, duration_ms, query))
            else:
                client.log_endpoint(method, path, status or 500, duration_ms, query)
        except Exception:
            pass


def _install_flask_hooks(app):
    """Record the route template and the unhandled exception of each request in its WSGI environ."""
    if getattr(app, "_ledger_hooks", False):
        return
    app._ledger_hooks = True
    from flask import request  # only reached with a Flask app

    @app.before_request
    def _ledger_route():
        rule = request.url_rule
        if rule is not None:
            request.environ[ROUTE_KEY] = rule.rule

    original = app.handle_exception

    def handle_exception(e):
        try:
            request.environ[EXC_KEY] = e
        except Exception:
            pass
        return original(e)

    app.handle_exception = handle_exception


class Ledger:
    """Flask extension: ``Ledger(app, ledger_client=...)`` or ``Ledger(ledger_client=...).init_app(app)``.
    Wraps ``app.wsgi_app`` with ``LedgerMiddleware`` and keeps the client in
    ``app.extensions["ledger"]``."""

    def __init__(self, app: Any = None, ledger_client: Optional[LedgerClient] = None,
                 exclude_paths: Iterable[str] = ()):
        self.ledger_client = ledger_client
        self.exclude_paths = tuple(exclude_paths or ())
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        client = self.ledger_client
        if client is None:
            cfg = app.config.get("LEDGER_CONFIG")
            client = LedgerClient(**cfg) if cfg else get_ledger_client()
            self.ledger_client = client
        app.wsgi_app = LedgerMiddleware(app.wsgi_app, ledger_client=client, exclude_paths=self.exclude_paths)
        app.extensions["ledger"] = client
        return app
