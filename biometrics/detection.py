"""Face detection (MediaPipe BlazeFace: the full-range model, then the short-range model for close-ups)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from biometrics import _models
from biometrics._image import require_rgb

# MediaPipe's FaceKeyPoint order. "right"/"left" are the subject's: the right eye is normally on the image's left.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")


@dataclass(frozen=True)
class Face:
    """One detected face.

    box: (x, y, w, h) in pixels, clipped to the image.
    score: detector confidence in [0, 1].
    keypoints: name -> (x, y) in pixels for KEYPOINT_NAMES; not clipped (an ear may lie outside the frame).
    detector_box: the detector's unclipped (x, y, w, h), floats; crops are taken around it so that a face cut by
        the frame keeps its size and centre.
    """

    box: tuple[int, int, int, int]
    score: float
    keypoints: dict[str, tuple[float, float]] = field(compare=False)
    detector_box: tuple[float, float, float, float] = field(repr=False)

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.detector_box
        return (x + w / 2, y + h / 2)

    @property
    def size(self) -> float:
        """Side of the detector's (square) box, in pixels."""
        return max(self.detector_box[2], self.detector_box[3])


def detect_faces(rgb: np.ndarray, min_score: float = 0.5, min_face_px: int | None = None) -> list[Face]:
    """All faces in an HxWx3 uint8 RGB image, sorted left to right by box x (then top to bottom, then by
    descending score), so that the order is stable and matches reading order in a group photo.
    An image without a face gives [].

    The detector sees the whole frame at 192 px, so on natural backgrounds it misses faces smaller than about
    6-8 % of the image's long side (e.g. five 80 px faces pasted on a 3000 x 2000 landscape: 0 of 5 found).
    It also misses some faces that fill the frame's height, so a second pass runs the short-range model (trained
    on close-ups) and keeps a face only it finds when it scores CLOSE_UP_MIN_SCORE and Face Mesh confirms it.
    With `min_face_px`, a second pass searches overlapping tiles sized so that faces down to that size fill
    >= 12 % of a tile (found 15 of 15 in the same test), and keeps a face found only in a tile when Face Mesh
    confirms it (tile passes alone fire at 0.6-0.7 on textures such as bridge cables). Costs about 7 ms per tile:
    ~24 tiles for 1600 x 1000 at min_face_px=48, ~200 for 4032 x 3024.
    """
    rgb = require_rgb(rgb)
    faces = _detect(rgb, min_score, 0, 0)
    faces += _close_ups(rgb, max(min_score, CLOSE_UP_MIN_SCORE), faces)
    if min_face_px is not None:
        faces += _small_faces(rgb, min_score, min_face_px, faces)
    faces.sort(key=lambda face: (face.box[0], face.box[1], -face.score))
    return faces


# Measured on bench.agepro's 84 close-up crops of the frontal fixtures and on the fixtures themselves: the faces
# only the short-range model found scored 0.88-0.92, what it fired on in backgrounds and shoulders 0.55-0.74.
CLOSE_UP_MIN_SCORE = 0.8
# A confirming mesh must sit on the detected face: its outline's centre within this share of the face size.
_MESH_CENTRE_OFFSET = 0.3


# Measured on composites of fixture faces over a landscape: faces filling >= 12 % of the detector's input are
# found 88-97 % of the time. Tiles overlap by 30 %, so every face up to 30 % of a tile lies whole inside one.
_RELIABLE_FACE_FRACTION = 0.12
_TILE_OVERLAP = 0.3
# Two boxes are one face when their intersection covers this much of the smaller one.
_SAME_FACE_OVERLAP = 0.4


def _detect(rgb: np.ndarray, min_score: float, x0: int, y0: int, drop_inner_edges: tuple[int, int] | None = None,
            detector=_models.face_detector) -> list[Face]:
    """Faces in `rgb`, offset by (x0, y0) into the full image. With `drop_inner_edges` = (full width, full
    height), faces touching a tile edge that is not an image edge are dropped: they are cut, and whole in a
    neighbouring tile."""
    height, width = rgb.shape[:2]
    with detector.use() as model:
        detections = model.process(np.ascontiguousarray(rgb)).detections or []
    faces = []
    for detection in detections:
        score = float(detection.score[0])
        if score < min_score:
            continue
        location = detection.location_data
        rel = location.relative_bounding_box
        x, y, w, h = rel.xmin * width, rel.ymin * height, rel.width * width, rel.height * height
        if drop_inner_edges is not None:
            full_width, full_height = drop_inner_edges
            cut = (
                (x <= 1 and x0 > 0)
                or (y <= 1 and y0 > 0)
                or (x + w >= width - 1 and x0 + width < full_width)
                or (y + h >= height - 1 and y0 + height < full_height)
            )
            if cut:
                continue
        raw = (x + x0, y + y0, w, h)
        box = _clip_box(raw, *(drop_inner_edges or (width, height)))
        if box[2] <= 0 or box[3] <= 0:
            continue
        keypoints = {
            name: (kp.x * width + x0, kp.y * height + y0)
            for name, kp in zip(KEYPOINT_NAMES, location.relative_keypoints, strict=True)
        }
        faces.append(Face(box=box, score=score, keypoints=keypoints, detector_box=raw))
    return faces


def _close_ups(rgb: np.ndarray, min_score: float, found: list[Face]) -> list[Face]:
    candidates = _detect(rgb, min_score, 0, 0, detector=_models.close_up_face_detector)
    kept = list(found)
    for face in sorted(candidates, key=lambda face: -face.score):
        if not any(_same_face(face, other) for other in kept) and _confirmed_by_mesh(rgb, face):
            kept.append(face)
    return kept[len(found) :]


def _confirmed_by_mesh(rgb: np.ndarray, face: Face) -> bool:
    from biometrics.mesh import face_mesh  # mesh.py builds on Face; imported here to keep the modules acyclic

    mesh = face_mesh(rgb, face)
    if mesh is None:
        return False
    return bool(np.hypot(*(mesh.outline.mean(axis=0) - face.center)) < _MESH_CENTRE_OFFSET * face.size)


def _small_faces(rgb: np.ndarray, min_score: float, min_face_px: int, found: list[Face]) -> list[Face]:
    from biometrics.mesh import face_mesh  # mesh.py builds on Face; imported here to keep the modules acyclic

    height, width = rgb.shape[:2]
    candidates = []
    for tile in _tile_sides(max(height, width), min_face_px):
        step = max(1, int(tile * (1 - _TILE_OVERLAP)))
        for y in _starts(height, tile, step):
            for x in _starts(width, tile, step):
                candidates += _detect(rgb[y : y + tile, x : x + tile], min_score, x, y, (width, height))
    kept = list(found)
    for face in sorted(candidates, key=lambda face: -face.score):
        if not any(_same_face(face, other) for other in kept) and face_mesh(rgb, face) is not None:
            kept.append(face)
    return kept[len(found) :]


def _tile_sides(long_side: int, min_face_px: int) -> list[int]:
    """Tile sides from the smallest (faces of min_face_px fill 12 %) doubling until the faces whole in a tile
    reach the size the full-frame pass finds."""
    sides = []
    tile = min_face_px / _RELIABLE_FACE_FRACTION
    while tile < long_side:
        sides.append(int(round(tile)))
        if _TILE_OVERLAP * tile >= _RELIABLE_FACE_FRACTION * long_side:
            break
        tile *= 2
    return sides


def _starts(length: int, tile: int, step: int) -> list[int]:
    starts = list(range(0, max(length - tile, 0) + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _same_face(a: Face, b: Face) -> bool:
    ax, ay, aw, ah = a.detector_box
    bx, by, bw, bh = b.detector_box
    overlap_w = min(ax + aw, bx + bw) - max(ax, bx)
    overlap_h = min(ay + ah, by + bh) - max(ay, by)
    if overlap_w <= 0 or overlap_h <= 0:
        return False
    return overlap_w * overlap_h > _SAME_FACE_OVERLAP * min(aw * ah, bw * bh)


def _clip_box(raw: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = raw
    x0 = min(max(int(round(x)), 0), width)
    y0 = min(max(int(round(y)), 0), height)
    x1 = min(max(int(round(x + w)), 0), width)
    y1 = min(max(int(round(y + h)), 0), height)
    return (x0, y0, x1 - x0, y1 - y0)
