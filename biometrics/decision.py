"""The one face decision rule, shared by threshold calibration and gallery search.

A pair is the same person when its descriptor distance is at most the threshold, as dlib's `face_recognition`
decides (`compare_faces`: distance <= tolerance).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# A candidate within threshold + margin is worth an analyst's look, not a match.
POSSIBLE_MARGIN = 0.1

Decision = Literal["match", "possible", "no_match"]


def same_person(distance: float | np.ndarray, threshold: float) -> bool | np.ndarray:
    """distance <= threshold; element-wise for an array of distances."""
    return distance <= threshold


def decide(distance: float, threshold: float, possible_margin: float = POSSIBLE_MARGIN) -> Decision:
    """"match" for the same person, "possible" up to `possible_margin` beyond the threshold, else "no_match"."""
    if same_person(distance, threshold):
        return "match"
    if same_person(distance, threshold + possible_margin):
        return "possible"
    return "no_match"
