"""Adjustments of a prediction's chroma, in Lab (the lightness L always stays the photo's own).

* `scale_chroma`: the vividness factor, ab multiplied by it (1 = as predicted, 0 = gray).
* `transfer_chroma`: color transfer from a reference photo, after Reinhard et al. (2001): each
  of a and b is shifted and scaled so that its mean and standard deviation over the photo match
  the reference's. Only the chroma statistics are matched, so the output's L is untouched.
* `is_color`: whether an upload is a color photo (its chroma is more than JPEG noise).
"""
from __future__ import annotations

import numpy as np

from . import lab

COLOR_CHROMA = 6.0  # a photo is 'color' when 2 % of its pixels have a chroma above this
COLOR_FRACTION = 0.02
MIN_STD = 2.0  # floor of an ab channel's spread before transfer (a nearly flat prediction)


def _sample(rgb: np.ndarray, max_pixels: int = 262_144) -> np.ndarray:
    """A strided subsample of an H x W x 3 image with at most about max_pixels pixels."""
    h, w = rgb.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    return rgb[::step, ::step]


def is_color(image: np.ndarray) -> bool:
    """True when an image (gray H x W, or RGB H x W x 3 of uint8, uint16 or float) has real color."""
    a = np.asarray(image)
    if a.ndim == 2:
        return False
    ab = lab.rgb_to_lab(np.ascontiguousarray(_sample(a)))[..., 1:]
    chroma = np.hypot(ab[..., 0], ab[..., 1])
    return bool((chroma > COLOR_CHROMA).mean() > COLOR_FRACTION)


def ab_stats(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of a and b over an RGB image: two arrays of shape (2,)."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError("a color reference must be an RGB photo")
    ab = lab.rgb_to_lab(np.ascontiguousarray(_sample(a)))[..., 1:].reshape(-1, 2).astype(np.float64)
    return ab.mean(0), ab.std(0)


def transfer_chroma(ab: np.ndarray, ref_mean, ref_std, strength: float = 1.0) -> np.ndarray:
    """Match the mean and spread of ab (2 x H x W, Lab units) to a reference's (Reinhard-style).

    strength in [0, 1] blends between the prediction (0) and the fully matched chroma (1).
    Returns a new float32 array.
    """
    ab = np.asarray(ab, dtype=np.float32)
    if ab.ndim != 3 or ab.shape[0] != 2:
        raise ValueError(f"expected ab of shape 2 x H x W, got {ab.shape}")
    out = np.empty_like(ab)
    for c in range(2):
        plane = ab[c]
        m = float(plane.mean())
        s = max(float(plane.std()), MIN_STD)
        gain = float(ref_std[c]) / s
        matched = (plane - m) * gain + float(ref_mean[c])
        out[c] = plane + strength * (matched - plane) if strength != 1.0 else matched
    return out


def scale_chroma(ab: np.ndarray, factor: float) -> np.ndarray:
    """ab multiplied by factor (the vividness control); factor 1 returns ab itself."""
    factor = float(factor)
    if not np.isfinite(factor) or factor < 0:
        raise ValueError(f"the vividness factor must be a number >= 0, got {factor}")
    if factor == 1.0:
        return ab
    return np.asarray(ab, dtype=np.float32) * np.float32(factor)
