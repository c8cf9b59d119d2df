"""``LedgerMiddleware`` for FastAPI, Starlette and any ASGI application (pure ASGI: no Starlette import).

    app.add_middleware(LedgerMiddleware, ledger_client=ledger, exclude_paths=["/health"])

Per HTTP request, one log: an ``endpoint`` log with the method, the route template (FastAPI's
``/users/{user_id}``; the raw path with ids replaced by ``{id}`` when no route matched), the status
and the duration; or, when the application raises, an ``exception`` log with the request's method,
path, duration and query, after which the exception propagates unchanged.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Optional

from ..client import LedgerClient, get_ledger_client
from ._common import exception_attributes, is_scanner_noise, normalize_path


class LedgerMiddleware:
    def __init__(self, app: Any, ledger_client: Optional[LedgerClient] = None, exclude_paths: Iterable[str] = ()):
        self.app = app
        self._client = ledger_client
        self.exclude_paths = frozenset(exclude_paths or ())

    def _get_client(self):
        c = self._client
        if c is None:
            c = self._client = get_ledger_client()
        return c

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        status = 0
        start = time.perf_counter()

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            self._record(scope, status, start, exc)
            raise
        self._record(scope, status, start, None)

    def _record(self, scope, status, start, exc):
        try:
            duration_ms = (time.perf_counter() - start) * 1000.0
            client = self._get_client()
            if client is None:
                return
            route = scope.get("route")
            path = getattr(route, "path", None) if route is not None else None
            if not path:
                raw = scope.get("path") or "/"
                if is_scanner_noise(raw):
                    return
                path = normalize_path(raw)
            method = scope.get("method", "GET")
            qs = scope.get("query_string") or b""
            query = qs.decode("latin-1") if qs else None
            if exc is not None:
                client.log_exception(exc, message=f"{method} {path} - Exception: {exc}",
                                     attributes=exception_attributes(method, path, duration_ms, query))
            else:
                client.log_endpoint(method, path, status or 500, duration_ms, query)
        except Exception:
            pass
