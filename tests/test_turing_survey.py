"""Pure logic of the Turing test: assignment, balancing, practice, input checks, statistics."""
from __future__ import annotations

import math
import random
from collections import Counter

import pandas as pd
import pytest

from turing_test import stats
from turing_test import survey as sv
from turing_test.survey import StimulusInfo, SurveyError


def pool(n_sources=30, models=("m1", "m2"), attention=3, practice=2):
    out = []
    for i in range(n_sources):
        src = f"s{i}"
        is_practice = i < practice
        out.append(StimulusInfo(f"{src}-real", src, "real", is_practice))
        for m in models:
            out.append(StimulusInfo(f"{src}-{m}", src, "generated", is_practice))
        if not is_practice and i < practice + attention:
            out.append(StimulusInfo(f"{src}-att", src, "attention", False))
    return out


def test_plan_sees_each_source_once_practice_first():
    stim = pool()
    by_id = {s.id: s for s in stim}
    for seed in range(20):
        plan = sv.plan_trials(stim, max_trials=12, n_practice=2, n_attention=2, rng=random.Random(seed))
        sources = [by_id[t.stimulus_id].source for t in plan]
        assert len(sources) == len(set(sources)), "a source photo was shown twice"
        assert [t.practice for t in plan] == [True, True] + [False] * 12
        assert all(by_id[t.stimulus_id].practice for t in plan[:2])
        assert not any(by_id[t.stimulus_id].practice for t in plan[2:])
        kinds = Counter(by_id[t.stimulus_id].kind for t in plan[2:])
        assert kinds["attention"] == 2
        # practice shows one real and one colorized photo
        assert {by_id[t.stimulus_id].kind for t in plan[:2]} == {"real", "generated"}


def test_plan_cap_and_small_pool():
    stim = pool(n_sources=6, attention=1, practice=1)
    plan = sv.plan_trials(stim, max_trials=50, n_practice=3, n_attention=5, rng=random.Random(1))
    main = [t for t in plan if not t.practice]
    assert len(main) == 5  # 5 non-practice sources, each once
    assert sum(t.practice for t in plan) == 1  # only one practice source exists
    with pytest.raises(SurveyError, match="no photos"):
        sv.plan_trials([], max_trials=5)


def test_balancing_least_assigned_first():
    """Simulate many participants: every stimulus gets about the same number of assignments."""
    stim = pool(n_sources=20, models=("m1", "m2"), attention=0, practice=0)
    counts = Counter()
    rng = random.Random(0)
    for _ in range(120):
        infos = [StimulusInfo(s.id, s.source, s.kind, s.practice, counts[s.id]) for s in stim]
        for t in sv.plan_trials(infos, max_trials=10, rng=rng):
            counts[t.stimulus_id] += 1
    values = [counts[s.id] for s in stim]
    # 1200 assignments over 60 stimuli: 20 each; least-assigned-first keeps them within 1-2
    assert max(values) - min(values) <= 2, values
    assert sum(values) == 1200


def test_random_order_differs_between_participants():
    stim = pool(practice=0, attention=0)
    orders = {tuple(t.stimulus_id for t in sv.plan_trials(stim, max_trials=10, rng=random.Random(s)))
              for s in range(10)}
    assert len(orders) > 5


@pytest.mark.parametrize("value,expected", [("real", True), ("fake", False), (" REAL ", True),
                                            ("Fake", False)])
def test_parse_answer(value, expected):
    assert sv.parse_answer(value) is expected


@pytest.mark.parametrize("value", ["", "yes", "colorized", "true", None, 1, "real" * 10, ["real"]])
def test_parse_answer_refuses(value):
    with pytest.raises(SurveyError, match="real.*fake"):
        sv.parse_answer(value)


def test_participant_ids():
    assert sv.clean_participant_id("  5f1a2b3c4d5e6f7a8b9c0d1e ") == "5f1a2b3c4d5e6f7a8b9c0d1e"
    assert sv.clean_participant_id("") is None and sv.clean_participant_id(None) is None
    assert sv.clean_participant_id("anna.m@uni-x") == "anna.m@uni-x"
    with pytest.raises(SurveyError, match="too long"):
        sv.clean_participant_id("x" * 65)
    with pytest.raises(SurveyError, match="too long"):
        sv.clean_participant_id("x" * 100_000)
    for bad in ("<script>", "a b", "a;drop table", "é"):
        with pytest.raises(SurveyError):
            sv.clean_participant_id(bad)
    assert sv.parse_url_params("PROLIFIC_PID=abc123&STUDY_ID=s1&SESSION_ID=x9&other=1") == {
        "PROLIFIC_PID": "abc123", "STUDY_ID": "s1", "SESSION_ID": "x9"}
    with pytest.raises(SurveyError):
        sv.parse_url_params("PROLIFIC_PID=" + "a" * 80)


def test_tokens():
    assert sv.clean_token("") is None and sv.clean_token(None) is None
    assert sv.clean_token("0123abcd") == "0123abcd"
    for bad in ("xyz", "0" * 65, "'; --", 5):
        with pytest.raises(SurveyError):
            sv.clean_token(bad)


def test_settings_checked():
    ok = sv.check_settings(exposure_ms=1500, max_trials=30, n_practice=2, n_attention=3,
                           completion_code="C1X2", completion_url="https://app.prolific.com/x?cc=C1X2")
    assert ok["exposure_ms"] == 1500 and ok["completion_code"] == "C1X2"
    for bad in (dict(exposure_ms=-1), dict(max_trials=0), dict(max_trials=2.5),
                dict(completion_code="no spaces"), dict(completion_url="javascript:alert(1)"),
                dict(n_practice="many")):
        args = dict(exposure_ms=1000, max_trials=20, n_practice=2, n_attention=2)
        args.update(bad)
        with pytest.raises(SurveyError):
            sv.check_settings(**args)


def test_end_message_and_correctness():
    assert sv.is_correct("real", True) and sv.is_correct("generated", False)
    assert sv.is_correct("attention", False) and not sv.is_correct("attention", True)
    msg = sv.end_message(n_correct=7, n_counted=10, completion_code="ABC123")
    assert "7 of 10" in msg and "70%" in msg and "ABC123" in msg
    assert "correct" in sv.practice_feedback("real", True)
    assert "not quite" in sv.practice_feedback("generated", True)


# --- statistics --------------------------------------------------------------------------------

def test_wilson_interval_known_values():
    lo, hi = stats.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = stats.wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    lo, hi = stats.wilson_interval(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.8389, abs=1e-4)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))


def _votes(rows):
    return pd.DataFrame(rows, columns=["participant", "stimulus", "source", "kind", "model",
                                       "answer_real", "response_ms", "voted_at", "practice"])


def test_stats_tables_and_exclusion():
    rows = []
    t = pd.Timestamp("2026-01-01", tz="UTC")
    # p1: careful; p2: says "real" to everything, fails the attention check -> excluded
    for p, ans in (("p1", None), ("p2", True)):
        rows.append((p, "pr", "s0", "real", None, True, 900, t, True))  # practice: never counted
        rows.append((p, "r1", "s1", "real", None, True if ans is None else ans, 1000, t, False))
        rows.append((p, "g1", "s2", "generated", "m1", True if ans is None else ans, 1200, t, False))
        rows.append((p, "g2", "s3", "generated", "m1", False if ans is None else ans, 800, t, False))
        rows.append((p, "g3", "s4", "generated", "m2", False if ans is None else ans, 700, t, False))
        rows.append((p, "a1", "s5", "attention", None, False if ans is None else ans, 600, t, False))
    df = _votes(rows)
    parts = stats.participant_table(df).set_index("participant")
    assert parts.loc["p1", "trials"] == 5 and parts.loc["p1", "attention_passed"] == 1
    assert not parts.loc["p1", "excluded"] and parts.loc["p2", "excluded"]
    assert parts.loc["p1", "accuracy"] == pytest.approx(4 / 5)
    assert parts.loc["p1", "median_response_ms"] == 800
    models = stats.model_table(df).set_index("model")
    assert models.loc["m1", "votes"] == 2 and models.loc["m1", "real_votes"] == 1
    assert models.loc["m1", "fooling_rate"] == pytest.approx(0.5)
    lo, hi = stats.wilson_interval(1, 2)
    assert models.loc["m1", "ci_low"] == pytest.approx(lo) and models.loc["m1", "ci_high"] == pytest.approx(hi)
    assert models.loc["m2", "fooling_rate"] == 0
    real = stats.real_table(df)
    assert real["votes"].iloc[0] == 1 and real["judged_real_rate"].iloc[0] == 1.0
    # with p2 allowed one failure, p2 counts again
    models2 = stats.model_table(df, max_attention_failures=1).set_index("model")
    assert models2.loc["m1", "votes"] == 4
    s = stats.summary(df)
    assert s["excluded"] == ["p2"] and s["n_practice_votes"] == 2 and s["n_votes"] == 10
    images = stats.image_table(df)
    assert list(images.columns[:3]) == ["stimulus", "source", "model"]
    assert images["fooling_rate"].is_monotonic_decreasing


def test_stats_empty():
    s = stats.summary(_votes([]))
    assert s["n_votes"] == 0 and s["models"].empty and s["participants"].empty
