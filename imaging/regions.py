"""Region hashes: PDQ-style hashes of the few most salient squares of a picture, found by its content.

A whole-picture hash cannot survive losing part of the picture: a crop of 10% from one side, a sticker over 5%
of it or a collage moves PDQ by far more than its threshold. A square centred on a salient blob and sized by
the blob's own scale is found again wherever the picture is cut, scaled or overlaid, as long as the square
itself survives. So a bank stores the hashes of a picture's strongest regions, a query is hashed the same way,
and a record matches when at least two of its regions are found in the query (`region_match`): one region
alone can be a common texture, two at once are the same picture. A query looks up fewer regions than a record
stores (QUERY_REGIONS, BANK_REGIONS): probes cost lookup time, stored rows much less. A record also stores the
regions of its mirror image (`imaging.robust.bank_variants`), so a mirrored and cropped copy finds it too: they
are found afresh in the mirror image, since mirroring each stored square leaves it 10-30 bits from the square
a mirrored copy yields (the resampling and the blob positions are not symmetric to the pixel).

Regions: SIFT's blobs (difference of Gaussians, `imaging.blobs`) on a grey copy at most DETECT_SIDE pixels on
its longer side; blobs smaller than MIN_BLOB_SIZE of the shorter side are dropped (fine detail moves under
resampling), the rest ranked by response x size, each blob's square (SQUARE_PER_BLOB x its size) kept if it
lies inside the picture and its centre is not inside a stronger kept blob. Hash: the square, cut from a grey copy at
most HASH_SIDE pixels, scaled to 64x64 by area, the 16x16 lowest non-DC DCT frequencies (as PDQ) thresholded at their median; squares with PDQ's
quality below PDQ_MIN_QUALITY (flat sky, a wall) are skipped.

Squares are axis-aligned, so a picture turned a few degrees inside its own canvas and cut (a straightened photo,
a crop of a turned one) moves every square's hash as far as a whole picture's. A bank therefore also stores the
regions of the picture turned by each of TURNED_ANGLES and straightened (`turned_region_hashes`: cut as a
straighten tool cuts, so that a turned crop's blobs are found at the scale the bank's are), and the query stays
as it is.
Likewise for crops, which scale what is left on the detection copy: the bank stores the squares found at the
scales crops of 10-30% give (`cropped_region_hashes`). Both cost rows, index memory and lookup time (146 region
rows per record instead of 23; docs/robustness.md). Squares cut along SIFT's own angle instead were tried and
lost more than they gained: the angle is not repeatable to the degree a 64x64 hash needs.

Constants set on the robustness benchmark (bench/robustness.py, docs/robustness.md).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from imaging.blobs import dog_blobs
from imaging.hashes import Hash256
from imaging.pdq import PDQ_MIN_QUALITY, _dct_matrix, _quality, _to_hash
from imaging.resample import area_reduced

REGION_KIND = "pdq_region"
# Set on the extended benchmark (docs/robustness.md): the nearest region of an unrelated picture lies 66 bits
# away, the same square after a crop mostly within 8-30. Region hashes have 128 set bits, so distances are even.
# 20 would find a third more crops by their regions, but 8 probes at 20 cost 3.9x a plain lookup at 1M records
# against 2.8x at 14 (the budget is 3x); the expected false matches at scale: bench/false_matches.py.
REGION_THRESHOLD = 14
# A query picture no longer than SMALL_QUERY_SIDE (a thumbnail, a chat preview) finds its squares on a detection
# copy smaller than the bank's or little larger, so their centres and sizes move by more of a square: its true
# regions lie mostly at 8-20 bits, and 16 found 5 more of 135 small crops (docs/robustness.md). Only those
# queries pay the wider probe.
SMALL_QUERY_SIDE = 320
SMALL_QUERY_REGION_THRESHOLD = 16
REGIONS_NEEDED = 2
DETECT_SIDE = 256
HASH_SIDE = 512  # squares are cut from a grey copy this size (64x64 per square needs no more)
MIN_SIDE = 32
MIN_BLOB_SIZE = 0.03
SQUARE_PER_BLOB = 6.0
BANK_REGIONS = 12  # squares stored per record and per hand (24 rows): fewer pictures offer more
QUERY_REGIONS = 8  # looked up per query, each a probe: 8 over 5 adds a tenth of the crops' region recall at 14
# One degree apart: a turn half a degree off the nearest stored one is still found (1.5 apart lost a third there).
TURNED_ANGLES = tuple(float(a) for a in range(-6, 7) if a)
TURNED_REGIONS = QUERY_REGIONS  # stored per turned copy: a query looks up no more
# A crop to f of the longer side shows the rest 1/f larger on the detection copy, so other blobs come first: the
# bank also stores the squares found on a copy DETECT_SIDE / f pixels long, for each f.
CROP_FRACTIONS = (0.9, 0.8, 0.7)
CROP_REGIONS = QUERY_REGIONS


class RegionHash(Hash256):
    """The PDQ-style hash of one salient square: comparable only with other region hashes."""

    __slots__ = ()


def searched_regions(count: int) -> int:
    """How many of a query's `count` regions (strongest first) a lookup searches the index with: a match needs
    REGIONS_NEEDED of them, so at least one is among any count - REGIONS_NEEDED + 1, and the rest need only be
    compared with the records those find."""
    return max(1, count - REGIONS_NEEDED + 1)


def query_region_threshold(height: int, width: int) -> int:
    """The distance within which a query picture of this size finds its regions."""
    return SMALL_QUERY_REGION_THRESHOLD if max(height, width) <= SMALL_QUERY_SIDE else REGION_THRESHOLD


def region_match(pairs: Iterable[tuple[int, int, int]], threshold: int = REGION_THRESHOLD) -> int | None:
    """The distance at which a record's regions match a query's, or None. `pairs`: (query region, stored region,
    distance). A match needs REGIONS_NEEDED different query regions within `threshold` of stored ones, and
    REGIONS_NEEDED different stored ones among those; its distance is the REGIONS_NEEDED-th smallest of the
    query regions' best distances."""
    best: dict[int, int] = {}
    stored = set()
    for query, row, distance in pairs:
        if distance <= threshold:
            best[query] = min(distance, best.get(query, distance))
            stored.add(row)
    if len(best) < REGIONS_NEEDED or len(stored) < REGIONS_NEEDED:
        return None
    return sorted(best.values())[REGIONS_NEEDED - 1]


def _blob_squares(grey: np.ndarray) -> Iterator[tuple[float, float, float]]:
    """(x, y, half side) in `grey`'s pixels of its blob squares that lie inside it, strongest first, each
    centre outside every stronger square's blob."""
    height, width = grey.shape
    # a blob's square must fit inside the picture
    xs, ys, sizes, responses = dog_blobs(grey, MIN_BLOB_SIZE * min(height, width),
                                         min(height, width) / SQUARE_PER_BLOB)
    kept: list[tuple[float, float, float]] = []
    for i in np.argsort(-(responses.astype(np.float64) * sizes), kind="stable"):
        x, y, size = float(xs[i]), float(ys[i]), float(sizes[i])
        half = SQUARE_PER_BLOB * size / 2
        if x - half < 0 or y - half < 0 or x + half > width or y + half > height:
            continue
        if any(abs(x - kx) < kept_size / 2 and abs(y - ky) < kept_size / 2 for kx, ky, kept_size in kept):
            continue
        kept.append((x, y, size))
        yield x, y, half


def region_hashes(rgb: np.ndarray, limit: int = BANK_REGIONS, detect_side: int = DETECT_SIDE) -> list[RegionHash]:
    """Hashes of the picture's `limit` strongest region squares that are not flat, strongest first, the squares
    found on a copy `detect_side` pixels on its longer side."""
    if min(rgb.shape[:2]) < MIN_SIDE:
        return []
    # Reduced before it is made grey, so that the regions of a picture and of its reduced copy
    # (`area_reduced(rgb, HASH_SIDE)`, which the variants are hashed from too) are the same.
    grey = cv2.cvtColor(np.ascontiguousarray(area_reduced(rgb, HASH_SIDE)), cv2.COLOR_RGB2GRAY)
    detect = area_reduced(grey, detect_side)
    scale_x, scale_y = grey.shape[1] / detect.shape[1], grey.shape[0] / detect.shape[0]
    dct = _dct_matrix()
    hashes = []
    for x, y, half in _blob_squares(detect):
        cx, cy, half = x * scale_x, y * scale_y, half * scale_x
        patch = grey[max(0, round(cy - half)):round(cy + half), max(0, round(cx - half)):round(cx + half)]
        if min(patch.shape) < 8:
            continue
        block = cv2.resize(patch.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA)
        if _quality(block) >= PDQ_MIN_QUALITY:
            hashes.append(RegionHash(int(_to_hash(dct @ block @ dct.T))))
            if len(hashes) == limit:
                break
    return hashes


def turned_region_hashes(rgb: np.ndarray) -> list[RegionHash]:
    """The region hashes of the picture turned by each of TURNED_ANGLES and cut to the largest centred rectangle
    of its own shape that holds no canvas (as a photo editor straightens a photo), TURNED_REGIONS per turn: the
    bank's rows for crops of turned copies."""
    small = np.ascontiguousarray(area_reduced(rgb, HASH_SIDE))
    height, width = small.shape[:2]
    hashes = []
    for angle in TURNED_ANGLES:
        turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        turned = cv2.warpAffine(small, turn, (width, height), flags=cv2.INTER_CUBIC)
        radians = math.radians(abs(angle))
        scale = 1 / (math.cos(radians) + math.sin(radians) * max(width / height, height / width))
        cut_w, cut_h = round(width * scale), round(height * scale)
        top, left = (height - cut_h) // 2, (width - cut_w) // 2
        hashes += region_hashes(turned[top:top + cut_h, left:left + cut_w], TURNED_REGIONS)
    return hashes


def cropped_region_hashes(rgb: np.ndarray) -> list[RegionHash]:
    """The region hashes of the picture found at the scale a crop to each of CROP_FRACTIONS of its longer side
    would be found at, CROP_REGIONS per scale: the bank's rows for crops whose strongest squares are not the
    whole picture's."""
    small = np.ascontiguousarray(area_reduced(rgb, HASH_SIDE))
    return [region for fraction in CROP_FRACTIONS
            for region in region_hashes(small, CROP_REGIONS, detect_side=round(DETECT_SIDE / fraction))]
