"""Property-based fuzzing of what parses untrusted bytes: the image decoder, the upload check, and the bank-file
and hash-list parsers. Every input either parses or is refused with the parser's own error (DecodeError, a row
error); nothing else escapes, and no input costs more than its deadline. Examples are bounded so the file runs in
well under a minute on two cores."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imaging import DecodeBudget, DecodeError, check_image, decode
from imaging.banks import FORMATS as BANK_FORMATS
from imaging.banks import parse_bank, write_bank
from imaging.hashlists import FORMATS as HASHLIST_FORMATS
from imaging.hashlists import parse_hashlist

FUZZ = settings(max_examples=400, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # Pillow on damaged TIFFs
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "pdq"


def _encoded(fmt: str, **options) -> bytes:
    pixels = np.random.default_rng(11).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **options)
    return out.getvalue()


SEEDS = [_encoded("PNG"), _encoded("JPEG", quality=80), _encoded("GIF"), _encoded("BMP"), _encoded("TIFF"),
         _encoded("WEBP"), _encoded("PNG", optimize=True), _encoded("JPEG", progressive=True)]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@st.composite
def mutated_images(draw) -> bytes:
    """A small valid image of each accepted format with bytes flipped, cut, repeated or inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 64))] * draw(st.integers(1, 8))
    return bytes(data)


@st.composite
def crafted_pngs(draw) -> bytes:
    """PNGs with any header (size, depth, colour type, interlace) over a zlib stream of any length."""
    header = struct.pack(">IIBBBBB", draw(st.integers(0, 30_000)), draw(st.integers(0, 30_000)),
                         draw(st.sampled_from([1, 2, 4, 8, 16, 3])), draw(st.sampled_from([0, 2, 3, 4, 6, 5])),
                         0, 0, draw(st.integers(0, 1)))
    rows = draw(st.binary(max_size=4096)) * draw(st.integers(1, 64))
    stream = zlib.compress(rows)
    if draw(st.booleans()):
        stream = stream[:draw(st.integers(0, len(stream)))]
    chunks = [_chunk(b"IHDR", header)]
    if draw(st.booleans()):
        chunks.append(_chunk(b"PLTE", bytes(range(48))))
    chunks.append(_chunk(b"IDAT", stream))
    if draw(st.booleans()):
        chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def assert_decodes_or_refuses(data: bytes) -> None:
    """Both the decoder and the upload check (`check_image`) decode or refuse; where both accept, they agree on
    the format and size. (The check may accept what the decoder refuses: that is an item's error later.)"""
    try:
        checked = check_image(data, budget=DecodeBudget(5_000_000))
    except DecodeError as exc:
        assert exc.code and exc.message
        checked = None
    try:
        decoded = decode(data, budget=DecodeBudget(5_000_000))
    except DecodeError as exc:
        assert exc.code and exc.message
        return
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.shape == (decoded.height, decoded.width, 3)
    if checked is not None:
        assert (checked.format, checked.width, checked.height) == (decoded.format, decoded.width, decoded.height)


@FUZZ
@given(st.one_of(mutated_images(), crafted_pngs(), st.binary(max_size=2048)))
def test_the_decoder_decodes_or_refuses_any_bytes(data):
    assert_decodes_or_refuses(data)


@pytest.mark.skipif(not FIXTURES.exists(), reason="fixture photos not found")
@settings(max_examples=60, deadline=5000, database=None)
@given(st.sampled_from(sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".gif"))[:40]),
       st.floats(0.05, 0.99), st.integers(0, 255))
def test_the_decoder_refuses_cut_and_damaged_fixture_photos(path, keep, damage):
    data = bytearray(path.read_bytes()[:2_000_000])
    data = data[:max(1, int(len(data) * keep))]
    data[len(data) // 2] ^= damage
    assert_decodes_or_refuses(bytes(data))


def _bank_lines() -> st.SearchStrategy[str]:
    cell = st.one_of(st.text(max_size=40), st.sampled_from(["", "0" * 32, "f" * 64, "'=1+1", "true", "1e999"]))
    csv_line = st.lists(cell, min_size=1, max_size=12).map(",".join)
    json_line = st.one_of(
        st.dictionaries(st.sampled_from(["record_id", "md5", "pdq", "sha256", "labels", "enabled", "extra_hashes",
                                         "disabled_until", "victim_id"]),
                        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                                  st.lists(st.text(max_size=10), max_size=4)), max_size=6).map(_json),
        st.text(max_size=60))
    header = st.sampled_from(["record_id,md5,pdq", "record_id,victim_id,pdq,md5,sha1,sha256,labels",
                              "signal_type,signal_str,collab,category,tags", "pdq", ""])
    return st.tuples(header, st.lists(st.one_of(csv_line, json_line), max_size=20)).map(
        lambda parts: "\n".join([parts[0], *parts[1]]))


def _json(value) -> str:
    import json

    return json.dumps(value)


@st.composite
def ncmec_documents(draw) -> str:
    entry = st.builds(lambda md5, kind, fid: f"<image><fileId>{fid}</fileId><md5>{md5}</md5>"
                                             f"<classification>{kind}</classification></image>",
                      st.sampled_from(["0" * 32, "zz", ""]), st.text(max_size=8), st.text(max_size=12))
    body = "".join(draw(st.lists(st.one_of(entry, st.text(max_size=30), st.just("<deletedImage>1</deletedImage>")),
                                 max_size=8)))
    return f'<?xml version="1.0"?><queryResult><images>{body}</images></queryResult>'[:draw(st.integers(0, 4000))]


@FUZZ
@given(st.one_of(_bank_lines(), st.binary(max_size=1024).map(lambda b: b.decode("latin-1")), ncmec_documents()),
       st.sampled_from([*BANK_FORMATS, *HASHLIST_FORMATS]), st.booleans())
def test_bank_and_hash_list_parsers_report_rows_and_never_crash(text, file_format, as_bytes):
    data = text.encode("utf-8", "surrogatepass") if as_bytes else text
    if file_format in BANK_FORMATS:
        records, errors = parse_bank(data, file_format)
        assert parse_bank(write_bank(records, file_format), file_format)[0] == records, "what it reads, it writes"
    else:
        records, errors, _tombstones, _unsupported = parse_hashlist(data, file_format)
    assert all(error.line >= 0 and error.error for error in errors)
    assert all(record.record_id for record in records)
