"""Synchronous hashing and lookup, answered by the worker pool at once."""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from fimg_service.errors import Forbidden, InvalidInput, TooLarge
from fimg_service.usecases.banks import bank_version
from fimg_service.usecases.base import HASHERS, Principal, UseCases, audit, require
from fimg_service.usecases.rules import check_pdq_threshold, query_signals
from imaging import DecodeError


class Hashing(UseCases):
    def __init__(self, storage, pool: Callable[[], Any], url_hosts: tuple[str, ...] = (), max_bytes: int = 0):
        super().__init__(storage)
        self.pool = pool  # the worker pool, asked for only when a request needs it
        self.url_hosts, self.max_bytes = url_hosts, max_bytes

    def fetch(self, who: Principal, url: str) -> bytes:
        """A URL's bytes for hashing, from an allowed host only (audited: the service reached out)."""
        require(who, HASHERS, "hash by URL")
        data = fetch(url, self.url_hosts, self.max_bytes)
        with self.storage.unit() as unit:
            audit(unit, who, "fetch", "url", url[:200], {"bytes": len(data)})
        return data

    def hash_file(self, who: Principal, data: bytes) -> dict:
        require(who, HASHERS, "hash files")
        try:
            hashes = self.pool().hash_file(data)
        except DecodeError as exc:
            raise InvalidInput(str(exc), code=exc.code) from None
        with self.storage.unit() as unit:
            audit(unit, who, "hash", "file", "-", {"bytes": len(data)})
        return hashes

    def lookup(self, who: Principal, signals: dict[str, str], banks: list[str] | None,
               threshold: int | None = None) -> list[dict]:
        """Matches of one query's hashes ({kind: hex}: pdq, md5, sha1, sha256) in the named banks (None: every
        bank the caller sees), each a report row with the record's provenance and store id; disabled records
        never match."""
        require(who, HASHERS, "look hashes up")
        check_pdq_threshold(threshold)
        signals = query_signals(signals)
        if banks is not None and not banks:
            raise InvalidInput("name at least one bank", code="invalid_input")
        with self.storage.read() as unit:
            names = unit.banks.names(who.key_id, all_cases=who.is_admin) if banks is None else banks
            for name in names:
                bank_version(unit, who, name)
        matches = self.pool().lookup(signals, names, threshold) if names else []
        with self.storage.unit() as unit:
            audit(unit, who, "lookup", "banks", ",".join(names)[:200] or "-",
                  {"kinds": sorted(signals), "matches": len(matches)})
        return matches


URL_TIMEOUT_S = 10


def _check_url(url: str, allowed_hosts: tuple[str, ...]) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() not in allowed_hosts:
        raise Forbidden(f"the service may fetch only http(s) URLs of {', '.join(allowed_hosts)}",
                        code="url_not_allowed")


class _AllowedRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is followed only to an allowed host, so the allowlist cannot be stepped around."""

    def __init__(self, allowed_hosts: tuple[str, ...]):
        self.allowed_hosts = allowed_hosts

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _check_url(newurl, self.allowed_hosts)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, allowed_hosts: tuple[str, ...], max_bytes: int) -> bytes:
    """The bytes at `url`, only from an allowed host over http(s), bounded in size and time."""
    if not allowed_hosts:
        raise Forbidden("hashing by URL is off: the service fetches no URL unless FIMG_URL_HASH_HOSTS names hosts",
                        code="url_fetch_disabled")
    _check_url(url, allowed_hosts)
    opener = urllib.request.build_opener(_AllowedRedirects(allowed_hosts))
    try:
        with opener.open(url, timeout=URL_TIMEOUT_S) as response:
            data = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InvalidInput(f"could not fetch {url}: {getattr(exc, 'reason', exc)}", code="url_fetch_failed") from None
    if len(data) > max_bytes:
        raise TooLarge(f"{url} is larger than {max_bytes} bytes")
    return data
