"""Anthropometric landmarks on the 478-point MediaPipe face mesh (refine_landmarks=True order; the indices are
`biometrics.topology`'s) and the face frame.

The mesh has no true trichion (hairline) or glabella; the nearest stable mesh points stand in for them:

=================  =====  =========================================================================
landmark           index  mesh point
=================  =====  =========================================================================
trichion (proxy)   10     top of the mesh on the forehead midline (below the real hairline)
glabella           9      midline between the eyebrows
nasion             168    midline at the depth of the nasal root, between the eyes
subnasale          2      midline where the columella meets the upper lip
menton             152    lowest midline point of the chin
gonion (proxies)   172,   jaw outline at the level of the mandibular angles (lower-face width)
                   397
eye centres        468,   iris centres
                   473
=================  =====  =========================================================================

The face frame has its origin at the midpoint of the iris centres, ``u`` along the inter-pupil line and ``v``
perpendicular to it, pointing down the face; the thirds are measured along ``v``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from biometrics.topology import (
    GLABELLA,
    GONION_PAIR,
    LEFT_EYE,
    LEFT_IRIS,
    LEFT_IRIS_CENTER,
    MENTON,
    N_POINTS,
    NASION,
    RIGHT_EYE,
    RIGHT_IRIS,
    RIGHT_IRIS_CENTER,
    SUBNASALE,
    TRICHION,
)

# The eye band: both eye contours and irises.
EYES = RIGHT_EYE + RIGHT_IRIS + LEFT_EYE + LEFT_IRIS

LANDMARK_INDICES = {
    "trichion_proxy": TRICHION,
    "glabella": GLABELLA,
    "nasion": NASION,
    "subnasale": SUBNASALE,
    "menton": MENTON,
    "gonion_proxies": list(GONION_PAIR),
    "iris_centres": [RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER],
}


def mesh_points(mesh) -> np.ndarray:
    """(478, 2) float64 pixel coordinates from a biometrics ``Mesh`` or an array."""
    points = np.asarray(getattr(mesh, "points", mesh), dtype=np.float64)
    if points.shape != (N_POINTS, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"expected a ({N_POINTS}, 2) finite landmark array, got shape {points.shape}")
    return points


@dataclass(frozen=True)
class FaceFrame:
    """Origin between the iris centres; ``u`` across the face, ``v`` down it (unit vectors, pixel units)."""

    origin: np.ndarray
    u_axis: np.ndarray
    v_axis: np.ndarray

    @classmethod
    def from_points(cls, points: np.ndarray) -> "FaceFrame":
        right, left = points[RIGHT_IRIS_CENTER], points[LEFT_IRIS_CENTER]
        u_axis = (left - right) / np.linalg.norm(left - right)
        v_axis = np.array([-u_axis[1], u_axis[0]])
        origin = (right + left) / 2
        if np.dot(points[MENTON] - origin, v_axis) < 0:
            v_axis = -v_axis
        return cls(origin=origin, u_axis=u_axis, v_axis=v_axis)

    def to_frame(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(xy, np.float64) - self.origin
        return d @ self.u_axis, d @ self.v_axis

    def to_image(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.origin + np.multiply.outer(u, self.u_axis) + np.multiply.outer(v, self.v_axis)


@dataclass(frozen=True)
class Proportions:
    """Facial thirds and lower-face width, in pixels along the face frame, and their scale-free ratios."""

    upper_third: float
    middle_third: float
    lower_third: float
    face_width: float

    @classmethod
    def measure(cls, mesh) -> "Proportions":
        points = mesh_points(mesh)
        frame = FaceFrame.from_points(points)
        u, v = frame.to_frame(points)
        return cls(
            upper_third=float(v[GLABELLA] - v[TRICHION]),
            middle_third=float(v[SUBNASALE] - v[GLABELLA]),
            lower_third=float(v[MENTON] - v[SUBNASALE]),
            face_width=float(abs(u[GONION_PAIR[1]] - u[GONION_PAIR[0]])),
        )

    @property
    def lower_to_middle(self) -> float:
        return self.lower_third / self.middle_third

    @property
    def upper_to_middle(self) -> float:
        return self.upper_third / self.middle_third

    @property
    def lower_to_upper(self) -> float:
        return self.lower_third / self.upper_third

    @property
    def height_to_width(self) -> float:
        """Glabella-menton height over lower-face width."""
        return (self.middle_third + self.lower_third) / self.face_width

    def ratios(self) -> dict[str, float]:
        return {
            "lower_to_middle": self.lower_to_middle,
            "upper_to_middle": self.upper_to_middle,
            "lower_to_upper": self.lower_to_upper,
            "height_to_width": self.height_to_width,
        }

    def as_dict(self) -> dict:
        return {**asdict(self), **self.ratios()}
