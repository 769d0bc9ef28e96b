"""A decoded photo and its face mesh in, labelled artefacts and provenance out. Decoding and face detection are
the caller's (see ``workers.age_progression.progress_photo``)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from agepro.appearance import DEFAULT_APPEARANCE_WEIGHT, REGION_SHARES, AppearanceBlend, transfer_appearance
from agepro.errors import AgeProgressionError
from agepro.growth import GROWTH_SOURCES, GROWTH_TABLE_VERSION, check_age, normalise_sex
from agepro.landmarks import LANDMARK_INDICES, Proportions, mesh_points
from agepro.progression import (
    DEFAULT_FAMILY_WEIGHT,
    FamilyReference,
    Progression,
    ProgressionPlan,
    progress,
    relation_sex,
)
from agepro.render import (
    APPROXIMATION_LABEL,
    check_label_note,
    contact_sheet,
    format_age,
    hair_free,
    label_text,
    original_text,
    overlay,
    png_bytes,
    with_label,
)
from agepro.restoration import PreparedPhoto

MAX_RELATIVE_AGE = 120
METHOD = {
    "held_fixed": (
        "The eyes: a photo has no absolute scale, and the eyes grow least of all facial features and anchor the "
        "artist's comparison, so the eye band keeps its pixel size and position; every other region grows "
        "around it by the growth model's factors."
    ),
    "landmarks": LANDMARK_INDICES,
    "warp": (
        "Piecewise-affine over a triangulation of the face mesh, rings around the head and image-border "
        "anchors; the field fades to zero outside an elliptical head region; every triangle keeps its "
        "orientation (the displacement is scaled down if one would fold)."
    ),
    "family": "Relatives' scale-free proportions, carried to the target age by the growth model, are blended in "
    "log space with the model's proportions by the family weight.",
    "appearance": "Each relative's face is warped triangle by triangle onto the progressed face mesh, colour-matched "
    "in CIELAB (lightness and contrast from the child's photo, the relative's mean skin chroma kept), relatives "
    "averaged with equal shares, and blended by the appearance weight over skin, nose, mouth and jaw; the eyes and "
    "brows stay the child's; the weight ramps smoothly to zero inside the face outline and around the eyes.",
    "preparation": "Optional, for scanned prints, before face detection: halftone screen found in the spectrum and "
    "low-passed, noise and JPEG blocking found and removed with non-local means on the luminance, faded contrast "
    "and colour cast stretched per channel, gentle unsharp mask; each step only where measured, with its figures.",
    "hair_free": "For every target, the face inside its mesh outline (forehead top to chin) on a neutral grey: hair, "
    "ears and outline hidden.",
    "label": "Every progressed image carries the fixed label inside the picture (a strip across its top) and on a "
    "band below it; a caller's note is added after it as plain text; every PNG holds the label and the SHA-256 "
    "of provenance.json in its text chunks.",
}
PNG_LABEL_KEY = "fimg:label"
PNG_PROVENANCE_KEY = "fimg:provenance-sha256"


@dataclass(frozen=True)
class ChosenFace:
    """Which detected face of a photo a mesh belongs to, for the provenance: its index (left to right), its box
    (x, y, w, h) and how many faces the photo held."""

    index: int
    box: tuple[int, int, int, int]
    faces_detected: int


@dataclass(frozen=True)
class FamilyFace:
    """A relative: their decoded photo, the face mesh from it (a biometrics ``Mesh`` or a (478, 2) array), their age
    in it, their relation to the child, the SHA-256 of the photo's original bytes and which of its faces the mesh
    is."""

    rgb: np.ndarray
    mesh: Any
    age: float
    relation: str
    sha256: str
    face: ChosenFace


@dataclass
class AgeProgressionResult:
    pictures: dict[int | float, np.ndarray]  # the final progressed pictures per target age, unlabelled
    images: dict[int | float, np.ndarray]  # labelled progressed images per target age
    hair_free: dict[int | float, np.ndarray]  # labelled hair-free variants per target age
    overlays: dict[int | float, np.ndarray]  # labelled landmark overlays per target age
    meshes: dict[int | float, dict]  # JSON-able target mesh per target age
    labels: dict[int | float, str]  # the label text per target age
    sheet: np.ndarray  # the photo (as received and prepared), every target age full and hair-free, labelled
    provenance: dict
    progressions: dict[int | float, Progression] = field(repr=False)
    appearance: dict[int | float, AppearanceBlend] = field(repr=False)  # empty without relatives' appearance
    source_rgb: np.ndarray = field(repr=False)

    def to_files(self) -> dict[str, bytes]:
        """``age-<N>.png``, ``face-<N>.png`` (hair-free), ``overlay-<N>.png``, ``mesh-<N>.json`` per target,
        ``sheet.png``, ``provenance.json``; every PNG carries its label and provenance.json's SHA-256."""
        provenance = json.dumps(self.provenance, indent=2, sort_keys=True).encode()
        digest = hashlib.sha256(provenance).hexdigest()
        files: dict[str, bytes] = {}
        for age in self.images:
            name = format_age(age)
            chunks = {PNG_LABEL_KEY: self.labels[age], PNG_PROVENANCE_KEY: digest}
            files[f"age-{name}.png"] = png_bytes(self.images[age], chunks)
            files[f"face-{name}.png"] = png_bytes(self.hair_free[age], chunks)
            files[f"overlay-{name}.png"] = png_bytes(self.overlays[age], chunks)
            files[f"mesh-{name}.json"] = json.dumps(self.meshes[age], indent=1).encode()
        files["sheet.png"] = png_bytes(self.sheet, {PNG_LABEL_KEY: APPROXIMATION_LABEL, PNG_PROVENANCE_KEY: digest})
        files["provenance.json"] = provenance
        return files


def code_version() -> str:
    try:
        return version("fimg")
    except PackageNotFoundError:
        return "unknown (fimg not installed)"


def check_parameters(
    age: float,
    sex: str,
    target_ages: Sequence[float] | float,
    label_note: str | None = None,
    family_weight: float = DEFAULT_FAMILY_WEIGHT,
    appearance_weight: float = DEFAULT_APPEARANCE_WEIGHT,
) -> tuple[float, str, list[float]]:
    """The request's (age, sex, sorted distinct target ages), normalised; raises ``AgeProgressionError``. Callers
    that decode and detect first run this before that costly work."""
    sex = normalise_sex(sex)
    age = check_age(age, "invalid_age", "current age")
    targets = _check_targets(age, target_ages)
    for name, weight in (("family weight", family_weight), ("appearance weight", appearance_weight)):
        if not 0.0 <= float(weight) <= 1.0:
            raise AgeProgressionError("invalid_parameter", f"{name} must be in 0-1, not {weight}")
    check_label_note(label_note)
    return age, sex, targets


def check_relative(number: int, age: float, relation: str) -> float:
    """Family photo ``number``'s (from 1) age at the photo as a float; raises ``AgeProgressionError``
    (``invalid_family_photo``) for an age outside 1-120 or an empty relation."""
    what = f"family photo {number} ({relation})"
    try:
        relative_age = float(age)
    except (TypeError, ValueError):
        raise AgeProgressionError("invalid_family_photo", f"{what}: age {age!r} is not a number") from None
    if not 1 <= relative_age <= MAX_RELATIVE_AGE:
        raise AgeProgressionError(
            "invalid_family_photo", f"{what}: age at photo {relative_age:g} is outside 1-{MAX_RELATIVE_AGE}"
        )
    if not str(relation).strip():
        raise AgeProgressionError("invalid_family_photo", f"{what}: the relation is empty")
    return relative_age


def age_progression(
    rgb: np.ndarray,
    mesh,
    age: float,
    sex: str,
    target_ages: Sequence[float] | float,
    *,
    source_sha256: str,
    face: ChosenFace,
    family: Sequence[FamilyFace] = (),
    label_note: str | None = None,
    family_weight: float = DEFAULT_FAMILY_WEIGHT,
    appearance_weight: float = DEFAULT_APPEARANCE_WEIGHT,
    preparation: PreparedPhoto | None = None,
) -> AgeProgressionResult:
    """Progress the face described by ``mesh`` (a biometrics ``Mesh`` or (478, 2) points) in the decoded HxWx3
    uint8 ``rgb`` from ``age`` to every age in ``target_ages``.

    ``source_sha256`` (of the photo's original bytes) and ``face`` go into the provenance. ``family``: relatives'
    faces; ``family_weight`` (0-1, 0 disables) is how far the target proportions move toward theirs,
    ``appearance_weight`` (0-1, 0 disables) how much of their warped appearance is blended in. ``label_note``: words
    added after the fixed label. ``preparation``: when ``rgb`` is a prepared old photo, the preparation that made it
    (its steps go into the provenance, the photo as received into the sheet). Raises ``AgeProgressionError``.
    """
    age, sex, targets = check_parameters(age, sex, target_ages, label_note, family_weight, appearance_weight)
    note = check_label_note(label_note)
    relatives, relatives_provenance = _family_references(family)
    relatives_appearance = [(r.rgb, mesh_points(r.mesh)) for r in family] if appearance_weight > 0 else []
    progressions: dict = {}
    pictures, faces_only, images, hair_free_images, overlays, meshes, labels, blends = ({} for _ in range(8))
    for target in targets:
        key = _age_key(target)
        plan = ProgressionPlan(
            sex=sex, age=age, target_age=target, family=relatives, family_weight=float(family_weight)
        )
        result = progress(rgb, mesh, plan)
        picture = result.image
        if relatives_appearance:
            blends[key] = transfer_appearance(picture, result.target_points, relatives_appearance,
                                              float(appearance_weight))
            picture = blends[key].image
        text = label_text(target, note)
        progressions[key] = result
        pictures[key] = picture
        faces_only[key] = hair_free(picture, result.target_points)
        labels[key] = text
        images[key] = with_label(picture, text)
        hair_free_images[key] = with_label(faces_only[key], text)
        overlays[key] = with_label(overlay(picture, result.target_points), text)
        meshes[key] = _mesh_json(result, text)

    originals = [(rgb, original_text(age))]
    if preparation is not None:
        originals = [(preparation.original, original_text(age)), (rgb, original_text(age, prepared=True))]
    sheet = contact_sheet(
        [
            originals + [(pictures[k], labels[k]) for k in pictures],
            [(faces_only[k], labels[k]) for k in pictures],
        ]
    )
    appearance_shares = {
        region: float(appearance_weight) * share / max(len(family), 1) for region, share in REGION_SHARES.items()
    }
    for entry in relatives_provenance:
        entry["appearance"] = appearance_shares if relatives_appearance else {}
    provenance = {
        "kind": "age_progression",
        "disclaimer": "An approximation from population growth averages (and relatives' photos where given), not a "
        "likeness; for investigative leads only. Every output image carries the label.",
        "input": {"sha256": source_sha256, "width": rgb.shape[1], "height": rgb.shape[0]},
        "preparation": None if preparation is None else preparation.steps,
        "faces_detected": face.faces_detected,
        "face_index": face.index,
        "face_box": [int(v) for v in face.box],
        "sex": sex,
        "age": age,
        "target_ages": [float(t) for t in targets],
        "growth_table": {"version": GROWTH_TABLE_VERSION, "sources": list(GROWTH_SOURCES)},
        "method": METHOD,
        "parameters": {
            "family_weight": float(family_weight),
            "appearance_weight": float(appearance_weight),
            "label_note": note,
            "prepare_old_photo": preparation is not None,
        },
        "label": APPROXIMATION_LABEL,
        "input_proportions": Proportions.measure(mesh).as_dict(),
        "targets": {
            format_age(k): {
                "label": labels[k],
                "model_factors": p.model_factors.as_dict(),
                "applied_factors": p.applied_factors,
                "displacement_scale": p.displacement_scale,
                "family_shares": p.family_shares,
                "model_share": 1.0 - sum(p.family_shares.values()),
                "appearance_peak_share": float(blends[k].alpha.max()) if k in blends else 0.0,
                "predicted_proportions": p.predicted.as_dict(),
            }
            for k, p in progressions.items()
        },
        "family": relatives_provenance,
        "code_version": code_version(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return AgeProgressionResult(pictures, images, hair_free_images, overlays, meshes, labels, sheet, provenance,
                                progressions, blends, rgb)


def _check_targets(age: float, target_ages) -> list[float]:
    if isinstance(target_ages, (int, float)):
        target_ages = [target_ages]
    targets = sorted({check_age(t, "invalid_target_age", "target age") for t in target_ages})
    if not targets:
        raise AgeProgressionError("invalid_target_age", "at least one target age is needed")
    if targets[0] < age:
        raise AgeProgressionError(
            "invalid_target_age", f"target age {targets[0]:g} is below the current age {age:g}"
        )
    return targets


def _age_key(age: float) -> int | float:
    return int(age) if float(age).is_integer() else float(age)


def _family_references(family: Sequence[FamilyFace]) -> tuple[tuple[FamilyReference, ...], list[dict]]:
    references, provenance = [], []
    for number, relative in enumerate(family, start=1):
        relative_age = check_relative(number, relative.age, relative.relation)
        proportions = Proportions.measure(relative.mesh)
        references.append(FamilyReference(relative.relation, relative_age, proportions, relative.sha256))
        provenance.append(
            {
                "relation": relative.relation,
                "age_at_photo": relative_age,
                "sha256": relative.sha256,
                "faces_detected": relative.face.faces_detected,
                "face_used": relative.face.index,
                "sex_assumed_from_relation": relation_sex(relative.relation),
                "proportions": proportions.as_dict(),
            }
        )
    return tuple(references), provenance


def _mesh_json(result: Progression, text: str) -> dict:
    height, width = result.image.shape[:2]
    return {
        "label": text,
        "target_age": result.target_age,
        "point_order": "MediaPipe Face Mesh, 478 points (refine_landmarks=True)",
        "image_size": [width, height],
        "points": np.round(result.target_points, 2).tolist(),
        "source_points": np.round(result.source_points, 2).tolist(),
        "landmarks": LANDMARK_INDICES,
        "applied_factors": result.applied_factors,
        "displacement_scale": result.displacement_scale,
    }
