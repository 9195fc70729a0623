"""Shared pieces of turing_test.stats: the 95% normal quantile (Z95, _z), the pair-paradigm
kinds and readers of the votes table's columns (counted votes, optional bool / float / repeat_of
columns, voted_at order).

Touches only pandas, numpy and the standard library: no gradio, no database, no SQLAlchemy.
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
PAIR_KINDS = ("pair", "pair_catch")


def _z(level: float) -> float:
    """Two-sided normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be within (0, 1)")
    if abs(level - 0.95) < 1e-12:
        return Z95
    return NormalDist().inv_cdf(0.5 + level / 2)


def _counted(votes: pd.DataFrame) -> pd.DataFrame:
    return votes[~votes["practice"].astype(bool)]


def _col_bool(df: pd.DataFrame, col: str) -> pd.Series:
    """The column as bool, missing values (and a missing column) as False."""
    if col not in df.columns:
        return pd.Series(False, index=df.index, dtype=bool)
    s = df[col]
    if s.dtype == bool:
        return s
    return pd.Series([False if pd.isna(v) else bool(v) for v in s], index=df.index, dtype=bool)


def _col_float(df: pd.DataFrame, col: str) -> pd.Series:
    """The column as float, missing values (and a missing column) as NaN."""
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce").astype(float)


def _repeat_of(df: pd.DataFrame) -> pd.Series:
    """repeat_of as object: the earlier stimulus id, or None (missing, empty, or no column)."""
    if "repeat_of" not in df.columns:
        return pd.Series([None] * len(df), index=df.index, dtype=object)
    return pd.Series([None if (v is None or (not isinstance(v, str) and pd.isna(v)) or v == "")
                      else str(v) for v in df["repeat_of"]], index=df.index, dtype=object)


def _in_time_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in voted_at order (ties and missing times keep the row order)."""
    if "voted_at" not in df.columns or len(df) < 2:
        return df
    pos = np.arange(len(df))
    try:
        keyed = df.assign(_pos=pos).sort_values(["voted_at", "_pos"], kind="mergesort",
                                                na_position="last")
    except TypeError:
        return df
    return keyed.drop(columns="_pos")
