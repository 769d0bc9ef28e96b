"""Face biometrics core: pure functions over HxWx3 uint8 RGB arrays.

    faces = detect_faces(rgb)                 # list[Face], left to right
    mesh = face_mesh(rgb, faces[0])           # 478 MediaPipe landmarks in image pixels, or None
    q = quality(rgb, faces[0], mesh)          # Quality: score, passed, reasons, metrics
    vector = embed(rgb, faces[0])             # (128,) dlib descriptor
    distance(vector, other) < SAME_PERSON_THRESHOLD
    analyze(rgb)                              # all of the above per face
    calibrate(embeddings, labels)             # genuine/impostor distances, EER, threshold at a target FMR

Models load lazily, once per process, and are shared across threads under locks; `load_models()` loads them
up front (e.g. when a worker starts).
"""

from biometrics._models import load_models
from biometrics.analysis import FaceAnalysis, analyze
from biometrics.calibration import Calibration, calibrate
from biometrics.detection import KEYPOINT_NAMES, Face, detect_faces
from biometrics.embedding import SAME_PERSON_THRESHOLD, distance, embed
from biometrics.face_quality import Quality, QualityGates, quality
from biometrics.mesh import FACE_OVAL, Mesh, face_mesh

__all__ = [
    "FACE_OVAL",
    "KEYPOINT_NAMES",
    "SAME_PERSON_THRESHOLD",
    "Calibration",
    "Face",
    "FaceAnalysis",
    "Mesh",
    "Quality",
    "QualityGates",
    "analyze",
    "calibrate",
    "detect_faces",
    "distance",
    "embed",
    "face_mesh",
    "load_models",
    "quality",
]
