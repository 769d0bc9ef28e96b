"""Request and response bodies of the HTTP API."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from fimg_service.roles import ROLES
from fimg_service.storage.records import BankInfo, GalleryInfo, JobRecord, KeyRecord, MemberRecord, UploadRecord
from fimg_service.usecases.rules import (FACE_THRESHOLD_MAX, MAX_DESCRIPTION, MAX_LABEL, NAME_PATTERN,
                                         PDQ_THRESHOLD_RANGE)


class Problem(BaseModel):
    code: str
    message: str


class UploadOut(BaseModel):
    id: str
    name: str
    sha256: str
    size: int
    format: str | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def of(cls, upload: UploadRecord) -> "UploadOut":
        return cls(id=upload.id, name=upload.name, sha256=upload.sha256, size=upload.size, format=upload.format,
                   width=upload.width, height=upload.height)


class RejectedFile(Problem):
    name: str


class UploadsOut(BaseModel):
    uploads: list[UploadOut]
    rejected: list[RejectedFile] = []


class BankIn(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    threshold: int | None = Field(None, ge=PDQ_THRESHOLD_RANGE[0], le=PDQ_THRESHOLD_RANGE[1])


class BankOut(BaseModel):
    name: str
    description: str | None
    threshold: int | None
    records: int
    revision: int
    created_at: str

    @classmethod
    def of(cls, bank: BankInfo) -> "BankOut":
        return cls(name=bank.name, description=bank.description, threshold=bank.threshold, records=bank.records,
                   revision=bank.revision, created_at=bank.created_at.isoformat())


class RejectedRow(Problem):
    line: int


class ImportOut(BaseModel):
    imported: int
    rejected: list[RejectedRow]
    disabled: int = Field(0, description="records a hash list's tombstones (deleted entries) disabled")
    unsupported: dict[str, int] = Field(default_factory=dict,
                                        description="hashes of types fimg cannot match, counted per type")


class JobIn(BaseModel):
    type: str = Field(max_length=40)
    inputs: list[str] = Field(default_factory=list, max_length=100_000)
    hashes: list[dict] | None = Field(None, max_length=100_000)
    params: dict = Field(default_factory=dict)


class Progress(BaseModel):
    done: int
    total: int
    failed: int


class JobOut(BaseModel):
    id: str
    type: str
    status: str
    progress: Progress
    error: str | None = None
    params: dict
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, job: JobRecord) -> "JobOut":
        return cls(id=job.id, type=job.type, status=job.status,
                   progress=Progress(done=job.done, total=job.total, failed=job.failed), error=job.error,
                   params=job.params, created_at=job.created_at, started_at=job.started_at,
                   finished_at=job.finished_at)


class JobCreated(BaseModel):
    id: str
    status: str


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_LABEL)
    role: Literal[ROLES]


class KeyOut(BaseModel):
    id: int
    name: str
    role: str
    key: str = Field(description="Shown once; only its hash is stored")


class GalleryIn(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    threshold: float | None = Field(None, gt=0, le=FACE_THRESHOLD_MAX)


class GalleryOut(BaseModel):
    name: str
    description: str | None
    threshold: float | None
    subjects: int
    revision: int
    calibration: dict | None
    created_at: str

    @classmethod
    def of(cls, gallery: GalleryInfo) -> "GalleryOut":
        return cls(name=gallery.name, description=gallery.description, threshold=gallery.threshold,
                   subjects=gallery.subjects, revision=gallery.revision, calibration=gallery.calibration,
                   created_at=gallery.created_at.isoformat())


class PhotoIn(BaseModel):
    upload: str = Field(max_length=64)
    age_at_photo: float | None = Field(None, ge=0, le=120)
    face_index: int | None = Field(None, ge=0, le=1000)


class SubjectIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=MAX_LABEL)
    label: str | None = Field(None, max_length=MAX_LABEL)
    photos: list[PhotoIn] = Field(min_length=1, max_length=100)


class HashOut(BaseModel):
    md5: str
    sha1: str
    sha256: str
    pdq: str
    quality: int
    width: int
    height: int
    format: str
    notes: list[str] = []


KeyName = Annotated[str, Path(max_length=MAX_LABEL, description="the name of an active API key")]


class KeyRef(BaseModel):
    key_id: int
    name: str
    role: str


class MemberOut(KeyRef):
    added_at: datetime
    revoked: bool = Field(description="a revoked key keeps its membership but cannot authenticate")

    @classmethod
    def of(cls, member: MemberRecord) -> "MemberOut":
        return cls(key_id=member.key_id, name=member.name, role=member.role, added_at=member.added_at,
                   revoked=member.revoked)


class MembersOut(BaseModel):
    owner: KeyRef | None = Field(description="manages the members with the admins; none: admins only")
    members: list[MemberOut]

    @classmethod
    def of(cls, owner: KeyRecord | None, members: list[MemberRecord]) -> "MembersOut":
        return cls(owner=None if owner is None else KeyRef(key_id=owner.id, name=owner.name, role=owner.role),
                   members=[MemberOut.of(m) for m in members])
