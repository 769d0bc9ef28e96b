"""Face jobs: `extract_faces` (faces, landmarks, quality, optional embeddings) and `face_search` (1:N against a
gallery). Embeddings are biometric data: analyst and admin only, and returned only when asked for."""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from biometrics import SAME_PERSON_THRESHOLD, analyze, decide
from imaging import DecodeError, decode, digests
from fimg_service.errors import SetupFailed
from fimg_service.roles import CURATORS
from workers.registry import (ItemOutcome, JobRequest, JobType, References, Sources, UploadResolver, invalid_job,
                              item_error, load_upload_item, upload_items)



class ExtractParams(BaseModel):
    embeddings: bool = Field(False, description="Include each passing face's 128-d embedding")


class SearchParams(BaseModel):
    gallery: str = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=100)
    threshold: float | None = Field(None, gt=0, le=2,
                                    description=f"Default: the gallery's, else {SAME_PERSON_THRESHOLD}")


def search_references(params: SearchParams) -> References:
    return References(galleries=(params.gallery,))


def build_items(request: JobRequest, _params: BaseModel, uploads: UploadResolver) -> list[dict]:
    if request.hashes:
        raise invalid_job("face jobs take `inputs` (upload ids), not `hashes`")
    items = upload_items(uploads, request.inputs)
    if not items:
        raise invalid_job("a face job needs `inputs` (upload ids)")
    return items


def face_records(data: bytes, embeddings: bool) -> tuple[dict, list]:
    """Decode and analyse one image; returns the item header and the per-face analyses."""
    header = {"sha256": digests(data).sha256}
    decoded = decode(data, scale_high_bit_depth=True)
    header.update(width=decoded.width, height=decoded.height)
    return header, analyze(decoded.rgb, embeddings=embeddings)


def run_extract(_context: None, params: ExtractParams, item: dict) -> ItemOutcome:
    try:
        header, faces = face_records(item["data"], params.embeddings)
    except DecodeError as exc:
        return item_error(exc.code, str(exc))
    return ItemOutcome(ok=True, result={
        **header, "status": "done",
        "faces": [face.to_dict(include_embedding=params.embeddings) for face in faces]})


def _gallery(storage, params: dict):
    with storage.read() as unit:
        gallery = unit.galleries.get(params["gallery"])
    if gallery is None:
        raise SetupFailed(f"no gallery named {params['gallery']!r}")
    return gallery


def search_context_key(storage, params: dict) -> str:
    gallery = _gallery(storage, params)
    return f"gallery:{gallery.name}.{gallery.created_at.timestamp()}@{gallery.revision}"


def prepare_search(sources: Sources, params: dict) -> dict:
    gallery = _gallery(sources.storage, params)
    with sources.storage.read() as unit:
        faces = unit.galleries.faces(gallery.id)
    return gallery_matrix(gallery.threshold, faces)


def gallery_matrix(threshold: float | None, faces: list) -> dict:
    """What a search needs of a gallery: its threshold and every enrolled face's subject and embedding."""
    payload = {
        "threshold": threshold or SAME_PERSON_THRESHOLD,
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


def run_search(gallery: dict, params: SearchParams, item: dict) -> ItemOutcome:
    threshold = params.threshold or gallery["threshold"]
    try:
        header, faces = face_records(item["data"], embeddings=True)
    except DecodeError as exc:
        return item_error(exc.code, str(exc))
    out = []
    for index, face in enumerate(faces):
        entry = {"face_index": index, **face.to_dict(include_embedding=False)}
        entry.pop("landmarks", None)
        if face.embedding is None:
            entry.update(decision="low_quality", candidates=[])
        else:
            entry["candidates"] = rank_subjects(face.embedding, gallery, params.top_k, threshold)
            entry["decision"] = entry["candidates"][0]["decision"] if entry["candidates"] else "no_match"
        out.append(entry)
    status = "match" if any(f["decision"] == "match" for f in out) else ("no_face" if not out else "no_match")
    return ItemOutcome(ok=True, result={**header, "status": status, "threshold": threshold, "faces": out})


JOB_TYPES = [
    JobType(name="extract_faces", params_model=ExtractParams, roles=CURATORS, build_items=build_items,
            load_item=load_upload_item, run_item=run_extract),
    JobType(name="face_search", params_model=SearchParams, roles=CURATORS, build_items=build_items,
            references=search_references, load_item=load_upload_item, run_item=run_search,
            context_key=search_context_key,
            prepare=prepare_search),
]
