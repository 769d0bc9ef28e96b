"""Review copies of a submitted image for a person to look at: small, and by default obscured (greyscale and
heavily blurred), the reviewer-wellness default of content-review tools; the reviewer chooses to see more."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from imaging.decode import decode

REVIEW_MAX_SIDE = 640
OBSCURING_BLUR = 0.04  # of the review copy's longer side: shapes stay, details do not


def review_image(rgb: np.ndarray, *, obscured: bool = True, max_side: int = REVIEW_MAX_SIDE) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if obscured:
        image = image.convert("L").filter(ImageFilter.GaussianBlur(OBSCURING_BLUR * max(image.size))).convert("RGB")
    return np.asarray(image)


def review_png(data: bytes, *, obscured: bool = True, max_side: int = REVIEW_MAX_SIDE) -> bytes:
    """The review copy of encoded image bytes, as PNG (raises `DecodeError` like `decode`)."""
    out = io.BytesIO()
    Image.fromarray(review_image(decode(data).rgb, obscured=obscured, max_side=max_side)).save(out, format="PNG")
    return out.getvalue()
