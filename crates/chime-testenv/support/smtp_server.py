#!/usr/bin/env python3
"""A real SMTP server for the tests (aiosmtpd), started by `chime_testenv::smtp`.

Listens on 127.0.0.1 (port 0 by default: the OS picks one), prints one line
`ready <port>` on stdout once it accepts connections, and runs until its stdin
closes (the test drops the handle, or dies), so no test has to sleep or kill.

Every accepted message is saved in DIR as `<n>.eml` (the raw bytes received)
and `<n>.json` (envelope and session facts: mail_from, rcpt_tos, auth_login,
tls, peer), numbered from 1 in arrival order; `<n>.json` is written last.

Options:
  --auth USER:PASS      require AUTH (PLAIN or LOGIN, allowed without TLS)
  --rcpt-reply REPLY    answer RCPT with REPLY (`{address}` is replaced by the
                        recipient), e.g. "550 5.1.1 <{address}>: no such user"
  --data-reply REPLY    answer DATA with REPLY instead of accepting the message
  --tls-cert/--tls-key  PEM files; with --implicit-tls the socket speaks TLS
                        from the first byte (smtps), else STARTTLS is offered
                        and required before MAIL

Install: pip install aiosmtpd
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, directory, rcpt_reply, data_reply):
        self.directory = directory
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply.replace("{address}", address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.count += 1
        n = self.count
        with open(os.path.join(self.directory, f"{n}.eml"), "wb") as f:
            f.write(envelope.original_content)
        auth = session.auth_data if session.authenticated else None
        facts = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "peer": list(session.peer) if session.peer else None,
        }
        tmp = os.path.join(self.directory, f"{n}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(facts, f)
        os.replace(tmp, os.path.join(self.directory, f"{n}.json"))
        return f"250 OK queued as chime-test-{n}"


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auth")
    parser.add_argument("--rcpt-reply")
    parser.add_argument("--data-reply")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    args = parser.parse_args()
    # Plain-text AUTH is the point of --auth here; keep the test output quiet.
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    smtp_kwargs = {"hostname": "chime-test-smtp"}
    if args.auth:
        user, _, password = args.auth.partition(":")
        smtp_kwargs.update(
            authenticator=authenticator_for(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if not args.implicit_tls:
            smtp_kwargs.update(tls_context=context, require_starttls=True)

    handler = Saver(args.directory, args.rcpt_reply, args.data_reply)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **smtp_kwargs),
        host="127.0.0.1",
        port=args.port,
        ssl=context if args.implicit_tls else None,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    # Stop when the test closes our stdin (or exits).
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
