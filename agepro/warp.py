"""Piecewise-affine image warp over a triangulation, with an orientation (fold-over) guard.

The triangulation is built once on the source vertices. Each output pixel inside a target triangle is pulled from
the source through that triangle's inverse affine map (bilinear sampling), so there are no holes; pixels of
triangles whose three vertices stay put are never written, so they stay bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import Delaunay

# A target triangle must keep this share of its source area (and its sign): no folds, no collapsed slivers.
MIN_AREA_RATIO = 0.05


def triangulate(vertices: np.ndarray) -> np.ndarray:
    """Delaunay triangles (M, 3) of the source vertices, all counter-clockwise in image coordinates."""
    triangles = Delaunay(vertices).simplices.astype(np.int64)
    negative = signed_areas(vertices, triangles) < 0
    triangles[negative] = triangles[negative][:, [0, 2, 1]]
    return triangles


def signed_areas(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def keeps_orientation(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> bool:
    before, after = signed_areas(source, triangles), signed_areas(target, triangles)
    return bool(np.all(after >= MIN_AREA_RATIO * before))


def fold_free_scale(source: np.ndarray, target: np.ndarray, triangles: np.ndarray, steps: int = 12) -> float:
    """Largest share t of the displacement (1.0 if all of it) for which every triangle keeps its orientation."""
    if keeps_orientation(source, target, triangles):
        return 1.0
    displacement = target - source
    low, high = 0.0, 1.0
    for _ in range(steps):
        mid = (low + high) / 2
        if keeps_orientation(source, source + mid * displacement, triangles):
            low = mid
        else:
            high = mid
    return low


@dataclass(frozen=True)
class WarpResult:
    image: np.ndarray
    changed: np.ndarray  # bool (H, W): pixels the warp wrote; every other pixel is the input's


def warp_image(rgb: np.ndarray, source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> WarpResult:
    """Warp ``rgb`` so that each source vertex lands on its target vertex (affine inside each triangle)."""
    height, width = rgb.shape[:2]
    moved = np.any(np.abs(target - source) > 1e-9, axis=1)
    moving = np.flatnonzero(moved[triangles].any(axis=1))
    out = rgb.copy()
    if moving.size == 0:
        return WarpResult(out, np.zeros((height, width), bool))

    # Triangle ids (1-based) rasterised over the target triangles that move.
    canvas = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for k in moving:
        draw.polygon([tuple(p) for p in target[triangles[k]]], fill=int(k) + 1)
    labels = np.asarray(canvas, dtype=np.int64)
    ys, xs = np.nonzero(labels)
    tri = labels[ys, xs] - 1

    inverse = _inverse_affines(source, target, triangles)
    affine = inverse[tri]
    sx = affine[:, 0, 0] * xs + affine[:, 0, 1] * ys + affine[:, 0, 2]
    sy = affine[:, 1, 0] * xs + affine[:, 1, 1] * ys + affine[:, 1, 2]
    out[ys, xs] = _bilinear(rgb, sx, sy)
    changed = np.zeros((height, width), bool)
    changed[ys, xs] = True
    return WarpResult(out, changed)


def _inverse_affines(source: np.ndarray, target: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(M, 2, 3) affine maps taking each target triangle onto its source triangle."""
    t = target[triangles]
    s = source[triangles]
    ones = np.ones((len(triangles), 3, 1))
    t_h = np.concatenate([t, ones], axis=2)  # (M, 3, 3) rows [x y 1]
    safe = np.abs(np.linalg.det(t_h)) > 1e-12
    solution = np.zeros((len(triangles), 3, 2))
    solution[safe] = np.linalg.solve(t_h[safe], s[safe])
    return np.transpose(solution, (0, 2, 1))


def _bilinear(rgb: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    x = np.clip(x, 0, width - 1).astype(np.float32)
    y = np.clip(y, 0, height - 1).astype(np.float32)
    x0 = np.minimum(x.astype(np.int64), max(width - 2, 0))
    y0 = np.minimum(y.astype(np.int64), max(height - 2, 0))
    step_x = 1 if width > 1 else 0
    step_y = width if height > 1 else 0
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    flat = rgb.reshape(-1, rgb.shape[2])
    corner = y0 * width + x0
    top = flat[corner] * (1 - fx) + flat[corner + step_x] * fx
    bottom = flat[corner + step_y] * (1 - fx) + flat[corner + step_y + step_x] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def warp_into(source_rgb: np.ndarray, source: np.ndarray, target: np.ndarray, triangles: np.ndarray,
              shape: tuple[int, int], origin: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A (h, w) canvas whose pixel (0, 0) is image point ``origin``, each pixel inside a target triangle pulled
    from ``source_rgb`` (any size) through that triangle's inverse affine map; returns (canvas, covered)."""
    height, width = shape
    local = target - np.asarray(origin, np.float64)
    canvas = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for k, corners in enumerate(local[triangles]):
        draw.polygon([tuple(p) for p in corners], fill=k + 1)
    labels = np.asarray(canvas, dtype=np.int64)
    ys, xs = np.nonzero(labels)
    affine = _inverse_affines(source, local, triangles)[labels[ys, xs] - 1]
    sx = affine[:, 0, 0] * xs + affine[:, 0, 1] * ys + affine[:, 0, 2]
    sy = affine[:, 1, 0] * xs + affine[:, 1, 1] * ys + affine[:, 1, 2]
    out = np.zeros((height, width, 3), np.uint8)
    out[ys, xs] = _bilinear(np.ascontiguousarray(source_rgb, dtype=np.uint8), sx, sy)
    return out, labels > 0
