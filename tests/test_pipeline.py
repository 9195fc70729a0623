"""Colorizer.colorize / colorize_batch on every kind of input, and the errors users meet.

Runs on a tiny random model (conftest: tiny_colorizer / tiny_weights_dir) whose output is
colourful and depends on the input; only test_real_default_weights_give_color needs the
trained weights and skips without them.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import colorizer
from colorizer import lab
from colorizer.pipeline import lightness_of, load_image, working_size
from colorizer.weights import WeightsError, save_checkpoint

from conftest import REPO, TINY_INPUT_SIZE, build_tiny_default


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- inputs ---------------------------------------------------------------------------------------

def photo(h=96, w=128) -> np.ndarray:
    """A natural colour photo (scikit-image's astronaut) at h x w."""
    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BILINEAR))


def gray8(h=45, w=61, seed=0) -> np.ndarray:
    """A gray uint8 image with structure (gradients and blobs) and a little noise."""
    y, x = np.mgrid[0:h, 0:w]
    g = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0) + 40 * (x / max(1, w - 1) - 0.5)
    g += np.random.default_rng(seed).normal(0, 5, (h, w))
    return np.clip(g, 0, 255).astype(np.uint8)


def chroma(rgb) -> np.ndarray:
    labi = lab.rgb_to_lab(rgb)
    return np.hypot(labi[..., 1], labi[..., 2])


def check_output(out, h, w):
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.uint8
    assert out.shape == (h, w, 3)


def max_diff(a, b) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def png_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A small valid PNG whose header (with a correct CRC) claims width x height."""
    b = bytearray(png_bytes(Image.new("L", (4, 4), 128)))
    i = b.find(b"IHDR")
    b[i + 4:i + 12] = struct.pack(">II", width, height)
    b[i + 17:i + 21] = struct.pack(">I", zlib.crc32(bytes(b[i:i + 17])) & 0xFFFFFFFF)
    return bytes(b)


# --- the output --------------------------------------------------------------------------------------

def test_tiny_model_is_colourful_and_depends_on_input(tiny_colorizer):
    """Guards the fixture: tests below that compare outputs would be vacuous on a flat output."""
    assert tiny_colorizer.name == colorizer.DEFAULT_MODEL
    assert tiny_colorizer.input_size == TINY_INPUT_SIZE  # from the checkpoint's meta
    out = tiny_colorizer.colorize(photo())
    c = chroma(out)
    assert c.mean() > 5
    ab = tiny_colorizer.predict_ab(lightness_of(photo()))
    assert ab[0].mean() > 5 and ab[0].std() > 1  # reddish on average, varies across the image


def test_gray_uint8_numpy_and_pil(tiny_colorizer):
    g = gray8()
    out = tiny_colorizer.colorize(g)
    check_output(out, *g.shape)
    assert chroma(out).mean() > 5
    assert np.array_equal(tiny_colorizer.colorize(Image.fromarray(g)), out)
    assert np.array_equal(tiny_colorizer.colorize(Image.fromarray(g).convert("LA")), out)
    assert np.array_equal(tiny_colorizer.colorize(g[..., None]), out)  # H x W x 1
    assert np.array_equal(tiny_colorizer.colorize(png_bytes(Image.fromarray(g))), out)  # encoded


def test_gray_16bit_numpy_pil_and_png_file(tiny_colorizer, tmp_path):
    g = gray8()
    g16 = g.astype(np.uint16) * 257  # the same gray levels in 16 bits
    out8 = tiny_colorizer.colorize(g)
    out16 = tiny_colorizer.colorize(g16)
    check_output(out16, *g.shape)
    assert max_diff(out16, out8) <= 1
    im16 = Image.fromarray(g16)
    assert im16.mode == "I;16"
    assert np.array_equal(tiny_colorizer.colorize(im16), out16)
    f = tmp_path / "gray16.png"
    im16.save(f)
    assert np.array_equal(tiny_colorizer.colorize(f), out16)
    # 16-bit precision is used: levels between two 8-bit levels give different lightness
    fine = (g.astype(np.uint16) * 257 + 128).astype(np.uint16)
    L = lightness_of(fine)
    assert np.abs(L - lightness_of(g)).max() > 0.05
    assert np.array_equal(lightness_of(Image.fromarray(fine)), L)  # PIL I;16 keeps 16 bits too
    Image.fromarray(fine).save(f)
    assert np.array_equal(lightness_of(f), L)
    assert np.abs(lab.rgb_to_lab(tiny_colorizer.colorize(fine))[..., 0] - L).mean() < 1.0


def test_rgb_and_rgba_give_the_same_result(tiny_colorizer):
    rgb = photo(50, 70)
    out = tiny_colorizer.colorize(rgb)
    check_output(out, 50, 70)
    alpha = np.random.default_rng(0).integers(0, 256, (50, 70, 1), dtype=np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=2)
    assert np.array_equal(tiny_colorizer.colorize(rgba), out)
    assert np.array_equal(tiny_colorizer.colorize(Image.fromarray(rgba, "RGBA")), out)
    transparent = rgba.copy()
    transparent[..., 3] = 0
    assert np.array_equal(tiny_colorizer.colorize(transparent), out)
    assert np.array_equal(tiny_colorizer.colorize(Image.fromarray(rgb)), out)


def test_float_images(tiny_colorizer):
    g = gray8()
    out = tiny_colorizer.colorize(g)
    for f in (g / 255.0, (g / 255.0).astype(np.float32), g.astype(np.float64),  # 0..1 and 0..255
              Image.fromarray(g.astype(np.float32), mode="F")):
        assert max_diff(tiny_colorizer.colorize(f), out) <= 1
    rgb = photo(40, 40)
    assert max_diff(tiny_colorizer.colorize(rgb / 255.0), tiny_colorizer.colorize(rgb)) <= 1


def test_other_pil_modes(tiny_colorizer):
    rgb = Image.fromarray(photo(30, 40))
    for mode in ("1", "L", "P", "CMYK", "YCbCr", "LA", "RGBA"):
        check_output(tiny_colorizer.colorize(rgb.convert(mode)), 30, 40)


def test_palette_png_with_transparency(tiny_colorizer, tmp_path):
    rgb = Image.fromarray(photo(33, 47))
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    f = tmp_path / "palette.png"
    pal.save(f, transparency=0)
    with Image.open(f) as im:
        assert im.mode == "P" and "transparency" in im.info
        expected = tiny_colorizer.colorize(im.convert("RGB"))
    out = tiny_colorizer.colorize(f)
    check_output(out, 33, 47)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (3, 3), (37, 53), (101, 7), (255, 129)])
def test_odd_and_tiny_sizes(tiny_colorizer, hw):
    g = gray8(*hw, seed=hw[0])
    check_output(tiny_colorizer.colorize(g), *hw)
    check_output(tiny_colorizer.colorize(np.repeat(g[..., None], 3, 2)), *hw)


@pytest.mark.parametrize("hw", [(20, 2000), (2000, 20)])
def test_very_wide_and_very_tall(tiny_colorizer, hw):
    g = gray8(*hw)
    out = tiny_colorizer.colorize(g)
    check_output(out, *hw)
    assert np.abs(lab.rgb_to_lab(out)[..., 0] - lightness_of(g)).mean() < 1.0


@pytest.mark.parametrize("kind", ["gray", "rgb", "gray16"])
def test_output_keeps_the_input_lightness(tiny_colorizer, kind):
    img = {"gray": gray8(64, 80), "rgb": photo(), "gray16": gray8(64, 80).astype(np.uint16) * 257}[kind]
    out = tiny_colorizer.colorize(img)
    assert chroma(out).mean() > 5  # coloured, so the check below is not trivially true
    diff = np.abs(lab.rgb_to_lab(out)[..., 0] - lightness_of(img))
    assert diff.mean() < 1.0
    assert np.median(diff) < 0.5


def test_colour_input_is_reduced_to_its_lightness(tiny_colorizer, monkeypatch):
    """The chroma of a colour input is never looked at: its gray version gives the same output,
    and the network sees the same input."""
    rgb = photo()
    labi = lab.rgb_to_lab(rgb)
    labi[..., 1:] = 0
    gray_f = lab.lab_to_rgb(labi)  # float gray with exactly the photo's L
    assert np.abs(gray_f[..., 0] - gray_f[..., 2]).max() < 1e-3
    seen = []
    real = tiny_colorizer.predict_small

    def spy(l_small, hints=None):
        seen.append(np.array(l_small))
        return real(l_small, hints)

    monkeypatch.setattr(tiny_colorizer, "predict_small", spy)
    out_rgb = tiny_colorizer.colorize(rgb)
    out_gray = tiny_colorizer.colorize(gray_f)
    assert np.abs(seen[0] - seen[1]).max() < 0.01
    assert max_diff(out_rgb, out_gray) <= 1
    # the same gray in 8 bits differs only by the rounding of its levels
    out_gray8 = tiny_colorizer.colorize(lab.gray_rgb_from_lightness(labi[..., 0])[..., 0])
    assert np.abs(out_gray8.astype(int) - out_rgb.astype(int)).mean() < 1.0
    # and the photo's own colours are not what comes out
    assert np.abs(out_rgb.astype(int) - rgb.astype(int)).mean() > 3


def test_input_size_sets_the_working_resolution(tiny_colorizer, monkeypatch):
    seen = []
    real = tiny_colorizer.predict_small
    monkeypatch.setattr(tiny_colorizer, "predict_small",
                        lambda l_small, hints=None: seen.append(l_small.shape) or real(l_small, hints))
    g = gray8(300, 400)
    check_output(tiny_colorizer.colorize(g), 300, 400)
    check_output(tiny_colorizer.colorize(g, input_size=64), 300, 400)
    assert seen[0] == (1,) + working_size(300, 400, TINY_INPUT_SIZE, 32)
    assert seen[1] == (1,) + working_size(300, 400, 64, 32)
    assert seen[0][1:] != seen[1][1:]


@pytest.mark.parametrize("hw,size", [((300, 400), 256), ((1, 1), 128), ((20, 2000), 128),
                                     ((4000, 3000), 256), ((513, 511), 224)])
def test_working_size(hw, size):
    h, w = working_size(*hw, size, 32)
    assert h % 32 == 0 and w % 32 == 0 and h >= 32 and w >= 32
    H, W = hw
    if min(H, W) * size / (H * W) ** 0.5 >= 32:  # not clamped to one multiple
        assert abs(h * w / size ** 2 - 1) < 0.3  # about size**2 pixels
        assert abs(np.log((h / w) / (H / W))) < 0.25  # the photo's aspect ratio


def test_exif_orientation_is_applied(tiny_colorizer, tmp_path):
    """A JPEG stored 60 wide x 30 high with orientation 6 (rotate 90 degrees clockwise to view)
    comes out 30 wide x 60 high, the way viewers show it."""
    arr = np.full((30, 60, 3), 230, np.uint8)
    arr[:, :30] = 20  # dark left half: after a clockwise turn it is the top half
    exif = Image.Exif()
    exif[0x0112] = 6
    f = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(f, exif=exif.tobytes())
    with Image.open(f) as im:
        assert im.size == (60, 30) and im.getexif().get(0x0112) == 6
    assert load_image(f).shape == (60, 30, 3)
    out = tiny_colorizer.colorize(f)
    check_output(out, 60, 30)
    L = lab.rgb_to_lab(out)[..., 0]
    assert L[:25].mean() < 20 and L[35:].mean() > 80
    with Image.open(f) as im:
        check_output(tiny_colorizer.colorize(im), 60, 30)
    check_output(tiny_colorizer.colorize(f.read_bytes()), 60, 30)


def test_broken_exif_keeps_the_pixels(tiny_colorizer, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 99  # not an orientation
    f = tmp_path / "odd_exif.jpg"
    Image.fromarray(photo(30, 40)).save(f, exif=exif.tobytes())
    check_output(tiny_colorizer.colorize(f), 30, 40)


# --- batches ----------------------------------------------------------------------------------------

def test_colorize_batch_equals_single_same_size(tiny_colorizer):
    imgs = [gray8(48, 64, seed=s) for s in range(3)] + [photo(48, 64)]
    batch = tiny_colorizer.colorize_batch(imgs)
    assert len(batch) == 4
    for img, out in zip(imgs, batch):
        check_output(out, 48, 64)
        assert max_diff(out, tiny_colorizer.colorize(img)) <= 1
    assert max_diff(batch[0], batch[1]) > 5  # different photos, different outputs


def test_colorize_batch_mixed_sizes_keeps_order(tiny_colorizer):
    imgs = [gray8(40, 50, seed=1), photo(64, 64), gray8(1, 1), gray8(40, 50, seed=2),
            Image.fromarray(gray8(33, 90)), gray8(41, 50, seed=3)]
    sizes = [(40, 50), (64, 64), (1, 1), (40, 50), (33, 90), (41, 50)]
    batch = tiny_colorizer.colorize_batch(imgs, batch_size=2)
    assert len(batch) == len(imgs)
    for img, hw, out in zip(imgs, sizes, batch):
        check_output(out, *hw)
        assert max_diff(out, tiny_colorizer.colorize(img)) <= 1
    assert tiny_colorizer.colorize_batch([]) == []


# --- errors: models and weights -------------------------------------------------------------------

def test_unknown_model_names_the_known_models(tiny_weights_dir):
    with pytest.raises(colorizer.ModelNotFoundError) as ei:
        colorizer.load_colorizer("no-such-model")
    msg = str(ei.value)
    assert "'no-such-model'" in msg
    for name in ("default", colorizer.DEFAULT_MODEL, "eccv16", "siggraph17"):
        assert name in msg
    assert "python -m colorizer models" in msg
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, colorizer.ColorizerError)


def test_missing_default_weights(empty_weights_dir):
    with pytest.raises(WeightsError) as ei:
        colorizer.load_colorizer("default")
    msg = str(ei.value)
    assert str(empty_weights_dir / "lite0_scene.pt") in msg
    assert "git lfs pull" in msg and "python -m colorizer train" in msg
    assert isinstance(ei.value, colorizer.ColorizerError)
    assert colorizer.WeightsError is WeightsError


def test_corrupted_checkpoint(tiny_weights_dir):
    f = tiny_weights_dir / "lite0_scene.pt"
    good = f.read_bytes()
    f.write_bytes(good[: len(good) // 2])  # a partial download
    with pytest.raises(WeightsError, match="could not be read") as ei:
        colorizer.load_colorizer("default")
    assert str(f) in str(ei.value)
    f.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(WeightsError, match="could not be read"):
        colorizer.load_colorizer("default")
    torch.save({"weights": torch.zeros(3)}, f)
    with pytest.raises(WeightsError, match="not a colorizer checkpoint"):
        colorizer.load_colorizer("default")


def test_checkpoint_that_does_not_fit_its_model_args(tiny_weights_dir, ab_bins):
    """Strict loading: a state dict saved from one configuration with the model_args of another."""
    model, args = build_tiny_default(ab_bins)
    f = tiny_weights_dir / "lite0_scene.pt"
    save_checkpoint(f, model, "backbone_unet", {**args, "decoder_channels": [32, 16, 8]})
    with pytest.raises(WeightsError) as ei:
        colorizer.load_colorizer("default")
    msg = str(ei.value)
    assert "does not fit BackboneUNet" in msg and "wrong shape" in msg
    assert "decoder.blocks.2" in msg or "head.conv" in msg  # names a tensor that does not fit
    save_checkpoint(f, model, "backbone_unet", {**args, "n_bins": 262})
    with pytest.raises(WeightsError) as ei:
        colorizer.load_colorizer("default")
    msg = str(ei.value)
    assert "wrong shape" in msg and "head.conv.weight" in msg
    assert f"({len(ab_bins)}, 16, 1, 1) instead of (262, 16, 1, 1)" in msg  # file vs model


def test_checkpoint_with_missing_or_extra_tensors(tiny_weights_dir, ab_bins):
    model, args = build_tiny_default(ab_bins)
    sd = model.state_dict()
    f = tiny_weights_dir / "lite0_scene.pt"
    ck = {"arch": "backbone_unet", "model_args": args, "meta": {}}
    torch.save({**ck, "state_dict": {k: v for k, v in sd.items() if k != "head.bins"}}, f)
    with pytest.raises(WeightsError) as ei:
        colorizer.load_colorizer("default")
    assert "1 missing" in str(ei.value) and "head.bins" in str(ei.value)
    torch.save({**ck, "state_dict": {**sd, "extra.weight": torch.zeros(1)}}, f)
    with pytest.raises(WeightsError) as ei:
        colorizer.load_colorizer("default")
    assert "1 unexpected" in str(ei.value) and "extra.weight" in str(ei.value)
    torch.save({**ck, "arch": "transformer9000", "state_dict": sd}, f)
    with pytest.raises(WeightsError, match="transformer9000"):
        colorizer.load_colorizer("default")
    torch.save({**ck, "model_args": {**args, "wings": 2}, "state_dict": sd}, f)
    with pytest.raises(WeightsError, match="wings"):
        colorizer.load_colorizer("default")


def test_hints_on_a_model_without_hints(ab_bins):
    from colorizer.pipeline import Colorizer
    from conftest import build_tiny_default
    model, _ = build_tiny_default(ab_bins, hints=False)
    plain = Colorizer(model, "plain", input_size=128)
    assert not plain.accepts_hints
    g = gray8()
    with pytest.raises(ValueError, match="does not take color hints"):
        plain.colorize(g, hints=[(5, 5, 40.0, 20.0)])
    assert np.array_equal(plain.colorize(g, hints=[]), plain.colorize(g))


# --- errors: images -------------------------------------------------------------------------------

def _truncated_jpeg() -> bytes:
    b = jpeg_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return b[: len(b) // 2]


BAD_FILES = {
    # name: (file contents or None for no file, 'dir' for a folder; words the message must hold)
    "garbage.png": (b"\x89PNG but not really" + bytes(range(256)) * 4, ["not an image file", "PNG, JPEG"]),
    "empty.jpg": (b"", ["empty", "0 bytes"]),
    "truncated.jpg": (_truncated_jpeg(), ["damaged or truncated"]),
    "a_folder.jpg": ("dir", ["is a folder"]),
    "missing.jpg": (None, ["does not exist"]),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_image_files_raise_image_error(tiny_colorizer, tmp_path, name):
    content, words = BAD_FILES[name]
    f = tmp_path / name
    if content == "dir":
        f.mkdir()
    elif content is not None:
        f.write_bytes(content)
    for arg in (f, str(f)):
        with pytest.raises(colorizer.ImageError) as ei:
            tiny_colorizer.colorize(arg)
        msg = str(ei.value)
        assert name in msg
        for w in words:
            assert w in msg


@pytest.mark.parametrize("content,words", [
    (b"", ["empty"]),
    (b"GIF89a nonsense" * 20, ["not an image"]),
    (_truncated_jpeg(), ["damaged or truncated"]),
])
def test_bad_image_bytes_raise_image_error(tiny_colorizer, content, words):
    with pytest.raises(colorizer.ImageError) as ei:
        tiny_colorizer.colorize(content)
    for w in words:
        assert w in str(ei.value)


def test_decompression_bomb_file(tiny_colorizer, tmp_path):
    f = tmp_path / "bomb.png"
    f.write_bytes(png_claiming_size(30000, 30000))
    with pytest.raises(colorizer.ImageError) as ei:
        tiny_colorizer.colorize(f)
    msg = str(ei.value)
    assert "too large" in msg and "pixels" in msg and "bomb.png" in msg
    with pytest.raises(colorizer.ImageError, match="pixels"):
        tiny_colorizer.colorize(f.read_bytes())


def test_decompression_bomb_with_a_lower_limit(tiny_colorizer, tmp_path, monkeypatch):
    f = tmp_path / "big.png"
    Image.fromarray(gray8(100, 100)).save(f)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(colorizer.ImageError, match="pixels") as ei:
        tiny_colorizer.colorize(f)
    assert "more than 2,000 pixels" in str(ei.value)  # the limit in force, not the one at import


@pytest.mark.parametrize("arr,words", [
    (np.zeros((10, 10, 5), np.uint8), "shape"),
    (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
    (np.zeros((10,), np.uint8), "shape"),
    (np.zeros((0, 10), np.uint8), "empty"),
    (np.full((4, 4), np.nan, np.float32), "NaN"),
    (np.full((4, 4), -3, np.int32), "0..255"),
    (np.full((4, 4), 70000, np.int64), "0..65535"),
    (np.zeros((4, 4), np.complex64), "complex64"),
])
def test_bad_arrays_raise_image_error(tiny_colorizer, arr, words):
    with pytest.raises(colorizer.ImageError, match=words):
        tiny_colorizer.colorize(arr)


def test_integer_and_bool_arrays(tiny_colorizer):
    g = gray8()
    out = tiny_colorizer.colorize(g)
    assert np.array_equal(tiny_colorizer.colorize(g.astype(np.int64)), out)
    g16 = g.astype(np.uint16) * 257
    assert np.array_equal(tiny_colorizer.colorize(g16.astype(np.int32)), tiny_colorizer.colorize(g16))
    check_output(tiny_colorizer.colorize(g > 128), *g.shape)


def test_unsupported_input_type(tiny_colorizer):
    with pytest.raises(colorizer.ImageError, match="cannot use a int"):
        tiny_colorizer.colorize(123)
    with pytest.raises(colorizer.ImageError, match="cannot use a list"):
        tiny_colorizer.colorize([[1, 2], [3, 4]])


# --- the trained default, where it is present ------------------------------------------------------

def test_real_default_weights_give_color(monkeypatch):
    path = REPO / "weights" / "lite0_scene.pt"
    if not path.is_file():
        pytest.skip(f"{path} is not here (fetch shipped weights with `git lfs pull`)")
    if path.stat().st_size < 1000 and path.read_bytes().startswith(b"version https://git-lfs"):
        pytest.skip(f"{path} is a Git LFS pointer: run `git lfs pull`")
    monkeypatch.delenv("COLORIZER_WEIGHTS_DIR", raising=False)
    c = colorizer.load_colorizer("default", device="cpu")
    truth = data.rocket()  # an outdoor photo: sky and trees (portraits come out muted)
    gray = lab.gray_rgb_from_lightness(lightness_of(truth))[..., 0]
    out = c.colorize(gray)
    check_output(out, *truth.shape[:2])
    assert chroma(out).mean() > 8  # not gray
    assert np.abs(lab.rgb_to_lab(out)[..., 0] - lightness_of(gray)).mean() < 1.0
