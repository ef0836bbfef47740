#!/usr/bin/env python3
"""Verify an aqiqat case bundle without aqiqat.

Needs only Python 3 (standard library) and the `openssl` command (3.0 or later, for Ed25519).
Usage, from inside the bundle folder:

    python3 verify.py [MEDIA_FILE ...]

Checks, for the tree head and every record in records/: the Ed25519 signature by the key in
public-key.pem over the RFC 8785 canonical JSON of the object without its "signature" member;
that the record's leaf hash, SHA-256(0x00 || canonical record), is what the proof names; that
the RFC 9162 audit path leads from that leaf to the root in tree-head.json. Media files given
on the command line are hashed and matched against the records. Exit status 0 when every
check holds, 1 otherwise.
"""
import base64
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from decimal import Decimal


def es6_number(x):
    """A JSON number as ECMAScript's Number.prototype.toString writes it (RFC 8785 3.2.2.3)."""
    if isinstance(x, bool):
        raise TypeError("bool is not a number")
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("NaN and infinities are not JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that round-trip, as ECMAScript requires.
    _, raw_digits, exp = Decimal(repr(abs(x))).as_tuple()
    raw = "".join(map(str, raw_digits))
    n = exp + len(raw)  # where the decimal point sits, counted from the first digit
    digits = raw.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits[0] + ("." + digits[1:] if k > 1 else "")
        out = mant + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + out


def jcs(v):
    """RFC 8785 canonical JSON, as bytes."""
    return _jcs(v).encode("utf-8")


def _jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (int, float)):
        return es6_number(v)
    if isinstance(v, list):
        return "[" + ",".join(_jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _jcs(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def raw_public_key(pem_path):
    body = "".join(l for l in open(pem_path).read().splitlines() if not l.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(bytes.fromhex("302a300506032b6570032100")):
        raise ValueError("public-key.pem is not an Ed25519 public key")
    return der[12:]


def ed25519_ok(pem_path, message, signature):
    with tempfile.TemporaryDirectory() as tmp:
        msg, sig = os.path.join(tmp, "msg"), os.path.join(tmp, "sig")
        open(msg, "wb").write(message)
        open(sig, "wb").write(signature)
        run = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem_path, "-rawin", "-in", msg, "-sigfile", sig],
            capture_output=True,
        )
        return run.returncode == 0


class Checker:
    def __init__(self):
        self.failed = 0

    def check(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failed += 1
        return ok


def check_signed(c, obj, what, pem, raw_key):
    sig = obj.get("signature") or {}
    body = {k: v for k, v in obj.items() if k != "signature"}
    c.check(sig.get("alg") == "Ed25519", f"{what}: algorithm is Ed25519")
    c.check(base64.b64decode(sig.get("public_key", "")) == raw_key, f"{what}: signed by the key in public-key.pem")
    c.check(
        ed25519_ok(pem, jcs(body), base64.b64decode(sig.get("value", ""))),
        f"{what}: Ed25519 signature over its canonical JSON holds",
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    os.chdir(here)
    c = Checker()
    raw_key = raw_public_key("public-key.pem")
    key_id = hashlib.sha256(raw_key).hexdigest()
    print(f"key id {key_id}")
    head = json.load(open("tree-head.json", encoding="utf-8"))
    check_signed(c, head, "tree head", "public-key.pem", raw_key)
    c.check(head.get("log_id") == key_id, "tree head: names this key's log")
    root = bytes.fromhex(head["root_hash"])
    size = head["tree_size"]
    known = {}
    for path in sorted(glob.glob("records/*.json")):
        env = json.load(open(path, encoding="utf-8"))
        record, proof = env["record"], env["inclusion"]
        check_signed(c, record, path, "public-key.pem", raw_key)
        signed = path[: -len(".json")] + ".signed"
        if os.path.exists(signed):
            body = {k: v for k, v in record.items() if k != "signature"}
            c.check(open(signed, "rb").read() == jcs(body), f"{path}: canonical form equals {signed}")
        leaf = hashlib.sha256(b"\x00" + jcs(record)).digest()
        c.check(proof["leaf_hash"] == leaf.hex(), f"{path}: leaf hash {leaf.hex()[:16]}... is the one proven")
        c.check(proof["tree_size"] == size, f"{path}: proof is for the tree head's size {size}")
        ok = verify_inclusion(proof["leaf_index"], size, leaf, [bytes.fromhex(h) for h in proof["path"]], root)
        c.check(ok, f"{path}: included as leaf {proof['leaf_index']} under the signed root")
        known[record["subject"]["sha256"]] = path
    for media in sys.argv[1:]:
        digest = hashlib.sha256(open(media, "rb").read()).hexdigest()
        c.check(digest in known, f"{media}: SHA-256 {digest[:16]}... is analysed in {known.get(digest, 'no record')}")
    print("VERIFIED" if c.failed == 0 else f"NOT VERIFIED: {c.failed} check(s) failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
