"""What every use case shares: who is calling, the role rule, and audit rows written in the caller's unit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fimg_service.errors import Forbidden
from fimg_service.storage import Storage, Unit

from fimg_service.roles import ADMINS, ARTISTS, CURATORS, HASHERS, ROLES

__all__ = ["ADMINS", "ANONYMOUS", "ARTISTS", "CURATORS", "HASHERS", "ROLES", "Principal", "LOCAL_ADMIN", "require",
           "audit", "UseCases"]


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's identity (the CLI acts as a local admin principal)."""

    key_id: int | None
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def owns(self, owner_id: int | None) -> bool:
        return self.is_admin or owner_id == self.key_id


LOCAL_ADMIN = Principal(key_id=None, name="local-cli", role="admin")
ANONYMOUS = Principal(key_id=None, name="anonymous", role="none")  # a request without a valid key


def require(who: Principal, roles: tuple[str, ...], what: str = "do this") -> None:
    if who.role not in roles:
        raise Forbidden(f"role {who.role!r} may not {what}; allowed: {', '.join(roles)}")


def audit(unit: Unit, who: Principal, action: str, object_type: str, object_id: str | int,
          detail: dict[str, Any] | None = None) -> None:
    unit.audit.append(who.key_id, who.name, who.role, action, object_type, object_id, detail)


class UseCases:
    def __init__(self, storage: Storage):
        self.storage = storage
