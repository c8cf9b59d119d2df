"""The ingest hot path's queue and storage formats (docs/ingest.md "Queue entry" and "Written once"):
a batch's logs queued as one compressed block (format 3) and stored like plain ones; small requests
queued plain; stored_entries, the per-entry-run exclusion constraint that keeps a log from being
stored twice (schema 0009), and its expiry by maintenance."""
import re

import psycopg
import pytest

from ldg_http import wait_until
from ldg_queue import is_compressed, queued, split_logs
from test_storage_faults import (BATCH, INGEST_ONLY, MAINT_LOCK, QUICK, SINGLE, STORAGE_ONLY, fleet,  # noqa: F401
                                 log, wait_log)


def batch_logs(f, n, prefix="b"):
    return [log(f"{f.tag}-{prefix}{i}", level="warning" if i % 7 == 0 else "info", environment="production",
                release="2.14.1", attributes={"http.method": "GET", "http.route": "/api/v1/orders/{id}",
                                              "user.id": f"u-{i % 40}", "duration_ms": i % 250})
            for i in range(n)]


def test_batch_is_queued_compressed_and_stored(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    logs = batch_logs(f, 200)
    r = f.post(ing, BATCH, {"logs": logs})
    assert r.status_code == 202 and r.json()["accepted"] == 200, r.text
    (eid, fields, items), = queued(f.rc, f.stream)
    m = fields[b"m"]
    assert fields[b"n"] == b"200" and len(items) == 200
    assert is_compressed(m)
    plain = sum(len(x) for x in items)
    assert len(m) < plain / 2, (len(m), plain)
    # queue_bytes counts what is queued (compressed)
    assert int(f.rc.get(f"queue_bytes:{f.pid}")) == len(m)

    f.start(roles=STORAGE_ONLY, storage=QUICK)
    f.wait_stored_exactly([l["message"] for l in logs])
    rows = f.rows("message, queue_id, attributes->>'user.id', environment")
    assert rows[0] == (f"{f.tag}-b0", f"{eid.decode()}/0", "u-0", "production")
    assert rows[199][1] == f"{eid.decode()}/199"
    runs = f.logs_db.execute("SELECT stream_id, lower(rows), upper(rows) FROM stored_entries WHERE project_id = %s",
                             (f.pid,)).fetchall()
    assert runs == [(eid.decode(), 0, 200)]


def test_small_requests_are_queued_plain(fleet):
    f = fleet()
    ing = f.start(roles=INGEST_ONLY)
    assert f.post(ing, BATCH, {"logs": batch_logs(f, 5)}).status_code == 202
    assert f.post(ing, SINGLE, batch_logs(f, 1, "s")[0]).status_code == 202
    entries = queued(f.rc, f.stream)
    assert sum(len(items) for _, _, items in entries) == 6
    for _, fields, items in entries:
        assert not is_compressed(fields[b"m"])
        assert split_logs(fields[b"m"]) == items


def test_stored_entries_refuse_overlapping_runs(fleet):
    f = fleet()
    f.start(roles=INGEST_ONLY)  # migrates
    db = f.logs_db
    ins = "INSERT INTO stored_entries (project_id, stream_id, rows) VALUES (%s, %s, int4range(%s, %s))"
    db.execute(ins, (f.pid, "1700000000000-7", 0, 10))
    with pytest.raises(psycopg.errors.ExclusionViolation) as e:
        db.execute(ins, (f.pid, "1700000000000-7", 9, 12))
    assert "queue_id" in e.value.diag.constraint_name  # what the storage role classifies as a duplicate
    db.execute(ins, (f.pid, "1700000000000-7", 10, 20))  # the rest of the entry
    db.execute(ins, (f.pid, "1700000000000-8", 0, 10))  # another entry
    db.execute(ins, (f.pid + 1000000, "1700000000000-7", 0, 10))  # another project's stream
    # the per-row unique key of schema 0007 is gone
    assert db.execute("SELECT to_regclass('logs_queue_id_key')").fetchone()[0] is None
    db.execute("DELETE FROM stored_entries WHERE project_id IN (%s, %s)", (f.pid, f.pid + 1000000))


def test_maintenance_expires_old_stored_entries(fleet):
    f = fleet()
    f.rc.set(MAINT_LOCK, "test-hold", px=60000)
    try:
        srv = f.start(storage={**QUICK, "maintenance_interval_ms": 1000})
        db = f.logs_db
        db.execute("INSERT INTO stored_entries (project_id, stream_id, rows, stored_at) VALUES "
                   "(%s, '1-1', '[0,5)', now() - interval '2 days'), (%s, '1-2', '[0,5)', now() - interval '1 hour')",
                   (f.pid, f.pid))
        f.rc.delete(MAINT_LOCK)
        done = wait_log(srv, r"maintenance (done|stopped).*", timeout=30).group(0)
        m = re.search(r"stored_entries_expired=(\d+)", done)
        assert m and int(m.group(1)) >= 1, done
        left = [s for s, in db.execute("SELECT stream_id FROM stored_entries WHERE project_id = %s", (f.pid,))]
        assert left == ["1-2"]
        db.execute("DELETE FROM stored_entries WHERE project_id = %s", (f.pid,))
    finally:
        if f.rc.get(MAINT_LOCK) == b"test-hold":
            f.rc.delete(MAINT_LOCK)
