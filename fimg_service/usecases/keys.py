"""API keys and the audit log (admin)."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path

from fimg_service.errors import Conflict, InvalidInput, Unauthenticated
from fimg_service.storage.audit import ChainReport
from fimg_service.storage.records import AuditRecord, KeyRecord
from fimg_service.usecases.base import ADMINS, ANONYMOUS, ROLES, Principal, UseCases, audit, require
from fimg_service.usecases.rules import MAX_LABEL, check_text

KEY_PREFIX = "fimg_"


def hash_api_key(plaintext: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


REVOKED_KEY_JOB_ERROR = "cancelled: the API key that submitted it was revoked"


class Keys(UseCases):
    def __init__(self, storage, wake: Callable[[], None] = lambda: None):
        super().__init__(storage)
        self.wake = wake  # the dispatcher, so it drops the revoked key's jobs at once

    def authenticate(self, plaintext: str | None) -> Principal:
        if not plaintext:
            raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        with self.storage.read() as unit:
            key = unit.keys.active_by_hash(hash_api_key(plaintext))
        if key is None:
            raise Unauthenticated("the API key is unknown or revoked", code="invalid_key")
        return Principal(key.id, key.name, key.role)

    def create(self, who: Principal, name: str, role: str) -> tuple[KeyRecord, str]:
        """A new key; the plaintext is returned once and only its hash is stored."""
        require(who, ADMINS, "create API keys")
        check_text("a key name", name, MAX_LABEL, required=True)
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}", code="invalid_role")
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.storage.unit() as unit:
            if unit.keys.active_by_name(name):  # case teams name their members by key name
                raise Conflict(f"an active API key is already named {name!r}", code="key_name_taken")
            key = unit.keys.create(name, role, hash_api_key(plaintext))
            audit(unit, who, "create", "api_key", key.id, {"name": name, "role": role})
        return key, plaintext

    def list(self, who: Principal) -> list[KeyRecord]:
        require(who, ADMINS, "list API keys")
        with self.storage.unit() as unit:
            audit(unit, who, "list", "api_keys", "all")
            return unit.keys.list()

    def revoke(self, who: Principal, key_id: int) -> KeyRecord:
        require(who, ADMINS, "revoke API keys")
        with self.storage.unit() as unit:
            active_admins = [k.id for k in unit.keys.list() if k.role in ADMINS and not k.revoked]
            if active_admins == [key_id]:
                raise Conflict("this is the last admin key: create another admin key before revoking it",
                               code="last_admin")
            key = unit.keys.revoke(key_id)
            cancelled = unit.jobs.cancel_active_of(key_id, REVOKED_KEY_JOB_ERROR)
            audit(unit, who, "revoke", "api_key", key_id, {"cancelled_jobs": cancelled} if cancelled else None)
        if cancelled:
            self.wake()
        return key

    def bootstrap_admin(self, who: Principal, path: Path) -> bool:
        """On first start, an admin key in a private file, so a fresh install is usable; False if keys exist."""
        with self.storage.read() as unit:
            if unit.keys.any():
                return False
        _, plaintext = self.create(who, "initial-admin", "admin")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(plaintext + "\n")
        return True


class Audit(UseCases):
    def entries(self, who: Principal, limit: int = 100, offset: int = 0, actor: str | None = None,
                action: str | None = None, object_type: str | None = None,
                newest_first: bool = False) -> list[AuditRecord]:
        require(who, ADMINS, "read the audit log")
        filters = {k: v for k, v in (("actor", actor), ("action", action), ("object_type", object_type)) if v}
        with self.storage.unit() as unit:
            audit(unit, who, "read", "audit_log", f"{offset}+{limit}", filters or None)
        with self.storage.read() as unit:
            return unit.audit.entries(limit, offset, actor or None, action or None, object_type or None,
                                      newest_first)

    def verify(self, who: Principal) -> ChainReport:
        """Whether the chain is intact: no row edited or recomputed without the key, none of the newest deleted."""
        require(who, ADMINS, "verify the audit log")
        report = self.storage.verify_audit()
        with self.storage.unit() as unit:
            audit(unit, who, "verify", "audit_log", "all", {"intact": report.intact, "problem": report.problem})
        return report

    def refused(self, who: Principal | None, route: str, code: str, status: int) -> None:
        """A refused request: who (or "anonymous"), what they asked for and why; the caller's mistake is audited
        like its success would have been."""
        actor = who or ANONYMOUS
        with self.storage.unit() as unit:
            audit(unit, actor, "refused", "route", route, {"code": code, "status": status})
