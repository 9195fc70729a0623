"""turing_test.stats: exclusion rules, cluster bootstrap, signal detection, pair paradigm, metric
correlations and planning, against published or hand-computed values. Pure pandas/numpy, fast."""
from __future__ import annotations

import math
import sys
import time
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from turing_test import stats

BASE = ["participant", "stimulus", "source", "kind", "model", "answer_real", "response_ms",
        "voted_at", "practice"]
T0 = pd.Timestamp("2026-01-01", tz="UTC")
Z = NormalDist().inv_cdf


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in BASE]
    return df[BASE + extra]


def _vote(p, stim, kind, answer_real, i, *, source=None, model=None, practice=False, **extra):
    row = {"participant": p, "stimulus": stim, "source": source or f"src-{stim}", "kind": kind,
           "model": model if kind in ("generated", "pair", "pair_catch") else None,
           "answer_real": answer_real, "response_ms": 1500.0,
           "voted_at": T0 + pd.Timedelta(seconds=i), "practice": practice}
    row.update(extra)
    return row


def _simulate(model_rates: dict, n_raters=60, trials=20, n_images=30, spread=None, seed=0):
    """Each rater sees `trials` of the `n_images` photos once per model; a rater's probability of
    answering "real" is the model's rate, or (spread=c) drawn from a Beta of mean rate and
    concentration c (intraclass correlation 1 / (c + 1))."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_raters):
        for model, rate in model_rates.items():
            r = rate if spread is None else rng.beta(rate * spread, (1 - rate) * spread)
            for i in rng.choice(n_images, trials, replace=False):
                rows.append(_vote(f"p{p}", f"{model}-{i}", "generated", bool(rng.random() < r),
                                  len(rows), source=f"photo{i}", model=model))
    return _frame(rows)


# --- Wilson intervals and planning ---------------------------------------------------------------

@pytest.mark.parametrize("k,n,lo,hi", [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score, no continuity
    # correction); recomputed from the formula: 81/263 -> 0.25529, 0.36621; 15/148 -> 0.06239,
    # 0.16049; 0/20 -> 0, 0.16113; 1/29 -> 0.00611, 0.17176.
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718)])
def test_wilson_published_examples(k, n, lo, hi):
    got = stats.wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=5e-5) and got[1] == pytest.approx(hi, abs=5e-5)
    # independent characterisation: the bounds are the p with (k/n - p)^2 = z^2 p (1 - p) / n
    for p in got:
        if 0 < p < 1:
            assert (k / n - p) ** 2 == pytest.approx(stats.Z95 ** 2 * p * (1 - p) / n, rel=1e-9)


def test_votes_needed_and_precise_enough():
    n = stats.votes_needed(0.5, 0.1)
    assert 381 <= n <= 385  # Wald's n = z^2 / 4 / 0.05^2 = 384.1; Wilson is a little narrower
    width = lambda k, m: np.subtract(*stats.wilson_interval(k, m)[::-1])  # noqa: E731
    assert width(0.5 * n, n) <= 0.1 < width(0.5 * (n - 1), n - 1)
    # Zhang et al.'s 32.3%, +-2.5 points
    n2 = stats.votes_needed(0.323, 0.05)
    assert width(0.323 * n2, n2) <= 0.05 < width(0.323 * (n2 - 1), n2 - 1)
    assert n2 == pytest.approx(stats.Z95 ** 2 * 0.323 * 0.677 / 0.025 ** 2, rel=0.02)
    # a higher level needs about (2.576 / 1.960)^2 = 1.73 times the votes
    assert stats.votes_needed(0.5, 0.1, level=0.99) / n == pytest.approx(1.727, rel=0.02)
    assert stats.votes_needed(0.0, 0.1) < n  # at 0 the interval is one-sided and narrow
    assert stats.precise_enough(n // 2, n, 0.1 + 1e-3) and not stats.precise_enough(20, 40, 0.1)
    assert not stats.precise_enough(0, 0, 0.5)
    k, m = 192, 385
    assert stats.precise_enough(k, m, 0.1) == (width(k, m) <= 0.1)
    with pytest.raises(ValueError):
        stats.votes_needed(1.5, 0.1)
    with pytest.raises(ValueError):
        stats.votes_needed(0.5, 0)


# --- signal detection ----------------------------------------------------------------------------

def test_dprime_hand_computed():
    d, c = stats.dprime(8, 10, 2, 10, correction=False)  # H = .8, F = .2
    assert d == pytest.approx(1.6832, abs=1e-4) and c == pytest.approx(0.0, abs=1e-12)
    d, c = stats.dprime(9, 10, 5, 10, correction=False)  # H = .9, F = .5: a liberal "fake"
    assert d == pytest.approx(1.2816, abs=1e-4) and c == pytest.approx(-0.6408, abs=1e-4)
    # log-linear correction (Hautus 1995): (hits + 0.5) / (n + 1)
    d, c = stats.dprime(8, 10, 2, 10)
    h, f = 8.5 / 11, 2.5 / 11
    assert d == pytest.approx(Z(h) - Z(f), abs=1e-12) and c == pytest.approx(0, abs=1e-12)
    d, c = stats.dprime(10, 10, 0, 20)  # perfect: still finite
    assert d == pytest.approx(Z(10.5 / 11) - Z(0.5 / 21))
    assert c == pytest.approx(-(Z(10.5 / 11) + Z(0.5 / 21)) / 2)
    assert stats.dprime(10, 10, 0, 20, correction=False)[0] == math.inf
    assert all(math.isnan(v) for v in stats.dprime(0, 0, 1, 5))
    with pytest.raises(ValueError):
        stats.dprime(11, 10, 0, 10)


def test_model_stats_dprime_and_rates():
    rows = []
    # model a: 10 votes, 3 "real" (7 hits); model b: 10 votes, 6 "real"; real: 8 votes, 2 "fake"
    for i in range(10):
        rows.append(_vote(f"p{i}", f"a{i}", "generated", i < 3, len(rows), model="a"))
        rows.append(_vote(f"p{i}", f"b{i}", "generated", i < 6, len(rows), model="b"))
    for i in range(8):
        rows.append(_vote(f"p{i}", f"r{i}", "real", i >= 2, len(rows)))
    t = stats.model_stats(_frame(rows), n_boot=200)
    assert list(t.columns) == stats.MODEL_STATS_COLUMNS
    assert t["model"].tolist() == ["b", "a"]  # most fooling first
    a = t.set_index("model").loc["a"]
    assert (a["votes"], a["real_votes"], a["fooling_rate"]) == (10, 3, 0.3)
    assert a["hit_rate"] == pytest.approx(0.7) and a["false_alarm_rate"] == pytest.approx(0.25)
    d, c = stats.dprime(7, 10, 2, 8)
    assert a["d_prime"] == pytest.approx(d) and a["criterion"] == pytest.approx(c)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx(stats.wilson_interval(3, 10))
    assert a["boot_low"] <= 0.3 <= a["boot_high"]
    # the better model has the lower d'
    assert t.set_index("model").loc["b", "d_prime"] < a["d_prime"]


# --- cluster bootstrap ---------------------------------------------------------------------------

def _width(lo_hi):
    return lo_hi[1] - lo_hi[0]


def test_bootstrap_rater_spread():
    # 60 raters, 20 of 30 images each. Strong spread: Beta concentration 2, ICC 1/3, design effect
    # 1 + 19/3 = 7.3, so the honest interval is about 2.7 times the Wilson one.
    spread = _simulate({"m": 0.35}, spread=2.0, seed=0)
    k, n = int(spread["answer_real"].sum()), len(spread)
    boot = stats.bootstrap_rate(spread, seed=0)
    assert boot[0] < 0.35 < boot[1]
    assert _width(boot) > 2.2 * _width(stats.wilson_interval(k, n))
    assert stats.bootstrap_rate(spread, seed=0) == boot  # seeded: deterministic
    assert stats.bootstrap_rate(spread, seed=1) != boot

    same = _simulate({"m": 0.35}, spread=None, seed=0)
    k, n = int(same["answer_real"].sum()), len(same)
    wilson = _width(stats.wilson_interval(k, n))
    boot = stats.bootstrap_rate(same, seed=0)
    assert boot[0] < 0.35 < boot[1]
    # no rater or photo effects: resampling participants alone is about as wide as Wilson ...
    assert 0.8 < _width(stats.bootstrap_rate(same, seed=0, clusters="participant")) / wilson < 1.25
    # ... and the two-way (pigeonhole) bootstrap is conservative by about sqrt(3) (Owen 2007: the
    # product weights w_p * w_s have variance 3, so pure vote noise counts three times)
    assert 1.35 < _width(boot) / wilson < 2.1
    assert 0.8 < _width(boot) / (math.sqrt(3) * wilson) < 1.2


def test_bootstrap_is_the_two_way_resample():
    """A brute-force replay of the documented resample: per replicate, draw participants and then
    photos with numpy.random.default_rng(seed).integers (clusters numbered in order of first
    appearance) and keep every vote whose participant and photo were both drawn, with
    multiplicity."""
    df = _simulate({"m": 0.4}, n_raters=7, trials=4, n_images=5, spread=3.0, seed=3)
    parts = list(dict.fromkeys(df["participant"]))
    photos = list(dict.fromkeys(df["source"]))
    rng = np.random.default_rng(11)
    b = 60
    dp = rng.integers(0, len(parts), size=(b, len(parts)))
    ds = rng.integers(0, len(photos), size=(b, len(photos)))
    rates = []
    for r in range(b):
        chosen = pd.concat([df[(df["participant"] == parts[i]) & (df["source"] == photos[j])]
                            for i in dp[r] for j in ds[r]])
        rates.append(chosen["answer_real"].mean() if len(chosen) else np.nan)
    want = np.nanquantile(rates, [0.05, 0.95])
    got = stats.bootstrap_rate(df, n_boot=b, seed=11, level=0.9)
    assert got == pytest.approx(tuple(want), abs=1e-12)


def test_bootstrap_speed_and_edges():
    df = pd.concat([_simulate({"m": 0.3}, seed=1), _simulate({"m": 0.3}, seed=2)])
    df = df.assign(participant=df["participant"] + np.repeat(["a", "b"], len(df) // 2))
    assert len(df) == 2400
    t = time.perf_counter()
    stats.bootstrap_rate(df, n_boot=1000)
    assert time.perf_counter() - t < 2.0
    assert all(math.isnan(v) for v in stats.bootstrap_rate(df.iloc[:0]))
    one = df.iloc[:1]
    assert stats.bootstrap_rate(one) == (float(one["answer_real"].iloc[0]),) * 2
    with pytest.raises(ValueError):
        stats.bootstrap_rate(df, n_boot=0)


def test_model_differences():
    df = _simulate({"good": 0.45, "bad": 0.2, "twin": 0.45}, spread=8.0, seed=4)
    t = stats.model_differences(df, n_boot=500)
    assert list(t.columns) == stats.DIFFERENCE_COLUMNS and len(t) == 3
    by = {(a, b): r for a, b, r in zip(t["model_a"], t["model_b"], t.itertuples())}
    far = by.get(("good", "bad")) or by[("twin", "bad")]
    assert far.difference == pytest.approx(far.rate_a - far.rate_b) and far.difference > 0.15
    assert far.boot_low > 0
    pair = by.get(("good", "twin")) or by[("twin", "good")]
    assert pair.boot_low < 0 < pair.boot_high
    # an exact copy of a model's votes: the same resample for both models gives differences of 0
    good = df[df["model"] == "good"]
    copy = pd.concat([good, good.assign(model="copy", stimulus=good["stimulus"] + "'")])
    t = stats.model_differences(copy, n_boot=200)
    assert len(t) == 1 and (t["difference"].iloc[0], t["boot_low"].iloc[0],
                            t["boot_high"].iloc[0]) == (0.0, 0.0, 0.0)
    assert stats.model_differences(good, n_boot=50).empty


# --- exclusion rules -----------------------------------------------------------------------------

def _exclusion_votes() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(7)
    # 20 trials: 7 real, 9 generated, 4 attention checks (at even positions)
    kinds = ["real", "generated", "generated", "real", "attention", "generated", "real",
             "generated", "attention", "real", "generated", "generated", "real", "generated",
             "attention", "real", "generated", "generated", "attention", "real"]

    def add(p, i, kind, ans, **extra):
        model = "m1" if i % 2 else "m2"
        rows.append(_vote(p, f"{kind[0]}{i}", kind, ans, i, model=model, **extra))

    for p in ("careful", "bot_fake", "bot_alt", "speedy", "flip", "inattentive"):
        rows.append(_vote(p, "pr", "real", True, -1, practice=True, server_ms=50.0))
        for i, kind in enumerate(kinds):
            truth = kind == "real"
            if p == "bot_fake":
                ans = False
            elif p == "bot_alt":
                ans = i % 2 == 1  # attention trials sit at even i: answered "fake", passed
            elif p == "inattentive" and kind == "attention" and i < 10:
                ans = True
            else:
                ans = truth if kind != "generated" else bool(rng.random() < 0.4)
                if kind == "generated" and i in (1, 2):  # never constant or alternating
                    ans = i == 1
            server = 120.0 if p == "speedy" else 900.0 + 40 * i
            add(p, i, kind, ans, server_ms=server)
    for p, flips in (("careful", (False,)), ("flip", (True, True, False))):
        for j, flip in enumerate(flips):  # repeats of the participant's trials 1, 2 and 5
            first = next(r for r in rows
                         if r["participant"] == p and r["stimulus"] == f"g{(1, 2, 5)[j]}")
            rows.append({**first, "answer_real": first["answer_real"] != flip,
                         "voted_at": T0 + pd.Timedelta(seconds=30 + j),
                         "repeat_of": first["stimulus"]})
    df = _frame(rows)
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)  # time order != row order


def test_exclusion_table_reasons():
    df = _exclusion_votes()
    t = stats.exclusion_table(df, stats.ExclusionRules()).set_index("participant")
    assert list(stats.exclusion_table(df).columns) == stats.EXCLUSION_COLUMNS
    assert t.loc["careful", "trials"] == 21 and t.loc["flip", "trials"] == 23
    assert not t.loc["careful", "excluded"] and t.loc["careful", "reasons"] == ""
    assert t.loc["careful", "repeats"] == 1 and t.loc["careful", "inconsistent_repeats"] == 0
    assert t.loc["careful", "median_server_ms"] == pytest.approx(np.median(900 + 40 * np.r_[
        np.arange(20), 1]))  # the repeat copies trial 1's server time

    fake = t.loc["bot_fake"]
    assert fake["excluded"] and fake["pattern"] == "constant" and fake["attention_failures"] == 0
    assert fake["reasons"] == "answered 'fake' to all 20 trials"
    alt = t.loc["bot_alt"]
    assert alt["pattern"] == "alternating" and alt["attention_failures"] == 0
    assert alt["reasons"] == "alternated 'real' and 'fake' over all 20 trials"
    fast = t.loc["speedy"]
    assert fast["fast_votes"] == 20 and fast["median_server_ms"] == 120
    assert fast["reasons"] == "median response 120 ms, under the 200 ms floor"
    flip = t.loc["flip"]
    assert (flip["repeats"], flip["inconsistent_repeats"]) == (3, 2)
    assert flip["reasons"] == ("answered 2 of 3 repeated images differently from the first "
                               "showing (at most 1 allowed)")
    bad = t.loc["inattentive"]
    assert (bad["attention_checks"], bad["attention_failures"]) == (4, 2)
    assert bad["reasons"] == "failed 2 of 4 attention checks (at most 0 allowed)"
    assert t["excluded"].sum() == 5 and (t.loc[t["excluded"], "reasons"] != "").all()

    # switches
    t = stats.exclusion_table(df, stats.ExclusionRules(
        exclude_constant=False, exclude_alternating=False, exclude_fast_median=False,
        max_inconsistent_repeats=2, max_attention_failures=2)).set_index("participant")
    assert not t["excluded"].any() and t.loc["bot_fake", "pattern"] == "constant"
    t = stats.exclusion_table(df, stats.ExclusionRules(exclude_fast_median=False,
                                                       max_fast_share=0.5)).set_index("participant")
    assert t.loc["speedy", "reasons"] == ("20 of 20 votes faster than 200 ms (100%; at most 50% "
                                          "allowed)")
    t = stats.exclusion_table(df, stats.ExclusionRules(min_trials_for_pattern=21))
    assert (t["pattern"] == "").all()


def test_exclusions_reach_the_tables_and_flags():
    df = _exclusion_votes()
    rules = stats.ExclusionRules()
    # without rules only the inattentive one goes; with rules only careful remains
    assert stats.excluded_participants(df) == ["inattentive"]
    kept = stats.headline_votes(df, rules=rules)
    assert set(kept["participant"]) == {"careful"} and kept["repeat_of"].isna().all()
    models = stats.model_table(df, rules=rules)
    assert models["votes"].sum() == 9  # careful's 9 generated trials; the repeat is not a vote
    assert stats.model_table(df)["votes"].sum() == 5 * 9  # repeats never count
    assert stats.real_table(df, rules=rules)["votes"].iloc[0] == 7
    parts = stats.participant_table(df, rules=rules).set_index("participant")
    assert parts["excluded"].sum() == 5 and not parts.loc["careful", "excluded"]
    assert parts.loc["speedy", "reasons"].startswith("median response")

    flagged = stats.flag_votes(df, rules)
    assert len(flagged) == len(df) and list(flagged.columns[:len(df.columns)]) == list(df.columns)
    assert flagged.loc[flagged["participant"] == "speedy", "fast"].sum() == 20 + 1  # + practice
    assert flagged.loc[flagged["practice"], "fast"].all()  # practice server_ms 50: fast too
    assert not flagged.loc[flagged["participant"] == "careful", "excluded_participant"].any()
    assert (flagged.loc[flagged["participant"] == "careful", "exclusion_reason"] == "").all()
    bot = flagged[flagged["participant"] == "bot_fake"]
    assert bot["excluded_participant"].all()
    assert (bot["exclusion_reason"] == "answered 'fake' to all 20 trials").all()

    s = stats.summary(df, rules=rules, n_boot=100)
    assert s["excluded"] == stats.excluded_participants(df, rules=rules)
    assert sorted(s["excluded"]) == ["bot_alt", "bot_fake", "flip", "inattentive", "speedy"]
    assert {"exclusions", "model_stats", "model_differences"} <= set(s)


def test_exclusion_without_optional_columns():
    df = _exclusion_votes().drop(columns=["server_ms", "repeat_of"])
    t = stats.exclusion_table(df).set_index("participant")
    assert (t["fast_votes"] == 0).all() and t["median_server_ms"].isna().all()
    assert (t["repeats"] == 0).all()
    assert not t.loc["speedy", "excluded"] and t.loc["bot_fake", "excluded"]
    # flip's repeats are now plain votes: 23 trials, no pattern, not excluded
    assert t.loc["flip", "trials"] == 23 and not t.loc["flip", "excluded"]
    assert stats.flag_votes(df)["fast"].dtype == bool
    empty = stats.exclusion_table(df.iloc[:0])
    assert empty.empty and list(empty.columns) == stats.EXCLUSION_COLUMNS


def test_rules_dict_round_trip_and_checks():
    r = stats.ExclusionRules(max_attention_failures=1, speed_floor_ms=250, max_fast_share=0.3)
    d = r.to_dict()
    assert d["max_attention_failures"] == 1 and d["speed_floor_ms"] == 250.0
    assert stats.ExclusionRules.from_dict(d) == r
    assert stats.ExclusionRules.from_dict(None) == stats.ExclusionRules()
    assert stats.ExclusionRules().to_dict() == {
        "max_attention_failures": 0, "max_inconsistent_repeats": 1, "exclude_constant": True,
        "exclude_alternating": True, "min_trials_for_pattern": 6, "speed_floor_ms": 200.0,
        "exclude_fast_median": True, "max_fast_share": 1.0}
    r = stats.ExclusionRules.from_dict({"exclude_constant": "false",
                                        "max_inconsistent_repeats": "2",
                                        "min_trials_for_pattern": 8.0, "unknown": 1})
    assert r.exclude_constant is False and r.max_inconsistent_repeats == 2
    assert r.min_trials_for_pattern == 8
    for bad in ({"max_fast_share": 1.5}, {"min_trials_for_pattern": 1},
                {"max_attention_failures": -1}, {"max_attention_failures": 0.5},
                {"exclude_constant": "maybe"}, {"speed_floor_ms": "fast"}):
        with pytest.raises(ValueError):
            stats.ExclusionRules.from_dict(bad)


# --- pair paradigm -------------------------------------------------------------------------------

def test_pair_model_table():
    rows = []
    for p in range(10):
        # model A: 3 trials per participant, fooled in 1 of 3 for p < 6 (6 of 30); B: 2 trials,
        # fooled in the first for p < 5 (5 of 20); one pair_catch each, failed by p9 only
        for j in range(3):
            rows.append(_vote(f"p{p}", f"A{j}", "pair", None, len(rows), model="A",
                              source=f"s{j}", paradigm="pair", fooled=(j == 0 and p < 6)))
        for j in range(2):
            rows.append(_vote(f"p{p}", f"B{j}", "pair", None, len(rows), model="B",
                              source=f"s{j}", paradigm="pair", fooled=(j == 0 and p < 5)))
        rows.append(_vote(f"p{p}", "catch", "pair_catch", None, len(rows), model="A",
                          source="s9", paradigm="pair", fooled=p == 9))
    df = _frame(rows)
    t = stats.pair_model_table(df, n_boot=300)
    assert list(t.columns) == stats.PAIR_COLUMNS
    # p9 failed the catch trial: excluded (p9 was not fooled in any pair trial)
    a, b = t.set_index("model").loc["A"], t.set_index("model").loc["B"]
    assert (a["trials"], a["fooled"], a["fooling_rate"]) == (27, 6, pytest.approx(6 / 27))
    assert (b["trials"], b["fooled"], b["fooling_rate"]) == (18, 5, pytest.approx(5 / 18))
    assert t["model"].tolist() == ["B", "A"]
    assert (a["ci_low"], a["ci_high"]) == pytest.approx(stats.wilson_interval(6, 27))
    assert a["boot_low"] <= 6 / 27 <= a["boot_high"]
    t2 = stats.pair_model_table(df, max_attention_failures=1, n_boot=50).set_index("model")
    assert t2.loc["A", "trials"] == 30
    ex = stats.exclusion_table(df).set_index("participant")
    assert ex.loc["p9", "excluded"] and ex.loc["p9", "reasons"].startswith("failed 1 of 1")
    assert ex["pattern"].eq("").all()  # pair trials are not scanned for answer patterns
    parts = stats.participant_table(df).set_index("participant")
    assert parts.loc["p9", "excluded"] and parts.loc["p0", "attention_checks"] == 1
    s = stats.summary(df, n_boot=50)
    assert s["pair_models"].set_index("model").loc["B", "fooled"] == 5 and s["models"].empty
    assert stats.pair_model_table(df.drop(columns="fooled")).empty


# --- per-image metrics ---------------------------------------------------------------------------

def _image_votes(rates: list[float], n=20):
    rows = []
    for i, rate in enumerate(rates):
        for p in range(n):
            rows.append(_vote(f"p{p}", f"g{i}", "generated", p < round(rate * n), len(rows),
                              source=f"s{i}", model="m"))
    return _frame(rows)


def test_image_metric_table_and_correlations():
    rates = [0.05, 0.1, 0.2, 0.25, 0.3, 0.45, 0.5, 0.6, 0.7, 0.85]
    votes = _image_votes(rates)
    rng = np.random.default_rng(5)
    metrics = pd.DataFrame({"stimulus": [f"g{i}" for i in range(10)],
                            "psnr": np.exp(3 * np.array(rates)),  # monotone up
                            "de2000": -np.array(rates) ** 3,  # monotone down
                            "colorfulness": np.round(rng.normal(size=10), 0),  # ties
                            "lpips": rng.normal(size=10)})
    metrics.loc[9, "lpips"] = np.nan
    t = stats.image_metric_table(votes, metrics.iloc[::-1])
    assert len(t) == 10 and t["fooling_rate"].is_monotonic_decreasing
    assert t.set_index("stimulus").loc["g3", "psnr"] == pytest.approx(math.exp(0.75))
    c = stats.metric_correlations(t, n_boot=300, seed=2).set_index("metric")
    assert list(c.reset_index().columns) == stats.CORRELATION_COLUMNS
    assert c.index.tolist() == ["psnr", "de2000", "colorfulness", "lpips"]
    assert c.loc["psnr", "rho"] == pytest.approx(1.0)
    assert (c.loc["psnr", "boot_low"], c.loc["psnr", "boot_high"]) == pytest.approx((1.0, 1.0))
    assert c.loc["de2000", "rho"] == pytest.approx(-1.0)
    assert c.loc["lpips", "n_images"] == 9 and c.loc["psnr", "n_images"] == 10
    # against scipy, with ties, and the bootstrap replayed image by image
    sps = pytest.importorskip("scipy.stats")
    x, y = t["colorfulness"].to_numpy(), t["fooling_rate"].to_numpy()
    assert c.loc["colorfulness", "rho"] == pytest.approx(sps.spearmanr(x, y)[0], abs=1e-12)
    idx = np.random.default_rng(2).integers(0, 10, size=(300, 10))
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reps = [sps.spearmanr(x[i], y[i])[0] for i in idx]
    want = np.nanquantile(reps, [0.025, 0.975])
    assert (c.loc["colorfulness", "boot_low"], c.loc["colorfulness", "boot_high"]) == \
        pytest.approx(tuple(want), abs=1e-9)
    # errors and small tables
    with pytest.raises(ValueError):
        stats.image_metric_table(votes, metrics.drop(columns="stimulus"))
    with pytest.raises(ValueError):
        stats.image_metric_table(votes, pd.concat([metrics, metrics.iloc[:1]]))
    small = stats.metric_correlations(t.iloc[:2])
    assert small["rho"].isna().all() and small["n_images"].tolist() == [2, 2, 2, 1]


# --- optional mixed model -------------------------------------------------------------------------

def test_mixed_model_without_statsmodels(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels.genmod.bayes_mixed_glm", None)
    assert stats.mixed_model(_simulate({"m": 0.3}, n_raters=5, trials=4, n_images=5)) is None


@pytest.mark.heavy
def test_mixed_model():
    pytest.importorskip("statsmodels")
    df = _simulate({"hi": 0.5, "lo": 0.2}, n_raters=40, trials=15, n_images=20, spread=10.0,
                   seed=6)
    t = stats.mixed_model(df)
    assert list(t.columns) == stats.MIXED_COLUMNS and t["model"].tolist() == ["hi", "lo"]
    t = t.set_index("model")
    assert t.loc["hi", "votes"] == 600
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    assert t.loc["hi", "log_odds"] == pytest.approx(logit(0.5), abs=0.35)
    assert t.loc["lo", "log_odds"] == pytest.approx(logit(0.2), abs=0.35)
    assert (t["ci_low"] < t["typical_rate"]).all() and (t["typical_rate"] < t["ci_high"]).all()
    assert set(t.attrs["random_effect_sd"]) == {"participant", "source"}
    assert stats.mixed_model(df).equals(stats.mixed_model(df))  # deterministic start


# --- the existing behaviour -----------------------------------------------------------------------

def test_summary_without_rules_is_unchanged():
    rows = []
    t = pd.Timestamp("2026-01-01", tz="UTC")
    for p, ans in (("p1", None), ("p2", True)):  # p2 says "real" to everything, fails attention
        a = (lambda careful: careful) if ans is None else (lambda careful: ans)  # noqa: E731
        rows.append((p, "pr", "s0", "real", None, True, 900, t, True))
        rows.append((p, "r1", "s1", "real", None, a(True), 1000, t, False))
        rows.append((p, "g1", "s2", "generated", "m1", a(True), 1200, t, False))
        rows.append((p, "g2", "s3", "generated", "m1", a(False), 800, t, False))
        rows.append((p, "g3", "s4", "generated", "m2", a(False), 700, t, False))
        rows.append((p, "a1", "s5", "attention", None, a(False), 600, t, False))
    df = pd.DataFrame(rows, columns=BASE)
    s = stats.summary(df)
    assert set(s) == {"models", "images", "real", "real_images", "participants", "excluded",
                      "n_votes", "n_practice_votes", "n_participants"}
    assert s["excluded"] == ["p2"] and s["n_votes"] == 10 and s["n_practice_votes"] == 2
    assert s["n_participants"] == 2
    assert list(s["participants"].columns) == ["participant", "trials", "correct", "accuracy",
                                               "attention_checks", "attention_passed",
                                               "median_response_ms", "excluded"]
    m = s["models"]
    assert list(m.columns) == ["model", "votes", "real_votes", "fooling_rate", "ci_low", "ci_high"]
    assert m["model"].tolist() == ["m1", "m2"] and m["votes"].tolist() == [2, 1]
    assert m["fooling_rate"].tolist() == [0.5, 0.0]
    assert (m["ci_low"].iloc[0], m["ci_high"].iloc[0]) == pytest.approx(stats.wilson_interval(1, 2))
    assert s["real"]["judged_real_rate"].tolist() == [1.0]
    assert s["images"]["stimulus"].tolist() == ["g1", "g2", "g3"]
    assert stats.model_table(df, 1)["votes"].sum() == 6
    # rules with everything but the attention checks switched off: the same exclusions
    only_attention = stats.ExclusionRules(exclude_constant=False, exclude_alternating=False,
                                          exclude_fast_median=False)
    r = stats.summary(df, rules=only_attention, n_boot=50)
    assert r["excluded"] == ["p2"] and set(s) < set(r)
    pd.testing.assert_frame_equal(r["models"], s["models"])
    assert r["exclusions"].set_index("participant").loc["p2", "reasons"] == \
        "failed 1 of 1 attention check (at most 0 allowed)"
    assert stats.summary(df.iloc[:0], rules=only_attention)["model_stats"].empty
