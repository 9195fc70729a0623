"""Plain U-Net autoencoder with skip connections, trained from scratch."""
from __future__ import annotations

from torch import nn

from .decoder import UNetDecoder
from .heads import ColorizationNet, ConvBNReLU, make_head, DEFAULT_TEMPERATURE


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


class UNet(ColorizationNet):
    def __init__(self, channels=(32, 64, 128, 256, 256), decoder_channels=(128, 64, 48),
                 head: str = "classification", out_stride: int = 4, n_bins: int = 313,
                 temperature: float = DEFAULT_TEMPERATURE):
        super().__init__()
        self.encoder = PlainEncoder(channels)
        strides = self.encoder.strides
        if out_stride not in strides:
            raise ValueError(f"out_stride {out_stride} is not one of the encoder's strides {strides}")
        self.decoder = UNetDecoder(self.encoder.channels, list(decoder_channels), strides.index(out_stride))
        self.head = make_head(head, self.decoder.out_channels, n_bins, temperature)
        self.head_kind = head
        self.input_multiple = max(strides)

    def forward(self, l_norm, hints=None):
        return self.head(self.decoder(self.encoder(l_norm)))
