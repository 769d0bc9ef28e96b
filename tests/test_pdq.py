"""PDQ: bit-exact with Meta's reference vectors, dihedral hashes, the hash value type."""

from __future__ import annotations

import csv
import os
import pickle
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imaging import PDQ_MIN_QUALITY, PDQ_THRESHOLD, PdqHash, PHash, decode, pdq, pdq_dihedral

PDQ_DIR = Path(os.environ.get("FIMG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")) / "pdq"


def expected_rows() -> list[dict[str, str]]:
    with open(PDQ_DIR / "expected.tsv", newline="") as file:
        return list(csv.DictReader(file, delimiter="\t"))


EXPECTED = expected_rows()


@pytest.mark.parametrize("exif_transpose", [False, True], ids=["stored", "exif-transposed"])
@pytest.mark.parametrize("row", EXPECTED, ids=[row["path"] for row in EXPECTED])
def test_bit_exact_with_reference(row, exif_transpose):
    suffix = "_exif_transposed" if exif_transpose else ""
    hash_value, quality = pdq(decode(PDQ_DIR / row["path"], exif_transpose=exif_transpose).rgb)
    assert (str(hash_value), quality) == (row[f"pdq_hex{suffix}"], int(row[f"quality{suffix}"]))


def test_reference_vectors_are_all_there():
    assert len(EXPECTED) == 53


DIHEDRAL_FILES = [
    "bridge-1-original.jpg",
    "bridge-2-rotate-90.jpg",
    "bridge-3-rotate-180.jpg",
    "bridge-4-rotate-270.jpg",
    "bridge-5-flipx.jpg",
    "bridge-6-flipy.jpg",
    "bridge-7-flip-plus-1.jpg",
    "bridge-8-flip-minus-1.jpg",
]


@pytest.fixture(scope="module")
def original_dihedral() -> tuple[list[PdqHash], int]:
    return pdq_dihedral(decode(PDQ_DIR / "reg-test/dih/bridge-1-original.jpg").rgb)


@pytest.mark.parametrize("index", range(8), ids=DIHEDRAL_FILES)
def test_each_rotation_or_flip_matches_its_dihedral_hash(original_dihedral, index):
    hashes, _ = original_dihedral
    variant, _ = pdq(decode(PDQ_DIR / "reg-test/dih" / DIHEDRAL_FILES[index]).rgb)
    distances = [variant - candidate for candidate in hashes]
    assert distances[index] <= PDQ_THRESHOLD
    assert min(distances) == distances[index]
    assert sorted(distances)[1] > PDQ_THRESHOLD  # and only that one


def test_dihedral_original_is_pdq(original_dihedral):
    hashes, quality = original_dihedral
    assert (hashes[0], quality) == pdq(decode(PDQ_DIR / "reg-test/dih/bridge-1-original.jpg").rgb)
    assert len(set(hashes)) == 8


def test_same_as_the_pdqhash_bindings_on_awkward_sizes():
    pdqhash = pytest.importorskip("pdqhash")
    rng = np.random.default_rng(3)
    for shape in [(64, 64), (5, 5), (4, 9), (9, 4), (5, 300), (63, 65), (129, 257), (2000, 60), (1, 1)]:
        rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        reference_bits, reference_quality = pdqhash.compute(rgb)
        assert pdq(rgb) == (PdqHash.from_bits(reference_bits[::-1]), reference_quality), shape
        reference_dihedral, dihedral_quality = pdqhash.compute_dihedral(rgb)
        ours, quality = pdq_dihedral(rgb)
        assert ours == [PdqHash.from_bits(bits[::-1]) for bits in reference_dihedral], shape
        assert quality == dihedral_quality, shape


def test_dct_coefficients_are_the_reference_floats():
    """Stronger than equal hashes: every one of the 256 float32 coefficients is identical."""
    pdqhash = pytest.importorskip("pdqhash")
    coefficients = sys.modules["imaging.pdq"]._coefficients
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for shape in [(64, 64), (300, 200), (77, 1030)]]
    images.append(decode(PDQ_DIR / "reg-test/pen-and-coaster.png").rgb)
    for rgb in images:
        reference, _ = pdqhash.compute_float(rgb)
        ours, _ = coefficients(rgb, as_is_at_64=True)
        np.testing.assert_array_equal(ours.reshape(-1), np.asarray(reference)[::-1])


def test_concurrent_calls_agree_with_serial_ones():
    rng = np.random.default_rng(6)
    images = [rng.integers(0, 256, (200 + 37 * i, 300 - 23 * i, 3), dtype=np.uint8) for i in range(6)]
    serial = [pdq_dihedral(rgb) for rgb in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(pdq_dihedral, images * 3)) == serial * 3


def test_images_below_five_pixels_hash_to_zero():
    hash_value, quality = pdq(np.full((4, 100, 3), 200, np.uint8))
    assert (str(hash_value), quality) == ("0" * 64, 0)


def test_flat_image_has_no_quality():
    _, quality = pdq(np.full((300, 200, 3), 128, np.uint8))
    assert quality < PDQ_MIN_QUALITY


def test_accepts_views_and_rejects_wrong_arrays():
    rgb = decode(PDQ_DIR / "misc-images/rgb.jpeg").rgb
    assert pdq(rgb[::-1]) == pdq(np.ascontiguousarray(rgb[::-1]))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        pdq(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        pdq(rgb[..., 0])


def test_constants():
    assert (PDQ_THRESHOLD, PDQ_MIN_QUALITY) == (31, 50)


# ---------------------------------------------------------------- the hash value type

HEX = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_hex_and_bytes_round_trip():
    value = PdqHash.from_hex(HEX)
    assert str(value) == HEX
    assert value.to_bytes() == bytes.fromhex(HEX)
    assert PdqHash.from_bytes(value.to_bytes()) == value
    assert PdqHash.from_hex(HEX.upper()) == value
    assert repr(value) == f"PdqHash('{HEX}')"


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_distance_is_hamming_on_bytes(a, b):
    expected = sum(bin(x ^ y).count("1") for x, y in zip(a, b))
    first, second = PdqHash.from_bytes(a), PdqHash.from_bytes(b)
    assert first - second == second - first == expected
    assert str(PdqHash.from_hex(str(first))) == str(first) == a.hex()


def test_bit_order_matches_meta():
    bits = np.zeros(256, bool)
    bits[0] = True  # DCT coefficient (0, 0): least significant bit of the last word
    assert str(PdqHash.from_bits(bits)) == "0" * 63 + "1"
    bits[:] = False
    bits[255] = True
    assert str(PdqHash.from_bits(bits)) == "8" + "0" * 63


@pytest.mark.parametrize(
    "bad",
    ["", HEX[:-1], HEX + "0", "g" + HEX[1:], " " + HEX[1:], HEX[1:] + "\n", "0x" + HEX[2:], "-" + HEX[1:],
     "+" + HEX[1:], HEX[:32] + "_" + HEX[33:]],
)
def test_from_hex_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="PdqHash hex"):
        PdqHash.from_hex(bad)


def test_from_bytes_rejects_wrong_length():
    with pytest.raises(ValueError, match="32 bytes"):
        PdqHash.from_bytes(b"\0" * 31)


def test_value_semantics():
    value = PdqHash.from_hex(HEX)
    same = PdqHash.from_hex(HEX)
    assert value == same and hash(value) == hash(same) and len({value, same}) == 1
    assert pickle.loads(pickle.dumps(value)) == value
    with pytest.raises(AttributeError):
        value._value = 0
    with pytest.raises(TypeError):
        value - PHash.from_hex(HEX)
    assert value != PHash.from_hex(HEX)
