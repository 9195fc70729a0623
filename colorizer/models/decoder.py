"""U-Net decoder over a list of encoder feature maps (shallow to deep, strides 2, 4, ...).

torch only (an nn.Module and its helpers); no file or network access.
"""
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


def pool_hints(hints: torch.Tensor, size_hw) -> torch.Tensor:
    """N x 3 x H x W hints (a, b, mask; a = b = 0 off the mask) -> the same at a coarser size:
    the mean hint color over each cell's hinted pixels, and a 0/1 mask of cells holding a hint."""
    pooled = F.adaptive_avg_pool2d(hints, size_hw)
    share = pooled[:, 2:]
    ab = pooled[:, :2] / share.clamp_min(1e-6)
    return torch.cat([ab, (share > 0).to(hints.dtype)], 1)


class EncoderDecoderNet(ColorizationNet):
    """Encoder (features at increasing strides) + U-Net decoder + head: our own architectures.

    With hints=True the network also takes user color hints (N x 3 x H x W: a / AB_NORM,
    b / AB_NORM, 0/1 mask), fed in twice: added to the encoder's stem (so the hints spread through
    the whole encoder, as in Zhang et al. 2017) and, pooled to the output resolution, mixed into
    the decoder's last features (so a hinted spot keeps its color). Both paths start at zero, so
    a hint model fine-tuned from a plain one starts out as that model. hint_branch=C > 0 adds a
    HintBranch of C channels (colorizer/models/hint_branch.py) that spreads the hints over the
    decoder's last features; it is exactly zero without hints. scene_context=H > 0 adds a
    SceneContext of H hidden units (colorizer/models/scene_context.py): the whole photo's pooled
    deepest features scale and shift the deepest and the last features (zero at the start).
    """

    def _assemble(self, encoder: nn.Module, decoder_channels, head: str, out_stride: int,
                  n_bins: int, temperature: float, correction: float = 0.0,
                  gain: float = 1.0, hints: bool = False, hint_branch: int = 0,
                  scene_context: int = 0) -> None:
        self.encoder = encoder
        strides = list(encoder.strides)
        if out_stride not in strides:
            raise ValueError(f"out_stride {out_stride} is not one of the encoder's strides {strides}")
        self.decoder = UNetDecoder(encoder.channels, list(decoder_channels), strides.index(out_stride))
        self.head = make_head(head, self.decoder.out_channels, n_bins, temperature, correction, gain)
        self.head_kind = head
        self.input_multiple = max(strides)
        self.accepts_hints = bool(hints)
        if hints:
            stem = getattr(encoder, "stem_channels", None)
            if stem is None:
                raise ValueError(f"color hints need an EfficientNet-Lite encoder, not {type(encoder).__name__}")
            self.hint_stem = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
            c = self.decoder.out_channels
            self.hint_mix = nn.Conv2d(c + 3, c, 1)
            for conv in (self.hint_stem, self.hint_mix):
                nn.init.zeros_(conv.weight)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
        if hint_branch:
            if not hints:
                raise ValueError("hint_branch needs hints=True")
            from .hint_branch import HintBranch
            self.hint_branch = HintBranch(self.decoder.out_channels, int(hint_branch))
        else:
            self.hint_branch = None
        if scene_context:
            from .scene_context import SceneContext
            self.context = SceneContext(encoder.channels[-1], self.decoder.out_channels, int(scene_context))
        else:
            self.context = None

    def _decode(self, feats):
        """The decoder's last features for the encoder's features (with the scene context's
        scale and shift where the network has one)."""
        if self.context is None:
            return self.decoder(feats)
        g = self.context.summary(feats[-1])
        feats = list(feats[:-1]) + [self.context.film_deep(feats[-1], g)]
        return self.context.film_out(self.decoder(feats), g)

    def _check_hints(self, l_norm, hints):
        n, _, h, w = l_norm.shape
        if tuple(hints.shape) != (n, 3, h, w):
            raise ValueError(f"hints must be N x 3 x H x W = {(n, 3, h, w)} (a/110, b/110, mask), "
                             f"got {tuple(hints.shape)}")
        return hints.to(l_norm)

    def _encode(self, l_norm, hints=None):
        """The encoder's features (with the hints fed into its stem, for a hint model given hints)."""
        if not self.accepts_hints or hints is None:
            return self.encoder(l_norm)
        return self.encoder(l_norm, self.hint_stem(self._check_hints(l_norm, hints)))

    def _finish(self, x, hints=None):
        """The decoder's last features -> the head's output, with the hints mixed in."""
        if not self.accepts_hints:
            return self.head(x)
        mix = self.hint_mix
        if hints is None:
            # no hints: the stem path added exactly nothing (no bias), and the mix sees zero hint
            # planes, so only its weights on the features count: skip the rest
            return self.head(x + F.conv2d(x, mix.weight[:, :x.shape[1]], mix.bias))
        pooled = pool_hints(hints.to(x), x.shape[-2:])
        x = x + mix(torch.cat([x, pooled], 1))
        if self.hint_branch is not None:
            x = x + self.hint_branch(pooled, x)
        return self.head(x)

    def forward(self, l_norm, hints=None):
        hints = hints if self.accepts_hints else None
        return self._finish(self._decode(self._encode(l_norm, hints)), hints)
