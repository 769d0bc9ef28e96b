"""Degradations of an old print, for the old-photo preparation bench and tests: a halftone screen, JPEG quality 15,
noise, fading, and all four together (pure functions over HxWx3 uint8 RGB arrays)."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image


def halftone(rgb: np.ndarray, period: float = 5.0) -> np.ndarray:
    """A colour halftone print (one rotated dot screen per channel), scanned with a little optical blur."""
    height, width = rgb.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty_like(rgb)
    for channel, angle in enumerate(np.radians([15.0, 75.0, 45.0])):
        u = x * np.cos(angle) + y * np.sin(angle)
        v = -x * np.sin(angle) + y * np.cos(angle)
        screen = 0.5 + 0.25 * (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period))
        out[..., channel] = np.where(rgb[..., channel] / 255.0 > screen, 255, 0)
    return cv2.GaussianBlur(out, (0, 0), 0.8)


def low_jpeg(rgb: np.ndarray, quality: int = 15) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def noisy(rgb: np.ndarray, sigma: float = 15.0) -> np.ndarray:
    noise = np.random.default_rng(1).normal(0, sigma, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def faded(rgb: np.ndarray) -> np.ndarray:
    """Contrast down to 55 % about a light grey, and the yellow cast of an aged print."""
    out = 150 + 0.55 * (rgb.astype(np.float32) - 150) + np.array([12, 6, -22], np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def all_four(rgb: np.ndarray) -> np.ndarray:
    return low_jpeg(noisy(halftone(faded(rgb)), 8.0))


DEGRADATIONS = {"halftone": halftone, "jpeg15": low_jpeg, "noise": noisy, "fading": faded, "all_four": all_four}
