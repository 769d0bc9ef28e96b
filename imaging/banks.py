"""Hash bank files: CSV and JSON Lines lists of known hashes, parsed with a reason for every bad row.

Both formats carry every field of a record, so export -> import gives back the same bank.

Columns (CSV header) / keys (JSONL objects): ``record_id`` (required, 1..200 characters), ``victim_id``,
``pdq`` (64 hex), ``md5`` (32 hex), ``sha1`` (40 hex), ``sha256`` (64 hex), ``labels``; provenance: ``source``
(the exchange or hotline), ``source_id`` (its own entry id), ``member_id`` (the member/ESP that shared it);
state: ``enabled`` (default true), ``disabled_until`` (unix seconds; the record does not match before then);
``extra_hashes``: the robust variants and region hashes of an enrolled image, ``{kind: [hex, ...]}`` with kinds
from ``EXTRA_KINDS`` (`imaging.signals`). Every row needs at least one of the four hashes. Hex is accepted in
either case and stored lowercase; values are stripped of surrounding whitespace and an empty value means
absent. Files without the newer columns parse with their defaults.

In CSV, ``enabled`` is ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, any case), ``disabled_until`` a
decimal integer and ``extra_hashes`` the JSON object as text; in JSONL they are a JSON boolean, integer and
object (a boolean or integer given as such a string is accepted too).

``labels``: in CSV one field of labels separated by ``;`` (``"adult;screenshot"``); in JSONL a list of
strings, or one string split on ``;`` like the CSV field. Labels are stripped and empty ones dropped, so a
label cannot contain ``;``. Identifiers (record, victim, source, source entry and member ids) and labels are
at most 200 characters without control characters. In JSONL an identifier given as a JSON integer is read as
its decimal string.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from imaging import signals

FIELDS = ("record_id", "victim_id", "pdq", "md5", "sha1", "sha256", "labels", "source", "source_id", "member_id",
          "enabled", "disabled_until", "extra_hashes")
IDENTIFIERS = ("record_id", "victim_id", "source", "source_id", "member_id")
# The kinds a record's extra_hashes may hold: the PDQ-style ones other than its own `pdq` column.
EXTRA_KINDS = tuple(kind for kind, signal in signals.SIGNALS.items() if not signal.exact and kind != "pdq")
MAX_ID_LENGTH = 200
MAX_TIMESTAMP = 2**63 - 1  # what the store's BIGINT column holds
LABEL_SEPARATOR = ";"
FORMATS = ("csv", "jsonl")

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
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
    # PDQ hashes of robust variants and regions ({kind: [hex, ...]}) when the record was enrolled from the image
    # itself; compared (a bank that lost them matches less), but not hashed, being a dict.
    extra_hashes: dict = field(default_factory=dict, hash=False)
    source: str | None = None
    source_id: str | None = None
    member_id: str | None = None
    enabled: bool = True
    disabled_until: int | None = None  # unix seconds: disabled while now < disabled_until


@dataclass(frozen=True)
class RowError:
    line: int
    error: str


class InvalidRow(ValueError):
    """Why one row's fields make no record."""


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
    text = decode_text(data)
    if isinstance(text, RowError):
        return [], [text]
    return records_from_rows(csv_rows(text, FIELDS, "record_id") if format == "csv" else _jsonl_rows(text))


def write_bank(records: Iterable[BankRecord], format: str) -> str:
    """Serialise records so that ``parse_bank`` reads them back equal; an invalid record is a ValueError."""
    if format not in FORMATS:
        raise ValueError(f"bank format must be one of {FORMATS}, got {format!r}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n") if format == "csv" else None
    if writer:
        writer.writerow(FIELDS)
    for position, record in enumerate(records):
        check_writable(record, position)
        values = {name: getattr(record, name) for name in FIELDS}
        values["labels"] = list(record.labels)
        if writer:
            writer.writerow([_csv_value(name, value) for name, value in values.items()])
        else:
            out.write(json.dumps(values, ensure_ascii=False) + "\n")
    return out.getvalue()


def decode_text(data: bytes | str) -> str | RowError:
    """A file's text without its byte order mark, or the file-level error that it is not UTF-8."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return RowError(line, f"file is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})")


def records_from_rows(rows: Iterable[Row]) -> tuple[list[BankRecord], list[RowError]]:
    """Each row's record (see `record_from_fields`) or its error; a record_id seen before is an error."""
    records: list[BankRecord] = []
    errors: list[RowError] = []
    first_line_of: dict[str, int] = {}
    for line, fields in rows:
        if isinstance(fields, RowError):
            errors.append(fields)
            continue
        try:
            record = record_from_fields(fields)
        except InvalidRow as error:
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


def check_writable(record: BankRecord, position: int) -> None:
    """ValueError unless `record` is valid and in the form `record_from_fields` gives, so it reads back equal."""
    values = {name: getattr(record, name) for name in FIELDS}
    values["labels"] = list(record.labels)
    try:
        if record_from_fields(values) != record:
            raise InvalidRow("values are not in canonical form (stripped, lowercase hex, no empty labels)")
    except InvalidRow as error:
        raise ValueError(f"record {position} ({record.record_id!r}): {error}") from None


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). fimg's CSV files quote such a
# cell with a leading apostrophe, and a cell that starts with an apostrophe gets one more, so reading undoes it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CELL_QUOTE = "'"


def spreadsheet_safe(cell: str) -> str:
    return CELL_QUOTE + cell if cell.startswith((*FORMULA_STARTS, CELL_QUOTE)) else cell


def spreadsheet_plain(cell: str) -> str:
    quoted = cell.startswith(CELL_QUOTE) and cell[1:].startswith((*FORMULA_STARTS, CELL_QUOTE))
    return cell[1:] if quoted else cell


def _csv_value(name: str, value: Any) -> str:
    return spreadsheet_safe(_csv_text(name, value))


def _csv_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "labels":
        return LABEL_SEPARATOR.join(value)
    if name == "enabled":
        return "true" if value else "false"
    if name == "extra_hashes":
        return json.dumps(value, separators=(",", ":")) if value else ""
    return str(value)


def csv_rows(text: str, columns: tuple[str, ...], required: str) -> list[Row]:
    """The data rows of a CSV file whose header names some of `columns`, `required` among them."""
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
                problem = _header_problem(header, columns, required)
                if problem:
                    return [(line, RowError(line, problem))]
                continue
            if len(fields) != len(header):
                rows.append((line, RowError(line, f"expected {len(header)} fields as in the header, got {len(fields)}")))
            else:
                rows.append((line, dict(zip(header, map(spreadsheet_plain, fields)))))
    except csv.Error as error:
        line = previous_end + 1
        rows.append((line, RowError(line, f"malformed CSV, reading stopped here: {error}")))
    if header is None:
        return [(1, RowError(1, f"missing header: the first line must name the columns, from {', '.join(columns)}"))]
    return rows


def _header_problem(header: list[str], columns: tuple[str, ...], required: str) -> str | None:
    if not set(header) & set(columns):
        return f"missing header: the first line must name the columns, from {', '.join(columns)}; got {header}"
    unknown = [name for name in header if name not in columns]
    if unknown:
        return f"unknown columns: {', '.join(map(repr, unknown))} (allowed: {', '.join(columns)})"
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"repeated columns: {', '.join(repeated)}"
    if required not in header:
        return f"the header lacks the required column {required}"
    return None


def json_problem(error: ValueError | RecursionError) -> str:
    """Why a line is not usable JSON, for its RowError: bad syntax, a number too long to read, or nesting too deep."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} (column {error.colno})"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return "a number has too many digits"


def _jsonl_rows(text: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as error:
            rows.append((number, RowError(number, f"invalid JSON: {json_problem(error)}")))
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


def record_from_fields(fields: Mapping[str, Any]) -> BankRecord:
    """A validated record from one row's fields (named as FIELDS; absent ones take their defaults), or InvalidRow."""
    identifiers = {name: identifier(fields.get(name), name) for name in IDENTIFIERS}
    if identifiers["record_id"] is None:
        raise InvalidRow("record_id is required")
    hashes = {name: _hex(fields.get(name), name) for name in signals.HASH_COLUMNS}
    if not any(hashes.values()):
        raise InvalidRow(f"no hash: need at least one of {', '.join(signals.HASH_COLUMNS)}")
    return BankRecord(
        labels=_labels(fields.get("labels")),
        extra_hashes=_extra_hashes(fields.get("extra_hashes")),
        enabled=_flag(fields.get("enabled"), "enabled"),
        disabled_until=_timestamp(fields.get("disabled_until"), "disabled_until"),
        **identifiers,
        **hashes,
    )


def _text(value: Any, name: str) -> str | None:
    """A stripped string or None; JSON integers are taken as their decimal form."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidRow(f"{name} must be a string, got {type(value).__name__}")
    if any(unicodedata.category(character) == "Cc" for character in value.strip()):
        raise InvalidRow(f"{name} contains control characters")
    return value.strip() or None


def identifier(value: Any, name: str) -> str | None:
    """A stripped identifier of at most MAX_ID_LENGTH characters, or None; InvalidRow if it is not one."""
    text = _text(value, name)
    if text is not None and len(text) > MAX_ID_LENGTH:
        raise InvalidRow(f"{name} is longer than {MAX_ID_LENGTH} characters ({len(text)})")
    return text


def _hex(value: Any, name: str) -> str | None:
    if isinstance(value, str):
        value = value.strip() or None
    if value is None:
        return None
    try:
        return signals.normalise(name, value)
    except ValueError as error:
        raise InvalidRow(str(error)) from None


def _labels(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts: list[Any] = value.split(LABEL_SEPARATOR)
    elif isinstance(value, list):
        parts = value
    else:
        raise InvalidRow(f"labels must be a list of strings or a {LABEL_SEPARATOR!r}-separated string")
    labels = []
    for part in parts:
        if not isinstance(part, str):
            raise InvalidRow(f"labels must be strings, got {type(part).__name__}")
        if LABEL_SEPARATOR in part:
            raise InvalidRow(f"label {part!r} contains {LABEL_SEPARATOR!r}")
        label = _text(part, "label")
        if label:
            labels.append(label)
    return tuple(labels)


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word == "" or word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidRow(f"{name} must be true or false, got {value!r}")


def _timestamp(value: Any, name: str) -> int | None:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not (text.isascii() and text.isdigit()):
            raise InvalidRow(f"{name} must be unix seconds (a whole number), got {value!r}")
        value = int(text)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRow(f"{name} must be unix seconds (a whole number), got {type(value).__name__}")
    if not 0 <= value <= MAX_TIMESTAMP:
        raise InvalidRow(f"{name} must be between 0 and {MAX_TIMESTAMP}, got {value}")
    return value


def _extra_hashes(value: Any) -> dict[str, list[str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except (ValueError, RecursionError) as error:
            raise InvalidRow(f"extra_hashes is not JSON: {json_problem(error)}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRow(f"extra_hashes must be an object of {{kind: [hex, ...]}}, got {type(value).__name__}")
    extra = {}
    for kind, hashes in value.items():
        if kind not in EXTRA_KINDS:
            raise InvalidRow(f"extra_hashes kind {kind!r} is not one of {', '.join(EXTRA_KINDS)}")
        if not isinstance(hashes, list):
            raise InvalidRow(f"extra_hashes[{kind!r}] must be a list of hex strings, got {type(hashes).__name__}")
        try:
            extra[kind] = [signals.normalise(kind, hex_value) for hex_value in hashes]
        except ValueError as error:
            raise InvalidRow(f"extra_hashes: {error}") from None
    return {kind: hashes for kind, hashes in extra.items() if hashes}
