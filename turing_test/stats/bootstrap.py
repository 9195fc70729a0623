"""The two-way cluster bootstrap over participants and source photos: resampling multiplicities,
per-group rates of every replicate, percentile intervals and bootstrap_rate (seeded through
numpy.random.default_rng).

Touches only pandas, numpy and the standard library: no gradio, no database, no SQLAlchemy.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .base import _col_bool, _z

def _boot_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) multiplicities of n units drawn with replacement, n at a time."""
    idx = rng.integers(0, n, size=(n_boot, n))
    idx += (np.arange(n_boot, dtype=idx.dtype) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _boot_rates(df: pd.DataFrame, y: np.ndarray, group: np.ndarray, n_groups: int,
                n_boot: int, seed, clusters: str = "both") -> np.ndarray:
    """Two-way cluster bootstrap of the mean of y within each group: (n_boot, n_groups) rates.

    Each replicate draws participants and source photos with replacement; a vote counts with
    weight (times its participant was drawn) x (times its photo was drawn). The same draw serves
    every group. NaN where a group has no vote in a replicate. clusters "participant" or "source"
    resamples only that one (the other's weights stay 1)."""
    if clusters not in ("both", "participant", "source"):
        raise ValueError(f"clusters={clusters!r} must be 'both', 'participant' or 'source'")
    n_boot = int(n_boot)
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot} must be at least 1")
    pc, _ = pd.factorize(df["participant"], use_na_sentinel=False)
    sc, _ = pd.factorize(df["source"], use_na_sentinel=False)
    n_p, n_s = int(pc.max()) + 1, int(sc.max()) + 1
    cells, inv = np.unique(pc.astype(np.int64) * n_s + sc, return_inverse=True)
    inv = inv.ravel()
    n_c = len(cells)
    slot = inv * n_groups + np.asarray(group, dtype=np.int64)
    counts = np.bincount(slot, minlength=n_c * n_groups).reshape(n_c, n_groups)
    sums = np.bincount(slot, weights=np.asarray(y, dtype=float),
                       minlength=n_c * n_groups).reshape(n_c, n_groups)
    values = np.hstack([counts.astype(float), sums])
    p_cell, s_cell = cells // n_s, cells % n_s
    rng = np.random.default_rng(seed)
    wp = _boot_weights(n_p, n_boot, rng) if clusters != "source" else np.ones((n_boot, n_p))
    ws = _boot_weights(n_s, n_boot, rng) if clusters != "participant" else np.ones((n_boot, n_s))
    tot = np.empty((n_boot, 2 * n_groups))
    step = max(1, 4_000_000 // max(n_c, 1))
    for a in range(0, n_boot, step):
        b = min(n_boot, a + step)
        tot[a:b] = (wp[a:b][:, p_cell] * ws[a:b][:, s_cell]) @ values
    den, num = tot[:, :n_groups], tot[:, n_groups:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _percentile_interval(x: np.ndarray, level: float) -> tuple[float, float]:
    _z(level)  # checks the level
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if not len(x):
        return (math.nan, math.nan)
    a = (1 - level) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return (float(lo), float(hi))


def bootstrap_rate(votes_subset: pd.DataFrame, n_boot: int = 1000, seed=0, level: float = 0.95,
                   outcome: str = "answer_real", clusters: str = "both") -> tuple[float, float]:
    """Percentile interval (low, high) of the share of votes with outcome True (default
    answer_real: the fooling rate of colorized images), by the two-way cluster bootstrap over
    the subset's participants and source photos (numpy.random.default_rng(seed));
    (nan, nan) for no votes. clusters="participant" (or "source") resamples only participants
    (only photos): a one-way cluster bootstrap, not conservative when there are no photo
    (participant) effects."""
    if votes_subset is None or len(votes_subset) == 0:
        return (math.nan, math.nan)
    y = _col_bool(votes_subset, outcome).to_numpy(dtype=float)
    rates = _boot_rates(votes_subset, y, np.zeros(len(y), dtype=np.int64), 1, n_boot, seed,
                        clusters)
    return _percentile_interval(rates[:, 0], level)
