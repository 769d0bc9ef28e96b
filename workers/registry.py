"""Job types: each is a params model, how its items are built, and the per-item function a worker runs.

Adding a job type means writing one module in `workers/` that builds a `JobType` and adding it to
`JOB_MODULES` (each such module lists its types in `JOB_TYPES`); the API routes and the dispatcher stay as they are.

Two halves of a job type run in different places:
- service side (has the Store): `build_items` turns a request into persisted items, `context_key` names the
  job's shared context cheaply (e.g. its banks and their revisions), `prepare` builds that context's payload
  (e.g. a bank snapshot; once per key, see `workers.pool.ContextRefs`) and `load_item` turns an item into what
  a worker needs;
- worker side (a Ray actor, no Store): `setup` turns the context payload into something ready to use (built once
  per actor and context key), `run_item` computes one item.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

JOB_MODULES = ("workers.match_batch", "workers.faces", "workers.age_progression")


class JobInputError(ValueError):
    """A job request that cannot be accepted (unknown bank, upload not found...): the client's to fix."""

    def __init__(self, message: str, status_code: int = 422):
        super().__init__(message)
        self.status_code = status_code


class JobSetupError(RuntimeError):
    """The job as a whole cannot run (e.g. its bank was deleted): the job fails with this message."""


@dataclass
class ItemOutcome:
    ok: bool
    result: dict
    artifacts: dict[str, tuple[bytes, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class JobType:
    name: str
    params_model: type[BaseModel]
    roles: tuple[str, ...]
    build_items: Callable[..., list[dict]]
    load_item: Callable[..., dict]
    run_item: Callable[[Any, dict, dict], ItemOutcome]
    context_key: Callable[..., str] | None = None  # None: the job type has no shared context
    prepare: Callable[..., Any] = lambda _store, _params: None
    setup: Callable[[Any], Any] = lambda payload: payload
    report_csv: Callable[[list[dict]], str] | None = None

    def key_for(self, store: Any, params: dict) -> str:
        return self.context_key(store, params) if self.context_key else self.name


_REGISTRY: dict[str, JobType] = {}


def job_types() -> dict[str, JobType]:
    if not _REGISTRY:
        for module_name in JOB_MODULES:
            for job_type in importlib.import_module(module_name).JOB_TYPES:
                _REGISTRY[job_type.name] = job_type
    return _REGISTRY


def get_job_type(name: str) -> JobType:
    types = job_types()
    if name not in types:
        raise JobInputError(f"unknown job type {name!r}; known types: {', '.join(sorted(types))}")
    return types[name]
