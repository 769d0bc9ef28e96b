"""The worker pool as the use-case layer sees it: start (or join) Ray, run the dispatcher, answer synchronous
requests. Nothing above `workers/` imports Ray."""
from __future__ import annotations

import os
from collections.abc import Iterable

from workers import sync
from workers.dispatcher import Dispatcher
from workers.pool import start_ray

# What fimg does not use of Ray and would otherwise be told about at every start: metrics (fimg runs no metrics
# agent, so each process reports it cannot reach one) and the accelerator env-var override (fimg's workers use
# no GPU; 0 is Ray's announced future default, and its FutureWarning goes). An operator's own setting wins.
QUIET_RAY = {"RAY_enable_metrics_collection": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}


class WorkerPool:
    def __init__(self, storage, ray_address: str | None = None, num_cpus: int | None = None, chunk_size: int = 16):
        self.storage = storage
        self.ray_address, self.num_cpus, self.chunk_size = ray_address, num_cpus, chunk_size
        self.dispatcher: Dispatcher | None = None
        self._started_ray = False

    def start(self, only_jobs: Iterable[str] | None = None) -> "WorkerPool":
        """Start Ray (unless this process is already connected) and the dispatcher (of `only_jobs`, if given)."""
        for name, value in QUIET_RAY.items():
            os.environ.setdefault(name, value)  # read by ray.init here and by every Ray process it starts
        self._started_ray = start_ray(self.ray_address, self.num_cpus)
        self.dispatcher = Dispatcher(self.storage, chunk_size=self.chunk_size, num_workers=self.num_cpus,
                                     only_jobs=only_jobs).start()
        return self

    @property
    def workers(self) -> int:
        return len(self.dispatcher.workers) if self.dispatcher else 0

    def wake(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def stop(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def hash_file(self, data: bytes) -> dict:
        return sync.hash_file(data)

    def lookup(self, signals: dict[str, str], banks: list[str], threshold: int | None) -> list[dict]:
        return sync.lookup(self.storage, signals, banks, threshold)

    def enrolment_faces(self, data: bytes) -> list[dict]:
        return sync.enrolment_faces(data)
