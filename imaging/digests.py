"""Cryptographic digests of the exact bytes received, for exact-duplicate matching and storage keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Digests:
    md5: str
    sha1: str
    sha256: str


def digests(data: bytes, sha256: str | None = None) -> Digests:
    """MD5, SHA-1 and SHA-256 of `data` as lowercase hex (MD5 and SHA-1 only for matching hash lists
    that still use them). `sha256`: the SHA-256 of these bytes where the caller has just checked it (a
    content-addressed blob read by its name), which is then not computed twice."""
    view = memoryview(data)
    return Digests(
        md5=hashlib.md5(view, usedforsecurity=False).hexdigest(),
        sha1=hashlib.sha1(view, usedforsecurity=False).hexdigest(),
        sha256=sha256 or hashlib.sha256(view).hexdigest(),
    )
