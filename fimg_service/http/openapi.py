"""The OpenAPI document declares every response a route gives: its own (`errors(...)` on the route, e.g. 409) and
those that follow from how it is declared, added to every operation in one pass (an API key: 401, 403, 429;
parameters: 422, or 400 under /hma; a path parameter: 404; a request body: 400 and 413). Each error is the one
`Problem` shape."""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fimg_service.http.errors import HMA_PREFIX
from fimg_service.http.models import Problem

DESCRIPTIONS = {
    400: "malformed request (under /hma: also invalid input, as HMA answers it)",
    401: "no API key, or an unknown or revoked one",
    403: "the key's role may not do this (under /hma: also a conflict, as HMA answers it)",
    404: "no such object, or one the caller may not see",
    409: "the request conflicts with the object's state",
    413: "the request body, an archive in it, or a fetched file is too large",
    415: "unsupported media type",
    422: "invalid input",
    429: "a rate limit or quota of the key is reached; try again after Retry-After seconds",
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own errors."""
    return {status: {"model": Problem, "description": DESCRIPTIONS[status]} for status in statuses}


def install(app: FastAPI) -> None:
    generate, completed = app.openapi, []

    def openapi() -> dict:
        spec = generate()  # FastAPI's, cached until the routes change
        if not any(spec is done for done in completed):
            completed[:] = [spec]
            for path, operations in spec["paths"].items():
                for method, operation in operations.items():
                    declare_errors(path, method, operation)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
        return spec

    app.openapi = openapi


def declare_errors(path: str, method: str, operation: dict) -> None:
    responses, statuses = operation["responses"], set()
    keyed = bool(operation.get("security"))
    hma = path.startswith(HMA_PREFIX)
    has_body = "requestBody" in operation or (hma and keyed and method in ("post", "put"))  # HMA reads its forms
    if keyed:
        statuses |= {401, 403, 429}
    if operation.get("parameters") or has_body:
        statuses.add(400 if hma else 422)
    if any(p["in"] == "path" for p in operation.get("parameters", ())) or (hma and keyed):
        statuses.add(404)  # under /hma, bank names come in queries and forms too
    if has_body:
        statuses |= {400, 413}
    if hma:
        responses.pop("422", None)
    for status in statuses:
        responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
    for status, response in responses.items():
        if status.isdigit() and int(status) in DESCRIPTIONS:
            response["content"] = {"application/json": {"schema": PROBLEM_REF}}
            if status == "429":
                response["headers"] = RETRY_AFTER
