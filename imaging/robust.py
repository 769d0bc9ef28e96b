"""Robust PDQ matching: extra hashes for the edits PDQ alone does not survive (draft)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage

from imaging.hashes import PdqHash
from imaging.pdq import PDQ_MIN_QUALITY, pdq

VARIANT_SIDE = 512
SMALL_ANGLES = (-4.0, -2.0, 2.0, 4.0)
CROP_SCALES = (0.9, 0.8)
BAND = (0.15, 0.85)
SQUARE_TOLERANCE = 0.05

BORDER_TOLERANCE = 24
MAX_CUTS = 4
CONTENT_SHARE = 0.005
MIN_TRIM_FRACTION = 0.03
MIN_CONTENT_FRACTION = 0.04
MIN_CONTENT_SIDE = 32
MIN_BACKGROUND_SHARE = 0.3
MIN_CORNER_FRACTION = 0.002
MAX_CORNER_FRACTION = 0.12


def trim_borders(rgb: np.ndarray) -> np.ndarray | None:
    """The picture inside a uniform border or page (letterbox, padding, screenshot), or None if there is none."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_CONTENT_SIDE:
        return None
    background = _background_colour(rgb)
    if background is None:
        return None
    differs = np.abs(rgb.astype(np.int16) - background).max(axis=2) > BORDER_TOLERANCE
    top, bottom, left, right = 0, height, 0, width
    for _ in range(MAX_CUTS):
        block = differs[top:bottom, left:right]
        rows = _longest_run(block.sum(axis=1) >= max(2, CONTENT_SHARE * (right - left)))
        cols = _longest_run(block[rows[0]:rows[1]].sum(axis=0) >= max(2, CONTENT_SHARE * (rows[1] - rows[0])))
        cut = (top + rows[0], top + rows[1], left + cols[0], left + cols[1])
        if cut == (top, bottom, left, right) or cut[1] <= cut[0] or cut[3] <= cut[2]:
            break
        top, bottom, left, right = cut
    kept = (bottom - top) * (right - left)
    if kept > (1 - MIN_TRIM_FRACTION) * height * width or kept < MIN_CONTENT_FRACTION * height * width:
        return None
    if min(bottom - top, right - left) < MIN_CONTENT_SIDE:
        return None
    return rgb[top:bottom, left:right]


def fill_corners(rgb: np.ndarray) -> np.ndarray | None:
    """A picture turned a few degrees on a coloured canvas, with the canvas showing in its corners painted
    black as in the bank's rotated variants; None unless all four corners show one uniform non-black colour."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_CONTENT_SIDE:
        return None
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.int16)
    colour = np.median(corners, axis=0)
    if np.abs(corners - colour).max() > BORDER_TOLERANCE or colour.max() <= BORDER_TOLERANCE:
        return None
    canvas = np.abs(rgb.astype(np.int16) - colour).max(axis=2) <= BORDER_TOLERANCE
    labels, _ = ndimage.label(canvas)
    corner_labels = np.unique(labels[[0, 0, -1, -1], [0, -1, 0, -1]])
    shown = np.isin(labels, corner_labels)
    if not MIN_CORNER_FRACTION <= shown.mean() <= MAX_CORNER_FRACTION:
        return None
    filled = rgb.copy()
    filled[ndimage.binary_dilation(shown, iterations=2)] = 0  # and the edge pixels blended with the canvas
    return filled


def _longest_run(flags: np.ndarray) -> tuple[int, int]:
    """(start, stop) of the longest run of True in a 1-D boolean array; (0, 0) if there is none."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    if not len(edges):
        return 0, 0
    starts, stops = edges[0::2], edges[1::2]
    longest = int(np.argmax(stops - starts))
    return int(starts[longest]), int(stops[longest])


def _background_colour(rgb: np.ndarray) -> np.ndarray | None:
    height, width = rgb.shape[:2]
    ring = max(2, min(height, width) // 100)
    frame = np.concatenate([rgb[:ring].reshape(-1, 3), rgb[-ring:].reshape(-1, 3),
                            rgb[ring:-ring, :ring].reshape(-1, 3), rgb[ring:-ring, -ring:].reshape(-1, 3)])
    quantised = (frame // 16).astype(np.int32)
    codes = quantised[:, 0] * 256 + quantised[:, 1] * 16 + quantised[:, 2]
    mode = np.bincount(codes).argmax()
    candidates = frame[codes == mode]
    colour = np.median(candidates, axis=0).astype(np.int16)
    share = (np.abs(frame.astype(np.int16) - colour).max(axis=1) <= BORDER_TOLERANCE).mean()
    return colour if share >= MIN_BACKGROUND_SHARE else None


def _working_copy(rgb: np.ndarray) -> Image.Image:
    image = Image.fromarray(rgb, "RGB")
    if max(image.size) > VARIANT_SIDE:
        image = image.copy()
        image.thumbnail((VARIANT_SIDE, VARIANT_SIDE), Image.Resampling.BOX)
    return image


def _strong(kind: str, rgb: np.ndarray) -> list[tuple[str, PdqHash]]:
    if min(rgb.shape[:2]) < MIN_CONTENT_SIDE:
        return []
    hash_value, quality = pdq(np.ascontiguousarray(rgb))
    return [(kind, hash_value)] if quality >= PDQ_MIN_QUALITY else []


def bank_variants(rgb: np.ndarray) -> list[tuple[str, PdqHash]]:
    """Extra hashes a bank stores for an enrolled image, beside its plain PDQ hash."""
    image = np.asarray(_working_copy(rgb))
    variants: list[tuple[str, PdqHash]] = []
    for turns in (1, 2, 3):
        variants += _strong("pdq_dihedral", np.rot90(image, turns))
    picture = Image.fromarray(image)
    for angle in SMALL_ANGLES:
        variants += _strong("pdq_rotated", np.asarray(picture.rotate(angle, resample=Image.Resampling.BILINEAR)))
    height, width = image.shape[:2]
    for scale in CROP_SCALES:
        dy, dx = round(height * (1 - scale) / 2), round(width * (1 - scale) / 2)
        variants += _strong("pdq_crop", image[dy:height - dy, dx:width - dx])
    if abs(math.log(width / height)) > SQUARE_TOLERANCE:
        side = min(width, height)
        top, left = (height - side) // 2, (width - side) // 2
        variants += _strong("pdq_crop", image[top:top + side, left:left + side])
    variants += _strong("pdq_band", _band(image))
    trimmed = trim_borders(rgb)
    if trimmed is not None:
        variants += _strong("pdq_trimmed", trimmed)
    return variants


def query_variants(rgb: np.ndarray) -> list[tuple[str, PdqHash]]:
    """Extra hashes a query is looked up with, beside its plain PDQ hash."""
    variants = _strong("pdq_dihedral", rgb[:, ::-1]) + _strong("pdq_band", _band(rgb))
    trimmed = trim_borders(rgb)
    if trimmed is not None:
        variants += _strong("pdq_trimmed", trimmed) + _strong("pdq_trimmed", trimmed[:, ::-1])
    filled = fill_corners(rgb)
    if filled is not None:
        variants += _strong("pdq_rotated", filled)
    return variants


def _band(rgb: np.ndarray) -> np.ndarray:
    """The middle rows, where captions above and below the picture do not reach."""
    height = rgb.shape[0]
    return rgb[round(height * BAND[0]):round(height * BAND[1])]
