"""Hostile or careless input, from issue 15's findings: each reproduced and refused in the one error shape."""
from __future__ import annotations

import csv
import io
import time

from fimg_service.usecases import LOCAL_ADMIN


def test_a_bank_named_a_hundred_thousand_times_is_one_bank(service):
    analyst = service.auth("analyst")
    service.client.post("/v1/banks", json={"name": "b"}, headers=analyst)
    body = {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": ["b"] * 100_000}}
    started = time.monotonic()
    response = service.client.post("/v1/jobs", json=body, headers=analyst)
    assert response.status_code == 202, response.text
    assert time.monotonic() - started < 10
    job = service.client.get(f"/v1/jobs/{response.json()['id']}", headers=analyst).json()
    assert job["params"]["banks"] == ["b"]
    many = {**body, "params": {"banks": [f"b{i}" for i in range(101)]}}
    refused = service.client.post("/v1/jobs", json=many, headers=analyst)
    assert refused.status_code == 422 and "at most 100 banks" in refused.json()["message"]


def test_the_bearer_scheme_is_case_insensitive(service):
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = service.client.get("/v1/me", headers={"Authorization": f"{scheme} {service.keys['analyst']}"})
        assert response.status_code == 200, scheme
    assert service.client.get("/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_the_last_admin_key_cannot_be_revoked(service):
    admins = [k for k in service.app.keys.list(LOCAL_ADMIN) if k.role == "admin"]
    assert len(admins) == 1
    refused = service.client.delete(f"/v1/keys/{admins[0].id}", headers=service.auth("admin"))
    assert refused.status_code == 409 and refused.json()["code"] == "last_admin"
    second, _ = service.app.keys.create(LOCAL_ADMIN, "second-admin", "admin")
    assert service.client.delete(f"/v1/keys/{admins[0].id}", headers=service.auth("admin")).status_code == 204
    assert service.app.keys.list(LOCAL_ADMIN)[-1].id == second.id


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_and_read_back(service):
    analyst = service.auth("analyst")
    service.client.post("/v1/banks", json={"name": "b"}, headers=analyst)
    rows = "record_id,victim_id,md5\n'=1+1,@SUM(A1),%s\n-2,'plain,%s\n" % ("0" * 32, "1" * 32)
    imported = service.client.post("/v1/banks/b/records", content=rows, headers={**analyst, "Content-Type": "text/csv"})
    assert imported.json()["imported"] == 2, imported.text
    exported = service.client.get("/v1/banks/b/records?format=csv", headers=analyst).text
    cells = list(csv.DictReader(io.StringIO(exported)))
    assert [(c["record_id"], c["victim_id"]) for c in cells] == [("'=1+1", "'@SUM(A1)"), ("'-2", "''plain")]
    service.client.post("/v1/banks", json={"name": "again"}, headers=analyst)
    service.client.post("/v1/banks/again/records", content=exported, headers={**analyst, "Content-Type": "text/csv"})
    again = service.client.get("/v1/banks/again/records?format=jsonl", headers=analyst).text
    assert '"record_id": "=1+1", "victim_id": "@SUM(A1)"' in again and '"victim_id": "\'plain"' in again

    job = service.client.post("/v1/jobs", headers=analyst, json={
        "type": "match_batch", "hashes": [{"name": "=HYPERLINK(\"x\")", "md5": "0" * 32}], "params": {"banks": ["b"]}})
    service.wait(job.json()["id"])
    report = service.client.get(f"/v1/jobs/{job.json()['id']}/result?format=csv", headers=analyst).text
    [row] = list(csv.DictReader(io.StringIO(report)))
    assert row["name"] == "'=HYPERLINK(\"x\")" and row["record_id"] == "'=1+1"


def test_an_idempotency_key_reused_with_another_body_is_refused(service):
    analyst = service.auth("analyst")
    service.client.post("/v1/banks", json={"name": "b"}, headers=analyst)
    body = {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": ["b"]}}
    headers = {**analyst, "Idempotency-Key": "batch-43"}
    first = service.client.post("/v1/jobs", json=body, headers=headers)
    same = service.client.post("/v1/jobs", json={**body, "params": {"banks": ["b", "b"]}}, headers=headers)
    assert first.status_code == same.status_code == 202 and same.json()["id"] == first.json()["id"], \
        "the same request after its params are normalised"
    other = service.client.post("/v1/jobs", json={**body, "hashes": [{"name": "y", "md5": "1" * 32}]},
                                headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_json_too_long_or_too_deep_is_a_client_error(service):
    analyst = service.auth("analyst")
    service.client.post("/v1/banks", json={"name": "b"}, headers=analyst)
    lines = ('{"record_id": "ok", "md5": "%s"}\n' % ("0" * 32) + '{"record_id": "n", "x": %s}\n' % ("9" * 5000)
             + '{"record_id": %s1%s}\n' % ("[" * 3000, "]" * 3000))
    response = service.client.post("/v1/banks/b/records", content=lines,
                                   headers={**analyst, "Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 1
    assert [(r["line"], r["message"]) for r in response.json()["rejected"]] == [
        (2, "invalid JSON: a number has too many digits"), (3, "invalid JSON: nested too deeply")]
    for body in ('{"type": "match_batch", "params": {"threshold": %s}}' % ("9" * 5000),
                 '{"type": "match_batch", "params": %s1%s}' % ("[" * 3000, "]" * 3000)):
        response = service.client.post("/v1/jobs", content=body,
                                       headers={**analyst, "Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
        assert set(response.json()) >= {"code", "message"}
