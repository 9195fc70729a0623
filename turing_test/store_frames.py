"""The store's tables as pandas frames, for the exports and the statistics: votes, participants,
stimuli and the stimuli's image metrics (Store.votes_frame and friends delegate here).

May touch: the database for reading only, each frame in one read transaction (store.read());
writes nothing. pandas is imported on first use, not when the store is.
"""
from __future__ import annotations

from sqlalchemy import select

from . import VOTE_COLUMNS
from .models import Participant, Stimulus, Survey, Vote, as_utc


def _rows(store, q) -> list[tuple]:
    with store.read() as s:
        rows = s.execute(q).all()
    return [tuple(r) for r in rows]


def _utc_column(pd, values):
    return pd.to_datetime(pd.Series([as_utc(v) for v in values], dtype=object), utc=True)


def votes_frame(store, survey_name: str | None = None):
    """One row per vote (see turing_test.export_votes)."""
    import pandas as pd
    q = (select(Vote.participant_id, Vote.stimulus_id, Stimulus.source, Stimulus.kind,
                Stimulus.model, Vote.answer_real, Vote.response_ms, Vote.voted_at, Vote.practice,
                Vote.server_ms, Stimulus.twin_of, Survey.paradigm)
         .join(Stimulus, Vote.stimulus_id == Stimulus.id)
         .join(Survey, Stimulus.survey_id == Survey.id).order_by(Vote.id))
    if survey_name:
        q = q.where(Survey.name == survey_name)
    df = pd.DataFrame(_rows(store, q), columns=VOTE_COLUMNS[:-1])  # fooled: below
    df["answer_real"] = df["answer_real"].astype(bool)
    df["practice"] = df["practice"].astype(bool)
    df["response_ms"] = pd.array(df["response_ms"].tolist(), dtype="Int64")
    df["server_ms"] = pd.array(df["server_ms"].tolist(), dtype="Int64")
    df["voted_at"] = _utc_column(pd, df["voted_at"])
    df["model"] = df["model"].astype(object).where(df["model"].notna(), None)
    df["repeat_of"] = df["repeat_of"].astype(object).where(df["repeat_of"].notna(), None)
    # the pair paradigm: kind "pair" (a colorization beside its real photo) or "pair_catch"
    # (the wrongly colored version beside it); fooled = the real photo was called colorized
    df["paradigm"] = [p or "single" for p in df["paradigm"]]
    pair = df["paradigm"] == "pair"
    df.loc[pair, "kind"] = df.loc[pair, "kind"].map({"generated": "pair", "attention": "pair_catch"})
    df["fooled"] = pd.Series([bool(a) if p else None for a, p in zip(df["answer_real"], pair)],
                             dtype=object, index=df.index)
    return df[VOTE_COLUMNS]


def stimulus_metrics(store, survey_name: str):
    """Per generated stimulus: stimulus, psnr, de2000, colorfulness (ratio to the real one)."""
    import pandas as pd
    q = (select(Stimulus.id, Stimulus.psnr, Stimulus.de2000, Stimulus.colorfulness)
         .join(Survey, Stimulus.survey_id == Survey.id)
         .where(Survey.name == survey_name, Stimulus.kind == "generated", Stimulus.twin_of.is_(None)))
    return pd.DataFrame(_rows(store, q),
                        columns=["stimulus", "psnr", "de2000", "colorfulness"]).dropna(how="all",
                                                                                      subset=["psnr", "de2000", "colorfulness"])


def participants_frame(store, survey_name: str | None = None):
    import pandas as pd
    q = (select(Participant.id, Survey.name, Participant.external_id, Participant.study_id,
                Participant.session_id, Participant.started_at, Participant.finished_at,
                Participant.n_trials, Participant.n_practice, Participant.next_position)
         .join(Survey, Participant.survey_id == Survey.id).order_by(Participant.started_at))
    if survey_name:
        q = q.where(Survey.name == survey_name)
    df = pd.DataFrame(_rows(store, q), columns=[
        "participant", "survey", "external_id", "study_id", "session_id", "started_at",
        "finished_at", "n_trials", "n_practice", "answered"])
    for c in ("started_at", "finished_at"):
        df[c] = _utc_column(pd, df[c])
    return df


def stimuli_frame(store, survey_name: str | None = None):
    import pandas as pd
    q = select(Stimulus.id, Survey.name, Stimulus.source, Stimulus.kind, Stimulus.model,
               Stimulus.practice, Stimulus.width, Stimulus.height, Stimulus.twin_of).join(
        Survey, Stimulus.survey_id == Survey.id).order_by(Stimulus.source, Stimulus.kind)
    if survey_name:
        q = q.where(Survey.name == survey_name)
    return pd.DataFrame(_rows(store, q), columns=[
        "stimulus", "survey", "source", "kind", "model", "practice", "width", "height",
        "repeat_of"])
