"""One large bank against the rest of the service: how long a one-item job and a lookup wait beside it.

    python -m bench.dispatch --records 1000000 [--cpus 2]

Builds a bank of `--records` random PDQ records (written straight through the repository: the import's own
parsing is not what is measured), starts the application with its own Ray, and times
1. a one-item job on a small bank, alone and then submitted just after a match job on the large bank (whose
   context is then being read and built): the difference is what the large bank costs the small job;
2. the large job's time to succeed (its preparation included), for scale;
3. lookups after the large bank changed (its new revision built after the change, as after an import),
   alternating with a small bank.
`tests/test_dispatch.py` checks the same at 50k/100k records.
"""
from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from fimg_service.config import Settings
from fimg_service.storage.records import StoredRecord
from fimg_service.usecases import LOCAL_ADMIN, Application, job_request


def fill_bank(app: Application, name: str, records: int, planted: str) -> None:
    app.banks.create(LOCAL_ADMIN, name)
    batch = 100_000
    for start in range(0, records, batch):
        rows = [StoredRecord(record_id=f"r{i}", victim_id=None, pdq=secrets.token_hex(32), md5=None, sha1=None,
                             sha256=None) for i in range(start, min(records, start + batch))]
        if start + batch >= records:
            rows[-1] = StoredRecord(record_id="planted", victim_id=None, pdq=planted, md5=None, sha1=None, sha256=None)
        with app.storage.unit() as unit:
            unit.banks.add_records(unit.banks.get(name).id, rows)


def one_item_job(app: Application, bank: str) -> str:
    return app.jobs.submit(LOCAL_ADMIN, "match_batch", job_request([], [{"name": "h", "md5": "0" * 32}]),
                           {"banks": [bank]}).id


def seconds_to_succeed(app: Application, job_id: str, started: float) -> float:
    job = app.jobs.wait(LOCAL_ADMIN, job_id, poll_s=0.01)
    assert job.status == "succeeded", (job.status, job.error)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    planted = secrets.token_hex(32)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        app = Application(Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'fimg.db'}",
                                   ray_address=None, num_cpus=args.cpus, max_upload_bytes=2**20, chunk_size=16))
        app.prepare_schema()
        started = time.monotonic()
        fill_bank(app, "large", args.records, planted)
        fill_bank(app, "small", 10, planted)
        print(f"bank of {args.records} records written in {time.monotonic() - started:.1f} s")
        app.start()
        try:
            seconds_to_succeed(app, one_item_job(app, "small"), time.monotonic())  # actors warm, models loaded
            alone = seconds_to_succeed(app, one_item_job(app, "small"), time.monotonic())
            large_job = one_item_job(app, "large")
            large_started = time.monotonic()
            beside = seconds_to_succeed(app, one_item_job(app, "small"), time.monotonic())
            large_status = app.jobs.status(LOCAL_ADMIN, large_job).status
            large = seconds_to_succeed(app, large_job, large_started)
            print(f"one-item job: {alone:.3f} s alone, {beside:.3f} s beside the large bank's preparation "
                  f"(delay {beside - alone:+.3f} s; the large job was {large_status} then, succeeded after "
                  f"{large:.1f} s)")

            started = time.monotonic()
            app.pool.bank_changed("large", wait=True)
            app.pool.bank_changed("small", wait=True)
            print(f"large bank ready for lookups after the change in {time.monotonic() - started:.1f} s")
            timings = {"large": [], "small": []}
            for bank in ("large", "small") * 10:
                started = time.monotonic()
                matches = app.hashing.lookup(LOCAL_ADMIN, {"pdq": planted}, [bank])
                timings[bank].append(time.monotonic() - started)
                assert [m["record_id"] for m in matches] == ["planted"]
            for bank, values in timings.items():
                print(f"lookup on the {bank} bank, alternating: median {statistics.median(values) * 1000:.1f} ms, "
                      f"max {max(values) * 1000:.1f} ms")
        finally:
            app.close()


if __name__ == "__main__":
    main()
