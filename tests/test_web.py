"""The web interface over HTTP (no browser): sessions, form tokens, refusals as pages, the report's paging and
filters in the database, review copies of one's own uploads, and the ZIP of a job's files. The browser journeys
are in test_web_browser.py."""
from __future__ import annotations

import io
import re
import time
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import create_key, make_settings

JSON = {"Accept": "application/json"}


def sign_in(client, key: str):
    response = client.post("/ui/sign-in", data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def form_token(client, path: str = "/ui/") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def browser(service) -> TestClient:
    """A second client on the same app: its own cookie jar, like another browser."""
    return TestClient(service.client.app)


def audit_rows(service, action: str, object_type: str) -> list:
    with service.storage.read() as unit:
        return [e for e in unit.audit.entries(10_000) if e.action == action and e.object_type == object_type]


def test_session_cookie_is_private_and_the_key_never_reaches_the_browser(service):
    client = browser(service)
    response = sign_in(client, service.keys["analyst"])
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS the cookie is Secure (below)
    assert service.keys["analyst"] not in cookie
    page = client.get("/ui/").text
    assert "test-analyst" in page and service.keys["analyst"] not in page

    secure = TestClient(service.client.app, base_url="https://testserver")
    assert "Secure" in sign_in(secure, service.keys["analyst"]).headers["set-cookie"]


def test_pages_need_a_session_and_a_bad_key_is_refused_in_plain_words(service):
    client = browser(service)
    response = client.get("/ui/jobs", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/sign-in?next=/ui/jobs"
    refused = client.post("/ui/sign-in", data={"api_key": "fimg_not-a-key"}, headers=JSON)
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_key"
    page = client.post("/ui/sign-in", data={"api_key": "fimg_not-a-key"})
    assert page.status_code == 401 and "unknown or revoked" in page.text and "Traceback" not in page.text
    assert any(e.detail["code"] == "invalid_key" for e in audit_rows(service, "refused", "route"))


def test_sign_in_goes_back_only_to_this_interface(service):
    client = browser(service)
    for target, expected in (("/ui/banks", "/ui/banks"), ("https://elsewhere.example/", "/ui/"),
                             ("//elsewhere.example/ui/x", "/ui/"), ("/v1/keys", "/ui/")):
        response = client.post("/ui/sign-in", data={"api_key": service.keys["analyst"], "next": target},
                               follow_redirects=False)
        assert response.headers["location"] == expected, target


def test_sign_out_ends_the_session_on_the_server(service):
    client = browser(service)
    sign_in(client, service.keys["artist"])
    old_cookie = client.cookies.get("fimg_session")
    assert client.post("/ui/sign-out", data={"csrf_token": form_token(client)}, follow_redirects=False
                       ).status_code == 303
    replay = browser(service)
    replay.cookies.set("fimg_session", old_cookie, path="/ui")
    assert replay.get("/ui/jobs", headers=JSON).json()["code"] == "session_expired"
    assert len(audit_rows(service, "sign_out", "web_session")) == 1


def test_revoking_a_key_ends_its_sessions(service):
    client = browser(service)
    key_id_before = {k.name: k.id for k in service.app.keys.list(service.app.keys.authenticate(service.keys["admin"]))}
    sign_in(client, service.keys["analyst2"])
    assert client.get("/ui/banks").status_code == 200
    admin = service.app.keys.authenticate(service.keys["admin"])
    service.app.keys.revoke(admin, key_id_before["test-analyst-2"])
    assert client.get("/ui/banks", headers=JSON).status_code == 401


def test_idle_sessions_expire(ray_session, tmp_path):
    from api import create_app

    app = create_app(make_settings(f"sqlite:///{tmp_path / 'fimg.db'}", tmp_path / "data", session_idle_seconds=1))
    with TestClient(app) as client:
        sign_in(client, create_key(app.state.application, "idle", "analyst"))
        assert client.get("/ui/jobs").status_code == 200
        time.sleep(1.5)
        response = client.get("/ui/jobs", headers=JSON)
        assert response.status_code == 401 and response.json()["code"] == "session_expired"


def test_a_form_without_this_sessions_token_is_refused(service):
    client, other = browser(service), browser(service)
    sign_in(client, service.keys["analyst"])
    sign_in(other, service.keys["analyst"])
    for data in ({"name": "no-token"}, {"name": "their-token", "csrf_token": form_token(other)}):
        response = client.post("/ui/banks", data=data, headers=JSON)
        assert response.status_code == 403 and response.json()["code"] == "csrf_token"
    foreign = client.post("/ui/banks", data={"name": "foreign", "csrf_token": form_token(client)},
                          headers={**JSON, "Origin": "https://elsewhere.example"})
    assert foreign.status_code == 403 and foreign.json()["code"] == "cross_origin"
    assert client.post("/ui/banks", data={"name": "mine", "csrf_token": form_token(client)},
                       headers=JSON).json() == {"redirect": "/ui/banks/mine"}
    assert [b.name for b in service.app.banks.list(service.app.keys.authenticate(service.keys["analyst"]))] == ["mine"]


def test_refusals_are_pages_with_the_error_vocabulary_and_headers_forbid_framing(service):
    client = browser(service)
    sign_in(client, service.keys["artist"])
    page = client.get("/ui/keys")
    assert page.status_code == 403 and "text/html" in page.headers["content-type"]
    assert "may not list API keys" in page.text and "<code>forbidden</code>" in page.text
    missing = client.get("/ui/jobs/" + "0" * 32)
    assert missing.status_code == 404 and "no job with id" in missing.text
    unknown = client.get("/ui/no-such-page")
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]
    bad_query = client.get("/ui/jobs?page=0")
    assert bad_query.status_code == 422 and "text/html" in bad_query.headers["content-type"]
    for response in (page, missing, client.get("/ui/static/app.js")):
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert client.get("/v1/jobs/" + "0" * 32).headers["content-type"] == "application/json"


def test_form_errors_name_their_field(service):
    client = browser(service)
    sign_in(client, service.keys["artist"])
    token = form_token(client, "/ui/age/new")
    response = client.post("/ui/age", data={"csrf_token": token, "age": "8", "sex": "m", "target_ages": "x"},
                           headers=JSON)
    assert response.status_code == 422 and response.json()["field"] == "target_ages"
    response = client.post("/ui/age", data={"csrf_token": token, "age": "8", "sex": "m", "target_ages": "12"},
                           headers=JSON)
    assert response.json()["field"] == "photo"


def _job_with_results(service, owner_key: str, results: list[dict]) -> str:
    who = service.app.keys.authenticate(owner_key)
    with service.storage.unit() as unit:
        job = unit.jobs.create(who.key_id, "match_batch", {"banks": ["b"]},
                               [{"name": f"item-{i:06d}.jpg", "input": {"hashes": {}}} for i in range(len(results))])
        unit.jobs.set_status(job.id, "running")
        unit.jobs.claim_items(job.id, "test-dispatcher", len(results), lease_s=60)
        unit.jobs.record_results(job.id, [{"idx": i, "status": "done", "result": r} for i, r in enumerate(results)],
                                 "test-dispatcher")
    return job.id


def _match(bank, record, kind, distance):
    return {"bank": bank, "record_id": record, "kind": kind, "distance": distance}


def test_report_pages_filter_sort_and_count_in_the_database(service):
    results = []
    for i in range(120):
        if i % 3 == 0:
            results.append({"status": "match", "matches": [_match("b", f"r{i}", "pdq", i % 7),
                                                           _match("a", f"s{i}", "md5", 0 if i % 2 else 9)]})
        else:
            results.append({"status": "no_match", "matches": []})
    job_id = _job_with_results(service, service.keys["analyst"], results)
    who = service.app.keys.authenticate(service.keys["analyst"])
    page = service.app.jobs.report_page(who, job_id, verdict="match", limit=25)
    assert page.total == 40 and len(page.items) == 25
    assert page.facets["verdict"] == {"match": 40, "no_match": 80}
    # the best match of an item is its nearest; ties go to the first bank by name
    assert page.facets["bank"] == {"a": 20, "b": 20} and page.facets["kind"] == {"md5": 20, "pdq": 20}
    by_distance = service.app.jobs.report_page(who, job_id, verdict="match", sort="distance", limit=500)
    distances = [min(m["distance"] for m in item["matches"]) for item in by_distance.items]
    assert distances == sorted(distances)
    last = service.app.jobs.report_page(who, job_id, sort="index", descending=True, limit=10, offset=110)
    assert [item["index"] for item in last.items] == list(range(9, -1, -1))
    assert service.app.jobs.report_page(who, job_id, bank="a", kind="md5").total == 20

    client = browser(service)
    sign_in(client, service.keys["analyst"])
    html = client.get(f"/ui/jobs/{job_id}?verdict=no_match&page=2").text
    assert "80 items match the filter · page 2 of 2" in html
    assert html.count('data-verdict="no_match"') == 30 and 'rel="next"' not in html and 'rel="prev"' in html
    other = browser(service)
    sign_in(other, service.keys["analyst2"])
    assert other.get(f"/ui/jobs/{job_id}").status_code == 404


def test_an_analyst_reviews_only_their_own_upload_obscured_until_revealed(service, fixtures_dir):
    photo = fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    [upload] = service.upload([photo])
    who = service.app.keys.authenticate(service.keys["analyst"])
    job = service.app.jobs.submit(who, "match_batch", _request([upload["id"]]), {"banks": [_bank(service, who)]})
    client = browser(service)
    sign_in(client, service.keys["analyst"])
    obscured = client.get(f"/ui/jobs/{job.id}/items/0/image")
    revealed = client.get(f"/ui/jobs/{job.id}/items/0/image?reveal=true")
    assert obscured.headers["content-type"] == "image/png"
    grey, colour = (np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
                    for r in (obscured, revealed))
    assert max(grey.shape[:2]) <= 640
    assert np.all(grey[..., 0] == grey[..., 1]) and not np.all(colour[..., 0] == colour[..., 1])
    assert np.abs(np.diff(grey, axis=1)).mean() < np.abs(np.diff(colour, axis=1)).mean() / 3  # blurred
    assert [e.detail["obscured"] for e in audit_rows(service, "read", "upload_image")] == [True]
    assert len(audit_rows(service, "reveal", "upload_image")) == 1

    admin = browser(service)
    sign_in(admin, service.keys["admin"])
    assert admin.get(f"/ui/jobs/{job.id}/items/0/image").status_code == 404  # an admin sees no one's pictures


def _request(ids):
    from fimg_service.usecases import job_request

    return job_request(ids)


def _bank(service, who) -> str:
    service.app.banks.create(who, "review-bank")
    return "review-bank"


def test_a_jobs_files_download_as_one_zip(service):
    who = service.app.keys.authenticate(service.keys["artist"])
    with service.storage.unit() as unit:
        job = unit.jobs.create(who.key_id, "age_progression", {}, [{"name": "p.jpg", "input": {}}])
        for name, data in (("sheet.png", b"png bytes"), ("provenance.json", b'{"input": {}}')):
            unit.jobs.put_artifact(job.id, name, service.storage.blobs.put(data), len(data), "image/png")
    client = browser(service)
    sign_in(client, service.keys["artist"])
    response = client.get(f"/ui/jobs/{job.id}/bundle.zip")
    assert response.headers["content-disposition"] == f'attachment; filename="job-{job.id}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.read("provenance.json") == b'{"input": {}}' and archive.read("sheet.png") == b"png bytes"
    assert len(audit_rows(service, "export", "artifacts")) == 1


@pytest.mark.parametrize("path", ["/ui/", "/ui/jobs", "/ui/age/new", "/ui/banks", "/ui/match/new", "/ui/faces",
                                  "/ui/keys", "/ui/audit"])
def test_every_page_renders_for_an_admin(service, path):
    client = browser(service)
    sign_in(client, service.keys["admin"])
    response = client.get(path)
    assert response.status_code == 200 and "<h1>" in response.text


def test_a_banks_owner_manages_its_case_team_from_the_bank_page(service):
    owner, colleague = browser(service), browser(service)
    sign_in(owner, service.keys["analyst"])
    sign_in(colleague, service.keys["analyst2"])
    owner.post("/ui/banks", data={"name": "case-17", "csrf_token": form_token(owner)}, headers=JSON)
    assert colleague.get("/ui/banks/case-17").status_code == 404  # not on the team: as if there were none
    added = owner.post("/ui/banks/case-17/members", headers=JSON,
                       data={"key_name": "test-analyst-2", "csrf_token": form_token(owner, "/ui/banks/case-17")})
    assert added.json() == {"redirect": "/ui/banks/case-17"}
    page = colleague.get("/ui/banks/case-17")
    assert page.status_code == 200 and 'data-member="test-analyst-2"' in page.text
    assert 'action="/ui/banks/case-17/members"' not in page.text  # a member does not manage the team
    refused = colleague.post("/ui/banks/case-17/members/test-analyst-2/remove", headers=JSON,
                             data={"csrf_token": form_token(colleague, "/ui/banks/case-17")})
    assert refused.status_code == 403 and refused.json()["code"] == "not_owner"
    unknown = owner.post("/ui/banks/case-17/members", headers=JSON,
                         data={"key_name": "nobody", "csrf_token": form_token(owner, "/ui/banks/case-17")})
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_key"
    owner.post("/ui/banks/case-17/members/test-analyst-2/remove", headers=JSON,
               data={"csrf_token": form_token(owner, "/ui/banks/case-17")})
    assert colleague.get("/ui/banks/case-17").status_code == 404
