"""How a finished job is reported: a job whose every item failed is `failed` with the first item's error; one good
item keeps it `succeeded` (through the real API, database and Ray pool)."""
from __future__ import annotations


def test_a_job_whose_every_item_failed_is_failed_with_the_first_error(service, fixtures_dir):
    original = (fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    assert service.client.post("/v1/banks", json={"name": "b"}, headers=service.auth("analyst")).status_code == 201
    [good] = service.upload([fixtures_dir / "pdq" / "bridge-mods" / "aaa-orig.jpg"])
    # Files that passed upload validation but were damaged on disk later: each is an error item.
    analyst = service.app.keys.authenticate(service.keys["analyst"])
    with service.storage.unit() as unit:
        damaged = [unit.uploads.add(analyst.key_id, f"damaged-{n}.jpg", service.storage.blobs.put(data), len(data))
                   for n, data in enumerate((original[:400], original[: len(original) // 2]))]

    def run(inputs: list[str]) -> dict:
        response = service.client.post("/v1/jobs", json={"type": "match_batch", "inputs": inputs,
                                                         "params": {"banks": ["b"]}},
                                       headers=service.auth("analyst"))
        assert response.status_code == 202, response.text
        return service.wait(response.json()["id"])

    every_item_failed = run([u.id for u in damaged])
    items = service.client.get(f"/v1/jobs/{every_item_failed['id']}/result",
                               headers=service.auth("analyst")).json()["items"]
    assert [item["status"] for item in items] == ["error", "error"]
    assert every_item_failed["status"] == "failed"
    assert every_item_failed["progress"] == {"done": 2, "total": 2, "failed": 2}
    assert every_item_failed["error"] == items[0]["error"]["message"]

    one_good = run([good["id"], damaged[0].id])
    assert one_good["status"] == "succeeded" and one_good["error"] is None
    assert one_good["progress"] == {"done": 2, "total": 2, "failed": 1}
