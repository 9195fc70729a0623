"""End to end in a real browser: Debian's headless Chromium, driven by Playwright, against the
real server (`python app.py` on a free port). Upload a photo, press Colorize, see the result,
save a screenshot; and see the message a bad upload gets.

Skips where /usr/bin/chromium or the playwright package is missing (.ci/run installs both).
"""
from __future__ import annotations

import io

import numpy as np
import pytest

from browser import chromium_page  # skips the module without Chromium
from PIL import Image

import apphelpers as H

SCREENSHOT = H.ARTIFACTS / "colorize_tab.png"



@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    work = tmp_path_factory.mktemp("app_browser")
    srv = H.AppServer(H.weights_with(tiny_checkpoint, work / "weights", extra_names=()), work)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    with chromium_page(width=1380) as pg:
        yield pg


def open_app(page, server):
    page.goto(server.url, wait_until="domcontentloaded")
    page.locator("#colorize-button").wait_for()


def upload(page, path):
    page.locator("#photo-input input[type=file]").set_input_files(str(path))
    page.locator("#photo-input img").first.wait_for()  # the upload shows as the input image


def test_upload_colorize_see_result_and_screenshot(server, page, tmp_path):
    open_app(page, server)
    src = H.save(tmp_path / "old_cat.jpg", Image.fromarray(H.gray_photo(300, 400)), quality=92)
    upload(page, src)
    page.locator("#colorize-button").click()
    message = page.locator("#result-message")
    message.get_by_text("Colorized").first.wait_for()
    assert "old_cat" in message.inner_text() and "Gray photo" in message.inner_text()
    # the before/after slider shows two images; the 'after' one is in color
    imgs = page.locator("#result-slider img")
    imgs.nth(1).wait_for()
    srcs = [imgs.nth(i).get_attribute("src") for i in range(imgs.count())]
    assert len(srcs) == 2
    after = np.asarray(Image.open(io.BytesIO(page.request.get(srcs[1]).body())).convert("RGB"))
    assert H.chroma_of(after).mean() > 5.0
    assert after.shape[:2] == (300, 400)
    # the full-resolution PNG is offered for download
    link = page.locator("#result-file a").first
    link.wait_for()
    png = Image.open(io.BytesIO(page.request.get(link.get_attribute("href")).body()))
    assert png.format == "PNG" and png.size == (400, 300)
    page.wait_for_timeout(500)  # let the slider finish drawing
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print(f"\nscreenshot: {SCREENSHOT}")
    assert SCREENSHOT.stat().st_size > 10_000


def test_bad_upload_shows_a_clear_message_in_the_page(server, page, tmp_path):
    open_app(page, server)
    upload(page, H.save(tmp_path / "dot.png", Image.new("L", (4, 3), 90)))
    page.locator("#colorize-button").click()
    page.get_by_text("dot.png is only 4 x 3 pixels: too small to colorize").first.wait_for()
    # a file over the upload limit (2 MB on this server) is refused with the limit stated
    page.locator("#photo-input button[aria-label='Remove Image']").first.click()
    page.locator("#photo-input input[type=file]").set_input_files(str(H.noise_png(tmp_path / "huge.png", 3)))
    page.get_by_text('exceed the maximum allowed size of 2.0 Mb: "huge.png"').first.wait_for()
    # the page still works: a good photo right after
    upload(page, H.save(tmp_path / "fine.png", Image.fromarray(H.gray_photo(60, 80))))
    page.locator("#colorize-button").click()
    page.locator("#result-message").get_by_text("Colorized").first.wait_for()
    assert server.alive()
