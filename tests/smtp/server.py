#!/usr/bin/env python3
"""Scriptable SMTP test server for pressroom's integration tests.

A thin layer over aiosmtpd (a third-party SMTP implementation): aiosmtpd
speaks the protocol, this file only stores what it accepts and injects the
failures listed in a rules file. See tests/smtp/README.md.

Usage:
    python3 tests/smtp/server.py --port 0 --maildir DIR [--rules FILE]
                                 [--ignore-stdin]
                                 [--tls starttls|implicit --tls-cert PEM --tls-key PEM]
                                 [--auth USER:PASSWORD [--auth-exclude PLAIN]]
                                 [--no-smtputf8]

--tls starttls: STARTTLS is offered and required before MAIL. --tls implicit:
TLS from the first byte (port 465 style). --auth: AUTH PLAIN and LOGIN with
this one user, required before MAIL, offered only over TLS.

stdout: exactly one line, "READY <port>", once the socket listens.
stderr: one line per event (connect, helo, mail, rcpt verdict, accepted
        message, data reject, drop, disconnect, errors).
Exit:   0 on SIGTERM/SIGINT or when stdin reaches EOF; 2 on bad usage or an
        invalid rules file at start-up; 3 if aiosmtpd is not installed.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:  # pragma: no cover - reported to the test, not hidden
    sys.stderr.write(
        "smtp-server: python module 'aiosmtpd' is missing for %s; "
        "run: bash .ci/install-test-tools.sh\n" % sys.executable
    )
    sys.exit(3)

HOSTNAME = "pressroom-test-smtp.localhost"  # fixed: avoids a DNS lookup
# Lines in DATA may be this long (aiosmtpd's default is RFC 5321's 1001, which
# would reject long lines with "500 Line too long"). The stored message records
# its longest line, so tests can still assert RFC 5322's 998-octet limit.
MAX_LINE = 1024 * 1024
DATA_SIZE_LIMIT = 64 * 1024 * 1024

RULE_KEYS = {"rcpt", "drop_after_messages", "drop_mode", "delay_ms", "byte_ms",
             "data_code", "close_after_accepting"}
RCPT_KEYS = {"code", "times"}

RCPT_TEXT = {
    421: "421 4.3.0 Service not available (scripted)",
    450: "450 4.2.1 Mailbox unavailable (scripted)",
    451: "451 4.7.1 Try again later",
    452: "452 4.5.3 Too many recipients (scripted)",
    550: "550 5.1.1 No such user",
    551: "551 5.1.6 User not local (scripted)",
    552: "552 5.2.2 Mailbox full (scripted)",
    553: "553 5.1.3 Mailbox name not allowed (scripted)",
    554: "554 5.7.1 Recipient rejected (scripted)",
}
DATA_TEXT = {
    421: "421 4.3.0 Service not available, closing channel (scripted)",
    451: "451 4.3.0 Local error in processing (scripted)",
    452: "452 4.3.1 Insufficient system storage (scripted)",
    550: "550 5.7.1 Message rejected (scripted)",
    552: "552 5.3.4 Message too big (scripted)",
    554: "554 5.6.0 Transaction failed (scripted)",
}


def reply_text(table, code):
    if code in table:
        return table[code]
    if 400 <= code < 500:
        return "%d 4.0.0 Temporary failure (scripted)" % code
    return "%d 5.0.0 Permanent failure (scripted)" % code


def log(event, **fields):
    parts = ["smtp-server[%d]" % os.getpid(),
             time.strftime("%H:%M:%S") + ".%03d" % (int(time.time() * 1000) % 1000),
             event]
    for key, value in fields.items():
        if isinstance(value, str) and (not value or any(c in value for c in " \t\r\n=\"")):
            value = json.dumps(value)
        parts.append("%s=%s" % (key, value))
    try:
        sys.stderr.write(" ".join(parts) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr gone: keep serving


class RulesError(Exception):
    pass


def _int(value, what, lo=None, hi=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesError("%s must be an integer, got %r" % (what, value))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise RulesError("%s must be in %s..%s, got %r" % (what, lo, hi, value))
    return value


def parse_rules(text):
    """Validates a rules document strictly (a typo must not silently mean
    'accept everything') and returns it in normalised form."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise RulesError("not valid JSON: %s" % e)
    if not isinstance(doc, dict):
        raise RulesError("top level must be a JSON object")
    unknown = [k for k in doc if k not in RULE_KEYS and not k.startswith("_")]
    if unknown:
        raise RulesError("unknown key(s) %s; allowed: %s (or keys starting with '_')"
                         % (unknown, sorted(RULE_KEYS)))
    rules = {"rcpt": {}, "drop_after_messages": None, "drop_mode": "reset",
             "delay_ms": 0, "byte_ms": 0, "data_code": None,
             "close_after_accepting": None}
    rcpt = doc.get("rcpt") or {}
    if not isinstance(rcpt, dict):
        raise RulesError("rcpt must be an object of address -> {code, times}")
    for addr, rule in rcpt.items():
        if not isinstance(rule, dict):
            raise RulesError("rcpt[%r] must be an object" % addr)
        bad = [k for k in rule if k not in RCPT_KEYS and not k.startswith("_")]
        if bad:
            raise RulesError("rcpt[%r]: unknown key(s) %s" % (addr, bad))
        if "code" not in rule:
            raise RulesError("rcpt[%r]: missing code" % addr)
        r = {"code": _int(rule["code"], "rcpt[%r].code" % addr, 400, 599), "times": None}
        if rule.get("times") is not None:
            r["times"] = _int(rule["times"], "rcpt[%r].times" % addr, 0)
        rules["rcpt"][addr.lower()] = r
    if doc.get("drop_after_messages") is not None:
        rules["drop_after_messages"] = _int(doc["drop_after_messages"], "drop_after_messages", 0)
    if doc.get("drop_mode") is not None:
        if doc["drop_mode"] not in ("reset", "close"):
            raise RulesError("drop_mode must be \"reset\" or \"close\"")
        rules["drop_mode"] = doc["drop_mode"]
    if doc.get("delay_ms") is not None:
        rules["delay_ms"] = _int(doc["delay_ms"], "delay_ms", 0, 600000)
    if doc.get("byte_ms") is not None:
        rules["byte_ms"] = _int(doc["byte_ms"], "byte_ms", 0, 600000)
    if doc.get("data_code") is not None:
        rules["data_code"] = _int(doc["data_code"], "data_code", 400, 599)
    if doc.get("close_after_accepting") is not None:
        rules["close_after_accepting"] = _int(doc["close_after_accepting"],
                                              "close_after_accepting", 1)
    return rules


def load_rules(path):
    """Missing path or file = accept everything."""
    if path is None:
        return parse_rules("{}")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except FileNotFoundError:
        return parse_rules("{}")
    except (OSError, UnicodeDecodeError) as e:
        raise RulesError("cannot read %s: %s" % (path, e))
    return parse_rules(text)


class State:
    """Server-lifetime state, shared by all sessions."""

    def __init__(self, maildir, rules_path):
        self.maildir = maildir
        self.rules_path = rules_path
        self.session_seq = 0
        self.message_seq = 0      # accepted messages (DATA answered 250)
        self.rcpt_attempts = {}   # lower-cased address -> RCPT attempts seen
        self.drops_done = set()   # drop_after_messages values that have fired


class Handler:
    """aiosmtpd handler hooks (the 'server' argument is the TestSMTP session)."""

    def __init__(self, state):
        self.state = state

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        log("helo", session=server.session_no, name=hostname, esmtp=True)
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        log("helo", session=server.session_no, name=hostname, esmtp=False)
        return "250 %s" % server.hostname

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        log("mail", session=server.session_no, mail_from=address,
            options=",".join(mail_options) or "-")
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        key = address.lower()
        rule = server.rules["rcpt"].get(key)
        attempt = self.state.rcpt_attempts.get(key, 0) + 1
        self.state.rcpt_attempts[key] = attempt
        if rule is not None and (rule["times"] is None or attempt <= rule["times"]):
            status = reply_text(RCPT_TEXT, rule["code"])
            log("rcpt", session=server.session_no, to=address, attempt=attempt,
                verdict=status[:3], reply=status)
            return status
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        log("rcpt", session=server.session_no, to=address, attempt=attempt, verdict=250)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        rules, state = server.rules, self.state
        content = envelope.original_content  # bytes, dot-unstuffed, CRLF kept
        threshold = rules["drop_after_messages"]
        if (threshold is not None and threshold not in state.drops_done
                and state.message_seq >= threshold):
            state.drops_done.add(threshold)
            log("drop", session=server.session_no, after_messages=state.message_seq,
                mode=rules["drop_mode"], bytes=len(content))
            server.drop_connection(rules["drop_mode"])
            # Ends this session's task without a reply (aiosmtpd's own
            # connection-lost path); nothing is stored.
            raise asyncio.CancelledError()
        if rules["data_code"] is not None:
            status = reply_text(DATA_TEXT, rules["data_code"])
            log("data-reject", session=server.session_no, code=rules["data_code"],
                reply=status, bytes=len(content))
            return status
        state.message_seq += 1
        msg_id = "m%06d" % state.message_seq
        self._store(server, session, envelope, msg_id, content)
        log("accepted", session=server.session_no, id=msg_id, bytes=len(content),
            mail_from=envelope.mail_from, rcpt_to=",".join(envelope.rcpt_tos))
        server.accepted_here += 1
        limit = rules["close_after_accepting"]
        if limit is not None and server.accepted_here >= limit:
            server.close_after_reply = True
        return "250 2.0.0 OK queued as %s" % msg_id

    def _store(self, server, session, envelope, msg_id, content):
        lines = content.split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        received_at = time.time()
        tmp = os.path.join(self.state.maildir, "tmp")
        new = os.path.join(self.state.maildir, "new")
        for idx, rcpt in enumerate(envelope.rcpt_tos, 1):
            # Names sort in acceptance order within one server run.
            base = "%s-r%02d-%d-%d" % (msg_id, idx, os.getpid(), time.time_ns())
            meta = {
                "message_id": msg_id,
                # aiosmtpd reports the null reverse-path MAIL FROM:<> as "<>".
                "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
                "rcpt_to": [rcpt],
                "envelope_rcpt_to": list(envelope.rcpt_tos),
                "mail_options": list(envelope.mail_options),
                "rcpt_options": list(envelope.rcpt_options),
                "helo": session.host_name,
                "session": server.session_no,
                "tls": server.encrypted(),
                "auth_user": (session.auth_data.login.decode("utf-8", "replace")
                              if isinstance(session.auth_data, LoginPassword) else None),
                "received_at": received_at,
                "size": len(content),
                "longest_line": max((len(l) for l in lines), default=0),
                "eml": base + ".eml",
            }
            # .json first, then .eml: whoever sees the .eml also sees the .json.
            for ext, data in ((".json", json.dumps(meta, indent=1).encode() + b"\n"),
                              (".eml", content)):
                tmp_path = os.path.join(tmp, base + ext)
                with open(tmp_path, "wb") as f:
                    f.write(data)
                os.replace(tmp_path, os.path.join(new, base + ext))


def authenticator_for(user, password):
    """aiosmtpd authenticator: one fixed user and password, PLAIN or LOGIN."""
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode() and auth_data.password == password.encode())
        login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data, LoginPassword) else "?"
        log("auth", session=server.session_no, mechanism=mechanism, user=login,
            tls=server.encrypted(), verdict="235" if ok else "535")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


class TestSMTP(SMTP):
    line_length_limit = MAX_LINE  # also the StreamReader limit (read in __init__)

    def __init__(self, handler, state, tls=None, tls_context=None, auth=None,
                 auth_exclude=(), smtputf8=True):
        options = {}
        if tls == "starttls":
            options.update(tls_context=tls_context, require_starttls=True)
        if auth is not None:
            # Over implicit TLS aiosmtpd does not know the socket is encrypted, so
            # "AUTH only over TLS" is ours to say there: the whole connection is.
            options.update(authenticator=authenticator_for(*auth), auth_required=True,
                           auth_require_tls=(tls != "implicit"),
                           auth_exclude_mechanism=list(auth_exclude))
        super().__init__(handler, hostname=HOSTNAME, ident="pressroom-test-smtp",
                         enable_SMTPUTF8=smtputf8, decode_data=False,
                         data_size_limit=DATA_SIZE_LIMIT, timeout=300, **options)
        self.implicit_tls = tls == "implicit"
        self.state = state
        state.session_seq += 1
        self.session_no = state.session_seq
        self.rules = None
        self._dropped = False
        self._continuing = False
        self.accepted_here = 0         # messages accepted in this session
        self.close_after_reply = False  # close_after_accepting reached

    async def _handle_client(self):
        # Rules are read once per session, before the greeting. A rules file
        # caught half-written is retried briefly; an invalid one makes the
        # session fail loudly (connection closed) instead of accepting mail.
        last_error = None
        for _ in range(10):
            try:
                self.rules = load_rules(self.state.rules_path)
                break
            except RulesError as e:
                last_error = e
                await asyncio.sleep(0.02)
        peer = self.session.peer
        log("connect", session=self.session_no,
            peer="%s:%s" % (peer[0], peer[1]) if peer else "?")
        if self.rules is None:
            log("rules-error", session=self.session_no, path=self.state.rules_path,
                error=str(last_error), action="closing connection")
            self.drop_connection("reset")
            return
        await super()._handle_client()

    async def push(self, status):
        # delay_ms: once per reply, i.e. not again before the continuation
        # lines of a multi-line reply (EHLO's "250-..." lines).
        delay = self.rules["delay_ms"] if self.rules else 0
        if delay and not self._continuing:
            await asyncio.sleep(delay / 1000.0)
        text = status if isinstance(status, str) else status.decode("utf-8", "replace")
        self._continuing = text[3:4] == "-"
        if self._dropped:
            return
        byte_ms = self.rules["byte_ms"] if self.rules else 0
        if not byte_ms:
            await super().push(status)
            self._close_if_due()
            return
        # A server that answers a byte at a time (byte_ms apart), the greeting included.
        response = status.encode("utf-8") if isinstance(status, str) else status
        for b in response + b"\r\n":
            if self._dropped or self.transport is None or self.transport.is_closing():
                return
            self._writer.write(bytes([b]))
            await self._writer.drain()
            await asyncio.sleep(byte_ms / 1000.0)
        self._close_if_due()

    def _close_if_due(self):
        # close_after_accepting: the 250 is on its way, then a plain FIN, as a server
        # with a per-connection message limit or a short idle timeout does. The client
        # learns of it only when it next uses the connection.
        if self.close_after_reply and self.transport is not None:
            self.close_after_reply = False
            log("close", session=self.session_no, accepted=self.accepted_here)
            self.transport.close()

    def encrypted(self):
        return self.implicit_tls or self._tls_protocol is not None

    def drop_connection(self, mode):
        self._dropped = True
        transport = self.transport
        if transport is None:
            return
        if mode == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:  # SO_LINGER 0: close() sends RST instead of FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                except OSError:
                    pass
        transport.abort()  # close now, discarding anything not yet sent

    def connection_lost(self, error):
        log("disconnect", session=self.session_no,
            reason="dropped" if self._dropped else (type(error).__name__ if error else "closed"))
        super().connection_lost(error)


def watch_stdin(loop, stop):
    """Ends the server when stdin reaches EOF (the spawning test is gone)."""
    def run():
        try:
            while os.read(0, 65536):
                pass
            reason = "stdin closed"
        except OSError as e:
            reason = "stdin unreadable: %s" % e
        loop.call_soon_threadsafe(stop, reason)
    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


async def serve(args, state):
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()

    def stop(reason):
        if not stopped.done():
            stopped.set_result(reason)

    for signame in ("SIGTERM", "SIGINT"):
        loop.add_signal_handler(getattr(signal, signame), stop, signame)

    handler = Handler(state)
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    server = await loop.create_server(
        lambda: TestSMTP(handler, state, tls=args.tls, tls_context=context, auth=auth,
                         auth_exclude=args.auth_exclude, smtputf8=not args.no_smtputf8),
        host="127.0.0.1", port=args.port,
        ssl=context if args.tls == "implicit" else None)
    port = server.sockets[0].getsockname()[1]
    log("listening", host="127.0.0.1", port=port, maildir=state.maildir,
        rules=state.rules_path or "-", tls=args.tls or "-",
        auth="required" if args.auth else "-")
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()
    if not args.ignore_stdin:
        watch_stdin(loop, stop)

    reason = await stopped
    log("stopping", reason=reason, accepted=state.message_seq)
    server.close()
    # Open sessions are cancelled when asyncio.run() returns.
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description="Scriptable aiosmtpd test server")
    p.add_argument("--port", type=int, required=True, help="0 = pick a free port")
    p.add_argument("--maildir", required=True,
                   help="messages go to DIR/new (written via DIR/tmp)")
    p.add_argument("--rules", help="JSON rules file, re-read at every session")
    p.add_argument("--ignore-stdin", action="store_true",
                   help="do not exit when stdin closes (manual runs with </dev/null)")
    p.add_argument("--tls", choices=("starttls", "implicit"),
                   help="starttls: offer and require STARTTLS; implicit: TLS from the first byte")
    p.add_argument("--tls-cert", help="server certificate chain (PEM), with --tls")
    p.add_argument("--tls-key", help="its private key (PEM), with --tls")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="require AUTH (PLAIN or LOGIN) as this user before MAIL")
    p.add_argument("--auth-exclude", action="append", default=[], metavar="MECHANISM",
                   help="do not offer this AUTH mechanism (e.g. PLAIN, to test LOGIN)")
    p.add_argument("--no-smtputf8", action="store_true",
                   help="do not advertise SMTPUTF8 (RFC 6531) in the EHLO reply")
    args = p.parse_args(argv)
    if args.tls and not (args.tls_cert and args.tls_key):
        p.error("--tls needs --tls-cert and --tls-key")
    if args.auth and ":" not in args.auth:
        p.error("--auth wants USER:PASSWORD")

    maildir = os.path.abspath(args.maildir)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    rules_path = os.path.abspath(args.rules) if args.rules else None
    try:
        load_rules(rules_path)  # fail fast on a bad file given at start-up
    except RulesError as e:
        sys.stderr.write("smtp-server: invalid rules file %s: %s\n" % (rules_path, e))
        return 2
    state = State(maildir, rules_path)
    return asyncio.run(serve(args, state))


if __name__ == "__main__":
    sys.exit(main())
