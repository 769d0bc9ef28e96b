"""Old-photo preparation: what a forensic artist does to a scanned print before working on it.

Four classical steps, each applied only when the photo shows the defect, each recorded with its measurements:

1. de-screen: a printed halftone screen is a few sharp peaks in the spectrum well above the spectrum's smooth
   fall-off; when found, a Gaussian low-pass removes the screen's fundamental (and with it every harmonic);
2. denoise: the noise level is estimated (Immerkaer's Laplacian-difference method) and so is JPEG blocking (the
   luminance steps across the 8 px block grid against those inside the blocks); above NOISE_FLOOR or
   BLOCKING_RATIO, non-local means on the luminance, as strong as the noise or the blocking step calls for;
3. fading: when even the widest channel spans little of the range, each channel is stretched between its 0.5th
   and 99.5th percentiles (contrast, and the colour cast fading leaves), the gain capped at MAX_STRETCH;
4. gentle sharpening: an unsharp mask giving back the edges that de-screening or noise removal softened (not after
   deblocking alone, which it would undo).

A clean photo passes unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# A screen peak must stand this many times above the geometric-mean power at its own frequency radius: measured
# on the frontal fixtures at 800 px, clean, faded, noisy or JPEG-15 photos peak at 20-175, halftones at 2,900-120,000.
SCREEN_PEAK_RATIO = 1000.0
# Halftone periods searched: scanned prints at face-analysis resolution show screens of about 3-12 px.
MIN_SCREEN_PERIOD_PX, MAX_SCREEN_PERIOD_PX = 2.5, 12.0
# Spatial sigma of the low-pass as a share of the screen period: the fundamental is cut to ~5 %.
DESCREEN_SIGMA_PER_PERIOD = 0.39
NOISE_FLOOR = 3.0  # estimated sigma (8-bit levels) of a clean photo's sensor noise and texture
NLM_STRENGTH_PER_SIGMA = 1.0
# Steps across the block grid over steps inside blocks: measured ~1.0 on clean, noisy or halftoned fixtures and
# 2.2-2.8 after JPEG quality 15.
BLOCKING_RATIO = 1.5
JPEG_BLOCK_PX = 8
NLM_STRENGTH_PER_BLOCKING_STEP = 1.0
STRETCH_PERCENTILES = (0.5, 99.5)
MAX_STRETCH = 2.5
# Faded: even the widest channel spans fewer levels than this (the clean frontal fixtures' widest: 213-255).
MIN_RANGE_TO_STRETCH = 190
SHARPEN_AMOUNT, SHARPEN_AMOUNT_AFTER_DESCREEN = 0.3, 0.6
SHARPEN_SIGMA = 1.0


@dataclass(frozen=True)
class PreparedPhoto:
    """The photo as received, the prepared photo, and what each step found and did."""

    original: np.ndarray
    rgb: np.ndarray
    steps: list[dict] = field(default_factory=list)


def prepare_old_photo(rgb: np.ndarray) -> PreparedPhoto:
    """De-screen, denoise, correct fading and sharpen an HxWx3 uint8 RGB photo (each step only where needed)."""
    original = np.ascontiguousarray(rgb, dtype=np.uint8)
    image = original.astype(np.float32)
    steps: list[dict] = []

    period = screen_period(original)
    if period is not None:
        sigma = DESCREEN_SIGMA_PER_PERIOD * period
        image = cv2.GaussianBlur(image, (0, 0), sigma)
        steps.append({"step": "descreen", "screen_period_px": round(period, 2), "gaussian_sigma_px": round(sigma, 2)})

    noise = noise_sigma(image)
    blocking_ratio, blocking_step = jpeg_blocking(image)
    noisy = noise > NOISE_FLOOR
    blocky = blocking_ratio > BLOCKING_RATIO
    if noisy or blocky:
        strength = max(NLM_STRENGTH_PER_SIGMA * noise if noisy else 0.0,
                       NLM_STRENGTH_PER_BLOCKING_STEP * blocking_step if blocky else 0.0)
        lab = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB)
        lab[..., 0] = cv2.fastNlMeansDenoising(lab[..., 0], None, h=strength, templateWindowSize=5,
                                               searchWindowSize=13)
        lab[..., 1:] = cv2.GaussianBlur(lab[..., 1:], (0, 0), 1.5)
        image = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).astype(np.float32)
        steps.append({"step": "denoise", "noise_sigma": round(noise, 2),
                      "jpeg_blocking_ratio": round(blocking_ratio, 2), "nlm_strength": round(strength, 2)})

    low, high = np.percentile(image.reshape(-1, 3), STRETCH_PERCENTILES, axis=0)
    if (high - low).max() < MIN_RANGE_TO_STRETCH:
        gain = np.minimum(255 / np.maximum(high - low, 1), MAX_STRETCH)
        image = (image - low) * gain
        steps.append({"step": "fading", "channel_low": np.round(low, 1).tolist(),
                      "channel_high": np.round(high, 1).tolist(), "gain": np.round(gain, 3).tolist()})

    if period is not None or noisy:
        amount = SHARPEN_AMOUNT_AFTER_DESCREEN if period is not None else SHARPEN_AMOUNT
        image = image + amount * (image - cv2.GaussianBlur(image, (0, 0), SHARPEN_SIGMA))
        steps.append({"step": "sharpen", "unsharp_amount": amount, "unsharp_sigma_px": SHARPEN_SIGMA})
    return PreparedPhoto(original, np.clip(np.rint(image), 0, 255).astype(np.uint8), steps)


def screen_period(rgb: np.ndarray) -> float | None:
    """The period in pixels of a halftone screen in the photo, or None when its spectrum shows none."""
    grey = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    height, width = grey.shape
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    power = np.abs(np.fft.fftshift(np.fft.fft2((grey - grey.mean()) * window))) ** 2
    fy = (np.arange(height) - height // 2) / height
    fx = (np.arange(width) - width // 2) / width
    radius = np.hypot(*np.meshgrid(fx, fy))
    ring = (radius * 200).astype(np.int64)  # rings 0.005 cycles/px wide
    log_power = np.log(power + 1e-6)
    ring_mean = np.bincount(ring.ravel(), log_power.ravel()) / np.maximum(np.bincount(ring.ravel()), 1)
    ratio = np.exp(log_power - ring_mean[ring])
    searched = (radius >= 1 / MAX_SCREEN_PERIOD_PX) & (radius <= 1 / MIN_SCREEN_PERIOD_PX)
    ratio[~searched] = 0
    peak = np.unravel_index(np.argmax(ratio), ratio.shape)
    if ratio[peak] < SCREEN_PEAK_RATIO:
        return None
    return float(1 / radius[peak])


def noise_sigma(rgb: np.ndarray) -> float:
    """Immerkaer's fast noise estimate on the luminance: sigma in 8-bit levels."""
    grey = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.float32), cv2.COLOR_RGB2GRAY)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(grey, cv2.CV_32F, kernel))[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * response.mean() / 6)


def jpeg_blocking(rgb: np.ndarray) -> tuple[float, float]:
    """(ratio, step): mean luminance step across the JPEG block grid over the mean step inside blocks, and their
    difference in 8-bit levels."""
    grey = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.float32), cv2.COLOR_RGB2GRAY)
    across, inside = [], []
    for axis in (0, 1):
        steps = np.abs(np.diff(grey, axis=axis))
        grid = np.arange(steps.shape[axis]) % JPEG_BLOCK_PX == JPEG_BLOCK_PX - 1
        across.append(np.compress(grid, steps, axis=axis).mean())
        inside.append(np.compress(~grid, steps, axis=axis).mean())
    return float(sum(across) / max(sum(inside), 1e-6)), float((sum(across) - sum(inside)) / 2)
