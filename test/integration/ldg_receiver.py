"""A local HTTP receiver for webhook and uptime-check tests.

    rx = Receiver()                 # listens on 127.0.0.1:<free port>, in a thread
    rx.url("/hook")                 # http://127.0.0.1:<port>/hook
    rx.plan = [500, 500]            # statuses for the next requests, then rx.status (default 200)
    rx.wait(2, timeout=10)          # the first 2 requests [(method, path, headers, body, t)]
    rx.close()
    Receiver(tls=ssl_context)       # https: the context's certificate; rx.sni lists the SNI names seen (None: none sent)

Also a context manager. Nothing here asserts.
"""

import http.server
import threading
import time


class Receiver:
    def __init__(self, tls=None):
        self.requests = []
        self.sni = []
        self.tls = tls
        self.plan = []
        self.status = 200
        self.delay = 0.0
        self.cond = threading.Condition()
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with rx.cond:
                    status = rx.plan.pop(0) if rx.plan else rx.status
                    rx.requests.append((self.command, self.path, dict(self.headers), body, time.time()))
                    rx.cond.notify_all()
                if rx.delay:
                    time.sleep(rx.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = _any

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/", host="127.0.0.1"):
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def wait(self, n, timeout=10.0):
        end = time.time() + timeout
        with self.cond:
            while len(self.requests) < n and time.time() < end:
                self.cond.wait(max(0.01, end - time.time()))
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class SmtpSink:
    """A minimal SMTP server that accepts every message: rx.messages = [(mail_from, [rcpt], data)]."""

    def __init__(self):
        import socketserver

        self.messages = []
        self.cond = threading.Condition()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                w = self.wfile
                w.write(b"220 sink ESMTP\r\n")
                frm, rcpt = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode().strip()
                    up = cmd.upper()
                    if up.startswith("EHLO") or up.startswith("HELO"):
                        w.write(b"250-sink\r\n250 8BITMIME\r\n")
                    elif up.startswith("MAIL FROM:"):
                        frm = cmd[10:].strip("<>")
                        w.write(b"250 ok\r\n")
                    elif up.startswith("RCPT TO:"):
                        rcpt.append(cmd[8:].strip("<>"))
                        w.write(b"250 ok\r\n")
                    elif up == "DATA":
                        w.write(b"354 go\r\n")
                        data = []
                        while True:
                            d = self.rfile.readline()
                            if not d or d == b".\r\n":
                                break
                            data.append(d)
                        with sink.cond:
                            sink.messages.append((frm, rcpt, b"".join(data).decode()))
                            sink.cond.notify_all()
                        w.write(b"250 queued\r\n")
                    elif up == "QUIT":
                        w.write(b"221 bye\r\n")
                        return
                    else:
                        w.write(b"500 what\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n, timeout=10.0):
        end = time.time() + timeout
        with self.cond:
            while len(self.messages) < n and time.time() < end:
                self.cond.wait(max(0.01, end - time.time()))
            return list(self.messages)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
