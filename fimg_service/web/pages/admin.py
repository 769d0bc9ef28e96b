"""Admin: API keys (a new key is shown once) and the audit log with its chain check."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request

from fimg_service.http.deps import App
from fimg_service.roles import ROLES
from fimg_service.web.render import render
from fimg_service.web.session import Form, Page, go

router = APIRouter()

AUDIT_PER_PAGE = 50


def _keys_page(request: Request, signed_in, app: App, **outcome):
    return render(request, "keys.html", signed_in, keys=app.keys.list(signed_in.principal), roles=ROLES, **outcome)


@router.get("/keys")
def keys_page(request: Request, signed_in: Page, app: App):
    return _keys_page(request, signed_in, app)


@router.post("/keys")
def create_key(request: Request, signed_in: Page, app: App, form: Form):
    key, plaintext = app.keys.create(signed_in.principal, form.text("name", ""), form.text("role", ""))
    return _keys_page(request, signed_in, app, created=key, plaintext=plaintext)


@router.post("/keys/{key_id}/revoke")
def revoke_key(request: Request, signed_in: Page, app: App, key_id: int, form: Form):
    app.keys.revoke(signed_in.principal, key_id)
    return go(request, "/keys")


@router.get("/audit")
def audit_page(request: Request, signed_in: Page, app: App, actor: str | None = Query(None, max_length=200),
               action: str | None = Query(None, max_length=60), object_type: str | None = Query(None, max_length=40),
               page: int = Query(1, ge=1, le=10**7)):
    filters = {"actor": actor or None, "action": action or None, "object_type": object_type or None}
    entries = app.audit.entries(signed_in.principal, AUDIT_PER_PAGE + 1, (page - 1) * AUDIT_PER_PAGE, **filters,
                                newest_first=True)
    return render(request, "audit.html", signed_in, entries=entries[:AUDIT_PER_PAGE], filters=filters, page=page,
                  more=len(entries) > AUDIT_PER_PAGE)


@router.post("/audit/verify")
def verify_chain(request: Request, signed_in: Page, app: App, form: Form):
    report = app.audit.verify(signed_in.principal)
    return render(request, "audit.html", signed_in, entries=[], filters={}, page=1, more=False, verified=report)
