"""API keys: only each key's SHA-256 is stored."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fimg_service.errors import NotFound
from fimg_service.storage.records import KeyRecord
from fimg_service.storage.schema import ApiKey, as_utc, utcnow


def key_record(row: ApiKey) -> KeyRecord:
    return KeyRecord(row.id, row.name, row.role, as_utc(row.created_at), row.revoked_at is not None)


class KeyRepository:
    def __init__(self, session: Session):
        self.session = session

    def create(self, name: str, role: str, key_hash: str) -> KeyRecord:
        row = ApiKey(name=name, role=role, key_hash=key_hash, created_at=utcnow())
        self.session.add(row)
        self.session.flush()
        return key_record(row)

    def active_by_hash(self, key_hash: str) -> KeyRecord | None:
        row = self.session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))
        return None if row is None else key_record(row)

    def get(self, key_id: int) -> KeyRecord | None:
        row = self.session.get(ApiKey, key_id)
        return None if row is None else key_record(row)

    def active_by_name(self, name: str) -> list[KeyRecord]:
        return [key_record(r) for r in self.session.scalars(
            sa.select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)).order_by(ApiKey.id))]

    def list(self) -> list[KeyRecord]:
        return [key_record(r) for r in self.session.scalars(sa.select(ApiKey).order_by(ApiKey.id))]

    def any(self) -> bool:
        return self.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) > 0

    def revoke(self, key_id: int) -> KeyRecord:
        row = self.session.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return key_record(row)
