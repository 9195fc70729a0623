"""The seed papers' systems shipped side by side (issue 21): the registry names each with a
one-line summary, `models` lists them, and a big network ships as int8 weights (one scale per
output channel) that load strictly and colorize as the float network does."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from colorizer.models import build_model
from colorizer.registry import REGISTRY, resolve
from colorizer.weights import load_checkpoint, read_checkpoint, save_checkpoint

from conftest import REPO

SEED_MODELS = {"vae-gan": "vae_gan", "autoencoder": "unet", "vgg16-unet": "backbone_unet",
               "resnet18-unet": "backbone_unet"}


def test_registry_names_the_seed_systems_with_one_line_each():
    for name, arch in SEED_MODELS.items():
        e = resolve(name)
        assert e.arch == arch and e.weights.endswith(".pt") and not e.official
        assert e.summary and "\n" not in e.summary and len(e.summary) <= 100, e.summary
    for e in REGISTRY.values():  # every registered model says in one line what it is
        assert e.summary and len(e.summary) <= 100, e.name


@pytest.mark.heavy
def test_models_command_lists_them(tmp_path):
    env = {"COLORIZER_WEIGHTS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-m", "colorizer", "models"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for name in SEED_MODELS:
        line = [ln for ln in p.stdout.splitlines() if ln.startswith(name + " ")]
        assert len(line) == 1 and "weights missing" in line[0], p.stdout


@pytest.mark.heavy
def test_int8_checkpoint_is_small_loads_strictly_and_colorizes_alike(tmp_path, ab_bins):
    args = {"encoder": "vgg16", "decoder_channels": [32, 16, 16], "head": "classification", "n_bins": 313,
            "temperature": 0.38, "correction": 0.0, "gain": 1.0}  # as `train` writes them
    torch.manual_seed(0)
    model = build_model("backbone_unet", **args).eval()
    with torch.no_grad():
        model.head.bins.copy_(torch.from_numpy(ab_bins))
        model.head.conv.weight.mul_(20)  # a random network's colours vary, not one flat mean
    save_checkpoint(tmp_path / "f16.pt", model, "backbone_unet", args)
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "ship_checkpoint.py"), str(tmp_path / "f16.pt"),
                        str(tmp_path / "i8.pt"), "--int8", "--gain", "1.2"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    f16, i8 = (tmp_path / "f16.pt").stat().st_size, (tmp_path / "i8.pt").stat().st_size
    assert i8 < 0.55 * f16, (i8, f16)
    ck = torch.load(tmp_path / "i8.pt", map_location="cpu", weights_only=True)
    assert ck["state_dict"]["encoder.features.28.weight"].dtype == torch.int8
    assert ck["state_dict"]["encoder.features.28.bias"].dtype == torch.float16  # small: fp16
    assert read_checkpoint(tmp_path / "i8.pt")["state_dict"]["encoder.features.28.weight"].dtype == torch.float16
    a, _ = load_checkpoint(tmp_path / "f16.pt")
    b, info = load_checkpoint(tmp_path / "i8.pt")
    assert info["model_args"]["gain"] == 1.2 and "int8" in info["meta"]["storage"]
    w_a, w_b = a.encoder.features[0].weight, b.encoder.features[0].weight
    step = w_a.detach().abs().reshape(len(w_a), -1).amax(1) / 127
    assert ((w_a - w_b).abs().reshape(len(w_a), -1).amax(1) <= step * 0.51 + 1e-3).all()
    x = torch.rand(1, 1, 64, 64) - 0.5
    with torch.no_grad():
        ya, yb = a.predict_ab(x), b.predict_ab(x) / 1.2
    assert float(ya.abs().mean()) > 2.0 and float((ya - yb).abs().mean()) < 0.5  # ab units
    # a damaged scale table is refused with a clear message
    ck["int8_scales"]["encoder.features.28.weight"] = torch.ones(3, dtype=torch.float16)
    torch.save(ck, tmp_path / "bad.pt")
    try:
        read_checkpoint(tmp_path / "bad.pt")
    except Exception as exc:  # WeightsError
        assert "int8 scales that do not fit" in str(exc)
    else:
        raise AssertionError("a damaged int8 checkpoint was read")
    assert np.isfinite(yb.numpy()).all()


@pytest.mark.heavy
def test_every_shipped_model_is_here_small_and_colorful(monkeypatch):
    """The repository's weights/ holds every model the registry ships (not the official files),
    each under 25 MB; each loads and gives colour; the VAE-GAN's samples differ."""
    from skimage import data
    import colorizer
    from colorizer import lab
    from colorizer.registry import DEFAULT_WEIGHTS_DIR
    monkeypatch.delenv("COLORIZER_WEIGHTS_DIR", raising=False)
    truth = data.astronaut()[::2, ::2]
    gray = lab.gray_rgb_from_lightness(lab.rgb_to_lightness(truth))[..., 0]
    for e in REGISTRY.values():
        if e.official:
            continue
        path = DEFAULT_WEIGHTS_DIR / e.weights
        assert path.is_file(), f"{e.name}: {path} is not shipped"
        if path.read_bytes()[:40].startswith(b"version https://git-lfs"):
            continue  # a Git LFS pointer in a clone without `git lfs pull`
        assert path.stat().st_size < 25 * 2 ** 20, (e.name, path.stat().st_size)
        c = colorizer.load_colorizer(e.name, device="cpu")
        out = c.colorize(gray)
        chroma = np.hypot(*np.moveaxis(lab.rgb_to_lab(out)[..., 1:], -1, 0))
        assert out.shape == truth.shape and chroma.mean() > 4, (e.name, chroma.mean())
        if e.name == "vae-gan":
            v = [lab.rgb_to_lab(im)[..., 1:] for im in c.variations(gray, n=3, seed=0)]
            # its samples differ, if little (mean pairwise dE2000 1.2 on val photos: weights/README.md)
            assert min(np.linalg.norm(v[i] - v[j], axis=-1).mean() for i in range(3) for j in range(i)) > 0.2
