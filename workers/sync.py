"""Synchronous requests answered by Ray at once (hash one file, look one hash up, faces for enrolment).

These tasks ask for no CPU reservation: the pool's actors hold every CPU, and an interactive request must not
wait behind a long batch.
"""
from __future__ import annotations

from typing import Any

import ray
from ray.exceptions import RayTaskError

from imaging import DecodeError, PdqHash, decode, digests, pdq
from imaging.matching import QueryHashes, match_banks
from workers import match_batch
from workers.pool import ContextRefs
from workers.registry import get_job_type

SYNC_TIMEOUT_S = 120
_matchers: dict[str, Any] = {}
_bank_snapshots = ContextRefs()


@ray.remote(num_cpus=0, max_retries=2)
def _hash_file(data: bytes) -> dict:
    evidence = digests(data)
    decoded = decode(data)
    hash_value, quality = pdq(decoded.rgb)
    return {"md5": evidence.md5, "sha1": evidence.sha1, "sha256": evidence.sha256, "pdq": str(hash_value),
            "quality": quality, "width": decoded.width, "height": decoded.height, "format": decoded.format,
            "notes": decoded.notes}


@ray.remote(num_cpus=0, max_retries=2)
def _lookup(context_key: str, snapshot_ref: list, signals: dict[str, str], threshold: int | None) -> list[dict]:
    if context_key not in _matchers:
        _matchers.clear()
        _matchers[context_key] = match_batch.setup(ray.get(snapshot_ref[0]))
    query = QueryHashes(md5=signals.get("md5"), sha1=signals.get("sha1"), sha256=signals.get("sha256"),
                        pdq=PdqHash.from_hex(signals["pdq"]) if "pdq" in signals else None)
    return [m.to_dict() for m in match_banks(query, _matchers[context_key], threshold)]


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


def lookup(storage, signals: dict[str, str], banks: list[str], threshold: int | None = None) -> list[dict]:
    """Matches of one query's hashes ({kind: hex} of pdq, md5, sha1, sha256) in the banks, as report rows."""
    context_key, snapshot_ref = _bank_snapshots.get(get_job_type("match_batch"), storage, {"banks": banks})
    return _result(_lookup.remote(context_key, [snapshot_ref], signals, threshold))


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
