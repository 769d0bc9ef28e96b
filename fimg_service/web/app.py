"""Mounting the interface: its routers, its static files, its security headers and its error pages."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from fimg_service.errors import FimgError, Unauthenticated
from fimg_service.web import pages
from fimg_service.web.render import render, wants_json
from fimg_service.web.session import PREFIX, signed_in_or_none

STATIC = Path(__file__).with_name("static")

# Scripts, styles and images from this origin only: no inline script, no other origin, no framing.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY, "x-frame-options": "DENY",
                    "referrer-policy": "no-referrer", "x-content-type-options": "nosniff",
                    "cache-control": "no-store"}


def error_page(request: Request, exc: FimgError, status: int) -> Response:
    """A refusal as the interface shows it: JSON for the page's own scripts, a redirect to sign-in for a page
    that needs a session, else a page that says what went wrong in plain words."""
    if wants_json(request):
        return JSONResponse(exc.to_dict(), status_code=status)
    if isinstance(exc, Unauthenticated) and request.method == "GET":
        return RedirectResponse(f"{PREFIX}/sign-in?next={request.url.path}", status_code=303)
    return render(request, "error.html", signed_in_or_none(request), http_status=status, error=exc.to_dict(),
                  status_code=status)


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        if request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")
    for router in pages.ROUTERS:
        app.include_router(router, prefix=PREFIX, include_in_schema=False)
