from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from fimg_service.errors import UnsupportedMedia
from fimg_service.http.deps import App, Curator
from fimg_service.http.models import BankIn, BankOut, ImportOut, KeyName, MemberOut, MembersOut
from fimg_service.http.openapi import errors

router = APIRouter(tags=["banks"])
MEDIA_FORMATS = {"text/csv": "csv", "application/csv": "csv", "application/x-ndjson": "jsonl",
                 "application/jsonl": "jsonl", "application/json-lines": "jsonl"}
FORMAT_MEDIA = {"csv": "text/csv", "jsonl": "application/x-ndjson", "pytx_dataset_csv": "text/csv"}


@router.post("/v1/banks", status_code=201, response_model=BankOut, responses=errors(409))
def create_bank(body: BankIn, who: Curator, app: App):
    return BankOut.of(app.banks.create(who, body.name, body.description, body.threshold))


@router.get("/v1/banks", response_model=list[BankOut])
def list_banks(who: Curator, app: App):
    return [BankOut.of(b) for b in app.banks.list(who)]


@router.post("/v1/banks/{name}/records", response_model=ImportOut, responses=errors(415),
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}},
                                                        "application/x-ndjson": {"schema": {"type": "string"}},
                                                        "text/plain": {"schema": {"type": "string"}},
                                                        "application/xml": {"schema": {"type": "string"}}}}})
async def import_records(name: str, request: Request, who: Curator, app: App,
                         format: str | None = Query(None, max_length=40,
                                                    description="any of the import formats; default: by Content-Type"),
                         signal_type: str | None = Query(None, max_length=40,
                                                         description="pytx_local: the type of bare hashes")):
    media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    file_format = format or MEDIA_FORMATS.get(media_type)
    if file_format is None:
        raise UnsupportedMedia("send bank records as text/csv or application/x-ndjson, or name a ?format=")
    body = await request.body()
    report = await run_in_threadpool(app.banks.import_file, who, name, body, file_format, signal_type)
    return ImportOut(imported=report.imported, rejected=report.rejected, disabled=report.disabled,
                     unsupported=report.unsupported)


EXPORT_CONTENT = {media: {"schema": {"type": "string"}} for media in ("text/csv", "application/x-ndjson")}


@router.get("/v1/banks/{name}/records", response_class=PlainTextResponse,
            responses={200: {"description": "the records in the format asked for", "content": EXPORT_CONTENT}})
def export_records(name: str, who: Curator, app: App, format: str = Query("csv", max_length=40)):
    text, warnings = app.banks.export(who, name, format)
    headers = {"X-Fimg-Export-Warnings": "; ".join(warnings)} if warnings else {}
    return PlainTextResponse(text, media_type=FORMAT_MEDIA.get(format, "text/plain"), headers=headers)


@router.get("/v1/banks/{name}/members", response_model=MembersOut)
def list_bank_members(name: str, who: Curator, app: App):
    return MembersOut.of(*app.banks.members(who, name))


@router.put("/v1/banks/{name}/members/{key_name}", response_model=MemberOut, responses=errors(409))
def add_bank_member(name: str, key_name: KeyName, who: Curator, app: App):
    return MemberOut.of(app.banks.add_member(who, name, key_name))


@router.delete("/v1/banks/{name}/members/{key_name}", status_code=204, responses=errors(409))
def remove_bank_member(name: str, key_name: KeyName, who: Curator, app: App):
    app.banks.remove_member(who, name, key_name)
    return Response(status_code=204)
