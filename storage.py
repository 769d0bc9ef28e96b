"""All persistence of fimg: one SQLAlchemy schema plus a content-addressed blob store on disk.

Uploaded files and job artefacts are stored once, by SHA-256, under ``<data_dir>/blobs/ab/cd/<sha256>``; rows
point at them. Nothing else in the project talks to the database or the blob directory.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from imaging.banks import BankRecord, parse_bank, write_bank

ROLES = ("admin", "analyst", "artist", "service")
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_JOB_STATES = ("queued", "running")
ITEM_PENDING, ITEM_DONE, ITEM_ERROR = "pending", "done", "error"
KEY_PREFIX = "fimg_"
GENESIS_HASH = "0" * 64


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


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
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


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


class AuditEntry(Base):
    """Append-only; each row's hash covers its content and the previous row's hash (a tamper-evident chain).

    The unique constraint on ``prev_hash`` makes two concurrent writers that read the same tail collide, so the
    loser retries on the new tail instead of forking the chain.
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


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's identity (the CLI acts as a local admin principal)."""

    key_id: int | None
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


LOCAL_ADMIN = Principal(key_id=None, name="local-cli", role="admin")


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


def hash_api_key(plaintext: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def audit_row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _audit_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at, "actor_id": entry.actor_id, "actor_name": entry.actor_name, "role": entry.role,
        "action": entry.action, "object_type": entry.object_type, "object_id": entry.object_id,
        "detail": entry.detail,
    }


class Store:
    def __init__(self, database_url: str, data_dir: Path | str):
        self.data_dir = Path(data_dir)
        self.blob_dir = self.data_dir / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.engine = self._make_engine(database_url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @staticmethod
    def _make_engine(url: str) -> sa.Engine:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.close()

            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)

    def drop_schema(self) -> None:
        Base.metadata.drop_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- blobs -------------------------------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / sha256[:2] / sha256[2:4] / sha256

    def put_blob(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return sha256

    def get_blob(self, sha256: str) -> bytes:
        path = self.blob_path(sha256)
        if not path.exists():
            raise NotFound(f"blob {sha256} is missing from the data directory")
        return path.read_bytes()

    # -- keys --------------------------------------------------------------------------------------------------

    def create_key(self, name: str, role: str) -> tuple[Principal, str]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            row = ApiKey(name=name, role=role, key_hash=hash_api_key(plaintext))
            session.add(row)
            session.flush()
            principal = Principal(row.id, name, role)
        return principal, plaintext

    def authenticate(self, plaintext: str) -> Principal | None:
        with self.sessions() as session:
            row = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_api_key(plaintext)))
            if row is None or row.revoked_at is not None:
                return None
            return Principal(row.id, row.name, row.role)

    def list_keys(self) -> list[dict]:
        with self.sessions() as session:
            rows = session.scalars(sa.select(ApiKey).order_by(ApiKey.id)).all()
            return [{"id": r.id, "name": r.name, "role": r.role, "created_at": r.created_at.isoformat(),
                     "revoked": r.revoked_at is not None} for r in rows]

    def revoke_key(self, key_id: int) -> None:
        with self.sessions.begin() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"no API key with id {key_id}")
            row.revoked_at = utcnow()

    # -- audit -------------------------------------------------------------------------------------------------

    def audit(self, who: Principal, action: str, object_type: str, object_id: str | int,
              detail: dict | None = None) -> None:
        for _ in range(50):
            try:
                with self.sessions.begin() as session:
                    tail = session.scalar(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
                    prev_hash = tail.row_hash if tail else GENESIS_HASH
                    entry = AuditEntry(
                        at=utcnow().isoformat(), actor_id=who.key_id, actor_name=who.name, role=who.role,
                        action=action, object_type=object_type, object_id=str(object_id)[:200],
                        detail=json.dumps(detail or {}, sort_keys=True), prev_hash=prev_hash, row_hash="",
                    )
                    entry.row_hash = audit_row_hash(prev_hash, _audit_fields(entry))
                    session.add(entry)
                return
            except IntegrityError:
                continue
        raise RuntimeError("could not append to the audit log: too much contention")

    def audit_entries(self, limit: int = 100, offset: int = 0) -> list[dict]:
        with self.sessions() as session:
            rows = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id).offset(offset).limit(limit)).all()
            return [{"id": r.id, **_audit_fields(r), "detail": json.loads(r.detail), "row_hash": r.row_hash}
                    for r in rows]

    def verify_audit(self) -> tuple[bool, int | None, int]:
        """Walk the chain; return (intact, id of the first bad row or None, rows checked)."""
        prev_hash = GENESIS_HASH
        checked = 0
        with self.sessions() as session:
            for entry in session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).yield_per(1000):
                if entry.prev_hash != prev_hash or entry.row_hash != audit_row_hash(prev_hash, _audit_fields(entry)):
                    return False, entry.id, checked
                prev_hash = entry.row_hash
                checked += 1
        return True, None, checked

    # -- uploads -----------------------------------------------------------------------------------------------

    def add_upload(self, owner: Principal, name: str, data: bytes, meta: dict[str, Any]) -> Upload:
        sha256 = self.put_blob(data)
        with self.sessions.begin() as session:
            row = Upload(owner_id=owner.key_id, name=name, sha256=sha256, size=len(data),
                         format=meta.get("format"), width=meta.get("width"), height=meta.get("height"))
            session.add(row)
        return row

    def get_upload(self, upload_id: str, who: Principal | None = None) -> Upload:
        """An upload; with `who`, only one of theirs (or any, for an admin): another's answers NotFound too."""
        with self.sessions() as session:
            row = session.get(Upload, upload_id)
        if row is None or (who is not None and not who.is_admin and row.owner_id != who.key_id):
            raise NotFound(f"no upload with id {upload_id!r}")
        return row

    # -- banks -------------------------------------------------------------------------------------------------

    def _create_named(self, model: type[Base], kind: str, **values: Any) -> Any:
        try:
            with self.sessions.begin() as session:
                row = model(**values)
                session.add(row)
            return row
        except IntegrityError as exc:
            raise Conflict(f"a {kind} named {values['name']!r} already exists") from exc

    def _get_named(self, model: type[Base], kind: str, name: str) -> Any:
        with self.sessions() as session:
            row = session.scalar(sa.select(model).where(model.name == name))
            if row is None:
                raise NotFound(f"no {kind} named {name!r}")
            return row

    def create_bank(self, owner: Principal, name: str, description: str | None = None,
                    threshold: int | None = None) -> Bank:
        return self._create_named(Bank, "bank", name=name, description=description, threshold=threshold,
                                  created_by=owner.key_id)

    def get_bank(self, name: str) -> Bank:
        return self._get_named(Bank, "bank", name)

    def list_banks(self) -> list[dict]:
        with self.sessions() as session:
            counts = dict(session.execute(
                sa.select(BankRecordRow.bank_id, sa.func.count()).group_by(BankRecordRow.bank_id)).all())
            return [{"name": b.name, "description": b.description, "threshold": b.threshold,
                     "records": counts.get(b.id, 0), "revision": b.revision, "created_at": b.created_at.isoformat()}
                    for b in session.scalars(sa.select(Bank).order_by(Bank.name))]

    def import_records(self, bank_name: str, records: Sequence[Any], lines: Sequence[int] | None = None,
                       ) -> tuple[int, list[dict]]:
        """Insert bank records; an id already in the bank is rejected, never silently replaced."""
        bank = self.get_bank(bank_name)
        lines = list(lines) if lines is not None else list(range(1, len(records) + 1))
        rejected: list[dict] = []
        with self.sessions.begin() as session:
            existing = set(session.scalars(
                sa.select(BankRecordRow.record_id).where(BankRecordRow.bank_id == bank.id)))
            rows = []
            for line, rec in zip(lines, records):
                if rec.record_id in existing:
                    rejected.append({"line": line, "error": f"record_id {rec.record_id!r} already exists in bank"})
                    continue
                existing.add(rec.record_id)
                rows.append({"bank_id": bank.id, "record_id": rec.record_id, "victim_id": rec.victim_id,
                             "pdq": rec.pdq, "md5": rec.md5, "sha1": rec.sha1, "sha256": rec.sha256,
                             "labels": list(rec.labels), "extra_hashes": dict(rec.extra_hashes)})
            for start in range(0, len(rows), 5000):
                session.execute(sa.insert(BankRecordRow), rows[start:start + 5000])
            session.execute(sa.update(Bank).where(Bank.id == bank.id).values(revision=Bank.revision + 1))
        return len(rows), rejected

    def import_bank_file(self, bank_name: str, data: bytes | str, file_format: str) -> tuple[int, list[dict]]:
        """Parse a CSV/JSONL bank file and import it; every rejected row ({line, error}) in line order."""
        self.get_bank(bank_name)
        records, errors = parse_bank(data, file_format)
        imported, duplicates = self.import_records(bank_name, records, [r.line for r in records])
        rejected = [{"line": e.line, "error": e.error} for e in errors] + duplicates
        return imported, sorted(rejected, key=lambda row: row["line"])

    def export_bank_file(self, bank_name: str, file_format: str) -> tuple[int, str]:
        """The bank's records as a CSV/JSONL file; returns (record count, text)."""
        records = [BankRecord(r.record_id, r.victim_id, r.pdq, r.md5, r.sha1, r.sha256, tuple(r.labels or ()))
                   for r in self.bank_records(bank_name)]
        return len(records), write_bank(records, file_format)

    def bank_records(self, bank_name: str) -> list[BankRecordRow]:
        bank = self.get_bank(bank_name)
        with self.sessions() as session:
            return list(session.scalars(
                sa.select(BankRecordRow).where(BankRecordRow.bank_id == bank.id).order_by(BankRecordRow.id)))

    # -- jobs --------------------------------------------------------------------------------------------------

    def create_job(self, owner: Principal, job_type: str, params: dict, items: Iterable[dict],
                   idempotency_key: str | None = None) -> tuple[Job, bool]:
        """Persist a job and its items; with an idempotency key already used by this owner, return that job."""
        if idempotency_key:
            existing = self._job_by_idempotency_key(owner, idempotency_key)
            if existing is not None:
                return existing, False
        items = list(items)
        try:
            with self.sessions.begin() as session:
                job = Job(type=job_type, owner_id=owner.key_id, params=params, total=len(items),
                          idempotency_key=idempotency_key, status="queued")
                session.add(job)
                session.flush()
                session.execute(sa.insert(JobItem), [
                    {"job_id": job.id, "idx": i, "name": item["name"], "input": item["input"],
                     "status": ITEM_PENDING, "attempts": 0, "completions": 0}
                    for i, item in enumerate(items)])
            return job, True
        except IntegrityError:
            existing = self._job_by_idempotency_key(owner, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing, False

    def _job_by_idempotency_key(self, owner: Principal, key: str) -> Job | None:
        with self.sessions() as session:
            return session.scalar(sa.select(Job).where(Job.owner_id == owner.key_id, Job.idempotency_key == key))

    def get_job(self, job_id: str) -> Job:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            if job is None:
                raise NotFound(f"no job with id {job_id!r}")
            return job

    def list_jobs(self, owner: Principal | None = None, status: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[Job]:
        query = sa.select(Job).order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)
        if owner is not None:
            query = query.where(Job.owner_id == owner.key_id)
        if status is not None:
            query = query.where(Job.status == status)
        with self.sessions() as session:
            return list(session.scalars(query))

    def active_jobs(self) -> list[Job]:
        with self.sessions() as session:
            return list(session.scalars(
                sa.select(Job).where(Job.status.in_(ACTIVE_JOB_STATES)).order_by(Job.created_at, Job.id)))

    def set_job_status(self, job_id: str, status: str, error: str | None = None,
                       only_from: Sequence[str] = ACTIVE_JOB_STATES) -> bool:
        """Move a job to `status` if it is still in one of `only_from`; return whether it moved."""
        values: dict[str, Any] = {"status": status}
        if status == "running":
            values["started_at"] = utcnow()
        if status in ("succeeded", "failed", "cancelled"):
            values["finished_at"] = utcnow()
        if error is not None:
            values["error"] = error
        with self.sessions.begin() as session:
            moved = session.execute(
                sa.update(Job).where(Job.id == job_id, Job.status.in_(only_from)).values(**values)).rowcount
        return bool(moved)

    def pending_items(self, job_id: str, limit: int, exclude: set[int] = frozenset()) -> list[JobItem]:
        with self.sessions() as session:
            query = (sa.select(JobItem).where(JobItem.job_id == job_id, JobItem.status == ITEM_PENDING)
                     .order_by(JobItem.idx))
            if exclude:
                query = query.where(JobItem.idx.not_in(exclude))
            return list(session.scalars(query.limit(limit)))

    def count_pending(self, job_id: str) -> int:
        with self.sessions() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(JobItem).where(
                JobItem.job_id == job_id, JobItem.status == ITEM_PENDING))

    def record_results(self, job_id: str, results: Sequence[dict], node: str | None = None) -> int:
        """Write finished items (each {"idx", "status", "result"}) unless the job left the active states.

        An item already finished is left alone, so a retried chunk never counts an item twice.
        Returns the number of items written.
        """
        written = 0
        with self.sessions.begin() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None or job.status not in ACTIVE_JOB_STATES:
                return 0
            for res in results:
                updated = session.execute(
                    sa.update(JobItem)
                    .where(JobItem.job_id == job_id, JobItem.idx == res["idx"], JobItem.status == ITEM_PENDING)
                    .values(status=res["status"], result=res["result"], node=node,
                            completions=JobItem.completions + 1)).rowcount
                if updated:
                    written += 1
                    job.done += 1
                    if res["status"] == ITEM_ERROR:
                        job.failed += 1
        return written

    def count_attempt(self, job_id: str, indices: Sequence[int]) -> dict[int, int]:
        with self.sessions.begin() as session:
            session.execute(sa.update(JobItem).where(JobItem.job_id == job_id, JobItem.idx.in_(indices))
                            .values(attempts=JobItem.attempts + 1))
            return dict(session.execute(sa.select(JobItem.idx, JobItem.attempts).where(
                JobItem.job_id == job_id, JobItem.idx.in_(indices))).all())

    def job_items(self, job_id: str, offset: int = 0, limit: int | None = None) -> list[JobItem]:
        query = sa.select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.idx).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.sessions() as session:
            return list(session.scalars(query))

    # -- artefacts ---------------------------------------------------------------------------------------------

    def add_artifact(self, job_id: str, name: str, data: bytes, content_type: str) -> None:
        sha256 = self.put_blob(data)
        with self.sessions.begin() as session:
            session.execute(sa.delete(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
            session.add(Artifact(job_id=job_id, name=name, sha256=sha256, size=len(data), content_type=content_type))

    def list_artifacts(self, job_id: str) -> list[Artifact]:
        with self.sessions() as session:
            return list(session.scalars(sa.select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.name)))

    def get_artifact(self, job_id: str, name: str) -> tuple[Artifact, bytes]:
        with self.sessions() as session:
            row = session.scalar(sa.select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
            if row is None:
                raise NotFound(f"job {job_id} has no artefact named {name!r}")
        return row, self.get_blob(row.sha256)

    # -- galleries ---------------------------------------------------------------------------------------------

    def create_gallery(self, owner: Principal, name: str, description: str | None = None,
                       threshold: float | None = None) -> Gallery:
        return self._create_named(Gallery, "gallery", name=name, description=description, threshold=threshold,
                                  created_by=owner.key_id)

    def get_gallery(self, name: str) -> Gallery:
        return self._get_named(Gallery, "gallery", name)

    def list_galleries(self) -> list[dict]:
        with self.sessions() as session:
            counts = dict(session.execute(
                sa.select(GalleryFace.gallery_id, sa.func.count(sa.distinct(GalleryFace.subject_id)))
                .group_by(GalleryFace.gallery_id)).all())
            return [{"name": g.name, "description": g.description, "threshold": g.threshold,
                     "subjects": counts.get(g.id, 0), "revision": g.revision,
                     "calibration": g.calibration, "created_at": g.created_at.isoformat()}
                    for g in session.scalars(sa.select(Gallery).order_by(Gallery.name))]

    def set_gallery_threshold(self, name: str, threshold: float, calibration: dict | None) -> None:
        gallery = self.get_gallery(name)
        with self.sessions.begin() as session:
            session.execute(sa.update(Gallery).where(Gallery.id == gallery.id).values(
                threshold=threshold, calibration=calibration, revision=Gallery.revision + 1))

    def add_gallery_faces(self, gallery_name: str, faces: Sequence[dict]) -> list[int]:
        gallery = self.get_gallery(gallery_name)
        with self.sessions.begin() as session:
            rows = [GalleryFace(gallery_id=gallery.id, **face) for face in faces]
            session.add_all(rows)
            session.flush()
            session.execute(sa.update(Gallery).where(Gallery.id == gallery.id).values(revision=Gallery.revision + 1))
            return [row.id for row in rows]

    def gallery_faces(self, gallery_name: str, subject_id: str | None = None) -> list[GalleryFace]:
        gallery = self.get_gallery(gallery_name)
        query = sa.select(GalleryFace).where(GalleryFace.gallery_id == gallery.id).order_by(GalleryFace.id)
        if subject_id is not None:
            query = query.where(GalleryFace.subject_id == subject_id)
        with self.sessions() as session:
            return list(session.scalars(query))

    def delete_subject(self, gallery_name: str, subject_id: str) -> int:
        """Remove a subject and its embeddings; returns the number of faces removed."""
        gallery = self.get_gallery(gallery_name)
        with self.sessions.begin() as session:
            removed = session.execute(sa.delete(GalleryFace).where(
                GalleryFace.gallery_id == gallery.id, GalleryFace.subject_id == subject_id)).rowcount
            if not removed:
                raise NotFound(f"gallery {gallery_name!r} has no subject {subject_id!r}")
            session.execute(sa.update(Gallery).where(Gallery.id == gallery.id).values(revision=Gallery.revision + 1))
        return removed
