"""Job types at their boundaries, without Ray: typed requests in, items and report rows out."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from fimg_service.errors import InvalidInput, NotFound
from fimg_service.storage.records import FaceRecord, UploadRecord
from workers import age_progression, faces, match_batch
from workers.registry import JobRequest, get_job_type, job_types


def resolver(*owned: str):
    def resolve(upload_ids) -> list[UploadRecord]:
        missing = [upload_id for upload_id in upload_ids if upload_id not in owned]
        if missing:
            raise NotFound(f"no upload with id {missing[0]!r}")
        return [UploadRecord(upload_id, 1, f"{upload_id}.jpg", upload_id[0] * 64, 10, "JPEG", 4, 4,
                             datetime.now(timezone.utc)) for upload_id in upload_ids]
    return resolve


def test_match_items_come_from_owned_uploads_and_validated_hashes():
    params = match_batch.MatchParams(banks=["b"])
    items = match_batch.build_items(JobRequest(inputs=("a1",), hashes=({"name": "h", "md5": "AB" * 16},)), params,
                                    resolver("a1"))
    assert items == [{"name": "a1.jpg", "input": {"upload": "a1", "sha256": "a" * 64}},
                     {"name": "h", "input": {"hashes": {"pdq": None, "md5": "ab" * 16, "sha1": None, "sha256": None,
                                                        "quality": None}}}]
    with pytest.raises(NotFound):
        match_batch.build_items(JobRequest(inputs=("other",)), params, resolver("a1"))
    with pytest.raises(InvalidInput, match="md5 must be 32 hexadecimal"):
        match_batch.build_items(JobRequest(hashes=({"name": "h", "md5": "xyz"},)), params, resolver())
    with pytest.raises(InvalidInput, match="needs `inputs`") as raised:
        match_batch.build_items(JobRequest(), params, resolver())
    assert raised.value.code == "invalid_job"


def test_params_are_validated_by_the_types_own_model_once():
    spec = get_job_type("match_batch")
    typed = spec.params({"banks": ["b"]})
    assert typed.dihedral is True and typed.threshold is None
    with pytest.raises(ValidationError):
        spec.params({"banks": ["b"], "threshold": 500})
    assert spec.references(typed).banks == ("b",)
    assert get_job_type("face_search").references(faces.SearchParams(gallery="g")).galleries == ("g",)
    with pytest.raises(InvalidInput, match="unknown job type"):
        get_job_type("nope")
    assert set(job_types()) == {"match_batch", "extract_faces", "face_search", "age_progression"}


def test_age_progression_takes_one_photo_and_its_relatives():
    params = age_progression.AgeParams(age=6, sex="f", target_ages=[10],
                                       family=[{"upload": "m1", "age": 12, "relation": "mother"}])
    [item] = age_progression.build_items(JobRequest(inputs=("c1",)), params, resolver("c1", "m1"))
    assert item["input"]["family"] == [{"sha256": "m" * 64, "age": 12.0, "relation": "mother"}]
    with pytest.raises(InvalidInput, match="exactly one upload"):
        age_progression.build_items(JobRequest(inputs=("c1", "m1")), params, resolver("c1", "m1"))


def test_a_face_exactly_at_the_threshold_is_a_match():
    rng = np.random.default_rng(7)
    probe = rng.normal(size=128)
    direction = rng.normal(size=128)
    direction /= np.linalg.norm(direction)
    at = probe + 0.5 * direction
    threshold = float(np.linalg.norm(at - probe))
    gallery = faces.gallery_matrix(threshold, [
        FaceRecord(1, "at-threshold", "A", None, "0" * 64, 0, tuple(at)),
        FaceRecord(2, "beyond", "B", None, "0" * 64, 0, tuple(probe + (threshold + 0.05) * direction)),
        FaceRecord(3, "far", "C", None, "0" * 64, 0, tuple(probe + 5 * direction)),
    ])
    ranked = faces.rank_subjects(probe, gallery, top_k=5, threshold=threshold)
    assert [(r["subject_id"], r["decision"]) for r in ranked] == [
        ("at-threshold", "match"), ("beyond", "possible"), ("far", "no_match")]


def test_report_csv_has_one_row_per_match_and_one_per_item_without():
    items = [
        {"index": 0, "name": "m.jpg", "status": "match", "sha256": "a" * 64, "pdq": "b" * 64, "quality": 90,
         "matches": [{"bank": "b", "record_id": "r1", "victim_id": "V", "kind": "pdq", "distance": 3},
                     {"bank": "b", "record_id": "r2", "victim_id": None, "kind": "md5", "distance": 0}]},
        {"index": 1, "name": "n.jpg", "status": "no_match", "sha256": "c" * 64, "pdq": None, "quality": None,
         "matches": []},
        {"index": 2, "name": "bad.jpg", "status": "error", "sha256": "d" * 64,
         "error": {"code": "corrupt", "message": "the image data is corrupt"}, "matches": []},
    ]
    rows = list(csv.DictReader(io.StringIO(match_batch.report_csv(items))))
    assert [(r["name"], r["record_id"], r["distance"]) for r in rows] == [
        ("m.jpg", "r1", "3"), ("m.jpg", "r2", "0"), ("n.jpg", "", ""), ("bad.jpg", "", "")]
    assert (rows[3]["status"], rows[3]["error_code"], rows[3]["error"]) == ("error", "corrupt",
                                                                            "the image data is corrupt")
    assert list(rows[0]) == list(match_batch.REPORT_COLUMNS)
