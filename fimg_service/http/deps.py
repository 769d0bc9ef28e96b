"""Annotated dependencies: the application, and the caller checked against a role set.

The role sets are the use-case layer's (`fimg_service.usecases.base`); checking them here as well refuses a
caller before its request body is read.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fimg_service.usecases import Application, Principal
from fimg_service.usecases.base import ADMINS, CURATORS, HASHERS, ROLES, require


def get_app(request: Request) -> Application:
    return request.app.state.application


App = Annotated[Application, Depends(get_app)]


# Declared in the OpenAPI document as the bearer scheme; a missing key is the use case's 401, in the error shape.
bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer <key>`")


def current_principal(request: Request, app: App,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    who = app.keys.authenticate(credentials.credentials.strip() if credentials else None)
    request.state.principal = who  # so a refusal further on is audited with who was refused
    app.quotas.admit(who)
    return who


def _role(*roles: str):
    def check(who: Annotated[Principal, Depends(current_principal)]) -> Principal:
        require(who, roles)
        return who

    return check


Caller = Annotated[Principal, Depends(_role(*ROLES))]
Admin = Annotated[Principal, Depends(_role(*ADMINS))]
Curator = Annotated[Principal, Depends(_role(*CURATORS))]
Hasher = Annotated[Principal, Depends(_role(*HASHERS))]
