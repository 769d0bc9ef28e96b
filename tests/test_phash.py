"""pHash: edits of one photo match, unrelated photos do not, imagehash-compatible bits and hex."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imaging import PHASH_THRESHOLD, PdqHash, PHash, decode, phash

PDQ_DIR = Path(os.environ.get("FIMG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")) / "pdq"

EDITS = sorted(path.name for path in (PDQ_DIR / "bridge-mods").glob("*.jpg") if path.name != "aaa-orig.jpg")
UNRELATED = [
    "reg-test/labelme-subset/q0003.jpg",
    "reg-test/labelme-subset/q0122.jpg",
    "reg-test/labelme-subset/q0291.jpg",
    "reg-test/labelme-subset/q0746.jpg",
    "reg-test/labelme-subset/q2821.jpg",
    "reg-test/pen-and-coaster.png",
    "misc-images/c.png",
    "misc-images/wee.jpg",
    "misc-images/small.jpg",
]


def phash_of(relative: str) -> PHash:
    return phash(decode(PDQ_DIR / relative, exif_transpose=False).rgb)


@pytest.fixture(scope="module")
def original() -> PHash:
    return phash_of("bridge-mods/aaa-orig.jpg")


@pytest.mark.parametrize("name", EDITS)
def test_edits_of_the_photo_match(original, name):
    assert phash_of(f"bridge-mods/{name}") - original <= PHASH_THRESHOLD


def test_unrelated_photos_do_not_match(original):
    hashes = [original, *(phash_of(relative) for relative in UNRELATED)]
    closest = min(a - b for a, b in itertools.combinations(hashes, 2))
    assert closest > PHASH_THRESHOLD


def test_same_bits_and_hex_as_imagehash():
    imagehash = pytest.importorskip("imagehash")
    for relative in ["bridge-mods/aaa-orig.jpg", "misc-images/I16.png", "reg-test/pen-and-coaster.png"]:
        rgb = decode(PDQ_DIR / relative).rgb
        assert str(phash(rgb)) == str(imagehash.phash(Image.fromarray(rgb), hash_size=16)), relative


def test_hex_round_trip_and_type(original):
    assert PHash.from_hex(str(original)) == original
    assert PHash.from_bytes(original.to_bytes()) == original
    assert len(str(original)) == 64
    assert isinstance(original, PHash) and not isinstance(original, PdqHash)


def test_half_the_bits_are_set():
    rgb = np.random.default_rng(5).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    assert bin(int(phash(rgb))).count("1") == 128  # strictly above the median of 256 distinct values


def test_rejects_wrong_arrays():
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        phash(np.zeros((10, 10), np.uint8))
