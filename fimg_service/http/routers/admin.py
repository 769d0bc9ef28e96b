from fastapi import APIRouter, Path, Query, Response

from fimg_service.http.deps import Admin, App
from fimg_service.http.models import KeyIn, KeyOut
from fimg_service.http.openapi import errors
from fimg_service.usecases.rules import MAX_ROW_ID

router = APIRouter(tags=["admin"])


@router.post("/v1/keys", status_code=201, response_model=KeyOut, responses=errors(409))
def create_key(body: KeyIn, who: Admin, app: App):
    key, plaintext = app.keys.create(who, body.name, body.role)
    return KeyOut(id=key.id, name=key.name, role=key.role, key=plaintext)


@router.get("/v1/keys")
def list_keys(who: Admin, app: App) -> dict:
    return {"keys": [{"id": k.id, "name": k.name, "role": k.role, "created_at": k.created_at.isoformat(),
                      "revoked": k.revoked} for k in app.keys.list(who)]}


@router.delete("/v1/keys/{key_id}", status_code=204, responses=errors(409))
def revoke_key(who: Admin, app: App, key_id: int = Path(ge=1, le=MAX_ROW_ID)):
    app.keys.revoke(who, key_id)
    return Response(status_code=204)


@router.get("/v1/audit")
def audit_log(who: Admin, app: App, limit: int = Query(100, ge=1, le=1000),
              offset: int = Query(0, ge=0, le=2**53)) -> dict:
    return {"entries": [entry.to_dict() for entry in app.audit.entries(who, limit, offset)]}


@router.get("/v1/audit/verify")
def audit_verify(who: Admin, app: App) -> dict:
    report = app.audit.verify(who)
    return {"intact": report.intact, "first_bad_id": report.first_bad_id, "checked": report.checked,
            "problem": report.problem}
