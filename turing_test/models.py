"""ORM tables of the Turing test (SQLAlchemy 2.0 typed mappings).

surveys 1-n stimuli; surveys 1-n participants 1-n assignments (the participant's planned
sequence, practice first) 1-0..1 votes. A vote is unique per (participant, stimulus) and per
assignment, so a double click or a replayed request can never count twice.
"""
from __future__ import annotations

import secrets
import string
from datetime import datetime, timezone

from sqlalchemy import (Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

KINDS = ("real", "generated", "attention")
ID_BYTES = 8  # random ids: 16 hex characters


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return secrets.token_hex(ID_BYTES)


def new_completion_code() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes: they were stored in UTC."""
    if dt is None:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    image_size: Mapped[int] = mapped_column(Integer, default=256)
    # settings a researcher can change on the admin tab
    exposure_ms: Mapped[int] = mapped_column(Integer, default=1000)  # 0: shown until answered
    max_trials: Mapped[int] = mapped_column(Integer, default=20)  # counted trials per participant
    n_practice: Mapped[int] = mapped_column(Integer, default=2)
    n_attention: Mapped[int] = mapped_column(Integer, default=2)  # attention checks per participant
    # "single": one photo, real or colorized?  "pair": a real photo and its colorization side by
    # side, which is colorized? (Zhang et al. 2016); chosen when the pool is built
    paradigm: Mapped[str | None] = mapped_column(String(8), nullable=True, default="single")
    # stop assigning a model's photos once its 95% Wilson interval is at most this wide (0/None: never)
    stop_width: Mapped[float | None] = mapped_column(Float, nullable=True)
    # repeats of an earlier photo per participant (consistency checks; None: a survey made before)
    n_repeats: Mapped[int | None] = mapped_column(Integer, nullable=True, default=2)
    completion_code: Mapped[str] = mapped_column(String(64), default=new_completion_code)
    completion_url: Mapped[str] = mapped_column(String(500), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    # the exclusion rules applied in the results (JSON of turing_test.stats.ExclusionRules;
    # None: the defaults)
    exclusion_rules: Mapped[str | None] = mapped_column(Text, nullable=True)

    stimuli: Mapped[list["Stimulus"]] = relationship(back_populates="survey")


class Stimulus(Base):
    __tablename__ = "stimuli"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # random
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(255))  # the source photo's name (admin only)
    kind: Mapped[str] = mapped_column(String(16))  # real | generated | attention
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)  # generated only
    practice: Mapped[bool] = mapped_column(Boolean, default=False)
    # a repeat: the same image as stimulus `twin_of`, shown later to the participant who saw that
    # one, to check that they answer it the same way (its votes never count in the fooling rates)
    twin_of: Mapped[str | None] = mapped_column(String(32), nullable=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # generated stimuli: how far the colorization is from its real photo (as participants see
    # both: after the encoder), to set beside the human fooling rate
    psnr: Mapped[float | None] = mapped_column(Float, nullable=True)
    de2000: Mapped[float | None] = mapped_column(Float, nullable=True)
    colorfulness: Mapped[float | None] = mapped_column(Float, nullable=True)  # ratio to the real one
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    image: Mapped[bytes] = deferred(mapped_column(LargeBinary))  # the encoded stimulus (pool.encode)

    survey: Mapped[Survey] = relationship(back_populates="stimuli")

    __table_args__ = (Index("ix_stimuli_survey_source", "survey_id", "source"),)


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # random
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # PROLIFIC_PID or typed
    study_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    n_trials: Mapped[int] = mapped_column(Integer, default=0)  # planned, practice included
    n_practice: Mapped[int] = mapped_column(Integer, default=0)  # the first n_trials are practice
    next_position: Mapped[int] = mapped_column(Integer, default=0)  # first assignment not voted
    # sha256 of the resume secret kept in the participant's browser: resuming needs the secret,
    # never the id alone (columns added after the first release are nullable: db.add_missing_columns)
    resume_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_address: Mapped[str | None] = mapped_column(String(64), nullable=True)  # who started it

    __table_args__ = (UniqueConstraint("survey_id", "external_id", name="uq_participant_external"),)


class Assignment(Base):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    stimulus_id: Mapped[str] = mapped_column(ForeignKey("stimuli.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    practice: Mapped[bool] = mapped_column(Boolean, default=False)
    token: Mapped[str] = mapped_column(String(32), unique=True, default=new_id)  # sent with the image
    shown_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (UniqueConstraint("participant_id", "position", name="uq_assignment_position"),
                      UniqueConstraint("participant_id", "stimulus_id", name="uq_assignment_stimulus"))


class Vote(Base):
    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    stimulus_id: Mapped[str] = mapped_column(ForeignKey("stimuli.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    answer_real: Mapped[bool] = mapped_column(Boolean)
    response_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the server's own time from handing out the image to receiving the vote
    server_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    voted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    practice: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("participant_id", "stimulus_id", name="uq_vote_participant_stimulus"),)


class Secret(Base):
    """Random keys of this database, made on first use (so that every process and every restart
    sees the same): the salt of stored client addresses, the key of the browser-side state."""
    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
