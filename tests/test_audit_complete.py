"""Every mutation and every audited read leaves exactly one audit row, written in the same transaction as the
change: a failure after the change leaves neither the change nor its row."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from conftest import REPO_ROOT
from fimg_service.storage.audit import AuditRepository
from fimg_service.usecases import LOCAL_ADMIN, job_request


def audit_rows(service) -> list:
    with service.storage.read() as unit:
        return unit.audit.entries(limit=100_000)


def test_every_mutating_and_audited_route_writes_exactly_one_row(service, fixtures_dir):
    analyst = service.auth("analyst")
    admin = service.auth("admin")
    photo = (fixtures_dir / "faces" / "obama-1.jpg").read_bytes()
    state: dict = {}

    def upload():
        response = service.client.post("/v1/uploads", files=[("files", ("o.jpg", photo))], headers=analyst)
        state["upload"] = response.json()["uploads"][0]["id"]
        return response

    def submit():
        response = service.client.post("/v1/jobs", headers=analyst, json={
            "type": "match_batch", "inputs": [state["upload"]], "params": {"banks": ["b"]}})
        state["job"] = response.json()["id"]
        service.app.jobs.wait(LOCAL_ADMIN, state["job"])  # polls without reading through the audited route
        return response

    def create_key():
        response = service.client.post("/v1/keys", json={"name": "k", "role": "service"}, headers=admin)
        state["key"] = response.json()["id"]
        return response

    csv_body = {"content": f"record_id,md5\nr1,{'0' * 32}\n", "headers": {**analyst, "Content-Type": "text/csv"}}
    steps = [
        ("create", "api_key", create_key),
        ("revoke", "api_key", lambda: service.client.delete(f"/v1/keys/{state['key']}", headers=admin)),
        ("create", "uploads", upload),
        ("create", "bank", lambda: service.client.post("/v1/banks", json={"name": "b"}, headers=analyst)),
        ("import", "bank", lambda: service.client.post("/v1/banks/b/records", **csv_body)),
        ("export", "bank", lambda: service.client.get("/v1/banks/b/records", headers=analyst)),
        ("add_member", "bank", lambda: service.client.put("/v1/banks/b/members/test-service", headers=analyst)),
        ("list", "bank_members", lambda: service.client.get("/v1/banks/b/members", headers=analyst)),
        ("create", "job", submit),
        ("read", "job", lambda: service.client.get(f"/v1/jobs/{state['job']}", headers=analyst)),
        ("export", "job_result", lambda: service.client.get(f"/v1/jobs/{state['job']}/result", headers=analyst)),
        ("lookup", "banks", lambda: service.client.get(f"/v1/lookup?pdq={'0' * 64}&banks=b",
                                                       headers=service.auth("service"))),
        ("create", "gallery", lambda: service.client.post("/v1/galleries", json={"name": "g"}, headers=analyst)),
        ("add_member", "gallery", lambda: service.client.put("/v1/galleries/g/members/test-analyst-2",
                                                             headers=analyst)),
        ("remove_member", "gallery", lambda: service.client.delete("/v1/galleries/g/members/test-analyst-2",
                                                                   headers=analyst)),
        ("enrol", "gallery_subject", lambda: service.client.post("/v1/galleries/g/subjects", headers=analyst, json={
            "subject_id": "s1", "photos": [{"upload": state["upload"]}]})),
        ("read", "gallery", lambda: service.client.get("/v1/galleries/g/subjects", headers=analyst)),
        ("export", "gallery", lambda: service.client.get("/v1/galleries/g/subjects?include_embeddings=true",
                                                         headers=analyst)),
        ("delete", "gallery_subject", lambda: service.client.delete("/v1/galleries/g/subjects/s1", headers=analyst)),
    ]
    for action, object_type, call in steps:
        before = len(audit_rows(service))
        response = call()
        assert response.status_code < 300, (action, object_type, response.text)
        rows = audit_rows(service)
        assert len(rows) == before + 1, (action, object_type, [(r.action, r.object_type) for r in rows[before:]])
        assert (rows[-1].action, rows[-1].object_type) == (action, object_type)
    cancelled = service.client.post("/v1/jobs", headers=analyst, json={
        "type": "match_batch", "inputs": [state["upload"]] * 200, "params": {"banks": ["b"]}}).json()["id"]
    before = len(audit_rows(service))
    response = service.client.post(f"/v1/jobs/{cancelled}/cancel", headers=analyst)
    if response.status_code == 200:  # the job may finish first; then it is 409 and writes nothing
        assert [(r.action, r.object_type) for r in audit_rows(service)[before:]] == [("cancel", "job")]
    else:
        assert response.status_code == 409 and len(audit_rows(service)) == before


def database_state(service) -> dict:
    with service.storage.read() as unit:
        return {"keys": unit.keys.list(), "banks": unit.banks.list(), "galleries": unit.galleries.list(),
                "jobs": [j.id for j in unit.jobs.list(all_owners=True)], "audit": len(unit.audit.entries(limit=10**6)),
                "records": {b.name: unit.banks.records(b.id) for b in unit.banks.list()},
                "members": {b.name: unit.banks.members.list(b.id) for b in unit.banks.list()}}


def test_a_failure_after_the_change_leaves_neither_change_nor_audit_row(service, fixtures_dir, monkeypatch):
    app = service.app
    app.banks.create(LOCAL_ADMIN, "b")
    app.galleries.create(LOCAL_ADMIN, "g")
    [upload], _ = app.uploads.add(LOCAL_ADMIN, [("o.jpg", (fixtures_dir / "faces" / "obama-1.jpg").read_bytes())])
    job = app.jobs.submit(LOCAL_ADMIN, "match_batch", job_request([upload.id] * 100), {"banks": ["b"]})
    key, _ = app.keys.create(LOCAL_ADMIN, "k", "service")
    before = database_state(service)
    assert before["audit"] > 0

    def fail(*_args, **_kwargs):  # the append runs after the change, inside the same unit
        raise RuntimeError("forced failure after the change")

    monkeypatch.setattr(AuditRepository, "append", fail)
    mutations = {
        "create key": lambda: app.keys.create(LOCAL_ADMIN, "k2", "analyst"),
        "revoke key": lambda: app.keys.revoke(LOCAL_ADMIN, key.id),
        "create bank": lambda: app.banks.create(LOCAL_ADMIN, "b2"),
        "add member": lambda: app.banks.add_member(LOCAL_ADMIN, "b", "k"),
        "import": lambda: app.banks.import_file(LOCAL_ADMIN, "b", f"record_id,md5\nr1,{'0' * 32}\n", "csv"),
        "enrol images": lambda: app.banks.enrol(LOCAL_ADMIN, "b", [("o.jpg", app.uploads.data(upload))]),
        "submit": lambda: app.jobs.submit(LOCAL_ADMIN, "match_batch", job_request([upload.id]), {"banks": ["b"]}),
        "create gallery": lambda: app.galleries.create(LOCAL_ADMIN, "g2"),
        "calibrate": lambda: app.galleries.set_threshold(LOCAL_ADMIN, "g", 0.5, {"eer": 0.1}),
        "enrol subject": lambda: app.galleries.enrol(LOCAL_ADMIN, "g", "s", None, [(upload.id, None, None)]),
    }
    for name, call in mutations.items():
        with pytest.raises(RuntimeError, match="forced failure"):
            call()
        assert database_state(service) == before, name
    with pytest.raises(RuntimeError, match="forced failure"):
        app.uploads.add(LOCAL_ADMIN, [("o2.jpg", app.uploads.data(upload))])
    with service.storage.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM uploads")).scalar() == 1
    if app.jobs.status(LOCAL_ADMIN, job.id).status in ("queued", "running"):
        with pytest.raises(RuntimeError, match="forced failure"):
            app.jobs.cancel(LOCAL_ADMIN, job.id)
        monkeypatch.undo()
        assert app.jobs.status(LOCAL_ADMIN, job.id).status != "cancelled"


def test_every_cli_mutation_writes_exactly_one_row_per_change(tmp_path, ray_session, fixtures_dir):
    env = {**os.environ, "FIMG_DATA_DIR": str(tmp_path / "data"),
           "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    env.pop("FIMG_DATABASE_URL", None)
    photo = fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    bank_file = tmp_path / "more.csv"
    bank_file.write_text(f"record_id,md5\nr1,{'0' * 32}\n")

    def audit_actions() -> list[tuple[str, str]]:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'fimg.db'}")
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT action, object_type FROM audit_log ORDER BY id")).all()
        engine.dispose()
        return [tuple(r) for r in rows]

    def fimg(*args) -> str:
        done = subprocess.run([sys.executable, "-m", "fimg_service.cli", *map(str, args)], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        return done.stdout

    commands = [
        (("keys", "create", "--role", "analyst", "--name", "a"), [("create", "api_key")]),
        (("bank", "create", "b"), [("create", "bank")]),
        (("bank", "import", "b", bank_file), [("import", "bank")]),
        (("bank", "add", "b", photo), [("import", "bank")]),
        (("bank", "export", "b"), [("export", "bank")]),
        (("bank", "member-add", "b", "a"), [("add_member", "bank")]),
        (("bank", "members", "b"), [("list", "bank_members")]),
        (("bank", "member-remove", "b", "a"), [("remove_member", "bank")]),
        (("match", photo, "--bank", "b"), [("create", "uploads"), ("create", "job"), ("export", "job_result")]),
    ]
    assert fimg("db", "upgrade").startswith("database schema: created")
    for args, expected in commands:
        before = len(audit_actions())
        fimg(*args)
        assert audit_actions()[before:] == expected, args
    job_id = json.loads(fimg("jobs", "list").splitlines()[0])["id"]
    before = len(audit_actions())
    fimg("jobs", "show", job_id)
    fimg("jobs", "show", job_id, "--items")
    assert audit_actions()[before:] == [("read", "job"), ("export", "job_result")]


def test_lists_reads_and_refusals_are_audited_with_who(service, fixtures_dir):
    analyst, admin = service.auth("analyst"), service.auth("admin")
    photo = (fixtures_dir / "pdq" / "bridge-mods" / "square-128x128.jpg").read_bytes()
    job_id = service.client.post("/v1/jobs", headers=analyst, json={
        "type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}],
        "params": {"banks": [service.client.post("/v1/banks", json={"name": "b"}, headers=analyst).json()["name"]]},
    }).json()["id"]
    steps = [
        (("GET", "/v1/keys", admin, {}), ("list", "api_keys", "test-admin")),
        (("GET", "/v1/jobs", analyst, {}), ("list", "jobs", "test-analyst")),
        (("GET", "/v1/banks", analyst, {}), ("list", "banks", "test-analyst")),
        (("GET", "/v1/galleries", analyst, {}), ("list", "galleries", "test-analyst")),
        (("GET", f"/v1/jobs/{job_id}/artifacts", analyst, {}), ("list", "artifacts", "test-analyst")),
        (("POST", "/v1/hash", service.auth("service"), {"files": {"file": ("a.jpg", photo)}}),
         ("hash", "file", "test-service")),
        (("GET", "/v1/audit", admin, {}), ("read", "audit_log", "test-admin")),
        (("GET", "/v1/keys", analyst, {}), ("refused", "route", "test-analyst")),
        (("GET", "/v1/banks", {}, {}), ("refused", "route", "anonymous")),
        (("GET", f"/v1/jobs/{job_id}", service.auth("analyst2"), {}), ("refused", "route", "test-analyst-2")),
    ]
    for (method, path, headers, kwargs), (action, object_type, actor) in steps:
        before = len(audit_rows(service))
        response = service.client.request(method, path, headers=headers, **kwargs)
        rows = audit_rows(service)[before:]
        assert [(r.action, r.object_type, r.actor_name) for r in rows] == [(action, object_type, actor)], (
            path, response.status_code, [(r.action, r.object_type, r.actor_name) for r in rows])
        if action == "refused":
            assert rows[0].object_id == f"{method} {path}" and rows[0].detail["status"] == response.status_code
