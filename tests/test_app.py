"""The web app through its API: the real server (`python app.py` in a subprocess, on a free
port of 127.0.0.1) driven with gradio_client, as any client of a Gradio Space would.

The server runs the tiny random default model (conftest.tiny_checkpoint), so these tests never
need the trained weights; it leans towards a reddish color, which the tests use to tell a
colorized result from a gray one.
"""
from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

import apphelpers as H  # noqa: E402
from colorizer import lab, metrics  # noqa: E402

pytestmark = pytest.mark.server

UPLOAD_LIMIT_MB = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    work = tmp_path_factory.mktemp("app")
    weights = H.weights_with(tiny_checkpoint, work / "weights")
    srv = H.AppServer(weights, work, max_upload_mb=UPLOAD_LIMIT_MB)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inputs")


def client(server) -> Client:
    """A new client is a new user (its own session and gr.State)."""
    return Client(server.url, verbose=False, analytics_enabled=False,
                  download_files=str(server.log_path.parent / "downloads"))


@pytest.fixture(scope="module")
def user(server) -> Client:
    return client(server)


def colorize(c: Client, path, model="default", **kw):
    """/colorize -> (png path, (before, after), message)."""
    return c.predict(handle_file(str(path)), model, api_name="/colorize", **kw)


def rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# --- start-up ------------------------------------------------------------------------------------

def test_starts_quickly_offline_and_logs_the_models_it_loaded(server):
    assert server.startup_s < 30, f"the app took {server.startup_s:.1f} s to answer"
    log = server.log()
    assert "loaded model lite0-scene" in log
    assert "models available: lite0-scene, tiny2; loaded: lite0-scene" in log


def test_models_endpoint_lists_models_with_weights(user):
    rows = user.predict(api_name="/models")
    names = {r["name"] for r in rows}
    assert names == {"lite0-scene", "tiny2"}
    default = next(r for r in rows if r["name"] == "lite0-scene")
    assert default["aliases"] == ["default"] and default["loaded"] is True


# --- colorizing ------------------------------------------------------------------------------------

def test_gray_photo_is_colorized_at_full_size_with_its_own_lightness(user, files):
    src = H.save(files / "old photo.png", Image.fromarray(H.gray_photo(90, 120)))
    png, (before, after), message = colorize(user, src)
    out = rgb(png)
    assert Path(png).name == "old_photo_colorized.png"
    assert out.shape == (90, 120, 3)
    # only chroma is predicted: the lightness is the photo's own
    L_in = lab.rgb_to_lightness(np.asarray(Image.open(src)))
    assert np.abs(lab.rgb_to_lightness(out) - L_in).mean() < 1.0
    assert H.chroma(png).mean() > 5.0  # it has color now
    assert Image.open(before).size == Image.open(after).size == (120, 90)
    assert "Gray photo" in message and "no metrics" in message
    result, table, heat = user.predict(api_name="/metrics")
    assert result == {"photo": "gray", "metrics": None}
    assert table == "" and heat is None


def test_color_photo_gets_metrics_against_the_original(user, files):
    truth = H.photo(96, 128)
    src = H.save(files / "color.png", Image.fromarray(truth))
    png, _, message = colorize(user, src)
    assert "already a **color photo**" in message
    result, table, heat = user.predict(api_name="/metrics")
    assert result["photo"] == "color"
    m = result["metrics"]
    expected = metrics.evaluate_pair(rgb(png), truth)  # the same numbers, computed here
    assert m["psnr_db"] == pytest.approx(expected["psnr"], abs=1e-2)
    assert m["ssim"] == pytest.approx(expected["ssim"], abs=1e-3)
    assert m["delta_e_2000_mean"] == pytest.approx(expected["de2000"], abs=1e-2)
    assert m["colorfulness_original"] == pytest.approx(expected["colorfulness_truth"], abs=0.01)
    assert m["colorfulness_result"] == pytest.approx(expected["colorfulness_pred"], abs=0.01)
    assert "PSNR" in table and "Delta E 2000" in table and "SSIM" in table
    hm = rgb(heat)
    assert hm.shape[1] > 128 and hm.shape[0] >= 96  # the map with its color scale beside it


def test_controls_vividness_reference_and_working_size(user, files):
    src = H.save(files / "gray.png", Image.fromarray(H.gray_photo(64, 80)))
    base = colorize(user, src)[0]
    gray = colorize(user, src, vividness=0.0)[0]
    vivid = colorize(user, src, vividness=2.0)[0]
    assert H.chroma(gray).max() < 1.5  # vividness 0: no color left
    assert H.chroma(vivid).mean() > 1.4 * H.chroma(base).mean()
    assert np.abs(H.lightness(gray) - H.lightness(base)).mean() < 1.0  # the photo's own L
    # a blue reference pulls the reddish tiny model's colors towards blue (negative b)
    blue = np.zeros((50, 50, 3), np.uint8)
    blue[..., 2] = 200
    blue[::2, ::2, 1] = 90
    ref = H.save(files / "blue.png", Image.fromarray(blue))
    moved = colorize(user, src, reference=handle_file(str(ref)))[0]
    b_base = lab.rgb_to_lab(rgb(base))[..., 2].mean()
    b_moved = lab.rgb_to_lab(rgb(moved))[..., 2].mean()
    assert b_base > 5 and b_moved < -10
    png, _, message = colorize(user, src, input_size=512)
    assert "at 512 px" in message
    assert not np.array_equal(rgb(png), rgb(base))


def test_compare_runs_several_models_side_by_side_with_timings(user, files):
    src = H.save(files / "cmp.png", Image.fromarray(H.gray_photo(60, 80)))
    gallery, table = user.predict(handle_file(str(src)), ["lite0-scene", "tiny2"], api_name="/compare")
    captions = [g["caption"] for g in gallery]
    assert captions[0] == "input" and len(gallery) == 3
    assert captions[1].startswith("lite0-scene - ") and captions[1].endswith(" s")
    assert captions[2].startswith("tiny2 - ")
    assert "| lite0-scene |" in table and "| tiny2 |" in table


def test_compare_runs_a_model_named_twice_once(user, files):
    """Issue 18: /compare with the same model 20 times ran it 20 times at 1024 px."""
    src = H.save(files / "twice.png", Image.fromarray(H.gray_photo(60, 80)))
    gallery, table = user.predict(handle_file(str(src)), ["lite0-scene"] * 20 + ["tiny2"],
                                  api_name="/compare")
    assert [g["caption"].split(" - ")[0] for g in gallery] == ["input", "lite0-scene", "tiny2"]
    assert table.count("| lite0-scene |") == 1


def test_batch_of_files_and_a_zip_gives_a_zip_and_reports_what_it_skipped(user, files):
    a = H.save(files / "a.png", Image.fromarray(H.gray_photo(40, 50)))
    zpath = files / "photos.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name in ("x.jpg", "sub/y.jpg"):
            buf = io.BytesIO()
            Image.fromarray(H.gray_photo(30, 40)).save(buf, format="JPEG")
            zf.writestr(name, buf.getvalue())
        zf.writestr("notes.txt", "not a photo")
        zf.writestr("broken.png", b"\x89PNG\r\n\x1a\n garbage")
        zf.writestr("__MACOSX/._x.jpg", b"resource fork")
    out, summary = user.predict([handle_file(str(a)), handle_file(str(zpath))], "default",
                                api_name="/batch")
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        assert names == ["a.png", "report.txt", "x.png", "y.png"]
        assert Image.open(io.BytesIO(zf.read("y.png"))).size == (40, 30)
        report = zf.read("report.txt").decode()
    assert "3 of 4 photos colorized" in report
    assert "broken.png is damaged" in report and "notes.txt: not an image file name" in report
    assert "**3 of 4**" in summary


def test_batch_stops_a_zip_member_that_inflates_past_its_header(user, files):
    """A member declaring 1,000 bytes that would inflate to 64 MB is stopped at its header's size
    and reported; the other photo of the request is colorized."""
    a = H.save(files / "ok.png", Image.fromarray(H.gray_photo(40, 50)))
    liar = H.zip_with_lying_size(files / "liar.zip", "bomb.png", b"\0" * (64 << 20), declared=1000)
    out, summary = user.predict([handle_file(str(a)), handle_file(liar)], "default", api_name="/batch")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["ok.png", "report.txt"]
        report = zf.read("report.txt").decode()
    assert "1 of 2 photos colorized" in report and "bomb.png" in report
    assert "**1 of 2**" in summary


def test_batch_escapes_and_cuts_the_names_of_archive_members(user, files):
    """A member named like markup, and one named by 300 characters, are reported escaped and cut
    (the summary is Markdown in the page: raw markup there would run; report.txt is plain text)."""
    ok = H.save(files / "fine.png", Image.fromarray(H.gray_photo(40, 50)))
    evil = "<img src=x onerror=alert(1)>.png"
    zpath = files / "names.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(evil, b"\x89PNG\r\n\x1a\n not a real png")
        zf.writestr("a" * 300 + ".png", b"\x89PNG\r\n\x1a\n not one either")
    out, summary = user.predict([handle_file(str(ok)), handle_file(str(zpath))], "default", api_name="/batch")
    assert "**1 of 3**" in summary
    assert "<img" not in summary and "&lt;img src=x onerror=alert(1)&gt;.png" in summary
    assert "a" * 300 not in summary and "a" * 77 + "..." in summary
    with zipfile.ZipFile(out) as zf:
        report = zf.read("report.txt").decode()
    assert evil in report and "a" * 300 not in report  # a text file: the name as it is, cut


# --- awkward inputs that must work -------------------------------------------------------------------

def test_exif_rotation_comes_out_upright(user, files):
    png, _, message = colorize(user, H.exif_rotated_jpeg(files / "turned.jpg"))
    L = H.lightness(png)
    assert L.shape == (60, 40)  # upright: 40 wide, 60 high
    assert L[:25].mean() + 30 < L[35:].mean()  # dark on top, as photographed
    assert "EXIF orientation" in message


def test_animated_gif_uses_its_first_frame(user, files):
    png, _, message = colorize(user, H.animated_gif(files / "anim.gif"))
    assert H.lightness(png).mean() < 25  # the first frame is dark (gray level 30), the second bright
    assert "first of its 2 frames" in message


def test_16_bit_png_keeps_its_precision_and_gives_an_8_bit_png(user, files):
    g = np.linspace(12000, 52000, 96 * 64).reshape(64, 96).astype(np.uint16)  # mid tones
    im = Image.fromarray(g)
    assert im.mode == "I;16"
    src = H.save(files / "deep.png", im)
    png, _, message = colorize(user, src)
    assert Image.open(png).mode == "RGB" and rgb(png).shape == (64, 96, 3)
    L_in = lab.rgb_to_lightness(g)
    assert np.abs(H.lightness(png) - L_in).mean() < 1.0
    assert "16-bit" in message


def test_cmyk_jpeg_and_palette_png_with_transparency(user, files):
    cmyk = H.save(files / "print.jpg", Image.fromarray(H.photo(48, 64)).convert("CMYK"),
                  format="JPEG", quality=95)
    png, _, message = colorize(user, cmyk)
    assert rgb(png).shape == (48, 64, 3) and "CMYK" in message
    png, _, message = colorize(user, H.palette_png_with_transparency(files / "pal.png"))
    assert rgb(png).shape == (64, 64, 3) and "transparency is not kept" in message


def test_very_wide_panorama_is_colorized_at_full_size(user, files):
    pano = np.tile(H.gray_photo(200, 250), (1, 24))  # 6000 x 200, 30:1
    png, (before, after), _ = colorize(user, H.save(files / "pano.jpg", Image.fromarray(pano),
                                                    format="JPEG"))
    assert rgb(png).shape == (200, 6000, 3)
    assert Image.open(after).size == (1600, 53)  # the preview is scaled, the PNG is not
    assert H.chroma(png).mean() > 5.0


# --- bad inputs: a clear message, and the server keeps serving ---------------------------------------

def _truncated_jpeg(d: Path) -> Path:
    full = io.BytesIO()
    Image.fromarray(H.photo(200, 300)).save(full, format="JPEG", quality=90)
    p = d / "cut.jpg"
    p.write_bytes(full.getvalue()[:3000])
    return p


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


BAD = {
    "not an image": (lambda d: _write(d / "notes.png", "hello, not a photo"),
                     "notes.png is not an image file that can be read"),
    "truncated JPEG": (_truncated_jpeg, "cut.jpg is damaged or truncated"),
    "zero bytes": (lambda d: _write(d / "empty.jpg", b""), "empty.jpg is empty (0 bytes)"),
    "1x1 image": (lambda d: H.save(d / "dot.png", Image.new("L", (1, 1), 100)),
                  "dot.png is only 1 x 1 pixels: too small to colorize"),
    "decompression bomb": (lambda d: _write(d / "bomb.png", H.png_claiming_size(30000, 30000)),
                           "bomb.png claims 900,000,000 pixels (900 MP): over the limit of 40 MP"),
    "45 MP header": (lambda d: _write(d / "big.png", H.png_claiming_size(9000, 5000)),
                     "big.png is 9,000 x 5,000 pixels (45.0 MP): over the limit of 40 MP"),
    "1:200 strip": (lambda d: H.save(d / "strip.png", Image.new("L", (2000, 10), 100)),
                    "more elongated than 1:100"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_gets_a_clear_message_and_the_server_keeps_serving(server, user, files, kind):
    make, expected = BAD[kind]
    path = make(files)
    with pytest.raises(Exception) as info:
        colorize(user, path)
    msg = str(info.value)
    assert expected in msg, msg
    assert "Traceback" not in msg and "/gradio/" not in msg  # no server internals
    if "pixels" in expected and "MP" in expected:
        assert "refused before decoding" in msg
    assert server.alive()
    png, _, _ = colorize(user, H.save(files / "fine.png", Image.fromarray(H.gray_photo(30, 40))))
    assert rgb(png).shape == (30, 40, 3)


def test_upload_over_the_size_limit_is_refused(server, user, files):
    import httpx

    big = H.noise_png(files / "huge.png", UPLOAD_LIMIT_MB + 1)
    with pytest.raises(Exception, match="maximum file size"):
        colorize(user, big)  # gradio_client knows the limit and refuses to send it
    with open(big, "rb") as f:  # the server refuses it as well
        r = httpx.post(server.url + "gradio_api/upload", files={"files": ("huge.png", f, "image/png")})
    assert r.status_code == 413 and "maximum allowed size" in r.text
    assert server.alive()


def test_unknown_model_and_out_of_range_settings_are_explained(user, files):
    src = H.save(files / "m.png", Image.fromarray(H.gray_photo(30, 40)))
    with pytest.raises(Exception, match="unknown model 'nope'"):
        colorize(user, src, model="nope")
    with pytest.raises(Exception, match="5000 is greater than maximum value 1024"):
        colorize(user, src, input_size=5000)
    with pytest.raises(Exception, match="-1 is less than minimum value 0"):
        colorize(user, src, vividness=-1)


def test_metrics_before_any_result_says_what_to_do(server):
    with pytest.raises(Exception, match="colorize a photo first"):
        client(server).predict(api_name="/metrics")


def test_one_users_bad_upload_does_not_touch_another_users_work(server, files):
    alice, bob = client(server), client(server)
    truth = H.photo(600, 800)
    src = H.save(files / "alice.png", Image.fromarray(truth))
    job = alice.submit(handle_file(str(src)), "default", api_name="/colorize")
    bad = H.save(files / "bob.png", Image.new("L", (1, 1)))
    with pytest.raises(Exception, match="too small"):
        colorize(bob, bad)
    png, _, message = job.result(timeout=120)
    assert rgb(png).shape == (600, 800, 3)
    result, _, _ = alice.predict(api_name="/metrics")  # alice's state survived bob's error
    assert result["photo"] == "color" and math.isfinite(result["metrics"]["psnr_db"])
    with pytest.raises(Exception, match="colorize a photo first"):
        bob.predict(api_name="/metrics")  # and bob never sees alice's result


def test_without_any_weights_the_app_starts_and_says_how_to_get_them(tmp_path, files):
    empty = tmp_path / "no_weights"
    empty.mkdir()
    srv = H.AppServer(empty, tmp_path)
    try:
        assert "no model weights found" in srv.log()
        c = client(srv)
        assert c.predict(api_name="/models") == []
        src = H.save(files / "w.png", Image.fromarray(H.gray_photo(30, 40)))
        with pytest.raises(Exception, match="weights file of model 'lite0-scene' is missing"):
            colorize(c, src)
        assert srv.alive()
    finally:
        srv.stop()
