"""Pure imaging cores: safe decoding, digests, perceptual hashes (PDQ, pHash)."""

from imaging.decode import (
    ACCEPTED_FORMATS,
    BudgetExceeded,
    CorruptImage,
    DecodeBudget,
    DecodeError,
    DecodeLimits,
    Decoded,
    EmptyFile,
    FileTooLarge,
    ImageInfo,
    NotAnImage,
    TooManyPixels,
    TruncatedImage,
    UnsupportedFormat,
    check_image,
    decode,
)
from imaging.digests import Digests, digests
from imaging.hashes import Hash256, PdqHash, PHash
from imaging.pdq import PDQ_MIN_QUALITY, PDQ_THRESHOLD, pdq, pdq_dihedral
from imaging.phash import PHASH_THRESHOLD, phash

__all__ = [
    "ACCEPTED_FORMATS",
    "BudgetExceeded",
    "CorruptImage",
    "DecodeBudget",
    "DecodeError",
    "DecodeLimits",
    "Decoded",
    "Digests",
    "EmptyFile",
    "FileTooLarge",
    "Hash256",
    "ImageInfo",
    "NotAnImage",
    "PDQ_MIN_QUALITY",
    "PDQ_THRESHOLD",
    "PHASH_THRESHOLD",
    "PHash",
    "PdqHash",
    "TooManyPixels",
    "TruncatedImage",
    "UnsupportedFormat",
    "check_image",
    "decode",
    "digests",
    "pdq",
    "pdq_dihedral",
    "phash",
]
