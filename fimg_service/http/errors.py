"""Where the error vocabulary meets HTTP: each error type's status, and the one JSON body for all of them,
`{"code": ..., "message": ..., ...}`."""
from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match

from fimg_service import errors

log = logging.getLogger("fimg.http")

STATUS = {
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Forbidden: 403,
    errors.Unauthenticated: 401,
    errors.TooLarge: 413,
    errors.TooManyRequests: 429,
    errors.UnsupportedMedia: 415,
    errors.SetupFailed: 422,
    errors.Unavailable: 503,
}

# What Starlette itself refuses (unknown routes, bodies it cannot parse).
HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
# OpenMediaMatch answers a bad request 400 and an existing bank 403; its clients test for those under /hma.
HMA_PREFIX = "/hma/"
HMA_STATUS = {422: 400, 409: 403}


def http_status(request: Request, status: int) -> int:
    return HMA_STATUS.get(status, status) if request.url.path.startswith(HMA_PREFIX) else status


REFUSALS = (errors.Unauthenticated, errors.Forbidden, errors.NotFound)  # audited: who was refused what


def status_of(exc: errors.FimgError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> str:
    """Every method some route answers on this path: Starlette names only those of the first route it tried."""
    return ", ".join(method for method in METHODS if any(
        route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.router.routes))


ErrorPage = Callable[[Request, errors.FimgError, int], Response]


def install(app: FastAPI, pages: dict[str, ErrorPage] | None = None) -> None:
    """The error handlers; under each prefix of `pages` (the web interface) errors are shown by its renderer."""
    pages = pages or {}

    def respond(request: Request, exc: errors.FimgError, status: int, headers: dict | None = None) -> Response:
        for prefix, page in pages.items():
            if request.url.path == prefix or request.url.path.startswith(prefix + "/"):
                response = page(request, exc, status)
                response.headers.update(headers or {})  # Retry-After, Allow: the same for a page
                return response
        return JSONResponse(exc.to_dict(), status_code=status, headers=headers)

    @app.exception_handler(errors.FimgError)
    async def _fimg(request: Request, exc: errors.FimgError):
        status = http_status(request, status_of(exc))
        if isinstance(exc, REFUSALS):
            await run_in_threadpool(request.app.state.application.audit.refused,
                                    getattr(request.state, "principal", None),
                                    f"{request.method} {request.url.path}"[:200], exc.code, status)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.TooManyRequests) else None
        return respond(request, exc, status, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = [{"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")} for e in exc.errors()]
        message = "; ".join(f"{'.'.join(p['loc'])}: {p['message']}" for p in problems)
        return respond(request, errors.InvalidInput(message, code="invalid_request", problems=problems),
                       http_status(request, 422))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return respond(request, errors.FimgError(str(exc.detail), code=code), exc.status_code, headers or None)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return JSONResponse(errors.problem("internal_error", "internal error; the service log has the details"),
                            status_code=500)
