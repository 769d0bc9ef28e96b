"""Case-level access to banks and galleries, written once for both.

A bank or gallery belongs to a case: its owner (the key that created it; none for one the command line made) and
its members (the case team, keys the owner or an admin added). Admins see every case. Anyone else sees only the
cases they own or belong to, and one they do not see answers NotFound exactly as one that does not exist, so
names leak nothing; one they see but may not manage (a member changing the team) answers Forbidden.
"""
from __future__ import annotations

from typing import Protocol

from fimg_service.errors import Conflict, Forbidden, InvalidInput, NotFound
from fimg_service.storage import Unit
from fimg_service.storage.records import KeyRecord, MemberRecord
from fimg_service.usecases.base import Principal, UseCases, audit


class Case(Protocol):
    id: int
    name: str
    owner_id: int | None


def in_case(who: Principal, case: Case, members) -> bool:
    """Whether the caller owns the case or is on its team (admins are not, unless added)."""
    return who.key_id is not None and (case.owner_id == who.key_id or members.is_member(case.id, who.key_id))


def visible(unit: Unit, who: Principal, kind: str, name: str) -> Case:
    """The bank or gallery named, if the caller may see it; else NotFound, as if there were none."""
    repository = unit.banks if kind == "bank" else unit.galleries
    case = repository.get(name)
    if case is None or not (who.is_admin or in_case(who, case, repository.members)):
        raise NotFound(f"no {kind} named {name!r}")
    return case


def active_key(unit: Unit, name: str) -> KeyRecord:
    keys = unit.keys.active_by_name(name)
    if not keys:
        raise NotFound(f"no active API key named {name!r}", code="unknown_key")
    if len(keys) > 1:
        raise Conflict(f"{len(keys)} active API keys are named {name!r}; revoke all but one",
                       code="ambiguous_key_name")
    return keys[0]


class CaseTeam(UseCases):
    """The members of one kind of case: listed by anyone who sees the case, changed by its owner or an admin."""

    kind: str  # "bank" or "gallery"
    member_roles: tuple[str, ...]  # the roles that can use this kind of case at all

    def _members(self, unit: Unit):
        return (unit.banks if self.kind == "bank" else unit.galleries).members

    def _managed(self, unit: Unit, who: Principal, name: str) -> Case:
        case = visible(unit, who, self.kind, name)
        if not (who.is_admin or (who.key_id is not None and case.owner_id == who.key_id)):
            raise Forbidden(f"only the {self.kind}'s owner or an admin changes its members", code="not_owner")
        return case

    def members(self, who: Principal, name: str) -> tuple[KeyRecord | None, list[MemberRecord]]:
        """The case's owner (None: admins only) and its members."""
        with self.storage.unit() as unit:
            case = visible(unit, who, self.kind, name)
            audit(unit, who, "list", f"{self.kind}_members", name)
            owner = None if case.owner_id is None else unit.keys.get(case.owner_id)
            return owner, self._members(unit).list(case.id)

    def add_member(self, who: Principal, name: str, key_name: str) -> MemberRecord:
        """Put a key on the case's team (again is no change); returns its membership."""
        with self.storage.unit() as unit:
            case = self._managed(unit, who, name)
            key = active_key(unit, key_name)
            if key.role not in self.member_roles:
                raise InvalidInput(f"a {key.role} key cannot use {self.kind}s; members are "
                                   f"{', '.join(self.member_roles)} keys", code="role_cannot_be_member")
            added = self._members(unit).add(case.id, key.id)
            audit(unit, who, "add_member", self.kind, name, {"key_id": key.id, "added": added})
            return next(m for m in self._members(unit).list(case.id) if m.key_id == key.id)

    def remove_member(self, who: Principal, name: str, key_name: str) -> None:
        with self.storage.unit() as unit:
            case = self._managed(unit, who, name)
            key = active_key(unit, key_name)
            if not self._members(unit).remove(case.id, key.id):
                raise NotFound(f"{key_name!r} is not a member of {self.kind} {name!r}", code="not_a_member")
            audit(unit, who, "remove_member", self.kind, name, {"key_id": key.id})
