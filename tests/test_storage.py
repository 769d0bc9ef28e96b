"""Repositories on SQLite and PostgreSQL: jobs as a persisted state machine, exactly-once results,
content-addressed blobs, frozen records and the tamper-evident audit chain."""
from __future__ import annotations

import dataclasses
import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from fimg_service.errors import Conflict, NotFound
from fimg_service.storage import ITEM_DONE, ITEM_ERROR, Storage
from fimg_service.storage.audit import ChainReport
from fimg_service.storage.blobs import BlobLocation, BlobReader, BlobStore
from fimg_service.storage.migrate import upgrade
from fimg_service.storage.records import StoredRecord


@pytest.fixture
def storage(database_url, tmp_path):
    storage = Storage(database_url, tmp_path / "data")
    upgrade(storage.engine)
    yield storage
    storage.close()


def test_blobs_are_content_addressed(storage):
    sha = storage.blobs.put(b"abc")
    assert sha == hashlib.sha256(b"abc").hexdigest()
    assert storage.blobs.put(b"abc") == sha
    assert storage.blobs.get(sha) == b"abc"
    assert storage.blobs.path(sha).parent.parent.name == sha[:2]
    with pytest.raises(NotFound):
        storage.blobs.get("0" * 64)


def test_a_blob_reader_reads_the_store_it_is_given_only_where_it_finds_that_store(storage, tmp_path):
    sha = storage.blobs.put(b"evidence")
    location = storage.blobs.location
    assert Path(location.directory).is_absolute()
    assert BlobStore(location.directory).location == location, "the marker is written once, then kept"
    reader = BlobReader(location)
    assert reader.reachable() and reader.get(sha) == b"evidence"
    assert not BlobReader(BlobLocation(location.directory, "another store")).reachable()
    assert not BlobReader(BlobLocation(str(tmp_path / "elsewhere"), location.token)).reachable()

    storage.blobs.path(sha).write_bytes(b"evidencf")
    for blobs in (reader, storage.blobs):  # a damaged file is never taken for the stored one
        with pytest.raises(NotFound, match="damaged"):
            blobs.get(sha)


def test_repositories_return_frozen_records(storage):
    with storage.unit() as unit:
        key = unit.keys.create("svc", "service", "f" * 64)
        bank = unit.banks.create("b", None, None, key.id)
    with storage.read() as unit:
        found = unit.keys.active_by_hash("f" * 64)
    assert found == key and found.role == "service"
    for record in (key, bank):
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.name = "other"


def test_unit_rolls_back_the_change_with_its_audit_row(storage):
    with pytest.raises(RuntimeError):
        with storage.unit() as unit:
            unit.banks.create("b", None, None, None)
            unit.audit.append(None, "t", "admin", "create", "bank", "b")
            raise RuntimeError("failure after the change")
    with storage.read() as unit:
        assert unit.banks.get("b") is None and unit.audit.entries() == []


def test_job_state_machine_and_exactly_once_results(storage):
    with storage.unit() as unit:
        job = unit.jobs.create(None, "match_batch", {"banks": ["b"]},
                               [{"name": f"f{i}", "input": {"i": i}} for i in range(5)])
    assert job.status == "queued" and job.total == 5
    with storage.unit() as unit:
        jobs = unit.jobs
        assert jobs.set_status(job.id, "running", only_from=("queued",))
        assert not jobs.set_status(job.id, "running", only_from=("queued",))
        assert [i.idx for i in jobs.claim_items(job.id, "me", limit=2, lease_s=60)] == [0, 1]
        results = [{"idx": 0, "status": ITEM_DONE, "result": {"a": 1}}, {"idx": 1, "status": ITEM_ERROR, "result": {}}]
        assert jobs.record_results(job.id, results, owner="me") == 2
        assert jobs.record_results(job.id, results, owner="me") == 0  # a retried chunk never counts twice
        current = jobs.get(job.id)
        assert (current.done, current.failed) == (2, 1)
        assert [i.idx for i in jobs.claim_items(job.id, "me", limit=1, lease_s=60, exclude={2})] == [3]
        assert jobs.count_attempt(job.id, [3]) == {3: 1}
        assert jobs.set_status(job.id, "cancelled")
        assert jobs.record_results(job.id, [{"idx": 3, "status": ITEM_DONE, "result": {}}], owner="me") == 0
        assert jobs.get(job.id).status == "cancelled" and jobs.count_pending(job.id) == 3
        assert job.id not in [j.id for j in jobs.active()]


def test_leases_share_items_between_dispatchers_and_expire(storage):
    with storage.unit() as unit:
        job = unit.jobs.create(None, "match_batch", {"banks": ["b"]},
                               [{"name": f"f{i}", "input": {"i": i}} for i in range(6)])
        unit.jobs.set_status(job.id, "running")
    with storage.unit() as unit:
        assert [i.idx for i in unit.jobs.claim_items(job.id, "a", limit=2, lease_s=60)] == [0, 1]
        assert [i.idx for i in unit.jobs.claim_items(job.id, "b", limit=2, lease_s=0)] == [2, 3]
        assert unit.jobs.record_results(job.id, [{"idx": 0, "status": ITEM_DONE, "result": {}}], owner="b") == 0
    with storage.unit() as unit:  # b's leases expired at once: c takes them over, and only c's results count
        assert [i.idx for i in unit.jobs.claim_items(job.id, "c", limit=3, lease_s=60)] == [2, 3, 4]
        assert unit.jobs.record_results(job.id, [{"idx": 2, "status": ITEM_DONE, "result": {}}], owner="b") == 0
        assert unit.jobs.record_results(job.id, [{"idx": 2, "status": ITEM_DONE, "result": {}}], owner="c") == 1
        assert unit.jobs.renew_leases("c", lease_s=60, items={job.id: [2, 3, 4]}) == 2
        assert unit.jobs.release_leases("a", job.id, [1]) == 1
    with storage.unit() as unit:
        assert [i.idx for i in unit.jobs.claim_items(job.id, "b", limit=5, lease_s=60)] == [1, 5]
        assert unit.jobs.get(job.id).done == 1


def test_a_chunk_of_results_is_written_in_one_statement_and_only_for_the_lease_holder(storage):
    with storage.unit() as unit:
        job = unit.jobs.create(None, "match_batch", {"banks": ["b"]},
                               [{"name": f"f{i}", "input": {"i": i}} for i in range(6)])
        unit.jobs.set_status(job.id, "running")
        unit.jobs.claim_items(job.id, "a", limit=4, lease_s=60)
        unit.jobs.claim_items(job.id, "b", limit=2, lease_s=60)
    match = {"status": "match", "matches": [{"bank": "b", "record_id": "r", "kind": "pdq", "distance": 12}]}
    failed = {"status": "error", "error": {"code": "corrupt", "message": "damaged"}}
    results = [{"idx": 0, "status": ITEM_DONE, "result": match}, {"idx": 1, "status": ITEM_ERROR, "result": failed},
               {"idx": 2, "status": ITEM_DONE, "result": {"status": "no_match", "matches": []}},
               {"idx": 0, "status": ITEM_ERROR, "result": failed},  # listed twice: the first result counts
               {"idx": 4, "status": ITEM_DONE, "result": match}]  # b holds it: not a's to write
    statements = []

    def count(_conn, _cursor, statement, _params, _context, executemany):
        if statement.lstrip().upper().startswith("UPDATE JOB_ITEMS"):
            statements.append(executemany)

    sa.event.listen(storage.engine, "before_cursor_execute", count)
    try:
        with storage.unit() as unit:
            assert unit.jobs.record_results(job.id, results, owner="a", node="n1") == 3
            events = list(unit.jobs.events)
    finally:
        sa.event.remove(storage.engine, "before_cursor_execute", count)
    assert statements == [True], "one executemany for the chunk"
    assert events == [("item_failed", {"job": job.id, "type": "match_batch", "item": 1, "code": "corrupt"})]
    with storage.read() as unit:
        record = unit.jobs.get(job.id)
        items = unit.jobs.items(job.id)
        assert (record.done, record.failed) == (3, 1)
        assert [(i.status, i.result, i.node, i.completions) for i in items[:3]] == [
            (ITEM_DONE, match, "n1", 1), (ITEM_ERROR, failed, "n1", 1),
            (ITEM_DONE, {"status": "no_match", "matches": []}, "n1", 1)]
        assert [i.status for i in items[3:]] == ["pending"] * 3
        total, page = unit.jobs.report_page(job.id, verdict="match")
        assert total == 1 and page[0].idx == 0, "the summary columns a report filters on are written too"
        assert unit.jobs.report_facets(job.id)["bank"] == {"b": 1}
    with storage.unit() as unit:  # a's leases were released with the writes; a's pending item 3 is still a's
        assert [i.idx for i in unit.jobs.claim_items(job.id, "c", limit=6, lease_s=60)] == []
        assert unit.jobs.release_leases("a", job.id) == 1


def test_idempotency_keys_and_listing_are_per_owner(storage):
    with storage.unit() as unit:
        alice = unit.keys.create("alice", "analyst", "a" * 64)
        bob = unit.keys.create("bob", "analyst", "b" * 64)
        first = unit.jobs.create(alice.id, "t", {}, [{"name": "a", "input": {}}], idempotency_key="k")
        other = unit.jobs.create(bob.id, "t", {}, [{"name": "a", "input": {}}], idempotency_key="k")
    with storage.read() as unit:
        assert unit.jobs.by_idempotency_key(alice.id, "k") == first
        assert unit.jobs.by_idempotency_key(bob.id, "k") == other
        assert [j.id for j in unit.jobs.list(alice.id)] == [first.id]
        assert {j.id for j in unit.jobs.list(all_owners=True)} == {first.id, other.id}


def test_bank_names_are_unique_and_records_bump_the_revision(storage):
    with storage.unit() as unit:
        bank = unit.banks.create("b", None, 20, None)
        with pytest.raises(Conflict):
            unit.banks.create("b", None, None, None)
        unit.banks.add_records(bank.id, [StoredRecord("r1", "v", None, "0" * 32, None, None, ("x",)),
                                         StoredRecord("r2", None, "a" * 64, None, None, None, (),
                                                      {"pdq_crop": ["b" * 64]})])
    with storage.read() as unit:
        bank = unit.banks.get("b")
        assert bank.records == 2 and bank.revision == 1 and bank.threshold == 20
        records = unit.banks.records(bank.id)
        assert [r.labels for r in records] == [("x",), ()] and records[1].extra_hashes == {"pdq_crop": ["b" * 64]}
        assert unit.banks.record_ids(bank.id) == {"r1", "r2"}


def test_audit_chain_survives_concurrent_writers_and_detects_edits(storage):
    def write(i: int) -> None:
        with storage.unit() as unit:
            unit.audit.append(None, "local-cli", "admin", "read", "job", f"job-{i}", {"i": i})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(40)))
    assert storage.verify_audit() == ChainReport(True, None, 40)
    with storage.read() as unit:
        entries = unit.audit.entries(limit=1000)
    assert {e.object_id for e in entries} == {f"job-{i}" for i in range(40)}
    with storage.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET object_id = 'other' WHERE id = :id"), {"id": entries[10].id})
    assert storage.verify_audit() == ChainReport(False, entries[10].id, 10, "edited")
    with storage.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE id = :id"), {"id": entries[20].id})
        conn.execute(sa.text("UPDATE audit_log SET object_id = :o WHERE id = :id"),
                     {"o": entries[10].object_id, "id": entries[10].id})
    report = storage.verify_audit()
    assert not report.intact and report.first_bad_id == entries[21].id and report.problem == "edited"


def append(storage, n: int) -> list:
    for i in range(n):
        with storage.unit() as unit:
            unit.audit.append(None, "local-cli", "admin", "read", "job", f"job-{i}")
    with storage.read() as unit:
        return unit.audit.entries(limit=1000)


def test_deleting_the_newest_audit_rows_is_seen(storage):
    entries = append(storage, 5)
    with storage.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE id >= :id"), {"id": entries[3].id})
    report = storage.verify_audit()
    assert (report.intact, report.problem, report.first_bad_id, report.checked) == (False, "truncated",
                                                                                   entries[4].id, 3)


def test_a_row_rewritten_with_the_chain_recomputed_without_the_key_is_seen(storage):
    """The attacker can write the table but not read the key: the best they can do is a plain SHA-256 chain."""
    from fimg_service.storage.audit import GENESIS_HASH, _fields, unkeyed_row_hash
    from fimg_service.storage.schema import AuditEntry

    append(storage, 4)
    with storage.db._sessions() as session, session.begin():
        prev_hash = GENESIS_HASH
        for entry in session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)):
            if entry.object_id == "job-1":
                entry.object_id = "job-other"
            entry.prev_hash = prev_hash
            entry.row_hash = unkeyed_row_hash(prev_hash, _fields(entry))
            prev_hash = entry.row_hash
    report = storage.verify_audit()
    assert not report.intact and report.problem == "edited"


def test_a_chain_from_before_keys_still_verifies_up_to_its_first_keyed_row(storage):
    from fimg_service.storage.audit import GENESIS_HASH, unkeyed_row_hash

    at = "2026-01-01T00:00:00+00:00"
    fields = {"at": at, "actor_id": None, "actor_name": "local-cli", "role": "admin", "action": "create",
              "object_type": "bank", "object_id": "b", "detail": "{}"}
    old_hash = unkeyed_row_hash(GENESIS_HASH, fields)
    with storage.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO audit_log (at, actor_id, actor_name, role, action, object_type, object_id,"
                             " detail, prev_hash, row_hash) VALUES (:at, NULL, 'local-cli', 'admin', 'create', "
                             "'bank', 'b', '{}', :prev, :hash)"), {"at": at, "prev": GENESIS_HASH, "hash": old_hash})
    append(storage, 2)
    assert storage.verify_audit() == ChainReport(True, None, 3)


def test_the_key_and_checkpoint_files_are_private(storage):
    append(storage, 1)
    for name in ("audit.key", "audit.checkpoint"):
        assert (storage.data_dir / name).stat().st_mode & 0o777 == 0o600, name
    checkpoint = storage.data_dir / "audit.checkpoint"
    checkpoint.write_text(checkpoint.read_text().replace('"id": 1', '"id": 9'))
    assert storage.verify_audit().problem == "checkpoint"


def test_galleries_keep_subjects_and_delete_embeddings(storage):
    face = {"subject_id": "s1", "label": "A", "age_at_photo": 7.0, "source_sha256": "0" * 64, "face_index": 0,
            "embedding": [0.1] * 128, "quality": 90.0}
    with storage.unit() as unit:
        gallery = unit.galleries.create("case-1", None, None, None)
        unit.galleries.add_faces(gallery.id, [face, {**face, "subject_id": "s2"}])
    with storage.unit() as unit:
        assert unit.galleries.get("case-1").subjects == 2
        assert unit.galleries.delete_subject(gallery.id, "s1") == 1
        assert [f.subject_id for f in unit.galleries.faces(gallery.id)] == ["s2"]
        assert unit.galleries.delete_subject(gallery.id, "s1") == 0
        assert unit.galleries.get("case-1").revision == 2


def test_the_database_file_and_blobs_are_private(tmp_path):
    storage = Storage(f"sqlite:///{tmp_path / 'data' / 'fimg.db'}", tmp_path / "data")
    try:
        upgrade(storage.engine)
        sha = storage.blobs.put(b"image bytes")
        assert (tmp_path / "data" / "fimg.db").stat().st_mode & 0o777 == 0o600
        assert storage.blobs.path(sha).stat().st_mode & 0o777 == 0o600
        assert storage.blobs.path(sha).parent.stat().st_mode & 0o777 == 0o700
    finally:
        storage.close()
