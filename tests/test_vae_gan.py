"""The VAE-GAN colorizer (colorizer/models/vae_gan.py): it starts as the checkpoint it is
initialized from, z steers its colours, the KL term is the Gaussian's, `train --arch vae_gan`
trains it with the adversary on prior samples, and its checkpoint loads in the registry, where
colorize uses z = 0 and variations draw z ~ N(0, I)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import colorizer
from colorizer import lab
from colorizer.models import build_model
from colorizer.models.inference import optimize_for_inference
from colorizer.train import init_from
from colorizer.weights import save_checkpoint

from conftest import REPO, build_tiny_vae_gan
from test_train_runs import _photo  # the same synthetic photos

ARGS = dict(encoder="efficientnet_lite0", decoder_channels=[16, 16, 16], head="classification",
            n_bins=313, hints=True, scene_context=16)


def test_starts_as_the_model_it_comes_from_and_z_steers_it(tmp_path):
    torch.manual_seed(0)
    base = build_model("backbone_unet", **ARGS).eval()
    save_checkpoint(tmp_path / "base.pt", base, "backbone_unet", ARGS, half=False)
    vae = build_model("vae_gan", **ARGS, latent=6).eval()
    init_from(vae, tmp_path / "base.pt")
    x = torch.rand(2, 1, 64, 96) - 0.5
    hints = torch.zeros(2, 3, 64, 96)
    z = torch.randn(2, 6)
    with torch.no_grad():
        assert torch.equal(base(x), vae(x)) and torch.equal(base(x, hints), vae(x, hints, z=z))
        torch.nn.init.normal_(vae.latent.to_out.weight, std=0.5)
        y0, yz = vae(x), vae(x, z=z)
        assert torch.equal(y0, vae(x, z=torch.zeros(2, 6)))  # no z is the prior's mean
        assert not torch.allclose(y0, yz)
        with pytest.raises(ValueError, match="z must be N x 6"):
            vae(x, z=torch.zeros(2, 5))
        many = vae.forward_latents(x, torch.stack([z[0], z[1]]))
        assert torch.allclose(many[0], vae(x, z=z[0].expand(2, -1)), atol=1e-5)
        assert torch.allclose(many[1], vae(x, z=z[1].expand(2, -1)), atol=1e-5)
        fast = optimize_for_inference(vae)
        cl = x.contiguous(memory_format=torch.channels_last)
        assert torch.allclose(fast(cl, z=z), yz, atol=1e-4)


def test_training_forward_gives_the_gaussian_kl_and_a_prior_sample():
    torch.manual_seed(0)
    vae = build_model("vae_gan", **ARGS, latent=5).train()
    x = torch.rand(3, 1, 64, 64) - 0.5
    ab = torch.randn(3, 2, 64, 64) * 30
    out = vae.training_forward(x, ab)
    assert out.out.shape == (3, 313, 16, 16) and out.prior_out is None and out.kl.shape == (3,)
    mu, logvar = vae.latent.posterior(x, ab, vae._encode(x)[-1])
    expect = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
    assert torch.allclose(out.kl, expect, rtol=1e-4, atol=1e-5) and (out.kl > 0).all()
    # the posterior sees the colours: other colours, another q(z | L, ab)
    mu2, _ = vae.latent.posterior(x, -ab, vae._encode(x)[-1])
    assert not torch.allclose(mu, mu2)
    both = vae.training_forward(x, ab, prior=True)
    assert both.prior_out.shape == both.out.shape
    (both.out.mean() + both.kl.mean() + both.prior_out.mean()).backward()
    assert vae.latent.posterior.mlp[-1].weight.grad is not None


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae_photos")
    for name, n, off in (("a", 10, 0), ("val", 4, 100)):
        (root / name).mkdir()
        for i in range(n):
            Image.fromarray(_photo(off + i)).save(root / name / f"{name}{i}.png")
    return root


def _env(weights_dir):
    return {**os.environ, "COLORIZER_WEIGHTS_DIR": str(weights_dir), "OMP_NUM_THREADS": "1"}


@pytest.mark.heavy
def test_train_vae_gan_and_load_it_as_the_registered_model(photo_dirs, tmp_path, monkeypatch):
    wdir = tmp_path / "weights"
    out = wdir / "vae_gan.pt"
    cmd = [sys.executable, "-m", "colorizer", "train", "--data", str(photo_dirs / "a"),
           "--val", str(photo_dirs / "val"), "--out", str(out), "--arch", "vae_gan", "--no-pretrained",
           "--decoder-channels", "8", "8", "8", "--latent-dim", "4", "--adv-weight", "0.1",
           "--adv-warmup", "1", "--decode-weight", "10", "--crop-size", "64", "--batch-size", "4",
           "--epoch-size", "16", "--epochs", "2", "--val-images", "4", "--threads", "1", "--workers", "0",
           "--cache-dir", str(tmp_path / "cache")]
    p = subprocess.run(cmd, cwd=REPO, env=_env(wdir), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    log = out.with_suffix(".log").read_text()
    epochs = [ln for ln in log.splitlines() if " epoch " in ln and "val_loss=" in ln]
    assert len(epochs) == 2 and all(" kl=" in ln and " d_loss=" in ln for ln in epochs), log
    ck = torch.load(out, map_location="cpu", weights_only=True)
    assert ck["arch"] == "vae_gan" and ck["model_args"]["latent"] == 4
    assert any(k.startswith("latent.posterior.") for k in ck["state_dict"])
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(wdir))
    c = colorizer.load_colorizer("vae-gan", device="cpu")
    assert c.samples_latent and c.predicts_distribution
    rgb = c.colorize(_photo(5))
    assert rgb.shape == (72, 88, 3) and rgb.dtype == np.uint8
    v = c.variations(_photo(5), n=3, seed=2)
    assert len(v) == 3 and all(im.shape == (72, 88, 3) for im in v)
    # a latent code of no dimensions: a clear message, no traceback
    bad = subprocess.run(cmd + ["--latent-dim", "0"], cwd=REPO, env=_env(wdir), capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "--latent-dim must be 1 or more" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_variations_draw_z_and_colorize_uses_its_mean(ab_bins, tmp_path, monkeypatch):
    model, args = build_tiny_vae_gan(ab_bins)
    save_checkpoint(tmp_path / "vae_gan.pt", model, "vae_gan", args, meta={"input_size": 128})
    monkeypatch.setenv("COLORIZER_WEIGHTS_DIR", str(tmp_path))
    c = colorizer.load_colorizer("vae-gan", device="cpu")
    gray = np.asarray(Image.fromarray(_photo(9)).convert("L"))
    v = c.variations(gray, n=4, seed=3)
    assert all(im.shape == (72, 88, 3) for im in v)
    ab = [lab.rgb_to_lab(im)[..., 1:] for im in v]
    for i in range(4):  # four different colourings of the same lightness
        assert abs(lab.rgb_to_lightness(v[i]) - lab.rgb_to_lightness(np.stack([gray] * 3, -1))).mean() < 3
        for j in range(i):
            assert np.linalg.norm(ab[i] - ab[j], axis=-1).mean() > 2.0, (i, j)
    again = c.variations(gray, n=4, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(v, again))
    assert not np.array_equal(c.variations(gray, n=1, seed=4)[0], v[0])
    # strength 0 draws z = 0 every time: the colorization itself
    flat = c.variations(gray, n=2, seed=3, strength=0.0)
    assert np.array_equal(flat[0], c.colorize(gray)) and np.array_equal(flat[1], flat[0])
