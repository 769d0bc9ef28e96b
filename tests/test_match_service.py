"""Match batches end to end through the real API, a real database and the real Ray pool.

The workers read the uploads from the blob store's disk, by SHA-256, and check them against their names; the
dispatcher reads none of them. A worker that does not see the store is sent the bytes instead, and reports the same.
"""
from __future__ import annotations

import csv
import hashlib
import io
import time

import pytest

from fimg_service.storage.blobs import MARKER, BlobStore
from imaging.matching import hashes_for_bank


@pytest.fixture
def bridge(fixtures_dir):
    return fixtures_dir / "pdq" / "bridge-mods"


def import_csv(service, bank: str, rows: list[dict], role: str = "analyst"):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["record_id", "victim_id", "pdq", "md5", "sha1", "sha256", "labels"],
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return service.client.post(f"/v1/banks/{bank}/records", content=out.getvalue(),
                               headers={**service.auth(role), "Content-Type": "text/csv"})


def make_bank(service, name: str, records: dict[str, bytes], victim: str = "V-1") -> None:
    assert service.client.post("/v1/banks", json={"name": name}, headers=service.auth("analyst")).status_code == 201
    member = service.client.put(f"/v1/banks/{name}/members/test-service", headers=service.auth("analyst"))
    assert member.status_code == 200, "the service key matches against the bank"
    rows = [{"record_id": record_id, "victim_id": victim, "labels": "", **hashes_for_bank(data)}
            for record_id, data in records.items()]
    response = import_csv(service, name, rows)
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": len(rows), "rejected": [], "disabled": 0, "unsupported": {}}


def test_match_batch_reports_every_item(service, fixtures_dir, bridge):
    original = (bridge / "aaa-orig.jpg").read_bytes()
    make_bank(service, "victims", {"bridge-record": original})

    edited = sorted(p for p in bridge.glob("*.jpg") if p.name != "aaa-orig.jpg")
    rotated = sorted((fixtures_dir / "pdq" / "reg-test" / "dih").glob("bridge-[2-8]-*.jpg"))
    unrelated = [fixtures_dir / "pdq" / "reg-test" / "labelme-subset" / "q0122.jpg",
                 fixtures_dir / "pdq" / "reg-test" / "pen-and-coaster.png", fixtures_dir / "faces" / "obama-1.jpg"]
    weak = fixtures_dir / "pdq" / "reg-test" / "labelme-subset" / "q0003.jpg"  # PDQ quality 3: too weak to match
    uploads = service.upload([bridge / "aaa-orig.jpg", *edited, *rotated, *unrelated, weak])
    # A file that passed upload validation but is damaged on disk later still yields an item error.
    damaged = original[: len(original) // 3]
    analyst = service.app.keys.authenticate(service.keys["analyst"])
    with service.storage.unit() as unit:
        broken = unit.uploads.add(analyst.key_id, "damaged.jpg", service.storage.blobs.put(damaged), len(damaged))
    inputs = [u["id"] for u in uploads] + [broken.id]

    response = service.client.post("/v1/jobs", json={"type": "match_batch", "inputs": inputs,
                                                     "params": {"banks": ["victims"]}},
                                   headers=service.auth("analyst"))
    assert response.status_code == 202, response.text
    job = service.wait(response.json()["id"])
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": len(inputs), "total": len(inputs), "failed": 1}

    result = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.auth("analyst")).json()
    by_name = {item["name"]: item for item in result["items"]}
    assert len(by_name) == len(inputs)

    exact = by_name["aaa-orig.jpg"]
    assert exact["status"] == "match"
    assert exact["matches"][0] == {"bank": "victims", "record_id": "bridge-record", "victim_id": "V-1",
                                   "kind": "sha256", "distance": 0, "content_id": 1, "source": None,
                                   "source_id": None, "member_id": None, "tags": []}
    assert exact["sha256"] == hashlib.sha256(original).hexdigest()
    for path in edited:
        item = by_name[path.name]
        assert item["status"] == "match", (path.name, item)
        assert item["matches"][0]["kind"] == "pdq" and item["matches"][0]["distance"] <= 31, item
    for path in rotated:
        item = by_name[path.name]
        assert item["status"] == "match", (path.name, item)
        assert item["matches"][0]["kind"] == "pdq_dihedral", item
    for path in unrelated:
        assert by_name[path.name]["status"] == "no_match"
        assert by_name[path.name]["matches"] == []
    assert by_name["q0003.jpg"]["status"] == "low_quality" and by_name["q0003.jpg"]["quality"] < 50
    damaged = by_name["damaged.jpg"]
    assert damaged["status"] == "error" and damaged["error"]["code"] == "truncated" \
        and damaged["error"]["message"]
    assert all(set(item) <= {"index", "name", "sha256", "md5", "sha1", "pdq", "quality", "status", "error",
                             "matches"} for item in result["items"])

    report = service.client.get(f"/v1/jobs/{job['id']}/result?format=csv", headers=service.auth("analyst"))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(report.text)))
    assert {r["name"] for r in rows} == set(by_name)
    assert any(r["kind"] == "pdq_dihedral" for r in rows)


def test_hash_only_batch_and_low_quality(service, bridge):
    original = (bridge / "aaa-orig.jpg").read_bytes()
    make_bank(service, "victims", {"bridge-record": original})
    record = hashes_for_bank(original)
    flipped = f"{int(record['pdq'], 16) ^ 0b111:064x}"
    hashes = [
        {"name": "by-md5", "md5": record["md5"]},
        {"name": "by-pdq", "pdq": flipped, "quality": 90},
        {"name": "weak-pdq", "pdq": flipped, "quality": 20},
        {"name": "nothing", "pdq": "0" * 64},
    ]
    response = service.client.post("/v1/jobs", json={"type": "match_batch", "hashes": hashes,
                                                     "params": {"banks": ["victims"], "dihedral": False}},
                                   headers=service.auth("service"))
    assert response.status_code == 202, response.text
    job = service.wait(response.json()["id"], role="service")
    items = {i["name"]: i for i in service.client.get(f"/v1/jobs/{job['id']}/result",
                                                      headers=service.auth("service")).json()["items"]}
    assert items["by-md5"]["matches"][0]["kind"] == "md5"
    found = items["by-pdq"]["matches"][0]
    assert (found["bank"], found["record_id"], found["victim_id"], found["kind"], found["distance"]) == (
        "victims", "bridge-record", "V-1", "pdq", 3)
    assert items["weak-pdq"]["status"] == "low_quality" and items["weak-pdq"]["matches"] == []
    assert items["nothing"]["status"] == "no_match"


def test_idempotency_key_returns_the_same_job(service):
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    body = {"type": "match_batch", "hashes": [{"name": "x", "md5": "0" * 32}], "params": {"banks": ["b"]}}
    headers = {**service.auth("analyst"), "Idempotency-Key": "batch-42"}
    first = service.client.post("/v1/jobs", json=body, headers=headers).json()
    second = service.client.post("/v1/jobs", json=body, headers=headers).json()
    assert first["id"] == second["id"]
    other = service.client.post("/v1/jobs", json=body, headers=service.auth("analyst")).json()
    assert other["id"] != first["id"]


def test_cancel_stops_remaining_work(service, bridge):
    service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst"))
    uploads = service.upload([bridge / "aaa-orig.jpg"]) * 200
    job_id = service.client.post("/v1/jobs", json={"type": "match_batch", "inputs": [u["id"] for u in uploads],
                                                   "params": {"banks": ["b"]}},
                                 headers=service.auth("analyst")).json()["id"]
    cancelled = service.client.post(f"/v1/jobs/{job_id}/cancel", headers=service.auth("analyst"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(2)
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.auth("analyst")).json()
    assert job["status"] == "cancelled"
    assert job["progress"]["done"] < 200
    again = service.client.post(f"/v1/jobs/{job_id}/cancel", headers=service.auth("analyst"))
    assert again.status_code == 409


def test_sync_hash_and_lookup(service, bridge):
    original = (bridge / "aaa-orig.jpg").read_bytes()
    make_bank(service, "victims", {"bridge-record": original})
    response = service.client.post("/v1/hash", files={"file": ("a.jpg", original)}, headers=service.auth("service"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pdq"] == "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    assert body["quality"] == 100 and body["width"] == 1600
    found = service.client.get(f"/v1/lookup?pdq={body['pdq']}&banks=victims", headers=service.auth("service"))
    assert found.json()["matches"][0]["record_id"] == "bridge-record"
    # An import bumps the bank's revision, so the cached snapshot is not served stale.
    import_csv(service, "victims", [{"record_id": "second-record", "pdq": body["pdq"]}])
    found = service.client.get(f"/v1/lookup?pdq={body['pdq']}&banks=victims", headers=service.auth("service"))
    assert {m["record_id"] for m in found.json()["matches"]} == {"bridge-record", "second-record"}
    unknown = service.client.get(f"/v1/lookup?pdq={body['pdq']}&banks=nope", headers=service.auth("service"))
    assert unknown.status_code == 404 and "nope" in unknown.json()["message"]
    bad = service.client.post("/v1/hash", files={"file": ("a.jpg", b"<html>")}, headers=service.auth("service"))
    assert bad.status_code == 422 and bad.json()["code"] == "not_an_image"


# -- where the workers read the uploads ------------------------------------------------------------------------------

class CountingBlobStore(BlobStore):
    """The service's own blob store, counting the blobs read in the service's process."""

    def __init__(self, directory):
        super().__init__(directory)
        self.reads = 0

    def get(self, sha256: str) -> bytes:
        self.reads += 1
        return super().get(sha256)


@pytest.fixture
def photos(fixtures_dir, bridge):
    return [bridge / "aaa-orig.jpg", bridge / "blur-a-little.jpg", fixtures_dir / "faces" / "obama-1.jpg",
            fixtures_dir / "pdq" / "reg-test" / "pen-and-coaster.png"]


def counted_blobs(service) -> CountingBlobStore:
    blobs = CountingBlobStore(service.storage.blobs.directory)
    service.storage.blobs = blobs
    return blobs


def hide_the_store_from_the_workers(service) -> None:
    """The marker at the store's path now names another store: as a worker on another machine would see it."""
    (service.storage.blobs.directory / MARKER).write_text("another store's token")


def match_report(service, inputs: list[str], bank: str = "victims") -> tuple[dict, list[dict]]:
    response = service.client.post("/v1/jobs", json={"type": "match_batch", "inputs": inputs,
                                                     "params": {"banks": [bank]}}, headers=service.auth("analyst"))
    assert response.status_code == 202, response.text
    job = service.wait(response.json()["id"])
    items = service.client.get(f"/v1/jobs/{job['id']}/result", headers=service.auth("analyst")).json()["items"]
    return job, items


def test_workers_read_the_uploads_and_report_as_when_sent_their_bytes(service, photos):
    make_bank(service, "victims", {"bridge-record": photos[0].read_bytes()})
    inputs = [u["id"] for u in service.upload(photos)]
    blobs = counted_blobs(service)
    dispatcher = service.app.pool.dispatcher

    by_reference, read_by_workers = match_report(service, inputs)
    assert blobs.reads == 0, "the dispatcher read no upload"
    assert dispatcher.reads_blobs == [True] * len(dispatcher.workers)

    hide_the_store_from_the_workers(service)
    by_value, sent_by_dispatcher = match_report(service, inputs)
    assert False in dispatcher.reads_blobs, "a worker sent blob names said it cannot see the store"
    assert blobs.reads == len(inputs), "the dispatcher read each upload once, after the workers said so"

    assert by_reference["status"] == by_value["status"] == "succeeded"
    assert by_reference["progress"] == by_value["progress"] == {"done": 4, "total": 4, "failed": 0}
    assert read_by_workers == sent_by_dispatcher
    assert [item["status"] for item in read_by_workers] == ["match", "match", "no_match", "no_match"]


@pytest.mark.parametrize("sent", ["names", "bytes"])
def test_a_blob_damaged_or_gone_on_disk_is_its_items_error_and_the_others_go_on(service, photos, sent):
    make_bank(service, "victims", {"bridge-record": photos[0].read_bytes()})
    uploads = service.upload(photos[:3])
    damaged, gone = (service.storage.blobs.path(u["sha256"]) for u in uploads[1:])
    damaged.write_bytes(photos[1].read_bytes()[:-1000] + b"\0" * 1000)
    gone.unlink()
    if sent == "bytes":
        hide_the_store_from_the_workers(service)

    job, items = match_report(service, [u["id"] for u in uploads])
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": 3, "total": 3, "failed": 2}
    intact, *unavailable = items
    assert intact["status"] == "match" and intact["sha256"] == uploads[0]["sha256"]
    assert [item["error"]["code"] for item in unavailable] == ["input_unavailable"] * 2, unavailable
    assert "damaged" in unavailable[0]["error"]["message"] and "missing" in unavailable[1]["error"]["message"]
