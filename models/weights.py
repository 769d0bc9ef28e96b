"""Locators for model weights bundled in installed wheels; nothing is ever downloaded.

- dlib models (Davis King, github.com/davisking/dlib-models) come from the `face-recognition-models` wheel
  (Adam Geitgey, MIT). Its `__init__` imports `pkg_resources`, which modern setuptools no longer ships, so the
  package directory is found with `importlib.util.find_spec` and the package is never imported.
- MediaPipe face detection and face mesh models ship inside the `mediapipe` wheel and are loaded by
  `mp.solutions`; they need no locator.

The 68-point dlib landmark model that the same wheel carries is deliberately not exposed: its training data
(iBUG 300-W) excludes commercial use. Only the 5-point model is used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DLIB_FACE_RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_SHAPE_PREDICTOR_5 = "shape_predictor_5_face_landmarks.dat"

_ALLOWED_DLIB_WEIGHTS = frozenset({DLIB_FACE_RECOGNITION, DLIB_SHAPE_PREDICTOR_5})


class WeightsNotFound(FileNotFoundError):
    """A bundled weight file is missing: the wheel that carries it is not installed."""


def dlib_weights(name: str) -> Path:
    """Path of a dlib weight file inside the installed `face_recognition_models` package."""
    if name not in _ALLOWED_DLIB_WEIGHTS:
        raise ValueError(f"{name!r} is not an allowed dlib weight file; allowed: {sorted(_ALLOWED_DLIB_WEIGHTS)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFound("package face-recognition-models is not installed")
    for package_dir in spec.submodule_search_locations:
        path = Path(package_dir) / "models" / name
        if path.is_file():
            return path
    raise WeightsNotFound(f"{name} not found in face_recognition_models")


def face_recognition_model_path() -> Path:
    """dlib ResNet face descriptor (128-D, trained for a 0.6 Euclidean threshold on LFW)."""
    return dlib_weights(DLIB_FACE_RECOGNITION)


def shape_predictor_5_path() -> Path:
    """dlib 5-point landmark model (eye corners and nose base) used to align the 150 px face chip."""
    return dlib_weights(DLIB_SHAPE_PREDICTOR_5)
