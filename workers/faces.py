"""Face jobs: `extract_faces` (faces, landmarks, quality, optional embeddings) and `face_search` (1:N against a
gallery). Embeddings are biometric data: analyst and admin only, and returned only when asked for."""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from biometrics import SAME_PERSON_THRESHOLD, analyze
from imaging import DecodeError, decode, digests
from storage import Principal, Store
from workers.inputs import load_upload_item, upload_items
from workers.registry import ItemOutcome, JobInputError, JobSetupError, JobType

FACE_ROLES = ("admin", "analyst")
POSSIBLE_MARGIN = 0.1  # a candidate within threshold + margin is worth an analyst's look, not a match


class ExtractParams(BaseModel):
    embeddings: bool = Field(False, description="Include each passing face's 128-d embedding")


class SearchParams(BaseModel):
    gallery: str = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=100)
    threshold: float | None = Field(None, gt=0, le=2, description="Default: the gallery's, else 0.6")


def build_items(store: Store, who: Principal, request: Any, params: BaseModel) -> list[dict]:
    if isinstance(params, SearchParams):
        store.get_gallery(params.gallery)
    if request.hashes:
        raise JobInputError("face jobs take `inputs` (upload ids), not `hashes`")
    items = upload_items(store, who, request.inputs)
    if not items:
        raise JobInputError("a face job needs `inputs` (upload ids)")
    return items


def face_records(data: bytes, embeddings: bool) -> tuple[dict, list]:
    """Decode and analyse one image; returns the item header and the per-face analyses."""
    header = {"sha256": digests(data).sha256}
    decoded = decode(data, scale_high_bit_depth=True)
    header.update(width=decoded.width, height=decoded.height)
    return header, analyze(decoded.rgb, embeddings=embeddings)


def run_extract(_context: None, params: dict, item: dict) -> ItemOutcome:
    try:
        header, faces = face_records(item["data"], params.get("embeddings", False))
    except DecodeError as exc:
        return ItemOutcome(ok=False, result={"status": "error", "error": str(exc), "error_code": exc.code})
    return ItemOutcome(ok=True, result={
        **header, "status": "done",
        "faces": [face.to_dict(include_embedding=params.get("embeddings", False)) for face in faces]})


def _gallery(store: Store, params: dict):
    try:
        return store.get_gallery(params["gallery"])
    except LookupError as exc:
        raise JobSetupError(str(exc)) from exc


def search_context_key(store: Store, params: dict) -> str:
    gallery = _gallery(store, params)
    return f"gallery:{gallery.name}@{gallery.revision}"


def prepare_search(store: Store, params: dict) -> dict:
    gallery = _gallery(store, params)
    faces = store.gallery_faces(gallery.name)
    payload = {
        "threshold": gallery.threshold or SAME_PERSON_THRESHOLD,
        "subjects": [f.subject_id for f in faces],
        "labels": {f.subject_id: f.label for f in faces},
        "embeddings": np.asarray([f.embedding for f in faces], dtype=np.float64).reshape(-1, 128),
    }
    return payload


def rank_subjects(embedding: np.ndarray, gallery: dict, top_k: int, threshold: float) -> list[dict]:
    """Best distance per subject (a subject may have several enrolled faces), nearest first."""
    if not len(gallery["subjects"]):
        return []
    distances = np.linalg.norm(gallery["embeddings"] - embedding, axis=1)
    best: dict[str, float] = {}
    for subject, dist in zip(gallery["subjects"], distances.tolist()):
        best[subject] = min(dist, best.get(subject, np.inf))
    ranked = sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:top_k]
    return [{"rank": rank, "subject_id": subject, "label": gallery["labels"].get(subject),
             "distance": round(dist, 4), "decision": decide(dist, threshold)}
            for rank, (subject, dist) in enumerate(ranked, start=1)]


def decide(dist: float, threshold: float) -> str:
    if dist <= threshold:
        return "match"
    if dist <= threshold + POSSIBLE_MARGIN:
        return "possible"
    return "no_match"


def run_search(gallery: dict, params: dict, item: dict) -> ItemOutcome:
    threshold = params.get("threshold") or gallery["threshold"]
    try:
        header, faces = face_records(item["data"], embeddings=True)
    except DecodeError as exc:
        return ItemOutcome(ok=False, result={"status": "error", "error": str(exc), "error_code": exc.code})
    out = []
    for index, face in enumerate(faces):
        entry = {"face_index": index, **face.to_dict(include_embedding=False)}
        entry.pop("landmarks", None)
        if face.embedding is None:
            entry.update(decision="low_quality", candidates=[])
        else:
            entry["candidates"] = rank_subjects(face.embedding, gallery, params.get("top_k", 5), threshold)
            entry["decision"] = entry["candidates"][0]["decision"] if entry["candidates"] else "no_match"
        out.append(entry)
    status = "match" if any(f["decision"] == "match" for f in out) else ("no_face" if not out else "no_match")
    return ItemOutcome(ok=True, result={**header, "status": status, "threshold": threshold, "faces": out})


JOB_TYPES = [
    JobType(name="extract_faces", params_model=ExtractParams, roles=FACE_ROLES, build_items=build_items,
            load_item=load_upload_item, run_item=run_extract),
    JobType(name="face_search", params_model=SearchParams, roles=FACE_ROLES, build_items=build_items,
            load_item=load_upload_item, run_item=run_search, context_key=search_context_key,
            prepare=prepare_search),
]
