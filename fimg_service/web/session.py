"""Who is signed in (a session cookie resolved by the use case), and forms that prove they came from one of this
service's pages (the session's form token, checked on every POST, and a same-origin check)."""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from fimg_service.errors import Forbidden, InvalidInput
from fimg_service.http.deps import App
from fimg_service.usecases.sessions import SignedIn

PREFIX = "/ui"
COOKIE = "fimg_session"
MAX_FORM_FILES = 5000
MAX_FORM_FIELDS = 1000


def signed_in_or_none(request: Request) -> SignedIn | None:
    return getattr(request.state, "signed_in", None)


def current(request: Request, app: App) -> SignedIn:
    signed_in = app.sessions.resolve(request.cookies.get(COOKIE))
    request.state.signed_in = signed_in
    request.state.principal = signed_in.principal  # a refusal further on is audited with who was refused
    app.quotas.admit(signed_in.principal)  # a page counts against its key's rate like an API request
    return signed_in


Page = Annotated[SignedIn, Depends(current)]


@dataclass
class Submission:
    """A posted form: its text fields and its files ((name, bytes), empty file inputs left out)."""

    values: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)

    def text(self, name: str, default: str | None = None) -> str | None:
        value = (self.values.get(name) or [""])[0].strip()
        return value or default

    def chosen_files(self, name: str, what: str) -> list[tuple[str, bytes]]:
        """The files of a file input, or InvalidInput naming the input ("choose <what>")."""
        files = self.files.get(name)
        if not files:
            raise InvalidInput(f"choose {what}", code="missing_files", field=name)
        return files

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.values.get(name, [])]

    def number(self, name: str, what: str, default: float | None = None) -> float | None:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise InvalidInput(f"{what} must be a number, not {raw[:40]!r}", code="invalid_number",
                               field=name) from None


def same_origin(request: Request) -> None:
    # Browsers send `Origin: null` for a plain form under `Referrer-Policy: no-referrer`; the form token covers it.
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("this form was sent from another site", code="cross_origin")


async def read_form(request: Request) -> Submission:
    submission = Submission()
    async with request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS) as form:
        for name, value in form.multi_items():
            if isinstance(value, str):
                submission.values.setdefault(name, []).append(value)
            elif value.filename:
                submission.files.setdefault(name, []).append((value.filename, await value.read()))
    return submission


async def posted_form(request: Request, signed_in: Page) -> Submission:
    same_origin(request)
    submission = await read_form(request)
    token = submission.text("csrf_token") or ""
    if not hmac.compare_digest(token.encode(), signed_in.csrf_token.encode()):
        raise Forbidden("this form has expired or did not come from this service: reload the page and try again",
                        code="csrf_token")
    return submission


Form = Annotated[Submission, Depends(posted_form)]


def go(request: Request, path: str) -> Response:
    """Where a successful form leads: a redirect, or (for the page's script) the address to go to."""
    url = PREFIX + path
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"redirect": url})
    return RedirectResponse(url, status_code=303)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path=PREFIX)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
