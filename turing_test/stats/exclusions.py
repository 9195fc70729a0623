"""Who counts: exclusion rules and the votes that enter the headline figures.

ExclusionRules (checked settings), exclusion_table (per participant: attention failures,
inconsistent repeats, answer patterns, fast votes, reasons), flag_votes, participant_table,
excluded_participants and headline_votes (counted votes of participants not excluded, without
repeats).

Touches only pandas, numpy and the standard library: no gradio, no database, no SQLAlchemy.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import PAIR_KINDS, _col_bool, _col_float, _counted, _in_time_order, _repeat_of

EXCLUSION_COLUMNS = ["participant", "trials", "attention_checks", "attention_failures", "repeats",
                     "inconsistent_repeats", "fast_votes", "median_server_ms", "pattern",
                     "excluded", "reasons"]


def _to_float(name: str, v, what: str) -> float:
    """float(v); ValueError "<name> must be <what>, not <v>" for a bool, None or a non-number."""
    if isinstance(v, bool) or v is None:
        raise ValueError(f"{name} must be {what}, not {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {what}, not {v!r}") from None


def _as_int(name: str, v) -> int:
    f = _to_float(name, v, "a whole number")
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"{name} must be a whole number, not {v!r}")
    return int(f)


def _as_float(name: str, v) -> float:
    f = _to_float(name, v, "a number")
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


def _int_sums(g, columns: dict[str, str]) -> dict[str, pd.Series]:
    """{name: per group, the number of True values of column, as int} for a groupby g."""
    return {name: g[col].sum().astype(int) for name, col in columns.items()}


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
        **_int_sums(g, {"attention_checks": "att", "attention_failures": "att_fail",
                        "repeats": "rep", "inconsistent_repeats": "incons", "fast_votes": "fast",
                        "timed_votes": "timed"}),
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


# --- participants and headline votes -------------------------------------------------------

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
        **_int_sums(g, {"correct": "correct", "attention_checks": "is_att",
                        "attention_passed": "att_pass"}),
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
