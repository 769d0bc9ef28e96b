"""Reduced copies for the hashes that do not need full resolution (variants and regions)."""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
from numba import njit


def area_reduced(image: np.ndarray, side: int) -> np.ndarray:
    """`image` (H, W) or (H, W, C) uint8 averaged down by area to `side` pixels on its longer side, unchanged
    if it is that small: each output pixel is the mean of the input area it covers, partly covered pixels
    weighted by their share, as OpenCV's INTER_AREA computes it (the same cells and weights; a pixel in a few
    hundred may round the other way). OpenCV's own area path at a fractional factor took 34 ms for a
    12-megapixel photo; this one runs down the columns first, where every step is a whole row in vector
    registers, then across the few rows left: 12 ms. Averaging in two OpenCV steps (a whole-number factor in
    blocks, then the rest) was as fast but lost 2-5% of the crops' recall (bench.robustness): the blocks are
    not aligned with the final cells, so a crop and its original were averaged differently."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale > 1 / 3 or (width % size[0] == 0 and height % size[1] == 0):
        # OpenCV's own is the faster below a factor of 3, and with whole blocks (its fast path): the same means
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    rows, row_weights = _cells(height, size[1])
    columns, column_weights = _cells(width, size[0])
    pixels = np.ascontiguousarray(image)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    out = _area(pixels.reshape(height, width * channels), channels, rows, row_weights, columns, column_weights)
    return out.reshape((size[1], size[0]) + image.shape[2:])


@lru_cache(maxsize=256)  # photos come in a few sizes; the tables took 3 ms to make at 12 MP
def _cells(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output index, the input indices it covers and their weights (summing to 1), as OpenCV's
    computeResizeAreaTab makes them; padded with weight 0 to one length. Read-only: they are shared."""
    step = source / target
    cells: list[list[tuple[int, float]]] = []
    for i in range(target):
        start = i * step
        end = start + step
        cell = min(step, source - start)
        first, last = math.ceil(start), math.floor(end)
        covered = []
        if first - start > 1e-3:
            covered.append((first - 1, (first - start) / cell))
        covered += [(k, 1 / cell) for k in range(first, min(last, source))]
        if end - last > 1e-3 and last < source:
            covered.append((last, min(end - last, 1.0, cell) / cell))
        cells.append(covered)
    longest = max(len(cell) for cell in cells)
    indices = np.zeros((target, longest), np.int64)
    weights = np.zeros((target, longest), np.float32)
    for i, cell in enumerate(cells):
        for k, (index, weight) in enumerate(cell):
            indices[i, k], weights[i, k] = index, weight
    indices.flags.writeable = weights.flags.writeable = False
    return indices, weights


@njit(cache=True, nogil=True, error_model="numpy")
def _area(pixels: np.ndarray, channels: int, rows: np.ndarray, row_weights: np.ndarray, columns: np.ndarray,
          column_weights: np.ndarray) -> np.ndarray:
    out = np.empty((rows.shape[0], columns.shape[0] * channels), np.uint8)
    line = np.empty(pixels.shape[1], np.float32)
    for r in range(rows.shape[0]):
        line[:] = 0.0
        for k in range(rows.shape[1]):
            weight = row_weights[r, k]
            if weight != 0.0:
                source = pixels[rows[r, k]]
                for x in range(line.shape[0]):
                    line[x] += weight * np.float32(source[x])
        for c in range(columns.shape[0]):
            for channel in range(channels):
                total = np.float32(0.0)
                for k in range(columns.shape[1]):
                    total += column_weights[c, k] * line[columns[c, k] * channels + channel]
                out[r, c * channels + channel] = min(255, int(total + np.float32(0.5)))
    return out
