"""Results of a Turing test from the votes table (pandas).

Input: the DataFrame of :func:`turing_test.export_votes` (one row per vote). Practice votes never
count. Participants who failed more attention checks than allowed are excluded from the headline
figures (per image, per model, real photos) and listed in the participant table.

- fooling rate of a colorized image or model: the share of its votes that said "real";
- real photos: the share judged real, the calibration every fooling rate must be read against
  (a model that fools 40% of the time when real photos are judged real 70% of the time is far
  from indistinguishable);
- 95% intervals: Wilson score intervals.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


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


def _counted(votes: pd.DataFrame) -> pd.DataFrame:
    return votes[~votes["practice"].astype(bool)]


def _correct(df: pd.DataFrame) -> pd.Series:
    return df["answer_real"].astype(bool) == (df["kind"] == "real")


def participant_table(votes: pd.DataFrame, max_attention_failures: int = 0) -> pd.DataFrame:
    """Per participant: counted trials, accuracy, attention checks (seen, passed), median response
    time, and whether they are excluded (failed more than max_attention_failures checks)."""
    cols = ["participant", "trials", "correct", "accuracy", "attention_checks",
            "attention_passed", "median_response_ms", "excluded"]
    df = _counted(votes)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.assign(correct=_correct(df), is_att=df["kind"] == "attention")
    df = df.assign(att_pass=df["is_att"] & df["correct"])
    g = df.groupby("participant", sort=False)
    out = pd.DataFrame({
        "trials": g.size(),
        "correct": g["correct"].sum().astype(int),
        "attention_checks": g["is_att"].sum().astype(int),
        "attention_passed": g["att_pass"].sum().astype(int),
        "median_response_ms": g["response_ms"].apply(
            lambda s: float(np.median(s.dropna().astype(float))) if s.notna().any() else math.nan),
    })
    out["accuracy"] = out["correct"] / out["trials"]
    failures = out["attention_checks"] - out["attention_passed"]
    out["excluded"] = failures > max_attention_failures
    return out.reset_index()[cols]


def excluded_participants(votes: pd.DataFrame, max_attention_failures: int = 0) -> list:
    t = participant_table(votes, max_attention_failures)
    return t.loc[t["excluded"], "participant"].tolist()


def headline_votes(votes: pd.DataFrame, max_attention_failures: int = 0) -> pd.DataFrame:
    """Counted votes of participants not excluded."""
    df = _counted(votes)
    bad = set(excluded_participants(votes, max_attention_failures))
    return df[~df["participant"].isin(bad)]


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


def image_table(votes: pd.DataFrame, max_attention_failures: int = 0) -> pd.DataFrame:
    """Per colorized image: stimulus, source, model, votes, 'real' votes, fooling rate (with its
    Wilson interval), most fooling first."""
    df = headline_votes(votes, max_attention_failures)
    df = df[df["kind"] == "generated"]
    t = _rate_table(df, ["stimulus", "source", "model"]).rename(columns={"rate": "fooling_rate"})
    return t.sort_values(["fooling_rate", "votes"], ascending=[False, False]).reset_index(drop=True)


def model_table(votes: pd.DataFrame, max_attention_failures: int = 0) -> pd.DataFrame:
    """Per model: votes, 'real' votes, fooling rate, 95% Wilson interval."""
    df = headline_votes(votes, max_attention_failures)
    df = df[df["kind"] == "generated"]
    t = _rate_table(df, ["model"]).rename(columns={"rate": "fooling_rate"})
    return t.sort_values("fooling_rate", ascending=False).reset_index(drop=True)


def real_table(votes: pd.DataFrame, max_attention_failures: int = 0) -> pd.DataFrame:
    """Real photos, all together: votes, 'real' votes, rate judged real and its interval."""
    df = headline_votes(votes, max_attention_failures)
    df = df[df["kind"] == "real"].assign(kind="real")
    return _rate_table(df, ["kind"]).rename(columns={"rate": "judged_real_rate"})


def real_image_table(votes: pd.DataFrame, max_attention_failures: int = 0) -> pd.DataFrame:
    """Per real photo: votes and the rate judged real."""
    df = headline_votes(votes, max_attention_failures)
    df = df[df["kind"] == "real"]
    t = _rate_table(df, ["stimulus", "source"]).rename(columns={"rate": "judged_real_rate"})
    return t.sort_values("judged_real_rate").reset_index(drop=True)


def summary(votes: pd.DataFrame, max_attention_failures: int = 0) -> dict:
    """All tables at once, plus headline numbers."""
    parts = participant_table(votes, max_attention_failures)
    counted = _counted(votes)
    return {
        "models": model_table(votes, max_attention_failures),
        "images": image_table(votes, max_attention_failures),
        "real": real_table(votes, max_attention_failures),
        "real_images": real_image_table(votes, max_attention_failures),
        "participants": parts,
        "excluded": parts.loc[parts["excluded"], "participant"].tolist() if len(parts) else [],
        "n_votes": int(len(counted)),
        "n_practice_votes": int(len(votes) - len(counted)),
        "n_participants": int(votes["participant"].nunique()) if len(votes) else 0,
    }
