"""Everything the survey reads and writes, one transaction (``with Session.begin()``) per request.

A vote is committed before the next image is handed out: when :meth:`Store.vote` returns, the
vote is on disk (SQLite: WAL with synchronous=FULL; PostgreSQL: its commit). Requests that would
write something wrong (unknown answer, no session, a stimulus not assigned to this participant,
after the end) raise :class:`~turing_test.survey.SurveyError` and write nothing.
"""
from __future__ import annotations

import contextlib
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import Integer, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from . import VOTE_COLUMNS, db, survey
from .models import (Assignment, Base, Participant, Secret, Stimulus, Survey, Vote, as_utc,
                     new_id, utcnow)
from .survey import SurveyError

FAST_COMMIT_MS = 5.0  # see Store.writes_are_fast
STARTS_PER_ADDRESS_PER_HOUR = 20  # new participants from one client address (0: no limit)
SETTINGS = ("exposure_ms", "max_trials", "n_practice", "n_attention", "completion_code",
            "completion_url", "n_repeats", "stop_width")


class WriterBusy(Exception):
    """Store.write(wait=False) found the writer lock taken."""


@dataclass
class TrialView:
    """What the participant sees next: an image (stimulus_id, token) or the end screen."""
    participant_id: str
    survey_id: int
    position: int  # 0-based, in the whole sequence (practice included)
    n_trials: int
    n_practice: int
    exposure_ms: int
    stimulus_id: str | None = None  # None at the end
    token: str | None = None
    practice: bool = False
    feedback: str = ""  # after a practice trial
    finished: bool = False
    end_message: str = ""
    duplicate: bool = False  # the request repeated a vote already counted: nothing written
    resumed: bool = False
    resume_secret: str | None = None  # from start(): what the participant's browser keeps
    paradigm: str = "single"
    partner_id: str | None = None  # pair trials: the real photo shown beside stimulus_id
    real_on_left: bool | None = None  # pair trials: the side of the real photo

    @property
    def progress(self) -> str:
        if self.finished:
            return "**Done**"
        return survey.progress_text(self.position, self.n_practice, self.n_trials)


@dataclass
class NewStimulus:
    source: str
    kind: str
    image: bytes
    width: int
    height: int
    model: str | None = None
    practice: bool = False
    id: str = field(default_factory=new_id)
    twin_of: str | None = None  # a repeat of that stimulus (same image)
    psnr: float | None = None  # generated: against the real version
    de2000: float | None = None
    colorfulness: float | None = None


class Store:
    def __init__(self, url: str | None = None, create: bool = True):
        self.url = db.normalize_url(url or db.default_db_url())
        self.engine = db.get_engine(self.url)
        self.sqlite = db.is_sqlite(self.engine)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.ReadSession = sessionmaker(db.reader(self.engine), expire_on_commit=False)
        # SQLite has one writer at a time: queue this process's writers on a lock (first come,
        # first served, no busy-wait sleeps); other processes wait on the busy timeout.
        self._write_lock = threading.Lock() if self.sqlite else None
        self.commit_ms = 0.0  # running mean duration of a commit (see writes_are_fast)
        if create:
            Base.metadata.create_all(self.engine)
            db.add_missing_columns(self.engine, Base.metadata)
        self.starts_per_hour = STARTS_PER_ADDRESS_PER_HOUR
        self._secrets: dict[str, str] = {}
        if create:  # made now, so that no request has to write them in the middle of another
            for name in ("address_salt", "pair_sides", "browser_state"):
                self.secret(name)

    def __repr__(self):
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextlib.contextmanager
    def write(self, wait: bool = True):
        """A write transaction: ``with store.write() as s: ...`` commits at the end.

        wait=False: raise WriterBusy at once if another thread of this process is writing
        (SQLite only; PostgreSQL has no process-wide writer lock)."""
        lock = self._write_lock
        if lock is not None and not lock.acquire(blocking=wait):
            raise WriterBusy("another request is writing")
        try:
            with self.Session.begin() as s:
                yield s
                t_commit = time.perf_counter()
            # a running mean of how long a commit takes (SQLite: the fsync of the WAL)
            self.commit_ms = 0.9 * self.commit_ms + 0.1 * (time.perf_counter() - t_commit) * 1000
        finally:
            if lock is not None:
                lock.release()

    def secret(self, name: str) -> str:
        """A random key of this database (made on first use, the same for every process)."""
        cached = self._secrets.get(name)
        if cached:
            return cached
        with self.read() as s:
            value = s.scalar(select(Secret.value).where(Secret.name == name))
        if value is None:
            try:
                with self.write() as s:
                    s.add(Secret(name=name, value=secrets.token_hex(32)))
            except IntegrityError:  # another process made it first
                pass
            with self.read() as s:
                value = s.scalar(select(Secret.value).where(Secret.name == name))
        self._secrets[name] = value
        return value

    def salt(self) -> bytes:
        return self.secret("address_salt").encode()

    def writes_are_fast(self, limit_ms: float = FAST_COMMIT_MS) -> bool:
        """SQLite, and its commits currently take under limit_ms on average: a short write can
        then run on a server's event loop rather than in a worker thread."""
        return self.sqlite and self.commit_ms < limit_ms

    def read(self):
        return self.ReadSession.begin()

    # --- surveys ---------------------------------------------------------------------------

    def survey_names(self) -> list[str]:
        with self.read() as s:
            return list(s.scalars(select(Survey.name).order_by(Survey.created_at, Survey.id)))

    def has_surveys(self) -> bool:
        with self.read() as s:
            return s.scalar(select(func.count(Survey.id))) > 0

    def get_survey(self, name: str) -> dict | None:
        with self.read() as s:
            sv = s.scalar(select(Survey).where(Survey.name == name))
            return _survey_dict(sv) if sv else None

    def active_survey(self) -> dict | None:
        with self.read() as s:
            sv = s.scalar(select(Survey).where(Survey.active.is_(True))
                          .order_by(Survey.created_at.desc(), Survey.id.desc()).limit(1))
            return _survey_dict(sv) if sv else None

    def list_surveys(self) -> list[dict]:
        """Every survey with its settings and counts."""
        with self.read() as s:
            out = []
            for sv in s.scalars(select(Survey).order_by(Survey.created_at, Survey.id)):
                d = _survey_dict(sv)
                kinds = dict(s.execute(select(Stimulus.kind, func.count()).where(
                    Stimulus.survey_id == sv.id, Stimulus.twin_of.is_(None)).group_by(Stimulus.kind)).all())
                d["stimuli"] = {k: int(kinds.get(k, 0)) for k in ("real", "generated", "attention")}
                d["stimuli"]["repeats"] = int(s.scalar(select(func.count(Stimulus.id)).where(
                    Stimulus.survey_id == sv.id, Stimulus.twin_of.is_not(None))) or 0)
                d["sources"] = int(s.scalar(select(func.count(func.distinct(Stimulus.source))).where(
                    Stimulus.survey_id == sv.id)) or 0)
                d["participants"] = int(s.scalar(select(func.count(Participant.id)).where(
                    Participant.survey_id == sv.id)) or 0)
                d["finished"] = int(s.scalar(select(func.count(Participant.id)).where(
                    Participant.survey_id == sv.id, Participant.finished_at.is_not(None))) or 0)
                d["votes"] = int(s.scalar(select(func.count(Vote.id)).join(
                    Participant, Vote.participant_id == Participant.id).where(
                    Participant.survey_id == sv.id)) or 0)
                out.append(d)
            return out

    def save_pool(self, name: str, stimuli: list[NewStimulus], *, image_size: int,
                  activate: bool = True, is_demo: bool = False, settings: dict | None = None,
                  only_if_no_survey: bool = False) -> dict | None:
        """Create the survey (or add to it) with these stimuli, all in one transaction.

        only_if_no_survey: write nothing (return None) when any survey exists already (the demo).
        """
        with self.write() as s:
            if only_if_no_survey and s.scalar(select(func.count(Survey.id))):
                return None
            sv = s.scalar(select(Survey).where(Survey.name == name))
            if sv is None:
                sv = Survey(name=name, image_size=image_size, is_demo=is_demo,
                            **(settings or {}))
                s.add(sv)
                s.flush()
            elif sv.image_size != image_size:
                raise SurveyError(f"survey {name!r} uses {sv.image_size} px stimuli; build with "
                                  f"--size {sv.image_size} or choose another survey name")
            for st in stimuli:
                if st.kind not in ("real", "generated", "attention"):
                    raise SurveyError(f"unknown stimulus kind {st.kind!r}")
                s.add(Stimulus(id=st.id, survey_id=sv.id, source=st.source[:255], kind=st.kind,
                               model=st.model, practice=st.practice, width=st.width,
                               height=st.height, image=st.image, twin_of=st.twin_of,
                               psnr=st.psnr, de2000=st.de2000, colorfulness=st.colorfulness))
            if activate:
                s.execute(update(Survey).where(Survey.id != sv.id).values(active=False))
                sv.active = True
            s.flush()
            return _survey_dict(sv)

    def sources_of(self, name: str) -> set[str]:
        with self.read() as s:
            return set(s.scalars(select(Stimulus.source).join(Survey).where(Survey.name == name)))

    def set_active(self, name: str) -> None:
        with self.write() as s:
            sv = s.scalar(select(Survey).where(Survey.name == name))
            if sv is None:
                raise SurveyError(f"there is no survey named {name!r}")
            s.execute(update(Survey).where(Survey.id != sv.id).values(active=False))
            sv.active = True

    def update_settings(self, name: str, *, active: bool | None = None,
                        exclusion_rules: dict | None = None, **settings) -> dict:
        """Change a survey's settings (checked by survey.check_settings); exclusion_rules: the
        dict of turing_test.stats.ExclusionRules (checked by the caller), None leaves them."""
        clean = survey.check_settings(**settings) if settings else {}
        with self.write() as s:
            sv = s.scalar(select(Survey).where(Survey.name == name))
            if sv is None:
                raise SurveyError(f"there is no survey named {name!r}")
            for k, v in clean.items():
                setattr(sv, k, v)
            if exclusion_rules is not None:
                sv.exclusion_rules = json.dumps(exclusion_rules, sort_keys=True)
            if active is True:
                s.execute(update(Survey).where(Survey.id != sv.id).values(active=False))
                sv.active = True
            elif active is False:
                sv.active = False
            s.flush()
            return _survey_dict(sv)

    def stimulus_image(self, stimulus_id: str) -> bytes:
        with self.read() as s:
            data = s.scalar(select(Stimulus.image).where(Stimulus.id == stimulus_id))
            if data is None:
                raise KeyError(stimulus_id)
            return bytes(data)

    def stimulus_images(self, ids) -> dict[str, bytes]:
        ids = list(ids)
        out = {}
        with self.read() as s:
            for i in range(0, len(ids), 500):
                for sid, data in s.execute(select(Stimulus.id, Stimulus.image).where(
                        Stimulus.id.in_(ids[i:i + 500]))):
                    out[sid] = bytes(data)
        return out

    # --- the participant flow ----------------------------------------------------------------

    def start(self, external_id: str | None = None, *, study_id: str | None = None,
              session_id: str | None = None, survey_name: str | None = None,
              rng: random.Random | None = None, resume_secret: str | None = None,
              client: str | None = None) -> TrialView:
        """A new participant of the active survey (or survey_name) with their planned trials, or
        where a participant left off: resuming takes the resume secret that start() handed to
        that participant's browser (view.resume_secret), never the participant id alone. A
        participant id already taken in this survey without its secret is refused.

        client: the client's address; at most `starts_per_hour` new participants per address and
        hour (a salted hash of it is stored, never the address)."""
        ext = survey.clean_participant_id(external_id)
        study_id = survey.clean_participant_id(study_id, "study id")
        session_id = survey.clean_participant_id(session_id, "session id")
        secret = survey.clean_resume_secret(resume_secret)
        where = _address_hash(self, client)  # (outside the write: it may make the salt)
        for attempt in range(2):
            try:
                return self._start(ext, study_id, session_id, survey_name, rng, secret, where)
            except IntegrityError:
                # the same participant id started twice at once (PostgreSQL): resume instead
                if attempt or not ext:
                    raise
        raise AssertionError("unreachable")

    def _start(self, ext, study_id, session_id, survey_name, rng, secret, where) -> TrialView:
        now = utcnow()
        with self.write() as s:
            q = select(Survey)
            q = q.where(Survey.name == survey_name) if survey_name else q.where(Survey.active.is_(True))
            # the survey's row is locked until this start commits: starts of one survey take
            # turns (on PostgreSQL, across processes and replicas too), so each one plans with
            # the assignment counts of all earlier ones (least-assigned first stays balanced)
            sv = s.scalar(q.order_by(Survey.created_at.desc(), Survey.id.desc()).limit(1)
                          .with_for_update())
            if sv is None:
                raise SurveyError(f"there is no survey named {survey_name!r}" if survey_name else
                                  "no survey is running at the moment: please come back later")
            if secret:  # this browser has started before: continue there
                p = s.scalar(select(Participant).where(
                    Participant.survey_id == sv.id,
                    Participant.resume_hash == _secret_hash(secret)).with_for_update())
                if p is not None and (not ext or ext == p.external_id):
                    view = self._view(s, sv, p, now=now, mark_shown=True)
                    view.resumed, view.resume_secret = True, secret
                    return view
            if ext:
                p = s.scalar(select(Participant).where(Participant.survey_id == sv.id,
                                                       Participant.external_id == ext).with_for_update())
                if p is not None:
                    raise SurveyError("this participant id has already started the survey in "
                                      "another browser: continue in that browser (it keeps your "
                                      "place), or ask the researcher")
            if where and self.starts_per_hour:
                n = s.scalar(select(func.count(Participant.id)).where(
                    Participant.survey_id == sv.id, Participant.client_address == where,
                    Participant.started_at >= now - timedelta(hours=1)))
                if n >= self.starts_per_hour:
                    raise SurveyError(f"{n} sessions were started from your network in the last "
                                      "hour, the most allowed: continue the one this browser "
                                      "started, or come back later")
            secret = new_secret()
            done = self._precise_models(s, sv)  # models whose interval is narrow enough already
            infos = [survey.StimulusInfo(id=i, source=src, kind=k, practice=pr, twin_of=tw)
                     for i, src, k, pr, tw, m in s.execute(select(
                         Stimulus.id, Stimulus.source, Stimulus.kind, Stimulus.practice,
                         Stimulus.twin_of, Stimulus.model).where(Stimulus.survey_id == sv.id))
                     if not (k == "generated" and m in done)]
            counts = dict(s.execute(select(Assignment.stimulus_id, func.count()).join(
                Stimulus, Assignment.stimulus_id == Stimulus.id).where(
                Stimulus.survey_id == sv.id).group_by(Assignment.stimulus_id)).all())
            infos = [survey.StimulusInfo(i.id, i.source, i.kind, i.practice, int(counts.get(i.id, 0)),
                                         i.twin_of) for i in infos]
            plan = survey.plan_trials(infos, max_trials=sv.max_trials, n_practice=sv.n_practice,
                                      n_attention=sv.n_attention, n_repeats=sv.n_repeats or 0,
                                      paradigm=sv.paradigm or "single", rng=rng)
            n_practice = sum(t.practice for t in plan)
            p = Participant(id=new_id(), survey_id=sv.id, external_id=ext, study_id=study_id,
                            session_id=session_id, started_at=now, n_trials=len(plan),
                            n_practice=n_practice, next_position=0,
                            resume_hash=_secret_hash(secret), client_address=where)
            s.add(p)
            s.flush()
            s.add_all([Assignment(participant_id=p.id, stimulus_id=t.stimulus_id, position=i,
                                  practice=t.practice, token=new_id(),
                                  shown_at=now if i == 0 else None)
                       for i, t in enumerate(plan)])
            s.flush()
            view = self._view(s, sv, p, now=now)
            view.resume_secret = secret
            return view

    def _precise_models(self, s, sv: Survey) -> set:
        """Models whose fooling rate's 95% Wilson interval (counted votes, repeats apart) is at
        most the survey's stop_width wide: their photos are no longer assigned."""
        if not sv.stop_width:
            return set()
        rows = s.execute(select(Stimulus.model, func.count(), func.sum(
            func.cast(Vote.answer_real, Integer))).join(Vote, Vote.stimulus_id == Stimulus.id).where(
            Stimulus.survey_id == sv.id, Stimulus.kind == "generated", Stimulus.twin_of.is_(None),
            Vote.practice.is_(False)).group_by(Stimulus.model)).all()
        return {m for m, n, k in rows if survey.interval_width(int(k or 0), int(n)) <= sv.stop_width}

    def current(self, participant_id: str) -> TrialView:
        """Where a participant is now (nothing written)."""
        with self.read() as s:
            p = s.get(Participant, participant_id)
            if p is None:
                raise SurveyError("unknown session: press Start to begin")
            return self._view(s, s.get(Survey, p.survey_id), p)

    def vote(self, participant_id: str | None, answer, token: str | None = None,
             client_ms=None, *, wait: bool = True) -> TrialView:
        """Record the answer to the participant's current image and return what comes next.

        token: the trial token sent with the image (required: a vote without it is refused and
        writes nothing); a token already answered is a repeated request and counts nothing; a
        token that is not this participant's current image is refused. client_ms: the response
        time the browser measured (kept as response_ms when it is plausible, else the server's
        time); the server's own time between handing out the image and the vote is stored as
        server_ms whatever the client says.
        wait=False (SQLite): raise :class:`WriterBusy` instead of waiting when another request
        of this process is writing (the caller can then wait somewhere else: a worker thread).

        The vote is the survey's hot path: a few Core statements (the participant with its
        survey; its current and next assignment; the vote; two updates), no ORM unit of work.
        """
        answer = survey.parse_any_answer(answer)
        token = survey.clean_token(token)
        if not participant_id or not isinstance(participant_id, str) or len(participant_id) > 64:
            raise SurveyError("no session: press Start before voting")
        now = utcnow()
        q = _vote_statements()
        with self.write(wait=wait) as s:
            conn = s.connection()
            p = conn.execute(q["participant"], {"pid": participant_id}).first()
            if p is None:
                raise SurveyError("unknown session: press Start to begin")
            pos = p.next_position
            rows = {r.position: r for r in conn.execute(
                q["assignments"], {"pid": p.id, "pos": pos, "pos1": pos + 1})}
            cur = rows.get(pos) if pos < p.n_trials else None
            if not token and cur is not None:
                raise SurveyError("a vote must name its trial: send the token that came with the image")
            if token and (cur is None or token != cur.token):
                prev = conn.execute(q["by_token"], {"token": token}).first()
                if prev is None or prev.participant_id != p.id:
                    raise SurveyError("that image is not assigned to you: vote on the image you "
                                      "were shown")
                if prev.position < pos:  # answered before: a repeated request
                    view = self._trial_view(s, p, pos, cur)
                    view.duplicate = True
                    return view
                raise SurveyError("that image is not your current one")
            if cur is None:
                raise SurveyError("you have already finished this survey: "
                                  + survey.score_text(*self._score(s, p.id)))
            pair = (p.paradigm or "single") == "pair"
            if pair != (answer in survey.PAIR_ANSWERS):
                raise SurveyError('this survey shows two photos: answer "left" or "right" (the one '
                                  'that is colorized)' if pair else
                                  'this survey shows one photo: answer "real" or "fake"')
            if pair:  # stored as in the single paradigm: True = the colorized one passed for real
                real_left = survey.left_is_real(self.pair_key(), cur.token)
                answer_real = survey.pair_fooled(answer, real_left)
            else:
                answer_real = survey.ANSWERS[answer]
            shown = as_utc(cur.shown_at)
            server_ms = int((now - shown).total_seconds() * 1000) if shown else None
            response_ms = server_ms
            try:
                c = None if client_ms in (None, "") else float(client_ms)
            except (TypeError, ValueError):
                c = None
            if c is not None and c == c and 0 < c <= (server_ms if server_ms is not None else 3.6e6) + 1000:
                response_ms = int(round(c))
            conn.execute(q["insert_vote"], dict(
                participant_id=p.id, stimulus_id=cur.stimulus_id, assignment_id=cur.id,
                answer_real=answer_real, response_ms=response_ms, server_ms=server_ms, voted_at=now,
                practice=bool(cur.practice)))
            done = pos + 1 >= p.n_trials
            conn.execute(q["advance"], {"pid": p.id, "pos1": pos + 1,
                                        "finished_at": now if done else None})
            nxt = None if done else rows.get(pos + 1)
            if nxt is not None:
                conn.execute(q["mark_shown"], {"aid": nxt.id, "now": now})
            view = self._trial_view(s, p, pos + 1, nxt)
            if cur.practice:
                view.feedback = (survey.pair_feedback(answer_real, real_left) if pair else
                                 survey.practice_feedback(cur.kind, answer_real))
            return view

    def _trial_view(self, s, p, position: int, a) -> TrialView:
        """The view at `position` of participant row `p` (joined with its survey's settings),
        `a` the assignment row at that position (None at the end)."""
        view = TrialView(participant_id=p.id, survey_id=p.survey_id, position=position,
                         n_trials=p.n_trials, n_practice=p.n_practice, exposure_ms=p.exposure_ms,
                         paradigm=p.paradigm or "single")
        if position >= p.n_trials or a is None:
            return self._end_view(s, view, p.completion_code, p.completion_url)
        view.stimulus_id, view.token, view.practice = a.stimulus_id, a.token, bool(a.practice)
        return self._with_partner(s, view)

    def _with_partner(self, s, view: TrialView) -> TrialView:
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
        view.real_on_left = survey.left_is_real(self.pair_key(), view.token)
        return view

    def pair_key(self) -> bytes:
        return self.secret("pair_sides").encode()

    def _end_view(self, s, view: TrialView, completion_code: str, completion_url: str) -> TrialView:
        """The end screen: the participant's score and the completion code."""
        view.finished = True
        n_correct, n_counted = self._score(s, view.participant_id)
        view.end_message = survey.end_message(n_correct=n_correct, n_counted=n_counted,
                                              completion_code=completion_code,
                                              completion_url=completion_url)
        return view

    def _score(self, s, participant_id: str) -> tuple[int, int]:
        rows = s.execute(select(Stimulus.kind, Vote.answer_real).join(
            Stimulus, Vote.stimulus_id == Stimulus.id).where(
            Vote.participant_id == participant_id, Vote.practice.is_(False))).all()
        return sum(survey.is_correct(k, a) for k, a in rows), len(rows)

    def _view(self, s, sv: Survey, p: Participant, *, now: datetime | None = None,
              mark_shown: bool = False) -> TrialView:
        view = TrialView(participant_id=p.id, survey_id=sv.id, position=p.next_position,
                         n_trials=p.n_trials, n_practice=p.n_practice, exposure_ms=sv.exposure_ms,
                         paradigm=sv.paradigm or "single")
        if p.next_position >= p.n_trials:
            return self._end_view(s, view, sv.completion_code, sv.completion_url)
        a = s.scalar(select(Assignment).where(Assignment.participant_id == p.id,
                                              Assignment.position == p.next_position))
        if mark_shown:
            a.shown_at = now or utcnow()
        view.stimulus_id, view.token, view.practice = a.stimulus_id, a.token, a.practice
        return self._with_partner(s, view)

    # --- export ----------------------------------------------------------------------------

    def votes_frame(self, survey_name: str | None = None):
        """One row per vote (see turing_test.export_votes)."""
        import pandas as pd
        q = (select(Vote.participant_id, Vote.stimulus_id, Stimulus.source, Stimulus.kind,
                    Stimulus.model, Vote.answer_real, Vote.response_ms, Vote.voted_at, Vote.practice,
                    Vote.server_ms, Stimulus.twin_of, Survey.paradigm)
             .join(Stimulus, Vote.stimulus_id == Stimulus.id)
             .join(Survey, Stimulus.survey_id == Survey.id).order_by(Vote.id))
        if survey_name:
            q = q.where(Survey.name == survey_name)
        with self.read() as s:
            rows = s.execute(q).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=VOTE_COLUMNS[:-1])  # fooled: below
        df["answer_real"] = df["answer_real"].astype(bool)
        df["practice"] = df["practice"].astype(bool)
        df["response_ms"] = pd.array(df["response_ms"].tolist(), dtype="Int64")
        df["server_ms"] = pd.array(df["server_ms"].tolist(), dtype="Int64")
        df["voted_at"] = pd.to_datetime(pd.Series([as_utc(v) for v in df["voted_at"]], dtype=object),
                                        utc=True)
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

    def stimulus_metrics(self, survey_name: str):
        """Per generated stimulus: stimulus, psnr, de2000, colorfulness (ratio to the real one)."""
        import pandas as pd
        q = (select(Stimulus.id, Stimulus.psnr, Stimulus.de2000, Stimulus.colorfulness)
             .join(Survey, Stimulus.survey_id == Survey.id)
             .where(Survey.name == survey_name, Stimulus.kind == "generated", Stimulus.twin_of.is_(None)))
        with self.read() as s:
            rows = s.execute(q).all()
        return pd.DataFrame([tuple(r) for r in rows],
                            columns=["stimulus", "psnr", "de2000", "colorfulness"]).dropna(how="all",
                                                                                          subset=["psnr", "de2000", "colorfulness"])

    def participants_frame(self, survey_name: str | None = None):
        import pandas as pd
        q = (select(Participant.id, Survey.name, Participant.external_id, Participant.study_id,
                    Participant.session_id, Participant.started_at, Participant.finished_at,
                    Participant.n_trials, Participant.n_practice, Participant.next_position)
             .join(Survey, Participant.survey_id == Survey.id).order_by(Participant.started_at))
        if survey_name:
            q = q.where(Survey.name == survey_name)
        with self.read() as s:
            rows = s.execute(q).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=[
            "participant", "survey", "external_id", "study_id", "session_id", "started_at",
            "finished_at", "n_trials", "n_practice", "answered"])
        for c in ("started_at", "finished_at"):
            df[c] = pd.to_datetime(pd.Series([as_utc(v) for v in df[c]], dtype=object), utc=True)
        return df

    def stimuli_frame(self, survey_name: str | None = None):
        import pandas as pd
        q = select(Stimulus.id, Survey.name, Stimulus.source, Stimulus.kind, Stimulus.model,
                   Stimulus.practice, Stimulus.width, Stimulus.height, Stimulus.twin_of).join(
            Survey, Stimulus.survey_id == Survey.id).order_by(Stimulus.source, Stimulus.kind)
        if survey_name:
            q = q.where(Survey.name == survey_name)
        with self.read() as s:
            rows = s.execute(q).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=[
            "stimulus", "survey", "source", "kind", "model", "practice", "width", "height",
            "repeat_of"])


def _survey_dict(sv: Survey) -> dict:
    try:
        rules = json.loads(sv.exclusion_rules) if sv.exclusion_rules else {}
    except ValueError:
        rules = {}
    return dict(id=sv.id, name=sv.name, active=bool(sv.active), is_demo=bool(sv.is_demo),
                image_size=sv.image_size, created_at=as_utc(sv.created_at),
                exclusion_rules=rules, paradigm=sv.paradigm or "single",
                **{k: getattr(sv, k) for k in SETTINGS})


def new_secret() -> str:
    return secrets.token_hex(24)


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _address_hash(store: "Store", client: str | None) -> str | None:
    """A client address as stored: salted with the database's own key, so that the address itself
    is never kept (a start limit only needs to know that two starts came from the same one)."""
    if not client or client == "unknown":
        return None
    return hashlib.sha256(store.salt() + client.encode()).hexdigest()[:32]


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


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def get_store(url: str | None = None) -> Store:
    """The process-wide Store of a URL (default: $TURING_DB_URL or the default SQLite file)."""
    key = db.normalize_url(url or db.default_db_url())
    with _stores_lock:
        st = _stores.get(key)
        if st is None:
            st = _stores[key] = Store(key)
        return st


def reset_stores() -> None:
    with _stores_lock:
        _stores.clear()
    db.dispose_all()
