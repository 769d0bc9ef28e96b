"""Banks of identified-victim records: create, list, import hash lists, enrol images, export (audited)."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from fimg_service.errors import Conflict, InvalidInput, NotFound, problem
from fimg_service.storage import Unit
from fimg_service.storage.records import BankInfo, BankVersion, StoredRecord
from fimg_service.usecases.base import CURATORS, HASHERS, Principal, audit, require
from fimg_service.usecases.cases import CaseTeam, in_case, visible
from fimg_service.usecases.rules import MAX_DESCRIPTION, check_name, check_pdq_threshold, check_text, query_signals
from imaging import DecodeError
from imaging.banks import FORMATS as BANK_FORMATS
from imaging.banks import BankRecord, parse_bank, write_bank
from imaging.hashlists import FORMATS as HASHLIST_FORMATS
from imaging.hashlists import WRITABLE_FORMATS, parse_hashlist, write_hashlist
from imaging.matching import hashes_for_bank


MAX_UNIX_TIME = 253402300799  # 9999-12-31T23:59:59Z


def new_record_id() -> str:
    return uuid.uuid4().hex


def get_bank(unit: Unit, who: Principal, name: str) -> BankInfo:
    """The bank, if the caller owns it, is on its team or is an admin; else NotFound (see `cases`)."""
    return visible(unit, who, "bank", name)


def bank_version(unit: Unit, who: Principal, name: str) -> BankVersion:
    """The bank's name and revision, without counting its records (for every lookup), if the caller may see it
    (the rule of `cases.visible`); else NotFound."""
    bank = unit.banks.version(name)
    if bank is None or not (who.is_admin or in_case(who, bank, unit.banks.members)):
        raise no_bank(name)
    return bank


def no_bank(name: str) -> NotFound:
    return NotFound(f"no bank named {name!r}")


def _stored(record: BankRecord) -> StoredRecord:
    return StoredRecord(record.record_id, record.victim_id, record.pdq, record.md5, record.sha1, record.sha256,
                        tuple(record.labels), dict(record.extra_hashes), record.source, record.source_id,
                        record.member_id, record.enabled, record.disabled_until)


def _file_record(record: StoredRecord) -> BankRecord:
    return BankRecord(record.record_id, record.victim_id, record.pdq, record.md5, record.sha1, record.sha256,
                      record.labels, extra_hashes=record.extra_hashes, source=record.source,
                      source_id=record.source_id, member_id=record.member_id, enabled=record.enabled,
                      disabled_until=record.disabled_until)


IMPORT_FORMATS = (*BANK_FORMATS, *HASHLIST_FORMATS)
EXPORT_FORMATS = (*BANK_FORMATS, *WRITABLE_FORMATS)


def _check_format(file_format: str, formats: tuple[str, ...]) -> None:
    if file_format not in formats:
        raise InvalidInput(f"bank format must be one of {', '.join(formats)}, not {file_format!r}",
                           code="unsupported_format")


@dataclass(frozen=True)
class ImportReport:
    """What an import did: records added, lines refused ({line, code, message}), records a list's tombstones
    disabled, and hashes of types fimg cannot match, counted per type."""

    imported: int
    rejected: list[dict]
    disabled: int = 0
    unsupported: dict[str, int] = field(default_factory=dict)


class Banks(CaseTeam):
    kind = "bank"
    member_roles = HASHERS  # a service key on the team may look up and match against the bank
    def __init__(self, storage, changed: Callable[[str, bool], None] = lambda _name, _wait: None):
        super().__init__(storage)
        self.changed = changed  # after a bank's records change: (name, wait until its new revision is built)

    def create(self, who: Principal, name: str, description: str | None = None,
               threshold: int | None = None) -> BankInfo:
        require(who, CURATORS, "create banks")
        check_name("bank", name)
        check_text("a description", description, MAX_DESCRIPTION)
        check_pdq_threshold(threshold)
        with self.storage.unit() as unit:
            bank = unit.banks.create(name, description, threshold, who.key_id)
            audit(unit, who, "create", "bank", name)
        return bank

    def list(self, who: Principal) -> list[BankInfo]:
        require(who, CURATORS, "list banks")
        with self.storage.unit() as unit:
            audit(unit, who, "list", "banks", "all")
            return unit.banks.list(who.key_id, all_cases=who.is_admin)

    def signal_counts(self, who: Principal) -> dict[str, int]:
        """How many records carry each kind of hash, over the banks the caller sees."""
        require(who, HASHERS, "read index status")
        with self.storage.read() as unit:
            return unit.banks.hash_counts(who.key_id, all_cases=who.is_admin)

    def get(self, who: Principal, name: str) -> BankInfo:
        require(who, CURATORS, "read banks")
        with self.storage.read() as unit:
            return get_bank(unit, who, name)

    def import_file(self, who: Principal, name: str, data: bytes | str, file_format: str,
                    default_signal_type: str | None = None) -> ImportReport:
        """Parse a bank file or hash list (IMPORT_FORMATS) and add its records; every refused line is reported
        with its number, none sinks the file. A hash list's tombstones disable the records they name."""
        require(who, CURATORS, "import into banks")
        _check_format(file_format, IMPORT_FORMATS)
        with self.storage.read() as unit:
            get_bank(unit, who, name)
        if file_format in BANK_FORMATS:
            records, errors = parse_bank(data, file_format)
            tombstones, unsupported = [], {}
        else:
            records, errors, tombstones, unsupported = parse_hashlist(data, file_format, default_signal_type)
        rejected = [problem("invalid_row", e.error, line=e.line) for e in errors]
        with self.storage.unit() as unit:
            bank = get_bank(unit, who, name)
            imported, duplicates = self._add(unit, bank, records, [r.line for r in records])
            disabled = unit.banks.set_state(bank.id, [t.record_id for t in tombstones], False, None) \
                if tombstones else 0
            audit(unit, who, "import", "bank", name, {"imported": imported, "rejected": len(rejected) + len(duplicates),
                                                      "disabled": disabled, "format": file_format})
        self.changed(name, True)
        return ImportReport(imported, sorted(rejected + duplicates, key=lambda row: row["line"]), disabled,
                            dict(unsupported))

    def enrol(self, who: Principal, name: str, files: Sequence[tuple[str, bytes]], victim_id: str | None = None,
              record_id: str | None = None, robust: bool = True) -> tuple[int, list[dict]]:
        """Records from images: their hashes (and, with `robust`, their variants and regions), never pixels.

        Each file's record id is its name, or `record_id` for a single file. Rejected: {name, code, message}.
        """
        require(who, CURATORS, "enrol into banks")
        if record_id and len(files) != 1:
            raise InvalidInput("a record id names one image; give one file", code="invalid_input")
        with self.storage.read() as unit:
            get_bank(unit, who, name)
        records, names, rejected = [], [], []
        for file_name, data in files:
            try:
                hashes = hashes_for_bank(data, robust=robust)
            except DecodeError as exc:
                rejected.append(problem(exc.code, str(exc), name=file_name))
                continue
            records.append(BankRecord(record_id=record_id or file_name, victim_id=victim_id, labels=(), **hashes))
            names.append(file_name)
        if not records:
            raise InvalidInput("none of the files is a usable image", code="nothing_enrolled", rejected=rejected)
        with self.storage.unit() as unit:
            imported, duplicates = self._add(unit, get_bank(unit, who, name), records, range(1, len(records) + 1))
            audit(unit, who, "import", "bank", name, {"imported": imported, "from": "images",
                                                      "rejected": len(rejected) + len(duplicates)})
        self.changed(name, True)
        for row in duplicates:
            row["name"] = names[row.pop("line") - 1]
        return imported, rejected + duplicates

    def export(self, who: Principal, name: str, file_format: str) -> tuple[str, list[str]]:
        """The bank as a file of EXPORT_FORMATS and what that format could not carry (the bank formats carry
        everything: no warnings). The export is audited before it is read."""
        require(who, CURATORS, "export banks")
        _check_format(file_format, EXPORT_FORMATS)
        with self.storage.unit() as unit:
            bank = get_bank(unit, who, name)
            audit(unit, who, "export", "bank", name, {"records": bank.records, "format": file_format})
        with self.storage.read() as unit:
            records = [_file_record(r) for r in unit.banks.records(bank.id)]
        if file_format in BANK_FORMATS:
            return write_bank(records, file_format), []
        return write_hashlist(records, file_format)

    def add_record(self, who: Principal, name: str, signals: dict[str, str], record_id: str | None = None,
                   victim_id: str | None = None, source: str | None = None,
                   source_id: str | None = None) -> StoredRecord:
        """One record from a caller's hashes ({kind: hex} of pdq, md5, sha1, sha256); its id is new if not given."""
        require(who, CURATORS, "add to banks")
        hashes = query_signals(signals)
        record = BankRecord(record_id=record_id or new_record_id(), victim_id=victim_id, labels=(),
                            pdq=hashes.get("pdq"), md5=hashes.get("md5"), sha1=hashes.get("sha1"),
                            sha256=hashes.get("sha256"), source=source, source_id=source_id)
        return self._add_one(who, name, record, {"from": "hashes"})

    def add_image(self, who: Principal, name: str, data: bytes, record_id: str | None = None,
                  victim_id: str | None = None) -> StoredRecord:
        """One record from an image: its hashes, robust variants and regions, never its pixels."""
        require(who, CURATORS, "add to banks")
        try:
            hashes = hashes_for_bank(data, robust=True)
        except DecodeError as exc:
            raise InvalidInput(str(exc), code=exc.code) from None
        record = BankRecord(record_id=record_id or new_record_id(), victim_id=victim_id, labels=(), **hashes)
        return self._add_one(who, name, record, {"from": "image"})

    def _add_one(self, who: Principal, name: str, record: BankRecord, detail: dict) -> StoredRecord:
        with self.storage.unit() as unit:
            bank = get_bank(unit, who, name)
            imported, rejected = self._add(unit, bank, [record], [1])
            if rejected:
                raise Conflict(rejected[0]["message"], code="duplicate_record")
            audit(unit, who, "import", "bank", name, {**detail, "imported": imported, "record_id": record.record_id})
            stored = unit.banks.record(bank.id, record_id=record.record_id)
        self.changed(name, False)
        return stored

    def record(self, who: Principal, name: str, content_id: int) -> StoredRecord:
        """A record by its store id (audited: a bank's hashes are the clearinghouse's to guard)."""
        require(who, CURATORS, "read bank records")
        with self.storage.unit() as unit:
            record = unit.banks.record(get_bank(unit, who, name).id, content_id=content_id)
            if record is None:
                raise NotFound(f"bank {name!r} has no record with id {content_id}")
            audit(unit, who, "read", "bank_record", f"{name}/{record.record_id}")
        return record

    def set_record_state(self, who: Principal, name: str, content_id: int, enabled: bool,
                         disabled_until: int | None) -> StoredRecord:
        """Enable a record, disable it, or disable it until a unix time; disabled records never match."""
        require(who, CURATORS, "change bank records")
        if disabled_until is not None and not 0 <= disabled_until <= MAX_UNIX_TIME:
            raise InvalidInput("a disabled-until time is unix seconds, 0 to year 9999", code="invalid_time")
        with self.storage.unit() as unit:
            bank = get_bank(unit, who, name)
            record = unit.banks.record(bank.id, content_id=content_id)
            if record is None:
                raise NotFound(f"bank {name!r} has no record with id {content_id}")
            unit.banks.set_state(bank.id, [record.record_id], enabled, disabled_until)
            audit(unit, who, "update", "bank_record", f"{name}/{record.record_id}",
                  {"enabled": enabled, "disabled_until": disabled_until})
            stored = unit.banks.record(bank.id, content_id=content_id)
        self.changed(name, False)
        return stored

    @staticmethod
    def _add(unit: Unit, bank: BankInfo, records: Sequence[BankRecord], lines: Iterable[int]) -> tuple[int, list]:
        """Add records; an id already in the bank is rejected ({line, code, message}), never replaced."""
        unit.banks.lock(bank.id)
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
