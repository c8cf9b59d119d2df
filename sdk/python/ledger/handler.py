"""``LedgerHandler``: a ``logging.Handler`` so that existing ``logging`` calls reach Ledger."""

from __future__ import annotations

import logging
from typing import Optional

from .client import LedgerClient, get_ledger_client

# Attributes every LogRecord has; anything else came from ``extra=`` and becomes a log attribute.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "", None, None))) | {"message", "asctime"}


def _level(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class LedgerHandler(logging.Handler):
    """Sends each record as a ``logger`` log (an ``exception`` log when it carries exc_info, e.g.
    ``logger.exception(...)``). Attributes: ``logger`` (the logger's name), ``module``, ``function``,
    ``line``, plus any ``extra=`` fields. Uses ``ledger_client`` or the default client."""

    def __init__(self, ledger_client: Optional[LedgerClient] = None, level: int = logging.NOTSET):
        super().__init__(level)
        self._client = ledger_client

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == "ledger" or record.name.startswith("ledger."):
                return  # never feed the SDK's own records back into it
            client = self._client or get_ledger_client()
            if client is None:
                return
            attrs = {"logger": record.name, "module": record.module, "function": record.funcName,
                     "line": record.lineno}
            for k, v in record.__dict__.items():
                if k not in _RECORD_FIELDS and not k.startswith("_"):
                    attrs[k] = v
            message = record.getMessage()
            level = _level(record.levelno)
            exc = record.exc_info[1] if record.exc_info else None
            if exc is not None:
                client.log_exception(exc, message=message, attributes=attrs, level=level,
                                     importance="critical" if level == "critical" else "high")
            else:
                client.log(level, message, attrs, log_type="logger")
        except Exception:
            self.handleError(record)
