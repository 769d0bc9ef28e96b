"""Synchronous requests answered by Ray at once (hash one file, look one hash up, faces for enrolment).

These tasks ask for no CPU reservation: the pool's actors hold every CPU, and an interactive request must not
wait behind a long batch.

Lookups are answered by one `LookupCache` actor per service, which keeps each bank built (one entry per bank and
revision, so lookups alternating between banks stay warm) until the records it holds exceed its budget, least
recently used first. A bank that changed is rebuilt after the change (`Lookups.warm`), not by the next lookup.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import ray
from ray.exceptions import RayTaskError

from imaging import DecodeError, PdqHash, decode, digests, pdq
from imaging.matching import BankMatcher, QueryHashes, match_banks
from workers.built_banks import BuiltBanks, bank_identity

log = logging.getLogger("fimg.lookup")
SYNC_TIMEOUT_S = 120
IMPORT_WARM_WAIT_S = 60


@ray.remote(num_cpus=0, max_retries=2)
def _hash_file(data: bytes) -> dict:
    evidence = digests(data)
    decoded = decode(data)
    hash_value, quality = pdq(decoded.rgb)
    return {"md5": evidence.md5, "sha1": evidence.sha1, "sha256": evidence.sha256, "pdq": str(hash_value),
            "quality": quality, "width": decoded.width, "height": decoded.height, "format": decoded.format,
            "notes": decoded.notes}


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=8)
class LookupCache:
    """Built banks (one BankMatcher per bank revision), least recently used dropped past `max_records`."""

    def __init__(self, max_records: int):
        self.max_records = max_records
        self.matchers: OrderedDict[str, BankMatcher] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def cached(self) -> list[str]:
        with self._lock:
            return list(self.matchers)

    def load(self, key: str, bank_ref: list) -> None:
        """Take one built bank (a one-element list, fetched only if the cache lacks it)."""
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self.matchers:
                    return
            matcher = ray.get(bank_ref[0])
            with self._lock:
                for stale in [k for k in self.matchers if bank_identity(k) == bank_identity(key)]:
                    del self.matchers[stale]
                self.matchers[key] = matcher
                self._evict(keep=key)
                self._building.pop(key, None)

    def _evict(self, keep: str) -> None:
        held = sum(len(m) for m in self.matchers.values())
        for key in list(self.matchers):
            if held <= self.max_records:
                break
            if key != keep:
                held -= len(self.matchers.pop(key))

    def lookup(self, keys: list[str], signals: dict[str, str], threshold: int | None) -> dict:
        """{"matches": [...]}, or {"missing": [keys]} when some bank is not built (the caller loads it)."""
        with self._lock:
            missing = [key for key in keys if key not in self.matchers]
            if missing:
                return {"missing": missing}
            matchers = []
            for key in keys:
                self.matchers.move_to_end(key)
                matchers.append(self.matchers[key])
        query = QueryHashes(md5=signals.get("md5"), sha1=signals.get("sha1"), sha256=signals.get("sha256"),
                            pdq=PdqHash.from_hex(signals["pdq"]) if "pdq" in signals else None)
        return {"matches": [m.to_dict() for m in match_banks(query, matchers, threshold)]}


class Lookups:
    """The service's side of the lookup cache: names banks by revision (cheap), hands the cache a bank's built
    copy (`BuiltBanks`, shared with the match jobs) only when it lacks it, and rebuilds changed banks in the
    background."""

    def __init__(self, banks: BuiltBanks):
        self.banks = banks
        self.cache = LookupCache.remote(banks.max_records)
        self._warmer = ThreadPoolExecutor(1, thread_name_prefix="fimg-lookup-warm")
        self._guard = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def _keys(self, banks: list[str]) -> list[str]:
        return [self.banks.key(name) for name in banks]

    def _load(self, names: list[str], keys: list[str]) -> None:
        """Give the cache the built banks; concurrent requests for one bank load it once."""
        for name, key in zip(names, keys):
            with self._guard:
                loading = self._loading.setdefault(key, threading.Lock())
            with loading:
                if key not in ray.get(self.cache.cached.remote(), timeout=SYNC_TIMEOUT_S):
                    ray.get(self.cache.load.remote(key, [self.banks.get(name)]), timeout=SYNC_TIMEOUT_S)
            with self._guard:
                self._loading.pop(key, None)

    def lookup(self, signals: dict[str, str], banks: list[str], threshold: int | None) -> list[dict]:
        keys = self._keys(banks)
        for _ in range(3):  # a bank evicted between loading and asking is loaded again
            answer = ray.get(self.cache.lookup.remote(keys, signals, threshold), timeout=SYNC_TIMEOUT_S)
            if "matches" in answer:
                return answer["matches"]
            missing = set(answer["missing"])
            self._load([n for n, k in zip(banks, keys) if k in missing], [k for k in keys if k in missing])
        raise RuntimeError("the lookup cache cannot hold these banks at once: raise FIMG_LOOKUP_CACHE_RECORDS")

    def warm(self, bank: str) -> Future:
        """Build the bank's current revision in the background (dropping the older one once it is built)."""
        def build() -> None:
            try:
                self._load([bank], self._keys([bank]))
            except Exception as exc:  # a bank deleted meanwhile, a cache restarting: the next lookup loads it
                log.warning("warming the lookup cache for a bank failed: %s", type(exc).__name__)

        return self._warmer.submit(build)

    def stop(self) -> None:
        self._warmer.shutdown(wait=False, cancel_futures=True)
        ray.kill(self.cache)


def _result(ref: ray.ObjectRef) -> Any:
    """The task's value; a DecodeError inside the task is raised here as itself."""
    try:
        return ray.get(ref, timeout=SYNC_TIMEOUT_S)
    except RayTaskError as exc:
        if isinstance(exc.cause, DecodeError):
            raise exc.cause from None
        raise


def hash_file(data: bytes) -> dict:
    """Digests, PDQ and quality of one file; raises imaging.DecodeError for a file that is not a usable image."""
    return _result(_hash_file.remote(data))


@ray.remote(num_cpus=0, max_retries=2)
def _enrolment_faces(data: bytes) -> list[dict]:
    from biometrics import analyze

    faces = analyze(decode(data, scale_high_bit_depth=True).rgb, embeddings=True)
    return [{"box": [float(v) for v in f.face.box],
             "embedding": None if f.embedding is None else [float(v) for v in f.embedding],
             "quality": f.quality.to_dict()} for f in faces]


def enrolment_faces(data: bytes) -> list[dict]:
    """Every face of an image with its quality and (if it passes the gates) its embedding."""
    return _result(_enrolment_faces.remote(data))
