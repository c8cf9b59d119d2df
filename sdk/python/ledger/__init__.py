"""Ledger SDK: send logs, exceptions and request metrics to a Ledger server.

    from ledger import LedgerClient
    ledger = LedgerClient(api_key="ledger_...", base_url="http://127.0.0.1:8020")
    ledger.log_info("started", {"version": "1.2"})

Standard library only; framework integrations live in ``ledger.integrations`` and are imported
only when used.
"""

from ._version import __version__
from .client import LedgerClient, get_ledger_client, set_ledger_client
from .handler import LedgerHandler

__all__ = ["LedgerClient", "LedgerHandler", "get_ledger_client", "set_ledger_client", "__version__"]
