"""The storage module on SQLite and PostgreSQL: jobs as a persisted state machine, exactly-once results,
content-addressed blobs, hashed keys and the tamper-evident audit chain."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from storage import ITEM_DONE, ITEM_ERROR, LOCAL_ADMIN, Conflict, NotFound, Store


@pytest.fixture
def store(database_url, tmp_path):
    store = Store(database_url, tmp_path / "data")
    store.create_schema()
    yield store
    store.close()


def test_blobs_are_content_addressed(store):
    sha = store.put_blob(b"abc")
    assert sha == hashlib.sha256(b"abc").hexdigest()
    assert store.put_blob(b"abc") == sha
    assert store.get_blob(sha) == b"abc"
    assert store.blob_path(sha).parent.parent.name == sha[:2]
    with pytest.raises(NotFound):
        store.get_blob("0" * 64)


def test_keys_authenticate_by_hash_only(store):
    principal, plaintext = store.create_key("svc", "service")
    assert store.authenticate(plaintext) == principal
    assert store.authenticate(plaintext + "x") is None
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_hash FROM api_keys")).scalar()
    assert stored == hashlib.sha256(plaintext.encode()).hexdigest() and plaintext not in stored
    with pytest.raises(ValueError, match="unknown role"):
        store.create_key("x", "root")


def test_job_state_machine_and_exactly_once_results(store):
    job, created = store.create_job(LOCAL_ADMIN, "match_batch", {"banks": ["b"]},
                                    [{"name": f"f{i}", "input": {"i": i}} for i in range(5)])
    assert created and job.status == "queued" and job.total == 5
    assert store.set_job_status(job.id, "running", only_from=("queued",))
    assert not store.set_job_status(job.id, "running", only_from=("queued",))
    results = [{"idx": 0, "status": ITEM_DONE, "result": {"a": 1}}, {"idx": 1, "status": ITEM_ERROR, "result": {}}]
    assert store.record_results(job.id, results) == 2
    assert store.record_results(job.id, results) == 0  # a retried chunk never counts twice
    job = store.get_job(job.id)
    assert (job.done, job.failed) == (2, 1)
    assert [i.idx for i in store.pending_items(job.id, limit=10)] == [2, 3, 4]
    assert [i.idx for i in store.pending_items(job.id, limit=10, exclude={2})] == [3, 4]
    assert store.count_attempt(job.id, [3]) == {3: 1}
    assert store.set_job_status(job.id, "cancelled")
    assert store.record_results(job.id, [{"idx": 2, "status": ITEM_DONE, "result": {}}]) == 0
    assert store.get_job(job.id).status == "cancelled" and store.count_pending(job.id) == 3
    assert job.id not in [j.id for j in store.active_jobs()]


def test_idempotency_is_per_owner(store):
    alice, _ = store.create_key("alice", "analyst")
    bob, _ = store.create_key("bob", "analyst")
    first, created = store.create_job(alice, "t", {}, [{"name": "a", "input": {}}], idempotency_key="k")
    again, created_again = store.create_job(alice, "t", {}, [{"name": "a", "input": {}}], idempotency_key="k")
    other, _ = store.create_job(bob, "t", {}, [{"name": "a", "input": {}}], idempotency_key="k")
    assert created and not created_again and again.id == first.id and other.id != first.id
    assert [j.id for j in store.list_jobs(alice)] == [first.id]


def test_bank_records_reject_duplicates(store):
    from imaging.banks import BankRecord

    store.create_bank(LOCAL_ADMIN, "b", threshold=20)
    with pytest.raises(Conflict):
        store.create_bank(LOCAL_ADMIN, "b")
    records = [BankRecord("r1", "v", None, "0" * 32, None, None, ("x",)),
               BankRecord("r2", None, "a" * 64, None, None, None, ())]
    assert store.import_records("b", records, [2, 3]) == (2, [])
    imported, rejected = store.import_records("b", records[:1], [7])
    assert imported == 0 and rejected == [{"line": 7, "error": "record_id 'r1' already exists in bank"}]
    assert store.list_banks()[0]["records"] == 2 and store.get_bank("b").revision == 2
    assert [r.labels for r in store.bank_records("b")] == [["x"], []]


def test_audit_chain_survives_concurrent_writers_and_detects_edits(store):
    def write(i: int) -> None:
        store.audit(LOCAL_ADMIN, "read", "job", f"job-{i}", {"i": i})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(40)))
    assert store.verify_audit() == (True, None, 40)
    entries = store.audit_entries(limit=1000)
    assert {e["object_id"] for e in entries} == {f"job-{i}" for i in range(40)}
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET object_id = 'other' WHERE id = :id"), {"id": entries[10]["id"]})
    intact, bad_id, checked = store.verify_audit()
    assert not intact and bad_id == entries[10]["id"] and checked == 10
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE id = :id"), {"id": entries[20]["id"]})
        conn.execute(sa.text("UPDATE audit_log SET object_id = :o WHERE id = :id"),
                     {"o": entries[10]["object_id"], "id": entries[10]["id"]})
    intact, bad_id, _ = store.verify_audit()
    assert not intact and bad_id == entries[21]["id"]


def test_galleries_keep_subjects_and_delete_embeddings(store):
    store.create_gallery(LOCAL_ADMIN, "case-1")
    face = {"subject_id": "s1", "label": "A", "age_at_photo": 7.0, "source_sha256": "0" * 64, "face_index": 0,
            "embedding": [0.1] * 128, "quality": 90.0}
    store.add_gallery_faces("case-1", [face, {**face, "subject_id": "s2"}])
    assert store.list_galleries()[0]["subjects"] == 2
    assert store.delete_subject("case-1", "s1") == 1
    assert [f.subject_id for f in store.gallery_faces("case-1")] == ["s2"]
    with pytest.raises(NotFound):
        store.delete_subject("case-1", "s1")
