"""Age progression: a fast, explainable first draft of what a missing child may look like at an older age.

    factors = growth("m", 6, 14)                       # per-region growth factors from published data
    result = progress(rgb, mesh_points, ProgressionPlan(sex="m", age=6, target_age=14))
    out = run_age_progression(photo_bytes, age=6, sex="m", target_ages=[10, 14])
    out.to_files()                                     # age-<N>.png, overlay-<N>.png, mesh-<N>.json, sheet, provenance

A geometric model (facial thirds, face width, nose, cranium; ``models/growth.json``, documented in
``models/growth.md``) moves the face mesh with the eyes held fixed, and a dense piecewise-affine warp carries the
photo along. Every output image is labelled as an approximation and every result carries its provenance.
"""
from agepro.errors import AgeProgressionError
from agepro.growth import GROWTH_SOURCES, GROWTH_TABLE_VERSION, GrowthFactors, growth, size_index
from agepro.landmarks import LANDMARK_INDICES, FaceFrame, Proportions
from agepro.pipeline import AgeProgressionResult, FamilyPhoto, code_version, run_age_progression
from agepro.progression import FamilyReference, Progression, ProgressionPlan, progress
from agepro.render import DEFAULT_LABEL, label_band, label_text

__all__ = [
    "DEFAULT_LABEL",
    "GROWTH_SOURCES",
    "GROWTH_TABLE_VERSION",
    "LANDMARK_INDICES",
    "AgeProgressionError",
    "AgeProgressionResult",
    "FaceFrame",
    "FamilyPhoto",
    "FamilyReference",
    "GrowthFactors",
    "Progression",
    "ProgressionPlan",
    "Proportions",
    "code_version",
    "growth",
    "label_band",
    "label_text",
    "progress",
    "run_age_progression",
    "size_index",
]
