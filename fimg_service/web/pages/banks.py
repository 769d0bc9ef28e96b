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
    owner, members = app.banks.members(signed_in.principal, name)
    return render(request, "bank.html", signed_in, bank=bank, import_formats=IMPORT_FORMATS,
                  export_formats=EXPORT_FORMATS, team=team(signed_in, "banks", name, owner, members), **outcome)


def team(signed_in, area: str, name: str, owner, members) -> dict:
    """What a bank's or gallery's page shows of its case team, and whether this caller may change it."""
    who = signed_in.principal
    return {"action": f"/ui/{area}/{name}/members", "owner": owner, "members": members,
            "manages": who.is_admin or (owner is not None and owner.id == who.key_id)}


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
    files = form.chosen_files("files", "the images to enrol")
    count, rejected = app.banks.enrol(signed_in.principal, name, files, victim_id=form.text("victim_id"))
    return _bank_page(request, signed_in, app, name, enrolled=count, enrol_rejected=rejected)


@router.get("/banks/{name}/export")
def export_bank(signed_in: Page, app: App, name: BankName, format: str = "csv"):
    text, _warnings = app.banks.export(signed_in.principal, name, format)
    suffix = format if format in EXPORT_TYPES else "txt"
    return attachment(text, EXPORT_TYPES.get(format, "text/plain"), f"{name}.{suffix}")


@router.post("/banks/{name}/members")
def add_member(request: Request, signed_in: Page, app: App, name: BankName, form: Form):
    app.banks.add_member(signed_in.principal, name, form.text("key_name", ""))
    return go(request, f"/banks/{name}")


@router.post("/banks/{name}/members/{key_name}/remove")
def remove_member(request: Request, signed_in: Page, app: App, name: BankName,
                  key_name: Annotated[str, Path(max_length=200)], form: Form):
    app.banks.remove_member(signed_in.principal, name, key_name)
    return go(request, f"/banks/{name}")
