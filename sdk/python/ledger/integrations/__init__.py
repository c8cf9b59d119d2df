"""Framework integrations. Each module imports its framework only when it is imported itself:
``ledger.integrations.fastapi`` (any ASGI app), ``ledger.integrations.flask`` (any WSGI app, plus a
Flask extension) and ``ledger.integrations.django``."""
