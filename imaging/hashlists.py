"""Hash lists in other tools' formats: python-threatexchange's (pytx) local files and dataset CSV, and NCMEC's
hash-sharing API v2 entries. Read into bank records with a reason for every line that gives none.

Formats (`FORMATS`):

- ``pytx_local``: pytx's ``local_file`` collaboration, one ``<signal_type> <hash>`` per line, or one bare hash
  per line read as ``default_signal_type``.
- ``pytx_dataset_csv``: the output of ``threatexchange dataset -P --csv``, columns
  ``signal_type,signal_str,collab,category,tags``: ``collab`` becomes the record's ``source``, ``tags``
  (space-separated) its labels; ``category`` ``NEGATIVE_CLASS`` (pytx: false positives, test data) or
  ``DISPUTED`` (collaborators disagree) makes the record disabled, for an analyst to enable;
  ``POSITIVE_CLASS``, ``INVESTIGATION_SEED`` or none an enabled one.
- ``ncmec_xml``: a ``queryResult`` document of NCMEC's ``GET /v2/entries`` (namespaced or not). An ``<image>``
  becomes a record: ``record_id`` ``ncmec:<entry id>``, ``source`` ``ncmec``, ``source_id`` the entry id,
  ``member_id`` the member's id, its ``classification`` as a label, fingerprints ``md5``, ``sha1`` and ``pdq``.
  A ``<deletedImage>`` or ``<deletedVideo>`` is a `Tombstone` of the same record id: the importer applies
  tombstones after the records, disabling (or removing) the record that has that id. Other parts (paging,
  feedback, timestamps) are not read. A document with a DOCTYPE is refused (so no entity can be declared, and
  none is expanded); the caller bounds its size.

Signal types: pytx's ``pdq``, ``video_md5`` and ``video_sha256`` (pytx's only names for file digests: a file
digest matches the same bytes whatever pytx calls them) and the plain ``md5``, ``sha1``, ``sha256`` are read as
fimg's kinds; pytx has no SHA-1 type, so SHA-1 is not written. A line of a type fimg cannot match (``photodna``,
``vpdq``, ``tmk_pdqf``...), an NCMEC image with none of md5/sha1/pdq and every NCMEC video (fimg matches images)
is a `RowError`; every fingerprint not imported is counted in `HashListImport.unsupported`, by pytx type name or
by ``<entry type>/<fingerprint>`` for NCMEC (``image/pdna``, ``video/md5``).

Record ids: the pytx formats carry none, so a record's id is ``<fimg kind>:<lowercase hex>`` (``pdq:f8f8...``,
``md5:d41d...``); a signal listed twice (pytx lists one per collaboration) is a duplicate on its later line.

Line numbers are 1-based as in `imaging.banks`; for NCMEC an entry's line is the one where its start tag ends.
"""
from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from imaging import signals
from imaging.banks import (
    BankRecord,
    InvalidRow,
    Row,
    RowError,
    check_writable,
    csv_rows,
    decode_text,
    identifier,
    records_from_rows,
    spreadsheet_safe,
)

FORMATS = ("pytx_local", "pytx_dataset_csv", "ncmec_xml")
WRITABLE_FORMATS = ("pytx_local", "pytx_dataset_csv")
DATASET_COLUMNS = ("signal_type", "signal_str", "collab", "category", "tags")
NCMEC_SOURCE = "ncmec"

KIND_OF_PYTX_TYPE = {"pdq": "pdq", "video_md5": "md5", "video_sha256": "sha256", "md5": "md5", "sha1": "sha1",
                     "sha256": "sha256"}
PYTX_TYPE_OF_KIND = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256"}  # the order lines are written in
_ENABLED_OF_CATEGORY = {"": True, "POSITIVE_CLASS": True, "INVESTIGATION_SEED": True, "NEGATIVE_CLASS": False,
                        "DISPUTED": False}
_NCMEC_KINDS = ("md5", "sha1", "pdq")  # image fingerprints fimg matches, named as NCMEC names them
_SIGNAL_TYPE_NAME = re.compile(r"[a-z0-9_]{1,64}")
_DOCTYPE = re.compile(r"<!DOCTYPE", re.IGNORECASE)
_ENTRY_PARTS = ("id", "member", "classification", "fingerprints")
_ENTRY_TAGS = {"images": ("image", "deletedImage"), "videos": ("video", "deletedVideo")}


@dataclass(frozen=True)
class Tombstone:
    """A deleted entry of a source: the importer disables or removes the record with this id."""

    record_id: str
    source: str
    source_id: str
    line: int


class HashListImport(NamedTuple):
    records: list[BankRecord]
    errors: list[RowError]
    tombstones: list[Tombstone]
    unsupported: dict[str, int]  # foreign hash type -> how many of its hashes were not imported


def parse_hashlist(data: bytes | str, format: str, default_signal_type: str | None = None) -> HashListImport:
    """Records, row errors, tombstones and counts of unsupported hashes of a hash list; see the module docstring."""
    if format not in FORMATS:
        raise ValueError(f"hash list format must be one of {FORMATS}, got {format!r}")
    if default_signal_type is not None and format != "pytx_local":
        raise ValueError("default_signal_type applies to pytx_local only")
    if default_signal_type is not None and default_signal_type not in KIND_OF_PYTX_TYPE:
        raise ValueError(f"default_signal_type must be one of {', '.join(KIND_OF_PYTX_TYPE)}, "
                         f"got {default_signal_type!r}")
    text = decode_text(data)
    if isinstance(text, RowError):
        return HashListImport([], [text], [], {})
    unsupported: Counter[str] = Counter()
    tombstones: list[Tombstone] = []
    if format == "pytx_local":
        rows = _local_rows(text, default_signal_type, unsupported)
    elif format == "pytx_dataset_csv":
        rows = _dataset_rows(text, unsupported)
    else:
        rows = _ncmec_rows(text, unsupported, tombstones)
    records, errors = records_from_rows(rows)
    return HashListImport(records, errors, tombstones, dict(unsupported))


def write_hashlist(records: Iterable[BankRecord], format: str) -> tuple[str, list[str]]:
    """The records as a pytx file, and a warning for each kind of thing the format could not carry.

    One line per hash (pdq, md5, sha256) a record has, a hash shared by records once. pytx_local has no way to
    mark a record disabled, so disabled records are left out; pytx_dataset_csv writes them as NEGATIVE_CLASS.
    """
    if format not in WRITABLE_FORMATS:
        raise ValueError(f"hash lists can be written as {', '.join(WRITABLE_FORMATS)}, not {format!r}")
    records = list(records)
    for position, record in enumerate(records):
        check_writable(record, position)
    dataset = format == "pytx_dataset_csv"
    written = [record for record in records if dataset or record.enabled]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if dataset:
        writer.writerow(DATASET_COLUMNS)
    seen: set[tuple[str, str]] = set()
    for record in written:
        for signal_type, value in _signals(record):
            if (signal_type, value) in seen:
                continue
            seen.add((signal_type, value))
            if dataset:
                writer.writerow([spreadsheet_safe(cell) for cell in _dataset_row(record, signal_type, value)])
            else:
                out.write(f"{signal_type} {value}\n")
    return out.getvalue(), _losses(records, written, format)


def _signals(record: BankRecord) -> list[tuple[str, str]]:
    return [(signal_type, getattr(record, kind)) for kind, signal_type in PYTX_TYPE_OF_KIND.items()
            if getattr(record, kind)]


def _dataset_row(record: BankRecord, signal_type: str, value: str) -> list[str]:
    category = "POSITIVE_CLASS" if record.enabled else "NEGATIVE_CLASS"
    return [signal_type, value, record.source or "", category, " ".join(record.labels)]


def _losses(records: list[BankRecord], written: list[BankRecord], format: str) -> list[str]:
    """What the written file does not say of `records`, one warning per kind of loss, with its count."""
    dataset = format == "pytx_dataset_csv"
    counts = {
        "disabled records left out: pytx_local cannot mark a record disabled":
            len(records) - len(written),
        "records without a pdq, md5 or sha256 left out":
            sum(not _signals(record) for record in written),
        "SHA-1 hashes not written: pytx has no SHA-1 signal type":
            sum(record.sha1 is not None for record in written),
        "records written as several lines, one per hash: read back, each line is a record of its own":
            sum(len(_signals(record)) > 1 for record in written),
        "hashes shared by several records written once":
            _shared_hashes(written),
        f"record ids not carried: {format} has none, so a record read back is named <kind>:<hash>":
            sum(not _keeps_id(record) for record in written if _signals(record)),
        "robust variants and region hashes (extra_hashes) not written: edited copies match less":
            sum(bool(record.extra_hashes) for record in written),
        "victim ids not carried": sum(record.victim_id is not None for record in written),
        "source entry ids not carried": sum(record.source_id is not None for record in written),
        "member ids not carried": sum(record.member_id is not None for record in written),
        "disabled_until times not carried: a record disabled only until a time is written as enabled":
            sum(record.disabled_until is not None for record in written),
        "sources not carried: pytx_local has no collaboration column":
            0 if dataset else sum(record.source is not None for record in written),
        "labels not carried: pytx_local has no tags":
            0 if dataset else sum(bool(record.labels) for record in written),
        "labels with whitespace, which pytx reads as several tags":
            sum(any(re.search(r"\s", label) for label in record.labels) for record in written) if dataset else 0,
    }
    return [f"{count} {what}" for what, count in counts.items() if count]


def _shared_hashes(records: list[BankRecord]) -> int:
    holders = Counter(signal for record in records for signal in set(_signals(record)))
    return sum(1 for count in holders.values() if count > 1)


def _keeps_id(record: BankRecord) -> bool:
    found = _signals(record)
    return len(found) == 1 and record.record_id == f"{KIND_OF_PYTX_TYPE[found[0][0]]}:{found[0][1]}"


def _local_rows(text: str, default_signal_type: str | None, unsupported: Counter[str]) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        if default_signal_type:
            signal_type, value = default_signal_type, line
        else:
            signal_type, _, value = line.partition(" ")
        value = value.strip()
        if not value:
            rows.append((number, RowError(number, "expected '<signal_type> <hash>' (or bare hashes with a default "
                                                  "signal type)")))
            continue
        rows.append((number, _signal_fields(number, signal_type, value, unsupported)))
    return rows


def _dataset_rows(text: str, unsupported: Counter[str]) -> list[Row]:
    rows: list[Row] = []
    for line, fields in csv_rows(text, DATASET_COLUMNS, "signal_type"):
        if not isinstance(fields, RowError):
            fields = _dataset_fields(line, fields, unsupported)
        rows.append((line, fields))
    return rows


def _dataset_fields(line: int, row: dict[str, str], unsupported: Counter[str]) -> dict[str, Any] | RowError:
    category = row.get("category", "").strip().upper()
    if category not in _ENABLED_OF_CATEGORY:
        return RowError(line, f"category {row['category']!r} is not one of pytx's "
                              f"{', '.join(name for name in _ENABLED_OF_CATEGORY if name)}")
    value = row.get("signal_str", "").strip()
    if not value:
        return RowError(line, "signal_str is empty")
    fields = _signal_fields(line, row["signal_type"].strip(), value, unsupported)
    if isinstance(fields, RowError):
        return fields
    return {**fields, "source": row.get("collab"), "labels": row.get("tags", "").split(),
            "enabled": _ENABLED_OF_CATEGORY[category]}


def _signal_fields(line: int, signal_type: str, value: str, unsupported: Counter[str]) -> dict[str, str] | RowError:
    """The fields of the record of one pytx signal, or why there is none (an unsupported type is counted)."""
    if not _SIGNAL_TYPE_NAME.fullmatch(signal_type):
        return RowError(line, f"{signal_type[:70]!r} is not a signal type name")
    kind = KIND_OF_PYTX_TYPE.get(signal_type)
    if kind is None:
        unsupported[signal_type] += 1
        return RowError(line, f"signal type {signal_type!r} is not one fimg can match "
                              f"({', '.join(KIND_OF_PYTX_TYPE)}): not imported")
    try:
        value = signals.normalise(kind, value)
    except ValueError as error:
        return RowError(line, f"{signal_type}: {error}")
    return {"record_id": f"{kind}:{value}", kind: value}


def _ncmec_rows(text: str, unsupported: Counter[str], tombstones: list[Tombstone]) -> list[Row]:
    """Each entry of an NCMEC entries document as a row (tombstones and unsupported fingerprints aside)."""
    doctype = _DOCTYPE.search(text)
    if doctype:
        line = text.count("\n", 0, doctype.start()) + 1
        return [(line, RowError(line, "XML with a DOCTYPE is refused (entities are not expanded)"))]
    rows: list[Row] = []
    path: list[str] = []
    start_line: dict[ET.Element, int] = {}
    try:
        for number, event, element in _xml_events(text):
            if event == "start":
                path.append(_local_name(element.tag))
                start_line[element] = number
                if len(path) == 1 and path[0] != "queryResult":
                    return [(number, RowError(number, f"not NCMEC entries: the root is <{path[0]}>, "
                                                      "expected <queryResult>"))]
                continue
            if len(path) == 3 and path[1] in _ENTRY_TAGS:
                entry_line = start_line[element]
                row = _ncmec_entry(element, path[1], entry_line, unsupported)
                if isinstance(row, Tombstone):
                    tombstones.append(row)
                else:
                    rows.append((entry_line, row))
            path.pop()
    except ET.ParseError as error:
        line = error.position[0]
        rows.append((line, RowError(line, f"malformed XML, reading stopped here: {error}")))
    return rows


def _xml_events(text: str) -> Iterator[tuple[int, str, ET.Element]]:
    """(line, "start" or "end", element) of a document; ET.ParseError where it stops being XML.

    Fed a line at a time, so that an element is seen on the line where its start tag ends; lines split where
    expat counts them (\\n, \\r, \\r\\n), so its error positions agree.
    """
    parser = ET.XMLPullParser(events=("start", "end"))
    number = 0
    for number, line in enumerate(io.StringIO(text, newline="").readlines(), start=1):
        parser.feed(line)
        for event, element in parser.read_events():
            yield number, event, element
    parser.close()
    for event, element in parser.read_events():
        yield number, event, element


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _ncmec_entry(entry: ET.Element, container: str, line: int,
                 unsupported: Counter[str]) -> dict[str, Any] | Tombstone | RowError:
    tag = _local_name(entry.tag)
    if tag not in _ENTRY_TAGS[container]:
        return RowError(line, f"unexpected <{tag}> in <{container}>: expected {' or '.join(_ENTRY_TAGS[container])}")
    names = Counter(_local_name(child.tag) for child in entry)
    repeated = [name for name in _ENTRY_PARTS if names[name] > 1]
    if repeated:
        return RowError(line, f"<{tag}> has more than one <{repeated[0]}>")
    children = {_local_name(child.tag): child for child in entry}
    try:
        entry_id = identifier(_text_of(children.get("id")), "entry id")
        member = children.get("member")
        member_id = identifier(member.get("id") if member is not None else None, "member id")
    except InvalidRow as error:
        return RowError(line, str(error))
    if entry_id is None:
        return RowError(line, f"<{tag}> without an <id>")
    record_id = f"{NCMEC_SOURCE}:{entry_id}"
    if tag.startswith("deleted"):
        return Tombstone(record_id, NCMEC_SOURCE, entry_id, line)
    fingerprints = [(_local_name(child.tag), _text_of(child)) for child in children.get("fingerprints", ())]
    hashes, problem = _ncmec_hashes(tag, fingerprints, unsupported)
    if problem:
        return RowError(line, f"entry {entry_id!r}: {problem}")
    classification = _text_of(children.get("classification"))
    return {"record_id": record_id, "source": NCMEC_SOURCE, "source_id": entry_id, "member_id": member_id,
            "labels": [classification] if classification else [], **hashes}


def _ncmec_hashes(entry_type: str, fingerprints: list[tuple[str, str | None]],
                  unsupported: Counter[str]) -> tuple[dict[str, str], str | None]:
    """The hashes fimg keeps of an entry's fingerprints, or why it keeps none; the others are counted."""
    hashes: dict[str, str] = {}
    for name, value in fingerprints:
        if name in _NCMEC_KINDS and not value:
            continue  # an empty <md5/> holds no hash
        if entry_type == "image" and name in _NCMEC_KINDS:
            if name in hashes:
                return {}, f"more than one <{name}> fingerprint"
            hashes[name] = value
        else:
            unsupported[f"{entry_type}/{name}"] += 1
    found = ", ".join(name for name, _ in fingerprints) or "none"
    if entry_type != "image":
        return {}, f"a {entry_type}; fimg matches images only: not imported (fingerprints: {found})"
    if not hashes:
        return {}, f"no fingerprint fimg can match ({', '.join(_NCMEC_KINDS)}): not imported (fingerprints: {found})"
    return hashes, None


def _text_of(element: ET.Element | None) -> str | None:
    return (element.text or "").strip() or None if element is not None else None
