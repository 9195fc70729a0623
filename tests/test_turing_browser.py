"""The participant tab in a real browser (Debian's headless Chromium, driven by Playwright):
the Prolific id from the URL, consent and start, the limited exposure, the buttons and the
keyboard keys, the end screen; and the admin dashboard. Saves screenshots under
tests/artifacts/.

Skips where /usr/bin/chromium or the playwright package is missing (.ci/run installs both).
"""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import pytest

from browser import chromium_page  # skips the module without Chromium

from turing_test import export_votes
from turing_test.pool import build_pool
from turing_test.store import Store
from turing_helpers import free_port, make_photos

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ADMIN = "browser-admin-token"



@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    tmp = tmp_path_factory.mktemp("turing_browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLORIZER_WEIGHTS_DIR", str(tiny_checkpoint.parent))
        url = f"sqlite:///{tmp / 'turing.db'}"
        build_pool(Store(url), make_photos(tmp / "photos", 8, size=(160, 120)), ["default"],
                   survey="browser", size=128, practice=1, attention=1, repeats=0, seed=4,
                   settings=dict(max_trials=3, n_practice=1, n_attention=1, exposure_ms=700,
                                 completion_code="BRWS42"))
        from turing_test.ui import build_turing_tabs
        with gr.Blocks() as demo:
            with gr.Tabs():
                build_turing_tabs(db_url=url, admin_token=ADMIN, demo_survey=False,
                                  stimulus_cache=tmp / "cache")
        demo.queue()
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                    quiet=True, ssr_mode=False)
        try:
            yield {"base": f"http://127.0.0.1:{port}/", "url": url}
        finally:
            demo.close()


@pytest.fixture(scope="module")
def page():
    with chromium_page(width=1100) as pg:
        yield pg


def stimulus_visible(page) -> bool:
    return page.evaluate("() => getComputedStyle(document.getElementById('turing-stimulus')).visibility") == "visible"


def current_src(page) -> str:
    return page.locator("#turing-stimulus img").first.get_attribute("src") or ""


def wait_new_image(page, old_src: str, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        src = current_src(page) if page.locator("#turing-stimulus img").count() else ""
        if src and src != old_src:
            return src
        time.sleep(0.05)
    raise AssertionError("no new image")


def test_participant_in_browser(server, page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(server["base"] + "?PROLIFIC_PID=5f9e8d7c6b5a4&STUDY_ID=studyB&SESSION_ID=sess1",
              wait_until="domcontentloaded")
    pid_box = page.get_by_label("Participant id (optional)")
    pid_box.wait_for()
    t0 = time.time()
    while pid_box.input_value() != "5f9e8d7c6b5a4" and time.time() - t0 < 20:
        time.sleep(0.1)
    assert pid_box.input_value() == "5f9e8d7c6b5a4"  # taken from the URL
    page.get_by_role("button", name="I agree, start").click()
    page.locator("#turing-stimulus img").first.wait_for()
    src1 = current_src(page)
    assert src1.rsplit("/", 1)[-1].split("?")[0][:-4].isalnum()
    page.get_by_text("Practice 1 of 1").wait_for()
    # shown, then hidden after the exposure time (700 ms)
    t0 = time.time()
    while not stimulus_visible(page) and time.time() - t0 < 10:
        time.sleep(0.02)
    assert stimulus_visible(page)
    page.screenshot(path=str(ARTIFACTS / "turing_trial.png"))
    time.sleep(1.2)
    assert not stimulus_visible(page), "the photo should be hidden after its exposure time"

    page.locator("#turing-real").click()  # practice vote with the button
    src2 = wait_new_image(page, src1)
    page.get_by_text("Practice:").wait_for()  # feedback on the practice trial
    page.get_by_text("Photo 1 of 3").wait_for()
    page.keyboard.press("c")  # the keyboard: C = colorized
    src3 = wait_new_image(page, src2)
    page.get_by_text("Photo 2 of 3").wait_for()
    page.keyboard.press("r")
    wait_new_image(page, src3)
    page.get_by_text("Photo 3 of 3").wait_for()
    page.locator("#turing-fake").click()
    page.get_by_text("Your completion code").wait_for()
    assert "BRWS42" in page.content()
    page.screenshot(path=str(ARTIFACTS / "turing_end.png"))

    df = export_votes(server["url"])
    assert len(df) == 4 and df["practice"].tolist() == [True, False, False, False]
    assert df["answer_real"].tolist()[1:] == [False, True, False]
    # response times measured in the browser, from the photo's appearance
    assert df["response_ms"].notna().all() and (df["response_ms"] > 0).all()
    parts = Store(server["url"]).participants_frame()
    assert parts.loc[0, "external_id"] == "5f9e8d7c6b5a4" and parts.loc[0, "study_id"] == "studyB"


def test_admin_dashboard_in_browser(server, page):
    page.goto(server["base"], wait_until="domcontentloaded")
    page.get_by_role("tab", name="Turing test: admin").click()
    page.get_by_label("Admin token").fill("not the token")
    page.get_by_role("button", name="Open dashboard").click()
    page.get_by_text("wrong or missing admin token").first.wait_for()
    assert not page.get_by_text("counted votes").count()
    page.get_by_label("Admin token").fill(ADMIN)
    page.get_by_role("button", name="Open dashboard").click()
    page.get_by_text("counted votes").first.wait_for()
    page.get_by_text("Excluded by the survey's rules").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "turing_admin.png"), full_page=True)


def _launch(url: str, cache: Path, port: int):
    from turing_test.ui import build_turing_tabs
    with gr.Blocks() as demo:
        with gr.Tabs():
            build_turing_tabs(db_url=url, admin_token=ADMIN, demo_survey=False, stimulus_cache=cache)
    demo.queue()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                ssr_mode=False)
    return demo


def test_the_same_browser_continues_after_a_restart_and_another_gets_nothing(page, tmp_path, tiny_checkpoint,
                                                                            monkeypatch):
    """An anonymous participant votes twice, the server is stopped and started again on the same
    database: the same browser, pressing Start, continues at the third photo (the resume secret
    is in its localStorage); a fresh browser starts a new participant."""
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(tiny_checkpoint.parent))
    url = f"sqlite:///{tmp_path / 'turing.db'}"
    build_pool(Store(url), make_photos(tmp_path / "photos", 8, size=(160, 120)), ["default"],
               survey="again", size=96, practice=0, attention=0, repeats=0, seed=5,
               settings=dict(max_trials=5, n_practice=0, n_attention=0, exposure_ms=0))
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    demo = _launch(url, tmp_path / "cache", port)
    try:
        if True:  # (the page of this module: this server's port is new to it, so is its storage)
            pg = page
            pg.goto(base, wait_until="domcontentloaded")
            pg.get_by_role("button", name="I agree, start").click()
            pg.locator("#turing-stimulus img").first.wait_for()
            pg.get_by_text("Photo 1 of 5").wait_for()
            seen = [current_src(pg)]
            pg.locator("#turing-real").click()
            seen.append(wait_new_image(pg, seen[0]))
            pg.get_by_text("Photo 2 of 5").wait_for()
            pg.locator("#turing-fake").click()
            wait_new_image(pg, seen[1])
            pg.get_by_text("Photo 3 of 5").wait_for()
            shown_before = Store(url).votes_frame()["stimulus"].tolist()
            assert len(shown_before) == 2

            demo.close()  # the server goes away (its Gradio sessions with it) ...
            demo = _launch(url, tmp_path / "cache", port)  # ... and comes back
            pg.goto(base, wait_until="domcontentloaded")
            pg.get_by_role("button", name="I agree, start").click()
            pg.get_by_text("Photo 3 of 5").wait_for()
            pg.get_by_text("continue where you left off").wait_for()
            pg.locator("#turing-real").click()
            pg.get_by_text("Photo 4 of 5").wait_for()
            votes = Store(url).votes_frame()
            assert len(votes) == 3 and votes["participant"].nunique() == 1
            assert votes["stimulus"].is_unique  # never a photo it had judged
        fresh = page.context.browser.new_context()  # another browser: a new participant
        try:
            other = fresh.new_page()
            other.goto(base, wait_until="domcontentloaded")
            other.get_by_role("button", name="I agree, start").click()
            other.get_by_text("Photo 1 of 5").wait_for()
        finally:
            fresh.close()
        assert len(Store(url).participants_frame()) == 2
    finally:
        demo.close()


def test_the_pair_paradigm_in_the_browser(page, tmp_path, tiny_checkpoint, monkeypatch):
    """Two photos side by side (a real one and its colorization, sides at random), "which one
    is colorized?" with the buttons and the L / R keys, practice feedback, the end screen."""
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(tiny_checkpoint.parent))
    url = f"sqlite:///{tmp_path / 'pair.db'}"
    build_pool(Store(url), make_photos(tmp_path / "photos", 10, size=(160, 120)), ["default"],
               survey="pairs", size=128, practice=2, attention=1, repeats=0, paradigm="pair", seed=6,
               settings=dict(max_trials=3, n_practice=1, n_attention=1, exposure_ms=0,
                             completion_code="PAIR77"))
    port = free_port()
    demo = _launch(url, tmp_path / "cache", port)
    try:
        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
        page.get_by_role("button", name="I agree, start").click()
        page.get_by_text("Which one is colorized?").wait_for()
        assert page.locator("#turing-left").is_visible() and not page.locator("#turing-real").is_visible()
        img = page.locator("#turing-stimulus img").first
        img.wait_for()
        t0 = time.time()
        while not img.evaluate("el => el.complete && el.naturalWidth > 0") and time.time() - t0 < 10:
            time.sleep(0.05)
        assert img.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [2 * 128 + 16, 128]
        page.screenshot(path=str(ARTIFACTS / "turing_pair.png"))
        src = current_src(page)
        page.locator("#turing-left").click()  # practice: feedback says which was colorized
        page.get_by_text("Practice:").wait_for()
        src = wait_new_image(page, src)
        page.keyboard.press("r")  # the keys: R = the right one
        src = wait_new_image(page, src)
        page.keyboard.press("l")
        src = wait_new_image(page, src)
        page.locator("#turing-right").click()
        page.get_by_text("Your completion code").wait_for()
        assert "PAIR77" in page.content()
        votes = export_votes(url)
        assert len(votes) == 4 and set(votes["kind"]) <= {"pair", "pair_catch"}
        assert votes["fooled"].notna().all() and votes["server_ms"].notna().all()
    finally:
        demo.close()
