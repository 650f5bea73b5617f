#!/usr/bin/env python3
"""Self-test of tests/smtp/server.py with a different SMTP client (smtplib).

Usage: python3 tests/smtp/selftest.py [-v]
Starts the server as a child process (stdin piped, like the Rust tests do),
checks accept / store / rules / drop / shutdown behaviour, prints one line per
check and a closing "N passed, N failed" line; exit 0 only if all passed.
-v also prints the server's stderr log at the end.
"""

import glob
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")
VERBOSE = "-v" in sys.argv[1:]

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   - %s%s" % (name, (": " + detail) if detail else ""))
    else:
        failed += 1
        print("FAIL - %s%s" % (name, (": " + detail) if detail else ""))
    sys.stdout.flush()


class Server:
    def __init__(self, root, name, rules=None, options=()):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.maildir = os.path.join(self.dir, "mail")
        self.rules_path = os.path.join(self.dir, "rules.json")
        if rules is not None:
            self.set_rules(rules)
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port", "0", "--maildir", self.maildir,
             "--rules", self.rules_path, *options],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.ready_line = self.proc.stdout.readline()  # blocks until READY
        m = re.fullmatch(rb"READY (\d+)\n", self.ready_line)
        if not m:
            raise SystemExit("server did not print READY: %r (log: %s)"
                             % (self.ready_line, open(self.log_path, "rb").read()))
        self.port = int(m.group(1))

    def set_rules(self, rules):
        # Atomic replace, so a session never reads a half-written file.
        tmp = self.rules_path + ".tmp"
        with open(tmp, "w") as f:
            if isinstance(rules, str):
                f.write(rules)
            else:
                json.dump(rules, f)
        os.replace(tmp, self.rules_path)

    def client(self):
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="selftest.localhost",
                            timeout=10)

    def send(self, msg, rcpts, sender="press@pressroom.example"):
        with self.client() as c:
            return c.sendmail(sender, rcpts, msg)

    def emls(self):
        return sorted(glob.glob(os.path.join(self.maildir, "new", "*.eml")))

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "timeout"
        self.log.close()
        return rc

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def crlf(*lines):
    return b"".join(l + b"\r\n" for l in lines)


def main():
    root = tempfile.mkdtemp(prefix="smtp-selftest-")
    servers = []

    # ---- server A: accept, storage, rcpt rules, data_code, delay ----------
    a = Server(root, "a")  # no rules file yet = accept everything
    servers.append(a)
    check("READY line is exactly 'READY <port>\\n'",
          re.fullmatch(rb"READY [1-9]\d*\n", a.ready_line) is not None,
          repr(a.ready_line))

    long_line = b"L" * 2000
    msg1 = crlf(b"From: Press Office <press@pressroom.example>",
                b"To: journalist@example.org",
                b"Subject: Selftest 1",
                b"Message-ID: <selftest-1@pressroom.example>",
                b"MIME-Version: 1.0",
                b"Content-Type: text/plain; charset=utf-8",
                b"Content-Transfer-Encoding: 8bit",
                b"",
                b"First line.",
                b".",
                b"..two dots",
                b".leading dot",
                long_line,
                b"caf\xc3\xa9 \xe2\x80\x94 UTF-8",
                b"",
                b"Last line.")
    refused = a.send(msg1, ["journalist@example.org", "Editor@Example.ORG"])
    check("normal send: no recipient refused", refused == {}, repr(refused))
    files = a.emls()
    check("one .eml per (message, recipient)", len(files) == 2, repr(files))
    bodies = [open(f, "rb").read() for f in files]
    check("stored .eml bytes == bytes given to sendmail (CRLF, '.', '..', 2000-char line)",
          all(b == msg1 for b in bodies),
          "%d bytes each" % len(msg1) if all(b == msg1 for b in bodies) else
          "first diff at %r" % next((i for i, (x, y) in enumerate(zip(bodies[0], msg1)) if x != y), None))
    check("stored .eml uses CRLF line ends only",
          all(b.count(b"\n") == b.count(b"\r\n") for b in bodies))
    metas = [json.load(open(f[:-4] + ".json")) for f in files]
    check("sidecar .json beside each .eml", len(metas) == 2)
    check("json mail_from", all(m["mail_from"] == "press@pressroom.example" for m in metas))
    check("json rcpt_to is this copy's recipient",
          sorted(m["rcpt_to"][0] for m in metas) == ["Editor@Example.ORG", "journalist@example.org"],
          repr([m["rcpt_to"] for m in metas]))
    check("json envelope_rcpt_to lists the whole transaction",
          all(m["envelope_rcpt_to"] == ["journalist@example.org", "Editor@Example.ORG"] for m in metas))
    check("json received_at is a float near now",
          all(isinstance(m["received_at"], float) and abs(m["received_at"] - time.time()) < 60
              for m in metas))
    check("json longest_line counts the 2000-char line", metas[0]["longest_line"] == 2000,
          str(metas[0]["longest_line"]))
    check("json mail_options carries smtplib's ESMTP parameters",
          isinstance(metas[0]["mail_options"], list), repr(metas[0]["mail_options"]))
    check("maildir tmp/ is empty after delivery",
          os.listdir(os.path.join(a.maildir, "tmp")) == [])

    # Line-end edge cases (documented, not "fixed" by the server).
    msg_noeol = b"Subject: no final CRLF\r\n\r\nbody without newline"
    a.send(msg_noeol, ["edge@example.org"])
    got = open(a.emls()[-1], "rb").read()
    check("message without final CRLF is stored with the CRLF the client added",
          got == msg_noeol + b"\r\n", repr(got[-25:]))
    msg_barelf = b"Subject: bare LF\r\n\r\nline one\nline two\r\n"
    a.send(msg_barelf, ["edge@example.org"])
    got = open(a.emls()[-1], "rb").read()
    check("bare LF inside DATA is stored unchanged (no normalisation)", got == msg_barelf,
          repr(got[-24:]))

    # 451 twice, then accepted (counted across sessions, address case-insensitive).
    a.set_rules({"rcpt": {"temp@example.org": {"code": 451, "times": 2},
                          "gone@example.org": {"code": 550}}})
    msg2 = crlf(b"Subject: retry", b"", b"retry body")
    results = []
    for addr in ["temp@example.org", "TEMP@example.org", "temp@example.org"]:
        try:
            results.append(a.send(msg2, [addr]))
        except smtplib.SMTPRecipientsRefused as e:
            results.append(e.recipients)
    check("451 on attempt 1", results[0] == {"temp@example.org": (451, b"4.7.1 Try again later")},
          repr(results[0]))
    check("451 on attempt 2 (other case, other session)",
          results[1] == {"TEMP@example.org": (451, b"4.7.1 Try again later")}, repr(results[1]))
    check("attempt 3 accepted", results[2] == {}, repr(results[2]))

    # 550 always.
    results = []
    for _ in range(3):
        try:
            results.append(a.send(msg2, ["gone@example.org"]))
        except smtplib.SMTPRecipientsRefused as e:
            results.append(e.recipients)
    check("550 on every attempt",
          results == [{"gone@example.org": (550, b"5.1.1 No such user")}] * 3, repr(results[-1]))
    n_before = len(a.emls())
    refused = a.send(msg2, ["ok@example.org", "gone@example.org"])
    check("mixed recipients: only the 550 one refused",
          refused == {"gone@example.org": (550, b"5.1.1 No such user")}, repr(refused))
    check("mixed recipients: stored only for the accepted one",
          len(a.emls()) == n_before + 1
          and json.load(open(a.emls()[-1][:-4] + ".json"))["rcpt_to"] == ["ok@example.org"])

    # data_code.
    for code in (452, 554):
        a.set_rules({"data_code": code})
        n_before = len(a.emls())
        try:
            a.send(msg2, ["ok@example.org"])
            check("data_code %d rejects DATA" % code, False, "sendmail succeeded")
        except smtplib.SMTPDataError as e:
            check("data_code %d rejects DATA" % code, e.smtp_code == code,
                  "%d %s" % (e.smtp_code, e.smtp_error.decode()))
        check("data_code %d stores nothing" % code, len(a.emls()) == n_before)

    # delay_ms.
    a.set_rules({"delay_ms": 300})
    t0 = time.monotonic()
    with a.client() as c:  # greeting
        t1 = time.monotonic()
        c.noop()
        t2 = time.monotonic()
    check("delay_ms delays the greeting", t1 - t0 >= 0.29, "%.3fs" % (t1 - t0))
    check("delay_ms delays each reply", t2 - t1 >= 0.29, "%.3fs" % (t2 - t1))

    # Invalid rules: the session fails loudly (no silent accept-everything).
    a.set_rules('{"drop_after_message": 1}')  # typo'd key
    try:
        a.send(msg2, ["ok@example.org"])
        check("invalid rules file closes the connection", False, "sendmail succeeded")
    except smtplib.SMTPServerDisconnected as e:
        check("invalid rules file closes the connection", True, str(e))
    check("invalid rules file is logged", "rules-error" in a.log_text())
    os.remove(a.rules_path)
    check("missing rules file = accept everything",
          a.send(msg2, ["ok@example.org"]) == {})

    rc = a.stop(signal.SIGTERM)
    check("SIGTERM -> exit 0", rc == 0, "rc=%r" % rc)
    rest = a.proc.stdout.read()
    check("nothing on stdout after READY", rest == b"", repr(rest))

    # ---- server B: dropped connection after N messages ----------------------
    b = Server(root, "b", rules={"drop_after_messages": 3})
    servers.append(b)
    outcomes = []
    for i in range(1, 6):
        m = crlf(b"Subject: drop test %d" % i, b"", b"body %d" % i)
        try:
            b.send(m, ["ok@example.org"])
            outcomes.append("accepted")
        except smtplib.SMTPServerDisconnected as e:
            outcomes.append("disconnected: %s" % e)
        except Exception as e:  # anything else is a failure
            outcomes.append("%s: %s" % (type(e).__name__, e))
    check("messages 1-3 accepted", outcomes[:3] == ["accepted"] * 3, repr(outcomes[:3]))
    check("message 4: SMTPServerDisconnected (RST, no SMTP reply)",
          outcomes[3].startswith("disconnected"), outcomes[3])
    check("message 5 accepted again (drop happens once)", outcomes[4] == "accepted", outcomes[4])
    subjects = [open(f, "rb").read().split(b"\r\n")[0] for f in b.emls()]
    check("dropped message was not stored",
          subjects == [b"Subject: drop test %d" % i for i in (1, 2, 3, 5)], repr(subjects))
    # A new threshold fires once more (4 messages accepted so far, so the next
    # DATA drops); drop_mode "close" sends FIN instead of RST.
    b.set_rules({"drop_after_messages": 4, "drop_mode": "close"})
    try:
        b.send(crlf(b"Subject: drop test 6", b"", b"x"), ["ok@example.org"])
        check("drop_mode close: SMTPServerDisconnected", False, "sendmail succeeded")
    except smtplib.SMTPServerDisconnected as e:
        check("drop_mode close: SMTPServerDisconnected (FIN, no SMTP reply)", True, str(e))
    check("drop is logged", b.log_text().count(" drop ") == 2)

    # stdin closed -> the server exits by itself (the spawning test died).
    b.proc.stdin.close()
    try:
        rc = b.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        b.proc.kill()
        rc = "timeout"
    b.log.close()
    check("stdin EOF -> exit 0", rc == 0, "rc=%r" % rc)

    # ---- server D: close_after_accepting, --no-smtputf8 ----------------------
    d = Server(root, "d", rules={"close_after_accepting": 2}, options=["--no-smtputf8"])
    servers.append(d)
    with d.client() as client:
        client.ehlo()
        check("--no-smtputf8: SMTPUTF8 not advertised",
              not client.has_extn("smtputf8") and client.has_extn("8bitmime"),
              repr(sorted(client.esmtp_features)))
        m = crlf(b"Subject: close test", b"", b"x")
        first = client.sendmail("press@pressroom.example", ["ok@example.org"], m)
        second = client.sendmail("press@pressroom.example", ["ok@example.org"], m)
        check("close_after_accepting 2: two messages accepted on one connection",
              first == {} and second == {})
        try:
            client.sendmail("press@pressroom.example", ["ok@example.org"], m)
            check("close_after_accepting: the connection is closed after the 2nd 250",
                  False, "a third message was accepted")
        except smtplib.SMTPServerDisconnected as e:
            check("close_after_accepting: the connection is closed after the 2nd 250",
                  True, str(e))
    check("close is logged", d.log_text().count(" close ") == 1)
    check("a new connection is served again", d.send(m, ["ok@example.org"]) == {})
    d.stop()

    # ---- server C: SIGINT ---------------------------------------------------
    c = Server(root, "c")
    servers.append(c)
    rc = c.stop(signal.SIGINT)
    check("SIGINT -> exit 0", rc == 0, "rc=%r" % rc)

    if VERBOSE:
        for s in servers:
            print("---- server log %s ----" % s.dir)
            print(s.log_text(), end="")
    if failed == 0:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print("kept for inspection: %s" % root)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
