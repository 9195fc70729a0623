"""Scene-level context for the encoder-decoder colorizers (after the global features of Iizuka,
Simo-Serra and Ishikawa 2016, applied as FiLM): the deepest encoder features averaged over the
whole photo go through a small MLP, and the result gives a per-channel scale and shift for the
deepest features (before decoding) and for the decoder's last features (before the head).

A local feature sees a patch; what color a patch takes often depends on the whole scene (a
forest, a beach, a kitchen). Both projections start at zero, so a network given this module
starts out exactly as the one it was fine-tuned from.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

import torch
from torch import nn


class SceneContext(nn.Module):
    def __init__(self, deep_channels: int, out_channels: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(deep_channels, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.to_deep = nn.Linear(hidden, 2 * deep_channels)
        self.to_out = nn.Linear(hidden, 2 * out_channels)
        for proj in (self.to_deep, self.to_out):
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)

    def summary(self, deep: torch.Tensor) -> torch.Tensor:
        """N x C x h x w deepest features -> N x hidden scene vector."""
        return self.mlp(deep.float().mean(dim=(2, 3)).to(deep.dtype))

    @staticmethod
    def _film(x: torch.Tensor, proj: nn.Linear, g: torch.Tensor) -> torch.Tensor:
        gamma, beta = proj(g).to(x.dtype).chunk(2, dim=1)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]

    def film_deep(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self._film(x, self.to_deep, g)

    def film_out(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return self._film(x, self.to_out, g)
