"""Region hashes: PDQ-style hashes of the few most salient squares of a picture, found by its content.

A whole-picture hash cannot survive losing part of the picture: a crop of 10% from one side, a sticker over 5%
of it or a collage moves PDQ by far more than its threshold. A square centred on a salient blob and sized by
the blob's own scale is found again wherever the picture is cut, scaled or overlaid, as long as the square
itself survives. So a bank stores the hashes of a picture's strongest regions, a query is hashed the same way,
and a record matches when at least two of its regions are found in the query (`imaging.matching`): one region
alone can be a common texture, two at once are the same picture. A query looks up fewer regions than a record
stores (QUERY_REGIONS, BANK_REGIONS): probes cost lookup time, stored rows much less.

Regions: SIFT blob keypoints (difference of Gaussians, OpenCV) on a grey copy at most DETECT_SIDE pixels on
its longer side; blobs smaller than MIN_BLOB_SIZE of the shorter side are dropped (fine detail moves under
resampling), the rest ranked by response x size, each blob's square (SQUARE_PER_BLOB x its size) kept if it
lies inside the picture and its centre is not inside a stronger kept blob. Hash: the square scaled to 64x64
by area, the 16x16 lowest non-DC DCT frequencies (as PDQ) thresholded at their median; squares with PDQ's
quality below PDQ_MIN_QUALITY (flat sky, a wall) are skipped.

Constants set on the robustness benchmark (bench/robustness.py, docs/robustness.md).
"""
from __future__ import annotations

import cv2
import numpy as np

from imaging.hashes import PdqHash
from imaging.pdq import PDQ_MIN_QUALITY, _dct_matrix, _quality

REGION_KIND = "pdq_region"
DETECT_SIDE = 256
HASH_SIDE = 512  # squares are cut from a grey copy this size (64x64 per square needs no more)
MIN_BLOB_SIZE = 0.03
SQUARE_PER_BLOB = 4.0
BANK_REGIONS = 8  # stored per record
QUERY_REGIONS = 6  # looked up per query: each costs a probe; 6 keep all but 0.2% of 8's recall (bench)

_sift = None


def _detector() -> cv2.SIFT:
    global _sift
    if _sift is None:
        _sift = cv2.SIFT_create()
    return _sift


def _grey(rgb: np.ndarray, side: int) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    scale = side / max(grey.shape)
    if scale >= 1:
        return grey
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def region_squares(rgb: np.ndarray, limit: int = BANK_REGIONS) -> list[tuple[float, float, float]]:
    """(x, y, side) of the picture's strongest blob squares, strongest first, as fractions of its width
    (x, side) and height (y)."""
    if min(rgb.shape[:2]) < 32:
        return []
    grey = _grey(rgb, DETECT_SIDE)
    height, width = grey.shape
    smallest = MIN_BLOB_SIZE * min(height, width)
    blobs = sorted((k for k in _detector().detect(grey, None) if k.size >= smallest),
                   key=lambda k: -k.response * k.size)
    kept: list[tuple[float, float, float]] = []
    squares = []
    for blob in blobs:
        x, y = blob.pt
        half = SQUARE_PER_BLOB * blob.size / 2
        if x - half < 0 or y - half < 0 or x + half > width or y + half > height:
            continue
        if any(abs(x - kx) < ks / 2 and abs(y - ky) < ks / 2 for kx, ky, ks in kept):
            continue
        kept.append((x, y, blob.size))
        squares.append((x / width, y / height, 2 * half / width))
        if len(squares) == 2 * limit:  # some squares are too flat to hash
            break
    return squares


def region_hashes(rgb: np.ndarray, limit: int = BANK_REGIONS) -> list[PdqHash]:
    """Hashes of up to `limit` region squares, strongest first."""
    squares = region_squares(rgb, limit)
    if not squares:
        return []
    grey = _grey(rgb, HASH_SIDE).astype(np.float32)
    height, width = grey.shape
    blocks = []
    for x, y, side in squares:
        half = side * width / 2
        cx, cy = x * width, y * height
        patch = grey[max(0, round(cy - half)):round(cy + half), max(0, round(cx - half)):round(cx + half)]
        if min(patch.shape) < 8:
            continue
        block = cv2.resize(patch, (64, 64), interpolation=cv2.INTER_AREA)
        if _quality(block) >= PDQ_MIN_QUALITY:
            blocks.append(block)
        if len(blocks) == limit:
            break
    if not blocks:
        return []
    dct = _dct_matrix()
    coefficients = dct @ np.stack(blocks) @ dct.T
    medians = np.median(coefficients.reshape(len(blocks), -1), axis=1)
    return [PdqHash.from_bits(c > m) for c, m in zip(coefficients, medians)]
