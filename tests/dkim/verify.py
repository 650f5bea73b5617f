#!/usr/bin/env python3
"""Verifies DKIM signatures with dkimpy, an independent implementation.

Usage:
    python3 tests/dkim/verify.py --key SELECTOR._domainkey.DOMAIN=PUBLIC.pem [...] MESSAGE.eml [...]

Each --key publishes a public key (PEM, SubjectPublicKeyInfo, as
`openssl pkey -pubout` writes it: RSA or Ed25519) under that DNS name: dkimpy's
`dnsfunc` hook answers from these instead of asking DNS, so nothing leaves the
machine. A name not given is answered with nothing, as DNS would.

stdout: one line per message, "ok PATH d=DOMAIN s=SELECTOR a=ALGO h=HEADERS" or
"FAIL PATH: reason", followed on failure by dkimpy's debug log (what it
hashed), so a test failure shows where signer and verifier differ.
Exit: 0 if every message verified, 1 otherwise, 2 on bad usage, 3 if dkimpy
(or PyNaCl, for Ed25519) is missing.
"""

import argparse
import base64
import io
import logging
import re
import sys

try:
    import dkim
except ImportError:  # pragma: no cover - reported to the test, not hidden
    sys.stderr.write("dkim-verify: python module 'dkim' (dkimpy) is missing for %s; "
                     "run: bash .ci/install-test-tools.sh\n" % sys.executable)
    sys.exit(3)

# OID 1.3.101.112 (id-Ed25519), DER-encoded, as it appears in an Ed25519 SPKI.
ED25519_OID = b"\x06\x03\x2b\x65\x70"


def txt_record(pem_path):
    """The DKIM TXT record (RFC 6376 §3.6.1, RFC 8463) for a PEM public key."""
    with open(pem_path, "r", encoding="ascii") as f:
        body = "".join(l.strip() for l in f if l.strip() and not l.startswith("-----"))
    der = base64.b64decode(body)
    if ED25519_OID in der[:16]:
        # RFC 8463: p= is the bare 32-byte public key, not the SPKI.
        return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:])
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def main(argv=None):
    p = argparse.ArgumentParser(description="Verify DKIM signatures with dkimpy")
    p.add_argument("--key", action="append", default=[], metavar="NAME=PEM",
                   help="publish a public key at SELECTOR._domainkey.DOMAIN")
    p.add_argument("messages", nargs="+")
    args = p.parse_args(argv)

    records = {}
    for item in args.key:
        name, sep, path = item.partition("=")
        if not sep:
            p.error("--key wants NAME=PEM, got %r" % item)
        records[name.lower().rstrip(".")] = txt_record(path)

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        return records.get(name.lower().rstrip("."))

    failed = 0
    for path in args.messages:
        with open(path, "rb") as f:
            message = f.read()
        log = io.StringIO()
        logger = logging.getLogger("dkim-verify.%d" % id(log))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(logging.StreamHandler(log))
        logger.propagate = False
        try:
            ok = dkim.verify(message, logger=logger, dnsfunc=dnsfunc)
            reason = "signature did not verify"
        except Exception as e:  # dkimpy raises for malformed signatures
            ok, reason = False, "%s: %s" % (type(e).__name__, e)
        if ok:
            sig = re.search(rb"^DKIM-Signature:(.*?)\r?\n(?![ \t])", message,
                            re.M | re.S | re.I)
            tags = {}
            if sig:
                for tag in re.sub(rb"\s+", b"", sig.group(1)).split(b";"):
                    k, _, v = tag.partition(b"=")
                    tags[k.decode()] = v.decode()
            print("ok %s d=%s s=%s a=%s h=%s" % (path, tags.get("d"), tags.get("s"),
                                                  tags.get("a"), tags.get("h")))
        else:
            failed += 1
            print("FAIL %s: %s" % (path, reason))
            print(log.getvalue().rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
