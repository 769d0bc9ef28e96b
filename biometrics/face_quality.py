"""Face image quality: is this face good enough to embed and compare?

Default gates come from measurements on the fixture faces (see tests/test_biometrics.py for the checks that pin
them):
- inter-eye distance: downscaling the fixtures so the iris centres are 10/14/18/22/26/30 px apart moves each
  descriptor from its full-resolution one by 0.39/0.26/0.20/0.16/0.13/0.10 on average (threshold 0.6); below
  20 px the loss eats a third of the threshold.
- sharpness: a Gaussian blur of sigma = 1 % of the face size moves descriptors by ~0.2, 2 % by ~0.35; the gate
  sits between them (Laplacian variance ~22 on the 100 px face crop).
- roll: `embed` aligns on the mesh when dlib's predictor misses, so descriptors stay within 0.2 of the upright
  ones at 45, 55, 65 and 90 degrees of in-plane rotation; the gate (90) only rejects what was not measured.
  Without a mesh the predictor alone breaks from about 50 degrees, which `require_mesh` guards against.
- yaw, pitch and exposure gates are conventional limits for dlib's frontal-trained descriptor, not fitted here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from biometrics._image import require_rgb
from biometrics.detection import Face
from biometrics.mesh import Mesh

# The face box is resampled to this side before measuring sharpness: about the size of the face inside dlib's
# 150 px chip (25 % padding), i.e. the detail the descriptor network actually sees.
SHARPNESS_CROP_PX = 100
_DARK, _BRIGHT = 2, 253


@dataclass(frozen=True)
class QualityGates:
    min_inter_eye_px: float = 20.0
    min_sharpness: float = 0.45
    max_yaw: float = 45.0
    max_pitch: float = 30.0
    max_roll: float = 90.0
    min_brightness: float = 0.12
    max_brightness: float = 0.88
    max_clipped: float = 0.25
    require_mesh: bool = True


@dataclass(frozen=True)
class Quality:
    """score: 0..100, the weakest factor's margin: 100 = every factor comfortably good, 50 = one factor exactly
    at its gate, below 50 = some gate failed; so `passed` is `score >= 50` and `not reasons`.
    reasons: one human-readable line per failed gate. metrics: the measured values (None when unknown)."""

    score: float
    passed: bool
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def quality(rgb: np.ndarray, face: Face, mesh: Mesh | None = None, gates: QualityGates = QualityGates()) -> Quality:
    """Measure the face and apply the gates. Without a mesh, the inter-eye distance and roll come from the
    detector's eye keypoints and yaw/pitch are unknown (a failed gate when `gates.require_mesh`)."""
    rgb = require_rgb(rgb)
    if mesh is not None:
        inter_eye = mesh.inter_eye_distance
        yaw, pitch, roll = mesh.pose()
    else:
        right, left = np.array(face.keypoints["right_eye"]), np.array(face.keypoints["left_eye"])
        inter_eye = float(np.linalg.norm(left - right))
        yaw = pitch = None
        roll = math.degrees(math.atan2(left[1] - right[1], left[0] - right[0]))
    laplacian_var, brightness, clipped = _pixel_measures(rgb, face)
    sharpness = min(1.0, math.log10(1.0 + laplacian_var) / 3.0)

    checks: list[tuple[float, bool, str]] = [  # (margin, passes, reason if it fails)
        _at_least(inter_eye, gates.min_inter_eye_px,
                  f"inter-eye distance {inter_eye:.0f} px < {gates.min_inter_eye_px:g}"),
        _at_least(sharpness, gates.min_sharpness, f"sharpness {sharpness:.2f} < {gates.min_sharpness:g}"),
        _at_most(abs(roll), gates.max_roll, f"roll {roll:.0f} deg beyond +-{gates.max_roll:g}"),
        _at_least(brightness, gates.min_brightness,
                  f"too dark: mean brightness {brightness:.2f} < {gates.min_brightness:g}"),
        _at_least(1.0 - brightness, 1.0 - gates.max_brightness,
                  f"too bright: mean brightness {brightness:.2f} > {gates.max_brightness:g}"),
        _at_most(clipped, gates.max_clipped, f"clipped pixels {clipped:.0%} > {gates.max_clipped:.0%}"),
    ]
    if yaw is not None and pitch is not None:
        checks.append(_at_most(abs(yaw), gates.max_yaw, f"yaw {yaw:.0f} deg beyond +-{gates.max_yaw:g}"))
        checks.append(_at_most(abs(pitch), gates.max_pitch, f"pitch {pitch:.0f} deg beyond +-{gates.max_pitch:g}"))
    elif gates.require_mesh:
        checks.append((0.0, False, "no face mesh: landmarks and pose unknown"))
    reasons = [reason for _, passes, reason in checks if not passes]
    margins = [margin for margin, _, _ in checks]

    passed = not reasons
    score = 100.0 * min(margins)
    # A factor exactly at its gate passes with margin 0.5; keep the documented score/pass relation exact.
    score = max(score, 50.0) if passed else min(score, 49.9)
    metrics = {
        "inter_eye_px": round(inter_eye, 2),
        "sharpness": round(sharpness, 4),
        "laplacian_var": round(laplacian_var, 2),
        "yaw": None if yaw is None else round(yaw, 2),
        "pitch": None if pitch is None else round(pitch, 2),
        "roll": round(roll, 2),
        "brightness": round(brightness, 4),
        "clipped": round(clipped, 4),
        "detection_score": round(face.score, 4),
    }
    return Quality(score=round(score, 1), passed=passed, reasons=reasons, metrics=metrics)


def _pixel_measures(rgb: np.ndarray, face: Face) -> tuple[float, float, float]:
    """(variance of the Laplacian, mean brightness 0..1, fraction of clipped pixels) on the face box, inside
    the frame only, resampled to SHARPNESS_CROP_PX square."""
    x, y, w, h = face.box
    crop = rgb[y : y + h, x : x + w]
    if crop.size == 0:
        return (0.0, 0.0, 1.0)
    shrinking = min(w, h) > SHARPNESS_CROP_PX
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    gray = cv2.cvtColor(cv2.resize(crop, (SHARPNESS_CROP_PX, SHARPNESS_CROP_PX), interpolation=interpolation),
                        cv2.COLOR_RGB2GRAY)
    laplacian_var = float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())
    brightness = float(gray.mean()) / 255.0
    clipped = float(((gray <= _DARK) | (gray >= _BRIGHT)).mean())
    return (laplacian_var, brightness, clipped)


def _at_least(value: float, gate: float, reason: str) -> tuple[float, bool, str]:
    margin = min(1.0, value / (2 * gate)) if gate > 0 else 1.0
    return (max(0.0, margin), value >= gate, reason)


def _at_most(value: float, gate: float, reason: str) -> tuple[float, bool, str]:
    margin = max(0.0, 1.0 - value / (2 * gate)) if gate > 0 else float(value <= 0)
    return (min(1.0, margin), value <= gate, reason)
