"""Web sessions: a browser signs in with an API key once and then carries only a random session token; the key
never reaches the browser's storage. Sessions end on sign-out (server-side), after an idle period, or when their
key is revoked."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fimg_service.errors import Unauthenticated
from fimg_service.storage.schema import utcnow
from fimg_service.usecases.base import Principal, UseCases, audit
from fimg_service.usecases.keys import Keys

TOUCH_EVERY = timedelta(seconds=60)  # a session's last use is written at most once a minute, not per request


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    csrf_token: str  # the form token of this session (synchronizer token: sent in every form, checked on POST)


class WebSessions(UseCases):
    def __init__(self, storage, keys: Keys, idle_seconds: int):
        super().__init__(storage)
        self.keys = keys
        self.idle = timedelta(seconds=idle_seconds)

    def sign_in(self, api_key: str) -> tuple[str, SignedIn]:
        """A new session for a valid key: its token (for the cookie) and who signed in."""
        who = self.keys.authenticate(api_key.strip() or None)
        token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.storage.unit() as unit:
            unit.sessions.create(token_hash(token), who.key_id, csrf_token)
            audit(unit, who, "sign_in", "web_session", who.key_id)
        return token, SignedIn(who, csrf_token)

    def resolve(self, token: str | None) -> SignedIn:
        if not token:
            raise Unauthenticated("sign in to use the web interface", code="signed_out")
        now = utcnow()
        with self.storage.read() as unit:
            found = unit.sessions.live(token_hash(token), seen_since=now - self.idle)
        if found is None:
            raise Unauthenticated("the session has ended or expired: sign in again", code="session_expired")
        session, key = found
        if now - session.last_seen_at > TOUCH_EVERY:
            with self.storage.unit() as unit:
                unit.sessions.touch(session.token_hash)
        return SignedIn(Principal(key.id, key.name, key.role), session.csrf_token)

    def sign_out(self, token: str) -> None:
        signed_in = self.resolve(token)
        with self.storage.unit() as unit:
            unit.sessions.end(token_hash(token))
            audit(unit, signed_in.principal, "sign_out", "web_session", signed_in.principal.key_id)
