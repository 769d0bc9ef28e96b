"""Hash bank files: CSV and JSON Lines lists of known hashes, parsed with a reason for every bad row.

Columns (CSV header) / keys (JSONL objects): ``record_id`` (required, 1..200 characters), ``victim_id``,
``pdq`` (64 hex), ``md5`` (32 hex), ``sha1`` (40 hex), ``sha256`` (64 hex), ``labels``. Every row needs at
least one of the four hashes. Hex is accepted in either case and stored lowercase; values are stripped of
surrounding whitespace and an empty value means absent.

``labels``: in CSV one field of labels separated by ``;`` (``"adult;screenshot"``); in JSONL a list of
strings, or one string split on ``;`` like the CSV field. Labels are stripped and empty ones dropped, so a
label cannot contain ``;``. Identifiers and labels may not contain control characters. In JSONL a
``record_id`` or ``victim_id`` given as a JSON integer is read as its decimal string.

Parsing never drops a row silently: every non-blank data line yields a record or a ``RowError`` with its
1-based line number (the first physical line of a multi-line quoted CSV record). A problem with the whole
file (not UTF-8, no or bad CSV header) is one error and no records. A UTF-8 byte order mark and CRLF line
ends are accepted; blank lines are skipped and not counted.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any, Iterable

from imaging import signals

FIELDS = ("record_id", "victim_id", "pdq", "md5", "sha1", "sha256", "labels")
MAX_ID_LENGTH = 200
LABEL_SEPARATOR = ";"
FORMATS = ("csv", "jsonl")

_FORMAT_OF_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_FORMAT_OF_CONTENT_TYPE = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
}


@dataclass(frozen=True)
class BankRecord:
    record_id: str
    victim_id: str | None
    pdq: str | None
    md5: str | None
    sha1: str | None
    sha256: str | None
    labels: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)  # where parse_bank read it (0: not from a file)
    # PDQ hashes of robust variants ({kind: [hex, ...]}) when the record was enrolled from the image itself;
    # not part of the file formats.
    extra_hashes: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RowError:
    line: int
    error: str


class _RowInvalid(ValueError):
    pass


Row = tuple[int, "dict[str, Any] | RowError"]  # line number, and the row's fields or why it has none


def detect_format(filename: str | None, content_type: str | None) -> str:
    """"csv" or "jsonl" from a Content-Type or, when that is absent or generic, the file name's suffix."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    by_type = _FORMAT_OF_CONTENT_TYPE.get(media_type)
    by_name = _FORMAT_OF_SUFFIX.get(PurePath(filename).suffix.lower()) if filename else None
    if by_type and by_name and by_type != by_name:
        raise ValueError(f"content type {media_type!r} ({by_type}) contradicts file name {filename!r} ({by_name})")
    if by_type or by_name:
        return by_type or by_name
    raise ValueError(
        f"cannot tell the bank format of file {filename!r} with content type {content_type!r}: "
        "use a .csv, .jsonl or .ndjson file, or text/csv or application/x-ndjson"
    )


def parse_bank(data: bytes | str, format: str) -> tuple[list[BankRecord], list[RowError]]:
    """Records and row errors of a bank file; see the module docstring for the rules."""
    if format not in FORMATS:
        raise ValueError(f"bank format must be one of {FORMATS}, got {format!r}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            return [], [RowError(line, f"file is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})")]
    else:
        text = data.removeprefix("\ufeff")
    rows = _csv_rows(text) if format == "csv" else _jsonl_rows(text)
    records: list[BankRecord] = []
    errors: list[RowError] = []
    first_line_of: dict[str, int] = {}
    for line, fields in rows:
        if isinstance(fields, RowError):
            errors.append(fields)
            continue
        try:
            record = _record(fields)
        except _RowInvalid as error:
            errors.append(RowError(line, str(error)))
            continue
        if record.record_id in first_line_of:
            errors.append(
                RowError(line, f"duplicate record_id {record.record_id!r} (first on line {first_line_of[record.record_id]})")
            )
            continue
        first_line_of[record.record_id] = line
        records.append(replace(record, line=line))
    return records, errors


def write_bank(records: Iterable[BankRecord], format: str) -> str:
    """Serialise records so that ``parse_bank`` reads them back equal; an invalid record is a ValueError."""
    if format not in FORMATS:
        raise ValueError(f"bank format must be one of {FORMATS}, got {format!r}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n") if format == "csv" else None
    if writer:
        writer.writerow(FIELDS)
    for position, record in enumerate(records):
        values = {name: getattr(record, name) for name in FIELDS}
        values["labels"] = list(record.labels)
        try:
            if _record(values) != record:
                raise _RowInvalid("values are not in canonical form (stripped, lowercase hex, no empty labels)")
        except _RowInvalid as error:
            raise ValueError(f"record {position} ({record.record_id!r}): {error}") from None
        if writer:
            values["labels"] = LABEL_SEPARATOR.join(record.labels)
            writer.writerow(["" if value is None else value for value in values.values()])
        else:
            out.write(json.dumps(values, ensure_ascii=False) + "\n")
    return out.getvalue()


def _csv_rows(text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[Row] = []
    header: list[str] | None = None
    previous_end = 0
    try:
        for fields in reader:
            line, previous_end = previous_end + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if header is None:
                header = [name.strip().lower() for name in fields]
                problem = _header_problem(header)
                if problem:
                    return [(line, RowError(line, problem))]
                continue
            if len(fields) != len(header):
                rows.append((line, RowError(line, f"expected {len(header)} fields as in the header, got {len(fields)}")))
            else:
                rows.append((line, dict(zip(header, fields))))
    except csv.Error as error:
        line = previous_end + 1
        rows.append((line, RowError(line, f"malformed CSV, reading stopped here: {error}")))
    if header is None:
        return [(1, RowError(1, f"missing header: the first line must name the columns, from {', '.join(FIELDS)}"))]
    return rows


def _header_problem(header: list[str]) -> str | None:
    if not set(header) & set(FIELDS):
        return f"missing header: the first line must name the columns, from {', '.join(FIELDS)}; got {header}"
    unknown = [name for name in header if name not in FIELDS]
    if unknown:
        return f"unknown columns: {', '.join(map(repr, unknown))} (allowed: {', '.join(FIELDS)})"
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"repeated columns: {', '.join(repeated)}"
    if "record_id" not in header:
        return "the header lacks the required column record_id"
    return None


def _jsonl_rows(text: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            rows.append((number, RowError(number, f"invalid JSON: {error.msg} (column {error.colno})")))
            continue
        if not isinstance(value, dict):
            rows.append((number, RowError(number, f"expected a JSON object, got {type(value).__name__}")))
            continue
        unknown = [key for key in value if key not in FIELDS]
        if unknown:
            rows.append((number, RowError(number, f"unknown keys: {', '.join(map(repr, unknown))} (allowed: {', '.join(FIELDS)})")))
            continue
        rows.append((number, value))
    return rows


def _record(fields: dict[str, Any]) -> BankRecord:
    record_id = _identifier(fields.get("record_id"), "record_id")
    if record_id is None:
        raise _RowInvalid("record_id is required")
    hashes = {name: _hex(fields.get(name), name) for name in signals.HASH_COLUMNS}
    if not any(hashes.values()):
        raise _RowInvalid(f"no hash: need at least one of {', '.join(signals.HASH_COLUMNS)}")
    return BankRecord(
        record_id=record_id,
        victim_id=_identifier(fields.get("victim_id"), "victim_id"),
        labels=_labels(fields.get("labels")),
        **hashes,
    )


def _text(value: Any, name: str) -> str | None:
    """A stripped string or None; JSON integers are taken as their decimal form."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _RowInvalid(f"{name} must be a string, got {type(value).__name__}")
    if any(unicodedata.category(character) == "Cc" for character in value.strip()):
        raise _RowInvalid(f"{name} contains control characters")
    return value.strip() or None


def _identifier(value: Any, name: str) -> str | None:
    text = _text(value, name)
    if text is not None and len(text) > MAX_ID_LENGTH:
        raise _RowInvalid(f"{name} is longer than {MAX_ID_LENGTH} characters ({len(text)})")
    return text


def _hex(value: Any, name: str) -> str | None:
    if isinstance(value, str):
        value = value.strip() or None
    if value is None:
        return None
    try:
        return signals.normalise(name, value)
    except ValueError as error:
        raise _RowInvalid(str(error)) from None


def _labels(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts: list[Any] = value.split(LABEL_SEPARATOR)
    elif isinstance(value, list):
        parts = value
    else:
        raise _RowInvalid(f"labels must be a list of strings or a {LABEL_SEPARATOR!r}-separated string")
    labels = []
    for part in parts:
        if not isinstance(part, str):
            raise _RowInvalid(f"labels must be strings, got {type(part).__name__}")
        if LABEL_SEPARATOR in part:
            raise _RowInvalid(f"label {part!r} contains {LABEL_SEPARATOR!r}")
        label = _text(part, "label")
        if label:
            labels.append(label)
    return tuple(labels)
