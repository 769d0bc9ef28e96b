"""Banks of identified records and their records (hashes and ids, never pixels)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fimg_service.errors import Conflict
from fimg_service.storage.records import BankInfo, StoredRecord
from fimg_service.storage.schema import Bank, BankRecordRow, as_utc, utcnow

INSERT_BATCH = 5000


def _info(row: Bank, records: int) -> BankInfo:
    return BankInfo(row.id, row.name, row.description, row.threshold, row.revision, row.created_by,
                    as_utc(row.created_at), records)


def insert_named(session: Session, row, kind: str) -> None:
    """Insert a row with a unique name; a name already taken is a Conflict, and the transaction goes on."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"a {kind} named {row.name!r} already exists") from None


class BankRepository:
    def __init__(self, session: Session):
        self.session = session

    def create(self, name: str, description: str | None, threshold: int | None, created_by: int | None) -> BankInfo:
        row = Bank(name=name, description=description, threshold=threshold, revision=0, created_by=created_by,
                   created_at=utcnow())
        insert_named(self.session, row, "bank")
        return _info(row, 0)

    def get(self, name: str) -> BankInfo | None:
        row = self.session.scalar(sa.select(Bank).where(Bank.name == name))
        return None if row is None else _info(row, self._count(row.id))

    def list(self) -> list[BankInfo]:
        counts = dict(self.session.execute(
            sa.select(BankRecordRow.bank_id, sa.func.count()).group_by(BankRecordRow.bank_id)).all())
        return [_info(b, counts.get(b.id, 0)) for b in self.session.scalars(sa.select(Bank).order_by(Bank.name))]

    def _count(self, bank_id: int) -> int:
        return self.session.scalar(sa.select(sa.func.count()).select_from(BankRecordRow)
                                   .where(BankRecordRow.bank_id == bank_id))

    def record_ids(self, bank_id: int) -> set[str]:
        return set(self.session.scalars(sa.select(BankRecordRow.record_id).where(BankRecordRow.bank_id == bank_id)))

    def add_records(self, bank_id: int, records: Iterable[StoredRecord]) -> int:
        """Insert records (ids already checked unique by the caller) and bump the bank's revision."""
        rows = [{"bank_id": bank_id, "record_id": r.record_id, "victim_id": r.victim_id, "pdq": r.pdq, "md5": r.md5,
                 "sha1": r.sha1, "sha256": r.sha256, "labels": list(r.labels), "extra_hashes": dict(r.extra_hashes)}
                for r in records]
        for start in range(0, len(rows), INSERT_BATCH):
            self.session.execute(sa.insert(BankRecordRow), rows[start:start + INSERT_BATCH])
        self.session.execute(sa.update(Bank).where(Bank.id == bank_id).values(revision=Bank.revision + 1))
        return len(rows)

    def records(self, bank_id: int) -> Sequence[StoredRecord]:
        query = (sa.select(BankRecordRow.record_id, BankRecordRow.victim_id, BankRecordRow.pdq, BankRecordRow.md5,
                           BankRecordRow.sha1, BankRecordRow.sha256, BankRecordRow.labels, BankRecordRow.extra_hashes)
                 .where(BankRecordRow.bank_id == bank_id).order_by(BankRecordRow.id))
        return [StoredRecord(rid, vid, pdq, md5, sha1, sha256, tuple(labels or ()), extra or {})
                for rid, vid, pdq, md5, sha1, sha256, labels, extra in self.session.execute(query)]
