"""The web report of a large match batch: one page of a 100,000-item report, through the real app.

    python -m bench.report_page [--items 100000] [--database-url URL]

A match job with `--items` finished items (a quarter of them matches against two banks, the rest no_match) is
written through the job repository, as the dispatcher writes results. Then pages of its report are fetched from
the web interface (session, audit row, template and all) over the ASGI app in-process: first, middle and last
pages, a verdict filter, a bank filter and sorting by distance. The reference is the bare database query for
the same page (SELECT of the page's rows by offset, and the filter's count), timed in alternating rounds on the
same database. Prints the cold first view, each case's median and worst, and the ratio to the reference; the
goal (under 300 ms a page) is judged on the slowest case's median.
"""
from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api import create_app
from fimg_service.config import Settings
from fimg_service.storage.schema import JobItem
from fimg_service.usecases import LOCAL_ADMIN

ITEMS_PER_PAGE = 50  # the web report's page size
GOAL_MS = 300


def results(count: int):
    for i in range(count):
        if i % 4 == 0:
            yield {"status": "match", "sha256": f"{i:064x}", "pdq": None, "quality": 90,
                   "matches": [{"bank": "case-a", "record_id": f"r{i}", "victim_id": f"v{i % 97}", "kind": "pdq",
                                "distance": i % 32},
                               {"bank": "case-b", "record_id": f"s{i}", "victim_id": None, "kind": "md5",
                                "distance": 0 if i % 8 else 40}]}
        else:
            yield {"status": "no_match", "sha256": f"{i:064x}", "pdq": None, "quality": 90, "matches": []}


def build_job(application, owner_id: int, count: int) -> str:
    with application.storage.unit() as unit:
        job = unit.jobs.create(owner_id, "match_batch", {"banks": ["case-a", "case-b"]},
                               [{"name": f"tipline/{i:06d}.jpg", "input": {"hashes": {}}} for i in range(count)])
        unit.jobs.set_status(job.id, "running")
    batch = []
    for idx, result in enumerate(results(count)):
        batch.append({"idx": idx, "status": "done", "result": result})
        if len(batch) == 2000 or idx == count - 1:
            with application.storage.unit() as unit:  # as a dispatcher does: lease the items, write their results
                unit.jobs.claim_items(job.id, "bench", len(batch), lease_s=600)
                unit.jobs.record_results(job.id, batch, "bench")
            batch = []
    with application.storage.unit() as unit:
        unit.jobs.set_status(job.id, "succeeded")
    return job.id


def bare_query(engine, job_id: str, where, order, offset: int) -> None:
    with engine.connect() as connection:
        connection.execute(sa.select(sa.func.count()).select_from(JobItem).where(JobItem.job_id == job_id, *where))
        connection.execute(sa.select(JobItem).where(JobItem.job_id == job_id, *where).order_by(*order)
                           .offset(offset).limit(ITEMS_PER_PAGE)).all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="fimg-bench-report-"))
    url = args.database_url or f"sqlite:///{data_dir / 'fimg.db'}"
    settings = Settings(data_dir=data_dir / "data", database_url=url, ray_address=None, num_cpus=1,
                        max_upload_bytes=2**26, chunk_size=16)
    app = create_app(settings)
    with TestClient(app) as client:
        application = app.state.application
        key, plaintext = application.keys.create(LOCAL_ADMIN, "bench-analyst", "analyst")
        started = time.perf_counter()
        job_id = build_job(application, key.id, args.items)
        print(f"wrote {args.items} item results in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
        client.post("/ui/sign-in", data={"api_key": plaintext})
        last_page = -(-args.items // ITEMS_PER_PAGE)
        matches = args.items // 4
        cases = {  # name: (query string, bare query's where, order, offset)
            "first page": ("", (), (JobItem.idx,), 0),
            "middle page": (f"?page={last_page // 2}", (), (JobItem.idx,), (last_page // 2 - 1) * ITEMS_PER_PAGE),
            "last page": (f"?page={last_page}", (), (JobItem.idx,), (last_page - 1) * ITEMS_PER_PAGE),
            "verdict=match, last page": (f"?verdict=match&page={-(-matches // ITEMS_PER_PAGE)}",
                                         (JobItem.verdict == "match",), (JobItem.idx,),
                                         (-(-matches // ITEMS_PER_PAGE) - 1) * ITEMS_PER_PAGE),
            "bank=case-b": ("?bank=case-b", (JobItem.bank == "case-b",), (JobItem.idx,), 0),
            "sorted by distance, page 100": ("?sort=distance&page=100", (), (JobItem.distance, JobItem.idx),
                                             99 * ITEMS_PER_PAGE),
        }
        started = time.perf_counter()
        client.get(f"/ui/jobs/{job_id}")  # the first view compiles the template and counts the filters' values
        print(f"first view (cold): {(time.perf_counter() - started) * 1000:.1f} ms")
        timings = {name: ([], []) for name in cases}
        for _ in range(args.rounds):
            for name, (query, where, order, offset) in cases.items():
                ours, reference = timings[name]
                started = time.perf_counter()
                response = client.get(f"/ui/jobs/{job_id}{query}")
                ours.append(time.perf_counter() - started)
                assert response.status_code == 200 and re.search(r"\d+ items", response.text), response.text[:500]
                started = time.perf_counter()
                bare_query(application.storage.engine, job_id, where, order, offset)
                reference.append(time.perf_counter() - started)
        slowest = 0.0
        print(f"{'case':32} {'page_ms':>8} {'worst_ms':>8} {'bare_query_ms':>13} {'ratio':>6}")
        for name, (ours, reference) in timings.items():
            median, bare = statistics.median(ours) * 1000, statistics.median(reference) * 1000
            slowest = max(slowest, median)
            print(f"{name:32} {median:8.1f} {max(ours) * 1000:8.1f} {bare:13.1f} {median / bare:6.1f}")
        verdict = "met" if slowest < GOAL_MS else "NOT met"
        print(f"report_page_ms={slowest:.1f} (slowest case's median) goal<{GOAL_MS} {verdict}")


if __name__ == "__main__":
    main()
