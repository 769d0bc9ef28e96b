"""Banks of identified-victim records: create, list, import hash lists, enrol images, export (audited)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from fimg_service.errors import InvalidInput, NotFound, problem
from fimg_service.storage import Unit
from fimg_service.storage.records import BankInfo, StoredRecord
from fimg_service.usecases.base import CURATORS, Principal, UseCases, audit, require
from imaging import DecodeError
from imaging.banks import FORMATS, BankRecord, parse_bank, write_bank
from imaging.matching import hashes_for_bank


def get_bank(unit: Unit, name: str) -> BankInfo:
    bank = unit.banks.get(name)
    if bank is None:
        raise NotFound(f"no bank named {name!r}")
    return bank


def _stored(record: BankRecord) -> StoredRecord:
    return StoredRecord(record.record_id, record.victim_id, record.pdq, record.md5, record.sha1, record.sha256,
                        tuple(record.labels), dict(record.extra_hashes))


def _check_format(file_format: str) -> None:
    if file_format not in FORMATS:
        raise InvalidInput(f"bank format must be one of {', '.join(FORMATS)}, not {file_format!r}",
                           code="unsupported_format")


class Banks(UseCases):
    def create(self, who: Principal, name: str, description: str | None = None,
               threshold: int | None = None) -> BankInfo:
        require(who, CURATORS, "create banks")
        with self.storage.unit() as unit:
            bank = unit.banks.create(name, description, threshold, who.key_id)
            audit(unit, who, "create", "bank", name)
        return bank

    def list(self, who: Principal) -> list[BankInfo]:
        require(who, CURATORS, "list banks")
        with self.storage.read() as unit:
            return unit.banks.list()

    def get(self, who: Principal, name: str) -> BankInfo:
        require(who, CURATORS, "read banks")
        with self.storage.read() as unit:
            return get_bank(unit, name)

    def import_file(self, who: Principal, name: str, data: bytes | str, file_format: str) -> tuple[int, list[dict]]:
        """Parse a CSV/JSONL bank file and add its records; every rejected row ({line, code, message}) in order."""
        require(who, CURATORS, "import into banks")
        _check_format(file_format)
        with self.storage.read() as unit:
            get_bank(unit, name)
        records, errors = parse_bank(data, file_format)
        rejected = [problem("invalid_row", e.error, line=e.line) for e in errors]
        with self.storage.unit() as unit:
            imported, duplicates = self._add(unit, get_bank(unit, name), records, [r.line for r in records])
            audit(unit, who, "import", "bank", name, {"imported": imported, "rejected": len(rejected) + len(duplicates),
                                                      "format": file_format})
        return imported, sorted(rejected + duplicates, key=lambda row: row["line"])

    def enrol(self, who: Principal, name: str, files: Sequence[tuple[str, bytes]], victim_id: str | None = None,
              record_id: str | None = None, robust: bool = True) -> tuple[int, list[dict]]:
        """Records from images: their hashes (and, with `robust`, their variants and regions), never pixels.

        Each file's record id is its name, or `record_id` for a single file. Rejected: {name, code, message}.
        """
        require(who, CURATORS, "enrol into banks")
        if record_id and len(files) != 1:
            raise InvalidInput("a record id names one image; give one file", code="invalid_input")
        with self.storage.read() as unit:
            get_bank(unit, name)
        records, names, rejected = [], [], []
        for file_name, data in files:
            try:
                hashes = hashes_for_bank(data, robust=robust)
            except DecodeError as exc:
                rejected.append(problem(exc.code, str(exc), name=file_name))
                continue
            records.append(BankRecord(record_id=record_id or file_name, victim_id=victim_id, labels=(), **hashes))
            names.append(file_name)
        with self.storage.unit() as unit:
            imported, duplicates = self._add(unit, get_bank(unit, name), records, range(1, len(records) + 1))
            audit(unit, who, "import", "bank", name, {"imported": imported, "from": "images",
                                                      "rejected": len(rejected) + len(duplicates)})
        for row in duplicates:
            row["name"] = names[row.pop("line") - 1]
        return imported, rejected + duplicates

    def export(self, who: Principal, name: str, file_format: str) -> tuple[int, str]:
        """The bank's records as a CSV/JSONL file: (record count, text)."""
        require(who, CURATORS, "export banks")
        _check_format(file_format)
        with self.storage.unit() as unit:
            bank = get_bank(unit, name)
            records = [BankRecord(r.record_id, r.victim_id, r.pdq, r.md5, r.sha1, r.sha256, r.labels)
                       for r in unit.banks.records(bank.id)]
            audit(unit, who, "export", "bank", name, {"records": len(records), "format": file_format})
        return len(records), write_bank(records, file_format)

    @staticmethod
    def _add(unit: Unit, bank: BankInfo, records: Sequence[BankRecord], lines: Iterable[int]) -> tuple[int, list]:
        """Add records; an id already in the bank is rejected ({line, code, message}), never replaced."""
        existing = unit.banks.record_ids(bank.id)
        fresh, rejected = [], []
        for line, record in zip(lines, records):
            if record.record_id in existing:
                rejected.append(problem("duplicate_record", f"record_id {record.record_id!r} already exists in bank",
                                        line=line))
                continue
            existing.add(record.record_id)
            fresh.append(_stored(record))
        return unit.banks.add_records(bank.id, fresh), rejected
