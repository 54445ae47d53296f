#!/usr/bin/env python3
"""Starts the gateway for real on loopback and checks what it promises, in a few seconds.

nginx runs the committed nginx.conf (rendered by `render` with a self-signed certificate)
in front of three stand-in upstreams in this process: two "definition" instances and one
"web" instance that answer with what they saw. Checked through HTTPS, with the certificate
verified: routing per path and balancing over both definition instances, forwarded headers,
security headers (added where the upstream has none, never doubled), SSE events arriving while
the stream is still open, the body limit, internal paths hidden, retries for GET but never for
POST once sent, the HTTP redirect, the JSON access log without query strings or tokens, and
the per-address request limit.

Usage: smoke.py CERT KEY  (a certificate for 127.0.0.1 and its key). Python 3.9+ stdlib only.
"""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
STREAM = "/api/v1/notifications/stream"
BODY_LIMIT = 64 * 1024
WEB_CSP = "default-src 'self'; img-src 'self' data:"

seen = []  # (instance, method, path, request_id), as the upstreams saw them
seen_lock = threading.Lock()


def instances_for(request_id):
    with seen_lock:
        return [s[0] for s in seen if s[3] == request_id]


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "?"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request_id = self.headers.get("X-Request-Id", "")
        with seen_lock:
            seen.append((self.name, self.command, self.path, request_id))
        if self.path == "/api/v1/flaky" and self.name == "definition-a":
            # The instance dies after reading the request: nothing comes back.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.path == STREAM:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: first\n\n")
            self.wfile.flush()
            time.sleep(1.5)
            self.wfile.write(b"data: second\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        payload = json.dumps(
            {
                "instance": self.name,
                "method": self.command,
                "path": self.path,
                "body_bytes": len(body),
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.name == "web":
            self.send_header("Content-Security-Policy", WEB_CSP)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def start_upstream(name):
    handler = type(name, (Upstream,), {"name": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    def __init__(self, port, cert):
        self.port = port
        self.tls = ssl.create_default_context(cafile=cert)

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.tls, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response, data
        finally:
            conn.close()


results = []


def check(name):
    """Runs the decorated function at once, as one named check."""

    def run(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}")
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            results.append((name, error))
            print(f"FAIL {name}: {error!r}")

    return run


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    cert, key = sys.argv[1], sys.argv[2]
    upstreams = {n: start_upstream(n) for n in ("definition-a", "definition-b", "web")}
    port, http_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="chime-gateway-")
    os.chmod(workdir, 0o755)  # nginx's workers run as nobody when the master is root
    prefix = os.path.join(workdir, "gw")
    address = lambda n: f"127.0.0.1:{upstreams[n].server_address[1]}"  # noqa: E731
    subprocess.run(
        [
            os.path.join(HERE, "render"),
            "--out", prefix,
            "--listen", f"127.0.0.1:{port}",
            "--http-listen", f"127.0.0.1:{http_port}",
            "--cert", cert, "--key", key,
            "--definition", address("definition-a"),
            "--definition", address("definition-b"),
            "--web", address("web"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    os.chmod(prefix, 0o755)
    nginx = subprocess.Popen(
        ["nginx", "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"), "-e", "stderr",
         "-g", "daemon off;"],
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if nginx.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("nginx did not start")
                time.sleep(0.05)
        run_checks(Gateway(port, cert), http_port, prefix)
    finally:
        nginx.terminate()
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
        for server in upstreams.values():
            server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    failed = sum(1 for _, e in results if e)
    print(f"gateway smoke: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def run_checks(gw, http_port, prefix):
    @check("the gateway answers its own health check")
    def _():
        response, body = gw.request("GET", "/_gateway/healthz")
        expect(response.status == 200 and body == b"ok\n", (response.status, body))

    @check("/api/ is balanced over both definition instances")
    def _():
        instances = set()
        for _ in range(6):
            response, body = gw.request("GET", "/api/v1/tasks", headers={"Authorization": "Bearer t"})
            expect(response.status == 200, response.status)
            instances.add(json.loads(body)["instance"])
        expect(instances == {"definition-a", "definition-b"}, instances)

    @check("the upstream gets the token, host, scheme, request id, and the real client address")
    def _():
        response, body = gw.request("GET", "/api/v1/tasks",
                                    headers={"Authorization": "Bearer t", "X-Forwarded-For": "192.0.2.1"})
        seen_headers = json.loads(body)["headers"]
        expect(seen_headers.get("x-forwarded-for") == "127.0.0.1", seen_headers)
        expect(seen_headers.get("authorization") == "Bearer t", seen_headers)
        expect(seen_headers.get("x-forwarded-proto") == "https", seen_headers)
        expect(seen_headers.get("host") == "127.0.0.1", seen_headers)
        expect(seen_headers.get("x-request-id") == response.getheader("X-Request-Id"), seen_headers)

    @check("calendar feeds go to the definition instances")
    def _():
        response, body = gw.request("GET", "/calendar/t.ics")
        expect(response.status == 200, response.status)
        expect(json.loads(body)["instance"].startswith("definition"), body)

    @check("/bff/, / and static files go to the web instance")
    def _():
        for path in ("/bff/home", "/", "/assets/app.js", "/tasks/123"):
            response, body = gw.request("GET", path)
            expect(response.status == 200, (path, response.status))
            expect(json.loads(body)["instance"] == "web", (path, body))

    @check("security headers are added where the upstream has none, never doubled")
    def _():
        response, _ = gw.request("GET", "/api/v1/tasks")
        expect(response.getheader("Strict-Transport-Security") == "max-age=31536000", response.headers)
        expect(response.getheader("X-Content-Type-Options") == "nosniff", response.headers)
        expect(response.getheader("X-Frame-Options") == "DENY", response.headers)
        expect(response.getheader("Referrer-Policy") == "no-referrer", response.headers)
        expect("default-src 'self'" in (response.getheader("Content-Security-Policy") or ""), response.headers)
        expect(response.getheader("Server") == "nginx", response.getheader("Server"))  # no version
        response, _ = gw.request("GET", "/")
        expect(response.headers.get_all("Content-Security-Policy") == [WEB_CSP], response.headers)

    @check("SSE events arrive while the stream is still open")
    def _():
        conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=gw.tls, timeout=10)
        started = time.monotonic()
        conn.request("GET", STREAM, headers={"Accept": "text/event-stream"})
        response = conn.getresponse()
        expect(response.status == 200, response.status)
        expect(response.getheader("Content-Type") == "text/event-stream", response.headers)
        first = response.readline() + response.readline()
        first_after = time.monotonic() - started
        rest = response.read()
        total = time.monotonic() - started
        conn.close()
        expect(first == b"data: first\n\n", first)
        expect(b"data: second" in rest, rest)
        # The upstream holds the stream 1.5 s between the events: a buffering proxy would
        # deliver the first only with the second.
        expect(first_after < 1.0 and total >= 1.4, (first_after, total))

    @check("a body at the limit passes; one byte over is refused at the gateway")
    def _():
        response, body = gw.request("POST", "/api/v1/tasks", body=b"x" * BODY_LIMIT,
                                    headers={"Content-Type": "application/json"})
        expect(response.status == 200 and json.loads(body)["body_bytes"] == BODY_LIMIT, response.status)
        response, _ = gw.request("POST", "/api/v1/tasks", body=b"x" * (BODY_LIMIT + 1),
                                 headers={"Content-Type": "application/json"})
        expect(response.status == 413, response.status)
        expect(response.getheader("X-Content-Type-Options") == "nosniff", response.headers)
        rid = response.getheader("X-Request-Id")
        expect(instances_for(rid) == [], instances_for(rid))

    @check("/healthz, /readyz and /metrics are not reachable through the gateway")
    def _():
        for path in ("/healthz", "/readyz", "/metrics"):
            response, _ = gw.request("GET", path)
            expect(response.status == 404, (path, response.status))
            expect(instances_for(response.getheader("X-Request-Id")) == [], path)

    @check("a GET is retried on the other instance; a POST that reached one is not")
    def _():
        posts_lost = gets_retried = 0
        for _ in range(6):  # until definition-a has seen one of each
            if not posts_lost:
                response, _ = gw.request("POST", "/api/v1/flaky", body=b"{}")
                got = instances_for(response.getheader("X-Request-Id"))
                if got == ["definition-a"]:
                    expect(response.status == 502, response.status)
                    posts_lost += 1
                else:
                    expect(got == ["definition-b"] and response.status == 200, (got, response.status))
            if not gets_retried:
                response, _ = gw.request("GET", "/api/v1/flaky")
                expect(response.status == 200, response.status)
                got = instances_for(response.getheader("X-Request-Id"))
                if got == ["definition-a", "definition-b"]:
                    gets_retried += 1
                else:
                    expect(got == ["definition-b"], got)
        expect(posts_lost and gets_retried, (posts_lost, gets_retried))

    @check("plain HTTP redirects to HTTPS, keeping path and query")
    def _():
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        conn.request("GET", "/tasks?x=1")
        response = conn.getresponse()
        response.read()
        conn.close()
        expect(response.status == 301, response.status)
        expect(response.getheader("Location") == f"https://127.0.0.1:{gw.port}/tasks?x=1",
               response.getheader("Location"))

    @check("the access log is JSON without query strings or tokens")
    def _():
        gw.request("GET", "/bff/search?q=dentist%20appointment&email=someone%40example.com",
                   headers={"Authorization": "Bearer secret-token", "Cookie": "session=secret-cookie"})
        # Capabilities in the path: an action link and a calendar feed URL.
        gw.request("GET", "/act/secret-action-token")
        gw.request("GET", "/calendar/secret-feed-token.ics")
        path = os.path.join(prefix, "logs", "access.json")
        deadline = time.monotonic() + 2
        while True:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if "/bff/search" in text or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        lines = [json.loads(line) for line in text.splitlines()]
        expect(any(line["path"] == "/bff/search" for line in lines), "request not logged")
        expect(any(line["path"] == "/calendar/[redacted]" for line in lines), "feed not logged")
        for secret in ("dentist", "someone", "secret-token", "secret-cookie", "q=",
                       "secret-action-token", "secret-feed-token"):
            expect(secret not in text, f"{secret!r} in the access log")

    @check("one address past the request limit gets 429")
    def _():
        statuses = []
        limited = threading.Event()

        def client():
            conn = http.client.HTTPSConnection("127.0.0.1", gw.port, context=gw.tls, timeout=10)
            for _ in range(100):
                if limited.is_set():
                    break
                conn.request("GET", "/api/v1/tasks")
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
                if response.status == 429:
                    limited.set()
            conn.close()

        # Faster than the 50/s rate, from ten connections: the burst of 100 runs out within a
        # few hundred requests even on a loaded machine (up to 1,000 are sent).
        clients = [threading.Thread(target=client) for _ in range(10)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        expect(429 in statuses and 200 in statuses, (len(statuses), sorted(set(statuses))))

if __name__ == "__main__":
    main()
