"""The HTTP API: authenticates callers, checks roles and ownership, turns requests into job records.

Every route's roles are declared next to it with `Depends(allow(...))`; a caller sees only its own uploads and
jobs unless it is an admin (another owner's job answers 404, not 403, so ids leak nothing). Errors are JSON
`{"error": code, "message": text}`.
"""
from __future__ import annotations

import io
import json
import logging
import zipfile
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from fastapi import Depends, FastAPI, File, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from config import Settings
from imaging import DecodeError, decode
from storage import ROLES, Conflict, Job, NotFound, Principal, Store
from workers import sync
from workers.dispatcher import Dispatcher
from workers.pool import start_ray
from workers.registry import JobInputError, get_job_type, job_types

log = logging.getLogger("fimg.api")
ZIP_MAX_ENTRIES = 10_000
BANK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


# -- models at the edge ---------------------------------------------------------------------------------------


class UploadOut(BaseModel):
    id: str
    name: str
    sha256: str
    size: int
    format: str | None = None
    width: int | None = None
    height: int | None = None


class RejectedFile(BaseModel):
    name: str
    error: str
    code: str


class UploadsOut(BaseModel):
    uploads: list[UploadOut]
    rejected: list[RejectedFile] = []


class BankIn(BaseModel):
    name: str = Field(pattern=BANK_NAME_PATTERN)
    description: str | None = Field(None, max_length=2000)
    threshold: int | None = Field(None, ge=0, le=128)


class BankOut(BaseModel):
    name: str
    description: str | None
    threshold: int | None
    records: int
    revision: int
    created_at: str


class RowErrorOut(BaseModel):
    line: int
    error: str


class ImportOut(BaseModel):
    imported: int
    rejected: list[RowErrorOut]


class JobIn(BaseModel):
    type: str
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


class JobCreated(BaseModel):
    id: str
    status: str


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "analyst", "artist", "service"]


class KeyOut(BaseModel):
    id: int
    name: str
    role: str
    key: str = Field(description="Shown once; only its hash is stored")


class GalleryIn(BaseModel):
    name: str = Field(pattern=BANK_NAME_PATTERN)
    description: str | None = Field(None, max_length=2000)
    threshold: float | None = Field(None, gt=0, le=2)


class PhotoIn(BaseModel):
    upload: str
    age_at_photo: float | None = Field(None, ge=0, le=120)
    face_index: int | None = Field(None, ge=0)


class SubjectIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=200)
    label: str | None = Field(None, max_length=200)
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


def job_out(job: Job) -> JobOut:
    return JobOut(id=job.id, type=job.type, status=job.status,
                  progress=Progress(done=job.done, total=job.total, failed=job.failed), error=job.error,
                  params=job.params, created_at=job.created_at, started_at=job.started_at,
                  finished_at=job.finished_at)


# -- auth -----------------------------------------------------------------------------------------------------


def get_store(request: Request) -> Store:
    return request.app.state.store


def current_principal(request: Request, authorization: str | None = Header(None)) -> Principal:
    if not authorization or not authorization.startswith("Bearer "):
        raise ApiError(401, "unauthenticated", "send an API key as 'Authorization: Bearer <key>'")
    principal = request.app.state.store.authenticate(authorization.removeprefix("Bearer ").strip())
    if principal is None:
        raise ApiError(401, "invalid_key", "the API key is unknown or revoked")
    return principal


def allow(*roles: str):
    def check(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, "forbidden", f"role {principal.role!r} may not do this; allowed: {', '.join(roles)}")
        return principal

    return check


def owned_job(store: Store, who: Principal, job_id: str) -> Job:
    try:
        job = store.get_job(job_id)
    except NotFound:
        job = None
    if job is None or (not who.is_admin and job.owner_id != who.key_id):
        raise ApiError(404, "not_found", f"no job with id {job_id!r}")
    return job


# -- body limit -----------------------------------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over the limit: at once by Content-Length, or while streaming when it is absent or lies."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(send)
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send):
        body = json.dumps({"error": "too_large",
                           "message": f"request body exceeds the limit of {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


# -- app ------------------------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, run_workers: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = Store(settings.database_url, settings.data_dir)
        store.create_schema()
        app.state.store = store
        started_ray = start_ray(settings.ray_address, settings.num_cpus)
        app.state.dispatcher = None
        if run_workers:
            app.state.dispatcher = Dispatcher(store, chunk_size=settings.chunk_size,
                                              num_workers=settings.num_cpus).start()
        try:
            yield
        finally:
            if app.state.dispatcher is not None:
                app.state.dispatcher.stop()
            if started_ray:
                import ray
                ray.shutdown()
            store.close()

    app = FastAPI(title="fimg", version="0.1.0", lifespan=lifespan,
                  description="Forensic imaging and biometrics: hash matching, face biometrics, age progression.")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.state.settings = settings

    @app.exception_handler(ApiError)
    async def _api_error(_request, exc: ApiError):
        return JSONResponse({"error": exc.code, "message": exc.message, **exc.extra}, status_code=exc.status)

    @app.exception_handler(NotFound)
    async def _not_found(_request, exc: NotFound):
        return JSONResponse({"error": "not_found", "message": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def _conflict(_request, exc: Conflict):
        return JSONResponse({"error": "conflict", "message": str(exc)}, status_code=409)

    @app.exception_handler(JobInputError)
    async def _job_input(_request, exc: JobInputError):
        return JSONResponse({"error": "invalid_job", "message": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc: RequestValidationError):
        problems = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['message']}" for e in problems)
        return JSONResponse({"error": "invalid_request", "message": message, "problems": problems},
                            status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(_request, exc: HTTPException):
        return JSONResponse({"error": "http_error", "message": str(exc.detail)}, status_code=exc.status_code)

    register_routes(app)
    register_gallery_routes(app)
    return app


def register_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["meta"])
    def healthz(request: Request) -> dict:
        dispatcher = request.app.state.dispatcher
        return {"status": "ok", "workers": len(dispatcher.workers) if dispatcher else 0,
                "job_types": sorted(job_types())}

    @app.get("/v1/me", tags=["meta"])
    def me(who: Principal = Depends(current_principal)) -> dict:
        return {"name": who.name, "role": who.role}

    # -- keys and audit (admin) --

    @app.post("/v1/keys", status_code=201, response_model=KeyOut, tags=["admin"])
    def create_key(body: KeyIn, who: Principal = Depends(allow("admin")), store: Store = Depends(get_store)):
        principal, plaintext = store.create_key(body.name, body.role)
        store.audit(who, "create", "api_key", principal.key_id, {"name": body.name, "role": body.role})
        return KeyOut(id=principal.key_id, name=principal.name, role=principal.role, key=plaintext)

    @app.get("/v1/keys", tags=["admin"])
    def list_keys(who: Principal = Depends(allow("admin")), store: Store = Depends(get_store)) -> dict:
        return {"keys": store.list_keys()}

    @app.delete("/v1/keys/{key_id}", status_code=204, tags=["admin"])
    def revoke_key(key_id: int, who: Principal = Depends(allow("admin")), store: Store = Depends(get_store)):
        store.revoke_key(key_id)
        store.audit(who, "revoke", "api_key", key_id)
        return Response(status_code=204)

    @app.get("/v1/audit", tags=["admin"])
    def audit_log(limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                  who: Principal = Depends(allow("admin")), store: Store = Depends(get_store)) -> dict:
        return {"entries": store.audit_entries(limit, offset)}

    @app.get("/v1/audit/verify", tags=["admin"])
    def audit_verify(who: Principal = Depends(allow("admin")), store: Store = Depends(get_store)) -> dict:
        intact, bad_id, checked = store.verify_audit()
        return {"intact": intact, "first_bad_id": bad_id, "checked": checked}

    # -- uploads --

    @app.post("/v1/uploads", status_code=201, response_model=UploadsOut, tags=["uploads"])
    def upload(files: list[UploadFile] = File(...), who: Principal = Depends(allow(*ROLES)),
               store: Store = Depends(get_store)):
        accepted, rejected = [], []
        for name, data in expand_uploads(files, app.state.settings.max_upload_bytes):
            try:
                decoded = decode(data)
            except DecodeError as exc:
                rejected.append(RejectedFile(name=name, error=str(exc), code=exc.code))
                continue
            row = store.add_upload(who, name, data, {"format": decoded.format, "width": decoded.width,
                                                      "height": decoded.height})
            accepted.append(UploadOut(id=row.id, name=row.name, sha256=row.sha256, size=row.size,
                                      format=row.format, width=row.width, height=row.height))
        store.audit(who, "create", "uploads", f"{len(accepted)} uploads",
                    {"ids": [u.id for u in accepted], "rejected": len(rejected)})
        if not accepted:
            raise ApiError(422, "no_valid_files", "none of the files is a usable image",
                           rejected=[r.model_dump() for r in rejected])
        return UploadsOut(uploads=accepted, rejected=rejected)

    # -- banks --

    @app.post("/v1/banks", status_code=201, response_model=BankOut, tags=["banks"])
    def create_bank(body: BankIn, who: Principal = Depends(allow("admin", "analyst")),
                    store: Store = Depends(get_store)):
        store.create_bank(who, body.name, body.description, body.threshold)
        store.audit(who, "create", "bank", body.name)
        return next(b for b in store.list_banks() if b["name"] == body.name)

    @app.get("/v1/banks", response_model=list[BankOut], tags=["banks"])
    def list_banks(who: Principal = Depends(allow("admin", "analyst")), store: Store = Depends(get_store)):
        return store.list_banks()

    @app.post("/v1/banks/{name}/records", response_model=ImportOut, tags=["banks"],
              openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}},
                                                         "application/x-ndjson": {"schema": {"type": "string"}}}}})
    async def import_records(name: str, request: Request, who: Principal = Depends(allow("admin", "analyst"))):
        store: Store = request.app.state.store
        store.get_bank(name)
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip()
        if content_type in ("text/csv", "application/csv"):
            fmt = "csv"
        elif content_type in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
            fmt = "jsonl"
        else:
            raise ApiError(415, "unsupported_media_type",
                           "send bank records as text/csv or application/x-ndjson")
        imported, rejected = await run_in_threadpool(store.import_bank_file, name, await request.body(), fmt)
        store.audit(who, "import", "bank", name, {"imported": imported, "rejected": len(rejected)})
        return ImportOut(imported=imported, rejected=rejected)

    @app.get("/v1/banks/{name}/records", tags=["banks"])
    def export_records(name: str, format: Literal["csv", "jsonl"] = "csv",
                       who: Principal = Depends(allow("admin", "analyst")), store: Store = Depends(get_store)):
        count, text = store.export_bank_file(name, format)
        store.audit(who, "export", "bank", name, {"records": count, "format": format})
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        return PlainTextResponse(text, media_type=media)

    # -- jobs --

    @app.post("/v1/jobs", status_code=202, response_model=JobCreated, tags=["jobs"])
    def create_job(body: JobIn, who: Principal = Depends(current_principal), store: Store = Depends(get_store),
                   idempotency_key: str | None = Header(None, max_length=200)):
        spec = get_job_type(body.type)
        if who.role not in spec.roles:
            raise ApiError(403, "forbidden", f"role {who.role!r} may not create {body.type} jobs")
        try:
            params = spec.params_model.model_validate(body.params)
        except ValidationError as exc:
            message = "; ".join(f"params.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ApiError(422, "invalid_params", message) from None
        items = spec.build_items(store, who, body, params)
        job, created = store.create_job(who, body.type, params.model_dump(mode="json"), items, idempotency_key)
        if created:
            store.audit(who, "create", "job", job.id, {"type": body.type, "items": len(items)})
            if app.state.dispatcher is not None:
                app.state.dispatcher.wake()
        return JobCreated(id=job.id, status=job.status)

    @app.get("/v1/jobs", response_model=list[JobOut], tags=["jobs"])
    def list_jobs(status: str | None = None, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                  who: Principal = Depends(current_principal), store: Store = Depends(get_store)):
        owner = None if who.is_admin else who
        return [job_out(j) for j in store.list_jobs(owner, status, limit, offset)]

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
    def get_job(job_id: str, who: Principal = Depends(current_principal), store: Store = Depends(get_store)):
        job = owned_job(store, who, job_id)
        store.audit(who, "read", "job", job.id)
        return job_out(job)

    @app.get("/v1/jobs/{job_id}/result", tags=["jobs"])
    def job_result(job_id: str, format: Literal["json", "csv"] = "json",
                   who: Principal = Depends(current_principal), store: Store = Depends(get_store)):
        job = owned_job(store, who, job_id)
        items = [{"index": it.idx, "name": it.name, **(it.result or {"status": it.status})}
                 for it in store.job_items(job.id)]
        store.audit(who, "export", "job_result", job.id, {"format": format, "items": len(items)})
        if format == "csv":
            spec = get_job_type(job.type)
            if spec.report_csv is None:
                raise ApiError(400, "no_csv", f"{job.type} results are JSON only")
            return PlainTextResponse(spec.report_csv(items), media_type="text/csv")
        return {**job_out(job).model_dump(mode="json"), "items": items}

    @app.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"])
    def cancel_job(job_id: str, who: Principal = Depends(current_principal), store: Store = Depends(get_store)):
        job = owned_job(store, who, job_id)
        if not store.set_job_status(job.id, "cancelled"):
            raise ApiError(409, "not_active", f"job {job.id} is already {job.status}")
        store.audit(who, "cancel", "job", job.id)
        if app.state.dispatcher is not None:
            app.state.dispatcher.wake()
        return job_out(store.get_job(job.id))

    @app.get("/v1/jobs/{job_id}/artifacts", tags=["jobs"])
    def list_artifacts(job_id: str, who: Principal = Depends(current_principal),
                       store: Store = Depends(get_store)) -> dict:
        job = owned_job(store, who, job_id)
        return {"artifacts": [{"name": a.name, "size": a.size, "sha256": a.sha256, "content_type": a.content_type}
                              for a in store.list_artifacts(job.id)]}

    @app.get("/v1/jobs/{job_id}/artifacts/{name}", tags=["jobs"])
    def get_artifact(job_id: str, name: str, who: Principal = Depends(current_principal),
                     store: Store = Depends(get_store)):
        job = owned_job(store, who, job_id)
        row, data = store.get_artifact(job.id, name)
        store.audit(who, "export", "artifact", f"{job.id}/{name}")
        return Response(data, media_type=row.content_type)

    # -- synchronous hash and lookup --

    @app.post("/v1/hash", response_model=HashOut, tags=["hashing"])
    def hash_one(file: UploadFile = File(...), who: Principal = Depends(allow("admin", "analyst", "service"))):
        try:
            return HashOut(**sync.hash_file(file.file.read()))
        except DecodeError as exc:
            raise ApiError(422, exc.code, str(exc)) from None

    @app.get("/v1/lookup", tags=["hashing"])
    def lookup(pdq: str = Query(..., pattern=r"^[0-9a-fA-F]{64}$"), banks: str = Query(..., min_length=1),
               threshold: int | None = Query(None, ge=0, le=128),
               who: Principal = Depends(allow("admin", "analyst", "service")),
               store: Store = Depends(get_store)) -> dict:
        names = [b for b in banks.split(",") if b]
        for name in names:
            store.get_bank(name)
        matches = sync.lookup(store, pdq.lower(), names, threshold)
        store.audit(who, "lookup", "banks", ",".join(names), {"matches": len(matches)})
        return {"matches": matches}


def register_gallery_routes(app: FastAPI) -> None:
    faces_roles = ("admin", "analyst")

    @app.post("/v1/galleries", status_code=201, tags=["faces"])
    def create_gallery(body: GalleryIn, who: Principal = Depends(allow(*faces_roles)),
                       store: Store = Depends(get_store)) -> dict:
        store.create_gallery(who, body.name, body.description, body.threshold)
        store.audit(who, "create", "gallery", body.name)
        return next(g for g in store.list_galleries() if g["name"] == body.name)

    @app.get("/v1/galleries", tags=["faces"])
    def list_galleries(who: Principal = Depends(allow(*faces_roles)), store: Store = Depends(get_store)) -> list:
        return store.list_galleries()

    @app.post("/v1/galleries/{name}/subjects", status_code=201, tags=["faces"])
    def enrol(name: str, body: SubjectIn, who: Principal = Depends(allow(*faces_roles)),
              store: Store = Depends(get_store)) -> dict:
        store.get_gallery(name)
        enrolled, rejected = [], []
        for photo in body.photos:
            upload = store.get_upload(photo.upload, who)
            try:
                faces = sync.enrolment_faces(store.get_blob(upload.sha256))
            except DecodeError as exc:
                rejected.append({"upload": photo.upload, "error": str(exc)})
                continue
            problem = enrolment_problem(faces, photo.face_index)
            if problem:
                rejected.append({"upload": photo.upload, "error": problem})
                continue
            face = faces[photo.face_index or 0]
            enrolled.append({"subject_id": body.subject_id, "label": body.label, "age_at_photo": photo.age_at_photo,
                             "source_sha256": upload.sha256, "face_index": photo.face_index or 0,
                             "embedding": face["embedding"], "quality": face["quality"]["score"]})
        if not enrolled:
            raise ApiError(422, "nothing_enrolled", "no photo gave a usable face", rejected=rejected)
        ids = store.add_gallery_faces(name, enrolled)
        store.audit(who, "enrol", "gallery_subject", f"{name}/{body.subject_id}", {"faces": len(ids)})
        return {"subject_id": body.subject_id,
                "enrolled": [{"face_id": i, "source_sha256": e["source_sha256"], "quality": e["quality"]}
                             for i, e in zip(ids, enrolled)], "rejected": rejected}

    @app.get("/v1/galleries/{name}/subjects", tags=["faces"])
    def list_subjects(name: str, include_embeddings: bool = False, who: Principal = Depends(allow(*faces_roles)),
                      store: Store = Depends(get_store)) -> dict:
        subjects: dict[str, dict] = {}
        for face in store.gallery_faces(name):
            subject = subjects.setdefault(face.subject_id, {"subject_id": face.subject_id, "label": face.label,
                                                            "faces": []})
            shown = {"face_id": face.id, "age_at_photo": face.age_at_photo, "source_sha256": face.source_sha256,
                     "quality": face.quality}
            if include_embeddings:
                shown["embedding"] = face.embedding
            subject["faces"].append(shown)
        store.audit(who, "export" if include_embeddings else "read", "gallery", name,
                    {"include_embeddings": include_embeddings})
        return {"subjects": list(subjects.values())}

    @app.delete("/v1/galleries/{name}/subjects/{subject_id}", tags=["faces"])
    def delete_subject(name: str, subject_id: str, who: Principal = Depends(allow(*faces_roles)),
                       store: Store = Depends(get_store)) -> dict:
        removed = store.delete_subject(name, subject_id)
        store.audit(who, "delete", "gallery_subject", f"{name}/{subject_id}", {"faces": removed})
        return {"removed": removed}


def enrolment_problem(faces: list[dict], face_index: int | None) -> str | None:
    if not faces:
        return "no face found"
    if face_index is None and len(faces) > 1:
        return f"{len(faces)} faces found; say which with face_index (0 = leftmost)"
    index = face_index or 0
    if index >= len(faces):
        return f"face_index {index} out of range: {len(faces)} faces found"
    if faces[index]["embedding"] is None:
        return "face below the quality gates: " + "; ".join(faces[index]["quality"]["reasons"])
    return None


def expand_uploads(files: list[UploadFile], max_total: int) -> list[tuple[str, bytes]]:
    """Read the uploaded files; a .zip is expanded (bounded: entry count and total uncompressed size)."""
    out: list[tuple[str, bytes]] = []
    for upload in files:
        data = upload.file.read()
        name = upload.filename or "unnamed"
        if name.lower().endswith(".zip") and zipfile.is_zipfile(io.BytesIO(data)):
            out.extend(_expand_zip(name, data, max_total))
        else:
            out.append((name, data))
    return out


def _expand_zip(name: str, data: bytes, max_total: int) -> list[tuple[str, bytes]]:
    out, total = [], 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        if len(entries) > ZIP_MAX_ENTRIES:
            raise ApiError(413, "too_many_entries", f"{name} holds {len(entries)} files; at most {ZIP_MAX_ENTRIES}")
        for entry in entries:
            total += entry.file_size
            if total > max_total:
                raise ApiError(413, "too_large", f"{name} expands beyond {max_total} bytes")
            with archive.open(entry) as handle:
                content = handle.read(entry.file_size + 1)
            if len(content) > entry.file_size:
                raise ApiError(422, "corrupt_zip", f"{name}: entry {entry.filename} is larger than its header says")
            out.append((f"{name}/{entry.filename}", content))
    return out
