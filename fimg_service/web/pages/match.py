"""A new match batch: many files or a ZIP of them, against one or more banks."""
from __future__ import annotations

from fastapi import APIRouter, Request

from fimg_service.http.deps import App
from fimg_service.usecases import job_request
from fimg_service.web.render import render
from fimg_service.web.session import Form, Page, go

router = APIRouter()


@router.get("/match/new")
def new_batch(request: Request, signed_in: Page, app: App):
    return render(request, "match_new.html", signed_in, banks=app.banks.list(signed_in.principal))


@router.post("/match")
def submit_batch(request: Request, signed_in: Page, app: App, form: Form):
    who = signed_in.principal
    files = form.chosen_files("files", "the images (or a ZIP of them) to match")
    params = {"banks": form.all("banks")}
    if (threshold := form.number("threshold", "the threshold")) is not None:
        params["threshold"] = int(threshold) if threshold.is_integer() else threshold
    uploads, _rejected = app.uploads.add(who, files, require_image=False)
    job = app.jobs.submit(who, "match_batch", job_request([u.id for u in uploads]), params)
    return go(request, f"/jobs/{job.id}")
