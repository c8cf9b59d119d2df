"""Django middleware: add ``"ledger.integrations.django.LedgerMiddleware"`` to ``MIDDLEWARE`` and
configure the client in ``settings.LEDGER_CONFIG`` (the ``LedgerClient`` keyword arguments, e.g.
``{"api_key": ..., "base_url": ...}``); ``ledger.get_ledger_client()`` returns that client anywhere
in the project. Setting ``LEDGER_EXCLUDE_PATHS`` skips paths.

Per request, one ``endpoint`` log with the URL pattern (``/users/<int:user_id>``) as the path, or,
when a view raises, an ``exception`` log with the request's context (Django then answers 500 as
usual: the middleware does not change the response).
"""

from __future__ import annotations

import time

from ..client import get_ledger_client
from ._common import exception_attributes, is_scanner_noise, normalize_path


class LedgerMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._client = None
        try:
            from django.conf import settings

            self.exclude_paths = frozenset(getattr(settings, "LEDGER_EXCLUDE_PATHS", ()) or ())
        except Exception:
            self.exclude_paths = frozenset()

    def _get_client(self):
        c = self._client
        if c is None:
            c = self._client = get_ledger_client()
        return c

    def __call__(self, request):
        if request.path_info in self.exclude_paths:
            return self.get_response(request)
        start = time.perf_counter()
        try:
            response = self.get_response(request)
        except Exception as exc:  # only when DEBUG_PROPAGATE_EXCEPTIONS lets it through
            self._record(request, 500, start, exc)
            raise
        self._record(request, response.status_code, start, getattr(request, "_ledger_exception", None))
        return response

    def process_exception(self, request, exception):
        request._ledger_exception = exception
        return None

    def _record(self, request, status, start, exc):
        try:
            duration_ms = (time.perf_counter() - start) * 1000.0
            client = self._get_client()
            if client is None:
                return
            match = getattr(request, "resolver_match", None)
            route = getattr(match, "route", None) if match is not None else None
            if route:
                path = route if route.startswith("/") else "/" + route
            else:
                raw = request.path_info or "/"
                if is_scanner_noise(raw):
                    return
                path = normalize_path(raw)
            method = request.method
            query = request.META.get("QUERY_STRING") or None
            if exc is not None:
                client.log_exception(exc, message=f"{method} {path} - Exception: {exc}",
                                     attributes=exception_attributes(method, path, duration_ms, query))
            else:
                client.log_endpoint(method, path, status, duration_ms, query)
        except Exception:
            pass
