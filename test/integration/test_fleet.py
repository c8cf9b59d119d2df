"""The fleet (docs/scaling.md): ledgerd on three hosts over three Redis shards, two PostgreSQL logs
shards and a streaming replica.

Three Linux network namespaces joined by a bridge on a private 10.x subnet are the hosts (without
namespaces: three 127.x loopback addresses, with a warning):

    host1  gateway g1 (gateway, auth, ingest, query, notifications), Redis shard 0,
           PostgreSQL primary (auth database, logs shard 0)
    host2  gateway g2 (the same roles), storage worker w1, Redis shard 1, streaming replica of host1
    host3  storage worker w2, Redis shard 2, PostgreSQL logs shard 1

Projects are spread over the Redis shards and the logs shards by the jump hash of their id (at least
two per shard of each kind). The test
ingests from every project through both gateways while it kills w1 (SIGKILL) and Redis shard 1
(SIGKILL, then a restart from its append-only file), then checks that every log answered 202 is
stored exactly once, on its project's logs shard (and nothing else but logs whose answer was lost),
that each project's queue
counters live on its own shard only, that both workers consume every shard, that a notification
published through g1 reaches a stream on g2 (for a project on a shard other than 0), that queries
through either gateway see the same logs, and that /health/deep and /metrics report every shard.

The default run is short; ``./scripts/ledger test --fleet`` (LDG_FLEET=full) ingests longer and does the
fault round three times.
"""

import collections
import json
import os
import queue
import threading
import time

import psycopg
import pytest
import redis as redis_lib
import requests

from conftest import make_ini, render_ini, scaled, tail
from ldg_fixtures import AuthDb
from ldg_fleet import Net, NsLedgerd, NsPg, NsPgReplica, NsRedis, jump
from ldg_http import wait_until
from ldg_servers import free_port

FULL = os.environ.get("LDG_FLEET") == "full"
ROUNDS = 3 if FULL else 1
LOAD_S = 8.0 if FULL else 3.0
NSHARDS = 3  # Redis
NPG = 2  # PostgreSQL logs shards
BATCH = "/api/v1/ingest/batch"
STREAM = "/api/v1/notifications/stream"
TAIL = "/api/v1/logs/tail"
GATEWAY_ROLES = {"gateway": True, "auth": True, "ingest": True, "query": True, "notifications": True,
                 "storage": False, "analytics": False}
WORKER_ROLES = {"gateway": False, "auth": False, "ingest": False, "query": False, "notifications": False,
                "storage": True, "analytics": False}
QUICK = {"store_timeout_ms": 1000, "claim_idle_ms": 2000, "claim_interval_ms": 200, "retry_min_ms": 50,
         "retry_max_ms": 300, "batch_wait_ms": 20}


def iso_now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"


class Fleet:
    def __init__(self, tmp_path, binary, jwt_secret_file):
        self.dir, self.binary, self.jwt = tmp_path, binary, jwt_secret_file
        self.net = Net.create()
        self.h = self.net.hosts
        self.loopback = self.net.mode == "loopback"
        self.servers, self.redis, self.pg, self.pg1, self.replica = [], [], None, None, None
        self.seq = 0

    def port(self, default):
        return free_port() if self.loopback else default

    def start_data(self):
        self.pg = NsPg(str(self.dir / "pg"), self.h[0], self.net.cidr)
        self.pg.port = self.port(5432)
        self.pg1 = NsPg(str(self.dir / "pg-logs1"), self.h[2], self.net.cidr)
        self.pg1.port = self.port(5432)
        # the two clusters' initdb in parallel (the slowest part of the set-up)
        errors = []

        def start(p):
            try:
                p.start()
            except Exception as e:  # noqa: BLE001 (re-raised below, on the test's thread)
                errors.append(e)

        starts = [threading.Thread(target=start, args=(p,)) for p in (self.pg, self.pg1)]
        for t in starts:
            t.start()
        for t in starts:
            t.join()
        if errors:
            raise errors[0]
        self.replica = NsPgReplica(self.pg, str(self.dir / "pg-replica"), self.h[1], self.net.cidr)
        self.replica.port = self.port(5432)
        self.replica.start()
        for i in range(NSHARDS):
            r = NsRedis(str(self.dir / f"redis{i}"), self.h[i], self.port(6379))
            self.redis.append(r.start())
        self.rc = [redis_lib.Redis(host=r.host, port=r.port, socket_timeout=5) for r in self.redis]

    def ini(self, host, port, node, roles, extra=None):
        cfg = make_ini(port, self.pg, self.redis[0], 1, None, self.jwt)
        cfg["server"]["host"] = host.ip
        cfg["roles"] = dict(roles)
        cfg["node"] = {"name": node}
        cfg["redis"] = {"host": self.redis[0].host, "port": self.redis[0].port, "reconnect_min_ms": 50,
                        "reconnect_max_ms": 300}
        for i in range(1, NSHARDS):
            cfg[f"redis.{i}"] = {"host": self.redis[i].host, "port": self.redis[i].port, "reconnect_min_ms": 50,
                                 "reconnect_max_ms": 300}
        for k in ("pg_auth", "pg_logs"):
            cfg[k]["host"] = self.pg.host
        cfg["pg_logs.1"] = {"host": self.pg1.host, "port": self.pg1.port, "dbname": "ledger_logs",
                            "user": "postgres"}
        cfg["pg_logs_replica.1"] = {"host": self.replica.host, "port": self.replica.port, "dbname": "ledger_logs",
                                    "user": "postgres", "shard": 0, "max_lag_ms": 5000, "probe_interval_ms": 200}
        cfg["storage"] = dict(QUICK)
        for s, kv in (extra or {}).items():
            cfg.setdefault(s, {}).update(kv)
        return cfg

    def ledgerd(self, host, node, roles):
        self.seq += 1
        d = self.dir / f"ledgerd-{node}"
        d.mkdir(exist_ok=True)
        port = self.port(8020 if roles["gateway"] else 8030)  # a gateway and a worker share host2
        cfg = self.ini(host, port, node, roles)
        token = d / "metrics.token"
        token.write_text("fleet-metrics-" + os.urandom(8).hex() + "\n")
        cfg["server"]["metrics_token_file"] = token
        ini = d / "ledger.ini"
        ini.write_text(render_ini(cfg))
        srv = NsLedgerd(self.binary, ini, d / "ledgerd.log", host, port, dict(os.environ))
        srv.node = node
        srv.metrics_token = token.read_text().strip()
        self.servers.append(srv)
        return srv

    def migrate(self, srv):
        r = subprocess_run(srv.fleet_host.prefix + [self.binary, "-c", str(srv.ini_path), "--migrate"])
        assert r.returncode == 0, r.stdout

    def close(self):
        problems = []
        for s in self.servers:
            if s.running:
                try:
                    rc = s.stop()
                    if rc != 0:
                        problems.append(f"{s.node}: exit code {rc} after SIGTERM\n{tail(s.log_text(), 20)}")
                except AssertionError as e:
                    problems.append(f"{s.node}: {e}")
            san = s.sanitizer_lines()
            if san:
                problems.append(f"{s.node}: sanitizer report:\n  " + "\n  ".join(san[:10]))
        for c in getattr(self, "rc", []):
            c.close()
        for r in self.redis:
            r.kill()
        for p in (self.replica, self.pg1, self.pg):
            if p:
                p.cleanup()
        self.net.destroy()
        return problems


def subprocess_run(argv):
    import subprocess
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=scaled(120))


class Load(threading.Thread):
    """Batches of 10 logs with unique messages for every project, through both gateways in turn.
    accepted: messages answered 202; unknown: those whose outcome the answer left open (no answer,
    or 503 'outcome unknown': they may have been queued)."""

    def __init__(self, gateways, projects, tag):
        super().__init__(daemon=True)
        self.gateways, self.projects, self.tag = gateways, projects, tag
        self.stop_ev = threading.Event()
        self.accepted = collections.defaultdict(list)
        self.unknown = set()
        self.statuses = collections.Counter()
        self.n = 0

    def run(self):
        while not self.stop_ev.is_set():
            for k, (pid, key) in enumerate(self.projects):
                gw = self.gateways[(self.n // 10 + k) % len(self.gateways)]
                msgs = [f"{self.tag}-p{pid}-x{self.n + i}" for i in range(10)]
                logs = [{"timestamp": iso_now(), "level": "info", "log_type": "console", "message": m}
                        for m in msgs]
                try:
                    r = requests.post(gw.url + BATCH, json={"logs": logs}, headers={"X-API-Key": key},
                                      timeout=scaled(5))
                except requests.RequestException:
                    self.unknown.update(msgs)
                    continue
                self.statuses[r.status_code] += 1
                if r.status_code == 202 and r.json()["accepted"] == 10:
                    self.accepted[pid].extend(msgs)
                elif r.status_code == 503 and "outcome unknown" in r.text:
                    self.unknown.update(msgs)
                elif r.status_code not in (429, 503):
                    self.unknown.update(msgs)
            self.n += 10
            time.sleep(0.01)

    def finish(self):
        self.stop_ev.set()
        self.join(scaled(20))
        assert not self.is_alive()


class SseReader(threading.Thread):
    """Events of one notification stream (event name, parsed data) into a queue."""

    def __init__(self, url, key, path=STREAM):
        super().__init__(daemon=True)
        self.resp = requests.get(url + path, headers={"X-API-Key": key}, stream=True, timeout=scaled(30))
        assert self.resp.status_code == 200, self.resp.text
        self.events = queue.Queue()

    def run(self):
        name, data = None, []
        try:
            for line in self.resp.iter_lines(decode_unicode=True):
                if line is None:
                    continue
                if line == "":
                    if name or data:
                        text = "\n".join(data)
                        try:
                            payload = json.loads(text) if text else None
                        except ValueError:
                            payload = text
                        self.events.put((name or "message", payload))
                    name, data = None, []
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
        except (requests.RequestException, AttributeError, ValueError):
            pass

    def wait_for(self, pred, timeout, between=None):
        """The first event pred accepts; between() (if any) runs about every 0.5 s meanwhile."""
        deadline = time.monotonic() + scaled(timeout)
        nudge = time.monotonic()
        while time.monotonic() < deadline:
            if between and time.monotonic() >= nudge:
                between()
                nudge = time.monotonic() + 0.5
            try:
                ev = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if pred(ev):
                return ev
        raise AssertionError("event not received in time")

    def close(self):
        self.resp.close()


@pytest.fixture
def fleet(tmp_path, ledgerd_bin, jwt_secret_file):
    f = Fleet(tmp_path, ledgerd_bin, jwt_secret_file)
    yield f
    problems = f.close()
    if problems:
        pytest.fail("fleet teardown:\n" + "\n".join(problems), pytrace=False)


def shard_of(pid):
    return jump(pid, NSHARDS)


def pg_shard_of(pid):
    return jump(pid, NPG)


def stored(logs_dbs, pid):
    """The project's stored messages, read on its logs shard; none may be on the other one."""
    home = logs_dbs[pg_shard_of(pid)]
    for i, db in enumerate(logs_dbs):
        if db is not home:
            n = db.execute("SELECT count(*) FROM logs WHERE project_id = %s", (pid,)).fetchone()[0]
            assert n == 0, f"project {pid}: {n} rows on logs shard {i}, not its own {pg_shard_of(pid)}"
    return collections.Counter(m for (m,) in home.execute("SELECT message FROM logs WHERE project_id = %s",
                                                          (pid,)))


def consumer_nodes(rc, group):
    try:
        return {c["name"].decode().split(":")[0] for c in rc.xinfo_consumers("ledger:logs", group)}
    except redis_lib.exceptions.ResponseError:
        return set()


def test_fleet_over_three_redis_shards(fleet):
    f = fleet
    t_start = time.monotonic()
    f.start_data()
    print(f"fleet: data stores up in {time.monotonic() - t_start:.1f} s")
    h1, h2, h3 = f.h
    g1 = f.ledgerd(h1, "host1-gw", GATEWAY_ROLES)
    f.migrate(g1)

    # projects: at least two on every Redis shard and every logs shard (ids come from a sequence:
    # draw until covered)
    auth = AuthDb(f.pg)
    acct = auth.account()
    projects, per, per_pg, drawn = [], collections.Counter(), collections.Counter(), 0
    while min(per[s] for s in range(NSHARDS)) < 2 or min(per_pg[s] for s in range(NPG)) < 2:
        pid = auth.project(acct)
        drawn += 1
        if per[shard_of(pid)] < 2 or per_pg[pg_shard_of(pid)] < 2:
            key, _ = auth.key(pid, rpm=1000000, rph=10000000)
            projects.append((pid, key))
            per[shard_of(pid)] += 1
            per_pg[pg_shard_of(pid)] += 1
        assert drawn < 200
    auth.close()

    g1.start()
    g2 = f.ledgerd(h2, "host2-gw", GATEWAY_ROLES).start()
    w1 = f.ledgerd(h2, "host2-worker", WORKER_ROLES).start()
    w2 = f.ledgerd(h3, "host3-worker", WORKER_ROLES).start()
    logs_db = [psycopg.connect(p.dsn("ledger_logs"), autocommit=True) for p in (f.pg, f.pg1)]
    print(f"fleet: ledgerd fleet up in {time.monotonic() - t_start:.1f} s")
    try:
        # /health/deep reports every shard; /metrics is labelled by shard
        deep = requests.get(g1.url + "/health/deep", timeout=scaled(10)).json()
        assert deep["status"] == "healthy", deep
        assert [s["shard"] for s in deep["redis_shards"]] == [0, 1, 2]
        assert all(s["status"] == "healthy" for s in deep["redis_shards"]), deep
        assert deep["node"] == "host1-gw"
        assert [s["status"] for s in deep["services"]["postgres_logs_shards"]] == ["healthy"] * NPG, deep
        r = requests.get(w2.url + "/metrics", timeout=scaled(10),
                         headers={"Authorization": f"Bearer {w2.metrics_token}"})
        assert r.status_code == 200, r.text
        assert 'ledger_redis_errors_total{worker="0",shard="2"}' in r.text
        assert 'ledger_node_info{node="host3-worker",redis_shards="3"} 1' in r.text
        wait_until(lambda: 'ledger_queue_entries{shard="2"}' in requests.get(
            w2.url + "/metrics", timeout=scaled(10), headers={"Authorization": f"Bearer {w2.metrics_token}"}).text,
            10, interval=0.3, what="queue gauges of every shard")

        # a notification published through g1 reaches a stream on g2 (a project off shard 0)
        pid, key = next(p for p in projects if shard_of(p[0]) == 2)
        sse = SseReader(g2.url, key)
        sse.start()
        sse.wait_for(lambda ev: ev[0] == "connected", 10)
        time.sleep(0.3)
        note = f"{os.urandom(4).hex()} fleet notification"
        r = requests.post(g1.url + BATCH, headers={"X-API-Key": key}, timeout=scaled(10),
                          json={"logs": [{"timestamp": iso_now(), "level": "error", "message": note}]})
        assert r.status_code == 202, r.text
        sse.wait_for(lambda ev: isinstance(ev[1], dict) and ev[1].get("message") == note, 10)
        sse.close()

        # a live tail on g1 of a project on shard 1 shows what a worker stored of logs sent to g2
        pid, key = next(p for p in projects if shard_of(p[0]) == 1)
        tail_ = SseReader(g1.url, key, path=TAIL)
        tail_.start()
        tail_.wait_for(lambda ev: ev[0] == "connected", 10)
        seen = f"{os.urandom(4).hex()} fleet tail"

        def send():  # until the workers see the new viewer (they cache "no viewers" for up to 1 s)
            r = requests.post(g2.url + BATCH, headers={"X-API-Key": key}, timeout=scaled(10),
                              json={"logs": [{"timestamp": iso_now(), "level": "info", "message": seen}]})
            assert r.status_code == 202, r.text

        tail_.wait_for(lambda ev: ev[0] == "log" and ev[1].get("message") == seen, 20, between=send)
        tail_.close()

        for rnd in range(ROUNDS):
            tag = f"r{rnd}-{os.urandom(3).hex()}"
            load = Load([g1, g2], projects, tag)
            load.start()
            wait_until(lambda: sum(len(v) for v in load.accepted.values()) >= 100, 30, interval=0.05,
                       what="ingest running")
            t0 = time.monotonic()
            time.sleep(LOAD_S * 0.2)
            w1.kill()  # a worker dies mid-batch: its pending entries are claimed by w2
            time.sleep(LOAD_S * 0.1)
            f.redis[1].kill()  # a Redis shard dies: its projects get 503 until it is back
            time.sleep(LOAD_S * 0.2)
            f.redis[1].start()  # from its append-only file
            w1.start()
            time.sleep(max(0.0, LOAD_S - (time.monotonic() - t0)))
            load.finish()
            assert load.statuses[202] > 0, load.statuses

            def settled():
                for pid, _ in projects:
                    if not set(load.accepted[pid]) <= set(stored(logs_db, pid)):
                        return False
                return all(c.xlen("ledger:logs") == 0 for c in f.rc)

            try:
                wait_until(settled, 60, interval=0.3, what="every accepted log stored, every queue empty")
            except AssertionError:
                pass  # reported below, per project
            time.sleep(0.5)  # anything written twice would show by now
            for pid, _ in projects:
                got = stored(logs_db, pid)
                mine = {m: c for m, c in got.items() if m.startswith(f"{tag}-")}
                accepted = set(load.accepted[pid])
                lost = accepted - set(mine)
                twice = {m: c for m, c in mine.items() if c > 1}
                assert not lost, f"project {pid} (shard {shard_of(pid)}): {len(lost)} accepted logs not stored"
                assert not twice, f"project {pid}: stored twice: {list(twice.items())[:5]}"
                assert set(mine) - accepted <= load.unknown, f"project {pid}: rows never sent"
            print(f"fleet round {rnd} ({f.net.mode}): accepted "
                  f"{sum(len(v) for v in load.accepted.values())}, unknown {len(load.unknown)}, "
                  f"statuses {dict(load.statuses)}")

        # each project's counters are on its own shard only, and count what was queued (= stored)
        day = time.strftime("%Y%m%d", time.gmtime())
        for pid, _ in projects:
            s = shard_of(pid)
            n = sum(stored(logs_db, pid).values())
            assert int(f.rc[s].get(f"usage:{pid}:{day}") or 0) == n, (pid, s)
            assert int(f.rc[s].get(f"queue_depth:{pid}") or 0) == 0
            for o in range(NSHARDS):
                if o != s:
                    assert f.rc[o].get(f"usage:{pid}:{day}") is None, (pid, s, o)
        # both workers consume every shard (one consumer group per shard's stream)
        group = "ledger:storage"
        for s in range(NSHARDS):
            nodes = consumer_nodes(f.rc[s], group)
            assert {"host2-worker", "host3-worker"} <= nodes, (s, nodes)
        assert " node=host3-worker worker=0 " in w2.log_text()  # [node] name in every log line

        # queries through either gateway see the same logs
        for pid, key in projects[:3]:
            n = sum(stored(logs_db, pid).values())
            for gw in (g1, g2):  # shard 0's projects may be read from the replica: it catches up
                def total():
                    r = requests.get(gw.url + "/api/v1/logs", params={"project_id": pid, "include_total": "true",
                                                                      "limit": 1},
                                     headers={"X-API-Key": key}, timeout=scaled(10))
                    assert r.status_code == 200, r.text
                    return r.json()["total"]

                wait_until(lambda: total() == n, 10, interval=0.2, what=f"{gw.node}: {n} logs of project {pid}")

        deep = wait_until(lambda: (lambda d: d if d["status"] == "healthy" else None)(
            requests.get(g2.url + "/health/deep", timeout=scaled(10)).json()), 20, interval=0.3,
            what="g2 healthy again")
        assert all(s["queue"]["queued"] == 0 for s in deep["redis_shards"]), deep
    finally:
        for db in logs_db:
            db.close()
