"""Blob keypoints by difference of Gaussians as OpenCV's SIFT finds them (Lowe 2004, OpenCV's parameters), at a
fraction of its work.

OpenCV's SIFT starts one octave below the picture, on a copy doubled in size, and that octave is three quarters
of its work; a region square needs blobs of at least MIN_BLOB_SIZE of the picture's shorter side, and that
octave's are 2-3.6 pixels across (only a picture more than twice as long as it is wide keeps a few of them:
they are lost here). Here the second octave's start, the doubled copy
blurred and every second pixel taken, is one filter at the picture's own resolution (`_doubled_start`), so
the blobs are SIFT's to float rounding (away from the borders, where the padding differs), and octaves whose
blobs are all smaller than asked for are only blurred through. The rest is SIFT's: octaves of three layers
(sigma 1.6), extrema of the differences against their 26 neighbours, refined to a sub-pixel, sub-layer
position, kept above SIFT's contrast and below its edge ratio. No orientations and no descriptors: the
region squares are axis-aligned and cut from pixels.
"""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
from numba import njit

LAYERS = 3  # per octave, as SIFT
SIGMA = 1.6
INPUT_SIGMA = 0.5
CONTRAST_THRESHOLD = 0.04
EDGE_THRESHOLD = 10.0
BORDER = 5
REFINE_STEPS = 5


def dog_blobs(grey: np.ndarray, min_size: float = 0.0,
              max_size: float = math.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, size, response) arrays of the blobs of `grey` (uint8, H x W) from `min_size` to `max_size`
    pixels across, in `grey`'s pixel coordinates (a pixel's centre at its index), in no particular order."""
    height, width = grey.shape
    octaves = max(0, round(math.log2(min(height, width))) - 2)
    found: list[np.ndarray] = []
    kernel = _doubled_start()
    layer = cv2.sepFilter2D(grey.astype(np.float32), cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    for octave in range(octaves):
        if octave:
            layer = np.ascontiguousarray(layer[::2, ::2])  # SIFT's next octave: every second pixel of layer 3
        smallest = SIGMA * 2 ** (0.5 / LAYERS) * 2 ** octave * 2
        largest = SIGMA * 2 ** ((LAYERS + 0.5) / LAYERS) * 2 ** octave * 2
        if min(layer.shape) <= 2 * BORDER or smallest > max_size:
            break  # no pixel of this octave or the next lies inside SIFT's border, or no blob is small enough
        if largest < min_size:
            # no blob here is large enough: only the next octave's start is needed, blurred in one step
            layer = cv2.GaussianBlur(layer, (0, 0), SIGMA * math.sqrt(4 - 1))
            continue
        gaussians = [layer]
        for step in range(1, LAYERS + 3):
            before = SIGMA * 2 ** ((step - 1) / LAYERS)
            gaussians.append(cv2.GaussianBlur(gaussians[-1], (0, 0), before * math.sqrt(2 ** (2 / LAYERS) - 1)))
        layer = gaussians[LAYERS]
        stack = np.stack(gaussians)
        found.append(_extrema(stack[1:] - stack[:-1], octave, min_size, max_size))
    if not found:
        empty = np.empty(0, np.float32)
        return empty, empty, empty, empty
    blobs = np.concatenate(found)
    return blobs[:, 0], blobs[:, 1], blobs[:, 2], blobs[:, 3]


@lru_cache(maxsize=1)
def _doubled_start() -> np.ndarray:
    """The filter, at the picture's own resolution, that gives SIFT's second octave's start: the picture
    doubled by linear interpolation, blurred to 2 x SIGMA (on the doubled grid, the input taken as blurred by
    2 x INPUT_SIGMA there) and every second pixel taken. The same pixels away from the borders, at an eighth of
    the work: the doubled grid is four times as large and the blur there twice as wide."""
    sigma = math.sqrt((2 * SIGMA) ** 2 - (2 * INPUT_SIGMA) ** 2)
    gauss = cv2.getGaussianKernel(round(sigma * 8 + 1) | 1, sigma, cv2.CV_64F).ravel()
    reach = len(gauss) // 2
    # doubled[2m] = 0.75 p[m] + 0.25 p[m-1], doubled[2m+1] = 0.75 p[m] + 0.25 p[m+1] (OpenCV's linear doubling)
    taps = np.zeros(2 * (reach // 2 + 1) + 1)
    centre = len(taps) // 2
    for t in range(-reach, reach + 1):
        pixel, odd = divmod(t, 2)
        taps[centre + pixel] += 0.75 * gauss[t + reach]
        taps[centre + pixel + (1 if odd else -1)] += 0.25 * gauss[t + reach]
    return taps.astype(np.float32)


def _extrema(dog: np.ndarray, octave: int, min_size: float, max_size: float) -> np.ndarray:
    """Rows (x, y, size, response) of the refined extrema of one octave's differences (layers x H x W) from
    `min_size` to `max_size` across: each peak or trough of its 26 neighbours (3 x 3 in its layer and the two beside)."""
    threshold = math.floor(0.5 * CONTRAST_THRESHOLD / LAYERS * 255)
    square = np.ones((3, 3), np.uint8)
    highest = np.stack([cv2.dilate(layer, square) for layer in dog])
    lowest = np.stack([cv2.erode(layer, square) for layer in dog])
    value = dog[1:-1]
    peak = (value > threshold) & (value >= np.maximum(np.maximum(highest[:-2], highest[1:-1]), highest[2:]))
    trough = (value < -threshold) & (value <= np.minimum(np.minimum(lowest[:-2], lowest[1:-1]), lowest[2:]))
    inside = peak | trough
    inside[:, :BORDER] = inside[:, -BORDER:] = inside[:, :, :BORDER] = inside[:, :, -BORDER:] = False
    candidates = np.stack(np.nonzero(inside), axis=1)
    candidates[:, 0] += 1
    return _refined_all(dog, candidates, octave, min_size, max_size)


@njit(cache=True, nogil=True)
def _refined_all(dog: np.ndarray, candidates: np.ndarray, octave: int, min_size: float,
                 max_size: float) -> np.ndarray:
    out = np.empty((candidates.shape[0], 4), np.float32)
    kept = 0
    gradient = np.empty(3)
    hessian = np.empty((3, 3))
    for i in range(candidates.shape[0]):
        blob = _refined(dog, candidates[i, 0], candidates[i, 1], candidates[i, 2], octave, gradient, hessian)
        if min_size <= blob[2] <= max_size:
            out[kept, 0], out[kept, 1], out[kept, 2], out[kept, 3] = blob
            kept += 1
    return out[:kept]


@njit(cache=True, nogil=True)
def _refined(dog: np.ndarray, layer: int, r: int, c: int, octave: int, gradient: np.ndarray,
             hessian: np.ndarray) -> tuple[float, float, float, float]:
    """SIFT's interpolation of an extremum to its sub-pixel, sub-layer peak: (x, y, size, response), size -1
    where SIFT drops it (it leaves the grid, stays unsettled, has too little contrast or lies on an edge)."""
    layers, rows, cols = dog.shape
    scale = 1.0 / 255
    dropped = (0.0, 0.0, -1.0, 0.0)
    xc = xr = xl = 0.0
    for _ in range(REFINE_STEPS):
        _derivatives(dog, layer, r, c, scale, gradient, hessian)
        solved, xc, xr, xl = _solve3(hessian, gradient)
        if not solved:
            return dropped
        if abs(xc) < 0.5 and abs(xr) < 0.5 and abs(xl) < 0.5:
            break
        if abs(xc) > 1e6 or abs(xr) > 1e6 or abs(xl) > 1e6:
            return dropped
        c += int(round(xc))
        r += int(round(xr))
        layer += int(round(xl))
        if layer < 1 or layer > layers - 2 or c < BORDER or c >= cols - BORDER or r < BORDER or r >= rows - BORDER:
            return dropped
    else:
        return dropped  # still moving after REFINE_STEPS
    _derivatives(dog, layer, r, c, scale, gradient, hessian)
    contrast = dog[layer, r, c] * scale + 0.5 * (gradient[0] * xc + gradient[1] * xr + gradient[2] * xl)
    if abs(contrast) * LAYERS < CONTRAST_THRESHOLD:
        return dropped
    trace = hessian[0, 0] + hessian[1, 1]
    det = hessian[0, 0] * hessian[1, 1] - hessian[0, 1] ** 2
    if det <= 0 or trace * trace * EDGE_THRESHOLD >= (EDGE_THRESHOLD + 1) ** 2 * det:
        return dropped
    step = 2.0 ** octave
    size = SIGMA * 2.0 ** ((layer + xl) / LAYERS) * step * 2
    return (c + xc) * step, (r + xr) * step, size, abs(contrast)


@njit(cache=True, nogil=True)
def _derivatives(dog: np.ndarray, layer: int, r: int, c: int, scale: float, gradient: np.ndarray,
                 hessian: np.ndarray) -> None:
    """Central differences at (layer, r, c): gradient (x, y, layer) and the 3 x 3 Hessian, in SIFT's scale."""
    centre = 2.0 * dog[layer, r, c]
    gradient[0] = (dog[layer, r, c + 1] - dog[layer, r, c - 1]) * scale * 0.5
    gradient[1] = (dog[layer, r + 1, c] - dog[layer, r - 1, c]) * scale * 0.5
    gradient[2] = (dog[layer + 1, r, c] - dog[layer - 1, r, c]) * scale * 0.5
    hessian[0, 0] = (dog[layer, r, c + 1] + dog[layer, r, c - 1] - centre) * scale
    hessian[1, 1] = (dog[layer, r + 1, c] + dog[layer, r - 1, c] - centre) * scale
    hessian[2, 2] = (dog[layer + 1, r, c] + dog[layer - 1, r, c] - centre) * scale
    hessian[0, 1] = hessian[1, 0] = (dog[layer, r + 1, c + 1] - dog[layer, r + 1, c - 1]
                                     - dog[layer, r - 1, c + 1] + dog[layer, r - 1, c - 1]) * scale * 0.25
    hessian[0, 2] = hessian[2, 0] = (dog[layer + 1, r, c + 1] - dog[layer + 1, r, c - 1]
                                     - dog[layer - 1, r, c + 1] + dog[layer - 1, r, c - 1]) * scale * 0.25
    hessian[1, 2] = hessian[2, 1] = (dog[layer + 1, r + 1, c] - dog[layer + 1, r - 1, c]
                                     - dog[layer - 1, r + 1, c] + dog[layer - 1, r - 1, c]) * scale * 0.25


@njit(cache=True, nogil=True)
def _solve3(a: np.ndarray, b: np.ndarray) -> tuple[bool, float, float, float]:
    """-a^-1 b for a symmetric 3 x 3 `a` by Cramer's rule; False where `a` is singular."""
    c00 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
    c01 = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
    c02 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
    det = a[0, 0] * c00 + a[0, 1] * c01 + a[0, 2] * c02
    if abs(det) < 1e-30:
        return False, 0.0, 0.0, 0.0
    c11 = a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]
    c12 = a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]
    c22 = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    x0 = (c00 * b[0] + c01 * b[1] + c02 * b[2]) / det
    x1 = (c01 * b[0] + c11 * b[1] + c12 * b[2]) / det
    x2 = (c02 * b[0] + c12 * b[1] + c22 * b[2]) / det
    return True, -x0, -x1, -x2
