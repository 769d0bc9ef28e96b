from fastapi import APIRouter

from fimg_service.http.deps import App, Caller

router = APIRouter(tags=["meta"])


@router.get("/healthz")
def healthz(app: App) -> dict:
    return {"status": "ok", "workers": app.workers, "job_types": app.jobs.types()}


@router.get("/v1/me")
def me(who: Caller) -> dict:
    return {"name": who.name, "role": who.role}
