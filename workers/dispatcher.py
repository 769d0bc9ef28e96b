"""The dispatcher: one thread that moves persisted jobs through the Ray worker pool.

Jobs are a state machine in the database (`queued -> running -> succeeded | failed | cancelled`); items are
`pending` until a worker's result is written. The dispatcher holds no state that the database does not also
hold, so a restarted service resumes every queued or running job and redoes only unfinished items. A chunk whose
worker died is retried item by item; an item that kills its worker `max_attempts` times is reported as an error,
so a poison file costs itself, never its batch.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import ray
from pydantic import ValidationError
from ray.exceptions import TaskCancelledError

from fimg_service.errors import FimgError
from fimg_service.storage import ITEM_DONE, ITEM_ERROR, Storage
from workers.pool import ContextRefs, cluster_cpus, make_workers
from workers.registry import get_job_type, item_error

log = logging.getLogger("fimg.dispatcher")


@dataclass
class ActiveJob:
    id: str
    type: str
    params: dict
    context_key: str
    context_ref: Any
    in_flight: set[int] = field(default_factory=set)


@dataclass
class Chunk:
    job_id: str
    indices: list[int]
    worker: int


class Dispatcher:
    def __init__(self, storage: Storage, chunk_size: int = 16, num_workers: int | None = None,
                 only_jobs: Iterable[str] | None = None, max_attempts: int = 3, poll_interval: float = 0.5):
        self.storage = storage
        self.chunk_size = chunk_size
        self.num_workers = num_workers
        self.only_jobs = set(only_jobs) if only_jobs is not None else None
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.workers: list = []
        self.worker_load: list[int] = []
        self.jobs: dict[str, ActiveJob] = {}
        self.in_flight: dict[Any, Chunk] = {}
        self.contexts = ContextRefs()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reconcile = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> "Dispatcher":
        count = self.num_workers or cluster_cpus()
        self.workers = make_workers(count)
        self.worker_load = [0] * count
        self._thread = threading.Thread(target=self._run, name="fimg-dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in self.workers:
            ray.kill(worker)
        self.workers = []

    def wake(self) -> None:
        """Called after a job is created or cancelled so the dispatcher looks at once."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:
                log.exception("dispatcher step failed; retrying")
                time.sleep(1.0)

    def _step(self) -> None:
        if self._wake.is_set() or time.monotonic() - self._last_reconcile > self.poll_interval:
            self._wake.clear()
            self._reconcile()
        self._fill()
        if self.in_flight:
            ready, _ = ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0.05)
            for ref in ready:
                self._complete(ref)
        else:
            self._wake.wait(self.poll_interval)

    # -- jobs --------------------------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        self._last_reconcile = time.monotonic()
        with self.storage.read() as unit:
            active = {job.id: job for job in unit.jobs.active()
                      if self.only_jobs is None or job.id in self.only_jobs}
        for job_id in list(self.jobs):
            if job_id not in active:
                self._drop(job_id)
        for job in active.values():
            if job.id in self.jobs:
                continue
            if job.status == "queued":
                self._set_status(job.id, "running", only_from=("queued",))
            try:
                spec = get_job_type(job.type)
                spec.params(job.params)
                context_key, context_ref = self.contexts.get(spec, self.storage, job.params)
            except ValidationError as exc:
                self._set_status(job.id, "failed",
                                 error=f"the stored params no longer validate: {exc.errors()[0]['msg']}")
                continue
            except FimgError as exc:
                self._set_status(job.id, "failed", error=exc.message)
                continue
            except Exception as exc:
                log.exception("preparing job %s failed", job.id)
                self._set_status(job.id, "failed", error=f"could not prepare the job: {type(exc).__name__}")
                continue
            self.jobs[job.id] = ActiveJob(job.id, job.type, job.params, context_key, context_ref)

    def _set_status(self, job_id: str, status: str, **options) -> bool:
        with self.storage.unit() as unit:
            return unit.jobs.set_status(job_id, status, **options)

    def _record(self, job_id: str, results: list[dict], node: str | None = None) -> None:
        with self.storage.unit() as unit:
            unit.jobs.record_results(job_id, results, node=node)

    def _drop(self, job_id: str) -> None:
        """The job left the active states (cancelled, or finished by another process): stop its work."""
        for ref, chunk in list(self.in_flight.items()):
            if chunk.job_id == job_id:
                ray.cancel(ref)
        self.jobs.pop(job_id, None)

    def _finish_if_done(self, job: ActiveJob) -> None:
        if job.in_flight:
            return
        with self.storage.read() as unit:
            pending = unit.jobs.count_pending(job.id)
            record = unit.jobs.get(job.id)
            every_item_failed = pending == 0 and record.failed == record.total > 0
            first_error = unit.jobs.first_item(job.id).result["error"]["message"] if every_item_failed else None
        if pending == 0:
            status = "failed" if every_item_failed else "succeeded"
            self._set_status(job.id, status, error=first_error, only_from=("running",))
            self.jobs.pop(job.id, None)

    # -- chunks ------------------------------------------------------------------------------------------------

    def _fill(self) -> None:
        capacity = 2 * len(self.workers)
        progressed = True
        while progressed and len(self.in_flight) < capacity:
            progressed = False
            for job in list(self.jobs.values()):
                if len(self.in_flight) >= capacity:
                    break
                if self._submit_next_chunk(job):
                    progressed = True

    def _submit_next_chunk(self, job: ActiveJob) -> bool:
        with self.storage.read() as unit:
            items = unit.jobs.pending_items(job.id, limit=self.chunk_size, exclude=job.in_flight)
        if not items:
            self._finish_if_done(job)
            return False
        solo = [item for item in items if item.attempts > 0]
        items = solo[:1] if solo else items
        spec = get_job_type(job.type)
        payload, failed = [], []
        for item in items:
            try:
                payload.append({"idx": item.idx, "name": item.name, **spec.load_item(self.storage, item.input)})
            except Exception as exc:
                failed.append({"idx": item.idx, "status": ITEM_ERROR, "result": item_error(
                    "input_unavailable", f"input unavailable: {getattr(exc, 'message', exc)}").result})
        if failed:
            self._record(job.id, failed)
        if not payload:
            return True
        worker = min(range(len(self.workers)), key=self.worker_load.__getitem__)
        ref = self.workers[worker].run_chunk.remote(job.type, job.params, job.context_key, [job.context_ref],
                                                     payload)
        indices = [p["idx"] for p in payload]
        self.in_flight[ref] = Chunk(job.id, indices, worker)
        self.worker_load[worker] += 1
        job.in_flight.update(indices)
        return True

    def _complete(self, ref: Any) -> None:
        chunk = self.in_flight.pop(ref)
        self.worker_load[chunk.worker] -= 1
        job = self.jobs.get(chunk.job_id)
        try:
            output = ray.get(ref)
        except TaskCancelledError:
            return
        except Exception as exc:
            if job is not None:
                self._retry(job, chunk, exc)
            return
        if job is None:
            return
        artifacts = [(name, self.storage.blobs.put(data), len(data), content_type)
                     for res in output["results"] for name, (data, content_type) in res["artifacts"].items()]
        written = [{"idx": res["idx"], "status": ITEM_DONE if res["ok"] else ITEM_ERROR, "result": res["result"]}
                   for res in output["results"]]
        with self.storage.unit() as unit:
            for name, sha256, size, content_type in artifacts:
                unit.jobs.put_artifact(job.id, name, sha256, size, content_type)
            unit.jobs.record_results(job.id, written, node=output.get("node"))
        job.in_flight.difference_update(chunk.indices)

    def _retry(self, job: ActiveJob, chunk: Chunk, exc: Exception) -> None:
        log.warning("a chunk of job %s was lost (%s); retrying its %d items", job.id, type(exc).__name__,
                    len(chunk.indices))
        lost = item_error("worker_failed", f"the worker failed {self.max_attempts} times while processing this item")
        with self.storage.unit() as unit:
            attempts = unit.jobs.count_attempt(job.id, chunk.indices)
            exhausted = [idx for idx in chunk.indices if attempts.get(idx, 0) >= self.max_attempts]
            unit.jobs.record_results(job.id, [{"idx": idx, "status": ITEM_ERROR, "result": lost.result}
                                              for idx in exhausted])
        job.in_flight.difference_update(chunk.indices)
