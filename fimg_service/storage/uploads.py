"""Uploaded files: a row per upload; the bytes live once, by SHA-256, in the blob store."""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fimg_service.storage.records import UploadRecord
from fimg_service.storage.schema import Upload, as_utc, new_id, utcnow


QUERY_BATCH = 1000  # ids per IN (...): well inside every database's bound on parameters


def _record(row: Upload) -> UploadRecord:
    return UploadRecord(row.id, row.owner_id, row.name, row.sha256, row.size, row.format, row.width, row.height,
                        as_utc(row.created_at))


class UploadRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, owner_id: int | None, name: str, sha256: str, size: int, format: str | None = None,
            width: int | None = None, height: int | None = None) -> UploadRecord:
        row = Upload(id=new_id(), owner_id=owner_id, name=name, sha256=sha256, size=size, format=format,
                     width=width, height=height, created_at=utcnow())
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def stored_bytes(self, owner_id: int) -> int:
        """The bytes of every upload this owner made (each upload counts, however often its content is shared)."""
        return self.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Upload.size), 0))
                                   .where(Upload.owner_id == owner_id))

    def get_many(self, upload_ids: Iterable[str]) -> dict[str, UploadRecord]:
        """{id: upload} of those that exist."""
        ids, found = list(upload_ids), {}
        for start in range(0, len(ids), QUERY_BATCH):
            rows = self.session.scalars(sa.select(Upload).where(Upload.id.in_(ids[start:start + QUERY_BATCH])))
            found.update((row.id, _record(row)) for row in rows)
        return found
