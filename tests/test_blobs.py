"""The region detector's blobs are SIFT's (OpenCV's, from its second octave up), found at a fraction of the work."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from imaging.blobs import dog_blobs
from imaging.decode import decode
from imaging.regions import DETECT_SIDE, HASH_SIDE, MIN_BLOB_SIZE
from imaging.resample import area_reduced

PICTURES = ["pdq/bridge-mods/aaa-orig.jpg", "faces/obama-1.jpg", "faces/group-two-people.jpg",
            "pdq/reg-test/labelme-subset/q0746.jpg", "pdq/misc-images/c.png"]


def detection_copy(fixtures_dir, relative: str) -> np.ndarray:
    rgb = decode((fixtures_dir / relative).read_bytes()).rgb
    grey = cv2.cvtColor(np.ascontiguousarray(area_reduced(rgb, HASH_SIDE)), cv2.COLOR_RGB2GRAY)
    return area_reduced(grey, DETECT_SIDE)


@pytest.mark.parametrize("relative", PICTURES)
def test_the_blobs_are_the_ones_opencvs_sift_finds(fixtures_dir, relative):
    grey = detection_copy(fixtures_dir, relative)
    smallest = MIN_BLOB_SIZE * min(grey.shape)
    theirs = [k for k in cv2.SIFT_create().detect(grey, None) if k.size >= smallest]
    xs, ys, sizes, responses = dog_blobs(grey, smallest)
    assert len(theirs) >= 10
    found = 0
    for keypoint in theirs:
        near = np.hypot(xs - keypoint.pt[0], ys - keypoint.pt[1]) < 0.5
        same = near & (np.abs(sizes / keypoint.size - 1) < 0.05) & (np.abs(responses / keypoint.response - 1) < 0.1)
        found += bool(same.any())
    # SIFT's finest octave is skipped and its start computed at the picture's own resolution: the few blobs
    # that differ lie near the borders, where the filters see different padding
    assert found >= 0.93 * len(theirs)
    assert len(xs) <= 1.07 * len(theirs)


def test_octaves_outside_the_sizes_asked_for_change_only_rounding(fixtures_dir):
    grey = detection_copy(fixtures_dir, PICTURES[0])
    every = np.stack(dog_blobs(grey), axis=1)
    for smallest, largest in ((4.0, np.inf), (7.7, np.inf), (16.0, np.inf), (7.7, 42.0), (0.0, 12.0)):
        large = np.stack(dog_blobs(grey, smallest, largest), axis=1)
        expected = every[(every[:, 2] >= smallest) & (every[:, 2] <= largest)]
        assert len(large) > 0
        # a skipped octave's layers are blurred in one step, not three: the same blobs to float rounding
        assert len(large) == len(expected)
        order = np.lexsort(np.round(large[:, :3]).T)
        np.testing.assert_allclose(large[order], expected[np.lexsort(np.round(expected[:, :3]).T)], rtol=1e-3)


def test_pictures_too_small_for_an_octave_have_no_blobs():
    assert all(len(a) == 0 for a in dog_blobs(np.full((9, 40), 128, np.uint8)))
    assert all(len(a) == 0 for a in dog_blobs(np.full((64, 64), 128, np.uint8)))
