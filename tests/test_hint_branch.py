"""The hint propagation branch (colorizer/models/hint_branch.py) and training it on its own."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from colorizer import cli
from colorizer.models import build_model
from colorizer.hints import spread_hints
from colorizer.train import SpreadThrough, init_from, sample_hints
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


@pytest.mark.heavy
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


def test_training_only_the_branch_leaves_the_rest_of_the_network_as_it_was(
        ab_bins, tmp_path, gradient_photos):
    _, _, base_path, args = tiny_with_branch(ab_bins, tmp_path)
    out = tmp_path / "w" / "branch.pt"
    rc = cli.main(["train", "--data", str(gradient_photos), "--out", str(out), "--init", str(base_path),
                   "--hints", "--hint-branch", "4", "--train-only", "hint-branch",
                   "--through-spread", "--decode-weight", "100", "--gain", "1.3",
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
    (["--hints", "--through-spread"], "--through-spread needs"),
])
def test_branch_options_that_do_not_fit(tmp_path, gradient_photos, capsys, extra, words):
    rc = cli.main(["train", "--data", str(gradient_photos), "--out", str(tmp_path / "w" / "x.pt"),
                   "--epochs", "1", "--workers", "0", *extra])
    assert rc == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "w" / "x.pt").exists()


def test_spreading_a_tensor_keeps_its_gradient_and_gives_what_the_app_shows():
    rng = np.random.default_rng(3)
    ab = rng.normal(0, 20, (2, 16, 16)).astype(np.float32)
    L = np.tile(np.linspace(20, 80, 16, dtype=np.float32), (16, 1))
    cells = [(2, 3, 30.0, -10.0), (12, 12, -20.0, 40.0), (8, 1, 5.0, 5.0), (2, 3, 34.0, -12.0)]
    want = spread_hints(ab, L, cells)  # numpy in, numpy out: the pipeline's path
    t = torch.from_numpy(ab).requires_grad_(True)
    got = spread_hints(t, L, cells)
    assert isinstance(want, np.ndarray) and want.dtype == np.float32
    assert np.allclose(got.detach().numpy(), want, atol=1e-4)
    assert got[:, 2, 3].tolist() == pytest.approx([32.0, -11.0])  # two hints in one cell: their mean
    got.sum().backward()
    assert t.grad is not None and t.grad.abs().sum() > 0


def test_spread_through_maps_training_hints_to_the_output_grid():
    ab = torch.zeros(2, 2, 32, 32)
    ab[:, 0] = 25.0
    pts: list = []
    hints = sample_hints(ab, p_none=0.0, mean_count=3, points=pts, max_radius=0)
    assert len(pts) == 2 and all(pts)
    for i, photo in enumerate(pts):
        for x, y, a, b in photo:
            assert hints[i, 2, y, x] == 1 and (a, b) == pytest.approx((25.0, 0.0), abs=1e-4)
    l_norm = torch.zeros(2, 1, 32, 32)
    spread = SpreadThrough(l_norm, pts, (8, 8))
    out = spread(torch.zeros(2, 2, 8, 8))
    for i, photo in enumerate(pts):  # each hinted cell of the 8 x 8 grid gets its hint's colour
        for x, y, a, b in photo:
            assert out[i, 0, y // 4, x // 4] == pytest.approx(25.0, abs=1e-3)
