"""Planning a survey: how many votes give a Wilson interval of a given width (votes_needed) and
whether a model's votes are already precise enough to stop assigning it (precise_enough).

Touches only the standard library: no pandas needed, no gradio, no database.
"""
from __future__ import annotations

import math

from .base import _z
from .rates import wilson_interval

def _wilson_width(p: float, n: int, z: float) -> float:
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return min(1.0, centre + half) - max(0.0, centre - half)


def votes_needed(rate: float, width: float, level: float = 0.95) -> int:
    """The smallest number of votes n whose Wilson interval at observed rate `rate` (k = rate*n)
    has total width (high - low) <= width, at confidence `level`."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate={rate} must be within 0..1")
    if not width > 0:
        raise ValueError(f"width={width} must be > 0")
    z = _z(level)
    hi = 1
    while _wilson_width(rate, hi, z) > width:
        hi *= 2
        if hi > 2 ** 48:
            raise ValueError(f"width={width} is too small")
    lo = hi // 2 + 1 if hi > 1 else 1
    while lo < hi:  # the width falls as n grows: smallest n in [lo, hi] that is narrow enough
        mid = (lo + hi) // 2
        if _wilson_width(rate, mid, z) <= width:
            hi = mid
        else:
            lo = mid + 1
    return hi


def precise_enough(k: int, n: int, width: float, level: float = 0.95) -> bool:
    """True when the Wilson interval of k 'real' votes out of n is at most `width` wide (so a
    survey can stop assigning that model); False for n == 0."""
    if n <= 0:
        return False
    lo, hi = wilson_interval(k, n, _z(level))
    return hi - lo <= width
