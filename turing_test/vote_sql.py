"""The Core statements of a vote (Store.vote, the survey's hot path), built once and reused.

May touch: nothing by itself. It only builds SQL expressions with bind parameters; Store.vote
runs them inside its one write transaction (the participant row locked FOR UPDATE first).
"""
from __future__ import annotations

from sqlalchemy import bindparam, func, select, update

from .models import Assignment, Participant, Stimulus, Survey, Vote

_VOTE_STATEMENTS: dict = {}


def _vote_statements() -> dict:
    """The vote's Core statements, built once (with bind parameters) and reused, so that a vote
    spends no time constructing SQL expressions or their cache keys."""
    if not _VOTE_STATEMENTS:
        P, A, S, SV, V = (Participant.__table__, Assignment.__table__, Stimulus.__table__,
                          Survey.__table__, Vote.__table__)
        _VOTE_STATEMENTS.update(
            participant=select(P.c.id, P.c.survey_id, P.c.n_trials, P.c.n_practice,
                               P.c.next_position, SV.c.exposure_ms, SV.c.completion_code,
                               SV.c.completion_url, SV.c.paradigm)
            .join(SV, P.c.survey_id == SV.c.id).where(P.c.id == bindparam("pid"))
            .with_for_update(of=P),
            assignments=select(A.c.id, A.c.position, A.c.stimulus_id, A.c.token, A.c.practice,
                               A.c.shown_at, S.c.kind).join(S, A.c.stimulus_id == S.c.id)
            .where(A.c.participant_id == bindparam("pid"),
                   A.c.position.in_([bindparam("pos"), bindparam("pos1")])),
            by_token=select(A.c.participant_id, A.c.position).where(A.c.token == bindparam("token")),
            insert_vote=V.insert(),
            # finished_at: set once, when the last trial is answered (None leaves it as it is)
            advance=update(P).where(P.c.id == bindparam("pid")).values(
                next_position=bindparam("pos1"),
                finished_at=func.coalesce(bindparam("finished_at", type_=P.c.finished_at.type),
                                          P.c.finished_at)),
            mark_shown=update(A).where(A.c.id == bindparam("aid")).values(shown_at=bindparam("now")),
        )
    return _VOTE_STATEMENTS
