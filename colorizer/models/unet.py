"""Plain U-Net autoencoder with skip connections, trained from scratch.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

from torch import nn

from .decoder import EncoderDecoderNet
from .heads import ConvBNReLU, DEFAULT_TEMPERATURE


class PlainEncoder(nn.Module):
    """Conv blocks, each halving the resolution: features at strides 2, 4, 8, ..."""

    def __init__(self, channels=(32, 64, 128, 256, 256)):
        super().__init__()
        stages, cin = [], 1
        for c in channels:
            stages.append(nn.Sequential(ConvBNReLU(cin, c, stride=2), ConvBNReLU(c, c)))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.channels = list(channels)
        self.strides = [2 ** (i + 1) for i in range(len(channels))]

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class UNet(EncoderDecoderNet):
    def __init__(self, channels=(32, 64, 128, 256, 256), decoder_channels=(128, 64, 48),
                 head: str = "classification", out_stride: int = 4, n_bins: int = 313,
                 temperature: float = DEFAULT_TEMPERATURE, correction: float = 0.0,
                 gain: float = 1.0, scene_context: int = 0):
        super().__init__()
        self._assemble(PlainEncoder(channels), decoder_channels, head, out_stride, n_bins, temperature,
                       correction, gain, scene_context=scene_context)
