"""The worker pool as the use-case layer sees it: start (or join) Ray, run the dispatcher, answer synchronous
requests. Nothing above `workers/` imports Ray."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout

from workers import sync
from workers.built_banks import BuiltBanks
from workers.dispatcher import Dispatcher
from workers.pool import start_ray
from workers.reaper import Reaper

# What fimg does not use of Ray and would otherwise be told about at every start: metrics (fimg runs no metrics
# agent, so each process reports it cannot reach one) and the accelerator env-var override (fimg's workers use
# no GPU; 0 is Ray's announced future default, and its FutureWarning goes). An operator's own setting wins.
QUIET_RAY = {"RAY_enable_metrics_collection": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}

# The service builds banks on its preparation threads, beside the dispatch loop and the API's requests. A thread
# back from the database or Ray waits for the GIL until the building thread is made to drop it, by default after
# 5 ms, and a request or a job's step waits that way many times: a one-item job beside a 100k-record bank's
# build took ten times as long (docs/architecture.md, "The service's threads").
SWITCH_INTERVAL_S = 0.0005


class WorkerPool:
    def __init__(self, storage, ray_address: str | None = None, num_cpus: int | None = None, chunk_size: int = 16,
                 lease_s: float = 30.0, chunk_timeout_s: float = 600.0, lookup_cache_records: int = 5_000_000):
        self.storage = storage
        self.ray_address, self.num_cpus, self.chunk_size = ray_address, num_cpus, chunk_size
        self.lease_s, self.chunk_timeout_s, self.lookup_cache_records = lease_s, chunk_timeout_s, lookup_cache_records
        self.dispatcher: Dispatcher | None = None
        self.banks: BuiltBanks | None = None
        self.lookups: sync.Lookups | None = None
        self._started_ray = False
        self._reaper: Reaper | None = None

    def start(self, only_jobs: Iterable[str] | None = None) -> "WorkerPool":
        """Start Ray (unless this process is already connected) and the dispatcher (of `only_jobs`, if given)."""
        for name, value in QUIET_RAY.items():
            os.environ.setdefault(name, value)  # read by ray.init here and by every Ray process it starts
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        before_ray = Reaper.children()
        self._started_ray = start_ray(self.ray_address, self.num_cpus)
        if self._started_ray and self.ray_address is None:
            self._reaper = Reaper(spared=before_ray)
        self.banks = BuiltBanks(self.storage, self.lookup_cache_records)
        self.lookups = sync.Lookups(self.banks)
        self.dispatcher = Dispatcher(self.storage, self.banks, chunk_size=self.chunk_size, num_workers=self.num_cpus,
                                     only_jobs=only_jobs, lease_s=self.lease_s,
                                     chunk_timeout_s=self.chunk_timeout_s).start()
        if self._reaper is not None:  # the actors are up, so every process of the local Ray exists by now
            self._reaper.watch_descendants()
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
        if self.lookups is not None:
            self.lookups.stop()
            self.lookups = None
        if self.banks is not None:
            self.banks.clear()
            self.banks = None
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None

    def hash_file(self, data: bytes) -> dict:
        return sync.hash_file(data)

    def lookup(self, signals: dict[str, str], banks: list[str], threshold: int | None) -> list[dict]:
        if self.lookups is None:  # a pool used for synchronous requests only, without the dispatcher
            self.banks = BuiltBanks(self.storage, self.lookup_cache_records)
            self.lookups = sync.Lookups(self.banks)
        return self.lookups.lookup(signals, banks, threshold)

    def bank_changed(self, bank: str, wait: bool) -> None:
        """Build the bank's new revision now, so the next job and lookup on it find it built; `wait` (after an
        import) returns once it is built, or after IMPORT_WARM_WAIT_S with the build going on."""
        if self.lookups is None:
            return
        warming = self.lookups.warm(bank)
        if wait:
            try:
                warming.result(timeout=sync.IMPORT_WARM_WAIT_S)
            except FutureTimeout:
                pass

    def enrolment_faces(self, data: bytes) -> list[dict]:
        return sync.enrolment_faces(data)
