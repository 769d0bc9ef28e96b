"""Workers read their items' files from the blob store's disk, by SHA-256, and check them against their names;
the dispatcher reads none of them. A worker that does not see the store is sent the bytes instead, and reports
the same. Real service, real Ray actors, real files."""
from __future__ import annotations

import pytest

from fimg_service.storage.blobs import MARKER, BlobStore
from test_match_service import make_bank


class CountingBlobStore(BlobStore):
    """The service's own blob store, counting the blobs read in the service's process."""

    def __init__(self, directory):
        super().__init__(directory)
        self.reads = 0

    def get(self, sha256: str) -> bytes:
        self.reads += 1
        return super().get(sha256)


@pytest.fixture
def photos(fixtures_dir):
    bridge = fixtures_dir / "pdq" / "bridge-mods"
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
