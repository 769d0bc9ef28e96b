"""The `match_batch` job: hash each input (or take the caller's hashes) and match it against banks."""
from __future__ import annotations

import csv
import io
import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

from imaging import DecodeError, PdqHash, decode, digests, pdq_dihedral
from imaging.matching import BankEntry, BankMatcher, QueryHashes, match_banks, report_status, variant_hashes
from imaging.regions import QUERY_REGIONS, region_hashes
from imaging.robust import query_variants
from storage import Principal, Store
from workers.inputs import load_upload_item, upload_items
from workers.registry import ItemOutcome, JobInputError, JobSetupError, JobType

HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")


class MatchParams(BaseModel):
    banks: list[str] = Field(min_length=1, description="Names of the banks to match against")
    threshold: int | None = Field(None, ge=0, le=128, description="PDQ distance threshold; default: each bank's")
    dihedral: bool = Field(True, description="Also look up the 8 rotations/flips of each query")


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
        if value is None:
            return None
        length = HEX_LENGTHS[info.field_name]
        if len(value) != length or not HEX_RE.match(value):
            raise ValueError(f"{info.field_name} must be {length} hexadecimal characters")
        return value.lower()


def build_items(store: Store, who: Principal, request: Any, params: MatchParams) -> list[dict]:
    """Items from upload ids (`request.inputs`) and/or caller-held hashes (`request.hashes`)."""
    for bank in params.banks:
        store.get_bank(bank)  # NotFound -> 404 for an unknown bank
    items = upload_items(store, who, request.inputs)
    for i, raw in enumerate(request.hashes or []):
        try:
            entry = HashInput.model_validate(raw)
        except ValueError as exc:
            raise JobInputError(f"hashes[{i}]: {exc}") from exc
        if not (entry.pdq or entry.md5 or entry.sha1 or entry.sha256):
            raise JobInputError(f"hashes[{i}] ({entry.name}): give at least one of pdq, md5, sha1, sha256")
        items.append({"name": entry.name, "input": {"hashes": entry.model_dump(exclude={"name"})}})
    if not items:
        raise JobInputError("a match batch needs `inputs` (upload ids) or `hashes`")
    return items


def _banks(store: Store, names: list[str]) -> list:
    try:
        return [store.get_bank(name) for name in names]
    except LookupError as exc:
        raise JobSetupError(str(exc)) from exc


def context_key(store: Store, params: dict) -> str:
    """The banks and their revisions: an import bumps the revision, so a changed bank is a new context."""
    return "match:" + ",".join(f"{bank.name}@{bank.revision}" for bank in _banks(store, params["banks"]))


def prepare(store: Store, params: dict) -> list[dict]:
    snapshot = []
    for bank in _banks(store, params["banks"]):
        entries = [BankEntry(r.record_id, r.victim_id, r.pdq, r.md5, r.sha1, r.sha256, variant_hashes(r.extra_hashes))
                   for r in store.bank_records(bank.name)]
        snapshot.append({"name": bank.name, "threshold": bank.threshold, "entries": entries})
    return snapshot


def load_item(store: Store, item_input: dict) -> dict:
    if "hashes" in item_input:
        return {"hashes": item_input["hashes"]}
    return load_upload_item(store, item_input)


def setup(snapshot: list[dict]) -> list[BankMatcher]:
    return [BankMatcher(b["name"], b["entries"], b["threshold"]) for b in snapshot]


def run_item(matchers: list[BankMatcher], params: dict, item: dict) -> ItemOutcome:
    if "hashes" in item:
        given = item["hashes"]
        query = QueryHashes(md5=given.get("md5"), sha1=given.get("sha1"), sha256=given.get("sha256"),
                            pdq=PdqHash.from_hex(given["pdq"]) if given.get("pdq") else None,
                            quality=given.get("quality"))
    else:
        data = item["data"]
        evidence = digests(data)
        base = {"sha256": evidence.sha256, "md5": evidence.md5, "sha1": evidence.sha1}
        try:
            decoded = decode(data)
        except DecodeError as exc:
            query = QueryHashes(**base)
            matches = match_banks(query, matchers, params.get("threshold"))
            result = {**base, "pdq": None, "quality": None, "status": "match" if matches else "error",
                      "error": str(exc), "error_code": exc.code, "matches": [m.to_dict() for m in matches]}
            return ItemOutcome(ok=bool(matches), result=result)
        hashes, quality = pdq_dihedral(decoded.rgb)
        query = QueryHashes(**base, pdq=hashes[0], quality=quality,
                            dihedral=tuple(hashes) if params.get("dihedral", True) else (),
                            variants=tuple(query_variants(decoded.rgb)),
                            regions=tuple(region_hashes(decoded.rgb, QUERY_REGIONS)))
    matches = match_banks(query, matchers, params.get("threshold"))
    result = {"sha256": query.sha256, "md5": query.md5, "sha1": query.sha1,
              "pdq": str(query.pdq) if query.pdq else None, "quality": query.quality,
              "status": report_status(query, matches), "matches": [m.to_dict() for m in matches]}
    return ItemOutcome(ok=True, result=result)


REPORT_COLUMNS = ("name", "status", "sha256", "pdq", "quality", "bank", "record_id", "victim_id", "kind",
                  "distance", "error")


def report_csv(items: list[dict]) -> str:
    """One row per match (or one row for an item without matches)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for item in items:
        base = {k: item.get(k) for k in ("name", "status", "sha256", "pdq", "quality", "error")}
        for match in item.get("matches") or [{}]:
            writer.writerow({**base, **match})
    return out.getvalue()


JOB_TYPES = [JobType(
    name="match_batch",
    params_model=MatchParams,
    roles=("admin", "analyst", "service"),
    build_items=build_items,
    context_key=context_key,
    prepare=prepare,
    load_item=load_item,
    setup=setup,
    run_item=run_item,
    report_csv=report_csv,
)]
