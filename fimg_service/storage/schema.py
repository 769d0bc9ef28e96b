"""The database schema of fimg: one SQLAlchemy model per table. Changes to it go with an Alembic migration."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ITEM_PENDING = "pending"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every one fimg writes is UTC."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Upload(Base):
    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_keys.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(500))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    format: Mapped[str | None] = mapped_column(sa.String(20))
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class Bank(Base):
    __tablename__ = "banks"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    threshold: Mapped[int | None] = mapped_column(sa.Integer)
    revision: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("api_keys.id"))
    # The key whose case this is (None: admins only); it and the members see and change the bank.
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class BankMember(Base):
    """A key of the bank's case team: it sees and changes the bank as its owner does, but cannot manage members."""

    __tablename__ = "bank_members"
    bank_id: Mapped[int] = mapped_column(sa.ForeignKey("banks.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(sa.ForeignKey("api_keys.id"), primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class BankRecordRow(Base):
    __tablename__ = "bank_records"
    __table_args__ = (sa.UniqueConstraint("bank_id", "record_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(sa.ForeignKey("banks.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[str] = mapped_column(sa.String(200))
    victim_id: Mapped[str | None] = mapped_column(sa.String(200))
    pdq: Mapped[str | None] = mapped_column(sa.String(64))
    md5: Mapped[str | None] = mapped_column(sa.String(32))
    sha1: Mapped[str | None] = mapped_column(sa.String(40))
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    labels: Mapped[list] = mapped_column(sa.JSON, default=list)
    extra_hashes: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # Where the record came from (an exchange or hotline, its own entry id, the member/ESP that shared it) and
    # whether it may match: disabled, or disabled until a unix time.
    source: Mapped[str | None] = mapped_column(sa.String(200))
    source_id: Mapped[str | None] = mapped_column(sa.String(200))
    member_id: Mapped[str | None] = mapped_column(sa.String(200))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    disabled_until: Mapped[int | None] = mapped_column(sa.BigInteger)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (sa.UniqueConstraint("owner_id", "idempotency_key"),)
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(sa.String(40))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_keys.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued", index=True)
    params: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    done: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    request_sha256: Mapped[str | None] = mapped_column(sa.String(64))  # what the idempotency key was used for
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class JobItem(Base):
    __tablename__ = "job_items"
    __table_args__ = (sa.UniqueConstraint("job_id", "idx"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(500))
    input: Mapped[dict] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(10), default=ITEM_PENDING)
    result: Mapped[dict | None] = mapped_column(sa.JSON)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    completions: Mapped[int] = mapped_column(sa.Integer, default=0)
    node: Mapped[str | None] = mapped_column(sa.String(64))
    # A pending item being worked on is leased by one dispatcher until the lease expires (see JobRepository).
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # The result's verdict and its best match, kept beside the JSON so a report page filters, sorts and pages in
    # the index on a 100,000-item batch.
    verdict: Mapped[str | None] = mapped_column(sa.String(20))
    kind: Mapped[str | None] = mapped_column(sa.String(60))
    bank: Mapped[str | None] = mapped_column(sa.String(100))
    distance: Mapped[float | None] = mapped_column(sa.Float)


for _column in ("verdict", "kind", "bank", "distance"):
    sa.Index(f"ix_job_items_{_column}", JobItem.job_id, getattr(JobItem, _column), JobItem.idx)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (sa.UniqueConstraint("job_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(100))


class Gallery(Base):
    __tablename__ = "galleries"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    calibration: Mapped[dict | None] = mapped_column(sa.JSON)
    revision: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("api_keys.id"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_keys.id"), index=True)  # as a bank's
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class GalleryMember(Base):
    """A key of the gallery's case team; only the owner and members read its embeddings."""

    __tablename__ = "gallery_members"
    gallery_id: Mapped[int] = mapped_column(sa.ForeignKey("galleries.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(sa.ForeignKey("api_keys.id"), primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class GalleryFace(Base):
    """One enrolled face of a subject; the embedding is biometric data and never leaves without being asked."""

    __tablename__ = "gallery_faces"
    id: Mapped[int] = mapped_column(primary_key=True)
    gallery_id: Mapped[int] = mapped_column(sa.ForeignKey("galleries.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    label: Mapped[str | None] = mapped_column(sa.String(200))
    age_at_photo: Mapped[float | None] = mapped_column(sa.Float)
    source_sha256: Mapped[str] = mapped_column(sa.String(64))
    face_index: Mapped[int] = mapped_column(sa.Integer, default=0)
    embedding: Mapped[list] = mapped_column(sa.JSON)
    quality: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class WebSession(Base):
    """A signed-in browser: the cookie carries a random token, the table only its SHA-256 (like API keys)."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(sa.ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class AuditEntry(Base):
    """Append-only; each row's hash covers its content and the previous row's hash (a tamper-evident chain).

    Appends are serialised (see `fimg_service.storage.audit`); the unique constraint on ``prev_hash`` is the last
    line of defence: two writers that read the same tail could not both commit.
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[str] = mapped_column(sa.String(40))
    actor_id: Mapped[int | None] = mapped_column(sa.Integer)
    actor_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    action: Mapped[str] = mapped_column(sa.String(60))
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str] = mapped_column(sa.String(200))
    detail: Mapped[str] = mapped_column(sa.Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    row_hash: Mapped[str] = mapped_column(sa.String(64))
