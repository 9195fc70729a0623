"""Tests for colorizer.metrics: Delta E formulas against published data, PSNR/SSIM/colorfulness
properties, the heatmap renderer, and the gray baselines of the shared data README."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from colorizer import metrics as M
from colorizer.lab import gray_rgb_from_lightness, rgb_to_lab, rgb_to_lightness

# CIEDE2000 test data: Table 1 of G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference
# formula: implementation notes, supplementary test data, and mathematical observations",
# Color Res. Appl. 30(1), 21-30 (2005). Rows: L1, a1, b1, L2, a2, b2, dE00 (kL = kC = kH = 1).
SHARMA_2005 = np.array([
    [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
    [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
    [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
    [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
    [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
    [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
    [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
    [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
    [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
    [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
    [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
    [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
    [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
    [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
    [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
    [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
    [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
    [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
    [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
    [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
])

# Grayscale baselines from /work/shared/data/README.md and the tolerances we hold them to.
KODAK24_TABLE = {"psnr": 22.00, "ssim": 0.938, "de2000": 12.12, "colorfulness_truth": 42.0}
TOLERANCE = {"psnr": 0.02, "ssim": 0.002, "de2000": 0.02, "colorfulness_truth": 0.2}


def _photo_like(h=64, w=80, seed=0) -> np.ndarray:
    """A smooth colorful test image with some texture (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.4 * np.sin(6 * x), 0.5 + 0.4 * np.cos(5 * y), 0.5 + 0.3 * np.sin(4 * (x + y))], -1)
    img = base * 255 + rng.normal(0, 6, base.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


# --- Delta E -----------------------------------------------------------------------------------
def test_ciede2000_sharma_table_all_34_pairs():
    lab1, lab2, expected = SHARMA_2005[:, 0:3], SHARMA_2005[:, 3:6], SHARMA_2005[:, 6]
    got = M.delta_e_2000(lab1, lab2)
    assert got.shape == (34,)
    bad = np.flatnonzero(np.abs(got - expected) > 1e-4)
    assert bad.size == 0, [(int(i) + 1, float(got[i]), float(expected[i])) for i in bad]
    # the table values hold in either order
    np.testing.assert_allclose(M.delta_e_2000(lab2, lab1), expected, atol=1e-4, rtol=0)


def test_ciede2000_image_shaped_and_neutral_colors():
    lab1 = SHARMA_2005[:32, 0:3].reshape(4, 8, 3)
    lab2 = SHARMA_2005[:32, 3:6].reshape(4, 8, 3)
    got = M.delta_e_2000(lab1, lab2)
    assert got.shape == (4, 8)
    np.testing.assert_allclose(got.ravel(), SHARMA_2005[:32, 6], atol=1e-4, rtol=0)
    gray = np.array([[40.0, 0.0, 0.0]])
    assert M.delta_e_2000(gray, gray)[0] == 0.0
    # two neutrals differ in lightness only: dE00 = |dL| / S_L with S_L = 1 at mean L = 50
    assert M.delta_e_2000([45.0, 0, 0], [55.0, 0, 0]) == pytest.approx(10.0, abs=1e-12)


def test_delta_e_76_known_pair():
    # d = (12, 4, 3): sqrt(144 + 16 + 9) = 13
    assert M.delta_e_76([62.0, 2.0, 2.0], [50.0, -2.0, -1.0]) == pytest.approx(13.0, abs=1e-12)
    lab = np.zeros((3, 5, 3))
    lab2 = lab + np.array([0.0, 3.0, 4.0])
    np.testing.assert_allclose(M.delta_e_76(lab, lab2), np.full((3, 5), 5.0))


def test_delta_e_94_hand_computed():
    # 1) ref (50, 3, 4), C1 = 5, vs (50, 0, 0): dL = 0, dC = 5, dH^2 = 3^2 + 4^2 - 5^2 = 0,
    #    S_C = 1 + 0.045 * 5 = 1.225  ->  dE94 = 5 / 1.225
    assert M.delta_e_94([50.0, 3.0, 4.0], [50.0, 0.0, 0.0]) == pytest.approx(5 / 1.225, abs=1e-12)
    # 2) ref (60, 0, 10), C1 = 10, vs (50, 10, 10), C2 = sqrt(200):
    #    dL = 10, dC = 10 - 14.142136 = -4.142136, dH^2 = 10^2 + 0^2 - dC^2 = 82.842712,
    #    S_C = 1.45, S_H = 1.15  ->  dE94 = sqrt(100 + (4.142136/1.45)^2 + 82.842712/1.3225)
    #                                     = sqrt(170.801415) = 13.069102
    assert M.delta_e_94([60.0, 0.0, 10.0], [50.0, 10.0, 10.0]) == pytest.approx(13.069102, abs=1e-6)
    # the reference's chroma sets the weights: swapping gives S_C = 1 + 0.045 sqrt(200), another value
    assert M.delta_e_94([50.0, 10.0, 10.0], [60.0, 0.0, 10.0]) == pytest.approx(12.758960, abs=1e-6)
    # pure lightness difference is unweighted with the graphic-arts constants
    assert M.delta_e_94([70.0, 20.0, -5.0], [63.0, 20.0, -5.0]) == pytest.approx(7.0, abs=1e-12)


def test_delta_e_map_kinds_and_identity():
    truth = _photo_like()
    pred = np.clip(truth.astype(int) + [10, -5, 0], 0, 255).astype(np.uint8)
    lt, lp = rgb_to_lab(truth), rgb_to_lab(pred)
    for kind, fn in (("76", M.delta_e_76), ("94", M.delta_e_94), ("2000", M.delta_e_2000)):
        d = M.delta_e_map(pred, truth, kind=kind)
        assert d.shape == truth.shape[:2]
        np.testing.assert_allclose(d, fn(lt, lp), rtol=1e-12, atol=1e-12)
        assert np.all(M.delta_e_map(truth, truth, kind=kind) == 0)
    with pytest.raises(ValueError):
        M.delta_e_map(pred, truth, kind="99")


# --- PSNR / MSE / SSIM ---------------------------------------------------------------------------
def test_psnr_identical_and_constant_offset():
    truth = _photo_like()
    assert M.psnr(truth, truth) == math.inf
    assert M.mse(truth, truth) == 0.0
    flat = np.full((16, 16, 3), 100, np.uint8)
    off = flat + np.uint8(10)
    assert M.mse(off, flat) == pytest.approx(100.0)
    # 10 log10(255^2 / 100) = 28.1308 dB
    assert M.psnr(off, flat) == pytest.approx(10 * math.log10(255.0 ** 2 / 100.0), abs=1e-9)
    assert M.psnr(off, flat) == pytest.approx(28.1308, abs=1e-4)
    # uint8 arithmetic must not wrap around: 0 vs 255 is the maximal error
    assert M.psnr(np.zeros_like(flat), np.full_like(flat, 255)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        M.psnr(flat, flat[:8])


def test_ssim_identical_is_one_and_decreases_with_noise():
    truth = _photo_like(64, 64)
    assert M.ssim(truth, truth) == pytest.approx(1.0, abs=1e-12)
    assert M.ssim(truth, truth, gaussian=True) == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, truth.shape)
    scores = []
    for sigma in (2, 8, 25, 60):
        noisy = np.clip(truth + sigma * noise, 0, 255).round().astype(np.uint8)
        scores.append(M.ssim(noisy, truth))
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert 0.0 < scores[-1] < 0.6 and scores[0] > 0.9


# --- colorfulness ------------------------------------------------------------------------------
def test_colorfulness_gray_and_saturated():
    gray = np.repeat(np.linspace(0, 255, 50 * 60).reshape(50, 60, 1), 3, axis=2).astype(np.uint8)
    assert M.colorfulness(gray) == 0.0
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    # uniform red: stds are 0; rg = 255, yb = 127.5 -> 0.3 * sqrt(255^2 + 127.5^2)
    assert M.colorfulness(red) == pytest.approx(0.3 * math.hypot(255.0, 127.5), abs=1e-9)
    checker = np.zeros((8, 8, 3), np.uint8)
    checker[::2, ::2, 0] = checker[1::2, 1::2, 0] = 255
    checker[1::2, ::2, 1] = checker[::2, 1::2, 1] = 255
    # red/green checkerboard: rg = +-255 (std 255, mean 0), yb = 127.5 -> 255 + 0.3 * 127.5
    assert M.colorfulness(checker) == pytest.approx(255.0 + 0.3 * 127.5, abs=1e-9)
    assert M.colorfulness(checker) > 200 > M.colorfulness(_photo_like()) > 50


def test_evaluate_pair_keys_and_values():
    truth = _photo_like()
    gray = gray_rgb_from_lightness(rgb_to_lightness(truth))
    r = M.evaluate_pair(gray, truth)
    assert set(r) == {"mse", "psnr", "ssim", "de76", "de94", "de2000",
                      "colorfulness_pred", "colorfulness_truth"}
    assert all(isinstance(v, float) for v in r.values())
    assert r["psnr"] == pytest.approx(M.psnr(gray, truth))
    assert r["ssim"] == pytest.approx(M.ssim(gray, truth))
    assert r["de2000"] == pytest.approx(float(M.delta_e_map(gray, truth).mean()))
    assert r["colorfulness_pred"] < 1.0 < r["colorfulness_truth"]
    same = M.evaluate_pair(truth, truth)
    assert same["psnr"] == math.inf and same["ssim"] == pytest.approx(1.0)
    assert same["de76"] == same["de94"] == same["de2000"] == 0.0


# --- heatmap -----------------------------------------------------------------------------------
def test_render_heatmap_shape_colorbar_and_png(tmp_path):
    h, w = 90, 140
    de = np.tile(np.linspace(0, 25, w), (h, 1))
    out = M.render_heatmap(de, path=tmp_path / "heat.png")
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out.shape[0] >= h and out.shape[1] > w + 20
    right = out[:, w:]
    assert len(np.unique(right.reshape(-1, 3), axis=0)) > 20  # a color ramp and black text
    assert right.std() > 10
    # the map itself is the colormapped Delta E, low values dark and high values bright
    assert out[:h, :w].mean(axis=2)[:, 0].mean() < out[:h, :w].mean(axis=2)[:, -1].mean()
    saved = np.asarray(Image.open(tmp_path / "heat.png").convert("RGB"))
    np.testing.assert_array_equal(saved, out)
    # default scale: 99th percentile rounded up (25 -> 25), never below 10
    assert M.robust_vmax(de) == 25.0
    assert M.robust_vmax(np.full((5, 5), 2.0)) == 10.0
    # an explicit vmax and a tiny map still render
    small = M.render_heatmap(np.zeros((12, 10)), vmax=5)
    assert small.shape[0] >= 12 and small.shape[1] > 10 and small.dtype == np.uint8


def test_colormap_is_monotone_in_lightness():
    rgb = M.colormap(np.linspace(0, 1, 256))
    lum = rgb.astype(float) @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(lum) >= -1.0)
    assert lum[-1] - lum[0] > 200


# --- gray baseline on shared data ----------------------------------------------------------------
@pytest.mark.heavy
def test_gray_baseline_kodak24_matches_readme(shared_data):
    folder = shared_data / "test" / "kodak24"
    files = sorted(folder.glob("*.png"))
    if len(files) != 24:
        pytest.skip(f"{folder} has {len(files)} PNGs, expected 24")
    vals = {k: [] for k in KODAK24_TABLE}
    for f in files:
        truth = np.asarray(Image.open(f).convert("RGB"))
        gray = gray_rgb_from_lightness(rgb_to_lightness(truth))
        vals["psnr"].append(M.psnr(gray, truth))
        vals["ssim"].append(M.ssim(gray, truth))
        vals["de2000"].append(float(M.delta_e_2000(rgb_to_lab(truth), rgb_to_lab(gray)).mean()))
        vals["colorfulness_truth"].append(M.colorfulness(truth))
    means = {k: float(np.mean(v)) for k, v in vals.items()}
    for k, ref in KODAK24_TABLE.items():
        assert abs(means[k] - ref) <= TOLERANCE[k], (k, means[k], ref)
