"""Process-wide, lazily loaded model instances.

Each model is built on first use and then reused for the life of the process, so a long-lived worker pays the
load once. MediaPipe graphs and dlib's network keep per-call state and are not reentrant: every call runs under
the model's own lock, so a thread pool may share them safely (calls on one model are serialised; different
models run concurrently).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

# mediapipe 0.10.14 calls a protobuf API deprecated in protobuf 4 on every process(); nothing to act on here.
warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning)


class _Shared(Generic[T]):
    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[T]:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            yield self._value


def _face_detector():
    import mediapipe as mp

    # Full-range model: trained for faces up to ~5 m, so it handles group and wide shots. The graph keeps
    # candidates down to 0.3 and detect_faces applies the caller's min_score.
    return mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.3)


def _close_up_face_detector():
    import mediapipe as mp

    # Short-range model: finds the faces filling the frame's height that the full-range model misses; on its own
    # it misses both faces of group-obama-biden.jpg and fires on the building behind obama-4.jpg, so it is only a
    # second pass (see detection.CLOSE_UP_MIN_SCORE).
    return mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)


def _face_mesh():
    import mediapipe as mp

    # static_image_mode: every call detects afresh (no tracking state carried from the previous image).
    # Up to 3 faces so that, on a tight crop of a group photo, the face asked for can be chosen by position.
    return mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=3, refine_landmarks=True, min_detection_confidence=0.5
    )


def _shape_predictor():
    import dlib

    from models.weights import shape_predictor_5_path

    return dlib.shape_predictor(str(shape_predictor_5_path()))


def _face_encoder():
    import dlib

    from models.weights import face_recognition_model_path

    return dlib.face_recognition_model_v1(str(face_recognition_model_path()))


face_detector: _Shared = _Shared(_face_detector)
close_up_face_detector: _Shared = _Shared(_close_up_face_detector)
face_mesh: _Shared = _Shared(_face_mesh)
shape_predictor: _Shared = _Shared(_shape_predictor)
face_encoder: _Shared = _Shared(_face_encoder)


def load_models() -> None:
    """Build every model now (e.g. when a worker starts) instead of on the first face."""
    for model in (face_detector, close_up_face_detector, face_mesh, shape_predictor, face_encoder):
        with model.use():
            pass
