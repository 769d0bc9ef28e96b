"""Threshold calibration: hand-computed cases, brute-force cross-checks, synthetic identities, fixture faces."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from biometrics import POSSIBLE_MARGIN, SAME_PERSON_THRESHOLD, analyze, calibrate, decide, same_person
from imaging import decode

FACES = Path(os.environ.get("FIMG_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")) / "faces"


def brute_force_rates(embeddings: np.ndarray, labels: list[str], threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at `threshold` by looping over pairs: a pair matches when its distance <= threshold."""
    false_match = false_non_match = impostors = genuines = 0
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            d = float(np.linalg.norm(embeddings[i] - embeddings[j]))
            if labels[i] == labels[j]:
                genuines += 1
                false_non_match += d > threshold
            else:
                impostors += 1
                false_match += d <= threshold
    return false_match / impostors, false_non_match / genuines


def test_separable_hand_computed_case():
    # 1-D descriptors. Genuine: |0 - 0.3| = 0.3, |1.0 - 1.2| = 0.2. Impostor: 1.0, 1.2, 0.7, 0.9.
    result = calibrate(np.array([[0.0], [0.3], [1.0], [1.2]]), ["a", "a", "b", "b"])
    assert result.genuine.tolist() == pytest.approx([0.2, 0.3])
    assert result.impostor.tolist() == pytest.approx([0.7, 0.9, 1.0, 1.2])
    assert result.eer == 0.0
    assert result.eer_threshold == pytest.approx(0.5)  # midway between the worst genuine and the best impostor
    assert result.identities == 2
    # Four impostor pairs cannot resolve 1e-3: the threshold stops just below the nearest impostor (FMR 0).
    assert not result.target_fmr_resolved and result.threshold_at_target_fmr == pytest.approx(0.7)
    assert result.threshold_at_target_fmr < 0.7 and result.fmr(result.threshold_at_target_fmr) == 0.0
    assert result.fmr(0.7) == 0.25  # a distance at the threshold is a match


def test_a_distance_at_the_threshold_is_a_match_in_calibration_and_search():
    from workers.faces import rank_subjects

    # Genuine |0 - 0.5| = |2.0 - 2.5| = 0.5, exactly representable; impostors 1.5 and up.
    result = calibrate(np.array([[0.0], [0.5], [2.0], [2.5]]), ["a", "a", "b", "b"])
    assert result.genuine.tolist() == [0.5, 0.5]
    assert result.fnmr(0.5) == 0.0 and result.fnmr(np.nextafter(0.5, 0)) == 1.0
    assert result.fmr(1.5) == 0.25
    assert same_person(0.5, 0.5) and decide(0.5, 0.5) == "match"
    probe = np.zeros(128)
    enrolled = np.zeros((1, 128))
    enrolled[0, 0] = 0.5
    gallery = {"subjects": ["a"], "labels": {"a": "A"}, "embeddings": enrolled}
    assert rank_subjects(probe, gallery, top_k=1, threshold=0.5)[0]["decision"] == "match"
    assert rank_subjects(probe, gallery, top_k=1, threshold=np.nextafter(0.5, 0))[0]["decision"] == "possible"


def test_possible_up_to_threshold_plus_margin():
    threshold = SAME_PERSON_THRESHOLD
    boundary = threshold + POSSIBLE_MARGIN
    assert decide(np.nextafter(threshold, 2.0), threshold) == "possible"
    assert decide(boundary, threshold) == "possible"
    assert decide(np.nextafter(boundary, 2.0), threshold) == "no_match"
    assert decide(0.375, 0.25, possible_margin=0.125) == "possible"
    assert decide(0.38, 0.25, possible_margin=0.125) == "no_match"


def test_calibration_fmr_is_the_share_of_impostors_search_would_match():
    rng = np.random.default_rng(11)
    embeddings = np.round(rng.normal(size=(40, 2)), 1)  # a coarse grid: many tied distances
    labels = [f"id{i % 8}" for i in range(40)]
    result = calibrate(embeddings, labels, target_fmr=0.05)
    thresholds = np.concatenate([result.impostor[::37], [result.threshold_at_target_fmr, result.eer_threshold, 0.6]])
    for threshold in thresholds:
        searched = np.mean([decide(d, threshold) == "match" for d in result.impostor])
        assert result.fmr(threshold) == searched, threshold
        rejected = np.mean([decide(d, threshold) != "match" for d in result.genuine])
        assert result.fnmr(threshold) == pytest.approx(rejected, abs=1e-12), threshold
    assert result.fmr(result.threshold_at_target_fmr) <= 0.05


def test_target_fmr_threshold_is_the_largest_that_meets_the_target():
    result = calibrate(np.array([[0.0], [0.3], [1.0], [1.2]]), ["a", "a", "b", "b"], target_fmr=0.25)
    assert result.target_fmr_resolved
    assert result.threshold_at_target_fmr == pytest.approx(0.9)
    assert result.fmr(result.threshold_at_target_fmr) == 0.25
    assert result.fmr(np.nextafter(result.threshold_at_target_fmr, 2.0)) > 0.25


def test_overlapping_hand_computed_case():
    # Genuine 0.4 (a) and 0.1 (b); impostor |0-0.5|=0.5, |0-0.6|=0.6, |0.4-0.5|=0.1, |0.4-0.6|=0.2.
    result = calibrate(np.array([[0.0], [0.4], [0.5], [0.6]]), ["a", "a", "b", "b"])
    # Between 0.1 and 0.2: FMR 1/4 (the 0.1 impostor), FNMR 1/2 (the 0.4 genuine); between 0.2 and 0.4: FMR 2/4,
    # FNMR 1/2; between 0.4 and 0.5: FMR 2/4, FNMR 0. Below 0.1: FMR 0, FNMR 1. So EER = 1/2.
    assert result.eer == pytest.approx(0.5)
    fmr, fnmr = brute_force_rates(np.array([[0.0], [0.4], [0.5], [0.6]]), ["a", "a", "b", "b"], result.eer_threshold)
    assert max(fmr, fnmr) == pytest.approx(0.5)


def test_distances_one_ulp_apart_are_told_apart():
    """|2.11 - 1.05| and |0.72 - -0.34| (1.06) come out one ulp apart: the threshold between them is a candidate
    too (their midpoint rounds to the upper one; found by the property test below)."""
    points = [-0.34, 1.9, 2.09, -2.94, 2.11, -2.68, 0.77, 0.72, 2.15, 1.4, 2.79, 1.05]
    labels = [f"id{c}" for c in (0, 0, 3, 2, 2, 3, 1, 2, 1, 3, 1, 1)]
    embeddings = np.array(points)[:, None]
    result = calibrate(embeddings, labels)
    assert result.eer == pytest.approx(7 / 13)
    assert max(brute_force_rates(embeddings, labels, result.eer_threshold)) == pytest.approx(7 / 13)


@settings(max_examples=60, deadline=None)
@given(
    # Points on a 0.01 grid: the brute force probes thresholds 1e-9 apart, so distances that differ only in their
    # last bits (e.g. 2.2e-16 from 0) would make it and calibrate disagree on rounding, not on the rule.
    points=st.lists(st.integers(-300, 300).map(lambda v: v / 100), min_size=3, max_size=12),
    label_codes=st.lists(st.integers(0, 3), min_size=3, max_size=12),
    target=st.floats(0.01, 0.9),
)
def test_matches_brute_force_on_random_inputs(points, label_codes, target):
    n = min(len(points), len(label_codes))
    embeddings, labels = np.array(points[:n])[:, None], [f"id{c}" for c in label_codes[:n]]
    same = [labels[i] == labels[j] for i in range(n) for j in range(i + 1, n)]
    if all(same) or not any(same):
        with pytest.raises(ValueError):
            calibrate(embeddings, labels, target)
        return
    result = calibrate(embeddings, labels, target)
    distances = np.concatenate([result.genuine, result.impostor])
    grid = np.concatenate([[distances.min() - 1], np.unique(distances), np.unique(distances) + 1e-9])
    best = min(max(brute_force_rates(embeddings, labels, t)) for t in grid)
    assert result.eer == pytest.approx(best)
    assert max(brute_force_rates(embeddings, labels, result.eer_threshold)) == pytest.approx(result.eer)
    fmr_at_target, _ = brute_force_rates(embeddings, labels, result.threshold_at_target_fmr)
    assert fmr_at_target <= target
    assert brute_force_rates(embeddings, labels, result.threshold_at_target_fmr + 1e-9)[0] > target


def test_synthetic_identities_with_known_spread():
    # 40 identities x 6 samples in 128-D: centres far apart (unit vectors x 1.0), samples spread with sigma 0.03
    # per dimension, so genuine distances are about 0.03 * sqrt(2 * 128) = 0.48 and impostors about 1.5.
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    embeddings = np.repeat(centres, 6, axis=0) + rng.normal(scale=0.03, size=(240, 128))
    labels = [f"person-{i}" for i in range(40) for _ in range(6)]
    result = calibrate(embeddings, labels)
    assert len(result.genuine) == 40 * 15 and len(result.impostor) == 240 * 239 // 2 - 600
    assert result.genuine.mean() == pytest.approx(0.48, abs=0.03)
    assert result.impostor.mean() == pytest.approx(1.5, abs=0.05)
    assert result.eer == 0.0
    assert result.genuine.max() < result.eer_threshold < result.impostor.min()
    assert result.target_fmr_resolved and result.genuine.max() < result.threshold_at_target_fmr

    # Pull the centres together until the classes overlap: the EER grows as they get closer, and at its threshold
    # FMR and FNMR meet.
    eers = []
    for scale in (0.2, 0.15, 0.1):
        overlapping = calibrate(np.repeat(centres * scale, 6, axis=0) + rng.normal(scale=0.03, size=(240, 128)), labels)
        assert overlapping.fmr(overlapping.eer_threshold) == pytest.approx(overlapping.eer, abs=0.01)
        assert overlapping.fnmr(overlapping.eer_threshold) == pytest.approx(overlapping.eer, abs=0.01)
        assert overlapping.fmr(overlapping.threshold_at_target_fmr) <= 1e-3
        eers.append(overlapping.eer)
    assert 0.05 < eers[0] < eers[1] < eers[2] < 0.5


def test_order_of_samples_does_not_matter():
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(30, 8))
    labels = [f"x{i % 5}" for i in range(30)]
    order = rng.permutation(30)
    a = calibrate(embeddings, labels, 0.05)
    b = calibrate(embeddings[order], [labels[i] for i in order], 0.05)
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize(
    "embeddings, labels, target",
    [
        (np.zeros((3, 4)), ["a", "a", "a"], 1e-3),  # no impostor pair
        (np.zeros((3, 4)), ["a", "b", "c"], 1e-3),  # no genuine pair
        (np.zeros((3, 4)), ["a", "a"], 1e-3),  # label count mismatch
        (np.zeros((4, 4)), ["a", "a", "b", "b"], 0.0),
        (np.zeros((4, 4)), ["a", "a", "b", "b"], 1.0),
    ],
)
def test_invalid_inputs_are_refused(embeddings, labels, target):
    with pytest.raises(ValueError):
        calibrate(embeddings, labels, target)


def test_fixture_faces():
    with open(FACES / "identities.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["faces"] == "1"]
    embeddings, labels = [], []
    for row in rows:
        (analysis,) = analyze(decode(FACES / row["file"]).rgb)
        embeddings.append(analysis.embedding)
        labels.append(row["identity"])
    result = calibrate(np.stack(embeddings), labels)
    summary = result.to_dict()
    print("\n" + json.dumps(summary, indent=1))
    assert np.isfinite(result.eer) and np.isfinite(result.eer_threshold)
    assert summary["genuine"]["count"] == 29 and summary["impostor"]["count"] == 124
    # Measured: the fixture identities separate completely, and dlib's 0.6 sits inside the gap.
    assert result.eer == 0.0
    assert result.genuine.max() < SAME_PERSON_THRESHOLD < result.impostor.min()
    assert summary["at_same_person_threshold"] == {"threshold": SAME_PERSON_THRESHOLD, "fmr": 0.0, "fnmr": 0.0}
