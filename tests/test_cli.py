"""The command line: `python -m colorizer colorize | evaluate | models | weights | bench | train`.

Most commands run as real subprocesses (what a user types), with COLORIZER_WEIGHTS_DIR pointing
at a folder holding the tiny random default model; the commands that need monkeypatching
(downloads) or are cheap error paths call colorizer.cli.main in-process. Nothing touches the
real internet, the repository's weights/ or runs/.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import colorizer
from colorizer import cli, lab, registry
from colorizer.evaluate import METRIC_KEYS
from colorizer.weights import load_checkpoint

from conftest import REPO


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_cli(*args, weights_dir, timeout=240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(COLORIZER_WEIGHTS_DIR=str(weights_dir), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "colorizer", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def no_traceback(p: subprocess.CompletedProcess):
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr


def colour_photo(i: int, h=64, w=80) -> np.ndarray:
    """Crops of scikit-image's colour photos, resized small."""
    src = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()][i % 4]
    y0 = (i * 37) % (src.shape[0] // 3)
    x0 = (i * 53) % (src.shape[1] // 3)
    crop = src[y0:y0 + src.shape[0] * 2 // 3, x0:x0 + src.shape[1] * 2 // 3]
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))


def synthetic_photo(seed: int, size: int = 64) -> np.ndarray:
    """Smooth colour gradients and blobs with a little noise: random-ish but image-like."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    chans = []
    for _ in range(3):
        f = rng.uniform(1, 6, 2)
        ph = rng.uniform(0, 6.3, 2)
        chans.append(0.5 + 0.25 * np.sin(f[0] * 6.3 * x + ph[0]) + 0.25 * np.cos(f[1] * 6.3 * y + ph[1]))
    img = np.stack(chans, -1) * 255 + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


# --- colorize ------------------------------------------------------------------------------------

def test_colorize_folder_with_bad_files(tiny_weights_dir, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    gray = np.asarray(Image.fromarray(colour_photo(0, 40, 50)).convert("L"))
    Image.fromarray(gray).save(src / "good1.png")
    Image.fromarray(colour_photo(1, 33, 47)).save(src / "sub" / "good2.jpg", quality=95)
    (src / "garbage.jpg").write_bytes(b"definitely not a JPEG " * 50)
    (src / "empty.png").write_bytes(b"")
    (src / "readme.txt").write_text("not an image, and not counted")
    out = tmp_path / "out"
    p = run_cli("colorize", src, "-o", out, "-q", weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 1, p.stderr
    assert sorted(f.name for f in out.iterdir()) == ["good1.png", "good2.png"]
    for name, (h, w) in (("good1.png", (40, 50)), ("good2.png", (33, 47))):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == (w, h)
    res = np.asarray(Image.open(out / "good1.png"))
    labo = lab.rgb_to_lab(res)
    assert np.abs(labo[..., 0] - lab.rgb_to_lightness(gray)).mean() < 1.0  # same photo ...
    assert np.hypot(labo[..., 1], labo[..., 2]).mean() > 5  # ... in colour
    assert "garbage.jpg" in p.stderr and "not an image file" in p.stderr
    assert "empty.png" in p.stderr and "empty" in p.stderr
    assert "colorized 2 of 4 photo(s)" in p.stdout
    assert "2 skipped" in p.stdout


def test_colorize_unknown_model(tiny_weights_dir, tmp_path):
    Image.fromarray(colour_photo(0, 20, 20)).save(tmp_path / "a.png")
    p = run_cli("colorize", tmp_path / "a.png", "-o", tmp_path / "out", "--model", "nope",
                weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 2
    assert "error: unknown model 'nope'" in p.stderr
    assert "lite0-hint" in p.stderr and "eccv16" in p.stderr
    assert not (tmp_path / "out").exists()


def test_colorize_in_process_missing_inputs_and_weights(tiny_weights_dir, tmp_path, capsys, monkeypatch):
    Image.fromarray(colour_photo(2, 24, 30)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    rc = cli.main(["colorize", str(tmp_path / "a.png"), str(tmp_path / "nope.jpg"), "-o", str(out), "-q"])
    cap = capsys.readouterr()
    assert rc == 1
    assert "nope.jpg: no such file or folder" in cap.err
    assert "colorized 1 of 1" in cap.out
    assert (out / "a.png").is_file()

    rc = cli.main(["colorize", str(tmp_path / "nope.jpg"), "-o", str(out), "-q"])
    assert rc == 2 and "no image files to colorize" in capsys.readouterr().err

    empty = tmp_path / "empty_weights"
    empty.mkdir()
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(empty))
    rc = cli.main(["colorize", str(tmp_path / "a.png"), "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "git lfs pull" in err and str(empty) in err

    rc = cli.main(["colorize", str(tmp_path / "a.png"), "-o", str(out), "-q", "--model", "eccv16"])
    assert rc == 2 and "python -m colorizer weights fetch eccv16" in capsys.readouterr().err


def test_colorize_same_stem_gets_distinct_outputs(tiny_weights_dir, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    Image.fromarray(colour_photo(0, 20, 24)).save(tmp_path / "photo.png")
    Image.fromarray(colour_photo(1, 30, 24)).save(tmp_path / "x" / "photo.jpg")
    out = tmp_path / "out"
    assert cli.main(["colorize", str(tmp_path / "photo.png"), str(tmp_path / "x" / "photo.jpg"),
                     "-o", str(out), "-q"]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["photo.png", "photo_2.png"]
    assert Image.open(out / "photo_2.png").size == (24, 30)


# --- evaluate --------------------------------------------------------------------------------------

def test_evaluate_json_and_save(tiny_weights_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(colour_photo(i)).save(photos / f"p{i}.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    js, save = tmp_path / "scores" / "eval.json", tmp_path / "saved"
    p = run_cli("evaluate", photos, "--json", js, "--save", save, "-q", "--per-image",
                weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert "broken.jpg" in p.stderr and "skipped" in p.stderr
    assert "PSNR" in p.stdout and "dE2000" in p.stdout and f"wrote {js}" in p.stdout

    doc = json.loads(js.read_text())
    assert doc["model"] == colorizer.DEFAULT_MODEL
    (name, s), = doc["sets"].items()
    assert name == str(photos)
    rows, mean = s["images"], s["mean"]
    assert sorted(Path(r["image"]).name for r in rows) == ["p0.png", "p1.png", "p2.png"]
    for r in rows:
        for k in METRIC_KEYS:
            assert isinstance(r[k], float) and np.isfinite(r[k]), (k, r)
        assert r["mse"] > 0 and 5 < r["psnr"] < 60 and -1 <= r["ssim"] <= 1
        assert r["de2000"] > 0 and r["de76"] >= r["de2000"] * 0.5
        assert r["colorfulness_truth"] > 0
    assert mean["images"] == 3
    for k in METRIC_KEYS:
        assert mean[k] == pytest.approx(np.mean([r[k] for r in rows]), rel=1e-6), k

    outs = sorted((save / "photos" / "outputs").iterdir())
    heats = sorted((save / "photos" / "heatmaps").iterdir())
    assert [f.name for f in outs] == ["photos_p0.png", "photos_p1.png", "photos_p2.png"]
    assert [f.name for f in heats] == [f"photos_p{i}_de2000.png" for i in range(3)]
    assert Image.open(outs[0]).size == (80, 64)
    with Image.open(heats[0]) as im:
        assert im.mode in ("RGB", "RGBA") and im.width >= 80 and im.height >= 64


@pytest.mark.heavy
def test_evaluate_models_all_compares_on_the_same_photos(tiny_weights_dir, tmp_path):
    import shutil
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(colour_photo(i)).save(photos / f"p{i}.png")
    shutil.copyfile(next(tiny_weights_dir.glob("*.pt")), tiny_weights_dir / "my_other.pt")
    js = tmp_path / "cmp.json"
    p = run_cli("evaluate", photos, "--models", "all", "--json", js, "-q", weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert "eccv16: weights not present, skipped" in p.stdout
    assert "2 models on the same photos" in p.stdout
    for col in ("MSE", "PSNR", "SSIM", "dE76", "dE94", "dE2000", "colorf."):
        assert col in p.stdout
    doc = json.loads(js.read_text())
    assert set(doc["models"]) == {colorizer.DEFAULT_MODEL, "my_other"}
    means = [m["sets"][str(photos)]["mean"] for m in doc["models"].values()]
    assert all(m["images"] == 2 for m in means)
    assert means[0]["psnr"] == pytest.approx(means[1]["psnr"])  # the same weights, the same photos
    # the gray input as a row of its own, the baseline
    p = run_cli("evaluate", photos, "--models", "gray", "default", "--json", js, "-q", weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 0 and "2 models on the same photos" in p.stdout, p.stderr
    gray = json.loads(js.read_text())["models"]["gray"]["sets"][str(photos)]["mean"]
    assert gray["colorfulness_pred"] < 0.5 and gray["psnr"] != pytest.approx(means[0]["psnr"])
    p = run_cli("evaluate", photos, "--models", "default", "nope", weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 2 and "unknown model 'nope'" in p.stderr
    p = run_cli("evaluate", photos, "--models", "all", "--gain", "2", weights_dir=tiny_weights_dir)
    assert p.returncode == 2 and "use --model NAME with them" in p.stderr


@pytest.mark.heavy
def test_evaluate_with_hints_and_variations(tiny_weights_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.fromarray(colour_photo(i)).save(photos / f"p{i}.png")
    plain, hinted = tmp_path / "plain.json", tmp_path / "hinted.json"
    for extra, js in (([], plain), (["--hints", "10"], hinted)):
        p = run_cli("evaluate", photos, "--limit", "3", "--json", js, "-q", *extra, weights_dir=tiny_weights_dir)
        no_traceback(p)
        assert p.returncode == 0, p.stderr
    assert "10 hints from the truth per photo" in p.stdout
    a, b = (json.loads(f.read_text())["sets"][str(photos)] for f in (plain, hinted))
    assert a["mean"]["images"] == b["mean"]["images"] == 3  # --limit
    assert [r["image"] for r in a["images"]] == [r["image"] for r in b["images"]]
    assert a["mean"]["de2000"] != b["mean"]["de2000"]  # the hints changed the colours

    js = tmp_path / "variations.json"
    p = run_cli("evaluate", photos, "--limit", "2", "--variations", "3", "--json", js, "-q",
                weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert "divers." in p.stdout and "3 variations per photo" in p.stdout
    m = json.loads(js.read_text())["sets"][str(photos)]["mean"]
    assert m["diversity_de2000"] > 0 and m["colorfulness_min_sample"] >= 0


def test_evaluate_missing_folder(tiny_weights_dir, tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nowhere"), "-q"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


# --- models, weights ---------------------------------------------------------------------------------

def test_models_lists_status(tiny_weights_dir):
    p = run_cli("models", weights_dir=tiny_weights_dir)
    no_traceback(p)
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    default = [ln for ln in lines if ln.startswith(f"{colorizer.DEFAULT_MODEL} (default)")]
    assert len(default) == 1 and "ready" in default[0]
    eccv = [ln for ln in lines if ln.startswith("eccv16 ")]
    assert len(eccv) == 1 and "not downloaded" in eccv[0]
    assert "python -m colorizer weights fetch eccv16 | siggraph17" in p.stdout


def test_models_json(tiny_weights_dir, capsys):
    (tiny_weights_dir / "mine.pt").write_bytes(b"")  # a user file: listed (loading would fail)
    assert cli.main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[colorizer.DEFAULT_MODEL]["available"] is True
    assert rows["eccv16"]["available"] is False and rows["siggraph17"]["available"] is False
    assert rows["mine"]["available"] is True


class _Server:
    """A local HTTP server that serves one body (never the real internet)."""

    def __init__(self, body: bytes):
        self.body, self.hits = body, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/w.pth"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _use_official(monkeypatch, name, **source):
    """Change the registry's WeightsSource of official `name` (url, sha256, bytes) for a test."""
    e = registry.REGISTRY[name]
    monkeypatch.setitem(registry.REGISTRY, name, dataclasses.replace(e, source=dataclasses.replace(e.source, **source)))


def test_weights_fetch_unreachable(tmp_path, capsys, monkeypatch):
    _use_official(monkeypatch, "eccv16", url="http://127.0.0.1:9/x.pth")
    dest = tmp_path / "dl"
    rc = cli.main(["weights", "fetch", "eccv16", "--dir", str(dest)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "downloading the eccv16 weights from http://127.0.0.1:9/x.pth failed" in err
    assert "network may be unreachable" in err
    assert "To get the file by hand" in err and registry.REGISTRY["eccv16"].source.sha256 in err
    assert list(dest.iterdir()) == []  # no partial file left behind


def test_weights_fetch_wrong_file_then_right_file(tmp_path, capsys, monkeypatch):
    body = b"not the weights" * 100
    srv = _Server(body)
    try:
        _use_official(monkeypatch, "siggraph17", url=srv.url)
        dest = tmp_path / "dl"
        assert cli.main(["weights", "fetch", "siggraph17", "--dir", str(dest)]) == 2
        err = capsys.readouterr().err
        assert "are not the expected file" in err and f"{len(body)} bytes" in err
        assert list(dest.iterdir()) == []
        # a server that does serve the expected bytes: the file lands, verified
        _use_official(monkeypatch, "siggraph17", bytes=len(body))
        _use_official(monkeypatch, "siggraph17", sha256=hashlib.sha256(body).hexdigest())
        assert cli.main(["weights", "fetch", "siggraph17", "--dir", str(dest)]) == 0
        f = dest / registry.REGISTRY["siggraph17"].weights
        assert f.read_bytes() == body and "sha256 verified" in capsys.readouterr().out
        hits = srv.hits
        assert cli.main(["weights", "fetch", "siggraph17", "--dir", str(dest)]) == 0
        assert srv.hits == hits  # already there: not downloaded again
        assert cli.main(["weights", "verify", "--dir", str(dest)]) == 0
        out = capsys.readouterr().out
        assert "siggraph17: ok" in out and "eccv16: not present" in out
        f.write_bytes(body[:-1] + b"!")
        assert cli.main(["weights", "verify", "--dir", str(dest)]) == 1
        assert "SHA256 MISMATCH" in capsys.readouterr().out
    finally:
        srv.close()


def test_weights_fetch_unknown_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(["weights", "fetch", "eccv17", "--dir", str(tmp_path)])
    assert ei.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# --- bench -----------------------------------------------------------------------------------------

def test_bench_default(tiny_weights_dir, tmp_path, capsys):
    js = tmp_path / "bench.json"
    rc = cli.main(["bench", "--models", "default", "--no-big", "--seconds", "0.2", "--size", "64",
                   "--batch", "2", "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0
    line = [ln for ln in out.splitlines() if f"{colorizer.DEFAULT_MODEL} (default)" in ln]
    assert len(line) == 1 and "img/s" in line[0] and "trained weights" in line[0]
    res = json.loads(js.read_text())
    (row,) = res["throughput"]
    assert row["name"] == colorizer.DEFAULT_MODEL and row["images_per_s"] > 0
    assert res["size"] == 64 and res["batch"] == 2 and "big_photo" not in res


# --- train -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("train_data")
    (d / "train").mkdir()
    (d / "val").mkdir()
    for i in range(12):
        Image.fromarray(synthetic_photo(i)).save(d / "train" / f"t{i:02d}.png")
    for i in range(4):
        Image.fromarray(synthetic_photo(100 + i)).save(d / "val" / f"v{i}.jpg", quality=95)
    return d / "train", d / "val"


TRAIN_ARGS = ["--arch", "unet", "--no-pretrained", "--crop-size", "32", "--batch-size", "4",
              "--epoch-size", "8", "--val-images", "4", "--decoder-channels", "8", "8", "8",
              "--threads", "1", "--workers", "0"]


@pytest.mark.heavy
def test_train_resume_and_load(train_data, tmp_path, monkeypatch):
    train_dir, val_dir = train_data
    wdir = tmp_path / "my_weights"
    ckpt = wdir / "tiny_unet.pt"
    args = ["train", "--data", train_dir, "--val", val_dir, "--out", ckpt, "--head", "regression",
            *TRAIN_ARGS]
    p = run_cli(*args, "--epochs", "2", weights_dir=wdir)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    log = wdir / "tiny_unet.log"
    resume = wdir / "tiny_unet.pt.resume"
    assert ckpt.is_file() and log.is_file() and resume.is_file()
    text = log.read_text()
    assert "loaded 12 training and 4 validation photos" in text
    assert "epoch 1 train_loss=" in text and "epoch 2 train_loss=" in text
    assert "epoch 3 train_loss=" not in text
    assert "done: all epochs" in text
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert ck["arch"] == "unet" and ck["model_args"]["decoder_channels"] == [8, 8, 8]
    assert ck["meta"]["epochs"] in (1, 2) and ck["meta"]["head"] == "regression"
    assert all(v.dtype == torch.float16 for v in ck["state_dict"].values() if v.is_floating_point())
    assert torch.load(resume, map_location="cpu", weights_only=False)["state"]["epoch"] == 2

    p = run_cli(*args, "--epochs", "3", "--resume", weights_dir=wdir)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    text = log.read_text()
    assert f"resumed from {resume} at epoch 2" in text
    # carried on, not restarted
    assert text.count("epoch 1 train_loss=") == 1 and text.count("epoch 3 train_loss=") == 1
    state = torch.load(resume, map_location="cpu", weights_only=False)["state"]
    assert state["epoch"] == 3 and [h["epoch"] for h in state["history"]] == [1, 2, 3]
    assert state["images_seen"] == 3 * 8

    # the checkpoint is a model by its file name once it sits in the weights folder
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(wdir))
    assert "tiny_unet" in [r["name"] for r in colorizer.list_models()]
    c = colorizer.load_colorizer("tiny_unet", device="cpu")
    assert c.info["arch"] == "unet" and c.input_size == 256
    out = c.colorize(synthetic_photo(7))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


@pytest.mark.heavy
def test_train_classification_head(train_data, tmp_path):
    train_dir, _ = train_data
    ckpt = tmp_path / "w" / "tiny_cls.pt"
    p = run_cli("train", "--data", train_dir, "--out", ckpt, "--head", "classification",
                *TRAIN_ARGS, "--epochs", "1", weights_dir=tmp_path / "w")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "w" / "tiny_cls.log").read_text()
    assert "ab bins; rebalancing weights" in text and "epoch 1 train_loss=" in text
    # held-out validation: one of the 12 photos
    assert "loaded 11 training and 1 validation photos" in text
    model, info = load_checkpoint(ckpt)
    assert info["model_args"]["head"] == "classification"
    bins = model.head.bins
    assert bins.shape == (info["model_args"]["n_bins"], 2) and bins.abs().sum() > 0
    val_loss = info["meta"]["val_loss"]
    assert np.isfinite(val_loss) and val_loss > 0  # cross-entropy of the soft-encoded targets


def test_train_without_images(tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    rc = cli.main(["train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "w" / "x.pt"),
                   "--arch", "unet", "--no-pretrained"])
    assert rc == 2
    assert "no images found" in capsys.readouterr().err
    assert not (tmp_path / "w" / "x.pt").exists()


def test_train_folder_shares_draw_each_folder_its_share():
    from colorizer.train import crop_sampler, folder_shares
    assert folder_shares(["a", "b"], [3, 1]) == [0.75, 0.25]
    # 10 photos in the first folder, 90 in the second: by weight each folder gets its share
    folder_of = [0] * 10 + [1] * 90
    torch.manual_seed(0)
    drawn = np.array(list(crop_sampler(folder_of, folder_shares(["a", "b"], [3, 1]), 4000)))
    assert abs(np.mean(drawn < 10) - 0.75) < 0.03
    # a folder with no share gives no crops; without weights photos are drawn uniformly
    drawn = np.array(list(crop_sampler(folder_of, folder_shares(["a", "b"], [1, 0]), 500)))
    assert drawn.max() < 10
    drawn = np.array(list(crop_sampler(folder_of, None, 4000)))
    assert abs(np.mean(drawn < 10) - 0.10) < 0.03
    for bad in ([1], [1, -1], [0, 0], [1, float("nan")]):
        with pytest.raises(ValueError, match="--data-weights"):
            folder_shares(["a", "b"], bad)


@pytest.mark.heavy
def test_train_data_weights_logged_and_checked(train_data, tmp_path, capsys):
    train_dir, val_dir = train_data
    ckpt = tmp_path / "w" / "tiny_mix.pt"
    p = run_cli("train", "--data", train_dir, val_dir, "--data-weights", "1", "3", "--out", ckpt,
                "--head", "regression", *TRAIN_ARGS, "--epochs", "2", "--keep-epochs",
                weights_dir=tmp_path / "w")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "w" / "tiny_mix.log").read_text()
    assert f"share of the crops per folder: {train_dir} 25%, {val_dir} 75%" in text
    assert load_checkpoint(ckpt)[1]["meta"]["config"]["data_weights"] == [1.0, 3.0]
    # --keep-epochs: every epoch's weights beside the best ones, whatever the validation loss did
    for e in (1, 2):
        assert load_checkpoint(tmp_path / "w" / f"tiny_mix.epoch{e}.pt")[1]["meta"]["epochs"] == e
    assert not (tmp_path / "w" / "tiny_mix.epoch3.pt").exists()
    # one weight for two folders: a clear message, no checkpoint
    bad = tmp_path / "w" / "bad.pt"
    rc = cli.main(["train", "--data", str(train_dir), str(val_dir), "--data-weights", "1",
                   "--out", str(bad), "--arch", "unet", "--no-pretrained"])
    assert rc == 2
    assert "one weight per --data folder: 2 folders, 1 weights" in capsys.readouterr().err
    assert not bad.exists()
    # a folder with a share but no photos
    (tmp_path / "empty").mkdir()
    rc = cli.main(["train", "--data", str(train_dir), str(tmp_path / "empty"), "--data-weights", "1", "1",
                   "--out", str(bad), "--arch", "unet", "--no-pretrained"])
    assert rc == 2
    assert f"no images found under {tmp_path / 'empty'}, which --data-weights gives 50% of the crops" \
        in capsys.readouterr().err
    assert not bad.exists()
