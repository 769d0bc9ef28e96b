"""From a face mesh and a growth plan to a progressed image: target landmarks, deformation field, warp.

A photo has no absolute scale, so one structure must be held fixed: the EYES. They grow least of all facial
features and are what an artist lines up when comparing two faces, so the eye band keeps its pixel size and
position and every other region grows around it by the model's factors:

* vertically (along the face frame's ``v``), a monotone piecewise-linear map: glabella->eye band and eye
  band->subnasale share the middle-third growth (the lower part also carries the nose lengthening), the forehead
  (trichion proxy->glabella) grows by the upper-third factor, the vault above it by the cranium factor, the lower
  third (subnasale->menton) by its own factor, and the neck below follows the chin;
* horizontally, a scale about the facial midline that is 1 on the eye band and ramps to the face-width factor
  at the subnasale (lower face) and to the cranium factor at the glabella (forehead).

Both are monotone, so the field itself never folds. It is faded out smoothly over an elliptical head region so
everything outside that region stays exactly as it was, and sampled on a triangulation of the face mesh, rings
around the head and anchors along the image border.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from agepro.errors import AgeProgressionError
from agepro.growth import MAX_AGE, MIN_AGE, GrowthFactors, check_age, growth, normalise_sex
from agepro.landmarks import EYES, FaceFrame, Proportions, mesh_points
from agepro.warp import fold_free_scale, signed_areas, triangulate, warp_image
from biometrics.topology import FACE_OVAL, GLABELLA, MENTON, SUBNASALE, TRICHION

# Head region in the face frame, as multiples of the face measures: the braincase reaches about as far above the
# trichion proxy as the forehead is tall again; the head is a little wider than the face oval.
VAULT_ABOVE_TRICHION = 0.9
HEAD_WIDTH_OVER_FACE = 1.15
# The field is whole inside the head ellipse (radius 1) and fades to nothing at FADE_OUTER.
FADE_OUTER = 1.75
RING_RADII = (1.0, 1.15, 1.3, 1.45, 1.6, FADE_OUTER, 2.0)
RING_POINTS = 48
BORDER_STEP_PX = 48
# Triangles thinner than this (height over their longest edge) are slivers; see _without_slivers.
MIN_ALTITUDE_PX = 1.5
# The nose lengthens faster than the middle third, so the part of that third above the eyes grows less; it never
# shrinks (brow-to-eye distance does not decrease with growth), which caps the nose factor actually applied.
MIN_SEGMENT_SCALE = 1.0
# A modest pull toward the family: the population model stays the main source.
DEFAULT_FAMILY_WEIGHT = 0.25


@dataclass(frozen=True)
class FamilyReference:
    """A relative's measured proportions, the age at their photo and how they are related."""

    relation: str
    age: float
    proportions: Proportions
    sha256: str = ""


@dataclass(frozen=True)
class ProgressionPlan:
    sex: str
    age: float
    target_age: float
    family: tuple[FamilyReference, ...] = ()
    family_weight: float = DEFAULT_FAMILY_WEIGHT

    def __post_init__(self):
        object.__setattr__(self, "sex", normalise_sex(self.sex))
        age = check_age(self.age, "invalid_age", "current age")
        object.__setattr__(self, "age", age)
        target = check_age(self.target_age, "invalid_target_age", "target age")
        if target < age:
            raise AgeProgressionError(
                "invalid_target_age", f"target age {target:g} is below the current age {age:g}"
            )
        object.__setattr__(self, "target_age", target)
        if not 0.0 <= float(self.family_weight) <= 1.0:
            raise AgeProgressionError("invalid_parameter", f"family weight must be in 0-1, not {self.family_weight}")
        object.__setattr__(self, "family", tuple(self.family))


@dataclass(frozen=True)
class Progression:
    target_age: float
    image: np.ndarray  # (H, W, 3) uint8, unlabelled
    source_points: np.ndarray  # (478, 2) the input mesh
    target_points: np.ndarray  # (478, 2) where the mesh lands in ``image``
    model_factors: GrowthFactors  # straight from the growth table
    applied_factors: dict  # after the family blend: upper/middle/lower third, face width, nose, cranium
    family_shares: dict  # relation -> share of the target proportions that came from that relative
    vertices_source: np.ndarray  # triangulation vertices (mesh + head rings + border anchors)
    vertices_target: np.ndarray
    triangles: np.ndarray
    displacement_scale: float  # 1.0 unless the displacement had to be scaled down to avoid a fold
    changed: np.ndarray  # bool (H, W): the pixels the warp wrote
    measured_input: Proportions  # the input mesh's proportions
    predicted: Proportions  # the proportions of the target landmarks
    deformation: DeformationField = field(repr=False)

    def map_points(self, xy: np.ndarray) -> np.ndarray:
        """Where any input-image points land in ``image`` (e.g. another detector's landmarks)."""
        return self.deformation.apply(np.asarray(xy, np.float64).reshape(-1, 2))


def family_target_ratios(target_age: float, family: tuple[FamilyReference, ...]) -> dict[str, float] | None:
    """The relatives' scale-free ratios carried to ``target_age`` with the growth model, log-averaged."""
    if not family:
        return None
    logs: list[np.ndarray] = []
    for relative in family:
        relative_sex = relation_sex(relative.relation)
        at_photo = min(max(relative.age, MIN_AGE), MAX_AGE)  # an adult relative is taken at the table's end
        g = growth(relative_sex, at_photo, target_age)
        p = relative.proportions
        logs.append(
            np.log(
                [
                    p.lower_to_middle * g.lower_third / g.middle_third,
                    p.upper_to_middle * g.upper_third / g.middle_third,
                    p.height_to_width * _height_growth(p, g) / g.face_width,
                ]
            )
        )
    mean = np.exp(np.mean(logs, axis=0))
    return {"lower_to_middle": mean[0], "upper_to_middle": mean[1], "height_to_width": mean[2]}


def relation_sex(relation: str) -> str:
    """The sex a relation word implies (mother, brother, ...), else 'unknown'."""
    words = relation.lower().replace("-", " ").replace("_", " ").split()
    female = {"mother", "mum", "mom", "sister", "aunt", "grandmother", "daughter", "niece"}
    male = {"father", "dad", "brother", "uncle", "grandfather", "son", "nephew"}
    if any(w in female for w in words):
        return "female"
    if any(w in male for w in words):
        return "male"
    return "unknown"


def _height_growth(p: Proportions, g: GrowthFactors) -> float:
    return (p.middle_third * g.middle_third + p.lower_third * g.lower_third) / (p.middle_third + p.lower_third)


def applied_factors(
    current: Proportions, plan: ProgressionPlan
) -> tuple[GrowthFactors, dict[str, float], dict[str, float]]:
    """Model factors, the factors actually applied after moving toward the family, and each relative's share."""
    model = growth(plan.sex, plan.age, plan.target_age)
    factors = {
        "upper_third": model.upper_third,
        "middle_third": model.middle_third,
        "lower_third": model.lower_third,
        "face_width": model.face_width,
        "nose_length": model.nose_length,
        "cranium": model.cranium,
    }
    family = family_target_ratios(plan.target_age, plan.family)
    weight = float(plan.family_weight)
    if family is None or weight == 0.0:
        return model, factors, {}
    middle = current.middle_third * model.middle_third
    lower = current.lower_third * model.lower_third
    upper = current.upper_third * model.upper_third
    width = current.face_width * model.face_width

    def blend(model_ratio: float, family_ratio: float) -> float:
        return float(np.exp((1 - weight) * np.log(model_ratio) + weight * np.log(family_ratio)))

    lower_target = blend(lower / middle, family["lower_to_middle"]) * middle
    upper_target = blend(upper / middle, family["upper_to_middle"]) * middle
    height = middle + lower_target
    width_target = height / blend(height / width, family["height_to_width"])
    factors["lower_third"] = lower_target / current.lower_third
    factors["upper_third"] = upper_target / current.upper_third
    factors["face_width"] = width_target / current.face_width
    shares = {f"{r.relation} (age {r.age:g})": weight / len(plan.family) for r in plan.family}
    return model, factors, shares


@dataclass(frozen=True)
class _Levels:
    """Source levels along ``v`` and where the vertical map sends them."""

    source: np.ndarray
    target: np.ndarray
    slope_above: float
    slope_below: float

    def map(self, v: np.ndarray) -> np.ndarray:
        out = np.interp(v, self.source, self.target)
        above = v < self.source[0]
        below = v > self.source[-1]
        out[above] = self.target[0] + (v[above] - self.source[0]) * self.slope_above
        out[below] = self.target[-1] + (v[below] - self.source[-1]) * self.slope_below
        return out


@dataclass(frozen=True)
class DeformationField:
    """The target map of the whole image plane for one progression (eyes fixed, faded outside the head)."""

    frame: FaceFrame
    levels: _Levels
    eye_top: float
    eye_bottom: float
    glabella: float
    subnasale: float
    width_scale: float
    forehead_scale: float
    head_centre_v: float
    head_semi_u: float
    head_semi_v: float
    nose_factor: float  # nasion-subnasale growth actually applied (see MIN_SEGMENT_SCALE)
    scale: float = 1.0

    def horizontal_scale(self, v: np.ndarray) -> np.ndarray:
        below = np.clip((v - self.eye_bottom) / max(self.subnasale - self.eye_bottom, 1e-6), 0, 1)
        above = np.clip((self.eye_top - v) / max(self.eye_top - self.glabella, 1e-6), 0, 1)
        return 1 + below * (self.width_scale - 1) + above * (self.forehead_scale - 1)

    def head_radius(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.hypot(u / self.head_semi_u, (v - self.head_centre_v) / self.head_semi_v)

    def fade(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = np.clip((FADE_OUTER - self.head_radius(u, v)) / (FADE_OUTER - 1.0), 0, 1)
        return t * t * (3 - 2 * t)

    def displacement(self, xy: np.ndarray) -> np.ndarray:
        u, v = self.frame.to_frame(xy)
        u_new = u * self.horizontal_scale(v)
        v_new = self.levels.map(v)
        weight = self.scale * self.fade(u, v)
        return (self.frame.to_image(u_new, v_new) - np.asarray(xy, np.float64)) * weight[:, None]

    def apply(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, np.float64) + self.displacement(xy)


def deformation_field(points: np.ndarray, factors: dict[str, float]) -> DeformationField:
    frame = FaceFrame.from_points(points)
    u, v = frame.to_frame(points)
    eye_v = v[list(EYES)]
    eye_top, eye_bottom = float(eye_v.min()), float(eye_v.max())
    trichion, glabella, subnasale, menton = (float(v[i]) for i in (TRICHION, GLABELLA, SUBNASALE, MENTON))
    if not trichion < glabella < eye_top < eye_bottom < subnasale < menton:
        raise AgeProgressionError("no_mesh", "the face mesh is not upright enough to place the facial thirds")

    above = eye_top - glabella  # glabella down to the eye band
    band = eye_bottom - eye_top
    below = subnasale - eye_bottom  # eye band down to the subnasale
    middle_target = factors["middle_third"] * (above + band + below)
    # The nose (nasion ~ eye line -> subnasale) lengthens by its own factor; the rest of the middle third absorbs it.
    nose = subnasale  # the nasion sits on the eye line (v = 0)
    below_scale = (factors["nose_length"] * nose - (nose - below)) / below
    above_scale = (middle_target - band - below * below_scale) / above
    if above_scale < MIN_SEGMENT_SCALE:
        above_scale = MIN_SEGMENT_SCALE
        below_scale = (middle_target - band - above * above_scale) / below
    glabella_new = eye_top - above * above_scale
    subnasale_new = eye_bottom + below * below_scale
    levels = _Levels(
        source=np.array([trichion, glabella, eye_top, eye_bottom, subnasale, menton]),
        target=np.array(
            [
                glabella_new - factors["upper_third"] * (glabella - trichion),
                glabella_new,
                eye_top,
                eye_bottom,
                subnasale_new,
                subnasale_new + factors["lower_third"] * (menton - subnasale),
            ]
        ),
        slope_above=factors["cranium"],
        slope_below=1.0,
    )
    oval_u = u[list(FACE_OVAL)]
    vault = trichion - VAULT_ABOVE_TRICHION * (glabella - trichion)
    head_semi_u = HEAD_WIDTH_OVER_FACE * float(np.abs(oval_u).max())
    head_centre_v = (vault + menton) / 2
    head_semi_v = (menton - vault) / 2
    # The whole mesh must get the full field: grow the ellipse until it holds every mesh point.
    reach = float(np.hypot(u / head_semi_u, (v - head_centre_v) / head_semi_v).max())
    head_semi_u *= max(reach, 1.0) * 1.02
    head_semi_v *= max(reach, 1.0) * 1.02
    return DeformationField(
        frame=frame,
        levels=levels,
        eye_top=eye_top,
        eye_bottom=eye_bottom,
        glabella=glabella,
        subnasale=subnasale,
        width_scale=factors["face_width"],
        forehead_scale=factors["cranium"],
        head_centre_v=head_centre_v,
        head_semi_u=head_semi_u,
        head_semi_v=head_semi_v,
        nose_factor=(nose - below + below * below_scale) / nose,
    )


def triangulation_vertices(points: np.ndarray, field_: DeformationField, shape: tuple[int, int]) -> np.ndarray:
    """Face mesh (duplicates dropped) + rings around the head + anchors along the image border."""
    height, width = shape
    mesh = _unique_rows(points)
    angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    rings = []
    for radius in RING_RADII:
        u = radius * field_.head_semi_u * np.cos(angles)
        v = field_.head_centre_v + radius * field_.head_semi_v * np.sin(angles)
        rings.append(field_.frame.to_image(u, v))
    ring_points = np.concatenate(rings)
    face_hull_radius = field_.head_radius(*field_.frame.to_frame(mesh)).max()
    keep = field_.head_radius(*field_.frame.to_frame(ring_points)) > face_hull_radius * 1.02
    ring_points = ring_points[keep]
    interior = np.concatenate([mesh, ring_points])
    # An interior vertex must stay clear of the border by more than it moves, or its triangles fold against it.
    clearance = np.minimum.reduce(
        [interior[:, 0], interior[:, 1], width - 1 - interior[:, 0], height - 1 - interior[:, 1]]
    )
    moves = np.linalg.norm(field_.displacement(interior), axis=1)
    interior = interior[clearance > 1.5 * moves + 4.0]
    xs = np.unique(np.r_[np.arange(0, width - 1, BORDER_STEP_PX), width - 1]).astype(np.float64)
    ys = np.unique(np.r_[np.arange(0, height - 1, BORDER_STEP_PX), height - 1]).astype(np.float64)
    border = np.concatenate(
        [
            np.c_[xs, np.zeros_like(xs)],
            np.c_[xs, np.full_like(xs, height - 1)],
            np.c_[np.zeros_like(ys), ys],
            np.c_[np.full_like(ys, width - 1), ys],
        ]
    )
    interior = _unique_rows(interior)
    return _without_slivers(np.concatenate([interior, border]), fixed_from=len(interior))


def border_constrained(source: np.ndarray, target: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Vertices on the image border may only slide along it, so the output frame stays fully covered."""
    height, width = shape
    out = target.copy()
    on_left_right = np.isclose(source[:, 0], 0) | np.isclose(source[:, 0], width - 1)
    on_top_bottom = np.isclose(source[:, 1], 0) | np.isclose(source[:, 1], height - 1)
    out[on_left_right, 0] = source[on_left_right, 0]
    out[on_top_bottom, 1] = source[on_top_bottom, 1]
    out[:, 0] = np.where(on_top_bottom, np.clip(out[:, 0], 0, width - 1), out[:, 0])
    out[:, 1] = np.where(on_left_right, np.clip(out[:, 1], 0, height - 1), out[:, 1])
    return out


def progress(rgb: np.ndarray, mesh, plan: ProgressionPlan) -> Progression:
    """Progress the face described by ``mesh`` in ``rgb`` from ``plan.age`` to ``plan.target_age``."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    points = mesh_points(mesh)
    current = Proportions.measure(points)
    model, factors, shares = applied_factors(current, plan)
    field_ = deformation_field(points, factors)
    factors = {**factors, "nose_length": field_.nose_factor}

    vertices = triangulation_vertices(points, field_, rgb.shape[:2])
    triangles = triangulate(vertices)
    full_target = border_constrained(vertices, field_.apply(vertices), rgb.shape[:2])
    scale = fold_free_scale(vertices, full_target, triangles)
    field_ = replace(field_, scale=field_.scale * scale)
    vertices_target = border_constrained(vertices, field_.apply(vertices), rgb.shape[:2])
    warped = warp_image(rgb, vertices, vertices_target, triangles)
    target_points = field_.apply(points)
    return Progression(
        target_age=plan.target_age,
        image=warped.image,
        source_points=points,
        target_points=target_points,
        model_factors=model,
        applied_factors=factors,
        family_shares=shares,
        vertices_source=vertices,
        vertices_target=vertices_target,
        triangles=triangles,
        displacement_scale=scale,
        changed=warped.changed,
        measured_input=current,
        predicted=Proportions.measure(target_points),
        deformation=field_,
    )


def _without_slivers(vertices: np.ndarray, fixed_from: int, rounds: int = 4) -> np.ndarray:
    """Drop interior vertices (index < ``fixed_from``) that sit almost on the line of two neighbours: such sliver
    triangles hold no picture but flip orientation under the slightest non-affine motion."""
    for _ in range(rounds):
        triangles = triangulate(vertices)
        corners = vertices[triangles]
        edges = np.linalg.norm(corners - np.roll(corners, -1, axis=1), axis=2)  # edge k joins corner k and k+1
        altitude = 2 * np.abs(signed_areas(vertices, triangles)) / edges.max(axis=1)
        slivers = np.flatnonzero(altitude < MIN_ALTITUDE_PX)
        opposite = triangles[slivers, (edges[slivers].argmax(axis=1) + 2) % 3]
        drop = np.unique(opposite[opposite < fixed_from])
        if drop.size == 0:
            break
        vertices = np.delete(vertices, drop, axis=0)
        fixed_from -= drop.size
    return vertices


def _unique_rows(points: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """Drop points within ``tolerance`` px of an earlier one (the mesh has coincident lip and eyelid points, whose
    sliver triangles would flip orientation under any non-affine motion)."""
    keep = np.ones(len(points), bool)
    for i, j in sorted(cKDTree(points).query_pairs(tolerance)):
        if keep[i] and keep[j]:
            keep[j] = False
    return points[keep]
