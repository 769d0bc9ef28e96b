"""Web sessions: a row per signed-in browser, found by its token's SHA-256; ending one is final."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fimg_service.storage.records import KeyRecord, SessionRecord
from fimg_service.storage.keys import key_record
from fimg_service.storage.schema import ApiKey, WebSession, as_utc, utcnow


class SessionRepository:
    def __init__(self, session: Session):
        self.session = session

    def create(self, token_hash: str, key_id: int, csrf_token: str) -> None:
        now = utcnow()
        self.session.add(WebSession(token_hash=token_hash, key_id=key_id, csrf_token=csrf_token, created_at=now,
                                    last_seen_at=now))

    def live(self, token_hash: str, seen_since: datetime) -> tuple[SessionRecord, KeyRecord] | None:
        """The session and its key, if neither is ended or revoked and it was used since `seen_since`."""
        row = self.session.execute(
            sa.select(WebSession, ApiKey).join(ApiKey, ApiKey.id == WebSession.key_id)
            .where(WebSession.token_hash == token_hash, WebSession.ended_at.is_(None),
                   WebSession.last_seen_at >= seen_since, ApiKey.revoked_at.is_(None))).first()
        if row is None:
            return None
        web, key = row
        return SessionRecord(web.token_hash, web.key_id, web.csrf_token, as_utc(web.created_at),
                             as_utc(web.last_seen_at)), key_record(key)

    def touch(self, token_hash: str) -> None:
        self.session.execute(sa.update(WebSession).where(WebSession.token_hash == token_hash)
                             .values(last_seen_at=utcnow()))

    def end(self, token_hash: str) -> bool:
        return bool(self.session.execute(
            sa.update(WebSession).where(WebSession.token_hash == token_hash, WebSession.ended_at.is_(None))
            .values(ended_at=utcnow())).rowcount)
