"""Output heads shared by our encoder-decoders: ab regression, or classification over ab bins.

Classification follows Zhang et al. (ECCV 2016): the ab plane is quantized into in-gamut bins of
grid 10 (313 of them on ImageNet); the network predicts a distribution over the bins per pixel,
trained with soft-encoded targets and class rebalancing, and decoded with the annealed mean
(temperature T: T=1 is the mean, T->0 the mode; 0.38 in the paper).

Rebalancing makes the network predict q_k ~ w_k p_k (w_k: the class weight of bin k), which
favors rare, saturated colors. The head keeps log w_k, so decoding can take part of it back:
logits - c * log w (c = `correction`: 0 keeps the rebalanced, vivid distribution; 1 recovers
the plain posterior, whose mean is the most accurate but muted). `gain` then scales the
decoded chroma (1: as decoded): an accurate but muted mean gains vividness where its hues are right.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

import torch
from torch import nn

from ..lab import AB_NORM

HEADS = ("regression", "classification")
DEFAULT_TEMPERATURE = 0.38


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
    """N x K x H x W logits, K x 2 bin centers -> N x 2 x H x W ab (Lab units).

    softmax(logits / T) is p^(1/T) renormalized; the mean over the bins is one matrix product.
    The softmax runs over a contiguous last axis (channels last), which is much faster on CPU.
    """
    t = max(float(temperature), 1e-3)
    z = logits.permute(0, 2, 3, 1).contiguous()
    z.mul_(1.0 / t)
    p = torch.softmax(z, dim=-1)
    return (p @ bins.to(p.dtype)).permute(0, 3, 1, 2)


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

    def __init__(self, in_ch: int, n_bins: int = 313, temperature: float = DEFAULT_TEMPERATURE,
                 correction: float = 0.0, gain: float = 1.0):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, n_bins, 1)
        self.register_buffer("bins", torch.zeros(n_bins, 2))
        self.register_buffer("log_class_weights", torch.zeros(n_bins))
        self.temperature = temperature
        self.correction = correction
        self.gain = gain

    def forward(self, x):
        return self.conv(x)

    def decode(self, logits: torch.Tensor, temperature: float | None = None,
               correction: float | None = None, gain: float | None = None) -> torch.Tensor:
        t = self.temperature if temperature is None else temperature
        c = self.correction if correction is None else correction
        g = self.gain if gain is None else gain
        logits = logits.float()
        if c:
            logits = logits - c * self.log_class_weights.float()[None, :, None, None]
        ab = annealed_mean(logits, self.bins.float(), t)
        return ab * g if g != 1.0 else ab


def make_head(kind: str, in_ch: int, n_bins: int = 313, temperature: float = DEFAULT_TEMPERATURE,
              correction: float = 0.0, gain: float = 1.0):
    if kind == "regression":
        return RegressionHead(in_ch)
    if kind == "classification":
        return ClassificationHead(in_ch, n_bins, temperature, correction, gain)
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
