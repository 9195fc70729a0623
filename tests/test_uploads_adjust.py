"""The app's upload checks (colorizer.uploads) and chroma adjustments (colorizer.adjust), without
a server: header-only inspection, zip limits, vividness, Reinhard-style transfer, color detection."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

import apphelpers as H
from colorizer import adjust, lab
from colorizer.errors import ImageError
from colorizer.uploads import inspect_image, read_zip_images


def png(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


# --- inspect_image ------------------------------------------------------------------------------------

def test_header_gives_size_and_format_without_decoding():
    info = inspect_image(png(Image.new("RGB", (40, 30))), name="x.png")
    assert (info.width, info.height, info.format, info.frames, info.notes) == (40, 30, "PNG", 1, [])


def test_pixel_limit_is_checked_on_the_header_before_any_decoding():
    claim = H.png_claiming_size(7000, 6000)  # 42 MP claimed by a 4 x 4 file: decoding would fail
    with pytest.raises(ImageError, match=r"7,000 x 6,000 pixels \(42.0 MP\): over the limit of 40 MP"):
        inspect_image(claim, name="scan.png", max_pixels=40_000_000)
    assert inspect_image(claim, max_pixels=50_000_000).megapixels == pytest.approx(42.0)
    with pytest.raises(ImageError, match=r"claims 1,000,000,000 pixels \(1000 MP\)"):
        inspect_image(H.png_claiming_size(40000, 25000), name="bomb.png")  # PIL's own bomb limit


def test_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("COLORIZER_MAX_MEGAPIXELS", "0.001")
    with pytest.raises(ImageError, match="over the limit of 0.001 MP"):
        inspect_image(png(Image.new("L", (40, 30))))


@pytest.mark.parametrize("data, message", [
    (b"", r"is empty \(0 bytes\)"),
    (b"GIF89a, or not", "is damaged or truncated|is not an image file"),
    (b"plain text", "is not an image file that can be read"),
])
def test_unreadable_data(data, message):
    with pytest.raises(ImageError, match=message):
        inspect_image(data, name="f")


def test_too_small_and_too_elongated():
    with pytest.raises(ImageError, match="only 1 x 1 pixels"):
        inspect_image(png(Image.new("L", (1, 1))))
    with pytest.raises(ImageError, match="more elongated than 1:100"):
        inspect_image(png(Image.new("L", (1010, 10))))
    assert inspect_image(png(Image.new("L", (1000, 10)))).width == 1000  # 1:100 is accepted


def test_notes_for_exif_16_bit_cmyk_transparency_and_animation(tmp_path):
    info = inspect_image(H.exif_rotated_jpeg(tmp_path / "r.jpg"))
    assert (info.width, info.height, info.orientation) == (40, 60, 6)  # sides as shown upright
    assert "EXIF orientation" in info.notes[0]
    assert "16-bit" in inspect_image(png(Image.fromarray(np.zeros((9, 9), np.uint16)))).notes[0]
    buf = io.BytesIO()
    Image.new("CMYK", (9, 9)).save(buf, format="JPEG")
    assert "CMYK" in inspect_image(buf.getvalue()).notes[0]
    assert "transparency" in inspect_image(H.palette_png_with_transparency(tmp_path / "p.png")).notes[0]
    info = inspect_image(H.animated_gif(tmp_path / "a.gif"))
    assert info.frames == 2 and "first of its 2 frames" in info.notes[0]


# --- read_zip_images -------------------------------------------------------------------------------------

def make_zip(path, members: dict) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


def test_zip_images_are_read_by_base_name_and_the_rest_is_reported(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"../../evil/x.JPG": b"1", "d/y.png": b"2", "readme.md": b"3",
                                      "__MACOSX/d/._y.png": b"4", ".hidden.png": b"5", "d/": b""})
    items, skipped = read_zip_images(z)
    assert items == [("x.JPG", b"1"), ("y.png", b"2")]  # never a path from the archive
    assert skipped == ["readme.md: not an image file name"]


def test_zip_limits_and_non_zips(tmp_path):
    z = make_zip(tmp_path / "many.zip", {f"{i}.png": b"x" for i in range(4)})
    with pytest.raises(ImageError, match="holds 4 images; at most 3"):
        read_zip_images(z, max_files=3)
    with pytest.raises(ImageError, match="would unpack to"):
        read_zip_images(z, max_total_bytes=3)
    (tmp_path / "no.zip").write_bytes(b"not a zip")
    with pytest.raises(ImageError, match="no.zip is not a zip archive"):
        read_zip_images(tmp_path / "no.zip")


# --- adjust ---------------------------------------------------------------------------------------------------

def test_vividness_scales_chroma_and_zero_gives_gray():
    ab = np.random.default_rng(0).normal(0, 20, (2, 8, 9)).astype(np.float32)
    assert adjust.scale_chroma(ab, 1.0) is ab
    np.testing.assert_allclose(adjust.scale_chroma(ab, 1.5), 1.5 * ab, rtol=1e-6)
    assert not adjust.scale_chroma(ab, 0.0).any()
    with pytest.raises(ValueError, match=">= 0"):
        adjust.scale_chroma(ab, -0.5)


def test_transfer_matches_the_references_chroma_statistics():
    rng = np.random.default_rng(1)
    ab = np.stack([rng.normal(20, 5, (30, 40)), rng.normal(10, 3, (30, 40))]).astype(np.float32)
    out = adjust.transfer_chroma(ab, ref_mean=[-5.0, -30.0], ref_std=[8.0, 12.0])
    np.testing.assert_allclose(out.reshape(2, -1).mean(1), [-5, -30], atol=1e-3)
    np.testing.assert_allclose(out.reshape(2, -1).std(1), [8, 12], rtol=1e-3)
    half = adjust.transfer_chroma(ab, [-5.0, -30.0], [8.0, 12.0], strength=0.5)
    np.testing.assert_allclose(half, (ab + out) / 2, atol=1e-3)
    flat = adjust.transfer_chroma(np.zeros((2, 4, 4), np.float32), [3.0, 4.0], [1.0, 1.0])
    assert np.isfinite(flat).all()  # a flat prediction is moved, not blown up


def test_ab_stats_of_a_photo_and_color_detection():
    photo = H.photo(60, 80)
    mean, std = adjust.ab_stats(photo)
    ab = lab.rgb_to_lab(photo)[..., 1:].reshape(-1, 2)
    np.testing.assert_allclose(mean, ab.mean(0), atol=0.05)
    np.testing.assert_allclose(std, ab.std(0), atol=0.05)
    assert adjust.is_color(photo)
    gray_rgb = np.repeat(H.gray_photo()[..., None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(gray_rgb).save(buf, format="JPEG", quality=75)  # gray saved as color JPEG
    assert not adjust.is_color(np.asarray(Image.open(buf)))
    assert not adjust.is_color(H.gray_photo())
    with pytest.raises(ValueError, match="RGB"):
        adjust.ab_stats(H.gray_photo())


# --- hostile archives and page bombs (built here, never inflated to disk) --------------------------

def test_zip_member_inflating_past_its_header_is_stopped_early(tmp_path):
    import time
    from colorizer.uploads import InflateBudget, ZipImages
    z = H.zip_with_lying_size(tmp_path / "liar.zip", "a.png", b"\0" * (64 << 20), declared=1000)
    budget = InflateBudget()
    t = time.perf_counter()
    (name, result), = list(ZipImages(z, budget=budget))
    assert time.perf_counter() - t < 2.0
    assert name == "a.png" and isinstance(result, ImageError)
    assert budget.used <= 1001  # what was inflated is counted, and it stopped at the header's size
    items, skipped = read_zip_images(z)
    assert items == [] and len(skipped) == 1 and "a.png" in skipped[0]


def test_zip_bombs_are_refused_before_inflating_or_capped(tmp_path):
    from colorizer.uploads import InflateBudget, ZipImages
    # a member that declares 1.9 GB: refused from the central directory, nothing inflated
    z = H.zip_with_lying_size(tmp_path / "big.zip", "zeros.png", b"\0" * 1024, declared=1_900_000_000)
    budget = InflateBudget()
    with pytest.raises(ImageError, match=r"would unpack to 1\.90 GB of images; at most 1\.07 GB"):
        ZipImages(z, budget=budget)
    assert budget.used == 0
    # honest members over the per-image cap: stopped at the cap
    z2 = make_zip(tmp_path / "two.zip", {"a.png": b"\0" * (3 << 20), "b.png": b"ok"})
    (_, a), (_, b) = list(ZipImages(z2, max_member_bytes=1 << 20))
    assert isinstance(a, ImageError) and "more than 1 MB unpacked" in str(a) and b == b"ok"
    # two archives in one request share one budget
    z3 = make_zip(tmp_path / "c.zip", {"c.png": b"\1" * 600_000})
    z4 = make_zip(tmp_path / "d.zip", {"d.png": b"\2" * 300_000, "e.png": b"\3" * 300_000})
    shared = InflateBudget(total=1_000_000)
    first = ZipImages(z3, budget=shared)
    with pytest.raises(ImageError, match=r"d.zip would unpack to 0.6 MB of images \(with the other "
                                         r"archives, 1.2 MB\); at most 1.0 MB"):
        ZipImages(z4, budget=shared)
    assert list(first)[0][1] == b"\1" * 600_000 and shared.used == 600_000
    # and what is inflated counts too: a member read when the budget is spent is stopped
    shared = InflateBudget(total=1_000_000)
    late = ZipImages(make_zip(tmp_path / "f.zip", {"f.png": b"\4" * 300_000}), budget=shared)
    shared.used = 900_000
    (_, out), = list(late)
    assert isinstance(out, ImageError) and "would unpack to more than 1.0 MB" in str(out)
    assert shared.used <= 1_000_001


def test_page_bomb_refused_without_walking_every_page():
    import io as _io
    import time
    from colorizer.uploads import MAX_FRAMES
    pages = [Image.new("L", (8, 8), i % 255) for i in range(MAX_FRAMES + 1)]
    buf = _io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    t = time.perf_counter()
    with pytest.raises(ImageError, match="more than 1,000 frames or pages"):
        inspect_image(buf.getvalue(), name="pages.tif")
    assert time.perf_counter() - t < 5.0
    buf = _io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:3])
    info = inspect_image(buf.getvalue(), name="three.tif")
    assert info.frames == 3


def test_invalid_exif_orientation_is_not_called_upright():
    import io as _io
    for value in (9, 65535):
        im = Image.new("RGB", (40, 30))
        exif = im.getexif()
        exif[0x0112] = value
        buf = _io.BytesIO()
        im.save(buf, format="JPEG", exif=exif)
        notes = inspect_image(buf.getvalue(), name="o.jpg").notes
        assert not any("turned upright" in n for n in notes)
        assert any(f"EXIF orientation ({value}) is not a valid one" in n for n in notes)


def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(H.gray_photo(60, 80)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_a_file_cut_after_its_pixels_is_colorized_with_a_note_and_one_cut_inside_is_refused(tmp_path):
    from colorizer.pipeline import load_image
    cut_note = "ends before its"
    png, jpeg = _encoded("PNG"), _encoded("JPEG", quality=90)
    assert png.endswith(b"IEND\xaeB`\x82") and jpeg.endswith(b"\xff\xd9")
    for whole in (png, jpeg):
        assert not any(cut_note in n for n in inspect_image(whole).notes)
    # without the 12-byte IEND chunk: every pixel is there, the end is not; colorized with the note
    notes = inspect_image(png[:-12]).notes
    assert any(cut_note in n and "PNG" in n for n in notes), notes
    p = tmp_path / "cut.png"
    p.write_bytes(png[:-12])
    assert any(cut_note in n for n in inspect_image(p).notes)  # from a path too
    assert load_image(p).shape[:2] == (60, 80)
    # a JPEG without its end marker gets the note from its header; Pillow then refuses to decode it
    assert any(cut_note in n and "JPEG" in n for n in inspect_image(jpeg[:-2]).notes)
    p = tmp_path / "cut.jpg"
    p.write_bytes(jpeg[:-2])
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(p)
    # cut inside the pixel data: refused
    p = tmp_path / "half.png"
    p.write_bytes(png[: len(png) // 2])
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(p)
    webp = _encoded("WEBP", quality=80)
    assert not any(cut_note in n for n in inspect_image(webp).notes)
    with pytest.raises(ImageError, match="damaged or truncated"):
        inspect_image(webp[:-10])
