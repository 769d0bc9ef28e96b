"""Dense face landmarks (MediaPipe Face Mesh with iris refinement: 478 points) and head pose."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from biometrics import _models
from biometrics._image import require_rgb, square_crop
from biometrics.detection import Face
from biometrics.topology import (
    FACE_OVAL,
    LEFT_CHEEK,
    LEFT_EYE_OUTER,
    LEFT_IRIS_CENTER,
    MENTON,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    N_POINTS,
    NOSE_TIP,
    RIGHT_CHEEK,
    RIGHT_EYE_OUTER,
    RIGHT_IRIS_CENTER,
    TRICHION,
)

# The crop handed to Face Mesh: the face box enlarged by this factor (Face Mesh runs its own short-range detector,
# which needs the face to fill a good part of its input), resampled to a fixed side so cost does not grow with
# the photo's resolution. The landmark network reads 192 px, so 256 px loses nothing.
_CROP_SCALE = 2.0
_CROP_SIDE_PX = 256
# A mesh belongs to the detected face when its iris centres lie within this fraction of the face size from the
# detector's eye keypoints (the crop of a group photo can hold a neighbour's face too).
_MAX_EYE_OFFSET = 0.25


@dataclass(frozen=True, eq=False)
class Mesh:
    """478 landmarks in full-image pixels, MediaPipe order.

    points: float32 (478, 2) x, y. z: float32 (478,) relative depth in the same pixel scale, smaller = nearer the
    camera (None when built from 2-D points only; pose then gives roll only).
    """

    points: np.ndarray
    z: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.points.shape != (N_POINTS, 2):
            raise ValueError(f"expected ({N_POINTS}, 2) points, got {self.points.shape}")
        if self.z is not None and self.z.shape != (N_POINTS,):
            raise ValueError(f"expected ({N_POINTS},) depths, got {self.z.shape}")

    def point(self, index: int) -> tuple[float, float]:
        x, y = self.points[index]
        return (float(x), float(y))

    @property
    def right_eye_center(self) -> tuple[float, float]:
        """Centre of the subject's right iris (normally on the image's left)."""
        return self.point(RIGHT_IRIS_CENTER)

    @property
    def left_eye_center(self) -> tuple[float, float]:
        return self.point(LEFT_IRIS_CENTER)

    @property
    def inter_eye_distance(self) -> float:
        """Iris centre to iris centre in pixels (the ISO/IEC 19794-5 inter-eye distance)."""
        return float(np.linalg.norm(self.points[RIGHT_IRIS_CENTER] - self.points[LEFT_IRIS_CENTER]))

    @property
    def nose_tip(self) -> tuple[float, float]:
        return self.point(NOSE_TIP)

    @property
    def mouth_right(self) -> tuple[float, float]:
        return self.point(MOUTH_RIGHT)

    @property
    def mouth_left(self) -> tuple[float, float]:
        return self.point(MOUTH_LEFT)

    @property
    def chin(self) -> tuple[float, float]:
        return self.point(MENTON)

    @property
    def outline(self) -> np.ndarray:
        """The face silhouette, float32 (36, 2), a closed polygon in FACE_OVAL order."""
        return self.points[list(FACE_OVAL)]

    def pose(self) -> tuple[float | None, float | None, float]:
        """(yaw, pitch, roll) in degrees; 0 is frontal and upright.

        yaw > 0: nose turned towards the image's right; pitch > 0: looking up; roll > 0: the face rotated clockwise
        in the image. Derived from the mesh's own 3-D shape: the left-right axis through symmetric pairs (outer eye
        corners, cheeks) and the forehead-to-chin axis, which in MediaPipe's canonical face lie in one frontal
        plane; no fitted constants. Yaw and pitch are None without depths.
        """
        right = self.points[[RIGHT_EYE_OUTER, RIGHT_CHEEK]].astype(np.float64)
        left = self.points[[LEFT_EYE_OUTER, LEFT_CHEEK]].astype(np.float64)
        across_2d = (left - right).sum(axis=0)
        roll = math.degrees(math.atan2(across_2d[1], across_2d[0]))
        if self.z is None:
            return (None, None, roll)
        points = np.column_stack([self.points, self.z]).astype(np.float64)
        across = (points[[LEFT_EYE_OUTER, LEFT_CHEEK]] - points[[RIGHT_EYE_OUTER, RIGHT_CHEEK]]).sum(axis=0)
        across /= np.linalg.norm(across)
        down = points[MENTON] - points[TRICHION]
        down -= down.dot(across) * across
        down /= np.linalg.norm(down)
        yaw = math.degrees(math.atan2(across[2], math.hypot(across[0], across[1])))
        pitch = math.degrees(math.atan2(-down[2], math.hypot(down[0], down[1])))
        return (yaw, pitch, roll)


def face_mesh(rgb: np.ndarray, face: Face) -> Mesh | None:
    """The 478-point mesh of `face`, or None when Face Mesh finds no face there (profile, heavy occlusion, or a
    face too small to resolve). Runs on a square crop around the face (so the cost is fixed and neighbours in a
    group photo are mostly excluded) and maps the landmarks back to full-image pixels."""
    rgb = require_rgb(rgb)
    side = face.size * _CROP_SCALE
    crop, x0, y0 = square_crop(rgb, face.center, side)
    crop_side = crop.shape[0]
    interpolation = cv2.INTER_AREA if crop_side > _CROP_SIDE_PX else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (_CROP_SIDE_PX, _CROP_SIDE_PX), interpolation=interpolation)
    with _models.face_mesh.use() as mesher:
        found = mesher.process(crop).multi_face_landmarks or []
    candidates = []
    for landmarks in found:
        normalised = np.array([(lm.x, lm.y, lm.z) for lm in landmarks.landmark], dtype=np.float64)
        points = normalised[:, :2] * crop_side + (x0, y0)
        z = normalised[:, 2] * crop_side
        candidates.append((_eye_offset(points, face), points, z))
    if not candidates:
        return None
    offset, points, z = min(candidates, key=lambda candidate: candidate[0])
    if offset > _MAX_EYE_OFFSET * face.size:
        return None
    return Mesh(points=points.astype(np.float32), z=z.astype(np.float32))


def _eye_offset(points: np.ndarray, face: Face) -> float:
    right = np.hypot(*(points[RIGHT_IRIS_CENTER] - face.keypoints["right_eye"]))
    left = np.hypot(*(points[LEFT_IRIS_CENTER] - face.keypoints["left_eye"]))
    return float((right + left) / 2)
