"""Results of a Turing test from the votes table (pandas).

Input: the DataFrame of :func:`turing_test.export_votes` (one row per vote). Practice votes never
count. Participants who failed more attention checks than allowed are excluded from the headline
figures (per image, per model, real photos) and listed in the participant table. With an
:class:`ExclusionRules` (``rules=``), exclusions also cover inconsistent repeats, constant or
alternating answer patterns and implausibly fast votes (see :func:`exclusion_table`).

- fooling rate of a colorized image or model: the share of its votes that said "real";
- real photos: the share judged real, the calibration every fooling rate must be read against
  (a model that fools 40% of the time when real photos are judged real 70% of the time is far
  from indistinguishable);
- 95% intervals: Wilson score intervals (votes treated as independent), and, in
  :func:`model_stats`, :func:`model_differences` and :func:`pair_model_table`, a two-way cluster
  bootstrap over participants and source photos (:func:`bootstrap_rate`), which also carries the
  spread between raters and between photos. That bootstrap (the "pigeonhole" bootstrap, Owen
  2007) is mildly conservative: with no rater or photo effects at all and one vote per
  (participant, photo) it is about sqrt(3) times as wide as the Wilson interval;
- signal detection (:func:`dprime`): "colorized" is the signal and answering "fake" a "yes";
- every function taking ``rules`` also takes ``max_attention_failures``, used only when rules is
  None (the original attention-check-only exclusion);
- pair paradigm (``kind`` "pair" / "pair_catch", bool ``fooled``): the fooling rate is the share
  of "pair" trials where the real photo was picked as the colorized one (50% = indistinguishable).

Optional columns, treated as missing when absent: ``server_ms`` (server-side time from sending
the image to receiving the vote), ``repeat_of`` (a catch trial repeating the participant's
earlier showing of that stimulus), ``paradigm`` and ``fooled``. A repeat is a consistency check,
not a second vote: repeats never enter the headline figures.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
METRICS = ("psnr", "de2000", "colorfulness", "realism")
PAIR_KINDS = ("pair", "pair_catch")

EXCLUSION_COLUMNS = ["participant", "trials", "attention_checks", "attention_failures", "repeats",
                     "inconsistent_repeats", "fast_votes", "median_server_ms", "pattern",
                     "excluded", "reasons"]
MODEL_STATS_COLUMNS = ["model", "votes", "real_votes", "fooling_rate", "ci_low", "ci_high",
                       "boot_low", "boot_high", "hit_rate", "false_alarm_rate", "d_prime",
                       "criterion"]
DIFFERENCE_COLUMNS = ["model_a", "model_b", "rate_a", "rate_b", "difference", "boot_low",
                      "boot_high"]
PAIR_COLUMNS = ["model", "trials", "fooled", "fooling_rate", "ci_low", "ci_high", "boot_low",
                "boot_high"]
CORRELATION_COLUMNS = ["metric", "rho", "boot_low", "boot_high", "n_images"]
MIXED_COLUMNS = ["model", "votes", "log_odds", "sd", "typical_rate", "ci_low", "ci_high"]
_IMAGE_COLUMNS = {"stimulus", "source", "model", "votes", "real_votes", "fooling_rate", "ci_low",
                  "ci_high"}


def _z(level: float) -> float:
    """Two-sided normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be within (0, 1)")
    if abs(level - 0.95) < 1e-12:
        return Z95
    return NormalDist().inv_cdf(0.5 + level / 2)


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


# --- exclusion rules -------------------------------------------------------------------------

def _as_int(name: str, v) -> int:
    if isinstance(v, bool) or v is None:
        raise ValueError(f"{name} must be a whole number, not {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, not {v!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"{name} must be a whole number, not {v!r}")
    return int(f)


def _as_float(name: str, v) -> float:
    if isinstance(v, bool) or v is None:
        raise ValueError(f"{name} must be a number, not {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {v!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a finite number, not {v!r}")
    return f


def _as_bool(name: str, v) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off",
                                                    "0"):
        return v.strip().lower() in ("true", "yes", "on", "1")
    raise ValueError(f"{name} must be true or false, not {v!r}")


@dataclass
class ExclusionRules:
    """A survey's exclusion settings (see :func:`exclusion_table` for how each is applied).

    max_attention_failures: failed attention checks allowed ("attention" trials answered "real",
        "pair_catch" trials with fooled True);
    max_inconsistent_repeats: repeated images answered differently from the first showing;
    exclude_constant / exclude_alternating: exclude all-identical or strictly alternating
        answers, when a participant has at least min_trials_for_pattern counted trials;
    speed_floor_ms: a vote whose server_ms is below it is "fast";
    exclude_fast_median: exclude when the median server_ms of the counted votes is below the floor;
    max_fast_share: exclude when more than this share of the votes with a server time are fast
        (1.0 = off).
    """
    max_attention_failures: int = 0
    max_inconsistent_repeats: int = 1
    exclude_constant: bool = True
    exclude_alternating: bool = True
    min_trials_for_pattern: int = 6
    speed_floor_ms: float = 200.0
    exclude_fast_median: bool = True
    max_fast_share: float = 1.0

    def __post_init__(self):
        for name in ("max_attention_failures", "max_inconsistent_repeats",
                     "min_trials_for_pattern"):
            v = _as_int(name, getattr(self, name))
            if v < 0:
                raise ValueError(f"{name} must be >= 0, not {v}")
            setattr(self, name, v)
        if self.min_trials_for_pattern < 2:
            raise ValueError("min_trials_for_pattern must be at least 2")
        for name in ("exclude_constant", "exclude_alternating", "exclude_fast_median"):
            setattr(self, name, _as_bool(name, getattr(self, name)))
        self.speed_floor_ms = _as_float("speed_floor_ms", self.speed_floor_ms)
        if self.speed_floor_ms < 0:
            raise ValueError(f"speed_floor_ms must be >= 0, not {self.speed_floor_ms}")
        self.max_fast_share = _as_float("max_fast_share", self.max_fast_share)
        if not 0 <= self.max_fast_share <= 1:
            raise ValueError(f"max_fast_share must be within 0..1, not {self.max_fast_share}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "ExclusionRules":
        """Rules from a settings dict (missing keys take the defaults, unknown keys are ignored,
        values are checked and converted); None gives the defaults."""
        if d is None:
            return cls()
        if isinstance(d, ExclusionRules):
            return dataclasses.replace(d)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(d).items() if k in names})

    def to_dict(self) -> dict:
        """The rules as a plain dict of JSON-able values (the inverse of from_dict)."""
        return dataclasses.asdict(self)


# --- column helpers ---------------------------------------------------------------------------

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


def _correct(df: pd.DataFrame) -> pd.Series:
    single = df["answer_real"].astype(bool) == (df["kind"] == "real")
    is_pair = df["kind"].isin(PAIR_KINDS)
    if is_pair.any():
        return single.where(~is_pair, ~_col_bool(df, "fooled"))
    return single


def _given_answer(df: pd.DataFrame) -> pd.Series:
    """What the participant answered: answer_real, or for pair trials fooled (which photo they
    called colorized, independent of the side it was shown on)."""
    is_pair = df["kind"].isin(PAIR_KINDS)
    return _col_bool(df, "answer_real").where(~is_pair, _col_bool(df, "fooled"))


def _repeat_flags(df: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(is repeat, repeat with an earlier showing found, inconsistent) per row of counted votes."""
    rep = _repeat_of(df)
    is_rep = rep.notna()
    checked = pd.Series(False, index=df.index)
    inconsistent = pd.Series(False, index=df.index)
    if not is_rep.any():
        return is_rep, checked, inconsistent
    given = _given_answer(df)
    ordered = _in_time_order(df)
    firsts = {}
    for i in ordered.index[~is_rep.loc[ordered.index].to_numpy()]:
        firsts.setdefault((df.at[i, "participant"], str(df.at[i, "stimulus"])), bool(given.at[i]))
    for i in is_rep.index[is_rep.to_numpy()]:
        key = (df.at[i, "participant"], rep.at[i])
        if key in firsts:
            checked.at[i] = True
            inconsistent.at[i] = bool(given.at[i]) != firsts[key]
    return is_rep, checked, inconsistent


def _pattern(answers: np.ndarray, min_trials: int) -> str:
    if len(answers) < min_trials:
        return ""
    if (answers == answers[0]).all():
        return "constant"
    if (answers[1:] != answers[:-1]).all():
        return "alternating"
    return ""


def _word(answer_real: bool) -> str:
    return "real" if answer_real else "fake"


def exclusion_table(votes: pd.DataFrame, rules: ExclusionRules | None = None) -> pd.DataFrame:
    """One row per participant with counted votes: participant, trials (counted votes),
    attention_checks, attention_failures ("attention" answered "real", "pair_catch" with fooled
    True), repeats (repeats whose earlier showing was found), inconsistent_repeats (answered
    differently from the earlier showing), fast_votes (server_ms under the floor),
    median_server_ms (NaN without server times), pattern ("constant" | "alternating" | "", over
    the single-image trials in voted_at order, at least min_trials_for_pattern of them),
    excluded (bool) and reasons ("; "-joined, non-empty for every excluded participant).

    rules: None = the default ExclusionRules()."""
    rules = rules if rules is not None else ExclusionRules()
    df = _counted(votes).reset_index(drop=True)
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=bool if c == "excluded" else object)
                             for c in EXCLUSION_COLUMNS})
    kind = df["kind"]
    fooled = _col_bool(df, "fooled")
    answer = _col_bool(df, "answer_real")
    server = _col_float(df, "server_ms")
    _, checked, inconsistent = _repeat_flags(df)
    f = pd.DataFrame({
        "participant": df["participant"],
        "att": kind.isin(["attention", "pair_catch"]),
        "att_fail": ((kind == "attention") & answer) | ((kind == "pair_catch") & fooled),
        "rep": checked, "incons": inconsistent,
        "fast": server < rules.speed_floor_ms, "timed": server.notna(), "server": server,
    }, index=df.index)
    g = f.groupby("participant", sort=False)
    out = pd.DataFrame({
        "trials": g.size(),
        "attention_checks": g["att"].sum().astype(int),
        "attention_failures": g["att_fail"].sum().astype(int),
        "repeats": g["rep"].sum().astype(int),
        "inconsistent_repeats": g["incons"].sum().astype(int),
        "fast_votes": g["fast"].sum().astype(int),
        "timed_votes": g["timed"].sum().astype(int),
        "median_server_ms": g["server"].median().astype(float),
    })
    single = _in_time_order(df[~kind.isin(PAIR_KINDS)])
    patterns, n_single, first_answer = {}, {}, {}
    for p, idx in single.groupby("participant", sort=False).groups.items():
        a = answer.loc[idx].to_numpy()
        patterns[p] = _pattern(a, rules.min_trials_for_pattern)
        n_single[p] = len(a)
        first_answer[p] = bool(a[0]) if len(a) else False
    out["pattern"] = [patterns.get(p, "") for p in out.index]

    reasons = []
    floor = f"{rules.speed_floor_ms:g}"
    for p, r in out.iterrows():
        why = []
        if r["attention_failures"] > rules.max_attention_failures:
            n = int(r["attention_checks"])
            why.append(f"failed {int(r['attention_failures'])} of {n} attention "
                       f"check{'' if n == 1 else 's'} (at most {rules.max_attention_failures} "
                       "allowed)")
        if r["inconsistent_repeats"] > rules.max_inconsistent_repeats:
            why.append(f"answered {int(r['inconsistent_repeats'])} of {int(r['repeats'])} repeated "
                       f"images differently from the first showing (at most "
                       f"{rules.max_inconsistent_repeats} allowed)")
        if r["pattern"] == "constant" and rules.exclude_constant:
            why.append(f"answered '{_word(first_answer[p])}' to all {n_single[p]} trials")
        if r["pattern"] == "alternating" and rules.exclude_alternating:
            why.append(f"alternated 'real' and 'fake' over all {n_single[p]} trials")
        med = r["median_server_ms"]
        if rules.exclude_fast_median and not math.isnan(med) and med < rules.speed_floor_ms:
            why.append(f"median response {med:.0f} ms, under the {floor} ms floor")
        if r["timed_votes"] > 0 and rules.max_fast_share < 1.0:
            share = r["fast_votes"] / r["timed_votes"]
            if share > rules.max_fast_share:
                why.append(f"{int(r['fast_votes'])} of {int(r['timed_votes'])} votes faster than "
                           f"{floor} ms ({share:.0%}; at most {rules.max_fast_share:.0%} allowed)")
        reasons.append("; ".join(why))
    out["reasons"] = reasons
    out["excluded"] = out["reasons"] != ""
    return out.rename_axis("participant").reset_index()[EXCLUSION_COLUMNS]


def flag_votes(votes: pd.DataFrame, rules: ExclusionRules | None = None) -> pd.DataFrame:
    """A copy of the votes (all rows, practice included) with three added columns: fast (bool,
    server_ms under the floor; False without a server time), excluded_participant (bool, per
    exclusion_table) and exclusion_reason (the participant's reasons, "" when not excluded)."""
    rules = rules if rules is not None else ExclusionRules()
    out = votes.copy()
    out["fast"] = (_col_float(out, "server_ms") < rules.speed_floor_ms).to_numpy(dtype=bool)
    t = exclusion_table(votes, rules)
    t = t[t["excluded"]]
    why = dict(zip(t["participant"], t["reasons"]))
    out["excluded_participant"] = np.array([p in why for p in out["participant"]], dtype=bool)
    out["exclusion_reason"] = [why.get(p, "") for p in out["participant"]]
    return out


# --- the existing tables (now with rules=) ----------------------------------------------------

def participant_table(votes: pd.DataFrame, max_attention_failures: int = 0, *,
                      rules: ExclusionRules | None = None) -> pd.DataFrame:
    """Per participant: counted trials, accuracy, attention checks (seen, passed), median response
    time, and whether they are excluded (failed more than max_attention_failures checks; with
    rules, per exclusion_table, and then an added column reasons)."""
    cols = ["participant", "trials", "correct", "accuracy", "attention_checks",
            "attention_passed", "median_response_ms", "excluded"]
    if rules is not None:
        cols = cols + ["reasons"]
    df = _counted(votes)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df = df.assign(correct=_correct(df), is_att=df["kind"].isin(["attention", "pair_catch"]))
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
    if rules is None:
        failures = out["attention_checks"] - out["attention_passed"]
        out["excluded"] = failures > max_attention_failures
    else:
        t = exclusion_table(votes, rules).set_index("participant")
        out["excluded"] = t["excluded"].reindex(out.index).fillna(False).astype(bool)
        out["reasons"] = t["reasons"].reindex(out.index).fillna("")
    return out.reset_index()[cols]


def excluded_participants(votes: pd.DataFrame, max_attention_failures: int = 0, *,
                          rules: ExclusionRules | None = None) -> list:
    """Ids of the excluded participants (see participant_table)."""
    if rules is not None:
        t = exclusion_table(votes, rules)
    else:
        t = participant_table(votes, max_attention_failures)
    return t.loc[t["excluded"], "participant"].tolist()


def headline_votes(votes: pd.DataFrame, max_attention_failures: int = 0, *,
                   rules: ExclusionRules | None = None) -> pd.DataFrame:
    """Counted votes of participants not excluded, without repeats (catch trials)."""
    df = _counted(votes)
    bad = set(excluded_participants(votes, max_attention_failures, rules=rules))
    df = df[~df["participant"].isin(bad)]
    if "repeat_of" in df.columns:
        df = df[_repeat_of(df).isna().to_numpy()]
    return df


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


# --- cluster bootstrap ------------------------------------------------------------------------

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


# --- signal detection and per-model statistics -------------------------------------------------

def _probit(p: float) -> float:
    if p <= 0:
        return -math.inf
    if p >= 1:
        return math.inf
    return NormalDist().inv_cdf(p)


def dprime(hits: int, n_signal: int, false_alarms: int, n_noise: int,
           correction: bool = True) -> tuple[float, float]:
    """(d', criterion c) from hits of n_signal signal trials and false alarms of n_noise noise
    trials: d' = z(H) - z(F), c = -(z(H) + z(F)) / 2. correction (default): the log-linear one,
    H = (hits + 0.5) / (n_signal + 1) and likewise F, so rates of 0 or 1 stay finite; without it
    rates of 0 or 1 give infinities. (nan, nan) when n_signal or n_noise is 0.

    Here the signal is "colorized" and the "yes" answer is "fake": H = P(fake | colorized),
    F = P(fake | real)."""
    if n_signal <= 0 or n_noise <= 0:
        return (math.nan, math.nan)
    if not 0 <= hits <= n_signal:
        raise ValueError(f"hits={hits} must be within 0..n_signal={n_signal}")
    if not 0 <= false_alarms <= n_noise:
        raise ValueError(f"false_alarms={false_alarms} must be within 0..n_noise={n_noise}")
    if correction:
        h = (hits + 0.5) / (n_signal + 1)
        f = (false_alarms + 0.5) / (n_noise + 1)
    else:
        h, f = hits / n_signal, false_alarms / n_noise
    zh, zf = _probit(h), _probit(f)
    with np.errstate(invalid="ignore"):
        d = zh - zf
        c = -(zh + zf) / 2
    return (float(d), float(c))


def _model_order(gen: pd.DataFrame) -> list:
    """Models by fooling rate, highest first (ties by name)."""
    g = gen.groupby("model", dropna=False)["answer_real"]
    t = pd.DataFrame({"rate": g.mean(), "name": [str(m) for m in g.mean().index]})
    return t.sort_values(["rate", "name"], ascending=[False, True], kind="mergesort").index.tolist()


def model_stats(votes: pd.DataFrame, rules: ExclusionRules | None = None, n_boot: int = 1000,
                seed=0, level: float = 0.95, *, max_attention_failures: int = 0) -> pd.DataFrame:
    """Per model (headline votes of "generated" trials), most fooling first: model, votes,
    real_votes, fooling_rate, ci_low / ci_high (Wilson), boot_low / boot_high (bootstrap_rate of
    the model's votes), hit_rate (P(fake | this model)), false_alarm_rate (P(fake | real), all
    real trials), d_prime and criterion (dprime with the log-linear correction; NaN without real
    trials)."""
    df = headline_votes(votes, max_attention_failures, rules=rules)
    gen = df[df["kind"] == "generated"]
    if gen.empty:
        return pd.DataFrame(columns=MODEL_STATS_COLUMNS)
    real = df[df["kind"] == "real"]
    n_noise = len(real)
    fa = int((~real["answer_real"].astype(bool)).sum())
    z = _z(level)
    rows = []
    for m in _model_order(gen):
        sub = gen[gen["model"].isna()] if m is None or (not isinstance(m, str) and pd.isna(m)) \
            else gen[gen["model"] == m]
        n = len(sub)
        k = int(sub["answer_real"].astype(bool).sum())
        lo, hi = wilson_interval(k, n, z)
        blo, bhi = bootstrap_rate(sub, n_boot=n_boot, seed=seed, level=level)
        d, c = dprime(n - k, n, fa, n_noise)
        rows.append((m, n, k, k / n, lo, hi, blo, bhi, (n - k) / n,
                     fa / n_noise if n_noise else math.nan, d, c))
    return pd.DataFrame(rows, columns=MODEL_STATS_COLUMNS)


def model_differences(votes: pd.DataFrame, rules: ExclusionRules | None = None,
                      n_boot: int = 1000, seed=0, level: float = 0.95, *,
                      max_attention_failures: int = 0) -> pd.DataFrame:
    """Every pair of models (headline "generated" votes; model_a the more fooling one): model_a,
    model_b, rate_a, rate_b, difference (rate_a - rate_b) and its percentile interval
    boot_low / boot_high from the two-way cluster bootstrap, both models' rates computed on the
    same resampled participants and photos in each replicate. Empty with fewer than 2 models."""
    df = headline_votes(votes, max_attention_failures, rules=rules)
    gen = df[df["kind"] == "generated"]
    if gen.empty:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    order = _model_order(gen)
    if len(order) < 2:
        return pd.DataFrame(columns=DIFFERENCE_COLUMNS)
    code = {m: i for i, m in enumerate(order)}
    group = np.array([code[m] for m in gen["model"]], dtype=np.int64)
    y = gen["answer_real"].astype(bool).to_numpy(dtype=float)
    rates = _boot_rates(gen, y, group, len(order), n_boot, seed)
    point = np.bincount(group, weights=y, minlength=len(order)) / np.bincount(group)
    rows = []
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            lo, hi = _percentile_interval(rates[:, i] - rates[:, j], level)
            rows.append((order[i], order[j], float(point[i]), float(point[j]),
                         float(point[i] - point[j]), lo, hi))
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def mixed_model(votes: pd.DataFrame, rules: ExclusionRules | None = None,
                level: float = 0.95, *, max_attention_failures: int = 0) -> pd.DataFrame | None:
    """Logistic mixed model of answer_real on the model (fixed effect, one log-odds per model)
    with random intercepts for participants and source photos, on the headline "generated"
    votes, fitted by statsmodels' BinomialBayesMixedGLM.fit_vb (variational Bayes, deterministic
    start). Returns per model: model, votes, log_odds (posterior mean), sd (posterior sd),
    typical_rate (fooling rate of a typical participant on a typical photo, i.e. the inverse
    logit of log_odds) and ci_low / ci_high (inverse logit of log_odds -/+ z * sd); the fitted
    standard deviations of the random effects are in .attrs["random_effect_sd"]. None when
    statsmodels is not installed."""
    try:
        from scipy import sparse
        from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM
    except ImportError:
        return None
    df = headline_votes(votes, max_attention_failures, rules=rules)
    gen = df[df["kind"] == "generated"]
    if gen.empty:
        return pd.DataFrame(columns=MIXED_COLUMNS)
    models = sorted(gen["model"].astype(str).unique())
    mcode = pd.Categorical(gen["model"].astype(str), categories=models).codes
    n = len(gen)
    exog = np.zeros((n, len(models)))
    exog[np.arange(n), mcode] = 1.0
    pc, pu = pd.factorize(gen["participant"], use_na_sentinel=False)
    sc, su = pd.factorize(gen["source"], use_na_sentinel=False)
    n_p, n_s = len(pu), len(su)
    rows = np.r_[np.arange(n), np.arange(n)]
    cols = np.r_[pc, n_p + sc]
    exog_vc = sparse.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_p + n_s))
    ident = np.r_[np.zeros(n_p, dtype=int), np.ones(n_s, dtype=int)]
    y = gen["answer_real"].astype(bool).to_numpy(dtype=float)
    glm = BinomialBayesMixedGLM(y, exog, exog_vc, ident, vcp_p=1, fe_p=2,
                                fep_names=[f"model[{m}]" for m in models],
                                vcp_names=["participant", "source"])
    k = glm.k_fep + glm.k_vcp + glm.k_vc
    res = glm.fit_vb(sd=np.full(k, math.exp(-0.5)))
    z = _z(level)
    mean, sd = np.asarray(res.fe_mean, dtype=float), np.asarray(res.fe_sd, dtype=float)
    expit = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = pd.DataFrame({
        "model": models, "votes": np.bincount(mcode, minlength=len(models)),
        "log_odds": mean, "sd": sd, "typical_rate": expit(mean),
        "ci_low": expit(mean - z * sd), "ci_high": expit(mean + z * sd),
    })[MIXED_COLUMNS]
    out.attrs["random_effect_sd"] = {
        "participant": float(np.exp(res.vcp_mean[0])), "source": float(np.exp(res.vcp_mean[1]))}
    return out


# --- pair paradigm -----------------------------------------------------------------------------

def pair_model_table(votes: pd.DataFrame, rules: ExclusionRules | None = None,
                     n_boot: int = 1000, seed=0, level: float = 0.95, *,
                     max_attention_failures: int = 0) -> pd.DataFrame:
    """Pair paradigm, per model (headline votes of kind "pair" only), most fooling first: model,
    trials, fooled (trials where the real photo was picked as the colorized one), fooling_rate
    (50% = indistinguishable), ci_low / ci_high (Wilson) and boot_low / boot_high (two-way
    cluster bootstrap over participants and source photos)."""
    df = headline_votes(votes, max_attention_failures, rules=rules)
    if "fooled" not in df.columns:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    df = df[df["kind"] == "pair"]
    if df.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    df = df.assign(fooled=_col_bool(df, "fooled"))
    z = _z(level)
    rows = []
    for m, sub in df.groupby("model", sort=True, dropna=False):
        n, k = len(sub), int(sub["fooled"].sum())
        lo, hi = wilson_interval(k, n, z)
        blo, bhi = bootstrap_rate(sub, n_boot=n_boot, seed=seed, level=level, outcome="fooled")
        rows.append((m, n, k, k / n, lo, hi, blo, bhi))
    out = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    return out.sort_values(["fooling_rate", "trials"], ascending=[False, False],
                           kind="mergesort").reset_index(drop=True)


# --- per-image metrics -------------------------------------------------------------------------

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


# --- planning ----------------------------------------------------------------------------------

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


# --- everything at once ------------------------------------------------------------------------

def summary(votes: pd.DataFrame, max_attention_failures: int = 0, *,
            rules: ExclusionRules | None = None, n_boot: int = 1000, seed=0) -> dict:
    """All tables at once, plus headline numbers: models, images, real, real_images,
    participants, excluded (ids), n_votes, n_practice_votes, n_participants. With rules, the
    exclusions follow the rules and these are added: exclusions (exclusion_table), model_stats
    and model_differences. pair_models (pair_model_table) is added when there are pair trials."""
    parts = participant_table(votes, max_attention_failures, rules=rules)
    counted = _counted(votes)
    out = {
        "models": model_table(votes, max_attention_failures, rules=rules),
        "images": image_table(votes, max_attention_failures, rules=rules),
        "real": real_table(votes, max_attention_failures, rules=rules),
        "real_images": real_image_table(votes, max_attention_failures, rules=rules),
        "participants": parts,
        "excluded": parts.loc[parts["excluded"], "participant"].tolist() if len(parts) else [],
        "n_votes": int(len(counted)),
        "n_practice_votes": int(len(votes) - len(counted)),
        "n_participants": int(votes["participant"].nunique()) if len(votes) else 0,
    }
    if rules is not None:
        out["exclusions"] = exclusion_table(votes, rules)
        out["model_stats"] = model_stats(votes, rules, n_boot=n_boot, seed=seed)
        out["model_differences"] = model_differences(votes, rules, n_boot=n_boot, seed=seed)
    if len(counted) and counted["kind"].isin(PAIR_KINDS).any():
        out["pair_models"] = pair_model_table(votes, rules, n_boot=n_boot, seed=seed,
                                              max_attention_failures=max_attention_failures)
    return out
