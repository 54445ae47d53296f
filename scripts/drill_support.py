"""What Chime's drills (`pg-failover-drill`, `partition-drill`) share: waiting for state in
another process, free ports, PostgreSQL clusters of their own, a webhook receiver, and calls
to Chime's API. Standard library only."""

import collections
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


class DrillError(Exception):
    """The drill could not run (as opposed to: it ran and Chime lost or doubled something)."""


def wait_for(what, check, timeout, every=0.1):
    """Polls `check` until it returns a truthy value, which it returns; fails after `timeout`.
    For state that changes in another process, with no event to subscribe to."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DrillError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_ports(count):
    """Ports that were free a moment ago (never 5432: the machine's own PostgreSQL)."""
    ports, sockets = [], []
    while len(ports) < count:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        sockets.append(s)
        if port != 5432:
            ports.append(port)
    for s in sockets:
        s.close()
    return ports


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class Postgres:
    """One cluster of ours: its data directory, port and log; servers run as `postgres`."""

    def __init__(self, bindir, root, name, port, cluster_name):
        self.bindir = bindir
        self.root = root
        self.name = name
        self.port = port
        self.cluster_name = cluster_name
        self.data = os.path.join(root, name)
        self.log = os.path.join(root, f"{name}.log")

    def as_postgres(self, *args, check=True, timeout=120):
        """Runs a server-side command as the `postgres` user (PostgreSQL refuses root);
        run by another user, the drill runs them as that user."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        out = subprocess.run(
            [*prefix, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
        )
        if check and out.returncode != 0:
            raise DrillError(f"`{' '.join(args)}` failed: {out.stdout.decode(errors='replace')}")
        return out

    def configure(self, settings):
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write("\n# pg-failover-drill\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def start(self):
        self.as_postgres(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log,
                         "-w", "-t", "60", "start")

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def psql(self, sql, database="postgres"):
        out = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
        )
        if out.returncode != 0:
            raise DrillError(f"psql on {self.name}: {out.stderr.decode(errors='replace').strip()}")
        return out.stdout.decode()

    def rows(self, sql, database="chime"):
        return [line.split("\t") for line in self.psql(sql, database).splitlines() if line]

    def stop(self):
        """Stops the server if it runs, and kills what a SIGKILLed postmaster left behind
        (its backends exit on their own when they notice, but not always at once)."""
        if self.postmaster_pid() and os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.as_postgres(os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                             "-m", "immediate", "-w", "-t", "20", "stop", check=False)
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftover_pids(self):
        """Processes of this cluster: its postmaster's children title themselves
        `postgres: CLUSTER_NAME: …`, and the name is unique to this run."""
        prefix = f"postgres: {self.cluster_name}:".encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read().startswith(prefix):
                        pids.append(int(entry))
            except OSError:
                pass
        return pids


def pid_alive(pid):
    """Alive, and not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# The webhook receiver


Hit = collections.namedtuple("Hit", "at webhook_id task_id due client")


class Receiver:
    """Records every POST as a `Hit`: arrival time, webhook-id, task id, due instant and the
    sender's address. It listens on `host`; a POST to a path ending in `/slow` is answered
    after `slow_seconds` (a receiver that takes its time, so that deliveries stay claimed)."""

    def __init__(self, host="127.0.0.1", slow_seconds=0.0):
        self.lock = threading.Lock()
        self.hits = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                at, client = time.time(), self.client_address[0]
                try:
                    data = json.loads(body)["data"]
                    hit = Hit(at, self.headers.get("webhook-id"), data["taskId"], data["dueAt"],
                              client)
                except (ValueError, KeyError, TypeError):
                    hit = Hit(at, self.headers.get("webhook-id"), None, None, client)
                with receiver.lock:
                    receiver.hits.append(hit)
                if self.path.endswith("/slow"):
                    # The scenario: a slow endpoint (not a wait for something).
                    time.sleep(slow_seconds)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.hits)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# Chime


def call(method, url, token=None, body=None, timeout=15):
    """(status, the body parsed as JSON, or None when it is not JSON); status 0 when no answer
    came."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            try:
                return response.status, json.loads(raw)
            except ValueError:
                return response.status, None
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return 0, None


def rfc3339(epoch_seconds):
    millis = int(epoch_seconds * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + \
        f".{millis % 1000:03d}Z"
