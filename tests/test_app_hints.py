"""Color hints and variations through the web app's API: the real server (`python app.py` in a
subprocess) driven with gradio_client, as in test_app.py.

The server runs the tiny random default model (conftest.tiny_checkpoint: it takes hints and
predicts a distribution over ab bins) and `plain`, a tiny regression model that does neither.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

import apphelpers as H  # noqa: E402
from colorizer import lab  # noqa: E402
from colorizer.registry import REGISTRY  # noqa: E402
from conftest import build_tiny_vae_gan  # noqa: E402

pytestmark = pytest.mark.server

W, HT = 120, 90  # the test photo's size
HINTS = [{"x": 30, "y": 20, "color": "#1f5fd0"}, [90, 60, 0.0, -60.0]]


def _plain_checkpoint(path):
    """A tiny regression model (one color per pixel, no hints) of the default's architecture."""
    import torch
    from colorizer.models import build_model
    from colorizer.weights import save_checkpoint

    args = {"encoder": "efficientnet_lite0", "decoder_channels": [32, 16, 16], "head": "regression"}
    torch.manual_seed(1)
    model = build_model("backbone_unet", **args)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    save_checkpoint(path, model.eval(), "backbone_unet", args, meta={"input_size": 128})
    return path


def _vae_gan_checkpoint(path):
    """A tiny VAE-GAN (the tiny default given a latent code whose projections are random)."""
    from colorizer.train import AB_BINS_313
    from colorizer.weights import save_checkpoint
    model, args = build_tiny_vae_gan(np.load(AB_BINS_313).astype(np.float32))
    save_checkpoint(path, model, "vae_gan", args, meta={"input_size": 128})
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    work = tmp_path_factory.mktemp("app_hints")
    weights = H.weights_with(tiny_checkpoint, work / "weights", extra_names=())
    _plain_checkpoint(weights / "plain.pt")
    _vae_gan_checkpoint(weights / REGISTRY["vae-gan"].weights)
    (weights / "broken.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    srv = H.AppServer(weights, work)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def user(server) -> Client:
    return Client(server.url, verbose=False, analytics_enabled=False,
                  download_files=str(server.log_path.parent / "downloads"))


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    return H.save(tmp_path_factory.mktemp("hint_inputs") / "gray.png",
                  Image.fromarray(H.gray_photo(HT, W)))


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def ab_diff(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel distance between two results' chroma (Lab a, b)."""
    return np.linalg.norm(lab.rgb_to_lab(x)[..., 1:] - lab.rgb_to_lab(y)[..., 1:], axis=-1)


def colorize_hints(c: Client, path, hints, model="default", **kw):
    """/colorize_hints -> (png, (before, after), message)."""
    spec = hints if isinstance(hints, str) else json.dumps(hints)
    photo = handle_file(str(path)) if path is not None else None
    return c.predict(photo, model, spec, api_name="/colorize_hints", **kw)


# --- the API's shape ----------------------------------------------------------------------------

def test_hint_and_variation_endpoints_are_public_and_the_page_controls_are_not(user):
    api = user.view_api(return_format="dict", print_info=False)["named_endpoints"]
    params = {name: [p["parameter_name"] for p in e["parameters"]] for name, e in api.items()}
    assert params["/colorize_hints"][:4] == ["photo", "model_name", "hints", "input_size"]
    assert params["/suggest_colors"][:4] == ["photo", "model_name", "x", "y"]
    assert params["/variations"][:5] == ["photo", "model_name", "n", "seed", "hints"]
    # the existing contract is untouched: the page's hints are a gr.State, not a parameter
    assert params["/colorize"] == ["photo", "model_name", "input_size", "vividness", "reference"]
    assert len(api["/colorize"]["returns"]) == 3
    # hint clicks, swatches, undo, clear and picking a variation are the page's own events
    assert not any(re.search(r"hint_click|swatch|undo|clear|pick|render", n) for n in api), sorted(api)


# --- colorizing with hints ------------------------------------------------------------------------

def test_hints_change_the_colors_near_them_and_no_hints_is_the_plain_result(user, gray):
    plain, _, _ = user.predict(handle_file(str(gray)), "default", api_name="/colorize")
    base = rgb(plain)
    for empty in ("", "[]", "  "):
        png, _, message = colorize_hints(user, gray, empty)
        assert np.array_equal(rgb(png), base), f"hints {empty!r} changed the result"
        assert "color hint" not in message

    png, (before, after), message = colorize_hints(user, gray, HINTS)
    out = rgb(png)
    assert out.shape == (HT, W, 3)
    assert "With **2 color hints**" in message
    # only chroma changes: the lightness stays the photo's own
    assert np.abs(lab.rgb_to_lightness(out) - lab.rgb_to_lightness(base)).mean() < 1.0
    d = ab_diff(out, base)
    near = [d[y - 4:y + 5, x - 4:x + 5].mean() for x, y in ((30, 20), (90, 60))]
    far = d[70:, :15].mean()  # a corner away from both hints
    assert min(near) > 1.5 and min(near) > 3 * far, (near, far)  # about 2.2 and 0.3 here

    # every form parse_hints accepts gives the same result for the same hint
    a, b = (float(v) for v in lab.rgb_to_lab(np.array([[[0x1f, 0x5f, 0xd0]]], np.uint8))[0, 0, 1:])
    for spec in ([[30, 20, "#1f5fd0"], [90, 60, 0, -60]],
                 [{"x": 30, "y": 20, "a": a, "b": b}, {"x": 90, "y": 60, "a": 0, "b": -60}]):
        assert np.array_equal(rgb(colorize_hints(user, gray, spec)[0]), out), spec


def test_a_hint_pulls_its_own_point_towards_the_hinted_chroma(user, gray):
    """On the tiny random model a hint's effect is not trained, but hints at opposite colors at
    the same point must give different results there."""
    blue = rgb(colorize_hints(user, gray, [{"x": 60, "y": 45, "a": 0, "b": -70}])[0])
    red = rgb(colorize_hints(user, gray, [{"x": 60, "y": 45, "a": 70, "b": 40}])[0])
    assert ab_diff(blue, red)[41:50, 56:65].mean() > 2.0


def test_settings_apply_with_hints_and_metrics_follow_the_hinted_result(user, tmp_path):
    truth = H.photo(HT, W)
    src = H.save(tmp_path / "color.png", Image.fromarray(truth))
    png, _, message = colorize_hints(user, src, HINTS, vividness=0.0)
    assert H.chroma(png).max() < 1.5  # vividness 0 still wins
    png, _, message = colorize_hints(user, src, HINTS, input_size=512)
    assert "at 512 px" in message
    result, table, _ = user.predict(api_name="/metrics")  # /metrics measures the hinted result
    assert result["photo"] == "color" and "PSNR" in table


def test_colorize_keeps_ignoring_hints_after_colorize_hints_in_the_same_session(user, gray):
    plain = rgb(user.predict(handle_file(str(gray)), "default", api_name="/colorize")[0])
    colorize_hints(user, gray, HINTS)
    again = rgb(user.predict(handle_file(str(gray)), "default", api_name="/colorize")[0])
    assert np.array_equal(plain, again)


# --- suggestions ------------------------------------------------------------------------------------

def test_suggest_colors_gives_distinct_colors_most_likely_first(user, gray):
    rows = user.predict(handle_file(str(gray)), "default", 30, 20, api_name="/suggest_colors")
    assert len(rows) == 6
    hexes = [r["hex"] for r in rows]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", h) for h in hexes), hexes
    assert len(set(hexes)) == 6
    probs = [r["probability"] for r in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    abs_ = [(r["a"], r["b"]) for r in rows]
    assert len(set(abs_)) == 6
    # another point of the photo, or other hints nearby, change what the model suggests
    other = user.predict(handle_file(str(gray)), "default", 100, 80, api_name="/suggest_colors")
    assert [r["probability"] for r in other] != probs
    hinted = user.predict(handle_file(str(gray)), "default", 30, 20, json.dumps([[32, 22, 0, -60]]),
                          api_name="/suggest_colors")
    assert [r["probability"] for r in hinted] != probs


# --- variations ---------------------------------------------------------------------------------------

def test_variations_are_n_different_full_size_results(user, gray):
    gallery, message, pngs = user.predict(handle_file(str(gray)), "default", 3, 7,
                                          api_name="/variations")
    assert len(gallery) == 3 and len(pngs) == 3
    imgs = [rgb(g["image"]) for g in gallery]
    assert all(im.shape == (HT, W, 3) for im in imgs)
    assert [g["caption"] for g in gallery] == ["variation 1", "variation 2", "variation 3"]
    for i in range(3):
        assert np.array_equal(rgb(pngs[i]), imgs[i])  # the gallery holds the full-size PNGs
        # the photo's own lightness (up to gamut clipping of the random model's vivid colors)
        assert abs(lab.rgb_to_lightness(imgs[i]) - lab.rgb_to_lightness(H.gray_photo(HT, W))).mean() < 3.0
        for j in range(i):
            assert ab_diff(imgs[i], imgs[j]).mean() > 2.0, (i, j)
    assert "**3 variations**" in message and "seed 7" in message
    # the same seed gives the same variations, another seed others
    same = user.predict(handle_file(str(gray)), "default", 3, 7, api_name="/variations")[0]
    assert all(np.array_equal(rgb(g["image"]), im) for g, im in zip(same, imgs))
    other = user.predict(handle_file(str(gray)), "default", 3, 8, api_name="/variations")[0]
    assert not np.array_equal(rgb(other[0]["image"]), imgs[0])
    # hints steer the variations too
    hinted, message, _ = user.predict(handle_file(str(gray)), "default", 3, 7, json.dumps(HINTS),
                                      api_name="/variations")
    assert "2 color hints" in message
    assert not np.array_equal(rgb(hinted[0]["image"]), imgs[0])
    # the vividness setting applies; no seed: a random one, said in the message
    gray_out, message, _ = user.predict(handle_file(str(gray)), "default", 2, None, "", 256, 0.0,
                                        api_name="/variations")
    assert all(H.chroma(g["image"]).max() < 1.5 for g in gray_out)
    assert re.search(r"seed \d+ \(random\)", message), message


def test_vae_gan_variations_are_latent_samples_and_menus_say_what_each_model_is(user, gray):
    gallery, message, pngs = user.predict(handle_file(str(gray)), "vae-gan", 3, 7, api_name="/variations")
    imgs = [rgb(g["image"]) for g in gallery]
    assert len(imgs) == 3 and all(im.shape == (HT, W, 3) for im in imgs)
    for i in range(3):
        for j in range(i):
            assert ab_diff(imgs[i], imgs[j]).mean() > 2.0, (i, j)
    assert "**3 variations**" in message and "vae-gan" in message
    same = user.predict(handle_file(str(gray)), "vae-gan", 3, 7, api_name="/variations")[0]
    assert all(np.array_equal(rgb(g["image"]), im) for g, im in zip(same, imgs))
    # colorize uses z = 0: one answer, none of the samples
    plain = rgb(user.predict(handle_file(str(gray)), "vae-gan", api_name="/colorize")[0])
    assert all(ab_diff(plain, im).mean() > 0.5 for im in imgs)
    models = {m["name"]: m for m in user.predict(api_name="/models")}
    assert {"vae-gan", "plain"} <= set(models)
    assert models["vae-gan"]["summary"].startswith("VAE-GAN") and models["plain"]["summary"] == ""


# --- bad input: a clear message, and the server keeps serving --------------------------------------

def _plain_model_photo(c, gray):
    return colorize_hints(c, gray, HINTS, model="plain")


BAD = {
    "bad JSON": (lambda c, g: colorize_hints(c, g, '[{"x": 10, "y": 20, "color": '),
                 "hints must be a JSON list"),
    "hint outside the photo": (lambda c, g: colorize_hints(c, g, [{"x": 500, "y": 10, "color": "#ff0000"}]),
                               "hint 0 at (500, 10) lies outside the 120 x 90 photo"),
    "not a color": (lambda c, g: colorize_hints(c, g, [{"x": 5, "y": 5, "color": "blueish"}]),
                    "'blueish' is not a colour"),
    "hint without a color": (lambda c, g: colorize_hints(c, g, [{"x": 5, "y": 5}]),
                             "hint 0 needs a color"),
    "model without hints": (_plain_model_photo, "model 'plain' does not take color hints"),
    "no photo": (lambda c, g: colorize_hints(c, None, HINTS), "upload a photo first"),
    "too many variations": (lambda c, g: c.predict(handle_file(str(g)), "default", 9, 0,
                                                   api_name="/variations"),
                            "9 is greater than maximum value 8"),
    "too few variations": (lambda c, g: c.predict(handle_file(str(g)), "default", 1, 0,
                                                  api_name="/variations"),
                           "1 is less than minimum value 2"),
    "negative seed": (lambda c, g: c.predict(handle_file(str(g)), "default", 3, -4,
                                             api_name="/variations"),
                      "-4 is less than minimum value 0"),
    "variations of a regression model": (
        lambda c, g: c.predict(handle_file(str(g)), "plain", 3, 0, api_name="/variations"),
        "model 'plain' predicts one color per pixel"),
    "variations with a bad hint": (
        lambda c, g: c.predict(handle_file(str(g)), "default", 3, 0, '[[1, 2]]', api_name="/variations"),
        "hint 0 must be"),
    "variations without a photo": (lambda c, g: c.predict(None, "default", 3, 0, api_name="/variations"),
                                   "upload a photo first"),
    "suggestion outside the photo": (
        lambda c, g: c.predict(handle_file(str(g)), "default", 120, 10, api_name="/suggest_colors"),
        "point (120, 10) lies outside the 120 x 90 photo"),
    "suggestions of a regression model": (
        lambda c, g: c.predict(handle_file(str(g)), "plain", 5, 5, api_name="/suggest_colors"),
        "model 'plain' cannot suggest colors"),
    "unknown model": (lambda c, g: colorize_hints(c, g, HINTS, model="nope"), "unknown model 'nope'"),
    # issue 18: values the sliders cannot hold, hints nested or sized to exhaust the parser, a name
    # of 10,000 characters (cut, not echoed back in full)
    "working resolution not a number": (
        lambda c, g: c.predict(handle_file(str(g)), "default", "abc", 1.0, None, api_name="/colorize"),
        "the working resolution (px) must be a number from 128 to 1024, got 'abc'"),
    "vividness not a number": (
        lambda c, g: c.predict(handle_file(str(g)), "default", 256, "abc", None, api_name="/colorize"),
        "vividness must be a number from 0 to 2, got 'abc'"),
    "number of variations not a number": (
        lambda c, g: c.predict(handle_file(str(g)), "default", "many", 0, api_name="/variations"),
        "the number of variations must be a number from 2 to 8, got 'many'"),
    "hints nested 100,000 deep": (
        lambda c, g: colorize_hints(c, g, "[" * 5000 + "]" * 5000),
        "nested at most 3 deep; these are nested 5000 deep"),
    "hints of a megabyte": (lambda c, g: colorize_hints(c, g, "[" + "[1, 2, 3, 4]," * 80000 + "[1, 2, 3, 4]]"),
                            "characters of JSON: at most 20,000"),
    "a damaged checkpoint (no server path in the message)": (
        lambda c, g: colorize_hints(c, g, HINTS, model="broken"), "weights file weights/broken.pt could not be read"),
    "a model name of 10,000 characters": (
        lambda c, g: colorize_hints(c, g, HINTS, model="x" * 10000), "unknown model 'xxxxxxx"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_gets_a_clear_message_and_the_server_keeps_serving(server, user, gray, kind):
    call, expected = BAD[kind]
    with pytest.raises(Exception) as info:
        call(user, gray)
    msg = str(info.value)
    assert expected in msg, msg
    assert "Traceback" not in msg and "something went wrong" not in msg and len(msg) < 1000, msg
    assert str(server.log_path.parent) not in msg  # no folder of the server's
    assert server.alive()
    png, _, _ = colorize_hints(user, gray, [[10, 10, "#00aa00"]])
    assert rgb(png).shape == (HT, W, 3)


def test_a_model_without_hints_still_colorizes_without_them(user, gray):
    png, _, message = colorize_hints(user, gray, "", model="plain")
    assert rgb(png).shape == (HT, W, 3) and "plain" in message


# --- the page's own hint controls (private events), called directly ----------------------------------
# (their states are dataclasses: colorizer.webapp.state.Result and HintState)

@pytest.fixture
def page_handlers(tiny_weights_dir, one_torch_thread):
    import gradio as gr
    from colorizer import ui
    _plain_checkpoint(tiny_weights_dir / "plain.pt")
    return ui, gr


def _click(gr, x, y):
    return gr.SelectData(None, {"index": [x, y], "value": None})


def test_page_hint_controls_place_select_recolor_undo_and_clear(page_handlers, gray):
    ui, gr = page_handlers
    settings = (str(gray), "default", 256, 1.0, None)
    with pytest.raises(gr.Error, match="colorize the photo first"):
        ui.run_hint_click(*settings, None, None, _click(gr, 10, 10))
    png0, _, _, last = ui.run_colorize(*settings)
    assert last.width == W and last.hints == []
    view, *_ = ui.render_hint_panel(last, None)
    assert Image.open(view).size == (640, 480)  # small photos are shown enlarged to click on

    # a click on the view: a hint at the full-resolution pixel under it, colored as suggested
    png1, _, message, last1, hs = ui.run_hint_click(*settings, last, None, _click(gr, 100, 300))
    [p] = hs.points
    assert (p.x, p.y) == (18, 56)  # 100.5 * 120 / 640, 300.5 * 90 / 480
    assert hs.selected == 0 and len(hs.suggestions) == 6
    assert (p.a, p.b) == (hs.suggestions[0]["a"], hs.suggestions[0]["b"])
    assert "With **1 color hint**" in message and last1.hints == [[18, 56, p.a, p.b]]
    assert not np.array_equal(rgb(png1), rgb(png0))

    # a click on its marker selects it without colorizing again; a click elsewhere adds one
    out = ui.run_hint_click(*settings, last1, hs, _click(gr, 103, 298))
    assert out[3] == gr.skip() and out[4].points == hs.points
    _, _, _, last2, hs2 = ui.run_hint_click(*settings, last1, hs, _click(gr, 500, 100))
    assert len(hs2.points) == 2 and hs2.selected == 1
    sel = ui.run_hint_click(*settings, last2, hs2, _click(gr, 101, 301))[4]
    assert sel.selected == 0

    # the color picker and the swatches change the selected hint only
    _, _, _, last3, hs3 = ui.run_hint_color(*settings, last2, sel, "#00c000")
    a, b = (float(v) for v in lab.rgb_to_lab(np.array([[[0, 192, 0]]], np.uint8))[0, 0, 1:])
    assert hs3.points[0].a == pytest.approx(a, abs=0.01) and hs3.points[1] == hs2.points[1]
    assert ui.run_hint_color(*settings, last3, hs3, "#00c000")[3] == gr.skip()  # unchanged: nothing to do
    second = gr.SelectData(None, {"index": 1, "value": None})
    _, _, _, _, hs4 = ui.run_hint_swatch(*settings, last3, hs3, second)
    assert hs4.points[0].a == hs3.suggestions[1]["a"]

    # undo, then clear: back to the plain result
    _, _, _, _, hs5 = ui.run_hint_undo(*settings, last3, hs4)
    assert len(hs5.points) == 1
    png6, _, message, last6, hs6 = ui.run_hint_clear(*settings, last3, hs5)
    assert hs6.points == [] and "color hint" not in message
    assert np.array_equal(rgb(png6), rgb(png0))
    with pytest.raises(gr.Error, match="no hints to undo"):
        ui.run_hint_undo(*settings, last6, hs6)

    # the page's hints go with the Colorize button, but a model without hints ignores them
    png7, _, message, _ = ui.run_colorize(*settings, hs2)
    assert "2 color hints" in message
    _, _, message, _ = ui.run_colorize(str(gray), "plain", 256, 1.0, None, hs2)
    assert "does not take color hints" in message and "color hints**" not in message


def test_page_hint_controls_explain_a_model_without_hints(page_handlers, gray):
    ui, gr = page_handlers
    _, _, _, last = ui.run_colorize(str(gray), "plain", 256, 1.0, None)
    with pytest.raises(gr.Error, match="model 'plain' does not take color hints"):
        ui.run_hint_click(str(gray), "plain", 256, 1.0, None, last, None, _click(gr, 50, 50))
    with pytest.raises(gr.Error, match="click on the colorized photo to place a hint"):
        ui.run_hint_color(str(gray), "default", 256, 1.0, None, last, None, "#ff0000")
