"""Hint propagation branch: carries user color hints across the photo inside the network.

A hint model's first hint paths (a convolution added to the encoder's stem and a 1 x 1 mix at
the decoder's end, colorizer/models/decoder.py) learned almost nothing in CPU time: sparse hints
give them a weak signal, and training them together with the rest of the network hurt the photos
without hints (docs/results/runs.md). This branch is trained on its own, with the network frozen.

It works on the decoder's output grid (stride 4). Its input is the hints pooled to that grid (a, b
and a 0/1 mask; all zero where there is no hint). A 3 x 3 convolution lifts them to `channels`
features; then dilated 3 x 3 convolutions (dilation 1, 2, 4, 8, 16: a reach of about 60 cells,
most of a 256 px photo) spread those features, each step gated by a sigmoid of the network's own
decoder features, so the spreading can follow objects and stop at their edges. A final 1 x 1
convolution turns the spread features into a correction of the decoder features.

Every layer is bias-free and each step multiplies what is spread by the gate, so without hints
the branch's output is exactly zero: a photo without hints is colorized exactly as by the network
without the branch. The last layer starts at zero, so the branch starts out as no change.

torch only (an nn.Module and its helpers); no file or network access.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

DILATIONS = (1, 2, 4, 8, 16)


class HintBranch(nn.Module):
    def __init__(self, feature_channels: int, channels: int = 32, dilations=DILATIONS):
        super().__init__()
        self.lift = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.spread = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=d, dilation=d, bias=False) for d in dilations)
        self.gates = nn.ModuleList(
            nn.Conv2d(feature_channels, channels, 1, bias=False) for _ in dilations)
        self.out = nn.Conv2d(channels, feature_channels, 1, bias=False)
        nn.init.zeros_(self.out.weight)

    def forward(self, pooled_hints: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """pooled_hints N x 3 x h x w (a, b, mask on the feature grid), features N x C x h x w
        -> a correction of the features, N x C x h x w (exactly zero where no hint reaches)."""
        g = F.relu(self.lift(pooled_hints))
        for conv, gate in zip(self.spread, self.gates):
            g = g + F.relu(conv(g)) * torch.sigmoid(gate(features))
        return self.out(g)
