#!/usr/bin/python3
"""Hold many idle keep-alive HTTP connections open (for RSS-per-connection measurements).

    conns.py PORT N [PATH]

Opens N connections to 127.0.0.1:PORT (at most 256 connecting at once), sends one
`GET PATH HTTP/1.1` (default /health) on each and reads the response head, then prints
`ready open=K failed=F` and keeps them open until SIGTERM/SIGINT.  On exit it prints
`closed_by_server=C open=K` (connections the server closed while they were held).
Bounded: gives up on establishing after 60 s.
"""

import errno
import resource
import selectors
import signal
import socket
import sys
import time

INFLIGHT = 256
SETUP_SECONDS = 60


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/health"
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    # Blocked from the start and collected with sigwait below, so an early SIGTERM is not lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))

    sel = selectors.DefaultSelector()
    held, failed, opened = [], 0, 0
    deadline = time.monotonic() + SETUP_SECONDS
    while len(held) + failed < n and time.monotonic() < deadline:
        while opened < n and opened - len(held) - failed < INFLIGHT:
            s = socket.socket()
            s.setblocking(False)
            opened += 1
            rc = s.connect_ex(("127.0.0.1", port))
            if rc not in (0, errno.EINPROGRESS):
                failed += 1
                s.close()
                continue
            sel.register(s, selectors.EVENT_WRITE, bytearray())
        for key, _ in sel.select(timeout=1):
            s, buf = key.fileobj, key.data
            ok = True
            if key.events == selectors.EVENT_WRITE:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    ok = False
                else:
                    s.send(req)  # a few dozen bytes always fit an empty send buffer
                    sel.modify(s, selectors.EVENT_READ, buf)
                    continue
            else:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    ok = False
                else:
                    buf += data
                    if b"\r\n\r\n" not in buf:
                        continue
                    ok = buf.startswith(b"HTTP/1.1 2")
            sel.unregister(s)
            if ok:
                held.append(s)
            else:
                failed += 1
                s.close()
    print(f"ready open={len(held)} failed={failed + (n - len(held) - failed)}", flush=True)

    signal.sigwait({signal.SIGTERM, signal.SIGINT})

    closed = 0
    for s in held:
        try:
            while True:
                b = s.recv(65536, socket.MSG_DONTWAIT)
                if not b:
                    closed += 1
                    break
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print(f"closed_by_server={closed} open={len(held) - closed}", flush=True)


if __name__ == "__main__":
    main()
