"""Interoperability: lossless bank export/import, hash-list formats through the API and CLI, per-record provenance
and state, and an HMA client session against the /hma routes (shapes pinned field by field)."""
from __future__ import annotations

import http.server
import io
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import create_key, make_settings
from fimg_service.usecases import LOCAL_ADMIN, job_request
from imaging.matching import hashes_for_bank


def jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality)
    return out.getvalue()


def edits_of(path) -> list[tuple[str, bytes]]:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    h, w = rgb.shape[:2]
    return [("crop-left", jpeg(np.ascontiguousarray(rgb[:, round(w * 0.12):]))),
            ("crop-corner", jpeg(rgb[: round(h * 0.9), : round(w * 0.9)], 70)),
            ("mirror", jpeg(np.ascontiguousarray(rgb[:, ::-1]))),
            ("letterbox", jpeg(np.concatenate([np.zeros((h // 4, w, 3), np.uint8), rgb,
                                               np.zeros((h // 4, w, 3), np.uint8)])))]


def report_of(app, bank: str, uploads) -> list[tuple]:
    job = app.jobs.submit(LOCAL_ADMIN, "match_batch", job_request([u.id for u in uploads]), {"banks": [bank]})
    assert app.jobs.wait(LOCAL_ADMIN, job.id).status == "succeeded"
    _, items = app.jobs.report(LOCAL_ADMIN, job.id)
    return [(item["name"], item["status"], [(m["record_id"], m["kind"], m["distance"]) for m in item["matches"]])
            for item in items]


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_an_enrolled_bank_exported_and_imported_matches_exactly_as_the_original(service, fixtures_dir, file_format):
    app = service.app
    originals = [fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg",
                 fixtures_dir / "pdq" / "reg-test" / "pen-and-coaster.png"]
    app.banks.create(LOCAL_ADMIN, "enrolled")
    imported, rejected = app.banks.enrol(LOCAL_ADMIN, "enrolled", [(p.name, p.read_bytes()) for p in originals],
                                         victim_id="V-7")
    assert (imported, rejected) == (2, [])
    text, warnings = app.banks.export(LOCAL_ADMIN, "enrolled", file_format)
    assert warnings == []
    app.banks.create(LOCAL_ADMIN, "reimported")
    report = app.banks.import_file(LOCAL_ADMIN, "reimported", text, file_format)
    assert (report.imported, report.rejected) == (2, [])
    with service.storage.read() as unit:
        before = unit.banks.records(unit.banks.get("enrolled").id)
        after = unit.banks.records(unit.banks.get("reimported").id)
    assert [r.extra_hashes for r in after] == [r.extra_hashes for r in before]
    assert all(r.extra_hashes.get("pdq_region") and r.extra_hashes.get("pdq_crop") for r in after)

    queries = [(f"{p.stem}-{name}.jpg", data) for p in originals for name, data in edits_of(p)]
    uploads, _ = app.uploads.add(LOCAL_ADMIN, queries)
    original_report, reimported_report = report_of(app, "enrolled", uploads), report_of(app, "reimported", uploads)
    assert reimported_report == original_report
    assert sum(status == "match" for _, status, _ in original_report) >= 6, original_report


def test_hash_lists_import_with_tombstones_and_unsupported_types_reported(service, fixtures_dir):
    photo = (fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    hashes = hashes_for_bank(photo)
    analyst = service.auth("analyst")
    assert service.client.post("/v1/banks", json={"name": "shared"}, headers=analyst).status_code == 201
    assert service.client.put("/v1/banks/shared/members/test-service", headers=analyst).status_code == 200
    local = f"{hashes['pdq']}\nnot-a-hash\n"
    response = service.client.post("/v1/banks/shared/records?format=pytx_local&signal_type=pdq", content=local,
                                   headers=analyst)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["imported"] == 1 and [r["line"] for r in body["rejected"]] == [2]

    def entry(entry_id: str, md5: str) -> str:
        return (f'<image><id>{entry_id}</id><classification>A1</classification><member id="42">An ESP</member>'
                f'<fingerprints><md5>{md5}</md5><pdna>{"1," * 143}1</pdna></fingerprints></image>')

    ncmec = ('<?xml version="1.0" encoding="UTF-8"?>\n<queryResult xmlns="https://hashsharing.ncmec.org/HashSharing/v2">'
             f'<images>\n{entry("e-1", hashes["md5"])}\n{entry("e-2", "0" * 32)}\n</images></queryResult>\n')
    response = service.client.post("/v1/banks/shared/records?format=ncmec_xml", content=ncmec, headers=analyst)
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 2 and response.json()["unsupported"] == {"image/pdna": 2}

    found = service.client.get(f"/v1/lookup?pdq={hashes['pdq']}&banks=shared", headers=service.auth("service"))
    assert {m["record_id"] for m in found.json()["matches"]} == {f"pdq:{hashes['pdq']}"}
    report = service.client.post("/v1/jobs", headers=analyst, json={
        "type": "match_batch", "hashes": [{"name": "q", "md5": hashes["md5"]}], "params": {"banks": ["shared"]}})
    job = service.wait(report.json()["id"])
    [item] = service.client.get(f"/v1/jobs/{job['id']}/result", headers=analyst).json()["items"]
    [match] = item["matches"]
    assert (match["record_id"], match["source"], match["source_id"], match["member_id"], match["tags"]) == (
        "ncmec:e-1", "ncmec", "e-1", "42", ["A1"])

    deleted = ('<?xml version="1.0" encoding="UTF-8"?>\n<queryResult xmlns="https://hashsharing.ncmec.org/HashSharing/v2">'
               '<images>\n<deletedImage><id>e-1</id></deletedImage>\n</images></queryResult>\n')
    response = service.client.post("/v1/banks/shared/records?format=ncmec_xml", content=deleted, headers=analyst)
    assert response.json()["disabled"] == 1, response.text
    report = service.client.post("/v1/jobs", headers=analyst, json={
        "type": "match_batch", "hashes": [{"name": "q", "md5": hashes["md5"]}], "params": {"banks": ["shared"]}})
    job = service.wait(report.json()["id"])
    [item] = service.client.get(f"/v1/jobs/{job['id']}/result", headers=analyst).json()["items"]
    assert item["status"] == "no_match", "a tombstoned record never matches"

    exported = service.client.get("/v1/banks/shared/records?format=pytx_dataset_csv", headers=analyst)
    assert exported.status_code == 200 and "member ids not carried" in exported.headers["x-fimg-export-warnings"]
    assert exported.text.splitlines()[0] == "signal_type,signal_str,collab,category,tags"


def test_an_hma_client_session_works_with_a_new_base_url_and_a_key(service, fixtures_dir):
    hma = service.auth("analyst")
    photo = (fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    blurred = (fixtures_dir / "pdq" / "bridge-mods" / "blur-a-lot.jpg").read_bytes()

    created = service.client.post("/hma/c/banks", json={"name": "TEST_BANK"}, headers=hma)
    assert (created.status_code, created.json()) == (201, {"name": "TEST_BANK", "matching_enabled_ratio": 1.0})
    again = service.client.post("/hma/c/banks", json={"name": "TEST_BANK"}, headers=hma)
    assert again.status_code == 403 and again.json()["message"]
    assert service.client.get("/hma/c/banks", headers=hma).json() == [{"name": "TEST_BANK",
                                                                       "matching_enabled_ratio": 1.0}]
    assert service.client.get("/hma/c/bank/TEST_BANK", headers=hma).json()["name"] == "TEST_BANK"
    assert service.client.put("/v1/banks/TEST_BANK/members/test-service", headers=hma).status_code == 200

    hashed = service.client.post("/hma/h/hash", files={"photo": ("a.jpg", photo)}, headers=service.auth("service"))
    assert hashed.json() == {"pdq": "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"}
    added = service.client.post("/hma/c/bank/TEST_BANK/content", files={"photo": ("a.jpg", photo)}, headers=hma)
    assert added.status_code == 200 and set(added.json()) == {"id", "signals"}
    content_id = added.json()["id"]
    assert added.json()["signals"]["pdq"] == hashed.json()["pdq"]

    pdq = hashed.json()["pdq"]
    raw = service.client.get(f"/hma/m/raw_lookup?signal_type=pdq&signal={pdq}", headers=service.auth("service"))
    assert raw.json() == {"matches": [content_id]}
    raw = service.client.get(f"/hma/m/raw_lookup?signal_type=pdq&signal={pdq}&include_distance=true",
                             headers=service.auth("service"))
    assert raw.json() == {"matches": [{"bank_content_id": content_id, "distance": "0"}]}
    looked = service.client.get(f"/hma/m/lookup?signal_type=pdq&signal={pdq}&banks=TEST_BANK",
                                headers=service.auth("service"))
    assert looked.json() == {"TEST_BANK": [{"bank_content_id": content_id, "distance": "0"}]}
    by_file = service.client.post("/hma/m/lookup", files={"photo": ("b.jpg", blurred)}, headers=service.auth("service"))
    assert list(by_file.json()) == ["pdq"] and by_file.json()["pdq"]["TEST_BANK"][0]["bank_content_id"] == content_id

    compared = service.client.post("/hma/m/compare", json={"pdq": [pdq, pdq[:-1] + "3"]}, headers=hma)
    assert compared.json() == {"pdq": [True, {"distance": 1}]}
    status = service.client.get("/hma/m/index/status", headers=hma).json()
    assert status["pdq"]["present"] is True and status["pdq"]["size"] == 1 and status["sha1"]["size"] == 1

    content = service.client.get(f"/hma/c/bank/TEST_BANK/content/{content_id}?include_signals=true", headers=hma)
    assert set(content.json()) == {"id", "disable_until_ts", "original_media_uri", "bank", "metadata", "note",
                                   "signals"}
    assert content.json()["disable_until_ts"] == 1 and content.json()["bank"]["name"] == "TEST_BANK"
    disabled = service.client.put(f"/hma/c/bank/TEST_BANK/content/{content_id}", json={"disable_until_ts": 0},
                                  headers=hma)
    assert disabled.json()["disable_until_ts"] == 0
    looked = service.client.get(f"/hma/m/lookup?signal_type=pdq&signal={pdq}", headers=service.auth("service"))
    assert looked.json() == {}, "a disabled record never matches"
    later = service.client.put(f"/hma/c/bank/TEST_BANK/content/{content_id}", json={"disable_until_ts": 1},
                               headers=hma)
    assert later.json()["disable_until_ts"] == 1
    assert service.client.get(f"/hma/m/lookup?signal_type=pdq&signal={pdq}",
                              headers=service.auth("service")).json()["TEST_BANK"]

    signal = service.client.post("/hma/c/bank/TEST_BANK/signal", json={"md5": "0" * 32}, headers=hma)
    assert set(signal.json()) == {"id", "signals"} and signal.json()["signals"] == {"md5": "0" * 32}
    bad = service.client.get("/hma/m/raw_lookup?signal_type=pdq&signal=xyz", headers=service.auth("service"))
    assert bad.status_code == 400 and "message" in bad.json()
    curation = service.client.post("/hma/c/banks", json={"name": "X"}, headers=service.auth("service"))
    assert curation.status_code == 403, "curation needs an analyst"
    assert service.client.get("/hma/m/raw_lookup?signal_type=pdq&signal=" + pdq).status_code == 401
    assert service.client.get("/hma/status").text == "I-AM-ALIVE"
    assert service.client.get("/hma/status/live").text == "I-AM-ALIVE"


class _Files(http.server.BaseHTTPRequestHandler):
    photo = b""

    def do_GET(self):
        if self.path == "/elsewhere":
            self.send_response(302)
            self.send_header("Location", "http://localhost:1/photo.jpg")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.photo)))
        self.end_headers()
        self.wfile.write(self.photo)

    def log_message(self, *_args):
        pass


def test_hashing_by_url_is_off_unless_hosts_are_allowed(ray_session, tmp_path, fixtures_dir):
    """Two services one after the other (each pool takes the test session's CPUs): without hosts, then with."""
    from api import create_app

    with TestClient(create_app(make_settings(f"sqlite:///{tmp_path / 'off.db'}", tmp_path / "off-data"))) as client:
        headers = {"Authorization": f"Bearer {create_key(client.app.state.application, 'svc', 'service')}"}
        off = client.get("/hma/h/hash?url=http://127.0.0.1/photo.jpg", headers=headers)
        assert off.status_code == 403 and off.json()["code"] == "url_fetch_disabled"

    _Files.photo = (fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'url.db'}", tmp_path / "url-data",
                                   url_hash_hosts=("127.0.0.1",)))
    try:
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {create_key(app.state.application, 'svc', 'service')}"}
            hashed = client.get(f"/hma/h/hash?url={base}/photo.jpg", headers=headers)
            assert hashed.json() == {"pdq": "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"}
            redirected = client.get(f"/hma/h/hash?url={base}/elsewhere", headers=headers)
            assert redirected.status_code == 403 and redirected.json()["code"] == "url_not_allowed"
            other = client.get("/hma/h/hash?url=http://localhost/photo.jpg", headers=headers)
            assert other.status_code == 403
    finally:
        server.shutdown()


def test_the_cli_imports_and_exports_hash_lists_and_warns_of_what_is_lost(tmp_path, monkeypatch, capsys):
    from fimg_service.cli import main

    monkeypatch.setenv("FIMG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FIMG_DATABASE_URL", raising=False)
    pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    hashes = tmp_path / "shared.txt"
    hashes.write_text(f"pdq {pdq}\nphotodna 1,2,3\nvideo_md5 {'0' * 32}\n")
    assert main(["bank", "create", "b"]) == 0
    capsys.readouterr()
    assert main(["bank", "import", "b", str(hashes), "--format", "pytx_local"]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == '{"imported": 2, "rejected": 1, "disabled": 0, "unsupported": {"photodna": 1}}'
    assert captured.err.startswith(f"{hashes}:2: signal type 'photodna' is not one fimg can match")
    assert main(["bank", "export", "b", "--format", "pytx_local"]) == 0
    captured = capsys.readouterr()
    assert sorted(captured.out.splitlines()) == sorted([f"pdq {pdq}", f"video_md5 {'0' * 32}"])
    assert captured.err == "", "ids of the <kind>:<hash> form survive the format"
    ours = tmp_path / "ours.jsonl"
    ours.write_text('{"record_id": "case-7", "victim_id": "V-1", "sha1": "%s"}\n' % ("1" * 40))
    assert main(["bank", "import", "b", str(ours)]) == 0
    assert main(["bank", "export", "b", "--format", "pytx_local"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("fimg: warning: ")]
    assert any("left out" in w for w in warnings) and any("SHA-1" in w for w in warnings), captured.err
    assert main(["bank", "export", "b", "--format", "jsonl"]) == 0
    assert capsys.readouterr().err == "", "fimg's own formats lose nothing"
