"""Age progression: a fast, explainable first draft of what a missing child may look like at an older age.

    factors = growth("m", 6, 14)                       # per-region growth factors from published data
    result = progress(rgb, mesh, ProgressionPlan(sex="m", age=6, target_age=14))
    out = age_progression(rgb, mesh, 6, "m", [10, 14], source_sha256=..., face=ChosenFace(0, box, 1))
    out.to_files()                                     # age-<N>.png, overlay-<N>.png, mesh-<N>.json, sheet, provenance

Takes a decoded RGB array and its face mesh; decoding and face detection happen at the job's edge
(``workers.age_progression.progress_photo``: photo bytes in). A geometric model (facial thirds, face width, nose,
cranium; ``models/growth.json``, documented in ``models/growth.md``) moves the face mesh with the eyes held fixed,
and a dense piecewise-affine warp carries the photo along. Every output image is labelled as an approximation and
every result carries its provenance.
"""
from agepro.errors import AgeProgressionError
from agepro.growth import GROWTH_SOURCES, GROWTH_TABLE_VERSION, GrowthFactors, growth, size_index
from agepro.landmarks import LANDMARK_INDICES, FaceFrame, Proportions
from agepro.pipeline import (
    AgeProgressionResult,
    ChosenFace,
    FamilyFace,
    age_progression,
    check_parameters,
    check_relative,
    code_version,
)
from agepro.progression import FamilyReference, Progression, ProgressionPlan, progress
from agepro.render import DEFAULT_LABEL, label_band, label_text

__all__ = [
    "DEFAULT_LABEL",
    "GROWTH_SOURCES",
    "GROWTH_TABLE_VERSION",
    "LANDMARK_INDICES",
    "AgeProgressionError",
    "AgeProgressionResult",
    "ChosenFace",
    "FaceFrame",
    "FamilyFace",
    "FamilyReference",
    "GrowthFactors",
    "Progression",
    "ProgressionPlan",
    "Proportions",
    "age_progression",
    "check_parameters",
    "check_relative",
    "code_version",
    "growth",
    "label_band",
    "label_text",
    "progress",
    "size_index",
]
