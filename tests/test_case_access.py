"""Case-level access: a bank or gallery is seen and changed only by its owner, its members and admins.

Another analyst gets 404 for every route that names a case it is not on (exactly as for a name that does not
exist, so names leak nothing) and the refusal is audited; a member may do what the owner does but change the
team (403); service keys look up and match only in banks they are members of; embeddings are read only by the
gallery's owner and members, admins included.
"""
from __future__ import annotations

import pytest

from fimg_service.usecases import LOCAL_ADMIN

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def audit_rows(service) -> list:
    with service.storage.read() as unit:
        return unit.audit.entries(limit=100_000)


def bank_routes(service) -> dict:
    """Every route that names bank `b`, with a body that would succeed for someone on its team."""
    csv = {"content": f"record_id,md5\nr-new,{'1' * 32}\n", "headers": {"Content-Type": "text/csv"}}
    return {
        "show": ("GET", "/hma/c/bank/b", {}),
        "import": ("POST", "/v1/banks/b/records", csv),
        "enrol": ("POST", "/hma/c/bank/b/signal", {"json": {"md5": "2" * 32}}),
        "export": ("GET", "/v1/banks/b/records", {}),
        "read record": ("GET", f"/hma/c/bank/b/content/{service.record_id}", {}),
        "lookup": ("GET", f"/v1/lookup?pdq={PDQ}&banks=b", {}),
        "match": ("POST", "/v1/jobs", {"json": {"type": "match_batch", "hashes": [{"name": "q", "md5": "0" * 32}],
                                                "params": {"banks": ["b"]}}}),
        "bank members": ("GET", "/v1/banks/b/members", {}),
    }


def gallery_routes(subject: str) -> dict:
    return {
        "subjects": ("GET", "/v1/galleries/g/subjects", {}),
        "embeddings": ("GET", "/v1/galleries/g/subjects?include_embeddings=true", {}),
        "gallery members": ("GET", "/v1/galleries/g/members", {}),
        "search": ("POST", "/v1/jobs", {"json": {"type": "face_search", "inputs": ["UPLOAD"],
                                                 "params": {"gallery": "g"}}}),
        "delete subject": ("DELETE", f"/v1/galleries/g/subjects/{subject}", {}),
    }


def call(service, headers: dict, method: str, path: str, kwargs: dict, upload: str = ""):
    kwargs = dict(kwargs)
    kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
    if "json" in kwargs and upload:
        kwargs["json"] = {**kwargs["json"], "inputs": [upload]} if "inputs" in kwargs["json"] else kwargs["json"]
    return service.client.request(method, path, **kwargs)


@pytest.fixture
def cases(service, fixtures_dir):
    """Bank `b` (one record) and gallery `g` (subject `s1`), both owned by test-analyst."""
    owner = service.auth("analyst")
    assert service.client.post("/v1/banks", json={"name": "b"}, headers=owner).status_code == 201
    added = service.client.post("/hma/c/bank/b/signal", json={"pdq": PDQ, "md5": "0" * 32}, headers=owner)
    service.record_id = added.json()["id"]
    assert service.client.post("/v1/galleries", json={"name": "g"}, headers=owner).status_code == 201
    photo = fixtures_dir / "faces" / "obama-1.jpg"
    service.photo = {role: service.upload([photo], role=role)[0]["id"] for role in ("analyst", "analyst2")}
    enrolled = service.client.post("/v1/galleries/g/subjects", headers=owner, json={
        "subject_id": "s1", "photos": [{"upload": service.photo["analyst"]}]})
    assert enrolled.status_code == 201, enrolled.text
    return service


def test_another_analyst_sees_nothing_of_a_case_and_every_refusal_is_audited(cases):
    service = cases
    other = service.auth("analyst2")
    assert service.client.get("/v1/banks", headers=other).json() == []
    assert service.client.get("/hma/c/banks", headers=other).json() == []
    assert service.client.get("/v1/galleries", headers=other).json() == []
    assert service.client.get("/hma/m/index/status", headers=other).json()["md5"]["size"] == 0
    unknown = service.client.get("/v1/banks/nope/records", headers=other)
    routes = {**bank_routes(service), **gallery_routes("s1"),
              "add member": ("PUT", "/v1/banks/b/members/test-analyst-2", {}),
              "remove member": ("DELETE", "/v1/galleries/g/members/test-analyst-2", {})}
    for what, (method, path, kwargs) in routes.items():
        before = len(audit_rows(service))
        response = call(service, other, method, path, kwargs, service.photo["analyst2"])
        assert response.status_code == 404, (what, response.text)
        assert set(response.json()) == set(unknown.json()) and "not_found" in response.json()["code"], what
        rows = audit_rows(service)[before:]
        assert [(r.action, r.actor_name, r.detail["status"]) for r in rows] == [
            ("refused", "test-analyst-2", 404)], what
    with service.storage.read() as unit:
        assert len(unit.banks.records(unit.banks.get("b").id)) == 1, "nothing was planted"
    subjects = service.client.get("/v1/galleries/g/subjects", headers=service.auth("analyst")).json()["subjects"]
    assert [s["subject_id"] for s in subjects] == ["s1"], "nothing was deleted"


def test_a_member_does_what_the_owner_does_but_change_the_team(cases):
    service = cases
    owner, member = service.auth("analyst"), service.auth("analyst2")
    for kind in ("banks", "galleries"):
        added = service.client.put(f"/v1/{kind}/{kind[0]}/members/test-analyst-2", headers=owner)
        assert added.status_code == 200, added.text
        assert (added.json()["name"], added.json()["role"]) == ("test-analyst-2", "analyst")
        team = service.client.get(f"/v1/{kind}/{kind[0]}/members", headers=member).json()
        assert team["owner"]["name"] == "test-analyst" and [m["name"] for m in team["members"]] == ["test-analyst-2"]
    assert [b["name"] for b in service.client.get("/v1/banks", headers=member).json()] == ["b"]
    assert [g["name"] for g in service.client.get("/v1/galleries", headers=member).json()] == ["g"]
    for what, (method, path, kwargs) in {**bank_routes(service), **gallery_routes("s1")}.items():
        response = call(service, member, method, path, kwargs, service.photo["analyst2"])
        assert response.status_code < 300, (what, response.text)
    embeddings = service.client.get("/v1/galleries/g/subjects?include_embeddings=true", headers=member).json()
    assert embeddings["subjects"] == [], "the member deleted the subject above"

    for method in ("PUT", "DELETE"):
        refused = service.client.request(method, "/v1/banks/b/members/test-service", headers=member)
        assert (refused.status_code, refused.json()["code"]) == (403, "not_owner")
        assert (audit_rows(service)[-1].action, audit_rows(service)[-1].detail["status"]) == ("refused", 403)

    before = len(audit_rows(service))
    assert service.client.delete("/v1/banks/b/members/test-analyst-2", headers=owner).status_code == 204
    assert [(r.action, r.object_type, r.object_id) for r in audit_rows(service)[before:]] == [
        ("remove_member", "bank", "b")]
    assert service.client.get("/v1/banks/b/records", headers=member).status_code == 404
    again = service.client.delete("/v1/banks/b/members/test-analyst-2", headers=owner)
    assert (again.status_code, again.json()["code"]) == (404, "not_a_member")


def test_service_keys_match_only_in_banks_they_are_members_of_and_never_join_galleries(cases):
    service = cases
    owner, machine = service.auth("analyst"), service.auth("service")
    lookup = f"/v1/lookup?pdq={PDQ}&banks=b"
    assert service.client.get(lookup, headers=machine).status_code == 404
    assert service.client.get(f"/hma/m/raw_lookup?signal_type=md5&signal={'0' * 32}", headers=machine).json() == {
        "matches": []}, "no bank named: every bank the key sees, none here"
    assert service.client.put("/v1/banks/b/members/test-service", headers=owner).status_code == 200
    assert [m["content_id"] for m in service.client.get(lookup, headers=machine).json()["matches"]] == [
        service.record_id]
    assert service.client.get(f"/hma/m/raw_lookup?signal_type=md5&signal={'0' * 32}", headers=machine).json() == {
        "matches": [service.record_id]}
    job = service.client.post("/v1/jobs", headers=machine, json={
        "type": "match_batch", "hashes": [{"name": "q", "md5": "0" * 32}], "params": {"banks": ["b"]}})
    assert job.status_code == 202, job.text
    assert service.client.get("/v1/banks/b/records", headers=machine).status_code == 403, "curation is by role"
    refused = service.client.put("/v1/galleries/g/members/test-service", headers=owner)
    assert (refused.status_code, refused.json()["code"]) == (422, "role_cannot_be_member")
    artist = service.client.put("/v1/banks/b/members/test-artist", headers=owner)
    assert (artist.status_code, artist.json()["code"]) == (422, "role_cannot_be_member")
    unknown = service.client.put("/v1/banks/b/members/nobody", headers=owner)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_key")


def test_admins_see_every_case_but_read_embeddings_only_as_members(cases):
    service = cases
    admin = service.auth("admin")
    assert [b["name"] for b in service.client.get("/v1/banks", headers=admin).json()] == ["b"]
    assert service.client.get("/v1/galleries/g/subjects", headers=admin).status_code == 200
    refused = service.client.get("/v1/galleries/g/subjects?include_embeddings=true", headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_a_member")
    assert audit_rows(service)[-1].detail["status"] == 403
    assert service.client.put("/v1/galleries/g/members/test-admin", headers=admin).status_code == 200
    before = len(audit_rows(service))
    read = service.client.get("/v1/galleries/g/subjects?include_embeddings=true", headers=admin)
    [face] = read.json()["subjects"][0]["faces"]
    assert len(face["embedding"]) == 128
    assert [(r.action, r.object_type, r.actor_name) for r in audit_rows(service)[before:]] == [
        ("export", "gallery", "test-admin")]


def test_a_case_made_by_the_command_line_is_for_admins_until_they_add_members(service):
    service.app.banks.create(LOCAL_ADMIN, "cli-bank")
    analyst = service.auth("analyst")
    assert service.client.get("/v1/banks/cli-bank/members", headers=analyst).status_code == 404
    team = service.client.get("/v1/banks/cli-bank/members", headers=service.auth("admin")).json()
    assert team == {"owner": None, "members": []}
    service.app.banks.add_member(LOCAL_ADMIN, "cli-bank", "test-analyst")
    assert service.client.get("/v1/banks/cli-bank/records", headers=analyst).status_code == 200
    refused = service.client.put("/v1/banks/cli-bank/members/test-analyst-2", headers=analyst)
    assert refused.status_code == 403, "a member does not manage an ownerless case's team"


def test_key_names_are_unique_among_active_keys(service):
    taken = service.client.post("/v1/keys", json={"name": "test-analyst", "role": "analyst"},
                                headers=service.auth("admin"))
    assert (taken.status_code, taken.json()["code"]) == (409, "key_name_taken")
