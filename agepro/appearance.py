"""Relatives' appearance: each relative's face warped onto the progressed mesh and blended into it by region.

A relative's photo is warped triangle by triangle (the Delaunay triangulation of the face mesh) onto the progressed
face's landmarks, so their skin, nose, mouth and jaw land where the child's will be. Colour is matched in CIELAB
over the blended skin: lightness mean and contrast and the chroma spread come from the progressed face (the two
photos' lighting and cameras differ), while the relative's mean chroma (skin tone) is kept. Several relatives are
averaged with equal shares. The blend weight is the job's appearance weight over skin, nose, mouth and jaw and zero
over the eyes and brows, which stay the child's; it ramps smoothly to zero inside the face outline and around the
eyes, so the blend leaves no seam (``seam_gradient_ratio`` measures it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from agepro.warp import warp_into
from biometrics.topology import (
    FACE_OVAL,
    LEFT_EYE,
    LEFT_EYEBROW,
    LEFT_IRIS,
    MENTON,
    RIGHT_EYE,
    RIGHT_EYEBROW,
    RIGHT_IRIS,
    TRICHION,
)

# Share of the appearance weight each region gets: the eyes anchor the child's likeness.
REGION_SHARES = {"skin tone and texture": 1.0, "nose": 1.0, "mouth": 1.0, "jaw and chin": 1.0, "eyes and brows": 0.0}
DEFAULT_APPEARANCE_WEIGHT = 0.4
# In face heights (trichion proxy to menton): the blend starts this far inside the outline and beside the eyes and
# brows, and ramps up over the given widths.
OUTLINE_INSET, OUTLINE_RAMP = 0.03, 0.08
EYE_MARGIN, EYE_RAMP = 0.01, 0.05
MESH_POINTS = 468  # the iris points sit inside the eye region and only add slivers
EYE_REGIONS = (RIGHT_EYE + RIGHT_EYEBROW + RIGHT_IRIS, LEFT_EYE + LEFT_EYEBROW + LEFT_IRIS)


@dataclass(frozen=True)
class AppearanceBlend:
    image: np.ndarray  # (H, W, 3) uint8, the progressed image with the relatives' appearance blended in
    alpha: np.ndarray  # (H, W) float32: share of the relatives' appearance in each pixel


def transfer_appearance(
    image: np.ndarray,
    target_points: np.ndarray,
    relatives: Sequence[tuple[np.ndarray, np.ndarray]],
    weight: float,
) -> AppearanceBlend:
    """Blend ``relatives`` ((rgb, (478, 2) mesh points) each) into the face at ``target_points`` of ``image``."""
    height, width = image.shape[:2]
    face_height = float(np.linalg.norm(target_points[MENTON] - target_points[TRICHION]))
    margin = int(np.ceil(0.1 * face_height))
    x0, y0 = np.maximum(np.floor(target_points.min(axis=0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(target_points.max(axis=0)).astype(int) + margin, [width, height])
    crop = image[y0:y1, x0:x1]
    local = target_points - (x0, y0)
    alpha = weight * _region_weight(local, crop.shape[:2], face_height)

    triangles = Delaunay(target_points[:MESH_POINTS]).simplices
    child_lab = _lab(crop)
    stats_mask = alpha > 0.5 * weight
    blended_lab = np.zeros_like(child_lab)
    coverage = np.zeros(crop.shape[:2], np.float32)
    for rgb, points in relatives:
        warped, covered = warp_into(rgb, points[:MESH_POINTS], target_points[:MESH_POINTS], triangles,
                                    crop.shape[:2], (x0, y0))
        matched = _match_colour(_lab(warped), child_lab, stats_mask & covered)
        blended_lab += matched * covered[..., None]
        coverage += covered
    relative_lab = blended_lab / np.maximum(coverage, 1)[..., None]
    alpha *= coverage / len(relatives)
    relative_rgb = cv2.cvtColor(relative_lab, cv2.COLOR_Lab2RGB) * 255
    mixed = crop + alpha[..., None] * (relative_rgb - crop)
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    full_alpha = np.zeros((height, width), np.float32)
    full_alpha[y0:y1, x0:x1] = alpha
    return AppearanceBlend(out, full_alpha)


def _region_weight(points: np.ndarray, shape: tuple[int, int], face_height: float) -> np.ndarray:
    """1 over the face inside its outline, 0 at the outline and over eyes and brows, smooth ramps between."""
    outline = np.zeros(shape, np.uint8)
    cv2.fillPoly(outline, [np.round(points[list(FACE_OVAL)]).astype(np.int32)], 1)
    inside = cv2.distanceTransform(outline, cv2.DIST_L2, 5)
    eyes = np.zeros(shape, np.uint8)
    for region in EYE_REGIONS:
        cv2.fillConvexPoly(eyes, cv2.convexHull(np.round(points[list(region)]).astype(np.int32)), 1)
    beside_eyes = cv2.distanceTransform(1 - eyes, cv2.DIST_L2, 5)
    return _smoothstep((inside - OUTLINE_INSET * face_height) / (OUTLINE_RAMP * face_height)) * _smoothstep(
        (beside_eyes - EYE_MARGIN * face_height) / (EYE_RAMP * face_height)
    )


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0, 1).astype(np.float32)
    return t * t * (3 - 2 * t)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)


def _match_colour(relative: np.ndarray, child: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The relative's Lab with the child's lightness mean and spread and chroma spread; their own mean chroma."""
    if mask.sum() < 16:
        return relative
    rel_mean, rel_std = relative[mask].mean(axis=0), relative[mask].std(axis=0) + 1e-3
    child_mean, child_std = child[mask].mean(axis=0), child[mask].std(axis=0)
    target_mean = np.array([child_mean[0], rel_mean[1], rel_mean[2]], np.float32)
    return (relative - rel_mean) * (child_std / rel_std) + target_mean


def seam_gradient_ratio(image: np.ndarray, alpha: np.ndarray, ring_px: int = 6) -> float:
    """Mean gradient magnitude on the blend boundary (where ``alpha`` crosses half its peak, 2 px wide) over the
    mean just inside and outside it (rings ``ring_px`` wide beyond 2 px): 1.0 is no visible seam."""
    inside = (alpha >= 0.5 * alpha.max()).astype(np.uint8)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    depth_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    depth_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    boundary = ((inside == 1) & (depth_in <= 1)) | ((inside == 0) & (depth_out <= 1))
    near = ((depth_in > 2) & (depth_in <= 2 + ring_px)) | ((depth_out > 2) & (depth_out <= 2 + ring_px))
    return float(gradient[boundary].mean() / gradient[near].mean())
