"""Hosts for fleet tests: Linux network namespaces joined by a bridge on a private 10.x subnet, or,
where namespaces cannot be made, distinct 127.x.y.z loopback addresses (the same processes and
checks, one network stack).

    net = Net.create()                  # net.mode: "netns" or "loopback"; net.hosts: three Hosts
    h = net.hosts[0]                    # h.ip, h.prefix (argv prefix that runs a command on it)
    pg = NsPg(dir, h, cidr).start()     # PostgreSQL listening on h.ip (trust from the subnet)
    rep = NsPgReplica(pg, dir, h2, cidr).start()  # its streaming replica on another host
    r = NsRedis(dir, h).start()         # redis-server on h.ip, append-only, fsync on every write
    srv = NsLedgerd(binary, ini, log, h, port).start()
    net.destroy()

LDG_FLEET_LOOPBACK=1 forces the loopback fallback (to test it). Nothing leaves the subnet: the bridge has no uplink and the host side only holds the address the
test itself uses to reach the hosts. ``jump(key, n)`` is the project -> shard hash of ledgerd
(src/db/shardmap.c), for placement checks.
"""

import os
import random
import signal
import subprocess
import time
import warnings

from conftest import Ledgerd, scaled
from ldg_servers import TIMEOUT_MULT, PgServer, RedisServer, _redis_major


def jump(key, n):
    """Jump consistent hash (Lamping and Veach), as ldg_shardmap_jump."""
    b, j = -1, 0
    key &= (1 << 64) - 1
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) & ((1 << 64) - 1)
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


class Host:
    def __init__(self, name, ip, ns=None):
        self.name, self.ip, self.ns = name, ip, ns
        self.prefix = ["ip", "netns", "exec", ns] if ns else []


def _ip(*args):
    subprocess.run(["ip", *args], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)


class Net:
    def __init__(self, mode, hosts, bridge=None, note=""):
        self.mode, self.hosts, self.bridge, self.note = mode, hosts, bridge, note

    @classmethod
    def create(cls, n=3):
        tag = os.urandom(2).hex()
        a, b = random.randrange(200, 250), random.randrange(1, 255)
        subnet = f"10.{a}.{b}"
        bridge = f"lb{tag}"
        hosts = [Host(f"host{i + 1}", f"{subnet}.{i + 1}", f"ldg{tag}h{i + 1}") for i in range(n)]
        try:
            if os.geteuid() != 0:
                raise OSError("not root")
            if os.environ.get("LDG_FLEET_LOOPBACK") == "1":
                raise OSError("LDG_FLEET_LOOPBACK=1")
            _ip("link", "add", bridge, "type", "bridge")
            _ip("addr", "add", f"{subnet}.254/24", "dev", bridge)
            _ip("link", "set", bridge, "up")
            for i, h in enumerate(hosts):
                _ip("netns", "add", h.ns)
                outer = f"lv{tag}{i + 1}"
                _ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
                _ip("link", "set", outer, "master", bridge)
                _ip("link", "set", outer, "up")
                _ip("-n", h.ns, "addr", "add", f"{h.ip}/24", "dev", "eth0")
                _ip("-n", h.ns, "link", "set", "eth0", "up")
                _ip("-n", h.ns, "link", "set", "lo", "up")
            return cls("netns", hosts, bridge)
        except (OSError, subprocess.SubprocessError) as e:
            out = getattr(e, "stdout", b"") or b""
            note = f"network namespaces unavailable ({e} {out.decode(errors='replace').strip()}): " \
                   "falling back to 127.x loopback addresses"
            cls("netns", hosts, bridge).destroy()
            warnings.warn(note)
            print(note)
            lo = [Host(f"host{i + 1}", f"127.{a}.{b}.{i + 1}") for i in range(n)]
            return cls("loopback", lo, None, note)

    def destroy(self):
        for h in self.hosts:
            if h.ns:
                subprocess.run(["ip", "netns", "del", h.ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    @property
    def cidr(self):
        if self.mode == "loopback":
            return "127.0.0.0/8"
        return self.hosts[0].ip.rsplit(".", 1)[0] + ".0/24"


class NsPg(PgServer):
    """PgServer on a host: listens on the host's address, trusts the fleet's subnet."""

    def __init__(self, tmpdir, host, cidr):
        super().__init__(tmpdir)
        self.fleet_host, self.cidr = host, cidr
        self.host = host.ip

    def _run(self, *argv, check=True, timeout=120):
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        cmd = self.fleet_host.prefix + cmd
        r = subprocess.run(cmd, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout * TIMEOUT_MULT)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{self.log_tail()}")
        return r

    def _options(self):
        return super()._options().replace("listen_addresses=127.0.0.1", f"listen_addresses={self.fleet_host.ip}")

    def start(self):
        if not (self.datadir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres", "--nosync",
                      "--locale=C", "-E", "UTF8")
            with open(self.datadir / "pg_hba.conf", "a") as f:
                f.write(f"host all all {self.cidr} trust\nhost replication all {self.cidr} trust\n")
        self.port = self.port or 5432
        return super().start()


class NsPgReplica(NsPg):
    """A streaming replica of an NsPg, on another host (pg_basebackup -R from the primary)."""

    def __init__(self, primary, tmpdir, host, cidr):
        super().__init__(tmpdir, host, cidr)
        self.primary = primary

    def start(self):
        if not (self.datadir / "PG_VERSION").exists():
            self._run("pg_basebackup", "-h", self.primary.host, "-p", str(self.primary.port), "-U", "postgres",
                      "-D", str(self.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        self.port = self.port or 5432
        return PgServer.start(self)


class NsRedis(RedisServer):
    """A Redis shard on a host: bound to the host's address, append-only with an fsync per write, so
    a SIGKILL loses nothing it answered and a restart comes back from the AOF."""

    def __init__(self, tmpdir, host, port=6379):
        super().__init__(tmpdir, appendonly=True)
        self.fleet_host = host
        self.host = host.ip
        self.port = port

    def start(self):
        # protected mode refuses clients from other hosts when there is no password: the fleet is private
        argv = ["redis-server", "--port", str(self.port), "--bind", self.host, "--protected-mode", "no", "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always", "--dir", str(self.dir)]
        if _redis_major() >= 7:
            argv += ["--enable-debug-command", "yes"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.fleet_host.prefix + argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 10 * TIMEOUT_MULT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.log}")
            try:
                if self._ping():
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def kill(self):
        # `ip netns exec` execs the command: the process is redis-server itself
        self._end(signal.SIGKILL)


class NsLedgerd(Ledgerd):
    """A ledgerd on a host (listening on the host's address)."""

    def __init__(self, binary, ini_path, log_path, host, port, env):
        super().__init__(binary, ini_path, log_path, port, env)
        self.fleet_host = host
        self.url = f"http://{host.ip}:{port}"

    def start(self, wait=True, timeout=10):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.fleet_host.prefix + [self.binary, "-c", str(self.ini_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                cwd=self.ini_path.parent, start_new_session=True)
        self._stopped_by_test = False
        if wait:
            self.wait_healthy(timeout)
        return self


__all__ = ["Host", "Net", "NsLedgerd", "NsPg", "NsPgReplica", "NsRedis", "jump", "scaled"]
