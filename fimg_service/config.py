"""Service configuration, read from the environment once per process.

FIMG_DATA_DIR       where uploads, artefacts and the default SQLite database live (default ./data)
FIMG_DATABASE_URL   SQLAlchemy URL; default sqlite:///$FIMG_DATA_DIR/fimg.db; postgresql+psycopg://... supported
RAY_ADDRESS         join an existing Ray cluster; unset starts a local one
FIMG_NUM_CPUS       CPUs for a local Ray (default: all) and the size of the worker pool
FIMG_MAX_UPLOAD_MB  largest request body accepted by the API (default 200)
FIMG_CHUNK_SIZE     items per worker task (default 16)
FIMG_LEASE_S        how long a dispatcher's claim on items lasts without a heartbeat (default 30): a replica that
                    died is taken over after this long
FIMG_CHUNK_TIMEOUT_S  a chunk not answered in this many seconds is retried and its actor restarted (default 600)
FIMG_LOOKUP_CACHE_RECORDS  bank records kept built for match jobs and /v1/lookup, over all banks and revisions
                    (default 5000000; about 0.17 KB per imported hash, 4.6 KB per enrolled image)
FIMG_AUTO_UPGRADE   1 (default): the service brings the database schema to head at start; 0: it refuses an
                    older schema and names the command (`fimg db upgrade`)
FIMG_URL_HASH_HOSTS comma-separated hosts whose URLs the HMA-compatible routes may fetch and hash (default none:
                    the service fetches no URL)
FIMG_SESSION_IDLE_MINUTES  a web session ends after this long unused (default 30)
FIMG_MAX_REQUEST_MEGAPIXELS  pixels one upload request may decode, all its files together (default 1000)
FIMG_RATE_LIMIT     requests per API key, in the `limits` package's notation (default "50/second;2000/minute";
                    "off" disables); counted in memory, per service process
FIMG_QUOTA_QUEUED_ITEMS      unfinished job items one key may have queued (default 500000)
FIMG_QUOTA_STORED_MB         upload bytes one key may store (default 10240)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from limits import parse_many


def _int_env(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


def _bool_env(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be 1 or 0, got {raw!r}")


DEFAULT_RATE_LIMIT = "50/second;2000/minute"


def _rate_env(name: str, default: str) -> str:
    """A rate in the `limits` notation ("10/second;500/minute"), checked at start; "off" (or "0") is none."""
    raw = (os.environ.get(name) or default).strip()
    if raw.lower() in ("off", "0", "none"):
        return ""
    try:
        parse_many(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be rates such as '50/second;2000/minute' or 'off', got {raw!r}") from exc
    return raw


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    ray_address: str | None
    num_cpus: int | None
    max_upload_bytes: int
    chunk_size: int
    auto_upgrade: bool = True
    url_hash_hosts: tuple[str, ...] = ()
    session_idle_seconds: int = 30 * 60
    max_request_pixels: int = 1000 * 10**6
    rate_limit: str = DEFAULT_RATE_LIMIT
    max_queued_items: int = 500_000
    max_stored_bytes: int = 10240 * 2**20
    lease_s: float = 30.0
    chunk_timeout_s: float = 600.0
    lookup_cache_records: int = 5_000_000

    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = Path(os.environ.get("FIMG_DATA_DIR", "data")).resolve()
        database_url = os.environ.get("FIMG_DATABASE_URL") or f"sqlite:///{data_dir / 'fimg.db'}"
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            ray_address=os.environ.get("RAY_ADDRESS") or None,
            num_cpus=_int_env("FIMG_NUM_CPUS", None),
            max_upload_bytes=(_int_env("FIMG_MAX_UPLOAD_MB", 200) or 200) * 2**20,
            chunk_size=max(1, _int_env("FIMG_CHUNK_SIZE", 16) or 16),
            auto_upgrade=_bool_env("FIMG_AUTO_UPGRADE", True),
            url_hash_hosts=tuple(h.strip().lower() for h in os.environ.get("FIMG_URL_HASH_HOSTS", "").split(",")
                                 if h.strip()),
            session_idle_seconds=max(1, _int_env("FIMG_SESSION_IDLE_MINUTES", 30) or 30) * 60,
            max_request_pixels=max(1, _int_env("FIMG_MAX_REQUEST_MEGAPIXELS", 1000)) * 10**6,
            rate_limit=_rate_env("FIMG_RATE_LIMIT", DEFAULT_RATE_LIMIT),
            max_queued_items=max(1, _int_env("FIMG_QUOTA_QUEUED_ITEMS", 500_000)),
            max_stored_bytes=max(1, _int_env("FIMG_QUOTA_STORED_MB", 10240)) * 2**20,
            lease_s=max(1, _int_env("FIMG_LEASE_S", 30) or 30),
            chunk_timeout_s=max(1, _int_env("FIMG_CHUNK_TIMEOUT_S", 600) or 600),
            lookup_cache_records=max(0, _int_env("FIMG_LOOKUP_CACHE_RECORDS", 5_000_000) or 0),
        )
