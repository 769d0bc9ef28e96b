"""Jobs: submit (roles, params, referenced banks/galleries and uploads checked here once), follow, report, cancel.

A caller sees only its own jobs unless it is an admin; another owner's job answers NotFound, not Forbidden, so
ids leak nothing.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from fimg_service.errors import Conflict, InvalidInput, NotFound
from fimg_service.storage import ACTIVE_JOB_STATES, Unit
from fimg_service.storage import jobs as storage_jobs
from fimg_service.storage.records import ArtifactRecord, ItemRecord, JobRecord
from fimg_service.usecases.banks import get_bank
from fimg_service.usecases.base import Principal, UseCases, audit, require
from fimg_service.usecases.galleries import get_gallery
from fimg_service.usecases.quotas import Quotas
from fimg_service.usecases.uploads import Uploads
from workers.registry import JobRequest, JobType, get_job_type, invalid_params, job_types


REPORT_FORMATS = ("json", "csv")
REPORT_SORTS = tuple(storage_jobs.REPORT_SORTS)
MAX_PAGE_SIZE = 500
FACET_CACHE_JOBS = 256


@dataclass(frozen=True)
class ReportPage:
    job: JobRecord
    total: int  # items the filter selects
    items: list[dict]
    facets: dict[str, dict[str, int]]  # verdict / kind / bank -> value -> items


def request_fingerprint(job_type: str, request: JobRequest, params: dict) -> str:
    canonical = json.dumps({"type": job_type, "inputs": request.inputs, "hashes": request.hashes, "params": params},
                           sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_request(earlier: JobRecord, fingerprint: str) -> JobRecord:
    """The job an idempotency key made, if this request is the one it was made for (IETF idempotency draft)."""
    if earlier.request_sha256 not in (None, fingerprint):
        raise InvalidInput("this Idempotency-Key was used for a different request; use a new key",
                           code="idempotency_key_reused")
    return earlier


def report_item(item: ItemRecord) -> dict:
    """One item of a report: its position and name, then its result (or just its status while pending)."""
    return {"index": item.idx, "name": item.name, **(item.result or {"status": item.status})}


class Jobs(UseCases):
    def __init__(self, storage, uploads: Uploads, quotas: Quotas, wake: Callable[[], None] = lambda: None):
        super().__init__(storage)
        self.uploads, self.quotas = uploads, quotas
        self.wake = wake
        self._facets: dict[str, dict] = {}  # finished job id -> its report's filter counts, oldest first

    @staticmethod
    def types() -> list[str]:
        return sorted(job_types())

    def submit(self, who: Principal, job_type: str, request: JobRequest, params: dict,
               idempotency_key: str | None = None) -> JobRecord:
        """A queued job, or (with an idempotency key this caller used before) that job."""
        spec = get_job_type(job_type)
        require(who, spec.roles, f"create {job_type} jobs")
        try:
            typed = spec.params(params)
        except ValidationError as exc:
            raise invalid_params(exc) from None
        self._check_references(who, spec, typed)
        items = spec.build_items(request, typed, self.uploads.resolver(who))
        fingerprint = request_fingerprint(job_type, request, typed.model_dump(mode="json"))
        try:
            with self.storage.unit() as unit:
                if idempotency_key and (earlier := unit.jobs.by_idempotency_key(who.key_id, idempotency_key)):
                    return same_request(earlier, fingerprint)
                self.quotas.check_queued(unit, who, len(items))
                job = unit.jobs.create(who.key_id, job_type, typed.model_dump(mode="json"), items, idempotency_key,
                                       fingerprint)
                audit(unit, who, "create", "job", job.id, {"type": job_type, "items": len(items)})
        except Conflict:  # a concurrent request with the same key won the race
            with self.storage.read() as unit:
                earlier = unit.jobs.by_idempotency_key(who.key_id, idempotency_key)
            if earlier is None:
                raise
            return same_request(earlier, fingerprint)
        self.wake()
        return job

    def _check_references(self, who: Principal, spec: JobType, params) -> None:
        """Every bank and gallery the job names exists and is one the caller sees (NotFound otherwise)."""
        refs = spec.references(params)
        with self.storage.read() as unit:
            for name in refs.banks:
                get_bank(unit, who, name)
            for name in refs.galleries:
                get_gallery(unit, who, name)

    def list(self, who: Principal, status: str | None = None, limit: int = 100, offset: int = 0) -> list[JobRecord]:
        with self.storage.unit() as unit:
            audit(unit, who, "list", "jobs", status or "all", {"offset": offset, "limit": limit})
            return unit.jobs.list(who.key_id, status, limit, offset, all_owners=who.is_admin)

    @staticmethod
    def _owned(unit: Unit, who: Principal, job_id: str) -> JobRecord:
        job = unit.jobs.get(job_id)
        if job is None or not who.owns(job.owner_id):
            raise NotFound(f"no job with id {job_id!r}")
        return job

    def status(self, who: Principal, job_id: str) -> JobRecord:
        """The job without an audit row: for polling progress."""
        with self.storage.read() as unit:
            return self._owned(unit, who, job_id)

    def get(self, who: Principal, job_id: str) -> JobRecord:
        with self.storage.unit() as unit:
            job = self._owned(unit, who, job_id)
            audit(unit, who, "read", "job", job.id)
        return job

    def report(self, who: Principal, job_id: str, file_format: str = "json") -> tuple[JobRecord, list[dict]]:
        """The job and every item of its report (audited as an export before it is read)."""
        if file_format not in REPORT_FORMATS:
            raise InvalidInput(f"a report is one of {', '.join(REPORT_FORMATS)}", code="unsupported_format")
        with self.storage.unit() as unit:
            job = self._owned(unit, who, job_id)
            if file_format == "csv" and get_job_type(job.type).report_csv is None:
                raise InvalidInput(f"{job.type} results are JSON only", code="no_csv")
            audit(unit, who, "export", "job_result", job.id, {"format": file_format, "items": job.total})
        with self.storage.read() as unit:
            return job, [report_item(item) for item in unit.jobs.items(job.id)]

    def report_page(self, who: Principal, job_id: str, verdict: str | None = None, kind: str | None = None,
                    bank: str | None = None, sort: str = "index", descending: bool = False, limit: int = 50,
                    offset: int = 0) -> ReportPage:
        """One page of a report, filtered and sorted in the database (audited as a read of that page)."""
        if sort not in REPORT_SORTS:
            raise InvalidInput(f"a report sorts by one of {', '.join(REPORT_SORTS)}", code="invalid_sort")
        if not 1 <= limit <= MAX_PAGE_SIZE or not 0 <= offset <= 2**31:
            raise InvalidInput(f"a page holds 1-{MAX_PAGE_SIZE} items from an offset of 0 or more",
                               code="invalid_page")
        filters = {"verdict": verdict, "kind": kind, "bank": bank}
        with self.storage.unit() as unit:
            job = self._owned(unit, who, job_id)
            audit(unit, who, "read", "job_result", job.id,
                  {"offset": offset, "limit": limit, **{k: v for k, v in filters.items() if v is not None}})
        with self.storage.read() as unit:
            total, items = unit.jobs.report_page(job.id, verdict, kind, bank, sort, descending, limit, offset)
            facets = self._facets.get(job.id) or unit.jobs.report_facets(job.id)
        if job.status not in ACTIVE_JOB_STATES:  # a finished job's counts never change
            self._facets[job.id] = facets
            while len(self._facets) > FACET_CACHE_JOBS:
                self._facets.pop(next(iter(self._facets)))
        return ReportPage(job, total, [report_item(item) for item in items], facets)

    def upload_of_item(self, who: Principal, job_id: str, index: int) -> str:
        """The upload id an item was made from (the job's owner's upload)."""
        with self.storage.read() as unit:
            job = self._owned(unit, who, job_id)
            item = unit.jobs.item(job.id, index)
        if item is None or "upload" not in item.input:
            raise NotFound(f"job {job_id} has no item {index} made from an upload")
        return item.input["upload"]

    def bundle(self, who: Principal, job_id: str) -> bytes:
        """Every artefact of a job in one ZIP (an age progression's images with provenance.json), audited."""
        with self.storage.unit() as unit:
            job = self._owned(unit, who, job_id)
            artifacts = unit.jobs.artifacts(job.id)
            if not artifacts:
                raise NotFound(f"job {job.id} has no artefacts", code="no_artifacts")
            audit(unit, who, "export", "artifacts", job.id, {"files": len(artifacts)})
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for artifact in artifacts:
                archive.writestr(artifact.name, self.storage.blobs.get(artifact.sha256))
        return out.getvalue()

    @staticmethod
    def report_csv(job: JobRecord, items: list[dict]) -> str:
        return get_job_type(job.type).report_csv(items)

    def cancel(self, who: Principal, job_id: str) -> JobRecord:
        with self.storage.unit() as unit:
            job = self._owned(unit, who, job_id)
            if not unit.jobs.set_status(job.id, "cancelled"):
                raise Conflict(f"job {job.id} is already {job.status}", code="not_active")
            audit(unit, who, "cancel", "job", job.id)
            job = unit.jobs.get(job.id)
        self.wake()
        return job

    def artifacts(self, who: Principal, job_id: str) -> list[ArtifactRecord]:
        with self.storage.unit() as unit:
            job = self._owned(unit, who, job_id)
            audit(unit, who, "list", "artifacts", job.id)
            return unit.jobs.artifacts(job.id)

    def artifact(self, who: Principal, job_id: str, name: str) -> tuple[ArtifactRecord, bytes]:
        with self.storage.unit() as unit:
            job = self._owned(unit, who, job_id)
            artifact = unit.jobs.artifact(job.id, name)
            if artifact is None:
                raise NotFound(f"job {job.id} has no artefact named {name!r}")
            audit(unit, who, "export", "artifact", f"{job.id}/{name}")
        return artifact, self.storage.blobs.get(artifact.sha256)

    def wait(self, who: Principal, job_id: str, on_progress: Callable[[JobRecord], None] = lambda _job: None,
             poll_s: float = 0.2) -> JobRecord:
        """Poll until the job leaves the active states."""
        while (job := self.status(who, job_id)).status in ACTIVE_JOB_STATES:
            on_progress(job)
            time.sleep(poll_s)
        on_progress(job)
        return job


def job_request(inputs: Sequence[str] = (), hashes: Sequence[dict] | None = None) -> JobRequest:
    return JobRequest(inputs=tuple(inputs), hashes=tuple(hashes or ()))
