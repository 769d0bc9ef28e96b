"""Templates and the values every page shows: who is signed in, the form token, what their role may open."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from fimg_service.roles import ADMINS, ARTISTS, CURATORS, HASHERS

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))

NAVIGATION = (  # (path under /ui, label, roles that see it)
    ("/age/new", "New age progression", ARTISTS),
    ("/match/new", "New match batch", HASHERS),
    ("/jobs", "Jobs", ("admin", "analyst", "artist", "service")),
    ("/banks", "Banks", CURATORS),
    ("/faces", "Faces", CURATORS),
    ("/keys", "Keys", ADMINS),
    ("/audit", "Audit log", ADMINS),
)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["when"] = _when


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def render(request: Request, template: str, signed_in, http_status: int = 200, **context):
    role = signed_in.principal.role if signed_in else None
    navigation = [(path, label) for path, label, roles in NAVIGATION if role in roles]
    return templates.TemplateResponse(request, template, {"signed_in": signed_in, "navigation": navigation,
                                                          **context}, status_code=http_status)
