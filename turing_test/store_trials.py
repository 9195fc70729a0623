"""The participant's screen (a TrialView) from the rows of their trial: the image, its pair
partner, or the end screen with the score and the completion code.

May touch: the database for reading only, through the session `s` of the caller's transaction
(Store.start / current / vote), plus an assignment's shown_at when current_view(mark_shown=True)
asks for it; it opens no transaction and commits nothing.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from . import survey
from .models import Assignment, Participant, Stimulus, Survey, Vote, utcnow
from .store_views import TrialView
from .survey import SurveyError


def trial_view(store, s, p, position: int, a) -> TrialView:
    """The view at `position` of participant row `p` (joined with its survey's settings),
    `a` the assignment row at that position (None at the end)."""
    view = TrialView(participant_id=p.id, survey_id=p.survey_id, position=position,
                     n_trials=p.n_trials, n_practice=p.n_practice, exposure_ms=p.exposure_ms,
                     paradigm=p.paradigm or "single")
    if position >= p.n_trials or a is None:
        return _end_view(s, view, p.completion_code, p.completion_url)
    view.stimulus_id, view.token, view.practice = a.stimulus_id, a.token, bool(a.practice)
    return _with_partner(store, s, view)


def _with_partner(store, s, view: TrialView) -> TrialView:
    """Pair trials: the real photo of the same source, and its side."""
    if view.paradigm != "pair" or not view.stimulus_id:
        return view
    src = s.execute(select(Stimulus.survey_id, Stimulus.source).where(
        Stimulus.id == view.stimulus_id)).one()
    view.partner_id = s.scalar(select(Stimulus.id).where(
        Stimulus.survey_id == src.survey_id, Stimulus.source == src.source,
        Stimulus.kind == "real", Stimulus.twin_of.is_(None)).limit(1))
    if view.partner_id is None:
        raise SurveyError("this pair has no real photo: the researcher must rebuild the pool")
    view.real_on_left = survey.left_is_real(store.pair_key(), view.token)
    return view


def _end_view(s, view: TrialView, completion_code: str, completion_url: str) -> TrialView:
    """The end screen: the participant's score and the completion code."""
    view.finished = True
    n_correct, n_counted = score(s, view.participant_id)
    view.end_message = survey.end_message(n_correct=n_correct, n_counted=n_counted,
                                          completion_code=completion_code,
                                          completion_url=completion_url)
    return view


def score(s, participant_id: str) -> tuple[int, int]:
    rows = s.execute(select(Stimulus.kind, Vote.answer_real).join(
        Stimulus, Vote.stimulus_id == Stimulus.id).where(
        Vote.participant_id == participant_id, Vote.practice.is_(False))).all()
    return sum(survey.is_correct(k, a) for k, a in rows), len(rows)


def current_view(store, s, sv: Survey, p: Participant, *, now: datetime | None = None,
                 mark_shown: bool = False) -> TrialView:
    """Where participant `p` of survey `sv` is now; mark_shown: their current image is handed out
    now (its assignment's shown_at is set, in the caller's transaction)."""
    view = TrialView(participant_id=p.id, survey_id=sv.id, position=p.next_position,
                     n_trials=p.n_trials, n_practice=p.n_practice, exposure_ms=sv.exposure_ms,
                     paradigm=sv.paradigm or "single")
    if p.next_position >= p.n_trials:
        return _end_view(s, view, sv.completion_code, sv.completion_url)
    a = s.scalar(select(Assignment).where(Assignment.participant_id == p.id,
                                          Assignment.position == p.next_position))
    if mark_shown:
        a.shown_at = now or utcnow()
    view.stimulus_id, view.token, view.practice = a.stimulus_id, a.token, a.practice
    return _with_partner(store, s, view)
