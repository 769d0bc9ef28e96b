"""One call per image: detect -> mesh -> quality -> embed, for every face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biometrics._image import require_rgb
from biometrics.detection import KEYPOINT_NAMES, Face, detect_faces
from biometrics.embedding import embed
from biometrics.mesh import Mesh, face_mesh
from biometrics.face_quality import Quality, QualityGates, quality


@dataclass(frozen=True, eq=False)
class FaceAnalysis:
    face: Face
    mesh: Mesh | None
    quality: Quality
    embedding: np.ndarray | None  # None when the face failed the quality gates or embeddings were not asked for

    def to_dict(self, include_embedding: bool = True) -> dict:
        """JSON-ready: box [x, y, w, h], detector score, keypoints {name: [x, y]} (the detector's six),
        landmarks [[x, y], ...] (the 478 face-mesh points in MediaPipe order, image pixels; [] without a mesh),
        quality {score, passed, reasons, metrics} and, when asked and present, the 128-float embedding."""
        result: dict = {
            "box": list(self.face.box),
            "score": round(self.face.score, 4),
            "keypoints": {n: [round(x, 1), round(y, 1)] for n, (x, y) in
                          ((n, self.face.keypoints[n]) for n in KEYPOINT_NAMES)},
            "landmarks": [] if self.mesh is None else np.round(self.mesh.points.astype(np.float64), 1).tolist(),
            "quality": self.quality.to_dict(),
        }
        if include_embedding and self.embedding is not None:
            result["embedding"] = [float(v) for v in self.embedding]
        return result


def analyze(
    rgb: np.ndarray, embeddings: bool = True, gates: QualityGates = QualityGates(), min_face_px: int | None = None
) -> list[FaceAnalysis]:
    """Every detected face, left to right, with its mesh, quality and (if it passes the gates and `embeddings`)
    its descriptor. Faces that fail the gates are reported with their reasons, never dropped. `min_face_px`
    turns on the tiled search for small faces (see detect_faces)."""
    rgb = require_rgb(rgb)
    results = []
    for face in detect_faces(rgb, min_face_px=min_face_px):
        mesh = face_mesh(rgb, face)
        face_quality = quality(rgb, face, mesh, gates)
        embedding = embed(rgb, face, mesh) if embeddings and face_quality.passed else None
        results.append(FaceAnalysis(face=face, mesh=mesh, quality=face_quality, embedding=embedding))
    return results
