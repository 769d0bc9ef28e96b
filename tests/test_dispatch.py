"""One job cannot hold the others: a large bank is prepared beside the dispatch loop and the pool's run threads,
lookups stay warm per bank revision, and a job that is over gives its context's memory back.

Sized for a busy two-core machine (tens of seconds); `python -m bench.dispatch --records 1000000` measures the
same at a million records.
"""
from __future__ import annotations

import secrets
import statistics
import time

import numpy as np
import ray

from conftest import make_settings
from fimg_service.usecases import LOCAL_ADMIN


def bank_csv(records: int, planted: str | None = None) -> bytes:
    rows = [f"r{i},{secrets.token_hex(32)}\n" for i in range(records)]
    if planted:
        rows[-1] = f"planted,{planted}\n"
    return ("record_id,pdq\n" + "".join(rows)).encode()


def make_bank(service, name: str, records: int, planted: str | None = None) -> None:
    """A bank of the analyst's case, with the service key on its team (the tests' jobs and lookups use it)."""
    app = service.app
    analyst = app.keys.authenticate(service.keys["analyst"])
    app.banks.create(analyst, name)
    app.banks.add_member(analyst, name, "test-service")
    report = app.banks.import_file(analyst, name, bank_csv(records, planted), "csv")
    assert report.imported == records and not report.rejected


def hash_job(service, bank: str, items: int = 1) -> str:
    body = {"type": "match_batch", "params": {"banks": [bank]},
            "hashes": [{"name": f"h{i}", "md5": f"{i:032x}"} for i in range(items)]}
    response = service.client.post("/v1/jobs", json=body, headers=service.auth("analyst"))
    assert response.status_code == 202, response.text
    return response.json()["id"]


def status(service, job_id: str) -> str:
    return service.client.get(f"/v1/jobs/{job_id}", headers=service.auth("analyst")).json()["status"]


def seconds_to_finish(service, job_id: str, started: float) -> float:
    assert service.wait(job_id, timeout=120)["status"] == "succeeded"
    return time.monotonic() - started


def worker_context_keys(service) -> set[str]:
    workers = service.app.pool.dispatcher.workers
    return {key for keys in ray.get([w.context_keys.remote() for w in workers]) for key in keys}


def warmed_up(workers) -> None:
    """Wait for the actors' warm-up (imports and compiled code, both cores' worth for a second or two), which a
    timing or memory measurement must not count."""
    assert all(ray.get([w.warmed.remote() for w in workers]))


def test_a_large_bank_being_prepared_does_not_hold_a_one_item_job(service):
    warmed_up(service.app.pool.dispatcher.workers)
    make_bank(service, "small", 10)
    make_bank(service, "large", 100_000)
    started = time.monotonic()
    alone = seconds_to_finish(service, hash_job(service, "small"), started)

    service.app.pool.banks.clear()  # as after an eviction or a restart: the large job reads and builds it again
    large_job = hash_job(service, "large")
    started = time.monotonic()
    beside_the_large_one = seconds_to_finish(service, hash_job(service, "small"), started)
    assert status(service, large_job) == "running", "the large bank was still being prepared"
    assert beside_the_large_one <= alone + 1.5, (alone, beside_the_large_one)
    assert service.wait(large_job, timeout=300)["status"] == "succeeded"


def test_a_job_is_finished_when_its_last_chunk_comes_back_not_a_poll_later(service):
    warmed_up(service.app.pool.dispatcher.workers)
    make_bank(service, "bank", 10)
    service.app.pool.dispatcher.poll_interval = 10.0  # the idle wait after a claim that found nothing
    started = time.monotonic()
    assert seconds_to_finish(service, hash_job(service, "bank"), started) < 5.0


def test_a_bank_is_built_once_per_revision_for_every_job_and_lookup(service, monkeypatch):
    from workers import match_batch

    built = []
    original = match_batch.build_bank
    monkeypatch.setattr(match_batch, "build_bank", lambda storage, name: built.append(name) or original(storage, name))
    make_bank(service, "bank", 500)
    assert built == ["bank"], "the import built the new revision at once"
    for _ in range(2):
        assert service.wait(hash_job(service, "bank", items=3))["status"] == "succeeded"
    looked_up = service.client.get(f"/v1/lookup?pdq={'0' * 64}&banks=bank", headers=service.auth("service"))
    assert looked_up.status_code == 200, looked_up.text
    assert built == ["bank"], "two jobs and a lookup used the revision built at the import"
    analyst = service.app.keys.authenticate(service.keys["analyst"])
    service.app.banks.import_file(analyst, "bank", bank_csv(1).replace(b"r0,", b"again,"), "csv")
    assert built == ["bank", "bank"] and len(service.app.pool.banks.keys()) == 1, "the older revision was let go"


def test_lookups_are_warm_after_an_import_and_across_banks(service):
    planted = secrets.token_hex(32)
    make_bank(service, "hundred-k", 100_000, planted=planted)
    make_bank(service, "other", 1000, planted=planted)

    def lookup(bank: str) -> float:
        started = time.monotonic()
        response = service.client.get(f"/v1/lookup?pdq={planted}&banks={bank}", headers=service.auth("service"))
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert [m["record_id"] for m in response.json()["matches"]] == ["planted"]
        return elapsed

    timings = [lookup(bank) for bank in ("hundred-k", "other") * 5]
    # Built, a lookup costs milliseconds; cold, the 100k bank took seconds to read and build. The median holds
    # the 100 ms bound; one slow answer is the shared machine's scheduling, not a rebuild.
    assert statistics.median(timings) < 0.1 and max(timings) < 0.5, timings


def test_built_banks_stay_within_their_record_budget(ray_session, tmp_path):
    from fimg_service.usecases import Application

    app = Application(make_settings(f"sqlite:///{tmp_path / 'fimg.db'}", tmp_path / "data",
                                    lookup_cache_records=150)).start()
    try:
        for name in ("a", "b", "c"):
            app.banks.create(LOCAL_ADMIN, name)
            app.banks.import_file(LOCAL_ADMIN, name, bank_csv(60), "csv")
        built = app.pool.banks
        assert [key.split(".")[0] for key in built.keys()] == ["match:b", "match:c"]
        app.banks.import_file(LOCAL_ADMIN, "c", bank_csv(1).replace(b"r0,", b"again,"), "csv")
        assert [key.split(".")[0] for key in built.keys()] == ["match:b", "match:c"], \
            "the bank's older revision was dropped when the new one was built"
    finally:
        app.close()


def test_a_job_that_is_over_gives_its_context_back(service):
    make_bank(service, "bank", 2000)
    dispatcher = service.app.pool.dispatcher
    job_id = hash_job(service, "bank", items=3000)
    deadline = time.monotonic() + 60
    while not any(c.ready_on for c in dispatcher.contexts.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_context_keys(service), "the workers built the bank"
    cancelled = service.client.post(f"/v1/jobs/{job_id}/cancel", headers=service.auth("analyst"))
    assert cancelled.status_code == 200, cancelled.text
    deadline = time.monotonic() + 20
    while (dispatcher.contexts or worker_context_keys(service)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not dispatcher.contexts and not worker_context_keys(service)

    finished = hash_job(service, "bank")
    assert service.wait(finished)["status"] == "succeeded"
    deadline = time.monotonic() + 20  # the actors forget a context asynchronously
    while (dispatcher.contexts or worker_context_keys(service)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not dispatcher.contexts and not worker_context_keys(service)


def test_the_actors_of_a_node_share_one_built_bank(ray_session):
    """A bank is built once (by the service) and put in Ray's object store; each actor maps its arrays instead of
    holding a copy: an actor's own memory grows by a small part of the bank while it matches against it."""
    import pickle

    import psutil

    from imaging.matching import BankEntry, BankMatcher
    from workers.pool import make_workers

    rng = np.random.default_rng(12)
    hashes = rng.integers(0, 256, size=(200_000, 32), dtype=np.uint8)
    bank = BankMatcher("shared", [BankEntry(f"r{i}", f"victim-{i}", pdq=row.tobytes().hex(), md5=f"{i:032x}")
                                  for i, row in enumerate(hashes)])
    buffers: list = []
    inline = len(pickle.dumps(bank, protocol=5, buffer_callback=buffers.append))
    mapped = sum(buffer.raw().nbytes for buffer in buffers)
    assert inline < 0.01 * mapped, "a built bank is arrays, not a Python object per record"

    workers = make_workers(2, 60)
    try:
        items = [{"idx": i, "name": f"h{i}", "hashes": {"pdq": hashes[i * 997].tobytes().hex()}} for i in range(20)]

        def run(key: str, ref) -> list[dict]:
            ray.get([w.warm.remote("match_batch", key, [ref]) for w in workers])
            return ray.get([w.run_chunk.remote("match_batch", {"banks": ["shared"]}, key, [ref], items, None)
                            for w in workers])

        warmed_up(workers)
        run("warm-up", ray.put([ray.put(BankMatcher("shared", []))]))  # the first context and chunk, before measuring
        processes = [psutil.Process(pid) for pid in ray.get([w.pid.remote() for w in workers])]
        before = [p.memory_full_info().uss for p in processes]
        outputs = run("bank", ray.put([ray.put(bank)]))  # a context: references to built banks
        grown = [p.memory_full_info().uss - start for p, start in zip(processes, before)]
        for output in outputs:
            assert [r["result"]["matches"][0]["record_id"] for r in output["results"]] == \
                [f"r{i * 997}" for i in range(20)]
        assert max(grown) < 0.3 * mapped, (grown, mapped)
    finally:
        for worker in workers:
            ray.kill(worker)


def test_chunks_shrink_as_a_jobs_unclaimed_items_run_low():
    """Full chunks while plenty is left; near the end each of the workers' slots (two per worker) gets a share,
    so the last items do not queue behind one worker's running chunk."""
    from types import SimpleNamespace

    from workers.dispatcher import Dispatcher

    dispatcher = Dispatcher(storage=None, banks=SimpleNamespace(get=None), chunk_size=16)
    dispatcher.workers = [object(), object()]
    assert [dispatcher._chunk_size(n) for n in (10_000, 64, 63, 20, 4, 1, 0)] == [16, 16, 16, 5, 1, 1, 1]
