#!/usr/bin/env python3
"""A throwaway SMTP server for tests: aiosmtpd on 127.0.0.1, a port chosen by the OS.

It prints one JSON line when it listens, then one JSON line per message it accepts,
to stdout (flushed at once) and, with --out FILE, appended to FILE as well:

    {"event": "listening", "host": "127.0.0.1", "port": 40123, "starttls": false, "auth": false}
    {"event": "message", "seq": 1, "mail_from": "keysmith@example.test",
     "rcpt_tos": ["alice@example.test"], "tls": false, "auth_login": null,
     "helo": "keysmith.local", "headers": {"Subject": "...", ...},
     "text": "the decoded text/plain part, LF line endings",
     "raw": "the message as received (CRLF, still encoded)"}

Options (all optional):
  --out FILE           also append every JSON line to FILE
  --tls-cert/--tls-key offer STARTTLS with this certificate (PEM)
  --require-starttls   refuse MAIL before STARTTLS
  --auth USER:PASS     offer AUTH PLAIN/LOGIN and accept only these credentials
                       (allowed over plain text on loopback; with --require-starttls
                       only after STARTTLS)
  --fail-first N       answer the first N messages with 451 (a temporary failure),
                       to test the sender's retries
  --reject-rcpt ADDR   answer RCPT TO:<ADDR> with 550 (repeatable)
  --stdin-lifeline     exit when stdin closes (a parent holding a piped stdin)
  --lifetime SECONDS   exit after this long whatever happens (default 600)

Requires aiosmtpd (tested with 1.4.6 on Python 3.11). SIGTERM and SIGINT stop it.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "Content-Type",
           "Content-Transfer-Encoding", "MIME-Version", "Auto-Submitted")


def emit(record, out):
    line = json.dumps(record, ensure_ascii=False)
    print(line, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def text_of(message):
    """The decoded text/plain part (quoted-printable and base64 undone), or None."""
    part = message.get_body(preferencelist=("plain",)) if message.is_multipart() else message
    if part is None or part.get_content_type() != "text/plain":
        return None
    try:
        return part.get_content().replace("\r\n", "\n")
    except (LookupError, ValueError):
        return None


class Sink:
    def __init__(self, args):
        self.args = args
        self.seq = 0
        self.failures_left = args.fail_first

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.args.reject_rcpt:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.failures_left > 0:
            self.failures_left -= 1
            return "451 4.3.0 Temporary failure, try again later"
        self.seq += 1
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        login = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        emit({
            "event": "message",
            "seq": self.seq,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": session.ssl is not None,
            "auth_login": login,
            "helo": session.host_name,
            "headers": {h: str(message[h]) for h in HEADERS if message[h] is not None},
            "text": text_of(message),
            "raw": raw.decode("utf-8", "replace"),
        }, self.args.out)
        return "250 2.0.0 Message accepted"


def authenticator_for(credentials):
    user, _, password = credentials.partition(":")

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        # handled=False: aiosmtpd answers a failure itself (535); True would leave
        # the client waiting for a reply.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


async def main(args):
    # aiosmtpd logs a deprecation warning of its own on every AUTH; keep stderr quiet.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    loop = asyncio.get_running_loop()
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    handler = Sink(args)

    def protocol():
        return SMTP(
            handler,
            # Named here: without it aiosmtpd calls socket.getfqdn(), a DNS look-up.
            hostname="keysmith-test-sink",
            tls_context=tls_context,
            require_starttls=args.require_starttls,
            authenticator=authenticator_for(args.auth) if args.auth else None,
            # AUTH is offered over plain text only with --auth (loopback tests);
            # without --auth it is not offered before STARTTLS.
            auth_require_tls=args.require_starttls if args.auth else True,
            timeout=30,
            loop=loop,
        )

    server = await loop.create_server(protocol, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.stdin_lifeline:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def watch_stdin():
            while await reader.read(4096):
                pass
            stop.set()

        loop.create_task(watch_stdin())
    emit({"event": "listening", "host": "127.0.0.1", "port": port,
          "starttls": tls_context is not None, "auth": bool(args.auth)}, args.out)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.lifetime)
    except asyncio.TimeoutError:
        pass
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--reject-rcpt", action="append", default=[], type=str.lower)
    p.add_argument("--stdin-lifeline", action="store_true")
    p.add_argument("--lifetime", type=float, default=600)
    arguments = p.parse_args()
    if bool(arguments.tls_cert) != bool(arguments.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if arguments.require_starttls and not arguments.tls_cert:
        p.error("--require-starttls needs --tls-cert and --tls-key")
    asyncio.run(main(arguments))
