"""The dispatcher: one thread that moves persisted jobs through the Ray worker pool.

Jobs are a state machine in the database (`queued -> running -> succeeded | failed | cancelled`); items are
`pending` until a worker's result is written. The dispatcher holds no state that the database does not also
hold, so a restarted service resumes every queued or running job and redoes only unfinished items. A chunk whose
worker died (or that did not come back within the chunk timeout) is retried item by item; an item that kills its
worker `max_attempts` times is reported as an error, so a poison file costs itself, never its batch.

Nothing slow runs on the dispatch loop. A job's context (its built banks, a gallery matrix) is prepared by a
preparation thread (a bank not built yet is read and built there, then kept built for the next job and the
lookups: `workers.built_banks`), put in Ray's object store and taken up by each actor's `setup` thread; until
both are done the job simply sends no chunks, and every other job goes on. A context lives while an active job
needs it: when the last such job finishes, fails or is cancelled, every actor's hold on it is dropped.

Several dispatchers (service replicas) may share one database: each claims items with a lease
(`JobRepository.claim_items`), a heartbeat thread renews its leases, and a dispatcher that dies simply stops
renewing, so its items are claimed again once the lease expires. Only a lease holder's result is written.

An item's file does not pass through the dispatcher where it need not: a chunk names its items' blobs and where
the blob store is, and the actor reads them from the store's disk. An actor that does not see that disk (another
machine) says so, and from then on it is sent its items' bytes, read here, through Ray's object store.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ray
from pydantic import ValidationError
from ray.exceptions import RayTaskError, TaskCancelledError

from fimg_service.errors import FimgError
from fimg_service.storage import ITEM_DONE, ITEM_ERROR, Storage
from workers.built_banks import BuiltBanks
from workers.pool import cluster_cpus, make_workers
from workers.registry import JobType, Sources, get_job_type, input_unavailable, item_error

log = logging.getLogger("fimg.dispatcher")
CHUNKS_PER_WORKER = 2  # one running, one queued behind it, so an actor never waits for the loop
PREPARE_THREADS = 2


@dataclass
class JobContext:
    """A prepared context shared by the active jobs with the same key (the same banks at the same revisions)."""

    key: str
    job_type: str
    payload: Future  # -> the ObjectRef of the payload, once the preparation thread has read it
    jobs: set[str] = field(default_factory=set)
    ready_on: set[int] = field(default_factory=set)  # workers whose setup thread has built it
    building_on: set[int] = field(default_factory=set)
    failures: int = 0


@dataclass
class ActiveJob:
    id: str
    type: str
    params: dict
    context: JobContext
    in_flight: set[int] = field(default_factory=set)
    idle_until: float = 0.0  # nothing to claim (other replicas hold the rest): look again after this
    # Items nobody has claimed, as last counted less what this dispatcher claimed since: counted again only
    # near the end, where the chunk size depends on it (a count per chunk grows with the job, per chunk).
    unclaimed: int | None = None

    def returned(self, indices: list[int]) -> None:
        """A chunk of the job came back (done, lost or given back): what is left to claim, or that nothing is,
        is looked at again at once, not after the idle wait its last empty claim set (the job's last chunk
        otherwise waited that long to finish the job)."""
        self.in_flight.difference_update(indices)
        self.idle_until = 0.0


@dataclass
class Chunk:
    job_id: str
    context_key: str
    indices: list[int]
    worker: int
    sent_at: float


def lease_owner_id() -> str:
    """Names this dispatcher in the leases it holds: host and process for people, a random part for uniqueness."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    def __init__(self, storage: Storage, banks: BuiltBanks, chunk_size: int = 16, num_workers: int | None = None,
                 only_jobs: Iterable[str] | None = None, max_attempts: int = 3, poll_interval: float = 0.5,
                 lease_s: float = 30.0, chunk_timeout_s: float = 600.0, worker_start_s: float = 60.0):
        self.storage = storage
        self.sources = Sources(storage, banks.get)
        self.chunk_size = chunk_size
        self.num_workers = num_workers
        self.only_jobs = set(only_jobs) if only_jobs is not None else None
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.lease_s, self.chunk_timeout_s, self.worker_start_s = lease_s, chunk_timeout_s, worker_start_s
        self.owner = lease_owner_id()
        self.workers: list = []
        self.worker_load: list[int] = []
        self.reads_blobs: list[bool] = []  # per actor: sent blob names, not bytes, until it says it cannot read them
        self.jobs: dict[str, ActiveJob] = {}
        self.contexts: dict[str, JobContext] = {}
        self.in_flight: dict[Any, Chunk] = {}
        self.building: dict[Any, tuple[int, JobContext]] = {}
        self._preparer = ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="fimg-prepare")
        self._claiming = True
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self._last_reconcile = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> "Dispatcher":
        self.workers = make_workers(self.num_workers or cluster_cpus(), self.worker_start_s)
        self.worker_load = [0] * len(self.workers)
        self.reads_blobs = [True] * len(self.workers)
        self._thread = threading.Thread(target=self._run, name="fimg-dispatcher", daemon=True)
        self._heartbeat = threading.Thread(target=self._renew_leases, name="fimg-lease-heartbeat", daemon=True)
        self._thread.start()
        self._heartbeat.start()
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming, let the chunks in flight finish for up to `grace_s`, give up the leases of the rest
        (another replica, or this service restarted, takes them at once) and stop the actors."""
        self._claiming = False
        deadline = time.monotonic() + grace_s
        while self.in_flight and self._thread is not None and self._thread.is_alive() \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._heartbeat):
            if thread is not None:
                thread.join(grace_s)
        self._preparer.shutdown(wait=False, cancel_futures=True)
        try:
            with self.storage.unit() as unit:
                unit.jobs.release_leases(self.owner)
        except Exception:
            log.exception("could not release this dispatcher's leases; they expire in %.0f s", self.lease_s)
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

    def _renew_leases(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            working: dict[str, list[int]] = {}
            for chunk in list(self.in_flight.values()):
                working.setdefault(chunk.job_id, []).extend(chunk.indices)
            try:
                with self.storage.unit() as unit:
                    unit.jobs.renew_leases(self.owner, self.lease_s, working)
            except Exception:
                log.exception("renewing leases failed; retrying")

    def _step(self) -> None:
        if self._wake.is_set() or time.monotonic() - self._last_reconcile > self.poll_interval:
            self._wake.clear()
            self._reconcile()
        self._fail_unpreparable()
        self._fill()
        self._expire_chunks()
        waiting = [*self.in_flight, *self.building]
        if waiting:
            ready, _ = ray.wait(waiting, num_returns=len(waiting), timeout=0.05)
            for ref in ready:
                if ref in self.building:
                    self._built(ref)
                elif ref in self.in_flight:
                    self._complete(ref)
        else:
            self._wake.wait(min(self.poll_interval, 0.05) if self._preparing() else self.poll_interval)

    def _preparing(self) -> bool:
        return any(not context.payload.done() for context in self.contexts.values())

    # -- jobs --------------------------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        self._last_reconcile = time.monotonic()
        with self.storage.read() as unit:
            active = {job.id: job for job in unit.jobs.active()
                      if self.only_jobs is None or job.id in self.only_jobs}
        for job_id in list(self.jobs):
            if job_id not in active:
                self._drop(job_id)
        if not self._claiming:
            return
        for job in active.values():
            if job.id in self.jobs:
                continue
            if job.status == "queued":
                self._set_status(job.id, "running", only_from=("queued",))
            try:
                spec = get_job_type(job.type)
                spec.params(job.params)
                context = self._context(spec, job.params)
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
            context.jobs.add(job.id)
            self.jobs[job.id] = ActiveJob(job.id, job.type, job.params, context)

    def _context(self, spec: JobType, params: dict) -> JobContext:
        """The job's shared context, its preparation started if no active job has it yet. Naming it is cheap
        (bank names and revisions); reading it is not, and happens on a preparation thread."""
        key = spec.key_for(self.storage, params)
        if key not in self.contexts:
            if spec.context_key is None:
                payload: Future = Future()
                payload.set_result(ray.put(None))
            else:
                payload = self._preparer.submit(lambda: ray.put(spec.prepare(self.sources, params)))
            self.contexts[key] = JobContext(key, spec.name, payload)
        return self.contexts[key]

    def _fail_unpreparable(self) -> None:
        for context in list(self.contexts.values()):
            if not context.payload.done() or context.payload.cancelled() or context.payload.exception() is None:
                continue
            exc = context.payload.exception()
            if isinstance(exc, FimgError):
                message = exc.message
            else:
                log.error("preparing the context of %d job(s) failed: %s", len(context.jobs), type(exc).__name__)
                message = f"could not prepare the job: {type(exc).__name__}"
            self._fail_context(context, message)

    def _fail_context(self, context: JobContext, message: str) -> None:
        for job_id in list(context.jobs):
            self._set_status(job_id, "failed", error=message)
            self._drop(job_id)

    def _set_status(self, job_id: str, status: str, **options) -> bool:
        with self.storage.unit() as unit:
            return unit.jobs.set_status(job_id, status, **options)

    def _record(self, job_id: str, results: list[dict], node: str | None = None) -> None:
        with self.storage.unit() as unit:
            unit.jobs.record_results(job_id, results, owner=self.owner, node=node)

    def _drop(self, job_id: str) -> None:
        """The job left the active states (finished, cancelled, failed, or finished by another replica): stop its
        work, give up its leases and release its context if no other job needs it."""
        for ref, chunk in list(self.in_flight.items()):
            if chunk.job_id == job_id:
                ray.cancel(ref)
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        if job.in_flight:
            with self.storage.unit() as unit:
                unit.jobs.release_leases(self.owner, job_id)
        context = job.context
        context.jobs.discard(job_id)
        if not context.jobs and self.contexts.get(context.key) is context:
            del self.contexts[context.key]
            context.payload.cancel()
            for worker in context.ready_on | context.building_on:
                if worker < len(self.workers):
                    self.workers[worker].forget.remote([context.key])

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
            self._drop(job.id)

    # -- contexts on the workers -------------------------------------------------------------------------------

    def _build_everywhere(self, context: JobContext) -> None:
        """Have every actor's setup thread build the context; chunks go only to actors that have it."""
        payload_ref = context.payload.result()
        for worker in range(len(self.workers)):
            if worker not in context.ready_on and worker not in context.building_on:
                ref = self.workers[worker].warm.remote(context.job_type, context.key, [payload_ref])
                self.building[ref] = (worker, context)
                context.building_on.add(worker)

    def _built(self, ref: Any) -> None:
        worker, context = self.building.pop(ref)
        context.building_on.discard(worker)
        try:
            ray.get(ref)
        except RayTaskError as exc:  # the job type's setup raised: every actor would do the same
            context.failures += 1
            log.warning("setting up a %s context failed on a worker: %s", context.job_type, type(exc.cause).__name__)
            if context.failures >= self.max_attempts:
                self._fail_context(context, f"could not set the job up: {type(exc.cause).__name__}")
            return
        except Exception:  # the actor died while building: it restarts, and is asked again
            return
        if self.contexts.get(context.key) is context:
            context.ready_on.add(worker)
        elif context.key not in self.contexts:  # dropped while this actor built it: the forget came first
            self.workers[worker].forget.remote([context.key])

    def _forget_worker_contexts(self, worker: int) -> None:
        for context in self.contexts.values():
            context.ready_on.discard(worker)

    # -- chunks ------------------------------------------------------------------------------------------------

    def _fill(self) -> None:
        if not self._claiming:
            return
        progressed = True
        while progressed:
            progressed = False
            for job in list(self.jobs.values()):
                if job.id in self.jobs and self._submit_next_chunk(job):
                    progressed = True

    def _free_worker(self, job: ActiveJob) -> int | None:
        context = job.context
        if not context.payload.done() or context.payload.cancelled() or context.payload.exception() is not None:
            return None
        self._build_everywhere(context)
        free = [w for w in context.ready_on if w < len(self.workers) and self.worker_load[w] < CHUNKS_PER_WORKER]
        return min(free, key=self.worker_load.__getitem__) if free else None

    def _submit_next_chunk(self, job: ActiveJob) -> bool:
        if time.monotonic() < job.idle_until:
            return False
        worker = self._free_worker(job)
        if worker is None:
            return False
        with self.storage.unit() as unit:
            if job.unclaimed is None or job.unclaimed < self.chunk_size * self._slots():
                job.unclaimed = unit.jobs.count_pending(job.id) - len(job.in_flight)
            items = unit.jobs.claim_items(job.id, self.owner, self._chunk_size(job.unclaimed), self.lease_s,
                                          exclude=job.in_flight)
            solo = [item for item in items if item.attempts > 0]
            if solo:  # an item that was in a lost chunk goes alone, so a poison file costs only itself
                unit.jobs.release_leases(self.owner, job.id, [item.idx for item in items if item is not solo[0]])
                items = solo[:1]
            job.unclaimed -= len(items)
        if not items:
            job.idle_until = time.monotonic() + self.poll_interval
            self._finish_if_done(job)
            return False
        by_reference = self.reads_blobs[worker]
        payload = self._chunk_items(job, items, by_reference)
        if not payload:
            return True
        ref = self.workers[worker].run_chunk.remote(job.type, job.params, job.context.key,
                                                     [job.context.payload.result()], payload,
                                                     self.storage.blobs.location if by_reference else None)
        indices = [p["idx"] for p in payload]
        self.in_flight[ref] = Chunk(job.id, job.context.key, indices, worker, time.monotonic())
        self.worker_load[worker] += 1
        job.in_flight.update(indices)
        return True

    def _chunk_size(self, unclaimed: int) -> int:
        """Full chunks while there is plenty left, then smaller ones, so the job's last items are spread over
        every worker instead of waiting in one worker's queue behind its running chunk while the others idle
        (at 12 MP a chunk of 16 is 2.5 s of one core)."""
        return max(1, min(self.chunk_size, -(-unclaimed // self._slots())))

    def _slots(self) -> int:
        return max(1, len(self.workers) * CHUNKS_PER_WORKER)

    def _chunk_items(self, job: ActiveJob, items: list, by_reference: bool) -> list[dict]:
        """What a chunk carries of its items: their stored inputs, for an actor that reads their blobs itself, or
        what the job type loads of them here (their bytes). An item that cannot be loaded here is recorded as its
        error at once."""
        if by_reference:
            return [{"idx": item.idx, "name": item.name, "input": item.input} for item in items]
        spec = get_job_type(job.type)
        payload, failed = [], []
        for item in items:
            try:
                payload.append({"idx": item.idx, "name": item.name, **spec.load_item(self.storage.blobs, item.input)})
            except Exception as exc:
                failed.append({"idx": item.idx, "status": ITEM_ERROR, "result": input_unavailable(exc).result})
        if failed:
            self._record(job.id, failed)
        return payload

    def _expire_chunks(self) -> None:
        """A chunk that did not come back in time is retried like one whose worker died; its actor is restarted
        (it may be hung), which fails its other chunks into retries too."""
        now = time.monotonic()
        for ref, chunk in list(self.in_flight.items()):
            if now - chunk.sent_at <= self.chunk_timeout_s or ref not in self.in_flight:
                continue
            del self.in_flight[ref]
            self.worker_load[chunk.worker] -= 1
            job = self.jobs.get(chunk.job_id)
            if job is not None:
                self._retry(job, chunk, TimeoutError(f"no answer in {self.chunk_timeout_s:.0f} s"))
            ray.kill(self.workers[chunk.worker], no_restart=False)
            self._forget_worker_contexts(chunk.worker)

    def _complete(self, ref: Any) -> None:
        chunk = self.in_flight.pop(ref)
        self.worker_load[chunk.worker] -= 1
        job = self.jobs.get(chunk.job_id)
        if job is None and chunk.context_key not in self.contexts:
            # the job was dropped while this chunk ran, which builds the context on an actor that restarted
            self.workers[chunk.worker].forget.remote([chunk.context_key])
        try:
            output = ray.get(ref)
        except TaskCancelledError:
            return
        except Exception as exc:
            if not isinstance(exc, RayTaskError):  # the actor died: it restarts without its contexts
                self._forget_worker_contexts(chunk.worker)
            if job is not None:
                self._retry(job, chunk, exc)
            return
        if output.get("blobs_unreachable"):
            log.info("worker %d does not see the blob store at %s; it is sent its items' bytes from now on",
                     chunk.worker, self.storage.blobs.location.directory)
            self.reads_blobs[chunk.worker] = False
            if job is not None:
                self._give_back(job.id, chunk.indices)
                job.returned(chunk.indices)
            return
        if job is None:
            return
        artifacts = [(name, self.storage.blobs.put(data), len(data), content_type)
                     for res in output["results"] for name, (data, content_type) in res["artifacts"].items()]
        written = [{"idx": res["idx"], "status": ITEM_DONE if res["ok"] else ITEM_ERROR, "result": res["result"]}
                   for res in output["results"]]
        try:
            with self.storage.unit() as unit:
                for name, sha256, size, content_type in artifacts:
                    unit.jobs.put_artifact(job.id, name, sha256, size, content_type)
                unit.jobs.record_results(job.id, written, owner=self.owner, node=output.get("node"))
        except Exception:  # e.g. a deadlock the database broke, a lost connection: the items are done again
            log.exception("writing the results of a chunk of job %s failed; its items go back", job.id)
            self._give_back(job.id, chunk.indices)
        job.returned(chunk.indices)

    def _give_back(self, job_id: str, indices: list[int]) -> None:
        """Release leases now if the database lets us; otherwise they expire (no longer renewed)."""
        try:
            with self.storage.unit() as unit:
                unit.jobs.release_leases(self.owner, job_id, indices)
        except Exception:
            log.warning("releasing leases of job %s failed; they expire in %.0f s", job_id, self.lease_s)

    def _retry(self, job: ActiveJob, chunk: Chunk, exc: Exception) -> None:
        log.warning("a chunk of job %s was lost (%s); retrying its %d items", job.id, type(exc).__name__,
                    len(chunk.indices))
        lost = item_error("worker_failed", f"the worker failed {self.max_attempts} times while processing this item")
        try:
            with self.storage.unit() as unit:
                attempts = unit.jobs.count_attempt(job.id, chunk.indices)
                exhausted = [idx for idx in chunk.indices if attempts.get(idx, 0) >= self.max_attempts]
                unit.jobs.record_results(job.id, [{"idx": idx, "status": ITEM_ERROR, "result": lost.result}
                                                  for idx in exhausted], owner=self.owner)
                unit.jobs.release_leases(self.owner, job.id, [idx for idx in chunk.indices if idx not in exhausted])
        except Exception:
            log.exception("recording a lost chunk of job %s failed; its items go back", job.id)
            self._give_back(job.id, chunk.indices)
        job.returned(chunk.indices)
