"""Job types: each is a params model, how its items are built, and the per-item function a worker runs.

Adding a job type means writing one module in `workers/` that builds a `JobType` and adding it to
`JOB_MODULES` (each such module lists its types in `JOB_TYPES`); the API routes and the dispatcher stay as they are.

Two halves of a job type run in different places:
- service side (has the Store): `build_items` turns a request into persisted items, `prepare` builds the job's
  shared context payload (e.g. a bank snapshot) and `load_item` turns an item into what a worker needs;
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
    prepare: Callable[..., tuple[str, Any]]
    load_item: Callable[..., dict]
    setup: Callable[[Any], Any]
    run_item: Callable[[Any, dict, dict], ItemOutcome]
    report_csv: Callable[[list[dict]], str] | None = None


_REGISTRY: dict[str, JobType] = {}


def job_types() -> dict[str, JobType]:
    if not _REGISTRY:
        for module_name in JOB_MODULES:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                continue
            for job_type in module.JOB_TYPES:
                _REGISTRY[job_type.name] = job_type
    return _REGISTRY


def get_job_type(name: str) -> JobType:
    types = job_types()
    if name not in types:
        raise JobInputError(f"unknown job type {name!r}; known types: {', '.join(sorted(types))}")
    return types[name]
