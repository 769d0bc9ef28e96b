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
FIMG_LOOKUP_CACHE_RECORDS  bank records kept built for /v1/lookup, over all banks and revisions (default 5000000;
                    about 0.7 KB per imported hash, more per enrolled image)
FIMG_AUTO_UPGRADE   1 (default): the service brings the database schema to head at start; 0: it refuses an
                    older schema and names the command (`fimg db upgrade`)
FIMG_URL_HASH_HOSTS comma-separated hosts whose URLs the HMA-compatible routes may fetch and hash (default none:
                    the service fetches no URL)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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
            lease_s=max(1, _int_env("FIMG_LEASE_S", 30) or 30),
            chunk_timeout_s=max(1, _int_env("FIMG_CHUNK_TIMEOUT_S", 600) or 600),
            lookup_cache_records=max(0, _int_env("FIMG_LOOKUP_CACHE_RECORDS", 5_000_000) or 0),
        )
