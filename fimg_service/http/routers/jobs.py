from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import PlainTextResponse

from fimg_service.http.deps import App, Caller
from fimg_service.http.models import JobCreated, JobIn, JobOut
from fimg_service.http.openapi import errors
from fimg_service.usecases import job_request

router = APIRouter(tags=["jobs"])


@router.post("/v1/jobs", status_code=202, response_model=JobCreated, responses=errors(404, 409))
def create_job(body: JobIn, who: Caller, app: App,
               idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
    job = app.jobs.submit(who, body.type, job_request(body.inputs, body.hashes), body.params, idempotency_key)
    return JobCreated(id=job.id, status=job.status)


@router.get("/v1/jobs", response_model=list[JobOut])
def list_jobs(who: Caller, app: App, status: str | None = Query(None, max_length=20),
              limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=2**53)):
    return [JobOut.of(j) for j in app.jobs.list(who, status, limit, offset)]


@router.get("/v1/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, who: Caller, app: App):
    return JobOut.of(app.jobs.get(who, job_id))


@router.get("/v1/jobs/{job_id}/result", responses={200: {
    "description": "the report; CSV with ?format=csv", "content": {"text/csv": {"schema": {"type": "string"}}}}})
def job_result(job_id: str, who: Caller, app: App, format: Literal["json", "csv"] = "json"):
    job, items = app.jobs.report(who, job_id, format)
    if format == "csv":
        return PlainTextResponse(app.jobs.report_csv(job, items), media_type="text/csv")
    return {**JobOut.of(job).model_dump(mode="json"), "items": items}


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobOut, responses=errors(409))
def cancel_job(job_id: str, who: Caller, app: App):
    return JobOut.of(app.jobs.cancel(who, job_id))


@router.get("/v1/jobs/{job_id}/artifacts")
def list_artifacts(job_id: str, who: Caller, app: App) -> dict:
    return {"artifacts": [{"name": a.name, "size": a.size, "sha256": a.sha256, "content_type": a.content_type}
                          for a in app.jobs.artifacts(who, job_id)]}


@router.get("/v1/jobs/{job_id}/artifacts/{name}", response_class=Response, responses={200: {
    "description": "the artefact", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                                               "application/json": {"schema": {"type": "object"}}}}})
def get_artifact(job_id: str, name: str, who: Caller, app: App):
    artifact, data = app.jobs.artifact(who, job_id, name)
    return Response(data, media_type=artifact.content_type)
