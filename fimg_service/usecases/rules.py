"""Bounds on what callers name and set, checked by the use cases for every edge; the HTTP models declare the same
constants in the OpenAPI spec."""
from __future__ import annotations

import re

from fimg_service.errors import InvalidInput
from imaging.signals import HASH_COLUMNS, normalise

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"  # banks and galleries: safe in URLs and comma-separated lists
MAX_DESCRIPTION = 2000
MAX_LABEL = 200  # key names, subject ids and labels
PDQ_THRESHOLD_RANGE = (0, 128)  # bits
FACE_THRESHOLD_MAX = 2.0  # embedding distance; a threshold must be above 0
MAX_ROW_ID = 2**31 - 1  # integer ids (keys, records) are PostgreSQL integers

_NAME = re.compile(NAME_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"a {kind} name is 1-100 letters, digits, '_', '.' or '-', starting with a letter or "
                           f"digit; got {str(name)[:120]!r}", code="invalid_name")
    return name


def check_text(what: str, value: str | None, max_length: int, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not (1 if required else 0) <= len(value) <= max_length:
        raise InvalidInput(f"{what} must be {'1-' if required else 'at most '}{max_length} characters",
                           code="invalid_text")
    if _CONTROL.search(value.replace("\n", "").replace("\t", "")):
        raise InvalidInput(f"{what} may not contain control characters", code="invalid_text")
    return value


def check_pdq_threshold(threshold: int | None) -> int | None:
    low, high = PDQ_THRESHOLD_RANGE
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int)
                                  or not low <= threshold <= high):
        raise InvalidInput(f"a PDQ threshold is a whole number of bits, {low}-{high}", code="invalid_threshold")
    return threshold


def check_face_threshold(threshold: float | None) -> float | None:
    if threshold is not None and not 0 < float(threshold) <= FACE_THRESHOLD_MAX:
        raise InvalidInput(f"a face threshold is above 0 and at most {FACE_THRESHOLD_MAX}", code="invalid_threshold")
    return threshold


def query_signals(signals: dict[str, str]) -> dict[str, str]:
    """The hashes a lookup may query by, each validated by the signal table; InvalidInput otherwise."""
    if not signals:
        raise InvalidInput("give a hash to look up", code="invalid_hash")
    unknown = sorted(set(signals) - set(HASH_COLUMNS))
    if unknown:
        raise InvalidInput(f"cannot look up {unknown[0]!r} hashes; fimg looks up {', '.join(HASH_COLUMNS)}",
                           code="unsupported_signal_type")
    try:
        return {kind: normalise(kind, value) for kind, value in signals.items()}
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_hash") from None
