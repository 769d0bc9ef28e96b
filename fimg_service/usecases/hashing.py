"""Synchronous hashing and lookup, answered by the worker pool at once."""
from __future__ import annotations

from fimg_service.errors import InvalidInput
from fimg_service.usecases.banks import get_bank
from fimg_service.usecases.base import HASHERS, Principal, UseCases, audit, require
from imaging import DecodeError
from imaging.signals import normalise


class Hashing(UseCases):
    def __init__(self, storage, pool):
        super().__init__(storage)
        self.pool = pool

    def hash_file(self, who: Principal, data: bytes) -> dict:
        require(who, HASHERS, "hash files")
        try:
            return self.pool.hash_file(data)
        except DecodeError as exc:
            raise InvalidInput(str(exc), code=exc.code) from None

    def lookup(self, who: Principal, pdq: str, banks: list[str], threshold: int | None = None) -> list[dict]:
        require(who, HASHERS, "look hashes up")
        try:
            pdq = normalise("pdq", pdq)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="invalid_hash") from None
        if not banks:
            raise InvalidInput("name at least one bank", code="invalid_input")
        with self.storage.read() as unit:
            for name in banks:
                get_bank(unit, name)
        matches = self.pool.lookup(pdq, banks, threshold)
        with self.storage.unit() as unit:
            audit(unit, who, "lookup", "banks", ",".join(banks), {"matches": len(matches)})
        return matches
