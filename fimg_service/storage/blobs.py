"""Content-addressed files: uploads and artefacts are stored once, by SHA-256, under `<dir>/ab/cd/<sha256>`.

A blob is written (atomically, by rename) before the row that points at it, so a row never names a missing file;
a rolled-back transaction can leave an unreferenced blob, which costs disk and nothing else.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from fimg_service.errors import NotFound


class BlobStore:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256[2:4] / sha256

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

    def get(self, sha256: str) -> bytes:
        path = self.path(sha256)
        if not path.exists():
            raise NotFound(f"blob {sha256} is missing from the data directory")
        return path.read_bytes()
