"""HMA-compatible routes: OpenMediaMatch 1.1's hashing (`/h`), matching (`/m`), curation (`/c`) and status
shapes under `/hma`, so an integration written for HMA works with a new base URL and an API key header.

Where fimg differs, it says so in docs/interop.md: every route but the status probes needs a key (HMA has no
authentication); banks always match (fimg samples nothing, so `matching_enabled_ratio` is 1.0); a disabled record
never matches, in `raw_lookup` too; errors carry `code` beside HMA's `message`.
"""
from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from fimg_service.errors import InvalidInput
from fimg_service.http.deps import App, Curator, Hasher
from fimg_service.storage.records import BankInfo, StoredRecord
from fimg_service.usecases.rules import MAX_ROW_ID
from imaging import PDQ_THRESHOLD, PdqHash
from imaging.banks import MAX_TIMESTAMP
from imaging.signals import HASH_COLUMNS

router = APIRouter(prefix="/hma", tags=["hma"])
CONTENT_ENABLED, CONTENT_DISABLED = 1, 0  # HMA's magic `disable_until_ts` values; any other is a unix time


def bank_json(bank: BankInfo | str) -> dict:
    return {"name": bank if isinstance(bank, str) else bank.name, "matching_enabled_ratio": 1.0}


def disable_until_ts(record: StoredRecord) -> int:
    if not record.enabled:
        return CONTENT_DISABLED
    return record.disabled_until or CONTENT_ENABLED


def state_of(disable_until: int) -> tuple[bool, int | None]:
    """(enabled, disabled_until) of HMA's `disable_until_ts`."""
    if disable_until == CONTENT_DISABLED:
        return False, None
    return True, None if disable_until == CONTENT_ENABLED else disable_until


def signals_of(record: StoredRecord) -> dict[str, str]:
    return {kind: value for kind in HASH_COLUMNS if (value := getattr(record, kind))}


def content_json(bank: str, record: StoredRecord, include_signals: bool = False) -> dict:
    body = {"id": record.id, "disable_until_ts": disable_until_ts(record), "original_media_uri": None,
            "bank": bank_json(bank), "note": None,
            "metadata": {"content_id": record.record_id, "content_uri": None,
                         "json": {"victim_id": record.victim_id, "member_id": record.member_id,
                                  "tags": list(record.labels)},
                         "collab": {record.source: [record.source_id] if record.source_id else []}
                         if record.source else None}}
    if include_signals:
        body["signals"] = signals_of(record)
    return body


def added_json(record: StoredRecord) -> dict:
    return {"id": record.id, "signals": signals_of(record)}


def _banks(banks: str | None) -> list[str] | None:
    return None if banks is None else [b for b in banks.split(",") if b]


async def _one_file(request: Request) -> bytes:
    form = await request.form()
    files = [value for value in form.values() if isinstance(value, UploadFile)]
    if len(files) != 1:
        raise InvalidInput("send exactly one file as multipart/form-data", code="one_file")
    return await files[0].read()


def _hash(app: App, who, data: bytes) -> dict[str, str]:
    return {"pdq": app.hashing.hash_file(who, data)["pdq"]}


def _by_bank(matches: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for match in matches:
        found.setdefault(match["bank"], []).append(
            {"bank_content_id": match["content_id"], "distance": str(match["distance"])})
    return found


# -- hashing --

@router.get("/h/hash")
def hash_url(who: Hasher, app: App, url: str = Query(..., max_length=2000)) -> dict:
    return _hash(app, who, app.hashing.fetch(who, url))


@router.post("/h/hash")
async def hash_file(request: Request, who: Hasher, app: App) -> dict:
    data = await _one_file(request)
    return await run_in_threadpool(_hash, app, who, data)


# -- matching --

@router.get("/m/raw_lookup")
def raw_lookup(who: Hasher, app: App, signal: str = Query(..., max_length=64),
               signal_type: str = Query(..., max_length=40), banks: str | None = Query(None, max_length=4000),
               include_distance: bool = False) -> dict:
    matches = app.hashing.lookup(who, {signal_type: signal}, _banks(banks))
    if include_distance:
        return {"matches": [{"bank_content_id": m["content_id"], "distance": str(m["distance"])} for m in matches]}
    return {"matches": [m["content_id"] for m in matches]}


@router.get("/m/lookup")
def lookup(who: Hasher, app: App, signal: str | None = Query(None, max_length=64),
           signal_type: str | None = Query(None, max_length=40), url: str | None = Query(None, max_length=2000),
           banks: str | None = Query(None, max_length=4000)) -> dict:
    if url:
        hashes = _hash(app, who, app.hashing.fetch(who, url))
        found = {kind: _by_bank(app.hashing.lookup(who, {kind: value}, _banks(banks)))
                 for kind, value in hashes.items()}
        return found.get(signal_type, {}) if signal_type else found
    if not signal or not signal_type:
        raise InvalidInput("either url or both signal and signal_type are required", code="invalid_input")
    return _by_bank(app.hashing.lookup(who, {signal_type: signal}, _banks(banks)))


@router.post("/m/lookup")
async def lookup_file(request: Request, who: Hasher, app: App,
                      banks: str | None = Query(None, max_length=4000)) -> dict:
    data = await _one_file(request)

    def run() -> dict:
        return {kind: _by_bank(app.hashing.lookup(who, {kind: value}, _banks(banks)))
                for kind, value in _hash(app, who, data).items()}

    return await run_in_threadpool(run)


@router.post("/m/compare")
def compare(who: Hasher, body: Annotated[dict[str, list[str]], Body(max_length=16)]) -> dict:
    out = {}
    for kind, pair in body.items():
        if kind != "pdq":
            raise InvalidInput(f"fimg compares pdq hashes, not {kind!r}", code="unsupported_signal_type")
        if len(pair) != 2:
            raise InvalidInput("Comparison hash list length must be exactly 2", code="invalid_input")
        try:
            left, right = (PdqHash.from_hex(value) for value in pair)
        except ValueError as exc:
            raise InvalidInput(f"Invalid pdq hash: {exc}", code="invalid_hash") from None
        distance = left - right
        out[kind] = [distance <= PDQ_THRESHOLD, {"distance": distance}]
    return out


@router.get("/m/index/status")
def index_status(who: Hasher, app: App, signal_type: str | None = Query(None, max_length=40)) -> dict:
    counts = app.banks.signal_counts(who)
    if signal_type is not None:
        if signal_type not in counts:
            raise InvalidInput(f"No such signal type '{signal_type}'", code="unsupported_signal_type")
        counts = {signal_type: counts[signal_type]}
    # fimg builds a bank's index from its current revision when it is first asked, so it is never behind.
    now = int(time.time())
    return {kind: {"present": size > 0, "built_to": now if size else -1, "size": size} for kind, size in counts.items()}


# -- curation --

@router.get("/c/banks")
def banks_index(who: Curator, app: App) -> list:
    return [bank_json(bank) for bank in app.banks.list(who)]


@router.get("/c/bank/{name}")
def bank_show(name: str, who: Curator, app: App) -> dict:
    return bank_json(app.banks.get(who, name))


@router.post("/c/banks", status_code=201)
def bank_create(who: Curator, app: App, name: str = Body(..., embed=True, max_length=100),
                enabled_ratio: float | None = Body(None, embed=True), enabled: bool | None = Body(None, embed=True)):
    if (enabled_ratio is not None and enabled_ratio != 1.0) or enabled is False:
        raise InvalidInput("fimg banks always match: enabled_ratio is 1.0; disable records instead",
                           code="unsupported")
    return bank_json(app.banks.create(who, name))


@router.post("/c/bank/{name}/content")
async def bank_add_content(name: str, request: Request, who: Curator, app: App) -> dict:
    if request.query_params.get("url"):
        data = await run_in_threadpool(app.hashing.fetch, who, request.query_params["url"])
    else:
        data = await _one_file(request)
    record = await run_in_threadpool(app.banks.add_image, who, name, data)
    return added_json(record)


@router.post("/c/bank/{name}/signal")
def bank_add_signal(name: str, who: Curator, app: App,
                    signals: Annotated[dict[str, str], Body(max_length=4)]) -> dict:
    if not signals:
        raise InvalidInput("No signals given", code="invalid_input")
    return added_json(app.banks.add_record(who, name, signals))


@router.get("/c/bank/{name}/content/{content_id}")
def bank_get_content(name: str, who: Curator, app: App, content_id: int = Path(ge=1, le=MAX_ROW_ID),
                     include_signals: bool = False) -> dict:
    return content_json(name, app.banks.record(who, name, content_id), include_signals)


@router.put("/c/bank/{name}/content/{content_id}")
def bank_update_content(name: str, who: Curator, app: App, content_id: int = Path(ge=1, le=MAX_ROW_ID),
                        disable_until_ts: int | None = Body(None, embed=True, ge=0, le=MAX_TIMESTAMP)) -> dict:
    if disable_until_ts is None:
        return content_json(name, app.banks.record(who, name, content_id))
    enabled, until = state_of(disable_until_ts)
    return content_json(name, app.banks.set_record_state(who, name, content_id, enabled, until))


# -- status (unauthenticated, for load balancers) --

@router.get("/status", response_class=PlainTextResponse, responses={
    503: {"description": "INDEX-NOT-LOADED: the worker pool is not up", "content": {"text/plain": {}}}})
def status(app: App):
    if app.workers == 0:
        return PlainTextResponse("INDEX-NOT-LOADED", status_code=503)
    return PlainTextResponse("I-AM-ALIVE")


@router.get("/status/live", response_class=PlainTextResponse)
def live():
    return PlainTextResponse("I-AM-ALIVE")

