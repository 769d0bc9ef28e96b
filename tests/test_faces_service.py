"""Face galleries and face jobs through the real API and Ray pool."""
from __future__ import annotations

import pytest

SUBJECTS = {"obama": "obama-1.jpg", "biden": "biden-1.jpg", "harington": "harington-2.jpg", "leslie": "leslie-1.jpg"}
GROUPS = {"group-obama-biden.jpg": ["biden", "obama"], "group-harington-leslie.jpg": None}


@pytest.fixture
def gallery(service, fixtures_dir):
    faces = fixtures_dir / "faces"
    response = service.client.post("/v1/galleries", json={"name": "case-1"}, headers=service.auth("analyst"))
    assert response.status_code == 201, response.text
    uploads = service.upload([faces / name for name in SUBJECTS.values()])
    for (subject, _), upload in zip(SUBJECTS.items(), uploads):
        body = {"subject_id": subject, "label": subject.title(), "photos": [{"upload": upload["id"],
                                                                            "age_at_photo": 50}]}
        enrolled = service.client.post("/v1/galleries/case-1/subjects", json=body, headers=service.auth("analyst"))
        assert enrolled.status_code == 201, enrolled.text
        assert len(enrolled.json()["enrolled"]) == 1
    return "case-1"


def test_group_photos_match_their_subjects_at_rank_one(service, fixtures_dir, gallery):
    groups = service.upload([fixtures_dir / "faces" / name for name in GROUPS])
    job = service.client.post("/v1/jobs", json={"type": "face_search", "inputs": [u["id"] for u in groups],
                                                "params": {"gallery": gallery, "top_k": 3}},
                              headers=service.auth("analyst"))
    assert job.status_code == 202, job.text
    assert service.wait(job.json()["id"])["status"] == "succeeded"
    items = service.client.get(f"/v1/jobs/{job.json()['id']}/result", headers=service.auth("analyst")).json()["items"]
    found = {}
    for item in items:
        assert item["status"] == "match"
        top = [face["candidates"][0] for face in item["faces"]]
        assert all(c["decision"] == "match" and c["rank"] == 1 for c in top)
        assert all(len(face["candidates"]) == 3 for face in item["faces"])
        found[item["name"]] = sorted(c["subject_id"] for c in top)
    assert found == {"group-obama-biden.jpg": ["biden", "obama"], "group-harington-leslie.jpg": ["harington", "leslie"]}


def test_extract_faces_returns_embeddings_only_when_asked(service, fixtures_dir):
    uploads = service.upload([fixtures_dir / "faces" / "obama-2.jpg",
                              fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"])
    for embeddings in (False, True):
        job = service.client.post("/v1/jobs", json={"type": "extract_faces", "inputs": [u["id"] for u in uploads],
                                                    "params": {"embeddings": embeddings}},
                                  headers=service.auth("analyst")).json()
        service.wait(job["id"])
        items = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.auth("analyst")).json()["items"]
        face, landscape = items
        assert landscape["faces"] == [] and landscape["status"] == "done"
        [found] = face["faces"]
        assert len(found["landmarks"]) == 478 and found["quality"]["passed"]
        assert ("embedding" in found) is embeddings


def test_enrolment_rejects_unusable_photos_and_subjects_can_be_deleted(service, fixtures_dir, gallery):
    landscape, group = service.upload([fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg",
                                       fixtures_dir / "faces" / "group-two-people.jpg"])
    body = {"subject_id": "x", "photos": [{"upload": landscape["id"]}]}
    response = service.client.post(f"/v1/galleries/{gallery}/subjects", json=body, headers=service.auth("analyst"))
    assert response.status_code == 422 and response.json()["rejected"][0]["code"] == "no_face"
    body = {"subject_id": "x", "photos": [{"upload": group["id"]}]}
    response = service.client.post(f"/v1/galleries/{gallery}/subjects", json=body, headers=service.auth("analyst"))
    [rejected] = response.json()["rejected"]
    assert response.status_code == 422 and rejected["code"] == "multiple_faces" and "face_index" in rejected["message"]

    listed = service.client.get(f"/v1/galleries/{gallery}/subjects", headers=service.auth("analyst")).json()
    assert {s["subject_id"] for s in listed["subjects"]} == set(SUBJECTS)
    assert all("embedding" not in f for s in listed["subjects"] for f in s["faces"])
    with_embeddings = service.client.get(f"/v1/galleries/{gallery}/subjects?include_embeddings=true",
                                         headers=service.auth("analyst")).json()
    assert all(len(f["embedding"]) == 128 for s in with_embeddings["subjects"] for f in s["faces"])

    deleted = service.client.delete(f"/v1/galleries/{gallery}/subjects/obama", headers=service.auth("analyst"))
    assert deleted.json() == {"removed": 1}
    assert service.client.delete(f"/v1/galleries/{gallery}/subjects/obama",
                                 headers=service.auth("analyst")).status_code == 404
    with service.storage.engine.connect() as conn:
        import sqlalchemy as sa
        left = conn.execute(sa.text("SELECT count(*) FROM gallery_faces WHERE subject_id = 'obama'")).scalar()
    assert left == 0


def test_face_routes_and_jobs_are_for_analysts_and_admins(service, fixtures_dir):
    service.client.post("/v1/galleries", json={"name": "shared"}, headers=service.auth("admin"))
    member = service.client.put("/v1/galleries/shared/members/test-analyst", headers=service.auth("admin"))
    assert member.status_code == 200
    for role in ("admin", "analyst", "artist", "service"):
        upload = service.upload([fixtures_dir / "faces" / "obama-2.jpg"], role=role)[0]
        checks = [
            ("POST", "/v1/galleries", {"json": {"name": f"g-{role}"}}, 201),
            ("GET", "/v1/galleries", {}, 200),
            ("GET", "/v1/galleries/shared/subjects", {}, 200),
            ("POST", "/v1/galleries/shared/subjects",
             {"json": {"subject_id": f"s-{role}", "photos": [{"upload": upload["id"]}]}}, 201),
            ("DELETE", f"/v1/galleries/shared/subjects/s-{role}", {}, 200),
            ("POST", "/v1/jobs", {"json": {"type": "extract_faces", "inputs": [upload["id"]]}}, 202),
            ("POST", "/v1/jobs", {"json": {"type": "face_search", "inputs": [upload["id"]],
                                           "params": {"gallery": "shared"}}}, 202),
        ]
        for method, path, kwargs, ok in checks:
            response = service.client.request(method, path, headers=service.auth(role), **kwargs)
            expected = ok if role in ("admin", "analyst") else 403
            assert response.status_code == expected, (role, method, path, response.text)
    assert service.client.get("/v1/galleries").status_code == 401
