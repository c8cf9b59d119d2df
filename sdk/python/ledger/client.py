"""The public API: ``LedgerClient`` and the default client.

A log call builds one tuple and appends it to the transport's buffer; nothing in it blocks, does
I/O or raises. Formatting, batching and sending happen on the transport thread (transport.py).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import platform
import sys
import threading
import time
import traceback
import weakref
from typing import Any, Dict, Mapping, Optional

from ._version import __version__
from .transport import Transport, _say

DEFAULT_BASE_URL = "http://127.0.0.1:8020"

_LEVELS = {"debug": "low", "info": "standard", "warning": "standard", "error": "high", "critical": "critical"}
_LOG_TYPES = ("console", "logger", "exception", "database", "endpoint", "custom")
_IMPORTANCE = ("low", "standard", "high", "critical")

_default: Optional["LedgerClient"] = None
_default_lock = threading.Lock()


def _env_float(name, default):
    v = os.environ.get(name)
    if v is None:
        return default
    try:
        return float(v)
    except ValueError:
        return default


class LedgerClient:
    """Sends logs to a Ledger server from a background thread.

    ``api_key`` and ``base_url`` default to the ``LEDGER_API_KEY`` and ``LEDGER_BASE_URL`` environment
    variables (``LEDGER_FLUSH_INTERVAL``, ``LEDGER_FLUSH_SIZE``, ``LEDGER_MAX_BUFFER_SIZE``,
    ``LEDGER_HTTP_TIMEOUT``, ``LEDGER_ENVIRONMENT`` and ``LEDGER_RELEASE`` are read too). Without a
    key, or with a URL that is not http(s), the client says so once on stderr and drops every log
    (counted): it never raises into the application.

    Extra keyword options tune the transport (mostly for tests): ``retry_5xx_delays``,
    ``retry_network_delays``, ``retry_after_max``, ``breaker_threshold``, ``breaker_cooldown``,
    ``compress_level``, ``fetch_settings``.
    """

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, flush_interval: Optional[float] = None,
                 flush_size: Optional[int] = None, max_buffer_size: Optional[int] = None, http_timeout: Optional[float] = None,
                 http_pool_size: int = 10, rate_limit_buffer: float = 0.9, environment: Optional[str] = None,
                 release: Optional[str] = None, flush_at_exit: bool = True, exit_timeout: float = 5.0,
                 **transport_options: Any):
        env = os.environ
        api_key = api_key if api_key is not None else env.get("LEDGER_API_KEY", "")
        base_url = (base_url or env.get("LEDGER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.environment = environment if environment is not None else env.get("LEDGER_ENVIRONMENT")
        self.release = release if release is not None else env.get("LEDGER_RELEASE")
        self.base_url = base_url
        self.enabled = True
        if not api_key:
            _say("no API key (pass api_key= or set LEDGER_API_KEY): logs are dropped")
            self.enabled = False
        elif not base_url.startswith(("http://", "https://")):
            _say(f"base_url must start with http:// or https:// (got {base_url!r}): logs are dropped")
            self.enabled = False
        self._transport = Transport(
            api_key or "-", base_url if self.enabled else DEFAULT_BASE_URL,
            flush_interval=flush_interval if flush_interval is not None else _env_float("LEDGER_FLUSH_INTERVAL", 5.0),
            flush_size=int(flush_size if flush_size is not None else _env_float("LEDGER_FLUSH_SIZE", 1000)),
            max_buffer_size=int(max_buffer_size if max_buffer_size is not None
                                else _env_float("LEDGER_MAX_BUFFER_SIZE", 10000)),
            http_timeout=http_timeout if http_timeout is not None else _env_float("LEDGER_HTTP_TIMEOUT", 5.0),
            http_pool_size=http_pool_size, rate_limit_buffer=rate_limit_buffer, environment=self.environment,
            release=self.release, platform_version=platform.python_version(), **transport_options)
        if not self.enabled:
            self._transport.disabled = True
        self._enqueue = self._transport.enqueue
        self._time_ns = time.time_ns
        self._started = time.time()
        self._closed = False
        global _default
        with _default_lock:
            if _default is None:
                _default = self
        if flush_at_exit:
            ref = weakref.ref(self)

            def at_exit(ref=ref, timeout=exit_timeout):
                c = ref()
                if c is not None:
                    c.shutdown_sync(timeout)

            atexit.register(at_exit)

    # --- logging calls (fast path) ----------------------------------------------------------------

    def _log(self, level: str, message: Any, attributes: Optional[Mapping[str, Any]], log_type: str = "console",
             importance: Optional[str] = None) -> None:
        try:
            if level not in _LEVELS:
                level = "info"
            if log_type not in _LOG_TYPES:
                log_type = "console"
            if importance not in _IMPORTANCE:
                importance = _LEVELS[level]
            self._enqueue((self._time_ns(), level, log_type, importance,
                           message if message.__class__ is str else str(message),
                           attributes, None, None, None))
        except Exception:
            pass

    def log_debug(self, message: str, attributes: Optional[Mapping[str, Any]] = None) -> None:
        try:
            self._enqueue((self._time_ns(), "debug", "console", "low",
                           message if message.__class__ is str else str(message), attributes, None, None, None))
        except Exception:
            pass

    def log_info(self, message: str, attributes: Optional[Mapping[str, Any]] = None) -> None:
        try:
            self._enqueue((self._time_ns(), "info", "console", "standard",
                           message if message.__class__ is str else str(message), attributes, None, None, None))
        except Exception:
            pass

    def log_warning(self, message: str, attributes: Optional[Mapping[str, Any]] = None) -> None:
        try:
            self._enqueue((self._time_ns(), "warning", "console", "standard",
                           message if message.__class__ is str else str(message), attributes, None, None, None))
        except Exception:
            pass

    def log_error(self, message: str, attributes: Optional[Mapping[str, Any]] = None) -> None:
        try:
            self._enqueue((self._time_ns(), "error", "console", "high",
                           message if message.__class__ is str else str(message), attributes, None, None, None))
        except Exception:
            pass

    def log_critical(self, message: str, attributes: Optional[Mapping[str, Any]] = None) -> None:
        try:
            self._enqueue((self._time_ns(), "critical", "console", "critical",
                           message if message.__class__ is str else str(message), attributes, None, None, None))
        except Exception:
            pass

    def log(self, level: str, message: str, attributes: Optional[Mapping[str, Any]] = None, *,
            log_type: str = "console", importance: Optional[str] = None) -> None:
        """Any level (debug, info, warning, error, critical), log type and importance."""
        self._log(level, message, attributes, log_type, importance)

    def log_exception(self, exc: BaseException, message: Optional[str] = None,
                      attributes: Optional[Mapping[str, Any]] = None, *, level: str = "error",
                      importance: str = "high") -> None:
        """An exception log: its class name, str() and the full formatted traceback (the frames
        ledgerd fingerprints). ``message`` defaults to str(exc)."""
        try:
            text = _exc_str(exc)
            stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            if level not in _LEVELS:
                level = "error"
            if importance not in _IMPORTANCE:
                importance = "high"
            self._enqueue((self._time_ns(), level, "exception", importance, message or text, attributes,
                           type(exc).__name__, text, stack))
        except Exception:
            pass

    def log_endpoint(self, method: str, path: str, status_code: int, duration_ms: float,
                     query_params: Optional[str] = None, attributes: Optional[Mapping[str, Any]] = None) -> None:
        """One request: level from the status (2xx/3xx info, 4xx warning, 5xx error), message
        ``"<METHOD> <path> - <status> (<ms>ms)"``, attributes ``{"endpoint": {method, path,
        status_code, duration_ms, query_params?}}`` plus ``attributes``."""
        try:
            status_code = int(status_code)
            if status_code >= 500:
                level, importance = "error", "high"
            elif status_code >= 400:
                level, importance = "warning", "standard"
            else:
                level, importance = "info", "standard"
            ep = {"method": method, "path": path, "status_code": status_code,
                  "duration_ms": round(float(duration_ms), 2)}
            if query_params:
                ep["query_params"] = query_params
            attrs = {"endpoint": ep}
            if attributes:
                attrs.update(attributes)
            self._enqueue((self._time_ns(), level, "endpoint", importance,
                           f"{method} {path} - {status_code} ({round(duration_ms)}ms)", attrs, None, None, None))
        except Exception:
            pass

    # --- health and metrics -------------------------------------------------------------------------

    def get_metrics(self) -> Dict[str, Any]:
        t = self._transport
        c, e = t.counters, t.errors
        size = len(t.buffer)
        return {
            "sdk": {"version": __version__, "uptime_seconds": round(time.time() - self._started, 3),
                    "enabled": self.enabled and not t.disabled},
            "buffer": {"size": size, "max_size": t.max_buffer_size,
                       "utilization_percent": round(100.0 * size / t.max_buffer_size, 2),
                       "dropped_overflow": c["dropped_overflow"], "dropped_closed": c["dropped_closed"]},
            "flusher": {"total_flushes": c["batches"], "successful_flushes": c["sent_batches"],
                        "failed_flushes": c["failed_batches"], "total_logs_sent": c["sent_logs"],
                        "total_logs_rejected": c["rejected_logs"], "total_logs_failed": c["dropped_failed"],
                        "requests": c["requests"], "retries": c["retries"],
                        "consecutive_failures": t.consecutive_failures,
                        "circuit_breaker_open": t.breaker_is_open(), "breaker_opened": c["breaker_opened"],
                        "last_success": t.last_success, "last_error": t.last_error,
                        "connections_opened": t.pool.opened, "bytes_uncompressed": c["bytes_raw"]},
            "rate_limiter": t.limiter.snapshot(),
            "errors": {k: e[k] for k in ("network", "timeout", "server", "rate_limited", "client", "unauthorized",
                                         "rejected_logs", "settings")},
        }

    def get_health_status(self) -> Dict[str, Any]:
        t = self._transport
        size = len(t.buffer)
        util = size / t.max_buffer_size
        issues = []
        if not self.enabled:
            issues.append("not configured (API key or base URL)")
        elif t.disabled:
            issues.append("API key refused by the server")
        if t.breaker_is_open():
            issues.append("circuit breaker open after %d failed batches" % t.consecutive_failures)
        elif t.consecutive_failures:
            issues.append("%d failed batches in a row" % t.consecutive_failures)
        if util >= 0.9:
            issues.append("buffer %.0f%% full" % (100 * util))
        if t._thread is not None and not t._thread.is_alive() and not t._closing:
            issues.append("sender thread stopped")
        if not self.enabled or t.disabled or t.breaker_is_open():
            status = "unhealthy"
        elif issues:
            status = "degraded"
        else:
            status = "healthy"
        return {"status": status, "healthy": status == "healthy", "issues": issues,
                "buffer_size": size, "buffer_utilization_percent": round(100 * util, 2),
                "circuit_breaker_open": t.breaker_is_open(), "consecutive_failures": t.consecutive_failures,
                "dropped_logs": t.counters["dropped_overflow"] + t.counters["dropped_failed"],
                "last_success": t.last_success, "last_error": t.last_error}

    def is_healthy(self) -> bool:
        try:
            return self.get_health_status()["healthy"]
        except Exception:
            return False

    # --- flushing and shutdown ---------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Send what is buffered now and wait (at most ``timeout`` s); True when all of it went out."""
        try:
            return self._transport.flush(timeout)
        except Exception:
            return False

    def shutdown_sync(self, timeout: float = 10.0) -> bool:
        """Send what is buffered (at most ``timeout`` s) and stop the sender. Later logs are dropped."""
        try:
            self._closed = True
            return self._transport.shutdown(timeout)
        except Exception:
            return False

    async def shutdown(self, timeout: float = 10.0) -> bool:
        """``shutdown_sync`` without blocking the event loop."""
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.shutdown_sync, timeout)
        except Exception:
            return False


def _exc_str(exc):
    try:
        return str(exc)
    except Exception:
        return "<str() failed>"


def get_ledger_client() -> Optional[LedgerClient]:
    """The default client: the first ``LedgerClient`` made (or the one given to
    ``set_ledger_client``); if there is none, one is made from Django's ``settings.LEDGER_CONFIG`` when
    Django is configured, else from the environment (``LEDGER_API_KEY``), else None."""
    global _default
    if _default is not None:
        return _default
    with _default_lock:
        if _default is not None:
            return _default
        config = None
        if "django.conf" in sys.modules:
            try:
                from django.conf import settings
                if settings.configured:
                    config = getattr(settings, "LEDGER_CONFIG", None)
            except Exception:
                config = None
    try:
        if config:
            return LedgerClient(**dict(config))
        if os.environ.get("LEDGER_API_KEY"):
            return LedgerClient()
    except Exception as e:  # e.g. an unknown key in LEDGER_CONFIG: say it, do not break requests
        _say(f"could not create the client from the configuration: {type(e).__name__}: {e}")
    return None


def set_ledger_client(client: Optional[LedgerClient]) -> None:
    """Make ``client`` the default (None forgets it)."""
    global _default
    with _default_lock:
        _default = client
