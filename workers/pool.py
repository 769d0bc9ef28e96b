"""The Ray side: starting or joining a cluster, and the long-lived worker actors.

Each actor keeps the prepared context of the active jobs (a built bank index, a gallery matrix) so a batch of
thousands of items pays for it once per actor, not once per chunk. Building a context runs in the actor's
`setup` threads, beside the thread that runs chunks, so a large bank being built never holds another job's items.
An actor that sees the service's blob store reads its items' files from it itself (see `Worker.run_chunk`).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import traceback

from typing import TYPE_CHECKING

import cv2
import ray

# An actor process starts by importing this module, so it stays light: the job types, the storage package and
# what they import (sqlalchemy, mediapipe, torch) come with the warm-up thread an actor starts once it is up
# (`_warm_up`), not with the actor's start itself (1.6 -> 0.7 s for two actors here).
if TYPE_CHECKING:
    from pydantic import BaseModel

    from fimg_service.storage.blobs import BlobLocation, BlobReader
    from workers.registry import ItemOutcome, JobType

log = logging.getLogger("fimg.workers")


def start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to `address` or start a local Ray; return True if this call started it (and should stop it)."""
    if ray.is_initialized():
        return False
    kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    # ray.init replaces the SIGTERM handler with one that exits at once (tracebacks, a C stack dump); the
    # server's own handler, which shuts down in order (see Dispatcher.stop), is put back.
    on_sigterm = signal.getsignal(signal.SIGTERM)
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local" always starts a new instance; a bare init would join any Ray already running on this machine.
        ray.init(address="local", num_cpus=num_cpus, **kwargs)
    if threading.current_thread() is threading.main_thread() and on_sigterm is not None:
        signal.signal(signal.SIGTERM, on_sigterm)
    return True


# Two setup threads: a small context (a ten-record bank) is built beside a large one, never queued behind it.
@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=1, concurrency_groups={"setup": 2, "control": 1})
class Worker:
    """Runs chunks of items of any job type; a crash costs the chunk a retry, the dispatcher decides."""

    def __init__(self) -> None:
        # An actor holds one CPU. Ray sets OMP_NUM_THREADS to match (numpy, torch); OpenCV keeps a pool of its
        # own as wide as the machine, which the actors would otherwise all share.
        cv2.setNumThreads(1)
        self.contexts: dict[str, object] = {}
        self._lock = threading.Lock()
        self._warm_up = threading.Thread(target=_warm_up, name="warm-up", daemon=True)
        self._warm_up.start()

    @ray.method(concurrency_group="control")
    def pid(self) -> int:
        return os.getpid()

    @ray.method(concurrency_group="control")
    def warmed(self, timeout_s: float = 120.0) -> bool:
        """Whether the warm-up is over, after waiting up to `timeout_s` for it (for measurements that must not
        count it)."""
        self._warm_up.join(timeout_s)
        return not self._warm_up.is_alive()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    @ray.method(concurrency_group="setup")
    def warm(self, job_type: str, key: str, payload_ref: list) -> str:
        """Build a context ahead of its chunks (`payload_ref` is a one-element list so Ray does not fetch it
        unless the context is missing)."""
        with self._lock:
            if key in self.contexts:
                return key
        from workers.registry import get_job_type

        context = get_job_type(job_type).setup(ray.get(payload_ref[0]))
        with self._lock:
            self.contexts[key] = context
        return key

    @ray.method(concurrency_group="control")
    def context_keys(self) -> list[str]:
        """The contexts this actor holds (what the dispatcher believes it holds, checked by the tests)."""
        with self._lock:
            return sorted(self.contexts)

    @ray.method(concurrency_group="control")
    def forget(self, keys: list[str]) -> None:
        """Drop the contexts of jobs that are over, so their memory goes back."""
        with self._lock:
            for key in keys:
                self.contexts.pop(key, None)

    def run_chunk(self, job_type: str, params: dict, context_key: str, payload_ref: list, items: list[dict],
                  blobs: BlobLocation | None) -> dict:
        """Compute a chunk. With `blobs` (the service's blob store), each item carries its stored `input`, which
        is loaded here, from the store's disk; an actor that does not see the store there computes nothing and
        says so (`blobs_unreachable`), and the dispatcher sends the items again with their bytes. Without
        `blobs`, the dispatcher loaded the items."""
        from fimg_service.storage.blobs import BlobReader
        from workers.registry import get_job_type

        reader = None
        if blobs is not None:
            reader = BlobReader(blobs)
            if not reader.reachable():
                return {"node": self.node_id(), "blobs_unreachable": True}
        spec = get_job_type(job_type)
        with self._lock:
            context = self.contexts.get(context_key)
        if context is None:  # a restarted actor lost its contexts
            self.warm(job_type, context_key, payload_ref)
            with self._lock:
                context = self.contexts[context_key]
        typed_params = spec.params(params)
        results = []
        for item in items:
            outcome = item_outcome(spec, context, typed_params, reader, item)
            results.append({"idx": item["idx"], "ok": outcome.ok, "result": outcome.result,
                            "artifacts": outcome.artifacts})
        return {"node": self.node_id(), "results": results}


def _warm_up() -> None:
    """Import the job types and load their compiled code while the actor waits for work, not on its first
    context or chunk; a failure here only leaves that to the first chunk."""
    try:
        from workers.registry import job_types

        for spec in job_types().values():
            spec.warm_up()
    except Exception:
        log.warning("warm-up failed; the first chunk loads what it needs", exc_info=True)


def item_outcome(spec: JobType, context: object, params: BaseModel, reader: BlobReader | None, item: dict,
                 ) -> ItemOutcome:
    """One item's outcome, its input read through `reader` first if it came by reference; whatever goes wrong
    is this item's error, never its chunk's."""
    from workers.registry import input_unavailable, item_error

    if reader is not None:
        try:
            item = {"idx": item["idx"], "name": item["name"], **spec.load_item(reader, item["input"])}
        except Exception as exc:  # a blob missing or damaged on disk
            return input_unavailable(exc)
    try:
        return spec.run_item(context, params, item)
    except Exception as exc:
        log.error("item %s of a %s job failed: %s", item.get("idx"), spec.name,
                  traceback.format_exception_only(type(exc), exc)[-1].strip())
        return item_error("internal_error", f"internal error: {type(exc).__name__}")


def make_workers(count: int, ready_timeout_s: float, spread: bool = True) -> list:
    """`count` actors, each answering before it is used: one Ray could not place within the timeout (no free
    CPU) is killed rather than sent chunks it would never run. Raises RuntimeError if none became ready."""
    options = {"scheduling_strategy": "SPREAD"} if spread else {}
    workers = [Worker.options(**options).remote() for _ in range(count)]
    pings = {worker.pid.remote(): worker for worker in workers}
    ready, pending = ray.wait(list(pings), num_returns=len(pings), timeout=ready_timeout_s)
    for ref in pending:
        ray.kill(pings[ref])
    if pending:
        log.warning("%d of %d workers did not start within %.0f s (no free CPU?); going on with %d",
                    len(pending), count, ready_timeout_s, len(ready))
    if not ready:
        raise RuntimeError(f"no worker actor started within {ready_timeout_s:.0f} s: the Ray cluster has no free CPU")
    return [pings[ref] for ref in ready]


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
