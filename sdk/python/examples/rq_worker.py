"""An RQ worker that logs to Ledger.

    LEDGER_API_KEY=... LEDGER_BASE_URL=http://127.0.0.1:8020 python rq_worker.py

RQ forks a "work horse" per job and ends it with os._exit(), which skips atexit: the job's logs must
be flushed before the horse exits. Here every job is wrapped so that its logs go out when it ends
(success or failure); the worker process itself flushes at shutdown.
"""

import functools

from redis import Redis
from rq import Queue, Worker

from ledger import LedgerClient

ledger = LedgerClient()  # LEDGER_API_KEY / LEDGER_BASE_URL from the environment


def flushed(job):
    """Decorator for job functions: flush the job's logs before RQ's work horse exits."""

    @functools.wraps(job)
    def run(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        except Exception as exc:
            ledger.log_exception(exc, attributes={"job": job.__name__})
            raise
        finally:
            ledger.flush(timeout=5)

    return run


@flushed
def resize_image(image_id: int) -> None:
    ledger.log_info("resizing", {"image_id": image_id})


if __name__ == "__main__":
    redis = Redis()
    worker = Worker([Queue("default", connection=redis)], connection=redis)
    try:
        worker.work()
    finally:
        ledger.shutdown_sync(timeout=5)
