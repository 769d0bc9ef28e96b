"""PDQ perceptual hash, bit-exact with Meta's C++ reference as the `pdqhash` bindings call it.

Reference: ThreatExchange `pdq/cpp/hashing/pdqhashing.cpp` and `pdq/cpp/downscaling/downscaling.cpp`
(algorithm: https://github.com/facebook/ThreatExchange/tree/main/pdq). Every float32 operation below
happens in the same order as there, which is what makes the hashes and qualities identical:

- luma: `pdqhash` computes 0.299 R + 0.587 G + 0.114 B in float64 and rounds to float32. That equals the
  correctly rounded float32 of (299 R + 587 G + 114 B) / 1000, which one exact float32 division gives
  (checked over all 2^24 colours), without float64 temporaries.
- blur: two X,Y rounds of the reference's 1-D box filter (Jarosz), window ceil(size / 128). Per line the
  reference keeps a float32 running sum, adds the entering sample, subtracts the leaving one and divides
  by the current window length. Here one numpy step does that for every line at once (the lines are the
  columns of a transposed copy), so each line sees exactly the reference's additions in its order.
- decimate: sample points int((i + 0.5) * size / 64); the last X and Y passes run their sums in full but
  divide and keep only the sampled columns, then rows.
- quality: sum over neighbouring 64x64 samples of |int((u - v) * 100 / 255)|, divided by 90, capped at 100.
- DCT: 16x64 float32 matrix sqrt(2/64) cos(pi/128 (i+1)(2j+1)); products rounded, then summed in k order.
- bits: coefficient > the lower median of the 256 (Torben's median), bit k = coefficient (k // 16, k % 16).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from imaging.hashes import PdqHash

PDQ_THRESHOLD = 31
PDQ_MIN_QUALITY = 50

_SIDE = 64
_MIN_HASHABLE_DIM = 5
_BAND = 128  # rows per band when transposing: keeps the working set in cache


def pdq(rgb: np.ndarray) -> tuple[PdqHash, int]:
    """PDQ hash and quality (0..100) of an (H, W, 3) uint8 RGB image at full resolution."""
    coefficients, quality = _coefficients(rgb, as_is_at_64=True)
    if coefficients is None:
        return PdqHash(0), 0
    return _to_hash(coefficients), quality


def pdq_dihedral(rgb: np.ndarray) -> tuple[list[PdqHash], int]:
    """Hashes of the 8 rotations and flips of the image from one DCT, in the reference's order:
    original, rotate 90, rotate 180, rotate 270, flip X, flip Y, flip +1 (transpose), flip -1.

    Like the reference, this always blurs, also a 64x64 input that `pdq` hashes as is, so for exactly
    64x64 images the first hash can differ from `pdq`'s in a few bits."""
    coefficients, quality = _coefficients(rgb, as_is_at_64=False)
    if coefficients is None:
        return [PdqHash(0)] * 8, 0
    return [_to_hash(variant) for variant in _dihedral_variants(coefficients)], quality


def _coefficients(rgb: np.ndarray, as_is_at_64: bool) -> tuple[np.ndarray | None, int]:
    """The 16x16 DCT block and the quality; None below the reference's minimum size."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"pdq needs an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    if height < _MIN_HASHABLE_DIM or width < _MIN_HASHABLE_DIM:
        return None, 0
    luma_transposed = _luma_transposed(rgb)
    if as_is_at_64 and (height, width) == (_SIDE, _SIDE):
        block = np.ascontiguousarray(luma_transposed.T)
    else:
        block = _downsample(luma_transposed)
    return _dct_64_to_16(block), _quality(block)


def _luma_transposed(rgb: np.ndarray) -> np.ndarray:
    """Luma as a (W, H) array, ready for the first pass, which runs along image rows."""
    height, width = rgb.shape[:2]
    weights = np.array([299, 587, 114], np.float32)
    luma, scaled = _empty(width, height), _empty(_BAND, width)
    for start in range(0, height, _BAND):
        weighted = rgb[start : start + _BAND].astype(np.float32) @ weights  # exact: integers < 2^24
        band = np.divide(weighted, np.float32(1000), out=scaled[: len(weighted)])
        luma[:, start : start + len(band)] = band.T
    return luma


def _empty(rows: int, cols: int) -> np.ndarray:
    """A float32 (rows, cols) buffer. Row strides of a multiple of 1 KiB are padded: transposing
    reads down such columns all land in the same few cache sets (3x slower at 1024 wide)."""
    stride = cols + 16 if cols % 256 == 0 else cols
    return np.empty((rows, stride), np.float32)[:, :cols]


def _window(size: int) -> int:
    return (size + 2 * _SIDE - 1) // (2 * _SIDE)


def _sample_points(size: int) -> np.ndarray:
    return (((np.arange(_SIDE) + 0.5) * size) / _SIDE).astype(np.intp)


def _downsample(luma_transposed: np.ndarray) -> np.ndarray:
    """Blur with X, Y, X, Y box passes and decimate to 64x64.

    Each pass runs down axis 0 of its input and writes its result transposed, which is the layout the
    next pass (along the other image axis) wants. The first two passes reuse the two full-size
    buffers; the last two compute only the sampled columns, then the sampled rows.
    """
    width, height = luma_transposed.shape
    along_rows, along_cols = _window(width), _window(height)
    upright = _box_filter(luma_transposed, along_rows)
    columns_first = _box_filter(upright, along_cols, out=luma_transposed)
    sampled_columns = _box_filter(columns_first, along_rows, keep=_sample_points(width))
    return _box_filter(sampled_columns, along_cols, keep=_sample_points(height)).T


def _box_filter(
    lines: np.ndarray, window: int, keep: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """The reference's box1DFloat down axis 0 of `lines`, for all columns at once, returned transposed:
    result[j, k] is output keep[k] of column j. `out` may be a buffer the input no longer needs."""
    length, width = lines.shape
    if keep is None:
        kept, expand = np.arange(length), None
    else:
        kept, expand = np.unique(keep, return_inverse=True)
    counts = _window_lengths(length, window)[kept]
    if out is None:
        out = _empty(width, len(kept))
    quotients = _empty(_BAND, width)
    for start, sums in _running_sums(lines, window, kept):
        stop = start + len(sums)
        out[:, start:stop] = np.divide(sums, counts[start:stop, None], out=quotients[: len(sums)]).T
    return out if expand is None else out[:, expand]


def _running_sums(lines: np.ndarray, window: int, kept: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """The float32 window sums of box1DFloat at output rows `kept` (sorted, unique), yielded in bands
    of up to _BAND rows as (position in kept, sums); a band is overwritten after the next yield.

    Per column the reference adds the entering sample, then subtracts the leaving one once the window
    is full; each step here does that for a whole row of columns, in the same order.
    """
    length, width = lines.shape
    half = (window + 2) // 2
    rows = list(lines)
    band = _empty(_BAND, width)
    scratch, grown = np.empty(width, np.float32), np.empty(width, np.float32)
    targets = [scratch] * length
    flushes = {}
    for position, step in enumerate(kept.tolist()):
        targets[step] = band[position % _BAND]
        if position % _BAND == _BAND - 1 or position == len(kept) - 1:
            flushes[step] = position - position % _BAND, position % _BAND + 1
    add, subtract = np.add, np.subtract
    end = int(kept[-1]) + 1
    growing_end = min(window - half + 1, end)  # outputs before the first subtraction
    steady_end = min(length - half + 1, end)  # outputs before the last addition

    running = np.zeros(width, np.float32)
    for entering in range(half - 1):
        add(running, rows[entering], running)
    for step in range(growing_end):
        running = add(running, rows[step + half - 1], targets[step])
        if step in flushes:
            start, count = flushes[step]
            yield start, band[:count]
    for step in range(growing_end, steady_end):
        add(running, rows[step + half - 1], grown)
        running = subtract(grown, rows[step + half - 1 - window], targets[step])
        if step in flushes:
            start, count = flushes[step]
            yield start, band[:count]
    for step in range(steady_end, end):
        running = subtract(running, rows[step + half - 1 - window], targets[step])
        if step in flushes:
            start, count = flushes[step]
            yield start, band[:count]


@lru_cache(maxsize=64)
def _window_lengths(length: int, window: int) -> np.ndarray:
    """The divisor of each output of box1DFloat: the window grows to full, stays, then shrinks."""
    half = (window + 2) // 2
    counts = np.concatenate(
        [np.arange(half, window + 1), np.full(length - window, window), window - 1 - np.arange(half - 1)]
    ).astype(np.float32)
    counts.flags.writeable = False
    return counts


def _quality(block: np.ndarray) -> int:
    hundred, full = np.float32(100), np.float32(255)
    vertical = ((block[:-1] - block[1:]) * hundred / full).astype(np.int32)
    horizontal = ((block[:, :-1] - block[:, 1:]) * hundred / full).astype(np.int32)
    gradient_sum = int(np.abs(vertical).sum()) + int(np.abs(horizontal).sum())
    return min(gradient_sum // 90, 100)


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    # math.cos (the C library's, as the reference uses) rather than numpy's vectorised cos.
    scale = float(np.float32(math.sqrt(2.0 / _SIDE)))
    step = math.pi / 2.0 / _SIDE
    matrix = np.array(
        [[scale * math.cos(step * (i + 1) * (2 * j + 1)) for j in range(_SIDE)] for i in range(16)],
        dtype=np.float32,
    )
    matrix.flags.writeable = False
    return matrix


def _dct_64_to_16(block: np.ndarray) -> np.ndarray:
    """D A D^T for the 16 lowest non-DC frequencies, each sum over k in the reference's order: a float32
    product, then a float32 add. (np.add.reduce or matmul would change the rounding.)"""
    matrix = _dct_matrix()
    partial = np.zeros((16, _SIDE), np.float32)
    for k in range(_SIDE):
        partial += matrix[:, k : k + 1] * block[k]
    result = np.zeros((16, 16), np.float32)
    for k in range(_SIDE):
        result += partial[:, k : k + 1] * matrix[:, k]
    return result


def _to_hash(coefficients: np.ndarray) -> PdqHash:
    median = np.partition(coefficients.reshape(-1), 127)[127]  # what Torben's algorithm returns for 256
    return PdqHash.from_bits(coefficients > median)


def _dihedral_variants(dct: np.ndarray) -> list[np.ndarray]:
    """Rotations and flips act on DCT coefficients as sign changes and a transpose (reference table)."""
    odd = np.arange(16) % 2 == 1
    row_odd, col_odd = odd[:, None], odd[None, :]
    checker = row_odd ^ col_odd
    return [
        dct,
        np.where(col_odd, dct, -dct).T,
        np.where(checker, -dct, dct),
        np.where(row_odd, dct, -dct).T,
        np.where(row_odd, dct, -dct),
        np.where(col_odd, dct, -dct),
        dct.T,
        np.where(checker, -dct, dct).T,
    ]
