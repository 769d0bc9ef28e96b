"""256-bit perceptual hash values.

A hash is a 256-bit integer; its hex form is big-endian (most significant 16-bit word first), as Meta's PDQ
tools print it, and `to_bytes()` is the same big-endian form, so `h.to_bytes() == bytes.fromhex(str(h))`.
In a PDQ hash bit k (k = 0 least significant) is DCT coefficient (k // 16, k % 16), as in Meta's code; a
pHash follows imagehash instead, coefficient (0, 0) being the most significant bit.

`PdqHash` and `PHash` are distinct types: the distance between a PDQ hash and a pHash means nothing, so
subtracting one from the other raises TypeError rather than returning a number.
"""

from __future__ import annotations

import operator
import re

import numpy as np

HASH_BITS = 256
HASH_BYTES = HASH_BITS // 8
HEX_CHARS = HASH_BITS // 4
_HEX_PATTERN = re.compile(f"[0-9a-fA-F]{{{HEX_CHARS}}}")


class Hash256:
    """Immutable 256-bit value; `a - b` is the Hamming distance."""

    __slots__ = ("_value",)

    def __init__(self, value: int) -> None:
        value = operator.index(value)
        if not 0 <= value < 1 << HASH_BITS:
            raise ValueError(f"{type(self).__name__} needs a 256-bit unsigned integer")
        object.__setattr__(self, "_value", value)

    @classmethod
    def from_hex(cls, text: str) -> Hash256:
        # A pattern, because int(text, 16) also takes signs, spaces, underscores and "0x".
        if not isinstance(text, str) or not _HEX_PATTERN.fullmatch(text):
            raise ValueError(f"{cls.__name__} hex must be {HEX_CHARS} hex digits, got {text!r}")
        return cls(int(text, 16))

    @classmethod
    def from_bytes(cls, data: bytes) -> Hash256:
        if len(data) != HASH_BYTES:
            raise ValueError(f"{cls.__name__} needs {HASH_BYTES} bytes, got {len(data)}")
        return cls(int.from_bytes(data, "big"))

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> Hash256:
        """From 256 booleans where bits[k] (row-major over a 16x16 block) is bit k."""
        flat = np.asarray(bits, dtype=bool).reshape(-1)
        if flat.size != HASH_BITS:
            raise ValueError(f"{cls.__name__} needs {HASH_BITS} bits, got {flat.size}")
        return cls.from_bytes(np.packbits(flat[::-1]).tobytes())

    def to_bytes(self) -> bytes:
        return self._value.to_bytes(HASH_BYTES, "big")

    def __int__(self) -> int:
        return self._value

    def __str__(self) -> str:
        return format(self._value, f"0{HEX_CHARS}x")

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self}')"

    def __sub__(self, other: Hash256) -> int:
        if type(other) is not type(self):
            return NotImplemented
        return (self._value ^ other._value).bit_count()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):
        return (type(self), (self._value,))


class PdqHash(Hash256):
    """A PDQ hash (Meta ThreatExchange): match when distance <= PDQ_THRESHOLD."""

    __slots__ = ()


class PHash(Hash256):
    """A 256-bit DCT pHash (16x16 low frequencies): match when distance <= PHASH_THRESHOLD."""

    __slots__ = ()
