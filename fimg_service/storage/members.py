"""The members of a case (a bank's or a gallery's team): which keys besides the owner see and change it."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fimg_service.storage.records import MemberRecord
from fimg_service.storage.schema import ApiKey, as_utc, utcnow


class CaseMembers:
    """One members table, rows of (object id, key id), beside the table of the objects (banks or galleries)."""

    def __init__(self, session: Session, model, object_column, objects):
        self.session = session
        self.model, self.object_column, self.objects = model, object_column, objects

    def _where(self, object_id: int, key_id: int):
        return sa.and_(self.object_column == object_id, self.model.key_id == key_id)

    def visible(self, query, key_id: int | None, all_cases: bool):
        """`query` of the objects' table narrowed, unless `all_cases`, to those `key_id` owns or is a member of."""
        if all_cases:
            return query
        member_of = sa.select(self.object_column).where(self.model.key_id == key_id)
        return query.where(sa.or_(self.objects.owner_id == key_id, self.objects.id.in_(member_of)))

    def is_member(self, object_id: int, key_id: int | None) -> bool:
        return key_id is not None and self.session.scalar(
            sa.select(sa.func.count()).select_from(self.model).where(self._where(object_id, key_id))) > 0

    def add(self, object_id: int, key_id: int) -> bool:
        """Make the key a member; False if it already was."""
        if self.is_member(object_id, key_id):
            return False
        self.session.execute(sa.insert(self.model).values(
            {self.object_column.key: object_id, "key_id": key_id, "added_at": utcnow()}))
        return True

    def remove(self, object_id: int, key_id: int) -> bool:
        return bool(self.session.execute(sa.delete(self.model).where(self._where(object_id, key_id))).rowcount)

    def list(self, object_id: int) -> list[MemberRecord]:
        rows = self.session.execute(
            sa.select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.revoked_at, self.model.added_at)
            .join(self.model, self.model.key_id == ApiKey.id)
            .where(self.object_column == object_id).order_by(ApiKey.name, ApiKey.id))
        return [MemberRecord(key_id, name, role, as_utc(added_at), revoked_at is not None)
                for key_id, name, role, revoked_at, added_at in rows]
