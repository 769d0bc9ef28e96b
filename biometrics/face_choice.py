"""Which face of a photo to use: the one rule for every caller that works on a single face."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from biometrics.detection import Face

F = TypeVar("F", Face, Mapping)


class FaceChoiceError(ValueError):
    """No usable face for the request. Codes: ``no_face``, ``multiple_faces``, ``face_index_out_of_range``."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def choose_face(faces: Sequence[F], face_index: int | None) -> F:
    """``faces[face_index]``; without an index, the photo's only face.

    ``faces``: left to right, as ``detect_faces`` returns them, as ``Face`` values or in their JSON form (a mapping
    with a ``box``, e.g. ``FaceAnalysis.to_dict()``). Raises ``FaceChoiceError``.
    """
    if not faces:
        raise FaceChoiceError("no_face", "no face was found in the photo")
    if face_index is None:
        if len(faces) > 1:
            boxes = ", ".join(f"{i}: box {tuple(int(v) for v in _box(face))}" for i, face in enumerate(faces))
            raise FaceChoiceError(
                "multiple_faces",
                f"{len(faces)} faces found ({boxes}); pass a face index 0-{len(faces) - 1} (0 = leftmost)",
            )
        face_index = 0
    if not 0 <= face_index < len(faces):
        raise FaceChoiceError(
            "face_index_out_of_range", f"face index {face_index} is out of range: {len(faces)} face(s) found"
        )
    return faces[face_index]


def _box(face: Face | Mapping) -> Sequence[float]:
    return face["box"] if isinstance(face, Mapping) else face.box
