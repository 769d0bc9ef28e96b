"""Robust PDQ matching: the hashes that let a banked picture match after the edits PDQ alone does not survive.

PDQ survives re-encoding, resizing, blur and colour changes, but any change of framing moves its bits: an edge
moved by 2% of the picture costs about 30 bits (the match threshold is 31), a 2-degree turn about 40, and a
border, a page around a screenshot or a mirror image lose the match entirely (docs/robustness.md). Two kinds of
extra hashes put the framing back:

- the bank enumerates (`bank_variants`, stored per record as `extra_hashes`, reported under these kinds):
  `pdq_dihedral` the mirror image and the three right-angle turns in both hands (all seven flips and turns);
  `pdq_rotated` turns of +-1.5, +-3 and +-4.5 degrees on the same canvas, corners black; `pdq_crop` the centre
  crop to 90% of each side and the centred square, in both hands; `pdq_band` the middle 70% of the rows;
  `pdq_trimmed` the picture inside its border, in both hands, when the enrolled image itself has one; and
  `pdq_region` the hashes of its salient squares, of its mirror image's (each also as crops of 10-30% would
  find them) and of its copies turned by 1-6 degrees (`imaging.regions`), for crops off the stored ones,
  mirrored, turned or not, and overlays;
- the query normalises (`query_variants`): `untilted` turns a picture turned on an expanded canvas (black or
  any uniform colour in its corners, as phone editors and image libraries turn by default) back upright and
  cuts it out (`pdq_rotated`); `trim_borders` cuts letterbox bars, padding and the page around a screenshot
  (`pdq_trimmed`); `fill_corners` paints the canvas corners of a picture turned inside its own non-black
  canvas black, as the bank's turned variants have them (`pdq_rotated`); `uncaptioned` cuts meme captions
  above and below the middle band (`pdq_band`). The query's regions are taken from the upright or trimmed
  picture when there is one, so that a crop turned on a canvas or shown on a page is found by its squares.

Flips and turns live on the bank side, so a plain photo is looked up with its own hash alone and each probe
covers all of a record's rows: lookup time grows with probes much more than with rows (HammingIndex is
multi-index hashing). Variants are hashed from a copy at most 512 pixels on its longer side and kept only at
PDQ quality >= 50. A query's probes match a record's own hash within the bank's threshold (31 by default) and
its stored variants within `imaging.matching.VARIANT_THRESHOLD` (20); the rules and their measured recall,
false matches, memory and lookup cost are in docs/robustness.md.

Border, corner and caption constants were set on the shared fixtures (bench and tests/test_robust.py):
at BORDER_TOLERANCE 16 a phone screenshot's dark status bar (RGB 20 on black) counts as picture, at 32 the sand
in faces/harington-1.jpg counts as a grey (128) pad; a caption band needs >= 4.5% of its pixels white next to
black and three times the density of the middle band (the fixture photos reach 3.8%, captioned ones 5.3%).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit
from PIL import Image, ImageDraw

from imaging.hashes import PdqHash
from imaging.pdq import PDQ_MIN_QUALITY, pdq
from imaging.regions import HASH_SIDE, REGION_KIND, cropped_region_hashes, region_hashes, turned_region_hashes
from imaging.resample import area_reduced

VARIANT_SIDE = HASH_SIDE  # variants are hashed from a copy this size: PDQ works at 64x64, and enrolment stays fast
SMALL_ANGLES = (-4.5, -3.0, -1.5, 1.5, 3.0, 4.5)  # each within VARIANT_THRESHOLD of turns about 0.75 degree off
CROP_SCALES = (0.9,)
SQUARE_TOLERANCE = 0.05  # |log(aspect)| below which a picture counts as square already
CAPTION_FREE_BAND = (0.15, 0.85)
CAPTION_WHITE, CAPTION_BLACK = 220, 50
CAPTION_DENSITY = 0.045
CAPTION_CONTRAST = 3.0

BORDER_TOLERANCE = 24  # per channel, from the border colour
MIN_BACKGROUND_SHARE = 0.3  # of the outer frame in the border colour (a letterbox leaves the sides' middles)
CONTENT_SHARE = 0.005  # of a row's or column's pixels off the border colour for it to count as picture
MAX_CUTS = 4  # alternating row and column cuts until the picture's box stops shrinking
MIN_TRIM_FRACTION = 0.03  # of the area cut away, else the picture is its own frame and needs no extra probe
MIN_CONTENT_FRACTION = 0.04
MIN_CONTENT_SIDE = 32
MAX_CORNER_FRACTION = 0.12  # of the area in canvas corners: more is a picture with a plain background
CORNER_BLEND = 2  # pixels along a turned edge that blend picture and canvas
MIN_TILT, MAX_TILT = 0.5, 20.0  # degrees of an expanded canvas's turn that `untilted` undoes
TILT_SNAP = 3  # pixels
TILT_AGREEMENT = 0.75  # the least part of each side the picture found must span of the side the canvas implies
# The cross of scipy's binary_dilation, whose result OpenCV's dilate gives bit for bit at a fiftieth of the time.
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))



def trim_borders(rgb: np.ndarray, small: np.ndarray | None = None) -> np.ndarray | None:
    """The picture inside a uniform border or page (letterbox, padding, screenshot), or None if there is none.
    `small`: the image's reduced copy, where the caller has one: the border is then looked for at full size
    only when the copy has one (most pictures have none, and the full-size search reads every pixel: 23 ms
    at 12 MP)."""
    if small is not None and small is not rgb and _picture_box(small) is None:
        return None
    box = _picture_box(rgb)
    return None if box is None else rgb[box[0]:box[1], box[2]:box[3]]


def _picture_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of `trim_borders`' picture."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_CONTENT_SIDE:
        return None
    background = _background_colour(rgb)
    if background is None:
        return None
    differs = ~_near(rgb, background)
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
    return top, bottom, left, right


def fill_corners(rgb: np.ndarray) -> np.ndarray | None:
    """A picture turned a few degrees on a coloured canvas, with the canvas showing in its corners painted
    black as in the bank's rotated variants; None unless all four corners show one uniform non-black colour.

    The corners of a turned rectangle are right triangles, opposite ones equal: each triangle's legs are the
    runs of canvas colour along the edges, the shorter of the two opposite corners' (picture content of the
    canvas colour can only lengthen a run)."""
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_CONTENT_SIDE:
        return None
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.int16)
    colour = np.median(corners, axis=0)
    if np.abs(corners - colour).max() > BORDER_TOLERANCE or colour.max() <= BORDER_TOLERANCE:
        return None
    top, bottom, left, right = (_near(line[None], colour)[0] for line in (rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]))

    def run(line: np.ndarray) -> int:
        return len(line) if line.all() else int(np.argmin(line))

    top_left = (min(run(top), run(bottom[::-1])), min(run(left), run(right[::-1])))
    top_right = (min(run(top[::-1]), run(bottom)), min(run(right), run(left[::-1])))
    if top_left[0] * top_left[1] + top_right[0] * top_right[1] > MAX_CORNER_FRACTION * height * width:
        return None
    (a, b), (c, d) = ((x + CORNER_BLEND, y + CORNER_BLEND) for x, y in (top_left, top_right))
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for triangle in ([(0, 0), (a, 0), (0, b)], [(width, height), (width - a, height), (width, height - b)],
                     [(width, 0), (width - c, 0), (width, d)], [(0, height), (c, height), (0, height - d)]):
        draw.polygon(triangle, fill=255)
    filled = rgb.copy()
    filled[np.asarray(mask) > 0] = 0
    return filled


def untilted(rgb: np.ndarray) -> np.ndarray | None:
    """The picture inside a canvas expanded to hold it turned by a few degrees (as phone editors and most
    image libraries turn pictures), turned back upright and cut out of the canvas; None if it is not one.

    The canvas is the uniform colour connected to the four corners; the picture is the rest, and its
    minimum-area rectangle gives the angle. It counts as an expanded turn only if that rectangle is turned
    MIN_TILT..MAX_TILT degrees and spans the picture a canvas of that size and angle implies (a turn inside
    the original canvas cuts the picture's corners off instead: `fill_corners`)."""
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]].astype(np.int16)
    colour = np.median(corners, axis=0)
    if np.abs(corners - colour).max() > BORDER_TOLERANCE or min(rgb.shape[:2]) < MIN_CONTENT_SIDE:
        return None
    image = _working_copy(rgb)
    height, width = image.shape[:2]
    _, labels = cv2.connectedComponents(_near(image, colour).astype(np.uint8), connectivity=4)
    picture = ~np.isin(labels, labels[[0, 0, -1, -1], [0, -1, 0, -1]])
    contours, _ = cv2.findContours(picture.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    (cx, cy), (found_w, found_h), angle = cv2.minAreaRect(max(contours, key=cv2.contourArea))
    if angle > 45:  # OpenCV reports (0, 90]: as a turn of -45..45 degrees, the sides swap
        angle, found_w, found_h = angle - 90, found_h, found_w
    if not MIN_TILT <= abs(angle) <= MAX_TILT:
        return None
    # The picture's size follows from the canvas's and the angle; the rectangle found is smaller where the
    # picture's edge has the canvas colour (a dark suit on black), so it only has to agree.
    cos, sin = math.cos(math.radians(abs(angle))), math.sin(math.radians(abs(angle)))
    w, h = (width * cos - height * sin) / (cos * cos - sin * sin), (height * cos - width * sin) / (cos * cos - sin * sin)
    if min(w, h) < MIN_CONTENT_SIDE or not (TILT_AGREEMENT * w <= found_w <= w + 2
                                            and TILT_AGREEMENT * h <= found_h <= h + 2):
        return None
    if abs(found_w - w) <= TILT_SNAP and abs(found_h - h) <= TILT_SNAP:
        # All of the picture was found: its own rectangle is exact, the implied one a pixel off by rounding.
        w, h, centre = found_w, found_h, (cx, cy)
    else:
        centre = ((width - 1) / 2, (height - 1) / 2)  # in pixel coordinates: pixel i is centred at i
    size = (round(w), round(h))
    turn = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turn[:, 2] += ((size[0] - 1) / 2 - centre[0], (size[1] - 1) / 2 - centre[1])
    return cv2.warpAffine(image, turn, size, flags=cv2.INTER_LINEAR)


def uncaptioned(rgb: np.ndarray) -> np.ndarray | None:
    """The middle band of a picture with a caption across its top or bottom (white letters edged in black, as
    memes have them), without the caption; None if there is none."""
    # Averaged down to VARIANT_SIDE: thin page text greys out, a meme's thick outlined letters stay.
    luma = np.asarray(Image.fromarray(_working_copy(rgb), "RGB").convert("L"))
    edged = cv2.dilate((luma <= CAPTION_BLACK).astype(np.uint8), _CROSS, iterations=2).astype(bool)
    lettering = (luma >= CAPTION_WHITE) & edged
    top, bottom = (round(luma.shape[0] * edge) for edge in CAPTION_FREE_BAND)
    outside = max(lettering[:top].mean(), lettering[bottom:].mean()) if top else 0.0
    if outside < CAPTION_DENSITY or outside < CAPTION_CONTRAST * lettering[top:bottom].mean():
        return None
    return _middle_band(rgb)


def _middle_band(rgb: np.ndarray) -> np.ndarray:
    height = rgb.shape[0]
    return rgb[round(height * CAPTION_FREE_BAND[0]):round(height * CAPTION_FREE_BAND[1])]


def _near(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Pixels within BORDER_TOLERANCE of `colour` in every channel."""
    low = np.array([max(0, int(value) - BORDER_TOLERANCE) for value in colour[:3]], np.int32)
    high = np.array([min(255, int(value) + BORDER_TOLERANCE) for value in colour[:3]], np.int32)
    return _within(rgb, low, high)


@njit(cache=True, nogil=True)
def _within(rgb: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    # One compiled pass: numpy's per-channel comparisons made nine full-size temporaries (100 ms at 12 MP).
    height, width = rgb.shape[0], rgb.shape[1]
    near = np.empty((height, width), np.bool_)
    for r in range(height):
        for c in range(width):
            near[r, c] = (low[0] <= rgb[r, c, 0] <= high[0] and low[1] <= rgb[r, c, 1] <= high[1]
                          and low[2] <= rgb[r, c, 2] <= high[2])
    return near


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
    share = _near(frame[None], colour).mean()
    return colour if share >= MIN_BACKGROUND_SHARE else None


def _working_copy(rgb: np.ndarray) -> np.ndarray:
    """The image averaged down to VARIANT_SIDE on its longer side: what the variants and regions are found and
    hashed on."""
    return area_reduced(rgb, VARIANT_SIDE)


def _strong(kind: str, rgb: np.ndarray) -> list[tuple[str, PdqHash]]:
    if min(rgb.shape[:2]) < MIN_CONTENT_SIDE:
        return []
    hash_value, quality = pdq(np.ascontiguousarray(rgb))
    return [(kind, hash_value)] if quality >= PDQ_MIN_QUALITY else []


def _both_hands(kind: str, rgb: np.ndarray) -> list[tuple[str, PdqHash]]:
    return _strong(kind, rgb) + _strong(kind, rgb[:, ::-1])


def _centre_crops(rgb: np.ndarray) -> list[np.ndarray]:
    height, width = rgb.shape[:2]
    crops = []
    for scale in CROP_SCALES:
        dy, dx = round(height * (1 - scale) / 2), round(width * (1 - scale) / 2)
        crops.append(rgb[dy:height - dy, dx:width - dx])
    if abs(math.log(width / height)) > SQUARE_TOLERANCE:
        side = min(width, height)
        top, left = (height - side) // 2, (width - side) // 2
        crops.append(rgb[top:top + side, left:left + side])
    return crops


def bank_variants(rgb: np.ndarray) -> list[tuple[str, PdqHash]]:
    """Extra hashes a bank stores for an enrolled image, beside its plain PDQ hash: its mirror image and
    right-angle turns (all seven), small turns, centre crops in both hands, the middle band, the picture inside
    its border in both hands if it has one, and its region hashes (its own and its mirror image's, each also at
    the scales crops give, and its turned copies')."""
    image = _working_copy(rgb)
    variants = _strong("pdq_dihedral", image[:, ::-1])
    for turns in (1, 2, 3):
        variants += _both_hands("pdq_dihedral", np.rot90(image, turns))
    picture = Image.fromarray(image)
    for angle in SMALL_ANGLES:
        variants += _strong("pdq_rotated", np.asarray(picture.rotate(angle, resample=Image.Resampling.BILINEAR)))
    for cropped in _centre_crops(image):
        variants += _both_hands("pdq_crop", cropped)
    variants += _strong("pdq_band", _middle_band(image))
    trimmed = trim_borders(rgb, image)
    if trimmed is not None:
        variants += _both_hands("pdq_trimmed", trimmed)
    mirror = np.ascontiguousarray(image[:, ::-1])
    regions = (region_hashes(image) + region_hashes(mirror) + turned_region_hashes(image)
               + cropped_region_hashes(image) + cropped_region_hashes(mirror))
    # A square found again at another scale or turn is stored once (a tenth of the rows): two query regions on
    # one square stored twice would also count as the two different squares a region match needs.
    return variants + [(REGION_KIND, region) for region in dict.fromkeys(regions)]


def query_variants(rgb: np.ndarray) -> tuple[list[tuple[str, PdqHash]], np.ndarray]:
    """Extra hashes a query is looked up with, beside its plain PDQ hash, and the picture its region hashes
    are taken from. The hashes: the picture without its border or page, a picture turned on an expanded canvas
    turned back upright (`untilted`), a slightly turned picture with its corners repainted as the bank's turned
    variants have them, and the middle band of a captioned picture (after trimming: a screenshot of a meme).
    The picture: the upright or trimmed one if there is one, else the query itself (a page's text and a canvas
    edge make squares no stored picture has), as its reduced copy (`_working_copy`), which gives the same
    regions as the picture itself. Flips and turns need no probe of their own: the bank holds them.
    Everything but the trimmed picture's edges is found and hashed on one reduced copy; the edges are found
    at full size, where the trimmed picture is cut out before it is reduced."""
    small = _working_copy(rgb)
    variants: list[tuple[str, PdqHash]] = []
    upright = untilted(small)
    if upright is not None:
        variants += _strong("pdq_rotated", upright)
    trimmed = trim_borders(rgb, small) if upright is None else None
    small_trimmed = None if trimmed is None else _working_copy(trimmed)
    if small_trimmed is not None:
        variants += _strong("pdq_trimmed", small_trimmed)
    filled = fill_corners(small) if upright is None else None
    if filled is not None:
        variants += _strong("pdq_rotated", filled)
    picture = next((p for p in (upright, small_trimmed) if p is not None), small)
    for framed in (small, small_trimmed):
        band = None if framed is None else uncaptioned(framed)
        if band is not None:
            return variants + _strong("pdq_band", band), picture
    return variants, picture
