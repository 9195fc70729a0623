"""Stimulus pools: one processing path for real and colorized photos, random ids, no metadata;
the build-pool / export CLI; zip uploads; the demo survey."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import turing_test
from turing_test import pool
from turing_test.store import Store
from turing_test.survey import SurveyError
from turing_helpers import REPO, make_photos


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    make_photos(d, 6)
    # a photo with EXIF and a comment, one gray photo, one broken file
    im = Image.open(d / "photo_000.png").convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "model=real"  # Software
    im.save(d / "with_exif.jpg", exif=exif.tobytes(), comment=b"a real photo")
    Image.fromarray(np.full((50, 70), 128, np.uint8)).save(d / "gray.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return d


def test_build_pool_identical_processing(tiny_weights_dir, photos, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    rep = pool.build_pool(st, photos, ["default"], survey="s1", size=64, practice=1,
                          attention=2, repeats=0, seed=3)
    skipped = dict(rep.skipped)
    assert "gray" in skipped["gray.png"] and "broken.jpg" in skipped
    assert len(rep.sources) == 7 and len(rep.practice_sources) == 1
    assert rep.counts == {"real": 7, "generated": 7, "attention": 2, "repeats": 0}

    df = st.stimuli_frame("s1")
    assert len(df) == 16
    assert df["stimulus"].str.fullmatch(r"[0-9a-f]{16}").all() and df["stimulus"].is_unique
    blobs = st.stimulus_images(df["stimulus"])
    ref = None
    for row in df.itertuples():
        data = blobs[row.stimulus]
        im = Image.open(io.BytesIO(data))
        assert im.format == "PNG" and im.size == (64, 64) and im.mode == "RGB"
        # no metadata at all: no text, time, ICC or EXIF chunks; the chunks are IHDR, IDAT, IEND
        assert im.info == {} or set(im.info) <= {"dpi"}, im.info
        assert _png_chunk_types(data) <= {b"IHDR", b"IDAT", b"IEND"}
        assert b"SecretCam" not in data and b"real" not in data and b"default" not in data
        # every stimulus the same length, with the same header: the file tells nothing
        sig = (len(data), data[:43], _png_filters(data))  # signature, IHDR, IDAT head, zlib head
        ref = ref or sig
        assert sig == ref, "every stimulus must be encoded the same way"
    # the real and the colorized version of one source share the lightness (the model only
    # sets the colors), up to JPEG error
    from colorizer import lab
    src = df[df["source"] == "photo_002.png"].set_index("kind")
    real = np.asarray(Image.open(io.BytesIO(blobs[src.loc["real", "stimulus"]])))
    gen = np.asarray(Image.open(io.BytesIO(blobs[src.loc["generated", "stimulus"]])))
    d = np.abs(lab.rgb_to_lab(real)[..., 0] - lab.rgb_to_lab(gen)[..., 0])
    assert d.mean() < 3.0
    assert np.abs(real.astype(int) - gen.astype(int)).mean() > 1  # but the colors differ
    # the attention check is obviously off: its chroma points the other way
    att_src = df[df["kind"] == "attention"]["source"].iloc[0]
    s2 = df[df["source"] == att_src].set_index("kind")
    r2 = lab.rgb_to_lab(np.asarray(Image.open(io.BytesIO(blobs[s2.loc["real", "stimulus"]]))))
    a2 = lab.rgb_to_lab(np.asarray(Image.open(io.BytesIO(blobs[s2.loc["attention", "stimulus"]]))))
    dot = (r2[..., 1:] * a2[..., 1:]).sum(-1).mean()
    assert dot < 0
    # practice sources have no attention check; practice flags are per source
    assert not df[(df["kind"] == "attention") & df["practice"]].shape[0]
    assert df.groupby("source")["practice"].nunique().max() == 1


def test_build_pool_errors_write_nothing(tiny_weights_dir, photos, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    with pytest.raises(SurveyError, match="unknown model"):
        pool.build_pool(st, photos, ["default", "no_such_model"], survey="x", size=64)
    with pytest.raises(SurveyError, match="does not exist"):
        pool.build_pool(st, tmp_path / "nowhere", ["default"], survey="x", size=64)
    with pytest.raises(SurveyError, match="size"):
        pool.build_pool(st, photos, ["default"], survey="x", size=5000)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SurveyError, match="no usable color photo"):
        pool.build_pool(st, empty, ["default"], survey="x", size=64)
    assert st.survey_names() == []


def test_build_pool_all_models(tiny_weights_dir, photos, tmp_path):
    """--models all: one survey over every model whose weights are present (a copy of the tiny
    default under another name makes two), none for the missing official ones."""
    import shutil
    shutil.copyfile(next(tiny_weights_dir.glob("*.pt")), tiny_weights_dir / "second.pt")
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    pool.build_pool(st, photos, ["all"], survey="every", size=64, practice=0, attention=0)
    gen = st.stimuli_frame("every")
    gen = gen[gen["kind"] == "generated"]
    import colorizer
    assert set(gen["model"]) == {colorizer.DEFAULT_MODEL, "second"}
    for f in list(tiny_weights_dir.glob("*.pt")):
        f.unlink()
    with pytest.raises(SurveyError, match="no model has its weights present"):
        pool.build_pool(st, photos, ["all"], survey="none", size=64)


def test_extend_pool_skips_known_sources(tiny_weights_dir, photos, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    pool.build_pool(st, photos, ["default"], survey="s", size=64, practice=0, attention=0, repeats=0)
    n = len(st.stimuli_frame("s"))
    make_photos(photos, 8, seed=5)  # 2 new names (photo_006, photo_007), the rest known
    rep = pool.build_pool(st, photos, ["default"], survey="s", size=64, practice=0, attention=0,
                          repeats=0)
    assert sorted(rep.sources) == ["photo_006.png", "photo_007.png"]
    assert len(st.stimuli_frame("s")) == n + 4
    with pytest.raises(SurveyError, match="64 px"):
        pool.build_pool(st, photos, ["default"], survey="s", size=128)


def test_zip_upload(tiny_weights_dir, tmp_path):
    files = make_photos(tmp_path / "p", 5)
    zpath = tmp_path / "photos.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in files:
            z.write(f, f"holiday/{f.name}")
        z.writestr("../../evil.png", files[0].read_bytes())  # zip-slip: stays inside
        z.writestr("__MACOSX/._photo_000.png", b"junk")
        z.writestr("notes.txt", b"hello")
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    rep = pool.build_pool_from_zip(st, zpath, ["default"], survey="z", size=64, practice=0,
                                   attention=1)
    assert sorted(rep.sources) == sorted([f.name for f in files] + ["evil.png"])
    assert not (tmp_path.parent / "evil.png").exists()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK not a zip")
    with pytest.raises(SurveyError, match="not a readable zip"):
        pool.build_pool_from_zip(st, bad, ["default"], survey="z2", size=64)


def test_demo_survey_on_empty_database(tiny_weights_dir, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    note = pool.ensure_demo_survey(st)
    assert "demo" in note
    surveys = st.list_surveys()
    assert len(surveys) == 1 and surveys[0]["is_demo"] and surveys[0]["active"]
    assert surveys[0]["stimuli"]["real"] == len(pool.demo_photos()) >= 5
    assert surveys[0]["stimuli"]["generated"] == surveys[0]["stimuli"]["real"]
    assert pool.ensure_demo_survey(st) == "a survey exists already"
    assert len(st.list_surveys()) == 1
    v = st.start()
    assert v.stimulus_id and v.n_practice == 1


def test_demo_survey_without_weights(empty_weights_dir, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    assert "no colorization model" in pool.ensure_demo_survey(st)
    assert st.survey_names() == []


def test_stimulus_files(tiny_weights_dir, tmp_path):
    st = Store(f"sqlite:///{tmp_path / 't.db'}")
    pool.build_pool(st, make_photos(tmp_path / "p", 3), ["default"], survey="s", size=64,
                    practice=0, attention=0)
    files = pool.StimulusFiles(st, tmp_path / "cache")
    sid = st.stimuli_frame()["stimulus"].iloc[0]
    p = files.path(sid)
    assert open(p, "rb").read() == st.stimulus_image(sid)
    assert not Path(p).is_relative_to(files.folder)  # the stored copy is not served
    shown = files.show(sid, "ab12")
    assert Path(shown).parent == files.folder and sid not in shown and "ab12" not in shown
    assert open(shown, "rb").read() == st.stimulus_image(sid)
    assert files.show(sid, "ab12") == shown and files.show(sid, "cd34") != shown
    files.hide("ab12")
    assert not Path(shown).exists() and Path(p).exists()
    files.hide("ab12")  # twice: nothing to do
    again = pool.StimulusFiles(st, tmp_path / "cache")  # a restart: nothing left from before
    assert list(again.folder.iterdir()) == []


def _png_filters(data: bytes) -> set:
    """The filter bytes of an 8-bit RGB PNG's rows (encoders pick them from the content)."""
    import struct
    import zlib
    w, h = struct.unpack(">II", data[16:24])
    idat, i = b"", 8
    while i < len(data):
        n, = struct.unpack(">I", data[i:i + 4])
        if data[i + 4:i + 8] == b"IDAT":
            idat += data[i + 8:i + 8 + n]
        i += 12 + n
    raw = zlib.decompress(idat)
    return {raw[r * (3 * w + 1)] for r in range(h)}


def _png_chunk_types(data: bytes) -> set:
    import struct
    out, i = set(), 8
    while i < len(data):
        n, = struct.unpack(">I", data[i:i + 4])
        out.add(data[i + 4:i + 8])
        i += 12 + n
    return out


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "turing_test", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.heavy
def test_cli_build_pool_and_export(tiny_weights_dir, tmp_path, monkeypatch):
    import os
    photos = tmp_path / "photos"
    make_photos(photos, 6)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "TURING_DB_URL": url}
    r = run_cli("build-pool", "--photos", str(photos), "--models", "default", "--size", "64",
                "--survey", "cli_survey", "--practice", "1", "--max-trials", "4", env=env)
    assert r.returncode == 0, r.stderr
    assert "survey 'cli_survey': 6 source photos (1 kept for practice)" in r.stdout
    st = Store(url)
    assert st.active_survey()["max_trials"] == 4
    v = st.start("x")
    planned = v.n_trials  # 1 practice + 4 counted (+ a repeat if one of its photos has a twin)
    assert planned in (5, 6)
    while not v.finished:
        v = st.vote(v.participant_id, "real", v.token)
    out = tmp_path / "out" / "votes.csv"
    r = run_cli("export", "-o", str(out), "--aggregates", str(tmp_path / "agg"), env=env)
    assert r.returncode == 0, r.stderr
    import pandas as pd
    df = pd.read_csv(out)
    # the votes, then their flags under the survey's exclusion rules
    assert list(df.columns) == turing_test.VOTE_COLUMNS + ["fast", "excluded_participant",
                                                           "exclusion_reason"] and len(df) == planned
    assert (tmp_path / "agg" / "models.csv").exists()
    r = run_cli("surveys", env=env)
    assert "* cli_survey: 6 photos" in r.stdout and f"{planned} votes" in r.stdout
    r = run_cli("results", env=env)
    assert r.returncode == 0 and "fooling rate" in r.stdout
    # errors: a clear message, exit status 2, nothing written
    r = run_cli("build-pool", "--photos", str(photos), "--models", "nope", "--survey", "y", env=env)
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr
    assert "y" not in Store(url).survey_names()
