"""The audit log: append-only, each row's hash covering its content and the previous row's hash (a chain).

The chain is keyed: a row's hash is an HMAC-SHA256 under a key kept outside the database (`AuditKey`, a 0600 file
in the data directory), so someone who can write the table but not read the key cannot rewrite a row and
recompute the chain after it. The newest row's id and hash are also checkpointed outside the table
(`AuditCheckpoint`), so deleting the newest rows is seen too. Rows written before the chain was keyed (plain
SHA-256) still verify, but only before the first keyed row.

Rows are appended inside the caller's unit, next to the change they record. Appends are serialised so the
chain never forks: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the unit's write lock
(`BEGIN IMMEDIATE`). The unique constraint on `prev_hash` stays as the last line of defence.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fimg_service.storage.records import AuditRecord
from fimg_service.storage.schema import AuditEntry, utcnow

GENESIS_HASH = "0" * 64
OBJECT_ID_LENGTH = 200
_CHAIN_LOCK = 0x6631_6D67  # any constant shared by every fimg process on the database


def _canonical(prev_hash: str, fields: dict[str, Any]) -> bytes:
    return (prev_hash + json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)).encode()


def row_hash(key: bytes, prev_hash: str, fields: dict[str, Any]) -> str:
    return hmac.new(key, _canonical(prev_hash, fields), hashlib.sha256).hexdigest()


def unkeyed_row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """How rows were chained before the chain was keyed."""
    return hashlib.sha256(_canonical(prev_hash, fields)).hexdigest()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class AuditKey:
    """The chain's key: 32 random bytes in a file readable by the service's user only, made on first use."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> bytes:
        if not self.path.exists():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32) + "\n")
        return bytes.fromhex(self.path.read_text().strip())


@dataclass(frozen=True)
class Checkpoint:
    id: int
    row_hash: str


class AuditCheckpoint:
    """The newest audit row seen, kept (with its own HMAC) in a file beside the key; it only moves forward."""

    def __init__(self, path: Path, key: bytes):
        self.path, self.key = path, key

    def _mac(self, id: int, hash_: str) -> str:
        return hmac.new(self.key, f"{id}:{hash_}".encode(), hashlib.sha256).hexdigest()

    def read(self) -> Checkpoint | None:
        """The checkpoint, None if there is none yet; a file whose MAC is wrong counts as tampering (ValueError)."""
        if not self.path.exists():
            return None
        data = json.loads(self.path.read_text())
        if not hmac.compare_digest(data["mac"], self._mac(data["id"], data["row_hash"])):
            raise ValueError("the audit checkpoint file was altered")
        return Checkpoint(data["id"], data["row_hash"])

    def advance(self, newest: Checkpoint) -> None:
        try:
            current = self.read()
        except ValueError:
            current = None
        if current is None or newest.id > current.id:
            _write_private(self.path, json.dumps({"id": newest.id, "row_hash": newest.row_hash,
                                                  "mac": self._mac(newest.id, newest.row_hash)}))


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    first_bad_id: int | None  # the first row that does not verify (or, truncated, the checkpointed one)
    checked: int
    problem: str | None = None  # "edited", "truncated" or "checkpoint" (the checkpoint file itself)


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {"at": entry.at, "actor_id": entry.actor_id, "actor_name": entry.actor_name, "role": entry.role,
            "action": entry.action, "object_type": entry.object_type, "object_id": entry.object_id,
            "detail": entry.detail}


def _record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(entry.id, entry.at, entry.actor_id, entry.actor_name, entry.role, entry.action,
                       entry.object_type, entry.object_id, json.loads(entry.detail), entry.row_hash)


class AuditRepository:
    def __init__(self, session: Session, serialise: bool, key: bytes):
        self.session = session
        self.serialise = serialise
        self.key = key
        self.newest: Checkpoint | None = None  # the last row this unit appended, for the checkpoint

    def append(self, actor_id: int | None, actor_name: str, role: str, action: str, object_type: str,
               object_id: str | int, detail: dict | None = None) -> None:
        if self.serialise:
            self.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
        tail = self.session.scalar(sa.select(AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1))
        prev_hash = tail or GENESIS_HASH
        entry = AuditEntry(at=utcnow().isoformat(), actor_id=actor_id, actor_name=actor_name, role=role,
                           action=action, object_type=object_type, object_id=str(object_id)[:OBJECT_ID_LENGTH],
                           detail=json.dumps(detail or {}, sort_keys=True), prev_hash=prev_hash, row_hash="")
        entry.row_hash = row_hash(self.key, prev_hash, _fields(entry))
        self.session.add(entry)
        self.session.flush()
        self.newest = Checkpoint(entry.id, entry.row_hash)

    def entries(self, limit: int = 100, offset: int = 0, actor: str | None = None, action: str | None = None,
                object_type: str | None = None, newest_first: bool = False) -> list[AuditRecord]:
        query = sa.select(AuditEntry)
        for column, value in ((AuditEntry.actor_name, actor), (AuditEntry.action, action),
                              (AuditEntry.object_type, object_type)):
            if value is not None:
                query = query.where(column == value)
        order = AuditEntry.id.desc() if newest_first else AuditEntry.id
        return [_record(r) for r in self.session.scalars(query.order_by(order).offset(offset).limit(limit))]

    def verify(self, checkpoint: Checkpoint | None) -> ChainReport:
        """Walk the chain: every row's link and (keyed, or before any keyed row, plain) hash, then the checkpoint:
        its row must still be there with its hash."""
        prev_hash = GENESIS_HASH
        checked, keyed_seen, present = 0, False, checkpoint is None
        for entry in self.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).yield_per(1000):
            fields = _fields(entry)
            keyed = entry.row_hash == row_hash(self.key, prev_hash, fields)
            legacy = not keyed_seen and entry.row_hash == unkeyed_row_hash(prev_hash, fields)
            if entry.prev_hash != prev_hash or not (keyed or legacy):
                return ChainReport(False, entry.id, checked, "edited")
            keyed_seen = keyed_seen or keyed
            if checkpoint is not None and entry.id == checkpoint.id:
                if entry.row_hash != checkpoint.row_hash:
                    return ChainReport(False, entry.id, checked, "edited")
                present = True
            prev_hash = entry.row_hash
            checked += 1
        if not present:
            return ChainReport(False, checkpoint.id, checked, "truncated")
        return ChainReport(True, None, checked)
