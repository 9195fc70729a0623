"""Zhang, Zhu, Isola, Geng, Lin, Yu & Efros, "Real-Time User-Guided Image Colorization with
Learned Deep Priors" (SIGGRAPH 2017): the network that takes sparse user color hints.

Written from the paper and from the layout of the released PyTorch weights (key -> shape list in
shared/specs/zhang_state_dict_layouts.json), so that `state_dict()` has exactly the released keys
and shapes and the official file loads with strict=True (see weights.load_official).

Input, 4 channels at full resolution: L normalized as (L - 50) / 100, the hint colors a / 110 and
b / 110 (zero where there is no hint) and a 0/1 hint mask. H and W must be multiples of 8.

Encoder (3x3 convs, ReLU after each, BatchNorm at the end of each block); the blocks keep their
resolution and the encoder halves it between blocks by keeping every other pixel:

    model1  4->64, 64->64                         full
    model2  64->128, 128->128                     1/2
    model3  128->256, 2 x 256                     1/4
    model4  256->512, 2 x 512                     1/8
    model5, model6  3 x 512, dilation 2           1/8
    model7  3 x 512                               1/8

Decoder, U-Net-like with additive shortcuts:

    model8up   deconv 4x4 s2 512->256, + model3short8(conv3 features)   1/4
    model8     ReLU, 2 x (conv 256, ReLU), BN
    model9up   deconv 256->128, + model2short9(conv2 features)          1/2
    model9     ReLU, conv 128, ReLU, BN
    model10up  deconv 128->128, + model1short10(conv1 features 64->128) full
    model10    ReLU, conv 128, LeakyReLU(0.2)
    model_out  1x1 conv 128->2, tanh: ab / 110                          full

plus `model_class`, a 1x1 conv 256 -> 529 on model8's output: a distribution over a 23 x 23 grid
of ab values (see `suggest_distribution`), used to offer the user color suggestions.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

import torch
from torch import nn

from ..lab import AB_NORM
from .heads import ColorizationNet

# 529 suggestion classes: the ab grid from -110 to 110 in steps of 10 (23 values per axis). Class
# k is a = -110 + 10 * (k // 23), b = -110 + 10 * (k % 23) (a-major, the order of the authors'
# released training code, which quantizes round((ab + 110) / 10) and indexes a_idx * 23 + b_idx).
SUGGEST_AB_MAX = 110.0
SUGGEST_AB_STEP = 10.0
SUGGEST_GRID = int(2 * SUGGEST_AB_MAX / SUGGEST_AB_STEP) + 1  # 23
N_SUGGEST = SUGGEST_GRID * SUGGEST_GRID  # 529


def suggestion_ab_grid() -> torch.Tensor:
    """529 x 2 ab values (Lab units) of the suggestion classes, in class order."""
    v = torch.arange(SUGGEST_GRID, dtype=torch.float32) * SUGGEST_AB_STEP - SUGGEST_AB_MAX
    a, b = torch.meshgrid(v, v, indexing="ij")
    return torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)


def top_k_ab(dist: torch.Tensor, y: int, x: int, k: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k suggested colors at pixel (y, x) of a N x 529 x h x w suggestion distribution.

    (y, x) index the distribution's own grid (1/4 of the input resolution for SIGGRAPH17).
    Returns (ab, prob): N x k x 2 ab in Lab units and N x k probabilities, most likely first.
    """
    if dist.dim() != 4 or dist.shape[1] != N_SUGGEST:
        raise ValueError(f"expected a N x {N_SUGGEST} x h x w distribution, got {tuple(dist.shape)}")
    h, w = dist.shape[-2:]
    if not (0 <= y < h and 0 <= x < w):
        raise ValueError(f"pixel ({y}, {x}) is outside the {h} x {w} distribution")
    k = max(1, min(int(k), N_SUGGEST))
    prob, idx = dist[:, :, y, x].topk(k, dim=1)
    ab = suggestion_ab_grid().to(dist.device)[idx]
    return ab, prob


def _block(cin: int, cout: int, n_convs: int, dilation: int = 1) -> nn.Sequential:
    """n_convs x (3x3 conv + ReLU), then BatchNorm: convs at 0, 2, ..., BN at 2 * n_convs."""
    layers: list[nn.Module] = []
    for i in range(n_convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, padding=dilation,
                             dilation=dilation, bias=True),
                   nn.ReLU(inplace=True)]
    layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=True)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=True))


class SIGGRAPH17(ColorizationNet):
    """The SIGGRAPH 2017 user-guided network; its state dict matches the released weights.

    forward(l_norm, hints=None) -> N x 2 x H x W ab / 110 (tanh output, full resolution).
    hints: N x 3 x H x W (a / 110, b / 110, 0/1 mask), or None for no hints (all zeros), which
    makes it a fully automatic colorizer.
    mask_cent: subtracted from the mask channel before it enters the network. The released
      inference code feeds the 0/1 mask as is (0.0, the default); kept as a knob for weights
      trained with a centerd mask.
    """

    input_multiple = 8
    accepts_hints = True
    head_kind = "regression"

    def __init__(self, mask_cent: float = 0.0):
        super().__init__()
        self.mask_cent = float(mask_cent)
        self.model1 = _block(4, 64, 2)
        self.model2 = _block(64, 128, 2)
        self.model3 = _block(128, 256, 3)
        self.model4 = _block(256, 512, 3)
        self.model5 = _block(512, 512, 3, dilation=2)
        self.model6 = _block(512, 512, 3, dilation=2)
        self.model7 = _block(512, 512, 3)

        self.model8up = _up(512, 256)
        self.model3short8 = nn.Sequential(_conv3(256, 256))
        self.model8 = nn.Sequential(
            nn.ReLU(inplace=True), _conv3(256, 256), nn.ReLU(inplace=True),
            _conv3(256, 256), nn.ReLU(inplace=True), nn.BatchNorm2d(256))

        self.model9up = _up(256, 128)
        self.model2short9 = nn.Sequential(_conv3(128, 128))
        self.model9 = nn.Sequential(
            nn.ReLU(inplace=True), _conv3(128, 128), nn.ReLU(inplace=True), nn.BatchNorm2d(128))

        self.model10up = _up(128, 128)
        self.model1short10 = nn.Sequential(_conv3(64, 128))
        self.model10 = nn.Sequential(
            nn.ReLU(inplace=True), _conv3(128, 128), nn.LeakyReLU(negative_slope=0.2, inplace=True))

        self.model_class = nn.Sequential(nn.Conv2d(256, N_SUGGEST, 1, 1, 0, bias=True))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1, 1, 0, bias=True), nn.Tanh())

    # --- network -------------------------------------------------------------------------------
    def _input(self, l_norm: torch.Tensor, hints: torch.Tensor | None) -> torch.Tensor:
        if l_norm.dim() != 4 or l_norm.shape[1] != 1:
            raise ValueError(f"expected N x 1 x H x W normalized L, got {tuple(l_norm.shape)}")
        n, _, h, w = l_norm.shape
        if h % self.input_multiple or w % self.input_multiple:
            raise ValueError(f"SIGGRAPH17 needs H and W multiples of {self.input_multiple}, got {h} x {w}")
        if hints is None:
            hints = l_norm.new_zeros(n, 3, h, w)
        elif hints.shape != (n, 3, h, w):
            raise ValueError(f"hints must be N x 3 x H x W = {(n, 3, h, w)} (a/110, b/110, mask), "
                             f"got {tuple(hints.shape)}")
        hints = hints.to(l_norm)
        if self.mask_cent:
            hints = torch.cat([hints[:, :2], hints[:, 2:] - self.mask_cent], dim=1)
        return torch.cat([l_norm, hints], dim=1)

    def _encode(self, l_norm, hints):
        c1 = self.model1(self._input(l_norm, hints))
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        x = self.model4(c3[:, :, ::2, ::2])
        x = self.model5(x)
        x = self.model6(x)
        x = self.model7(x)
        c8 = self.model8(self.model8up(x) + self.model3short8(c3))
        return c1, c2, c8

    def forward(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """N x 1 x H x W normalized L (+ hints) -> N x 2 x H x W ab / 110 in [-1, 1]."""
        c1, c2, c8 = self._encode(l_norm, hints)
        x = self.model9(self.model9up(c8) + self.model2short9(c2))
        x = self.model10(self.model10up(x) + self.model1short10(c1))
        return self.model_out(x)

    def predict_ab(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """ab in Lab units, N x 2 x H x W (full input resolution)."""
        return self.forward(l_norm, hints) * AB_NORM

    # --- color suggestions --------------------------------------------------------------------
    def suggest_distribution(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Softmax over the 529 suggestion classes, N x 529 x H/4 x W/4.

        Class k is the ab color a = -110 + 10 * (k // 23), b = -110 + 10 * (k % 23): the 23 x 23
        ab grid of step 10 (suggestion_ab_grid()). Only the encoder and model8 run.
        """
        _, _, c8 = self._encode(l_norm, hints)
        return torch.softmax(self.model_class(c8).float(), dim=1)

    @torch.no_grad()
    def suggest_colors(self, l_norm: torch.Tensor, y: int, x: int, hints: torch.Tensor | None = None,
                       k: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k suggested ab colors at input pixel (y, x) (full-resolution coordinates).

        Returns (ab, prob): N x k x 2 in Lab units and N x k probabilities, most likely first.
        """
        dist = self.suggest_distribution(l_norm, hints)
        h, w = l_norm.shape[-2:]
        if not (0 <= y < h and 0 <= x < w):
            raise ValueError(f"pixel ({y}, {x}) is outside the {h} x {w} image")
        sy, sx = h // dist.shape[-2], w // dist.shape[-1]
        return top_k_ab(dist, y // sy, x // sx, k)
