"""The worker pool as the use-case layer sees it: start (or join) Ray, run the dispatcher, answer synchronous
requests. Nothing above `workers/` imports Ray."""
from __future__ import annotations

from collections.abc import Iterable

from workers import sync
from workers.dispatcher import Dispatcher
from workers.pool import start_ray


class WorkerPool:
    def __init__(self, storage, ray_address: str | None = None, num_cpus: int | None = None, chunk_size: int = 16):
        self.storage = storage
        self.ray_address, self.num_cpus, self.chunk_size = ray_address, num_cpus, chunk_size
        self.dispatcher: Dispatcher | None = None
        self._started_ray = False

    def start(self, only_jobs: Iterable[str] | None = None) -> "WorkerPool":
        """Start Ray (unless this process is already connected) and the dispatcher (of `only_jobs`, if given)."""
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
