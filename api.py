"""The HTTP API of fimg: the FastAPI app, its lifespan and its routers (one per resource, in
`fimg_service.http.routers`). Routes translate requests into use-case calls (`fimg_service.usecases`); roles,
ownership, validation and audit are decided there. Errors are JSON `{"code", "message"}` (`fimg_service.http.errors`).
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from fimg_service import web
from fimg_service.config import Settings
from fimg_service.http import docs, errors, openapi
from fimg_service.http.limits import BodyLimitMiddleware
from fimg_service.http.routers import ROUTERS
from fimg_service.usecases import Application


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        application = Application(settings)
        app.state.application = application
        try:
            application.start()
            yield
        finally:
            application.close()

    app = FastAPI(title="fimg", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Forensic imaging and biometrics: hash matching, face biometrics, age progression.")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    errors.install(app, pages={web.PREFIX: web.error_page})
    for router in ROUTERS:
        app.include_router(router)
    web.install(app)
    docs.install(app)
    openapi.install(app)
    return app
