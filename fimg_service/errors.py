"""One error vocabulary for the whole service: a `code` a program can branch on and a `message` a person can read.

Use cases, repositories and job types raise these; each edge turns them into its own output in one place (HTTP
status codes in `fimg_service.http.errors`, `fimg: <message>` and a non-zero exit in the CLI).
"""
from __future__ import annotations

from typing import Any


class FimgError(Exception):
    """Base of every error a caller can cause or fix; `detail` carries extra JSON-able fields (e.g. `rejected`)."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.detail}


class InvalidInput(FimgError):
    code = "invalid_input"


class NotFound(FimgError):
    code = "not_found"


class Conflict(FimgError):
    code = "conflict"


class Forbidden(FimgError):
    code = "forbidden"


class Unauthenticated(FimgError):
    code = "unauthenticated"


class TooLarge(FimgError):
    code = "too_large"


class TooManyRequests(FimgError):
    """A rate limit or quota of the caller is reached; `retry_after` says in how many seconds to try again."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, **detail: Any):
        super().__init__(message, code=code, retry_after=retry_after, **detail)
        self.retry_after = retry_after


class UnsupportedMedia(FimgError):
    code = "unsupported_media_type"


class Unavailable(FimgError):
    """The service cannot serve this now (e.g. its database schema is older than the code)."""

    code = "unavailable"


class SetupFailed(FimgError):
    """A job as a whole cannot run (e.g. its bank was deleted): the job fails with this message."""

    code = "setup_failed"


def problem(code: str, message: str, **where: Any) -> dict[str, Any]:
    """The one shape of a rejected part of a request (a file, a bank row, an item): where, code and message."""
    return {**where, "code": code, "message": message}
