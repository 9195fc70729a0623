"""Inference preparation (colorizer/models/inference.py): BatchNorm folding and channels_last
must leave what a network computes unchanged."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from colorizer.models import build_model
from colorizer.models.inference import fold_batchnorm, optimize_for_inference
from colorizer.pipeline import Colorizer


def trained_like(arch, seed=0, **args):
    """A network with random weights and BatchNorm statistics away from their initial values (a
    fresh BatchNorm is the identity in eval mode, and folding it would prove nothing)."""
    torch.manual_seed(seed)
    model = build_model(arch, **args)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.3, 3.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    return model.eval()


def count_bn(model):
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("arch,args,left", [
    ("backbone_unet", {"encoder": "efficientnet_lite0", "decoder_channels": [32, 16, 16], "hints": True}, 1),
    ("backbone_unet", {"encoder": "resnet18", "decoder_channels": [16, 16, 16], "head": "regression"}, 0),
    ("unet", {"channels": [8, 8, 8, 8, 8], "decoder_channels": [8, 8, 8]}, 0),
])
def test_folding_keeps_the_outputs(arch, args, left):
    model = trained_like(arch, **args)
    before = count_bn(model)
    fast = optimize_for_inference(copy.deepcopy(model))
    # every BatchNorm after a convolution is gone (EfficientNet's stem keeps its own: the hint
    # planes are added between its convolution and its BatchNorm)
    assert count_bn(fast) == left and before > left
    x = torch.randn(2, 1, 64, 96)
    inputs = (x, torch.zeros(2, 3, 64, 96)) if args.get("hints") else (x,)
    with torch.no_grad():
        want = model(*inputs)
        got = fast(*(t.contiguous(memory_format=torch.channels_last) for t in inputs))
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


def test_colorizer_in_channels_last_gives_the_same_colours():
    model = trained_like("backbone_unet", encoder="efficientnet_lite0", decoder_channels=[32, 16, 16],
                         hints=True, gain=3.0)
    plain = Colorizer(copy.deepcopy(model), name="plain", input_size=64)
    fast = Colorizer(optimize_for_inference(copy.deepcopy(model)), name="fast", input_size=64)
    assert fast.input_layout == torch.channels_last and plain.input_layout == torch.preserve_format
    photo = np.tile(np.linspace(0, 255, 80, dtype=np.uint8), (60, 1))
    hints = [(10, 10, 40.0, -30.0), (70, 50, -20.0, 50.0)]
    for h in (None, hints):
        a, b = plain.colorize(photo, hints=h), fast.colorize(photo, hints=h)
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert np.abs(plain.colorize(photo, hints=hints).astype(int) - plain.colorize(photo).astype(int)).max() > 10


def test_folding_needs_eval_mode():
    model = build_model("unet", channels=[8, 8, 8, 8, 8], decoder_channels=[8, 8, 8]).train()
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model)
    assert count_bn(model) > 0
