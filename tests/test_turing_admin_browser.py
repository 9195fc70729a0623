"""Building a survey's pool from the admin tab, end to end: the real app (`python app.py`, with
$TURING_DB_URL a temporary SQLite file, $TURING_ADMIN_TOKEN set and tiny random model weights),
Debian's headless Chromium driven by Playwright. The researcher enters the token, uploads a zip
of color photos, picks a model and a survey name and presses Build pool; the page says what was
built, the survey choice offers (and shows) the new survey, the database holds one real and one
colorized stimulus per photo, and a participant who starts gets one of its photos. Bad uploads
(no file, a file that is not a zip, a zip without photos, a zip of gray photos) get a clear
message in the page and write nothing. Saves tests/artifacts/turing_admin_build.png.

Skips where /usr/bin/chromium or the playwright package is missing (.ci/run installs both).
"""
from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import chromium_page  # skips the module without Chromium

import apphelpers as H
from turing_helpers import make_photos
from turing_test.pool import build_pool
from turing_test.store import Store

pytestmark = pytest.mark.browser

ADMIN = "zip-admin-token-42"
SCREENSHOT = H.ARTIFACTS / "turing_admin_build.png"
STIMULUS_NAME = re.compile(r"([0-9a-f]{32})\.png$")
MODEL = "lite0-scene"  # the tiny default model; "tiny2" (a copy) is the other choice


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    work = tmp_path_factory.mktemp("turing_admin_browser")
    weights = H.weights_with(tiny_checkpoint, work / "weights", extra_names=("tiny2.pt",))
    url = f"sqlite:///{work / 'turing.db'}"
    # a survey that exists before: the new one must be added next to it and become the active one
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLORIZER_WEIGHTS_DIR", str(weights))
        build_pool(Store(url), make_photos(work / "earlier_photos", 3, size=(90, 70), seed=9),
                   ["default"], survey="earlier", size=64, practice=0, attention=0, seed=2,
                   settings=dict(max_trials=7, completion_code="EARLY1"))
    srv = H.AppServer(weights, work, extra_env={
        "TURING_DB_URL": url, "TURING_ADMIN_TOKEN": ADMIN, "TURING_DEMO": "0",
        "TURING_STIMULUS_CACHE": str(work / "stimuli")})
    srv.db_url = url
    srv.work = work
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    with chromium_page(width=1380) as pg:
        yield pg


# --- the zips ------------------------------------------------------------------------------------

def color_zip(path: Path, n: int = 5) -> tuple[Path, list[str]]:
    """n small color photos (PNG and JPEG, in a folder), plus a gray photo and a text file that
    the pool must skip."""
    photos = make_photos(path.parent / "zip_src", n, size=(160, 120), seed=5)
    names = []
    with zipfile.ZipFile(path, "w") as z:
        for i, f in enumerate(photos):
            if i % 2:  # every other one as a JPEG
                buf = io.BytesIO()
                Image.open(f).convert("RGB").save(buf, "JPEG", quality=92)
                name = f.stem + ".jpg"
                z.writestr(f"holiday/{name}", buf.getvalue())
            else:
                name = f.name
                z.write(f, f"holiday/{name}")
            names.append(name)
        z.writestr("holiday/old_gray.png", png_bytes(np.full((80, 100), 120, np.uint8)))
        z.writestr("holiday/readme.txt", b"photos of our holiday")
    return path, names


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


# --- page helpers --------------------------------------------------------------------------------

def open_admin(page, server):
    page.goto(server.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Turing test: admin").click()
    page.get_by_label("Admin token").fill(ADMIN)
    page.get_by_role("button", name="Open dashboard").click()
    page.locator("#turing-admin-summary").get_by_text("counted votes").first.wait_for()
    page.get_by_role("tab", name="Build a pool").click()
    page.locator("#turing-build").wait_for()


def upload_zip(page, path: Path):
    box = page.locator("#turing-build-zip")
    clear = box.get_by_role("button", name="Clear")
    if clear.count():
        clear.first.click()
    box.locator("input[type=file]").set_input_files(str(path))
    # uploaded: the file is listed, with a link to the server's copy (the name shows as two
    # spans, stem and extension, so look for the cell's label rather than its text)
    box.locator(f'[aria-label="{path.name}"]').first.wait_for()
    box.locator(f'a[download="{path.name}"]').first.wait_for()


def choose_model(page, name: str):
    box = page.locator("#turing-build-models").get_by_label(name, exact=True)
    if not box.is_checked():
        box.check()


def survey_value(page) -> str:
    return page.locator("#turing-admin-survey input").first.input_value()


def survey_choices(page) -> list[str]:
    page.locator("#turing-admin-survey input").first.click()
    opts = page.get_by_role("option")
    opts.first.wait_for()
    names = [o.replace("\u2713", "").strip() for o in opts.all_inner_texts()]  # no check mark
    page.keyboard.press("Escape")
    # leave the box: while it has the focus, Gradio swallows the next click on a tab
    page.locator("#turing-admin-survey input").first.blur()
    return names


def wait_until(cond, timeout=60.0, what="condition"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def db_snapshot(url: str):
    st = Store(url)
    frame = st.stimuli_frame()
    return st.survey_names(), len(frame), sorted(frame["stimulus"]), st.active_survey()["name"]


# --- the tests -----------------------------------------------------------------------------------

def test_bad_uploads_show_a_clear_message_and_write_nothing(server, page, tmp_path):
    before = db_snapshot(server.db_url)
    open_admin(page, server)
    page.get_by_label("survey name (new, or one to extend)").fill("bad-attempt")
    choose_model(page, MODEL)
    msg = page.locator("#turing-build-msg")

    # nothing uploaded yet
    page.locator("#turing-build").click()
    page.get_by_text("upload a zip file of color photos first").first.wait_for()

    # a file named .zip that is no zip at all
    fake = tmp_path / "photos.zip"
    fake.write_bytes(b"these are not the photos you are looking for" * 20)
    upload_zip(page, fake)
    page.locator("#turing-build").click()
    page.get_by_text("the upload is not a readable zip file").first.wait_for()

    # an attention-check count that is no number
    attention = page.locator("#turing-build-attention textarea, #turing-build-attention input").first
    attention.fill("a few")
    page.locator("#turing-build").click()
    page.get_by_text("photos with an attention check: a whole number of 0 or more").first.wait_for()
    attention.fill("")

    # a zip without a single photo
    empty = tmp_path / "documents.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("notes.txt", b"no photos here")
        z.writestr("__MACOSX/._x.png", b"junk")
    upload_zip(page, empty)
    page.locator("#turing-build").click()
    page.get_by_text("the zip holds no photos").first.wait_for()

    # a zip of black-and-white photos only
    gray = tmp_path / "grays.zip"
    with zipfile.ZipFile(gray, "w") as z:
        z.writestr("a.png", png_bytes(np.full((80, 100), 90, np.uint8)))
        z.writestr("b.jpg", png_bytes(np.tile(np.arange(100, dtype=np.uint8), (80, 1))))
    upload_zip(page, gray)
    page.locator("#turing-build").click()
    page.get_by_text("no usable color photo was found").first.wait_for()
    page.get_by_text("gray (black-and-white) photo").first.wait_for()

    assert "source photos" not in msg.inner_text()  # no success message for any of them
    page.screenshot(path=str(H.ARTIFACTS / "turing_admin_build_error.png"), full_page=True)
    assert db_snapshot(server.db_url) == before
    assert server.alive()


def test_build_pool_from_zip_in_the_browser(server, page, tmp_path):
    zpath, names = color_zip(tmp_path / "holiday_photos.zip", n=5)
    open_admin(page, server)
    assert survey_value(page) == "earlier"  # the dashboard opens on the active survey
    before = Store(server.db_url).stimuli_frame()

    upload_zip(page, zpath)
    page.get_by_label("survey name (new, or one to extend)").fill("holiday")
    choose_model(page, MODEL)
    assert not page.locator("#turing-build-models").get_by_label("tiny2", exact=True).is_checked()
    page.get_by_label("size (px)").fill("128")
    page.locator("#turing-build").click()

    # the page says what was built (and what was skipped, and why)
    msg = page.locator("#turing-build-msg")
    msg.get_by_text("survey 'holiday': 5 source photos").first.wait_for(timeout=240_000)
    text = msg.inner_text()
    assert "5 real, 5 generated, 1 attention" in text, text
    assert "skipped old_gray.png" in text and "gray" in text, text
    # the survey choice offers the new survey and shows it, with its summary and settings
    wait_until(lambda: survey_value(page) == "holiday", 30, "the new survey to be chosen")
    page.locator("#turing-admin-summary").get_by_text("Survey 'holiday' (active").first.wait_for()
    assert "5 source photos: 5 real, 5 colorized, 1 attention checks" in \
        page.locator("#turing-admin-summary").inner_text()
    assert survey_choices(page) == ["earlier", "holiday"]
    page.wait_for_timeout(300)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print(f"\nscreenshot: {SCREENSHOT}")

    # the database: one real and one colorized (by the chosen model) stimulus per photo
    st = Store(server.db_url)
    assert st.survey_names() == ["earlier", "holiday"]
    assert st.active_survey()["name"] == "holiday" and not st.get_survey("earlier")["active"]
    assert st.get_survey("holiday")["image_size"] == 128
    everything = st.stimuli_frame("holiday")
    df = everything[everything["repeat_of"].isna()]  # the twins of a repeated photo apart
    twins = everything[everything["repeat_of"].notna()]
    assert sorted(df["source"].unique()) == sorted(names)
    for src, g in df.groupby("source"):
        kinds = g["kind"].value_counts().to_dict()
        assert kinds.get("real") == 1 and kinds.get("generated") == 1, (src, kinds)
        assert set(g.loc[g["kind"] == "generated", "model"]) == {MODEL}
    assert (df["kind"] == "attention").sum() == 1 and len(df) == 11
    # one photo (a tenth, at least one) gets a twin of its real and its colorized version
    assert len(twins) == 2 and set(twins["repeat_of"]) <= set(df["stimulus"])
    assert everything["stimulus"].str.fullmatch(r"[0-9a-f]{16}").all()
    blobs = st.stimulus_images(df["stimulus"])
    for sid in df["stimulus"]:
        im = Image.open(io.BytesIO(blobs[sid]))
        assert im.format == "PNG" and im.size == (128, 128)
    # the earlier survey is untouched
    assert st.stimuli_frame("earlier").equals(before[before["survey"] == "earlier"].reset_index(drop=True))

    # the Settings tab now holds the new survey's settings, not those of the survey shown before
    page.get_by_role("tab", name="Settings").click()
    code = page.get_by_label("completion code (shown at the end").first
    wait_until(lambda: code.input_value() == st.get_survey("holiday")["completion_code"], 10,
               "the new survey's completion code")
    assert page.get_by_label("counted trials per participant").first.input_value() == "20"
    assert st.get_survey("earlier")["completion_code"] == "EARLY1"

    # a participant in the browser gets a photo of the new survey, served under a name of its
    # trial (neither the stimulus id nor the token)
    ids = set(df["stimulus"])
    page.get_by_role("tab", name="Turing test", exact=True).click()
    page.get_by_role("button", name="I agree, start").click()
    img = page.locator("#turing-stimulus img").first
    img.wait_for()
    src = img.get_attribute("src")
    m = STIMULUS_NAME.search(src.split("?")[0])
    assert m and m.group(1) not in ids, src
    served = page.request.get(src)
    assert served.ok and served.body() in set(blobs.values())
    assert (server.work / "stimuli" / "shown" / f"{m.group(1)}.png").is_file()

    # and so does one through the public API (gradio_client)
    from gradio_client import Client
    image, progress, feedback, end, token, exposure = Client(server.url, verbose=False).predict(
        "", api_name="/turing_start")
    m = STIMULUS_NAME.search(Path(image).name)
    assert m and m.group(1) not in ids and not end and token, (image, end)
    assert Path(image).read_bytes() in set(blobs.values())
    assert len(Store(server.db_url).participants_frame("holiday")) == 2
    assert server.alive()

    # building again with a bad zip: an error, nothing written, and the page no longer shows the
    # success message of the build before
    after = db_snapshot(server.db_url)
    page.get_by_role("tab", name="Turing test: admin").click()
    page.get_by_role("tab", name="Build a pool").click()
    assert "survey 'holiday'" in msg.inner_text()  # still there from the build
    bad = tmp_path / "again.zip"
    bad.write_bytes(b"PK\x03\x04 broken")
    upload_zip(page, bad)
    page.locator("#turing-build").click()
    page.get_by_text("the upload is not a readable zip file").first.wait_for()
    wait_until(lambda: "source photos" not in msg.inner_text(), 10, "the old message to go")
    assert db_snapshot(server.db_url) == after
