"""Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016): the fully automatic network.

Written from the paper and from the layout of the released PyTorch weights (key -> shape list in
shared/specs/zhang_state_dict_layouts.json), so that `state_dict()` has exactly the released keys
and shapes and the official file loads with strict=True (see weights.load_official).

Network (VGG-like, no pooling, BatchNorm at the end of each block):

    block   convs (3x3, ReLU after each)        resolution
    model1  1->64, 64->64 (stride 2)            1/2
    model2  64->128, 128->128 (stride 2)        1/4
    model3  128->256, 256->256, 256->256 (s 2)  1/8
    model4  256->512, 512->512, 512->512        1/8
    model5  3 x 512, dilation 2                 1/8
    model6  3 x 512, dilation 2                 1/8
    model7  3 x 512                             1/8
    model8  deconv 4x4 s2 512->256, 2 x 256,    1/4
            then 1x1 256->313 (the logits)

Output: a distribution over the 313 in-gamut ab bins of grid 10 at 1/4 of the input resolution.
The released code decodes it with a plain softmax followed by a fixed 1x1 conv without bias,
`model_out` (313 -> 2), whose weight holds the bin centers / 110: the softmax-weighted mean of
the bin centers, i.e. ab / 110. It then upsamples x4 bilinearly; here predict_ab stops at the
network's resolution and the caller upsamples (as for every ColorizationNet).

Input: L normalized as (L - 50) / 100 (lab.L_CENT, lab.L_NORM), N x 1 x H x W, H and W multiples
of 8. Trained by the authors on 256 x 256 crops.

torch and numpy; reads a file (bin centers .npy) only when given its path.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from ..lab import AB_NORM
from .heads import ColorizationNet

N_BINS = 313


def _block(cin: int, cout: int, n_convs: int, last_stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """n_convs x (3x3 conv + ReLU), the last conv with `last_stride`, then BatchNorm.

    Sequential indices: convs at 0, 2, 4, ...; BatchNorm at 2 * n_convs (as in the released file).
    """
    layers: list[nn.Module] = []
    for i in range(n_convs):
        stride = last_stride if i == n_convs - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride, padding=dilation,
                             dilation=dilation, bias=True),
                   nn.ReLU(inplace=True)]
    layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def _as_bins(bins) -> torch.Tensor:
    """313 x 2 float tensor of ab bin centers (Lab units) from an array, tensor or .npy path."""
    if isinstance(bins, (str, os.PathLike)):
        bins = np.load(bins)
    t = torch.as_tensor(np.asarray(bins, dtype=np.float32))
    if t.shape != (N_BINS, 2):
        raise ValueError(f"ECCV16 needs {N_BINS} x 2 ab bin centres, got shape {tuple(t.shape)}")
    return t


class ECCV16(ColorizationNet):
    """The ECCV 2016 classification network; its state dict matches the released weights.

    bins: optional 313 x 2 ab bin centers (array, tensor or path to a .npy such as the released
      pts_in_hull.npy) written into `model_out`. Without it `model_out` starts at zero (a fresh
      model predicts gray) until a state dict, e.g. the official one, fills it: the bins travel in
      the state dict as model_out.weight = bins.T / 110.
    temperature: None decodes like the released code (softmax of the logits, then the mean of the
      bin centers). A float T decodes with the annealed mean softmax(logits / T) (the paper's
      T = 0.38 sharpens the distribution and gives more saturated colors); T is relative to the
      logits the network outputs, so T = 1 equals None.
    """

    input_multiple = 8
    accepts_hints = False
    head_kind = "classification"

    def __init__(self, bins=None, temperature: float | None = None):
        super().__init__()
        self.model1 = _block(1, 64, 2, last_stride=2)
        self.model2 = _block(64, 128, 2, last_stride=2)
        self.model3 = _block(128, 256, 3, last_stride=2)
        self.model4 = _block(256, 512, 3)
        self.model5 = _block(512, 512, 3, dilation=2)
        self.model6 = _block(512, 512, 3, dilation=2)
        self.model7 = _block(512, 512, 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, N_BINS, 1, 1, 0, bias=True),
        )
        # fixed decoding layer: softmax probabilities (313) -> ab / 110 (2); not trained
        self.model_out = nn.Conv2d(N_BINS, 2, 1, 1, 0, bias=False)
        self.model_out.weight.requires_grad_(False)
        with torch.no_grad():
            self.model_out.weight.zero_()
            if bins is not None:
                self.set_bins(bins)
        self.temperature = temperature

    # --- bins ----------------------------------------------------------------------------------
    @property
    def bins(self) -> torch.Tensor:
        """313 x 2 ab bin centers in Lab units, read from model_out's weight."""
        return self.model_out.weight.detach()[:, :, 0, 0].t() * AB_NORM

    @torch.no_grad()
    def set_bins(self, bins) -> None:
        """Write 313 x 2 ab bin centers (Lab units; array, tensor or .npy path) into model_out."""
        w = _as_bins(bins).t().reshape(2, N_BINS, 1, 1) / AB_NORM
        self.model_out.weight.copy_(w.to(self.model_out.weight))

    # --- network -------------------------------------------------------------------------------
    def forward(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """N x 1 x H x W normalized L -> N x 313 x H/4 x W/4 logits over the ab bins."""
        if hints is not None:
            raise ValueError("ECCV16 is fully automatic and takes no user hints")
        x = self.model1(l_norm)
        x = self.model2(x)
        x = self.model3(x)
        x = self.model4(x)
        x = self.model5(x)
        x = self.model6(x)
        x = self.model7(x)
        return self.model8(x)

    def decode(self, logits: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """N x 313 x h x w logits -> N x 2 x h x w ab in Lab units (see the class docstring)."""
        t = self.temperature if temperature is None else temperature
        logits = logits.float()
        if t is not None:
            logits = logits / max(float(t), 1e-3)
        p = torch.softmax(logits, dim=1)
        w = self.model_out.weight.float()
        return nn.functional.conv2d(p, w) * AB_NORM

    def predict_ab(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None,
                   temperature: float | None = None) -> torch.Tensor:
        """ab in Lab units, N x 2 x H/4 x W/4 (the caller upsamples). hints must be None."""
        return self.decode(self.forward(l_norm, hints), temperature)
