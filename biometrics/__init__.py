"""Face biometrics core: pure functions over HxWx3 uint8 RGB arrays.

    faces = detect_faces(rgb)                 # list[Face], left to right
    face = choose_face(faces, face_index)     # the face to use, or FaceChoiceError (no_face, multiple_faces, ...)
    mesh = face_mesh(rgb, face)               # 478 MediaPipe landmarks in image pixels, or None
    q = quality(rgb, face, mesh)              # Quality: score, passed, reasons, metrics
    vector = embed(rgb, face)                 # (128,) dlib descriptor
    same_person(distance(vector, other), SAME_PERSON_THRESHOLD)   # distance <= threshold
    decide(distance, threshold)               # "match" | "possible" (within POSSIBLE_MARGIN beyond) | "no_match"
    analyze(rgb)                              # all of the above per face
    calibrate(embeddings, labels)             # genuine/impostor distances, EER, threshold at a target FMR

Mesh index sets (face oval, eyes, irises, midline points) live in `biometrics.topology`. Models load lazily, once
per process, and are shared across threads under locks; `load_models()` loads them up front (e.g. when a worker
starts).
"""

from biometrics._models import load_models
from biometrics.analysis import FaceAnalysis, analyze
from biometrics.calibration import Calibration, calibrate
from biometrics.decision import POSSIBLE_MARGIN, decide, same_person
from biometrics.detection import KEYPOINT_NAMES, Face, detect_faces
from biometrics.embedding import SAME_PERSON_THRESHOLD, distance, embed
from biometrics.face_choice import FaceChoiceError, choose_face
from biometrics.face_quality import Quality, QualityGates, quality
from biometrics.mesh import Mesh, face_mesh
from biometrics.topology import FACE_OVAL

__all__ = [
    "FACE_OVAL",
    "KEYPOINT_NAMES",
    "POSSIBLE_MARGIN",
    "SAME_PERSON_THRESHOLD",
    "Calibration",
    "Face",
    "FaceAnalysis",
    "FaceChoiceError",
    "Mesh",
    "Quality",
    "QualityGates",
    "analyze",
    "calibrate",
    "choose_face",
    "decide",
    "detect_faces",
    "distance",
    "embed",
    "face_mesh",
    "load_models",
    "quality",
    "same_person",
]
