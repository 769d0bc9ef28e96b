"""Age-progression jobs through the real API and Ray pool: artefacts, provenance, errors, roles."""
from __future__ import annotations

import hashlib
import io
import json

from PIL import Image


def submit(service, inputs, params, role="artist"):
    return service.client.post("/v1/jobs", json={"type": "age_progression", "inputs": inputs, "params": params},
                               headers=service.auth(role))


def test_progression_job_stores_labelled_artifacts_with_provenance(service, fixtures_dir):
    photo = fixtures_dir / "faces" / "biden-2.jpg"
    relative = fixtures_dir / "faces" / "obama-2.jpg"
    child, parent = service.upload([photo, relative], role="artist")
    response = submit(service, [child["id"]], {"age": 6, "sex": "m", "target_ages": [10, 14],
                                               "family": [{"upload": parent["id"], "age": 40,
                                                           "relation": "father"}]})
    assert response.status_code == 202, response.text
    job = service.wait(response.json()["id"], role="artist")
    assert job["status"] == "succeeded" and job["progress"]["failed"] == 0
    [item] = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.auth("artist")).json()["items"]
    assert {"age-10.png", "age-14.png", "sheet.png", "provenance.json"} <= set(item["artifacts"])

    listed = service.client.get(f"/v1/jobs/{job['id']}/artifacts", headers=service.auth("artist")).json()
    assert {a["name"] for a in listed["artifacts"]} == set(item["artifacts"])
    image = service.client.get(f"/v1/jobs/{job['id']}/artifacts/age-14.png", headers=service.auth("artist"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size[0] > 0
    provenance = json.loads(service.client.get(f"/v1/jobs/{job['id']}/artifacts/provenance.json",
                                               headers=service.auth("artist")).content)
    text = json.dumps(provenance)
    assert hashlib.sha256(photo.read_bytes()).hexdigest() in text
    assert hashlib.sha256(relative.read_bytes()).hexdigest() in text
    assert service.client.get(f"/v1/jobs/{job['id']}/artifacts/age-14.png",
                              headers=service.auth("analyst")).status_code == 404
    assert service.client.get(f"/v1/jobs/{job['id']}/artifacts/nope.png",
                              headers=service.auth("artist")).status_code == 404


def test_bad_requests_are_refused_or_reported(service, fixtures_dir):
    group, landscape = service.upload([fixtures_dir / "faces" / "group-two-people.jpg",
                                       fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"], role="artist")
    below = submit(service, [group["id"]], {"age": 10, "sex": "f", "target_ages": [8]})
    assert below.status_code == 422 and "below the current age" in below.json()["message"]
    outside = submit(service, [group["id"]], {"age": 10, "sex": "f", "target_ages": [30]})
    assert outside.status_code == 422 and "outside 1-25" in outside.json()["message"]
    two = submit(service, [group["id"], landscape["id"]], {"age": 6, "sex": "f", "target_ages": [8]})
    assert two.status_code == 422 and "exactly one upload" in two.json()["message"]
    bad_sex = submit(service, [group["id"]], {"age": 6, "sex": "x", "target_ages": [8]})
    assert bad_sex.status_code == 422

    jobs = {name: submit(service, [upload["id"]], {"age": 6, "sex": "u", "target_ages": [8]}).json()["id"]
            for name, upload in (("group", group), ("landscape", landscape))}
    codes = {}
    for name, job_id in jobs.items():
        job = service.wait(job_id, role="artist")
        # the job's only item failed: the job failed, with that item's error
        [item] = service.client.get(f"/v1/jobs/{job_id}/result", headers=service.auth("artist")).json()["items"]
        assert item["status"] == "error" and item["error"]["message"]
        assert job["status"] == "failed" and job["progress"] == {"done": 1, "total": 1, "failed": 1}
        assert job["error"] == item["error"]["message"]
        codes[name] = item["error"]["code"]
    assert codes == {"group": "multiple_faces", "landscape": "no_face"}
    out_of_range = submit(service, [group["id"]], {"age": 6, "sex": "u", "target_ages": [8], "face_index": 5})
    job = service.wait(out_of_range.json()["id"], role="artist")
    assert job["status"] == "failed" and job["error"] == "face index 5 is out of range: 2 face(s) found"


def test_age_progression_is_for_artists_and_admins(service, fixtures_dir):
    for role in ("admin", "artist", "analyst", "service"):
        upload = service.upload([fixtures_dir / "faces" / "biden-2.jpg"], role=role)[0]
        response = submit(service, [upload["id"]], {"age": 6, "sex": "m", "target_ages": [8]}, role=role)
        assert response.status_code == (202 if role in ("admin", "artist") else 403), (role, response.text)


def test_the_label_cannot_be_replaced_dropped_or_injected_through_the_api(service, fixtures_dir):
    from agepro import APPROXIMATION_LABEL
    from agepro.pipeline import PNG_LABEL_KEY, PNG_PROVENANCE_KEY

    [photo] = service.upload([fixtures_dir / "faces" / "leslie-2.jpg"], role="artist")
    params = {"age": 8, "sex": "f", "target_ages": [12]}
    for replacing in ({"label": "MY OWN LABEL, age {age}"}, {"label": ""}, {"label_note": "x" * 61},
                      {"label_note": "a\x00b"}):
        response = submit(service, [photo["id"]], {**params, **replacing})
        assert response.status_code == 422, (replacing, response.text)
    response = submit(service, [photo["id"]], {**params, "label_note": "{age:>200000}{0}"})
    assert response.status_code == 202, response.text
    job = service.wait(response.json()["id"], role="artist")
    assert job["status"] == "succeeded"
    expected = f"{APPROXIMATION_LABEL}, age 12 - {{age:>200000}}{{0}}"
    provenance = service.client.get(f"/v1/jobs/{job['id']}/artifacts/provenance.json",
                                    headers=service.auth("artist")).content
    for name in ("age-12.png", "face-12.png", "overlay-12.png"):
        image = service.client.get(f"/v1/jobs/{job['id']}/artifacts/{name}", headers=service.auth("artist"))
        text = Image.open(io.BytesIO(image.content)).text
        assert text[PNG_LABEL_KEY] == expected, name
        assert text[PNG_PROVENANCE_KEY] == hashlib.sha256(provenance).hexdigest()
