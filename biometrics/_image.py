from __future__ import annotations

import numpy as np


def require_rgb(rgb: np.ndarray) -> np.ndarray:
    """The array as C-contiguous HxWx3 uint8, or ValueError: decoding (mode, bit depth, orientation) is the
    caller's job (`imaging.decode`), and guessing here would hide a wrong channel order or range."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got shape {shape} dtype {dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"empty image of shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def square_crop(rgb: np.ndarray, center: tuple[float, float], side: float) -> tuple[np.ndarray, float, float]:
    """Square region of `side` px centred on `center`; parts outside the image are black, so a face cut by the
    frame keeps its geometry. Returns (crop, x0, y0): crop pixel (u, v) is image pixel (x0 + u, y0 + v)."""
    side_px = max(1, int(round(side)))
    x0 = int(round(center[0] - side_px / 2))
    y0 = int(round(center[1] - side_px / 2))
    height, width = rgb.shape[:2]
    crop = np.zeros((side_px, side_px, 3), dtype=np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x0 + side_px), min(height, y0 + side_px)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return crop, float(x0), float(y0)
