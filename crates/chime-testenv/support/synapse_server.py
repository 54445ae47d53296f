#!/usr/bin/env python3
"""A real Matrix homeserver for the tests (Synapse), started by `chime_testenv::synapse`.

Writes a fresh configuration into DIR (SQLite, one client listener on
127.0.0.1 on a free port, no federation, registration closed except through
the shared-secret admin API, rate limits out of the way), runs Synapse in this
process, and once it answers:

- registers two users through `/_synapse/admin/v1/register` (HMAC-SHA1 over
  the server's nonce): `owner`, whose access token it keeps, and `bot`, whose
  password it gives out (the tests log in as `bot` themselves);
- as `owner`, creates a private room with the alias `#reminders:chime.test`
  and invites `bot` (who has not joined);

then prints one line, `ready {json}`, with base_url, server_name, room_id,
room_alias, owner {user_id, access_token} and bot {user, user_id, password}.

It runs until its stdin closes (the test drops the handle, or dies), so no
test has to sleep or kill; Synapse runs in this process, so killing it stops
the server too. Synapse's log is DIR/homeserver.log.

Install (in a virtual environment, since Synapse pins many packages):
  python3 -m venv ~/.cache/chime/synapse
  ~/.cache/chime/synapse/bin/pip install 'matrix-synapse==1.163.2'
and run this script with that environment's python (CHIME_SYNAPSE_PYTHON).
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

SERVER_NAME = "chime.test"
START = 120  # seconds

CONFIG = """\
server_name: "{server_name}"
pid_file: "{dir}/homeserver.pid"
public_baseurl: "http://127.0.0.1:{port}/"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{dir}/homeserver.db"
log_config: "{dir}/log.yaml"
media_store_path: "{dir}/media"
signing_key_path: "{dir}/signing.key"
registration_shared_secret: "{shared_secret}"
enable_registration: false
macaroon_secret_key: "{macaroon}"
form_secret: "{form}"
report_stats: false
enable_metrics: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
presence:
  enabled: false
rc_message: {{per_second: 1000, burst_count: 1000}}
rc_registration: {{per_second: 1000, burst_count: 1000}}
rc_joins:
  local: {{per_second: 1000, burst_count: 1000}}
rc_login:
  address: {{per_second: 1000, burst_count: 1000}}
  account: {{per_second: 1000, burst_count: 1000}}
  failed_attempts: {{per_second: 1000, burst_count: 1000}}
rc_admin_redaction: {{per_second: 1000, burst_count: 1000}}
rc_invites:
  per_room: {{per_second: 1000, burst_count: 1000}}
  per_user: {{per_second: 1000, burst_count: 1000}}
"""

LOG_CONFIG = """\
version: 1
formatters:
  precise:
    format: "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s"
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: "{dir}/homeserver.log"
root:
  level: INFO
  handlers: [file]
disable_existing_loggers: false
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(base, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}")


def register(base, shared_secret, user, password):
    nonce = request(base, "GET", "/_synapse/admin/v1/register")["nonce"]
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), user.encode(), password.encode(), b"notadmin"]))
    return request(
        base,
        "POST",
        "/_synapse/admin/v1/register",
        {
            "nonce": nonce,
            "username": user,
            "password": password,
            "admin": False,
            "mac": mac.hexdigest(),
        },
    )


def set_up(base, shared_secret):
    """Waits for the server, then makes the users and the room; prints `ready`."""
    deadline = time.monotonic() + START
    while True:
        try:
            with urllib.request.urlopen(base + "/_matrix/client/versions", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline:
                print(f"synapse did not answer within {START} s", file=sys.stderr, flush=True)
                os._exit(1)
            time.sleep(0.05)
    owner = register(base, shared_secret, "owner", secrets.token_urlsafe(12))
    bot_password = secrets.token_urlsafe(12)
    bot = register(base, shared_secret, "bot", bot_password)
    room = request(
        base,
        "POST",
        "/_matrix/client/v3/createRoom",
        {
            "preset": "private_chat",
            "room_alias_name": "reminders",
            "name": "Reminders",
            "invite": [bot["user_id"]],
        },
        owner["access_token"],
    )
    facts = {
        "base_url": base,
        "server_name": SERVER_NAME,
        "room_id": room["room_id"],
        "room_alias": f"#reminders:{SERVER_NAME}",
        "owner": {"user_id": owner["user_id"], "access_token": owner["access_token"]},
        "bot": {"user": "bot", "user_id": bot["user_id"], "password": bot_password},
    }
    print("ready " + json.dumps(facts), flush=True)


def stop_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    args = parser.parse_args()
    directory = os.path.abspath(args.directory)
    port = free_port()
    shared_secret = secrets.token_hex(16)
    config_path = os.path.join(directory, "homeserver.yaml")
    with open(config_path, "w") as f:
        f.write(
            CONFIG.format(
                server_name=SERVER_NAME,
                dir=directory,
                port=port,
                shared_secret=shared_secret,
                macaroon=secrets.token_hex(16),
                form=secrets.token_hex(16),
            )
        )
    with open(os.path.join(directory, "log.yaml"), "w") as f:
        f.write(LOG_CONFIG.format(dir=directory))
    # Synapse's key format: algorithm, version, unpadded base64 of the 32-byte seed. Written
    # here rather than with `--generate-keys`, which takes a second start of Synapse.
    seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    with open(os.path.join(directory, "signing.key"), "w") as f:
        f.write(f"ed25519 a_chime {seed}\n")

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    threading.Thread(target=set_up, args=(base, shared_secret), daemon=True).start()

    from synapse.app import homeserver

    # Synapse sends stdout to its log unless told not to; `ready` must reach the test.
    sys.argv = ["synapse", "--config-path", config_path, "--no-redirect-stdio"]
    homeserver.main()


if __name__ == "__main__":
    main()
