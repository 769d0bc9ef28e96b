"""The `match_batch` job: hash each input (or take the caller's hashes) and match it against banks."""
from __future__ import annotations

import csv
import io

import numpy as np
import ray
from pydantic import BaseModel, Field, ValidationError, field_validator

from imaging import DecodeError, PdqHash, decode, digests, signals
from imaging.banks import spreadsheet_safe
from imaging.index import load_compiled
from imaging.matching import (BankMatcher, Provenance, QueryHashes, bank_entry, image_query, match_banks,
                              report_status)
from fimg_service.errors import SetupFailed
from fimg_service.roles import HASHERS
from workers.registry import (ItemOutcome, JobRequest, JobType, References, Sources, UploadResolver, invalid_job,
                              load_upload_item, upload_items, validation_message)


MAX_BANKS_PER_JOB = 100


class MatchParams(BaseModel):
    banks: list[str] = Field(min_length=1, description=f"Names of the banks to match against (at most "
                                                        f"{MAX_BANKS_PER_JOB}; a name given twice counts once)")
    threshold: int | None = Field(None, ge=0, le=128, description="PDQ distance threshold; default: each bank's")
    dihedral: bool = Field(True, description="Also look up the 8 rotations/flips of each query")

    @field_validator("banks")
    @classmethod
    def _distinct(cls, banks: list[str]) -> list[str]:
        distinct = list(dict.fromkeys(banks))
        if len(distinct) > MAX_BANKS_PER_JOB:
            raise ValueError(f"at most {MAX_BANKS_PER_JOB} banks per job, not {len(distinct)}")
        return distinct


class HashInput(BaseModel):
    name: str = Field(min_length=1, max_length=500)
    pdq: str | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    quality: int | None = Field(None, ge=0, le=100)

    @field_validator("pdq", "md5", "sha1", "sha256")
    @classmethod
    def _hex(cls, value: str | None, info) -> str | None:
        return None if value is None else signals.normalise(info.field_name, value)


def references(params: MatchParams) -> References:
    return References(banks=tuple(params.banks))


def build_items(request: JobRequest, params: MatchParams, uploads: UploadResolver) -> list[dict]:
    """Items from upload ids (`request.inputs`) and/or caller-held hashes (`request.hashes`)."""
    items = upload_items(uploads, request.inputs)
    for i, raw in enumerate(request.hashes):
        try:
            entry = HashInput.model_validate(raw)
        except ValidationError as exc:
            raise invalid_job(validation_message(exc, f"hashes[{i}]")) from None
        if not (entry.pdq or entry.md5 or entry.sha1 or entry.sha256):
            raise invalid_job(f"hashes[{i}] ({entry.name}): give at least one of pdq, md5, sha1, sha256")
        items.append({"name": entry.name, "input": {"hashes": entry.model_dump(exclude={"name"})}})
    if not items:
        raise invalid_job("a match batch needs `inputs` (upload ids) or `hashes`")
    return items


def _banks(storage, names: list[str]) -> list:
    with storage.read() as unit:
        banks = [(name, unit.banks.version(name)) for name in names]
    missing = [name for name, bank in banks if bank is None]
    if missing:
        raise SetupFailed(f"no bank named {missing[0]!r}")
    return [bank for _, bank in banks]


def context_key(storage, params: dict) -> str:
    """The banks and their revisions: an import bumps the revision, so a changed bank is a new context. The
    creation time tells apart a bank deleted and made again under its name (or one of another database)."""
    return "match:" + ",".join(f"{bank.name}.{bank.created_at.timestamp()}@{bank.revision}"
                               for bank in _banks(storage, params["banks"]))


def build_bank(storage, name: str) -> BankMatcher:
    """One bank at its current revision, read and built (in the service: see `workers.built_banks`)."""
    [bank] = _banks(storage, [name])
    with storage.read() as unit:
        records = unit.banks.records(bank.id)
    entries = [bank_entry(r.record_id, r.victim_id, r.pdq, r.md5, r.sha1, r.sha256, r.extra_hashes,
                          provenance=Provenance(r.source, r.source_id, r.member_id, r.labels),
                          enabled=r.enabled, disabled_until=r.disabled_until, content_id=r.id)
               for r in records]
    del records
    return BankMatcher(bank.name, entries, bank.threshold)


def prepare(sources: Sources, params: dict) -> list[ray.ObjectRef]:
    """The job's banks as references to their built copies in Ray's object store, shared with every other job
    and the lookups on the same bank revisions; each actor maps them (`setup`), none builds or copies one."""
    return [sources.built_bank(name) for name in params["banks"]]


def setup(bank_refs: list[ray.ObjectRef]) -> list[BankMatcher]:
    return ray.get(list(bank_refs))


def load_item(blobs, item_input: dict) -> dict:
    if "hashes" in item_input:
        return {"hashes": item_input["hashes"]}
    return load_upload_item(blobs, item_input)


def run_item(matchers: list[BankMatcher], params: MatchParams, item: dict) -> ItemOutcome:
    if "hashes" in item:
        given = item["hashes"]
        query = QueryHashes(md5=given.get("md5"), sha1=given.get("sha1"), sha256=given.get("sha256"),
                            pdq=PdqHash.from_hex(given["pdq"]) if given.get("pdq") else None,
                            quality=given.get("quality"))
    else:
        data = item["data"]
        evidence = digests(data, sha256=item.get("sha256"))
        base = {"sha256": evidence.sha256, "md5": evidence.md5, "sha1": evidence.sha1}
        try:
            decoded = decode(data)
        except DecodeError as exc:
            query = QueryHashes(**base)
            matches = match_banks(query, matchers, params.threshold)
            result = {**base, "pdq": None, "quality": None, "status": "match" if matches else "error",
                      "error": {"code": exc.code, "message": str(exc)}, "matches": [m.to_dict() for m in matches]}
            return ItemOutcome(ok=bool(matches), result=result)
        query = image_query(decoded.rgb, **base, flips=params.dihedral)
    matches = match_banks(query, matchers, params.threshold)
    result = {"sha256": query.sha256, "md5": query.md5, "sha1": query.sha1,
              "pdq": str(query.pdq) if query.pdq else None, "quality": query.quality,
              "status": report_status(query, matches), "matches": [m.to_dict() for m in matches]}
    return ItemOutcome(ok=True, result=result)


def warm_up() -> None:
    """Hash a small generated picture and search a small index, so that an actor loads the compiled PDQ,
    resampling, blob and probe code before its first chunk (about a second on a job's first result otherwise)."""
    rng = np.random.default_rng(0)
    image_query(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    load_compiled()


REPORT_COLUMNS = ("name", "status", "sha256", "pdq", "quality", "bank", "record_id", "victim_id", "kind",
                  "distance", "source", "source_id", "member_id", "tags", "error_code", "error")


def report_csv(items: list[dict]) -> str:
    """One row per match (or one row for an item without matches)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for item in items:
        error = item.get("error") or {}
        base = {**{k: item.get(k) for k in ("name", "status", "sha256", "pdq", "quality")},
                "error_code": error.get("code"), "error": error.get("message")}
        for match in item.get("matches") or [{}]:
            row = {**base, **match, "tags": ";".join(match.get("tags") or ())}
            writer.writerow({k: spreadsheet_safe(str(v)) if v is not None else None for k, v in row.items()})
    return out.getvalue()


JOB_TYPES = [JobType(
    name="match_batch",
    params_model=MatchParams,
    roles=HASHERS,
    build_items=build_items,
    references=references,
    context_key=context_key,
    prepare=prepare,
    load_item=load_item,
    setup=setup,
    run_item=run_item,
    report_csv=report_csv,
    warm_up=warm_up,
)]
