"""Adversarial fine-tuning: the patch discriminator and `train --adv-weight`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from colorizer import cli
from colorizer.models.patch_discriminator import PatchDiscriminator
from colorizer.train import Adversary, epoch_checkpoint
from colorizer.weights import read_checkpoint, save_checkpoint

from conftest import build_tiny_default


def test_patch_scores_cover_the_photo():
    d = PatchDiscriminator(8)
    assert d(torch.zeros(2, 3, 56, 56)).shape == (2, 1, 12, 12)
    assert d(torch.zeros(1, 3, 32, 48)).shape == (1, 1, 6, 10)


def colourful_batch(gen, n=8, size=64):
    """L and ab (Lab units) of crops whose colour follows their lightness: bright ones yellow,
    dark ones blue, as a discriminator can learn to expect."""
    l_norm = torch.rand(n, 1, size, size, generator=gen) * 2 - 1
    ab = torch.cat([torch.zeros_like(l_norm), 60 * l_norm], 1)
    return l_norm, ab


@pytest.mark.heavy
def test_the_discriminator_learns_gray_from_colour_and_tells_the_colorizer_which_way_to_go():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    adv = Adversary(weight=0.5, lr=2e-3, channels=8, warmup=60)
    for _ in range(60):
        l_norm, ab = colourful_batch(gen)
        gray = torch.zeros_like(ab[:, :, ::4, ::4])
        real, fake = adv.pair(l_norm, ab, gray)
        assert real.shape == fake.shape == (8, 3, 16, 16)
        assert adv.generator_loss(fake) is None  # warm-up: the colorizer hears nothing yet
        adv.step(real, fake)
    assert adv.steps == 60 and adv.summary()["d_loss"] > 0
    adv.reset_stats()
    l_norm, ab = colourful_batch(gen)
    real, fake = adv.pair(l_norm, ab, torch.zeros_like(ab[:, :, ::4, ::4]))
    with torch.no_grad():
        assert (adv.disc(real) > 0).float().mean() > 0.9
        assert (adv.disc(fake) < 0).float().mean() > 0.9

    # after the warm-up, gray colours get a gradient towards the true ones (b rises with L)
    l_norm, ab = colourful_batch(gen)
    ab_hat = torch.zeros_like(ab[:, :, ::4, ::4], requires_grad=True)
    _, fake = adv.pair(l_norm, ab, ab_hat)
    grads = [p.grad.clone() for p in adv.disc.parameters()]  # from its last step
    g = adv.generator_loss(fake)
    assert g is not None and g.requires_grad
    g.backward()
    # the colorizer's loss leaves the discriminator's gradients as they were
    assert all(torch.equal(p.grad, q) for p, q in zip(adv.disc.parameters(), grads))
    assert all(p.requires_grad for p in adv.disc.parameters())
    step = -ab_hat.grad[:, 1]  # gradient descent direction of b
    l_small = torch.nn.functional.adaptive_avg_pool2d(l_norm, ab_hat.shape[-2:])[:, 0]
    corr = np.corrcoef(step.flatten().numpy(), l_small.flatten().numpy())[0, 1]
    assert corr > 0.3, corr


@pytest.mark.heavy
def test_train_with_a_discriminator_keeps_every_epoch_and_resumes_it(ab_bins, tmp_path, gradient_photos):
    base, args = build_tiny_default(ab_bins)
    base_path = tmp_path / "base.pt"
    save_checkpoint(base_path, base, "backbone_unet", args, meta={})
    out = tmp_path / "w" / "adv.pt"
    common = ["train", "--data", str(gradient_photos), "--out", str(out), "--init", str(base_path), "--hints",
              "--decode-weight", "100", "--adv-weight", "0.1", "--adv-warmup", "1", "--disc-channels", "8",
              "--decoder-channels", *map(str, args["decoder_channels"]),
              "--crop-size", "64", "--batch-size", "4", "--epoch-size", "8",
              "--val-images", "2", "--workers", "0", "--patience", "50"]
    assert cli.main([*common, "--epochs", "2"]) == 0
    for e in (1, 2):
        ck = read_checkpoint(epoch_checkpoint(out, e))
        assert ck["meta"]["epochs"] == e and ck["model_args"]["hints"] is True
    assert epoch_checkpoint(out, 2).name == "adv.epoch2.pt"
    before = read_checkpoint(base_path)["state_dict"]
    after = read_checkpoint(epoch_checkpoint(out, 2))["state_dict"]
    assert any(not torch.equal(after[k].float(), before[k].float()) for k in before)
    log = (tmp_path / "w" / "adv.log").read_text()
    assert "epoch 2 " in log and "d_loss=" in log and "d_real_ok=" in log
    resume = torch.load(out.with_name("adv.pt.resume"), map_location="cpu", weights_only=False)
    assert resume["adversary"]["steps"] == 4  # 2 epochs of 2 batches

    assert cli.main([*common, "--epochs", "3", "--resume"]) == 0
    resume = torch.load(out.with_name("adv.pt.resume"), map_location="cpu", weights_only=False)
    assert resume["adversary"]["steps"] == 6 and resume["state"]["epoch"] == 3
    assert epoch_checkpoint(out, 3).is_file()


def test_adversarial_options_that_do_not_fit(tmp_path, gradient_photos,
                                             capsys):
    for extra, words in ((["--adv-weight", "-1"], "--adv-weight must be 0 or more"),
                         (["--adv-weight", "0.1", "--hints", "--hint-branch", "4", "--train-only", "hint-branch"],
                          "leave out --train-only")):
        rc = cli.main(["train", "--data", str(gradient_photos), "--out", str(tmp_path / "w" / "x.pt"),
                       "--epochs", "1", "--workers", "0", *extra])
        assert rc == 2
        assert words in capsys.readouterr().err
        assert not (tmp_path / "w" / "x.pt").exists()
