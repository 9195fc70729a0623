"""Survey validity without a server: stimulus files that tell nothing, votes that must name
their trial and carry the server's own time, sessions that resume only with their secret, and
a start limit per client address (turing_test/pool.py, leak.py, store.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from turing_helpers import make_photos
from turing_test import leak, pool
from turing_test.store import Store
from turing_test.survey import SurveyError


def _old_encode(rgb) -> bytes:
    """The encoder before this change: optimized Huffman tables, whose size tracks color detail."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(
        buf, format="JPEG", quality=90, subsampling=2, optimize=True)
    return buf.getvalue()


@pytest.fixture
def survey_store(tiny_weights_dir, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    pool.build_pool(st, make_photos(tmp_path / "p", 16), ["default"], survey="s", size=64,
                    practice=0, attention=2, settings=dict(max_trials=8, n_practice=0, n_attention=1))
    st.set_active("s")
    return st


def test_stimulus_files_do_not_tell_real_from_colorized(survey_store):
    st = survey_store
    df = st.stimuli_frame("s")
    blobs = st.stimulus_images(df["stimulus"])
    real = [blobs[s] for s in df.loc[df["kind"] == "real", "stimulus"]]
    fake = [blobs[s] for s in df.loc[df["kind"] != "real", "stimulus"]]
    feature, auc = leak.leak_auc(real, fake)
    assert auc <= 0.6, (feature, auc)
    assert len({len(b) for b in real + fake}) == 1  # one length for every stimulus
    # the same pixels through the old encoder: the classifier finds the tell
    pixels = lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))  # noqa: E731
    old_feature, old_auc = leak.leak_auc([_old_encode(pixels(b)) for b in real],
                                         [_old_encode(pixels(b)) for b in fake])
    print(f"leak AUC: new encoder {auc:.2f} ({feature}), old encoder {old_auc:.2f} ({old_feature})")
    assert old_auc > 0.75


def test_auc_and_features_on_known_cases():
    assert leak.auc([3, 4], [1, 2]) == 1.0 and leak.auc([1], [1]) == 0.5
    assert leak.auc([1, 3], [2, 2]) == 0.5
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG", compress_level=0)
    f = leak.file_features(png.getvalue())
    assert f["png_IHDR_0"] == 13 and f["size"] == len(png.getvalue())
    jpg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpg, "JPEG")
    assert any(k.startswith("jpeg_c4") for k in leak.file_features(jpg.getvalue()))  # the DHTs


def test_a_vote_must_name_its_trial_and_records_the_servers_time(survey_store):
    st = survey_store
    view = st.start()
    with pytest.raises(SurveyError, match="must name its trial"):
        st.vote(view.participant_id, "real")
    with pytest.raises(SurveyError, match="must name its trial"):
        st.vote(view.participant_id, "real", "")
    assert len(st.votes_frame()) == 0  # nothing written
    nxt = st.vote(view.participant_id, "real", view.token, client_ms=1)
    assert nxt.position == 1
    votes = st.votes_frame()
    assert len(votes) == 1
    with st.read() as s:
        from sqlalchemy import select
        from turing_test.models import Vote
        server_ms, response_ms = s.execute(select(Vote.server_ms, Vote.response_ms)).one()
    assert server_ms is not None and 0 <= server_ms < 5000
    assert response_ms == 1  # the client's claim is kept as such, beside the server's own time


def test_resuming_needs_the_secret_not_the_id(survey_store):
    st = survey_store
    first = st.start("probeA")
    assert first.resume_secret and len(first.resume_secret) == 48
    after = st.vote(first.participant_id, "real", first.token)
    # someone else who knows only the id gets nothing
    with pytest.raises(SurveyError, match="already started the survey in another browser"):
        st.start("probeA")
    with pytest.raises(SurveyError, match="already started"):
        st.start("probeA", resume_secret="0" * 48)
    # the participant's own browser continues where it left off
    back = st.start("probeA", resume_secret=first.resume_secret)
    assert back.resumed and back.participant_id == first.participant_id
    assert back.position == after.position == 1 and back.stimulus_id == after.stimulus_id
    # an anonymous participant resumes with the secret alone
    anon = st.start()
    again = st.start(resume_secret=anon.resume_secret)
    assert again.participant_id == anon.participant_id and again.resumed
    with pytest.raises(SurveyError, match="invalid resume secret"):
        st.start(resume_secret="not hex!")


def test_new_sessions_are_limited_per_client_address(survey_store):
    st = survey_store
    st.starts_per_hour = 3
    for _ in range(3):
        st.start(client="10.0.0.7")
    with pytest.raises(SurveyError, match="3 sessions were started from your network"):
        st.start(client="10.0.0.7")
    st.start(client="10.0.0.8")  # another address is not affected
    st.start()  # nor a caller with no address (a script of the researcher's)
    from sqlalchemy import select
    from turing_test.models import Participant
    with st.read() as s:
        stored = set(s.scalars(select(Participant.client_address)))
    assert "10.0.0.7" not in stored and len(stored - {None}) == 2  # hashed, never the address


def test_an_older_database_gains_the_new_columns(tmp_path):
    import sqlite3
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE votes (id INTEGER PRIMARY KEY, participant_id VARCHAR(32), stimulus_id VARCHAR(32),
            assignment_id INTEGER, answer_real BOOLEAN, response_ms INTEGER, voted_at DATETIME,
            practice BOOLEAN);
        INSERT INTO votes (participant_id, stimulus_id, assignment_id, answer_real, response_ms,
            practice) VALUES ('p', 's', 1, 1, 900, 0);
    """)
    con.close()
    Store(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    cols = [r[1] for r in con.execute("PRAGMA table_info(votes)")]
    assert "server_ms" in cols
    assert con.execute("SELECT response_ms, server_ms FROM votes").fetchall() == [(900, None)]


def test_repeats_come_later_as_twins_and_catch_inconsistent_answers(tiny_weights_dir, tmp_path):
    from turing_test import stats
    from turing_test.survey import REPEAT_GAP
    st = Store(f"sqlite:///{tmp_path / 'r.db'}")
    rep = pool.build_pool(st, make_photos(tmp_path / "p", 12), ["default"], survey="r", size=64,
                          practice=0, attention=1, repeats=6, seed=1,
                          settings=dict(max_trials=8, n_practice=0, n_attention=1, n_repeats=2))
    assert rep.counts["repeats"] == 12  # 6 sources x (real + colorized): 7 counted photos of 11
    # sources always hold 2 of them, so every participant gets both repeats
    frame = st.stimuli_frame("r")
    blobs = st.stimulus_images(frame["stimulus"])
    with st.read() as s:
        from sqlalchemy import select
        from turing_test.models import Stimulus
        twins = dict(s.execute(select(Stimulus.id, Stimulus.twin_of).where(Stimulus.twin_of.is_not(None))).all())
    assert all(blobs[t] == blobs[o] for t, o in twins.items())  # the same image, another id
    info = next(s for s in st.list_surveys() if s["name"] == "r")
    assert info["stimuli"] == {"real": 12, "generated": 12, "attention": 1, "repeats": 12}

    # participants: each repeat comes at least REPEAT_GAP trials after its first showing; one
    # answers every photo the same way twice, the other answers the repeats the other way round
    answers = {}
    for name, flip in (("steady", False), ("careless", True)):
        v = st.start(name)
        shown = []
        while not v.finished:
            sid = v.stimulus_id
            shown.append(sid)
            first = twins.get(sid)
            a = answers.setdefault((name, first or sid), (len(shown) % 3 == 0))
            if first and flip:
                a = not a
            v = st.vote(v.participant_id, "real" if a else "fake", v.token)
        assert len(shown) == 8 + 2  # the repeats come on top of the counted trials
        for i, sid in enumerate(shown):
            if sid in twins:
                assert twins[sid] in shown[:i - REPEAT_GAP + 1], "a repeat before or too soon after its photo"
    votes = st.votes_frame("r")
    assert votes["repeat_of"].notna().sum() == 4
    rules = stats.ExclusionRules(max_inconsistent_repeats=1, max_attention_failures=5, exclude_constant=False,
                                 exclude_alternating=False, exclude_fast_median=False)
    ex = stats.exclusion_table(votes, rules).set_index("participant")
    pid = {r.external_id: r.participant for r in st.participants_frame("r").itertuples()}
    assert ex.loc[pid["steady"], "inconsistent_repeats"] == 0 and not ex.loc[pid["steady"], "excluded"]
    assert ex.loc[pid["careless"], "inconsistent_repeats"] == 2 and ex.loc[pid["careless"], "excluded"]
    assert "repeat" in ex.loc[pid["careless"], "reasons"]
    # the repeats never count in the fooling rates
    plain = stats.model_table(votes[votes["repeat_of"].isna()], rules=rules)
    assert stats.model_table(votes, rules=rules)["votes"].sum() <= plain["votes"].sum()


def test_the_pair_paradigm_shows_a_real_photo_beside_its_colorization(tiny_weights_dir, tmp_path):
    from turing_test import stats
    from turing_test.survey import left_is_real
    st = Store(f"sqlite:///{tmp_path / 'pair.db'}")
    pool.build_pool(st, make_photos(tmp_path / "p", 14), ["default"], survey="pairs", size=64,
                    practice=3, attention=2, repeats=0, paradigm="pair", seed=2,
                    settings=dict(max_trials=6, n_practice=2, n_attention=1))
    assert st.get_survey("pairs")["paradigm"] == "pair"
    files = pool.StimulusFiles(st, tmp_path / "cache")
    frame = st.stimuli_frame("pairs").set_index("stimulus")
    v = st.start("alice")
    assert v.paradigm == "pair" and v.n_trials == 2 + 6
    with pytest.raises(SurveyError, match='answer "left" or "right"'):
        st.vote(v.participant_id, "real", v.token)
    kinds, lengths = [], set()
    while not v.finished:
        me = frame.loc[v.stimulus_id]
        partner = frame.loc[v.partner_id]
        assert me["kind"] in ("generated", "attention") and partner["kind"] == "real"
        assert me["source"] == partner["source"]  # a photo beside its own colorization
        assert v.real_on_left == left_is_real(st.pair_key(), v.token)
        path = files.show_pair(v.stimulus_id, v.partner_id, v.token, v.real_on_left)
        data = open(path, "rb").read()
        lengths.add(len(data))
        both = np.asarray(Image.open(io.BytesIO(data)))
        assert both.shape == (64, 64 * 2 + pool.PAIR_GAP, 3)
        real_px = np.asarray(Image.open(files.path(v.partner_id)))
        left, right = both[:, :64], both[:, 64 + pool.PAIR_GAP:]
        assert np.array_equal(left if v.real_on_left else right, real_px)
        kinds.append(me["kind"])
        # alice always picks the left one as colorized: fooled exactly when the real one is there
        practice = v.practice
        real_left = v.real_on_left
        v = st.vote(v.participant_id, "left", v.token)
        if practice:
            assert v.feedback.startswith("Practice: " + ("not quite" if real_left else "correct"))
    assert len(lengths) == 1  # every pair file the same length
    assert kinds.count("attention") == 1  # one catch pair: the real photo against wrong colors
    votes = st.votes_frame("pairs")
    assert set(votes["kind"]) <= {"pair", "pair_catch"} and (votes["paradigm"] == "pair").all()
    counted = votes[~votes["practice"] & (votes["kind"] == "pair")]
    t = stats.pair_model_table(votes, max_attention_failures=1)  # alice may fail the catch pair
    assert int(t["trials"].iloc[0]) == len(counted)
    assert t["fooling_rate"].iloc[0] == pytest.approx(counted["fooled"].astype(bool).mean())
    # a single-photo survey refuses the pair answers
    single = Store(f"sqlite:///{tmp_path / 'single.db'}")
    pool.build_pool(single, make_photos(tmp_path / "q", 6), ["default"], survey="one", size=64,
                    practice=0, attention=0, repeats=0)
    w = single.start()
    with pytest.raises(SurveyError, match='answer "real" or "fake"'):
        single.vote(w.participant_id, "left", w.token)
    with pytest.raises(SurveyError, match="other paradigm"):
        pool.build_pool(single, make_photos(tmp_path / "r", 2, seed=3), ["default"], survey="one",
                        size=64, paradigm="pair")


def test_metrics_beside_people_and_stopping_once_a_model_is_precise(tiny_weights_dir, tmp_path):
    from turing_test import stats
    st = Store(f"sqlite:///{tmp_path / 'm.db'}")
    pool.build_pool(st, make_photos(tmp_path / "p", 10), ["default"], survey="m", size=64,
                    practice=0, attention=0, repeats=0, seed=4,
                    settings=dict(max_trials=5, n_practice=0, n_attention=0))
    m = st.stimulus_metrics("m")
    assert len(m) == 10 and m["psnr"].between(5, 60).all() and (m["de2000"] > 0).all()
    assert (m["colorfulness"] >= 0).all()
    for k in range(8):
        v = st.start(f"p{k}")
        while not v.finished:
            v = st.vote(v.participant_id, "real" if k % 3 else "fake", v.token)
    votes = st.votes_frame("m")
    table = stats.image_metric_table(votes, m)
    assert {"psnr", "de2000", "colorfulness", "fooling_rate"} <= set(table.columns)
    corr = stats.metric_correlations(table, n_boot=200)
    assert set(corr["metric"]) >= {"psnr", "de2000", "colorfulness"}
    # a stop width: once the model's interval is that narrow, new participants get real photos only
    gen = votes[votes["kind"] == "generated"]
    from turing_test.survey import interval_width
    width = interval_width(int(gen["answer_real"].sum()), len(gen))
    st.update_settings("m", exposure_ms=1000, max_trials=5, n_practice=0, n_attention=0,
                       stop_width=width + 0.01)
    frame = st.stimuli_frame("m").set_index("stimulus")
    v = st.start("late")
    kinds = set()
    while not v.finished:
        kinds.add(frame.loc[v.stimulus_id, "kind"])
        v = st.vote(v.participant_id, "real", v.token)
    assert kinds == {"real"}
    st.update_settings("m", exposure_ms=1000, max_trials=5, n_practice=0, n_attention=0, stop_width=0)
    kinds = set()
    for k in range(3):
        v = st.start(f"again{k}")
        while not v.finished:
            kinds.add(frame.loc[v.stimulus_id, "kind"])
            v = st.vote(v.participant_id, "real", v.token)
    assert "generated" in kinds
