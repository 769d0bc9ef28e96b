"""Job types: each is a params model, how its items are built, and the per-item function a worker runs.

Adding a job type means writing one module in `workers/` that builds a `JobType` and adding it to
`JOB_MODULES` (each such module lists its types in `JOB_TYPES`); the use cases, routes and dispatcher stay as
they are.

Two halves of a job type run in different places:
- service side (has the storage): `references` names the banks/galleries a job needs (the use case checks they
  exist), `build_items` turns a typed `JobRequest` into items, `context_key` names the job's shared context
  cheaply (e.g. its banks and their revisions) and `prepare` builds that context's payload from `Sources` (once
  per key while a job needs it, on a preparation thread, see `workers.dispatcher`);
- worker side (a Ray actor, no storage): `setup` turns the context payload into something ready to use (once per
  actor and context key; a match job's maps its built banks), `run_item` computes one item from the params
  re-validated by `params_model`;
- either side: `load_item(blobs, input)` turns an item's stored input into what `run_item` needs, reading blobs
  by SHA-256 with `blobs.get`. A worker that sees the service's blob store runs it on a `BlobReader` of its own;
  for one that does not, the dispatcher runs it on the store and the bytes travel through Ray.
"""
from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from fimg_service.errors import InvalidInput
from fimg_service.storage.records import UploadRecord

JOB_MODULES = ("workers.match_batch", "workers.faces", "workers.age_progression")


@dataclass(frozen=True)
class JobRequest:
    """What a caller asks a job to work on: upload ids and/or caller-held hashes (not yet validated)."""

    inputs: tuple[str, ...] = ()
    hashes: tuple[dict, ...] = ()


class UploadResolver(Protocol):
    """The uploads the caller may use, in the order asked, or NotFound for the first that is not one of them
    (another owner's upload is not found either)."""

    def __call__(self, upload_ids: Sequence[str]) -> list[UploadRecord]: ...


@dataclass(frozen=True)
class Sources:
    """What a job type's service side prepares a context from: the storage, and banks built once per revision
    (`built_bank(name)`: a Ray reference to the bank's BankMatcher, see `workers.built_banks`)."""

    storage: Any
    built_bank: Callable[[str], Any]


@dataclass(frozen=True)
class References:
    banks: tuple[str, ...] = ()
    galleries: tuple[str, ...] = ()


@dataclass
class ItemOutcome:
    ok: bool
    result: dict
    artifacts: dict[str, tuple[bytes, str]] = field(default_factory=dict)


def item_error(code: str, message: str, **result: Any) -> ItemOutcome:
    """A failed item in the one error shape (`error: {code, message}`)."""
    return ItemOutcome(ok=False, result={**result, "status": "error", "error": {"code": code, "message": message}})


def input_unavailable(exc: Exception) -> ItemOutcome:
    """An item whose input could not be read (its blob missing or damaged): its own error, not its chunk's."""
    return item_error("input_unavailable", f"input unavailable: {getattr(exc, 'message', exc)}")


def invalid_job(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_job")


def invalid_params(exc: ValidationError) -> InvalidInput:
    fields = {}
    for error in exc.errors():  # the first problem of each top-level field, for a form to show beside it
        fields.setdefault(str(error["loc"][0]) if error["loc"] else "params", error["msg"])
    return InvalidInput(validation_message(exc, "params"), code="invalid_params", fields=fields)


def validation_message(exc: ValidationError, prefix: str) -> str:
    """Pydantic's errors as one line: `prefix.field: problem; ...`."""
    return "; ".join(f"{'.'.join([prefix, *map(str, e['loc'])])}: {e['msg']}" for e in exc.errors())


@dataclass(frozen=True)
class JobType:
    name: str
    params_model: type[BaseModel]
    roles: tuple[str, ...]
    build_items: Callable[[JobRequest, Any, UploadResolver], list[dict]]
    load_item: Callable[..., dict]
    run_item: Callable[[Any, Any, dict], ItemOutcome]
    references: Callable[[Any], References] = lambda _params: References()
    context_key: Callable[..., str] | None = None  # None: the job type has no shared context
    prepare: Callable[[Sources, Any], Any] = lambda _sources, _params: None
    setup: Callable[[Any], Any] = lambda payload: payload
    report_csv: Callable[[list[dict]], str] | None = None
    warm_up: Callable[[], None] = lambda: None  # worker side, at actor start: load what the first item would

    def key_for(self, storage: Any, params: dict) -> str:
        return self.context_key(storage, params) if self.context_key else self.name

    def params(self, raw: dict) -> BaseModel:
        """The params as the type's own model: the one place defaults and bounds are applied."""
        return self.params_model.model_validate(raw)


_REGISTRY: dict[str, JobType] = {}
_REGISTRY_LOCK = threading.Lock()


def job_types() -> dict[str, JobType]:
    """Every job type. Filled once, whole: an actor's warm-up thread and its setup threads may ask at once, and
    none may see the registry with some modules still importing."""
    if not _REGISTRY:
        with _REGISTRY_LOCK:
            if not _REGISTRY:
                found = {job_type.name: job_type for module_name in JOB_MODULES
                         for job_type in importlib.import_module(module_name).JOB_TYPES}
                _REGISTRY.update(found)
    return _REGISTRY


def get_job_type(name: str) -> JobType:
    types = job_types()
    if name not in types:
        raise InvalidInput(f"unknown job type {name!r}; known types: {', '.join(sorted(types))}",
                           code="unknown_job_type")
    return types[name]


def upload_items(uploads: UploadResolver, upload_ids: Sequence[str]) -> list[dict]:
    """Items from upload ids: the name and blob digest each item reads (ownership is the resolver's)."""
    return [{"name": upload.name, "input": {"upload": upload.id, "sha256": upload.sha256}}
            for upload in uploads(upload_ids)]


def load_upload_item(blobs: Any, item_input: dict) -> dict:
    """An upload's bytes and their SHA-256, which reading the blob by that name has just checked."""
    return {"data": blobs.get(item_input["sha256"]), "sha256": item_input["sha256"]}
