"""Signing in and out, and the home page."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from fimg_service.http.deps import App
from fimg_service.web.render import render
from fimg_service.web.session import (COOKIE, PREFIX, Form, Page, clear_session_cookie, go, read_form, same_origin,
                                      set_session_cookie, signed_in_or_none)

router = APIRouter()


def _safe_next(path: str | None) -> str:
    """Only a page of this interface: never another site (an open redirect)."""
    if path and path.startswith(PREFIX + "/") and not path.startswith("//") and "\\" not in path:
        return path[len(PREFIX):]
    return "/"


@router.get("")
def root():
    return RedirectResponse(f"{PREFIX}/", status_code=303)


@router.get("/")
def home(request: Request, signed_in: Page):
    return render(request, "home.html", signed_in)


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None):
    return render(request, "sign_in.html", signed_in_or_none(request), next=_safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request, app: App):
    same_origin(request)
    form = await read_form(request)
    token, _ = await run_in_threadpool(app.sessions.sign_in, form.text("api_key", ""))
    response = go(request, _safe_next(form.text("next")))
    set_session_cookie(request, response, token)
    return response


@router.post("/sign-out")
def sign_out(request: Request, app: App, _form: Form):
    app.sessions.sign_out(request.cookies.get(COOKIE))
    response = go(request, "/sign-in")
    clear_session_cookie(response)
    return response
