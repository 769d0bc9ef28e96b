"""Frozen records that repositories return: plain values, never ORM rows, safe to pass between threads and to Ray."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class KeyRecord:
    id: int
    name: str
    role: str
    created_at: datetime
    revoked: bool = False


@dataclass(frozen=True)
class UploadRecord:
    id: str
    owner_id: int | None
    name: str
    sha256: str
    size: int
    format: str | None
    width: int | None
    height: int | None
    created_at: datetime


@dataclass(frozen=True)
class BankInfo:
    id: int
    name: str
    description: str | None
    threshold: int | None
    revision: int
    created_by: int | None
    created_at: datetime
    records: int = 0
    owner_id: int | None = None  # None: admins only (and members)


@dataclass(frozen=True)
class BankVersion:
    """What names a bank's contents without counting them: cheap enough to read on every lookup."""

    id: int
    name: str
    threshold: int | None
    revision: int
    created_at: datetime
    owner_id: int | None = None


@dataclass(frozen=True)
class StoredRecord:
    """One identified record of a bank: its hashes, never its pixels."""

    record_id: str
    victim_id: str | None
    pdq: str | None
    md5: str | None
    sha1: str | None
    sha256: str | None
    labels: tuple[str, ...] = ()
    extra_hashes: dict = field(default_factory=dict, compare=False)
    source: str | None = None
    source_id: str | None = None
    member_id: str | None = None
    enabled: bool = True
    disabled_until: int | None = None
    id: int | None = field(default=None, compare=False)  # the store's id, once stored


@dataclass(frozen=True)
class JobRecord:
    id: str
    type: str
    owner_id: int | None
    status: str
    params: dict
    total: int
    done: int
    failed: int
    error: str | None
    idempotency_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    request_sha256: str | None = None


@dataclass(frozen=True)
class ItemRecord:
    idx: int
    name: str
    input: dict
    status: str
    result: dict | None
    attempts: int
    completions: int
    node: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    token_hash: str
    key_id: int
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class ArtifactRecord:
    name: str
    sha256: str
    size: int
    content_type: str


@dataclass(frozen=True)
class GalleryInfo:
    id: int
    name: str
    description: str | None
    threshold: float | None
    calibration: dict | None
    revision: int
    created_by: int | None
    created_at: datetime
    subjects: int = 0
    owner_id: int | None = None  # None: admins only (and members)


@dataclass(frozen=True)
class MemberRecord:
    """A key of a bank's or a gallery's case team."""

    key_id: int
    name: str
    role: str
    added_at: datetime
    revoked: bool = False


@dataclass(frozen=True)
class FaceRecord:
    id: int
    subject_id: str
    label: str | None
    age_at_photo: float | None
    source_sha256: str
    face_index: int
    embedding: tuple[float, ...] = field(repr=False)
    quality: float | None = None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: str
    actor_id: int | None
    actor_name: str
    role: str
    action: str
    object_type: str
    object_id: str
    detail: dict[str, Any]
    row_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor_id": self.actor_id, "actor_name": self.actor_name,
                "role": self.role, "action": self.action, "object_type": self.object_type,
                "object_id": self.object_id, "detail": self.detail, "row_hash": self.row_hash}
