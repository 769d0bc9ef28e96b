"""Age progression: a fast, explainable first draft of what a missing child may look like at an older age.

    factors = growth("m", 6, 14)                       # per-region growth factors from published data
    result = progress(rgb, mesh, ProgressionPlan(sex="m", age=6, target_age=14))
    out = age_progression(rgb, mesh, 6, "m", [10, 14], source_sha256=..., face=ChosenFace(0, box, 1),
                          family=[FamilyFace(mum_rgb, mum_mesh, 35, "mother", sha, ChosenFace(0, box, 1))])
    out.to_files()     # age-<N>.png, face-<N>.png (hair-free), overlay-<N>.png, mesh-<N>.json, sheet, provenance
    prepared = prepare_old_photo(rgb)                  # de-screen, denoise, fading, sharpen (before detection)

Takes a decoded RGB array and its face mesh; decoding and face detection happen at the job's edge
(``workers.age_progression.progress_photo``: photo bytes in). A geometric model (facial thirds, face width, nose,
cranium; ``models/growth.json``, documented in ``models/growth.md``) moves the face mesh with the eyes held fixed,
and a dense piecewise-affine warp carries the photo along; relatives' faces, warped onto the progressed mesh, lend
their appearance by region (``agepro.appearance``). Every output image is labelled as an approximation (a fixed
label; callers may only add a note) and every result carries its provenance.
"""
from agepro.appearance import DEFAULT_APPEARANCE_WEIGHT, REGION_SHARES, AppearanceBlend, transfer_appearance
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
from agepro.progression import DEFAULT_FAMILY_WEIGHT, FamilyReference, Progression, ProgressionPlan, progress
from agepro.render import APPROXIMATION_LABEL, MAX_LABEL_NOTE, check_label_note, label_band, label_text
from agepro.restoration import PreparedPhoto, prepare_old_photo

__all__ = [
    "APPROXIMATION_LABEL",
    "DEFAULT_APPEARANCE_WEIGHT",
    "DEFAULT_FAMILY_WEIGHT",
    "MAX_LABEL_NOTE",
    "REGION_SHARES",
    "AppearanceBlend",
    "PreparedPhoto",
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
    "check_label_note",
    "check_parameters",
    "check_relative",
    "code_version",
    "growth",
    "label_band",
    "label_text",
    "prepare_old_photo",
    "progress",
    "size_index",
    "transfer_appearance",
]
