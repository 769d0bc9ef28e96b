"""A new age progression (or one re-run with changed parameters) from the child's photo and, optionally,
relatives' photos."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request

from fimg_service.errors import InvalidInput
from fimg_service.http.deps import App
from fimg_service.usecases import job_request
from fimg_service.web.render import render
from fimg_service.web.session import Form, Page, Submission, go

router = APIRouter()

MAX_RELATIVES = 4
SEXES = (("f", "Female"), ("m", "Male"), ("u", "Not stated"))


@router.get("/age/new")
def new_progression(request: Request, signed_in: Page, app: App, rerun: str | None = Query(None, max_length=64)):
    earlier = app.jobs.get(signed_in.principal, rerun) if rerun else None
    params = dict(earlier.params) if earlier else {}
    photo = None
    if earlier:
        photo = app.jobs.upload_of_item(signed_in.principal, earlier.id, 0)
    relatives = list(params.get("family", []))
    relatives += [{}] * (MAX_RELATIVES - len(relatives))
    return render(request, "age_new.html", signed_in, params=params, photo_upload=photo, rerun=earlier,
                  relatives=relatives, sexes=SEXES,
                  target_text=", ".join(f"{a:g}" for a in params.get("target_ages", [])))


def _upload_one(app: App, who, submission: Submission, field: str, what: str) -> str | None:
    files = submission.files.get(field)
    if not files:
        return None
    try:
        uploads, _rejected = app.uploads.add(who, files[:1], expand_archives=False)
    except InvalidInput as exc:
        rejected = exc.detail.get("rejected") or [{"message": exc.message}]
        raise InvalidInput(f"{what} is not a usable image: {rejected[0]['message']}", code="invalid_image",
                           field=field) from None
    return uploads[0].id


def _ages(text: str | None) -> list[float]:
    try:
        return [float(part) for part in (text or "").replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise InvalidInput("target ages are numbers separated by commas, e.g. 8, 12, 16", code="invalid_number",
                           field="target_ages") from None


@router.post("/age")
def submit_progression(request: Request, signed_in: Page, app: App, form: Form):
    who = signed_in.principal
    params = {"age": form.number("age", "the child's age"), "sex": form.text("sex", ""),
              "target_ages": _ages(form.text("target_ages")),
              "prepare_old_photo": form.text("prepare_old_photo") == "on"}
    for optional in ("family_weight", "appearance_weight"):
        if (value := form.number(optional, optional.replace("_", " "))) is not None:
            params[optional] = value
    if note := form.text("label_note"):
        params["label_note"] = note
    photo = _upload_one(app, who, form, "photo", "the child's photo") or form.text("photo_upload")
    if not photo:
        raise InvalidInput("choose the child's photo", code="missing_photo", field="photo")
    params["family"] = []
    for number in range(1, MAX_RELATIVES + 1):
        upload = _upload_one(app, who, form, f"relative_photo_{number}", f"relative {number}'s photo") \
            or form.text(f"relative_upload_{number}")
        if upload is not None:
            params["family"].append({"upload": upload, "relation": form.text(f"relative_relation_{number}", ""),
                                     "age": form.number(f"relative_age_{number}", f"relative {number}'s age")})
    job = app.jobs.submit(who, "age_progression", job_request([photo]), params)
    return go(request, f"/jobs/{job.id}")
