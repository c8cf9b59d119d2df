"""Redis shards on one machine (docs/scaling.md#redis): a project's queue entries and counters go to
its shard (jump hash, or `[redis] project_shards`), storage consumes every shard, /health/deep and
/metrics report each, and a shard that is down refuses its own projects only."""

import collections
import datetime
import os

import psycopg
import pytest
import redis as redis_lib
import requests

from conftest import scaled
from ldg_fleet import jump
from ldg_fixtures import AuthDb
from ldg_http import wait_until
from ldg_queue import queued
from ldg_servers import RedisServer

BATCH = "/api/v1/ingest/batch"
INGEST_ONLY = {"storage": False, "analytics": False}
STORAGE_ONLY = {r: False for r in ("gateway", "auth", "ingest", "notifications", "query", "analytics")}
QUICK = {"store_timeout_ms": 1000, "claim_idle_ms": 2000, "claim_interval_ms": 200, "retry_min_ms": 50,
         "retry_max_ms": 300, "batch_wait_ms": 20}


def iso_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture
def shards(tmp_path):
    made = [RedisServer(str(tmp_path / f"redis-s{i}")).start() for i in range(2)]
    clients = [redis_lib.Redis(host=r.host, port=r.port, socket_timeout=5) for r in made]
    yield made, clients
    for c in clients:
        c.close()
    for r in made:
        r.kill()


def shard_ini(servers, tag, roles, pinned=""):
    ini = {"redis": {"host": servers[0].host, "port": servers[0].port, "reconnect_min_ms": 50,
                     "reconnect_max_ms": 300, "project_shards": pinned},
           "redis.1": {"host": servers[1].host, "port": servers[1].port, "reconnect_min_ms": 50,
                       "reconnect_max_ms": 300},
           "ingest": {"stream": f"test:logs:{tag}"},
           "storage": {"group": f"test:group:{tag}", "dead_letter_stream": f"test:dead:{tag}", **QUICK},
           "roles": roles,
           "node": {"name": f"node-{tag}"}}
    if not pinned:
        del ini["redis"]["project_shards"]
    return ini


def post(srv, key, msgs):
    return requests.post(srv.url + BATCH, headers={"X-API-Key": key}, timeout=scaled(10),
                         json={"logs": [{"timestamp": iso_now(), "level": "info", "message": m} for m in msgs]})


def test_projects_queue_on_their_shard_and_storage_drains_every_shard(ledgerd, pg, shards):
    servers, rc = shards
    tag = os.urandom(4).hex()
    stream = f"test:logs:{tag}"
    # a process on the default single Redis migrates the databases before projects are made
    ledgerd(extra_ini={"roles": INGEST_ONLY})
    auth = AuthDb(pg)
    acct = auth.account()
    by_hash = collections.defaultdict(list)
    while len(by_hash[0]) < 2 or len(by_hash[1]) < 1:
        pid = auth.project(acct)
        by_hash[jump(pid, 2)].append((pid, auth.key(pid, rpm=100000, rph=1000000)[0]))
    a, pinned = by_hash[0][0], by_hash[0][1]  # both hash to shard 0; `pinned` is put on shard 1
    b = by_hash[1][0]
    auth.close()
    where = {a[0]: 0, pinned[0]: 1, b[0]: 1}

    ing = ledgerd(extra_ini=shard_ini(servers, tag, INGEST_ONLY, pinned=f"{pinned[0]}:1"))
    sent = {}
    for pid, key in (a, pinned, b):
        sent[pid] = [f"{tag}-p{pid}-{i}" for i in range(30)]
        for i in range(0, 30, 10):
            r = post(ing, key, sent[pid][i:i + 10])
            assert r.status_code == 202, r.text

    # each project's entries and counters are on its shard only
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    for s in range(2):
        pids = collections.Counter(int(f[b"p"]) for _, f, _ in queued(rc[s], stream))
        assert set(pids) == {p for p, sh in where.items() if sh == s}, (s, pids)
    for pid, s in where.items():
        assert int(rc[s].get(f"queue_depth:{pid}")) == 30
        assert int(rc[s].get(f"usage:{pid}:{day}")) == 30
        assert rc[1 - s].get(f"usage:{pid}:{day}") is None
        r = requests.get(ing.url + "/api/v1/queue/depth", headers={"X-API-Key": dict((a, pinned, b))[pid]},
                         timeout=scaled(10))
        assert r.json()["queue_depth"] == 30, (pid, r.text)

    # /health/deep: both shards, each with its queue; the whole queue in services.queue
    deep = requests.get(ing.url + "/health/deep", timeout=scaled(10)).json()
    assert [s["shard"] for s in deep["redis_shards"]] == [0, 1]
    assert deep["redis_shards"][0]["queue"]["queued"] == rc[0].xlen(stream)
    assert deep["redis_shards"][1]["queue"]["queued"] == rc[1].xlen(stream)
    assert deep["services"]["queue"]["queued"] == rc[0].xlen(stream) + rc[1].xlen(stream)
    assert deep["node"] == f"node-{tag}"

    # one storage process drains both shards, each log stored once
    st = ledgerd(extra_ini=shard_ini(servers, tag, STORAGE_ONLY, pinned=f"{pinned[0]}:1"))
    logs = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)
    try:
        def stored(pid):
            return collections.Counter(m for (m,) in logs.execute(
                "SELECT message FROM logs WHERE project_id = %s", (pid,)))

        wait_until(lambda: all(sum(stored(p).values()) == 30 for p in where) and
                   rc[0].xlen(stream) == 0 and rc[1].xlen(stream) == 0, 30, interval=0.1,
                   what="both shards drained")
        for pid in where:
            assert stored(pid) == collections.Counter(sent[pid])
            assert int(rc[where[pid]].get(f"queue_depth:{pid}")) == 0
    finally:
        logs.close()
    health = requests.get(st.url + "/health/deep", timeout=scaled(10)).json()
    consumers = health["roles"]["storage"]["consumers"]
    assert sorted({c["redis_shard"] for c in consumers}) == [0, 1]
    metrics = requests.get(st.url + "/metrics", timeout=scaled(10)).text
    for s in (0, 1):
        assert f'ledger_redis_errors_total{{worker="0",shard="{s}"}}' in metrics
    wait_until(lambda: 'ledger_queue_entries{shard="1"} 0' in requests.get(st.url + "/metrics",
                                                                           timeout=scaled(10)).text,
               10, interval=0.2, what="queue gauge of shard 1")

    # shard 1 down: its projects get 503, shard 0's are accepted; /health/deep degrades
    servers[1].stop()
    ing.allow_errors = st.allow_errors = True
    wait_until(lambda: post(ing, b[1], [f"{tag}-down"]).status_code == 503, 10, interval=0.1,
               what="503 for a project of the stopped shard")
    assert post(ing, a[1], [f"{tag}-up"]).status_code == 202
    r = requests.get(ing.url + "/health/deep", timeout=scaled(10))
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    assert r.json()["redis_shards"][0]["status"] == "healthy"
    assert r.json()["redis_shards"][1]["status"].startswith("unhealthy")
    servers[1].start()
    wait_until(lambda: post(ing, b[1], [f"{tag}-back"]).status_code == 202, 15, interval=0.2,
               what="the shard's projects accepted again")
