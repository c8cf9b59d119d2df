"""No silent misconfiguration: what used to start (or pass --check-config) and then misbehave is
refused with a message naming the cause.

- a second ledgerd on an address already served by one refuses to start (the address lock), unless
  `[server] share_listener = on`;
- role combinations that cannot serve, unknown sections (even empty ones) and `value;` are
  configuration errors (exit 3);
- the shipped fleet configs pass --check-config as they are; relative paths are resolved against
  the config file's directory; --print-config shows secret paths (not secret values) and `auto`,
  and its output passes --check-config;
- a database that refuses us is logged with the cause (authentication, missing database,
  unreachable);
- /health/deep degrades when accepted logs are not being consumed.
"""

import datetime
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import requests

from conftest import ROOT, make_ini, render_ini, scaled
from ldg_http import wait_until
from ldg_servers import free_port


def run(binary, *args, cwd=None):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=scaled(20), cwd=cwd,
                          stdin=subprocess.DEVNULL)


def write(path, text):
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# The address lock
# ---------------------------------------------------------------------------------------------


def _second(ledgerd_bin, first, tmp_path, **server):
    cfg = render_ini({**{s: dict(v) for s, v in _ini_of(first).items()}})
    ini = tmp_path / "second.ini"
    text = cfg
    for k, v in server.items():
        text = text.replace("[server]\n", f"[server]\n{k} = {v}\n", 1)
    ini.write_text(text)
    log = tmp_path / "second.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([ledgerd_bin, "-c", str(ini)], stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _ini_of(srv):
    """The first server's config as {section: {key: value}} (render_ini's input)."""
    cfg, sec = {}, None
    for line in srv.ini_path.read_text().splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            sec = cfg.setdefault(m.group(1), {})
        elif " = " in line:
            k, v = line.split(" = ", 1)
            sec[k] = v
    return cfg


def test_second_ledgerd_on_a_busy_address_refuses_to_start(ledgerd, ledgerd_bin, tmp_path):
    first = ledgerd()
    proc, log = _second(ledgerd_bin, first, tmp_path)
    try:
        rc = proc.wait(scaled(10))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("a second ledgerd started on an address in use") from None
    text = log.read_text()
    assert rc == 1, text
    assert f"another ledgerd is already listening on 127.0.0.1:{first.port}" in text, text
    assert "share_listener" in text
    # the first one is untouched and still answers
    assert requests.get(first.url + "/health", timeout=scaled(5)).status_code == 200


def test_a_wildcard_listener_overlapping_a_busy_address_refuses_to_start(ledgerd, ledgerd_bin, tmp_path):
    first = ledgerd()  # 127.0.0.1:<port>
    ini = tmp_path / "wild.ini"
    ini.write_text(first.ini_path.read_text().replace("host = 127.0.0.1", "host = 0.0.0.0", 1))
    r = subprocess.run([ledgerd_bin, "-c", str(ini)], capture_output=True, text=True, timeout=scaled(20),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"another ledgerd is already listening on 127.0.0.1:{first.port}, which overlaps 0.0.0.0:{first.port}" \
        in r.stdout + r.stderr, r.stdout + r.stderr


def test_share_listener_lets_a_second_ledgerd_start(ledgerd, ledgerd_bin, tmp_path):
    first = ledgerd(extra_ini={"server": {"share_listener": True}})
    proc, log = _second(ledgerd_bin, first, tmp_path)  # the copy has share_listener = on too
    try:
        wait_until(lambda: "listening on" in log.read_text() or proc.poll() is not None, 10,
                   what="the second ledgerd to start")
        assert proc.poll() is None, log.read_text()
    finally:
        proc.terminate()
        assert proc.wait(scaled(15)) == 0, log.read_text()


def test_the_lock_is_released_when_the_first_one_exits(ledgerd, ledgerd_bin, tmp_path):
    first = ledgerd()
    assert first.stop() == 0
    proc, log = _second(ledgerd_bin, first, tmp_path)
    try:
        wait_until(lambda: "listening on" in log.read_text() or proc.poll() is not None, 10,
                   what="the second ledgerd to start")
        assert proc.poll() is None, log.read_text()
    finally:
        proc.terminate()
        assert proc.wait(scaled(15)) == 0, log.read_text()


# ---------------------------------------------------------------------------------------------
# Configuration errors
# ---------------------------------------------------------------------------------------------


def test_api_roles_without_the_gateway_are_a_config_error(ledgerd_bin, tmp_path):
    ini = write(tmp_path / "l.ini", "[roles]\ngateway = off\nauth = off\nquery = off\nnotifications = off\ningest = on\n")
    r = run(ledgerd_bin, "-c", str(ini), "--check-config")
    assert r.returncode == 3, r
    assert "ingest = on needs gateway = on" in r.stderr, r.stderr


def test_no_role_at_all_is_a_config_error(ledgerd_bin, tmp_path):
    roles = "".join(f"{n} = off\n" for n in ("gateway", "auth", "ingest", "notifications", "query", "storage",
                                              "analytics"))
    ini = write(tmp_path / "l.ini", "[roles]\n" + roles)
    r = run(ledgerd_bin, "-c", str(ini), "--check-config")
    assert r.returncode == 3, r
    assert "every role is off" in r.stderr


def test_shipped_configs_pass_check_config_as_they_are(ledgerd_bin, tmp_path):
    # from another working directory: relative paths in them are the config file's
    for name in ("ledger.ini", "gateway.ini", "worker.ini"):
        r = run(ledgerd_bin, "-c", str(ROOT / "conf" / name), "--check-config", cwd=tmp_path)
        assert r.returncode == 0, (name, r.stdout, r.stderr)
        assert "configuration ok" in r.stdout


def test_shipped_fleet_configs_name_their_missing_secret_and_how_to_make_it(ledgerd_bin, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf, ignore=shutil.ignore_patterns("secrets"))
    r = run(ledgerd_bin, "-c", str(conf / "gateway.ini"), "--check-config")
    assert r.returncode == 0, r.stderr
    secret = conf / "secrets" / "jwt.secret"
    assert f"secret file {secret} does not exist yet" in r.stderr, r.stderr
    # the documented command makes it, and then there is nothing left to note
    cmd = re.search(r"^  (\(umask.*\))$", r.stderr, re.M).group(1)
    secret.parent.mkdir(mode=0o700)
    subprocess.run(["bash", "-c", cmd], check=True, timeout=10)
    assert len(secret.read_text()) == 64
    r = run(ledgerd_bin, "-c", str(conf / "gateway.ini"), "--check-config")
    assert r.returncode == 0 and "does not exist" not in r.stderr, r.stderr
    # a start (not a check) still needs every secret
    secret.unlink()
    r = run(ledgerd_bin, "-c", str(conf / "gateway.ini"))
    assert r.returncode == 3 and "jwt.secret" in r.stderr, r.stderr


def test_relative_paths_are_resolved_against_the_config_file(ledgerd_bin, tmp_path):
    d = tmp_path / "etc"
    d.mkdir()
    ini = write(d / "l.ini", "[server]\nschema_dir = ./schema\nmetrics_token_file = tok\n"
                             "[gateway]\nweb_dir = ../web\n[auth]\njwt_secret_file = s/jwt\n")
    (d / "tok").write_text("t0ken-value\n")
    (d / "s").mkdir()
    (d / "s" / "jwt").write_text("x" * 40 + "\n")
    r = run(ledgerd_bin, "-c", str(ini), "--print-config", cwd="/")
    assert r.returncode == 0, r.stderr
    real = d.resolve()
    assert re.search(rf"^schema_dir = {re.escape(str(real))}/schema$", r.stdout, re.M), r.stdout
    assert re.search(rf"^web_dir = {re.escape(str(real))}/\.\./web$", r.stdout, re.M)
    # secret *paths* are shown; secret values never are
    assert re.search(rf"^jwt_secret_file = {re.escape(str(real))}/s/jwt$", r.stdout, re.M)
    assert re.search(rf"^metrics_token_file = {re.escape(str(real))}/tok$", r.stdout, re.M)
    assert "t0ken-value" not in r.stdout and "x" * 40 not in r.stdout
    assert re.search(r"^workers = auto$", r.stdout, re.M)
    printed = write(tmp_path / "printed.ini", r.stdout)
    r2 = run(ledgerd_bin, "-c", str(printed), "--check-config")
    assert r2.returncode == 0, r2.stderr


# ---------------------------------------------------------------------------------------------
# Database errors name the cause
# ---------------------------------------------------------------------------------------------


def _cause_logged(ledgerd, section, keys, words):
    s = ledgerd(extra_ini={section: keys, "roles": {"storage": False, "analytics": False}}, migrate=False)
    s.allow_errors = True
    # a request that needs the database makes the pool connect
    requests.get(s.url + "/health/deep", timeout=scaled(10))
    wait_until(lambda: re.search(words, s.log_text()), 10, what=words)


def test_wrong_database_role_is_logged_as_authentication_failed(ledgerd):
    _cause_logged(ledgerd, "pg_auth", {"user": "no_such_role"}, r"pg_auth.*cannot connect: authentication failed")


def test_missing_database_is_logged_as_database_missing(ledgerd):
    _cause_logged(ledgerd, "pg_logs", {"dbname": "no_such_db"}, r"pg_logs.*cannot connect: database missing")


def test_closed_port_is_logged_as_unreachable(ledgerd):
    import socket
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    _cause_logged(ledgerd, "pg_auth", {"port": port}, r"pg_auth.*cannot connect: server unreachable")


def test_migrate_names_the_cause(ledgerd_bin, tmp_path, pg, redis):
    cfg = make_ini(1, pg, redis, 1, {"pg_auth": {"user": "no_such_role"}})
    ini = write(tmp_path / "m.ini", render_ini(cfg))
    r = run(ledgerd_bin, "-c", str(ini), "--migrate")
    assert r.returncode == 1
    assert "authentication failed" in r.stdout + r.stderr, r.stdout + r.stderr


# ---------------------------------------------------------------------------------------------
# /health/deep and an unconsumed queue
# ---------------------------------------------------------------------------------------------


def _ingest_one(srv, db):
    d = db()
    pid = d.project(d.account())
    key, _ = d.key(pid)
    ts = datetime.datetime.now(datetime.timezone.utc).isoformat()
    r = requests.post(srv.url + "/api/v1/ingest/single", headers={"X-API-Key": key}, timeout=scaled(10),
                      json={"timestamp": ts, "level": "info", "message": "waiting for a consumer"})
    assert r.status_code == 202, r.text


def test_health_deep_degrades_when_nobody_consumes_the_queue(ledgerd, db):
    stream = "test:logs:" + os.urandom(6).hex()
    # a gateway alone: it accepts logs, and no storage role anywhere reads them
    s = ledgerd(extra_ini={"ingest": {"stream": stream}, "roles": {"storage": False, "analytics": False},
                           "server": {"health_queue_max_age_ms": 1000}})
    r = requests.get(s.url + "/health/deep", timeout=scaled(10))
    assert r.status_code == 200, r.text
    assert r.json()["services"]["queue"] == {"status": "healthy", "queued": 0, "oldest_age_ms": 0,
                                             "max_age_ms": 1000}
    _ingest_one(s, db)
    r = requests.get(s.url + "/health/deep", timeout=scaled(10))
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "degraded"
    q = body["services"]["queue"]
    assert q["status"] == "unhealthy: no consumer" and q["queued"] == 1 and q["consumers"] == 0, q


def test_health_deep_degrades_when_the_oldest_log_waits_too_long(ledgerd, db, redis):
    import redis as redis_py
    stream = "test:logs:" + os.urandom(6).hex()
    s = ledgerd(extra_ini={"ingest": {"stream": stream}, "roles": {"storage": False, "analytics": False},
                           "server": {"health_queue_max_age_ms": 1000}})
    rc = redis_py.Redis(host="127.0.0.1", port=redis.port)
    rc.xgroup_create(stream, "ledger:storage", id="$", mkstream=True)  # a group with a consumer that reads nothing
    rc.xgroup_createconsumer(stream, "ledger:storage", "idle-consumer")
    _ingest_one(s, db)
    r = requests.get(s.url + "/health/deep", timeout=scaled(10))
    assert r.json()["services"]["queue"]["status"] == "healthy", r.text  # young: within the bound
    time.sleep(1.3)
    r = requests.get(s.url + "/health/deep", timeout=scaled(10))
    assert r.status_code == 503, r.text
    q = r.json()["services"]["queue"]
    assert q["status"] == "unhealthy: logs not consumed in time" and q["consumers"] == 1, q
    assert q["oldest_age_ms"] >= 1000


def test_health_deep_is_healthy_while_storage_keeps_up(ledgerd, db):
    stream = "test:logs:" + os.urandom(6).hex()
    s = ledgerd(extra_ini={"ingest": {"stream": stream}, "server": {"health_queue_max_age_ms": 5000}})
    _ingest_one(s, db)
    wait_until(lambda: requests.get(s.url + "/health/deep", timeout=scaled(10)).json()["services"]["queue"]
               ["queued"] == 0, 15, what="storage to drain the queue")
    r = requests.get(s.url + "/health/deep", timeout=scaled(10))
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------------------
# The fleet guide's worked example (docs/operations.md#fleet): the shipped configs, edited as the
# guide says, as a gateway and a worker on one machine.
# ---------------------------------------------------------------------------------------------


def test_fleet_worked_example_with_the_shipped_configs(tmp_path, pg, redis, ledgerd_bin, db):
    root = tmp_path / "checkout"
    (root / "conf").mkdir(parents=True)
    os.symlink(ROOT / "schema", root / "schema")
    fleet = root / "fleet"
    fleet.mkdir()
    (fleet / "secrets").mkdir(mode=0o700)
    gw_port, wk_port = free_port(), free_port()
    for name in ("gateway.ini", "worker.ini"):
        text = (ROOT / "conf" / name).read_text()
        text = re.sub(r"(?m)^port = 8020$", f"port = {gw_port}", text)
        text = re.sub(r"(?m)^port = 8021$", f"port = {wk_port}", text)
        text = re.sub(r"(?m)^port = 6379$", f"port = {redis.port}", text)
        text = re.sub(r"(?m)^port = 5432$", f"port = {pg.port}", text)
        text = re.sub(r"(?m)^user = ledger$", "user = postgres", text)
        (fleet / name).write_text(text)
    subprocess.run(["bash", "-c", "(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > "
                    "fleet/secrets/jwt.secret)"], cwd=root, check=True, timeout=10)
    for name in ("worker.ini", "gateway.ini"):
        r = run(ledgerd_bin, "-c", f"fleet/{name}", "--check-config", cwd=root)
        assert r.returncode == 0 and "does not exist" not in r.stderr, (name, r.stderr)
    r = run(ledgerd_bin, "-c", str(fleet / "worker.ini"), "--migrate", cwd="/")  # schema_dir: the file's ../schema
    assert r.returncode == 0, r.stdout + r.stderr
    procs = []
    try:
        for name in ("worker.ini", "gateway.ini"):
            log = open(fleet / (name + ".log"), "wb")
            procs.append(subprocess.Popen([ledgerd_bin, "-c", str(fleet / name)], stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        gw = f"http://127.0.0.1:{gw_port}"
        wait_until(lambda: _up(gw) and _up(f"http://127.0.0.1:{wk_port}"), 15, what="gateway and worker")
        d = db()
        pid = d.project(d.account())
        key, _ = d.key(pid)
        r = requests.post(gw + "/api/v1/ingest/single", headers={"X-API-Key": key}, timeout=scaled(10),
                          json={"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                "level": "error", "message": "GET /api/orders failed"})
        assert r.status_code == 202, r.text

        def found():
            r = requests.get(gw + "/api/v1/logs/search", params={"q": "orders", "period": "last1h"},
                             headers={"X-API-Key": key}, timeout=scaled(10))
            return r.status_code == 200 and len(r.json()["logs"]) == 1
        wait_until(found, 20, what="the worker to store the log")
        deep = requests.get(gw + "/health/deep", timeout=scaled(10))
        assert deep.status_code == 200, deep.text
        assert set(deep.json()["roles"]) == {"gateway", "auth", "ingest", "notifications", "query"}
        wdeep = requests.get(f"http://127.0.0.1:{wk_port}/health/deep", timeout=scaled(10)).json()
        assert set(wdeep["roles"]) == {"storage", "analytics"}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            assert p.wait(scaled(20)) == 0
    for name in ("worker.ini", "gateway.ini"):
        text = (fleet / (name + ".log")).read_text()
        assert "level=error" not in text, text[-2000:]


def _up(url):
    try:
        return requests.get(url + "/health", timeout=scaled(1)).status_code == 200
    except requests.RequestException:
        return False
