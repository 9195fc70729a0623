"""The survey's pure logic: input checks, trial assignment, practice, scoring, completion.

No database and no Gradio here; store.py and ui.py call these functions.

Assignment (per participant, at start):
- practice: up to ``n_practice`` stimuli of the sources reserved for practice (distinct sources,
  real and colorized mixed), shown first with feedback and not counted;
- counted trials: at most ``max_trials``, each source photo at most once (never its real and a
  colorized version, nor two models' versions), up to ``n_attention`` of them attention checks;
  stimuli are taken least-assigned first (ties broken at random) so that votes spread evenly over
  the pool, then shown in a random order;
- repeats: up to ``n_repeats`` of the counted photos that have a twin (the same image under
  another id, made by the pool for some sources) are shown a second time, at least REPEAT_GAP
  trials later, to check that the participant answers them the same way (a consistency check
  whose right answer can be "real" as well as "colorized").
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

ANSWERS = {"real": True, "fake": False}
PAIR_ANSWERS = ("left", "right")  # the pair paradigm: which of the two photos is colorized
PARADIGMS = ("single", "pair")
MAX_ID_LEN = 64
MAX_TOKEN_LEN = 64
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@+\-]*$")
MAX_TRIALS_LIMIT = 500
MAX_EXPOSURE_MS = 60_000
REPEAT_GAP = 3  # trials between a photo and its repeat, at least


class SurveyError(ValueError):
    """A request the survey refuses, with a message meant for the participant or the API caller."""


@dataclass(frozen=True)
class StimulusInfo:
    id: str
    source: str
    kind: str  # real | generated | attention
    practice: bool = False
    n_assigned: int = 0
    twin_of: str | None = None  # a repeat of that stimulus


@dataclass(frozen=True)
class PlannedTrial:
    stimulus_id: str
    practice: bool


def parse_answer(value) -> bool:
    """'real' -> True, 'fake' -> False (case and surrounding spaces ignored); anything else refused."""
    if not isinstance(value, str) or len(value) > 16:
        raise SurveyError('the answer must be "real" or "fake"')
    key = value.strip().lower()
    if key not in ANSWERS:
        raise SurveyError(f'unknown answer {value.strip()[:16]!r}: the answer must be "real" or "fake"')
    return ANSWERS[key]


def parse_any_answer(value) -> str:
    """An answer of either paradigm: "real" / "fake" (one photo) or "left" / "right" (a pair:
    the side that is colorized); anything else refused."""
    key = value.strip().lower() if isinstance(value, str) and len(value) <= 16 else None
    if key in ANSWERS or key in PAIR_ANSWERS:
        return key
    shown = value.strip()[:16] if isinstance(value, str) else type(value).__name__
    raise SurveyError(f'unknown answer {shown!r}: the answer must be "real" or "fake" (or, when two '
                      'photos are shown, "left" or "right": the colorized one)')


def check_paradigm(value) -> str:
    v = (value or "single").strip().lower() if isinstance(value, str) or value is None else None
    if v not in PARADIGMS:
        raise SurveyError('the paradigm must be "single" (one photo: real or colorized?) or "pair" '
                          '(a real photo and its colorization side by side: which is colorized?)')
    return v


def left_is_real(key: bytes, token: str) -> bool:
    """The side of the real photo in a pair trial: drawn from the trial's token with a key of the
    database, so that it is random, the same on every showing and after a restart, and not
    computable by the participant."""
    import hashlib
    import hmac
    return bool(hmac.new(key, token.encode(), hashlib.sha256).digest()[0] & 1)


def pair_fooled(answer: str, real_on_left: bool) -> bool:
    """A pair answer names the side thought colorized: fooled when that is the real photo."""
    return (answer == "left") == real_on_left


def pair_feedback(fooled: bool, real_on_left: bool) -> str:
    side = "right" if real_on_left else "left"
    if fooled:
        return f"Practice: not quite, the {side} one was colorized by a computer."
    return f"Practice: correct, the {side} one was colorized by a computer."


def clean_participant_id(value, what: str = "participant id") -> str | None:
    """An optional id (Prolific PID, study or session id, or one typed): None when empty; refused
    when longer than 64 characters or with characters other than letters, digits and _.:@+-."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SurveyError(f"the {what} must be text")
    if len(value) > 4 * MAX_ID_LEN:
        raise SurveyError(f"the {what} is too long ({len(value)} characters; at most {MAX_ID_LEN})")
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_ID_LEN:
        raise SurveyError(f"the {what} is too long ({len(value)} characters; at most {MAX_ID_LEN})")
    if not _ID_RE.match(value):
        raise SurveyError(f"the {what} may contain only letters, digits and the characters _ . : @ + -")
    return value


def clean_token(value) -> str | None:
    """The trial token sent with each image (optional in API calls)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TOKEN_LEN:
        raise SurveyError("invalid trial token")
    value = value.strip()
    if value and not re.fullmatch(r"[0-9a-f]{1,64}", value):
        raise SurveyError("invalid trial token")
    return value or None


def clean_resume_secret(value) -> str | None:
    """The resume secret a participant's browser keeps (48 hex characters), or None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{32,64}", value.strip()):
        raise SurveyError("invalid resume secret: start again without it")
    return value.strip()


def parse_url_params(query: str | None) -> dict:
    """'PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=..' (the page's query string) -> cleaned dict."""
    from urllib.parse import parse_qs
    out = {}
    if not query:
        return out
    if not isinstance(query, str) or len(query) > 2048:
        raise SurveyError("the URL parameters are too long")
    q = parse_qs(query.lstrip("?"), keep_blank_values=False)
    for key, name in (("PROLIFIC_PID", "participant id"), ("STUDY_ID", "study id"),
                      ("SESSION_ID", "session id")):
        if q.get(key):
            out[key] = clean_participant_id(q[key][0], name)
    return out


def interval_width(k: int, n: int, z: float = 1.959963984540054) -> float:
    """Total width of the Wilson score interval of k successes in n (1.0 for n == 0)."""
    if n <= 0:
        return 1.0
    p = k / n
    return 2 * z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def check_settings(*, exposure_ms, max_trials, n_practice, n_attention, completion_code="",
                   completion_url="", n_repeats=2, stop_width=0.0) -> dict:
    """Validate survey settings from the admin tab; returns them cleaned."""
    def as_int(v, name, lo, hi):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise SurveyError(f"{name} must be a number") from None
        if f != int(f) or not lo <= f <= hi:
            raise SurveyError(f"{name} must be a whole number from {lo} to {hi}")
        return int(f)

    code = (completion_code or "").strip()
    if len(code) > 64 or (code and not re.fullmatch(r"[A-Za-z0-9_\-]+", code)):
        raise SurveyError("the completion code may have at most 64 letters, digits, _ or -")
    url = (completion_url or "").strip()
    if len(url) > 500 or (url and not re.match(r"^https?://[^\s<>\"']+$", url)):
        raise SurveyError("the completion URL must be an http(s) address")
    return dict(exposure_ms=as_int(exposure_ms, "exposure (ms)", 0, MAX_EXPOSURE_MS),
                max_trials=as_int(max_trials, "trials per participant", 1, MAX_TRIALS_LIMIT),
                n_practice=as_int(n_practice, "practice trials", 0, 20),
                n_attention=as_int(n_attention, "attention checks", 0, 50),
                n_repeats=as_int(2 if n_repeats is None else n_repeats, "repeated photos", 0, 20),
                stop_width=_as_width(stop_width),
                completion_code=code, completion_url=url)


def _as_width(v) -> float:
    try:
        f = float(v or 0)
    except (TypeError, ValueError):
        raise SurveyError("the interval width to stop at must be a number from 0 (never stop) to 1") from None
    if not 0 <= f <= 1:
        raise SurveyError("the interval width to stop at must be from 0 (never stop) to 1")
    return f


def _least_assigned_first(items: list[StimulusInfo], rng: random.Random) -> list[StimulusInfo]:
    """Least-assigned stimuli first; among equals, those whose source photo has been shown least
    (so that later participants still find a least-assigned version of every source); then at
    random."""
    per_source: dict[str, int] = {}
    for s in items:
        per_source[s.source] = per_source.get(s.source, 0) + s.n_assigned
    keyed = [(s.n_assigned, per_source[s.source], rng.random(), s) for s in items]
    keyed.sort(key=lambda t: t[:3])
    return [t[3] for t in keyed]


def plan_trials(stimuli: list[StimulusInfo], *, max_trials: int, n_practice: int = 0,
                n_attention: int = 0, n_repeats: int = 0, paradigm: str = "single",
                rng: random.Random | None = None) -> list[PlannedTrial]:
    """The sequence one participant will see: practice trials first, then counted trials, with
    up to n_repeats repeats among them (beyond max_trials).

    Each source photo appears at most once in the whole sequence, its repeat apart. Raises
    SurveyError when the pool has no counted stimulus at all.

    paradigm "pair": every trial is a colorized stimulus (attention: the wrongly colored one, a
    catch pair) shown beside its source's real photo, so real stimuli are never trials of their own.
    """
    rng = rng or random.Random()
    twins = {s.twin_of: s for s in stimuli if s.twin_of}
    stimuli = [s for s in stimuli if not s.twin_of]
    if paradigm == "pair":
        stimuli = [s for s in stimuli if s.kind != "real"]
        twins = {k: v for k, v in twins.items() if v.kind != "real"}
    practice_pool = [s for s in stimuli if s.practice and s.kind in ("real", "generated")]
    main_pool = [s for s in stimuli if not s.practice]
    used_sources: set[str] = set()

    practice: list[StimulusInfo] = []
    if paradigm == "pair":
        for s in _least_assigned_first(practice_pool, rng):
            if len(practice) < n_practice and s.source not in used_sources:
                practice.append(s)
                used_sources.add(s.source)
    elif n_practice > 0 and practice_pool:
        # alternate real and colorized so that the feedback shows both kinds
        by_kind = {k: _least_assigned_first([s for s in practice_pool if s.kind == k], rng)
                   for k in ("real", "generated")}
        order = ["real", "generated"] if rng.random() < 0.5 else ["generated", "real"]
        i = 0
        while len(practice) < n_practice and any(by_kind.values()):
            kind = order[i % 2]
            i += 1
            while by_kind[kind]:
                s = by_kind[kind].pop(0)
                if s.source not in used_sources:
                    practice.append(s)
                    used_sources.add(s.source)
                    break

    chosen: list[StimulusInfo] = []
    attention = _least_assigned_first([s for s in main_pool if s.kind == "attention"], rng)
    for s in attention:
        if len(chosen) >= min(n_attention, max_trials):
            break
        if s.source not in used_sources:
            chosen.append(s)
            used_sources.add(s.source)
    rest = _least_assigned_first([s for s in main_pool if s.kind in ("real", "generated")], rng)
    for s in rest:
        if len(chosen) >= max_trials:
            break
        if s.source not in used_sources:
            chosen.append(s)
            used_sources.add(s.source)
    if not any(s.kind in ("real", "generated") for s in chosen):
        raise SurveyError("this survey has no photos to show yet: the researcher must build its pool")
    rng.shuffle(chosen)
    # repeats: photos with a twin, moved (if need be) early enough for the repeat to come at
    # least REPEAT_GAP trials later, then their twins inserted after them
    last = len(chosen) - REPEAT_GAP  # the latest position a repeated photo may take
    able = [i for i, s in enumerate(chosen) if s.id in twins]
    picked = rng.sample(able, min(max(0, n_repeats), len(able))) if last >= 0 else []
    slots = [j for j in range(last + 1) if j not in picked]
    rng.shuffle(slots)
    for k, i in enumerate(picked):
        if i > last and slots:
            j = slots.pop()
            chosen[i], chosen[j] = chosen[j], chosen[i]
            picked[k] = j
    sequence = [s.id for s in chosen]
    for i in sorted(picked, reverse=True):
        sequence.insert(rng.randint(i + REPEAT_GAP, len(sequence)), twins[chosen[i].id].id)
    return ([PlannedTrial(s.id, True) for s in practice]
            + [PlannedTrial(sid, False) for sid in sequence])


def is_correct(kind: str, answer_real: bool) -> bool:
    """A real photo is answered 'real'; a colorized one (or an attention check) 'fake'."""
    return answer_real == (kind == "real")


def practice_feedback(kind: str, answer_real: bool) -> str:
    truth = "a real color photo" if kind == "real" else "colorized by a computer"
    if is_correct(kind, answer_real):
        return f"Practice: correct, that one was {truth}."
    return f"Practice: not quite, that one was {truth}."


def score_text(n_correct: int, n_counted: int) -> str:
    if n_counted == 0:
        return "You made no counted judgments."
    return (f"You judged {n_correct} of {n_counted} photos correctly "
            f"({100.0 * n_correct / n_counted:.0f}%).")


def end_message(*, n_correct: int, n_counted: int, completion_code: str = "",
                completion_url: str = "") -> str:
    """The end screen (Markdown)."""
    lines = ["## Thank you, you are done!", "", score_text(n_correct, n_counted), ""]
    if completion_code:
        lines += [f"Your completion code: **{completion_code}**", ""]
    if completion_url:
        lines += [f"[Return to the study site to confirm your participation]({completion_url})", ""]
    return "\n".join(lines)


def progress_text(position: int, n_practice: int, n_total: int) -> str:
    """'Practice 1 of 2' / 'Photo 3 of 20' for the 0-based position in the whole sequence."""
    if position < n_practice:
        return f"**Practice {position + 1} of {n_practice}** (not counted)"
    return f"**Photo {position - n_practice + 1} of {n_total - n_practice}**"
