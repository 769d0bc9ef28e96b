"""The Ray side: starting or joining a cluster, and the long-lived worker actors.

Each actor keeps the prepared context of recent jobs (a built bank index, a gallery matrix, loaded models) so a
batch of thousands of items pays for it once per actor, not once per chunk.
"""
from __future__ import annotations

import logging
import os
import threading
import traceback
from collections import OrderedDict
from typing import Any

import ray

from workers.registry import JobType, get_job_type, item_error

log = logging.getLogger("fimg.workers")
CONTEXT_CACHE_SIZE = 4


def start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to `address` or start a local Ray; return True if this call started it (and should stop it)."""
    if ray.is_initialized():
        return False
    kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        # "local" always starts a new instance; a bare init would join any Ray already running on this machine.
        ray.init(address="local", num_cpus=num_cpus, **kwargs)
    return True


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=1)
class Worker:
    """Runs chunks of items of any job type; a crash costs the chunk a retry, the dispatcher decides."""

    def __init__(self) -> None:
        self.contexts: OrderedDict[str, object] = OrderedDict()

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def _context(self, job_type: str, key: str, payload_ref: list) -> object:
        if key in self.contexts:
            self.contexts.move_to_end(key)
            return self.contexts[key]
        context = get_job_type(job_type).setup(ray.get(payload_ref[0]))
        self.contexts[key] = context
        while len(self.contexts) > CONTEXT_CACHE_SIZE:
            self.contexts.popitem(last=False)
        return context

    def run_chunk(self, job_type: str, params: dict, context_key: str, payload_ref: list,
                  items: list[dict]) -> dict:
        """`payload_ref` is a one-element list so Ray does not fetch the context unless the cache misses."""
        spec = get_job_type(job_type)
        context = self._context(job_type, context_key, payload_ref)
        typed_params = spec.params(params)
        results = []
        for item in items:
            try:
                outcome = spec.run_item(context, typed_params, item)
            except Exception as exc:  # one bad item must never sink its chunk
                log.error("item %s of a %s job failed: %s", item.get("idx"), job_type,
                          traceback.format_exception_only(type(exc), exc)[-1].strip())
                outcome = item_error("internal_error", f"internal error: {type(exc).__name__}")
            results.append({"idx": item["idx"], "ok": outcome.ok, "result": outcome.result,
                            "artifacts": outcome.artifacts})
        return {"node": self.node_id(), "results": results}


class ContextRefs:
    """Job contexts (bank snapshots, gallery matrices) put into Ray's object store once per context key.

    The key is cheap to compute (names and revisions), so the payload is read from the database only when a
    bank or gallery changed, not once per job or per request.
    """

    def __init__(self, size: int = 8):
        self.size = size
        self._refs: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: JobType, storage: Any, params: dict) -> tuple[str, Any]:
        key = spec.key_for(storage, params)
        with self._lock:
            if key in self._refs:
                self._refs.move_to_end(key)
                return key, self._refs[key]
        ref = ray.put(spec.prepare(storage, params))
        with self._lock:
            self._refs[key] = ref
            while len(self._refs) > self.size:
                self._refs.popitem(last=False)
        return key, ref


def make_workers(count: int, spread: bool = True) -> list:
    options = {"scheduling_strategy": "SPREAD"} if spread else {}
    return [Worker.options(**options).remote() for _ in range(count)]


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
