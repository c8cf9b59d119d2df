"""A Celery worker that logs to Ledger and flushes when its processes stop.

    LEDGER_API_KEY=... LEDGER_BASE_URL=http://127.0.0.1:8020 \
        celery -A celery_worker worker --loglevel=info

Celery's prefork pool forks its worker processes: each child gets a fresh buffer and sender thread on
its first log (the SDK handles fork()), and must flush before it exits; pool children leave through
worker_process_shutdown, the main process through worker_shutdown (atexit covers a normal exit too,
flushing explicitly bounds the time and does not depend on how the process ends).
"""

import logging

from celery import Celery
from celery.signals import worker_process_shutdown, worker_shutdown

from ledger import LedgerClient, LedgerHandler

app = Celery("celery_worker", broker="redis://127.0.0.1:6379/0")
ledger = LedgerClient()  # LEDGER_API_KEY / LEDGER_BASE_URL from the environment
logging.getLogger("celery_worker").addHandler(LedgerHandler(ledger, level=logging.INFO))
log = logging.getLogger("celery_worker")


@app.task
def charge(order_id: int, amount: float):
    log.info("charging order %s", order_id, extra={"order_id": order_id, "amount": amount})
    try:
        if amount <= 0:
            raise ValueError(f"bad amount {amount}")
    except ValueError as exc:
        ledger.log_exception(exc, attributes={"order_id": order_id})
        raise


@worker_process_shutdown.connect
def flush_pool_process(**_):
    ledger.shutdown_sync(timeout=5)


@worker_shutdown.connect
def flush_main_process(**_):
    ledger.shutdown_sync(timeout=5)
