"""Per-model statistics on the headline votes: signal detection (dprime), model_stats (Wilson and
bootstrap intervals, hit and false-alarm rates, d', criterion), model_differences (bootstrap
intervals of differences between models), mixed_model (logistic mixed model) and
pair_model_table (the pair paradigm).

Touches only pandas, numpy and the standard library, plus statsmodels and scipy.sparse, both
optional and imported inside mixed_model: no gradio, no database, no SQLAlchemy.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from .base import _col_bool, _z
from .bootstrap import _boot_rates, _percentile_interval, bootstrap_rate
from .exclusions import ExclusionRules, headline_votes
from .rates import wilson_interval

MODEL_STATS_COLUMNS = ["model", "votes", "real_votes", "fooling_rate", "ci_low", "ci_high",
                       "boot_low", "boot_high", "hit_rate", "false_alarm_rate", "d_prime",
                       "criterion"]
DIFFERENCE_COLUMNS = ["model_a", "model_b", "rate_a", "rate_b", "difference", "boot_low",
                      "boot_high"]
PAIR_COLUMNS = ["model", "trials", "fooled", "fooling_rate", "ci_low", "ci_high", "boot_low",
                "boot_high"]
MIXED_COLUMNS = ["model", "votes", "log_odds", "sd", "typical_rate", "ci_low", "ci_high"]


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
