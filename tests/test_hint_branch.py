"""The hint propagation branch (colorizer/models/hint_branch.py) and training it on its own."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from colorizer import cli
from colorizer.models import build_model
from colorizer.train import init_from, sample_hints
from colorizer.weights import read_checkpoint, save_checkpoint

from conftest import build_tiny_default


def tiny_with_branch(ab_bins, tmp_path, channels=4):
    """The tiny default hint model saved as a checkpoint, and the same model with a branch whose
    last layer is not zero (as after training)."""
    base, args = build_tiny_default(ab_bins)
    path = tmp_path / "base.pt"
    save_checkpoint(path, base, "backbone_unet", args, meta={})
    ref = build_model("backbone_unet", **args)
    init_from(ref, path)
    branched = build_model("backbone_unet", **args, hint_branch=channels)
    init_from(branched, path)
    torch.manual_seed(1)
    torch.nn.init.normal_(branched.hint_branch.out.weight, std=0.5)
    return ref.eval(), branched.eval(), path, args


def test_the_branch_changes_nothing_without_hints_and_moves_colours_with_them(ab_bins, tmp_path):
    ref, branched, _, _ = tiny_with_branch(ab_bins, tmp_path)
    x = torch.randn(2, 1, 64, 64) * 0.3
    zero = torch.zeros(2, 3, 64, 64)
    hints = sample_hints(torch.randn(2, 2, 64, 64) * 30, p_none=0.0)
    with torch.no_grad():
        assert torch.equal(branched(x), ref(x))
        assert torch.equal(branched(x, zero), ref(x, zero))
        assert not torch.allclose(branched(x, hints), ref(x, hints), atol=1e-3)


def test_the_branch_needs_a_hint_model(ab_bins):
    _, args = build_tiny_default(ab_bins, hints=False)
    with pytest.raises(ValueError, match="hint_branch needs hints"):
        build_model("backbone_unet", **args, hint_branch=4)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("branch_photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        yy, xx = np.mgrid[0:48, 0:48]
        img = np.stack([(xx * 5 + i * 20) % 256, (yy * 5) % 256, np.full_like(xx, 40 * i)], -1)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"p{i}.png")
    return d


def test_training_only_the_branch_leaves_the_rest_of_the_network_as_it_was(ab_bins, tmp_path, photos):
    _, _, base_path, args = tiny_with_branch(ab_bins, tmp_path)
    out = tmp_path / "w" / "branch.pt"
    rc = cli.main(["train", "--data", str(photos), "--out", str(out), "--init", str(base_path),
                   "--hints", "--hint-branch", "4", "--train-only", "hint-branch",
                   "--decoder-channels", *map(str, args["decoder_channels"]),
                   "--crop-size", "32", "--batch-size", "4", "--epoch-size", "8", "--epochs", "1",
                   "--val-images", "2", "--workers", "0", "--lr", "1e-2"])
    assert rc == 0
    before = read_checkpoint(base_path)["state_dict"]
    after = read_checkpoint(out)
    assert after["model_args"]["hint_branch"] == 4 and after["model_args"]["hints"] is True
    new = after["state_dict"]
    branch_keys = {k for k in new if k.startswith("hint_branch.")}
    assert branch_keys and set(new) - branch_keys == set(before)
    for k, v in before.items():  # frozen: weights and batch-norm statistics alike
        assert torch.equal(new[k], v), k
    assert new["hint_branch.out.weight"].abs().sum() > 0  # the branch learned (it starts at zero)


@pytest.mark.parametrize("extra, words", [
    (["--train-only", "hint-branch"], "needs --hint-branch"),
    (["--hint-branch", "4"], "needs --hints"),
])
def test_branch_options_that_do_not_fit(tmp_path, photos, capsys, extra, words):
    rc = cli.main(["train", "--data", str(photos), "--out", str(tmp_path / "w" / "x.pt"),
                   "--epochs", "1", "--workers", "0", *extra])
    assert rc == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "w" / "x.pt").exists()
