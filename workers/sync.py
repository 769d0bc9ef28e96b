"""Synchronous requests answered by Ray at once (hash one file, look one hash up, faces for enrolment).

These tasks ask for no CPU reservation: the pool's actors hold every CPU, and an interactive request must not
wait behind a long batch.

Lookups are answered by one `Lookup` actor per service against the banks `BuiltBanks` keeps built (one per bank
and revision, shared with the match jobs, so lookups alternating between banks stay warm). A bank that changed is
rebuilt after the change (`Lookups.warm`), not by the next lookup.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import ray
from ray.exceptions import RayTaskError

from imaging import DecodeError, PdqHash, decode, digests, pdq
from imaging.index import load_compiled
from imaging.matching import BankMatcher, QueryHashes, match_banks
from workers.built_banks import BuiltBanks

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
class Lookup:
    """Answers lookups against built banks passed by reference: Ray maps each bank from the object store for the
    call (no copy, no build), so this actor holds no bank of its own between lookups."""

    def __init__(self) -> None:
        # the service's first lookup would wait 0.3-0.5 s for the compiled probes to load (tests/test_dispatch.py)
        threading.Thread(target=load_compiled, name="warm-up", daemon=True).start()

    def lookup(self, signals: dict[str, str], threshold: int | None, *matchers: BankMatcher) -> list[dict]:
        query = QueryHashes(md5=signals.get("md5"), sha1=signals.get("sha1"), sha256=signals.get("sha256"),
                            pdq=PdqHash.from_hex(signals["pdq"]) if "pdq" in signals else None)
        return [m.to_dict() for m in match_banks(query, matchers, threshold)]


class Lookups:
    """The service's side of lookups: the banks' built copies (`BuiltBanks`, shared with the match jobs, built
    when missing) handed to the lookup actor, and changed banks rebuilt in the background."""

    def __init__(self, banks: BuiltBanks):
        self.banks = banks
        self.actor = Lookup.remote()
        self._warmer = ThreadPoolExecutor(1, thread_name_prefix="fimg-lookup-warm")

    def lookup(self, signals: dict[str, str], banks: list[str], threshold: int | None) -> list[dict]:
        built = [self.banks.get(name) for name in banks]
        return ray.get(self.actor.lookup.remote(signals, threshold, *built), timeout=SYNC_TIMEOUT_S)

    def warm(self, bank: str) -> Future:
        """Build the bank's current revision in the background (dropping the older one once it is built)."""
        def build() -> None:
            try:
                self.banks.get(bank)
            except Exception as exc:  # a bank deleted meanwhile: the next lookup says so
                log.warning("building a changed bank failed: %s", type(exc).__name__)

        return self._warmer.submit(build)

    def stop(self) -> None:
        self._warmer.shutdown(wait=False, cancel_futures=True)
        ray.kill(self.actor)


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
