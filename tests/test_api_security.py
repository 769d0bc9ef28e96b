"""Every route x every role (and no key, a wrong key); ownership; hashed keys; the audit chain."""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

ROLES = ("admin", "analyst", "artist", "service")
EVERYONE = set(ROLES)
BANKERS = {"admin", "analyst"}
HASHERS = {"admin", "analyst", "service"}


def routes(fixture_image: bytes):
    """(name, method, path, request kwargs, roles allowed, status when allowed)."""
    return [
        ("me", "GET", "/v1/me", {}, EVERYONE, 200),
        ("create key", "POST", "/v1/keys", {"json": {"name": "n", "role": "service"}}, {"admin"}, 201),
        ("list keys", "GET", "/v1/keys", {}, {"admin"}, 200),
        ("audit", "GET", "/v1/audit", {}, {"admin"}, 200),
        ("audit verify", "GET", "/v1/audit/verify", {}, {"admin"}, 200),
        ("upload", "POST", "/v1/uploads", {"files": {"files": ("a.jpg", fixture_image)}}, EVERYONE, 201),
        ("create bank", "POST", "/v1/banks", {"json": {"name": "bank-{role}"}}, BANKERS, 201),
        ("list banks", "GET", "/v1/banks", {}, BANKERS, 200),
        ("import records", "POST", "/v1/banks/shared/records",
         {"content": "record_id,md5\nr-{role},%s\n" % ("0" * 32), "headers": {"Content-Type": "text/csv"}},
         BANKERS, 200),
        ("export records", "GET", "/v1/banks/shared/records?format=jsonl", {}, BANKERS, 200),
        ("match job", "POST", "/v1/jobs",
         {"json": {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}],
                   "params": {"banks": ["shared"]}}}, HASHERS, 202),
        ("list jobs", "GET", "/v1/jobs", {}, EVERYONE, 200),
        ("hash", "POST", "/v1/hash", {"files": {"file": ("a.jpg", fixture_image)}}, HASHERS, 200),
        ("lookup", "GET", "/v1/lookup?pdq=%s&banks=shared" % ("0" * 64), {}, HASHERS, 200),
        ("bank members", "GET", "/v1/banks/shared/members", {}, BANKERS, 200),
        # a member (the analyst) does not change the team: only the owner or an admin
        ("add member", "PUT", "/v1/banks/shared/members/test-analyst-2", {}, {"admin"}, 200),
    ]


def send(service, method, path, kwargs, headers):
    kwargs = dict(kwargs)
    extra = kwargs.pop("headers", {})
    return service.client.request(method, path, headers={**headers, **extra}, **kwargs)


def test_every_route_against_every_role(service, fixtures_dir):
    image = (fixtures_dir / "pdq" / "bridge-mods" / "square-128x128.jpg").read_bytes()
    assert service.client.post("/v1/banks", json={"name": "shared"}, headers=service.auth("admin")).status_code == 201
    for member in ("test-analyst", "test-service"):
        added = service.client.put(f"/v1/banks/shared/members/{member}", headers=service.auth("admin"))
        assert added.status_code == 200
    failures = []
    for name, method, path, kwargs, allowed, ok_status in routes(image):
        for role in ROLES:
            filled = {k: (v.replace("{role}", role) if isinstance(v, str) else v) for k, v in kwargs.items()}
            if isinstance(filled.get("json"), dict) and "name" in filled["json"]:
                filled["json"] = {**filled["json"], "name": filled["json"]["name"].replace("{role}", role)}
            response = send(service, method, path.replace("{role}", role), filled, service.auth(role))
            expected = ok_status if role in allowed else 403
            if response.status_code != expected:
                failures.append(f"{name} as {role}: {response.status_code} != {expected}: {response.text[:200]}")
        for label, headers in (("no key", {}), ("wrong key", {"Authorization": "Bearer fimg_not-a-key"}),
                               ("not bearer", {"Authorization": "Basic abc"})):
            response = send(service, method, path.replace("{role}", "x"), kwargs, headers)
            if response.status_code != 401:
                failures.append(f"{name} with {label}: {response.status_code} != 401")
            elif set(response.json()) != {"code", "message"} or not response.json()["message"]:
                failures.append(f"{name} with {label}: error body is not the {{code, message}} shape")
    assert not failures, "\n".join(failures)
    assert service.client.get("/healthz").status_code == 200


def test_job_types_have_their_own_roles(service):
    body = {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": ["b"]}}
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("admin"))
    assert service.client.post("/v1/jobs", json=body, headers=service.auth("artist")).status_code == 403
    unknown = service.client.post("/v1/jobs", json={**body, "type": "nope"}, headers=service.auth("analyst"))
    assert unknown.status_code == 422 and "unknown job type" in unknown.json()["message"]


def test_callers_see_only_their_own_jobs(service):
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("admin"))
    service.client.put("/v1/banks/b/members/test-analyst", headers=service.auth("admin"))
    body = {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": ["b"]}}
    job_id = service.client.post("/v1/jobs", json=body, headers=service.auth("analyst")).json()["id"]
    service.wait(job_id)
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/result", f"/v1/jobs/{job_id}/artifacts"):
        assert service.client.get(path, headers=service.auth("analyst")).status_code == 200
        assert service.client.get(path, headers=service.auth("admin")).status_code == 200
        for other in ("analyst2", "service", "artist"):
            response = service.client.get(path, headers=service.auth(other))
            assert response.status_code == 404, (path, other)
    assert service.client.post(f"/v1/jobs/{job_id}/cancel", headers=service.auth("analyst2")).status_code == 404
    assert job_id not in [j["id"] for j in service.client.get("/v1/jobs", headers=service.auth("analyst2")).json()]
    assert job_id in [j["id"] for j in service.client.get("/v1/jobs", headers=service.auth("admin")).json()]


def test_uploads_of_others_cannot_be_used(service, fixtures_dir):
    image = fixtures_dir / "pdq" / "bridge-mods" / "square-128x128.jpg"
    upload_id = service.upload([image], role="analyst")[0]["id"]
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("admin"))
    for analyst in ("test-analyst", "test-analyst-2"):  # both see the bank: the upload is what is refused
        service.client.put(f"/v1/banks/b/members/{analyst}", headers=service.auth("admin"))
    body = {"type": "match_batch", "inputs": [upload_id], "params": {"banks": ["b"]}}
    assert service.client.post("/v1/jobs", json=body, headers=service.auth("analyst2")).status_code == 404
    assert service.client.post("/v1/jobs", json=body, headers=service.auth("analyst")).status_code == 202


def test_keys_are_stored_hashed_and_revocable(service):
    created = service.client.post("/v1/keys", json={"name": "svc", "role": "service"},
                                  headers=service.auth("admin"))
    plaintext = created.json()["key"]
    with service.storage.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM api_keys")) for v in row)
    for key in [plaintext, *service.keys.values()]:
        assert key not in dump
    assert service.client.get("/v1/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    listed = service.client.get("/v1/keys", headers=service.auth("admin")).json()["keys"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    key_id = created.json()["id"]
    assert service.client.delete(f"/v1/keys/{key_id}", headers=service.auth("admin")).status_code == 204
    assert service.client.get("/v1/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401


def test_audit_chain_records_and_detects_tampering(service, caplog):
    caplog.set_level(logging.DEBUG)
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    body = {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": ["b"]}}
    job_id = service.client.post("/v1/jobs", json=body, headers=service.auth("analyst")).json()["id"]
    service.client.get(f"/v1/jobs/{job_id}", headers=service.auth("analyst"))
    service.client.get("/v1/banks/b/records", headers=service.auth("analyst"))
    entries = service.client.get("/v1/audit", headers=service.auth("admin")).json()["entries"]
    actions = {(e["actor_name"], e["action"], e["object_type"]) for e in entries}
    assert {("test-analyst", "create", "bank"), ("test-analyst", "create", "job"), ("test-analyst", "read", "job"),
            ("test-analyst", "export", "bank")} <= actions
    assert service.client.get("/v1/audit/verify", headers=service.auth("admin")).json()["intact"] is True

    with service.storage.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor_name = 'someone-else' WHERE action = 'export'"))
    verdict = service.client.get("/v1/audit/verify", headers=service.auth("admin")).json()
    assert verdict["intact"] is False and verdict["first_bad_id"] is not None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(key in logged for key in service.keys.values())


@pytest.mark.parametrize("path", ["/v1/jobs/0123456789abcdef0123456789abcdef", "/v1/jobs/nope/result"])
def test_unknown_job_ids_are_404(service, path):
    response = service.client.get(path, headers=service.auth("admin"))
    assert response.status_code == 404 and response.json()["code"] == "not_found"
