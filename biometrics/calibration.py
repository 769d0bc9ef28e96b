"""Threshold calibration from labelled descriptors: genuine and impostor distance distributions, EER, and the
threshold that meets a target false-match rate. Decision rule throughout: `same_person` (distance <= threshold),
the rule gallery search applies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from biometrics.decision import same_person
from biometrics.embedding import SAME_PERSON_THRESHOLD


@dataclass(frozen=True, eq=False)
class Calibration:
    """genuine / impostor: sorted distances of every same-label / different-label pair.
    eer: equal error rate (the minimum over thresholds of max(FMR, FNMR)); eer_threshold: the middle of the
    threshold interval that reaches it. threshold_at_target_fmr: the largest threshold whose FMR on these
    impostor pairs is <= target_fmr (just below the impostor distance whose acceptance would exceed it); with fewer
    than 1 / target_fmr impostor pairs the target cannot be resolved and this is just below the smallest impostor
    distance (FMR 0 here), see `target_fmr_resolved`."""

    genuine: np.ndarray
    impostor: np.ndarray
    identities: int
    eer: float
    eer_threshold: float
    target_fmr: float
    threshold_at_target_fmr: float

    @property
    def target_fmr_resolved(self) -> bool:
        return len(self.impostor) * self.target_fmr >= 1

    def fmr(self, threshold: float) -> float:
        """Fraction of impostor pairs `same_person` accepts at `threshold`."""
        return float(np.count_nonzero(same_person(self.impostor, threshold))) / len(self.impostor)

    def fnmr(self, threshold: float) -> float:
        """Fraction of genuine pairs `same_person` rejects at `threshold`."""
        return 1.0 - float(np.count_nonzero(same_person(self.genuine, threshold))) / len(self.genuine)

    def to_dict(self) -> dict:
        return {
            "identities": self.identities,
            "genuine": _summary(self.genuine),
            "impostor": _summary(self.impostor),
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "target_fmr": self.target_fmr,
            "target_fmr_resolved": self.target_fmr_resolved,
            "threshold_at_target_fmr": self.threshold_at_target_fmr,
            "fnmr_at_target_fmr": self.fnmr(self.threshold_at_target_fmr),
            "at_same_person_threshold": {
                "threshold": SAME_PERSON_THRESHOLD,
                "fmr": self.fmr(SAME_PERSON_THRESHOLD),
                "fnmr": self.fnmr(SAME_PERSON_THRESHOLD),
            },
        }


def calibrate(embeddings: np.ndarray, labels: Sequence[str], target_fmr: float = 1e-3) -> Calibration:
    """Distances of all N*(N-1)/2 pairs of (N, D) descriptors, split by label equality, and the operating points.
    Needs at least one genuine and one impostor pair. Memory and time grow as N squared."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(f"expected (N, D) embeddings and N labels, got {embeddings.shape} and {len(labels)}")
    if not 0.0 < target_fmr < 1.0:
        raise ValueError(f"target_fmr must be in (0, 1), got {target_fmr}")
    _, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    genuine_parts, impostor_parts = [], []
    for i in range(len(embeddings) - 1):
        distances = np.linalg.norm(embeddings[i + 1 :] - embeddings[i], axis=1)
        same = codes[i + 1 :] == codes[i]
        genuine_parts.append(distances[same])
        impostor_parts.append(distances[~same])
    genuine = np.sort(np.concatenate(genuine_parts)) if genuine_parts else np.empty(0)
    impostor = np.sort(np.concatenate(impostor_parts)) if impostor_parts else np.empty(0)
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError(f"need genuine and impostor pairs, got {len(genuine)} and {len(impostor)}")

    eer, eer_threshold = _equal_error_rate(genuine, impostor)
    allowed_false_matches = int(np.floor(target_fmr * len(impostor)))
    return Calibration(
        genuine=genuine,
        impostor=impostor,
        identities=int(codes.max()) + 1,
        eer=eer,
        eer_threshold=eer_threshold,
        target_fmr=target_fmr,
        threshold_at_target_fmr=float(np.nextafter(impostor[allowed_false_matches], -np.inf)),
    )


def _equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    # FMR and FNMR only change at observed distances, so the candidates are the midpoints between consecutive
    # distinct distances plus one threshold below and one above them all.
    distinct = np.unique(np.concatenate([genuine, impostor]))
    lower, upper = distinct[:-1], distinct[1:]
    # The midpoint of two distances one ulp apart rounds to the upper one, which would count both: the lower
    # one then stands for the threshold between them.
    midpoints = (lower + upper) / 2
    midpoints = np.where(midpoints < upper, midpoints, lower)
    candidates = np.concatenate([[distinct[0] - 1e-6], midpoints, [distinct[-1] + 1e-6]])
    # Counted by bisection, as same_person would at every candidate: side="right" counts distances <= threshold.
    fmr = np.searchsorted(impostor, candidates, side="right") / len(impostor)
    fnmr = 1.0 - np.searchsorted(genuine, candidates, side="right") / len(genuine)
    worst = np.maximum(fmr, fnmr)
    best = np.flatnonzero(worst == worst.min())
    return float(worst.min()), float(candidates[best[len(best) // 2]])


def _summary(distances: np.ndarray) -> dict:
    p5, median, p95 = np.percentile(distances, [5, 50, 95])
    return {
        "count": int(len(distances)),
        "min": float(distances[0]),
        "p5": float(p5),
        "median": float(median),
        "mean": float(distances.mean()),
        "p95": float(p95),
        "max": float(distances[-1]),
    }
