"""Banks built once per revision and kept in Ray's object store, for match jobs and lookups alike.

A built bank (`imaging.matching.BankMatcher`, numpy arrays only) is read from the database and built in the
service, put in the object store once, and mapped by every actor that uses it: the worker actors of every job
on that bank and the lookup actor. It stays built between jobs, so an analyst's next batch on the same banks
starts at once instead of reading and building them again; an import builds the new revision right away
(`WorkerPool.bank_changed`). Past `max_records` the least recently used banks are let go: a job or a lookup
still holding one keeps it alive until it is done with it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import ray

from workers import match_batch


def _bank_identity(key: str) -> str:
    """A bank's key less its revision: what an older revision of the same bank shares with the new one."""
    return key.rsplit("@", 1)[0]


class BuiltBanks:
    def __init__(self, storage, max_records: int):
        self.storage = storage
        self.max_records = max_records
        self._built: OrderedDict[str, tuple[ray.ObjectRef, int]] = OrderedDict()  # key -> (ref, records)
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def key(self, name: str) -> str:
        """The bank's name, creation and revision (cheap: one row)."""
        return match_batch.context_key(self.storage, {"banks": [name]})

    def keys(self) -> list[str]:
        """The banks held built, least recently used first."""
        with self._lock:
            return list(self._built)

    def get(self, name: str) -> ray.ObjectRef:
        """A reference to the bank built at its current revision; built here if it is not held (concurrent
        callers wait for one build)."""
        key = self.key(name)
        with self._lock:
            if key in self._built:
                self._built.move_to_end(key)
                return self._built[key][0]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._built:
                    return self._built[key][0]
            matcher = match_batch.build_bank(self.storage, name)
            ref = ray.put(matcher)
            with self._lock:
                for stale in [k for k in self._built if _bank_identity(k) == _bank_identity(key)]:
                    del self._built[stale]
                self._built[key] = (ref, len(matcher))
                self._evict(keep=key)
                self._building.pop(key, None)
        return ref

    def _evict(self, keep: str) -> None:
        held = sum(records for _, records in self._built.values())
        for key in list(self._built):
            if held <= self.max_records:
                break
            if key != keep:
                held -= self._built.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._built.clear()
