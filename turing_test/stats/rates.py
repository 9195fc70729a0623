"""Rates with Wilson intervals: wilson_interval and the tables of the share judged real per
colorized image (image_table), per model (model_table) and for real photos (real_table,
real_image_table), all on the headline votes.

Touches only pandas and the standard library: no gradio, no database, no SQLAlchemy.
"""
from __future__ import annotations

import math

import pandas as pd

from .base import Z95
from .exclusions import ExclusionRules, headline_votes

def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n; (nan, nan) for n == 0."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must be within 0..n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _rate_table(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    cols = by + ["votes", "real_votes", "rate", "ci_low", "ci_high"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    g = df.groupby(by, sort=True, dropna=False)["answer_real"]
    out = pd.DataFrame({"votes": g.size(), "real_votes": g.sum().astype(int)}).reset_index()
    out["rate"] = out["real_votes"] / out["votes"]
    ci = [wilson_interval(int(k), int(n)) for k, n in zip(out["real_votes"], out["votes"])]
    out["ci_low"] = [c[0] for c in ci]
    out["ci_high"] = [c[1] for c in ci]
    return out[cols]


def image_table(votes: pd.DataFrame, max_attention_failures: int = 0, *,
                rules: ExclusionRules | None = None) -> pd.DataFrame:
    """Per colorized image: stimulus, source, model, votes, 'real' votes, fooling rate (with its
    Wilson interval), most fooling first."""
    df = headline_votes(votes, max_attention_failures, rules=rules)
    df = df[df["kind"] == "generated"]
    t = _rate_table(df, ["stimulus", "source", "model"]).rename(columns={"rate": "fooling_rate"})
    return t.sort_values(["fooling_rate", "votes"], ascending=[False, False]).reset_index(drop=True)


def model_table(votes: pd.DataFrame, max_attention_failures: int = 0, *,
                rules: ExclusionRules | None = None) -> pd.DataFrame:
    """Per model: votes, 'real' votes, fooling rate, 95% Wilson interval."""
    df = headline_votes(votes, max_attention_failures, rules=rules)
    df = df[df["kind"] == "generated"]
    t = _rate_table(df, ["model"]).rename(columns={"rate": "fooling_rate"})
    return t.sort_values("fooling_rate", ascending=False).reset_index(drop=True)


def real_table(votes: pd.DataFrame, max_attention_failures: int = 0, *,
               rules: ExclusionRules | None = None) -> pd.DataFrame:
    """Real photos, all together: votes, 'real' votes, rate judged real and its interval."""
    df = headline_votes(votes, max_attention_failures, rules=rules)
    df = df[df["kind"] == "real"].assign(kind="real")
    return _rate_table(df, ["kind"]).rename(columns={"rate": "judged_real_rate"})


def real_image_table(votes: pd.DataFrame, max_attention_failures: int = 0, *,
                     rules: ExclusionRules | None = None) -> pd.DataFrame:
    """Per real photo: votes and the rate judged real."""
    df = headline_votes(votes, max_attention_failures, rules=rules)
    df = df[df["kind"] == "real"]
    t = _rate_table(df, ["stimulus", "source"]).rename(columns={"rate": "judged_real_rate"})
    return t.sort_values("judged_real_rate").reset_index(drop=True)
