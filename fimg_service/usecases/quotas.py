"""Per-key rate limits and quotas: requests per window, unfinished job items, stored upload bytes.

Requests are counted in this process's memory (`limits`' moving window), so each service replica counts its
own; the quotas are read from the database and hold across replicas. The CLI's local administrator has no key
and no quota.
"""
from __future__ import annotations

import math
import time
from functools import cached_property

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from fimg_service.errors import TooManyRequests
from fimg_service.storage import Unit
from fimg_service.usecases.base import Principal

QUEUE_RETRY_AFTER_S = 30  # queued items drain as the pool works; a retry then may find room
STORAGE_RETRY_AFTER_S = 3600  # stored bytes do not drain by themselves: an admin raises the quota


class Quotas:
    def __init__(self, rate_limit: str, max_queued_items: int, max_stored_bytes: int):
        self.rates = parse_many(rate_limit) if rate_limit else []
        self.max_queued_items, self.max_stored_bytes = max_queued_items, max_stored_bytes

    @cached_property
    def limiter(self) -> MovingWindowRateLimiter:
        """Made on the first request counted (its storage starts an expiry timer thread): the CLI never counts."""
        return MovingWindowRateLimiter(MemoryStorage())

    def admit(self, who: Principal) -> None:
        """Count one request of this key; TooManyRequests once any of its rates is used up."""
        if who.key_id is None:
            return
        for rate in self.rates:
            if not self.limiter.hit(rate, str(who.key_id)):
                reset_at, _remaining = self.limiter.get_window_stats(rate, str(who.key_id))
                raise TooManyRequests(f"too many requests: at most {rate} per API key",
                                      retry_after=max(1, math.ceil(reset_at - time.time())))

    def check_queued(self, unit: Unit, who: Principal, new_items: int) -> None:
        if who.key_id is None:
            return
        open_items = unit.jobs.open_items(who.key_id)
        if open_items + new_items > self.max_queued_items:
            raise TooManyRequests(
                f"this key has {open_items} unfinished job items and may queue at most {self.max_queued_items};"
                f" wait for its jobs to finish (or cancel some)", code="queue_quota_exceeded",
                retry_after=QUEUE_RETRY_AFTER_S)

    def check_stored(self, unit: Unit, who: Principal, new_bytes: int) -> None:
        if who.key_id is None:
            return
        stored = unit.uploads.stored_bytes(who.key_id)
        if stored + new_bytes > self.max_stored_bytes:
            raise TooManyRequests(
                f"this key stores {stored} upload bytes; {new_bytes} more would pass its quota of"
                f" {self.max_stored_bytes} (an admin raises FIMG_QUOTA_STORED_MB)", code="storage_quota_exceeded",
                retry_after=STORAGE_RETRY_AFTER_S)
