"""https:// for webhooks and http monitors, against TLS receivers started by the test.

The test makes a private CA (openssl CLI) and three server certificates: one the CA signed for
127.0.0.1 and localhost, one the CA signed for another name only, and one self-signed. ledgerd
trusts the CA through [analytics] outbound_ca_file; the self-signed one is trusted by nobody.
Verification is always on, so the last two must fail, with the reason in the delivery log and the
monitor's checks, and the receiver must never see the request.
"""

import hashlib
import hmac
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest

from ldg_api import Api
from ldg_receiver import Receiver

pytestmark = pytest.mark.timeout(180)

SECRET = "tls-signing-secret-0123456789"
MON = "/api/v1/monitors"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Ledger Test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)

    def leaf(name, san, signed=True):
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        if signed:
            openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                    "-out", f"{name}.csr", cwd=d)
            openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
        else:
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName={san}", "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)

    leaf("good", "IP:127.0.0.1,DNS:localhost")
    leaf("wrongname", "DNS:other.invalid")
    leaf("selfsigned", "IP:127.0.0.1,DNS:localhost", signed=False)
    return d


def context(pki, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki / f"{name}.pem"), str(pki / f"{name}.key"))
    return ctx


@pytest.fixture
def server(ledgerd, pki):
    return ledgerd(extra_ini={"analytics": {"webhook_timeout_ms": 2000, "webhook_backoff_ms": 100,
                                            "monitor_check_interval_ms": 1000,
                                            "outbound_ca_file": str(pki / "ca.pem")}})


def signed(headers, body):
    want = "sha256=" + hmac.new(SECRET.encode(), headers["X-Ledger-Timestamp"].encode() + b"." + body,
                                hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Ledger-Signature", ""), want)


def hook(user, url):
    r = user.post("/api/v1/connectors", json={"name": "tls hook", "kind": "webhook",
                                              "config": {"url": url, "secret": SECRET}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_webhook_over_https(server, pki):
    user = Api(server.url).register()
    with Receiver(tls=context(pki, "good")) as rx:
        # by address: the certificate's IP entry is checked, no SNI (addresses are never sent)
        cid = hook(user, rx.url("/hook"))
        r = user.post(f"/api/v1/connectors/{cid}/test")
        assert r.status_code == 200 and r.json()["success"] is True and r.json()["status_code"] == 200, r.text
        method, path, headers, body, _ = rx.wait(1)[0]
        assert method == "POST" and path == "/hook" and signed(headers, body)
        assert json.loads(body)["event"] == "test"
        assert rx.sni == [None]  # a handshake without SNI
        # by name: SNI carries it and the certificate's DNS entry is checked
        cid = hook(user, rx.url("/named", host="localhost"))
        r = user.post(f"/api/v1/connectors/{cid}/test")
        assert r.json()["success"] is True, r.text
        assert rx.wait(2)[1][1] == "/named" and rx.sni == [None, "localhost"]


@pytest.mark.parametrize("cert,host,reason", [
    ("selfsigned", "127.0.0.1", "self-signed certificate"),
    ("wrongname", "127.0.0.1", "IP address mismatch"),
    ("wrongname", "localhost", "hostname mismatch"),
])
def test_webhook_refuses_an_unverified_server(server, pki, cert, host, reason):
    user = Api(server.url).register()
    with Receiver(tls=context(pki, cert)) as rx:
        cid = hook(user, rx.url("/hook", host=host))
        r = user.post(f"/api/v1/connectors/{cid}/test")
        assert r.status_code == 200 and r.json()["success"] is False, r.text
        assert r.json()["error"] == f"TLS certificate verification failed: {reason}"
        d = user.get(f"/api/v1/connectors/{cid}/deliveries").json()["deliveries"]
        assert d[0]["ok"] is False and reason in d[0]["error"]
        time.sleep(0.3)
        assert rx.requests == []  # nothing was sent to it


def test_https_handshake_has_a_deadline(server):
    """A server that accepts the connection and never answers the ClientHello: the attempt ends at
    webhook_timeout_ms like any other request."""
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        lsn.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(lsn.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        user = Api(server.url).register()
        cid = hook(user, f"https://127.0.0.1:{lsn.getsockname()[1]}/slow")
        t0 = time.time()
        r = user.post(f"/api/v1/connectors/{cid}/test")
        took = time.time() - t0
        assert r.json()["success"] is False and r.json()["error"] == "timed out", r.text
        assert 1.8 <= took < 6, took
        assert held  # it did connect: the deadline covered the handshake
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        lsn.close()


def test_http_monitor_over_https(server, pki):
    user = Api(server.url).register()
    pid = user.create_project()["project_id"]
    with Receiver(tls=context(pki, "good")) as good, Receiver(tls=context(pki, "selfsigned")) as bad:
        ids = {}
        for name, rx in (("good", good), ("bad", bad)):
            r = user.post(MON, json={"project_id": pid, "kind": "http", "name": name,
                                     "target_url": rx.url("/health", host="localhost"), "interval_s": 10,
                                     "timeout_s": 2})
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]

        def get(name):
            return user.get(f"{MON}/{ids[name]}").json()

        end = time.time() + 15
        while time.time() < end and (get("good")["state"] == "unknown" or get("bad")["state"] == "unknown"):
            time.sleep(0.2)
        g, b = get("good"), get("bad")
        assert g["state"] == "up" and g["last_status_code"] == 200, g
        assert good.requests[0][0] == "GET" and good.requests[0][1] == "/health" and good.sni == ["localhost"]
        assert b["state"] == "down", b
        assert b["last_error"] == "TLS certificate verification failed: self-signed certificate", b
        assert bad.requests == []
        checks = user.get(f"{MON}/{ids['bad']}/checks").json()["checks"]
        assert checks[0]["ok"] is False and "self-signed" in checks[0]["error"]


def test_https_urls_are_accepted_when_saved(server):
    user = Api(server.url).register()
    r = user.post("/api/v1/connectors", json={"name": "x", "kind": "webhook",
                                              "config": {"url": "https://hooks.example.com/x"}})
    assert r.status_code == 201, r.text
    r = user.post("/api/v1/connectors", json={"name": "x", "kind": "webhook",
                                              "config": {"url": "ftp://hooks.example.com/x"}})
    assert r.status_code == 422 and "http:// and https://" in r.json()["detail"][0]["msg"]


def test_every_address_of_a_name_is_tried(ledgerd, ledgerd_bin, pki, tmp_path):
    """A stock Debian /etc/hosts names localhost ::1 as well as 127.0.0.1, and getaddrinfo gives ::1
    first; a receiver on 127.0.0.1 only must still get the webhook and pass the monitor's check
    (the first address refuses, the next one is tried within the same deadline). ledgerd runs in a
    private mount namespace whose /etc/hosts says so."""
    hosts = tmp_path / "hosts"
    hosts.write_text("::1 localhost\n127.0.0.1 localhost\n")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {hosts} /etc/hosts && getent ahosts localhost"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    assert probe.stdout.split()[0] == "::1", probe.stdout  # the refused address comes first
    wrapper = tmp_path / "ledgerd-hosts"
    wrapper.write_text("#!/bin/sh\n"
                       f"exec unshare -m sh -c 'mount --bind {hosts} /etc/hosts && exec {ledgerd_bin} \"$@\"' sh \"$@\"\n")
    wrapper.chmod(0o755)
    srv = ledgerd(binary=str(wrapper),
                  extra_ini={"analytics": {"webhook_timeout_ms": 2000, "webhook_backoff_ms": 100,
                                           "monitor_check_interval_ms": 1000, "outbound_ca_file": str(pki / "ca.pem")}})
    user = Api(srv.url).register()
    with Receiver(tls=context(pki, "good")) as rx:  # listens on 127.0.0.1 only
        cid = hook(user, rx.url("/named", host="localhost"))
        r = user.post(f"/api/v1/connectors/{cid}/test")
        assert r.status_code == 200 and r.json()["success"] is True, r.text
        assert rx.wait(1)[0][1] == "/named" and rx.sni == ["localhost"]
