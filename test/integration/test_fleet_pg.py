"""PostgreSQL read replicas and logs shards (docs/scaling.md), against real servers started here:
a streaming replica of the session's cluster (pg_basebackup -R), and a second logs database as
shard 1.

* replicas: reads of the query role go to a fresh replica (a log stored on the primary while the
  replica's replay is paused is not seen), and to the primary once the replica is further behind
  than max_lag_ms; /health/deep and /metrics say which; an idle primary does not make a caught-up
  replica look late.
* shards: storage writes each project's logs to its shard only (pinned or jump hash), exactly once;
  the query role reads each project from its shard; --migrate and partition maintenance cover
  every shard; /health/deep lists the shards.
"""

import datetime
import json
import os
import subprocess
import time

import psycopg
import pytest
import requests

from conftest import make_ini, render_ini, scaled, tail
from ldg_fixtures import AuthDb
from ldg_http import wait_until
from ldg_pgreplica import PgReplica
from ldg_servers import free_port

READERS_ONLY = {"gateway": True, "auth": False, "ingest": False, "notifications": False, "query": True,
                "storage": False, "analytics": False}


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def jump(key, n):
    """The jump consistent hash of db/pgshard.c."""
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) & ((1 << 64) - 1)
        j = int(float(b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def ingest(srv, key, message, n=1):
    body = [{"timestamp": now_iso(), "level": "info", "log_type": "console", "message": f"{message} {i}"}
            for i in range(n)]
    r = requests.post(srv.url + "/api/v1/ingest/batch", json={"logs": body}, headers={"X-API-Key": key},
                      timeout=scaled(10))
    assert r.status_code in (200, 202), r.text


def api_messages(srv, key, pid):
    r = requests.get(srv.url + "/api/v1/logs", params={"project_id": pid, "limit": 1000},
                     headers={"X-API-Key": key}, timeout=scaled(10))
    assert r.status_code == 200, r.text
    return sorted(x["message"] for x in r.json()["logs"])


def deep(srv):
    return requests.get(srv.url + "/health/deep", timeout=scaled(10)).json()


def replica_view(srv):
    return deep(srv)["services"]["postgres_logs_replicas"][0]


def db_count(dsn, pid, message_like="%"):
    # a literal time bound: the planner prunes to the recent leaves (a count over every 6-hour leaf
    # of every month would lock them all at once)
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2)
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute('SELECT count(*) FROM logs WHERE project_id = %s AND message LIKE %s AND "timestamp" > %s',
                         (pid, message_like, since)).fetchone()[0]


@pytest.fixture(scope="module")
def replica(pg, session_dir):
    rep = PgReplica(pg, str(session_dir / "replica")).start()
    yield rep
    rep.cleanup()


def project_with_key(pg):
    d = AuthDb(pg)
    try:
        pid = d.project(d.account())
        key, _ = d.key(pid, rpm=100000, rph=1000000)
        return pid, key
    finally:
        d.close()


def replica_ini(replica, max_lag_ms):
    return {"pg_logs_replica.1": {"host": replica.host, "port": replica.port, "dbname": "ledger_logs",
                                  "user": "postgres", "max_lag_ms": max_lag_ms, "probe_interval_ms": 100}}


def test_reads_follow_a_fresh_replica_and_skip_a_late_one(ledgerd, pg, replica):
    tag = os.urandom(4).hex()
    # no retention (it drops old partitions) and no analytics (index builds): while the replica's
    # replay is paused, a lock it replayed from such DDL would hold its readers until their timeout
    storage = {"group": f"g{tag}", "batch_wait_ms": 20, "retention": False}
    ingest_cfg = {"stream": f"test:logs:{tag}"}
    # a: ingest, storage, query, with a lag bound no test reaches; b: readers only, bound 300 ms
    a = ledgerd(extra_ini={**replica_ini(replica, 3600000), "storage": storage, "ingest": ingest_cfg,
                           "roles": {"analytics": False}})
    b = ledgerd(extra_ini={**replica_ini(replica, 300), "roles": READERS_ONLY, "ingest": ingest_cfg})
    pid, key = project_with_key(pg)
    for s in (a, b):
        wait_until(lambda: replica_view(s)["in_use"], 20, interval=0.1, what="replica in use")

    ingest(a, key, "before")
    wait_until(lambda: api_messages(a, key, pid) == ["before 0"], 20, what="log readable")
    v = replica_view(a)
    assert v["status"] == "healthy" and v["shard"] == 0 and v["replica"] == 1 and 0 <= v["lag_ms"] < 3600000

    replica.pause_replay()
    try:
        ingest(a, key, "during")
        primary = pg.dsn("ledger_logs")
        wait_until(lambda: db_count(primary, pid, "during%") == 1, 20, what="log stored on the primary")
        # a reads the paused replica: the new log is not there yet
        assert api_messages(a, key, pid) == ["before 0"]
        assert replica_view(a)["in_use"]
        # b finds the replica further behind than 300 ms and reads the primary
        wait_until(lambda: replica_view(b)["status"] == "lagging", 20, interval=0.1, what="replica lagging")
        view = replica_view(b)
        assert not view["in_use"] and view["lag_ms"] > 300
        assert api_messages(b, key, pid) == ["before 0", "during 0"]
        assert deep(b)["status"] == "healthy"  # a late replica only means reads go elsewhere
        metrics = requests.get(b.url + "/metrics", timeout=scaled(10)).text
        assert 'ledger_pg_replica_in_use{replica="1",shard="0"} 0' in metrics
        assert "ledger_pg_shards 1" in metrics
    finally:
        replica.resume_replay()
    wait_until(lambda: api_messages(a, key, pid) == ["before 0", "during 0"], 20, what="replica caught up")
    wait_until(lambda: replica_view(b)["in_use"], 20, interval=0.1, what="replica in use again")
    # caught up and nothing new written: the primary's LSN stands still, the replica stays fresh
    # however long since its last replayed transaction (a replay-timestamp lag would grow here)
    time.sleep(scaled(1.5))
    v = replica_view(b)
    assert v["in_use"] and v["lag_ms"] <= 300, v


def test_replica_down_reads_go_to_the_primary(ledgerd, pg, session_dir):
    port = free_port()  # nothing listens there
    srv = ledgerd(extra_ini={"pg_logs_replica.1": {"host": "127.0.0.1", "port": port, "dbname": "ledger_logs",
                                                   "probe_interval_ms": 100, "connect_timeout_ms": 500}})
    srv.allow_errors = True
    pid, key = project_with_key(pg)
    wait_until(lambda: replica_view(srv)["status"] == "unreachable", 20, interval=0.1, what="replica unreachable")
    ingest(srv, key, "x")
    wait_until(lambda: api_messages(srv, key, pid) == ["x 0"], 20, what="log readable from the primary")
    assert deep(srv)["status"] == "healthy"


# ---- shards ------------------------------------------------------------------------------------------


def shard_dsn(pg, shard):
    return pg.dsn("ledger_logs" if shard == 0 else "ledger_logs_s1")


@pytest.fixture
def sharded(ledgerd, ledgerd_bin, pg, redis, tmp_path, jwt_secret_file):
    """start(pins): a ledgerd with logs shard 1 = database ledger_logs_s1 of the same cluster, after
    --migrate over both shards; pins as [pg_shards] projects. start(migrate_only=True): only the
    --migrate (the projects of a test must exist before its pins are written)."""

    def start(pins="", extra=None, workers=1, migrate_only=False):
        shards = {"pg_logs.1": {"host": pg.host, "port": pg.port, "dbname": "ledger_logs_s1", "user": "postgres"}}
        tag = os.urandom(4).hex()
        ini = {**shards, "pg_shards": {"projects": pins}, "storage": {"group": f"g{tag}", "batch_wait_ms": 20},
               "ingest": {"stream": f"test:logs:{tag}"}, **(extra or {})}
        path = tmp_path / f"migrate-{tag}.ini"
        path.write_text(render_ini(make_ini(free_port(), pg, redis, 1, ini, jwt_secret_file)))
        r = subprocess.run([ledgerd_bin, "-c", str(path), "--migrate"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=scaled(120))
        assert r.returncode == 0, tail(r.stdout.decode(errors="replace"))
        return None if migrate_only else ledgerd(extra_ini=ini, workers=workers)

    return start


def test_migrate_covers_every_shard(sharded, pg):
    sharded("")
    with psycopg.connect(shard_dsn(pg, 1), autocommit=True) as c:
        tables = {r[0] for r in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"logs", "error_groups", "aggregated_metrics"} <= tables


def test_logs_land_on_their_projects_shard_exactly_once(sharded, pg):
    sharded(migrate_only=True)
    ids = [project_with_key(pg) for _ in range(4)]
    (p1, k1), (p0, k0) = ids[0], ids[1]
    # p1 pinned to 1, p0 to 0; the other two by jump hash
    srv = sharded(f"{p1}:1, {p0}:0", workers=2)
    home = {p1: 1, p0: 0, ids[2][0]: jump(ids[2][0], 2), ids[3][0]: jump(ids[3][0], 2)}
    # mixed batches: every ingest request holds one project, but storage reads several at once
    for rnd in range(3):
        for pid, key in ids:
            ingest(srv, key, f"r{rnd}", n=5)
    for pid, key in ids:
        here, other = home[pid], 1 - home[pid]
        wait_until(lambda: db_count(shard_dsn(pg, here), pid) == 15, 30, what=f"project {pid} stored")
        assert db_count(shard_dsn(pg, other), pid) == 0
        msgs = api_messages(srv, key, pid)
        assert msgs == sorted(f"r{r} {i}" for r in range(3) for i in range(5))
    with psycopg.connect(shard_dsn(pg, 1), autocommit=True) as c:
        dups = c.execute("SELECT count(*) FROM (SELECT queue_id FROM logs WHERE project_id = ANY(%s) "
                         "GROUP BY queue_id HAVING count(*) > 1) d", ([p for p in home],)).fetchone()[0]
    assert dups == 0
    d = deep(srv)
    shards = d["services"]["postgres_logs_shards"]
    assert [s["shard"] for s in shards] == [0, 1] and all(s["status"] == "healthy" for s in shards)
    assert d["services"]["postgres_logs_replicas"] == []
    assert "ledger_pg_shards 2" in requests.get(srv.url + "/metrics", timeout=scaled(10)).text


def test_exceptions_group_on_the_projects_shard(sharded, pg):
    sharded(migrate_only=True)
    pid, key = project_with_key(pg)
    srv = sharded(f"{pid}:1")
    body = {"timestamp": now_iso(), "level": "error", "log_type": "exception", "message": "boom",
            "error_type": "ValueError", "error_message": "bad value", "stack_trace": "Traceback\n  x"}
    for _ in range(2):
        r = requests.post(srv.url + "/api/v1/ingest/single", json=body, headers={"X-API-Key": key},
                          timeout=scaled(10))
        assert r.status_code in (200, 202), r.text

    def groups(shard):
        with psycopg.connect(shard_dsn(pg, shard), autocommit=True) as c:
            return c.execute("SELECT occurrence_count FROM error_groups WHERE project_id = %s", (pid,)).fetchall()

    wait_until(lambda: groups(1) == [(2,)], 30, what="error group on shard 1")
    assert groups(0) == []
    r = requests.get(srv.url + "/api/v1/error-groups", params={"project_id": pid}, headers={"X-API-Key": key},
                     timeout=scaled(10))
    assert r.status_code == 200 and r.json()["total"] == 1, r.text


def test_partition_maintenance_runs_on_every_shard(sharded, pg, rc):
    # the month after next exists after --migrate; drop it (empty: logs so far ahead are refused)
    # on both shards, then maintenance must make it again on both
    d = datetime.datetime.now(datetime.timezone.utc).date().replace(day=1)  # UTC, as the server
    for _ in range(2):
        d = (d + datetime.timedelta(days=32)).replace(day=1)
    name = f"logs_{d.year:04d}_{d.month:02d}"

    def has(shard):
        with psycopg.connect(shard_dsn(pg, shard), autocommit=True) as c:
            return c.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (name,)).fetchone()[0] == 1

    storage = {"group": f"g{os.urandom(4).hex()}", "partition_months_ahead": 2, "maintenance_interval_ms": 60000}
    sharded(migrate_only=True)
    for shard in (0, 1):
        with psycopg.connect(shard_dsn(pg, shard), autocommit=True) as c:
            c.execute(f"DROP TABLE IF EXISTS {name}")
    assert not has(0) and not has(1)
    rc.delete("ledger:storage:maintenance")  # a lock left by another test's ledgerd
    srv = sharded("", extra={"storage": storage})
    wait_until(lambda: has(0) and has(1), 30, interval=0.2, what=f"partition {name} on both shards")
    assert srv.running


# ---- moving a project between shards (scripts/ledger-move-project) -----------------------------------

MOVE = str(__import__("conftest").ROOT / "scripts" / "ledger-move-project")


def move(*argv):
    return subprocess.run(["/usr/bin/python3", MOVE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=scaled(120))


def test_move_project_between_shards(sharded, pg):
    sharded(migrate_only=True)
    pid, key = project_with_key(pg)
    other, okey = project_with_key(pg)
    srv = sharded(f"{pid}:0, {other}:0")
    ingest(srv, key, "old", n=20)
    ingest(srv, okey, "stays", n=3)
    body = {"timestamp": now_iso(), "level": "error", "log_type": "exception", "message": "boom",
            "error_type": "KeyError", "error_message": "k", "stack_trace": "Traceback\n  y"}
    r = requests.post(srv.url + "/api/v1/ingest/single", json=body, headers={"X-API-Key": key}, timeout=scaled(10))
    assert r.status_code in (200, 202)
    src, dst = shard_dsn(pg, 0), shard_dsn(pg, 1)
    wait_until(lambda: db_count(src, pid) == 21, 30, what="logs stored on shard 0")
    with psycopg.connect(src, autocommit=True) as c:
        wait_until(lambda: c.execute("SELECT count(*) FROM error_groups WHERE project_id = %s",
                                     (pid,)).fetchone()[0] == 1, 30, what="error group")
        ids_before = sorted(r[0] for r in c.execute("SELECT id FROM logs WHERE project_id = %s", (pid,)))
    srv.stop()  # offline: no storage writes the project while it moves

    # purge before copy refuses and deletes nothing
    r = move("purge", "--project", str(pid), "--from", src, "--to", dst)
    assert r.returncode == 1 and "copy first" in r.stderr and db_count(src, pid) == 21
    r = move("copy", "--project", str(pid), "--from", src, "--to", dst)
    assert r.returncode == 0, r.stderr
    assert "logs 21" in r.stdout and "error_groups 1" in r.stdout
    # a second copy refuses (the target holds the rows); --replace makes it again
    r = move("copy", "--project", str(pid), "--from", src, "--to", dst)
    assert r.returncode == 1 and "already holds 21 rows" in r.stderr
    assert move("copy", "--project", str(pid), "--from", src, "--to", dst, "--replace").returncode == 0
    assert db_count(dst, pid) == 21
    with psycopg.connect(dst, autocommit=True) as c:
        assert sorted(r[0] for r in c.execute("SELECT id FROM logs WHERE project_id = %s", (pid,))) == ids_before

    # every process restarted with the new pin: reads and writes go to shard 1
    srv2 = sharded(f"{pid}:1, {other}:0")
    ingest(srv2, key, "new", n=2)
    wait_until(lambda: db_count(dst, pid) == 23, 30, what="new logs on shard 1")
    assert db_count(src, pid) == 21  # the old copy is untouched until purged
    r = move("purge", "--project", str(pid), "--from", src, "--to", dst)
    assert r.returncode == 0, r.stderr
    assert "logs 21" in r.stdout
    assert db_count(src, pid) == 0 and db_count(dst, pid) == 23
    assert len(api_messages(srv2, key, pid)) == 23
    assert api_messages(srv2, okey, other) == ["stays 0", "stays 1", "stays 2"]
    # new ids on shard 1 come from its own range: no clash with the moved ones
    with psycopg.connect(dst, autocommit=True) as c:
        new_ids = [r[0] for r in c.execute("SELECT id FROM logs WHERE project_id = %s AND message LIKE 'new%%'",
                                           (pid,))]
    assert all(i >= 1 << 48 for i in new_ids)


def test_plan_add_shard_pins_the_projects_that_would_move(pg, sharded):
    sharded(migrate_only=True)
    ids = [project_with_key(pg)[0] for _ in range(6)]
    r = move("plan-add-shard", "--auth", pg.dsn("ledger_auth"), "--shards", "2", "--pins", f"{ids[0]}:1")
    assert r.returncode == 0, r.stderr
    pins = dict(tuple(map(int, x.split(":"))) for x in r.stdout.strip().split(", "))
    assert pins[ids[0]] == 1
    for p in ids[1:]:
        if jump(p, 2) != jump(p, 3):
            assert pins[p] == jump(p, 2)
        else:
            assert p not in pins


@pytest.fixture(scope="module")
def pg_b(session_dir):
    """A second PostgreSQL server, for a logs shard that can be stopped."""
    from ldg_servers import PgServer

    srv = PgServer(str(session_dir / "pg_b")).start()
    yield srv
    srv.cleanup()


def test_a_shard_down_delays_but_loses_nothing(ledgerd, ledgerd_bin, pg, pg_b, redis, tmp_path, jwt_secret_file):
    tag = os.urandom(4).hex()
    ini = {"pg_logs.1": {"host": pg_b.host, "port": pg_b.port, "dbname": "ledger_logs", "user": "postgres",
                         "connect_timeout_ms": 1000},
           "storage": {"group": f"g{tag}", "batch_wait_ms": 20}, "ingest": {"stream": f"test:logs:{tag}"}}
    path = tmp_path / "migrate.ini"
    path.write_text(render_ini(make_ini(free_port(), pg, redis, 1, ini, jwt_secret_file)))
    r = subprocess.run([ledgerd_bin, "-c", str(path), "--migrate"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=scaled(120))
    assert r.returncode == 0, tail(r.stdout.decode(errors="replace"))
    (p0, k0), (p1, k1) = project_with_key(pg), project_with_key(pg)
    ini["pg_shards"] = {"projects": f"{p0}:0, {p1}:1"}
    srv = ledgerd(extra_ini=ini)
    srv.allow_errors = True
    s0, s1 = pg.dsn("ledger_logs"), pg_b.dsn("ledger_logs")
    ingest(srv, k0, "a", n=10)
    ingest(srv, k1, "a", n=10)
    wait_until(lambda: db_count(s0, p0) == 10 and db_count(s1, p1) == 10, 30, what="first logs stored")

    pg_b.stop()
    try:
        wait_until(lambda: deep(srv)["status"] == "degraded", 20, interval=0.2, what="/health/deep degraded")
        shards = deep(srv)["services"]["postgres_logs_shards"]
        assert shards[0]["status"] == "healthy" and shards[1]["status"].startswith("unhealthy")
        metrics = requests.get(srv.url + "/metrics", timeout=scaled(10)).text
        assert 'ledger_pg_shard_up{shard="0",worker="0"} 1' in metrics
        assert 'ledger_pg_shard_up{shard="1",worker="0"} 0' in metrics
        for i in range(3):
            ingest(srv, k0, f"b{i}", n=10)
            ingest(srv, k1, f"b{i}", n=10)
        time.sleep(scaled(1))
    finally:
        pg_b.start()
    wait_until(lambda: db_count(s0, p0) == 40 and db_count(s1, p1) == 40, 60, what="every log stored")
    time.sleep(scaled(1))  # retries settle: nothing more may arrive
    for dsn, pid in ((s0, p0), (s1, p1)):
        with psycopg.connect(dsn, autocommit=True) as c:
            n, distinct = c.execute("SELECT count(*), count(DISTINCT queue_id) FROM logs WHERE project_id = %s",
                                    (pid,)).fetchone()
        assert (n, distinct) == (40, 40), (dsn, pid)
    assert db_count(s0, p1) == 0 and db_count(s1, p0) == 0
    wait_until(lambda: deep(srv)["status"] == "healthy", 20, interval=0.2, what="healthy again")
    metrics = requests.get(srv.url + "/metrics", timeout=scaled(10)).text
    assert 'ledger_pg_shard_up{shard="1",worker="0"} 1' in metrics
    errors = [line for line in metrics.splitlines() if line.startswith('ledger_pg_shard_errors_total{shard="1"')]
    assert errors and int(errors[0].split()[-1]) > 0


def test_analytics_jobs_run_on_every_shard(sharded, pg, rc):
    sharded(migrate_only=True)
    (p0, _), (p1, _) = project_with_key(pg), project_with_key(pg)
    hour = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = hour - datetime.timedelta(hours=1)
    for pid, shard in ((p0, 0), (p1, 1)):
        with psycopg.connect(shard_dsn(pg, shard), autocommit=True) as c, c.cursor() as cur:
            cur.execute("SELECT logs_ensure_partition(%s)", (start,))
            with cur.copy("COPY logs (project_id, timestamp, level, log_type, message, attributes) FROM STDIN") as cp:
                for i in range(6):
                    cp.write_row([pid, start + datetime.timedelta(seconds=i), "error" if i % 2 else "info",
                                  "endpoint", "x", json.dumps({"endpoint": {"method": "GET", "path": f"/s{shard}",
                                                                            "status_code": 200, "duration_ms": 1.0}})])
    slow = {k: 3600000 for k in ("search_index_interval_ms", "usage_stats_interval_ms", "log_volume_interval_ms",
                                  "top_errors_interval_ms")}
    rc.set("ledger:analytics:hourly_metrics:done", int(hour.timestamp()) // 3600 - 2)
    sharded(f"{p0}:0, {p1}:1", extra={"roles": {"storage": False},
                                      "analytics": {**slow, "hourly_metrics_interval_ms": 1500,
                                                    "available_routes_interval_ms": 1000,
                                                    "error_rate_interval_ms": 1000}})

    def aggregated(shard, pid):
        with psycopg.connect(shard_dsn(pg, shard), autocommit=True) as c:
            return c.execute("SELECT coalesce(sum(log_count), 0) FROM aggregated_metrics WHERE project_id = %s "
                             "AND metric_type = 'log_volume'", (pid,)).fetchone()[0]

    wait_until(lambda: aggregated(0, p0) == 6 and aggregated(1, p1) == 6, 30, interval=0.2,
               what="hourly aggregates on each project's shard")
    assert aggregated(0, p1) == 0 and aggregated(1, p0) == 0
    d = AuthDb(pg)
    try:
        wait_until(lambda: d.one("SELECT available_routes FROM projects WHERE id = %s", p1)[0] == ["/s1"], 20,
                   interval=0.2, what="routes of the project on shard 1")
        assert d.one("SELECT available_routes FROM projects WHERE id = %s", p0)[0] == ["/s0"]
    finally:
        d.close()
    wait_until(lambda: rc.exists(f"metrics:error_rate:{p1}:5min") and rc.exists(f"metrics:error_rate:{p0}:5min"),
               20, interval=0.2, what="error rate cached for both shards' projects")
