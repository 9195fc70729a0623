"""Everything the survey reads and writes, one transaction (``with Session.begin()``) per request.

A vote is committed before the next image is handed out: when :meth:`Store.vote` returns, the
vote is on disk (SQLite: WAL with synchronous=FULL; PostgreSQL: its commit). Requests that would
write something wrong (unknown answer, no session, a stimulus not assigned to this participant,
after the end) raise :class:`~turing_test.survey.SurveyError` and write nothing.

Its parts: store_views (TrialView, NewStimulus, WriterBusy, the survey dict), store_trials (the
participant's screen, read in the caller's transaction), vote_sql (the vote's Core statements),
store_keys (secrets and hashes), store_frames (the pandas frames of the exports and statistics).
May touch: the database, reading and writing, one transaction per request.
"""
from __future__ import annotations

import contextlib
import json
import random
import secrets
import threading
import time
from datetime import timedelta

from sqlalchemy import Integer, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from . import db, store_frames, store_trials, survey
from .models import (Assignment, Base, Participant, Secret, Stimulus, Survey, Vote, as_utc,
                     new_id, utcnow)
from .store_keys import _address_hash, _secret_hash, new_secret
from .store_views import NewStimulus, TrialView, WriterBusy, survey_dict
from .survey import SurveyError
from .vote_sql import _vote_statements

FAST_COMMIT_MS = 5.0  # see Store.writes_are_fast
STARTS_PER_ADDRESS_PER_HOUR = 20  # new participants from one client address (0: no limit)


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
            return survey_dict(sv) if sv else None

    def active_survey(self) -> dict | None:
        with self.read() as s:
            sv = s.scalar(select(Survey).where(Survey.active.is_(True))
                          .order_by(Survey.created_at.desc(), Survey.id.desc()).limit(1))
            return survey_dict(sv) if sv else None

    def list_surveys(self) -> list[dict]:
        """Every survey with its settings and counts."""
        with self.read() as s:
            out = []
            for sv in s.scalars(select(Survey).order_by(Survey.created_at, Survey.id)):
                d = survey_dict(sv)
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
            return survey_dict(sv)

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
            return survey_dict(sv)

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
                    view = store_trials.current_view(self, s, sv, p, now=now, mark_shown=True)
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
            view = store_trials.current_view(self, s, sv, p, now=now)
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
            return store_trials.current_view(self, s, s.get(Survey, p.survey_id), p)

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
                    view = store_trials.trial_view(self, s, p, pos, cur)
                    view.duplicate = True
                    return view
                raise SurveyError("that image is not your current one")
            if cur is None:
                raise SurveyError("you have already finished this survey: "
                                  + survey.score_text(*store_trials.score(s, p.id)))
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
            view = store_trials.trial_view(self, s, p, pos + 1, nxt)
            if cur.practice:
                view.feedback = (survey.pair_feedback(answer_real, real_left) if pair else
                                 survey.practice_feedback(cur.kind, answer_real))
            return view

    def pair_key(self) -> bytes:
        return self.secret("pair_sides").encode()

    # --- export ----------------------------------------------------------------------------

    def votes_frame(self, survey_name: str | None = None):
        """One row per vote (see turing_test.export_votes)."""
        return store_frames.votes_frame(self, survey_name)

    def stimulus_metrics(self, survey_name: str):
        """Per generated stimulus: stimulus, psnr, de2000, colorfulness (ratio to the real one)."""
        return store_frames.stimulus_metrics(self, survey_name)

    def participants_frame(self, survey_name: str | None = None):
        return store_frames.participants_frame(self, survey_name)

    def stimuli_frame(self, survey_name: str | None = None):
        return store_frames.stimuli_frame(self, survey_name)


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
