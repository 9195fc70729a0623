"""colorizer.lab against scikit-image's rgb2lab / lab2rgb: values, dtypes, shapes, errors."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import color, data

from colorizer import lab

DE_MAX = 0.5  # largest CIEDE2000 difference allowed between our conversions and scikit-image's


def de2000(lab1, lab2) -> np.ndarray:
    return color.deltaE_ciede2000(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64))


def random_rgb(shape=(64, 48), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape + (3,), dtype=np.uint8)


def natural_images():
    return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea()}


@pytest.fixture(scope="module")
def all_uint8_colors() -> np.ndarray:
    """Every 4th level of each channel, plus 0 and 255: 65 ** 3 colours as a 65 x 4225 x 3 image."""
    levels = np.unique(np.r_[np.arange(0, 256, 4), 255]).astype(np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r, g, b], -1).reshape(len(levels), -1, 3)


# --- rgb -> Lab ----------------------------------------------------------------------------------

def test_rgb_to_lab_matches_skimage_on_random_uint8():
    rgb = random_rgb()
    ours = lab.rgb_to_lab(rgb)
    ref = color.rgb2lab(rgb)
    assert ours.dtype == np.float32 and ours.shape == rgb.shape
    assert de2000(ours, ref).max() < DE_MAX
    assert np.abs(ours - ref).max() < 0.05  # and close per channel too


def test_rgb_to_lab_matches_skimage_on_the_whole_gamut(all_uint8_colors):
    ours = lab.rgb_to_lab(all_uint8_colors)
    ref = color.rgb2lab(all_uint8_colors)
    assert de2000(ours, ref).max() < DE_MAX
    # the extremes of the gamut land where they should
    assert ours[0, 0] == pytest.approx([0, 0, 0], abs=1e-3)  # black
    assert ours[-1, -1] == pytest.approx([100, 0, 0], abs=0.01)  # white


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_rgb_to_lab_matches_skimage_on_natural_images(name):
    rgb = natural_images()[name]
    assert de2000(lab.rgb_to_lab(rgb), color.rgb2lab(rgb)).max() < DE_MAX


def test_rgb_to_lab_uint16_and_float_inputs_match_skimage():
    rgb16 = np.random.default_rng(1).integers(0, 65536, (40, 30, 3), dtype=np.uint16)
    ref = color.rgb2lab(rgb16.astype(np.float64) / 65535.0)
    assert de2000(lab.rgb_to_lab(rgb16), ref).max() < DE_MAX
    for dt in (np.float32, np.float64):
        f = (rgb16.astype(np.float64) / 65535.0).astype(dt)
        assert de2000(lab.rgb_to_lab(f), ref).max() < DE_MAX


def test_rgb_to_lab_same_colour_in_every_dtype():
    rgb8 = random_rgb((20, 20), seed=2)
    lab8 = lab.rgb_to_lab(rgb8)
    lab16 = lab.rgb_to_lab(rgb8.astype(np.uint16) * 257)  # 255 -> 65535: the same colours
    labf = lab.rgb_to_lab(rgb8 / 255.0)
    assert np.abs(lab8 - lab16).max() < 0.02
    assert np.abs(lab8 - labf).max() < 0.02


def test_float_input_out_of_range_is_clipped():
    f = np.array([[[-0.5, 1.5, 0.5]]], np.float32)
    ref = lab.rgb_to_lab(np.array([[[0.0, 1.0, 0.5]]], np.float32))
    assert np.allclose(lab.rgb_to_lab(f), ref, atol=1e-4)


def test_rgb_to_lab_batch_and_big_chunked_images():
    """A 4-D batch, and a photo large enough to be split into row chunks run on threads, give
    the same values as converting the pieces one by one."""
    batch = np.stack([random_rgb((16, 24), seed=s) for s in range(3)])
    out = lab.rgb_to_lab(batch)
    assert out.shape == batch.shape
    for i in range(3):
        assert np.array_equal(out[i], lab.rgb_to_lab(batch[i]))
    big = random_rgb((1200, 1000), seed=3)  # 1.2 MP > one chunk of 512k pixels
    whole = lab.rgb_to_lab(big)
    for s in (0, 500, 1100):  # rows from the first, a middle and the last chunk
        assert np.array_equal(whole[s:s + 100], lab.rgb_to_lab(big[s:s + 100]))
    Lw = lab.rgb_to_lightness(big)
    assert np.allclose(Lw, whole[..., 0], atol=1e-3)


# --- Lab -> rgb ----------------------------------------------------------------------------------

def test_lab_to_rgb_matches_skimage(all_uint8_colors):
    lab_in = color.rgb2lab(all_uint8_colors).astype(np.float32)
    ours = lab.lab_to_rgb(lab_in)
    ref = color.lab2rgb(lab_in)
    assert ours.dtype == np.float32 and ours.shape == lab_in.shape
    assert np.abs(ours - ref).max() < 2e-3
    assert de2000(color.rgb2lab(ours), color.rgb2lab(ref)).max() < DE_MAX
    # and back to where we started
    assert np.abs(ours * 255 - all_uint8_colors).max() < 0.6


def test_lab_to_rgb_uint8_output_rounds_skimage(all_uint8_colors):
    lab_in = lab.rgb_to_lab(all_uint8_colors)
    out8 = lab.lab_to_rgb(lab_in, dtype=np.uint8)
    assert out8.dtype == np.uint8
    assert np.abs(out8.astype(int) - all_uint8_colors.astype(int)).max() <= 1
    assert (out8 == all_uint8_colors).mean() > 0.99  # an exact roundtrip nearly everywhere


def test_lab_to_rgb_out_of_gamut_clips_like_skimage():
    """Out-of-gamut Lab clips to [0, 1] as in scikit-image. Where Z < 0 (b far above what L
    allows) scikit-image zeroes Z before the matrix and we do not: both are conventions for
    colours that do not exist, so those are left out of the comparison."""
    rng = np.random.default_rng(4)
    lab_in = np.stack([rng.uniform(0, 100, (30, 30)), rng.uniform(-128, 127, (30, 30)),
                       rng.uniform(-128, 127, (30, 30))], -1).astype(np.float32)
    ours = lab.lab_to_rgb(lab_in)
    assert ours.min() >= 0.0 and ours.max() <= 1.0
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about negative Z values
        ref = color.lab2rgb(lab_in.astype(np.float64))
    z_ok = (lab_in[..., 0] + 16) / 116 - lab_in[..., 2] / 200 >= 16 / 116
    assert z_ok.mean() > 0.7
    assert np.abs(ours - ref)[z_ok].max() < 2e-3


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_roundtrip_natural_image(name):
    rgb = natural_images()[name]
    back = lab.lab_to_rgb(lab.rgb_to_lab(rgb), dtype=np.uint8)
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 1


# --- lightness ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32", "float64"])
def test_rgb_to_lightness_equals_lab_L(kind):
    rgb8 = random_rgb((37, 53), seed=5)
    rgb = {"uint8": rgb8, "uint16": rgb8.astype(np.uint16) * 257 + 100,
           "float32": (rgb8 / 255.0).astype(np.float32), "float64": rgb8 / 255.0}[kind]
    L = lab.rgb_to_lightness(rgb)
    assert L.dtype == np.float32 and L.shape == rgb.shape[:2]
    assert np.abs(L - lab.rgb_to_lab(rgb)[..., 0]).max() < 1e-3


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32"])
def test_gray_lightness_is_lightness_of_gray_rgb(kind):
    rng = np.random.default_rng(6)
    g = {"uint8": rng.integers(0, 256, (21, 17), dtype=np.uint8),
         "uint16": rng.integers(0, 65536, (21, 17), dtype=np.uint16),
         "float32": rng.random((21, 17), dtype=np.float32)}[kind]
    L = lab.rgb_to_lightness(g)
    assert L.shape == g.shape
    rgb = np.repeat(g[..., None], 3, axis=2)
    assert np.abs(L - lab.rgb_to_lab(rgb)[..., 0]).max() < 1e-3
    ref = color.rgb2lab(rgb.astype(np.float64) / {"uint8": 255, "uint16": 65535, "float32": 1}[kind])
    assert np.abs(L - ref[..., 0]).max() < 0.02


def test_lightness_endpoints_and_monotonic():
    ramp = np.arange(256, dtype=np.uint8)[None]
    L = lab.rgb_to_lightness(ramp)[0]
    assert L[0] == pytest.approx(0, abs=1e-4) and L[-1] == pytest.approx(100, abs=0.01)
    assert np.all(np.diff(L) > 0)


# --- L + ab planes -> rgb ------------------------------------------------------------------------

def test_l_ab_to_rgb_uint8_accepts_both_ab_layouts():
    rgb = data.astronaut()[::4, ::4]
    labi = lab.rgb_to_lab(rgb)
    L, ab_last = labi[..., 0], labi[..., 1:]
    ab_first = np.moveaxis(ab_last, -1, 0)
    out_last = lab.l_ab_to_rgb_uint8(L, ab_last)
    out_first = lab.l_ab_to_rgb_uint8(L, ab_first)
    assert out_last.dtype == np.uint8 and out_last.shape == rgb.shape
    assert np.array_equal(out_last, out_first)
    assert np.array_equal(out_last, lab.lab_to_rgb(labi, dtype=np.uint8))
    assert np.abs(out_last.astype(int) - rgb.astype(int)).max() <= 1


def test_gray_roundtrip_stays_gray():
    g = np.random.default_rng(7).integers(0, 256, (33, 45), dtype=np.uint8)
    L = lab.rgb_to_lightness(g)
    out = lab.gray_rgb_from_lightness(L)
    assert out.shape == (33, 45, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert np.abs(out[..., 0].astype(int) - g.astype(int)).max() <= 1
    # zero chroma through the general function is gray too
    zero = lab.l_ab_to_rgb_uint8(L, np.zeros((2,) + L.shape, np.float32))
    assert np.array_equal(zero, out)


def test_every_gray_level_roundtrips_exactly():
    g = np.arange(256, dtype=np.uint8)[None]
    out = lab.gray_rgb_from_lightness(lab.rgb_to_lightness(g))
    assert np.array_equal(out[0, :, 0], g[0])


# --- shape errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(10, 10), (10, 10, 4), (10, 10, 2), (10,), (2, 2, 2, 2, 3)])
def test_rgb_to_lab_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        lab.rgb_to_lab(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("shape", [(10, 10, 4), (10, 10, 2), (10,)])
def test_rgb_to_lightness_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        lab.rgb_to_lightness(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("shape", [(10, 10), (10, 10, 2), (10, 10, 4)])
def test_lab_to_rgb_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        lab.lab_to_rgb(np.zeros(shape, np.float32))


@pytest.mark.parametrize("ab_shape", [(10, 12, 2), (2, 10, 12), (3, 12, 10), (10, 12), (10, 12, 3)])
def test_l_ab_to_rgb_uint8_rejects_mismatched_planes(ab_shape):
    with pytest.raises(ValueError, match="do not match"):
        lab.l_ab_to_rgb_uint8(np.zeros((12, 10), np.float32), np.zeros(ab_shape, np.float32))


def test_lab_threads_work_in_a_forked_child():
    """A DataLoader worker is a fork of a process whose conversion threads already run: it must
    not wait for the parent's threads (which the fork did not copy)."""
    import multiprocessing
    from colorizer import lab as lab_mod
    if lab_mod._THREADS == 1:
        pytest.skip("one conversion thread: no pool to inherit")
    big = np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), dtype=np.uint8)
    lab_mod.rgb_to_lab(big)  # the parent's pool now exists
    assert lab_mod._pool is not None
    p = multiprocessing.get_context("fork").Process(target=lab_mod.rgb_to_lab, args=(big,))
    p.start()
    p.join(60)
    hung = p.is_alive()
    if hung:
        p.kill()
    assert not hung and p.exitcode == 0
