"""Banks of identified-victim records: list, create, import a file (refused lines shown), enrol images, export."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from fimg_service.errors import InvalidInput
from fimg_service.http.deps import App
from fimg_service.usecases.banks import EXPORT_FORMATS, IMPORT_FORMATS
from fimg_service.web.pages.jobs import attachment
from fimg_service.web.render import render
from fimg_service.web.session import Form, Page, go

router = APIRouter()

BankName = Annotated[str, Path(max_length=100)]
EXPORT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


@router.get("/banks")
def banks_page(request: Request, signed_in: Page, app: App):
    return render(request, "banks.html", signed_in, banks=app.banks.list(signed_in.principal))


@router.post("/banks")
def create_bank(request: Request, signed_in: Page, app: App, form: Form):
    threshold = form.number("threshold", "the threshold")
    bank = app.banks.create(signed_in.principal, form.text("name", ""), form.text("description"),
                            None if threshold is None else int(threshold))
    return go(request, f"/banks/{bank.name}")


def _bank_page(request: Request, signed_in, app: App, name: str, **outcome):
    bank = app.banks.get(signed_in.principal, name)
    return render(request, "bank.html", signed_in, bank=bank, import_formats=IMPORT_FORMATS,
                  export_formats=EXPORT_FORMATS, **outcome)


@router.get("/banks/{name}")
def bank_page(request: Request, signed_in: Page, app: App, name: BankName):
    return _bank_page(request, signed_in, app, name)


@router.post("/banks/{name}/import")
def import_file(request: Request, signed_in: Page, app: App, name: BankName, form: Form):
    file_name, data = (form.files.get("file") or [(None, None)])[0]
    if data is None:
        raise InvalidInput("choose a bank file or hash list to import", code="missing_file", field="file")
    report = app.banks.import_file(signed_in.principal, name, data, form.text("format", "csv"),
                                   form.text("signal_type"))
    return _bank_page(request, signed_in, app, name, imported=report, imported_from=file_name)


@router.post("/banks/{name}/enrol")
def enrol_images(request: Request, signed_in: Page, app: App, name: BankName, form: Form):
    files = form.files.get("files")
    if not files:
        raise InvalidInput("choose the images to enrol", code="missing_files", field="files")
    count, rejected = app.banks.enrol(signed_in.principal, name, files, victim_id=form.text("victim_id"))
    return _bank_page(request, signed_in, app, name, enrolled=count, enrol_rejected=rejected)


@router.get("/banks/{name}/export")
def export_bank(signed_in: Page, app: App, name: BankName, format: str = "csv"):
    text, _warnings = app.banks.export(signed_in.principal, name, format)
    suffix = format if format in EXPORT_TYPES else "txt"
    return attachment(text, EXPORT_TYPES.get(format, "text/plain"), f"{name}.{suffix}")
