"""Output heads shared by our encoder-decoders: ab regression, or classification over ab bins.

Classification follows Zhang et al. (ECCV 2016): the ab plane is quantized into in-gamut bins of
grid 10 (313 of them on ImageNet); the network predicts a distribution over the bins per pixel,
trained with soft-encoded targets and class rebalancing, and decoded with the annealed mean
(temperature T: T=1 is the mean, T->0 the mode; 0.38 in the paper).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..lab import AB_NORM

HEADS = ("regression", "classification")
DEFAULT_TEMPERATURE = 0.38


def ingamut_ab_bins(grid: int = 10, l_steps: int = 101) -> np.ndarray:
    """ab bin centres (K x 2, Lab units) of the grid whose cells hold any in-gamut sRGB colour.

    Used when no bin file is given; a cell counts as in gamut when some lightness L in [0, 100]
    turns (L, a, b) into sRGB without clipping, tested at the cell centre and its corners.
    """
    from ..lab import _lab_to_linear  # local import: only training needs this

    centres = np.arange(-110, 111, grid, dtype=np.float32)
    keep = []
    Ls = np.linspace(0, 100, l_steps, dtype=np.float32)
    for a in centres:
        for b in centres:
            ok = False
            for da in (-grid / 2, 0, grid / 2):
                for db in (-grid / 2, 0, grid / 2):
                    lab = np.stack([Ls, np.full_like(Ls, a + da), np.full_like(Ls, b + db)], -1)
                    lin = _lab_to_linear(lab[None])
                    if np.any(np.all((lin >= -1e-6) & (lin <= 1 + 1e-6), axis=-1)):
                        ok = True
                        break
                if ok:
                    break
            if ok:
                keep.append((a, b))
    return np.array(keep, dtype=np.float32)


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """N x K x H x W logits, K x 2 bin centres -> N x 2 x H x W ab (Lab units)."""
    t = max(float(temperature), 1e-3)
    p = torch.softmax(logits / t, dim=1)  # softmax(log p / T) == p^(1/T) renormalized
    return torch.einsum("nkhw,kc->nchw", p, bins)


class RegressionHead(nn.Module):
    """1x1 conv to ab / AB_NORM."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 2, 1)

    def forward(self, x):
        return self.conv(x)

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        return out * AB_NORM


class ClassificationHead(nn.Module):
    """1x1 conv to logits over K ab bins; the bins travel in the state dict."""

    def __init__(self, in_ch: int, n_bins: int = 313, temperature: float = DEFAULT_TEMPERATURE):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, n_bins, 1)
        self.register_buffer("bins", torch.zeros(n_bins, 2))
        self.temperature = temperature

    def forward(self, x):
        return self.conv(x)

    def decode(self, logits: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        t = self.temperature if temperature is None else temperature
        return annealed_mean(logits.float(), self.bins.float(), t)


def make_head(kind: str, in_ch: int, n_bins: int = 313, temperature: float = DEFAULT_TEMPERATURE):
    if kind == "regression":
        return RegressionHead(in_ch)
    if kind == "classification":
        return ClassificationHead(in_ch, n_bins, temperature)
    raise ValueError(f"unknown head {kind!r}: choose one of {', '.join(HEADS)}")


class ColorizationNet(nn.Module):
    """Base of every network here: L in, ab out.

    forward(l_norm, hints=None) gives the head's raw output (logits or ab / AB_NORM) for training;
    predict_ab(l_norm, hints=None) gives ab in Lab units (at the network's output resolution) for
    inference. l_norm is (L - L_CENT) / L_NORM, shape N x 1 x H x W, H and W multiples of
    `input_multiple`. Networks that take user hints set `accepts_hints`; hints are N x 3 x H x W:
    a / AB_NORM, b / AB_NORM and a 0/1 mask.
    """

    input_multiple = 32
    accepts_hints = False
    head_kind = "regression"

    def predict_ab(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        out = self.forward(l_norm, hints) if self.accepts_hints else self.forward(l_norm)
        return self.head.decode(out)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )
