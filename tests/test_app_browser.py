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

pytestmark = pytest.mark.browser

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


def colorize_upload(page, path):
    """Upload a photo, press Colorize and wait for the result's message."""
    upload(page, path)
    page.locator("#colorize-button").click()
    page.locator("#result-message").get_by_text("Colorized").first.wait_for()


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
    colorize_upload(page, H.save(tmp_path / "fine.png", Image.fromarray(H.gray_photo(60, 80))))
    assert server.alive()


# --- color hints and variations ------------------------------------------------------------------

HINTS_SCREENSHOT = H.ARTIFACTS / "colorize_hints.png"


def _png(page) -> tuple[str, np.ndarray]:
    """(name, pixels) of the full-resolution PNG offered for download now."""
    link = page.locator("#result-file a").first
    link.wait_for()
    href = link.get_attribute("href")
    return href, np.asarray(Image.open(io.BytesIO(page.request.get(href).body())).convert("RGB"))


def _next_png(page, old_href: str) -> np.ndarray:
    page.wait_for_function("old => { const a = document.querySelector('#result-file a');"
                           " return a && a.getAttribute('href') !== old; }", arg=old_href)
    return _png(page)


def _hint_rows(page) -> list[tuple[str, int, int, bool]]:
    """The hint list: (hex, x, y, selected) per hint."""
    import re
    text = page.locator("#hint-list").inner_text()
    return [(m[0], int(m[1]), int(m[2]), bool(m[3]))
            for m in re.findall(r"(#[0-9a-f]{6}) at \((\d+), (\d+)\)( selected)?", text)]


def _click_photo(img, fx: float, fy: float, full_w: int, full_h: int) -> tuple[int, int]:
    """Click the hint view at a fraction (fx, fy) of the picture drawn in it (letterboxed in
    its element); returns the full-resolution pixel that lies there."""
    box = img.bounding_box()
    nw, nh = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    r = min(box["width"] / nw, box["height"] / nh, 1.0)
    ox, oy = (box["width"] - nw * r) / 2, (box["height"] - nh * r) / 2
    img.click(position={"x": ox + fx * nw * r, "y": oy + fy * nh * r})
    return int(fx * full_w), int(fy * full_h)


def test_hints_click_pick_colors_undo_and_clear(server, page, tmp_path):
    from colorizer import lab

    open_app(page, server)
    colorize_upload(page, H.save(tmp_path / "street.png", Image.fromarray(H.gray_photo(300, 400))))
    href, plain = _png(page)
    page.get_by_text("Color hints: click on the photo").click()
    page.locator("#hint-list").get_by_text("No hints yet").wait_for()

    # a click on the photo places a hint there, with the model's first suggestion
    img = page.locator("#hint-image img").first
    img.wait_for()
    x, y = _click_photo(img, 0.25, 0.5, 400, 300)
    page.locator("#hint-list").get_by_text("1 hint").wait_for()
    [(hex1, hx, hy, selected)] = _hint_rows(page)
    assert abs(hx - x) <= 2 and abs(hy - y) <= 2 and selected, (hx, hy, x, y)
    assert "With 1 color hint" in page.locator("#result-message").inner_text()
    href, hinted = _next_png(page, href)
    assert hinted.shape == (300, 400, 3) and not np.array_equal(hinted, plain)
    swatches = page.locator("#hint-suggestions img")
    swatches.nth(5).wait_for()
    assert swatches.count() == 6

    # another suggested color for the selected hint
    swatches.nth(2).click()
    page.wait_for_function("old => !document.querySelector('#hint-list').innerText.includes(old)", arg=hex1)
    href, recolored = _next_png(page, href)
    assert not np.array_equal(recolored, hinted)

    # any color from the color picker (typed into its dialog): only its chroma is used
    picker = page.locator("#hint-color")
    picker.locator("button.dialog-button").click()
    hex2 = _hint_rows(page)[0][0]
    field = picker.locator(".input-wrap input")
    field.fill("#2040c0")
    field.press("Tab")
    page.locator("#hint-list").click()  # focus leaves the picker: the color is applied
    page.wait_for_function("old => !document.querySelector('#hint-list').innerText.includes(old)", arg=hex2)
    hex3 = _hint_rows(page)[0][0]
    rgb3 = np.array([[[int(hex3[i:i + 2], 16) for i in (1, 3, 5)]]], np.uint8)
    assert lab.rgb_to_lab(rgb3)[0, 0, 2] < -10, hex3  # blue: negative b
    href, _ = _next_png(page, href)

    # a second hint; a click on the first marker selects it again
    _click_photo(img, 0.75, 0.3, 400, 300)
    page.locator("#hint-list").get_by_text("2 hints").wait_for()
    assert [r[3] for r in _hint_rows(page)] == [False, True]
    href, _ = _next_png(page, href)
    _click_photo(img, 0.25, 0.5, 400, 300)
    page.wait_for_function("() => document.querySelector('#hint-list li')"
                           ".classList.contains('hint-selected')")
    assert [r[3] for r in _hint_rows(page)] == [True, False]
    page.wait_for_timeout(300)
    HINTS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(HINTS_SCREENSHOT), full_page=True)

    # undo removes the last hint; clear removes all and gives the plain result back
    page.locator("#hint-undo").click()
    page.locator("#hint-list").get_by_text("1 hint").wait_for()
    href, _ = _next_png(page, href)
    page.locator("#hint-clear").click()
    page.locator("#hint-list").get_by_text("No hints yet").wait_for()
    _, cleared = _next_png(page, href)
    assert np.array_equal(cleared, plain)
    assert "color hint" not in page.locator("#result-message").inner_text()
    assert server.alive()


def test_variations_gallery_pick_one_as_the_result(server, page, tmp_path):
    open_app(page, server)
    colorize_upload(page, H.save(tmp_path / "harbour.png", Image.fromarray(H.gray_photo(150, 200))))
    href, _ = _png(page)
    page.get_by_text("Variations: several plausible").click()
    page.locator("#variations-button").click()
    page.locator("#variations-message").get_by_text("4 variations").first.wait_for()
    thumbs = page.locator("#variations-gallery img")
    thumbs.nth(3).wait_for()
    assert thumbs.count() == 4
    thumbs.nth(1).click()
    page.locator("#result-message").get_by_text("Variation 2 of 4").first.wait_for()
    _, picked = _next_png(page, href)
    assert picked.shape == (150, 200, 3)
    assert "harbour_variation_2" in page.locator("#result-file").inner_text()


def test_model_menu_says_in_one_line_what_each_model_is(server, page):
    from colorizer.registry import DEFAULT_MODEL, REGISTRY
    open_app(page, server)
    page.locator("#model-choice input").first.click()
    option = page.get_by_role("option").filter(has_text=DEFAULT_MODEL).first
    option.wait_for()
    text = option.inner_text().replace("\u2713", "").strip()  # the chosen one is ticked
    assert text == f"{DEFAULT_MODEL} (default): {REGISTRY[DEFAULT_MODEL].summary}"
    page.keyboard.press("Escape")
