"""Image metrics against people's votes: image_metric_table (the fooling rate of each colorized
image joined with its metrics) and metric_correlations (Spearman's rho per metric with a
bootstrap interval over images, a weighted Spearman on resampling multiplicities).

Touches only pandas, numpy and the standard library: no gradio, no database, no SQLAlchemy.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .bootstrap import _boot_weights, _percentile_interval
from .exclusions import ExclusionRules
from .rates import image_table

METRICS = ("psnr", "de2000", "colorfulness", "realism")
CORRELATION_COLUMNS = ["metric", "rho", "boot_low", "boot_high", "n_images"]
_IMAGE_COLUMNS = {"stimulus", "source", "model", "votes", "real_votes", "fooling_rate", "ci_low",
                  "ci_high"}


def image_metric_table(votes: pd.DataFrame, metrics: pd.DataFrame,
                       rules: ExclusionRules | None = None, *,
                       max_attention_failures: int = 0) -> pd.DataFrame:
    """image_table (fooling rate per colorized stimulus) joined with the metrics frame (column
    stimulus plus any of psnr, de2000, colorfulness, realism, or other metric columns) on
    stimulus; NaN metrics where a stimulus has none. Raises ValueError without a stimulus column
    or with a stimulus listed twice."""
    if "stimulus" not in metrics.columns:
        raise ValueError("the metrics frame needs a 'stimulus' column")
    if metrics["stimulus"].astype(str).duplicated().any():
        raise ValueError("the metrics frame lists a stimulus more than once")
    t = image_table(votes, max_attention_failures, rules=rules)
    extra = [c for c in metrics.columns if c != "stimulus" and c not in t.columns]
    m = metrics[extra].assign(_key=metrics["stimulus"].astype(str).to_numpy())
    out = t.assign(_key=t["stimulus"].astype(str)).merge(m, on="_key", how="left")
    return out.drop(columns="_key")


def _resampled_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties averaged) of each of the n values of x within a resample that
    holds value i w[b, i] times: (B, n)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ws = w[:, order]
    cum = np.cumsum(ws, axis=1)
    new = np.r_[True, xs[1:] != xs[:-1]]
    gid = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(xs) - 1]
    le = cum[:, last[gid]]
    lt = cum[:, first[gid]] - ws[:, first[gid]]
    ranks = np.empty_like(cum)
    ranks[:, order] = (lt + le + 1) / 2
    return ranks


def _weighted_spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spearman's rho of each resample (rows of multiplicities w over the n pairs (x, y))."""
    rx, ry = _resampled_ranks(x, w), _resampled_ranks(y, w)
    tot = w.sum(axis=1, keepdims=True)
    dx = rx - (w * rx).sum(axis=1, keepdims=True) / tot
    dy = ry - (w * ry).sum(axis=1, keepdims=True) / tot
    vx, vy = (w * dx * dx).sum(axis=1), (w * dy * dy).sum(axis=1)
    cov = (w * dx * dy).sum(axis=1)
    ok = (vx > 1e-9 * tot[:, 0] ** 2) & (vy > 1e-9 * tot[:, 0] ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1)), np.nan)
    return np.clip(r, -1, 1)


def metric_correlations(table: pd.DataFrame, n_boot: int = 1000, seed=0, level: float = 0.95,
                        target: str = "fooling_rate") -> pd.DataFrame:
    """One row per metric column of an image_metric_table (psnr, de2000, colorfulness, realism
    first, then any other numeric column that is not one of image_table's own): metric, rho
    (Spearman's rank correlation of the metric with the fooling rate over the images having
    both), boot_low / boot_high (percentile interval, images resampled with replacement,
    numpy.random.default_rng(seed) per metric) and n_images. rho is NaN for fewer than 3 images
    or a constant column."""
    known = [c for c in METRICS if c in table.columns]
    others = [c for c in table.columns if c not in METRICS and c not in _IMAGE_COLUMNS
              and c != target and pd.api.types.is_numeric_dtype(table[c])
              and not pd.api.types.is_bool_dtype(table[c])]
    rows = []
    for c in known + others:
        x = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(table[target], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        n = len(x)
        if n < 3:
            rows.append((c, math.nan, math.nan, math.nan, n))
            continue
        rho = float(_weighted_spearman(x, y, np.ones((1, n)))[0])
        w = _boot_weights(n, int(n_boot), np.random.default_rng(seed))
        lo, hi = _percentile_interval(_weighted_spearman(x, y, w), level)
        rows.append((c, rho, lo, hi, n))
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
