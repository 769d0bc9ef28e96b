import csv
import io
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imaging.banks import (
    EXTRA_KINDS,
    FORMATS,
    MAX_TIMESTAMP,
    BankRecord,
    RowError,
    detect_format,
    parse_bank,
    write_bank,
)
from imaging.matching import hashes_for_bank

PDQ = "f" * 16 + "0" * 16 + "a1" * 16
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HEADER = "record_id,victim_id,pdq,md5,sha1,sha256,labels"


def record(record_id="r1", **fields) -> BankRecord:
    values = dict(victim_id=None, pdq=None, md5=None, sha1=None, sha256=None, labels=())
    values.update(fields)
    return BankRecord(record_id=record_id, **values)


def test_csv_parses_every_column():
    text = f"{HEADER}\nr1,v9,{PDQ.upper()},{MD5},{SHA1},{SHA256},adult; screenshot ;\n"
    records, errors = parse_bank(text, "csv")
    assert errors == []
    assert records == [record("r1", victim_id="v9", pdq=PDQ, md5=MD5, sha1=SHA1, sha256=SHA256,
                              labels=("adult", "screenshot"))]


def test_csv_columns_may_be_a_subset_in_any_order():
    records, errors = parse_bank(f"md5,Record_ID\n{MD5},a\n", "csv")
    assert errors == [] and records == [record("a", md5=MD5)]


def test_jsonl_parses_lists_strings_integers_and_nulls():
    lines = [
        json.dumps({"record_id": "a", "pdq": PDQ, "labels": ["x", "y"]}),
        json.dumps({"record_id": 17, "victim_id": 4, "md5": MD5.upper(), "labels": "x;y", "sha1": None}),
    ]
    records, errors = parse_bank("\n".join(lines), "jsonl")
    assert errors == []
    assert records == [record("a", pdq=PDQ, labels=("x", "y")), record("17", victim_id="4", md5=MD5, labels=("x", "y"))]


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_bom_crlf_and_blank_lines(format):
    body = write_bank([record("a", md5=MD5), record("b", sha1=SHA1)], format)
    lines = body.splitlines()
    crlf = "\r\n".join([lines[0], "", "   ", *lines[1:], ""]) + "\r\n"
    records, errors = parse_bank(b"\xef\xbb\xbf" + crlf.encode(), format)
    assert errors == []
    assert [r.record_id for r in records] == ["a", "b"]


def csv_lines(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.mark.parametrize(
    "row, reason",
    [
        (f",,{PDQ},,,,", "record_id is required"),
        (f"{'x' * 201},,{PDQ},,,,", "longer than 200"),
        ("r,,,,,,", "no hash"),
        (f"r,,{PDQ[:-1]},,,,", "pdq must be 64 hexadecimal characters, got 63 characters"),
        (f"r,,,{MD5[:-1]}g,,,", "md5 must be 32 hexadecimal characters, got '"),
        (f"r,,,,{SHA1}0,,", "sha1 must be 40"),
        (f"r,,,,,{SHA256[:-2]},", "sha256 must be 64"),
        (f"r,,{PDQ},,,", "expected 7 fields"),
        (f"r,,{PDQ},,,,,", "expected 7 fields"),
        (f'"r\tx",,{PDQ},,,,', "control characters"),
    ],
)
def test_csv_bad_rows_are_reported_with_line_and_reason(row, reason):
    records, errors = parse_bank(csv_lines(f"ok,,{PDQ},,,,", "", row, f"ok2,,,{MD5},,,"), "csv")
    assert [r.record_id for r in records] == ["ok", "ok2"]
    assert len(errors) == 1 and errors[0].line == 4 and reason in errors[0].error


def test_duplicate_record_id_is_an_error_on_the_later_line():
    records, errors = parse_bank(csv_lines(f"a,,{PDQ},,,,", f"b,,{PDQ},,,,", f"a,,,{MD5},,,"), "csv")
    assert [(r.record_id, r.line) for r in records] == [("a", 2), ("b", 3)]
    assert errors == [RowError(4, "duplicate record_id 'a' (first on line 2)")]


def test_multiline_quoted_csv_record_keeps_its_first_line_number():
    text = csv_lines(f'a,,{PDQ},,,,"one\ntwo"', f"b,,{PDQ[:10]},,,,")
    records, errors = parse_bank(text, "csv")
    assert records == []
    assert [(e.line, "control characters" in e.error) for e in errors] == [(2, True), (4, False)]


@pytest.mark.parametrize(
    "text, reason",
    [
        (f"record_id,pdq,colour,size\nr,{PDQ},red,1\n", "unknown columns: 'colour', 'size'"),
        (f"r1,,{PDQ},,,,\nr2,,{PDQ},,,,\n", "missing header"),
        ("", "missing header"),
        (f"pdq,md5\n{PDQ},\n", "lacks the required column record_id"),
        (f"record_id,pdq,pdq\nr,{PDQ},{PDQ}\n", "repeated columns: pdq"),
    ],
)
def test_csv_header_problems_are_one_file_level_error(text, reason):
    records, errors = parse_bank(text, "csv")
    assert records == [] and len(errors) == 1 and reason in errors[0].error and errors[0].line == 1


def test_malformed_csv_quoting_stops_with_an_error_naming_the_line():
    records, errors = parse_bank(csv_lines(f"a,,{PDQ},,,,", f'b,,{PDQ},,,,"x"y'), "csv")
    assert [r.record_id for r in records] == ["a"]
    assert len(errors) == 1 and errors[0].line == 3 and "malformed CSV" in errors[0].error


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"record_id": "x", "pdq": ', "invalid JSON"),
        ('["record_id", "x"]', "expected a JSON object, got list"),
        ('"x"', "expected a JSON object, got str"),
        (json.dumps({"record_id": "x", "pdq": PDQ, "colour": 1, "size": 2}), "unknown keys: 'colour', 'size'"),
        (json.dumps({"record_id": "x", "pdq": 5}), "pdq must be 64 hexadecimal characters, got int"),
        (json.dumps({"record_id": True, "pdq": PDQ}), "record_id must be a string, got bool"),
        (json.dumps({"record_id": "x", "pdq": PDQ, "labels": [1]}), "labels must be strings"),
        (json.dumps({"record_id": "x", "pdq": PDQ, "labels": {"a": 1}}), "labels must be a list"),
        (json.dumps({"record_id": "x", "pdq": PDQ, "labels": ["a;b"]}), "contains ';'"),
        (json.dumps({"pdq": PDQ}), "record_id is required"),
    ],
)
def test_jsonl_bad_rows_are_reported_with_line_and_reason(line, reason):
    good = [json.dumps({"record_id": "ok", "md5": MD5}), json.dumps({"record_id": "ok2", "md5": MD5})]
    records, errors = parse_bank("\n".join([good[0], "", line, good[1]]), "jsonl")
    assert [r.record_id for r in records] == ["ok", "ok2"]
    assert len(errors) == 1 and errors[0].line == 3 and reason in errors[0].error


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_non_utf8_file_is_one_clear_error(format):
    data = write_bank([record("a", md5=MD5)], format).encode() + "b\xe9\n".encode("latin-1")
    records, errors = parse_bank(data, format)
    assert records == []
    bad_line = 3 if format == "csv" else 2  # after the header (CSV) and the one record
    assert len(errors) == 1 and "not UTF-8" in errors[0].error and errors[0].line == bad_line


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="bank format"):
        parse_bank("", "xml")
    with pytest.raises(ValueError, match="bank format"):
        write_bank([], "tsv")


@pytest.mark.parametrize(
    "filename, content_type, expected",
    [
        ("bank.csv", None, "csv"),
        ("BANK.CSV", "application/octet-stream", "csv"),
        ("bank.jsonl", None, "jsonl"),
        ("bank.ndjson", "text/plain", "jsonl"),
        (None, "text/csv; charset=utf-8", "csv"),
        ("upload", "application/x-ndjson", "jsonl"),
        ("bank.csv", "text/csv", "csv"),
    ],
)
def test_detect_format(filename, content_type, expected):
    assert detect_format(filename, content_type) == expected


@pytest.mark.parametrize(
    "filename, content_type",
    [("bank.txt", None), (None, None), ("bank.json", "application/json"), ("bank.csv", "application/x-ndjson")],
)
def test_detect_format_rejects_unknown_or_contradictory(filename, content_type):
    with pytest.raises(ValueError):
        detect_format(filename, content_type)


def test_write_bank_refuses_records_it_could_not_read_back():
    for bad in [record("a"), record("a", md5=MD5.upper()), record(" a", md5=MD5), record("a", md5=MD5, labels=("x;y",))]:
        with pytest.raises(ValueError):
            write_bank([bad], "csv")


identifier = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30
).map(str.strip).filter(bool)
label = identifier.filter(lambda s: ";" not in s)


def hex_of(length):
    return st.text(alphabet="0123456789abcdef", min_size=length, max_size=length)


records_strategy = st.lists(
    st.builds(
        BankRecord,
        record_id=identifier,
        victim_id=st.none() | identifier,
        pdq=st.none() | hex_of(64),
        md5=st.none() | hex_of(32),
        sha1=st.none() | hex_of(40),
        sha256=hex_of(64),
        labels=st.lists(label, max_size=4).map(tuple),
    ),
    max_size=12,
    unique_by=lambda r: r.record_id,
)


@settings(max_examples=150, deadline=None)
@given(records=records_strategy, format=st.sampled_from(["csv", "jsonl"]))
def test_round_trip(records, format):
    assert parse_bank(write_bank(records, format), format) == (records, [])
    assert parse_bank(write_bank(records, format).encode(), format) == (records, [])


def test_round_trip_of_awkward_text():
    records = [
        record('a,"b"', victim_id="ünï ✓", md5=MD5, labels=('say "hi", ok', "comma,inside", "日本")),
        record("line\u2028sep", pdq=PDQ, labels=("x",)),
    ]
    for format in ("csv", "jsonl"):
        assert parse_bank(write_bank(records, format), format) == (records, [])


row_text = st.text(alphabet=st.sampled_from(['a', ',', '"', '\n', ';', ' ', 'f', '0', '{', '}', ':']), max_size=80)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.one_of(row_text, st.just(f"x,,{PDQ},,,,")), max_size=8), format=st.sampled_from(["csv", "jsonl"]))
def test_no_row_is_dropped_silently(rows, format):
    if format == "jsonl":
        rows = [json.dumps({"record_id": f"id{i}", "pdq": PDQ}) if "x,," in r else r for i, r in enumerate(rows)]
    lines = [HEADER, *rows] if format == "csv" else rows
    text = "\n".join(line.replace("\n", " ") if format == "jsonl" else line for line in lines)
    records, errors = parse_bank(text, format)
    if format == "jsonl":
        data_lines = [line for line in text.split("\n") if line.strip()]
        assert len(records) + len(errors) == len(data_lines)
    elif not any("malformed CSV" in e.error for e in errors):
        data_rows = [r for r in csv.reader(io.StringIO(text, newline=""))][1:]
        non_blank = [r for r in data_rows if r and not (len(r) == 1 and not r[0].strip())]
        assert len(records) + len(errors) == len(non_blank)
    assert all(e.line >= 1 for e in errors)


# Provenance, state and extra hashes: every field of a record is in both formats.

EXTRA = {"pdq_crop": ["ab" * 32, "cd" * 32], "pdq_region": ["0f" * 32]}
FULL_HEADER = "record_id,pdq,source,source_id,member_id,enabled,disabled_until,extra_hashes"


def test_old_files_without_the_new_columns_take_the_defaults():
    records, errors = parse_bank(f"{HEADER}\nr1,v9,{PDQ},,,,x\n", "csv")
    assert errors == []
    (parsed,) = records
    assert (parsed.source, parsed.source_id, parsed.member_id, parsed.enabled, parsed.disabled_until,
            parsed.extra_hashes) == (None, None, None, True, None, {})


def test_csv_reads_provenance_state_and_extra_hashes():
    extra = json.dumps({"pdq_crop": [h.upper() for h in EXTRA["pdq_crop"]], "pdq_region": EXTRA["pdq_region"]})
    text = FULL_HEADER + "\n" + ",".join(["r1", PDQ, "ncmec", "e-17", "42", "FALSE", "1700000000",
                                          '"' + extra.replace('"', '""') + '"']) + "\n"
    records, errors = parse_bank(text, "csv")
    assert errors == []
    assert records == [record("r1", pdq=PDQ, source="ncmec", source_id="e-17", member_id="42", enabled=False,
                              disabled_until=1700000000, extra_hashes=EXTRA)]


def test_jsonl_reads_typed_and_string_forms_alike():
    typed = {"record_id": "r1", "pdq": PDQ, "member_id": 42, "enabled": False, "disabled_until": 17,
             "extra_hashes": EXTRA}
    strings = {**typed, "record_id": "r2", "member_id": "42", "enabled": "no", "disabled_until": "17",
               "extra_hashes": json.dumps(EXTRA)}
    records, errors = parse_bank("\n".join(map(json.dumps, [typed, strings])), "jsonl")
    assert errors == []
    assert records[0] == replace(records[1], record_id="r1")
    assert (records[0].member_id, records[0].enabled, records[0].disabled_until, records[0].extra_hashes) == \
        ("42", False, 17, EXTRA)


def test_extra_hashes_are_part_of_equality():
    assert record("a", pdq=PDQ, extra_hashes=EXTRA) != record("a", pdq=PDQ)


BAD_TEXT_FIELDS = [
    ({"enabled": "maybe"}, "enabled must be true or false, got 'maybe'"),
    ({"disabled_until": "-5"}, "disabled_until must be unix seconds"),
    ({"disabled_until": "1.5"}, "disabled_until must be unix seconds"),
    ({"disabled_until": str(2**63)}, "disabled_until must be between 0 and"),
    ({"source": "s" * 201}, "source is longer than 200"),
    ({"member_id": "4\x002"}, "member_id contains control characters"),
    ({"extra_hashes": {"phash": ["ab" * 8]}}, "extra_hashes kind 'phash' is not one of pdq_dihedral"),
    ({"extra_hashes": {"pdq": [PDQ]}}, "extra_hashes kind 'pdq' is not one of"),
    ({"extra_hashes": {"md5": [MD5]}}, "extra_hashes kind 'md5' is not one of"),
    ({"extra_hashes": {"pdq_crop": ["ab" * 31]}}, "extra_hashes: pdq_crop must be 64 hexadecimal characters"),
    ({"extra_hashes": {"pdq_crop": ["zz" * 32]}}, "pdq_crop must be 64 hexadecimal characters, got 'zz"),
    ({"extra_hashes": {"pdq_crop": "ab" * 32}}, "extra_hashes['pdq_crop'] must be a list"),
    ({"extra_hashes": "{not json"}, "extra_hashes is not JSON"),
    # the shape an old store kept regions in (dicts) is not a file format
    ({"extra_hashes": {"pdq_region": [{"x": 0, "hash": "ab" * 32}]}}, "pdq_region must be 64 hexadecimal"),
]
BAD_JSON_FIELDS = [  # values only JSON can type
    ({"enabled": 1}, "enabled must be true or false"),
    ({"disabled_until": 1.5}, "disabled_until must be unix seconds (a whole number), got float"),
    ({"disabled_until": True}, "got bool"),
    ({"source_id": ["x"]}, "source_id must be a string, got list"),
    ({"extra_hashes": ["ab" * 32]}, "extra_hashes must be an object"),
]


def bank_text(rows: list[dict], format: str) -> str:
    if format == "jsonl":
        return "\n".join(json.dumps(row) for row in rows)
    columns = list(dict.fromkeys(name for row in rows for name in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([json.dumps(row[c]) if isinstance(row.get(c), dict) else row.get(c, "") for c in columns])
    return out.getvalue()


@pytest.mark.parametrize(
    "format, fields, reason",
    [(format, *case) for format in ("csv", "jsonl") for case in BAD_TEXT_FIELDS]
    + [("jsonl", *case) for case in BAD_JSON_FIELDS],
)
def test_bad_new_fields_are_that_rows_error(format, fields, reason):
    rows = [{"record_id": "ok", "md5": MD5}, {"record_id": "bad", "md5": MD5, **fields},
            {"record_id": "ok2", "md5": MD5}]
    records, errors = parse_bank(bank_text(rows, format), format)
    assert [r.record_id for r in records] == ["ok", "ok2"]
    assert len(errors) == 1 and errors[0].line == (3 if format == "csv" else 2), errors
    assert reason in errors[0].error


@pytest.mark.parametrize("bad", [
    record("a", pdq=PDQ, extra_hashes={"pdq_crop": [PDQ.upper()]}),
    record("a", pdq=PDQ, extra_hashes={"pdq_crop": []}),
    record("a", pdq=PDQ, extra_hashes={"pdq_sideways": [PDQ]}),
    record("a", pdq=PDQ, source=" ncmec"),
    record("a", pdq=PDQ, disabled_until=-1),
])
def test_write_bank_refuses_new_fields_it_could_not_read_back(bad):
    with pytest.raises(ValueError, match="record 0"):
        write_bank([bad], "jsonl")


def extra_hashes_of(kinds):
    return st.dictionaries(st.sampled_from(kinds), st.lists(hex_of(64), min_size=1, max_size=3), max_size=3)


full_records_strategy = st.lists(
    st.builds(
        BankRecord,
        record_id=identifier,
        victim_id=st.none() | identifier,
        pdq=st.none() | hex_of(64),
        md5=st.none() | hex_of(32),
        sha1=hex_of(40),
        sha256=st.none() | hex_of(64),
        labels=st.lists(label, max_size=3).map(tuple),
        extra_hashes=extra_hashes_of(EXTRA_KINDS),
        source=st.none() | identifier,
        source_id=st.none() | identifier,
        member_id=st.none() | identifier,
        enabled=st.booleans(),
        disabled_until=st.none() | st.integers(0, MAX_TIMESTAMP),
    ),
    max_size=8,
    unique_by=lambda r: r.record_id,
)


@settings(max_examples=150, deadline=None)
@given(records=full_records_strategy, format=st.sampled_from(["csv", "jsonl"]))
def test_round_trip_keeps_every_field(records, format):
    parsed, errors = parse_bank(write_bank(records, format), format)
    assert errors == [] and parsed == records
    assert [r.extra_hashes for r in parsed] == [r.extra_hashes for r in records]


def test_an_enrolled_image_keeps_its_variants_and_regions(fixtures_dir):
    data = (fixtures_dir / "pdq" / "misc-images" / "c.png").read_bytes()
    hashes = hashes_for_bank(data, robust=True)
    assert hashes["extra_hashes"].get("pdq_region") and len(hashes["extra_hashes"]) > 1
    enrolled = BankRecord(record_id="c.png", victim_id="v1", labels=(), source="clearinghouse", **hashes)
    for format in FORMATS:
        (parsed,), errors = parse_bank(write_bank([enrolled], format), format)
        assert errors == [] and parsed == enrolled and parsed.extra_hashes == hashes["extra_hashes"]
