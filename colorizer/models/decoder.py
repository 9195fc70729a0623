"""U-Net decoder over a list of encoder feature maps (shallow to deep, strides 2, 4, ...)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .heads import ColorizationNet, ConvBNReLU, make_head


class UpBlock(nn.Module):
    """Upsample x2 (bilinear), concatenate the skip, two 3x3 convs."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv1 = ConvBNReLU(cin + cskip, cout)
        self.conv2 = ConvBNReLU(cout, cout)

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv2(self.conv1(torch.cat([x, skip], 1)))


class UNetDecoder(nn.Module):
    """Decodes features[-1] back up to the stride of features[stop] (stop=1 -> stride 4).

    encoder_channels: channels of each feature map, shallowest first; decoder_channels: output
    channels of each up block, deepest first (len == len(encoder_channels) - 1 - stop).
    """

    def __init__(self, encoder_channels, decoder_channels, stop: int = 1):
        super().__init__()
        enc = list(encoder_channels)
        skips = enc[:-1][stop:][::-1]
        if len(decoder_channels) != len(skips):
            raise ValueError(
                f"decoder_channels needs {len(skips)} entries for these encoder features, "
                f"got {len(decoder_channels)}"
            )
        self.stop = stop
        blocks, cin = [], enc[-1]
        for cskip, cout in zip(skips, decoder_channels):
            blocks.append(UpBlock(cin, cskip, cout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = cin

    def forward(self, feats):
        x = feats[-1]
        skips = feats[:-1][self.stop:][::-1]
        for block, skip in zip(self.blocks, skips):
            x = block(x, skip)
        return x


class EncoderDecoderNet(ColorizationNet):
    """Encoder (features at increasing strides) + U-Net decoder + head: our own architectures."""

    def _assemble(self, encoder: nn.Module, decoder_channels, head: str, out_stride: int,
                  n_bins: int, temperature: float, correction: float = 0.0,
                  gain: float = 1.0) -> None:
        self.encoder = encoder
        strides = list(encoder.strides)
        if out_stride not in strides:
            raise ValueError(f"out_stride {out_stride} is not one of the encoder's strides {strides}")
        self.decoder = UNetDecoder(encoder.channels, list(decoder_channels), strides.index(out_stride))
        self.head = make_head(head, self.decoder.out_channels, n_bins, temperature, correction, gain)
        self.head_kind = head
        self.input_multiple = max(strides)

    def forward(self, l_norm, hints=None):
        return self.head(self.decoder(self.encoder(l_norm)))
