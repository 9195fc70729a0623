"""Colour hints (our hint-taking U-Net, parsing, hints from the truth), diverse variations and
colour suggestions, on the tiny random default model and small real photos."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from colorizer import lab, metrics
from colorizer.hints import ab_to_hex, colour_to_ab, hints_from_truth, parse_hints
from colorizer.models import build_model
from colorizer.pipeline import Colorizer
from colorizer.train import ColorLoss, init_from, sample_hints
from colorizer.weights import save_checkpoint

from conftest import build_tiny_default

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def photo(h=96, w=128) -> np.ndarray:
    return np.asarray(Image.fromarray(data.coffee()).resize((w, h), Image.BILINEAR))


# --- parsing -----------------------------------------------------------------------------------

def test_colour_to_ab_matches_the_lab_conversion():
    a, b = colour_to_ab("#3a7bd5")
    ref = lab.rgb_to_lab(np.array([[[0x3a, 0x7b, 0xd5]]], np.uint8))[0, 0]
    assert (a, b) == pytest.approx((ref[1], ref[2]), abs=1e-4)
    assert colour_to_ab("rgba(58, 123, 213, 1)") == pytest.approx((a, b), abs=1e-4)
    assert colour_to_ab("#fff") == pytest.approx((0, 0), abs=0.5)
    assert colour_to_ab((58, 123, 213)) == pytest.approx((a, b), abs=1e-4)


def test_parse_hints_accepts_every_documented_form():
    want = colour_to_ab("#ff0000")
    forms = [
        [{"x": 3, "y": 4, "color": "#ff0000"}],
        [{"x": 3, "y": 4, "a": want[0], "b": want[1]}],
        [[3, 4, "#ff0000"]],
        [[3, 4, want[0], want[1]]],
        {"x": 3, "y": 4, "color": "#ff0000"},
    ]
    for f in forms:
        for spec in (f, json.dumps(f)):
            (x, y, a, b), = parse_hints(spec, 10, 10)
            assert (x, y) == (3, 4) and (a, b) == pytest.approx(want, abs=1e-3)
    assert parse_hints(None) == parse_hints("") == parse_hints("  ") == parse_hints([]) == []


@pytest.mark.parametrize("spec,words", [
    ("[{x: 1}]", "JSON"),
    ('{"a": 1}', "needs x and y"),
    ('[[1, 2]]', "must be"),
    ('[[1, 2, "#12345"]]', "not a colour"),
    ('[[1, 2, "rgb(300, 0, 0)"]]', "0..255"),
    ('[[1, 2, 200, 0]]', "-128..127"),
    ('[[50, 2, 10, 0]]', "outside the 10 x 10 photo"),
    ('[["a", 2, 10, 0]]', "x must be a number"),
    ('[[1, 2, NaN, 0]]', "finite"),
    ('"just text"', "list of points"),
    (json.dumps([[1, 1, 0, 0]] * 201), "at most 200"),
])
def test_parse_hints_rejects_bad_input_with_a_clear_message(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_hints(spec, 10, 10)


def test_ab_to_hex_round_trip():
    a, b = colour_to_ab("#2e8b57")
    L = float(lab.rgb_to_lab(np.array([[[0x2e, 0x8b, 0x57]]], np.uint8))[0, 0, 0])
    assert ab_to_hex(L, a, b) == "#2e8b57"


def test_hints_from_truth_takes_the_true_colours():
    rgb = photo()
    hints = hints_from_truth(rgb, 10, seed=3)
    assert len(hints) == 10 and hints == hints_from_truth(rgb, 10, seed=3)
    assert hints != hints_from_truth(rgb, 10, seed=4)
    ab = lab.rgb_to_lab(rgb)[..., 1:]
    for x, y, a, b in hints:
        patch = ab[max(0, int(y) - 2):int(y) + 3, max(0, int(x) - 2):int(x) + 3].reshape(-1, 2).mean(0)
        assert (a, b) == pytest.approx(tuple(patch), abs=1e-3)


# --- the hint model ----------------------------------------------------------------------------

def test_hint_model_fine_tuned_from_a_plain_one_starts_out_identical(tmp_path, ab_bins):
    plain, args = build_tiny_default(ab_bins, hints=False)
    path = tmp_path / "plain.pt"
    save_checkpoint(path, plain, "backbone_unet", args, meta={})
    hinted = build_model("backbone_unet", **{**args, "hints": True})
    init_from(hinted, path)
    hinted.eval()
    x = torch.randn(2, 1, 64, 64) * 0.3
    hints = sample_hints(torch.randn(2, 2, 64, 64) * 30, p_none=0.0)
    ref = build_model("backbone_unet", **args)
    init_from(ref, path)  # the plain model as the checkpoint stores it (fp16 tensors)
    ref.eval()
    with torch.no_grad():
        assert torch.allclose(hinted(x), ref(x), atol=1e-5)
        assert torch.allclose(hinted(x, hints), ref(x), atol=1e-5)  # hint paths start at zero


def test_init_from_a_checkpoint_that_does_not_fit(tmp_path, ab_bins):
    plain, args = build_tiny_default(ab_bins, hints=False)
    path = tmp_path / "plain.pt"
    save_checkpoint(path, plain, "backbone_unet", args, meta={})
    other = build_model("backbone_unet", **{**args, "decoder_channels": [16, 16, 16]})
    with pytest.raises(ValueError, match="does not fit"):
        init_from(other, path)


def test_hints_steer_the_colours_near_them(tiny_colorizer):
    g = lab.gray_rgb_from_lightness(lab.rgb_to_lightness(photo()))
    plain = tiny_colorizer.colorize(g)
    assert np.array_equal(tiny_colorizer.colorize(g, hints=[]), plain)
    hinted = tiny_colorizer.colorize(g, hints=[(20, 20, -60.0, 60.0), (100, 70, 50.0, -50.0)])
    diff = metrics.delta_e_map(plain, hinted, "2000")
    assert diff[10:30, 10:30].mean() > 0.5
    assert np.abs(lab.rgb_to_lightness(hinted) - lab.rgb_to_lightness(g)).mean() < 1.5  # L is kept


def test_bad_hint_tensor_shape(tiny_colorizer):
    m = tiny_colorizer.model
    with pytest.raises(ValueError, match="hints must be"):
        m(torch.zeros(1, 1, 64, 64), torch.zeros(1, 3, 32, 32))


def test_hint_outside_the_photo(tiny_colorizer):
    with pytest.raises(ValueError, match="outside"):
        tiny_colorizer.colorize(photo(), hints=[(500, 5, 10.0, 10.0)])


def test_sample_hints():
    ab = torch.randn(64, 2, 32, 32) * 30
    h = sample_hints(ab, p_none=0.5, mean_count=4)
    assert h.shape == (64, 3, 32, 32)
    counts = h[:, 2].flatten(1).sum(1)
    assert 10 < int((counts == 0).sum()) < 54  # about half get no hints
    mask = h[:, 2] > 0
    assert torch.all(h[:, :2][~mask[:, None].expand(-1, 2, -1, -1)] == 0)  # colours only under the mask
    assert float(h[:, :2].abs().max()) <= float(ab.abs().max()) / lab.AB_NORM + 1e-6


def test_decode_loss_adds_the_error_of_the_decoded_colours(ab_bins):
    bins = torch.from_numpy(ab_bins)
    w = torch.ones(len(bins))
    ab = torch.randn(2, 2, 8, 8) * 20
    logits = torch.randn(2, len(bins), 8, 8, requires_grad=True)
    plain = ColorLoss("classification", bins=bins, class_weights=w)(logits, ab)
    both = ColorLoss("classification", bins=bins, class_weights=w, decode_weight=100.0)(logits, ab)
    assert float(both.detach()) > float(plain.detach())
    both.backward()
    assert logits.grad.abs().sum() > 0


# --- variations and suggestions ----------------------------------------------------------------

def test_variations_differ_are_coherent_and_repeatable(tiny_colorizer):
    rgb = photo()
    vs = tiny_colorizer.variations(rgb, n=3, seed=7)
    assert len(vs) == 3 and all(v.shape == rgb.shape and v.dtype == np.uint8 for v in vs)
    again = tiny_colorizer.variations(rgb, n=3, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(vs, again))
    pair = [metrics.delta_e_map(vs[i], vs[j], "2000").mean() for i in range(3) for j in range(i + 1, 3)]
    assert min(pair) > 1.0
    # every variation keeps the photo's lightness
    L = lab.rgb_to_lightness(rgb)
    for v in vs:
        assert np.abs(lab.rgb_to_lightness(v) - L).mean() < 1.5


def test_variations_bad_requests(tiny_colorizer, ab_bins):
    with pytest.raises(ValueError, match="1..16"):
        tiny_colorizer.variations(photo(), n=0)
    reg = build_model("backbone_unet", encoder="efficientnet_lite0", decoder_channels=[16, 16, 16],
                      head="regression")
    with pytest.raises(ValueError, match="not a distribution"):
        Colorizer(reg, "reg", 64).variations(photo(), n=2)


def test_suggest_colors(tiny_colorizer):
    rgb = photo()
    sug = tiny_colorizer.suggest_colors(rgb, 30, 40, k=5)
    assert len(sug) == 5
    assert all(s["hex"].startswith("#") and len(s["hex"]) == 7 for s in sug)
    probs = [s["probability"] for s in sug]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    abs_ = np.array([[s["a"], s["b"]] for s in sug])
    d = np.sqrt(((abs_[:, None] - abs_[None]) ** 2).sum(-1)) + np.eye(5) * 99
    assert d.min() >= 15  # distinct colours
    with pytest.raises(ValueError, match="outside"):
        tiny_colorizer.suggest_colors(rgb, 500, 5)


# --- spreading hints along edges -----------------------------------------------------------------

def test_a_hint_fills_its_region_and_stops_at_an_edge():
    from colorizer.hints import spread_hints
    L = np.full((32, 32), 30.0, np.float32)
    L[:, 16:] = 80.0  # a strong vertical edge
    ab = np.zeros((2, 32, 32), np.float32)
    out = spread_hints(ab, L, [(8, 4, 40.0, -20.0)])
    assert tuple(out[:, 8, 4]) == (40.0, -20.0)  # exactly the hint where it lies
    left, right = out[0, :, :15].mean(), out[0, :, 18:].mean()
    assert left > 15 and right < 0.3 * left  # fills its side, fades across the edge


def test_the_global_correction_keeps_gray_gray():
    from colorizer.hints import spread_hints
    L = np.full((24, 24), 50.0, np.float32)
    ab = np.zeros((2, 24, 24), np.float32)
    ab[:, :, :12] = np.array([10.0, 10.0])[:, None, None]  # a muted brown left half, a gray right half
    hints = [(r, c, 30.0, 30.0) for r, c in ((2, 2), (10, 3), (20, 5), (5, 9))]  # truth: vivid
    out = spread_hints(ab, L, hints, sigma=0.01)  # almost no local spreading: the global step shows
    assert out[0, 12:, 0:10].mean() > 20  # the brown half became vivid
    assert np.abs(out[:, :, 16:]).max() < 1.0  # the gray half stays gray


def test_ten_hints_from_the_truth_lower_delta_e_on_a_real_photo(tiny_colorizer):
    rgb = photo(128, 160)
    plain = metrics.delta_e_map(tiny_colorizer.colorize(rgb), rgb, "2000").mean()
    hinted = metrics.delta_e_map(tiny_colorizer.colorize(rgb, hints=hints_from_truth(rgb, 10)), rgb, "2000").mean()
    net_only = metrics.delta_e_map(
        tiny_colorizer.colorize(rgb, hints=hints_from_truth(rgb, 10), spread=False), rgb, "2000").mean()
    assert hinted < 0.8 * plain  # even a random network's colours get much closer with 10 hints
    assert hinted < net_only


def test_suggest_colors_of_siggraph17_use_its_own_suggestion_head():
    c = Colorizer(build_model("siggraph17").eval(), "siggraph17", input_size=64)
    rgb = photo(48, 64)
    sug = c.suggest_colors(rgb, 10, 20, k=4)
    assert len(sug) == 4 and all(set(s) == {"a", "b", "probability", "hex"} for s in sug)
    assert [s["probability"] for s in sug] == sorted((s["probability"] for s in sug), reverse=True)
    assert c.suggest_colors(rgb, 10, 20, k=4, hints=[(12, 22, 60.0, 60.0)]) != sug  # hints reach it
