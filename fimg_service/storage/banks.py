"""Banks of identified records and their records (hashes and ids, never pixels)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fimg_service.errors import Conflict
from fimg_service.storage.members import CaseMembers
from fimg_service.storage.records import BankInfo, BankVersion, StoredRecord
from imaging.signals import HASH_COLUMNS
from fimg_service.storage.schema import Bank, BankMember, BankRecordRow, as_utc, utcnow

INSERT_BATCH = 5000


def _info(row: Bank, records: int) -> BankInfo:
    return BankInfo(row.id, row.name, row.description, row.threshold, row.revision, row.created_by,
                    as_utc(row.created_at), records, row.owner_id)


_RECORD_COLUMNS = (BankRecordRow.record_id, BankRecordRow.victim_id, BankRecordRow.pdq, BankRecordRow.md5,
                   BankRecordRow.sha1, BankRecordRow.sha256, BankRecordRow.labels, BankRecordRow.extra_hashes,
                   BankRecordRow.source, BankRecordRow.source_id, BankRecordRow.member_id, BankRecordRow.enabled,
                   BankRecordRow.disabled_until, BankRecordRow.id)


def _stored(row) -> StoredRecord:
    rid, vid, pdq, md5, sha1, sha256, labels, extra, source, source_id, member_id, enabled, until, db_id = row
    return StoredRecord(rid, vid, pdq, md5, sha1, sha256, tuple(labels or ()), extra or {}, source, source_id,
                        member_id, bool(enabled), until, db_id)


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
        self.members = CaseMembers(session, BankMember, BankMember.bank_id, Bank)

    def create(self, name: str, description: str | None, threshold: int | None, created_by: int | None) -> BankInfo:
        """A new bank, owned by the key that created it."""
        row = Bank(name=name, description=description, threshold=threshold, revision=0, created_by=created_by,
                   owner_id=created_by, created_at=utcnow())
        insert_named(self.session, row, "bank")
        return _info(row, 0)

    def get(self, name: str) -> BankInfo | None:
        row = self.session.scalar(sa.select(Bank).where(Bank.name == name))
        return None if row is None else _info(row, self._count(row.id))

    def version(self, name: str) -> BankVersion | None:
        row = self.session.execute(sa.select(Bank.id, Bank.name, Bank.threshold, Bank.revision, Bank.created_at,
                                             Bank.owner_id).where(Bank.name == name)).one_or_none()
        return None if row is None else BankVersion(row.id, row.name, row.threshold, row.revision,
                                                    as_utc(row.created_at), row.owner_id)

    def list(self, key_id: int | None = None, all_cases: bool = True) -> list[BankInfo]:
        """Every bank, or (not `all_cases`) those `key_id` owns or is a member of."""
        counts = dict(self.session.execute(
            sa.select(BankRecordRow.bank_id, sa.func.count()).group_by(BankRecordRow.bank_id)).all())
        query = self.members.visible(sa.select(Bank).order_by(Bank.name), key_id, all_cases)
        return [_info(b, counts.get(b.id, 0)) for b in self.session.scalars(query)]

    def names(self, key_id: int | None = None, all_cases: bool = True) -> list[str]:
        query = self.members.visible(sa.select(Bank.name).order_by(Bank.name), key_id, all_cases)
        return list(self.session.scalars(query))

    def _count(self, bank_id: int) -> int:
        return self.session.scalar(sa.select(sa.func.count()).select_from(BankRecordRow)
                                   .where(BankRecordRow.bank_id == bank_id))

    def hash_counts(self, key_id: int | None = None, all_cases: bool = True) -> dict[str, int]:
        """How many records of the banks `key_id` sees (see `list`) carry each hash column."""
        columns = {kind: getattr(BankRecordRow, kind) for kind in HASH_COLUMNS}
        banks = self.members.visible(sa.select(Bank.id), key_id, all_cases)
        row = self.session.execute(sa.select(*(sa.func.count(column) for column in columns.values()))
                                   .where(BankRecordRow.bank_id.in_(banks))).one()
        return dict(zip(columns, row))

    def record_ids(self, bank_id: int) -> set[str]:
        return set(self.session.scalars(sa.select(BankRecordRow.record_id).where(BankRecordRow.bank_id == bank_id)))

    def lock(self, bank_id: int) -> None:
        """Hold the bank row until the unit ends, so two imports cannot both find a record id free."""
        self.session.execute(sa.select(Bank.id).where(Bank.id == bank_id).with_for_update())

    def add_records(self, bank_id: int, records: Iterable[StoredRecord]) -> int:
        """Insert records (ids checked unique by the caller, under `lock`) and bump the bank's revision."""
        rows = [{"bank_id": bank_id, "record_id": r.record_id, "victim_id": r.victim_id, "pdq": r.pdq, "md5": r.md5,
                 "sha1": r.sha1, "sha256": r.sha256, "labels": list(r.labels), "extra_hashes": dict(r.extra_hashes),
                 "source": r.source, "source_id": r.source_id, "member_id": r.member_id, "enabled": r.enabled,
                 "disabled_until": r.disabled_until}
                for r in records]
        if not rows:
            return 0
        for start in range(0, len(rows), INSERT_BATCH):
            self.session.execute(sa.insert(BankRecordRow), rows[start:start + INSERT_BATCH])
        self.session.execute(sa.update(Bank).where(Bank.id == bank_id).values(revision=Bank.revision + 1))
        return len(rows)

    def records(self, bank_id: int) -> Sequence[StoredRecord]:
        return self._records(sa.select(*_RECORD_COLUMNS).where(BankRecordRow.bank_id == bank_id)
                             .order_by(BankRecordRow.id))

    def record(self, bank_id: int, *, record_id: str | None = None,
               content_id: int | None = None) -> StoredRecord | None:
        """One record of the bank, by its record id or its store id."""
        query = sa.select(*_RECORD_COLUMNS).where(BankRecordRow.bank_id == bank_id)
        query = query.where(BankRecordRow.record_id == record_id) if record_id is not None \
            else query.where(BankRecordRow.id == content_id)
        found = self._records(query)
        return found[0] if found else None

    def set_state(self, bank_id: int, record_ids: Iterable[str], enabled: bool, disabled_until: int | None) -> int:
        """Enable or disable records (bumping the bank's revision); returns how many the bank has."""
        changed = self.session.execute(
            sa.update(BankRecordRow)
            .where(BankRecordRow.bank_id == bank_id, BankRecordRow.record_id.in_(list(record_ids)))
            .values(enabled=enabled, disabled_until=disabled_until)).rowcount
        if changed:
            self.session.execute(sa.update(Bank).where(Bank.id == bank_id).values(revision=Bank.revision + 1))
        return changed

    def _records(self, query) -> list[StoredRecord]:
        return [_stored(row) for row in self.session.execute(query)]
