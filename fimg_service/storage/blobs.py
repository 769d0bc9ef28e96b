"""Content-addressed files: uploads and artefacts are stored once, by SHA-256, under `<dir>/ab/cd/<sha256>`.

A blob is written (atomically, by rename) before the row that points at it, so a row never names a missing file;
a rolled-back transaction can leave an unreferenced blob, which costs disk and nothing else. Every read checks
the bytes against their name, so a file damaged on disk is never taken for the one that was stored.

The store's directory holds a marker file with a random token. Another process given the store's `BlobLocation`
(a worker, perhaps on another machine) reads blobs itself through a `BlobReader` only where it finds that token at
that path: then it sees the same disk, not merely a directory of the same name.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fimg_service.errors import NotFound

MARKER = ".fimg-blob-store"


@dataclass(frozen=True)
class BlobLocation:
    """Where an on-disk blob store is (an absolute path) and the token its marker file holds."""

    directory: str
    token: str


class BlobReader:
    """Read-only access to an on-disk blob store by its location."""

    def __init__(self, location: BlobLocation):
        self.location = location
        self.directory = Path(location.directory)

    def reachable(self) -> bool:
        """Whether this process sees the store at its location (the marker holds the store's token)."""
        try:
            return (self.directory / MARKER).read_text() == self.location.token
        except OSError:
            return False

    def path(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256[2:4] / sha256

    def get(self, sha256: str) -> bytes:
        """The blob's bytes; NotFound if it is missing, unreadable or does not hash to its name."""
        try:
            data = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is missing from the data directory") from None
        except OSError as exc:
            raise NotFound(f"blob {sha256} cannot be read: {exc.strerror or type(exc).__name__}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise NotFound(f"blob {sha256} is damaged: its bytes no longer hash to its name")
        return data


class BlobStore(BlobReader):
    def __init__(self, directory: Path | str):
        directory = Path(directory).resolve()  # workers run elsewhere, in other working directories
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        super().__init__(BlobLocation(str(directory), _marker_token(directory)))

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path(sha256)
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)  # 0600: the service's user only
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return sha256


def _marker_token(directory: Path) -> str:
    """The store's token, written once: a hard link never replaces a marker that another replica, starting at the
    same moment, wrote first."""
    marker = directory / MARKER
    if not marker.exists():
        fd, tmp = tempfile.mkstemp(dir=directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(16))
        try:
            os.link(tmp, marker)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return marker.read_text()
