"""The Turing test's store on real databases: SQLite files (WAL) and PostgreSQL.

PostgreSQL runs where $TURING_TEST_PG_URL is set (CI: scripts/ci_postgres.sh), else those
cases skip.
"""
from __future__ import annotations

import random
import sqlite3
import threading

import pandas as pd
import pytest
from sqlalchemy import func, select

from turing_test import VOTE_COLUMNS, export_votes
from turing_test.models import Assignment, Participant, Vote
from turing_test.store import NewStimulus, Store
from turing_test.survey import SurveyError
from turing_helpers import pg_url_or_skip, reset_pg


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'turing.db'}"
    url = pg_url_or_skip()
    reset_pg(url)
    return url


def fake_pool(n_sources=12, models=("m1", "m2"), practice=2, attention=2):
    out = []
    for i in range(n_sources):
        pr = i < practice
        out.append(NewStimulus(source=f"src{i}.jpg", kind="real", image=b"R%d" % i, width=8,
                               height=8, practice=pr))
        for m in models:
            out.append(NewStimulus(source=f"src{i}.jpg", kind="generated", model=m,
                                   image=b"G%d" % i, width=8, height=8, practice=pr))
        if not pr and i < practice + attention:
            out.append(NewStimulus(source=f"src{i}.jpg", kind="attention", image=b"A%d" % i,
                                   width=8, height=8))
    return out


def make_store(url, **settings) -> Store:
    st = Store(url)
    st.save_pool("pilot", fake_pool(), image_size=8,
                 settings=dict(max_trials=6, n_practice=2, n_attention=1, **settings))
    return st


def count(st, model, **where):
    with st.read() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


def run_participant(st, ext=None, answers=None):
    v = st.start(ext)
    votes = 0
    rng = random.Random(ext)
    while not v.finished:
        a = answers[votes] if answers else rng.choice(["real", "fake"])
        v = st.vote(v.participant_id, a, v.token)
        votes += 1
    return v, votes


def test_sqlite_is_wal_with_busy_timeout(tmp_path):
    st = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with st.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_full_session_and_export(db_url):
    st = make_store(db_url)
    v = st.start("PID_1", study_id="study9", session_id="sess3")
    assert v.n_trials == 8 and v.n_practice == 2 and v.position == 0 and v.practice
    assert v.stimulus_id and v.token and not v.finished
    seen = [v.stimulus_id]
    feedback = []
    while not v.finished:
        v = st.vote(v.participant_id, "fake", v.token, client_ms=850)
        feedback.append(v.feedback)
        if v.stimulus_id:
            seen.append(v.stimulus_id)
    assert "Practice" in feedback[0] and "Practice" in feedback[1] and feedback[2] == ""
    assert "completion code" in v.end_message and "of 6 photos" in v.end_message
    df = export_votes(db_url)
    assert list(df.columns) == VOTE_COLUMNS
    assert len(df) == 8 and df["stimulus"].tolist() == seen
    assert df["practice"].tolist() == [True, True] + [False] * 6
    assert df["participant"].nunique() == 1 and not df["answer_real"].any()
    assert (df["response_ms"] == 850).all()
    assert str(df["voted_at"].dt.tz) == "UTC"
    assert set(df["kind"]) <= {"real", "generated", "attention"}
    assert df.loc[df["kind"] == "generated", "model"].isin(["m1", "m2"]).all()
    assert df.loc[df["kind"] != "generated", "model"].isna().all()
    # each source photo once
    assert df["source"].is_unique
    parts = st.participants_frame()
    assert parts.loc[0, "external_id"] == "PID_1" and parts.loc[0, "study_id"] == "study9"
    assert parts.loc[0, "finished_at"] is not pd.NaT
    assert export_votes(db_url, survey="pilot").shape == df.shape
    assert export_votes(db_url, survey="other").empty


def test_server_response_time_when_client_time_is_implausible(db_url):
    st = make_store(db_url)
    v = st.start()
    v = st.vote(v.participant_id, "real", v.token, client_ms=10_000_000)  # longer than possible
    v = st.vote(v.participant_id, "real", v.token, client_ms="nonsense")
    df = export_votes(db_url)
    assert (df["response_ms"] < 60_000).all() and (df["response_ms"] >= 0).all()


def test_repeated_vote_counts_once(db_url):
    st = make_store(db_url)
    v0 = st.start("dup")
    v1 = st.vote(v0.participant_id, "real", v0.token)
    again = st.vote(v0.participant_id, "fake", v0.token)  # a replayed / double-clicked request
    assert again.duplicate and again.token == v1.token and again.stimulus_id == v1.stimulus_id
    assert count(st, Vote) == 1
    # the last vote replayed after the end is harmless too
    v, last_token = v1, None
    while not v.finished:
        last_token = v.token
        v = st.vote(v.participant_id, "real", v.token)
    n = count(st, Vote)
    end = st.vote(v.participant_id, "real", last_token)
    assert end.duplicate and end.finished and count(st, Vote) == n


@pytest.mark.parametrize("bad", ["maybe", "", "REALLY", None, "x" * 10_000])
def test_bad_answers_write_nothing(db_url, bad):
    st = make_store(db_url)
    v = st.start("p")
    with pytest.raises(SurveyError, match='"real" or "fake"'):
        st.vote(v.participant_id, bad, v.token)
    assert count(st, Vote) == 0
    assert st.current(v.participant_id).position == 0


def test_refusals_write_nothing(db_url):
    st = make_store(db_url)
    a = st.start("alice")
    b = st.start("bob")
    with pytest.raises(SurveyError, match="Start"):
        st.vote(None, "real")
    with pytest.raises(SurveyError, match="Start"):
        st.vote("f" * 16, "real")  # no such session
    with pytest.raises(SurveyError, match="not assigned to you"):
        st.vote(a.participant_id, "real", b.token)  # bob's image
    with pytest.raises(SurveyError, match="not assigned to you"):
        st.vote(a.participant_id, "real", "0123456789abcdef")  # no such image
    with pytest.raises(SurveyError, match="invalid trial token"):
        st.vote(a.participant_id, "real", "'; DROP TABLE votes; --")
    with pytest.raises(SurveyError, match="too long"):
        st.start("p" * 65)
    with pytest.raises(SurveyError, match="too long"):
        st.start("p" * 1_000_000)
    assert count(st, Vote) == 0 and count(st, Participant) == 2
    # a future image of alice is not her current one either
    with st.read() as s:
        future = s.scalar(select(Assignment.token).where(Assignment.participant_id == a.participant_id,
                                                         Assignment.position == 3))
    with pytest.raises(SurveyError, match="not your current"):
        st.vote(a.participant_id, "real", future)
    # after the end
    v, _ = run_participant(st, "carol")
    n = count(st, Vote)
    with pytest.raises(SurveyError, match="already finished"):
        st.vote(v.participant_id, "real")
    assert count(st, Vote) == n


def test_no_survey(db_url):
    st = Store(db_url)
    with pytest.raises(SurveyError, match="no survey is running"):
        st.start()
    st.save_pool("s", fake_pool(), image_size=8, activate=False)
    with pytest.raises(SurveyError, match="no survey is running"):
        st.start()
    st.set_active("s")
    assert st.start().stimulus_id


def test_resume_with_same_participant_id(db_url):
    st = make_store(db_url)
    v = st.start("PROLIFIC_abc")
    secret = v.resume_secret
    v = st.vote(v.participant_id, "real", v.token)
    v = st.vote(v.participant_id, "fake", v.token)
    # page reloaded, server restarted, ...: the browser's secret continues the session
    again = st.start("PROLIFIC_abc", resume_secret=secret)
    assert again.resumed and again.participant_id == v.participant_id
    assert again.position == 2 and again.token == v.token
    assert count(st, Participant) == 1
    with pytest.raises(SurveyError, match="already started"):  # the id alone takes nothing over
        st.start("PROLIFIC_abc")
    assert count(st, Participant) == 1
    while not again.finished:
        again = st.vote(again.participant_id, "real", again.token)
    done = st.start("PROLIFIC_abc", resume_secret=secret)
    assert done.finished and "completion code" in done.end_message


def test_balanced_assignment_across_participants(db_url):
    st = Store(db_url)
    st.save_pool("bal", fake_pool(n_sources=10, models=("m1",), practice=0, attention=0),
                 image_size=8, settings=dict(max_trials=5, n_practice=0, n_attention=0))
    for i in range(8):
        st.start(f"p{i}")
    with st.read() as s:
        counts = dict(s.execute(select(Assignment.stimulus_id, func.count()).group_by(
            Assignment.stimulus_id)).all())
    values = [counts.get(x, 0) for x in st.stimuli_frame()["stimulus"]]
    # 40 assignments over 20 stimuli: 2 each
    assert sum(values) == 40 and max(values) - min(values) <= 1


def test_concurrent_participants_every_vote_once(db_url):
    st = make_store(db_url)
    acknowledged = []
    errors = []
    lock = threading.Lock()

    def worker(k):
        try:
            v = st.start(f"w{k}")
            while not v.finished:
                tok = v.token
                v = st.vote(v.participant_id, "real" if (k + v.position) % 2 else "fake", tok)
                with lock:
                    acknowledged.append((v.participant_id, tok))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    df = export_votes(db_url)
    assert len(acknowledged) == 12 * 8 == len(df)
    assert not df.duplicated(["participant", "stimulus"]).any()


def test_settings_update_and_activation(db_url):
    st = make_store(db_url)
    st.save_pool("second", fake_pool(4, practice=0, attention=0), image_size=8, activate=False)
    assert st.active_survey()["name"] == "pilot"
    st.update_settings("second", exposure_ms=0, max_trials=3, n_practice=0, n_attention=0,
                       completion_code="DONE42", active=True)
    act = st.active_survey()
    assert act["name"] == "second" and act["exposure_ms"] == 0 and act["completion_code"] == "DONE42"
    assert [s["active"] for s in st.list_surveys()] == [False, True]
    with pytest.raises(SurveyError):
        st.update_settings("second", exposure_ms=-5, max_trials=3, n_practice=0, n_attention=0)
    with pytest.raises(SurveyError, match="no survey named"):
        st.update_settings("nope", exposure_ms=0, max_trials=3, n_practice=0, n_attention=0)
    v = st.start()
    assert v.n_trials == 3 and v.exposure_ms == 0


def test_pool_save_is_atomic(db_url):
    st = Store(db_url)
    bad = fake_pool(3) + [NewStimulus(source="x", kind="bogus", image=b"", width=1, height=1)]
    with pytest.raises(SurveyError, match="unknown stimulus kind"):
        st.save_pool("broken", bad, image_size=8)
    assert st.survey_names() == [] and st.stimuli_frame().empty


def test_votes_survive_a_new_process_view(tmp_path):
    """A committed vote is in the file for any other connection at once (WAL, no cache)."""
    path = tmp_path / "t.db"
    st = make_store(f"sqlite:///{path}")
    v = st.start()
    st.vote(v.participant_id, "real", v.token)
    con = sqlite3.connect(path)
    assert con.execute("select count(*) from votes").fetchone()[0] == 1
    con.close()


def test_export_of_a_missing_database_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Turing test database"):
        export_votes(f"sqlite:///{tmp_path / 'typo.db'}")
    assert not (tmp_path / "typo.db").exists()


def test_wal_is_checkpointed_in_the_background(tmp_path):
    """Commits never run a checkpoint themselves (wal_autocheckpoint=0, so no vote waits for
    one); a background thread moves the WAL into the database file soon after."""
    import time
    path = tmp_path / "ck.db"
    st = make_store(f"sqlite:///{path}")
    with st.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    v = st.start()
    for _ in range(3):
        v = st.vote(v.participant_id, "real", v.token)

    def votes_in_main_file():
        con = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # ignores the WAL
        try:
            return con.execute("select count(*) from votes").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
        finally:
            con.close()

    deadline = time.time() + 10
    while votes_in_main_file() < 3 and time.time() < deadline:
        time.sleep(0.1)
    assert votes_in_main_file() == 3


def test_vote_without_waiting_refuses_while_another_thread_writes(tmp_path):
    from turing_test.store import WriterBusy
    st = make_store(f"sqlite:///{tmp_path / 'busy.db'}")
    v = st.start()
    inside, release = threading.Event(), threading.Event()

    def long_write():
        with st.write():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=long_write)
    t.start()
    try:
        assert inside.wait(10)
        with pytest.raises(WriterBusy):
            st.vote(v.participant_id, "real", v.token, wait=False)
    finally:
        release.set()
        t.join(10)
    assert count(st, Vote) == 0  # the refused attempt wrote nothing
    v2 = st.vote(v.participant_id, "real", v.token, wait=False)  # the lock is free again
    assert count(st, Vote) == 1 and v2.position == 1 and v2.token != v.token


def test_writes_are_fast_follows_commit_times(db_url):
    st = make_store(db_url)
    run_participant(st, "timing")
    assert st.commit_ms > 0
    if not st.sqlite:  # PostgreSQL: votes always go to a worker thread
        assert not st.writes_are_fast()
        return
    assert st.writes_are_fast(limit_ms=1e6) and not st.writes_are_fast(limit_ms=0)
    st.commit_ms = 50.0  # as on a slow network disk
    assert not st.writes_are_fast()
