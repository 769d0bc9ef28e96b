"""The audit log: append-only, each row's hash covering its content and the previous row's hash (a chain).

Rows are appended inside the caller's unit, next to the change they record. Appends are serialised so the
chain never forks: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the unit's write lock
(`BEGIN IMMEDIATE`). The unique constraint on `prev_hash` stays as the last line of defence.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fimg_service.storage.records import AuditRecord
from fimg_service.storage.schema import AuditEntry, utcnow

GENESIS_HASH = "0" * 64
OBJECT_ID_LENGTH = 200
_CHAIN_LOCK = 0x6631_6D67  # any constant shared by every fimg process on the database


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {"at": entry.at, "actor_id": entry.actor_id, "actor_name": entry.actor_name, "role": entry.role,
            "action": entry.action, "object_type": entry.object_type, "object_id": entry.object_id,
            "detail": entry.detail}


def _record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(entry.id, entry.at, entry.actor_id, entry.actor_name, entry.role, entry.action,
                       entry.object_type, entry.object_id, json.loads(entry.detail), entry.row_hash)


class AuditRepository:
    def __init__(self, session: Session, serialise: bool):
        self.session = session
        self.serialise = serialise

    def append(self, actor_id: int | None, actor_name: str, role: str, action: str, object_type: str,
               object_id: str | int, detail: dict | None = None) -> None:
        if self.serialise:
            self.session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
        tail = self.session.scalar(sa.select(AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1))
        prev_hash = tail or GENESIS_HASH
        entry = AuditEntry(at=utcnow().isoformat(), actor_id=actor_id, actor_name=actor_name, role=role,
                           action=action, object_type=object_type, object_id=str(object_id)[:OBJECT_ID_LENGTH],
                           detail=json.dumps(detail or {}, sort_keys=True), prev_hash=prev_hash, row_hash="")
        entry.row_hash = row_hash(prev_hash, _fields(entry))
        self.session.add(entry)
        self.session.flush()

    def entries(self, limit: int = 100, offset: int = 0) -> list[AuditRecord]:
        rows = self.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id).offset(offset).limit(limit))
        return [_record(r) for r in rows]

    def count(self) -> int:
        return self.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))

    def verify(self) -> tuple[bool, int | None, int]:
        """Walk the chain; return (intact, id of the first bad row or None, rows checked)."""
        prev_hash = GENESIS_HASH
        checked = 0
        for entry in self.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).yield_per(1000):
            if entry.prev_hash != prev_hash or entry.row_hash != row_hash(prev_hash, _fields(entry)):
                return False, entry.id, checked
            prev_hash = entry.row_hash
            checked += 1
        return True, None, checked
