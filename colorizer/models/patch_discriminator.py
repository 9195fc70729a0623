"""A patch discriminator for adversarial fine-tuning of a colorizer (pix2pix's PatchGAN idea).

It sees a photo's lightness and colors together (L / L_NORM and ab / AB_NORM, at the
colorizer's output grid) and scores each overlapping patch: high where the colors look like
a real photo's for that lightness, low where they look colorized. Spectral normalization keeps
its scores smooth, so the colorizer gets a usable gradient from the start (hinge loss).
Only training uses it; it is not shipped with a colorizer.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """3 x H x W (L, a, b, normalized) -> 1 x H/4-2 x W/4-2 patch scores.

    With the default 3 blocks its patches are 34 cells across: at a stride-4 output grid, about
    136 pixels of the working resolution."""

    def __init__(self, channels: int = 64, in_channels: int = 3):
        super().__init__()
        c = channels

        def conv(i, o, k, s):
            return spectral_norm(nn.Conv2d(i, o, k, stride=s, padding=1))

        self.net = nn.Sequential(
            conv(in_channels, c, 4, 2), nn.LeakyReLU(0.2, inplace=True),
            conv(c, 2 * c, 4, 2), nn.LeakyReLU(0.2, inplace=True),
            conv(2 * c, 4 * c, 4, 1), nn.LeakyReLU(0.2, inplace=True),
            conv(4 * c, 1, 4, 1),
        )

    def forward(self, x):
        return self.net(x)
