"""Hash lists in python-threatexchange's and NCMEC's formats, checked against python-threatexchange's own code.

pytx's NCMEC client tests are not shipped in its wheel, so the NCMEC documents here are built like theirs
(`threatexchange/exchanges/clients/ncmec/tests/data.py`) and also read with pytx's own parser to compare.
"""
import contextlib
import csv
import io
import random
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threatexchange.cli.dataset_cmd import DatasetCommand
from threatexchange.exchanges.clients.ncmec.hash_api import (
    GetEntriesResponse,
    _XMLWrapper,
)
from threatexchange.exchanges.fetch_state import (
    FetchedSignalMetadata,
    SignalOpinion,
    SignalOpinionCategory,
)
from threatexchange.exchanges.impl.file_api import (
    FileCollaborationConfig,
    LocalFileSignalExchangeAPI,
)
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal

from imaging.banks import BankRecord, RowError
from imaging.hashlists import (
    DATASET_COLUMNS,
    HashListImport,
    Tombstone,
    parse_hashlist,
    write_hashlist,
)

PYTX_TYPES = {signal_type.get_name(): signal_type for signal_type in (PdqSignal, VideoMD5Signal, VideoSHA256Signal)}
rng = random.Random(13)


def random_hex(length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


PDQ, PDQ2, MD5, SHA1, SHA256 = random_hex(64), random_hex(64), random_hex(32), random_hex(40), random_hex(64)


def record(record_id: str, **fields) -> BankRecord:
    values = {"victim_id": None, "pdq": None, "md5": None, "sha1": None, "sha256": None}
    values.update(fields)
    return BankRecord(record_id=record_id, **values)


def test_pytx_names_its_signal_types_as_the_module_maps_them():
    assert set(PYTX_TYPES) == {"pdq", "video_md5", "video_sha256"}


# pytx_local


def test_local_lines_with_types_and_every_bad_line_reported():
    text = "\r\n".join([
        f"pdq {PDQ.upper()}",
        "",
        f"video_md5 {MD5}",
        f"photodna {random_hex(288)}",
        f"video_sha256 {SHA256[:-1]}",
        PDQ,  # a bare hash without a default type
        f"sha1 {SHA1}",
        f"pdq {PDQ}",
        f"Not-A-Type {PDQ}",
        f"photodna {random_hex(288)}",
        f"vpdq {random_hex(64)}",
    ])
    imported = parse_hashlist(text.encode(), "pytx_local")
    assert [(r.record_id, r.line) for r in imported.records] == [(f"pdq:{PDQ}", 1), (f"md5:{MD5}", 3),
                                                                 (f"sha1:{SHA1}", 7)]
    assert imported.records[0].pdq == PDQ and imported.records[1].md5 == MD5 and imported.records[2].sha1 == SHA1
    reasons = {e.line: e.error for e in imported.errors}
    assert sorted(reasons) == [4, 5, 6, 8, 9, 10, 11]
    assert "signal type 'photodna' is not one fimg can match" in reasons[4]
    assert "video_sha256: sha256 must be 64 hexadecimal characters, got 63" in reasons[5]
    assert "expected '<signal_type> <hash>'" in reasons[6]
    assert reasons[8] == f"duplicate record_id 'pdq:{PDQ}' (first on line 1)"
    assert "is not a signal type name" in reasons[9]
    assert imported.unsupported == {"photodna": 2, "vpdq": 1} and imported.tombstones == []


def test_local_bare_hashes_take_the_default_type():
    imported = parse_hashlist(f"{PDQ}\n  {PDQ2}  \n\nnot-hex\n", "pytx_local", default_signal_type="pdq")
    assert [r.pdq for r in imported.records] == [PDQ, PDQ2]
    assert [e.line for e in imported.errors] == [4]


@pytest.mark.parametrize("format, default", [("pytx_local", "photodna"), ("pytx_dataset_csv", "pdq"),
                                             ("bank", None)])
def test_bad_parameters_are_value_errors(format, default):
    with pytest.raises(ValueError):
        parse_hashlist("", format, default_signal_type=default)


def test_local_file_we_write_is_read_by_pytx(tmp_path):
    records = [record("a", pdq=PDQ, md5=MD5, sha1=SHA1, sha256=SHA256), record("b", pdq=PDQ2),
               record("c", md5=MD5), record("off", pdq=random_hex(64), enabled=False)]
    text, warnings = write_hashlist(records, "pytx_local")
    path = tmp_path / "signals.txt"
    path.write_text(text)
    api = LocalFileSignalExchangeAPI.for_collab(FileCollaborationConfig(name="fimg", filename=str(path)))
    (delta,) = api.fetch_iter([], None)
    expected = {("pdq", PDQ), ("video_md5", MD5), ("video_sha256", SHA256), ("pdq", PDQ2)}
    assert set(delta.updates) == expected
    assert all(PYTX_TYPES[name].validate_signal_str(value) == value for name, value in delta.updates)
    assert len(text.splitlines()) == len(expected)  # the md5 shared by a and c is written once
    assert "1 disabled records left out: pytx_local cannot mark a record disabled" in warnings
    assert "1 SHA-1 hashes not written: pytx has no SHA-1 signal type" in warnings
    assert "1 hashes shared by several records written once" in warnings


def test_local_file_in_pytx_shape_is_read_by_us():
    """pytx writes a local file with `LocalFileSignalExchangeAPI.report_opinion`, one `<get_name()> <signal>`
    line each (in 1.2.17 it opens the file with mode "wta", which Python refuses, so the shape is built here),
    over its own example signals."""
    signals = [(signal_type, example) for signal_type in (PdqSignal, VideoMD5Signal, VideoSHA256Signal)
               for example in signal_type.get_examples()]
    text = "".join(f"{signal_type.get_name()} {value}\n" for signal_type, value in signals)
    imported = parse_hashlist(text, "pytx_local")
    wanted = {f"{'pdq' if t is PdqSignal else t.get_name().removeprefix('video_')}:{value}" for t, value in signals}
    assert imported.errors == [] and {r.record_id for r in imported.records} == wanted


# pytx_dataset_csv


class _Metadata(FetchedSignalMetadata):
    def __init__(self, *opinions: SignalOpinion):
        self.opinions = opinions

    def get_as_opinions(self):
        return self.opinions


class _Dataset(DatasetCommand):
    """pytx's `dataset -P --csv` over signals given here instead of its fetched state."""

    def __init__(self, signals):
        super().__init__(print_signals=True, csv=True)
        self.signals = signals

    def get_signal_types(self, settings):
        return set(self.signals)

    def get_signals(self, settings, signal_types):
        return self.signals


def pytx_dataset_csv(signals) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _Dataset(signals).execute_print_signals(settings=None)
    return out.getvalue()


def test_dataset_csv_pytx_writes_is_read_by_us():
    positive = SignalOpinion(False, SignalOpinionCategory.POSITIVE_CLASS, {"csam", "known"})
    negative = SignalOpinion(False, SignalOpinionCategory.NEGATIVE_CLASS, set())
    seed = SignalOpinion(False, SignalOpinionCategory.INVESTIGATION_SEED, {"lead"})
    text = pytx_dataset_csv({
        PdqSignal: {PDQ: [("Hotline A", _Metadata(positive))], PDQ2: [("Hotline A", _Metadata(positive, negative))]},
        VideoMD5Signal: {MD5: [("Hotline B", _Metadata(seed)), ("Hotline A", _Metadata(negative))]},
    })
    assert text.splitlines()[0] == ",".join(DATASET_COLUMNS)
    imported = parse_hashlist(text, "pytx_dataset_csv")
    assert [(r.record_id, r.source, set(r.labels), r.enabled, r.line) for r in imported.records] == [
        (f"pdq:{PDQ}", "Hotline A", {"csam", "known"}, True, 2),
        (f"pdq:{PDQ2}", "Hotline A", {"csam", "known"}, False, 3),  # DISPUTED
        (f"md5:{MD5}", "Hotline B", {"lead"}, True, 4),
    ]
    # pytx lists a signal once per collaboration: the later one is reported, not merged or dropped silently
    assert imported.errors == [RowError(5, f"duplicate record_id 'md5:{MD5}' (first on line 4)")]


def test_dataset_csv_we_write_is_read_by_pytx_signal_types():
    records = [
        record(f"pdq:{PDQ}", pdq=PDQ, source="fimg", labels=("csam", "known")),
        record(f"md5:{MD5}", md5=MD5, enabled=False),
        record("case-7", pdq=PDQ2, sha256=SHA256, victim_id="v1", labels=("two words",), disabled_until=5),
    ]
    text, warnings = write_hashlist(records, "pytx_dataset_csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(DATASET_COLUMNS)
    for row in rows:
        assert PYTX_TYPES[row["signal_type"]].validate_signal_str(row["signal_str"]) == row["signal_str"]
        SignalOpinionCategory[row["category"]]
    assert [(r["signal_type"], r["collab"], r["category"], r["tags"]) for r in rows] == [
        ("pdq", "fimg", "POSITIVE_CLASS", "csam known"), ("video_md5", "", "NEGATIVE_CLASS", ""),
        ("pdq", "", "POSITIVE_CLASS", "two words"), ("video_sha256", "", "POSITIVE_CLASS", "two words")]
    assert warnings == [
        "1 records written as several lines, one per hash: read back, each line is a record of its own",
        "1 record ids not carried: pytx_dataset_csv has none, so a record read back is named <kind>:<hash>",
        "1 victim ids not carried",
        "1 disabled_until times not carried: a record disabled only until a time is written as enabled",
        "1 labels with whitespace, which pytx reads as several tags",
    ]


def test_write_warns_of_everything_a_pytx_local_file_loses():
    full = record("r1", pdq=PDQ, md5=MD5, sha1=SHA1, victim_id="v", labels=("x",), source="s", source_id="e1",
                  member_id="m", disabled_until=9, extra_hashes={"pdq_crop": [PDQ2]})
    only_sha1 = record("r2", sha1=random_hex(40))
    _, warnings = write_hashlist([full, only_sha1], "pytx_local")
    for lost in ("records without a pdq, md5 or sha256 left out", "2 SHA-1 hashes not written",
                 "several lines, one per hash", "record ids not carried", "extra_hashes", "victim ids",
                 "source entry ids", "member ids", "disabled_until", "sources not carried", "labels not carried"):
        assert any(lost in warning for warning in warnings), lost


def test_ncmec_xml_and_invalid_records_cannot_be_written():
    with pytest.raises(ValueError, match="hash lists can be written as"):
        write_hashlist([], "ncmec_xml")
    with pytest.raises(ValueError, match="record 0"):
        write_hashlist([record("a", pdq=PDQ.upper())], "pytx_local")


@pytest.mark.parametrize(
    "row, reason",
    [
        (f"pdq,{PDQ},c,MAYBE_CLASS,", "category 'MAYBE_CLASS' is not one of pytx's"),
        ("pdq,,c,POSITIVE_CLASS,", "signal_str is empty"),
        (f"photodna,{random_hex(288)},c,POSITIVE_CLASS,", "signal type 'photodna' is not one fimg can match"),
        (f"pdq,{PDQ},c,POSITIVE_CLASS,a;b", "label 'a;b' contains ';'"),
        (f"pdq,{PDQ},{'c' * 201},POSITIVE_CLASS,", "source is longer than 200"),
        (f"pdq,{PDQ},c,POSITIVE_CLASS", "expected 5 fields"),
    ],
)
def test_dataset_csv_bad_rows_are_reported_with_their_line(row, reason):
    text = "\n".join([",".join(DATASET_COLUMNS), f"pdq,{PDQ2},c,POSITIVE_CLASS,", row,
                      f"video_md5,{MD5},c,POSITIVE_CLASS,"])
    imported = parse_hashlist(text, "pytx_dataset_csv")
    assert [r.record_id for r in imported.records] == [f"pdq:{PDQ2}", f"md5:{MD5}"]
    assert len(imported.errors) == 1 and imported.errors[0].line == 3 and reason in imported.errors[0].error


def test_dataset_csv_header_problems_are_one_error():
    imported = parse_hashlist(f"signal_type,signal_str,colour\npdq,{PDQ},red\n", "pytx_dataset_csv")
    assert imported.records == [] and len(imported.errors) == 1
    assert "unknown columns: 'colour'" in imported.errors[0].error


label = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters=";"),
                min_size=1, max_size=12).filter(lambda s: s == s.strip() and not any(c.isspace() for c in s))
hex_of = {length: st.text(alphabet="0123456789abcdef", min_size=length, max_size=length) for length in (32, 64)}
one_signal = st.one_of(st.tuples(st.just("pdq"), hex_of[64]), st.tuples(st.just("md5"), hex_of[32]),
                       st.tuples(st.just("sha256"), hex_of[64]))


@st.composite
def pytx_records(draw, dataset: bool):
    kind, value = draw(one_signal)
    if not dataset:
        return record(f"{kind}:{value}", **{kind: value})
    labels = tuple(dict.fromkeys(draw(st.lists(label, max_size=3))))
    return record(f"{kind}:{value}", **{kind: value}, source=draw(st.none() | label), labels=labels,
                  enabled=draw(st.booleans()))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), format=st.sampled_from(["pytx_local", "pytx_dataset_csv"]))
def test_round_trip_keeps_what_the_format_carries(data, format):
    records = data.draw(st.lists(pytx_records(format == "pytx_dataset_csv"), max_size=8,
                                 unique_by=lambda r: r.record_id))
    written, warnings = write_hashlist(records, format)
    imported = parse_hashlist(written, format)
    kept = [r for r in records if r.enabled or format == "pytx_dataset_csv"]
    assert imported.errors == [] and imported.unsupported == {}
    assert [(r.record_id, r.pdq, r.md5, r.sha256, r.source, set(r.labels), r.enabled) for r in imported.records] == \
        [(r.record_id, r.pdq, r.md5, r.sha256, r.source, set(r.labels), r.enabled) for r in kept]
    left_out = len(records) - len(kept)
    assert warnings == ([f"{left_out} disabled records left out: pytx_local cannot mark a record disabled"]
                        if left_out else [])


# ncmec_xml: documents shaped as pytx's client tests build them


def ncmec_entries(images: str = "", videos: str = "", namespace: bool = True) -> str:
    xmlns = ' xmlns="https://hashsharing.ncmec.org/hashsharing/v2"' if namespace else ""
    parts = ['<?xml version="1.0" encoding="UTF-8" standalone="yes"?>', f"<queryResult{xmlns}>"]
    if images:
        parts += ['    <images count="2" maxTimestamp="2017-10-24T15:10:00Z">', images, "    </images>"]
    if videos:
        parts += ['    <videos count="2" maxTimestamp="2017-10-24T15:20:00Z">', videos, "    </videos>"]
    parts += ["    <paging>",
              ("        <next>/v2/entries?from=2017-10-20T00%3A00%3A00.000Z&amp;to=2017-10-30T00%3A00%3A00.000Z"
               "&amp;start=2001&amp;size=1000&amp;max=3000</next>"),
              "    </paging>", "</queryResult>"]
    return "\n".join(parts)


def entry(tag: str, entry_id: str, member: int, fingerprints: dict[str, str] | None = None,
          classification: str | None = None) -> str:
    lines = [f"        <{tag}>", f'            <member id="{member}">Example Member</member>',
             "            <timestamp>2017-10-24T15:00:00Z</timestamp>", f"            <id>{entry_id}</id>"]
    if classification:
        lines.append(f"            <classification>{classification}</classification>")
    if fingerprints is not None:
        lines.append("            <fingerprints>")
        lines += [f"                <{name}>{value}</{name}>" if value else
                  f'                <{name} rel="self" href="/v2/entries/1/fingerprints/{name.upper()}"/>'
                  for name, value in fingerprints.items()]
        lines.append("            </fingerprints>")
    lines.append(f"        </{tag}>")
    return "\n".join(lines)


def pytx_reading(document: str) -> GetEntriesResponse:
    """The document as pytx's NCMEC client reads a response (namespaces stripped as its `_get` does)."""
    parsed = ET.iterparse(io.BytesIO(document.encode()))
    for _, element in parsed:
        element.tag = element.tag.rpartition("}")[2]
    return GetEntriesResponse.from_xml(_XMLWrapper(parsed.root), 0)


PDNA = random_hex(288)
SAMPLE = ncmec_entries(
    images="\n".join([
        entry("image", "image1", 42, {"md5": MD5, "sha1": SHA1, "pdna": PDNA}, "A1"),
        entry("image", "image2", 42, {"pdna": random_hex(288)}, "A1"),  # PhotoDNA only
        entry("image", "image3", 43, {"pdq": PDQ.upper(), "pdna": random_hex(288)}, "B1"),
        entry("image", "image5", 43, {"md5": "not-a-hash"}),
        entry("deletedImage", "image4", 43),
    ]),
    videos="\n".join([
        entry("video", "video1", 42, {"md5": random_hex(32), "sha1": random_hex(40), "tmk-pdqf": "",
                                      "videntifier": ""}, "A2"),
        entry("deletedVideo", "video4", 42),
    ]),
)


def test_ncmec_entries_import_with_the_right_counts():
    imported = parse_hashlist(SAMPLE.encode(), "ncmec_xml")
    assert isinstance(imported, HashListImport)
    assert [(r.record_id, r.source, r.source_id, r.member_id, r.labels, r.md5, r.sha1, r.pdq)
            for r in imported.records] == [
        ("ncmec:image1", "ncmec", "image1", "42", ("A1",), MD5, SHA1, None),
        ("ncmec:image3", "ncmec", "image3", "43", ("B1",), None, None, PDQ),
    ]
    assert imported.tombstones == [Tombstone("ncmec:image4", "ncmec", "image4", line_of(SAMPLE, "<deletedImage>")),
                                   Tombstone("ncmec:video4", "ncmec", "video4", line_of(SAMPLE, "<deletedVideo>"))]
    assert imported.unsupported == {"image/pdna": 3, "video/md5": 1, "video/sha1": 1, "video/tmk-pdqf": 1,
                                    "video/videntifier": 1}
    reasons = {e.line: e.error for e in imported.errors}
    assert sorted(reasons) == [line_of(SAMPLE, "<id>image2"), line_of(SAMPLE, "<id>image5"),
                               line_of(SAMPLE, "<id>video1")]
    assert "entry 'image2': no fingerprint fimg can match (md5, sha1, pdq)" in reasons[line_of(SAMPLE, "<id>image2")]
    assert "md5 must be 32 hexadecimal characters" in reasons[line_of(SAMPLE, "<id>image5")]
    assert "a video; fimg matches images only" in reasons[line_of(SAMPLE, "<id>video1")]
    assert [r.line for r in imported.records] == [line_of(SAMPLE, "<id>image1"), line_of(SAMPLE, "<id>image3")]


def line_of(document: str, text: str) -> int:
    """The line of the entry start tag before `text` (or of `text` itself when it is a start tag)."""
    lines = document.split("\n")
    found = next(number for number, line in enumerate(lines) if text in line)
    return next(n for n in range(found, -1, -1) if lines[n].strip() in ("<image>", "<video>", "<deletedImage>",
                                                                          "<deletedVideo>")) + 1


def test_ncmec_reading_agrees_with_pytx_client():
    theirs = pytx_reading(SAMPLE).updates
    imported = parse_hashlist(SAMPLE, "ncmec_xml")
    assert [f"ncmec:{u.id}" for u in theirs if u.deleted] == [t.record_id for t in imported.tombstones]
    by_id = {f"ncmec:{u.id}": u for u in theirs}
    for parsed in imported.records:
        update = by_id[parsed.record_id]
        assert str(update.member_id) == parsed.member_id and (update.classification,) == parsed.labels
        assert {k: v.lower() for k, v in update.fingerprints.items() if k in ("md5", "sha1", "pdq")} == \
            {k: getattr(parsed, k) for k in ("md5", "sha1", "pdq") if getattr(parsed, k)}
    not_imported = {u.id for u in theirs if not u.deleted} - {r.source_id for r in imported.records}
    assert not_imported == {"image2", "image5", "video1"}


def test_ncmec_without_namespace_and_with_empty_fingerprints():
    document = ncmec_entries(images=entry("image", "7", 1, {"md5": MD5, "sha1": "", "pdq": ""}), namespace=False)
    imported = parse_hashlist(document, "ncmec_xml")
    assert [(r.record_id, r.md5, r.sha1) for r in imported.records] == [("ncmec:7", MD5, None)]
    assert imported.errors == [] and imported.unsupported == {}


def test_ncmec_doctype_is_refused_before_parsing():
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
            "<queryResult><images><image><id>&lol2;</id></image></images></queryResult>")
    imported = parse_hashlist(bomb, "ncmec_xml")
    assert imported.records == [] and imported.tombstones == []
    assert imported.errors == [RowError(2, "XML with a DOCTYPE is refused (entities are not expanded)")]


def test_ncmec_truncated_document_keeps_the_entries_before_the_break():
    cut = SAMPLE[: SAMPLE.index("<id>image3")]
    imported = parse_hashlist(cut, "ncmec_xml")
    assert [r.record_id for r in imported.records] == ["ncmec:image1"]
    assert "malformed XML, reading stopped here" in imported.errors[-1].error
    assert imported.errors[-1].line == cut.count("\n") + 1


@pytest.mark.parametrize(
    "document, line, reason",
    [
        ("<status><member id='1'>x</member></status>", 1, "not NCMEC entries: the root is <status>"),
        (ncmec_entries(images="        <video><id>x</id></video>"), 4, "unexpected <video> in <images>"),
        (ncmec_entries(images="        <image><member id='1'/></image>"), 4, "<image> without an <id>"),
        (ncmec_entries(images="        <image><id>a</id><id>b</id></image>"), 4, "<image> has more than one <id>"),
        (ncmec_entries(images=f"        <image><id>a</id><fingerprints><md5>{MD5}</md5><md5>{MD5}</md5>"
                              "</fingerprints></image>"), 4, "more than one <md5> fingerprint"),
        (ncmec_entries(images=f"        <image><id>{'x' * 201}</id></image>"), 4, "entry id is longer than 200"),
        ("", 1, "malformed XML"),
        (b"<queryResult>\n\xff</queryResult>", 2, "not UTF-8"),
    ],
)
def test_ncmec_problems_are_reported_with_their_line(document, line, reason):
    imported = parse_hashlist(document, "ncmec_xml")
    assert imported.records == []
    assert len(imported.errors) == 1 and imported.errors[0].line == line and reason in imported.errors[0].error


def test_ncmec_duplicate_entries_are_reported_and_a_deleted_one_is_a_tombstone_as_well():
    entries = [entry("image", "1", 1, {"md5": MD5}), entry("image", "1", 1, {"md5": MD5}), entry("deletedImage", "1", 1)]
    document = ncmec_entries(images="\n".join(entries))
    imported = parse_hashlist(document, "ncmec_xml")
    assert [r.record_id for r in imported.records] == ["ncmec:1"]
    assert len(imported.errors) == 1 and "duplicate record_id 'ncmec:1'" in imported.errors[0].error
    assert [t.record_id for t in imported.tombstones] == ["ncmec:1"]


def test_ncmec_line_numbers_hold_with_crlf_line_ends():
    lf = parse_hashlist(SAMPLE, "ncmec_xml")
    crlf = parse_hashlist(SAMPLE.replace("\n", "\r\n").encode(), "ncmec_xml")
    assert crlf == lf and [r.line for r in crlf.records] == [r.line for r in lf.records]
