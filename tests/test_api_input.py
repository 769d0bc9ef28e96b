"""Bad input through the API: every failure is a clear JSON error, and good files in the same request survive."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest


def png_with_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@pytest.fixture
def good_jpeg(fixtures_dir) -> bytes:
    return (fixtures_dir / "pdq" / "bridge-mods" / "square-128x128.jpg").read_bytes()


def test_each_decode_failure_is_rejected_with_its_reason(service, good_jpeg):
    bad = {
        "empty.jpg": (b"", "empty_file"),
        "truncated.jpg": (good_jpeg[: len(good_jpeg) // 2], "truncated"),
        "cut-short.jpg": (good_jpeg[:-64], "truncated"),
        "page.jpg": (b"<!DOCTYPE html><html><body>not an image</body></html>", "not_an_image"),
        "notes.jpg": (b"just some text\n" * 20, "not_an_image"),
        "bomb.png": (png_with_header(60000, 60000), "too_many_pixels"),
        "doc.pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", None),
    }
    files = [("files", ("good.jpg", good_jpeg))] + [("files", (name, data)) for name, (data, _) in bad.items()]
    response = service.client.post("/v1/uploads", files=files, headers=service.auth("analyst"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert [u["name"] for u in body["uploads"]] == ["good.jpg"]
    rejected = {r["name"]: r for r in body["rejected"]}
    assert set(rejected) == set(bad)
    for name, (_, code) in bad.items():
        assert rejected[name]["message"], name
        if code:
            assert rejected[name]["code"] == code, (name, rejected[name])
    assert rejected["doc.pdf"]["code"] == "unsupported_format"


def test_an_upload_is_recorded_with_its_upright_size(service, fixtures_dir):
    rotated = fixtures_dir / "pdq" / "reg-test" / "exif-rotn" / "exif-rotn-6.jpg"  # 4032x3024, EXIF: turn it
    [upload] = service.upload([rotated])
    assert (upload["format"], upload["width"], upload["height"]) == ("JPEG", 3024, 4032)


def test_nothing_valid_is_422(service):
    response = service.client.post("/v1/uploads", files=[("files", ("x.jpg", b"nope"))],
                                   headers=service.auth("analyst"))
    assert response.status_code == 422
    assert response.json()["code"] == "no_valid_files" and response.json()["rejected"][0]["name"] == "x.jpg"


def test_zip_is_expanded(service, good_jpeg):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/one.jpg", good_jpeg)
        archive.writestr("two.txt", b"hello")
    response = service.client.post("/v1/uploads", files=[("files", ("batch.zip", buffer.getvalue()))],
                                   headers=service.auth("analyst"))
    assert response.status_code == 201
    assert [u["name"] for u in response.json()["uploads"]] == ["batch.zip/a/one.jpg"]
    assert [r["name"] for r in response.json()["rejected"]] == ["batch.zip/two.txt"]


def test_oversized_body_is_413(service):
    limit = service.app.settings.max_upload_bytes
    response = service.client.post("/v1/uploads", files=[("files", ("big.jpg", b"\0" * (limit + 10)))],
                                   headers=service.auth("analyst"))
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_bank_import_reports_bad_rows_by_line(service):
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    csv_text = ("record_id,victim_id,pdq,md5,sha1,sha256,labels\n"
                f"ok-1,V,{'a' * 64},,,,\n"
                f"bad-pdq,V,{'z' * 64},,,,\n"
                ",V,,{'0' * 32},,,\n"
                "no-hash,V,,,,,\n"
                f"ok-2,V,,{'1' * 32},,,x;y\n")
    response = service.client.post("/v1/banks/b/records", content=csv_text,
                                   headers={**service.auth("analyst"), "Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["imported"] == 2
    assert [r["line"] for r in body["rejected"]] == [3, 4, 5]
    again = service.client.post("/v1/banks/b/records", content=csv_text,
                                headers={**service.auth("analyst"), "Content-Type": "text/csv"})
    assert again.json()["imported"] == 0
    assert {r["line"] for r in again.json()["rejected"]} == {2, 3, 4, 5, 6}
    assert any(r["code"] == "duplicate_record" and "already exists" in r["message"] for r in again.json()["rejected"])

    jsonl = '{"record_id": "j-1", "md5": "%s"}\nnot json\n[1, 2]\n' % ("2" * 32)
    response = service.client.post("/v1/banks/b/records", content=jsonl,
                                   headers={**service.auth("analyst"), "Content-Type": "application/x-ndjson"})
    assert response.json()["imported"] == 1 and [r["line"] for r in response.json()["rejected"]] == [2, 3]
    banks = service.client.get("/v1/banks", headers=service.auth("analyst")).json()
    assert banks[0]["records"] == 3


def test_wrong_content_type_and_unknown_ids(service):
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    wrong = service.client.post("/v1/banks/b/records", content="x", headers={**service.auth("analyst"),
                                                                             "Content-Type": "text/plain"})
    assert wrong.status_code == 415
    missing_bank = service.client.post("/v1/banks/nope/records", content="record_id\n",
                                       headers={**service.auth("analyst"), "Content-Type": "text/csv"})
    assert missing_bank.status_code == 404 and "nope" in missing_bank.json()["message"]
    job = {"type": "match_batch", "inputs": ["0" * 32], "params": {"banks": ["b"]}}
    assert service.client.post("/v1/jobs", json=job, headers=service.auth("analyst")).status_code == 404
    job = {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": ["nope"]}}
    assert service.client.post("/v1/jobs", json=job, headers=service.auth("analyst")).status_code == 404
    duplicate = service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    assert duplicate.status_code == 409


@pytest.mark.parametrize("body, fragment", [
    ({"type": "match_batch", "params": {"banks": ["b"]}}, "needs `inputs`"),
    ({"type": "match_batch", "hashes": [{"name": "x"}], "params": {"banks": ["b"]}}, "at least one of"),
    ({"type": "match_batch", "hashes": [{"name": "x", "md5": "xyz"}], "params": {"banks": ["b"]}}, "md5"),
    ({"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": []}}, "params.banks"),
    ({"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}],
      "params": {"banks": ["b"], "threshold": "far"}}, "params.threshold"),
    ({"type": 7, "params": {}}, "type"),
    ({"inputs": "not-a-list"}, "inputs"),
])
def test_malformed_job_requests_are_422(service, body, fragment):
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    response = service.client.post("/v1/jobs", json=body, headers=service.auth("analyst"))
    assert response.status_code == 422, response.text
    assert fragment in response.json()["message"]


def test_not_json_body_is_a_clear_client_error(service):
    response = service.client.post("/v1/jobs", content=b"\xff\xfe{", headers={**service.auth("analyst"),
                                                                              "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_request" and response.json()["message"]


@pytest.mark.parametrize(("method", "url", "body"), [
    ("GET", "/v1/jobs/a%00b", None),
    ("GET", "/v1/jobs?status=a%00b", None),
    ("GET", "/v1/banks/a%00b/members", None),
    ("GET", "/hma/c/bank/a%00b", None),
    ("POST", "/v1/jobs", {"type": "match_batch", "inputs": ["a\x00b"], "params": {"banks": ["b"]}}),
    ("POST", "/v1/jobs", {"type": "match_batch", "hashes": [{"name": "x", "pdq": "0" * 64}],
                          "params": {"banks": ["a\x00b"]}}),
])
def test_nul_in_an_id_name_or_filter_is_invalid_text_on_either_database(service, method, url, body):
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    response = service.client.request(method, url, json=body, headers=service.auth("analyst"))
    assert response.status_code == (400 if url.startswith("/hma/") else 422), response.text
    assert response.json()["code"] == "invalid_text"
