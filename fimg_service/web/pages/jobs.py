"""Jobs: the caller's list, each job's page (a match report, an age progression's images, face candidates),
live progress, downloads and cancelling."""
from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from agepro.render import format_age  # the age in the artefacts' names
from fimg_service.http.deps import App
from fimg_service.http.models import JobOut
from fimg_service.usecases.jobs import ACTIVE_JOB_STATES, REPORT_SORTS
from fimg_service.web.render import render
from fimg_service.web.session import Form, Page, go

router = APIRouter()

JOBS_PER_PAGE = 50
ITEMS_PER_PAGE = 50
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def attachment(data: bytes | str, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type, headers={"content-disposition": f'attachment; filename="{filename}"'})


@router.get("/jobs")
def jobs_page(request: Request, signed_in: Page, app: App, status: str | None = Query(None, max_length=20),
              page: int = Query(1, ge=1, le=10**6)):
    status = status if status in JOB_STATES else None
    jobs = app.jobs.list(signed_in.principal, status, JOBS_PER_PAGE + 1, (page - 1) * JOBS_PER_PAGE)
    return render(request, "jobs.html", signed_in, jobs=jobs[:JOBS_PER_PAGE], status=status, states=JOB_STATES,
                  page=page, more=len(jobs) > JOBS_PER_PAGE)


@router.get("/jobs/{job_id}")
def job_page(request: Request, signed_in: Page, app: App, job_id: str,
             verdict: str | None = Query(None, max_length=20), kind: str | None = Query(None, max_length=60),
             bank: str | None = Query(None, max_length=100), sort: str = Query("index", max_length=20),
             order: Literal["asc", "desc"] = "asc", page: int = Query(1, ge=1, le=10**7)):
    who = signed_in.principal
    sort = sort if sort in REPORT_SORTS else "index"
    filters = {"verdict": verdict or None, "kind": kind or None, "bank": bank or None}
    report = app.jobs.report_page(who, job_id, **filters, sort=sort, descending=order == "desc",
                                  limit=ITEMS_PER_PAGE, offset=(page - 1) * ITEMS_PER_PAGE)
    job = report.job
    context = {"job": job, "report": report, "filters": filters, "sort": sort, "order": order, "page": page,
               "pages": max(1, -(-report.total // ITEMS_PER_PAGE)), "active": job.status in ACTIVE_JOB_STATES,
               "sorts": REPORT_SORTS}
    if job.type == "age_progression":
        artifacts = app.jobs.artifacts(who, job.id) if job.done else []
        item = report.items[0] if report.items else {}
        return render(request, "job_age.html", signed_in, **context, item=item,
                      targets=[format_age(a) for a in job.params.get("target_ages", [])],
                      artifact_names={a.name for a in artifacts},
                      provenance_text=json.dumps(item.get("provenance"), indent=2, sort_keys=True)
                      if item.get("provenance") else None)
    template = "job_match.html" if job.type == "match_batch" else "job_faces.html"
    return render(request, template, signed_in, **context)


@router.get("/jobs/{job_id}/progress")
def job_progress(signed_in: Page, app: App, job_id: str):
    job = app.jobs.status(signed_in.principal, job_id)
    return JSONResponse({"status": job.status, "done": job.done, "failed": job.failed, "total": job.total,
                         "active": job.status in ACTIVE_JOB_STATES, "error": job.error})


@router.get("/jobs/{job_id}/report.{file_format}")
def job_report(signed_in: Page, app: App, job_id: str, file_format: Literal["csv", "json"]):
    job, items = app.jobs.report(signed_in.principal, job_id, file_format)
    if file_format == "csv":
        return attachment(app.jobs.report_csv(job, items), "text/csv", f"report-{job.id}.csv")
    body = json.dumps({**JobOut.of(job).model_dump(mode="json"), "items": items}, indent=1)
    return attachment(body, "application/json", f"report-{job.id}.json")


@router.get("/jobs/{job_id}/files/{name}")
def job_file(signed_in: Page, app: App, job_id: str, name: str, download: bool = False):
    artifact, data = app.jobs.artifact(signed_in.principal, job_id, name)
    if download:
        return attachment(data, artifact.content_type, name)
    return Response(data, media_type=artifact.content_type)


@router.get("/jobs/{job_id}/bundle.zip")
def job_bundle(signed_in: Page, app: App, job_id: str):
    return attachment(app.jobs.bundle(signed_in.principal, job_id), "application/zip", f"job-{job_id}.zip")


@router.post("/jobs/{job_id}/cancel")
def cancel_job(request: Request, signed_in: Page, app: App, job_id: str, _form: Form):
    app.jobs.cancel(signed_in.principal, job_id)
    return go(request, f"/jobs/{job_id}")


@router.get("/jobs/{job_id}/items/{index}/image")
def item_image(signed_in: Page, app: App, job_id: str, index: int, reveal: bool = False):
    """An analyst's own upload behind a report row: obscured unless they chose to reveal it (audited)."""
    upload_id = app.jobs.upload_of_item(signed_in.principal, job_id, index)
    return Response(app.uploads.review_copy(signed_in.principal, upload_id, reveal=reveal), media_type="image/png")
