"""Bounds and edges from issue 15: the decode budget, per-key rate limits and quotas (429 + Retry-After),
a revoked key's jobs, an admin's cancel, oversized chunked bodies, 405s, local docs and the declared responses.

`idle_service` is the real HTTP app and database without the worker pool: jobs stay queued, so what happens
to queued jobs is seen without racing a dispatcher.
"""
from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from contextlib import asynccontextmanager

import pytest
from PIL import Image

from conftest import Service, create_key, make_settings
from fimg_service.usecases import LOCAL_ADMIN, Application
from fimg_service.usecases.keys import REVOKED_KEY_JOB_ERROR


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def short_stream_png() -> bytes:
    """Issue 15's PNG: its header says 9000x9000, its properly terminated zlib stream holds one row of the 9000
    (Pillow accepts it and fills the other rows: 6.7 s here to decode it to RGB before this check)."""
    header = struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 27001, 9))
            + png_chunk(b"IEND", b""))


def png(size=(100, 100), colour=(90, 120, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def idle_service(database_url, tmp_path):
    """A factory: the HTTP app on a fresh database with these settings, its worker pool never started."""
    from fastapi.testclient import TestClient

    from api import create_app

    opened = []

    def make(**overrides) -> Service:
        settings = make_settings(database_url, tmp_path / f"data{len(opened)}", **overrides)
        app = create_app(settings)

        @asynccontextmanager
        async def without_pool(fastapi_app):
            application = Application(settings)
            application.prepare_schema()
            fastapi_app.state.application = application
            yield
            application.close()

        app.router.lifespan_context = without_pool
        client = TestClient(app).__enter__()
        opened.append(client)
        application = app.state.application
        keys = {role: create_key(application, f"test-{role}", role) for role in ("admin", "analyst", "service")}
        keys["analyst2"] = create_key(application, "test-analyst-2", "analyst")
        return Service(client, application, keys)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def hash_job(service: Service, role: str = "analyst", items: int = 1, bank: str = "b") -> dict:
    if service.client.get("/v1/banks", headers=service.auth(role)).status_code == 200:
        service.client.post("/v1/banks", json={"name": bank}, headers=service.auth(role))
    body = {"type": "match_batch", "hashes": [{"name": f"h{i}", "md5": f"{i:032x}"} for i in range(items)],
            "params": {"banks": [bank]}}
    return service.client.post("/v1/jobs", json=body, headers=service.auth(role))


# -- the decode budget ----------------------------------------------------------------------------------------

def test_a_zip_of_twenty_short_stream_pngs_is_refused_as_truncated_at_once(idle_service):
    service = idle_service()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for i in range(20):
            zipped.writestr(f"{i}.png", short_stream_png())
    assert len(short_stream_png()) < 110 and len(archive.getvalue()) < 3500
    started = time.monotonic()
    response = service.client.post("/v1/uploads", files=[("files", ("batch.zip", archive.getvalue()))],
                                   headers=service.auth("analyst"))
    elapsed = time.monotonic() - started
    assert response.status_code == 422 and response.json()["code"] == "no_valid_files", response.text
    assert {r["code"] for r in response.json()["rejected"]} == {"truncated"}
    assert len(response.json()["rejected"]) == 20
    assert elapsed < 2.0, f"20 refusals took {elapsed:.2f} s"


def test_an_upload_request_decodes_at_most_its_pixel_budget(idle_service):
    service = idle_service(max_request_pixels=25_000)
    files = [("files", (f"{i}.png", png(colour=(i, 50, 50)))) for i in range(3)]
    response = service.client.post("/v1/uploads", files=files, headers=service.auth("analyst"))
    assert response.status_code == 201, response.text
    assert [u["name"] for u in response.json()["uploads"]] == ["0.png", "1.png"]
    [refused] = response.json()["rejected"]
    assert refused["name"] == "2.png" and refused["code"] == "decode_budget_exceeded"
    again = service.client.post("/v1/uploads", files=files[2:], headers=service.auth("analyst"))
    assert again.status_code == 201, "the budget is per request"


# -- rate limits and quotas ---------------------------------------------------------------------------------

def test_requests_per_key_are_rate_limited_with_retry_after(idle_service):
    service = idle_service(rate_limit="5/minute")
    for _ in range(5):
        assert service.client.get("/v1/me", headers=service.auth("analyst")).status_code == 200
    refused = service.client.get("/v1/me", headers=service.auth("analyst"))
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited" and set(refused.json()) == {"code", "message", "retry_after"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["retry_after"] == int(refused.headers["Retry-After"])
    assert service.client.get("/v1/me", headers=service.auth("analyst2")).status_code == 200, "per key"
    assert service.client.get("/healthz").status_code == 200, "unauthenticated probes are not counted"


def test_queued_items_per_key_are_bounded(idle_service):
    service = idle_service(max_queued_items=5)
    assert hash_job(service, items=3).status_code == 202
    refused = hash_job(service, items=3)
    assert refused.status_code == 429 and refused.json()["code"] == "queue_quota_exceeded", refused.text
    assert "3 unfinished job items" in refused.json()["message"] and refused.headers["Retry-After"] == "30"
    assert hash_job(service, items=2).status_code == 202, "up to the quota"
    assert hash_job(service, role="analyst2", items=3, bank="c").status_code == 202, "another key has its own"
    [queued, _] = service.client.get("/v1/jobs", headers=service.auth("analyst")).json()
    service.client.post(f"/v1/jobs/{queued['id']}/cancel", headers=service.auth("analyst"))
    assert hash_job(service, items=2).status_code == 202, "a cancelled job's items no longer count"


def test_stored_bytes_per_key_are_bounded(idle_service):
    first, second = png(colour=(1, 2, 3)), png(colour=(4, 5, 6))
    service = idle_service(max_stored_bytes=len(first) + len(second) // 2)
    assert service.client.post("/v1/uploads", files=[("files", ("a.png", first))],
                               headers=service.auth("analyst")).status_code == 201
    refused = service.client.post("/v1/uploads", files=[("files", ("b.png", second))],
                                  headers=service.auth("analyst"))
    assert refused.status_code == 429 and refused.json()["code"] == "storage_quota_exceeded", refused.text
    assert refused.headers["Retry-After"] == "3600"
    assert service.client.post("/v1/uploads", files=[("files", ("b.png", second))],
                               headers=service.auth("analyst2")).status_code == 201


# -- revoked keys and cancelling ------------------------------------------------------------------------------

def test_a_revoked_keys_queued_jobs_are_cancelled_with_the_reason(idle_service):
    service = idle_service()
    job_id = hash_job(service, items=2).json()["id"]
    other_id = hash_job(service, role="analyst2", bank="c").json()["id"]
    analyst = next(k for k in service.app.keys.list(LOCAL_ADMIN) if k.name == "test-analyst")
    assert service.client.delete(f"/v1/keys/{analyst.id}", headers=service.auth("admin")).status_code == 204
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.auth("admin")).json()
    assert job["status"] == "cancelled" and job["error"] == REVOKED_KEY_JOB_ERROR
    assert service.client.get(f"/v1/jobs/{other_id}", headers=service.auth("admin")).json()["status"] == "queued"
    [revoke] = [e for e in service.app.audit.entries(LOCAL_ADMIN, 50) if e.action == "revoke"]
    assert revoke.detail == {"cancelled_jobs": [job_id]}


def test_an_admin_cancels_any_job_from_the_api_and_the_cli(idle_service, monkeypatch, capsys):
    service = idle_service()
    first, second = hash_job(service).json()["id"], hash_job(service).json()["id"]
    assert service.client.post(f"/v1/jobs/{first}/cancel", headers=service.auth("analyst2")).status_code == 404
    cancelled = service.client.post(f"/v1/jobs/{first}/cancel", headers=service.auth("admin"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = service.client.post(f"/v1/jobs/{first}/cancel", headers=service.auth("admin"))
    assert again.status_code == 409 and again.json()["code"] == "not_active"

    from fimg_service.cli import main

    settings = service.app.settings
    monkeypatch.setenv("FIMG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIMG_DATABASE_URL", settings.database_url)
    assert main(["jobs", "cancel", second]) == 0
    assert '"status": "cancelled"' in capsys.readouterr().out
    assert main(["jobs", "cancel", second]) == 1
    assert capsys.readouterr().err == f"fimg: job {second} is already cancelled\n"
    actions = [(e.actor_name, e.action, e.object_id) for e in service.app.audit.entries(LOCAL_ADMIN, 100)]
    assert ("local-cli", "cancel", second) in actions and ("test-admin", "cancel", first) in actions


@pytest.mark.slow
def test_a_cancelled_job_leaves_nothing_in_the_dispatcher(service):
    analyst = service.auth("analyst")
    service.client.post("/v1/banks", json={"name": "b"}, headers=analyst)
    body = {"type": "match_batch", "hashes": [{"name": f"h{i}", "md5": f"{i:032x}"} for i in range(20_000)],
            "params": {"banks": ["b"]}}
    job_id = service.client.post("/v1/jobs", json=body, headers=analyst).json()["id"]
    cancelled = service.client.post(f"/v1/jobs/{job_id}/cancel", headers=service.auth("admin"))
    assert cancelled.status_code == 200, "the job finished before it could be cancelled"
    dispatcher = service.app.pool.dispatcher
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (job_id in dispatcher.jobs or any(
            chunk.job_id == job_id for chunk in list(dispatcher.in_flight.values()))):
        time.sleep(0.05)
    assert job_id not in dispatcher.jobs
    assert not [chunk for chunk in list(dispatcher.in_flight.values()) if chunk.job_id == job_id]
    job = service.wait(job_id)
    assert job["status"] == "cancelled" and job["progress"]["done"] < 20_000


# -- HTTP edges -----------------------------------------------------------------------------------------------

def test_a_chunked_body_over_the_limit_is_413(idle_service):
    service = idle_service(max_upload_bytes=2**20)

    def chunks():
        for _ in range(40):
            yield b"\0" * 65536

    for path, media in (("/v1/uploads", "multipart/form-data; boundary=xyz"), ("/v1/banks/b/records", "text/csv")):
        response = service.client.post(path, content=chunks(),
                                       headers={**service.auth("analyst"), "Content-Type": media})
        assert response.status_code == 413, (path, response.status_code, response.text)
        assert response.json()["code"] == "too_large"


def test_405_names_the_allowed_methods(idle_service):
    service = idle_service()
    response = service.client.put("/v1/banks", headers=service.auth("analyst"))
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, POST"
    response = service.client.delete("/v1/jobs/x", headers=service.auth("analyst"))
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_docs_are_served_from_local_assets(idle_service):
    service = idle_service()
    page = service.client.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text, "no asset from a CDN"
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert service.client.get(asset).status_code == 200, asset
    assert service.client.get("/redoc").status_code == 404


def test_the_openapi_spec_declares_errors_and_export_media_types(idle_service):
    spec = idle_service().client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            if path not in ("/healthz", "/hma/status", "/hma/status/live"):
                assert {"401", "403", "429"} <= statuses, (method, path)
            for status in statuses - {"200", "201", "202", "204", "503"}:
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)
    assert "404" in paths["/v1/jobs/{job_id}"]["get"]["responses"]
    assert "409" in paths["/v1/jobs/{job_id}/cancel"]["post"]["responses"]
    assert "413" in paths["/v1/uploads"]["post"]["responses"]
    export = paths["/v1/banks/{name}/records"]["get"]["responses"]["200"]["content"]
    assert {"text/csv", "application/x-ndjson"} <= set(export)
    assert "text/csv" in paths["/v1/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]


def test_cli_commands_do_not_make_a_database_where_none_was_chosen(tmp_path, monkeypatch, capsys):
    from fimg_service.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FIMG_DATA_DIR", raising=False)
    monkeypatch.delenv("FIMG_DATABASE_URL", raising=False)
    assert main(["keys", "create", "--role", "analyst", "--name", "alice"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fimg: no fimg database at ") and "FIMG_DATA_DIR" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "data" / "fimg.db").exists()
    assert main(["keys", "create", "--role", "analyst", "--name", "alice"]) == 0


def test_ids_past_the_databases_integers_are_refused_as_input(idle_service):
    """Found by tests/test_fuzz_api.py: 2**63 as a key id was an OverflowError (500) on SQLite."""
    service = idle_service()
    for method, path in (("DELETE", f"/v1/keys/{2**63}"), ("GET", f"/hma/c/bank/b/content/{2**31}")):
        response = service.client.request(method, path, headers=service.auth("admin"))
        assert response.status_code in (400, 422) and set(response.json()) >= {"code", "message"}, (path, response.text)
