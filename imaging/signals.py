"""The signal kinds: every hash a bank record stores or a match reports, with its hex length and report place.

Exact digests (sha256, md5, sha1) match on equality; the PDQ kinds by Hamming distance: `pdq` a picture's own
hash, the others the robust variants (`imaging.robust`) and region hashes (`imaging.regions`). A match reports
the plainest rule that matched, in `order`; joined kinds (`pdq_trimmed+dihedral`, `imaging.matching.match_kind`)
share the last place with `pdq_region`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_LAST = 9


@dataclass(frozen=True)
class Signal:
    kind: str
    hex_length: int
    exact: bool
    order: int


SIGNALS = {signal.kind: signal for signal in (
    Signal("sha256", 64, True, 0),
    Signal("md5", 32, True, 1),
    Signal("sha1", 40, True, 2),
    Signal("pdq", 64, False, 3),
    Signal("pdq_dihedral", 64, False, 4),
    Signal("pdq_trimmed", 64, False, 5),
    Signal("pdq_crop", 64, False, 6),
    Signal("pdq_rotated", 64, False, 7),
    Signal("pdq_band", 64, False, 8),
    Signal("pdq_region", 64, False, _LAST),
)}
EXACT_KINDS = tuple(kind for kind, signal in SIGNALS.items() if signal.exact)
HASH_COLUMNS = ("pdq", "md5", "sha1", "sha256")  # the hashes a bank record or a caller's hash input carries

_HEX = re.compile(r"[0-9a-f]*")


def hex_length(kind: str) -> int:
    return SIGNALS[kind].hex_length


def normalise(kind: str, value: object) -> str:
    """`value` in lowercase if it is a `kind` hash in hex (either case, nothing stripped), else ValueError."""
    length = hex_length(kind)
    if not isinstance(value, str):
        got = type(value).__name__
    elif len(value) != length:
        got = f"{len(value)} characters"
    elif not _HEX.fullmatch(value.lower()):
        got = repr(value)
    else:
        return value.lower()
    raise ValueError(f"{kind} must be {length} hexadecimal characters, got {got}")


def is_valid(kind: str, value: object) -> bool:
    try:
        normalise(kind, value)
    except ValueError:
        return False
    return True


def kind_order(kind: str) -> int:
    """A match kind's place in a report, plainest first; joined kinds come last."""
    signal = SIGNALS.get(kind)
    return signal.order if signal else _LAST
